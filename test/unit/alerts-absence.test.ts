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

// A device that reports every 30 minutes (half-hourly smart meters such as the London data) cannot
// show its condition again before its next reading: absence and cooldown span at least
// ABSENCE_INTERVALS of its interval, which the engine puts on each finding.
void test('a half-hourly device keeps one alert across readings: absence waits 2 of its intervals, not resolveAfter', () => {
  const { config } = parseConfig({});
  const policy = config!.streams.power!.alerts;
  const HALF_HOUR = 30 * MINUTE;
  const run = (intervalMs: number | undefined): AlertEvent[] => {
    const events: AlertEvent[] = [];
    const manager = createAlertManager({ policy, emit: (e) => events.push(e) });
    // Three hours of outage, one zero reading per half hour; the watermark follows the fleet.
    for (let t = 0; t <= 6 * HALF_HOUR; t += HALF_HOUR) {
      manager.onFinding(finding(T0 + t, { type: 'outage', ...(intervalMs === undefined ? {} : { intervalMs }) }));
      manager.onWatermark(T0 + t + 20 * MINUTE);
    }
    manager.onWatermark(T0 + 6 * HALF_HOUR + 2 * HALF_HOUR + 1);
    return events;
  };
  const withInterval = run(HALF_HOUR);
  assert.deepEqual(
    withInterval.map((e) => [e.transition.kind, e.transition.time]),
    [
      ['open', T0],
      ['resolve', T0 + 6 * HALF_HOUR + 2 * HALF_HOUR],
    ],
    'one alert for the whole outage, resolved 2 intervals after its last finding',
  );
  assert.equal(withInterval[1]!.alert.findings, 7);
  assert.match(withInterval[1]!.transition.explain, /^resolved: no active outage finding for 3600000 ms \(2 × the device's reporting interval of 1800000 ms, more than resolveAfter 300000 ms\) after /);
  // Without the interval (a finding from before the engine learned it), resolveAfter alone:
  // every reading of the outage opened an alert of its own that resolved before the next.
  const without = run(undefined);
  assert.equal(without.filter((e) => e.transition.kind === 'open').length, 7);
});

void test('a half-hourly device whose condition returns at its next reading reopens the same alert (the cooldown spans 2 intervals too)', () => {
  const { config } = parseConfig({});
  const events: AlertEvent[] = [];
  const manager = createAlertManager({ policy: config!.streams.power!.alerts, emit: (e) => events.push(e) });
  const HALF_HOUR = 30 * MINUTE;
  manager.onFinding(finding(T0, { intervalMs: HALF_HOUR }));
  manager.onFinding(finding(T0 + HALF_HOUR, { active: false, intervalMs: HALF_HOUR }));
  manager.onWatermark(T0 + 2 * HALF_HOUR - MINUTE);
  manager.onFinding(finding(T0 + 2 * HALF_HOUR, { intervalMs: HALF_HOUR }));
  assert.deepEqual(events.map((e) => [e.transition.kind, e.alert.id === events[0]!.alert.id]), [
    ['open', true],
    ['resolve', true],
    ['reopen', true],
  ]);
});

void test('the interval a track learned survives a checkpoint: the restored manager resolves when the uninterrupted one does', () => {
  const { config } = parseConfig({});
  const policy = config!.streams.power!.alerts;
  const HALF_HOUR = 30 * MINUTE;
  const straight: AlertEvent[] = [];
  const a = createAlertManager({ policy, emit: (e) => straight.push(e) });
  a.onFinding(finding(T0, { intervalMs: HALF_HOUR }));
  const saved = JSON.parse(JSON.stringify(a.snapshot())) as unknown;
  for (const m of [a]) {
    m.onWatermark(T0 + 45 * MINUTE);
    m.onWatermark(T0 + 2 * HALF_HOUR + 1);
  }
  const resumed: AlertEvent[] = [];
  const b = createAlertManager({ policy, emit: (e) => resumed.push(e) });
  b.restore(saved);
  b.onWatermark(T0 + 45 * MINUTE);
  b.onWatermark(T0 + 2 * HALF_HOUR + 1);
  assert.deepEqual(straight.map((e) => [e.transition.kind, e.transition.time]), [
    ['open', T0],
    ['resolve', T0 + 2 * HALF_HOUR],
  ]);
  assert.deepEqual(
    resumed.map((e) => [e.transition.kind, e.transition.time]),
    [['resolve', T0 + 2 * HALF_HOUR]],
  );
});
