// Acceptance 1 of issue 7 through the command line: `gridpulse train` on AI4I 2020 (failure-mode
// flags and ids excluded) reaches a 5-fold stratified cross-validated F1 ≥ 0.85 on the failure
// class, writes a model file and a PR-curve SVG; `models list` and `eval --model` read them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = new URL('../../', import.meta.url).pathname;
const AI4I = join(ROOT, 'test/fixtures/ml/ai4i2020.csv');

function gridpulse(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NODE_NO_WARNINGS: '1' } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

test('train → models list → eval --model on AI4I 2020: cross-validated F1 ≥ 0.85, files written', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gp-ml-cli-'));
  const models = join(dir, 'models');
  const started = Date.now();
  const train = gridpulse(['train', '--data', AI4I, '--target', 'Machine failure', '--exclude', 'UDI,Product ID,TWF,HDF,PWF,OSF,RNF', '--model', 'gbdt', '--folds', '5', '--out', models]);
  const seconds = (Date.now() - started) / 1000;
  assert.equal(train.code, 0, train.stderr);
  t.diagnostic(train.stdout);
  const f1 = Number(/5-fold stratified cross-validation[^\n]*\n\s+precision \S+\s+recall \S+\s+F1 (\d\.\d+)/.exec(train.stdout)?.[1]);
  assert.ok(f1 >= 0.85, `cross-validated F1 ${f1} < 0.85\n${train.stdout}`);
  assert.ok(seconds < 60, `training took ${seconds} s`);
  // The flags that define the label must not be features.
  assert.doesNotMatch(train.stdout.split('\n')[0]!, /\b(TWF|HDF|PWF|OSF|RNF|UDI|Product ID)\b/);
  const files = readdirSync(models);
  const modelFile = files.find((f) => f.endsWith('.json'));
  const plot = files.find((f) => f.endsWith('-pr.svg'));
  assert.ok(modelFile && plot, `expected a model file and a plot, got ${files.join(', ')}`);
  const model = JSON.parse(readFileSync(join(models, modelFile), 'utf8')) as Record<string, unknown> & { training: { fingerprint: string }; metrics: { f1: number } };
  for (const field of ['kind', 'version', 'features', 'trees', 'threshold', 'metrics', 'training', 'createdAt']) assert.ok(field in model, `model file lacks ${field}`);
  assert.match(model.training.fingerprint, /^[0-9a-f]{64}$/);
  assert.equal(model.metrics.f1.toFixed(3), f1.toFixed(3));
  assert.match(readFileSync(join(models, plot), 'utf8'), /^<svg[\s\S]*<polyline[\s\S]*<\/svg>\n$/);

  const list = gridpulse(['models', 'list', '--dir', models]);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, new RegExp(`${String(model.version)}\\s.*Machine failure\\s+9\\s+0\\.7\\s+${f1.toFixed(3)}`));

  const evalPlot = join(dir, 'eval.svg');
  const evaluated = gridpulse(['eval', '--model', join(models, modelFile), '--data', AI4I, '--target', 'Machine failure', '--plot', evalPlot]);
  assert.equal(evaluated.code, 0, evaluated.stderr);
  assert.match(evaluated.stdout, /precision \d\.\d{3}\s+recall \d\.\d{3}\s+F1 \d\.\d{3}\s+ROC AUC \d\.\d{3}/);
  assert.match(evaluated.stdout, /actual 1 \(fail\)\s+\d+\s+\d+\n\s+actual 0\s+\d+\s+\d+/);
  assert.match(evaluated.stdout, /own training data/);
  assert.ok(existsSync(evalPlot));
});

test('train explains a text id column left in, and eval without inputs asks for them', () => {
  const r = gridpulse(['train', '--data', AI4I, '--target', 'Machine failure', '--exclude', 'UDI,TWF,HDF,PWF,OSF,RNF', '--folds', '0', '--out', mkdtempSync(join(tmpdir(), 'gp-ml-cli-'))]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /column "Product ID": expected numbers or a category .* --exclude "Product ID"/);
  const e = gridpulse(['eval']);
  assert.equal(e.code, 2);
  assert.match(e.stderr, /results: expected NDJSON files .*--model/);
});
