import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig, loadConfig } from '../../src/config/index.js';
import { GpError } from '../../src/model/index.js';

let directory = '';
before(() => {
  directory = mkdtempSync(join(tmpdir(), 'gridpulse-config-'));
});
after(() => {
  rmSync(directory, { recursive: true, force: true });
});

/** A fresh working directory holding the given files. */
function workspace(files: Record<string, string>): string {
  const cwd = mkdtempSync(join(directory, 'cwd-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(cwd, name), text);
  return cwd;
}

test('with no file anywhere the built-in defaults are used', () => {
  const cwd = workspace({});
  assert.deepEqual(loadConfig({ cwd, env: {} }), defaultConfig());
});

test('./gridpulse.yaml is read when no path is given', () => {
  const cwd = workspace({ 'gridpulse.yaml': 'engine: { partitions: 8 }\n' });
  assert.equal(loadConfig({ cwd, env: {} }).engine.partitions, 8);
});

test('an explicit path wins over GRIDPULSE_CONFIG, which wins over ./gridpulse.yaml', () => {
  const cwd = workspace({
    'gridpulse.yaml': 'engine: { partitions: 2 }\n',
    'from-env.yaml': 'engine: { partitions: 3 }\n',
    'explicit.yaml': 'engine: { partitions: 5 }\n',
  });
  assert.equal(loadConfig({ cwd, env: { GRIDPULSE_CONFIG: 'from-env.yaml' } }).engine.partitions, 3);
  assert.equal(loadConfig({ cwd, path: 'explicit.yaml', env: { GRIDPULSE_CONFIG: 'from-env.yaml' } }).engine.partitions, 5);
});

test('GRIDPULSE_STORE and GRIDPULSE_DATA_DIR override the file; the default store follows the data directory', () => {
  const cwd = workspace({ 'gridpulse.yaml': 'dataDir: ./file-data\nstore: { url: "duckdb:./file.duckdb" }\n' });
  const fromFile = loadConfig({ cwd, env: {} });
  assert.equal(fromFile.store.url, 'duckdb:./file.duckdb');
  assert.equal(fromFile.dataDir, './file-data');

  const overridden = loadConfig({ cwd, env: { GRIDPULSE_STORE: 'postgres://localhost/gridpulse', GRIDPULSE_DATA_DIR: '/var/lib/gridpulse' } });
  assert.equal(overridden.store.url, 'postgres://localhost/gridpulse');
  assert.equal(overridden.dataDir, '/var/lib/gridpulse');

  const moved = loadConfig({ cwd: workspace({}), env: { GRIDPULSE_DATA_DIR: '/srv/gp/', GRIDPULSE_STORE: '' } });
  assert.equal(moved.store.url, 'duckdb:/srv/gp/gridpulse.duckdb');
});

test('a config file that was asked for and does not exist is GP_CONFIG_NOT_FOUND', () => {
  const cwd = workspace({});
  assert.throws(
    () => loadConfig({ cwd, path: 'missing.yaml', env: {} }),
    (error: unknown) => error instanceof GpError && error.code === 'GP_CONFIG_NOT_FOUND' && error.message === 'config file not found: missing.yaml',
  );
  assert.throws(
    () => loadConfig({ cwd, env: { GRIDPULSE_CONFIG: 'gone.yaml' } }),
    (error: unknown) => error instanceof GpError && error.code === 'GP_CONFIG_NOT_FOUND' && error.message.includes('gone.yaml (named by GRIDPULSE_CONFIG)'),
  );
  mkdirSync(join(cwd, 'folder.yaml'));
  assert.throws(
    () => loadConfig({ cwd, path: 'folder.yaml', env: {} }),
    (error: unknown) => error instanceof GpError && error.code === 'GP_CONFIG_INVALID' && error.message.includes('got a directory'),
  );
});

test('an invalid file throws GP_CONFIG_INVALID listing every issue as "path: message" with its location', () => {
  const cwd = workspace({ 'gridpulse.yaml': 'engine:\n  partitions: -2\nstreams:\n  power:\n    lateness: { allowed: soon }\n' });
  assert.throws(
    () => loadConfig({ cwd, env: {} }),
    (error: unknown) => {
      assert.ok(error instanceof GpError);
      assert.equal(error.code, 'GP_CONFIG_INVALID');
      const lines = error.message.split('\n');
      assert.equal(lines[0], 'invalid config (gridpulse.yaml):');
      assert.equal(lines[1], '/engine/partitions: expected a whole number from 1 to 1024, got -2 (gridpulse.yaml:2:15)');
      assert.match(lines[2] ?? '', /^\/streams\/power\/lateness\/allowed: expected a duration .*, got "soon" \(gridpulse\.yaml:5:26\)$/);
      assert.equal((error.details.issues as unknown[]).length, 2);
      return true;
    },
  );
});

test('loadConfig passes validateDetector through', () => {
  const cwd = workspace({});
  assert.throws(
    () => loadConfig({ cwd, env: {}, validateDetector: (spec, _schema, path) => (spec.type === 'seasonal' ? [{ path, message: 'expected no seasonal, got one' }] : []) }),
    (error: unknown) => error instanceof GpError && error.message.includes('/streams/power/detectors/4: expected no seasonal, got one'),
  );
});
