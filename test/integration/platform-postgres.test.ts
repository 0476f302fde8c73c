import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApiApp } from '../../src/api/index.js';
import { parseConfig } from '../../src/config/index.js';
import { createPlatform } from '../../src/cli/platform.js';
import { PG_SERVER as SERVER, pgAdmin as admin } from '../helpers/servers.js';


test('the live platform with the PostgreSQL store: readings posted over HTTP come back from the API as series, fleet sums and alerts with their transitions', { timeout: 120_000 }, async () => {
  const database = `gp_platform_${process.pid}_${Date.now()}`;
  await admin(`CREATE DATABASE ${database}`);
  const dir = mkdtempSync(join(tmpdir(), 'gp-platform-pg-'));
  const { config, issues } = parseConfig({ dataDir: dir, store: { url: `${SERVER}/${database}` }, simulator: { enabled: false } });
  assert.deepEqual(issues, []);
  const platform = createPlatform({ config: config!, simulator: false });
  await platform.start();
  const app = await createApiApp({ platform, server: config!.server });
  try {
    const t0 = Date.UTC(2026, 0, 5, 9, 0, 0);
    const lines: string[] = [];
    // Two meters every 10 s for 20 minutes; m-2 jumps from 2 kW to 9 kW at minute 15 (a spike).
    for (let i = 0; i < 120; i++) {
      lines.push(JSON.stringify({ meterId: 'm-1', siteId: 's-1', timestamp: t0 + i * 10_000, usageKw: 3 + (i % 2) * 0.01 }));
      lines.push(JSON.stringify({ meterId: 'm-2', siteId: 's-1', timestamp: t0 + i * 10_000 + 5000, usageKw: i >= 90 ? 9 : 2 + (i % 3) * 0.01 }));
    }
    // An hour later: closes every window of the run and ends the spike.
    lines.push(JSON.stringify({ meterId: 'm-1', siteId: 's-1', timestamp: t0 + 3_600_000, usageKw: 3 }));
    const posted = await app.inject({ method: 'POST', url: '/v1/streams/power/readings', headers: { 'content-type': 'application/x-ndjson' }, payload: lines.join('\n') });
    assert.equal(posted.statusCode, 200, posted.body);
    assert.equal(posted.json<{ accepted: number }>().accepted, 241);
    await platform.drain();

    const from = new Date(t0).toISOString();
    const to = new Date(t0 + 20 * 60_000 - 1).toISOString();
    const series = await app.inject({ url: `/api/devices/m-1/series?metric=usageKw&resolution=1m&from=${from}&to=${to}` });
    assert.equal(series.statusCode, 200, series.body);
    const points = series.json<{ points: Array<{ count: number }> }>().points;
    assert.equal(points.length, 20);
    assert.ok(points.every((p) => p.count === 6), 'six readings in every minute of m-1');

    const fleet = await app.inject({ url: `/api/fleet/series?metric=usageKw&resolution=1m&from=${from}&to=${to}` });
    assert.equal(fleet.statusCode, 200, fleet.body);
    const first = fleet.json<{ points: Array<{ devices: number; sum: number }> }>().points[0]!;
    assert.equal(first.devices, 2);
    assert.ok(Math.abs(first.sum - 5.015) < 0.02, `fleet load of the first minute is m-1 + m-2 ≈ 5.0 kW, got ${first.sum}`);

    const alerts = await app.inject({ url: '/api/alerts?key=m-2&type=spike' });
    assert.equal(alerts.statusCode, 200, alerts.body);
    const list = alerts.json<{ alerts: Array<{ id: string; status: string }> }>().alerts;
    assert.equal(list.length, 1, alerts.body);
    // No spike finding for resolveAfter: resolved, so it can no longer be acknowledged.
    assert.equal(list[0]!.status, 'resolved');
    const ack = await app.inject({ method: 'POST', url: `/api/alerts/${list[0]!.id}/ack`, payload: { by: 'test' } });
    assert.equal(ack.statusCode, 409, ack.body);
    assert.equal(ack.json<{ error: { code: string } }>().error.code, 'GP_CONFLICT');
    const detail = await app.inject({ url: `/api/alerts/${list[0]!.id}` });
    assert.deepEqual(detail.json<{ transitions: Array<{ kind: string }> }>().transitions.map((t) => t.kind), ['open', 'resolve']);
  } finally {
    await app.close();
    await platform.close();
    rmSync(dir, { recursive: true, force: true });
    await admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  }
});
