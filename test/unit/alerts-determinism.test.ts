import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alertId, createAlertManager, transitionId } from '../../src/alerts/index.js';
import { GpError } from '../../src/model/index.js';
import type { AlertEvent, AlertPolicy, Finding, Severity } from '../../src/model/index.js';

// node:test tracks each test's promise itself; `void` only tells the linter so.
const T0 = 1_763_900_000_000;
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const POLICY: AlertPolicy = { resolveAfterMs: 2 * MINUTE, minDurationMs: 30 * SECOND, cooldownMs: 5 * MINUTE };

type Step = { finding: Finding } | { watermark: number };

/**
 * A fixed, busy scenario over three meters and two alert types: blips, escalations, resolves by
 * inactive findings and by absence, reopens and new alerts after the cooldown. Built from a
 * simple deterministic sequence (no Math.random) so that every run feeds the same input.
 */
function scenario(): Step[] {
  const steps: Step[] = [];
  const keys = ['m-1', 'm-2', 'm-3'];
  const types = ['spike', 'silence'];
  for (let i = 0; i < 400; i++) {
    const time = T0 + i * 7 * SECOND;
    const key = keys[(i * 7) % 3] ?? 'm-1';
    const type = types[(i >> 3) % 2] ?? 'spike';
    const phase = (i * 13) % 97;
    const active = phase < 70;
    const score = ((i * 37) % 100) / 100;
    const severity: Severity = score >= 0.8 ? 'critical' : score >= 0.5 ? 'warning' : 'info';
    if (i % 60 < 40) {
      steps.push({
        finding: {
          stream: 'power',
          key,
          site: 's-1',
          type,
          detector: type,
          metric: type === 'spike' ? 'usageKw' : undefined,
          time,
          score,
          severity,
          value: i % 11 === 0 ? Number.NaN : score * 100,
          baseline: undefined,
          threshold: undefined,
          explain: `${type} ${key} #${i}`,
          active,
        },
      });
    }
    if (i % 5 === 4) steps.push({ watermark: time - 20 * SECOND });
  }
  steps.push({ watermark: T0 + 400 * 7 * SECOND + 60 * MINUTE });
  return steps;
}

function run(steps: Step[], events: AlertEvent[], policy = POLICY) {
  const manager = createAlertManager({ policy, emit: (event) => events.push(event) });
  for (const step of steps) {
    if ('finding' in step) manager.onFinding(step.finding);
    else manager.onWatermark(step.watermark);
  }
  return manager;
}

void test('the scenario exercises every kind of transition', () => {
  const events: AlertEvent[] = [];
  run(scenario(), events);
  const kinds = new Set(events.map((e) => e.transition.kind));
  for (const kind of ['open', 'update', 'escalate', 'resolve', 'reopen'] as const) assert.ok(kinds.has(kind), `no ${kind} transition`);
});

void test('the same input twice gives identical events, ids included', () => {
  const first: AlertEvent[] = [];
  const second: AlertEvent[] = [];
  run(scenario(), first);
  run(scenario(), second);
  assert.ok(first.length > 20);
  assert.deepEqual(second, first);
  // Transition ids are unique and follow alert id + seq.
  assert.equal(new Set(first.map((e) => e.transition.id)).size, first.length);
  for (const e of first) assert.equal(e.transition.id, transitionId(e.alert.id, e.transition.seq));
  for (const e of first) assert.equal(e.alert.id, alertId(e.alert.stream, e.alert.key, e.alert.type, e.alert.openedAt));
});

void test('ids depend only on stream, key, type and openedAt', () => {
  assert.equal(alertId('power', 'm-1', 'spike', T0), alertId('power', 'm-1', 'spike', T0));
  assert.notEqual(alertId('power', 'm-1', 'spike', T0), alertId('power', 'm-1', 'spike', T0 + 1));
  assert.notEqual(alertId('power', 'm-1', 'spike', T0), alertId('power', 'm-1', 'drop', T0));
  // Parts are kept apart: moving a separator between parts changes the id.
  assert.notEqual(alertId('a:b', 'c', 'spike', T0), alertId('a', 'b:c', 'spike', T0));
  assert.equal(transitionId('al_0123456789abcdef', 3), 'al_0123456789abcdef:3');
});

void test('snapshot → JSON → restore → continue gives the same events as an uninterrupted run', () => {
  const steps = scenario();
  const uninterrupted: AlertEvent[] = [];
  run(steps, uninterrupted);
  for (const cut of [1, 57, 133, 260, steps.length - 1]) {
    const resumed: AlertEvent[] = [];
    const before = run(steps.slice(0, cut), resumed);
    const checkpoint = JSON.stringify(before.snapshot());
    const after = createAlertManager({ policy: POLICY, emit: (event) => resumed.push(event) });
    after.restore(JSON.parse(checkpoint));
    assert.equal(after.openCount(), before.openCount());
    assert.deepEqual(after.openAlerts(), before.openAlerts());
    for (const step of steps.slice(cut)) {
      if ('finding' in step) after.onFinding(step.finding);
      else after.onWatermark(step.watermark);
    }
    assert.deepEqual(resumed, uninterrupted, `diverged after a checkpoint at step ${cut}`);
  }
});

void test('restore keeps a pending minDuration condition and a cooldown across the checkpoint', () => {
  const policy: AlertPolicy = { resolveAfterMs: MINUTE, minDurationMs: MINUTE, cooldownMs: 10 * MINUTE };
  const base = { stream: 'power', key: 'm-1', site: undefined, type: 'spike', detector: 'spike', metric: undefined, score: 0.5, severity: 'warning' as const, value: Number.NaN, baseline: undefined, threshold: undefined, explain: 'x', active: true };
  const events: AlertEvent[] = [];
  const first = createAlertManager({ policy, emit: (e) => events.push(e) });
  first.onFinding({ ...base, time: T0 });
  first.onFinding({ ...base, key: 'm-2', time: T0 });
  first.onFinding({ ...base, key: 'm-2', time: T0 + MINUTE });
  first.onFinding({ ...base, key: 'm-2', time: T0 + 2 * MINUTE, active: false });
  const second = createAlertManager({ policy, emit: (e) => events.push(e) });
  second.restore(JSON.parse(JSON.stringify(first.snapshot())));
  second.onFinding({ ...base, time: T0 + 50 * SECOND }); // m-1 pending since T0: not yet held a minute
  second.onFinding({ ...base, time: T0 + MINUTE }); // now it has
  second.onFinding({ ...base, key: 'm-2', time: T0 + 5 * MINUTE }); // within cooldown of m-2's resolve
  assert.deepEqual(
    events.map((e) => [e.alert.key, e.transition.kind, e.alert.openedAt, Number.isNaN(e.alert.value)]),
    [
      ['m-2', 'open', T0, true],
      ['m-2', 'resolve', T0, true],
      ['m-1', 'open', T0, true],
      ['m-2', 'reopen', T0, true],
    ],
  );
});

void test('restore refuses a damaged checkpoint with a message naming the field, and keeps its state', () => {
  const events: AlertEvent[] = [];
  const manager = run(scenario().slice(0, 50), events);
  const state = JSON.parse(JSON.stringify(manager.snapshot())) as { tracks: { alert: { openedAt: unknown } }[] };
  const openBefore = manager.openCount();
  assert.ok(state.tracks.length > 0);
  const [firstTrack] = state.tracks;
  assert.ok(firstTrack);
  firstTrack.alert.openedAt = 'yesterday';
  assert.throws(
    () => manager.restore(state),
    (error: unknown) =>
      error instanceof GpError && error.code === 'GP_INPUT_INVALID' && error.message.includes('/tracks/0/alert/openedAt: expected a finite number, got "yesterday"'),
  );
  assert.throws(() => manager.restore(null), /expected an object, got null/);
  assert.equal(manager.openCount(), openBefore);
});
