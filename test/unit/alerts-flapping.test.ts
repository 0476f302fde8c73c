import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAlertManager } from '../../src/alerts/index.js';
import { parseConfig } from '../../src/config/index.js';
import type { AlertEvent } from '../../src/model/index.js';
import { MINUTE, POLICY, T0, finding, setupManager } from '../helpers/alerts.js';

const FLAPPING = { flips: 2, windowMs: 60 * MINUTE, quietMs: 20 * MINUTE };
const on = (minute: number) => finding(T0 + minute * MINUTE);
const off = (minute: number) => finding(T0 + minute * MINUTE, { active: false });

/** A condition that comes and goes every two minutes from minute 0 to minute `until`. */
function flap(manager: { onFinding(f: ReturnType<typeof finding>): void }, until: number): void {
  for (let minute = 0; minute < until; minute += 4) {
    manager.onFinding(on(minute));
    manager.onFinding(off(minute + 2));
  }
}

void test('an alert that resolves and comes back `flips` times within the window is marked flapping and held open', () => {
  const { manager, events, kinds } = setupManager({ flapping: FLAPPING });
  flap(manager, 40);
  // Two flips are notified as usual; the third return is one `flapping` transition, then silence.
  assert.deepEqual(kinds(), ['open', 'resolve', 'reopen', 'resolve', 'flapping']);
  const flapped = events[4];
  assert.equal(flapped?.alert.flapping, true);
  assert.equal(flapped?.transition.status, 'open');
  assert.match(flapped?.transition.explain ?? '', /^flapping: spike resolved and came back 2 times within 3600000 ms/);
  assert.equal(manager.openCount(), 1, 'held open while it flaps');
  // Clear for the quiet period: one resolve, at the clear time + quietMs.
  manager.onWatermark(T0 + 38 * MINUTE + 20 * MINUTE + 1);
  assert.deepEqual(kinds(), ['open', 'resolve', 'reopen', 'resolve', 'flapping', 'resolve']);
  const settled = events[5];
  assert.equal(settled?.transition.time, T0 + 38 * MINUTE + 20 * MINUTE);
  assert.equal(settled?.alert.flapping, undefined);
  assert.match(settled?.transition.explain ?? '', /^stopped flapping/);
});

void test('without a flapping policy the same condition is notified at every flip', () => {
  const { manager, kinds } = setupManager();
  flap(manager, 40);
  assert.equal(kinds().length, 20);
});

void test('flips spread wider than the flapping window do not count as flapping', () => {
  const { manager, kinds } = setupManager({ flapping: { flips: 2, windowMs: 5 * MINUTE, quietMs: MINUTE } });
  for (const minute of [0, 8, 16, 24]) {
    manager.onFinding(on(minute));
    manager.onFinding(off(minute + 1));
  }
  assert.ok(!kinds().includes('flapping'), kinds().join(','));
});

void test('a flapping alert restored from a checkpoint goes on exactly as the uninterrupted one', () => {
  const policy = { ...POLICY, flapping: FLAPPING };
  const straight: AlertEvent[] = [];
  const first = createAlertManager({ policy, emit: (e) => straight.push(e) });
  flap(first, 60);
  first.onWatermark(T0 + 200 * MINUTE);

  const resumed: AlertEvent[] = [];
  const before = createAlertManager({ policy, emit: (e) => resumed.push(e) });
  flap(before, 40);
  const after = createAlertManager({ policy, emit: (e) => resumed.push(e) });
  after.restore(JSON.parse(JSON.stringify(before.snapshot())));
  for (let minute = 40; minute < 60; minute += 4) {
    after.onFinding(on(minute));
    after.onFinding(off(minute + 2));
  }
  after.onWatermark(T0 + 200 * MINUTE);
  assert.deepEqual(resumed, straight);
});

void test('streams.<name>.alerts.flapping in the config: quiet defaults to the cooldown', () => {
  const { config, issues } = parseConfig({ streams: { power: { alerts: { cooldown: '15m', flapping: { flips: 3, window: '1h' } } } } });
  assert.deepEqual(issues, []);
  assert.deepEqual(config?.streams.power?.alerts.flapping, { flips: 3, windowMs: 3_600_000, quietMs: 900_000 });
});
