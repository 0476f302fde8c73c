// Alert delivery wired into the live platform (the code `gridpulse up` runs): a spike alert's
// transitions reach a signed webhook receiver on loopback; a receiver that refuses puts them in the
// dead-letter list the API shows, and a redelivery after the receiver is fixed sends the same
// webhook-id and removes it; after a restart from the checkpoint nothing already delivered is lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApiApp } from '../../src/api/index.js';
import { parseConfig } from '../../src/config/index.js';
import { createPlatform } from '../../src/cli/platform.js';
import { SECRET, receiver, signatureValid, spikeReadings, until } from '../helpers/webhook-receiver.js';

import { T0 } from '../helpers/webhook-receiver.js';
test('alert transitions reach a signed webhook; refused ones are dead letters the API lists and redelivers', { timeout: 120_000 }, async () => {
  const hook = await receiver();
  const dir = mkdtempSync(join(tmpdir(), 'gp-delivery-'));
  const input = {
    dataDir: dir,
    store: { url: 'duckdb::memory:' },
    simulator: { enabled: false },
    alerts: {
      delivery: {
        allow: { cidrs: ['127.0.0.0/8'] },
        channels: { hook: { type: 'webhook', url: hook.url, secret: SECRET, timeout: '2s', retry: { attempts: 2, baseDelay: '10ms', maxDelay: '50ms' } } },
        routes: [{ name: 'all', channels: ['hook'] }],
        // The spike readings also close a gap (a silence alert): held for the group wait before it is sent.
        grouping: { groupWait: '200ms' },
      },
    },
  };
  const { config, issues } = parseConfig(input);
  assert.deepEqual(issues, []);
  let platform = createPlatform({ config: config!, simulator: false });
  await platform.start();
  let app = await createApiApp({ platform, server: config!.server });
  try {
    const posted = await app.inject({ method: 'POST', url: '/v1/readings', headers: { 'content-type': 'application/x-ndjson' }, payload: spikeReadings() });
    assert.equal(posted.statusCode, 200, posted.body);
    await platform.drain();
    const alerts = (await app.inject({ url: '/api/alerts?key=m-1' })).json<{ alerts: Array<{ id: string; type: string }> }>().alerts;
    assert.ok(alerts.some((a) => a.type === 'spike'), JSON.stringify(alerts));
    // Every transition of every alert arrives, once, signed, with its transition id as webhook-id.
    const transitions: string[] = [];
    for (const alert of alerts) {
      const detail = (await app.inject({ url: `/api/alerts/${alert.id}` })).json<{ transitions: Array<{ id: string }> }>();
      transitions.push(...detail.transitions.map((t) => t.id));
    }
    await until('every transition delivered', () => hook.received.length >= transitions.length);
    assert.deepEqual(hook.received.map((r) => String(r.headers['webhook-id'])).sort(), [...transitions].sort());
    assert.ok(hook.received.every(signatureValid), 'every request carries a valid Standard Webhooks signature');
    const first = JSON.parse(hook.received[0]!.body) as { type: string; data: { alert: { key: string } } };
    assert.equal(first.data.alert.key, 'm-1');

    // The receiver now refuses for good (400): the next transition becomes a dead letter.
    hook.status.code = 400;
    const before = hook.received.length;
    const spike = alerts.find((a) => a.type === 'spike')!;
    const ack = await app.inject({ method: 'POST', url: `/api/alerts/${spike.id}/ack`, payload: { by: 'test' } });
    // A resolved alert cannot be acknowledged; post a new spike on another meter instead.
    if (ack.statusCode !== 200) {
      const lines = spikeReadings().replaceAll('"m-1"', '"m-2"').replaceAll(String(T0 + 3_600_000), String(T0 + 7_200_000));
      await app.inject({ method: 'POST', url: '/v1/readings', headers: { 'content-type': 'application/x-ndjson' }, payload: lines });
      await platform.drain();
    }
    let dead: Array<{ id: string; transitionId: string; reason: string; channel: string }> = [];
    await until('a dead letter', async () => {
      const response = await app.inject({ url: '/api/alerts/dead-letters' });
      assert.equal(response.statusCode, 200, response.body);
      dead = response.json<{ deadLetters: typeof dead }>().deadLetters;
      return dead.length > 0;
    });
    assert.ok(hook.received.length > before, 'the refused request was made');
    assert.equal(dead[0]!.channel, 'hook');
    assert.match(dead[0]!.reason, /400/);
    const metrics = (await app.inject({ url: '/api/alerts/delivery' })).json<{ channels: { hook: { delivered: number; deadLettered: number } } }>();
    assert.ok(metrics.channels.hook.deadLettered >= 1 && metrics.channels.hook.delivered >= transitions.length, JSON.stringify(metrics));

    // Fixed: a redelivery sends the same webhook-id and the dead letter is gone.
    hook.status.code = 200;
    const sentBeforeRedelivery = hook.received.length;
    const redelivered = await app.inject({ method: 'POST', url: `/api/alerts/dead-letters/${encodeURIComponent(dead[0]!.id)}/redeliver` });
    assert.equal(redelivered.statusCode, 200, redelivered.body);
    assert.equal(redelivered.json<{ delivered: boolean }>().delivered, true);
    // Other transitions still queued (e.g. the silence released after its group wait) may reach the
    // receiver at the same moment: look for the redelivered one among what arrived since.
    const again = hook.received.slice(sentBeforeRedelivery).filter((r) => String(r.headers['webhook-id']) === dead[0]!.transitionId);
    assert.equal(again.length, 1, `the dead letter ${dead[0]!.transitionId} is sent once more; received since: ${JSON.stringify(hook.received.slice(sentBeforeRedelivery).map((r) => r.headers['webhook-id']))}`);
    assert.ok(signatureValid(again[0]!));
    const unknown = await app.inject({ method: 'POST', url: '/api/alerts/dead-letters/hook:nope/redeliver' });
    assert.equal(unknown.statusCode, 404, unknown.body);

    // A restart from the checkpoint: everything delivered before it stays delivered, nothing new is sent twice.
    // Other transitions refused meanwhile (e.g. the silence of m-1, re-checked as the watermark
    // moved on) are redelivered too: every dead letter can be sent again once the receiver is fixed.
    for (const letter of (await app.inject({ url: '/api/alerts/dead-letters' })).json<{ deadLetters: Array<{ id: string }> }>().deadLetters) {
      const again = await app.inject({ method: 'POST', url: `/api/alerts/dead-letters/${encodeURIComponent(letter.id)}/redeliver` });
      assert.equal(again.statusCode, 200, again.body);
    }
    await until('all dead letters handled', async () => (await app.inject({ url: '/api/alerts/dead-letters' })).json<{ deadLetters: unknown[] }>().deadLetters.length === 0);
    const deliveredIds = new Set(hook.received.filter((r) => r.headers['webhook-id'] !== undefined).map((r) => String(r.headers['webhook-id'])));
    await app.close();
    await platform.close();
    const sentBeforeRestart = hook.received.length;
    platform = createPlatform({ config: config!, simulator: false });
    await platform.start();
    app = await createApiApp({ platform, server: config!.server });
    await platform.drain();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const resent = hook.received.slice(sentBeforeRestart).map((r) => String(r.headers['webhook-id']));
    assert.deepEqual(resent.filter((id) => deliveredIds.has(id)), [], 'nothing delivered before the final checkpoint is sent again');
  } finally {
    await app.close();
    await platform.close();
    await hook.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('without delivery channels the dead-letter routes say delivery is not configured', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gp-delivery-off-'));
  const { config } = parseConfig({ dataDir: dir, store: { url: 'duckdb::memory:' }, simulator: { enabled: false } });
  const platform = createPlatform({ config: config!, simulator: false });
  await platform.start();
  const app = await createApiApp({ platform, server: config!.server });
  try {
    const response = await app.inject({ url: '/api/alerts/dead-letters' });
    assert.equal(response.statusCode, 404);
    assert.match(response.json<{ error: { message: string } }>().error.message, /alerts\.delivery/);
  } finally {
    await app.close();
    await platform.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
