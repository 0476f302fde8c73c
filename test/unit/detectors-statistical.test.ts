import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDetectors, type IqrState } from '../../src/detectors/index.js';
import type { Detector } from '../../src/model/index.js';
import { FakeContext, MINUTE, MONDAY, machineSchema, powerSchema, prng, reading, run, schemaOf, singleSchema, spec, type Sample } from './detectors-harness.js';

function series(count: number, overrides: Record<number, number> = {}): Sample[] {
  const random = prng(21);
  return Array.from({ length: count }, (_, i) => ({ time: MONDAY + i * MINUTE, values: { x: overrides[i] ?? 2 * (1 + 0.01 * random.gaussian()) } }));
}

function detect(type: string, samples: Sample[], params: Record<string, unknown> = {}) {
  const schema = singleSchema([spec(type, params)]);
  return run(schema, createDetectors(schema), samples);
}

test('zscore fires on an outlier against the rolling window and explains z, mean and std', () => {
  const { ctx, scores } = detect('zscore', series(120, { 90: 3.1 }));
  const active = ctx.active();
  assert.equal(active.length, 1);
  assert.equal(active[0]!.time, MONDAY + 90 * MINUTE);
  assert.match(active[0]!.explain, /^x 3\.10 has z-score \+\d\d+(\.\d+)? against its last 60 readings \(mean 2\.0\d, std 0\.0\d+\); threshold \|z\| ≥ 4 and a change of at least 25% of the mean$/);
  assert.ok(active[0]!.score >= 0.5 && active[0]!.score < 0.8, 'a +55% outlier with a 25% guard: evidence 2.2 → warning');
  assert.equal(ctx.cleared()[0]!.time, MONDAY + 91 * MINUTE);
  assert.ok(scores[90]! >= 0.5);
  // Before half of the window is filled nothing is judged.
  assert.equal(detect('zscore', series(40, { 20: 9 })).ctx.findings.length, 0);
  // A lower outlier fires too.
  assert.equal(detect('zscore', series(120, { 90: 1 })).ctx.active().length, 1);
});

test('zscore keeps judging after an outlier: it enters the window clipped', () => {
  const { ctx } = detect('zscore', series(140, { 90: 30, 100: 3.2 }));
  assert.deepEqual(ctx.active().map((f) => (f.time - MONDAY) / MINUTE), [90, 100]);
});

test('iqr fires outside the fences and keeps an exact sorted window', () => {
  const { ctx } = detect('iqr', series(200, { 150: 3.2 }));
  const active = ctx.active();
  assert.equal(active.length, 1);
  assert.match(active[0]!.explain, /^x 3\.20 is above the upper IQR fence 2\.\d\d of its last 120 readings \(Q1 1\.9\d, median 2\.0\d, Q3 2\.0\d, IQR 0\.0\d+, k 3\) and 6\d% from the median \(at least 25% required\)$/);
  // The sorted copy always holds exactly the ring's values.
  const schema = singleSchema([spec('iqr', { window: 16 })]);
  const [detector] = createDetectors(schema) as [Detector<IqrState>];
  const state = detector.createState();
  const random = prng(8);
  const ctx2 = new FakeContext(schema);
  for (let i = 0; i < 300; i++) {
    detector.onReading(state, reading(schema, MONDAY + i * MINUTE, { x: Math.round(random.next() * 20) }), ctx2);
    const count = Math.min(i + 1, 16);
    assert.deepEqual(Array.from(state.sorted.slice(0, count)), Array.from(state.values.slice(0, count)).sort((a, b) => a - b));
  }
});

test('out_of_range uses the metric range or params and clears when back inside', () => {
  const schema = powerSchema([spec('out_of_range')]);
  const detectors = createDetectors(schema);
  assert.deepEqual(detectors.map((d) => d.metric), ['voltage', 'pf'], 'metrics without bounds get no detector');
  const samples: Sample[] = [150, 230, 275, 231].map((voltage, i) => ({ time: MONDAY + i * MINUTE, values: { voltage, pf: 0.9 } }));
  const { ctx } = run(schema, detectors, samples);
  assert.equal(ctx.active().length, 2);
  assert.match(ctx.active()[0]!.explain, /^voltage 150 is below the minimum 180 of its plausible range 180…260 by 30$/);
  assert.ok(Math.abs(ctx.active()[0]!.score - (1 - 0.5 / (1 + 30 / 80))) < 1e-9);
  assert.equal(ctx.cleared().length, 2);
  const custom = powerSchema([spec('out_of_range', { max: 10 }, ['usageKw'])]);
  const found = run(custom, createDetectors(custom), [{ time: MONDAY, values: { usageKw: 12 } }]).ctx.active();
  assert.match(found[0]!.explain, /usageKw 12 is above the maximum 10 of its plausible range −∞…10 by 2/);
});

test('physics: kW must match V·I·PF/1000', () => {
  const schema = powerSchema([spec('physics')]);
  const detectors = createDetectors(schema);
  assert.equal(detectors.length, 1);
  const { ctx } = run(schema, detectors, [
    { time: MONDAY, values: { usageKw: 6.5, voltage: 230, current: 30, pf: 0.95 } },
    { time: MONDAY + MINUTE, values: { usageKw: 10, voltage: 230, current: 30, pf: 0.95 } },
    { time: MONDAY + 2 * MINUTE, values: { usageKw: 10, voltage: 230, current: 30 } },
    { time: MONDAY + 3 * MINUTE, values: { usageKw: 6.6, voltage: 230, current: 30, pf: 0.95 } },
  ]);
  assert.equal(ctx.active().length, 1);
  assert.equal(ctx.active()[0]!.metric, 'usageKw');
  assert.match(ctx.active()[0]!.explain, /^usageKw 10 kW does not match V·I·PF\/1000 = 6\.55 kW \(230 V × 30 A × PF 0\.950\): off by 34%, tolerance 15%$/);
  assert.equal(ctx.cleared().length, 1, 'a reading without pf is not judged; the next consistent one clears');
  assert.equal(ctx.cleared()[0]!.time, MONDAY + 3 * MINUTE);
  // No detector for a stream without the metrics of any check.
  const bare = schemaOf('bare', [{ name: 'usageKw', field: 'usageKw', kind: 'gauge', min: undefined, max: undefined, unit: undefined }], [spec('physics')]);
  assert.deepEqual(createDetectors(bare), []);
});

test('physics on AI4I machine rows: power failure and heat dissipation failure', () => {
  const schema = machineSchema([spec('physics')]);
  const detectors = createDetectors(schema);
  // Rows of the AI4I 2020 dataset: UDI 1 (no failure), 51 (PWF), 3237 (HDF), 195 (PWF, too little power).
  const rows = [
    [1, 298.1, 308.6, 1551, 42.8],
    [51, 298.9, 309.1, 2861, 4.6],
    [3237, 300.8, 309.4, 1342, 62.4],
    [195, 298.2, 308.5, 2678, 10.7],
    [2, 298.2, 308.7, 1408, 46.3],
  ] as const;
  const samples = rows.map(([udi, air, process, rpm, torque]) => ({ time: MONDAY + udi * MINUTE, values: { air_temp_k: air, process_temp_k: process, rpm, torque_nm: torque } }));
  const { ctx, scores } = run(schema, detectors, samples);
  const active = ctx.active();
  assert.deepEqual(active.map((f) => [(f.time - MONDAY) / MINUTE, f.metric]), [[51, 'torque_nm'], [3237, 'process_temp_k'], [195, 'torque_nm']]);
  assert.match(active[0]!.explain, /^mechanical power torque_nm 4\.60 Nm × rpm 2861 × 2π\/60 = 1378 W is below the plausible range 3500–9000 W$/);
  assert.match(active[1]!.explain, /^heat dissipation: process_temp_k − air_temp_k = 8\.60 K is below 8\.60 K while rpm 1342 is below 1380$|^heat dissipation: process_temp_k − air_temp_k = 8\.\d\d K is below 8\.60 K while rpm 1342 is below 1380$/);
  assert.equal(scores[0], 0);
  assert.ok(scores[1]! > 0.5);
});
