#!/usr/bin/env node
// The Kafka crash harness (issue 8, acceptance 2): simulated power readings go to a fresh topic of
// the Kafka test broker while `gridpulse process` consumes them into a PostgreSQL database and the
// harness SIGKILLs it at random moments — some of them while it writes a checkpoint — restarting
// it each time. At the end the database is compared, row by row, with an uninterrupted run of the
// same readings: `gridpulse replay` of the same NDJSON into a database of its own.
//
//   node --import tsx scripts/kafka-crash.ts [--readings 1000000] [--meters 1000] [--interval-ms 10000]
//        [--kills 20] [--checkpoint-kills N] [--gap-min-ms 1000] [--gap-max-ms 5000]
//        [--checkpoint-interval-ms 1000] [--session-timeout-ms 6000] [--rate N] [--window-bytes 3145728]
//        [--kafka kafka://host:port] [--postgres postgres://user@host:port] [--seed N] [--keep]
//
// Why `gridpulse replay` is the reference: it is the definition of the results (acceptance 1 asks
// `gridpulse process` to equal it), it reads a file, so it does not depend on the broker's retention
// (the mock cluster keeps about 5 MB per partition; an uninterrupted `process --until-end` over the
// whole topic would need every record kept at once), and it shares no checkpoint or restore code
// with the run under test. The readings are in event-time order and every meter reports on time, so
// per-partition watermarks (gridpulse process) and one watermark (replay) give the same results.
//
// The producer is paced (--rate readings/s; by default so that producing spans the kills) and held
// back by the consumer: a partition gets more records only while the records after its newest
// checkpoint (what a restarted process reads again) stay under --window-bytes (estimated compressed
// size; the mock trims a partition above 5 MiB). Records are gzip-compressed batches, keyed by meter.
//
// Kills: each comes once the process has recovered from the one before, after a random gap. A
// checkpoint kill then polls pg_stat_activity and sends SIGKILL as soon as an INSERT or DELETE on
// engine_checkpoints of the run's database is running. The replacement starts at once.
//
// Recovery time of a crash: from the start of the replacement until, on every partition, it has
// stored the first reading its predecessor had not stored (found after the kill with a binary search
// over the readings the predecessor left in the store, once its connections were gone). That covers
// process start, joining the group (Kafka first waits out the dead member's session: --session-timeout-ms),
// restoring the checkpoints and processing again what came after them. Also printed: restart → partitions assigned.
//
// At the end (all readings produced and checkpointed), the process is stopped with SIGTERM and one
// `gridpulse process --until-end` of the same group finishes the open windows, as replay does at the
// end of its input. Then readings (stream, key, time; not the source offset, which is a line number in
// replay and a Kafka offset here), aggregates, alerts and alert transitions are compared by key:
// lost = rows of the reference missing; duplicated = rows that are not in the reference or are there
// more than once; different = same key, other values.
//
// Prints one `name: value` line per figure and `result: PASS` or `result: FAIL (...)`; exit status 0 on
// PASS, 1 on FAIL, 2 on bad usage or a harness error. Needs `scripts/servers.sh start kafka` and
// `scripts/servers.sh start postgres`; creates two databases and drops them at the end (--keep leaves them).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import kafkajs from 'kafkajs';
import pg from 'pg';
import { SimulationRandom } from '../src/ingest/index.js';
import { partitionOfKey } from '../src/log/index.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const MAIN = join(ROOT, 'src/cli/main.ts');
// The children run in a temporary directory (no gridpulse.yaml there): tsx is named by its path.
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
const BOOTSTRAP_FILE = '/tmp/gridpulse-kafka/bootstrap';
const CHUNK = 2000;
const T0 = Date.UTC(2026, 0, 5);
// No progress for this long while draining: the checks then say what is missing.
const STALL_MS = 180_000;

interface Options {
  readings: number;
  meters: number;
  intervalMs: number;
  kills: number;
  checkpointKills: number;
  gapMinMs: number;
  gapMaxMs: number;
  checkpointIntervalMs: number;
  sessionTimeoutMs: number;
  rate: number;
  windowBytes: number;
  kafka: string;
  postgres: string;
  seed: number;
  keep: boolean;
  /** --compare: only compare these two stores (reference, processed) and print the counts. */
  compare: [string, string] | undefined;
}

const HELP = `usage: node --import tsx scripts/kafka-crash.ts [options]

Produces simulated power readings to a fresh Kafka topic while \`gridpulse process\` consumes them into
PostgreSQL and is SIGKILLed and restarted --kills times; compares the result with \`gridpulse replay\`
of the same readings and prints lost / duplicated / different rows and the recovery time per crash.

  --readings N               readings to produce (default 1000000)
  --meters N                 meters they come from, keyed by meter (default 1000)
  --interval-ms N            reporting interval of each meter (default 10000)
  --kills N                  SIGKILLs of the processor (default 20)
  --checkpoint-kills N       of those, sent while a checkpoint is written (default a third)
  --gap-min-ms N, --gap-max-ms N
                             random wait after a recovery before the next kill (default 1000, 5000)
  --checkpoint-interval-ms N the processor's --checkpoint-interval (default 1000)
  --session-timeout-ms N     the processor's --session-timeout (default 6000)
  --rate N                   readings/s to produce (default: spread over the expected time of the kills)
  --window-bytes N           per partition, most bytes after the newest checkpoint (default 3145728;
                             the mock broker keeps 5 MiB per partition)
  --kafka URL                kafka://host:port,... (default: $GP_KAFKA_BOOTSTRAP or ${BOOTSTRAP_FILE})
  --postgres URL             PostgreSQL server, no database (default postgres://postgres@127.0.0.1:5432)
  --seed N                   seed of the readings and of the kill moments (default: the time)
  --keep                     keep the databases and the folder with the processes' output
  --compare REF_URL URL      only compare two stores (e.g. kept ones) and print the counts
  --help                     this text

Prints \`name: value\` lines and \`result: PASS\` or \`result: FAIL (...)\`; exit status 0, 1 (FAIL) or 2.`;

function usage(message: string): never {
  console.error(`kafka-crash: ${message}`);
  console.error('run with --help for the options');
  process.exit(2);
}

function defaultKafka(): string {
  if (process.env.GP_KAFKA_BOOTSTRAP !== undefined) return `kafka://${process.env.GP_KAFKA_BOOTSTRAP}`;
  if (!existsSync(BOOTSTRAP_FILE)) return '';
  return `kafka://${readFileSync(BOOTSTRAP_FILE, 'utf8').trim()}`;
}

function parseOptions(argv: readonly string[]): Options {
  const options: Options = {
    readings: 1_000_000,
    meters: 1000,
    intervalMs: 10_000,
    kills: 20,
    checkpointKills: -1,
    gapMinMs: 1000,
    gapMaxMs: 5000,
    checkpointIntervalMs: 1000,
    sessionTimeoutMs: 6000,
    rate: 0,
    windowBytes: 3 * 1024 * 1024,
    kafka: '',
    postgres: 'postgres://postgres@127.0.0.1:5432',
    seed: Date.now() % 2 ** 31,
    keep: false,
    compare: undefined,
  };
  const numeric: Record<string, keyof Options> = {
    '--readings': 'readings',
    '--meters': 'meters',
    '--interval-ms': 'intervalMs',
    '--kills': 'kills',
    '--checkpoint-kills': 'checkpointKills',
    '--gap-min-ms': 'gapMinMs',
    '--gap-max-ms': 'gapMaxMs',
    '--checkpoint-interval-ms': 'checkpointIntervalMs',
    '--session-timeout-ms': 'sessionTimeoutMs',
    '--rate': 'rate',
    '--window-bytes': 'windowBytes',
    '--seed': 'seed',
  };
  for (let at = 0; at < argv.length; at++) {
    const flag = argv[at] as string;
    if (flag === '--help' || flag === '-h') {
      console.log(HELP);
      process.exit(0);
    } else if (flag === '--keep') options.keep = true;
    else if (flag === '--compare') {
      const [reference, processed] = [argv[++at], argv[++at]];
      if (reference === undefined || processed === undefined) usage('--compare: expected two postgres:// URLs (reference, processed)');
      options.compare = [reference, processed];
    }
    else if (flag === '--kafka' || flag === '--postgres') {
      const value = argv[++at];
      if (value === undefined) usage(`${flag}: expected a URL, got nothing`);
      options[flag === '--kafka' ? 'kafka' : 'postgres'] = value;
    } else if (flag in numeric) {
      const text = argv[++at];
      const value = Number(text?.replace(/_/g, ''));
      if (text === undefined || !Number.isInteger(value) || value < 0) usage(`${flag}: expected a whole number >= 0, got ${JSON.stringify(text ?? null)}`);
      (options as unknown as Record<string, number>)[numeric[flag] as string] = value;
    } else usage(`unknown argument ${JSON.stringify(flag)}`);
  }
  if (options.readings < 1 || options.meters < 1 || options.intervalMs < 1) usage('--readings, --meters and --interval-ms must be at least 1');
  if (options.gapMaxMs < options.gapMinMs) usage('--gap-max-ms must be at least --gap-min-ms');
  if (options.checkpointKills < 0) options.checkpointKills = Math.ceil(options.kills / 3);
  if (options.checkpointKills > options.kills) usage(`--checkpoint-kills: expected at most --kills (${options.kills}), got ${options.checkpointKills}`);
  if (options.kafka === '') options.kafka = defaultKafka();
  if (!/^kafka:\/\/./.test(options.kafka)) usage(`--kafka: expected kafka://host:port[,host:port...] (or start the test broker: scripts/servers.sh start kafka), got ${JSON.stringify(options.kafka)}`);
  if (!/^postgres(ql)?:\/\/[^/]+$/.test(options.postgres.replace(/\/$/, ''))) usage(`--postgres: expected postgres://user@host:port without a database, got ${JSON.stringify(options.postgres)}`);
  options.postgres = options.postgres.replace(/\/$/, '');
  return options;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const log = (message: string): void => {
  process.stderr.write(`[kafka-crash ${new Date().toISOString().slice(11, 23)}] ${message}\n`);
};

// ---- the readings ------------------------------------------------------------------------------

interface Readings {
  /** NDJSON lines, in event-time order (the replay input and the Kafka values). */
  lines: string[];
  keys: string[];
  /** Meter index and event time of each reading. */
  meterOf: Int32Array;
  timeOf: Float64Array;
  alertMeters: number;
}

/**
 * `meters` meters reporting every `intervalMs` (phases spread over the interval), each with its own
 * level, daily shape and noise; every 50th meter (from the 8th) jumps to four times its level for
 * 20 minutes somewhere in the middle third, so the run has alerts that open and resolve.
 */
function generateReadings(options: Options): Readings {
  const random = new SimulationRandom(options.seed);
  const { meters, intervalMs } = options;
  const keys = Array.from({ length: meters }, (_, m) => `m-${String(m + 1).padStart(5, '0')}`);
  const levels = Array.from({ length: meters }, () => random.logUniform(0.5, 50));
  const pfs = Array.from({ length: meters }, () => random.uniform(0.85, 0.99));
  const steps = Math.ceil(options.readings / meters);
  const spikeSteps = Math.max(1, Math.round(1_200_000 / intervalMs));
  const spikeStart = Array.from({ length: meters }, (_, m) => (m % 50 === 7 ? Math.floor(steps / 3 + random.uniform(0, 1) * Math.max(1, steps / 3 - spikeSteps)) : -1));
  const lines: string[] = new Array<string>(options.readings);
  const meterOf = new Int32Array(options.readings);
  const timeOf = new Float64Array(options.readings);
  for (let i = 0; i < options.readings; i++) {
    const m = i % meters;
    const step = Math.floor(i / meters);
    const time = T0 + step * intervalMs + Math.floor((m * intervalMs) / meters);
    const hour = (time / 3_600_000) % 24;
    const shape = 0.7 + 0.3 * Math.sin(((hour - 8) / 24) * 2 * Math.PI);
    const start = spikeStart[m]!;
    const spike = start >= 0 && step >= start && step < start + spikeSteps ? 4 : 1;
    const kw = levels[m]! * shape * spike * (1 + 0.02 * random.normal());
    const voltage = 230 + 1.5 * random.normal();
    const pf = pfs[m]!;
    lines[i] = `{"meterId":"${keys[m]}","siteId":"s-${String(Math.floor(m / 10) + 1).padStart(4, '0')}","timestamp":${time},"usageKw":${kw.toFixed(3)},"voltage":${voltage.toFixed(1)},"current":${((kw * 1000) / (voltage * pf)).toFixed(2)},"pf":${pf.toFixed(3)}}`;
    meterOf[i] = m;
    timeOf[i] = time;
  }
  return { lines, keys, meterOf, timeOf, alertMeters: spikeStart.filter((s) => s >= 0).length };
}

// ---- PostgreSQL -------------------------------------------------------------------------------

async function withClient<T>(url: string, body: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await body(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

// ---- the producer ------------------------------------------------------------------------------

interface Topic {
  name: string;
  partitions: number;
  /** Per partition, the reading at each offset (the topic is new: offsets count from 0). */
  readingAt: number[][];
  /** Per partition, [end offset, estimated bytes] of each batch sent. */
  batches: Array<Array<[number, number]>>;
  produced: number;
  done: boolean;
}

/** Newest checkpointed offset per partition of the group (0 where none yet), of checkpoints written after `since` (epoch ms). */
async function checkpointed(client: pg.Client, group: string, topic: Topic, since = 0): Promise<number[]> {
  const offsets = new Array<number>(topic.partitions).fill(0);
  const rows = await client
    .query<{ partition: number; offset: string }>(
      `SELECT "partition", max("offset")::text AS offset FROM engine_checkpoints WHERE "group" = $1 AND topic = $2 AND created_at >= to_timestamp($3::double precision / 1000) GROUP BY "partition"`,
      [group, topic.name, since],
    )
    .then((result) => result.rows)
    .catch(() => []);
  for (const row of rows) offsets[row.partition] = Number(row.offset);
  return offsets;
}

/**
 * Appends every reading, in order, in chunks (one gzip batch per partition each): paced at `rate`,
 * and a partition waits while the bytes after its newest checkpoint would exceed `windowBytes`.
 */
async function produce(kafka: kafkajs.Kafka, topic: Topic, readings: Readings, options: Options, rate: number, progress: pg.Client, group: string): Promise<void> {
  const producer = kafka.producer({ allowAutoTopicCreation: true, idempotent: false, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    const began = Date.now();
    let checkpoints = new Array<number>(topic.partitions).fill(0);
    let checkedAt = 0;
    for (let at = 0; at < readings.lines.length; at += CHUNK) {
      const due = began + (at / rate) * 1000;
      if (due > Date.now()) await sleep(due - Date.now());
      const byPartition: Array<{ indices: number[]; bytes: number }> = Array.from({ length: topic.partitions }, () => ({ indices: [], bytes: 0 }));
      const end = Math.min(at + CHUNK, readings.lines.length);
      for (let i = at; i < end; i++) byPartition[partitionOfKey(readings.keys[readings.meterOf[i]!]!, topic.partitions)]!.indices.push(i);
      for (const part of byPartition) {
        if (part.indices.length > 0) part.bytes = Math.ceil(1.3 * gzipSync(part.indices.map((i) => readings.lines[i]).join('\n')).length) + 100;
      }
      // Hold back while a partition's unconsumed window is full (the broker would trim what a restart needs).
      for (;;) {
        const full = byPartition.some((part, p) => {
          if (part.indices.length === 0) return false;
          const retained = topic.batches[p]!.filter(([batchEnd]) => batchEnd > checkpoints[p]!).reduce((sum, [, bytes]) => sum + bytes, 0);
          return retained + part.bytes > options.windowBytes;
        });
        if (!full && Date.now() - checkedAt < 5000) break;
        checkpoints = await checkpointed(progress, group, topic);
        checkedAt = Date.now();
        if (!full) break;
        await sleep(250);
      }
      const messages = byPartition.flatMap((part, p) =>
        part.indices.map((i) => ({ key: readings.keys[readings.meterOf[i]!]!, value: readings.lines[i]!, partition: p, timestamp: String(Date.now()) })),
      );
      const results = await producer.send({ topic: topic.name, acks: -1, compression: kafkajs.CompressionTypes.GZIP, messages });
      for (const result of results) {
        const p = result.partition;
        const expected = topic.readingAt[p]!.length;
        if (Number(result.baseOffset) !== expected) throw new Error(`partition ${p} of ${topic.name}: a batch was appended at offset ${String(result.baseOffset)}, expected ${expected} (the topic is not fresh, or a retry appended twice)`);
      }
      byPartition.forEach((part, p) => {
        if (part.indices.length === 0) return;
        topic.readingAt[p]!.push(...part.indices);
        topic.batches[p]!.push([topic.readingAt[p]!.length, part.bytes]);
      });
      topic.produced = end;
    }
  } finally {
    topic.done = true;
    await producer.disconnect().catch(() => undefined);
  }
}

/** Why the broker does not answer an admin request now, or undefined when it does. */
async function brokerUnreachable(kafka: kafkajs.Kafka): Promise<string | undefined> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.listTopics();
    return undefined;
  } catch (error) {
    return (error as Error).message;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

// ---- the processor, restarted whenever it dies -------------------------------------------------

interface Run {
  child: ChildProcess;
  number: number;
  startedAt: number;
  assignedAt: number | undefined;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output: string;
}

class Supervisor {
  current: Run | undefined;
  runs = 0;
  unexpectedExits = 0;
  gaps: string[] = [];
  errors: string[] = [];
  private stopping = false;

  constructor(
    private readonly args: readonly string[],
    private readonly folder: string,
  ) {}

  /** Starts a processor; when it dies without being told to, another starts. */
  start(extra: readonly string[] = []): Run {
    this.runs += 1;
    const number = this.runs;
    const child = spawn(process.execPath, ['--import', TSX, MAIN, 'process', ...this.args, ...extra], { cwd: this.folder, stdio: ['ignore', 'pipe', 'pipe'] });
    const run: Run = { child, number, startedAt: Date.now(), assignedAt: undefined, exit: Promise.resolve({ code: null, signal: null }), output: '' };
    const logFile = join(this.folder, 'processes.log');
    let partial = '';
    const onData = (chunk: Buffer): void => {
      partial += chunk.toString();
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        appendFileSync(logFile, `run ${number}: ${line}\n`);
        run.output += `${line}\n`;
        if (run.assignedAt === undefined && /assigned .*\/\d+.* \(group /.test(line)) run.assignedAt = Date.now();
        if (line.includes('GP_LOG_GAP') || line.includes('deleted by the topic')) this.gaps.push(`run ${number}: ${line}`);
        else if (line.includes(' error in ')) this.errors.push(`run ${number}: ${line}`);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    run.exit = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        resolve({ code, signal });
        if (this.current === run && !this.stopping && signal !== 'SIGKILL') {
          this.unexpectedExits += 1;
          log(`processor run ${number} exited by itself (code ${String(code)}, signal ${String(signal)}); starting another. Last output: ${run.output.slice(-400)}`);
          this.current = this.start(extra);
        }
      });
    });
    this.current = run;
    return run;
  }

  /** SIGKILL now; returns the run that was killed once it is gone. */
  async kill(): Promise<Run> {
    const run = this.current!;
    run.child.kill('SIGKILL');
    await run.exit;
    return run;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null } | undefined> {
    this.stopping = true;
    const run = this.current;
    if (run === undefined || run.child.exitCode !== null || run.child.signalCode !== null) return undefined;
    run.child.kill(signal);
    return run.exit;
  }
}

/** The offset each partition was restored at, from a processor's output ("no checkpoint": 0). */
function restoredOffsets(output: string, topic: string): Map<number, number> {
  const found = new Map<number, number>();
  const escaped = topic.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  for (const match of output.matchAll(new RegExp(`${escaped}/(\\d+): (?:restored checkpoint version \\d+ \\(offset (\\d+)|no checkpoint, starting at offset 0)`, 'g'))) {
    found.set(Number(match[1]), Number(match[2] ?? 0));
  }
  return found;
}

// ---- comparing two stores ----------------------------------------------------------------------

interface TableSpec {
  name: string;
  /** Key columns: text ones sorted byte-wise, numeric ones as numbers. */
  key: Array<{ column: string; numeric: boolean }>;
  values: string[];
}

const TABLES: TableSpec[] = [
  {
    name: 'readings',
    key: [
      { column: 'stream', numeric: false },
      { column: 'key', numeric: false },
      { column: 'time_ms', numeric: true },
    ],
    values: ['site', 'metric_values::text'],
  },
  {
    name: 'aggregates',
    key: [
      { column: 'stream', numeric: false },
      { column: 'key', numeric: false },
      { column: 'window_name', numeric: false },
      { column: 'start_ms', numeric: true },
      { column: 'metric', numeric: false },
    ],
    values: ['site', 'end_ms', 'revision', 'reading_count', 'energy_kwh', 'stat_count', 'stat_min', 'stat_max', 'stat_avg', 'stat_sum', 'stat_stddev', 'stat_first', 'stat_last'],
  },
  {
    name: 'alerts',
    key: [{ column: 'id', numeric: false }],
    values: ['stream', 'key', 'site', 'type', 'metric', 'severity', 'status', 'opened_at_ms', 'updated_at_ms', 'resolved_at_ms', 'score', 'peak_score', 'value', 'findings', 'explain', 'last_seq'],
  },
  {
    name: 'alert_transitions',
    key: [{ column: 'id', numeric: false }],
    values: ['alert_id', 'seq', 'kind', 'time_ms', 'status', 'severity', 'score', 'explain'],
  },
];

interface TableDiff {
  table: string;
  reference: number;
  processed: number;
  lost: number;
  duplicated: number;
  different: number;
  examples: string[];
}

/** Reads a table in key order through a cursor, a page at a time. */
async function* ordered(client: pg.Client, spec: TableSpec): AsyncGenerator<{ key: Array<string | number>; value: string }, void> {
  const keyList = spec.key.map(({ column, numeric }) => (numeric ? column : `${column} COLLATE "C"`)).join(', ');
  const select = [...spec.key.map(({ column }) => column), ...spec.values].map((expression, i) => `${expression} AS c${i}`).join(', ');
  await client.query('BEGIN');
  try {
    await client.query(`DECLARE compare NO SCROLL CURSOR FOR SELECT ${select} FROM ${spec.name} ORDER BY ${keyList}`);
    for (;;) {
      const { rows } = await client.query<Record<string, unknown>>('FETCH 10000 FROM compare');
      if (rows.length === 0) break;
      for (const row of rows) {
        const key = spec.key.map(({ numeric }, i) => (numeric ? Number(row[`c${i}`]) : String(row[`c${i}`])));
        const value = JSON.stringify(spec.values.map((_, i) => row[`c${spec.key.length + i}`] ?? null));
        yield { key, value };
      }
    }
  } finally {
    await client.query('COMMIT').catch(() => undefined);
  }
}

function compareKeys(a: ReadonlyArray<string | number>, b: ReadonlyArray<string | number>): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x < y) return -1;
    if (x > y) return 1;
  }
  return 0;
}

/** Merges the two tables in key order and counts what differs. */
async function compareTable(referenceUrl: string, processedUrl: string, spec: TableSpec): Promise<TableDiff> {
  return withClient(referenceUrl, (left) =>
    withClient(processedUrl, async (right) => {
      const diff: TableDiff = { table: spec.name, reference: 0, processed: 0, lost: 0, duplicated: 0, different: 0, examples: [] };
      const example = (text: string): void => {
        if (diff.examples.length < 3) diff.examples.push(text);
      };
      type Row = { key: Array<string | number>; value: string };
      const pull = async (rows: AsyncGenerator<Row>): Promise<Row | undefined> => {
        const next = await rows.next();
        return next.done === true ? undefined : next.value;
      };
      const a = ordered(left, spec);
      const b = ordered(right, spec);
      let x = await pull(a);
      let y = await pull(b);
      let lastRight: Array<string | number> | undefined;
      while (x !== undefined || y !== undefined) {
        if (y !== undefined && lastRight !== undefined && compareKeys(y.key, lastRight) === 0) {
          diff.processed++;
          diff.duplicated++;
          example(`${spec.name} ${y.key.join('/')}: more than once`);
          y = await pull(b);
          continue;
        }
        if (y === undefined || (x !== undefined && compareKeys(x.key, y.key) < 0)) {
          diff.reference++;
          diff.lost++;
          example(`${spec.name} ${x!.key.join('/')}: missing`);
          x = await pull(a);
        } else if (x === undefined || compareKeys(x.key, y.key) > 0) {
          diff.processed++;
          diff.duplicated++;
          example(`${spec.name} ${y.key.join('/')}: not in the reference`);
          lastRight = y.key;
          y = await pull(b);
        } else {
          diff.reference++;
          diff.processed++;
          if (x.value !== y.value) {
            diff.different++;
            example(`${spec.name} ${x.key.join('/')}: ${y.value} instead of ${x.value}`);
          }
          lastRight = y.key;
          x = await pull(a);
          y = await pull(b);
        }
      }
      return diff;
    }),
  );
}

// ---- the run ------------------------------------------------------------------------------------

interface Crash {
  number: number;
  kind: 'random' | 'checkpoint';
  /** A checkpoint kill: the INSERT/DELETE on engine_checkpoints was still running right after the SIGKILL. */
  cutStatement: boolean;
  produced: number;
  restartToAssignedMs: number | undefined;
  recoveryMs: number | undefined;
}

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Compares every table, prints one line per table and the three totals; returns the diffs. */
async function compareStores(referenceUrl: string, processedUrl: string): Promise<TableDiff[]> {
  const diffs: TableDiff[] = [];
  for (const spec of TABLES) diffs.push(await compareTable(referenceUrl, processedUrl, spec));
  for (const diff of diffs) {
    console.log(`table ${diff.table}: reference ${diff.reference}, processed ${diff.processed}, lost ${diff.lost}, duplicated ${diff.duplicated}, different ${diff.different}${diff.examples.length > 0 ? ` (e.g. ${diff.examples.join('; ')})` : ''}`);
  }
  return diffs;
}

const totalOf = (diffs: readonly TableDiff[], field: 'lost' | 'duplicated' | 'different'): number => diffs.reduce((sum, diff) => sum + diff[field], 0);

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  if (options.compare !== undefined) {
    const diffs = await compareStores(...options.compare);
    for (const field of ['lost', 'duplicated', 'different'] as const) console.log(`${field}: ${totalOf(diffs, field)}`);
    const clean = (['lost', 'duplicated', 'different'] as const).every((field) => totalOf(diffs, field) === 0);
    console.log(clean ? 'result: PASS' : 'result: FAIL (the stores differ)');
    return clean ? 0 : 1;
  }
  const random = new SimulationRandom(options.seed ^ 0x5bd1e995);
  const between = (min: number, max: number): number => Math.floor(min + random.uniform(0, 1) * (max - min + 1));
  const began = Date.now();
  const run = `${process.pid}_${Date.now()}`;
  log(`seed ${options.seed}: ${options.readings} readings from ${options.meters} meters, ${options.kills} kills (${options.checkpointKills} during a checkpoint write)`);

  const folder = mkdtempSync(join(tmpdir(), 'gp-kafka-crash-'));
  const readings = generateReadings(options);
  const file = join(folder, 'readings.ndjson');
  writeFileSync(file, `${readings.lines.join('\n')}\n`);

  // Databases: the reference (replay) and the run under test.
  const databases = [`gp_kcrash_${run}_reference`, `gp_kcrash_${run}_processed`];
  try {
    await withClient(`${options.postgres}/postgres`, async (client) => {
      for (const name of databases) await client.query(`CREATE DATABASE ${name}`);
    });
  } catch (cause) {
    throw new Error(`PostgreSQL at ${options.postgres} does not answer or refuses CREATE DATABASE — start it with scripts/servers.sh start postgres (${(cause as Error).message})`, { cause });
  }
  const [referenceUrl, processedUrl] = databases.map((name) => `${options.postgres}/${name}`) as [string, string];
  const brokers = options.kafka.replace(/^kafka:\/\//, '').split(',');
  const kafka = new kafkajs.Kafka({ brokers, clientId: 'gridpulse-kafka-crash', logLevel: kafkajs.logLevel.NOTHING, connectionTimeout: 3000 });
  const group = `kcrash-${run}`;
  const topic: Topic = { name: `kcrash-power-${run}`, partitions: 0, readingAt: [], batches: [], produced: 0, done: false };
  const supervisor = new Supervisor(
    [
      '--log',
      options.kafka,
      '--store',
      processedUrl,
      '--group',
      group,
      '--streams',
      'power',
      '--topic',
      `power=${topic.name}`,
      '--data-dir',
      join(folder, 'data'),
      '--checkpoint-interval',
      String(options.checkpointIntervalMs),
      '--session-timeout',
      String(options.sessionTimeoutMs),
    ],
    folder,
  );
  const monitor = new pg.Client({ connectionString: processedUrl });
  monitor.on('error', () => undefined);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      void supervisor.stop('SIGKILL').finally(() => process.exit(130));
    });
  }

  try {
    // The reference first: an uninterrupted replay of the same readings.
    log('reference: gridpulse replay of the readings …');
    const replayStarted = Date.now();
    const replay = spawnSync(process.execPath, ['--import', TSX, MAIN, 'replay', file, '--store', referenceUrl], { cwd: folder, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    if (replay.status !== 0) throw new Error(`gridpulse replay failed (status ${String(replay.status)}):\n${replay.stdout.slice(-2000)}\n${replay.stderr.slice(-2000)}`);
    const replaySeconds = (Date.now() - replayStarted) / 1000;
    log(`reference done in ${replaySeconds.toFixed(1)} s`);

    // The topic (the mock cluster creates it on first use) and its partition count.
    const admin = kafka.admin();
    try {
      await admin.connect();
      let found: number | undefined;
      for (let attempt = 0; attempt < 20 && found === undefined; attempt++) {
        found = (await admin.fetchTopicMetadata({ topics: [topic.name] }).catch(() => undefined))?.topics[0]?.partitions.length;
        if (found === undefined) await sleep(250);
      }
      if (found === undefined) throw new Error(`topic ${topic.name} was not created`);
      topic.partitions = found;
    } catch (cause) {
      throw new Error(`the Kafka broker at ${options.kafka} does not answer — start the test broker with scripts/servers.sh start kafka (${(cause as Error).message})`, { cause });
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    topic.readingAt = Array.from({ length: topic.partitions }, () => []);
    topic.batches = Array.from({ length: topic.partitions }, () => []);
    log(`topic ${topic.name}: ${topic.partitions} partitions; group ${group}`);

    await monitor.connect();
    const progress = new pg.Client({ connectionString: processedUrl });
    progress.on('error', () => undefined);
    await progress.connect();

    // Pace: producing spans about the time the kills take (each: a gap, then a recovery of about
    // the session timeout plus a few seconds), unless --rate says otherwise.
    const expectedSeconds = Math.max(10, (options.kills * ((options.gapMinMs + options.gapMaxMs) / 2 + options.sessionTimeoutMs + 4000)) / 1000);
    const rate = options.rate > 0 ? options.rate : Math.max(200, Math.round(options.readings / expectedSeconds));
    log(`producing at about ${rate} readings/s`);
    let producerError: Error | undefined;
    const producing = produce(kafka, topic, readings, options, rate, progress, group).catch((error: unknown) => {
      producerError = error instanceof Error ? error : new Error('the producer failed', { cause: error });
      log(`producer failed: ${producerError.message}`);
    });

    supervisor.start();

    // Which reading is at (partition, offset), and is it in the store.
    const stored = async (partition: number, offset: number): Promise<boolean> => {
      const index = topic.readingAt[partition]![offset];
      if (index === undefined) return false;
      const { rows } = await monitor.query('SELECT 1 FROM readings WHERE stream = $1 AND key = $2 AND time_ms = $3 AND source_offset = $4', [
        'power',
        readings.keys[readings.meterOf[index]!],
        readings.timeOf[index],
        offset,
      ]);
      return rows.length > 0;
    };
    /** The highest offset of the partition whose reading is stored (readings are written in offset order), -1 for none. */
    const storedUpTo = async (partition: number): Promise<number> => {
      let low = -1;
      let high = topic.readingAt[partition]!.length - 1;
      while (low < high) {
        const middle = Math.ceil((low + high + 1) / 2);
        if (await stored(partition, middle)) low = middle;
        else high = middle - 1;
      }
      return low;
    };
    /** Waits until no backend of the database that started before `time` runs or holds a transaction (the killed process's). */
    const predecessorGone = async (time: number): Promise<void> => {
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        const { rows } = await monitor.query(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_start < to_timestamp($1::double precision / 1000) AND state <> 'idle'`,
          [time],
        );
        if ((rows[0] as { n: number }).n === 0) return;
        await sleep(20);
      }
    };
    const checkpointWriteRunning = async (): Promise<boolean> => {
      const { rows } = await monitor.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active' AND query ~* '^\\s*(INSERT INTO|DELETE FROM) engine_checkpoints'`,
      );
      return (rows[0] as { n: number }).n > 0;
    };

    // The kills: a random order of random and checkpoint kills.
    const plan: Array<'random' | 'checkpoint'> = [...Array<'checkpoint'>(options.checkpointKills).fill('checkpoint'), ...Array<'random'>(options.kills - options.checkpointKills).fill('random')];
    for (let at = plan.length - 1; at > 0; at--) {
      const other = between(0, at);
      [plan[at], plan[other]] = [plan[other]!, plan[at]!];
    }
    const crashes: Crash[] = [];
    let recovered: Promise<void> = Promise.resolve();
    for (const [index, kind] of plan.entries()) {
      await recovered;
      if (producerError !== undefined) throw producerError;
      // A processor that owns the partitions (restored and consuming), then the gap.
      const assignedBy = Date.now() + 120_000;
      while (supervisor.current?.assignedAt === undefined && Date.now() < assignedBy) await sleep(50);
      if (supervisor.current?.assignedAt === undefined) throw new Error(`the processor got no partitions within 120 s:\n${supervisor.current?.output.slice(-2000) ?? ''}`);
      await sleep(between(options.gapMinMs, options.gapMaxMs));
      let cutStatement = false;
      if (kind === 'checkpoint') {
        const deadline = Date.now() + Math.max(20_000, 5 * options.checkpointIntervalMs);
        let seen = false;
        while (!seen && Date.now() < deadline) seen = await checkpointWriteRunning();
        if (!seen) log(`kill ${index + 1}: no checkpoint write seen within ${deadline - Date.now()} ms; killing anyway`);
        supervisor.current.child.kill('SIGKILL');
        // The server runs a statement to its end even when its client is gone: still running now
        // means the process died in the middle of writing that checkpoint.
        cutStatement = seen && (await checkpointWriteRunning());
      }
      const killedAt = Date.now();
      const killed = await supervisor.kill();
      const restarted = supervisor.start();
      const crash: Crash = { number: index + 1, kind, cutStatement, produced: topic.produced, restartToAssignedMs: undefined, recoveryMs: undefined };
      crashes.push(crash);
      // Where the predecessor got to: what it stored, once its connections are gone (the server
      // finishes a statement whose client died, so an INSERT in flight may still land).
      await predecessorGone(killedAt);
      const targets: number[] = [];
      for (let p = 0; p < topic.partitions; p++) targets.push((await storedUpTo(p)) + 1);
      log(`SIGKILL ${crash.number}/${options.kills} (${kind}${kind === 'checkpoint' ? (cutStatement ? ', checkpoint statement cut' : ', checkpoint statement had finished') : ''}) of run ${killed.number}; produced ${topic.produced}; stored up to offsets ${targets.join(',')}`);
      recovered = (async () => {
        const pending = new Set(targets.keys());
        for (;;) {
          if (restarted.assignedAt !== undefined) crash.restartToAssignedMs = restarted.assignedAt - restarted.startedAt;
          const restored = restoredOffsets(restarted.output, topic.name);
          const since = pending.size === 0 ? [] : await checkpointed(monitor, group, topic, restarted.startedAt);
          for (const p of [...pending]) {
            const target = targets[p]!;
            const from = restored.get(p);
            if (from === undefined) continue;
            // Nothing to do again, or a checkpoint of the replacement past the target, or the first
            // reading the predecessor had not stored is stored now (by the replacement).
            if (from >= target || since[p]! >= target || (await stored(p, target))) pending.delete(p);
          }
          if (pending.size === 0) break;
          if (supervisor.current !== restarted) return; // died by itself: counted as an unexpected exit
          await sleep(50);
        }
        crash.recoveryMs = Date.now() - restarted.startedAt;
        log(`crash ${crash.number}: partitions assigned after ${((crash.restartToAssignedMs ?? Number.NaN) / 1000).toFixed(1)} s, recovered after ${(crash.recoveryMs / 1000).toFixed(1)} s`);
      })();
    }
    await recovered;

    // Drain: every reading produced and checkpointed by the processor.
    await producing;
    if (producerError !== undefined) throw producerError;
    log(`all ${topic.produced} readings produced; waiting for the processor to checkpoint them`);
    let last = -1;
    let lastChange = Date.now();
    let drained = false;
    let brokerDown: string | undefined;
    for (;;) {
      const offsets = await checkpointed(progress, group, topic);
      const covered = offsets.reduce((sum, offset) => sum + offset, 0);
      if (offsets.every((offset, p) => offset >= topic.readingAt[p]!.length)) {
        drained = true;
        break;
      }
      if (covered !== last) {
        last = covered;
        lastChange = Date.now();
      }
      if (Date.now() - lastChange > STALL_MS) {
        log(`no progress for ${STALL_MS / 1000} s: checkpoints cover ${covered} of ${topic.produced}`);
        brokerDown = await brokerUnreachable(kafka);
        break;
      }
      await sleep(500);
    }
    await progress.end().catch(() => undefined);
    const stopped = await supervisor.stop('SIGTERM');
    const cleanStop = stopped?.code === 0;
    // One bounded run of the same group restores every partition and finishes the open windows.
    log('finishing: gridpulse process --until-end');
    const finishing = supervisor.start(['--until-end']);
    const finishTimer = setTimeout(() => finishing.child.kill('SIGKILL'), 300_000);
    const finished = await finishing.exit;
    clearTimeout(finishTimer);
    const finishedProcessed = /stopped: (\d+) records processed/.exec(finishing.output)?.[1];
    await monitor.end().catch(() => undefined);

    log('comparing the stores …');
    const diffs = await compareStores(referenceUrl, processedUrl);
    const total = (field: 'lost' | 'duplicated' | 'different'): number => totalOf(diffs, field);
    const recoveries = crashes.flatMap((crash) => (crash.recoveryMs === undefined ? [] : [crash.recoveryMs / 1000]));
    const assigned = crashes.flatMap((crash) => (crash.restartToAssignedMs === undefined ? [] : [crash.restartToAssignedMs / 1000]));
    const alertRows = diffs.find((diff) => diff.table === 'alerts')?.reference ?? 0;

    for (const crash of crashes) {
      console.log(
        `crash ${crash.number}: ${crash.kind === 'checkpoint' ? `during a checkpoint write${crash.cutStatement ? ' (statement cut)' : ' (statement had just finished)'}` : 'random moment'}, ${crash.produced} readings produced, assigned after ${((crash.restartToAssignedMs ?? Number.NaN) / 1000).toFixed(1)} s, recovered after ${((crash.recoveryMs ?? Number.NaN) / 1000).toFixed(1)} s`,
      );
    }
    const figures: Array<[string, string | number]> = [
      ['seed', options.seed],
      ['readings', topic.produced],
      ['meters', options.meters],
      ['partitions', topic.partitions],
      ['kills', crashes.length],
      ['checkpoint kills', crashes.filter((crash) => crash.kind === 'checkpoint').length],
      ['checkpoint statements cut', crashes.filter((crash) => crash.cutStatement).length],
      ['processor runs', supervisor.runs],
      ['unexpected exits', supervisor.unexpectedExits],
      ['retention gaps', supervisor.gaps.length],
      ['errors reported', supervisor.errors.length],
      ['reference alerts', alertRows],
      ['lost', total('lost')],
      ['duplicated', total('duplicated')],
      ['different', total('different')],
      ['recovery p50', `${percentile(recoveries, 50).toFixed(1)} s`],
      ['recovery p99', `${percentile(recoveries, 99).toFixed(1)} s`],
      ['restart to assigned p50', `${percentile(assigned, 50).toFixed(1)} s`],
      ['restart to assigned p99', `${percentile(assigned, 99).toFixed(1)} s`],
      ['session timeout', `${options.sessionTimeoutMs / 1000} s`],
      ['checkpoint interval', `${options.checkpointIntervalMs / 1000} s`],
      ['replay seconds', replaySeconds.toFixed(1)],
      ['run seconds', ((Date.now() - began) / 1000).toFixed(1)],
    ];
    for (const [name, value] of figures) console.log(`${name}: ${value}`);
    for (const line of supervisor.gaps.slice(0, 5)) log(line);
    for (const line of supervisor.errors.slice(-5)) log(`reported: ${line}`);

    const failures: string[] = [];
    if (total('lost') > 0) failures.push(`${total('lost')} rows lost`);
    if (total('duplicated') > 0) failures.push(`${total('duplicated')} rows duplicated`);
    if (total('different') > 0) failures.push(`${total('different')} rows different`);
    if (topic.produced !== options.readings) failures.push(`${topic.produced} of ${options.readings} readings produced`);
    if (crashes.length !== options.kills) failures.push(`${crashes.length} kills, expected ${options.kills}`);
    if (recoveries.length !== crashes.length) failures.push(`${crashes.length - recoveries.length} crashes without a recovery`);
    if (supervisor.unexpectedExits > 0) failures.push(`the processor exited by itself ${supervisor.unexpectedExits} times`);
    if (supervisor.gaps.length > 0) failures.push(`the broker trimmed records before they were processed (GP_LOG_GAP ${supervisor.gaps.length} times)`);
    if (!drained) failures.push(`the processor did not checkpoint every reading${brokerDown === undefined ? '' : ` — the Kafka broker stopped answering (${brokerDown})`}`);
    if (!cleanStop) failures.push(`the processor did not stop cleanly on SIGTERM (${JSON.stringify(stopped ?? null)})`);
    if (finished.code !== 0) failures.push(`the finishing run exited with ${String(finished.code ?? finished.signal)}`);
    if (alertRows === 0) failures.push('the reference has no alerts (nothing to compare)');
    if (finishedProcessed === undefined) failures.push('the finishing run printed no summary');
    console.log(failures.length === 0 ? 'result: PASS' : `result: FAIL (${failures.join('; ')})`);
    return failures.length === 0 ? 0 : 1;
  } finally {
    await supervisor.stop('SIGKILL');
    await monitor.end().catch(() => undefined);
    if (options.keep) log(`kept databases ${databases.join(', ')} and ${folder}`);
    else {
      await withClient(`${options.postgres}/postgres`, async (client) => {
        for (const name of databases) await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      }).catch((error: unknown) => log(`could not drop the databases: ${(error as Error).message}`));
      rmSync(folder, { recursive: true, force: true });
    }
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`kafka-crash: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    console.log('result: FAIL (harness error)');
    process.exit(2);
  },
);
