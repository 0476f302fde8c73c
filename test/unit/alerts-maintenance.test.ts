import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAlertRouter } from '../../src/alerts/index.js';
import { parseConfig } from '../../src/config/index.js';
import { MINUTE, SECOND, T0, finding, setupManager } from '../helpers/alerts.js';

const WINDOW = { sites: ['s-1'], from: T0 - MINUTE, to: T0 + 30 * MINUTE, reason: 'transformer swap' };

void test('a transition inside a maintenance window of its site is recorded but muted, and the router sends it nowhere', () => {
  const { manager, events } = setupManager({ maintenance: [WINDOW] });
  manager.onFinding(finding(T0, { score: 0.6, severity: 'warning' }));
  manager.onFinding(finding(T0 + SECOND, { key: 'm-9', site: 's-2', score: 0.6, severity: 'warning' }));
  assert.equal(events.length, 2, 'both alerts are recorded');
  const [inside, outside] = events;
  assert.equal(inside?.transition.muted, true);
  assert.equal(inside?.alert.muted, true);
  assert.match(inside?.transition.explain ?? '', /muted: maintenance until .*transformer swap/);
  assert.equal(outside?.transition.muted, undefined);
  const router = createAlertRouter([{ channels: ['ops'] }]);
  assert.deepEqual(router.targets(inside), []);
  assert.deepEqual(router.targets(outside!).map((t) => t.channel), ['ops']);
});

void test('a window listing devices mutes only those devices; a window listing nothing mutes the whole stream', () => {
  const byKey = setupManager({ maintenance: [{ keys: ['m-2'], from: T0, to: T0 + MINUTE, reason: '' }] });
  byKey.manager.onFinding(finding(T0));
  byKey.manager.onFinding(finding(T0, { key: 'm-2' }));
  assert.deepEqual(byKey.events.map((e) => [e.alert.key, e.transition.muted === true]), [['m-1', false], ['m-2', true]]);
  const all = setupManager({ maintenance: [{ from: T0, to: T0 + MINUTE, reason: 'upgrade' }] });
  all.manager.onFinding(finding(T0, { key: 'm-7', site: undefined }));
  assert.equal(all.events[0]?.transition.muted, true);
  // The window's end is exclusive: at `to` nothing is muted any more.
  all.manager.onFinding(finding(T0 + MINUTE, { key: 'm-8' }));
  assert.equal(all.events.at(-1)?.transition.muted, undefined);
});

void test('an alert still open when its maintenance ends gets one unmuted update at the window end, whatever drives time', () => {
  const viaWatermark = setupManager({ maintenance: [WINDOW], resolveAfterMs: 60 * MINUTE });
  viaWatermark.manager.onFinding(finding(T0));
  viaWatermark.manager.onWatermark(T0 + 29 * MINUTE);
  assert.deepEqual(viaWatermark.kinds(), ['open']);
  viaWatermark.manager.onWatermark(T0 + 31 * MINUTE);
  const ended = viaWatermark.events[1];
  assert.equal(ended?.transition.kind, 'update');
  assert.equal(ended?.transition.time, WINDOW.to);
  assert.equal(ended?.transition.muted, undefined);
  assert.equal(ended?.alert.muted, undefined);
  assert.match(ended?.transition.explain ?? '', /^maintenance ended, spike still open/);
  assert.deepEqual(createAlertRouter([{ channels: ['ops'] }]).targets(ended).map((t) => t.channel), ['ops']);

  // The same when a later finding, not a watermark, is what carries time past the window.
  const viaFinding = setupManager({ maintenance: [WINDOW], resolveAfterMs: 60 * MINUTE });
  viaFinding.manager.onFinding(finding(T0));
  viaFinding.manager.onFinding(finding(T0 + 40 * MINUTE));
  assert.deepEqual(
    viaFinding.events.map((e) => [e.transition.kind, e.transition.time, e.transition.muted === true]),
    viaWatermark.events.map((e) => [e.transition.kind, e.transition.time, e.transition.muted === true]),
  );
});

void test('an alert that resolves inside its maintenance window is never notified', () => {
  const { manager, events } = setupManager({ maintenance: [WINDOW] });
  manager.onFinding(finding(T0));
  manager.onFinding(finding(T0 + MINUTE, { active: false }));
  manager.onWatermark(T0 + 60 * MINUTE);
  assert.deepEqual(events.map((e) => [e.transition.kind, e.transition.muted]), [['open', true], ['resolve', true]]);
  const router = createAlertRouter([{ channels: ['ops'] }]);
  assert.equal(events.flatMap((e) => router.targets(e)).length, 0);
});

void test('alerts.maintenance in the config reaches the alert policy of the streams it names, times in epoch ms', () => {
  const { config, issues } = parseConfig({
    alerts: { maintenance: [{ streams: ['power'], sites: ['s-1'], from: '2025-11-24T02:00:00Z', to: '2025-11-24T04:00:00Z', reason: 'feeder work' }] },
  });
  assert.deepEqual(issues, []);
  assert.deepEqual(config?.streams.power?.alerts.maintenance, [{ sites: ['s-1'], from: Date.UTC(2025, 10, 24, 2), to: Date.UTC(2025, 10, 24, 4), reason: 'feeder work' }]);
  assert.equal(config?.streams.machines?.alerts.maintenance, undefined, 'a stream the window does not name is not muted');
});
