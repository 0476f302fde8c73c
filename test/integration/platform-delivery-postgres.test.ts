// Alert delivery through the transactional outbox: the live platform on the PostgreSQL store writes
// each transition with its outbox row, and the relay delivers them to a signed webhook — by polling
// on the machine's server (wal_level replica, 127.0.0.1:5432) and by logical replication on the
// project's own cluster (127.0.0.1:5433, scripts/servers.sh start postgres-logical). Each transition
// arrives exactly once and its outbox row is marked delivered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pgAdmin } from '../helpers/servers.js';
import { createApiApp } from '../../src/api/index.js';
import { parseConfig } from '../../src/config/index.js';
import { createPlatform } from '../../src/cli/platform.js';
import { SECRET, receiver, signatureValid, spikeReadings, until } from '../helpers/webhook-receiver.js';

async function withDatabase<T>(server: string, startHint: string, body: (url: string) => Promise<T>): Promise<T> {
  const database = `gp_delivery_${process.pid}_${Date.now()}`;
  const admin = (sql: string): Promise<unknown> => pgAdmin(sql, [], server, startHint);
  await admin(`CREATE DATABASE ${database}`);
  try {
    return await body(`${server}/${database}`);
  } finally {
    // The relay's replication slot belongs to the cluster: dropped with the database's connections.
    await admin(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '${database}'`).catch(() => undefined);
    await admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => undefined);
  }
}

async function deliverThroughOutbox(storeUrl: string): Promise<void> {
  const hook = await receiver();
  const dir = mkdtempSync(join(tmpdir(), 'gp-delivery-pg-'));
  const { config, issues } = parseConfig({
    dataDir: dir,
    store: { url: storeUrl },
    simulator: { enabled: false },
    alerts: {
      delivery: {
        allow: { cidrs: ['127.0.0.0/8'] },
        channels: { hook: { type: 'webhook', url: hook.url, secret: SECRET, timeout: '2s' } },
        routes: [{ name: 'all', channels: ['hook'] }],
        // The spike readings also close a gap (a silence alert): held for the group wait before it is sent.
        grouping: { groupWait: '200ms' },
      },
    },
  });
  assert.deepEqual(issues, []);
  const platform = createPlatform({ config: config!, simulator: false });
  await platform.start();
  const app = await createApiApp({ platform, server: config!.server });
  try {
    const posted = await app.inject({ method: 'POST', url: '/v1/readings', headers: { 'content-type': 'application/x-ndjson' }, payload: spikeReadings() });
    assert.equal(posted.statusCode, 200, posted.body);
    await platform.drain();
    const client = new pg.Client({ connectionString: storeUrl });
    await client.connect();
    try {
      const rows = (await client.query<{ id: string }>('SELECT id FROM alert_outbox ORDER BY id')).rows.map((r) => r.id);
      assert.ok(rows.length >= 2, `outbox rows: ${rows.join(', ')}`);
      await until('every outbox row delivered', async () => {
        const pending = await client.query('SELECT 1 FROM alert_outbox WHERE delivered_at IS NULL');
        return pending.rowCount === 0 && hook.received.length >= rows.length;
      }, 30_000);
      const ids = hook.received.map((r) => String(r.headers['webhook-id'])).sort();
      assert.deepEqual(ids, rows, 'each transition exactly once');
      assert.ok(hook.received.every(signatureValid));
    } finally {
      await client.end();
    }
  } finally {
    await app.close();
    await platform.close();
    await hook.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('on PostgreSQL without logical replication, the polling relay delivers each transition once', { timeout: 120_000 }, () =>
  withDatabase('postgres://postgres@127.0.0.1:5432', 'postgres', deliverThroughOutbox));

test('on PostgreSQL with wal_level=logical, the replication relay delivers each transition once', { timeout: 120_000 }, () =>
  withDatabase('postgres://postgres@127.0.0.1:5433', 'postgres-logical', deliverThroughOutbox));
