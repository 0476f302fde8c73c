// GET /api/models (the dashboard's Models page): every model file of the platform's models
// directory, newest first, with the evaluation stored in it and the serving one marked — through
// the real platform and app (inject), with models trained here.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApiApp } from '../../src/api/index.js';
import { createMlPlatformMethods } from '../../src/cli/platform-ml.js';
import type { ModelFile } from '../../src/detectors/index.js';
import { buildDataset, parseCsv, trainModel, writeModelFile } from '../../src/ml/index.js';
import { T0, errorOf, startHarness, type Harness } from './api-harness.js';

let h: Harness;

before(async () => {
  h = await startHarness();
});
after(async () => {
  await h?.close();
});

interface ModelsJson {
  serving: { version: string | null; source: string } | null;
  models: Array<{
    file: string;
    version: string;
    kind: string;
    created_at: string;
    features: number;
    threshold: number;
    serving: boolean;
    training: { rows: number; positives: number | null; fingerprint: string; source: string } | null;
    metrics: { method: string; threshold: number; precision: number | null; recall: number | null; f1: number | null; rocAuc: number | null; averagePrecision: number | null; confusion: { tp: number; fp: number; tn: number; fn: number } | null } | null;
    problem: string | null;
  }>;
}

/** 240 machine rows; a failure when torque is high at low speed (with a few noisy labels, so the metrics are not all 1). */
function machineTable(): ReturnType<typeof parseCsv> {
  const lines = ['air,process,rpm,torque,wear,fail'];
  for (let i = 0; i < 240; i++) {
    const strained = i % 6 === 0;
    const noisy = i % 53 === 0;
    const rpm = strained ? 1250 + (i % 7) * 10 : 1500 + (i % 11) * 15;
    const torque = strained ? 66 + (i % 5) : 35 + (i % 13);
    lines.push([300 + (i % 5) * 0.2, 310 + (i % 3) * 0.3, rpm, torque, i % 200, strained !== noisy ? 1 : 0].join(','));
  }
  return parseCsv(`${lines.join('\n')}\n`, 'machines.csv');
}

async function train(kind: 'gbdt' | 'forest', version: string, createdAt: number): Promise<ModelFile> {
  const data = buildDataset(machineTable(), { target: 'fail' });
  const small = { gbdt: { trees: 20 }, forest: { trees: 20 } };
  return (await trainModel(data, { kind, folds: 3, version, now: () => createdAt, ...small })).model;
}

test('without model files, GET /api/models answers an empty list and no serving model', async () => {
  const response = await h.app.inject({ method: 'GET', url: '/api/models' });
  assert.equal(response.statusCode, 200, response.body);
  assert.deepEqual(response.json(), { serving: null, models: [] });
});

test('GET /api/models lists every model file newest first with its stored evaluation, marks the serving one and names a broken file', async () => {
  const dir = join(h.config.dataDir, 'models');
  const older = await train('forest', 'forest-older', T0);
  const newer = await train('gbdt', 'gbdt-newer', T0 + 60_000);
  await writeModelFile(dir, newer);
  await writeModelFile(dir, older);
  writeFileSync(join(dir, 'broken.json'), JSON.stringify({ format: 'gridpulse-model', formatVersion: 1, kind: 'svm' }));

  const response = await h.app.inject({ method: 'GET', url: '/api/models' });
  assert.equal(response.statusCode, 200, response.body);
  const body = response.json<ModelsJson>();
  // Valid models newest first; the broken file (no creation time) last, with its problem.
  assert.deepEqual(
    body.models.map((m) => [m.file, m.version, m.kind, m.serving]),
    [
      ['gbdt-newer.json', 'gbdt-newer', 'gbdt', true],
      ['forest-older.json', 'forest-older', 'forest', false],
      ['broken.json', 'broken.json', '?', false],
    ],
  );
  assert.deepEqual(body.serving, { version: 'gbdt-newer', source: 'directory' });
  const served = (await h.app.inject({ method: 'GET', url: '/v1/model' })).json<{ version: string }>();
  assert.equal(served.version, 'gbdt-newer', 'the row marked serving is the model /v1/model describes');

  const [gbdt, forest, broken] = body.models;
  for (const [row, file] of [
    [gbdt!, newer],
    [forest!, older],
  ] as const) {
    const m = file.metrics!;
    assert.ok(m.confusion.tp + m.confusion.fn > 0, 'the data has failures');
    assert.deepEqual(row.metrics, { method: m.method, threshold: m.threshold, precision: m.precision, recall: m.recall, f1: m.f1, rocAuc: m.rocAuc, averagePrecision: m.averagePrecision, confusion: m.confusion });
    assert.match(row.metrics.method, /3-fold stratified cross-validation/);
    assert.deepEqual(row.training, { source: 'machines.csv', rows: 240, positives: file.training!.positives, fingerprint: file.training!.fingerprint });
    assert.equal(row.features, file.features.length);
    assert.equal(row.threshold, 0.7);
    assert.equal(row.created_at, file.createdAt);
    assert.equal(row.problem, null);
    const { tp, fp, tn, fn } = row.metrics.confusion;
    assert.equal(tp + fp + tn + fn, 240, 'the confusion matrix counts every out-of-fold row');
  }
  assert.equal(gbdt!.training!.fingerprint, forest!.training!.fingerprint, 'same training data, same fingerprint');
  assert.match(broken!.problem ?? '', /kind: expected gbdt, forest, isolation_forest, onnx, got "svm"/);
  assert.equal(broken!.metrics, null);
});

test('a model named by a model detector in the config serves, and GET /api/models says it comes from the config', async () => {
  // The platform's ML methods with a config whose machines stream has a model detector (a file outside the models directory).
  const outside = mkdtempSync(join(tmpdir(), 'gridpulse-models-'));
  try {
    const configuredPath = await writeModelFile(outside, await train('gbdt', 'gbdt-configured', T0 - 60_000));
    const streams = h.platform.streams.map((s) =>
      s.name === 'machines' ? { ...s, detectors: [...s.detectors, { type: 'model', metrics: [], params: { path: configuredPath }, alertType: undefined, enabled: true }] } : s,
    );
    const ml = createMlPlatformMethods({ config: h.config, streams, store: h.platform.store, clock: () => T0 });
    const listing = await ml.listModels();
    assert.deepEqual(listing.serving, { version: 'gbdt-configured', source: 'config' });
    assert.ok(listing.models.length >= 2, 'the directory is still listed');
    assert.deepEqual(listing.models.filter((m) => m.serving), [], 'no file of the directory serves');
    await ml.closeModels();
  } finally {
    rmSync(outside, { recursive: true, force: true });
  }
});

test('a platform without model support answers 503 GP_UNAVAILABLE', async () => {
  const withoutModels = Object.create(h.platform, { listModels: { value: undefined } }) as typeof h.platform;
  const app = await createApiApp({ platform: withoutModels, server: h.server });
  try {
    const response = await app.inject({ method: 'GET', url: '/api/models' });
    assert.equal(response.statusCode, 503, response.body);
    const error = errorOf(response);
    assert.equal(error.code, 'GP_UNAVAILABLE');
    assert.match(error.message, /model listing is not available/);
    assert.equal(response.headers['retry-after'], '60');
  } finally {
    await app.close();
  }
});
