#!/usr/bin/env node
// Runs every *.test.ts under the given folders (or the given test files) with node's test runner (through tsx) and
// ends with the line CI reads: "N passed, N failed".
// Node 20's --test does not expand globs itself, so the files are listed here.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';

const args = process.argv.slice(2);
// --allow-empty: a suite with no test files yet (e.g. no server-backed tests) reports 0 passed instead of failing.
const allowEmpty = args.includes('--allow-empty');
const roots = args.filter((a) => !a.startsWith('--')).filter((d) => existsSync(d));
const passThrough = args.filter((a) => a.startsWith('--') && a !== '--allow-empty');
function collect(dir) {
  const out = [];
  if (!statSync(dir).isDirectory()) return dir.endsWith('.test.ts') ? [dir] : [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...collect(path));
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}
const files = roots.flatMap(collect);
if (files.length === 0) {
  if (allowEmpty) {
    console.log(`no test files under ${args.filter((a) => !a.startsWith('--')).join(', ')}`);
    console.log('0 passed, 0 failed');
    process.exit(0);
  }
  console.error(`no test files found under ${roots.join(', ')}`);
  process.exit(1);
}
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', ...passThrough, ...files],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
let passed = 0;
let failed = 0;
let buffer = '';
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  buffer += chunk.toString();
});
child.on('close', (code) => {
  // The spec reporter ends with "ℹ pass N" / "ℹ fail N" lines.
  const pass = /ℹ pass (\d+)/.exec(buffer);
  const fail = /ℹ fail (\d+)/.exec(buffer);
  passed = pass ? Number(pass[1]) : 0;
  failed = fail ? Number(fail[1]) : code === 0 ? 0 : 1;
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(code ?? 1);
});
