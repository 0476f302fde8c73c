// Issue 8, acceptance 1: a simulated day of 500 meters (every 10 minutes, with injected spikes,
// drops, outages, gaps, late, duplicate and malformed lines; about 72,000 lines — the test broker
// keeps only about 5 MB per partition) on a 4-partition topic of the Kafka test broker, consumed by `gridpulse process` with 1, 2 and 3 members of one group writing to one
// PostgreSQL store each: the aggregates, alerts and transitions are identical across the three runs
// and identical to `gridpulse replay --topic-partitions 4` of the same file (each Kafka partition
// keeps its own event time, and so does each partition of that replay). How they differ from a
// plain `gridpulse replay` (one event time for the whole file) is printed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
let plainReplay: Contents;

before(async () => {
  broker = startPrivateKafka(dir);
  kafkaUrl = broker.url;
  topic = `kday-power-${run}`;
  const file = join(dir, 'day.ndjson');
  // A 6 h warm-up instead of the default 24 h, so anomalies fall inside the one day.
  gridpulse(['simulate', '--meters', String(METERS), '--days', '1', '--interval', '10m', '--warmup', '6h', '--seed', '8', '--out', file, '--labels', join(dir, 'labels.json')], dir);
  const lines = readFileSync(file, 'utf8').split('\n').filter((line) => line.length > 0);
  records = lines.length;
  await produce(kafkaUrl, topic, lines);
  const partitioned = await databases.create('replay');
  gridpulse(['replay', file, '--store', partitioned, '--topic-partitions', String(PARTITIONS)], dir);
  reference = await contents(partitioned);
  plainReplay = await replayContents(file, await databases.create('plain'), dir);
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

test('a simulated day of 500 meters gives identical aggregates, alerts and transitions with 1, 2 and 3 processes in a group, and with replay --topic-partitions 4', { timeout: 900_000 }, async () => {
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
    assertSameContents(stored, reference, `${members} processes against replay --topic-partitions ${PARTITIONS}`, [], outputs);
  }
  // Against a plain replay: the same readings, and the differences by key are reported, not
  // asserted. A partition's watermark moves with its own records, the whole file's with all of
  // them; so a reading within seconds of a window's close can be on time in one run and a late
  // amendment in the other (same values, another revision), and a window can close before or
  // after a device's second reading taught the engine its interval.
  assert.equal(first!.readings, plainReplay.readings, 'the same readings as a plain replay');
  const aggregateKey = (row: Record<string, unknown>): string => [row.stream, row.key, row.window_name, row.start_ms, row.metric].join('|');
  const idKey = (row: Record<string, unknown>): string => String(row.id);
  const report = {
    aggregates: keyedDifference(first!.aggregates, plainReplay.aggregates, aggregateKey),
    alerts: keyedDifference(first!.alerts, plainReplay.alerts, idKey),
    transitions: keyedDifference(first!.transitions, plainReplay.transitions, idKey),
  };
  console.log(`against a plain gridpulse replay (${plainReplay.aggregates.length} aggregates, ${plainReplay.alerts.length} alerts, ${plainReplay.transitions.length} transitions): ${JSON.stringify(report)}`);
});
