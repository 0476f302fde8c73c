import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GpError, STATS_PER_METRIC, type Aggregate } from '../../model/index.js';
import { createStore, redactUrl, type ReadingRow, type Store } from '../../stores/index.js';
import { formatRate } from '../format.js';

export interface StoreBenchOptions {
  /** Store URLs to measure besides the embedded DuckDB baseline (scratch locations: rows are left behind). */
  urls: readonly string[];
  readings: number;
  /** 1-minute windows to write (each with the power stream's four metrics). */
  aggregates: number;
  meters: number;
  /** Rows per store call, as the store writer batches them (default 5000). */
  batch: number;
}

export interface StoreBenchRow {
  store: string;
  kind: string;
  readingsPerSecond: number;
  aggregatesPerSecond: number;
  /** Writing the same aggregates again (a replay after a crash): the upsert path. */
  replayPerSecond: number;
  /** Against the DuckDB baseline measured in the same run. */
  readingsVsBaseline: number;
  aggregatesVsBaseline: number;
}

export interface StoreBenchResult {
  readings: number;
  aggregates: number;
  batch: number;
  rows: StoreBenchRow[];
}

const METRICS = ['usageKw', 'voltage', 'current', 'pf'] as const;
const T0 = Date.UTC(2025, 0, 6);

/**
 * Bulk write rates of each store for raw readings and 1-minute aggregates, the embedded DuckDB
 * store (in a temporary file) first as the baseline of the same run. Each store gets the same rows
 * in the same batches; each rate is rows over the wall time of all its write calls, so it includes
 * round trips and the store's own index maintenance.
 */
export async function runStoreBench(options: StoreBenchOptions, log: (line: string) => void = () => {}): Promise<StoreBenchResult> {
  const { readings, aggregates } = generateRows(options);
  const dir = mkdtempSync(join(tmpdir(), 'gp-bench-stores-'));
  const targets = [`duckdb:${join(dir, 'baseline.duckdb')}`, ...options.urls];
  const rows: StoreBenchRow[] = [];
  try {
    for (const url of targets) {
      const shown = url.startsWith(`duckdb:${dir}`) ? 'duckdb (temporary file, baseline)' : redactUrl(url);
      log(`${shown}: writing ${readings.length.toLocaleString('en')} readings, ${aggregates.length.toLocaleString('en')} aggregates …`);
      const store = createStore(url);
      try {
        await store.ready();
        const readingsSeconds = await timed(store, readings, options.batch, (s, b) => s.writeReadings(b));
        const aggregatesSeconds = await timed(store, aggregates, options.batch, (s, b) => s.upsertAggregates(b));
        const replaySeconds = await timed(store, aggregates, options.batch, (s, b) => s.upsertAggregates(b));
        const counts = await store.counts();
        if (counts.readings < readings.length) {
          throw new GpError('GP_STORE_FAILED', `${shown}: ${counts.readings} readings stored after writing ${readings.length}`);
        }
        const baseline = rows[0];
        const readingsPerSecond = readings.length / readingsSeconds;
        const aggregatesPerSecond = aggregates.length / aggregatesSeconds;
        rows.push({
          store: shown,
          kind: store.kind,
          readingsPerSecond,
          aggregatesPerSecond,
          replayPerSecond: aggregates.length / replaySeconds,
          readingsVsBaseline: baseline === undefined ? 1 : readingsPerSecond / baseline.readingsPerSecond,
          aggregatesVsBaseline: baseline === undefined ? 1 : aggregatesPerSecond / baseline.aggregatesPerSecond,
        });
      } finally {
        await store.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { readings: readings.length, aggregates: aggregates.length, batch: options.batch, rows };
}

async function timed<T>(store: Store, rows: readonly T[], batch: number, write: (store: Store, rows: readonly T[]) => Promise<void>): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < rows.length; i += batch) await write(store, rows.slice(i, i + batch));
  return (performance.now() - started) / 1000;
}

function generateRows(options: StoreBenchOptions): { readings: ReadingRow[]; aggregates: Aggregate[] } {
  const key = (m: number): string => `bench-m-${String(m + 1).padStart(5, '0')}`;
  const site = (m: number): string => `bench-s-${String(Math.floor(m / 10) + 1).padStart(4, '0')}`;
  const readings: ReadingRow[] = [];
  for (let i = 0; i < options.readings; i++) {
    const m = i % options.meters;
    const usage = 1 + ((i * 7919) % 1000) / 10;
    readings.push({
      stream: 'power',
      key: key(m),
      site: site(m),
      time: T0 + Math.floor(i / options.meters) * 10_000 + (m % 10_000),
      values: { usageKw: usage, voltage: 230 + (i % 7), current: usage / 0.23, pf: 0.95 },
      offset: i,
    });
  }
  const aggregates: Aggregate[] = [];
  for (let i = 0; i < options.aggregates; i++) {
    const m = i % options.meters;
    const start = T0 + Math.floor(i / options.meters) * 60_000;
    const stats: number[] = [];
    for (let metric = 0; metric < METRICS.length; metric++) {
      const avg = 10 + metric * 50 + (i % 13);
      stats.push(6, avg - 1, avg + 1, avg, avg * 6, 0.5, avg - 1, avg + 0.5);
    }
    if (stats.length !== METRICS.length * STATS_PER_METRIC) throw new Error('bench: statistics layout changed');
    aggregates.push({
      stream: 'power',
      key: key(m),
      site: site(m),
      window: '1m',
      start,
      end: start + 60_000,
      revision: 0,
      count: 6,
      metrics: METRICS,
      stats,
      energyKwh: 0.2,
    });
  }
  return { readings, aggregates };
}

export function formatStoreBench(r: StoreBenchResult): string {
  const lines = [
    `rows             ${r.readings.toLocaleString('en')} raw readings and ${r.aggregates.toLocaleString('en')} 1-minute aggregates (4 metrics each), ${r.batch.toLocaleString('en')} per call`,
    '',
    `${'store'.padEnd(60)} ${'readings/s'.padStart(11)} ${'aggregates/s'.padStart(13)} ${'replay/s'.padStart(10)}   vs DuckDB (readings, aggregates)`,
  ];
  for (const row of r.rows) {
    lines.push(
      `${row.store.slice(0, 60).padEnd(60)} ${formatRate(row.readingsPerSecond).padStart(11)} ${formatRate(row.aggregatesPerSecond).padStart(13)} ${formatRate(row.replayPerSecond).padStart(10)}   ${row.readingsVsBaseline.toFixed(2)}×, ${row.aggregatesVsBaseline.toFixed(2)}×`,
    );
  }
  return lines.join('\n');
}
