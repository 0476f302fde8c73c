import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAlertManager } from '../../src/alerts/index.js';
import { GpError } from '../../src/model/index.js';
import type { AlertEvent } from '../../src/model/index.js';
import { MINUTE, POLICY, T0, finding, setupManager } from '../helpers/alerts.js';

void test('assigning an open alert sets its assignee and emits an assign transition naming who and by whom', () => {
  const { manager, events, kinds } = setupManager();
  manager.onFinding(finding(T0));
  const id = events[0]!.alert.id;
  const assigned = manager.assign(id, T0 + MINUTE, 'ana', 'lead', 'feeder 3 is hers');
  assert.equal(assigned?.assignee, 'ana');
  assert.equal(assigned?.status, 'open', 'assigning does not acknowledge');
  assert.deepEqual(kinds(), ['open', 'assign']);
  const transition = events[1]!.transition;
  assert.deepEqual([transition.id, transition.assignee, transition.by, transition.note, transition.time], [`${id}:1`, 'ana', 'lead', 'feeder 3 is hers', T0 + MINUTE]);
  assert.equal(transition.explain, 'assigned to ana by lead: feeder 3 is hers');
  // Again to the same person: nothing new. To someone else: a new transition.
  manager.assign(id, T0 + 2 * MINUTE, 'ana');
  assert.equal(events.length, 2);
  manager.assign(id, T0 + 2 * MINUTE, 'ben');
  assert.deepEqual([events.length, events[2]?.alert.assignee], [3, 'ben']);
  // The assignee stays through later transitions and an acknowledge.
  manager.acknowledge(id, T0 + 3 * MINUTE, 'ben');
  assert.equal(events.at(-1)?.alert.assignee, 'ben');
});

void test('assign: unknown or resolved alerts give undefined, an empty assignee is refused naming the field', () => {
  const { manager, events } = setupManager();
  manager.onFinding(finding(T0));
  const id = events[0]!.alert.id;
  assert.equal(manager.assign('al_0000000000000000', T0, 'ana'), undefined);
  assert.throws(
    () => manager.assign(id, T0, ' '),
    (error: unknown) => error instanceof GpError && error.code === 'GP_INPUT_INVALID' && /assignee: expected a non-empty text, got " "/.test(error.message),
  );
  manager.resolve(id, T0 + MINUTE, 'ana');
  assert.equal(manager.assign(id, T0 + 2 * MINUTE, 'ana'), undefined);
});

void test('the assignee survives a checkpoint', () => {
  const events: AlertEvent[] = [];
  const before = createAlertManager({ policy: POLICY, emit: (e) => events.push(e) });
  before.onFinding(finding(T0));
  before.assign(events[0]!.alert.id, T0, 'ana');
  const after = createAlertManager({ policy: POLICY, emit: (e) => events.push(e) });
  after.restore(JSON.parse(JSON.stringify(before.snapshot())));
  assert.equal(after.findAlert(events[0]!.alert.id)?.assignee, 'ana');
});
