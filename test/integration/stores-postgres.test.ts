// The PostgreSQL store against the server on 127.0.0.1:5432 (scripts/servers.sh start postgres): the
// Store conformance suite, then what only PostgreSQL has (migrations, day partitions, the pool).
// Each run creates its own database and drops it afterwards; each test gets its own schema in it.
// Without the server every test fails with the message saying how to start it.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { GpError } from '../../src/model/index.js';
import { createPostgresStore, createStore, POSTGRES_MIGRATIONS, type Store } from '../../src/stores/index.js';
import { RETENTION_DAYS, retentionOverTenDays } from '../helpers/retention-days.js';
import { DAY, T0, reading, storeConformance, windowOf } from '../helpers/store-conformance.js';

const SERVER = 'postgres://postgres@127.0.0.1:5432';
const UNREACHABLE = 'PostgreSQL not reachable on 127.0.0.1:5432 — start it with scripts/servers.sh start postgres';
const database = `gp_test_${process.pid}_${Date.now()}`;
const url = `${SERVER}/${database}`;

async function admin<T>(body: (client: pg.Client) => Promise<T>, db = 'postgres'): Promise<T> {
  const client = new pg.Client({ connectionString: `${SERVER}/${db}` });
  try {
    await client.connect();
  } catch (cause) {
    throw new Error(UNREACHABLE, { cause });
  }
  try {
    return await body(client);
  } finally {
    await client.end();
  }
}

let created: Promise<void> | undefined;
function databaseReady(): Promise<void> {
  created ??= admin(async (client) => {
    await client.query(`CREATE DATABASE ${database}`);
  });
  return created;
}
after(async () => {
  if (created === undefined || (await created.then(() => false, () => true))) return;
  await admin(async (client) => {
    await client.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  });
});

let schemaCount = 0;
function freshSchema(): string {
  schemaCount += 1;
  return `conformance_${schemaCount}`;
}

storeConformance({
  name: 'PostgreSQL',
  open: async ({ retention }) => {
    await databaseReady();
    const schema = freshSchema();
    const options = retention === undefined ? { url, schema } : { url, schema, retention };
    return { store: createPostgresStore(options), openAnother: () => createPostgresStore(options) };
  },
});

async function query<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> {
  return admin(async (client) => (await client.query<T>(sql, params)).rows, database);
}

async function partitions(schema: string, table: string): Promise<string[]> {
  const rows = await query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
     JOIN pg_namespace n ON n.oid = p.relnamespace WHERE p.relname = $1 AND n.nspname = $2 ORDER BY 1`,
    [table, schema],
  );
  return rows.map((row) => row.name);
}

describe('PostgreSQL store', () => {
  test('migrations are versioned, applied once, and a second start changes nothing', async () => {
    await databaseReady();
    const schema = freshSchema();
    const first = createPostgresStore({ url, schema });
    const second = createPostgresStore({ url: `${url}?schema=${schema}` });
    try {
      // Two stores starting at once on an empty schema: the advisory lock lets one migrate.
      await Promise.all([first.ready(), second.ready()]);
      const applied = await query<{ version: number; name: string; partitioning: string; applied_at: Date }>(
        `SELECT version, name, partitioning, applied_at FROM ${schema}.schema_migrations ORDER BY version`,
      );
      assert.deepEqual(applied.map((row) => row.version), POSTGRES_MIGRATIONS.map((migration) => migration.version));
      assert.ok(applied.every((row) => row.partitioning === first.partitioning));
      const third = createPostgresStore({ url, schema });
      await third.ready();
      await third.close();
      assert.deepEqual(await query(`SELECT version, name, partitioning, applied_at FROM ${schema}.schema_migrations ORDER BY version`), applied);
      const indexes = (await query<{ indexname: string }>(`SELECT indexname FROM pg_indexes WHERE schemaname = $1`, [schema])).map((row) => row.indexname);
      for (const name of ['readings_by_key_time', 'aggregates_by_key_time', 'alerts_by_status_time', 'ops_by_kind_time', 'alert_transitions_by_alert']) {
        assert.ok(indexes.includes(name), `index ${name} in ${indexes.join(', ')}`);
      }
    } finally {
      await first.close();
      await second.close();
    }
  });

  test('writes create one partition per day on demand; retention drops whole old days and trims the boundary day', async (t) => {
    await databaseReady();
    const schema = freshSchema();
    const store = createPostgresStore({ url, schema });
    try {
      await store.ready();
      if (store.partitioning !== 'native') {
        t.skip('the timescaledb extension is installed: readings and aggregates are hypertables');
        return;
      }
      const now = Date.UTC(2025, 10, 20, 12);
      await store.writeReadings([
        reading('m-1', now - 16 * DAY, 1, { usageKw: 1 }),
        reading('m-1', now - 15 * DAY, 2, { usageKw: 1 }),
        reading('m-1', now - 14 * DAY - 1, 3, { usageKw: 1 }),
        reading('m-1', now - 14 * DAY, 4, { usageKw: 1 }),
        reading('m-1', now, 5, { usageKw: 1 }),
      ]);
      await store.upsertAggregates([windowOf('m-1', '1m', now, 5)]);
      assert.deepEqual(await partitions(schema, 'readings'), ['readings_d20251104', 'readings_d20251105', 'readings_d20251106', 'readings_d20251120']);
      assert.deepEqual(await partitions(schema, 'aggregates'), ['aggregates_d20251120']);
      assert.deepEqual(await store.applyRetention(now), { readings: 3, aggregates: 0, alerts: 0, ops: 0 });
      // 4 and 5 November lie wholly before the cutoff (6 November, 12:00): dropped. The 6th keeps its noon row.
      assert.deepEqual(await partitions(schema, 'readings'), ['readings_d20251106', 'readings_d20251120']);
      assert.deepEqual(await query(`SELECT time_ms::float8 AS time FROM ${schema}.readings_d20251106`), [{ time: now - 14 * DAY }]);
    } finally {
      await store.close();
    }
  });

  test('on a schedule driven by a fake clock, each day the oldest day partition goes and the new one stays', async (t) => {
    await databaseReady();
    const schema = freshSchema();
    const store = createPostgresStore({ url, schema, retention: RETENTION_DAYS });
    try {
      await store.ready();
      if (store.partitioning !== 'native') {
        t.skip('the timescaledb extension is installed: readings and aggregates are hypertables');
        return;
      }
      await retentionOverTenDays(store, (table) => partitions(schema, table), (table, day) => `${table}_d${day}`);
    } finally {
      await store.close();
    }
  });

  test('createStore opens postgres:// and postgresql:// URLs with a schema parameter', async () => {
    await databaseReady();
    const schema = freshSchema();
    for (const scheme of ['postgres', 'postgresql']) {
      const store = createStore(`${scheme}://postgres@127.0.0.1:5432/${database}?schema=${schema}`, { retention: { readingsMs: DAY } });
      assert.equal(store.kind, 'postgres');
      try {
        await store.writeReadings([reading('m-1', T0 - 2 * DAY, 1, { usageKw: 1 })]);
        assert.equal((await store.counts()).readings, 1);
      } finally {
        await store.close();
      }
    }
    const rows = await query<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.readings`);
    assert.deepEqual(rows, [{ n: 1 }]);
  });

  test('close ends the pool: the store leaves no connection behind', async () => {
    await databaseReady();
    const store = createPostgresStore({ url: `${url}?application_name=gp-pool-test`, schema: freshSchema() });
    const connections = async (): Promise<number> =>
      (await query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'gp-pool-test'`))[0]?.n ?? -1;
    await store.ready();
    await Promise.all([store.counts(), store.latestStatus({}), store.listAlerts({})]);
    assert.ok((await connections()) >= 1);
    await store.close();
    await store.close();
    assert.equal(await connections(), 0);
  });

  test('an unreachable server is an external GpError that names the server but never the password', async () => {
    const store: Store = createPostgresStore({ url: 'postgres://gp:secret@127.0.0.1:1/none' });
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
