// `gridpulse up --store <server>` serves the API (and so the dashboard, which reads only the API)
// with the same answers as the embedded DuckDB store: the same readings are posted to a platform on
// each store and every portal route's answer is compared. PostgreSQL on 127.0.0.1:5432 and
// ClickHouse on 127.0.0.1:8123 (scripts/servers.sh start postgres|clickhouse).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApiApp } from '../../src/api/index.js';
import { parseConfig } from '../../src/config/index.js';
import { createPlatform } from '../../src/cli/platform.js';
import { PG_SERVER, clickhouseAdmin, pgAdmin } from '../helpers/servers.js';

const run = `${process.pid}_${Date.now()}`;
const pgDatabase = `gp_platform_same_${run}`;
const chDatabase = `gp_platform_same_${run}`;
const dirs: string[] = [];
const T0 = Date.UTC(2026, 0, 5, 9, 0, 0);

/** Three meters on two sites and a machine for 30 minutes; m-2 spikes, m-3 falls silent, late and broken readings. */
function readings(): { power: string[]; machines: string[] } {
  const lines: string[] = [];
  const machines: string[] = [];
  for (let i = 0; i < 180; i++) {
    const t = T0 + i * 10_000;
    lines.push(JSON.stringify({ meterId: 'm-1', siteId: 's-1', timestamp: t, usageKw: 3 + (i % 3) * 0.01, voltage: 230, current: 13.7, pf: 0.95 }));
    lines.push(JSON.stringify({ meterId: 'm-2', siteId: 's-1', timestamp: t + 3000, usageKw: i >= 120 && i < 150 ? 9 : 2 + (i % 2) * 0.02 }));
    if (i < 90) lines.push(JSON.stringify({ meterId: 'm-3', siteId: 's-2', timestamp: t + 6000, usageKw: 1.5 }));
    if (i % 6 === 0) {
      machines.push(JSON.stringify({ machine_id: 'M-1', timestamp: new Date(t).toISOString(), air_temp_k: 300, process_temp_k: 310 + i / 100, rpm: 1500, torque_nm: 40 + (i % 5), tool_wear_min: i / 6 }));
    }
  }
  // Late (within the allowed lateness), too late, and an hour later to close every window.
  lines.push(JSON.stringify({ meterId: 'm-1', siteId: 's-1', timestamp: T0 + 1_790_000 - 300_000, usageKw: 3.5 }));
  lines.push(JSON.stringify({ meterId: 'm-1', siteId: 's-1', timestamp: T0 + 1000, usageKw: 3.5 }));
  lines.push(JSON.stringify({ meterId: 'm-1', siteId: 's-1', timestamp: T0 + 3_600_000, usageKw: 3 }));
  lines.push(JSON.stringify({ meterId: 'm-2', siteId: 's-1', timestamp: T0 + 3_600_000, usageKw: 2 }));
  machines.push(JSON.stringify({ machine_id: 'M-1', timestamp: new Date(T0 + 3_600_000).toISOString(), air_temp_k: 300, process_temp_k: 310, rpm: 1500, torque_nm: 40, tool_wear_min: 60 }));
  return { power: lines, machines };
}

const ROUTES = [
  '/api/streams',
  '/api/devices',
  '/api/devices/m-2',
  '/api/alerts?limit=1000',
  '/api/alerts?status=resolved&site=s-1',
  '/api/quality?by=key',
  '/api/quality?by=site',
  `/api/devices/m-1/series?metric=usageKw&resolution=1m&from=${new Date(T0).toISOString()}&to=${new Date(T0 + 1_800_000).toISOString()}`,
  `/api/devices/m-2/series?metric=usageKw&resolution=5m&from=${new Date(T0).toISOString()}&to=${new Date(T0 + 1_800_000).toISOString()}`,
  `/api/devices/m-3/series?metric=usageKw&resolution=15m&from=${new Date(T0).toISOString()}&to=${new Date(T0 + 1_800_000).toISOString()}`,
  `/api/devices/m-1/series?metric=usageKw&resolution=raw&from=${new Date(T0).toISOString()}&to=${new Date(T0 + 600_000).toISOString()}`,
  `/api/devices/M-1/series?metric=torque_nm&resolution=auto&from=${new Date(T0).toISOString()}&to=${new Date(T0 + 1_800_000).toISOString()}`,
  `/api/fleet/series?metric=usageKw&resolution=1m&from=${new Date(T0).toISOString()}&to=${new Date(T0 + 1_800_000).toISOString()}`,
  `/api/fleet/series?metric=usageKw&resolution=5m&site=s-1&from=${new Date(T0).toISOString()}&to=${new Date(T0 + 1_800_000).toISOString()}`,
  '/api/machines/M-1/status',
];

async function answers(storeUrl: string): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'gp-platform-same-'));
  dirs.push(dir);
  const { config, issues } = parseConfig({ dataDir: dir, store: { url: storeUrl }, simulator: { enabled: false } });
  assert.deepEqual(issues, []);
  const platform = createPlatform({ config: config!, simulator: false });
  await platform.start();
  const app = await createApiApp({ platform, server: config!.server });
  try {
    const { power, machines } = readings();
    const posted = await app.inject({ method: 'POST', url: '/v1/readings', headers: { 'content-type': 'application/x-ndjson' }, payload: [...power, '{"meterId": "m-9", "timestamp": "soon"}'].join('\n') });
    assert.equal(posted.statusCode, 200, posted.body);
    assert.equal(posted.json<{ accepted: number }>().accepted, power.length, posted.body);
    const postedMachines = await app.inject({ method: 'POST', url: '/v1/streams/machines/readings', headers: { 'content-type': 'application/x-ndjson' }, payload: machines.join('\n') });
    assert.equal(postedMachines.json<{ accepted: number }>().accepted, machines.length, postedMachines.body);
    await platform.drain();
    const out: Record<string, unknown> = {};
    for (const route of ROUTES) {
      const response = await app.inject({ url: route });
      assert.equal(response.statusCode, 200, `${storeUrl} ${route}: ${response.body}`);
      out[route] = response.json();
    }
    // Every alert's detail, transitions included.
    for (const alert of (out['/api/alerts?limit=1000'] as { alerts: { id: string }[] }).alerts) {
      const response = await app.inject({ url: `/api/alerts/${alert.id}` });
      assert.equal(response.statusCode, 200, response.body);
      out[`/api/alerts/${alert.id}`] = response.json();
    }
    return out;
  } finally {
    await app.close();
    await platform.close();
  }
}

let reference: Record<string, unknown>;
before(async () => {
  reference = await answers('duckdb::memory:');
  const alerts = (reference['/api/alerts?limit=1000'] as { alerts: { type: string }[] }).alerts;
  assert.ok(alerts.length >= 2, `alerts in the reference: ${alerts.map((a) => a.type).join(', ')}`);
  const quality = reference['/api/quality?by=key'] as { rows: { total: number }[] };
  assert.ok(quality.rows.some((row) => row.total > 0), 'ops rows in the reference');
});

after(async () => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  await pgAdmin(`DROP DATABASE IF EXISTS ${pgDatabase} WITH (FORCE)`).catch(() => undefined);
  await clickhouseAdmin(`DROP DATABASE IF EXISTS ${chDatabase}`).catch(() => undefined);
});

test('the platform on PostgreSQL answers every portal route as on DuckDB', { timeout: 180_000 }, async () => {
  await pgAdmin(`CREATE DATABASE ${pgDatabase}`);
  const actual = await answers(`${PG_SERVER}/${pgDatabase}`);
  for (const route of Object.keys(reference)) assert.deepEqual(actual[route], reference[route], route);
  assert.deepEqual(Object.keys(actual).sort(), Object.keys(reference).sort());
});

test('the platform on ClickHouse answers every portal route as on DuckDB', { timeout: 180_000 }, async () => {
  await clickhouseAdmin('SELECT 1'); // fails with how to start the server when it is down
  const actual = await answers(`clickhouse://127.0.0.1:8123/${chDatabase}`);
  for (const route of Object.keys(reference)) assert.deepEqual(actual[route], reference[route], route);
  assert.deepEqual(Object.keys(actual).sort(), Object.keys(reference).sort());
});
