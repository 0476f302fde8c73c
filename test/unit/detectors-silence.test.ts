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

test('a gap seen by the next reading: each scheduled check before it is reported, then cleared, one ops gap', () => {
  const { ctx, feed } = setup();
  for (let m = 0; m <= 10; m++) feed(m);
  assert.equal(ctx.timer, at(11.5), 'armed at interval × (1 + grace)');
  feed(20);
  // The checks a timer would have made had the watermark passed them first: at the deadline, then
  // every interval (every 2 from 8 missed on), all before the reading at minute 20.
  const active = ctx.active();
  assert.deepEqual(
    active.map((f) => [(f.time - MONDAY) / MINUTE, f.value]),
    [[11.5, 1], [12.5, 2], [13.5, 3], [14.5, 4], [15.5, 5], [16.5, 6], [17.5, 7], [18.5, 8]],
  );
  assert.ok(Math.abs(active[7]!.score - (1 - 0.5 / 8)) < 1e-9);
  assert.match(active[7]!.explain, /^no reading for 8m30s since 2025-01-06T00:10:00\.000Z: 8 expected readings missed so far \(interval 1m, grace 50%\)$/);
  const [close] = ctx.cleared();
  assert.equal(ctx.cleared().length, 1);
  assert.equal(close!.time, at(20));
  assert.equal(close!.value, 9);
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
  // The checks at 14.5 and 15.5 that no timer made (the watermark had not got there) come from the
  // reading, so the findings are the same whichever came first.
  assert.deepEqual(ctx.active().map((f) => [f.time, f.value]), [[at(11.5), 1], [at(12.5), 2], [at(13.5), 3], [at(14.5), 4], [at(15.5), 5]]);
});

test('a silence is checked at points of its schedule, whatever the watermark; long silences are re-checked less often', () => {
  const { ctx, feed, fireTimer } = setup();
  feed(0);
  // The watermark jumps to minute 30: the engine fires every check due by then, one after the other.
  while (ctx.timer <= at(30)) fireTimer(30);
  const active = ctx.active();
  assert.equal(active[0]!.time, at(1.5), 'the first check at the deadline, not at the watermark');
  const last = active.at(-1)!;
  assert.ok(last.time <= at(30));
  assert.equal(last.value, Math.floor((last.time - at(0)) / MINUTE - 0.5));
  assert.equal(ctx.timer - last.time, 2.5 * MINUTE, 'every missed/4 intervals, capped at half of resolveAfter (2.5m)');
  assert.equal(ctx.opsEvents.length, 1);
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
  // Checks every 5 minutes from the deadline at minute 9 (4 + 5, grace 0); 2 readings missed in all.
  assert.deepEqual(ctx.active().map((f) => [f.time, f.value]), [[at(9), 1], [at(14), 2], [at(19), 3]]);
  assert.equal(ctx.cleared()[0]!.value, 2);
});
