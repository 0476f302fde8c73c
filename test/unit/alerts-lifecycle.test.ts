import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alertId, createAlertManager } from '../../src/alerts/index.js';
import { GpError } from '../../src/model/index.js';
import { MINUTE, POLICY, SECOND, T0, finding, setupManager } from '../helpers/alerts.js';

const setup = setupManager;

// node:test tracks each test's promise itself; `void` only tells the linter so.
void test('the first active finding opens an alert at its time, with a deterministic id', () => {
  const { manager, events } = setup();
  manager.onFinding(finding(T0, { score: 0.6, severity: 'warning' }));
  assert.equal(events.length, 1);
  const [event] = events;
  assert.ok(event);
  const id = alertId('power', 'm-1', 'spike', T0);
  assert.match(id, /^al_[0-9a-f]{16}$/);
  assert.deepEqual(event.transition, {
    id: `${id}:0`,
    alertId: id,
    seq: 0,
    kind: 'open',
    time: T0,
    status: 'open',
    severity: 'warning',
    score: 0.6,
    explain: `usageKw 20 kW at ${T0}`,
  });
  assert.equal(event.alert.id, id);
  assert.equal(event.alert.openedAt, T0);
  assert.equal(event.alert.status, 'open');
  assert.equal(event.alert.findings, 1);
  assert.equal(manager.openCount(), 1);
});

void test('many findings of one type and key make one alert; other types and keys get their own', () => {
  const { manager, events } = setup();
  for (let i = 0; i < 50; i++) manager.onFinding(finding(T0 + i * SECOND));
  manager.onFinding(finding(T0 + 10 * SECOND, { type: 'drop' }));
  manager.onFinding(finding(T0 + 20 * SECOND, { key: 'm-2' }));
  // A spike lasting 50 readings at a steady score is one event, not 50.
  assert.deepEqual(
    events.map((e) => [e.transition.kind, e.alert.key, e.alert.type]),
    [
      ['open', 'm-1', 'spike'],
      ['open', 'm-1', 'drop'],
      ['open', 'm-2', 'spike'],
    ],
  );
  assert.equal(new Set(events.map((e) => e.alert.id)).size, 3);
  assert.equal(manager.openCount(), 3);
  const spike = manager.openAlerts().find((a) => a.type === 'spike' && a.key === 'm-1');
  assert.equal(spike?.findings, 50);
  assert.equal(spike?.updatedAt, T0 + 49 * SECOND);
});

void test('a rising severity escalates, a score rise of 0.1 updates, smaller changes stay silent', () => {
  const { manager, events, kinds } = setup();
  manager.onFinding(finding(T0, { score: 0.5, severity: 'warning' }));
  manager.onFinding(finding(T0 + 1 * SECOND, { score: 0.55, severity: 'warning' }));
  manager.onFinding(finding(T0 + 2 * SECOND, { score: 0.6, severity: 'warning' })); // +0.1 over 0.5
  manager.onFinding(finding(T0 + 3 * SECOND, { score: 0.4, severity: 'info' })); // lower: no event, severity stays
  manager.onFinding(finding(T0 + 4 * SECOND, { score: 0.9, severity: 'critical', explain: 'usageKw 90 kW' }));
  manager.onFinding(finding(T0 + 5 * SECOND, { score: 0.95, severity: 'critical' }));
  assert.deepEqual(kinds(), ['open', 'update', 'escalate']);
  const update = events[1];
  assert.equal(update?.transition.score, 0.6);
  assert.equal(update?.transition.time, T0 + 2 * SECOND);
  const escalate = events[2];
  assert.equal(escalate?.transition.severity, 'critical');
  assert.equal(escalate?.transition.explain, 'usageKw 90 kW');
  assert.equal(escalate?.transition.seq, 2);
  const [alert] = manager.openAlerts();
  assert.equal(alert?.severity, 'critical');
  assert.equal(alert?.score, 0.95);
  assert.equal(alert?.peakScore, 0.95);
  assert.equal(alert?.findings, 6);
});

void test('an inactive finding resolves the open alert at its time', () => {
  const { manager, events, kinds } = setup();
  manager.onFinding(finding(T0, { type: 'silence' }));
  manager.onFinding(finding(T0 + 90 * SECOND, { type: 'silence', active: false, explain: 'm-1 reported again' }));
  assert.deepEqual(kinds(), ['open', 'resolve']);
  const resolve = events[1];
  assert.equal(resolve?.transition.time, T0 + 90 * SECOND);
  assert.equal(resolve?.transition.status, 'resolved');
  assert.equal(resolve?.transition.explain, 'm-1 reported again');
  assert.equal(resolve?.alert.resolvedAt, T0 + 90 * SECOND);
  assert.equal(resolve?.alert.id, events[0]?.alert.id);
  assert.equal(manager.openCount(), 0);
  // An inactive finding of another type leaves alerts of this type alone.
  manager.onFinding(finding(T0 + 100 * SECOND));
  manager.onFinding(finding(T0 + 101 * SECOND, { type: 'silence', active: false }));
  assert.equal(manager.openCount(), 1);
});

void test('absence resolves at last active finding + resolveAfterMs, whenever the watermark comes', () => {
  const { manager, events, kinds } = setup();
  manager.onFinding(finding(T0));
  manager.onFinding(finding(T0 + 30 * SECOND));
  manager.onWatermark(T0 + 30 * SECOND + 5 * MINUTE); // exactly resolveAfterMs: not yet absent
  assert.deepEqual(kinds(), ['open']);
  manager.onWatermark(T0 + 3 * 60 * MINUTE); // hours later
  assert.deepEqual(kinds(), ['open', 'resolve']);
  assert.equal(events[1]?.alert.resolvedAt, T0 + 30 * SECOND + 5 * MINUTE);
  assert.equal(events[1]?.transition.time, T0 + 30 * SECOND + 5 * MINUTE);
  assert.equal(manager.openCount(), 0);
});

void test('a finding after a long gap resolves the old episode first, even with no watermark in between', () => {
  const { manager, events, kinds } = setup();
  manager.onFinding(finding(T0));
  manager.onFinding(finding(T0 + 6 * MINUTE));
  assert.deepEqual(kinds(), ['open', 'resolve', 'reopen']);
  assert.equal(events[1]?.alert.resolvedAt, T0 + 5 * MINUTE);
  assert.equal(events[2]?.transition.time, T0 + 6 * MINUTE);
});

void test('a condition that returns within the cooldown reopens the same alert', () => {
  const { manager, events, kinds } = setup();
  manager.onFinding(finding(T0, { score: 0.9, severity: 'critical' }));
  manager.onFinding(finding(T0 + MINUTE, { active: false }));
  manager.onWatermark(T0 + 5 * MINUTE);
  manager.onFinding(finding(T0 + 11 * MINUTE, { score: 0.6, severity: 'warning' })); // resolved + 10 min: still within
  assert.deepEqual(kinds(), ['open', 'resolve', 'reopen']);
  const reopen = events[2];
  assert.equal(reopen?.alert.id, events[0]?.alert.id);
  assert.equal(reopen?.transition.id, `${events[0]?.alert.id}:2`);
  assert.equal(reopen?.alert.status, 'open');
  assert.equal(reopen?.alert.resolvedAt, undefined);
  assert.equal(reopen?.alert.openedAt, T0);
  assert.equal(reopen?.alert.severity, 'warning');
  assert.equal(reopen?.alert.peakScore, 0.9);
  assert.equal(manager.openCount(), 1);
});

void test('after the cooldown the condition opens a new alert with a new id', () => {
  for (const watermarkInBetween of [true, false]) {
    const { manager, events, kinds } = setup();
    manager.onFinding(finding(T0));
    manager.onFinding(finding(T0 + MINUTE, { active: false }));
    if (watermarkInBetween) manager.onWatermark(T0 + 20 * MINUTE);
    manager.onFinding(finding(T0 + 11 * MINUTE + 1));
    assert.deepEqual(kinds(), ['open', 'resolve', 'open']);
    const second = events[2];
    assert.notEqual(second?.alert.id, events[0]?.alert.id);
    assert.equal(second?.alert.id, alertId('power', 'm-1', 'spike', T0 + 11 * MINUTE + 1));
    assert.equal(second?.transition.seq, 0);
    assert.equal(second?.alert.findings, 1);
  }
});

void test('minDuration: a short blip opens nothing, a condition that holds opens when it has held long enough', () => {
  const { manager, events, kinds } = setup({ minDurationMs: 2 * MINUTE });
  // Blip: 30 s of findings, then it clears.
  manager.onFinding(finding(T0));
  manager.onFinding(finding(T0 + 30 * SECOND));
  manager.onFinding(finding(T0 + 40 * SECOND, { active: false }));
  // A blip that lapses (absent past resolveAfterMs) also opens nothing, and does not count towards the next.
  manager.onFinding(finding(T0 + 10 * MINUTE));
  manager.onWatermark(T0 + 16 * MINUTE);
  assert.deepEqual(kinds(), []);
  assert.equal(manager.openCount(), 0);
  // Long condition: a finding every 45 s from T1; held 2 min at T1 + 135 s.
  const T1 = T0 + 20 * MINUTE;
  for (let i = 0; i <= 4; i++) manager.onFinding(finding(T1 + i * 45 * SECOND, { score: 0.3 + i * 0.01 }));
  assert.deepEqual(kinds(), ['open']);
  const open = events[0];
  assert.equal(open?.alert.openedAt, T1);
  assert.equal(open?.transition.time, T1 + 135 * SECOND);
  assert.equal(open?.alert.id, alertId('power', 'm-1', 'spike', T1));
  assert.equal(open?.alert.findings, 4);
  assert.match(open?.transition.explain ?? '', /held 135000 ms/);
});

void test('minDuration: a gap longer than resolveAfterMs restarts the clock', () => {
  const { manager, kinds, events } = setup({ minDurationMs: 4 * MINUTE, resolveAfterMs: MINUTE });
  manager.onFinding(finding(T0));
  manager.onFinding(finding(T0 + 50 * SECOND));
  manager.onFinding(finding(T0 + 3 * MINUTE)); // gap of 130 s > 60 s: starts over here
  manager.onFinding(finding(T0 + 4 * MINUTE));
  assert.deepEqual(kinds(), []);
  manager.onFinding(finding(T0 + 5 * MINUTE));
  manager.onFinding(finding(T0 + 6 * MINUTE));
  manager.onFinding(finding(T0 + 7 * MINUTE));
  assert.deepEqual(kinds(), ['open']);
  assert.equal(events[0]?.alert.openedAt, T0 + 3 * MINUTE);
});

void test('emitted alerts are snapshots that later changes do not touch', () => {
  const { manager, events } = setup();
  manager.onFinding(finding(T0, { score: 0.2 }));
  const opened = events[0];
  manager.onFinding(finding(T0 + SECOND, { score: 0.9, severity: 'critical' }));
  manager.onWatermark(T0 + 60 * MINUTE);
  assert.equal(opened?.alert.status, 'open');
  assert.equal(opened?.alert.score, 0.2);
  assert.equal(opened?.alert.severity, 'info');
  assert.equal(opened?.alert.findings, 1);
  // openAlerts() hands out copies as well.
  manager.onFinding(finding(T0 + 90 * MINUTE));
  const listed = manager.openAlerts()[0];
  assert.ok(listed);
  listed.status = 'resolved';
  assert.equal(manager.openCount(), 1);
});

void test('resolves due at one watermark come out in order of resolvedAt', () => {
  const { manager, events } = setup();
  manager.onFinding(finding(T0, { key: 'm-1' }));
  manager.onFinding(finding(T0 + 1 * SECOND, { key: 'm-3' }));
  manager.onFinding(finding(T0 + 2 * SECOND, { key: 'm-2' }));
  manager.onFinding(finding(T0 + 3 * SECOND, { key: 'm-3' }));
  manager.onWatermark(T0 + 30 * MINUTE);
  const resolves = events.filter((e) => e.transition.kind === 'resolve');
  assert.deepEqual(
    resolves.map((e) => [e.alert.key, e.alert.resolvedAt]),
    [
      ['m-1', T0 + 5 * MINUTE],
      ['m-2', T0 + 2 * SECOND + 5 * MINUTE],
      ['m-3', T0 + 3 * SECOND + 5 * MINUTE],
    ],
  );
});

void test('resolved alerts are forgotten once their cooldown has passed', () => {
  const { manager } = setup();
  const empty = JSON.stringify(manager.snapshot());
  for (let k = 0; k < 20; k++) manager.onFinding(finding(T0 + k, { key: `m-${k}` }));
  manager.onWatermark(T0 + 6 * MINUTE);
  assert.equal(manager.openCount(), 0);
  assert.notEqual(JSON.stringify(manager.snapshot()), empty); // still inside the cooldown
  manager.onWatermark(T0 + 16 * MINUTE);
  assert.equal(JSON.stringify(manager.snapshot()), empty);
});

void test('a bad policy is refused with a message naming the field', () => {
  assert.throws(
    () => createAlertManager({ policy: { ...POLICY, cooldownMs: -1 }, emit: () => undefined }),
    (error: unknown) => error instanceof GpError && error.code === 'GP_CONFIG_INVALID' && /alerts\.cooldownMs.*got -1/.test(error.message),
  );
});

test('a condition that holds until cleared (silence) is not resolved by absence, only by its clear', () => {
  const { manager, events, kinds } = setup();
  // A silent meter re-reported every 30 minutes, as half-hourly data does.
  manager.onFinding(finding(T0, { type: 'silence', holds: true }));
  for (let i = 1; i <= 6; i++) {
    manager.onWatermark(T0 + i * 30 * MINUTE - 1);
    manager.onFinding(finding(T0 + i * 30 * MINUTE, { type: 'silence', holds: true, score: 0.5 + i * 0.01 }));
  }
  manager.onWatermark(T0 + 10 * 60 * MINUTE);
  assert.ok(!kinds().includes('resolve'), `never resolved for lack of findings: ${kinds().join(',')}`);
  assert.equal(new Set(events.map((e) => e.alert.id)).size, 1, 'one alert');
  manager.onFinding(finding(T0 + 10 * 60 * MINUTE + 1, { type: 'silence', active: false }));
  assert.equal(kinds().at(-1), 'resolve');
  assert.equal(events.at(-1)!.alert.resolvedAt, T0 + 10 * 60 * MINUTE + 1);
});
