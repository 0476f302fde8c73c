// `gridpulse process` keeps its checkpoints in the store's PostgreSQL database, in the store's schema
// (`?schema=` of the store URL): two deployments sharing one database with different schemas and
// the same consumer group keep separate checkpoints. Needs scripts/servers.sh start postgres.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { createCheckpointStore } from '../../src/cli/checkpoint-store.js';
import { pgAdmin, PG_SERVER } from '../helpers/servers.js';
import { query } from '../helpers/kafka-processes.js';

const database = `gp_cpstore_${process.pid}_${Date.now()}`;
after(async () => {
  await pgAdmin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => undefined);
});

test('checkpoints go to the schema named by the store URL, and schemas of one database do not share them', async () => {
  await pgAdmin(`CREATE DATABASE ${database}`);
  const url = `${PG_SERVER}/${database}`;
  // The store creates its schema before `gridpulse process` opens the checkpoint store.
  await query(url, 'CREATE SCHEMA site_a; CREATE SCHEMA site_b');
  const a = createCheckpointStore({ url: `${url}?schema=site_a`, dataDir: tmpdir(), group: 'engine' });
  const b = createCheckpointStore({ url: `${url}?schema=site_b`, dataDir: tmpdir(), group: 'engine' });
  try {
    await a.ready();
    await b.ready();
    assert.equal(await a.save('power-usage-raw', 0, 120, '{"a":1}'), 1);
    assert.equal(await a.save('power-usage-raw', 0, 240, '{"a":2}'), 2);
    assert.equal(await b.save('power-usage-raw', 0, 7, '{"b":1}'), 1, 'site_b starts its own versions');
    const tables = await query<{ table_schema: string }>(url, `SELECT table_schema FROM information_schema.tables WHERE table_name = 'engine_checkpoints' ORDER BY 1`);
    assert.deepEqual(tables.map((row) => row.table_schema), ['site_a', 'site_b'], 'no engine_checkpoints table in public');
    const newest = async (store: typeof a): Promise<unknown> => {
      for await (const found of store.versions('power-usage-raw', 0)) return 'unreadable' in found ? found : { version: found.version, offset: found.offset, state: found.state };
      return undefined;
    };
    assert.deepEqual(await newest(a), { version: 2, offset: 240, state: '{"a":2}' });
    assert.deepEqual(await newest(b), { version: 1, offset: 7, state: '{"b":1}' });
  } finally {
    await a.close();
    await b.close();
  }
});
