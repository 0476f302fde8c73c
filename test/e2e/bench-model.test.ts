// Acceptance 5 of issue 7 through the command line: `gridpulse bench --model <file>` runs the same
// machines-stream readings through the engine without and with the model detector, beside the
// bare-parse baseline, and reports readings/s of each and the model's cost per reading. Timings
// are printed, never asserted: what is checked is that both runs saw every reading and that the
// counts hang together (the model adds findings and alerts of its own and changes no other).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDataset, readCsvFile, trainModel, writeModelFile } from '../../src/ml/index.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const AI4I = join(ROOT, 'test/fixtures/ml/ai4i2020.csv');
const READINGS = 20_000;
const TREES = 40;

let dir = '';
let modelPath = '';

function gridpulse(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NODE_NO_WARNINGS: '1' } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

interface Run {
  seconds: number;
  rate: number;
  accepted: number;
  findings: number;
  alertsOpened: Record<string, number>;
  alertTransitions: number;
}

interface Result {
  model: { path: string; kind: string; version: string; trees: number; features: number; threshold: number };
  readings: number;
  machines: number;
  bytes: number;
  rounds: number;
  bare: { seconds: number; rate: number };
  withoutModel: Run;
  withModel: Run;
  modelFindings: number;
  modelAlerts: number;
  modelCostMicroseconds: number;
  ratio: number;
  peakRssMb: number;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gp-bench-model-'));
  // A small model from the project's own training code: the first 4,000 rows of AI4I, 40 trees.
  const table = await readCsvFile(AI4I);
  const slice = { ...table, rows: table.rows.slice(0, 4000) };
  const dataset = buildDataset(slice, { target: 'Machine failure', exclude: ['UDI', 'Product ID', 'TWF', 'HDF', 'PWF', 'OSF', 'RNF'] });
  const trained = await trainModel(dataset, { kind: 'gbdt', folds: 0, gbdt: { trees: TREES }, version: 'bench-small' });
  modelPath = await writeModelFile(join(dir, 'models'), trained.model);
});

after(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

const isRate = (value: unknown): boolean => typeof value === 'number' && Number.isFinite(value) && value > 0;
const isCount = (value: unknown): boolean => typeof value === 'number' && Number.isInteger(value) && value >= 0;

test('bench --model --json: both engine runs see every reading; the model adds only its own findings and alerts', () => {
  // 20 machines × 1,000 readings every 10 s: 2.8 h each, so the simulator's failure episodes (after its 15-minute warm-up) are in the input.
  const r = gridpulse(['bench', '--model', modelPath, '--readings', String(READINGS), '--machines', '20', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout) as Result;

  assert.deepEqual(
    { kind: result.model.kind, version: result.model.version, trees: result.model.trees, path: result.model.path },
    { kind: 'gbdt', version: 'bench-small', trees: TREES, path: modelPath },
  );
  assert.equal(result.readings, READINGS);
  assert.equal(result.machines, 20);
  assert.ok(result.bytes > READINGS * 100, `input of ${result.bytes} bytes for ${READINGS} readings`);
  for (const [name, value] of Object.entries({ bare: result.bare.rate, withoutModel: result.withoutModel.rate, withModel: result.withModel.rate })) {
    assert.ok(isRate(value), `${name} rate: expected a positive number, got ${value}`);
  }
  assert.ok(Number.isFinite(result.modelCostMicroseconds), `modelCostMicroseconds: ${result.modelCostMicroseconds}`);
  assert.ok(Number.isFinite(result.ratio) && result.ratio > 0, `ratio: ${result.ratio}`);
  // The rates are readings over seconds of the same run.
  assert.ok(Math.abs(result.withModel.rate * result.withModel.seconds - READINGS) < 1);
  assert.ok(Math.abs(result.withoutModel.rate * result.withoutModel.seconds - READINGS) < 1);

  // Every reading went through both configurations.
  assert.equal(result.withoutModel.accepted, READINGS);
  assert.equal(result.withModel.accepted, READINGS);

  // Counts are whole and consistent: the model's findings and alerts are the difference between
  // the runs, and the other detectors alert exactly as they do without the model.
  for (const run of [result.withoutModel, result.withModel]) {
    assert.ok(isCount(run.findings) && isCount(run.alertTransitions), JSON.stringify(run));
    for (const n of Object.values(run.alertsOpened)) assert.ok(isCount(n), JSON.stringify(run.alertsOpened));
  }
  assert.ok(isCount(result.modelFindings) && isCount(result.modelAlerts), `model findings ${result.modelFindings}, alerts ${result.modelAlerts}`);
  assert.equal(result.modelFindings, result.withModel.findings - result.withoutModel.findings);
  assert.equal(result.modelAlerts, result.withModel.alertsOpened.model ?? 0);
  assert.ok(result.modelAlerts <= result.modelFindings, `${result.modelAlerts} model alerts from ${result.modelFindings} findings`);
  // Proof that the second run scored with the model: on this seeded input it flags some readings
  // of the simulator's failure episodes (4 findings, 2 alerts when written).
  assert.ok(result.modelFindings > 0, `the model detector raised no finding: ${JSON.stringify(result.withModel)}`);
  assert.equal(result.withoutModel.alertsOpened.model, undefined, 'the run without the model raised model alerts');
  const { model: _model, ...othersWithModel } = result.withModel.alertsOpened;
  assert.deepEqual(othersWithModel, result.withoutModel.alertsOpened);
  // The simulated failure episodes are in the input: the default rules see some of them.
  assert.ok(Object.values(result.withoutModel.alertsOpened).reduce((a, b) => a + b, 0) > 0, `no alerts without the model: ${JSON.stringify(result.withoutModel)}`);
});

test('bench --model prints readings/s with the model on and off and its cost per reading', () => {
  const r = gridpulse(['bench', '--model', modelPath, '--readings', '5000', '--machines', '50']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^model\s+gbdt bench-small: 40 trees, 9 features, threshold 0\.7$/m);
  assert.match(r.stdout, /^input\s+5,000 machine readings, 50 machines/m);
  assert.match(r.stdout, /^bare parse\s+[\d.]+ [kM]? ?readings\/s/m);
  assert.match(r.stdout, /^engine\s+[\d.]+ [kM]? ?readings\/s/m);
  assert.match(r.stdout, /^engine \+ model\s+[\d.]+ [kM]? ?readings\/s/m);
  assert.match(r.stdout, /^model cost\s+-?[\d.]+ µs per reading; [\d.]+% of the rate without it/m);
  assert.match(r.stdout, /^outputs\s+without the model \d+ findings, \d+ alerts; with it \d+ findings, \d+ alerts \(model: \d+ findings, \d+ alerts\)$/m);
});

test('bench --model with a missing file exits 2 naming the file', () => {
  const missing = join(dir, 'no-such-model.json');
  const r = gridpulse(['bench', '--model', missing, '--readings', '1000']);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, new RegExp(`${missing.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: no such model file`));
});
