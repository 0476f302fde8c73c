// The Kafka crash harness (scripts/kafka-crash.ts) at a small size: 30,000 readings of 100 meters
// produced to a fresh topic of the Kafka test broker while `gridpulse process` consumes them into
// PostgreSQL and is SIGKILLed 5 times (2 of them while it writes a checkpoint) and restarted; the
// store must then hold exactly what `gridpulse replay` of the same readings stores. The full size
// (1,000,000 readings, 20 kills) is run by hand: see the harness's header and the README.
//
// Needs `scripts/servers.sh start postgres` (the harness fails saying so when it does not answer);
// the Kafka test broker is one of the file's own, started with `scripts/servers.sh start kafka`.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPrivateKafka } from '../helpers/kafka-processes.js';
import { runNode } from '../helpers/run-node.js';

const dir = mkdtempSync(join(tmpdir(), 'gp-kafka-crash-test-'));
const broker = startPrivateKafka(dir);
after(() => {
  broker.stop();
  rmSync(dir, { recursive: true, force: true });
});

const HARNESS = fileURLToPath(new URL('../../scripts/kafka-crash.ts', import.meta.url));
const runHarness = (args: readonly string[]): ReturnType<typeof runNode> => runNode([HARNESS, ...args]);

function figure(stdout: string, name: string): number {
  const match = new RegExp(`^${name}: (\\d+(?:\\.\\d+)?)`, 'm').exec(stdout);
  assert.ok(match !== null, `the harness printed no "${name}" line:\n${stdout}`);
  return Number(match[1]);
}

test('30,000 readings, gridpulse process SIGKILLed 5 times (2 during a checkpoint write) and restarted: 0 lost, 0 duplicated, 0 different against replay', { timeout: 420_000 }, async () => {
  const { code, stdout, stderr } = await runHarness(['--kafka', broker.url, '--readings', '30000', '--meters', '100', '--kills', '5', '--checkpoint-kills', '2', '--gap-min-ms', '500', '--gap-max-ms', '3000']);
  const context = `\n--- stdout\n${stdout}\n--- stderr (last 3000 characters)\n${stderr.slice(-3000)}`;
  assert.equal(code, 0, `the harness exits 0 on success${context}`);
  assert.match(stdout, /^result: PASS$/m, context);
  assert.equal(figure(stdout, 'readings'), 30000, `every reading produced${context}`);
  assert.equal(figure(stdout, 'kills'), 5, context);
  assert.equal(figure(stdout, 'checkpoint kills'), 2, context);
  assert.equal(figure(stdout, 'lost'), 0, `nothing of the reference missing${context}`);
  assert.equal(figure(stdout, 'duplicated'), 0, `nothing extra or twice${context}`);
  assert.equal(figure(stdout, 'different'), 0, `nothing with other values${context}`);
  assert.equal(figure(stdout, 'retention gaps'), 0, `the broker kept every record until it was processed${context}`);
  assert.equal(figure(stdout, 'unexpected exits'), 0, context);
  // The comparison covered real results: every reading, aggregates and alerts of the spiking meters.
  assert.match(stdout, /^table readings: reference 30000, processed 30000, /m, context);
  assert.ok(figure(stdout, 'reference alerts') > 0, `the reference has alerts${context}`);
  const crashes = stdout.match(/^crash \d+: .* recovered after \d+\.\d s$/gm) ?? [];
  assert.equal(crashes.length, 5, `a recovery time for each crash${context}`);
  assert.match(stdout, /^recovery p50: \d+\.\d s$/m, context);
  assert.match(stdout, /^recovery p99: \d+\.\d s$/m, context);
});
