import { GpError } from '../model/index.js';
import { parseCsv, type Table } from './dataset.js';

/** A labelled episode: a device's failure condition from `start` to `end` (event time, inclusive). */
export interface FailureEpisode {
  key: string;
  type: string;
  start: number;
  end: number;
}

export interface LabelledReadingsOptions {
  /** Device id field of the readings (default machine_id). */
  keyField?: string;
  /** Event time field, epoch ms or ISO-8601 (default timestamp). */
  timeField?: string;
  /** Episode types that count as a failure (default: all given). */
  types?: readonly string[];
}

/**
 * A training table from JSON readings (one object per line, as `gridpulse simulate` writes them)
 * and labelled episodes (the `anomalies` of its labels file): columns are the key, the time, every
 * numeric field, and `failure` = 1 for a reading inside an episode of its device. Lines that are
 * not JSON objects (the simulator injects malformed ones) are skipped; the fingerprint covers the
 * table as built.
 *
 * @example
 * const table = tableFromLabelledReadings(lines, labels.anomalies.filter((a) => a.stream === 'machines'), 'sim.ndjson');
 * const data = buildDataset(table, { target: 'failure', key: 'machine_id', time: 'timestamp' });
 */
export function tableFromLabelledReadings(lines: Iterable<string>, episodes: readonly FailureEpisode[], source: string, options: LabelledReadingsOptions = {}): Table {
  const keyField = options.keyField ?? 'machine_id';
  const timeField = options.timeField ?? 'timestamp';
  const types = options.types === undefined ? undefined : new Set(options.types);
  const byKey = new Map<string, FailureEpisode[]>();
  for (const e of episodes) {
    if (types !== undefined && !types.has(e.type)) continue;
    const list = byKey.get(e.key) ?? [];
    list.push(e);
    byKey.set(e.key, list);
  }
  let fields: string[] | undefined;
  const out: string[] = [];
  const seen = new Set<string>();
  for (const line of lines) {
    let item: unknown;
    try {
      item = JSON.parse(line);
    } catch {
      continue;
    }
    if (item === null || typeof item !== 'object' || Array.isArray(item)) continue;
    const record = item as Record<string, unknown>;
    const key = record[keyField];
    const timeValue = record[timeField];
    if (typeof key !== 'string') continue;
    const time = typeof timeValue === 'number' ? timeValue : typeof timeValue === 'string' ? Date.parse(timeValue) : Number.NaN;
    if (!Number.isFinite(time)) continue;
    // The simulator also injects duplicates: one row per device and time.
    const id = `${key}|${time}`;
    if (seen.has(id)) continue;
    seen.add(id);
    fields ??= Object.keys(record).filter((name) => name !== keyField && name !== timeField && typeof record[name] === 'number');
    const values = fields.map((name) => (typeof record[name] === 'number' && Number.isFinite(record[name]) ? String(record[name]) : ''));
    const failing = (byKey.get(key) ?? []).some((e) => time >= e.start && time <= e.end);
    out.push([JSON.stringify(key), String(time), ...values, failing ? '1' : '0'].join(','));
  }
  if (fields === undefined) throw new GpError('GP_INPUT_INVALID', `${source}: expected JSON readings with "${keyField}" and "${timeField}", got none`, { path: source });
  return parseCsv(`${[[keyField, timeField, ...fields, 'failure'].join(','), ...out].join('\n')}\n`, source);
}
