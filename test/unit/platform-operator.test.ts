// Operator actions through the live platform (the code `gridpulse up` runs): assigning an alert
// goes to the engine's alert manager, is checkpointed, and shows in the alert and its transitions;
// incidents are answered from the store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApiApp } from '../../src/api/index.js';
import { parseConfig } from '../../src/config/index.js';
import { createPlatform } from '../../src/cli/platform.js';
import { spikeReadings } from '../helpers/webhook-receiver.js';

test('an alert assigned through the API keeps its assignee across a restart, with an assign transition', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gp-operator-'));
  const { config } = parseConfig({ dataDir: dir, store: { url: `duckdb:${join(dir, 'gp.duckdb')}` }, simulator: { enabled: false } });
  let platform = createPlatform({ config: config!, simulator: false });
  await platform.start();
  let app = await createApiApp({ platform, server: config!.server });
  try {
    // The spike without its closing reading: the alert stays open.
    const lines = spikeReadings().split('\n').slice(0, -1).join('\n');
    await app.inject({ method: 'POST', url: '/v1/readings', headers: { 'content-type': 'application/x-ndjson' }, payload: lines });
    await platform.drain();
    const open = (await app.inject({ url: '/api/alerts?status=open' })).json<{ alerts: Array<{ id: string; type: string }> }>().alerts;
    assert.ok(open.length > 0, 'an open alert');
    const id = open[0]!.id;
    const assigned = await app.inject({ method: 'POST', url: `/api/alerts/${id}/assign`, payload: { assignee: 'ana', by: 'lead', note: 'on shift' } });
    assert.equal(assigned.statusCode, 200, assigned.body);
    assert.equal(assigned.json<{ alert: { assignee: string } }>().alert.assignee, 'ana');
    const missing = await app.inject({ method: 'POST', url: '/api/alerts/al_nope/assign', payload: { assignee: 'ana' } });
    assert.equal(missing.statusCode, 404, missing.body);
    const incidents = await app.inject({ url: '/api/incidents' });
    assert.equal(incidents.statusCode, 200, incidents.body);

    await app.close();
    await platform.close();
    platform = createPlatform({ config: config!, simulator: false });
    await platform.start();
    app = await createApiApp({ platform, server: config!.server });
    const detail = (await app.inject({ url: `/api/alerts/${id}` })).json<{ transitions: Array<{ kind: string }> }>();
    assert.ok(detail.transitions.some((t) => t.kind === 'assign'), JSON.stringify(detail.transitions.map((t) => t.kind)));
    // After the restart the engine still knows the assignee: assigning again to the same person changes nothing.
    const again = await app.inject({ method: 'POST', url: `/api/alerts/${id}/assign`, payload: { assignee: 'ana' } });
    assert.equal(again.statusCode, 200, again.body);
    const after = (await app.inject({ url: `/api/alerts/${id}` })).json<{ transitions: Array<{ kind: string }> }>();
    assert.equal(after.transitions.filter((t) => t.kind === 'assign').length, 1);
  } finally {
    await app.close();
    await platform.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
