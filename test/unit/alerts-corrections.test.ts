import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MINUTE, T0, finding, setupManager } from '../helpers/alerts.js';

// A rule over 1-minute averages: the window [T0, T0+1m) first said "holds" (alert opened at its
// end); a LATE reading amended it, and the re-evaluation says it does not.
const ruleFinding = (time: number, extra: Parameters<typeof finding>[1] = {}) =>
  finding(time, { type: 'overstrain', detector: 'rule', metric: 'torque_nm', explain: `avg(torque_nm, 1m) > 65 at ${time}`, ...extra });

void test('a correction that says the condition no longer holds closes the open alert with a correct transition', () => {
  const { manager, events, kinds } = setupManager();
  manager.onFinding(ruleFinding(T0 + MINUTE, { score: 0.7, severity: 'warning' }));
  manager.onFinding(ruleFinding(T0 + MINUTE, { active: false, correction: true, explain: 'avg(torque_nm, 1m) 61 after amendment (revision 1)' }));
  assert.deepEqual(kinds(), ['open', 'correct']);
  const corrected = events[1];
  assert.equal(corrected?.transition.status, 'resolved');
  assert.equal(corrected?.alert.corrected, true);
  assert.equal(corrected?.alert.id, events[0]?.alert.id, 'the same alert, not a new one');
  assert.match(corrected?.transition.explain ?? '', /^corrected: a late reading amended the evidence, overstrain no longer holds/);
  assert.equal(manager.openCount(), 0);
});

void test('a correction that says the condition now holds opens an alert whose first transition is correct', () => {
  const { manager, events, kinds } = setupManager({ minDurationMs: 5 * MINUTE });
  manager.onFinding(ruleFinding(T0 + MINUTE, { correction: true, score: 0.8, severity: 'critical' }));
  // Opened at once (minDuration does not apply: the amended window already qualifies).
  assert.deepEqual(kinds(), ['correct']);
  assert.equal(events[0]?.transition.status, 'open');
  assert.equal(events[0]?.transition.seq, 0);
  assert.equal(events[0]?.alert.openedAt, T0 + MINUTE);
  assert.equal(events[0]?.alert.corrected, true);
  assert.equal(manager.openCount(), 1);
});

void test('a correction that brings back a resolved alert within its cooldown reopens it as correct; without a correction it is a reopen', () => {
  const corrected = setupManager();
  corrected.manager.onFinding(ruleFinding(T0));
  corrected.manager.onFinding(ruleFinding(T0 + MINUTE, { active: false }));
  corrected.manager.onFinding(ruleFinding(T0 + 2 * MINUTE, { correction: true }));
  assert.deepEqual(corrected.kinds(), ['open', 'resolve', 'correct']);
  assert.equal(corrected.events[2]?.alert.status, 'open');
  const plain = setupManager();
  plain.manager.onFinding(ruleFinding(T0));
  plain.manager.onFinding(ruleFinding(T0 + MINUTE, { active: false }));
  plain.manager.onFinding(ruleFinding(T0 + 2 * MINUTE));
  assert.deepEqual(plain.kinds(), ['open', 'resolve', 'reopen']);
});

void test('a correction of a condition that never opened an alert (still pending) leaves nothing behind', () => {
  const { manager, events } = setupManager({ minDurationMs: 5 * MINUTE });
  manager.onFinding(ruleFinding(T0));
  manager.onFinding(ruleFinding(T0, { active: false, correction: true }));
  manager.onFinding(ruleFinding(T0 + 6 * MINUTE));
  assert.deepEqual(events, [], 'the pending condition was discarded: the later finding starts a new wait');
});
