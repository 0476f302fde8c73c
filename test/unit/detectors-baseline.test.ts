import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDetectors } from '../../src/detectors/index.js';
import { MINUTE, MONDAY, prng, run, singleSchema, spec, type Sample } from './detectors-harness.js';

/** Level 2.0 with ±1% noise every minute for `minutes`, with overrides at given minutes. */
function series(minutes: number, overrides: Record<number, number> = {}, level = 2): Sample[] {
  const random = prng(11);
  const out: Sample[] = [];
  for (let i = 0; i < minutes; i++) {
    const value = overrides[i] ?? level * (1 + 0.01 * random.gaussian());
    out.push({ time: MONDAY + i * MINUTE, values: { x: value } });
  }
  return out;
}

function detect(type: string, samples: Sample[], params: Record<string, unknown> = {}) {
  const schema = singleSchema([spec(type, params)]);
  return run(schema, createDetectors(schema), samples);
}

test('spike fires on a sudden rise with score, severity-ready score and evidence, then clears', () => {
  const { ctx, scores } = detect('spike', series(180, { 120: 6.2, 121: 6.3, 122: 6.1 }));
  const active = ctx.active();
  assert.deepEqual(active.map((f) => (f.time - MONDAY) / MINUTE), [120, 121, 122]);
  const first = active[0]!;
  assert.ok(first.score >= 0.8, `a tripling is critical, got ${first.score}`);
  assert.equal(first.value, 6.2);
  assert.ok(Math.abs(first.baseline! - 2) < 0.05, `baseline ≈ 2, got ${first.baseline}`);
  assert.match(first.explain, /^x 6\.20 is \+2\d\d% over its EWMA baseline 2\.0\d \(half-life \d+m\); threshold \+40% and 6 × deviation /);
  const cleared = ctx.cleared();
  assert.equal(cleared.length, 1);
  assert.equal((cleared[0]!.time - MONDAY) / MINUTE, 123);
  assert.ok(scores[120]! >= 0.8 && scores[119]! < 0.5 && scores[123]! < 0.5);
});

test('spike does not absorb the anomaly into its baseline', () => {
  // A 20-minute spike: with a 30-minute half-life an unfrozen baseline would rise by more than a third.
  const overrides: Record<number, number> = {};
  for (let i = 100; i < 120; i++) overrides[i] = 5;
  overrides[150] = 5;
  const { ctx } = detect('spike', series(200, overrides));
  const cleared = ctx.cleared()[0]!;
  assert.ok(Math.abs(cleared.baseline! - 2) < 0.05, `baseline after the spike ≈ 2, got ${cleared.baseline}`);
  const second = ctx.active().find((f) => f.time === MONDAY + 150 * MINUTE);
  assert.ok(second, 'the second spike is still seen as one');
  assert.ok(Math.abs(second.baseline! - 2) < 0.05);
});

test('spike waits for its warm-up and ignores a slow ramp', () => {
  const early = detect('spike', series(60, { 5: 8 }));
  assert.equal(early.ctx.active().length, 0, 'reading 5 is inside the 12-reading warm-up');
  // 2 → 6 kW over 40 minutes: +300% in the end, but never sudden.
  const ramp = series(200).map((s, i) => (i >= 100 && i < 140 ? { ...s, values: { x: s.values.x! * (1 + (2 * (i - 100)) / 40) } } : i >= 140 ? { ...s, values: { x: s.values.x! * 3 } } : s));
  assert.equal(detect('spike', ramp).ctx.active().length, 0);
});

test('a rise that lasts adoptAfter becomes the new baseline', () => {
  const overrides: Record<number, number> = {};
  for (let i = 60; i < 200; i++) overrides[i] = 4 * (1 + 0.01 * Math.sin(i));
  const { ctx } = detect('spike', series(200, overrides), { adoptAfter: '30m' });
  const active = ctx.active();
  assert.equal((active.at(-1)!.time - MONDAY) / MINUTE, 89);
  const adopted = ctx.cleared()[0]!;
  assert.match(adopted.explain, /adopted as the new baseline/);
  assert.equal((adopted.time - MONDAY) / MINUTE, 90);
});

test('drop fires on a sudden fall and reports the evidence', () => {
  const { ctx } = detect('drop', series(150, { 100: 0.7, 101: 0.72 }));
  const active = ctx.active();
  assert.equal(active.length, 2);
  assert.match(active[0]!.explain, /^x 0\.700 is 6\d% below its EWMA baseline 2\.0\d \(half-life \d+m\); threshold −35%/);
  assert.ok(active[0]!.score >= 0.5 && active[0]!.score < 0.8, `a −65% fall is a warning, got ${active[0]!.score}`);
  assert.ok(active[0]!.threshold! < 2 * 0.65 + 0.01);
  assert.equal(ctx.cleared().length, 1);
});

test('outage takes precedence over drop', () => {
  const zeros: Record<number, number> = {};
  for (let i = 100; i < 110; i++) zeros[i] = 0;
  const samples = series(150, zeros);
  assert.equal(detect('drop', samples).ctx.findings.length, 0, 'a fall to zero is not a drop');
  const outage = detect('outage', samples).ctx;
  const active = outage.active();
  assert.equal(active.length, 10);
  assert.equal(active[0]!.score, 1);
  assert.match(active[0]!.explain, /^x 0 is at or below the outage floor 0\.1\d\d \(5% of its EWMA baseline 2\.0\d, half-life \d+m\)$/);
  assert.match(active[9]!.explain, /out for 9m$/);
  const cleared = outage.cleared();
  assert.equal(cleared.length, 1);
  assert.equal((cleared[0]!.time - MONDAY) / MINUTE, 110);
  assert.match(cleared[0]!.explain, /recovered above the outage floor .* after 10m/);
  // A drop already reported clears when the value falls on to the outage floor.
  const both = series(150, { 100: 0.8, 101: 0 });
  const drop = detect('drop', both).ctx;
  assert.equal(drop.active().length, 1);
  assert.equal(drop.cleared()[0]!.time, MONDAY + 101 * MINUTE);
  assert.match(drop.cleared()[0]!.explain, /reported as an outage/);
});

test('after an outage the spike baseline was not dragged to zero', () => {
  const zeros: Record<number, number> = {};
  for (let i = 100; i < 160; i++) zeros[i] = 0;
  assert.equal(detect('spike', series(220, zeros)).ctx.findings.length, 0);
});

test('outage with an absolute level and no baseline', () => {
  const { ctx } = detect('outage', series(20, { 3: 0.4 }), { level: 0.5 });
  assert.equal(ctx.active().length, 1);
  assert.match(ctx.active()[0]!.explain, /outage floor 0\.500 \(the configured level\)/);
});

test('outage stays quiet on a metric that hovers around zero', () => {
  const random = prng(5);
  const samples: Sample[] = [];
  for (let i = 0; i < 3000; i++) samples.push({ time: MONDAY + i * MINUTE, values: { x: random.next() < 0.05 ? 0 : 0.04 * random.next() } });
  assert.equal(detect('outage', samples).ctx.findings.length, 0);
});

/** Half-hourly readings for `days` days: `value(i)` for the i-th. */
function halfHourly(days: number, value: (i: number) => number): Sample[] {
  const out: Sample[] = [];
  for (let i = 0; i < days * 48; i++) out.push({ time: MONDAY + i * 30 * MINUTE, values: { x: value(i) } });
  return out;
}

test('outage stays quiet on a device whose normal state includes zero (a duty cycle read half-hourly)', () => {
  // A London meter (MAC000004) reads 0 in three of four half-hours and ~0.35 kW in the others:
  // its zeros are how it works, and each used to open an outage alert (606 in a quarter).
  const random = prng(7);
  const samples = halfHourly(14, () => (random.next() < 0.25 ? 0.3 + 0.1 * random.next() : 0));
  assert.equal(detect('outage', samples).ctx.findings.length, 0);
});

test('outage still finds a half-hourly meter going dark for three hours', () => {
  const random = prng(8);
  const dark = (i: number): boolean => i >= 10 * 48 + 20 && i < 10 * 48 + 26;
  const samples = halfHourly(12, (i) => (dark(i) ? 0 : 0.4 + 0.3 * random.next()));
  const { ctx } = detect('outage', samples);
  const active = ctx.active();
  assert.equal(active.length, 6, 'each dark half-hour is reported');
  assert.equal((active[0]!.time - MONDAY) / (30 * MINUTE), 10 * 48 + 20);
  assert.equal(ctx.cleared().length, 1);
  assert.equal((ctx.cleared()[0]!.time - MONDAY) / (30 * MINUTE), 10 * 48 + 26);
});

test('outage: a long outage does not hide the next one', () => {
  // A minute meter dark for 6 hours (a quarter of a day) and again 2 hours after it came back:
  // the second is found, since a reported outage counts once in the share at the floor.
  const zeros: Record<number, number> = {};
  for (let i = 600; i < 960; i++) zeros[i] = 0;
  for (let i = 1080; i < 1100; i++) zeros[i] = 0;
  const { ctx } = detect('outage', series(1300, zeros));
  const starts = ctx.active().filter((f, i, all) => i === 0 || f.time - all[i - 1]!.time > MINUTE);
  assert.deepEqual(
    starts.map((f) => (f.time - MONDAY) / MINUTE),
    [600, 1080],
  );
  assert.equal(ctx.cleared().length, 2);
});

test('outage: floorShare decides how often a device may sit at its floor', () => {
  const random = prng(9);
  // Zero in about one half-hour in four: well above the default share 10%, so no outage; with
  // floorShare 0.4 the same zeros are outages again.
  // The share is learned like the level: in the first hours (here one zero in the first twelve
  // readings) it can still be below the bar; from the second day on it is not.
  const samples = halfHourly(14, () => (random.next() < 0.25 ? 0 : 0.4 + 0.3 * random.next()));
  assert.deepEqual(
    detect('outage', samples)
      .ctx.active()
      .filter((f) => f.time >= MONDAY + 24 * 60 * MINUTE),
    [],
  );
  assert.ok(detect('outage', samples, { floorShare: 0.4 }).ctx.active().length > 20);
});

test('same input twice gives identical findings', () => {
  const samples = series(300, { 120: 6, 200: 0.5, 250: 0 });
  for (const type of ['spike', 'drop', 'outage']) {
    assert.deepEqual(detect(type, samples).ctx.findings, detect(type, samples).ctx.findings);
    assert.ok(detect(type, samples).ctx.findings.length > 0, `${type} found something`);
  }
});
