import type { StreamSchema } from '../model/index.js';
import { GpError } from '../model/index.js';
import type { Store } from '../stores/index.js';
import { buildDataset, parseCsv, type Dataset } from './dataset.js';

/** Alert types that label a minute as a failure by default: the AI4I failure modes, as the machines stream's rules name them. */
export const DEFAULT_LABEL_TYPES = ['overstrain', 'heat_dissipation', 'power_failure', 'tool_wear'] as const;

export interface StoreDatasetOptions {
  from: number;
  to: number;
  /** Alert types whose open interval marks a minute as a failure (label 1). */
  labelTypes?: readonly string[];
  /** Rolling windows (ms) over the 1-minute rows; default none. */
  rollingWindowsMs?: readonly number[];
  /** Told after each device. */
  onDevice?: (done: number, total: number) => void | Promise<void>;
}

/**
 * Training data from a store's history: one row per device and minute (the 1-minute window
 * averages of every metric of the stream), labelled 1 when an alert of one of `labelTypes` was
 * open during that minute (weak labels: the rules' alerts stand in for failure records, and an
 * alert stays open for its resolve delay after the condition ends). The fingerprint is the
 * SHA-256 of the rows as CSV text.
 *
 * @example
 * const data = await datasetFromStore(store, config.streams.machines, { from: now - 86_400_000, to: now });
 */
export async function datasetFromStore(store: Store, schema: StreamSchema, options: StoreDatasetOptions): Promise<Dataset> {
  const labelTypes = new Set(options.labelTypes ?? DEFAULT_LABEL_TYPES);
  const metrics = schema.metrics.map((m) => m.name);
  const devices = (await store.latestStatus({ stream: schema.name })).map((d) => d.key).sort();
  if (devices.length === 0) throw new GpError('GP_INPUT_INVALID', `stream: expected stored history of stream "${schema.name}", got no devices`, { field: 'stream' });
  const lines = [['device', 'time', ...metrics, 'label'].join(',')];
  let done = 0;
  for (const key of devices) {
    const columns = new Map<number, Array<number | null>>();
    for (const [m, metric] of metrics.entries()) {
      const series = await store.querySeries({ stream: schema.name, key, metric, from: options.from, to: options.to, resolution: '1m' });
      for (const point of series.points) {
        let row = columns.get(point.time);
        if (row === undefined) columns.set(point.time, (row = metrics.map(() => null)));
        row[m] = point.avg;
      }
    }
    const alerts = (await store.listAlerts({ stream: schema.name, key, from: options.from, to: options.to, limit: 100_000 })).filter((a) => labelTypes.has(a.type));
    for (const time of [...columns.keys()].sort((a, b) => a - b)) {
      const values = columns.get(time)!;
      if (values.every((v) => v === null)) continue;
      const failing = alerts.some((a) => a.openedAt < time + 60_000 && (a.resolvedAt ?? Number.POSITIVE_INFINITY) >= time);
      lines.push([JSON.stringify(key), String(time), ...values.map((v) => (v === null ? '' : String(v))), failing ? '1' : '0'].join(','));
    }
    done++;
    await options.onDevice?.(done, devices.length);
  }
  if (lines.length === 1) throw new GpError('GP_INPUT_INVALID', `from/to: expected 1-minute aggregates of stream "${schema.name}" between them, got none`, { field: 'from' });
  const table = parseCsv(`${lines.join('\n')}\n`, `store:${schema.name}`);
  return buildDataset(table, { target: 'label', key: 'device', time: 'time', rollingWindowsMs: options.rollingWindowsMs });
}
