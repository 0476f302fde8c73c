/**
 * Running `gridpulse process` members against the Kafka test broker (scripts/servers.sh start
 * kafka) with a PostgreSQL store, and comparing what they stored with a `gridpulse replay` of the
 * same readings. Used by the Kafka scale-out integration tests.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { createKafkaLog } from '../../src/log/index.js';
import { pgAdmin, PG_SERVER } from './servers.js';

const ROOT = resolve(import.meta.dirname, '../..');
const MAIN = join(ROOT, 'src/cli/main.ts');
// The commands run in a temporary directory (no gridpulse.yaml there): tsx is named by its path.
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
const BOOTSTRAP_FILE = '/tmp/gridpulse-kafka/bootstrap';

/** `kafka://…` of the test broker, or an error saying how to start it. */
export function testKafkaUrl(): string {
  if (process.env.GP_KAFKA_BOOTSTRAP !== undefined) return `kafka://${process.env.GP_KAFKA_BOOTSTRAP}`;
  if (!existsSync(BOOTSTRAP_FILE)) throw new Error(`the Kafka test broker is not running — start it with scripts/servers.sh start kafka (no ${BOOTSTRAP_FILE})`);
  return `kafka://${readFileSync(BOOTSTRAP_FILE, 'utf8').trim()}`;
}

/** A Kafka test broker of one test file's own, started by the project's script in `dir`. */
export interface PrivateKafka {
  url: string;
  /** Ends the broker (its process group). */
  stop(): void;
}

/**
 * Starts a mock Kafka cluster for one test file (`GP_KAFKA_DIR=<dir> scripts/servers.sh start kafka`),
 * so test files running at the same time do not share a broker: librdkafka's mock cluster serves
 * group requests of many members at once badly (it has aborted on an assertion in its group code
 * under load), and a broker that dies takes only its own file's tests with it.
 */
export function startPrivateKafka(dir: string): PrivateKafka {
  const kafkaDir = join(dir, 'kafka');
  const started = spawnSync('bash', [join(ROOT, 'scripts/servers.sh'), 'start', 'kafka'], { env: { ...process.env, GP_KAFKA_DIR: kafkaDir }, encoding: 'utf8', timeout: 120_000 });
  const bootstrap = join(kafkaDir, 'bootstrap');
  if (started.status !== 0 || !existsSync(bootstrap)) {
    throw new Error(`could not start a Kafka test broker with GP_KAFKA_DIR=${kafkaDir} scripts/servers.sh start kafka (it needs Debian's kcat):\n${started.stdout}${started.stderr}`);
  }
  const pid = Number(readFileSync(join(kafkaDir, 'pid'), 'utf8').trim());
  return {
    url: `kafka://${readFileSync(bootstrap, 'utf8').trim()}`,
    stop: () => {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
    },
  };
}

/** Databases created by one test file, dropped by `dropDatabases`. */
export class TestDatabases {
  private readonly names: string[] = [];
  constructor(private readonly prefix: string) {}

  async create(name: string): Promise<string> {
    const database = `${this.prefix}_${name}`.replace(/-/g, '_');
    await pgAdmin(`CREATE DATABASE ${database}`);
    this.names.push(database);
    return `${PG_SERVER}/${database}`;
  }

  async dropAll(): Promise<void> {
    for (const database of this.names) await pgAdmin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => undefined);
  }
}

export async function query<T = Record<string, unknown>>(url: string, sql: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, values)).rows as T[];
  } finally {
    await client.end();
  }
}

export interface Contents {
  aggregates: unknown[];
  alerts: unknown[];
  transitions: unknown[];
  readings: number;
}

/** Everything the engine wrote that a user reads, in a canonical order. */
export async function contents(url: string): Promise<Contents> {
  const aggregates = await query(url, 'SELECT * FROM aggregates ORDER BY stream, key, window_name, start_ms, metric');
  const alerts = await query(url, 'SELECT * FROM alerts ORDER BY id');
  const transitions = await query(url, 'SELECT * FROM alert_transitions ORDER BY id');
  const [readings] = await query<{ n: string }>(url, 'SELECT count(*) AS n FROM readings');
  return { aggregates, alerts, transitions, readings: Number(readings!.n) };
}

/**
 * Asserts that two stores hold the same readings count, aggregates, alerts and transitions.
 * `ignoreColumns` leaves columns out of the comparison (the caller says why); the returned count
 * is the rows that differed only in those columns.
 */
export function assertSameContents(actual: Contents, expected: Contents, label: string, ignoreColumns: readonly string[] = [], outputs: readonly string[] = []): number {
  assert.ok(expected.aggregates.length > 0 && expected.alerts.length > 0, 'the reference run has aggregates and alerts');
  assert.equal(actual.readings, expected.readings, `${label}: stored readings${outputs.map((output, i) => `\n--- process ${i + 1}:\n${output}`).join('')}`);
  let onlyIgnored = 0;
  for (const part of ['aggregates', 'alerts', 'transitions'] as const) {
    const differences = differingRows(actual[part], expected[part], ignoreColumns);
    assert.equal(differences.count, 0, `${label}: ${part}: ${differences.count} rows differ (${actual[part].length} rows, expected ${expected[part].length}); the first:\n${differences.first.join('\n')}`);
    onlyIgnored += differences.onlyIgnored;
  }
  return onlyIgnored;
}

/** Rows compared by key: those only in one of the two, and those with the same key but other values. */
export interface KeyedDifference {
  missing: number;
  extra: number;
  different: number;
}

/** Compares two row sets by a key of each row (for a report; nothing is asserted). */
export function keyedDifference(actual: readonly unknown[], expected: readonly unknown[], keyOf: (row: Record<string, unknown>) => string): KeyedDifference {
  const index = (rows: readonly unknown[]): Map<string, string> => new Map(rows.map((row) => [keyOf(row as Record<string, unknown>), JSON.stringify(row)]));
  const got = index(actual);
  const want = index(expected);
  let missing = 0;
  let different = 0;
  for (const [key, row] of want) {
    const other = got.get(key);
    if (other === undefined) missing++;
    else if (other !== row) different++;
  }
  let extra = 0;
  for (const key of got.keys()) if (!want.has(key)) extra++;
  return { missing, extra, different };
}

/** Rows at the same position that differ (as JSON, without `ignore`d columns), counted, with the first few shown as got/expected pairs. */
function differingRows(actual: readonly unknown[], expected: readonly unknown[], ignore: readonly string[]): { count: number; onlyIgnored: number; first: string[] } {
  const without = (row: unknown): string =>
    JSON.stringify(row, (name, value: unknown) => (name !== '' && ignore.includes(name) ? undefined : value));
  let count = 0;
  let onlyIgnored = 0;
  const first: string[] = [];
  for (let i = 0; i < Math.max(actual.length, expected.length); i++) {
    const got = JSON.stringify(actual[i]);
    const want = JSON.stringify(expected[i]);
    if (got === want) continue;
    if (ignore.length > 0 && without(actual[i]) === without(expected[i])) {
      onlyIgnored++;
      continue;
    }
    count++;
    if (first.length < 6) first.push(`  #${i} got      ${got}\n  #${i} expected ${want}`);
  }
  return { count, onlyIgnored, first };
}

/** Runs a gridpulse command to its end and asserts it succeeded; returns its standard output. */
export function gridpulse(args: readonly string[], cwd: string): string {
  const ran = spawnSync(process.execPath, ['--import', TSX, MAIN, ...args], { cwd, encoding: 'utf8', timeout: 300_000 });
  assert.equal(ran.status, 0, `gridpulse ${args.join(' ')} failed:\n${ran.stdout}\n${ran.stderr}`);
  return ran.stdout;
}

/** The stored contents of `gridpulse replay <file>` into `storeUrl`. */
export async function replayContents(file: string, storeUrl: string, cwd: string): Promise<Contents> {
  gridpulse(['replay', file, '--store', storeUrl], cwd);
  return contents(storeUrl);
}

/**
 * Appends NDJSON readings to a topic keyed by meter (each meter's readings stay in order in one
 * partition; a line without a meter — malformed input — is keyed by its position). The test
 * broker creates a topic with 4 partitions when it is first named, and keeps only about 5 MB or
 * 100,000 records per partition: larger inputs lose their oldest records.
 */
export async function produce(kafkaUrl: string, topic: string, values: readonly string[]): Promise<void> {
  const log = createKafkaLog({ brokers: kafkaUrl, topic });
  try {
    await log.ready();
  } catch (cause) {
    throw new Error(`the Kafka test broker at ${kafkaUrl} does not answer — start it with scripts/servers.sh start kafka`, { cause });
  }
  try {
    for (let i = 0; i < values.length; i += 5000) {
      await log.append(values.slice(i, i + 5000).map((value, j) => ({ key: meterOf(value) ?? `line-${i + j}`, value })));
    }
  } finally {
    await log.close();
  }
}

function meterOf(line: string): string | undefined {
  try {
    const meter = (JSON.parse(line) as { meterId?: unknown }).meterId;
    return typeof meter === 'string' ? meter : undefined;
  } catch {
    return undefined;
  }
}

export interface Running {
  child: ChildProcess;
  output: () => string;
  exit: Promise<number | null>;
}

export interface ProcessOptions {
  kafkaUrl: string;
  storeUrl: string;
  group: string;
  topic: string;
  /** Working directory; the member's data directory is `<dir>/<name>`. */
  dir: string;
  name: string;
  /** Default true: stop at the end the topic had at start. */
  untilEnd?: boolean;
  /** More flags, e.g. `--kafka-outputs`. */
  extraArgs?: readonly string[];
}

/** Starts one `gridpulse process` member (power stream, checkpoints every 300 ms, session timeout 6 s). */
export function startProcess(options: ProcessOptions): Running {
  const child = spawn(
    process.execPath,
    [
      '--import',
      TSX,
      MAIN,
      'process',
      '--log',
      options.kafkaUrl,
      '--store',
      options.storeUrl,
      '--group',
      options.group,
      '--streams',
      'power',
      '--topic',
      `power=${options.topic}`,
      '--data-dir',
      join(options.dir, options.name),
      '--checkpoint-interval',
      '300',
      '--session-timeout',
      '6000',
      ...(options.untilEnd === false ? [] : ['--until-end']),
      ...(options.extraArgs ?? []),
    ],
    { cwd: options.dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let text = '';
  child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const exit = new Promise<number | null>((resolveExit) => child.on('exit', (code) => resolveExit(code)));
  return { child, output: () => text, exit };
}

/** Waits for a member to exit by itself (killing it after `timeoutMs`) and asserts it exited with 0. */
export async function finished(running: Running, label: string, timeoutMs = 120_000): Promise<string> {
  const timer = setTimeout(() => running.child.kill('SIGKILL'), timeoutMs);
  const code = await running.exit;
  clearTimeout(timer);
  assert.equal(code, 0, `${label} exited with ${String(code)}:\n${running.output()}`);
  return running.output();
}

/** Every assignment a member logged, in order. */
export function assignments(output: string): string[][] {
  return [...output.matchAll(/assigned (.*) \(group /g)].map((m) => (m[1] === 'no partitions' ? [] : m[1]!.split(', ')));
}

/** Polls until the group's newest checkpoints cover `records` records in all (next offsets summed over partitions). */
export async function checkpointedUpTo(url: string, group: string, records: number, running: readonly Running[], timeoutMs = 120_000): Promise<void> {
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

/** Polls a member's output until it logs an assignment with at least one partition. */
export async function assignedSome(running: Running, label: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (assignments(running.output()).some((set) => set.length > 0)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`${label} got no partitions within ${timeoutMs / 1000} s:\n${running.output()}`);
}
