import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { GpError, STAT_NAMES, STATS_PER_METRIC, opsEvent, type Aggregate, type AlertEvent, type AlertStatus, type Severity, type StatName } from '../../src/model/index.js';
import { createDuckDbStore, createStore, type ReadingRow, type Store } from '../../src/stores/index.js';

const T0 = Date.UTC(2025, 10, 7, 12, 0, 0); // 2025-11-07T12:00:00Z, a whole hour
const MINUTE = 60_000;
const DAY = 86_400_000;
const METRICS = ['usageKw', 'voltage'] as const;

const scratch = mkdtempSync(join(tmpdir(), 'gridpulse-stores-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
let fileCount = 0;
function freshPath(): string {
  fileCount += 1;
  return join(scratch, `nested-${fileCount}`, 'dir', 'gridpulse.duckdb');
}

type Stats = Partial<Record<StatName, number>>;

/** An aggregate whose stats are given per metric by name (missing stats are NaN, as the engine emits them). */
function aggregate(options: {
  key?: string;
  stream?: string;
  site?: string;
  window?: string;
  start: number;
  revision?: number;
  count?: number;
  metrics?: Partial<Record<(typeof METRICS)[number], Stats>>;
}): Aggregate {
  const windowName = options.window ?? '1m';
  const length = { '1m': MINUTE, '5m': 5 * MINUTE, '15m': 15 * MINUTE }[windowName] ?? MINUTE;
  const stats = new Float64Array(METRICS.length * STATS_PER_METRIC).fill(Number.NaN);
  METRICS.forEach((metric, m) => {
    const given = options.metrics?.[metric] ?? {};
    stats[m * STATS_PER_METRIC] = 0;
    for (const [name, value] of Object.entries(given)) stats[m * STATS_PER_METRIC + STAT_NAMES.indexOf(name as StatName)] = value;
  });
  return {
    stream: options.stream ?? 'power',
    key: options.key ?? 'm-1',
    site: options.site ?? 's-1',
    window: windowName,
    start: options.start,
    end: options.start + length,
    revision: options.revision ?? 0,
    count: options.count ?? 6,
    metrics: METRICS,
    stats,
    energyKwh: 0.2,
  };
}

/** A 1-metric-average shortcut: usageKw with count/min/max/avg/last all derived from one value. */
function simple(key: string, windowName: string, start: number, avg: number, extra: { site?: string; revision?: number } = {}): Aggregate {
  return aggregate({
    key,
    window: windowName,
    start,
    ...(extra.site === undefined ? {} : { site: extra.site }),
    ...(extra.revision === undefined ? {} : { revision: extra.revision }),
    metrics: { usageKw: { count: 6, min: avg - 1, max: avg + 1, avg, sum: avg * 6, stddev: 0.5, first: avg - 1, last: avg + 1 }, voltage: { count: 6, avg: 230 } },
  });
}

function reading(key: string, time: number, offset: number, values: Record<string, number | null>, site = 's-1'): ReadingRow {
  return { stream: 'power', key, site, time, offset, values };
}

function alertEvent(options: {
  id: string;
  seq: number;
  key?: string;
  site?: string;
  type?: string;
  status?: AlertStatus;
  severity?: Severity;
  openedAt: number;
  resolvedAt?: number;
  score?: number;
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
      score: options.score ?? 0.7,
      peakScore: 0.9,
      value: 42.5,
      findings: options.seq + 1,
      explain: `usageKw 42.5 kW rose 80% over baseline 23.6 kW (seq ${options.seq})`,
    },
    transition: {
      id: `${options.id}#${options.seq}`,
      alertId: options.id,
      seq: options.seq,
      kind: options.seq === 0 ? 'open' : status === 'resolved' ? 'resolve' : 'update',
      time,
      status,
      severity,
      score: options.score ?? 0.7,
      explain: `step ${options.seq}`,
    },
  };
}

async function rejectsWith(promise: Promise<unknown>, code: string, field: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof GpError, `expected a GpError, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.match(error.message, field);
    return true;
  });
}

for (const target of ['memory', 'file'] as const) {
  describe(`DuckDB store (${target})`, () => {
    const open = async (): Promise<Store> => {
      const store = createDuckDbStore({ path: target === 'memory' ? ':memory:' : freshPath() });
      await store.ready();
      return store;
    };

    test('round-trips every table and counts aggregates per window', async () => {
      const store = await open();
      try {
        await store.writeReadings([reading('m-1', T0, 1, { usageKw: 12.5, voltage: 230.1 }), reading('m-1', T0 + 10_000, 2, { usageKw: 13, voltage: null })]);
        await store.upsertAggregates([simple('m-1', '1m', T0, 12.75)]);
        await store.writeAlertEvents([alertEvent({ id: 'a-1', seq: 0, openedAt: T0 })]);
        await store.writeOps([opsEvent('late', 'power', 'arrived 3 min late', { key: 'm-1', time: T0, watermark: T0 + 180_000, offset: 7, lagMs: 180_000 })]);
        assert.deepEqual(await store.counts(), { readings: 2, aggregates: 1, alerts: 1, transitions: 1, ops: 1 });

        const raw = await store.querySeries({ key: 'm-1', metric: 'voltage', from: T0, to: T0 + MINUTE, resolution: 'raw' });
        assert.deepEqual(
          raw.points.map((p) => [p.time, p.count, p.last]),
          [
            [T0, 1, 230.1],
            [T0 + 10_000, 0, null],
          ],
        );
        const series = await store.querySeries({ key: 'm-1', metric: 'usageKw', from: T0, to: T0 + MINUTE, resolution: '1m' });
        assert.deepEqual(series.points, [{ time: T0, count: 6, min: 11.75, max: 13.75, avg: 12.75, last: 13.75 }]);

        const [alert] = await store.listAlerts({});
        assert.deepEqual(alert, alertEvent({ id: 'a-1', seq: 0, openedAt: T0 }).alert);
        assert.deepEqual(await store.alertTransitions('a-1'), [alertEvent({ id: 'a-1', seq: 0, openedAt: T0 }).transition]);
        const [quality] = await store.dataQuality({});
        assert.equal(quality?.group, 'm-1');
        assert.equal(quality?.counts.late, 1);
        assert.equal(quality?.total, 1);
      } finally {
        await store.close();
      }
    });

    test('writing the same batches twice changes nothing', async () => {
      const store = await open();
      try {
        const readings = [reading('m-1', T0, 1, { usageKw: 1 }), reading('m-1', T0, 2, { usageKw: 2 }), reading('m-2', T0, 1, { usageKw: 3 })];
        const aggregates = [simple('m-1', '1m', T0, 1), simple('m-1', '5m', T0, 1), simple('m-2', '1m', T0, 2)];
        const events = [alertEvent({ id: 'a-1', seq: 0, openedAt: T0 }), alertEvent({ id: 'a-1', seq: 1, openedAt: T0 })];
        const ops = [opsEvent('invalid', 'power', 'usageKw not a number', { key: 'm-1', offset: 3, field: 'usageKw', expected: 'number', got: '"abc"' })];
        for (let round = 0; round < 2; round++) {
          await store.writeReadings(readings);
          await store.upsertAggregates(aggregates);
          await store.writeAlertEvents(events);
          await store.writeOps(ops);
        }
        // Duplicates inside one batch are also stored once.
        await store.writeReadings([...readings, ...readings]);
        await store.writeOps([...ops, ...ops]);
        assert.deepEqual(await store.counts(), { readings: 3, aggregates: 3, alerts: 1, transitions: 2, ops: 1 });
      } finally {
        await store.close();
      }
    });

    test('a higher revision replaces an aggregate, a lower one written later does not', async () => {
      const store = await open();
      try {
        const query = { key: 'm-1', metric: 'usageKw', from: T0, to: T0, resolution: '1m' as const };
        await store.upsertAggregates([simple('m-1', '1m', T0, 10, { revision: 0 })]);
        await store.upsertAggregates([simple('m-1', '1m', T0, 20, { revision: 1 })]);
        assert.deepEqual((await store.querySeries(query)).points.map((p) => p.avg), [20]);
        await store.upsertAggregates([simple('m-1', '1m', T0, 10, { revision: 0 })]);
        assert.deepEqual((await store.querySeries(query)).points.map((p) => p.avg), [20]);
        // An equal revision replaces (a replay of the amendment); within one batch the highest revision wins.
        await store.upsertAggregates([simple('m-1', '1m', T0, 30, { revision: 2 }), simple('m-1', '1m', T0, 25, { revision: 1 })]);
        assert.deepEqual((await store.querySeries(query)).points.map((p) => p.avg), [30]);
        await store.upsertAggregates([simple('m-1', '1m', T0, 31, { revision: 2 })]);
        assert.deepEqual((await store.querySeries(query)).points.map((p) => p.avg), [31]);
        assert.equal((await store.counts()).aggregates, 1);
      } finally {
        await store.close();
      }
    });

    test('NaN and Infinity are stored as null', async () => {
      const store = await open();
      try {
        await store.upsertAggregates([
          aggregate({ start: T0, metrics: { usageKw: { count: 0 }, voltage: { count: 2, min: Number.NEGATIVE_INFINITY, avg: 230, max: Number.POSITIVE_INFINITY } } }),
        ]);
        await store.writeReadings([reading('m-1', T0, 1, { usageKw: Number.NaN, voltage: Number.POSITIVE_INFINITY })]);
        const usage = await store.querySeries({ key: 'm-1', metric: 'usageKw', from: T0, to: T0, resolution: '1m' });
        assert.deepEqual(usage.points, [{ time: T0, count: 0, min: null, max: null, avg: null, last: null }]);
        const voltage = await store.querySeries({ key: 'm-1', metric: 'voltage', from: T0, to: T0, resolution: '1m' });
        assert.deepEqual(voltage.points, [{ time: T0, count: 2, min: null, max: null, avg: 230, last: null }]);
        const raw = await store.querySeries({ key: 'm-1', metric: 'voltage', from: T0, to: T0, resolution: 'raw' });
        assert.deepEqual(raw.points, [{ time: T0, count: 0, min: null, max: null, avg: null, last: null }]);
      } finally {
        await store.close();
      }
    });

    test('querySeries reads raw, 1m, 5m and 15m, in time order, and auto picks by range', async () => {
      const store = await open();
      try {
        // Written newest first: the query orders by time.
        const oneMinute = [2, 1, 0].map((i) => simple('m-1', '1m', T0 + i * MINUTE, 10 + i));
        await store.upsertAggregates([...oneMinute, simple('m-1', '5m', T0, 50), simple('m-1', '15m', T0, 150), simple('m-2', '1m', T0, 99)]);
        await store.upsertAggregates([aggregate({ stream: 'other', key: 'm-1', start: T0, metrics: { usageKw: { count: 1, avg: -1 } } })]);
        await store.writeReadings([reading('m-1', T0 + 2000, 2, { usageKw: 7 }), reading('m-1', T0 + 1000, 1, { usageKw: 6 }), reading('m-1', T0 + 2 * MINUTE, 3, { usageKw: 8 })]);

        const base = { stream: 'power', key: 'm-1', metric: 'usageKw', from: T0, to: T0 + 10 * MINUTE };
        const raw = await store.querySeries({ ...base, resolution: 'raw', to: T0 + MINUTE });
        assert.equal(raw.resolution, 'raw');
        assert.deepEqual(
          raw.points.map((p) => [p.time, p.avg]),
          [
            [T0 + 1000, 6],
            [T0 + 2000, 7],
          ],
        );
        const minute = await store.querySeries({ ...base, resolution: '1m' });
        assert.deepEqual(
          minute.points.map((p) => [p.time, p.avg]),
          [
            [T0, 10],
            [T0 + MINUTE, 11],
            [T0 + 2 * MINUTE, 12],
          ],
        );
        assert.deepEqual((await store.querySeries({ ...base, resolution: '5m' })).points.map((p) => p.avg), [50]);
        assert.deepEqual((await store.querySeries({ ...base, resolution: '15m' })).points.map((p) => p.avg), [150]);
        // Without a stream, every stream's windows of that key come back.
        const { stream: _stream, ...anyStream } = base;
        assert.deepEqual((await store.querySeries({ ...anyStream, resolution: '1m' })).points.map((p) => p.avg), [-1, 10, 11, 12]);

        const short = await store.querySeries({ ...base, to: T0 + 2 * 3_600_000, resolution: 'auto' });
        assert.equal(short.resolution, '1m');
        assert.equal(short.points.length, 3);
        const long = await store.querySeries({ ...base, from: T0 - 30 * DAY, to: T0 + DAY, resolution: 'auto' });
        assert.equal(long.resolution, '15m');
        assert.deepEqual(long.points.map((p) => p.avg), [150]);
        // 600 minutes is too many 1m points for the default 500, and few enough 5m ones.
        assert.equal((await store.querySeries({ ...base, to: T0 + 600 * MINUTE, resolution: 'auto' })).resolution, '5m');
        assert.equal((await store.querySeries({ ...base, to: T0 + 600 * MINUTE, resolution: 'auto', maxPoints: 1000 })).resolution, '1m');
      } finally {
        await store.close();
      }
    });

    test('querySeries names the field of a bad query', async () => {
      const store = await open();
      try {
        await rejectsWith(store.querySeries({ key: 'm-1', metric: 'usageKw', from: T0 + 1, to: T0, resolution: '1m' }), 'GP_INPUT_INVALID', /^from:/);
        await rejectsWith(
          store.querySeries({ key: 'm-1', metric: 'usageKw', from: T0, to: T0, resolution: '2m' as unknown as '1m' }),
          'GP_INPUT_INVALID',
          /^resolution: expected one of raw, 1m, 5m, 15m, auto, got "2m"/,
        );
        await rejectsWith(store.querySeries({ key: '', metric: 'usageKw', from: T0, to: T0, resolution: '1m' }), 'GP_INPUT_INVALID', /^key:/);
        await rejectsWith(store.writeReadings([reading('m-1', Number.NaN, 1, {})]), 'GP_INPUT_INVALID', /^readings\[0\]\.time: expected epoch milliseconds/);
      } finally {
        await store.close();
      }
    });

    test('latestStatus gives the newest 1m window per device and its open alerts', async () => {
      const store = await open();
      try {
        await store.upsertAggregates([
          simple('m-1', '1m', T0, 10),
          simple('m-1', '1m', T0 + MINUTE, 11),
          simple('m-1', '5m', T0 + 5 * MINUTE, 99), // not a 1m window: ignored
          simple('m-2', '1m', T0, 20, { site: 's-2' }),
        ]);
        await store.writeAlertEvents([
          alertEvent({ id: 'a-1', seq: 0, key: 'm-1', openedAt: T0 }),
          alertEvent({ id: 'a-2', seq: 0, key: 'm-1', openedAt: T0, status: 'acknowledged' }),
          alertEvent({ id: 'a-3', seq: 0, key: 'm-1', openedAt: T0, status: 'resolved', resolvedAt: T0 + MINUTE }),
        ]);
        const all = await store.latestStatus({});
        assert.deepEqual(all, [
          { stream: 'power', key: 'm-1', site: 's-1', lastSeen: T0 + 2 * MINUTE, lastAvg: { usageKw: 11, voltage: 230 }, openAlerts: 2 },
          { stream: 'power', key: 'm-2', site: 's-2', lastSeen: T0 + MINUTE, lastAvg: { usageKw: 20, voltage: 230 }, openAlerts: 0 },
        ]);
        assert.deepEqual((await store.latestStatus({ site: 's-2' })).map((d) => d.key), ['m-2']);
        assert.deepEqual((await store.latestStatus({ keys: ['m-1'] })).map((d) => d.key), ['m-1']);
        assert.deepEqual(await store.latestStatus({ keys: [] }), []);
        assert.deepEqual(await store.latestStatus({ stream: 'machines' }), []);
      } finally {
        await store.close();
      }
    });

    test('listAlerts applies every filter, newest first, with a limit', async () => {
      const store = await open();
      try {
        await store.writeAlertEvents([
          alertEvent({ id: 'a-old', seq: 0, key: 'm-1', type: 'spike', severity: 'info', openedAt: T0, status: 'resolved', resolvedAt: T0 + 10 * MINUTE }),
          alertEvent({ id: 'a-mid', seq: 0, key: 'm-2', site: 's-2', type: 'drop', severity: 'warning', openedAt: T0 + 20 * MINUTE, status: 'acknowledged' }),
          alertEvent({ id: 'a-new', seq: 0, key: 'm-1', type: 'outage', severity: 'critical', openedAt: T0 + 40 * MINUTE }),
        ]);
        const ids = async (filter: Parameters<Store['listAlerts']>[0]): Promise<string[]> => (await store.listAlerts(filter)).map((a) => a.id);
        assert.deepEqual(await ids({}), ['a-new', 'a-mid', 'a-old']);
        assert.deepEqual(await ids({ stream: 'power' }), ['a-new', 'a-mid', 'a-old']);
        assert.deepEqual(await ids({ stream: 'machines' }), []);
        assert.deepEqual(await ids({ key: 'm-1' }), ['a-new', 'a-old']);
        assert.deepEqual(await ids({ site: 's-2' }), ['a-mid']);
        assert.deepEqual(await ids({ type: 'drop' }), ['a-mid']);
        assert.deepEqual(await ids({ status: 'open' }), ['a-new']);
        assert.deepEqual(await ids({ status: ['open', 'acknowledged'] }), ['a-new', 'a-mid']);
        assert.deepEqual(await ids({ severity: 'critical' }), ['a-new']);
        assert.deepEqual(await ids({ severity: ['info', 'warning'] }), ['a-mid', 'a-old']);
        // Overlap with [from, to]: a-old covers T0..T0+10m, the others run on (no resolvedAt).
        assert.deepEqual(await ids({ from: T0 + 15 * MINUTE }), ['a-new', 'a-mid']);
        assert.deepEqual(await ids({ to: T0 + 5 * MINUTE }), ['a-old']);
        assert.deepEqual(await ids({ from: T0 + 5 * MINUTE, to: T0 + 30 * MINUTE }), ['a-mid', 'a-old']);
        assert.deepEqual(await ids({ from: T0 + 10 * MINUTE, to: T0 + 10 * MINUTE }), ['a-old']);
        assert.deepEqual(await ids({ limit: 2 }), ['a-new', 'a-mid']);
        assert.deepEqual(await ids({ key: 'm-1', status: 'resolved', severity: 'info' }), ['a-old']);
        await rejectsWith(store.listAlerts({ status: 'closed' as AlertStatus }), 'GP_INPUT_INVALID', /^status: expected one or more of open, acknowledged, resolved, got "closed"/);
        await rejectsWith(store.listAlerts({ limit: 0 }), 'GP_INPUT_INVALID', /^limit:/);
      } finally {
        await store.close();
      }
    });

    test('alertTransitions come in seq order and a replayed older event never moves the alert back', async () => {
      const store = await open();
      try {
        const opened = alertEvent({ id: 'a-1', seq: 0, openedAt: T0 });
        const updated = alertEvent({ id: 'a-1', seq: 1, openedAt: T0, score: 0.8 });
        const resolved = alertEvent({ id: 'a-1', seq: 2, openedAt: T0, status: 'resolved', resolvedAt: T0 + 5 * MINUTE });
        await store.writeAlertEvents([resolved, opened]);
        await store.writeAlertEvents([updated]);
        assert.deepEqual(
          (await store.alertTransitions('a-1')).map((t) => [t.seq, t.kind, t.status]),
          [
            [0, 'open', 'open'],
            [1, 'update', 'open'],
            [2, 'resolve', 'resolved'],
          ],
        );
        const [alert] = await store.listAlerts({ key: 'm-1' });
        assert.equal(alert?.status, 'resolved');
        assert.equal(alert?.resolvedAt, T0 + 5 * MINUTE);
        assert.deepEqual(await store.alertTransitions('unknown'), []);
      } finally {
        await store.close();
      }
    });

    test('dataQuality counts every ops kind per device or per site', async () => {
      const store = await open();
      try {
        // The site of m-1 and m-2 is only known from their aggregates and readings.
        await store.upsertAggregates([simple('m-1', '1m', T0, 1, { site: 's-1' })]);
        await store.writeReadings([reading('m-2', T0, 1, { usageKw: 1 }, 's-1'), reading('m-3', T0, 1, { usageKw: 1 }, 's-2')]);
        await store.writeOps([
          opsEvent('late', 'power', 'late', { key: 'm-1', time: T0, offset: 1 }),
          opsEvent('too_late', 'power', 'too late', { key: 'm-1', time: T0, offset: 2 }),
          opsEvent('gap', 'power', 'silent for 3 intervals', { key: 'm-2', time: T0 + MINUTE, missed: 3 }),
          opsEvent('duplicate', 'power', 'seen before', { key: 'm-3', time: T0, offset: 9 }),
          opsEvent('invalid', 'power', 'no meterId', { offset: 10, watermark: T0, field: 'meterId', expected: 'string', got: 'undefined' }),
          opsEvent('late', 'power', 'late', { key: 'm-1', time: T0 + DAY, offset: 3 }),
        ]);
        const byKey = await store.dataQuality({ to: T0 + MINUTE });
        assert.deepEqual(
          byKey.map((row) => [row.group, row.total]),
          [
            ['m-1', 2],
            ['m-2', 1],
            ['m-3', 1],
            [null, 1],
          ],
        );
        assert.deepEqual(byKey[0]?.counts, { invalid: 0, duplicate: 0, out_of_order: 0, late: 1, too_late: 1, gap: 0, clock_skew: 0, evicted: 0 });
        const bySite = await store.dataQuality({ by: 'site', to: T0 + MINUTE });
        assert.deepEqual(
          bySite.map((row) => [row.stream, row.group, row.total, row.counts.gap, row.counts.duplicate, row.counts.invalid]),
          [
            ['power', 's-1', 3, 1, 0, 0],
            ['power', 's-2', 1, 0, 1, 0],
            ['power', null, 1, 0, 0, 1],
          ],
        );
        assert.equal((await store.dataQuality({ from: T0 + DAY }))[0]?.counts.late, 1);
        assert.deepEqual(await store.dataQuality({ stream: 'machines' }), []);
      } finally {
        await store.close();
      }
    });

    test('retention deletes exactly the old rows and never an open alert', async () => {
      const store = await open();
      try {
        const now = T0 + 100 * DAY;
        await store.writeReadings([reading('m-1', now - 15 * DAY, 1, { usageKw: 1 }), reading('m-1', now - 13 * DAY, 2, { usageKw: 1 })]);
        await store.upsertAggregates([simple('m-1', '1m', now - 91 * DAY, 1), simple('m-1', '5m', now - 91 * DAY, 1), simple('m-1', '1m', now - 89 * DAY, 1)]);
        await store.writeAlertEvents([
          alertEvent({ id: 'old-resolved', seq: 1, openedAt: now - 95 * DAY, status: 'resolved', resolvedAt: now - 92 * DAY }),
          alertEvent({ id: 'old-resolved', seq: 0, openedAt: now - 95 * DAY }),
          alertEvent({ id: 'old-open', seq: 0, openedAt: now - 95 * DAY }),
          alertEvent({ id: 'old-acknowledged', seq: 0, openedAt: now - 95 * DAY, status: 'acknowledged' }),
          alertEvent({ id: 'recent-resolved', seq: 1, openedAt: now - 95 * DAY, status: 'resolved', resolvedAt: now - 10 * DAY }),
        ]);
        await store.writeOps([
          opsEvent('late', 'power', 'late', { key: 'm-1', time: now - 31 * DAY, offset: 1 }),
          opsEvent('invalid', 'power', 'bad', { watermark: now - 31 * DAY, offset: 2 }),
          opsEvent('late', 'power', 'late', { key: 'm-1', time: now - 29 * DAY, offset: 3 }),
        ]);
        const deleted = await store.applyRetention(now);
        assert.deepEqual(deleted, { readings: 1, aggregates: 2, alerts: 1, ops: 2 });
        assert.deepEqual(await store.counts(), { readings: 1, aggregates: 1, alerts: 3, transitions: 3, ops: 1 });
        assert.deepEqual((await store.listAlerts({})).map((a) => a.id).sort(), ['old-acknowledged', 'old-open', 'recent-resolved']);
        assert.deepEqual(await store.alertTransitions('old-resolved'), []);
        // A second pass finds nothing more; a shorter override for one table applies to that table only.
        assert.deepEqual(await store.applyRetention(now), { readings: 0, aggregates: 0, alerts: 0, ops: 0 });
        assert.deepEqual(await store.applyRetention(now, { readingsMs: 12 * DAY }), { readings: 1, aggregates: 0, alerts: 0, ops: 0 });
      } finally {
        await store.close();
      }
    });

    test('retention from the store options is the default for applyRetention', async () => {
      const store = createDuckDbStore({ path: target === 'memory' ? ':memory:' : freshPath(), retention: { opsMs: DAY } });
      try {
        await store.writeOps([opsEvent('late', 'power', 'late', { key: 'm-1', time: T0 - 2 * DAY, offset: 1 })]);
        assert.equal((await store.applyRetention(T0)).ops, 1);
        assert.throws(() => createDuckDbStore({ path: ':memory:', retention: { opsMs: -1 } }), /retention\.opsMs: expected a duration in milliseconds/);
      } finally {
        await store.close();
      }
    });

    test('close is idempotent and later calls are refused', async () => {
      const store = await open();
      await store.close();
      await store.close();
      await assert.rejects(store.counts(), /closed/);
      await assert.rejects(store.upsertAggregates([simple('m-1', '1m', T0, 1)]), /closed/);
    });
  });
}

describe('DuckDB store file', () => {
  test('parent directories are created and the data is there after reopening', async () => {
    const path = freshPath();
    const first = createDuckDbStore({ path });
    await first.upsertAggregates([simple('m-1', '1m', T0, 10)]);
    await first.writeAlertEvents([alertEvent({ id: 'a-1', seq: 0, openedAt: T0 })]);
    await first.writeReadings([reading('m-1', T0, 1, { usageKw: 3 })]);
    await first.writeOps([opsEvent('gap', 'power', 'silent', { key: 'm-1', time: T0, missed: 1 })]);
    // Closing while a write is still queued: the write completes first.
    const pending = first.upsertAggregates([simple('m-1', '1m', T0 + MINUTE, 11)]);
    await first.close();
    await pending;
    assert.ok(existsSync(path));

    const second = createDuckDbStore({ path });
    try {
      assert.deepEqual(await second.counts(), { readings: 1, aggregates: 2, alerts: 1, transitions: 1, ops: 1 });
      const series = await second.querySeries({ key: 'm-1', metric: 'usageKw', from: T0, to: T0 + MINUTE, resolution: '1m' });
      assert.deepEqual(series.points.map((p) => p.avg), [10, 11]);
      // Writing after reopening still upserts against the stored rows.
      await second.upsertAggregates([simple('m-1', '1m', T0, 12, { revision: 1 })]);
      assert.equal((await second.counts()).aggregates, 2);
    } finally {
      await second.close();
    }
  });
});

/** Opens the file from another process, as a second gridpulse or a DuckDB shell would. */
async function countAlertsFromAnotherProcess(path: string): Promise<string> {
  const script = `
    import { DuckDBInstance } from '@duckdb/node-api';
    try {
      const instance = await DuckDBInstance.create(process.argv[1]);
      const connection = await instance.connect();
      const reader = await connection.runAndReadAll('SELECT count(*) FROM alerts');
      console.log('alerts ' + String(reader.getRows()[0][0]));
      connection.closeSync();
      instance.closeSync();
    } catch (error) {
      console.log('failed: ' + error.message);
    }`;
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script, path], { cwd: root });
  return stdout.trim();
}

describe('DuckDB store file lock', () => {
  test('another process can open the file once the store is closed', async () => {
    const path = freshPath();
    const store = createDuckDbStore({ path });
    await store.writeAlertEvents([alertEvent({ id: 'a-1', seq: 0, openedAt: T0 })]);
    assert.match(await countAlertsFromAnotherProcess(path), /^failed: .*lock/i);
    await store.close();
    assert.equal(await countAlertsFromAnotherProcess(path), 'alerts 1');
  });
});

describe('createStore', () => {
  test('opens DuckDB from duckdb:<path> and duckdb::memory:', async () => {
    const memory = createStore('duckdb::memory:');
    assert.equal(memory.kind, 'duckdb');
    await memory.ready();
    await memory.close();

    const path = freshPath();
    const file = createStore(`duckdb:${path}`, { retention: { readingsMs: DAY } });
    await file.writeReadings([reading('m-1', T0 - 2 * DAY, 1, { usageKw: 1 })]);
    assert.equal((await file.applyRetention(T0)).readings, 1);
    await file.close();
    assert.ok(existsSync(path));
  });

  test('refuses other schemes, naming what this build supports', () => {
    for (const url of ['mysql://gp:secret@localhost:3306/x', 'timescaledb://gp:secret@localhost/x', 'sqlite:x.db', 'data.duckdb', 'duckdb:']) {
      assert.throws(
        () => createStore(url),
        (error: unknown) => {
          assert.ok(error instanceof GpError);
          assert.equal(error.code, 'GP_STORE_URL_INVALID');
          assert.match(error.message, /duckdb:<path>/);
          assert.doesNotMatch(error.message, /secret/);
          return true;
        },
        url,
      );
    }
    // The server stores open lazily: nothing connects until ready().
    assert.equal(createStore('postgres://localhost/gridpulse').kind, 'postgres');
    assert.equal(createStore('clickhouse://gp:secret@localhost:8123/gridpulse').kind, 'clickhouse');
    assert.equal(createStore('elasticsearch://localhost:9200').kind, 'elasticsearch');
  });
});
