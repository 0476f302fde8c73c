import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ERROR_CODES } from '../../src/model/index.js';

const ROOT = new URL('../../', import.meta.url).pathname;

function gridpulse(args: string[], cwd = ROOT): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], { cwd, encoding: 'utf8', env: { ...process.env, NODE_NO_WARNINGS: '1' } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

test('every command has --help that describes its options', () => {
  const top = gridpulse(['--help']);
  assert.equal(top.code, 0);
  for (const command of ['up', 'demo', 'replay', 'simulate', 'eval', 'bench', 'config', 'token', 'migrate']) assert.match(top.stdout, new RegExp(`\\b${command}\\b`));
  const expectations: Record<string, RegExp> = {
    replay: /--alerts-out[\s\S]*--time <column>[\s\S]*@row/,
    simulate: /--meters[\s\S]*--labels/,
    eval: /--labels[\s\S]*--tolerance/,
    bench: /--readings[\s\S]*--meters/,
    demo: /--meters/,
    up: /--data-dir[\s\S]*--port[\s\S]*--no-simulator/,
    token: /--name[\s\S]*--keys/,
    migrate: /--store[\s\S]*--json/,
    'config check': /JSON-pointer/,
  };
  for (const [command, pattern] of Object.entries(expectations)) {
    const r = gridpulse([...command.split(' '), '--help']);
    assert.equal(r.code, 0, command);
    assert.match(r.stdout, pattern, command);
  }
});

test('config check names the JSON-pointer path, what was expected and what was got, and exits 2', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gp-cli-'));
  const file = join(dir, 'gridpulse.yaml');
  writeFileSync(file, 'streams:\n  power:\n    lateness:\n      allowed: ten minutes\n    detectors:\n      - { type: spike, metrics: [usageKwh] }\n');
  const r = gridpulse(['config', 'check', file]);
  assert.equal(r.code, 2);
  assert.match(r.stdout, /\/streams\/power\/lateness\/allowed: .*duration.*"ten minutes"/);
  assert.match(r.stdout, /\/streams\/power\/detectors\/0\/metrics\/0: .*usageKwh/);
  const ok = gridpulse(['config', 'check', join(ROOT, 'gridpulse.example.yaml')]);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /stream power: key meterId/);
});

test('a user error prints one clear line and exits 2', () => {
  const r = gridpulse(['replay', '/nonexistent/readings.csv']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /gridpulse: cannot read \/nonexistent\/readings.csv: no such file/);
  const layout = gridpulse(['replay', join(ROOT, 'test/fixtures/ai4i2020-excerpt.csv'), '--no-store']);
  assert.equal(layout.code, 2);
  assert.match(layout.stderr, /Air temperature \[K\][\s\S]*--time/);
  const count = gridpulse(['replay', join(ROOT, 'test/fixtures/lcl-2meters-excerpt.csv'), '--no-store', '--topic-partitions', 'four']);
  assert.equal(count.code, 2);
  assert.match(count.stderr, /gridpulse: --topic-partitions: expected a whole number from 1 to 1024, got "four"/);
});

test('the README lists exactly the error codes the code defines', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const documented = [...readme.matchAll(/^\| `(GP_[A-Z_]+)` \|/gm)].map((m) => m[1]).sort();
  assert.deepEqual(documented, Object.keys(ERROR_CODES).sort());
});

test('token prints a new token once and config lines that hold only its SHA-256, bound to the given devices', async () => {
  const r = gridpulse(['token', '--name', 'meter-1', '--keys', 'm-1,m-2']);
  assert.equal(r.code, 0, r.stderr);
  const token = /^(gp_[\w-]+)$/m.exec(r.stdout)?.[1];
  assert.ok(token, r.stdout);
  const yaml = r.stdout.slice(r.stdout.indexOf('server:'));
  assert.ok(!yaml.includes(token), 'the token itself is not in the config lines');
  const { parseConfig } = await import('../../src/config/index.js');
  const { hashToken } = await import('../../src/api/index.js');
  const { config, issues } = parseConfig(yaml);
  assert.deepEqual(issues, []);
  assert.equal(config?.server.auth.mode, 'tokens');
  assert.equal(config?.server.auth.tokens[0]?.sha256, hashToken(token));
  assert.deepEqual(config?.server.auth.tokens[0]?.keys, ['m-1', 'm-2']);
  const bad = gridpulse(['token', '--name', 'bad name!']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--name: expected/);
});

test('up on a port that is taken says so and exits with 2 instead of hanging', async () => {
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  try {
    const dir = mkdtempSync(join(tmpdir(), 'gp-port-'));
    const r = gridpulse(['up', '--port', String(port), '--data-dir', dir, '--no-simulator']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${port} is in use by another process; pick another with --port`));
  } finally {
    server.close();
  }
});
