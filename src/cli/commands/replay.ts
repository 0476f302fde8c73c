import { statSync } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { createStreamSchema, loadConfig, parseDuration, type GridpulseConfig, type StreamInput } from '../../config/index.js';
import { FILE_KEY_FIELD, detectColumns, normalizeName, readRecords, sniffFile, type DetectedLayout, type LayoutHints, type SourceRecord } from '../../ingest/index.js';
import { parseTime } from '../../engine/index.js';
import { GpError, type StreamSchema } from '../../model/index.js';
import { partitionOfKey } from '../../log/index.js';
import { createStore, redactUrl } from '../../stores/index.js';
import { createPipeline, type Pipeline, type PipelineSummary } from '../pipeline.js';
import { Progress, formatRate } from '../format.js';

export interface ReplayOptions {
  files: string[];
  config?: string | undefined;
  stream?: string | undefined;
  store?: string | undefined;
  noStore?: boolean | undefined;
  noReadings?: boolean | undefined;
  alertsOut?: string | undefined;
  aggregatesOut?: string | undefined;
  opsOut?: string | undefined;
  scoresOut?: string | undefined;
  partitions?: number | undefined;
  /**
   * Process as `gridpulse process` does a Kafka topic of this many partitions keyed by device id:
   * each partition (Kafka's default partitioner, murmur2 of the key) is an engine of its own with
   * its own event time. Its results equal those of `gridpulse process` over such a topic, whatever
   * the number of members. Store only (no output files).
   */
  topicPartitions?: number | undefined;
  hints: LayoutHints;
  progress?: boolean | undefined;
  /** `file`: process records in file order (arrival order); `time`: in event-time order; `auto` (default): `time` for a CSV file that is grouped by device rather than ordered by time. */
  order?: 'auto' | 'file' | 'time' | undefined;
}

/** Above this share of records that would be TOO_LATE in file order, a CSV file is taken to be grouped by device. */
const GROUPED_FILE_SHARE = 0.01;

/**
 * Share of the file's records that are more than `behindMs` older than the newest time before
 * them: near 0 for a file in arrival order, large for an export sorted by device then time.
 */
async function shareOutOfOrder(path: string, layout: DetectedLayout, schema: StreamSchema, behindMs: number): Promise<number> {
  let newest = -Infinity;
  let behind = 0;
  let total = 0;
  for await (const record of readRecords(path, layout)) {
    if (record.kind !== 'object') continue;
    const time = parseTime(record.value[schema.timeField], schema.timeFormat);
    if (time !== time) continue;
    total++;
    if (time < newest - behindMs) behind++;
    else if (time > newest) newest = time;
  }
  return total === 0 ? 0 : behind / total;
}

/**
 * The records of a file in event-time order (ties in file order). Held in memory: about 200
 * bytes a record, so a 5-million-row export needs about 1 GB; files in arrival order never
 * take this path.
 */
async function* inTimeOrder(path: string, layout: DetectedLayout, schema: StreamSchema): AsyncGenerator<SourceRecord> {
  const timed: Array<{ time: number; record: SourceRecord }> = [];
  for await (const record of readRecords(path, layout)) {
    const time = record.kind === 'object' ? parseTime(record.value[schema.timeField], schema.timeFormat) : Number.NaN;
    // Undecodable records keep their place at the start so their ops records come first.
    timed.push({ time: time === time ? time : -Infinity, record });
  }
  timed.sort((a, b) => a.time - b.time || a.record.offset - b.record.offset);
  for (const t of timed) yield t.record;
}

export interface ReplaySummary extends PipelineSummary {
  files: PipelineSummary['files'];
  inputs: Array<{ path: string; format: string; stream: string; layout: string; order: string }>;
  records: number;
  seconds: number;
  recordsPerSecond: number;
  store: string | null;
}

/**
 * Column names of well-known datasets, mapped to the metrics of the built-in machines stream, so
 * AI4I 2020 (`Air temperature [K]`, ...) replays as the machines stream without a mapping file.
 */
const MACHINE_ALIASES: Record<string, string[]> = {
  air_temp_k: ['Air temperature [K]', 'air_temperature_k', 'air_temp'],
  process_temp_k: ['Process temperature [K]', 'process_temperature_k', 'process_temp'],
  rpm: ['Rotational speed [rpm]', 'rotational_speed_rpm', 'rotational_speed'],
  torque_nm: ['Torque [Nm]', 'torque'],
  tool_wear_min: ['Tool wear [min]', 'tool_wear'],
};

/** Builds the stream a CSV file replays as: a built-in stream with its columns mapped, or a new stream from the detected layout. */
function streamForCsv(config: GridpulseConfig, layout: DetectedLayout, header: string[], requested: string | undefined): StreamSchema {
  const base = requested !== undefined ? config.streams[requested] : undefined;
  if (requested !== undefined && base === undefined) {
    throw new GpError('GP_INPUT_INVALID', `--stream ${requested}: no such stream; the config declares ${Object.keys(config.streams).join(', ')}`);
  }
  if (base !== undefined) {
    // Map each metric of the built-in stream to a column: same name, an alias, or a detected metric.
    const metrics: NonNullable<StreamInput['metrics']> = {};
    const byNorm = new Map(header.map((h) => [normalizeName(h), h]));
    for (const m of base.metrics) {
      if (m.kind === 'derived-power') continue;
      const candidates = [m.field, m.name, ...(base.name === 'machines' ? (MACHINE_ALIASES[m.name] ?? []) : [])];
      const column = candidates.map((c) => byNorm.get(normalizeName(c))).find((c) => c !== undefined);
      if (column === undefined) continue;
      metrics[m.name] = { field: column, ...(m.unit ? { unit: m.unit } : {}), ...(m.min !== undefined ? { min: m.min } : {}), ...(m.max !== undefined ? { max: m.max } : {}), ...(m.kind === 'interval-energy' ? { kind: 'interval-energy' } : {}) };
    }
    if (Object.keys(metrics).length === 0) {
      throw new GpError('GP_INPUT_UNKNOWN_LAYOUT', `none of the metrics of stream ${base.name} (${base.metrics.map((m) => m.field).join(', ')}) is a column of this file; columns found: ${header.join(', ')}. Map columns with --metrics, or replay without --stream to detect them`);
    }
    return createStreamSchema(base.name, {
      key: layout.keyField ?? FILE_KEY_FIELD,
      ...(layout.siteField ? { site: layout.siteField } : {}),
      time: { field: layout.timeField, format: layout.timeFormat },
      metrics,
      ...(layout.intervalMs !== undefined ? { expectedInterval: `${layout.intervalMs}ms` } : {}),
      detectors: base.detectors.map((d) => ({
        type: d.type,
        metrics: d.metrics.filter((name) => name in metrics),
        params: { ...d.params },
        enabled: d.enabled,
        ...(d.alertType !== undefined ? { name: d.alertType } : {}),
      })).filter((d) => d.type === 'rule' || d.metrics.length > 0 || base.detectors.find((b) => b.type === d.type)?.metrics.length === 0),
    });
  }
  const name = basename(layout.deviceName).replace(/[^A-Za-z0-9_-]/g, '_') || 'file';
  return createStreamSchema(name, {
    key: layout.keyField ?? '@file',
    ...(layout.siteField ? { site: layout.siteField } : {}),
    time: { field: layout.timeField, format: layout.timeFormat },
    metrics: Object.fromEntries(layout.metrics.map((m) => [m.name, { field: m.field, ...(m.kind === 'interval-energy' ? { kind: 'interval-energy' as const } : {}) }])),
    ...(layout.intervalMs !== undefined ? { expectedInterval: `${layout.intervalMs}ms` } : {}),
  });
}

/**
 * Replays files through the engine as fast as possible, in event time: the same code path as
 * live ingest, so results are the ones a live run would have produced for the same arrival order.
 */
export async function replay(options: ReplayOptions): Promise<ReplaySummary> {
  const config = loadConfig(options.config !== undefined ? { path: options.config } : {});
  const plans: Array<{ path: string; size: number; format: 'ndjson' | 'csv'; layout: DetectedLayout | undefined; stream: StreamSchema | undefined; timeOrder: boolean; outOfOrder: number }> = [];
  for (const path of options.files) {
    let size: number;
    try {
      size = statSync(path).size;
    } catch {
      throw new GpError('GP_FILE_NOT_FOUND', `cannot read ${path}: no such file`, { path });
    }
    const sniff = await sniffFile(path);
    if (sniff.format === 'ndjson') {
      plans.push({ path, size, format: 'ndjson', layout: undefined, stream: undefined, timeOrder: false, outOfOrder: 0 });
      continue;
    }
    const header = sniff.header ?? [];
    const layout = detectColumns(sniff.sample, header, path, { ...options.hints, ...(options.stream !== undefined ? { stream: options.stream } : {}) }, options.stream !== undefined ? config.streams[options.stream] : undefined);
    const stream = streamForCsv(config, layout, header, options.stream);
    const order = options.order ?? 'auto';
    const outOfOrder = order === 'auto' ? await shareOutOfOrder(path, layout, stream, stream.lateness.allowedLatenessMs) : 0;
    plans.push({ path, size, format: 'csv', layout, stream, timeOrder: order === 'time' || outOfOrder > GROUPED_FILE_SHARE, outOfOrder });
  }

  const streams = new Map<string, StreamSchema>();
  for (const p of plans) if (p.stream) streams.set(p.stream.name, p.stream);
  if (plans.some((p) => p.format === 'ndjson')) {
    const named = options.stream !== undefined ? [config.streams[options.stream]] : Object.values(config.streams);
    for (const s of named) {
      if (s === undefined) throw new GpError('GP_INPUT_INVALID', `--stream ${options.stream}: no such stream; the config declares ${Object.keys(config.streams).join(', ')}`);
      if (!streams.has(s.name)) streams.set(s.name, s);
    }
  }

  const partitions = wholeNumber(options.partitions, '--partitions');
  const topicPartitions = wholeNumber(options.topicPartitions, '--topic-partitions');
  if (topicPartitions !== undefined) {
    const files = (['alertsOut', 'aggregatesOut', 'opsOut', 'scoresOut'] as const).filter((name) => options[name] !== undefined);
    if (files.length > 0) {
      const flags = files.map((name) => `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ');
      throw new GpError('GP_INPUT_INVALID', `--topic-partitions: writes to the store only, as gridpulse process does; got ${flags} as well (leave them out)`, { flag: '--topic-partitions' });
    }
  }
  const storeUrl = options.noStore ? undefined : (options.store ?? config.store.url);
  const store = storeUrl ? createStore(storeUrl) : undefined;
  await store?.ready();
  const forcedStream = options.stream ?? (streams.size === 1 ? [...streams.keys()][0] : undefined);
  const pipelines: Pipeline[] = Array.from({ length: topicPartitions ?? 1 }, () =>
    createPipeline({
      streams: [...streams.values()],
      partitions: partitions ?? config.engine.partitions,
      forcedStream,
      store,
      writeReadings: !options.noReadings && config.store.writeReadings,
      files: { alerts: options.alertsOut, aggregates: options.aggregatesOut, ops: options.opsOut, scores: options.scoresOut },
      wallClock: () => Date.now(),
    }),
  );
  const pipeline = pipelines[0]!;
  const keyFields = forcedStream !== undefined ? [streams.get(forcedStream)!.keyField] : [...new Set([...streams.values()].map((schema) => schema.keyField))];
  /** The pipeline of a record's Kafka partition (its device key), or the first for a record without one. */
  const pipelineOf = (value: unknown): Pipeline => {
    if (pipelines.length === 1 || value === null || typeof value !== 'object') return pipeline;
    for (const field of keyFields) {
      const key = (value as Record<string, unknown>)[field];
      if (typeof key === 'string' || typeof key === 'number') return pipelines[partitionOfKey(String(key), pipelines.length)]!;
    }
    return pipeline;
  };
  const parsed = (text: string): unknown => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return undefined;
    }
  };

  const started = Date.now();
  let records = 0;
  const totalBytes = plans.reduce((sum, p) => sum + p.size, 0);
  let bytesDone = 0;
  const progress = new Progress(options.progress ?? false, totalBytes);
  try {
    for (const plan of plans) {
      const source = plan.timeOrder && plan.layout && plan.stream ? inTimeOrder(plan.path, plan.layout, plan.stream) : readRecords(plan.path, plan.layout);
      for await (const record of source) {
        records++;
        if (record.kind === 'json') {
          bytesDone += record.text.length + 1;
          (pipelines.length === 1 ? pipeline : pipelineOf(parsed(record.text))).router.processText(record.text, record.offset);
        } else if (record.kind === 'object') {
          bytesDone += 64;
          pipelineOf(record.value).router.processObject(record.value, record.offset);
        } else {
          pipeline.router.processError(record.offset, record.reason, {
            ...(record.field !== undefined ? { field: record.field } : {}),
            ...(record.expected !== undefined ? { expected: record.expected } : {}),
            ...(record.got !== undefined ? { got: record.got } : {}),
          });
        }
        if ((records & 4095) === 0) {
          progress.update(bytesDone, records);
          for (const each of pipelines) await each.backpressure();
        }
      }
    }
  } finally {
    progress.done();
  }
  const summary = mergeSummaries(await Promise.all(pipelines.map((each) => each.finish())));
  await store?.close();
  const seconds = (Date.now() - started) / 1000;
  return {
    ...summary,
    inputs: plans.map((p) => ({
      path: p.path,
      format: p.format,
      stream: p.stream?.name ?? (options.stream ?? 'by device-id field'),
      layout: p.layout ? describeLayout(p.layout) : 'NDJSON records',
      order: p.timeOrder
        ? p.outOfOrder > 0
          ? `event time (the file is grouped by device: ${(p.outOfOrder * 100).toFixed(0)}% of its records are older than allowed lateness behind earlier ones; --order file keeps the file's order)`
          : 'event time (--order time)'
        : 'file (arrival order)',
    })),
    records,
    seconds,
    recordsPerSecond: records / Math.max(seconds, 1e-9),
    store: storeUrl === undefined ? null : redactUrl(storeUrl),
  };
}

/** The summary of several pipelines (one per topic partition) as one: counts added up. */
function mergeSummaries(summaries: readonly PipelineSummary[]): PipelineSummary {
  if (summaries.length === 1) return summaries[0]!;
  const merged: PipelineSummary = { streams: {}, alertsOpened: {}, alertTransitions: 0, ops: {}, files: {} };
  for (const summary of summaries) {
    merged.alertTransitions += summary.alertTransitions;
    for (const [type, n] of Object.entries(summary.alertsOpened)) merged.alertsOpened[type] = (merged.alertsOpened[type] ?? 0) + n;
    for (const [kind, n] of Object.entries(summary.ops) as Array<[keyof PipelineSummary['ops'], number]>) merged.ops[kind] = (merged.ops[kind] ?? 0) + n;
    for (const [name, stats] of Object.entries(summary.streams)) {
      const into = merged.streams[name];
      if (into === undefined) {
        merged.streams[name] = { ...stats };
        continue;
      }
      for (const field of Object.keys(stats) as Array<keyof typeof stats>) {
        if (field === 'watermark' || field === 'maxEventTime') continue;
        into[field] += stats[field];
      }
      // Event times only of partitions that saw readings of the stream.
      if (stats.readings > 0) {
        const first = into.readings === stats.readings;
        into.watermark = first ? stats.watermark : Math.min(into.watermark, stats.watermark);
        into.maxEventTime = first ? stats.maxEventTime : Math.max(into.maxEventTime, stats.maxEventTime);
      }
    }
  }
  return merged;
}

/** A flag's text as a number for `wholeNumber`; text that is not a whole number is refused here, quoted as given. */
function countFlag(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text.trim())) throw new GpError('GP_INPUT_INVALID', `${flag}: expected a whole number from 1 to 1024, got ${JSON.stringify(text)}`, { flag });
  return Number(text);
}

/** A whole number from 1 to 1024 given for `flag`, or undefined when not given. */
function wholeNumber(value: number | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < 1 || value > 1024) throw new GpError('GP_INPUT_INVALID', `${flag}: expected a whole number from 1 to 1024, got ${String(value)}`, { flag });
  return value;
}

function parseOrder(text: string): 'auto' | 'file' | 'time' {
  if (text === 'auto' || text === 'file' || text === 'time') return text;
  throw new GpError('GP_INPUT_INVALID', `--order: expected auto, file or time, got ${JSON.stringify(text)}`, { flag: '--order' });
}

function describeLayout(l: DetectedLayout): string {
  const metrics = l.metrics.map((m) => `${m.name}${m.kind === 'interval-energy' ? ' (interval energy → kW)' : ''}`).join(', ');
  const key = l.keyField ?? `one device "${l.deviceName}"`;
  return `key ${key}, time ${l.timeField} (${l.timeFormat})${l.intervalMs ? `, interval ${l.intervalMs / 1000} s` : ''}, metrics ${metrics}`;
}

export function formatReplaySummary(s: ReplaySummary): string {
  const lines: string[] = [];
  for (const input of s.inputs) lines.push(`input   ${input.path}: ${input.format}, stream ${input.stream}; ${input.layout}; order: ${input.order}`);
  lines.push(`records ${s.records.toLocaleString('en')} in ${s.seconds.toFixed(1)} s (${formatRate(s.recordsPerSecond)}/s)`);
  for (const [name, st] of Object.entries(s.streams)) {
    if (st.readings === 0) continue;
    lines.push(
      `stream  ${name}: ${st.accepted.toLocaleString('en')} accepted of ${st.readings.toLocaleString('en')} — on time ${st.onTime}, late ${st.late} (amended ${st.amendments} windows), too late ${st.tooLate}, out of order ${st.outOfOrder}, invalid ${st.invalid}, duplicates ${st.duplicates}, clock skew ${st.clockSkew}; ${st.keys} devices; ${st.aggregates.toLocaleString('en')} aggregates`,
    );
  }
  const opened = Object.entries(s.alertsOpened).sort((a, b) => b[1] - a[1]);
  lines.push(`alerts  ${opened.length === 0 ? 'none' : opened.map(([t, n]) => `${t} ${n}`).join(', ')} (${s.alertTransitions} transitions)`);
  const ops = Object.entries(s.ops).sort((a, b) => b[1] - a[1]);
  lines.push(`ops     ${ops.length === 0 ? 'none' : ops.map(([k, n]) => `${k} ${n}`).join(', ')}`);
  if (s.store) lines.push(`store   ${s.store}`);
  for (const [name, f] of Object.entries(s.files)) lines.push(`wrote   ${f.path} (${name}, ${f.lines.toLocaleString('en')} lines)`);
  return lines.join('\n');
}

export function register(program: Command): void {
  program
    .command('replay <files...>')
    .description('Replay CSV or NDJSON files (gzip too) through the engine in event time, as fast as possible, into the store and output files.')
    .option('-c, --config <file>', 'config file (default: ./gridpulse.yaml if present, else built-in defaults)')
    .option('--stream <name>', 'treat every record as this stream (default: by device-id field for NDJSON, detected layout for CSV)')
    .option('--store <url>', 'store to write to, e.g. duckdb:./data/gridpulse.duckdb (default: the config\'s store)')
    .option('--no-store', 'do not write to a store')
    .option('--no-readings', 'store aggregates, alerts and ops but not raw readings')
    .option('--alerts-out <file>', 'write alert transitions (NDJSON, or CSV if the name ends in .csv; .gz compresses)')
    .option('--aggregates-out <file>', 'write window aggregates (NDJSON or CSV)')
    .option('--ops-out <file>', 'write ops events: invalid, duplicate, out of order, late, too late, gap, clock skew (NDJSON or CSV)')
    .option('--scores-out <file>', 'write each reading with its overall anomaly score (NDJSON or CSV)')
    .option('--key <column>', 'CSV: device id column, or @file for one device named after the file')
    .option('--time <column>', 'CSV: time column, or @row to number rows at --interval from --start')
    .option('--site <column>', 'CSV: site column')
    .option('--metrics <columns>', 'CSV: comma-separated metric columns (default: every numeric column)')
    .option('--energy <columns>', 'CSV: comma-separated interval-energy (kWh per interval) columns')
    .option('--interval <duration>', 'CSV with --time @row: time between rows', '1m')
    .option('--start <iso>', 'CSV with --time @row: time of the first row', '2020-01-01T00:00:00Z')
    .option('--partitions <n>', 'engine partitions (default from config)')
    .option('--topic-partitions <n>', 'process as gridpulse process does a Kafka topic of n partitions keyed by device id: each partition keeps its own event time, so the results equal those of gridpulse process over such a topic (store only)')
    .option('--order <order>', 'auto: event-time order for CSV files grouped by device, else file order; file: arrival order as in the file; time: event-time order', 'auto')
    .option('--json', 'print the summary as JSON')
    .addHelpText(
      'after',
      `
Examples:
  gridpulse replay sim.ndjson --alerts-out alerts.ndjson --ops-out ops.ndjson
  gridpulse replay ../shared/data/lcl-london-20meters-2013q1.csv
  gridpulse replay ../shared/data/ai4i2020.csv --stream machines --key @file --time @row --interval 1m`,
    )
    .action(async (files: string[], opts: Record<string, string | boolean | undefined>) => {
      const str = (k: string): string | undefined => (typeof opts[k] === 'string' ? opts[k] : undefined);
      const list = (k: string): string[] | undefined => str(k)?.split(',').map((s) => s.trim()).filter(Boolean);
      const hints: LayoutHints = {
        ...(str('key') !== undefined ? { key: str('key') } : {}),
        ...(str('time') !== undefined ? { time: str('time') } : {}),
        ...(str('site') !== undefined ? { site: str('site') } : {}),
        ...(list('metrics') ? { metrics: list('metrics') } : {}),
        ...(list('energy') ? { energy: list('energy') } : {}),
        rowInterval: parseDuration(str('interval') ?? '1m'),
        start: Date.parse(str('start') ?? '2020-01-01T00:00:00Z'),
      };
      const summary = await replay({
        files,
        config: str('config'),
        stream: str('stream'),
        store: str('store'),
        noStore: opts.store === false,
        noReadings: opts.readings === false,
        alertsOut: str('alertsOut'),
        aggregatesOut: str('aggregatesOut'),
        opsOut: str('opsOut'),
        scoresOut: str('scoresOut'),
        partitions: countFlag(str('partitions'), '--partitions'),
        topicPartitions: countFlag(str('topicPartitions'), '--topic-partitions'),
        order: parseOrder(str('order') ?? 'auto'),
        hints,
        progress: process.stderr.isTTY && !opts.json,
      });
      process.stdout.write(opts.json ? `${JSON.stringify(summary, null, 2)}\n` : `${formatReplaySummary(summary)}\n`);
    });
}
