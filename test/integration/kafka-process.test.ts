// `gridpulse process` against the Kafka-protocol test broker (scripts/servers.sh start kafka) and
// PostgreSQL: the results in the store equal those of `gridpulse replay` of the same readings with
// one process, with two processes in one group, and across a SIGKILL and restart (with the newest
// checkpoint of a partition corrupted meanwhile), and through rebalances (a member joins, one is
// SIGKILLed).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { createKafkaLog } from '../../src/log/index.js';

const ROOT = resolve(import.meta.dirname, '../..');
const MAIN = join(ROOT, 'src/cli/main.ts');
// The commands run in a temporary directory (no gridpulse.yaml there): tsx is named by its path.
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
const SERVER = 'postgres://postgres@127.0.0.1:5432';
const BOOTSTRAP_FILE = '/tmp/gridpulse-kafka/bootstrap';
const METERS = Number(process.env.GP_KAFKA_PROCESS_METERS ?? 60);
const HOURS = Number(process.env.GP_KAFKA_PROCESS_HOURS ?? 6);
const INTERVAL_MS = 30_000;
const T0 = Date.UTC(2026, 0, 5, 0, 0, 0);
const SPIKE_METER = 'm-7';

const run = `${process.pid}-${Date.now()}`;
const dir = mkdtempSync(join(tmpdir(), 'gp-kafka-process-'));
const databases: string[] = [];
let kafkaUrl = '';
let topic = '';
let readingsFile = '';
let lines: string[] = [];
let readingCount = 0;
let reference: Contents;

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: `${SERVER}/postgres` });
  try {
    await client.connect();
  } catch (cause) {
    throw new Error('PostgreSQL not reachable on 127.0.0.1:5432 — start it with scripts/servers.sh start postgres', { cause });
  }
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

async function newDatabase(name: string): Promise<string> {
  const database = `gp_kproc_${name}_${run.replace(/-/g, '_')}`;
  await admin(`CREATE DATABASE ${database}`);
  databases.push(database);
  return `${SERVER}/${database}`;
}

async function query<T = Record<string, unknown>>(url: string, sql: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, values)).rows as T[];
  } finally {
    await client.end();
  }
}

interface Contents {
  aggregates: unknown[];
  alerts: unknown[];
  transitions: unknown[];
  readings: number;
}

/** Everything the engine wrote that a user reads, in a canonical order. */
async function contents(url: string): Promise<Contents> {
  const aggregates = await query(url, 'SELECT * FROM aggregates ORDER BY stream, key, window_name, start_ms, metric');
  const alerts = await query(url, 'SELECT * FROM alerts ORDER BY id');
  const transitions = await query(url, 'SELECT * FROM alert_transitions ORDER BY id');
  const [readings] = await query<{ n: string }>(url, 'SELECT count(*) AS n FROM readings');
  return { aggregates, alerts, transitions, readings: Number(readings!.n) };
}

function assertSameContents(actual: Contents, expected: Contents, label: string): void {
  assert.ok(expected.aggregates.length > 0 && expected.alerts.length > 0, 'the reference run has aggregates and alerts');
  assert.equal(actual.readings, expected.readings, `${label}: stored readings`);
  assert.equal(actual.aggregates.length, expected.aggregates.length, `${label}: number of aggregate rows`);
  assert.deepEqual(actual.aggregates, expected.aggregates, `${label}: aggregates`);
  assert.deepEqual(actual.alerts, expected.alerts, `${label}: alerts`);
  assert.deepEqual(actual.transitions, expected.transitions, `${label}: alert transitions`);
}

interface Running {
  child: ChildProcess;
  output: () => string;
  exit: Promise<number | null>;
}

function startProcess(storeUrl: string, group: string, name: string, options: { topic?: string; untilEnd?: boolean } = {}): Running {
  const child = spawn(
    process.execPath,
    [
      '--import',
      TSX,
      MAIN,
      'process',
      '--log',
      kafkaUrl,
      '--store',
      storeUrl,
      '--group',
      group,
      '--streams',
      'power',
      '--topic',
      `power=${options.topic ?? topic}`,
      '--data-dir',
      join(dir, name),
      '--checkpoint-interval',
      '300',
      '--session-timeout',
      '6000',
      ...(options.untilEnd === false ? [] : ['--until-end']),
    ],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let text = '';
  child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const exit = new Promise<number | null>((resolveExit) => child.on('exit', (code) => resolveExit(code)));
  return { child, output: () => text, exit };
}

/** Appends readings to a topic, keyed by meter (so each meter's readings stay in order in one partition). */
async function produce(to: string, values: readonly string[]): Promise<void> {
  const log = createKafkaLog({ brokers: kafkaUrl, topic: to });
  try {
    await log.ready();
  } catch (cause) {
    throw new Error(`the Kafka test broker at ${kafkaUrl} does not answer — start it with scripts/servers.sh start kafka`, { cause });
  }
  try {
    assert.equal(log.partitions, 4, 'the test broker creates topics with 4 partitions');
    for (let i = 0; i < values.length; i += 5000) {
      await log.append(values.slice(i, i + 5000).map((value) => ({ key: (JSON.parse(value) as { meterId: string }).meterId, value })));
    }
  } finally {
    await log.close();
  }
}

/** Polls until the group's newest checkpoints cover `records` records in all (next offsets summed over partitions). */
async function checkpointedUpTo(url: string, group: string, records: number, running: readonly Running[], timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let covered = 0;
  while (Date.now() < deadline) {
    const rows = await query<{ max: string }>(url, `SELECT max("offset") AS max FROM engine_checkpoints WHERE "group" = $1 GROUP BY "partition"`, [group]).catch(() => []);
    covered = rows.reduce((sum, row) => sum + Number(row.max), 0);
    if (covered >= records) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`the group's checkpoints cover ${covered} of ${records} records after ${timeoutMs / 1000} s:\n${running.map((r) => r.output()).join('\n----\n')}`);
}

/** Polls a process's output until it logs an assignment with at least one partition. */
async function assignedSome(running: Running, label: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (assignments(running.output()).some((set) => set.length > 0)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`${label} got no partitions within ${timeoutMs / 1000} s:\n${running.output()}`);
}

async function finished(running: Running, label: string, timeoutMs = 120_000): Promise<string> {
  const timer = setTimeout(() => running.child.kill('SIGKILL'), timeoutMs);
  const code = await running.exit;
  clearTimeout(timer);
  assert.equal(code, 0, `${label} exited with ${String(code)}:\n${running.output()}`);
  return running.output();
}

/** Every assignment a process logged, in order. */
function assignments(output: string): string[][] {
  return [...output.matchAll(/assigned (.*) \(group /g)].map((m) => (m[1] === 'no partitions' ? [] : m[1]!.split(', ')));
}

before(async () => {
  if (!existsSync(BOOTSTRAP_FILE)) throw new Error(`the Kafka test broker is not running — start it with scripts/servers.sh start kafka (no ${BOOTSTRAP_FILE})`);
  kafkaUrl = `kafka://${readFileSync(BOOTSTRAP_FILE, 'utf8').trim()}`;
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
  readingsFile = join(dir, 'readings.ndjson');
  writeFileSync(readingsFile, `${lines.join('\n')}\n`);

  await produce(topic, lines);

  const referenceUrl = await newDatabase('replay');
  const replayed = spawnSync(process.execPath, ['--import', TSX, MAIN, 'replay', readingsFile, '--store', referenceUrl], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  assert.equal(replayed.status, 0, `gridpulse replay failed:\n${replayed.stdout}\n${replayed.stderr}`);
  reference = await contents(referenceUrl);
});

after(async () => {
  for (const database of databases) await admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

test('one process over the whole topic stores the same aggregates, alerts and transitions as gridpulse replay of the same readings', { timeout: 180_000 }, async () => {
  const url = await newDatabase('one');
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
  const url = await newDatabase('two');
  const group = `two-${run}`;
  const first = startProcess(url, group, 'two-a');
  const second = startProcess(url, group, 'two-b');
  const [a, b] = await Promise.all([finished(first, 'process A'), finished(second, 'process B')]);
  // At some moment the group gave each process a share of the partitions, no partition to both.
  const shares = (output: string): string[][] => assignments(output).filter((set) => set.length > 0 && set.length < 4);
  const split = shares(a).some((sa) => shares(b).some((sb) => sa.length + sb.length === 4 && sa.every((p) => !sb.includes(p))));
  assert.ok(split, `the partitions were split between the two processes:\nA:\n${a}\nB:\n${b}`);
  assertSameContents(await contents(url), reference, 'two processes');
});

test('a process killed with SIGKILL mid-way and restarted (its newest checkpoint of a partition corrupt) ends with the same results: nothing lost, nothing duplicated', { timeout: 240_000 }, async () => {
  const url = await newDatabase('kill');
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
  const url = await newDatabase('rebalance');
  const group = `rebalance-${run}`;
  const phased = `kproc-rebalance-${run}`;
  const third = Math.ceil(lines.length / 3);
  const live = { untilEnd: false, topic: phased };
  // Phase 1: two members share the topic and work through the first third.
  await produce(phased, lines.slice(0, third));
  const a = startProcess(url, group, 'rebalance-a', live);
  const b = startProcess(url, group, 'rebalance-b', live);
  await checkpointedUpTo(url, group, third, [a, b]);
  // Phase 2: the second third arrives and a third member joins.
  await produce(phased, lines.slice(third, 2 * third));
  const c = startProcess(url, group, 'rebalance-c', live);
  await assignedSome(c, 'the third process');
  // Phase 3: the rest arrives and A is killed while the group works on it.
  await produce(phased, lines.slice(2 * third));
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
