import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAlertManager } from '../../src/alerts/index.js';
import { parseConfig } from '../../src/config/index.js';
import type { AlertEvent } from '../../src/model/index.js';
import { MINUTE, SECOND, T0, finding, setupManager } from '../helpers/alerts.js';

const ESCALATION = [{ afterMs: 15 * MINUTE, to: 'critical' as const }];
/** A warning that keeps holding: a finding every 30 s. */
function keepHolding(manager: { onFinding(f: ReturnType<typeof finding>): void }, minutes: number): void {
  for (let t = 0; t <= minutes * MINUTE; t += 30 * SECOND) manager.onFinding(finding(T0 + t, { score: 0.5, severity: 'warning' }));
}

void test('a warning open and unacknowledged for 15 minutes escalates to critical at exactly that time', () => {
  const { manager, events, kinds } = setupManager({ escalation: ESCALATION });
  keepHolding(manager, 14);
  manager.onWatermark(T0 + 14 * MINUTE + 59 * SECOND);
  assert.deepEqual(kinds(), ['open']);
  manager.onWatermark(T0 + 15 * MINUTE);
  assert.deepEqual(kinds(), ['open', 'escalate']);
  const escalated = events[1];
  assert.equal(escalated?.transition.time, T0 + 15 * MINUTE);
  assert.equal(escalated?.transition.severity, 'critical');
  assert.equal(escalated?.alert.severity, 'critical');
  assert.match(escalated?.transition.explain ?? '', /^escalated to critical: spike open and unacknowledged for 900000 ms/);
  manager.onWatermark(T0 + 30 * MINUTE);
  assert.equal(kinds().filter((k) => k === 'escalate').length, 1, 'escalates once');
});

void test('an acknowledged alert does not escalate', () => {
  const { manager, events, kinds } = setupManager({ escalation: ESCALATION });
  keepHolding(manager, 5);
  manager.acknowledge(events[0]!.alert.id, T0 + 5 * MINUTE, 'ana');
  keepHolding(manager, 20);
  manager.onWatermark(T0 + 20 * MINUTE);
  assert.deepEqual(kinds(), ['open', 'acknowledge']);
});

void test('steps apply in order; a reopen restarts the clock', () => {
  const steps = [
    { afterMs: 5 * MINUTE, to: 'warning' as const },
    { afterMs: 15 * MINUTE, to: 'critical' as const },
  ];
  const { manager, events } = setupManager({ escalation: steps, resolveAfterMs: 60 * MINUTE });
  manager.onFinding(finding(T0, { severity: 'info' }));
  manager.onWatermark(T0 + 16 * MINUTE);
  assert.deepEqual(events.map((e) => [e.transition.kind, e.transition.severity, e.transition.time - T0]), [
    ['open', 'info', 0],
    ['escalate', 'warning', 5 * MINUTE],
    ['escalate', 'critical', 15 * MINUTE],
  ]);
  manager.onFinding(finding(T0 + 17 * MINUTE, { active: false }));
  manager.onFinding(finding(T0 + 18 * MINUTE, { severity: 'info' }));
  manager.onWatermark(T0 + 22 * MINUTE);
  assert.equal(events.at(-1)?.transition.kind, 'reopen', 'not escalated 4 minutes after the reopen');
  manager.onWatermark(T0 + 23 * MINUTE);
  assert.deepEqual([events.at(-1)?.transition.kind, events.at(-1)?.transition.time], ['escalate', T0 + 23 * MINUTE]);
});

void test('the escalation does not depend on whether a watermark or a later finding carries time past it', () => {
  const byWatermark: AlertEvent[] = [];
  const a = createAlertManager({ policy: { resolveAfterMs: 5 * MINUTE, minDurationMs: 0, cooldownMs: 10 * MINUTE, escalation: ESCALATION }, emit: (e) => byWatermark.push(e) });
  const byFinding: AlertEvent[] = [];
  const b = createAlertManager({ policy: { resolveAfterMs: 5 * MINUTE, minDurationMs: 0, cooldownMs: 10 * MINUTE, escalation: ESCALATION }, emit: (e) => byFinding.push(e) });
  for (let t = 0; t <= 20 * MINUTE; t += MINUTE) {
    a.onFinding(finding(T0 + t, { severity: 'warning' }));
    a.onWatermark(T0 + t);
    b.onFinding(finding(T0 + t, { severity: 'warning' }));
  }
  assert.deepEqual(byFinding, byWatermark);
  assert.deepEqual(byFinding.map((e) => e.transition.kind), ['open', 'escalate']);
});

void test('streams.<name>.alerts.escalation in the config becomes the policy, sorted by duration', () => {
  const { config, issues } = parseConfig({ streams: { power: { alerts: { escalation: [{ after: '15m', to: 'critical' }, { after: '5m', to: 'warning' }] } } } });
  assert.deepEqual(issues, []);
  assert.deepEqual(config?.streams.power?.alerts.escalation, [
    { afterMs: 300_000, to: 'warning' },
    { afterMs: 900_000, to: 'critical' },
  ]);
});
