// Site incidents through the transactional outbox: on the PostgreSQL store the relay hands each
// outbox row to delivery, which groups them the same way as on the embedded store — a simulated
// outage of 50 meters gives one incident page linking the 50 alerts, not 50 pages (scenario in
// test/helpers/site-outage.ts). Polling relay on 127.0.0.1:5432, logical replication on 127.0.0.1:5433
// (scripts/servers.sh start postgres / postgres-logical).
import { test } from 'node:test';
import { pgAdmin } from '../helpers/servers.js';
import { siteOutageScenario } from '../helpers/site-outage.js';

async function inNewDatabase(server: string, startHint: string): Promise<void> {
  const database = `gp_incidents_${process.pid}_${Date.now()}`;
  const admin = (sql: string): Promise<unknown> => pgAdmin(sql, [], server, startHint);
  await admin(`CREATE DATABASE ${database}`);
  try {
    // The relay hands the 50 rows to delivery one by one (a commit and a state write each): a wider group wait.
    await siteOutageScenario(`${server}/${database}`, 5000);
  } finally {
    // The relay's replication slot belongs to the cluster: dropped with the database's connections.
    await admin(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '${database}'`).catch(() => undefined);
    await admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => undefined);
  }
}

void test('on PostgreSQL with the polling relay, a 50-meter site outage is one incident page', { timeout: 240_000 }, () => inNewDatabase('postgres://postgres@127.0.0.1:5432', 'postgres'));

void test('on PostgreSQL with the logical replication relay, a 50-meter site outage is one incident page', { timeout: 240_000 }, () =>
  inNewDatabase('postgres://postgres@127.0.0.1:5433', 'postgres-logical'));
