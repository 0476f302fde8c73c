import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GpError, STAT_NAMES, STATS_PER_METRIC, type Aggregate, type StatName } from '../../src/model/index.js';
import { createDuckDbStore, type FleetSeriesQuery, type Store } from '../../src/stores/index.js';

// queryFleetSeries against the real DuckDB store: a small fleet of meters on two sites, fed the
// way the engine feeds it (window aggregates with revisions), then asked for fleet-wide series.

const T0 = Date.UTC(2025, 10, 7, 12, 0, 0); // 2025-11-07T12:00:00Z, a whole hour
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const METRICS = ['usageKw', 'voltage'] as const;
const WINDOW_MS: Record<string, number> = { '1m': MINUTE, '5m': 5 * MINUTE, '15m': 15 * MINUTE };

/** A window aggregate whose usageKw average is `kw` (null: the device had no usageKw in the window). */
function aggregate(options: { key: string; start: number; kw: number | null; window?: string; site?: string | null; stream?: string; revision?: number }): Aggregate {
  const window = options.window ?? '1m';
  const stats = new Float64Array(METRICS.length * STATS_PER_METRIC).fill(Number.NaN);
  const set = (metric: (typeof METRICS)[number], stat: StatName, value: number): void => {
    stats[METRICS.indexOf(metric) * STATS_PER_METRIC + STAT_NAMES.indexOf(stat)] = value;
  };
  set('usageKw', 'count', options.kw === null ? 0 : 6);
  if (options.kw !== null) {
    set('usageKw', 'avg', options.kw);
    set('usageKw', 'min', options.kw - 1);
    set('usageKw', 'max', options.kw + 1);
  }
  set('voltage', 'count', 6);
  set('voltage', 'avg', 230);
  return {
    stream: options.stream ?? 'power',
    key: options.key,
    site: options.site === null ? undefined : (options.site ?? 's-1'),
    window,
    start: options.start,
    end: options.start + (WINDOW_MS[window] ?? MINUTE),
    revision: options.revision ?? 0,
    count: 6,
    metrics: METRICS,
    stats,
    energyKwh: 0.1,
  };
}

async function rejectsWith(promise: Promise<unknown>, field: string, message: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof GpError, `expected a GpError, got ${String(error)}`);
    assert.equal(error.code, 'GP_INPUT_INVALID');
    assert.equal(error.details['field'], field);
    assert.match(error.message, message);
    return true;
  });
}

const scratch = mkdtempSync(join(tmpdir(), 'gridpulse-fleet-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

describe('DuckDB store: queryFleetSeries', () => {
  let store: Store;
  const usage = (query: Partial<FleetSeriesQuery> = {}): Promise<Awaited<ReturnType<Store['queryFleetSeries']>>> =>
    store.queryFleetSeries({ stream: 'power', metric: 'usageKw', from: T0, to: T0 + 2 * MINUTE, resolution: '1m', ...query });

  before(async () => {
    store = createDuckDbStore({ path: join(scratch, 'gridpulse.duckdb') });
    await store.ready();
    await store.upsertAggregates([
      // Minute 0: three meters on s-1 and s-2.
      aggregate({ key: 'm-1', start: T0, kw: 1.5 }),
      aggregate({ key: 'm-2', start: T0, kw: 2.25 }),
      aggregate({ key: 'm-3', start: T0, kw: 10, site: 's-2' }),
      // Minute 1: m-2 amended by a later revision (late readings); m-3 reports no usageKw.
      aggregate({ key: 'm-1', start: T0 + MINUTE, kw: 2 }),
      aggregate({ key: 'm-2', start: T0 + MINUTE, kw: 3 }),
      aggregate({ key: 'm-3', start: T0 + MINUTE, kw: null, site: 's-2' }),
      // Minute 2: only m-1.
      aggregate({ key: 'm-1', start: T0 + 2 * MINUTE, kw: 4 }),
      // Outside the queried range.
      aggregate({ key: 'm-1', start: T0 + 3 * MINUTE, kw: 100 }),
      // Another stream with a metric of the same name, and a 5-minute window.
      aggregate({ key: 'x-1', start: T0, kw: 1000, stream: 'other' }),
      aggregate({ key: 'm-1', start: T0, kw: 7, window: '5m' }),
      aggregate({ key: 'm-2', start: T0, kw: 8, window: '5m' }),
    ]);
    // m-4 is known to be on s-3 from an earlier window; its newer aggregate carries no site.
    await store.upsertAggregates([aggregate({ key: 'm-4', start: T0 - 10 * MINUTE, kw: 1, site: 's-3' })]);
    await store.upsertAggregates([aggregate({ key: 'm-4', start: T0 + 3 * MINUTE, kw: 6, site: null })]);
    await store.upsertAggregates([aggregate({ key: 'm-2', start: T0 + MINUTE, kw: 5, revision: 2 })]);
    // An older revision arriving after the newer one changes nothing.
    await store.upsertAggregates([aggregate({ key: 'm-2', start: T0 + MINUTE, kw: 999, revision: 1 })]);
  });
  after(() => store.close());

  test('sums the device averages per window, with the device count, mean, min and max', async () => {
    const fleet = await usage();
    assert.equal(fleet.metric, 'usageKw');
    assert.equal(fleet.resolution, '1m');
    assert.deepEqual(fleet.points, [
      { time: T0, devices: 3, sum: 13.75, avg: 13.75 / 3, min: 1.5, max: 10 },
      { time: T0 + MINUTE, devices: 2, sum: 7, avg: 3.5, min: 2, max: 5 },
      { time: T0 + 2 * MINUTE, devices: 1, sum: 4, avg: 4, min: 4, max: 4 },
    ]);
  });

  test('only the newest revision of an aggregate counts', async () => {
    const minute1 = (await usage()).points.find((p) => p.time === T0 + MINUTE);
    assert.equal(minute1?.sum, 7, 'm-2 counts with revision 2 (5 kW), not revision 0 (3 kW) or the late revision 1 (999 kW)');
  });

  test('without a stream, every stream with the metric counts', async () => {
    const fleet = await store.queryFleetSeries({ metric: 'usageKw', from: T0, to: T0, resolution: '1m' });
    assert.deepEqual(fleet.points.map((p) => [p.devices, p.sum]), [[4, 1013.75]]);
  });

  test('a site filter keeps that site’s devices, including one whose aggregate has no site', async () => {
    assert.deepEqual((await usage({ site: 's-2' })).points.map((p) => [p.time, p.devices, p.sum]), [
      [T0, 1, 10],
      [T0 + MINUTE, 0, null],
    ]);
    assert.deepEqual((await usage({ site: 's-1' })).points.map((p) => p.sum), [3.75, 7, 4]);
    assert.deepEqual((await usage({ site: 's-9' })).points, []);
    assert.deepEqual((await usage({ site: 's-3', to: T0 + 3 * MINUTE })).points.map((p) => [p.time, p.sum]), [[T0 + 3 * MINUTE, 6]]);
  });

  test('5m and 15m read their own windows; auto picks the finest window within maxPoints', async () => {
    assert.deepEqual((await usage({ resolution: '5m' })).points.map((p) => [p.time, p.devices, p.sum]), [[T0, 2, 15]]);
    assert.deepEqual((await usage({ resolution: '15m' })).points, []);
    assert.equal((await usage({ resolution: 'auto', to: T0 + 2 * HOUR })).resolution, '1m');
    assert.equal((await usage({ resolution: 'auto', to: T0 + DAY })).resolution, '5m', '1440 minutes exceed the default 500 points');
    assert.equal((await usage({ resolution: 'auto', to: T0 + DAY, maxPoints: 2000 })).resolution, '1m');
    assert.equal((await usage({ resolution: 'auto', to: T0 + 30 * DAY })).resolution, '15m');
    const auto = await usage({ resolution: 'auto', to: T0 + DAY });
    assert.deepEqual(auto.points.map((p) => p.sum), [15], 'auto reads the windows it names');
  });

  test('a bad query is refused, naming the field', async () => {
    await rejectsWith(usage({ metric: '' }), 'metric', /^metric: expected a non-empty string/);
    await rejectsWith(usage({ from: T0 + 1, to: T0 }), 'from', /^from: expected a time at or before to/);
    await rejectsWith(usage({ to: Number.NaN }), 'to', /^to: expected epoch milliseconds/);
    await rejectsWith(usage({ resolution: 'raw' as unknown as '1m' }), 'resolution', /^resolution: expected one of 1m, 5m, 15m, auto, got "raw"/);
    await rejectsWith(usage({ resolution: 'auto', maxPoints: 0 }), 'maxPoints', /^maxPoints: expected a positive number/);
    await rejectsWith(usage({ site: '' }), 'site', /^site:/);
    await rejectsWith(usage({ stream: '' }), 'stream', /^stream:/);
  });
});
