// Every detector with default parameters stays quiet on ordinary data: a constant level with
// noise, a realistic daily load curve over two weeks (ramps, peaks, weekends), and a tiny
// noisy metric. Each is checked per reading interval the defaults are designed for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDetectors } from '../../src/detectors/index.js';
import { constantWithNoise, dailyLoad, DAY, FakeContext, MINUTE, MONDAY, powerSchema, prng, run, singleSchema, spec, type Sample } from './detectors-harness.js';

const PER_METRIC = ['spike', 'drop', 'outage', 'sustained_high', 'zscore', 'iqr', 'seasonal'];

function activeBy(samples: Iterable<Sample>): Record<string, number> {
  const schema = singleSchema(PER_METRIC.map((type) => spec(type)));
  const detectors = createDetectors(schema);
  assert.equal(detectors.length, PER_METRIC.length);
  const { ctx } = run(schema, detectors, samples);
  const counts: Record<string, number> = {};
  for (const f of ctx.active()) counts[f.detector] = (counts[f.detector] ?? 0) + 1;
  return counts;
}

test('quiet on a constant level with 2% noise (3 days, every minute)', () => {
  assert.deepEqual(activeBy(constantWithNoise(MONDAY, 3 * 1440, MINUTE, 5, 0.02)), {});
});

test('quiet on a realistic daily load curve, readings every minute (14 days, 2% noise)', () => {
  assert.deepEqual(activeBy(dailyLoad(MONDAY, 14, MINUTE, 0.02)), {});
});

test('quiet on a realistic daily load curve, readings every 5 minutes (14 days, 2% noise)', () => {
  assert.deepEqual(activeBy(dailyLoad(MONDAY, 14, 5 * MINUTE, 0.02, 3)), {});
});

test('quiet on a smooth daily load curve (0.5% noise, every minute)', () => {
  assert.deepEqual(activeBy(dailyLoad(MONDAY, 10, MINUTE, 0.005, 9)), {});
});

test('quiet on a tiny noisy metric (0.02 ± 40%, 4 days)', () => {
  const random = prng(3);
  const samples: Sample[] = [];
  for (let i = 0; i < 4 * 1440; i++) samples.push({ time: MONDAY + i * MINUTE, values: { x: 0.02 * (1 + 0.8 * (random.next() - 0.5)) } });
  assert.deepEqual(activeBy(samples), {});
});

test('whole-reading detectors are quiet on consistent meter readings', () => {
  const schema = powerSchema([spec('physics'), spec('silence'), spec('out_of_range')]);
  const detectors = createDetectors(schema);
  assert.deepEqual(detectors.map((d) => d.type).sort(), ['out_of_range', 'out_of_range', 'physics', 'silence']);
  const random = prng(4);
  const samples: Sample[] = [];
  for (const s of dailyLoad(MONDAY, 3, MINUTE, 0.02)) {
    const voltage = 230 * (1 + 0.01 * random.gaussian());
    const pf = 0.95 + 0.02 * random.next();
    const kw = s.values.usageKw!;
    // Meter readings are consistent within a few percent of measurement error.
    const current = ((kw * 1000) / (voltage * pf)) * (1 + 0.02 * random.gaussian());
    samples.push({ time: s.time, values: { usageKw: kw, voltage, current, pf } });
  }
  const context = new FakeContext(schema);
  context.intervalMs = MINUTE;
  const { ctx } = run(schema, detectors, samples, context);
  assert.deepEqual(ctx.findings, []);
  assert.equal(ctx.timer, samples.at(-1)!.time + 1.5 * MINUTE, 'silence is armed for the next deadline');
  // Tiny loads: quantised current and power factor do not make the balance fail.
  const tiny: Sample[] = [];
  for (let i = 0; i < 1000; i++) {
    tiny.push({ time: MONDAY + 4 * DAY + i * MINUTE, values: { usageKw: 0.02 + 0.01 * random.next(), voltage: 230, current: Math.round(random.next() * 2) / 10, pf: 0.5 } });
  }
  assert.deepEqual(run(schema, detectors, tiny).ctx.findings, []);
});
