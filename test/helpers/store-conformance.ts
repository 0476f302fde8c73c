/**
 * The conformance suite of the Store interface (src/stores/store.ts): every implementation must
 * give these answers for the same writes. Each test writes a small, hand-made data set and compares
 * the answers with values worked out by hand, never with another store's output.
 *
 * @example
 * storeConformance({ name: 'DuckDB', open: async (options) => ({ store: createDuckDbStore({ path: ':memory:', ...options }) }) });
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GpError, STAT_NAMES, STATS_PER_METRIC, opsEvent, type Aggregate, type AlertEvent, type AlertStatus, type Severity, type StatName } from '../../src/model/index.js';
import type { ReadingRow, RetentionPolicy, Store } from '../../src/stores/index.js';

export interface ConformanceBacking {
  store: Store;
  /** A second store over the same data (same database), for the concurrent-writers test. */
  openAnother?: () => Store;
}

export interface ConformanceTarget {
  name: string;
  /** A store over fresh, empty storage; the suite calls `ready()` and closes it. */
  open(options: { retention?: Partial<RetentionPolicy> }): Promise<ConformanceBacking>;
  /** Why `openAnother` is absent, printed as the skip reason of the concurrent-writers test. */
  concurrentWritersSkip?: string;
}

export const T0 = Date.UTC(2025, 10, 7, 12, 0, 0); // 2025-11-07T12:00:00Z, a whole hour
export const MINUTE = 60_000;
export const DAY = 86_400_000;
const METRICS = ['usageKw', 'voltage'] as const;

type Stats = Partial<Record<StatName, number>>;

export function aggregate(options: {
  key?: string;
  stream?: string;
  site?: string | null;
  window?: string;
  start: number;
  revision?: number;
  count?: number;
  usageKw?: Stats;
  voltage?: Stats;
}): Aggregate {
  const windowName = options.window ?? '1m';
  const length = { '1m': MINUTE, '5m': 5 * MINUTE, '15m': 15 * MINUTE }[windowName] ?? MINUTE;
  const stats = new Array<number>(METRICS.length * STATS_PER_METRIC).fill(Number.NaN);
  METRICS.forEach((metric, m) => {
    stats[m * STATS_PER_METRIC] = 0;
    for (const [name, value] of Object.entries(options[metric] ?? {})) stats[m * STATS_PER_METRIC + STAT_NAMES.indexOf(name as StatName)] = value;
  });
  return {
    stream: options.stream ?? 'power',
    key: options.key ?? 'm-1',
    site: options.site === null ? undefined : (options.site ?? 's-1'),
    window: windowName,
    start: options.start,
    end: options.start + length,
    revision: options.revision ?? 0,
    count: options.count ?? 6,
    metrics: METRICS,
    stats,
    energyKwh: 0.25,
  };
}

/** usageKw with min = avg - 1, max = avg + 1, last = avg + 0.5; voltage 230. */
export function windowOf(key: string, windowName: string, start: number, avg: number, extra: { site?: string | null; revision?: number; stream?: string } = {}): Aggregate {
  return aggregate({
    key,
    window: windowName,
    start,
    ...(extra.site === undefined ? {} : { site: extra.site }),
    ...(extra.revision === undefined ? {} : { revision: extra.revision }),
    ...(extra.stream === undefined ? {} : { stream: extra.stream }),
    usageKw: { count: 6, min: avg - 1, max: avg + 1, avg, sum: avg * 6, stddev: 0.5, first: avg - 1, last: avg + 0.5 },
    voltage: { count: 6, avg: 230 },
  });
}

export function reading(key: string, time: number, offset: number, values: Record<string, number | null>, site = 's-1'): ReadingRow {
  return { stream: 'power', key, site, time, offset, values };
}

export function alertEvent(options: {
  id: string;
  seq: number;
  key?: string;
  site?: string;
  type?: string;
  status?: AlertStatus;
  severity?: Severity;
  openedAt: number;
  resolvedAt?: number;
}): AlertEvent {
  const status = options.status ?? 'open';
  const severity = options.severity ?? 'warning';
  const time = options.resolvedAt ?? options.openedAt + options.seq * MINUTE;
  return {
    alert: {
      id: options.id,
      stream: 'power',
      key: options.key ?? 'm-1',
      site: options.site ?? 's-1',
      type: options.type ?? 'spike',
      metric: 'usageKw',
      severity,
      status,
      openedAt: options.openedAt,
      updatedAt: time,
      resolvedAt: options.resolvedAt,
      score: 0.5 + options.seq / 10,
      peakScore: 0.9,
      value: 42.5,
      findings: options.seq + 1,
      explain: `usageKw 42.5 kW rose 80% over baseline 23.5 kW (seq ${options.seq})`,
    },
    transition: {
      id: `${options.id}#${options.seq}`,
      alertId: options.id,
      seq: options.seq,
      kind: options.seq === 0 ? 'open' : status === 'resolved' ? 'resolve' : 'update',
      time,
      status,
      severity,
      score: 0.5 + options.seq / 10,
      explain: `step ${options.seq}`,
    },
  };
}

async function rejectsNaming(promise: Promise<unknown>, field: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof GpError, `expected a GpError, got ${String(error)}`);
    assert.equal(error.code, 'GP_INPUT_INVALID');
    assert.equal(error.details['field'], field);
    assert.ok(error.message.startsWith(`${field}:`), error.message);
    return true;
  });
}

/** A small fleet: two power meters on two sites, one machine; windows of 1m, 5m and 15m. */
async function writeFleet(store: Store): Promise<void> {
  await store.writeReadings([
    reading('m-1', T0, 1, { usageKw: 10, voltage: 230, 'phase.a': 3 }),
    reading('m-1', T0 + 20_000, 2, { usageKw: 12, voltage: null }),
    reading('m-1', T0 + 40_000, 3, { usageKw: 14, voltage: 231 }),
    reading('m-2', T0, 1, { usageKw: 100 }, 's-2'),
  ]);
  await store.upsertAggregates([
    windowOf('m-1', '1m', T0, 12),
    windowOf('m-1', '1m', T0 + MINUTE, 20),
    windowOf('m-1', '1m', T0 + 2 * MINUTE, 30),
    windowOf('m-2', '1m', T0, 100, { site: 's-2' }),
    windowOf('m-2', '1m', T0 + MINUTE, 101.5, { site: 's-2' }),
    // A device whose aggregates do not know their site: its readings do (s-2).
    windowOf('m-3', '1m', T0, 7.5, { site: null }),
    windowOf('m-1', '5m', T0, 16),
    windowOf('m-2', '5m', T0, 100.5, { site: 's-2' }),
    windowOf('m-1', '15m', T0, 15),
    windowOf('machine-001', '1m', T0, 40, { stream: 'machines', site: null }),
  ]);
  await store.writeReadings([reading('m-3', T0 + 5_000, 9, { usageKw: 7 }, 's-2')]);
}

export function storeConformance(target: ConformanceTarget): void {
  async function open(options: { retention?: Partial<RetentionPolicy> } = {}): Promise<ConformanceBacking> {
    const backing = await target.open(options);
    await backing.store.ready();
    return backing;
  }
  async function withStore(body: (store: Store) => Promise<void>, options: { retention?: Partial<RetentionPolicy> } = {}): Promise<void> {
    const { store } = await open(options);
    try {
      await body(store);
    } finally {
      await store.close();
    }
  }

  describe(`Store conformance: ${target.name}`, () => {
    test('stores every table and counts aggregates per window', () =>
      withStore(async (store) => {
        await writeFleet(store);
        await store.writeAlertEvents([alertEvent({ id: 'a-1', seq: 0, openedAt: T0 }), alertEvent({ id: 'a-1', seq: 1, openedAt: T0 })]);
        await store.writeOps([
          opsEvent('late', 'power', 'late by 3 min', { key: 'm-1', time: T0, offset: 4, lagMs: 180_000 }),
          opsEvent('invalid', 'power', 'usageKw: expected a number', { offset: 5, field: 'usageKw', expected: 'a number', got: '"x"' }),
        ]);
        assert.deepEqual(await store.counts(), { readings: 5, aggregates: 10, alerts: 1, transitions: 2, ops: 2 });
      }));

    test('writing the same batches twice changes nothing', () =>
      withStore(async (store) => {
        const events = [alertEvent({ id: 'a-1', seq: 0, openedAt: T0 }), alertEvent({ id: 'a-1', seq: 1, openedAt: T0 })];
        const ops = [opsEvent('late', 'power', 'late', { key: 'm-1', time: T0, offset: 4 }), opsEvent('invalid', 'power', 'bad', { offset: 5 })];
        await writeFleet(store);
        await store.writeAlertEvents(events);
        await store.writeOps(ops);
        const before = {
          counts: await store.counts(),
          raw: await store.querySeries({ key: 'm-1', metric: 'usageKw', from: T0, to: T0 + MINUTE, resolution: 'raw' }),
          alerts: await store.listAlerts({}),
        };
        await writeFleet(store);
        await store.writeAlertEvents(events);
        await store.writeOps(ops);
        // Duplicates inside one batch are stored once too.
        await store.writeReadings([reading('m-1', T0, 1, { usageKw: 99 }), reading('m-1', T0, 1, { usageKw: 98 })]);
        await store.writeOps([...ops, ...ops]);
        assert.deepEqual(await store.counts(), before.counts);
        assert.deepEqual(before.counts, { readings: 5, aggregates: 10, alerts: 1, transitions: 2, ops: 2 });
        assert.deepEqual(await store.querySeries({ key: 'm-1', metric: 'usageKw', from: T0, to: T0 + MINUTE, resolution: 'raw' }), before.raw);
        assert.deepEqual(await store.listAlerts({}), before.alerts);
      }));

    test('a higher revision replaces an aggregate; a lower one written later does not; in a batch the highest wins', () =>
      withStore(async (store) => {
        const series = async (): Promise<(number | null)[]> =>
          (await store.querySeries({ key: 'm-1', metric: 'usageKw', from: T0, to: T0, resolution: '1m' })).points.map((p) => p.avg);
        await store.upsertAggregates([windowOf('m-1', '1m', T0, 10)]);
        await store.upsertAggregates([windowOf('m-1', '1m', T0, 11, { revision: 1 })]);
        assert.deepEqual(await series(), [11]);
        await store.upsertAggregates([windowOf('m-1', '1m', T0, 10, { revision: 0 })]);
        assert.deepEqual(await series(), [11]);
        await store.upsertAggregates([windowOf('m-1', '1m', T0, 13, { revision: 3 }), windowOf('m-1', '1m', T0, 12, { revision: 2 })]);
        assert.deepEqual(await series(), [13]);
        // An equal revision replaces (an amended re-emission after a restart).
        await store.upsertAggregates([windowOf('m-1', '1m', T0, 14, { revision: 3 })]);
        assert.deepEqual(await series(), [14]);
        assert.equal((await store.counts()).aggregates, 1);
      }));

    test('NaN and Infinity are stored as null', () =>
      withStore(async (store) => {
        await store.upsertAggregates([aggregate({ start: T0, usageKw: { count: 0, avg: Number.NaN, min: Number.POSITIVE_INFINITY } })]);
        await store.writeReadings([reading('m-1', T0, 1, { usageKw: Number.NaN })]);
        const [point] = (await store.querySeries({ key: 'm-1', metric: 'usageKw', from: T0, to: T0, resolution: '1m' })).points;
        assert.deepEqual(point, { time: T0, count: 0, min: null, max: null, avg: null, last: null });
        const raw = await store.querySeries({ key: 'm-1', metric: 'usageKw', from: T0, to: T0, resolution: 'raw' });
        assert.deepEqual(raw.points, [{ time: T0, count: 0, min: null, max: null, avg: null, last: null }]);
      }));

    test('querySeries reads raw, 1m, 5m and 15m in time order, and auto picks the finest that fits', () =>
      withStore(async (store) => {
        await writeFleet(store);
        const raw = await store.querySeries({ key: 'm-1', metric: 'usageKw', from: T0, to: T0 + 30_000, resolution: 'raw' });
        assert.deepEqual(raw, {
          key: 'm-1',
          metric: 'usageKw',
          resolution: 'raw',
          points: [
            { time: T0, count: 1, min: 10, max: 10, avg: 10, last: 10 },
            { time: T0 + 20_000, count: 1, min: 12, max: 12, avg: 12, last: 12 },
          ],
        });
        // A missing value reads as null; a metric name with a dot is one name.
        const voltage = await store.querySeries({ key: 'm-1', metric: 'voltage', from: T0, to: T0 + MINUTE, resolution: 'raw' });
        assert.deepEqual(voltage.points.map((p) => p.avg), [230, null, 231]);
        const dotted = await store.querySeries({ key: 'm-1', metric: 'phase.a', from: T0, to: T0 + MINUTE, resolution: 'raw' });
        assert.deepEqual(dotted.points.map((p) => p.avg), [3, null, null]);

        const oneMinute = await store.querySeries({ stream: 'power', key: 'm-1', metric: 'usageKw', from: T0, to: T0 + 2 * MINUTE, resolution: '1m' });
        assert.deepEqual(oneMinute.points, [
          { time: T0, count: 6, min: 11, max: 13, avg: 12, last: 12.5 },
          { time: T0 + MINUTE, count: 6, min: 19, max: 21, avg: 20, last: 20.5 },
          { time: T0 + 2 * MINUTE, count: 6, min: 29, max: 31, avg: 30, last: 30.5 },
        ]);
        const five = await store.querySeries({ key: 'm-1', metric: 'usageKw', from: T0, to: T0 + 2 * MINUTE, resolution: '5m' });
        assert.deepEqual(five.points.map((p) => [p.time, p.avg]), [[T0, 16]]);
        const fifteen = await store.querySeries({ key: 'm-1', metric: 'usageKw', from: T0, to: T0 + 2 * MINUTE, resolution: '15m' });
        assert.deepEqual(fifteen.points.map((p) => [p.time, p.avg]), [[T0, 15]]);
        // Both ends inclusive; another stream's key is not mixed in.
        const bounded = await store.querySeries({ key: 'm-1', metric: 'usageKw', from: T0 + MINUTE, to: T0 + 2 * MINUTE, resolution: '1m' });
        assert.deepEqual(bounded.points.map((p) => p.time), [T0 + MINUTE, T0 + 2 * MINUTE]);
        assert.deepEqual((await store.querySeries({ stream: 'machines', key: 'm-1', metric: 'usageKw', from: T0, to: T0 + DAY, resolution: '1m' })).points, []);

        const day = { key: 'm-1', metric: 'usageKw', from: T0, to: T0 + 3 * DAY, resolution: 'auto' } as const;
        assert.equal((await store.querySeries(day)).resolution, '15m');
        assert.equal((await store.querySeries({ ...day, to: T0 + 3 * 3_600_000 })).resolution, '1m');
        assert.equal((await store.querySeries({ ...day, to: T0 + 3 * 3_600_000, maxPoints: 36 })).resolution, '5m');
        assert.equal((await store.querySeries({ ...day, to: T0 + 3 * 3_600_000, maxPoints: 12 })).resolution, '15m');
        assert.deepEqual((await store.querySeries({ ...day, to: T0 + 10 * MINUTE })).points.map((p) => p.avg), [12, 20, 30]);
      }));

    test('queryFleetSeries combines the device averages per window, by stream and site', () =>
      withStore(async (store) => {
        await writeFleet(store);
        const all = await store.queryFleetSeries({ stream: 'power', metric: 'usageKw', from: T0, to: T0 + 2 * MINUTE, resolution: '1m' });
        assert.deepEqual(all, {
          metric: 'usageKw',
          resolution: '1m',
          points: [
            { time: T0, devices: 3, sum: 119.5, avg: 119.5 / 3, min: 7.5, max: 100 },
            { time: T0 + MINUTE, devices: 2, sum: 121.5, avg: 60.75, min: 20, max: 101.5 },
            { time: T0 + 2 * MINUTE, devices: 1, sum: 30, avg: 30, min: 30, max: 30 },
          ],
        });
        // Without a stream, the machine's usageKw counts too.
        const everyStream = await store.queryFleetSeries({ metric: 'usageKw', from: T0, to: T0, resolution: '1m' });
        assert.deepEqual(everyStream.points.map((p) => [p.devices, p.sum]), [[4, 159.5]]);
        // Site s-2: m-2, and m-3 whose aggregates have no site but whose readings say s-2.
        const site = await store.queryFleetSeries({ metric: 'usageKw', from: T0, to: T0 + MINUTE, resolution: '1m', site: 's-2' });
        assert.deepEqual(site.points.map((p) => [p.time, p.devices, p.sum]), [[T0, 2, 107.5], [T0 + MINUTE, 1, 101.5]]);
        const five = await store.queryFleetSeries({ stream: 'power', metric: 'usageKw', from: T0, to: T0 + DAY, resolution: 'auto', maxPoints: 300 });
        assert.equal(five.resolution, '5m');
        assert.deepEqual(five.points, [{ time: T0, devices: 2, sum: 116.5, avg: 58.25, min: 16, max: 100.5 }]);
        // A newer revision replaces the device's value rather than adding to it.
        await store.upsertAggregates([windowOf('m-1', '1m', T0 + 2 * MINUTE, 40, { revision: 1 })]);
        const amended = await store.queryFleetSeries({ stream: 'power', metric: 'usageKw', from: T0 + 2 * MINUTE, to: T0 + 2 * MINUTE, resolution: '1m' });
        assert.deepEqual(amended.points.map((p) => [p.devices, p.sum]), [[1, 40]]);
      }));

    test('latestStatus gives the newest 1m window per device and its open alerts', () =>
      withStore(async (store) => {
        await writeFleet(store);
        await store.writeAlertEvents([
          alertEvent({ id: 'a-open', seq: 0, openedAt: T0 }),
          alertEvent({ id: 'a-ack', seq: 0, openedAt: T0, status: 'acknowledged', type: 'drop' }),
          alertEvent({ id: 'a-done', seq: 1, openedAt: T0, status: 'resolved', resolvedAt: T0 + MINUTE, type: 'outage' }),
          alertEvent({ id: 'a-m2', seq: 0, key: 'm-2', site: 's-2', openedAt: T0 }),
        ]);
        const power = await store.latestStatus({ stream: 'power' });
        assert.deepEqual(power, [
          { stream: 'power', key: 'm-1', site: 's-1', lastSeen: T0 + 3 * MINUTE, lastAvg: { usageKw: 30, voltage: 230 }, openAlerts: 2 },
          { stream: 'power', key: 'm-2', site: 's-2', lastSeen: T0 + 2 * MINUTE, lastAvg: { usageKw: 101.5, voltage: 230 }, openAlerts: 1 },
          { stream: 'power', key: 'm-3', site: null, lastSeen: T0 + MINUTE, lastAvg: { usageKw: 7.5, voltage: 230 }, openAlerts: 0 },
        ]);
        assert.deepEqual((await store.latestStatus({})).map((d) => `${d.stream}/${d.key}`), ['machines/machine-001', 'power/m-1', 'power/m-2', 'power/m-3']);
        assert.deepEqual((await store.latestStatus({ keys: ['m-2', 'nope'] })).map((d) => d.key), ['m-2']);
        assert.deepEqual((await store.latestStatus({ site: 's-1' })).map((d) => d.key), ['m-1']);
        assert.deepEqual(await store.latestStatus({ keys: [] }), []);
      }));

    test('listAlerts applies every filter, newest first, with a limit', () =>
      withStore(async (store) => {
        await store.writeAlertEvents([
          alertEvent({ id: 'a-1', seq: 0, openedAt: T0, severity: 'critical' }),
          alertEvent({ id: 'a-2', seq: 1, openedAt: T0 + MINUTE, status: 'resolved', resolvedAt: T0 + 5 * MINUTE, type: 'drop' }),
          alertEvent({ id: 'a-3', seq: 0, openedAt: T0 + 10 * MINUTE, key: 'm-2', site: 's-2', status: 'acknowledged', severity: 'info' }),
          alertEvent({ id: 'a-0', seq: 0, openedAt: T0 + 10 * MINUTE }),
        ]);
        const ids = async (filter: Parameters<Store['listAlerts']>[0]): Promise<string[]> => (await store.listAlerts(filter)).map((a) => a.id);
        assert.deepEqual(await ids({}), ['a-0', 'a-3', 'a-2', 'a-1']);
        assert.deepEqual(await ids({ limit: 2 }), ['a-0', 'a-3']);
        assert.deepEqual(await ids({ key: 'm-2' }), ['a-3']);
        assert.deepEqual(await ids({ site: 's-1', type: 'spike' }), ['a-0', 'a-1']);
        assert.deepEqual(await ids({ status: 'resolved' }), ['a-2']);
        assert.deepEqual(await ids({ status: ['open', 'acknowledged'] }), ['a-0', 'a-3', 'a-1']);
        assert.deepEqual(await ids({ severity: ['critical', 'info'] }), ['a-3', 'a-1']);
        // Open interval overlapping [from, to]: a-2 ended before from; a-0 and a-3 opened after to.
        assert.deepEqual(await ids({ from: T0 + 6 * MINUTE, to: T0 + 9 * MINUTE }), ['a-1']);
        assert.deepEqual(await ids({ stream: 'machines' }), []);
        const [resolved] = await store.listAlerts({ status: 'resolved' });
        assert.deepEqual(resolved, alertEvent({ id: 'a-2', seq: 1, openedAt: T0 + MINUTE, status: 'resolved', resolvedAt: T0 + 5 * MINUTE, type: 'drop' }).alert);
      }));

    test('alertTransitions come in seq order and a replayed older event never moves the alert back', () =>
      withStore(async (store) => {
        const open = alertEvent({ id: 'a-1', seq: 0, openedAt: T0 });
        const update = alertEvent({ id: 'a-1', seq: 1, openedAt: T0 });
        const resolve = alertEvent({ id: 'a-1', seq: 2, openedAt: T0, status: 'resolved', resolvedAt: T0 + 5 * MINUTE });
        await store.writeAlertEvents([update, resolve]);
        await store.writeAlertEvents([open]);
        await store.writeAlertEvents([update]);
        const transitions = await store.alertTransitions('a-1');
        assert.deepEqual(transitions, [open.transition, update.transition, resolve.transition]);
        assert.deepEqual(await store.listAlerts({}), [resolve.alert]);
        assert.deepEqual(await store.alertTransitions('unknown'), []);
      }));

    test('dataQuality counts every ops kind per device or per site, within a time range', () =>
      withStore(async (store) => {
        await writeFleet(store);
        await store.writeOps([
          opsEvent('late', 'power', 'late', { key: 'm-1', time: T0, offset: 1 }),
          opsEvent('late', 'power', 'late', { key: 'm-1', time: T0 + MINUTE, offset: 2 }),
          opsEvent('gap', 'power', 'silent', { key: 'm-2', time: T0 + 2 * MINUTE, missed: 3 }),
          opsEvent('too_late', 'power', 'too late', { key: 'm-3', time: T0, offset: 3 }),
          opsEvent('invalid', 'power', 'bad', { watermark: T0 + 3 * MINUTE, offset: 4 }),
          opsEvent('duplicate', 'machines', 'again', { key: 'machine-001', time: T0, offset: 1 }),
        ]);
        const zero = { invalid: 0, duplicate: 0, out_of_order: 0, late: 0, too_late: 0, gap: 0, clock_skew: 0, evicted: 0 };
        assert.deepEqual(await store.dataQuality({}), [
          { stream: 'machines', group: 'machine-001', counts: { ...zero, duplicate: 1 }, total: 1 },
          { stream: 'power', group: 'm-1', counts: { ...zero, late: 2 }, total: 2 },
          { stream: 'power', group: 'm-2', counts: { ...zero, gap: 1 }, total: 1 },
          { stream: 'power', group: 'm-3', counts: { ...zero, too_late: 1 }, total: 1 },
          { stream: 'power', group: null, counts: { ...zero, invalid: 1 }, total: 1 },
        ]);
        assert.deepEqual(await store.dataQuality({ stream: 'power', by: 'site' }), [
          { stream: 'power', group: 's-1', counts: { ...zero, late: 2 }, total: 2 },
          { stream: 'power', group: 's-2', counts: { ...zero, gap: 1, too_late: 1 }, total: 2 },
          { stream: 'power', group: null, counts: { ...zero, invalid: 1 }, total: 1 },
        ]);
        const ranged = await store.dataQuality({ stream: 'power', from: T0 + MINUTE, to: T0 + 2 * MINUTE });
        assert.deepEqual(ranged.map((row) => [row.group, row.total]), [['m-1', 1], ['m-2', 1]]);
      }));

    test('retention removes exactly the rows older than each cutoff, over many days, and never an open alert', () =>
      withStore(async (store) => {
        const now = T0 + 100 * DAY;
        // Readings on five days around the 14-day cutoff, two on the day the cutoff falls in.
        await store.writeReadings([
          reading('m-1', now - 20 * DAY, 1, { usageKw: 1 }),
          reading('m-1', now - 16 * DAY, 2, { usageKw: 1 }),
          reading('m-1', now - 14 * DAY - 1, 3, { usageKw: 1 }),
          reading('m-1', now - 14 * DAY, 4, { usageKw: 1 }),
          reading('m-1', now - 13 * DAY, 5, { usageKw: 1 }),
          reading('m-1', now, 6, { usageKw: 2 }),
        ]);
        await store.upsertAggregates([
          windowOf('m-1', '1m', now - 91 * DAY, 1),
          windowOf('m-1', '5m', now - 91 * DAY, 1),
          windowOf('m-1', '1m', now - 90 * DAY - MINUTE, 1),
          windowOf('m-1', '1m', now - 89 * DAY, 1),
        ]);
        await store.writeAlertEvents([
          alertEvent({ id: 'old-resolved', seq: 0, openedAt: now - 95 * DAY }),
          alertEvent({ id: 'old-resolved', seq: 1, openedAt: now - 95 * DAY, status: 'resolved', resolvedAt: now - 92 * DAY }),
          alertEvent({ id: 'old-open', seq: 0, openedAt: now - 95 * DAY }),
          alertEvent({ id: 'old-acknowledged', seq: 0, openedAt: now - 95 * DAY, status: 'acknowledged' }),
          alertEvent({ id: 'recent-resolved', seq: 1, openedAt: now - 95 * DAY, status: 'resolved', resolvedAt: now - 10 * DAY }),
        ]);
        await store.writeOps([
          opsEvent('late', 'power', 'late', { key: 'm-1', time: now - 31 * DAY, offset: 1 }),
          opsEvent('invalid', 'power', 'bad', { watermark: now - 31 * DAY, offset: 2 }),
          opsEvent('late', 'power', 'late', { key: 'm-1', time: now - 29 * DAY, offset: 3 }),
          // No time at all: kept, it cannot be aged.
          opsEvent('invalid', 'power', 'bad', { offset: 7 }),
        ]);
        assert.deepEqual(await store.applyRetention(now), { readings: 3, aggregates: 3, alerts: 1, ops: 2 });
        assert.deepEqual(await store.counts(), { readings: 3, aggregates: 1, alerts: 3, transitions: 3, ops: 2 });
        const raw = await store.querySeries({ key: 'm-1', metric: 'usageKw', from: 0, to: now, resolution: 'raw' });
        assert.deepEqual(raw.points.map((p) => p.time), [now - 14 * DAY, now - 13 * DAY, now]);
        assert.deepEqual((await store.listAlerts({})).map((a) => a.id).sort(), ['old-acknowledged', 'old-open', 'recent-resolved']);
        assert.deepEqual(await store.alertTransitions('old-resolved'), []);
        assert.deepEqual(await store.applyRetention(now), { readings: 0, aggregates: 0, alerts: 0, ops: 0 });
        assert.deepEqual(await store.applyRetention(now, { readingsMs: 12 * DAY }), { readings: 2, aggregates: 0, alerts: 0, ops: 0 });
        // Old days may be written again after their data was dropped.
        await store.writeReadings([reading('m-1', now - 20 * DAY, 1, { usageKw: 1 })]);
        assert.equal((await store.counts()).readings, 2);
      }));

    test('retention from the store options is the default for applyRetention', () =>
      withStore(
        async (store) => {
          await store.writeOps([opsEvent('late', 'power', 'late', { key: 'm-1', time: T0 - 2 * DAY, offset: 1 })]);
          await store.writeReadings([reading('m-1', T0 - 2 * DAY, 1, { usageKw: 1 })]);
          assert.deepEqual(await store.applyRetention(T0), { readings: 0, aggregates: 0, alerts: 0, ops: 1 });
        },
        { retention: { opsMs: DAY } },
      ));

    test('concurrent writers: two stores writing interleaved batches to the same data', { skip: target.concurrentWritersSkip ?? false }, async () => {
      const { store, openAnother } = await open();
      assert.ok(openAnother !== undefined, 'the target gives no second store; set concurrentWritersSkip');
      const other = openAnother();
      try {
        await other.ready();
        const batches = (writer: number): Promise<void>[] =>
          Array.from({ length: 6 }, (_, b) => {
            const s = writer === 0 ? store : other;
            // Overlapping rows: both writers write every device's windows and readings, over two days.
            const day = (b % 2) * DAY;
            return Promise.all([
              s.upsertAggregates(
                Array.from({ length: 20 }, (_, k) => windowOf(`m-${k}`, '1m', T0 + day + b * MINUTE, k + b + writer * 100, { revision: writer })),
              ),
              s.writeReadings(Array.from({ length: 20 }, (_, k) => reading(`m-${k}`, T0 + day + b * MINUTE, b, { usageKw: k }))),
              s.writeOps([opsEvent('late', 'power', 'late', { key: `m-${b}`, time: T0 + day + b * MINUTE, offset: b })]),
              s.writeAlertEvents([alertEvent({ id: `a-${b % 3}`, seq: writer * 6 + b, openedAt: T0 })]),
            ]).then(() => undefined);
          });
        await Promise.all([...batches(0), ...batches(1)]);
        assert.deepEqual(await store.counts(), { readings: 120, aggregates: 120, alerts: 3, transitions: 12, ops: 6 });
        // The highest revision (writer 1's) is what both stores read.
        const fleet = await other.queryFleetSeries({ stream: 'power', metric: 'usageKw', from: T0, to: T0 + 2 * DAY, resolution: '1m' });
        assert.equal(fleet.points.length, 6);
        assert.deepEqual(fleet.points[0], { time: T0, devices: 20, sum: 2190, avg: 109.5, min: 100, max: 119 });
        // Each alert holds its newest transition, whichever store wrote it.
        const alerts = await store.listAlerts({});
        assert.deepEqual(alerts.map((a) => [a.id, a.findings]).sort(), [['a-0', 10], ['a-1', 11], ['a-2', 12]]);
      } finally {
        await other.close();
        await store.close();
      }
    });

    test('bad input is refused with a GpError naming the field, and nothing is written', () =>
      withStore(async (store) => {
        await rejectsNaming(store.writeReadings([reading('m-1', T0, 1, {}), { ...reading('m-1', T0, 2, {}), key: '' }]), 'readings[1].key');
        await rejectsNaming(store.writeReadings([reading('m-1', Number.NaN, 1, {})]), 'readings[0].time');
        await rejectsNaming(store.upsertAggregates([{ ...windowOf('m-1', '1m', T0, 1), revision: Number.NaN }]), 'aggregates[0].revision');
        await rejectsNaming(store.upsertAggregates([{ ...windowOf('m-1', '1m', T0, 1), window: '' }]), 'aggregates[0].window');
        const event = alertEvent({ id: 'a-1', seq: 0, openedAt: T0 });
        await rejectsNaming(store.writeAlertEvents([{ ...event, transition: { ...event.transition, id: '' } }]), 'events[0].transition.id');
        await rejectsNaming(store.writeOps([{ ...opsEvent('late', 'power', 'late'), kind: 'nope' as 'late' }]), 'ops[0].kind');
        await rejectsNaming(store.querySeries({ key: 'm-1', metric: 'usageKw', from: T0, to: T0, resolution: '2m' as '1m' }), 'resolution');
        await rejectsNaming(store.querySeries({ key: 'm-1', metric: 'usageKw', from: T0 + 1, to: T0, resolution: '1m' }), 'from');
        await rejectsNaming(store.querySeries({ key: '', metric: 'usageKw', from: T0, to: T0, resolution: '1m' }), 'key');
        await rejectsNaming(store.querySeries({ key: 'm-1', metric: 'usageKw', from: T0, to: T0, resolution: 'auto', maxPoints: 0 }), 'maxPoints');
        await rejectsNaming(store.queryFleetSeries({ metric: 'usageKw', from: T0, to: T0, resolution: 'raw' as '1m' }), 'resolution');
        await rejectsNaming(store.listAlerts({ status: 'closed' as 'open' }), 'status');
        await rejectsNaming(store.listAlerts({ limit: 0 }), 'limit');
        await rejectsNaming(store.dataQuality({ by: 'device' as 'key' }), 'by');
        await rejectsNaming(store.applyRetention(Number.NaN), 'now');
        assert.deepEqual(await store.counts(), { readings: 0, aggregates: 0, alerts: 0, transitions: 0, ops: 0 });
      }));

    test('close is idempotent and later calls are refused', async () => {
      const { store } = await open();
      await store.writeReadings([reading('m-1', T0, 1, { usageKw: 1 })]);
      await Promise.all([store.close(), store.close()]);
      await store.close();
      await assert.rejects(store.counts(), (error: unknown) => error instanceof GpError && /closed/.test(error.message));
      await assert.rejects(store.ready(), GpError);
    });
  });
}
