// Processes of one group started together on a new database all create the tables they share
// (queued alert actions, engine checkpoints) at once. PostgreSQL's CREATE TABLE IF NOT EXISTS is
// not safe against that race: the loser gets a catalog conflict (seen in CI as `type
// "alert_actions" already exists`, which ended one of three `gridpulse process` members).
// Needs scripts/servers.sh start postgres.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createAlertActionQueue } from '../../src/cli/alert-actions.js';
import { createCheckpointStore } from '../../src/cli/checkpoint-store.js';
import { tmpdir } from 'node:os';
import { pgAdmin, PG_SERVER } from '../helpers/servers.js';
import { query } from '../helpers/kafka-processes.js';

const database = `gp_pgrace_${process.pid}_${Date.now()}`;
after(async () => {
  await pgAdmin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => undefined);
});

test('members starting together on a new schema all open the shared tables: none loses the race to create them', async () => {
  await pgAdmin(`CREATE DATABASE ${database}`);
  const url = `${PG_SERVER}/${database}`;
  const rounds = 12;
  const members = 6;
  for (let round = 0; round < rounds; round++) {
    await query(url, `CREATE SCHEMA race_${round}`);
    const store = `${url}?schema=race_${round}`;
    const queues = Array.from({ length: members }, (_, m) => createAlertActionQueue(store, { member: `m${m}` }));
    const checkpoints = Array.from({ length: members }, () => createCheckpointStore({ url: store, dataDir: tmpdir(), group: 'engine' }));
    const opened = await Promise.allSettled([...queues.map((q) => q.ready()), ...checkpoints.map((c) => c.ready())]);
    const failed = opened.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
    await Promise.all([...queues.map((q) => q.close()), ...checkpoints.map((c) => c.close())]);
    assert.deepEqual(failed, [], `round ${round + 1} of ${rounds}: every member opens the tables`);
  }
});
