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

test('same input twice gives identical findings', () => {
  const samples = series(300, { 120: 6, 200: 0.5, 250: 0 });
  for (const type of ['spike', 'drop', 'outage']) {
    assert.deepEqual(detect(type, samples).ctx.findings, detect(type, samples).ctx.findings);
    assert.ok(detect(type, samples).ctx.findings.length > 0, `${type} found something`);
  }
});
