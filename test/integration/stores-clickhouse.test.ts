// The ClickHouse store against the server on 127.0.0.1:8123 (scripts/servers.sh start clickhouse; Debian's
// 18.16 on these machines): the Store conformance suite, then what only ClickHouse has (migrations, day
// partitions in system.parts, ReplacingMergeTree folding after merges, retention by partition and mutation,
// literal escaping). Each test gets its own database, named after this run; all are dropped afterwards.
// Without the server every test fails with the message saying how to start it.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient, ClickHouseLogLevel, type ClickHouseClient } from '@clickhouse/client';
import { GpError, opsEvent } from '../../src/model/index.js';
import type { Store } from '../../src/stores/index.js';
import { createClickHouseStore } from '../../src/stores/clickhouse-store.js';
import { CLICKHOUSE_MIGRATIONS, sqlLiteral, supportsTtl } from '../../src/stores/clickhouse-schema.js';
import { DAY, MINUTE, T0, alertEvent, reading, storeConformance, windowOf } from '../helpers/store-conformance.js';
import { RETENTION_DAYS, retentionOverTenDays } from '../helpers/retention-days.js';

const SERVER = 'http://127.0.0.1:8123';
const UNREACHABLE = 'ClickHouse not reachable on 127.0.0.1:8123 — start it with scripts/servers.sh start clickhouse';
const RUN = `gp_test_${process.pid}_${Date.now()}`;

let adminClient: ClickHouseClient | undefined;
let reachable: Promise<void> | undefined;
const databases: string[] = [];

function admin(): ClickHouseClient {
  adminClient ??= createClient({ url: SERVER, log: { level: ClickHouseLogLevel.OFF } });
  return adminClient;
}

function serverReady(): Promise<void> {
  reachable ??= admin()
    .query({ query: 'SELECT 1', format: 'JSONEachRow' })
    .then(
      (result) => result.json().then(() => undefined),
      (cause: unknown) => {
        throw new Error(UNREACHABLE, { cause });
      },
    );
  return reachable;
}

async function freshDatabase(): Promise<string> {
  await serverReady();
  const name = `${RUN}_${databases.length + 1}`;
  databases.push(name);
  return name;
}

async function query<T extends Record<string, unknown>>(sql: string): Promise<T[]> {
  await serverReady();
  return (await admin().query({ query: sql, format: 'JSONEachRow' })).json<T>();
}

async function command(sql: string): Promise<void> {
  await admin().command({ query: sql });
}

after(async () => {
  if (adminClient === undefined) return;
  if (await (reachable ?? Promise.reject(new Error('never connected'))).then(() => true, () => false)) {
    for (const name of databases) await command(`DROP DATABASE IF EXISTS ${name}`);
  }
  await adminClient.close();
});

storeConformance({
  name: 'ClickHouse',
  open: async ({ retention }) => {
    const database = await freshDatabase();
    const options = { url: `clickhouse://127.0.0.1:8123/${database}`, ...(retention === undefined ? {} : { retention }) };
    return { store: createClickHouseStore(options), openAnother: () => createClickHouseStore(options) };
  },
});

async function partitions(database: string, table: string): Promise<string[]> {
  const rows = await query<{ partition: string }>(
    `SELECT DISTINCT partition FROM system.parts WHERE database = '${database}' AND table = '${table}' AND active ORDER BY partition`,
  );
  return rows.map((row) => row.partition);
}

/** Rows as stored, before ClickHouse folds them (no FINAL). */
async function storedRows(database: string, table: string): Promise<number> {
  const [row] = await query<{ n: string }>(`SELECT count() AS n FROM ${database}.${table}`);
  return Number(row?.n);
}

async function withStore(body: (store: ReturnType<typeof createClickHouseStore>, database: string) => Promise<void>): Promise<void> {
  const database = await freshDatabase();
  const store = createClickHouseStore({ url: `clickhouse://127.0.0.1:8123/${database}` });
  try {
    await store.ready();
    await body(store, database);
  } finally {
    await store.close();
  }
}

describe('ClickHouse store', () => {
  test('ready creates the database, applies the migrations once, and a second start changes nothing', async () => {
    const database = await freshDatabase();
    const url = `clickhouse://127.0.0.1:8123/${database}`;
    const first = createClickHouseStore({ url });
    const second = createClickHouseStore({ url });
    try {
      // Two stores starting at once on a database that does not exist yet.
      await Promise.all([first.ready(), second.ready()]);
      const applied = await query<{ version: number; name: string; applied_at: string }>(
        `SELECT version, name, applied_at FROM ${database}.schema_migrations FINAL ORDER BY version`,
      );
      assert.deepEqual(applied.map((row) => row.version), CLICKHOUSE_MIGRATIONS.map((migration) => migration.version));
      const third = createClickHouseStore({ url });
      await third.ready();
      await third.ready();
      await third.close();
      assert.deepEqual(await query(`SELECT version, name, applied_at FROM ${database}.schema_migrations FINAL ORDER BY version`), applied);
      const tables = await query<{ name: string; engine: string }>(`SELECT name, engine FROM system.tables WHERE database = '${database}' ORDER BY name`);
      assert.deepEqual(tables, [
        { name: 'aggregates', engine: 'ReplacingMergeTree' },
        { name: 'alert_transitions', engine: 'ReplacingMergeTree' },
        { name: 'alerts', engine: 'ReplacingMergeTree' },
        { name: 'devices', engine: 'ReplacingMergeTree' },
        { name: 'ops', engine: 'ReplacingMergeTree' },
        { name: 'readings', engine: 'ReplacingMergeTree' },
        { name: 'schema_migrations', engine: 'ReplacingMergeTree' },
      ]);
      assert.equal(first.serverVersion, (await query<{ v: string }>('SELECT version() AS v'))[0]?.v);
    } finally {
      await first.close();
      await second.close();
    }
  });

  test('on a schedule driven by a fake clock, each day the oldest day partition goes and the new one stays', async () => {
    const database = await freshDatabase();
    const store = createClickHouseStore({ url: `clickhouse://127.0.0.1:8123/${database}`, retention: RETENTION_DAYS });
    try {
      await store.ready();
      await retentionOverTenDays(store, (table) => partitions(database, table), (_table, day) => day);
    } finally {
      await store.close();
    }
  });

  test('rows go to one partition per UTC day, listed in system.parts', () =>
    withStore(async (store, database) => {
      await store.writeReadings([
        reading('m-1', Date.UTC(2025, 10, 4, 0, 0, 0), 1, { usageKw: 1 }),
        reading('m-1', Date.UTC(2025, 10, 4, 23, 59, 59, 999), 2, { usageKw: 1 }),
        reading('m-1', Date.UTC(2025, 10, 5, 0, 0, 0), 3, { usageKw: 1 }),
        reading('m-2', Date.UTC(2025, 10, 20, 12), 4, { usageKw: 1 }),
      ]);
      await store.upsertAggregates([windowOf('m-1', '1m', T0, 5), windowOf('m-1', '15m', T0 + DAY, 5)]);
      await store.writeOps([
        opsEvent('late', 'power', 'late', { key: 'm-1', time: T0, offset: 1 }),
        opsEvent('invalid', 'power', 'no time at all', { offset: 2 }),
      ]);
      assert.deepEqual(await partitions(database, 'readings'), ['20251104', '20251105', '20251120']);
      assert.deepEqual(await partitions(database, 'aggregates'), ['20251107', '20251108']);
      // Ops events without a time have a partition of their own, never dropped by retention.
      assert.deepEqual(await partitions(database, 'ops'), ['0', '20251107']);
    }));

  test('replaying the same batches after the tables were merged (OPTIMIZE FINAL) still leaves one row each', () =>
    withStore(async (store, database) => {
      const readings = [reading('m-1', T0, 1, { usageKw: 10 }), reading('m-1', T0 + 20_000, 2, { usageKw: 12 })];
      const aggregates = [windowOf('m-1', '1m', T0, 11), windowOf('m-2', '1m', T0, 20, { site: 's-2' })];
      const events = [alertEvent({ id: 'a-1', seq: 0, openedAt: T0 }), alertEvent({ id: 'a-1', seq: 1, openedAt: T0 })];
      const ops = [opsEvent('late', 'power', 'late', { key: 'm-1', time: T0, offset: 4 })];
      const writeAll = async (): Promise<void> => {
        await store.writeReadings(readings);
        await store.upsertAggregates(aggregates);
        await store.writeAlertEvents(events);
        await store.writeOps(ops);
      };
      const tables = ['readings', 'aggregates', 'alerts', 'alert_transitions', 'ops', 'devices'];
      const merge = async (): Promise<void> => {
        for (const table of tables) await command(`OPTIMIZE TABLE ${database}.${table} FINAL`);
      };
      await writeAll();
      await merge();
      const before = await store.counts();
      assert.deepEqual(before, { readings: 2, aggregates: 2, alerts: 1, transitions: 2, ops: 1 });
      await writeAll();
      // Before any merge the replayed rows are stored twice, and FINAL folds them when reading.
      assert.equal(await storedRows(database, 'readings'), 4);
      assert.deepEqual(await store.counts(), before);
      await merge();
      const stored = await Promise.all(tables.map((table) => storedRows(database, table)));
      // aggregates: two windows of two metrics each; devices: m-1 and m-2.
      assert.deepEqual(stored, [2, 4, 1, 2, 1, 2]);
      // A lower revision written after the merge does not replace; an equal one does.
      await store.upsertAggregates([windowOf('m-1', '1m', T0, 99, { revision: 0 })]);
      const series = async (): Promise<(number | null)[]> =>
        (await store.querySeries({ key: 'm-1', metric: 'usageKw', from: T0, to: T0, resolution: '1m' })).points.map((p) => p.avg);
      assert.deepEqual(await series(), [99]);
      await store.upsertAggregates([windowOf('m-1', '1m', T0, 5, { revision: 2 })]);
      await merge();
      await store.upsertAggregates([windowOf('m-1', '1m', T0, 4, { revision: 1 })]);
      assert.deepEqual(await series(), [5]);
      await merge();
      assert.deepEqual(await series(), [5]);
      // The first write of a reading is the one kept, before and after a merge.
      await store.writeReadings([reading('m-1', T0, 1, { usageKw: 77 })]);
      const raw = async (): Promise<(number | null)[]> =>
        (await store.querySeries({ key: 'm-1', metric: 'usageKw', from: T0, to: T0, resolution: 'raw' })).points.map((p) => p.avg);
      assert.deepEqual(await raw(), [10]);
      await merge();
      assert.deepEqual(await raw(), [10]);
    }));

  test('a newer alert state written in a later insert hides the older one before any merge, in every filter', () =>
    withStore(async (store) => {
      await store.writeAlertEvents([alertEvent({ id: 'a-1', seq: 0, openedAt: T0 })]);
      await store.writeAlertEvents([alertEvent({ id: 'a-1', seq: 1, openedAt: T0, status: 'resolved', resolvedAt: T0 + MINUTE })]);
      await store.upsertAggregates([windowOf('m-1', '1m', T0, 1)]);
      assert.deepEqual((await store.listAlerts({ status: 'open' })).map((a) => a.id), []);
      assert.deepEqual((await store.listAlerts({ status: 'resolved' })).map((a) => a.id), ['a-1']);
      assert.equal((await store.latestStatus({}))[0]?.openAlerts, 0);
    }));

  test('retention drops whole old day partitions, deletes the rows of the day the cutoff falls in, and leaves no mutation pending', () =>
    withStore(async (store, database) => {
      const now = Date.UTC(2025, 10, 20, 12);
      await store.writeReadings([
        reading('m-1', now - 16 * DAY, 1, { usageKw: 1 }),
        reading('m-1', now - 15 * DAY, 2, { usageKw: 1 }),
        reading('m-1', now - 14 * DAY - 1, 3, { usageKw: 1 }),
        reading('m-1', now - 14 * DAY, 4, { usageKw: 1 }),
        reading('m-1', now, 5, { usageKw: 1 }),
      ]);
      await store.writeOps([
        opsEvent('late', 'power', 'late', { key: 'm-1', time: now - 40 * DAY, offset: 1 }),
        opsEvent('invalid', 'power', 'no time at all', { offset: 2 }),
      ]);
      assert.deepEqual(await partitions(database, 'readings'), ['20251104', '20251105', '20251106', '20251120']);
      assert.deepEqual(await store.applyRetention(now), { readings: 3, aggregates: 0, alerts: 0, ops: 1 });
      // 4 and 5 November lie wholly before the cutoff (6 November, 12:00): dropped. The 6th keeps its noon row.
      assert.deepEqual(await partitions(database, 'readings'), ['20251106', '20251120']);
      assert.deepEqual(await query(`SELECT time_ms FROM ${database}.readings WHERE time_ms < ${now} ORDER BY time_ms`), [
        { time_ms: String(now - 14 * DAY) },
      ]);
      assert.deepEqual(await partitions(database, 'ops'), ['0']);
      const pending = await query<{ n: string }>(`SELECT count() AS n FROM system.mutations WHERE database = '${database}' AND is_done = 0`);
      assert.deepEqual(pending, [{ n: '0' }]);
      // The deleted rows are gone from storage, not only hidden from queries.
      assert.equal(await storedRows(database, 'readings'), 2);
    }));

  test('times outside DateTime\'s range keep their value and go to the first or last day; retention keeps the far future', () =>
    withStore(async (store, database) => {
      const future = Date.UTC(2200, 0, 1);
      await store.writeReadings([reading('m-1', -5_000, 1, { usageKw: 1 }), reading('m-1', future, 2, { usageKw: 2 }), reading('m-1', T0, 3, { usageKw: 3 })]);
      assert.deepEqual(await partitions(database, 'readings'), ['19700101', '20251107', '20991231']);
      const all = await store.querySeries({ key: 'm-1', metric: 'usageKw', from: -DAY, to: future, resolution: 'raw' });
      assert.deepEqual(all.points.map((p) => [p.time, p.avg]), [[-5_000, 1], [T0, 3], [future, 2]]);
      assert.deepEqual(await store.applyRetention(T0 + DAY, { readingsMs: DAY }), { readings: 1, aggregates: 0, alerts: 0, ops: 0 });
      const kept = await store.querySeries({ key: 'm-1', metric: 'usageKw', from: -DAY, to: future, resolution: 'raw' });
      assert.deepEqual(kept.points.map((p) => p.time), [T0, future]);
      assert.deepEqual(await partitions(database, 'readings'), ['20251107', '20991231']);
    }));

  test('sqlLiteral writes any string so that ClickHouse reads back exactly that string', async () => {
    await serverReady();
    const everyAscii = Array.from({ length: 128 }, (_, code) => String.fromCharCode(code)).join('');
    const samples = [everyAscii, "it's", 'back\\slash\\', "\\'", "'; DROP TABLE x; --", 'Zürich — 東京 🚀', '', '\\0\\n'];
    for (const sample of samples) {
      const [row] = await query<{ s: string }>(`SELECT ${sqlLiteral(sample)} AS s`);
      assert.equal(row?.s, sample, JSON.stringify(sample));
    }
    const [numbers] = await query<{ a: number; b: number; c: number }>(`SELECT ${sqlLiteral(-0)} AS a, ${sqlLiteral(1.5e-7)} AS b, ${sqlLiteral(T0)} AS c`);
    assert.deepEqual(numbers, { a: 0, b: 1.5e-7, c: String(T0) });
    assert.throws(() => sqlLiteral(Number.NaN), TypeError);
  });

  test('keys, sites and metric names with quotes and backslashes are stored and found as given', () =>
    withStore(async (store) => {
      const key = "m-'1\\";
      const site = "site 'a'";
      await store.writeReadings([{ stream: 'power', key, site, time: T0, offset: 1, values: { "it's": 3, 'a\\b': 4 } }]);
      await store.upsertAggregates([windowOf(key, '1m', T0, 12, { site })]);
      const raw = await store.querySeries({ key, metric: "it's", from: T0, to: T0, resolution: 'raw' });
      assert.deepEqual(raw.points.map((p) => p.avg), [3]);
      assert.deepEqual((await store.querySeries({ key, metric: 'a\\b', from: T0, to: T0, resolution: 'raw' })).points.map((p) => p.avg), [4]);
      assert.deepEqual((await store.latestStatus({ site })).map((d) => [d.key, d.site]), [[key, site]]);
      const fleet = await store.queryFleetSeries({ metric: 'usageKw', from: T0, to: T0, resolution: '1m', site });
      assert.deepEqual(fleet.points.map((p) => p.sum), [12]);
    }));

  test('the ttl option sets table TTL on servers that have it and says unsupported on older ones', async () => {
    const database = await freshDatabase();
    const store = createClickHouseStore({ url: `clickhouse://127.0.0.1:8123/${database}`, ttl: true, retention: { readingsMs: 7 * DAY } });
    try {
      await store.ready();
      const version = store.serverVersion ?? '';
      const [table] = await query<{ engine_full: string }>(`SELECT engine_full FROM system.tables WHERE database = '${database}' AND name = 'readings'`);
      if (supportsTtl(version)) {
        assert.equal(store.ttl, 'on');
        assert.match(table?.engine_full ?? '', /TTL .*toIntervalSecond\(604800\)/);
      } else {
        assert.equal(store.ttl, 'unsupported', `server ${version}`);
        assert.doesNotMatch(table?.engine_full ?? '', /TTL/);
      }
    } finally {
      await store.close();
    }
    const plain = createClickHouseStore({ url: `clickhouse://127.0.0.1:8123/${database}` });
    await plain.ready();
    assert.equal(plain.ttl, 'off');
    await plain.close();
  });

  test('bad URLs and negative revisions are refused with a GpError naming the field', async () => {
    for (const url of ['http://127.0.0.1:8123/db', 'clickhouse://127.0.0.1:8123/bad-name', 'clickhouse:///db']) {
      assert.throws(
        () => createClickHouseStore({ url }),
        (error: unknown) => error instanceof GpError && error.code === 'GP_STORE_URL_INVALID' && error.details['field'] === 'url',
        url,
      );
    }
    await withStore(async (store) => {
      await assert.rejects(
        store.upsertAggregates([windowOf('m-1', '1m', T0, 1, { revision: -1 })]),
        (error: unknown) => error instanceof GpError && error.code === 'GP_INPUT_INVALID' && error.details['field'] === 'aggregates[0].revision',
      );
      assert.equal((await store.counts()).aggregates, 0);
    });
  });

  test('an unreachable server is an external GpError that names the server but never the password', async () => {
    const store: Store = createClickHouseStore({ url: 'clickhouse://gp:secret@127.0.0.1:1/none' });
    await assert.rejects(store.ready(), (error: unknown) => {
      assert.ok(error instanceof GpError);
      assert.equal(error.code, 'GP_STORE_FAILED');
      assert.equal(error.retriable, true);
      assert.match(error.message, /127\.0\.0\.1:1/);
      assert.doesNotMatch(error.message + JSON.stringify(error.details), /secret/);
      return true;
    });
    await store.close();
  });
});
