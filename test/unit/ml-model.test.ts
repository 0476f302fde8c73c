// Metrics, folds, model files, feature computation, the model detector and the ONNX path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FeatureComputer, createDetectors, parseModelFile, scoreTrees, validateDetectorSpec, type ModelFile } from '../../src/detectors/index.js';
import {
  buildDataset,
  classificationMetrics,
  listModels,
  loadModel,
  logisticRegressionOnnx,
  onnxModelFile,
  parseCsv,
  prCurve,
  prCurveSvg,
  stratifiedFolds,
  trainModel,
  writeModelFile,
} from '../../src/ml/index.js';
import { FakeContext, MINUTE, MONDAY, machineSchema, reading, spec } from './detectors-harness.js';

test('metrics match a hand computation: confusion, precision, recall, F1, ROC AUC, PR curve', () => {
  const scores = [0.9, 0.8, 0.7, 0.6, 0.2, 0.1];
  const labels = Uint8Array.of(1, 0, 1, 0, 1, 0);
  const m = classificationMetrics(scores, labels, 0.65);
  assert.deepEqual(m.confusion, { tp: 2, fp: 1, tn: 2, fn: 1 });
  assert.equal(m.precision, 2 / 3);
  assert.equal(m.recall, 2 / 3);
  assert.equal(m.f1, 2 / 3);
  // Pairs (failure above normal): 0.9 beats 3, 0.7 beats 2, 0.2 beats 1 → 6 of 9.
  assert.equal(m.rocAuc, 6 / 9);
  assert.deepEqual(
    prCurve(scores, labels).map((p) => [p.threshold, p.recall.toFixed(3), p.precision.toFixed(3)]),
    [
      [0.9, '0.333', '1.000'],
      [0.8, '0.333', '0.500'],
      [0.7, '0.667', '0.667'],
      [0.6, '0.667', '0.500'],
      [0.2, '1.000', '0.600'],
      [0.1, '1.000', '0.500'],
    ],
  );
  // AP = 1/3·1 + 1/3·2/3 + 1/3·0.6
  assert.ok(Math.abs(m.averagePrecision! - (1 + 2 / 3 + 0.6) / 3) < 1e-12);
  const svg = prCurveSvg(prCurve(scores, labels), { title: 'test', threshold: 0.65 });
  assert.match(svg, /<polyline[^>]+points="60\.0,/);
  assert.match(svg, /threshold 0\.65 \(P 0\.67, R 0\.67\)/);
});

test('stratified folds give every fold the same share of failures', () => {
  const labels = new Uint8Array(1000);
  for (let i = 0; i < 1000; i += 20) labels[i] = 1; // 50 failures
  const fold = stratifiedFolds(labels, 5, 7);
  for (let k = 0; k < 5; k++) {
    let rows = 0;
    let failures = 0;
    fold.forEach((f, i) => {
      if (f === k) {
        rows++;
        failures += labels[i]!;
      }
    });
    assert.equal(rows, 200);
    assert.equal(failures, 10);
  }
});

test('CSV with a byte-order mark, CRLF and quotes; engineered features computed as documented', () => {
  const table = parseCsv('\uFEFFid,"Air temperature [K]",Process temperature [K],Rotational speed [rpm],Torque [Nm],Tool wear [min],fail\r\n1,300,310,1500,40,100,0\r\n2,301,309,1200,60,200,1\r\n', 'mini.csv');
  const data = buildDataset(table, { target: 'fail', exclude: ['id'] });
  assert.deepEqual(
    data.features.map((f) => f.name),
    ['Air temperature [K]', 'Process temperature [K]', 'Rotational speed [rpm]', 'Torque [Nm]', 'Tool wear [min]', 'temp_diff_k', 'power_w', 'torque_x_wear'],
  );
  const column = (name: string): number[] => Array.from(data.columns[data.features.findIndex((f) => f.name === name)]!);
  assert.deepEqual(column('temp_diff_k'), [10, 8]);
  assert.ok(Math.abs(column('power_w')[0]! - (40 * 1500 * 2 * Math.PI) / 60) < 1e-9);
  assert.deepEqual(column('torque_x_wear'), [4000, 12000]);
  assert.deepEqual(Array.from(data.labels!), [0, 1]);
  assert.throws(() => parseCsv('a,b\n1\n', 'bad.csv'), /bad\.csv:2: expected 2 cells like the header, got 1/);
});

test('rolling features: mean, standard deviation and change over the window, per device, the same in training and live', () => {
  const model = {
    inputs: [{ name: 'torque_nm', type: 'number' as const }],
    features: [
      { name: 'mean', kind: 'rolling_mean' as const, input: 'torque_nm', windowMs: MINUTE },
      { name: 'std', kind: 'rolling_std' as const, input: 'torque_nm', windowMs: MINUTE },
      { name: 'delta', kind: 'rolling_delta' as const, input: 'torque_nm', windowMs: MINUTE },
    ],
  };
  const computer = new FeatureComputer(model);
  const state = computer.createRollingState();
  const out = new Float64Array(3);
  for (const [t, v] of [
    [0, 10],
    [30_000, 20],
    [60_000, 30],
  ] as const) computer.compute([v], MONDAY + t, state, out);
  // At 60 s the window (0, 60 s] holds 20 and 30.
  assert.deepEqual(Array.from(out), [25, 5, 10]);
  const table = parseCsv('machine,time,torque_nm,label\na,0,10,0\nb,0,99,1\na,30000,20,0\na,60000,30,1\n', 'rolling.csv');
  const data = buildDataset(table, { target: 'label', key: 'machine', time: 'time', rollingWindowsMs: [MINUTE] });
  const mean = data.columns[data.features.findIndex((f) => f.name === 'torque_nm_mean_1m')]!;
  assert.deepEqual(Array.from(mean), [10, 99, 15, 25]);
});

function tinyModel(): ModelFile {
  // torque_nm ≤ 65 → −3, else +3 (log-odds); base 0.
  return parseModelFile(
    {
      format: 'gridpulse-model',
      formatVersion: 1,
      kind: 'gbdt',
      version: 'tiny-1',
      createdAt: '2025-01-01T00:00:00Z',
      target: 'fail',
      inputs: [{ name: 'Torque [Nm]', type: 'number' }],
      features: [{ name: 'Torque [Nm]', kind: 'input', input: 'Torque [Nm]' }],
      threshold: 0.7,
      trees: [{ feature: [0, -1, -1], threshold: [65, 0, 0], left: [1, -1, -1], right: [2, -1, -1], missingLeft: [1, 1, 1], value: [0, -3, 3], size: [10, 5, 5] }],
      baseScore: 0,
      sampleSize: 0,
      metrics: null,
      training: null,
    },
    'tiny.json',
  );
}

test('model files are checked field by field, and a written model scores the same when read back', async () => {
  assert.throws(() => parseModelFile({ ...tinyModel(), kind: 'svm' }, 'm.json'), /m\.json: kind: expected gbdt, forest, isolation_forest, onnx, got "svm"/);
  assert.throws(() => parseModelFile({ ...tinyModel(), threshold: 2 }, 'm.json'), /threshold: expected a number from 0 to 1, got 2/);
  const broken = tinyModel();
  broken.trees[0]!.left[0] = 0;
  assert.throws(() => parseModelFile(broken, 'm.json'), /trees\/0\/left\/0: expected a node index from 1 to 2, got 0/);
  const data = buildDataset(parseCsv('x,y,fail\n1,5,0\n2,4,0\n3,3,0\n4,2,1\n5,1,1\n6,0,1\n7,1,1\n0,9,0\n', 'toy.csv'), { target: 'fail' });
  const { model } = await trainModel(data, { kind: 'forest', folds: 0, forest: { trees: 5 } });
  const dir = mkdtempSync(join(tmpdir(), 'gp-ml-'));
  const path = await writeModelFile(dir, model);
  const loaded = await loadModel(path);
  const rows = [[1, 5], [6, 0], [Number.NaN, 3]];
  assert.deepEqual(await loaded.score(rows), rows.map((r) => scoreTrees(model, r)));
  assert.deepEqual((await listModels(dir)).map((m) => [m.kind, m.version]), [['forest', model.version]]);
});

test('the model detector raises a finding with the top features at the threshold and clears below it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gp-ml-'));
  const path = join(dir, 'tiny.json');
  writeFileSync(path, JSON.stringify(tinyModel()));
  const schema = machineSchema([spec('model', { path })]);
  assert.deepEqual(validateDetectorSpec(spec('model', { path, threshold: 1.5 }), schema, '/d'), [{ path: '/d/params/threshold', message: 'expected number ≥ 0 and ≤ 1, got 1.5' }]);
  assert.match(validateDetectorSpec(spec('model', { path: join(dir, 'none.json') }), schema, '/d')[0]!.message, /no such model file/);
  const [detector] = createDetectors(schema);
  assert.ok(detector);
  const state = detector.createState();
  const ctx = new FakeContext(schema);
  const values = (torque: number): Record<string, number> => ({ air_temp_k: 300, process_temp_k: 310, rpm: 1500, torque_nm: torque, tool_wear_min: 10 });
  assert.equal(detector.onReading(state, reading(schema, MONDAY, values(40)), ctx), 0);
  const score = detector.onReading(state, reading(schema, MONDAY + MINUTE, values(70)), ctx);
  assert.equal(score, 1 / (1 + Math.exp(-3)));
  assert.equal(detector.onReading(state, reading(schema, MONDAY + 2 * MINUTE, values(40)), ctx), 0);
  assert.deepEqual(
    ctx.findings.map((f) => [f.active, f.metric, f.explain]),
    [
      [true, 'torque_nm', 'model gbdt tiny-1: failure score 0.953 ≥ threshold 0.7; top features Torque [Nm] = 70 (+3) (contribution in log-odds)'],
      [false, undefined, 'model gbdt tiny-1: failure score 0.047 is below threshold 0.7 again after 1m'],
    ],
  );
});

test('an ONNX logistic regression written by the project scores as its closed form', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gp-onnx-'));
  const weights = [0.5, -1.25];
  const bytes = logisticRegressionOnnx(weights, 0.75, { inputName: 'features', outputName: 'probability' });
  writeFileSync(join(dir, 'lr.onnx'), bytes);
  const path = await writeModelFile(dir, onnxModelFile({ onnxFile: 'lr.onnx', onnxBytes: bytes, inputs: ['a', 'b'], version: 'lr-1', inputName: 'features', outputName: 'probability' }));
  const loaded = await loadModel(path);
  try {
    const rows = [[0, 0], [2, 1], [-3, 4.5]];
    const scores = await loaded.score(rows);
    rows.forEach((x, i) => assert.ok(Math.abs(scores[i]! - 1 / (1 + Math.exp(-(0.5 * x[0]! - 1.25 * x[1]! + 0.75)))) < 1e-6, `row ${i}: ${scores[i]}`));
  } finally {
    await loaded.close();
  }
  // The detector refuses ONNX (asynchronous) models and says where they are served.
  const issues = validateDetectorSpec(spec('model', { path }), machineSchema(), '/d');
  assert.match(issues[0]!.message, /ONNX model: the model detector scores tree models .* POST \/v1\/infer/);
});
