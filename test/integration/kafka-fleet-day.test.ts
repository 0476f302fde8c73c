// Issue 8, acceptance 1: a simulated day of 500 meters (every 10 minutes, with injected spikes,
// drops, outages, gaps, late, duplicate and malformed lines; about 72,000 lines — the test broker
// keeps only about 5 MB per partition) on a 4-partition topic of the Kafka test broker, consumed by `gridpulse process` with 1, 2 and 3 members of one group writing to one
// PostgreSQL store each: the aggregates, alerts and transitions are identical across the three runs.
// How they differ from `gridpulse replay` of the same file is printed (see the end of the test).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  assertSameContents,
  keyedDifference,
  assignments,
  contents,
  finished,
  gridpulse,
  produce,
  replayContents,
  startProcess,
  startPrivateKafka,
  TestDatabases,
  type Contents,
  type PrivateKafka,
} from '../helpers/kafka-processes.js';

const METERS = Number(process.env.GP_KAFKA_DAY_METERS ?? 500);
const PARTITIONS = 4;

const run = `${process.pid}-${Date.now()}`;
const dir = mkdtempSync(join(tmpdir(), 'gp-kafka-day-'));
const databases = new TestDatabases(`gp_kday_${run}`);
let kafkaUrl = '';
let broker: PrivateKafka | undefined;
let topic = '';
let records = 0;
let reference: Contents;

before(async () => {
  broker = startPrivateKafka(dir);
  kafkaUrl = broker.url;
  topic = `kday-power-${run}`;
  // The meters' interval is declared (every command here reads this gridpulse.yaml from its working
  // directory). With a learned interval, the energy of a device's first windows depends on whether
  // the window closed before or after the device's second reading taught the engine its interval —
  // and a partition's watermark moves at another pace than the whole file's (see the issue notes).
  writeFileSync(join(dir, 'gridpulse.yaml'), 'streams:\n  power:\n    expectedInterval: 10m\n');
  const file = join(dir, 'day.ndjson');
  // A 6 h warm-up instead of the default 24 h, so anomalies fall inside the one day.
  gridpulse(['simulate', '--meters', String(METERS), '--days', '1', '--interval', '10m', '--warmup', '6h', '--seed', '8', '--out', file, '--labels', join(dir, 'labels.json')], dir);
  const lines = readFileSync(file, 'utf8').split('\n').filter((line) => line.length > 0);
  records = lines.length;
  await produce(kafkaUrl, topic, lines);
  reference = await replayContents(file, await databases.create('replay'), dir);
});

after(async () => {
  broker?.stop();
  await databases.dropAll();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `members` processes of a new group over the topic to its end and returns what they stored. */
async function consumeWith(members: number): Promise<{ stored: Contents; outputs: string[] }> {
  const storeUrl = await databases.create(`m${members}`);
  const group = `kday-${members}-${run}`;
  const running = Array.from({ length: members }, (_, i) => startProcess({ kafkaUrl, storeUrl, group, topic, dir, name: `m${members}-${i}` }));
  const outputs = await Promise.all(running.map((member, i) => finished(member, `member ${i + 1} of ${members}`, 240_000)));
  return { stored: await contents(storeUrl), outputs };
}

/** The records each member logged as processed, summed: every record once, whoever owned it. */
function processedRecords(outputs: readonly string[]): number {
  return outputs.reduce((sum, output) => sum + Number(/stopped: (\d+) records processed/.exec(output)?.[1] ?? Number.NaN), 0);
}

test('a simulated day of 500 meters gives identical aggregates, alerts and transitions with 1, 2 and 3 processes in a group', { timeout: 900_000 }, async () => {
  const types = new Set((reference.alerts as Array<{ type: string }>).map((alert) => alert.type));
  assert.ok(types.size >= 3, `the day raises alerts of several types: ${[...types].join(', ')}`);
  let first: Contents | undefined;
  for (const members of [1, 2, 3]) {
    const { stored, outputs } = await consumeWith(members);
    if (members > 1) {
      // At some moment every member owned a share of the partitions.
      for (const [i, output] of outputs.entries()) {
        assert.ok(assignments(output).some((set) => set.length > 0 && set.length < PARTITIONS), `member ${i + 1} of ${members} owned a share of the partitions:\n${output}`);
      }
    }
    assert.ok(processedRecords(outputs) >= records, `the members processed every record at least once (${processedRecords(outputs)} of ${records})`);
    if (first === undefined) first = stored;
    else assertSameContents(stored, first, `${members} processes against 1`);
  }
  // Against replay: the same readings, and the differences by key are reported, not asserted.
  // A partition's watermark moves with its own records, the whole file's with all of them; so a
  // reading within seconds of a window's close can be on time in one run and a late amendment in
  // the other (same values, another revision), and a silence alert (raised when the watermark
  // passes a device's expected reading) can open at another moment. Equal results need one
  // definition of the watermark for both — an open decision recorded in the issue notes. The
  // clean, in-order data of kafka-process.test.ts is compared with replay exactly.
  assert.equal(first!.readings, reference.readings, 'the same readings as replay');
  const aggregateKey = (row: Record<string, unknown>): string => [row.stream, row.key, row.window_name, row.start_ms, row.metric].join('|');
  const idKey = (row: Record<string, unknown>): string => String(row.id);
  const report = {
    aggregates: keyedDifference(first!.aggregates, reference.aggregates, aggregateKey),
    alerts: keyedDifference(first!.alerts, reference.alerts, idKey),
    transitions: keyedDifference(first!.transitions, reference.transitions, idKey),
  };
  console.log(`against gridpulse replay (${reference.aggregates.length} aggregates, ${reference.alerts.length} alerts, ${reference.transitions.length} transitions): ${JSON.stringify(report)}`);
});
