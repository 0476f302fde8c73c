import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDetectors, type SilenceState } from '../../src/detectors/index.js';
import type { Detector } from '../../src/model/index.js';
import { FakeContext, MINUTE, MONDAY, powerSchema, reading, spec } from './detectors-harness.js';

function setup(interval = MINUTE) {
  const schema = powerSchema([spec('silence')]);
  const [detector] = createDetectors(schema) as [Detector<SilenceState>];
  assert.equal(detector.type, 'silence');
  assert.equal(detector.metric, undefined);
  const ctx = new FakeContext(schema);
  ctx.intervalMs = interval;
  const state = detector.createState();
  const feed = (minute: number) => {
    ctx.watermark = Math.max(ctx.watermark, MONDAY + minute * MINUTE - 2 * MINUTE);
    return detector.onReading(state, reading(schema, MONDAY + minute * MINUTE, { usageKw: 1 }), ctx);
  };
  const fireTimer = (watermarkMinute?: number) => {
    const time = ctx.timer;
    ctx.watermark = watermarkMinute === undefined ? time : MONDAY + watermarkMinute * MINUTE;
    ctx.timer = Number.NaN;
    detector.onTimer!(state, time, ctx);
  };
  return { detector, ctx, state, feed, fireTimer };
}

const at = (minute: number) => MONDAY + minute * MINUTE;

test('a gap seen by the next reading: active at the deadline, then cleared, one ops gap', () => {
  const { ctx, feed } = setup();
  for (let m = 0; m <= 10; m++) feed(m);
  assert.equal(ctx.timer, at(11.5), 'armed at interval × (1 + grace)');
  feed(20);
  assert.equal(ctx.findings.length, 2);
  const [open, close] = ctx.findings as [(typeof ctx.findings)[0], (typeof ctx.findings)[0]];
  assert.equal(open.active, true);
  assert.equal(open.time, at(11.5));
  assert.equal(open.value, 9);
  assert.ok(Math.abs(open.score - (1 - 0.5 / 9)) < 1e-9);
  assert.match(open.explain, /^no reading for 10m between 2025-01-06T00:10:00\.000Z and 2025-01-06T00:20:00\.000Z: 9 expected readings missed \(interval 1m, grace 50%\)$/);
  assert.equal(close.active, false);
  assert.equal(close.time, at(20));
  assert.equal(close.value, 9);
  assert.equal(ctx.opsEvents.length, 1);
  const gap = ctx.opsEvents[0]!;
  assert.equal(gap.kind, 'gap');
  assert.equal(gap.key, 'dev-1');
  assert.equal(gap.time, at(11), 'the first missing reading');
  assert.equal(gap.missed, 9);
  assert.equal(ctx.timer, at(21.5));
});

test('the timer reports a silence as it happens and counts cascading gaps', () => {
  const { ctx, feed, fireTimer } = setup();
  for (let m = 0; m <= 10; m++) feed(m);
  fireTimer();
  fireTimer();
  fireTimer();
  const active = ctx.active();
  assert.deepEqual(active.map((f) => [f.time, f.value]), [[at(11.5), 1], [at(12.5), 2], [at(13.5), 3]]);
  assert.deepEqual(active.map((f) => Number(f.score.toFixed(3))), [0.5, 0.75, 0.833]);
  assert.match(active[2]!.explain, /no reading for 3m30s since 2025-01-06T00:10:00\.000Z: 3 expected readings missed so far/);
  assert.equal(ctx.opsEvents.length, 1, 'one ops gap when the silence is first seen');
  assert.equal(ctx.opsEvents[0]!.missed, 1);
  assert.equal(ctx.opsEvents[0]!.time, at(11));
  feed(16);
  const cleared = ctx.cleared();
  assert.equal(cleared.length, 1);
  assert.equal(cleared[0]!.value, 5);
  assert.match(cleared[0]!.explain, /readings resumed at 2025-01-06T00:16:00\.000Z after 6m of silence: 5 expected readings missed in total/);
  assert.equal(ctx.opsEvents.length, 2);
  assert.equal(ctx.opsEvents[1]!.missed, 5, 'the closing ops gap has the final count');
  assert.equal(ctx.active().length, 3, 'the reading itself does not report a second silence');
});

test('a watermark far past the deadline counts what was missed by then, and long silences are re-checked less often', () => {
  const { ctx, feed, fireTimer } = setup();
  feed(0);
  fireTimer(30);
  assert.equal(ctx.active()[0]!.value, 29);
  assert.equal(ctx.active()[0]!.time, at(30));
  assert.equal(ctx.timer, at(32.5), 'every 29/4 = 7 intervals, capped at half of resolveAfter (2.5m)');
});

test('nothing is reported while the interval is unknown', () => {
  const { ctx, feed } = setup(Number.NaN);
  feed(0);
  feed(1);
  feed(30);
  assert.deepEqual(ctx.findings, []);
  assert.ok(Number.isNaN(ctx.timer));
});

test('a declared interval in params wins over the engine interval', () => {
  const schema = powerSchema([spec('silence', { interval: '5m', grace: 0 })]);
  const [detector] = createDetectors(schema) as [Detector<SilenceState>];
  const ctx = new FakeContext(schema);
  ctx.intervalMs = MINUTE;
  const state = detector.createState();
  detector.onReading(state, reading(schema, at(0), { usageKw: 1 }), ctx);
  assert.equal(ctx.timer, at(5));
  detector.onReading(state, reading(schema, at(4), { usageKw: 1 }), ctx);
  assert.deepEqual(ctx.findings, []);
  detector.onReading(state, reading(schema, at(20), { usageKw: 1 }), ctx);
  assert.equal(ctx.active()[0]!.value, 2);
});
