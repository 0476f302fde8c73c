// `gridpulse bench` (issue 2, acceptance 5) through the command line: the bare split + JSON.parse
// loop and the full engine on the same generated input, and with --breakdown the engine with its
// windows, its detectors or both switched off. Timings are printed, never asserted: what is
// checked is that every run saw every reading, that each variant really switches off what it
// says (no aggregates without windows) and that the printed figures hang together.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BenchResult } from '../../src/cli/commands/bench.js';
import { runNode } from '../helpers/run-node.js';

const READINGS = 20_000;
const METERS = 200;

const gridpulse = (args: string[]): ReturnType<typeof runNode> => runNode(['src/cli/main.ts', ...args]);

const close = (a: number, b: number, what: string): void => assert.ok(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)), `${what}: ${a} ≠ ${b}`);

test('bench --breakdown --json: the bare loop, the full engine and the engine without windows, detectors or both, on the same readings', async () => {
  const r = await gridpulse(['bench', '--readings', String(READINGS), '--meters', String(METERS), '--breakdown', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout) as BenchResult;
  assert.equal(result.readings, READINGS);
  assert.equal(result.meters, METERS);
  close(result.bareRate, READINGS / result.bareSeconds, 'bare rate');
  close(result.engineRate, READINGS / result.engineSeconds, 'engine rate');
  close(result.ratio, result.bareSeconds / result.engineSeconds, 'ratio');
  // 200 meters every 10 s for 1,000 s: every meter's closed windows are emitted, by the full engine and with windows alone.
  assert.ok(result.aggregates > METERS * 4, `aggregates: ${result.aggregates}`);
  const variants = result.breakdown ?? [];
  assert.deepEqual(variants.map((v) => v.variant), ['core', 'windows', 'detectors']);
  const byName = new Map(variants.map((v) => [v.variant, v]));
  assert.equal(byName.get('core')!.aggregates, 0, 'the core runs no windows');
  assert.equal(byName.get('detectors')!.aggregates, 0, 'the detectors variant runs no windows');
  assert.equal(byName.get('windows')!.aggregates, result.aggregates, 'with windows alone, the same aggregates as the full engine');
  for (const v of variants) {
    assert.ok(v.seconds > 0 && v.cpuSeconds > 0, `${v.variant}: measured`);
    close(v.rate, READINGS / v.seconds, `${v.variant} rate`);
    close(v.ratio, result.bareSeconds / v.seconds, `${v.variant} ratio`);
    close(v.cpuMicros, (v.cpuSeconds / READINGS) * 1e6, `${v.variant} CPU per reading`);
  }
});

test('bench prints both rates, their ratio against the 50% goal, and with --breakdown what windows and detectors add per reading', async () => {
  const r = await gridpulse(['bench', '--readings', '5000', '--meters', '50', '--breakdown']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^bare parse +[\d.]+(?: [kM])? readings\/s/m);
  assert.match(r.stdout, /^full engine +[\d.]+(?: [kM])? readings\/s/m);
  assert.match(r.stdout, /^ratio +[\d.]+% of the bare-parse rate \(goal ≥ 50%\)/m);
  for (const variant of ['core', 'windows', 'detectors']) assert.match(r.stdout, new RegExp(`^  ${variant} +[\\d.]+(?: [kM])? +[\\d.]+% +[\\d.]+ µs`, 'm'));
  assert.match(r.stdout, /^ {2}windows add -?[\d.]+ µs per reading to the core, detectors -?[\d.]+ µs; both together -?[\d.]+ µs$/m);
  // Progress goes to stderr, the figures alone to stdout.
  assert.match(r.stderr, /measuring the engine with parts switched off/);
});

test('bench with a malformed count exits 2 naming the flag', async () => {
  const r = await gridpulse(['bench', '--readings', 'many']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--readings/);
});
