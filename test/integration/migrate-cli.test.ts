// `gridpulse migrate` against the PostgreSQL server on 127.0.0.1:5432 (scripts/servers.sh start
// postgres): the first run creates the schema at this build's version, a second run is a no-op,
// and the tables are there for `gridpulse up` to use. Runs in a schema of its own, dropped afterwards.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import pg from 'pg';
import { CLICKHOUSE_MIGRATIONS, CLICKHOUSE_SCHEMA_VERSION, POSTGRES_MIGRATIONS, POSTGRES_SCHEMA_VERSION } from '../../src/stores/index.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const SERVER = 'postgres://postgres@127.0.0.1:5432/postgres';
const schema = `gp_migrate_${process.pid}_${Date.now()}`;
const url = `${SERVER}?schema=${schema}`;

function migrate(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'migrate', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, NODE_NO_WARNINGS: '1' },
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

async function query<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: SERVER });
  try {
    await client.connect();
  } catch (cause) {
    throw new Error('PostgreSQL not reachable on 127.0.0.1:5432 — start it with scripts/servers.sh start postgres', { cause });
  }
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

after(async () => {
  await query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
});

test('migrate applies every migration once, then reports the schema up to date', async () => {
  await query('SELECT 1'); // fails with how to start the server when it is down
  const first = migrate('--store', url, '--json');
  assert.equal(first.code, 0, first.stderr);
  const [report] = JSON.parse(first.stdout) as { kind: string; schema: { before: number; after: number; applied: { version: number }[] } }[];
  assert.equal(report!.kind, 'postgres');
  assert.equal(report!.schema.before, 0);
  assert.equal(report!.schema.after, POSTGRES_SCHEMA_VERSION);
  assert.deepEqual(report!.schema.applied.map((m) => m.version), POSTGRES_MIGRATIONS.map((m) => m.version));

  const tables = await query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_name = ANY($2) ORDER BY table_name`,
    [schema, ['aggregates', 'alert_transitions', 'alerts', 'devices', 'ops', 'readings', 'schema_migrations']],
  );
  assert.equal(tables.length, 7, `tables: ${tables.map((t) => t.table_name).join(', ')}`);

  const second = migrate('--store', url);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout, new RegExp(`PostgreSQL schema ${schema} at postgres://postgres@127\\.0\\.0\\.1:5432/postgres: up to date at version ${POSTGRES_SCHEMA_VERSION}`));
  const versions = await query<{ version: number }>(`SELECT version FROM ${schema}.schema_migrations ORDER BY version`);
  assert.deepEqual(versions.map((v) => v.version), POSTGRES_MIGRATIONS.map((m) => m.version), 'each version recorded once');
});

test('migrate on an unreachable server exits non-zero with the reason and no password', () => {
  const r = migrate('--store', 'postgres://gp:hunter2@127.0.0.1:1/gp');
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /cannot open PostgreSQL store at postgres:\/\/gp:\*\*\*@127\.0\.0\.1:1\/gp.*ECONNREFUSED/);
  assert.doesNotMatch(r.stderr + r.stdout, /hunter2/);
});

test('migrate creates a ClickHouse database at this build version, then reports it up to date', async (t) => {
  const database = `gp_migrate_${process.pid}_${Date.now()}`;
  try {
    await fetch('http://127.0.0.1:8123/ping');
  } catch (cause) {
    throw new Error('ClickHouse not reachable on 127.0.0.1:8123 — start it with scripts/servers.sh start clickhouse', { cause });
  }
  t.after(() => fetch('http://127.0.0.1:8123/', { method: 'POST', body: `DROP DATABASE IF EXISTS ${database}` }).then(() => undefined));
  const first = migrate('--store', `clickhouse://127.0.0.1:8123/${database}`, '--json');
  assert.equal(first.code, 0, first.stderr);
  const [report] = JSON.parse(first.stdout) as { kind: string; schema: { before: number; after: number; applied: { version: number }[] } }[];
  assert.equal(report!.kind, 'clickhouse');
  assert.equal(report!.schema.before, 0);
  assert.equal(report!.schema.after, CLICKHOUSE_SCHEMA_VERSION);
  assert.equal(report!.schema.applied.length, CLICKHOUSE_MIGRATIONS.length);
  const second = migrate('--store', `clickhouse://127.0.0.1:8123/${database}`);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout, new RegExp(`ClickHouse database ${database} at clickhouse://127\\.0\\.0\\.1:8123/${database}: up to date at version ${CLICKHOUSE_SCHEMA_VERSION}`));
});
