import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAlertManager } from '../../src/alerts/index.js';
import { parseConfig } from '../../src/config/index.js';
import type { AlertEvent } from '../../src/model/index.js';
import { MINUTE, SECOND, T0, finding } from '../helpers/alerts.js';

// Clear-on-absence is the alert manager's resolveAfter rule: these tests pin it down through the
// config a user writes (streams.<name>.alerts.resolveAfter), not through a hand-made policy.

void test('with the default config an alert clears 5 minutes after its findings stop, at that event time', () => {
  const { config } = parseConfig({});
  const events: AlertEvent[] = [];
  const manager = createAlertManager({ policy: config!.streams.power!.alerts, emit: (e) => events.push(e) });
  for (let t = 0; t <= 2 * MINUTE; t += 10 * SECOND) manager.onFinding(finding(T0 + t));
  manager.onWatermark(T0 + 7 * MINUTE);
  assert.deepEqual(events.map((e) => e.transition.kind), ['open'], 'exactly 5 minutes of absence is not yet enough');
  manager.onWatermark(T0 + 7 * MINUTE + 1);
  assert.deepEqual(events.map((e) => [e.transition.kind, e.transition.time]), [
    ['open', T0],
    ['resolve', T0 + 7 * MINUTE],
  ]);
  assert.match(events[1]!.transition.explain, /^resolved: no active spike finding for 300000 ms after /);
});

void test('resolveAfter from the config sets how long absence takes; a silence alert (holds) waits for its clear instead', () => {
  const { config } = parseConfig({ streams: { power: { alerts: { resolveAfter: '1m' } } } });
  const events: AlertEvent[] = [];
  const manager = createAlertManager({ policy: config!.streams.power!.alerts, emit: (e) => events.push(e) });
  manager.onFinding(finding(T0));
  manager.onFinding(finding(T0, { type: 'silence', holds: true }));
  manager.onWatermark(T0 + 30 * MINUTE);
  assert.deepEqual(events.map((e) => [e.alert.type, e.transition.kind]), [
    ['spike', 'open'],
    ['silence', 'open'],
    ['spike', 'resolve'],
  ]);
  assert.equal(events[2]?.transition.time, T0 + MINUTE);
  manager.onFinding(finding(T0 + 31 * MINUTE, { type: 'silence', active: false }));
  assert.deepEqual(events.at(-1)?.alert.type, 'silence');
  assert.deepEqual(events.at(-1)?.transition.kind, 'resolve');
});
