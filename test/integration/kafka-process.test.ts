// `gridpulse process` against a Kafka-protocol test broker of its own (scripts/servers.sh start kafka) and
// PostgreSQL: the results in the store equal those of `gridpulse replay` of the same readings with
// one process, with two processes in one group, and across a SIGKILL and restart (with the newest
// checkpoint of a partition corrupted meanwhile), and through rebalances (a member joins, one is
// SIGKILLed).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  assertSameContents,
  assignedSome,
  assignments,
  checkpointedUpTo,
  contents,
  finished,
  produce,
  query,
  replayContents,
  startProcess as startMember,
  startPrivateKafka,
  TestDatabases,
  type Contents,
  type PrivateKafka,
  type Running,
} from '../helpers/kafka-processes.js';

const METERS = Number(process.env.GP_KAFKA_PROCESS_METERS ?? 60);
const HOURS = Number(process.env.GP_KAFKA_PROCESS_HOURS ?? 6);
const INTERVAL_MS = 30_000;
const T0 = Date.UTC(2026, 0, 5, 0, 0, 0);
const SPIKE_METER = 'm-7';

const run = `${process.pid}-${Date.now()}`;
const dir = mkdtempSync(join(tmpdir(), 'gp-kafka-process-'));
const databases = new TestDatabases(`gp_kproc_${run}`);
let kafkaUrl = '';
let broker: PrivateKafka | undefined;
let topic = '';
let lines: string[] = [];
let readingCount = 0;
let reference: Contents;

function startProcess(storeUrl: string, group: string, name: string, options: { topic?: string; untilEnd?: boolean } = {}): Running {
  return startMember({ kafkaUrl, storeUrl, group, name, dir, topic: options.topic ?? topic, ...(options.untilEnd === undefined ? {} : { untilEnd: options.untilEnd }) });
}

before(async () => {
  broker = startPrivateKafka(dir);
  kafkaUrl = broker.url;
  topic = `kproc-power-${run}`;
  // Meters every 30 s; m-7 jumps from about 2 kW to 9 kW for 40 minutes in the middle (a spike alert that opens and resolves).
  lines = [];
  const steps = (HOURS * 3_600_000) / INTERVAL_MS;
  for (let step = 0; step < steps; step++) {
    for (let meter = 0; meter < METERS; meter++) {
      const key = `m-${meter}`;
      const time = T0 + step * INTERVAL_MS + meter * 100;
      const inSpike = key === SPIKE_METER && step >= steps / 2 && step < steps / 2 + 80;
      const usageKw = inSpike ? 9 + (step % 3) * 0.05 : 2 + ((step * 7 + meter) % 10) * 0.02;
      lines.push(JSON.stringify({ meterId: key, siteId: `s-${meter % 5}`, timestamp: time, usageKw, voltage: 230, current: (usageKw * 1000) / 230 / 0.97, pf: 0.97 }));
    }
  }
  readingCount = lines.length;
  const readingsFile = join(dir, 'readings.ndjson');
  writeFileSync(readingsFile, `${lines.join('\n')}\n`);
  await produce(kafkaUrl, topic, lines);
  reference = await replayContents(readingsFile, await databases.create('replay'), dir);
});

after(async () => {
  broker?.stop();
  await databases.dropAll();
  rmSync(dir, { recursive: true, force: true });
});

test('one process over the whole topic stores the same aggregates, alerts and transitions as gridpulse replay of the same readings', { timeout: 180_000 }, async () => {
  const url = await databases.create('one');
  const output = await finished(startProcess(url, `one-${run}`, 'one'), 'gridpulse process');
  assert.deepEqual(assignments(output).at(-1)?.sort(), [0, 1, 2, 3].map((p) => `${topic}/${p}`), output);
  assert.match(output, new RegExp(`stopped: ${readingCount} records processed`), output);
  const got = await contents(url);
  assert.equal(got.readings, readingCount);
  assert.ok(
    (got.alerts as Array<{ key: string; type: string }>).some((a) => a.key === SPIKE_METER && a.type === 'spike'),
    `a spike alert of ${SPIKE_METER}: ${JSON.stringify(got.alerts)}`,
  );
  assertSameContents(got, reference, 'one process');
});

test('two processes in one group split the partitions and together store the same results as replay', { timeout: 180_000 }, async () => {
  const url = await databases.create('two');
  const group = `two-${run}`;
  const first = startProcess(url, group, 'two-a');
  const second = startProcess(url, group, 'two-b');
  const [a, b] = await Promise.all([finished(first, 'process A'), finished(second, 'process B')]);
  // The group split the work: each process owned a share of the partitions at some moment and
  // processed records of its own. (The test broker sometimes answers a group request with
  // INVALID_REQUEST; the member then rejoins, so the shares need not be seen at one moment.)
  const shared = (output: string): boolean => assignments(output).some((set) => set.length > 0 && set.length < 4);
  const processed = (output: string): number => Number(/stopped: (\d+) records processed/.exec(output)?.[1] ?? 0);
  assert.ok(shared(a) && shared(b), `the partitions were split between the two processes:\nA:\n${a}\nB:\n${b}`);
  assert.ok(processed(a) > 0 && processed(b) > 0, `both processes processed records:\nA:\n${a}\nB:\n${b}`);
  assertSameContents(await contents(url), reference, 'two processes', [], [a, b]);
});

test('a process killed with SIGKILL mid-way and restarted (its newest checkpoint of a partition corrupt) ends with the same results: nothing lost, nothing duplicated', { timeout: 240_000 }, async () => {
  const url = await databases.create('kill');
  const group = `kill-${run}`;
  const first = startProcess(url, group, 'kill');
  // Kill once at least two checkpoints of some partition exist and the run is not over.
  const deadline = Date.now() + 60_000;
  let killedAt = -1;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    const rows = await query<{ partition: number; n: string; max: string }>(
      url,
      `SELECT "partition", count(*) AS n, max("offset") AS max FROM engine_checkpoints WHERE "group" = $1 GROUP BY "partition"`,
      [group],
    ).catch(() => []);
    const progressed = rows.find((row) => Number(row.n) >= 2);
    if (progressed !== undefined) {
      killedAt = rows.reduce((sum, row) => sum + Number(row.max), 0);
      first.child.kill('SIGKILL');
      break;
    }
  }
  assert.ok(killedAt >= 0, `no checkpoint appeared within a minute:\n${first.output()}`);
  assert.equal(await first.exit, null, 'the process was killed, it did not exit by itself');
  assert.ok(killedAt < readingCount, `killed before the end (checkpointed offsets sum ${killedAt} of ${readingCount})`);

  // The newest checkpoint of the partition with the most progress is now garbage.
  const [newest] = await query<{ partition: number; version: string }>(
    url,
    `SELECT "partition", version FROM engine_checkpoints WHERE "group" = $1 AND version > 1 ORDER BY "offset" DESC, version DESC LIMIT 1`,
    [group],
  );
  assert.ok(newest !== undefined, 'a partition has two checkpoints');
  await query(url, `UPDATE engine_checkpoints SET state = '{"finished":false,"router":{"version":1,"streams":[{"broken' WHERE "group" = $1 AND "partition" = $2 AND version = $3`, [
    group,
    newest.partition,
    newest.version,
  ]);

  const restarted = await finished(startProcess(url, group, 'kill'), 'the restarted process');
  assert.match(restarted, new RegExp(`checkpoint version ${newest.version} of ${topic}/${newest.partition} cannot be used`), restarted);
  assert.match(restarted, new RegExp(`${topic}/${newest.partition}: restored checkpoint version ${Number(newest.version) - 1} `), restarted);
  assert.match(restarted, /[1-9]\d* restored, 1 unusable/, restarted);
  assertSameContents(await contents(url), reference, 'killed and restarted');
});

test('rebalancing: two processes, a third joins, one is SIGKILLed; the partitions move with their state and the results equal replay', { timeout: 420_000 }, async () => {
  const url = await databases.create('rebalance');
  const group = `rebalance-${run}`;
  const phased = `kproc-rebalance-${run}`;
  const third = Math.ceil(lines.length / 3);
  const live = { untilEnd: false, topic: phased };
  // Phase 1: two members share the topic and work through the first third.
  await produce(kafkaUrl, phased, lines.slice(0, third));
  const a = startProcess(url, group, 'rebalance-a', live);
  const b = startProcess(url, group, 'rebalance-b', live);
  await checkpointedUpTo(url, group, third, [a, b]);
  // Phase 2: the second third arrives and a third member joins.
  await produce(kafkaUrl, phased, lines.slice(third, 2 * third));
  const c = startProcess(url, group, 'rebalance-c', live);
  await assignedSome(c, 'the third process');
  // Phase 3: the rest arrives and A is killed while the group works on it.
  await produce(kafkaUrl, phased, lines.slice(2 * third));
  a.child.kill('SIGKILL');
  assert.equal(await a.exit, null, 'process A was killed, it did not exit by itself');
  await checkpointedUpTo(url, group, lines.length, [b, c]);
  assert.ok(assignments(c.output()).some((set) => set.length > 0), 'the third process owned partitions');
  // Stop the survivors (each checkpoints what it owns), then one bounded run of the same group
  // restores every partition's state as the last owner left it and finishes the open windows.
  b.child.kill('SIGTERM');
  c.child.kill('SIGTERM');
  await Promise.all([finished(b, 'process B'), finished(c, 'process C')]);
  const last = await finished(startProcess(url, group, 'rebalance-end', { topic: phased }), 'the finishing process');
  assert.match(last, /stopped: 0 records processed/, `every record was processed by the members before; the finishing run only restores and closes windows:\n${last}`);
  assertSameContents(await contents(url), reference, 'rebalanced');
});

test('a bounded run ends only when every partition is finished: a member done with its share waits for the partitions another member holds, and takes them over when it leaves', { timeout: 240_000 }, async () => {
  const url = await databases.create('held');
  const group = `held-${run}`;
  // Another member of the group that holds its partitions without reading them (paused), as a
  // member that is still (re)joining or stuck would: the old end-of-run rule let the gridpulse
  // member exit 0 after its own share, and the held partitions' readings were never stored.
  const { Kafka, logLevel } = createRequire(import.meta.url)('kafkajs') as typeof import('kafkajs');
  const kafka = new Kafka({ brokers: kafkaUrl.replace(/^kafka:\/\//, '').split(','), clientId: 'held-test', logLevel: logLevel.NOTHING });
  const holder = kafka.consumer({ groupId: group, sessionTimeout: 6000, heartbeatInterval: 600 });
  let held: number[] = [];
  holder.on(holder.events.GROUP_JOIN, (event) => {
    held = event.payload.memberAssignment[topic] ?? [];
    holder.pause([{ topic }]);
  });
  await holder.connect();
  await holder.subscribe({ topics: [topic], fromBeginning: true });
  await holder.run({ eachBatch: () => Promise.resolve() });
  let member: Running | undefined;
  try {
    member = startProcess(url, group, 'held');
    // What the member last said it waits for (the group may rebalance more than once meanwhile).
    const waiting = (): string[] => [...member!.output().matchAll(/this process's partitions are finished; waiting for (.*) \(other members/g)].at(-1)?.[1]?.split(', ').sort() ?? [];
    const heldNames = (): string[] => held.map((p) => `${topic}/${p}`).sort();
    // (A partition the other member holds now may have been finished by this one before a rebalance.)
    const settled = (): boolean => held.length > 0 && waiting().length > 0 && waiting().every((name) => heldNames().includes(name));
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline && !settled()) await new Promise((r) => setTimeout(r, 200));
    assert.ok(held.length > 0 && held.length < 4, `the other member holds a share of the partitions: ${JSON.stringify(held)}\n${member.output()}`);
    assert.ok(settled(), `it says it waits for partitions the other member holds (${heldNames().join(', ')}):\n${member.output()}`);
    const early = await contents(url);
    assert.ok(early.readings > 0 && early.readings < readingCount, `only its own share is stored so far (${early.readings} of ${readingCount})`);
    assert.equal(member.child.exitCode, null, `the member has not exited:\n${member.output()}`);
    // The other member leaves: the group gives its partitions to the waiting member, which reads them.
    await holder.disconnect();
    const output = await finished(member, 'the waiting member');
    assertSameContents(await contents(url), reference, 'held partitions taken over', [], [output]);
  } finally {
    await holder.disconnect().catch(() => undefined);
    member?.child.kill('SIGKILL');
  }
});

test('a bounded run of a group that already finished the topic says the new records are not processed by that group, and a new group processes them', { timeout: 240_000 }, async () => {
  const url = await databases.create('again');
  const grown = `kproc-again-${run}`;
  const first = lines.slice(0, 2400);
  const more = lines.slice(2400, 3600);
  await produce(kafkaUrl, grown, first);
  await finished(startProcess(url, `again-${run}`, 'again-1', { topic: grown }), 'the first bounded run');
  assert.equal((await contents(url)).readings, first.length);
  await produce(kafkaUrl, grown, more);
  const output = await finished(startProcess(url, `again-${run}`, 'again-2', { topic: grown }), 'the second bounded run of the same group');
  const said = [...output.matchAll(/a bounded run \(--until-end\) of group again-[^ ]+ finished this partition at offset \d+ and closed its windows; the (\d+) records after it are not processed by this group — use a new --group/g)];
  assert.equal(said.reduce((sum, m) => sum + Number(m[1]), 0), more.length, `each partition with new records is named, with their count:\n${output}`);
  assert.equal((await contents(url)).readings, first.length, 'the finished group processed nothing more');
  await finished(startProcess(url, `again-new-${run}`, 'again-3', { topic: grown }), 'a bounded run of a new group');
  assert.equal((await contents(url)).readings, first.length + more.length, 'a new group processes the whole topic');
});
