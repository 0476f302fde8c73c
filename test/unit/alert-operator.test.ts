import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alertId } from '../../src/alerts/index.js';
import { GpError } from '../../src/model/index.js';
import type { AlertPolicy } from '../../src/model/index.js';
import { MINUTE, POLICY, SECOND, T0, finding, setupManager } from '../helpers/alerts.js';

function setup(policy: Partial<AlertPolicy> = {}) {
  const recorded = setupManager(policy);
  return { ...recorded, kinds: recorded.kindsWithStatus };
}

const ID = alertId('power', 'm-1', 'spike', T0);

void test('acknowledging an open alert emits an acknowledge transition with who and why; the alert stays active', () => {
  const { manager, events } = setup();
  manager.onFinding(finding(T0));
  const alert = manager.acknowledge(ID, T0 + MINUTE, 'alice', 'looking into it');
  assert.equal(alert?.status, 'acknowledged');
  assert.equal(alert?.updatedAt, T0 + MINUTE);
  assert.equal(events.length, 2);
  assert.deepEqual(events[1]!.transition, {
    id: `${ID}:1`,
    alertId: ID,
    seq: 1,
    kind: 'acknowledge',
    time: T0 + MINUTE,
    status: 'acknowledged',
    severity: 'info',
    score: 0.3,
    explain: 'acknowledged by alice: looking into it',
    by: 'alice',
    note: 'looking into it',
  });
  assert.equal(events[1]!.alert.status, 'acknowledged');
  assert.equal(manager.openCount(), 1, 'an acknowledged alert is still open');
  assert.deepEqual(manager.openAlerts().map((a) => [a.id, a.status]), [[ID, 'acknowledged']]);
  assert.equal(manager.findAlert(ID)?.status, 'acknowledged');
});

void test('an acknowledged alert keeps its status through updates and escalations, and resolves as usual', () => {
  const { manager, kinds } = setup();
  manager.onFinding(finding(T0));
  manager.acknowledge(ID, T0 + 10 * SECOND);
  manager.onFinding(finding(T0 + 20 * SECOND, { score: 0.45 })); // +0.15: update
  manager.onFinding(finding(T0 + 30 * SECOND, { score: 0.9, severity: 'critical' })); // escalate
  manager.onWatermark(T0 + 30 * SECOND + POLICY.resolveAfterMs + 1); // absence resolves it
  assert.deepEqual(kinds(), ['open:open', 'acknowledge:acknowledged', 'update:acknowledged', 'escalate:acknowledged', 'resolve:resolved']);
});

void test('acknowledging twice changes nothing; unknown, pending and resolved alerts give undefined', () => {
  const { manager, events } = setup();
  manager.onFinding(finding(T0));
  manager.acknowledge(ID, T0 + SECOND, 'alice');
  const again = manager.acknowledge(ID, T0 + 2 * SECOND, 'bob');
  assert.equal(again?.status, 'acknowledged');
  assert.equal(events.length, 2, 'no second acknowledge transition');
  assert.equal(manager.acknowledge('al_0000000000000000', T0, 'alice'), undefined);
  assert.equal(manager.resolve('al_0000000000000000', T0, 'alice'), undefined);
  assert.equal(manager.acknowledge('', T0), undefined);

  const pending = setup({ minDurationMs: MINUTE });
  pending.manager.onFinding(finding(T0));
  assert.equal(pending.manager.findAlert(ID), undefined, 'a condition not yet held long enough has no alert');
  assert.equal(pending.manager.acknowledge(ID, T0), undefined);
  assert.equal(pending.events.length, 0);

  manager.onFinding(finding(T0 + 3 * SECOND, { active: false, explain: 'back to normal' }));
  assert.equal(manager.findAlert(ID)?.status, 'resolved', 'a resolved alert is still found during its cooldown');
  assert.equal(manager.acknowledge(ID, T0 + 4 * SECOND), undefined);
  assert.equal(manager.resolve(ID, T0 + 4 * SECOND), undefined);
});

void test('an operator resolve closes the alert; the condition coming back reopens it within the cooldown, later opens a new one', () => {
  const { manager, events, kinds } = setup();
  manager.onFinding(finding(T0));
  const resolved = manager.resolve(ID, T0 + MINUTE, 'bob', 'meter replaced');
  assert.equal(resolved?.status, 'resolved');
  assert.equal(resolved?.resolvedAt, T0 + MINUTE);
  assert.equal(manager.openCount(), 0);
  const step = events[1]!.transition;
  assert.deepEqual([step.kind, step.status, step.by, step.note, step.explain], ['resolve', 'resolved', 'bob', 'meter replaced', 'resolved by bob: meter replaced']);

  manager.onFinding(finding(T0 + 2 * MINUTE, { score: 0.6, severity: 'warning' }));
  assert.deepEqual(kinds(), ['open:open', 'resolve:resolved', 'reopen:open']);
  assert.equal(events[2]!.alert.id, ID, 'within the cooldown: the same alert');

  manager.resolve(ID, T0 + 3 * MINUTE);
  assert.equal(events[3]!.transition.by, 'operator', 'an unnamed operator');
  assert.equal('note' in events[3]!.transition, false);
  const later = T0 + 3 * MINUTE + POLICY.cooldownMs + SECOND;
  manager.onFinding(finding(later));
  assert.equal(events[4]!.transition.kind, 'open');
  assert.equal(events[4]!.alert.id, alertId('power', 'm-1', 'spike', later), 'after the cooldown: a new alert');
});

void test('operator actions never move an alert back in time, and refuse a time that is not a number', () => {
  const { manager, events } = setup();
  manager.onFinding(finding(T0));
  manager.onFinding(finding(T0 + 2 * MINUTE));
  const acknowledged = manager.acknowledge(ID, T0 + MINUTE, 'alice'); // an operator clock behind the data
  assert.equal(events[1]!.transition.time, T0 + 2 * MINUTE);
  assert.equal(acknowledged?.updatedAt, T0 + 2 * MINUTE);
  assert.throws(
    () => manager.resolve(ID, Number.NaN, 'alice'),
    (error: unknown) => error instanceof GpError && error.code === 'GP_INPUT_INVALID' && /resolve: at: expected epoch milliseconds/.test(error.message),
  );
  assert.equal(manager.findAlert(ID)?.status, 'acknowledged', 'a refused action changes nothing');
});

void test('acknowledged status survives a checkpoint: the resumed manager emits what an uninterrupted one does', () => {
  const script = (manager: ReturnType<typeof setup>['manager'], part: 1 | 2): void => {
    if (part === 1) {
      manager.onFinding(finding(T0));
      manager.onFinding(finding(T0, { key: 'm-2' }));
      manager.acknowledge(ID, T0 + SECOND, 'alice', 'on it');
      manager.resolve(alertId('power', 'm-2', 'spike', T0), T0 + SECOND, 'bob');
    } else {
      manager.onFinding(finding(T0 + MINUTE, { score: 0.5, severity: 'warning' }));
      manager.onFinding(finding(T0 + MINUTE, { key: 'm-2' }));
      manager.onWatermark(T0 + 20 * MINUTE);
    }
  };
  const straight = setup();
  script(straight.manager, 1);
  script(straight.manager, 2);

  const first = setup();
  script(first.manager, 1);
  const resumed = setup();
  resumed.manager.restore(JSON.parse(JSON.stringify(first.manager.snapshot())));
  assert.equal(resumed.manager.findAlert(ID)?.status, 'acknowledged');
  script(resumed.manager, 2);
  assert.deepEqual([...first.events, ...resumed.events], straight.events);
  assert.deepEqual(straight.kinds(), ['open:open', 'open:open', 'acknowledge:acknowledged', 'resolve:resolved', 'escalate:acknowledged', 'reopen:open', 'resolve:resolved', 'resolve:resolved']);
});
