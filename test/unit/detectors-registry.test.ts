import { test } from 'node:test';
import assert from 'node:assert/strict';
import { combineScores, createDetectors, spikeParams, detectorStateFromJson, detectorStateToJson, detectorTypes, resolveDetectorParams, validateDetectorSpec } from '../../src/detectors/index.js';
import { GpError } from '../../src/model/index.js';
import { dailyLoad, FakeContext, MINUTE, MONDAY, powerSchema, prng, run, schemaOf, spec, type Sample } from './detectors-harness.js';

const PATH = '/streams/power/detectors/0';

test('the registry knows every out-of-the-box detector', () => {
  assert.deepEqual(detectorTypes(), ['spike', 'drop', 'outage', 'sustained_high', 'silence', 'zscore', 'iqr', 'seasonal', 'out_of_range', 'physics', 'rule', 'model']);
  assert.equal(resolveDetectorParams(spec('spike', { threshold: 0.5 })).halfLife, spikeParams.properties.halfLife.default);
  assert.equal(resolveDetectorParams(spec('spike', { halfLife: '1h' })).halfLife, '1h');
  assert.equal(resolveDetectorParams(spec('spike', { threshold: 0.5 })).threshold, 0.5);
});

test('createDetectors: one per metric (gauge and derived power), one per stream for whole-reading kinds, none when disabled', () => {
  const schema = powerSchema([spec('spike'), spec('zscore', {}, ['usageKw']), spec('silence'), spec('physics'), { ...spec('drop'), enabled: false }]);
  const names = createDetectors(schema).map((d) => `${d.type}:${d.metric ?? '*'}`);
  assert.deepEqual(names, ['spike:usageKw', 'spike:voltage', 'spike:current', 'spike:pf', 'zscore:usageKw', 'silence:*', 'physics:*']);
  const energy = schemaOf('energy', [
    { name: 'kwh', field: 'kwh', kind: 'interval-energy', min: undefined, max: undefined, unit: 'kWh' },
    { name: 'kw', field: '', kind: 'derived-power', min: undefined, max: undefined, unit: 'kW' },
  ], [spec('spike')]);
  assert.deepEqual(createDetectors(energy).map((d) => d.metric), ['kw'], 'interval energy is not judged, its derived power is');
});

test('validateDetectorSpec names the field, what was expected and what was got', () => {
  const schema = powerSchema();
  const check = (s: ReturnType<typeof spec>) => validateDetectorSpec(s, schema, PATH);
  assert.deepEqual(check(spec('spike')), []);
  assert.deepEqual(check(spec('spike', { threshold: 'abc' })), [{ path: `${PATH}/params/threshold`, message: 'expected number ≥ 0, got "abc"' }]);
  assert.deepEqual(check(spec('spike', { halfLife: 'soon' })), [{ path: `${PATH}/params/halfLife`, message: 'expected duration like "30m" or a number of milliseconds, got "soon"' }]);
  assert.deepEqual(check(spec('drop', { threshold: 1.5 })), [{ path: `${PATH}/params/threshold`, message: 'expected number ≥ 0 and ≤ 1, got 1.5' }]);
  assert.deepEqual(check(spec('zscore', { window: 2.5 })), [{ path: `${PATH}/params/window`, message: 'expected integer ≥ 4 and ≤ 100000, got 2.5' }]);
  assert.deepEqual(check(spec('seasonal', { direction: 'up' })), [{ path: `${PATH}/params/direction`, message: 'expected one of "both", "high", "low", got "up"' }]);
  assert.match(check(spec('spike', { treshold: 0.5 }))[0]!.message, /^unknown parameter; expected one of: threshold, halfLife, k, /);
  assert.equal(check(spec('spike', { treshold: 0.5 }))[0]!.path, `${PATH}/params/treshold`);
  assert.deepEqual(check(spec('spikes')), [{ path: `${PATH}/type`, message: `unknown detector type "spikes"; expected one of: ${detectorTypes().join(', ')}` }]);
  assert.deepEqual(check(spec('spike', {}, ['kwh'])), [{ path: `${PATH}/metrics/0`, message: 'unknown metric "kwh"; the stream has usageKw, voltage, current, pf' }]);
  assert.deepEqual(check(spec('silence', {}, ['usageKw'])), [{ path: `${PATH}/metrics`, message: 'silence works on whole readings and takes no metrics, got ["usageKw"]' }]);
  assert.deepEqual(check(spec('rule', {})), [{ path: `${PATH}/params/when`, message: 'required: expected a condition like "avg(torque_nm, 1m) > 65"' }]);
  assert.deepEqual(check(spec('rule', { when: 'avg(usageKw, 1m > 5' })), [
    { path: `${PATH}/params/when`, message: 'syntax error at position 17: expected ")" after the window name, got ">" in "avg(usageKw, 1m > 5"' },
  ]);
  assert.deepEqual(check(spec('seasonal', { slot: '7m' })), [{ path: `${PATH}/params/slot`, message: 'expected a slot of at least 1m that divides a day (e.g. "15m", "30m", "1h"), got "7m"' }]);
  assert.deepEqual(check(spec('out_of_range', {}, ['usageKw'])), [{ path: `${PATH}/metrics/0`, message: 'metric "usageKw" declares no min or max; set them on the metric or as params min/max' }]);
  assert.deepEqual(check(spec('physics', { kw: 'power' })), [{ path: `${PATH}/params/kw`, message: 'unknown metric "power"; the stream has usageKw, voltage, current, pf' }]);
});

test('createDetectors refuses an invalid spec with every problem listed', () => {
  const schema = powerSchema([spec('spike', { threshold: -1 }), spec('rule', { when: 'usageKw >' })]);
  assert.throws(
    () => createDetectors(schema),
    (error: unknown) =>
      error instanceof GpError &&
      error.code === 'GP_CONFIG_INVALID' &&
      error.message.includes('/streams/power/detectors/0/params/threshold: expected number ≥ 0, got -1') &&
      error.message.includes('/streams/power/detectors/1/params/when: syntax error at position 10'),
  );
});

test('the overall anomaly score of a reading is the maximum of its detector scores', () => {
  assert.equal(combineScores([0.1, 0.75, 0]), 0.75);
  assert.equal(combineScores([]), 0);
  assert.equal(combineScores([Number.NaN, 0.3]), 0.3);
  assert.equal(combineScores(new Float64Array([2, 0.5])), 1);
});

test('detector states survive a JSON checkpoint: resuming gives the same findings', () => {
  const schema = powerSchema([
    spec('spike'), spec('drop'), spec('outage'), spec('sustained_high', { warmup: '6h' }), spec('zscore'), spec('iqr'), spec('seasonal'),
    spec('out_of_range'), spec('physics'), spec('silence'), spec('rule', { when: 'avg(usageKw, 5m) > 4 and usageKw > 4' }, [], 'high_use'),
  ]);
  const detectors = createDetectors(schema);
  const random = prng(2);
  const samples: Sample[] = [];
  let i = 0;
  for (const s of dailyLoad(MONDAY, 4, MINUTE, 0.03)) {
    i++;
    if (i % 700 > 690) continue; // gaps for silence
    let kw = s.values.usageKw!;
    if (i % 997 === 0) kw *= 3;
    if (i % 1301 < 5) kw = 0;
    samples.push({ time: s.time, values: { usageKw: kw, voltage: 230 + random.gaussian(), current: (kw * 1000) / (230 * 0.95), pf: i % 1777 === 0 ? 0.5 : 0.95 } });
  }
  const half = Math.floor(samples.length / 2);
  const context = () => {
    const ctx = new FakeContext(schema);
    ctx.intervalMs = MINUTE;
    return ctx;
  };
  const first = run(schema, detectors, samples.slice(0, half), context());
  const restored = detectorStateFromJson(JSON.parse(JSON.stringify(detectorStateToJson(first.states)))) as unknown[];
  const straight = run(schema, detectors, samples.slice(half), context(), first.states);
  const resumed = run(schema, detectors, samples.slice(half), context(), restored);
  assert.ok(straight.ctx.findings.length > 10, `the second half has findings (${straight.ctx.findings.length})`);
  assert.deepEqual(resumed.ctx.findings, straight.ctx.findings);
  assert.deepEqual(resumed.scores, straight.scores);
});

test('the state codec keeps typed arrays and non-finite numbers', () => {
  const state = { a: 1, b: [1, 2.5], c: new Float64Array([1, Number.NaN, Number.POSITIVE_INFINITY]), d: Number.NaN, e: { f: -0.5 } };
  const again = detectorStateFromJson(JSON.parse(JSON.stringify(detectorStateToJson(state)))) as typeof state;
  assert.ok(again.c instanceof Float64Array);
  assert.deepEqual(Array.from(again.c), [1, Number.NaN, Number.POSITIVE_INFINITY]);
  assert.ok(Number.isNaN(again.d));
  assert.deepEqual({ ...again, c: null, d: null }, { ...state, c: null, d: null });
});

test('odd values never throw and scores stay in [0, 1]', () => {
  const schema = powerSchema([
    spec('spike'), spec('drop'), spec('outage'), spec('sustained_high', { warmup: '1h' }), spec('zscore'), spec('iqr'), spec('seasonal', { minDays: 1 }),
    spec('out_of_range'), spec('physics'), spec('silence'), spec('rule', { when: 'usageKw / current > 0.5 or avg(usageKw, 1m) < 0' }),
  ]);
  const detectors = createDetectors(schema);
  const random = prng(99);
  const odd = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0, -0, -5, 1e300, -1e300, 5e-324, 1, 2, 3];
  const pick = () => (random.next() < 0.5 ? odd[Math.floor(random.next() * odd.length)]! : random.gaussian() * 10);
  const samples: Sample[] = [];
  let time = MONDAY;
  for (let i = 0; i < 5000; i++) {
    time += random.next() < 0.9 ? MINUTE : Math.floor(random.next() * 5 * 24 * 60) * MINUTE + 1;
    samples.push({ time, values: { usageKw: pick(), voltage: pick(), current: pick(), pf: pick() } });
  }
  const ctx = new FakeContext(schema);
  ctx.intervalMs = MINUTE;
  const { scores } = run(schema, detectors, samples, ctx);
  assert.equal(scores.length, samples.length);
  for (const f of ctx.findings) {
    assert.ok(f.score >= 0 && f.score <= 1, `${f.detector} score ${f.score}`);
    assert.equal(typeof f.explain, 'string');
  }
  assert.ok(ctx.findings.length > 0);
});
