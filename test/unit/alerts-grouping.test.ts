// Site incidents in delivery: the grouper holds alerts of the incident types for a group wait and
// turns a site outage into one incident notification (opened, updated, resolved) instead of one page
// per device, with the grouping policy of GET /api/incidents. Wall time is given explicitly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAlertManager, createAlertRouter, createDeliveryWorker, createIncidentGrouper, createTargetPolicy, createWebhookChannel, groupIncidents } from '../../src/alerts/index.js';
import type { GroupedOutput, IncidentNotice } from '../../src/alerts/index.js';
import type { AlertEvent } from '../../src/model/index.js';
import { MINUTE, POLICY, SECOND, T0, finding } from '../helpers/alerts.js';
import { SECRET, receiver, signatureValid, until } from '../helpers/webhook-receiver.js';

const INCIDENTS = { minDevices: 5, minShare: 0.5, windowMs: 2 * MINUTE, types: ['silence', 'outage'] };
const WAIT = 30 * SECOND;
const INTERVAL = 5 * MINUTE;
const WALL = 1_800_000_000_000;

/** Real alert events: a manager fed silence findings (and their clears). */
function fleet() {
  const events: AlertEvent[] = [];
  const manager = createAlertManager({ policy: POLICY, emit: (event) => events.push(event) });
  const silent = (key: string, site: string, at: number) =>
    manager.onFinding(finding(at, { key, site, type: 'silence', detector: 'silence', holds: true, severity: 'warning', explain: `no reading from ${key}` }));
  const back = (key: string, site: string, at: number) => manager.onFinding(finding(at, { key, site, type: 'silence', detector: 'silence', active: false, severity: 'warning' }));
  /** The events emitted by `run`. */
  const during = (run: () => void): AlertEvent[] => {
    const from = events.length;
    run();
    return events.slice(from);
  };
  return { manager, silent, back, during };
}

const meter = (site: string, index: number) => `${site}-m${String(index).padStart(2, '0')}`;
const incidentsOf = (outputs: readonly GroupedOutput[]): IncidentNotice[] => outputs.flatMap((o) => (o.kind === 'incident' ? [o.notice] : []));
const alertsOf = (outputs: readonly GroupedOutput[]): AlertEvent[] => outputs.flatMap((o) => (o.kind === 'alert' ? [o.event] : []));

void test('50 meters of a site going silent give one incident.opened linking the 50 alerts; a lone silent meter elsewhere is paged on its own', () => {
  const { silent, during, manager } = fleet();
  const grouper = createIncidentGrouper({ policy: INCIDENTS, groupWaitMs: WAIT, groupIntervalMs: INTERVAL });
  const outage = during(() => {
    for (let i = 0; i < 50; i++) silent(meter('s-1', i), 's-1', T0 + i * 800);
  });
  const lone = during(() => silent(meter('s-2', 7), 's-2', T0 + 10 * SECOND));
  const spike = during(() => manager.onFinding(finding(T0 + 11 * SECOND, { key: 'm-spike', site: 's-3' })));
  assert.equal(outage.length, 50);
  assert.equal(grouper.handles(spike[0]!), false, 'other alert types are not held');
  for (const event of [...outage, ...lone]) assert.deepEqual(grouper.offer(event, WALL + 1000), []);

  assert.deepEqual(grouper.due(WALL + 1000 + WAIT - 1), [], 'nothing before the group wait ends');
  const outputs = grouper.due(WALL + 1000 + WAIT);
  const notices = incidentsOf(outputs);
  assert.equal(notices.length, 1, 'one incident notification, not 50 pages');
  const opened = notices[0]!;
  assert.equal(opened.kind, 'incident.opened');
  assert.equal(opened.incident.hint, 'site outage');
  assert.equal(opened.incident.site, 's-1');
  assert.equal(opened.incident.deviceCount, 50);
  assert.deepEqual(new Set(opened.incident.alertIds), new Set(outage.map((e) => e.alert.id)));
  assert.deepEqual(opened.incident.devices, Array.from({ length: 50 }, (_, i) => meter('s-1', i)));
  // The same incident, with the same id, as GET /api/incidents computes from the stored alerts.
  const computed = groupIncidents([...outage, ...lone].map((e) => e.alert), { policy: INCIDENTS });
  assert.equal(opened.incident.id, computed.find((i) => i.hint === 'site outage')!.id);
  assert.equal(opened.id, `${opened.incident.id}:opened`);
  // The lone meter's own transition goes out as it is.
  assert.deepEqual(alertsOf(outputs).map((e) => e.transition.id), [lone[0]!.transition.id]);
  assert.deepEqual(grouper.stats(), { held: 0, openIncidents: 1, absorbed: 50, notices: 1 });
});

void test('meters that join an open incident later are linked without a page each: one incident.updated per group interval, one incident.resolved', () => {
  const { silent, back, during } = fleet();
  const grouper = createIncidentGrouper({ policy: INCIDENTS, groupWaitMs: WAIT, groupIntervalMs: INTERVAL });
  const first = during(() => {
    for (let i = 0; i < 10; i++) silent(meter('s-1', i), 's-1', T0 + i * SECOND);
  });
  for (const event of first) grouper.offer(event, WALL);
  const opened = incidentsOf(grouper.due(WALL + WAIT));
  assert.deepEqual(opened.map((n) => n.kind), ['incident.opened']);
  const id = opened[0]!.incident.id;

  // Three more meters of the site, within the incident's window, some seconds of wall time later.
  const later = during(() => {
    for (let i = 10; i < 13; i++) silent(meter('s-1', i), 's-1', T0 + 40 * SECOND + i * SECOND);
  });
  for (const event of later) assert.deepEqual(grouper.offer(event, WALL + WAIT + 5 * SECOND), []);
  assert.deepEqual(grouper.due(WALL + 2 * WAIT + 5 * SECOND), [], 'linked at their group wait, but the group interval has not passed');
  assert.equal(grouper.nextDueAt(), WALL + WAIT + INTERVAL);
  const updated = incidentsOf(grouper.due(WALL + WAIT + INTERVAL));
  assert.equal(updated.length, 1);
  assert.equal(updated[0]!.kind, 'incident.updated');
  assert.equal(updated[0]!.id, `${id}:updated:13`);
  assert.deepEqual(updated[0]!.incident.added, later.map((e) => e.alert.id));
  assert.deepEqual(grouper.due(WALL + WAIT + 2 * INTERVAL), [], 'no update without news');

  // Every meter comes back: nothing per device, one incident.resolved after the last.
  const wall = WALL + WAIT + 2 * INTERVAL;
  const clears = during(() => {
    for (let i = 0; i < 13; i++) back(meter('s-1', i), 's-1', T0 + 10 * MINUTE + i * SECOND);
  });
  assert.equal(clears.length, 13);
  const afterClears = clears.flatMap((event) => grouper.offer(event, wall));
  assert.deepEqual(afterClears.map((o) => (o.kind === 'incident' ? o.notice.id : o.event.transition.id)), [`${id}:resolved`]);
  const resolved = incidentsOf(afterClears)[0]!;
  assert.equal(resolved.incident.status, 'resolved');
  assert.equal(resolved.incident.endedAt, T0 + 10 * MINUTE + 12 * SECOND);
  assert.equal(resolved.incident.alertCount, 13);
});

void test('alerts of a site that do not reach the policy are sent one by one after the group wait, with every held transition in order', () => {
  const { silent, back, during } = fleet();
  const grouper = createIncidentGrouper({ policy: INCIDENTS, groupWaitMs: WAIT, groupIntervalMs: INTERVAL });
  const events = during(() => {
    for (let i = 0; i < 4; i++) silent(meter('s-4', i), 's-4', T0 + i * SECOND);
    back(meter('s-4', 0), 's-4', T0 + 20 * SECOND);
  });
  for (const event of events) grouper.offer(event, WALL);
  const released = alertsOf(grouper.due(WALL + WAIT));
  assert.deepEqual(released.map((e) => e.transition.id), events.map((e) => e.transition.id), 'four device pages and the clear, in order');
  // A later transition of a released alert is not held again.
  const clear = during(() => back(meter('s-4', 1), 's-4', T0 + 60 * SECOND));
  assert.deepEqual(alertsOf(grouper.offer(clear[0]!, WALL + WAIT + 1)).map((e) => e.transition.id), [clear[0]!.transition.id]);
});

void test('a restored state pages nothing twice: replayed transitions are dropped, held alerts are decided after the restart with the same incident id', () => {
  const { silent, back, during } = fleet();
  const options = { policy: INCIDENTS, groupWaitMs: WAIT, groupIntervalMs: INTERVAL };
  const before = createIncidentGrouper(options);
  const outage = during(() => {
    for (let i = 0; i < 8; i++) silent(meter('s-1', i), 's-1', T0 + i * SECOND);
  });
  for (const event of outage) before.offer(event, WALL);
  const opened = incidentsOf(before.due(WALL + WAIT))[0]!;
  // Five meters of another site go silent; the process stops while they are held.
  const held = during(() => {
    for (let i = 0; i < 5; i++) silent(meter('s-2', i), 's-2', T0 + 3 * MINUTE + i * SECOND);
  });
  for (const event of held) before.offer(event, WALL + WAIT + 1000);
  const state = JSON.parse(JSON.stringify(before.snapshot())) as unknown;

  const after = createIncidentGrouper(options);
  const restartedAt = WALL + 10 * MINUTE;
  after.restore(state, restartedAt);
  // The engine replays from its checkpoint: every transition again, same ids.
  for (const event of [...outage, ...held]) assert.deepEqual(after.offer(event, restartedAt), []);
  const decided = incidentsOf(after.due(restartedAt + WAIT));
  assert.deepEqual(decided.map((n) => [n.kind, n.incident.site, n.incident.deviceCount]), [['incident.opened', 's-2', 5]]);
  const expected = groupIncidents(held.map((e) => e.alert), { policy: INCIDENTS })[0]!;
  assert.equal(decided[0]!.id, `${expected.id}:opened`);
  // The first incident goes on where it was: its clears give one incident.resolved.
  const clears = during(() => {
    for (let i = 0; i < 8; i++) back(meter('s-1', i), 's-1', T0 + 20 * MINUTE);
  });
  const resolved = clears.flatMap((event) => after.offer(event, restartedAt + WAIT + 1));
  assert.deepEqual(incidentsOf(resolved).map((n) => n.id), [`${opened.incident.id}:resolved`]);
  assert.throws(() => after.restore({ version: 7 }, restartedAt), /grouping state: expected version 1/);
});

void test('the delivery worker sends one signed incident page, keeps held alerts in its state file across a stop, and pages nothing twice after the restart', { timeout: 30_000 }, async () => {
  const hook = await receiver();
  const dir = mkdtempSync(join(tmpdir(), 'gp-grouping-'));
  const statePath = join(dir, 'alerts', 'incident-groups.json');
  const worker = () =>
    createDeliveryWorker({
      channels: [createWebhookChannel({ name: 'hook', url: hook.url, secrets: [SECRET], policy: createTargetPolicy({ allowedCidrs: ['127.0.0.0/8'] }) })],
      router: createAlertRouter([{ channels: ['hook'] }]),
      grouping: { policy: INCIDENTS, groupWaitMs: 200, groupIntervalMs: 60_000, statePath },
    });
  const { silent, back, during } = fleet();
  const outage = during(() => {
    for (let i = 0; i < 6; i++) silent(meter('s-1', i), 's-1', T0 + i * SECOND);
  });
  let delivery = worker();
  try {
    await delivery.ready();
    for (const event of outage) assert.equal(delivery.submit(event).accepted, true);
    // idle() does not wait for the group wait: the held alerts are safe in the state file.
    await delivery.idle();
    assert.equal(hook.received.length, 0);
    await delivery.close();

    delivery = worker();
    await delivery.ready();
    // Replayed after the restart: held already, not held twice.
    for (const event of outage) delivery.submit(event);
    await until('the incident page', () => hook.received.length >= 1, 10_000);
    await delivery.idle();
    const ids = hook.received.map((r) => String(r.headers['webhook-id']));
    assert.equal(ids.length, 1, ids.join(' '));
    assert.match(ids[0]!, /^in_[0-9a-f]{16}:opened$/);
    assert.ok(signatureValid(hook.received[0]!));
    const body = JSON.parse(hook.received[0]!.body) as { type: string; data: { incident: { alertIds: string[]; deviceCount: number; hint: string } } };
    assert.equal(body.type, 'incident.opened');
    assert.equal(body.data.incident.deviceCount, 6);
    assert.deepEqual(new Set(body.data.incident.alertIds), new Set(outage.map((e) => e.alert.id)));
    await delivery.close();

    // Once more from the state file: the incident is known, the replay pages nothing; the clears page once.
    delivery = worker();
    await delivery.ready();
    for (const event of outage) delivery.submit(event);
    const clears = during(() => {
      for (let i = 0; i < 6; i++) back(meter('s-1', i), 's-1', T0 + 10 * MINUTE);
    });
    for (const event of clears) delivery.submit(event);
    await delivery.idle();
    assert.deepEqual(hook.received.map((r) => String(r.headers['webhook-id'])), [ids[0]!, ids[0]!.replace(':opened', ':resolved')]);
  } finally {
    await delivery.close();
    await hook.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('an incident notification the receiver refuses is a dead letter with its incident, and a redelivery sends the same id and body', { timeout: 30_000 }, async () => {
  const hook = await receiver();
  hook.status.code = 400;
  const delivery = createDeliveryWorker({
    channels: [createWebhookChannel({ name: 'hook', url: hook.url, secrets: [SECRET], policy: createTargetPolicy({ allowedCidrs: ['127.0.0.0/8'] }) })],
    router: createAlertRouter([{ channels: ['hook'], kinds: ['open'] }]),
    grouping: { policy: INCIDENTS, groupWaitMs: 50, groupIntervalMs: 60_000 },
  });
  const { silent, during } = fleet();
  try {
    await delivery.ready();
    for (const event of during(() => {
      for (let i = 0; i < 5; i++) silent(meter('s-5', i), 's-5', T0 + i * SECOND);
    }))
      delivery.submit(event);
    // Without a state file, idle() waits for the group wait and the attempt.
    await delivery.idle();
    const [dead] = await delivery.listDeadLetters();
    assert.match(dead?.transitionId ?? '', /^in_[0-9a-f]{16}:opened$/);
    assert.equal(dead?.alertId, dead?.incident?.incident.id);
    assert.equal(dead?.incident?.incident.deviceCount, 5);
    hook.status.code = 200;
    assert.deepEqual(await delivery.redeliver(dead.id), { delivered: true, id: dead.id, channel: 'hook' });
    const [refused, redelivered] = hook.received;
    assert.equal(String(redelivered!.headers['webhook-id']), dead.transitionId);
    assert.equal(redelivered!.body, refused!.body, 'the same body');
    assert.equal((JSON.parse(redelivered!.body) as { type: string }).type, 'incident.opened');
  } finally {
    await delivery.close();
    await hook.close();
  }
});
