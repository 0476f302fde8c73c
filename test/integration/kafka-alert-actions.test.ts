// Operator actions in a Kafka deployment: `gridpulse process` members hold the alerts (in the alert
// managers of the partitions they own) and write to a PostgreSQL store; `gridpulse up` on the same
// store serves the API. Acknowledge, assign and resolve from the API reach the member that holds the
// alert, survive a SIGKILL of that member, and an action nobody can take is withdrawn with a 503.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApiApp } from '../../src/api/index.js';
import { createPlatform } from '../../src/cli/platform.js';
import { parseConfig } from '../../src/config/index.js';
import { SECRET, receiver, signatureValid, until } from '../helpers/webhook-receiver.js';
import { assignedSome, checkpointedUpTo, produce, query, startPrivateKafka, startProcess, TestDatabases, type PrivateKafka, type Running } from '../helpers/kafka-processes.js';

const run = `${process.pid}-${Date.now()}`;
const dir = mkdtempSync(join(tmpdir(), 'gp-kafka-actions-'));
const databases = new TestDatabases(`gp_kact_${run}`);
const T0 = Date.UTC(2026, 0, 5, 0, 0, 0);
const INTERVAL_MS = 30_000;
const STEPS = 240; // 2 hours
const METERS = 12;
/** m-3, m-8 and m-10 go dark (0 kW) after the first hour and stay so: their outage alerts are open at the end. */
const DARK = new Set(['m-3', 'm-8', 'm-10']);

let broker: PrivateKafka | undefined;
let storeUrl = '';
let topic = '';
const group = `actions-${run}`;
let member: Running | undefined;
let records = 0;

function startMember(name: string): Running {
  return startProcess({ kafkaUrl: broker!.url, storeUrl, group, topic, dir, name, untilEnd: false });
}

async function stopMember(signal: NodeJS.Signals): Promise<void> {
  if (member === undefined) return;
  member.child.kill(signal);
  await member.exit;
  member = undefined;
}

async function openOutage(key: string): Promise<string> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const rows = await query<{ id: string }>(storeUrl, `SELECT id FROM alerts WHERE key = $1 AND type = 'outage' AND status = 'open'`, [key]).catch(() => []);
    if (rows.length === 1) return rows[0]!.id;
    if (Date.now() > deadline) assert.fail(`no open outage alert of ${key} in the store:\n${member?.output() ?? ''}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

before(async () => {
  broker = startPrivateKafka(dir);
  topic = `actions-power-${run}`;
  const lines: string[] = [];
  for (let step = 0; step < STEPS; step++) {
    for (let m = 0; m < METERS; m++) {
      const key = `m-${m}`;
      const usageKw = DARK.has(key) && step >= STEPS / 2 ? 0 : 2 + ((step * 7 + m) % 10) * 0.02;
      lines.push(JSON.stringify({ meterId: key, siteId: `s-${m % 4}`, timestamp: T0 + step * INTERVAL_MS + m * 100, usageKw, voltage: 230, current: (usageKw * 1000) / 230 / 0.97, pf: 0.97 }));
    }
  }
  records = lines.length;
  storeUrl = await databases.create('store');
  await produce(broker.url, topic, lines);
  member = startMember('member-1');
  await checkpointedUpTo(storeUrl, group, records, [member]);
});

after(async () => {
  await stopMember('SIGKILL');
  broker?.stop();
  await databases.dropAll();
  rmSync(dir, { recursive: true, force: true });
});

async function platformApi(name: string, hookUrl?: string) {
  const delivery =
    hookUrl === undefined
      ? {}
      : {
          alerts: {
            delivery: {
              allow: { cidrs: ['127.0.0.0/8'] },
              channels: { hook: { type: 'webhook', url: hookUrl, secret: SECRET, timeout: '2s' } },
              routes: [{ name: 'all', channels: ['hook'] }],
              grouping: { groupWait: '200ms' },
            },
          },
        };
  const { config, issues } = parseConfig({ dataDir: join(dir, name), store: { url: storeUrl }, simulator: { enabled: false }, ...delivery });
  assert.deepEqual(issues, []);
  const platform = createPlatform({ config: config!, simulator: false });
  await platform.start();
  const app = await createApiApp({ platform, server: config!.server });
  return {
    app,
    close: async () => {
      await app.close();
      await platform.close();
    },
  };
}

test('acknowledge, assign and resolve from the API of gridpulse up reach the gridpulse process member that holds the alert, and survive its SIGKILL', { timeout: 240_000 }, async () => {
  const id = await openOutage('m-3');
  const { app, close } = await platformApi('up-1');
  try {
    const ack = await app.inject({ method: 'POST', url: `/api/alerts/${encodeURIComponent(id)}/ack`, payload: { by: 'ana', note: 'crew sent' } });
    assert.equal(ack.statusCode, 200, ack.body);
    assert.equal(ack.json<{ alert: { status: string } }>().alert.status, 'acknowledged');
    assert.match(member!.output(), new RegExp(`acknowledge of alert ${id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} applied .*by ana`));
    const stored = await query<{ status: string }>(storeUrl, 'SELECT status FROM alerts WHERE id = $1', [id]);
    assert.deepEqual(stored, [{ status: 'acknowledged' }], 'the member wrote the acknowledged alert to the store before answering');

    // The action is in the member's checkpoint: a SIGKILLed member's successor holds the alert acknowledged.
    await stopMember('SIGKILL');
    member = startMember('member-2');
    await assignedSome(member, 'the restarted member');
    const deadline = Date.now() + 60_000;
    while (!/restored checkpoint/.test(member.output()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
    const assign = await app.inject({ method: 'POST', url: `/api/alerts/${encodeURIComponent(id)}/assign`, payload: { assignee: 'bo', by: 'ana' } });
    assert.equal(assign.statusCode, 200, `${assign.body}\n${member.output()}`);
    const assigned = assign.json<{ alert: { status: string; assignee?: string } }>().alert;
    assert.equal(assigned.status, 'acknowledged', 'the acknowledgement survived the SIGKILL of the member that applied it');
    assert.equal(assigned.assignee, 'bo');

    const resolve = await app.inject({ method: 'POST', url: `/api/alerts/${encodeURIComponent(id)}/resolve`, payload: { by: 'bo', note: 'feeder repaired' } });
    assert.equal(resolve.statusCode, 200, resolve.body);
    assert.equal(resolve.json<{ alert: { status: string } }>().alert.status, 'resolved');
    const detail = await app.inject({ url: `/api/alerts/${encodeURIComponent(id)}` });
    const kinds = detail.json<{ transitions: Array<{ kind: string }> }>().transitions.map((t) => t.kind);
    assert.deepEqual(kinds.filter((kind) => ['acknowledge', 'assign', 'resolve'].includes(kind)), ['acknowledge', 'assign', 'resolve'], kinds.join(', '));

    const again = await app.inject({ method: 'POST', url: `/api/alerts/${encodeURIComponent(id)}/ack`, payload: {} });
    assert.equal(again.statusCode, 409, again.body);
    assert.equal(again.json<{ error: { code: string } }>().error.code, 'GP_CONFLICT');
  } finally {
    await close();
  }
});

test("the platform on the members' store delivers the members' alert transitions to a signed webhook once each, an acknowledge made from its API too", { timeout: 180_000 }, async () => {
  const id = await openOutage('m-10');
  const hook = await receiver();
  const { app, close } = await platformApi('up-delivery', hook.url);
  try {
    // Every transition the member wrote (with its outbox row, in one transaction) is delivered.
    const outbox = async (): Promise<string[]> => (await query<{ id: string }>(storeUrl, 'SELECT id FROM alert_outbox ORDER BY id')).map((row) => row.id);
    const before = await outbox();
    assert.ok(before.length >= 3, `the member's transitions are in the outbox: ${before.join(', ')}`);
    await until('every outbox row delivered', async () => (await query(storeUrl, 'SELECT 1 FROM alert_outbox WHERE delivered_at IS NULL')).length === 0 && hook.received.length >= before.length, 60_000);
    const ack = await app.inject({ method: 'POST', url: `/api/alerts/${encodeURIComponent(id)}/ack`, payload: { by: 'ana' } });
    assert.equal(ack.statusCode, 200, ack.body);
    const after = await outbox();
    await until('the acknowledge delivered', async () => (await query(storeUrl, 'SELECT 1 FROM alert_outbox WHERE delivered_at IS NULL')).length === 0 && hook.received.length >= after.length, 60_000);
    const ids = hook.received.map((r) => String(r.headers['webhook-id'])).sort();
    assert.deepEqual(ids, after, 'each transition exactly once');
    assert.ok(hook.received.every(signatureValid));
    const acknowledged = hook.received
      .map((r) => JSON.parse(r.body) as { type: string; data: { alert?: { id: string; status: string }; transition?: { kind: string; by: string | null } } })
      .filter((body) => body.type === 'alert.acknowledge' && body.data.alert?.id === id && body.data.alert.status === 'acknowledged' && body.data.transition?.by === 'ana');
    assert.equal(acknowledged.length, 1, 'the acknowledge applied by the member was delivered once');
  } finally {
    await close();
    await hook.close();
  }
});

test('with no member running, an action on a member-held alert is withdrawn after the wait and answered 503 naming the cause; nothing changes', { timeout: 120_000 }, async () => {
  const id = await openOutage('m-8');
  await stopMember('SIGTERM');
  const { app, close } = await platformApi('up-2');
  try {
    const ack = await app.inject({ method: 'POST', url: `/api/alerts/${encodeURIComponent(id)}/ack`, payload: { by: 'ana' } });
    assert.equal(ack.statusCode, 503, ack.body);
    const error = ack.json<{ error: { code: string; message: string } }>().error;
    assert.equal(error.code, 'GP_UNAVAILABLE');
    assert.match(error.message, /not held by this platform's engine, and no engine process .* took the acknowledge within \d+ s; nothing was changed/);
    assert.deepEqual(await query(storeUrl, 'SELECT status FROM alerts WHERE id = $1', [id]), [{ status: 'open' }]);
    assert.deepEqual(await query(storeUrl, `SELECT outcome FROM alert_actions WHERE alert_id = $1`, [id]), [{ outcome: 'cancelled' }]);
    const missing = await app.inject({ method: 'POST', url: '/api/alerts/no-such-alert/ack', payload: {} });
    assert.equal(missing.statusCode, 404, missing.body);
  } finally {
    await close();
  }
});
