#!/usr/bin/env node
// The outbox crash harness (issue 5, acceptance 2): alert transitions written through the real
// PostgreSQL store while a relay in a child process (test/integration/outbox-relay-child.ts,
// logical replication through a slot) delivers them to a file; meanwhile the relay is SIGKILLed
// and PostgreSQL stopped in immediate mode (a crash: no checkpoint, recovery from WAL) and started
// again. At the end it waits for the relay to drain, then checks what a receiver saw against what
// PostgreSQL committed, and how much WAL the slot holds once idle.
//
//   node --import tsx scripts/outbox-crash.ts [--transitions 100000] [--alerts 400] [--kills 20] [--restarts 3]
//        [--batch-max 100] [--gap-min-ms 300] [--gap-max-ms 2500] [--heartbeat-ms 200] [--idle-ms 6000]
//        [--max-retained-bytes 16777216] [--rate N] [--drain-timeout-ms 900000] [--fsync] [--private-cluster]
//        [--seed N] [--keep]
//
// The writer is paced (--rate transitions per second; by default so that writing spans about the
// time the kills and restarts take), so both kinds of crash hit while transitions are being written.
//
// Needs the cluster of `scripts/servers.sh start postgres-logical` (127.0.0.1:5433, wal_level=logical);
// it creates a database of its own there and drops it at the end (--keep leaves it). The PostgreSQL
// restarts stop THAT cluster in immediate mode (as the postgres user, with its pg_ctl) and start it again
// with scripts/servers.sh: anything else using 5433 at the time loses its connections.
// --private-cluster: instead, a throwaway cluster with the same settings (same PostgreSQL 15 binaries,
// wal_level=logical; initdb into a temporary folder, a free loopback port), removed at the end, so the
// restarts disturb nobody (the integration test uses it: other test files use 5433 at the same time).
//
// Prints one `name: value` line per figure (transitions, kills, restarts, published, duplicates,
// missing, order violations, max retained WAL idle, ...) and `result: PASS` or `result: FAIL (...)`;
// exit status 0 on PASS, 1 on FAIL, 2 on bad usage or a harness error.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AlertEvent } from '../src/model/index.js';
import { createPostgresStore } from '../src/stores/index.js';
import { LOGICAL, createTestDatabase, transitionEvent, type PostgresTarget, type TestDatabase } from '../test/helpers/outbox.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CHILD = join(ROOT, 'test/integration/outbox-relay-child.ts');
const SERVERS = join(ROOT, 'scripts/servers.sh');
const PG_CTL = '/usr/lib/postgresql/15/bin/pg_ctl';
const PG_INITDB = '/usr/lib/postgresql/15/bin/initdb';
// Draining that makes no progress for this long has stopped: the checks then say what is missing.
const STALL_MS = 60_000;
const UNMARKED_SETTLE_MS = 5_000;
const PG_DATA = join(process.env['GP_PG_LOGICAL_DIR'] ?? '/tmp/gridpulse-pg-logical', 'data');

interface Options {
  transitions: number;
  alerts: number;
  kills: number;
  restarts: number;
  batchMax: number;
  gapMinMs: number;
  gapMaxMs: number;
  heartbeatMs: number;
  idleMs: number;
  maxRetainedBytes: number;
  rate: number;
  drainTimeoutMs: number;
  fsync: boolean;
  privateCluster: boolean;
  seed: number;
  keep: boolean;
}

function parseOptions(argv: readonly string[]): Options {
  const options: Options = {
    transitions: 100_000,
    alerts: 400,
    kills: 20,
    restarts: 3,
    batchMax: 100,
    gapMinMs: 300,
    gapMaxMs: 2_500,
    heartbeatMs: 200,
    idleMs: 6_000,
    maxRetainedBytes: 16 * 1024 * 1024,
    rate: 0,
    drainTimeoutMs: 900_000,
    fsync: false,
    privateCluster: false,
    seed: Date.now() % 2 ** 31,
    keep: false,
  };
  const numeric: Record<string, keyof Options> = {
    '--transitions': 'transitions',
    '--alerts': 'alerts',
    '--kills': 'kills',
    '--restarts': 'restarts',
    '--batch-max': 'batchMax',
    '--gap-min-ms': 'gapMinMs',
    '--gap-max-ms': 'gapMaxMs',
    '--heartbeat-ms': 'heartbeatMs',
    '--idle-ms': 'idleMs',
    '--max-retained-bytes': 'maxRetainedBytes',
    '--rate': 'rate',
    '--drain-timeout-ms': 'drainTimeoutMs',
    '--seed': 'seed',
  };
  for (let at = 0; at < argv.length; at++) {
    const flag = argv[at] as string;
    if (flag === '--fsync') options.fsync = true;
    else if (flag === '--private-cluster') options.privateCluster = true;
    else if (flag === '--keep') options.keep = true;
    else if (flag in numeric) {
      const value = Number(argv[++at]);
      if (!Number.isInteger(value) || value < 0) usage(`${flag}: expected a whole number >= 0, got ${JSON.stringify(argv[at])}`);
      (options as unknown as Record<string, number>)[numeric[flag] as string] = value;
    } else usage(`unknown argument ${JSON.stringify(flag)}`);
  }
  if (options.transitions < 1 || options.alerts < 1 || options.batchMax < 1 || options.heartbeatMs < 1) usage('--transitions, --alerts, --batch-max and --heartbeat-ms must be at least 1');
  if (options.gapMaxMs < options.gapMinMs) usage('--gap-max-ms must be at least --gap-min-ms');
  return options;
}

function usage(message: string): never {
  console.error(`outbox-crash: ${message}`);
  console.error('usage: node --import tsx scripts/outbox-crash.ts [--transitions N] [--alerts N] [--kills N] [--restarts N] [--batch-max N] [--gap-min-ms N] [--gap-max-ms N] [--heartbeat-ms N] [--idle-ms N] [--max-retained-bytes N] [--rate N] [--drain-timeout-ms N] [--fsync] [--private-cluster] [--seed N] [--keep]');
  process.exit(2);
}

/** mulberry32: a small seeded generator, so a run's choices can be repeated with --seed. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const log = (message: string): void => {
  process.stderr.write(`[outbox-crash ${new Date().toISOString().slice(11, 23)}] ${message}\n`);
};

// ---- the relay in a child process, restarted whenever it dies ------------------------------------

class RelaySupervisor {
  private child: ChildProcess | undefined;
  private started = false;
  private stopping = false;
  private exited: Promise<void> = Promise.resolve();
  runs = 0;
  kills = 0;
  private readonly errorLines: string[] = [];
  relayErrors = 0;

  constructor(
    private readonly args: readonly string[],
    private readonly logFile: string,
  ) {}

  /** Starts a child (and restarts it, after a pause, each time it dies) until `stop`. */
  run(): void {
    if (this.stopping) return;
    this.runs += 1;
    const run = this.runs;
    this.started = false;
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...this.args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let stdout = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (/STARTED logical/.test(stdout) && !this.started) {
        this.started = true;
        appendFileSync(this.logFile, `${new Date().toISOString().slice(11, 23)} run ${run}: started\n`);
      }
    });
    let partial = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      partial += chunk.toString();
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        appendFileSync(this.logFile, `${new Date().toISOString().slice(11, 23)} run ${run}: ${line}\n`);
        if (line.startsWith('relay: ')) this.relayErrors += 1;
        this.errorLines.push(line);
        if (this.errorLines.length > 20) this.errorLines.shift();
      }
    });
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        if (this.child === child) this.child = undefined;
        this.started = false;
        if (signal !== 'SIGKILL' && !this.stopping) log(`relay child exited by itself (code ${String(code)}, signal ${String(signal)}): ${this.lastErrors()}; starting another`);
        resolve();
        if (!this.stopping) setTimeout(() => this.run(), 200);
      });
    });
  }

  /** Waits (up to `timeoutMs`) until the current child relays. */
  async waitStarted(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.started) {
      if (Date.now() > deadline) return false;
      await sleep(25);
    }
    return true;
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null) return;
    const exited = this.exited;
    child.kill('SIGKILL');
    await exited;
    this.kills += 1;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (child !== undefined && child.exitCode === null) {
      const exited = this.exited;
      child.kill('SIGKILL');
      await exited;
    }
  }

  lastErrors(): string {
    return this.errorLines.slice(-5).join(' | ');
  }
}

// ---- PostgreSQL in immediate mode ------------------------------------------------------------

/** Runs a command to its end without blocking this process (the writer keeps writing meanwhile). */
function run(command: string, args: readonly string[]): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, output: output.trim() }));
  });
}

/** The server a run uses, and how to crash and start it again. */
interface Cluster {
  readonly target: PostgresTarget;
  /** A crash of PostgreSQL: stopped in immediate mode (no shutdown checkpoint: recovery from WAL on start), then started again. */
  restart(): Promise<void>;
  /** Removes a private cluster; nothing for the shared one. */
  remove(): Promise<void>;
}

async function immediateStop(data: string): Promise<void> {
  const stop = await run('runuser', ['-u', 'postgres', '--', PG_CTL, '-D', data, '-m', 'immediate', '-w', 'stop']);
  if (stop.status !== 0) throw new Error(`pg_ctl -D ${data} -m immediate stop failed (${String(stop.status)}): ${stop.output}`);
}

/** The cluster of `scripts/servers.sh start postgres-logical` (127.0.0.1:5433), started by that script again after each crash. */
function sharedCluster(): Cluster {
  return {
    target: LOGICAL,
    restart: async () => {
      await immediateStop(PG_DATA);
      const start = await run(SERVERS, ['start', LOGICAL.name]);
      if (start.status !== 0) throw new Error(`scripts/servers.sh start ${LOGICAL.name} failed: ${start.output}`);
    },
    remove: () => Promise.resolve(),
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/** A throwaway cluster with the settings of servers.sh's postgres-logical, on a free loopback port. */
async function privateCluster(): Promise<Cluster> {
  const folder = mkdtempSync(join(tmpdir(), 'gp-outbox-crash-pg-'));
  const data = join(folder, 'data');
  const port = await freePort();
  const owned = await run('chown', ['postgres:postgres', folder]);
  if (owned.status !== 0) throw new Error(`chown postgres ${folder} failed: ${owned.output}`);
  const initdb = await run('runuser', ['-u', 'postgres', '--', PG_INITDB, '-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C.UTF-8']);
  if (initdb.status !== 0) throw new Error(`initdb into ${data} failed (PostgreSQL 15 binaries in ${dirname(PG_CTL)}?): ${initdb.output.slice(-300)}`);
  appendFileSync(
    join(data, 'postgresql.conf'),
    `listen_addresses = '127.0.0.1'\nport = ${port}\nunix_socket_directories = '${folder}'\nwal_level = logical\nmax_replication_slots = 8\nmax_wal_senders = 8\n`,
  );
  // A session of its own (detached) and the log file for its output: nothing of ours stays tied to the server.
  const start = async (): Promise<void> => {
    const started = await new Promise<{ status: number | null }>((resolve, reject) => {
      const child = spawn('runuser', ['-u', 'postgres', '--', PG_CTL, '-D', data, '-l', join(folder, 'server.log'), '-w', '-t', '60', 'start'], { detached: true, stdio: 'ignore' });
      child.on('error', reject);
      child.on('exit', (status) => resolve({ status }));
    });
    if (started.status !== 0) throw new Error(`pg_ctl start of ${data} failed: ${readFileSync(join(folder, 'server.log'), 'utf8').slice(-300)}`);
  };
  await start();
  return {
    target: { server: `postgres://postgres@127.0.0.1:${port}`, name: 'postgres-logical', port },
    restart: async () => {
      await immediateStop(data);
      await start();
    },
    remove: async () => {
      await immediateStop(data).catch(() => undefined);
      rmSync(folder, { recursive: true, force: true });
    },
  };
}

// ---- the run ---------------------------------------------------------------------------------

/** The events to write, in commit order: seq 1 of every alert, then seq 2, ... (alerts interleaved). */
function plannedEvents(options: Options): AlertEvent[] {
  const perAlert = Math.ceil(options.transitions / options.alerts);
  const alerts = Array.from({ length: options.alerts }, (_, index) => `m-${index + 1}/spike`);
  const events: AlertEvent[] = [];
  for (let seq = 1; seq <= perAlert && events.length < options.transitions; seq++) {
    for (const alert of alerts) {
      if (events.length === options.transitions) break;
      events.push(transitionEvent(alert, seq));
    }
  }
  return events;
}

interface Delivery {
  id: string;
  alert: string;
  seq: number;
}

function readSink(file: string): Delivery[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const deliveries: Delivery[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const id = line.split(' ')[0] as string;
    const hash = id.lastIndexOf('#');
    deliveries.push({ id, alert: id.slice(0, hash), seq: Number(id.slice(hash + 1)) });
  }
  return deliveries;
}

async function retained(db: TestDatabase, slot: string): Promise<{ restart: number; confirmed: number } | undefined> {
  const rows = await db.query<{ restart: string; confirmed: string }>(
    `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::text AS restart,
            pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::text AS confirmed
     FROM pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  const row = rows[0];
  return row === undefined ? undefined : { restart: Number(row.restart), confirmed: Number(row.confirmed) };
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const random = seededRandom(options.seed);
  const between = (min: number, max: number): number => Math.floor(min + random() * (max - min + 1));
  const began = Date.now();
  log(`seed ${options.seed}: ${options.transitions} transitions over ${options.alerts} alerts, ${options.kills} relay kills, ${options.restarts} PostgreSQL restarts`);

  const cluster = options.privateCluster ? await privateCluster() : sharedCluster();
  if (options.privateCluster) log(`private cluster on 127.0.0.1:${cluster.target.port}`);
  const db = await createTestDatabase(cluster.target, { logical: true }).catch(async (error: unknown) => {
    await cluster.remove();
    throw error;
  });
  const schema = 'public';
  const slot = `gridpulse_outbox_${db.name}_${schema}`.slice(0, 63);
  const folder = mkdtempSync(join(tmpdir(), 'gp-outbox-crash-'));
  const sinkFile = join(folder, 'received.txt');
  writeFileSync(sinkFile, '');
  const store = createPostgresStore({ url: db.url, schema });
  const relay: RelaySupervisor = new RelaySupervisor([db.url, schema, sinkFile, '0', '--heartbeat-ms', String(options.heartbeatMs), ...(options.fsync ? ['--fsync'] : [])], join(folder, 'relay.log'));
  let restarts = 0;
  // Interrupted: no relay child or private cluster is left behind.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      void relay
        .stop()
        .then(() => cluster.remove())
        .finally(() => process.exit(130));
    });
  }
  try {
    await store.ready();
    const startWal = (await db.query<{ at: string }>('SELECT pg_current_wal_lsn()::text AS at'))[0]?.at ?? '0/0';
    relay.run();
    if (!(await relay.waitStarted(60_000))) throw new Error(`the relay child did not start: ${relay.lastErrors()}`);

    // The writer: batches of 1..batchMax transitions, each batch written again after any failure
    // (a restart) until it commits; a failed commit may have committed, and writing it again is a
    // no-op for what is already there (transition ids are unique), so nothing is written twice.
    const events = plannedEvents(options);
    const chaosMs = (options.kills + options.restarts) * ((options.gapMinMs + options.gapMaxMs) / 2) + options.kills * 1_200 + options.restarts * 3_000;
    const rate = options.rate > 0 ? options.rate : Math.max(1, options.transitions / Math.max(1, (0.8 * chaosMs) / 1000));
    log(`writing at about ${Math.round(rate)} transitions per second`);
    const writeStart = Date.now();
    let writeFailures = 0;
    let written = 0;
    const writer = (async () => {
      for (let at = 0; at < events.length; ) {
        const batch = events.slice(at, at + between(1, options.batchMax));
        const due = writeStart + (at / rate) * 1000;
        if (due > Date.now()) await sleep(due - Date.now());
        for (;;) {
          try {
            await store.writeAlertEvents(batch);
            break;
          } catch (error) {
            writeFailures += 1;
            if (writeFailures % 10 === 1) log(`write failed (${writeFailures} so far), retrying: ${(error as Error).message.slice(0, 160)}`);
            await sleep(100);
          }
        }
        at += batch.length;
        written = at;
      }
    })();

    // The chaos: kills and restarts in a random order, a random gap before each; a kill's gap counts
    // from when the relay child relays (so each one hits a relay mid-stream, not one still starting).
    const plan: Array<'kill' | 'restart'> = [...Array<'kill'>(options.kills).fill('kill'), ...Array<'restart'>(options.restarts).fill('restart')];
    for (let at = plan.length - 1; at > 0; at--) {
      const other = Math.floor(random() * (at + 1));
      [plan[at], plan[other]] = [plan[other] as 'kill' | 'restart', plan[at] as 'kill' | 'restart'];
    }
    for (const step of plan) {
      if (step === 'kill') {
        if (!(await relay.waitStarted(120_000))) throw new Error(`no relay child running to kill: ${relay.lastErrors()}`);
        await sleep(between(options.gapMinMs, options.gapMaxMs));
        await relay.kill();
        log(`SIGKILL ${relay.kills}/${options.kills} (written ${written}, received ${readSink(sinkFile).length})`);
      } else {
        // A relay that streams, so it is the relay that must reconnect (not a fresh one that starts after).
        if (!(await relay.waitStarted(120_000))) throw new Error(`no relay child running: ${relay.lastErrors()}`);
        await sleep(between(options.gapMinMs, options.gapMaxMs));
        await cluster.restart();
        restarts += 1;
        log(`PostgreSQL restarted in immediate mode ${restarts}/${options.restarts} (written ${written})`);
      }
    }
    await writer;
    log(`writer done: ${written} transitions, ${writeFailures} failed attempts retried; draining`);

    // Drain: every committed outbox row reached the sink and is marked delivered.
    const committedCount = async (): Promise<{ all: number; pending: number }> => {
      const rows = await db.query<{ all: number; pending: number }>('SELECT count(*)::int AS all, count(*) FILTER (WHERE delivered_at IS NULL)::int AS pending FROM alert_outbox');
      return rows[0] ?? { all: 0, pending: 0 };
    };
    const deadline = Date.now() + options.drainTimeoutMs;
    let lastReport = 0;
    let progress = { at: Date.now(), mark: '' };
    let drained = true;
    for (;;) {
      const counts = await committedCount();
      const distinct = new Set(readSink(sinkFile).map((delivery) => delivery.id)).size;
      if (counts.pending === 0 && distinct >= counts.all) break;
      const mark = `${distinct}/${counts.pending}`;
      if (mark !== progress.mark) progress = { at: Date.now(), mark };
      // Every row received, some not marked for a while: marks commit with synchronous_commit off, so
      // an immediate restart may lose some after the slot's position past them was saved; those rows
      // were delivered (the receiver has them) and are not streamed again. Counted, not waited for.
      if (distinct >= counts.all && Date.now() - progress.at > UNMARKED_SETTLE_MS) break;
      // No progress for a while, or too long altogether: judge what there is (the checks say what is missing).
      if (Date.now() - progress.at > STALL_MS || Date.now() > deadline) {
        log(`the relay did not drain: ${distinct} of ${counts.all} received, ${counts.pending} not marked, no progress for ${Date.now() - progress.at} ms; ${relay.lastErrors()}`);
        drained = false;
        break;
      }
      if (Date.now() - lastReport > 10_000) {
        lastReport = Date.now();
        log(`draining: ${distinct} of ${counts.all} received, ${counts.pending} not marked`);
      }
      await sleep(500);
    }
    const drainedAt = Date.now();

    // Idle: nothing more for the outbox, but WAL from elsewhere (4 MB of an unrelated table) and
    // checkpoints (each logs the running transactions, which is what lets restart_lsn move). The
    // relay's heartbeat alone must keep the slot from holding that WAL, or the run's.
    const endWal = (await db.query<{ at: string }>('SELECT pg_current_wal_lsn()::text AS at'))[0]?.at ?? '0/0';
    const runWal = Number((await db.query<{ bytes: string }>('SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::text AS bytes', [endWal, startWal]))[0]?.bytes ?? 0);
    const atDrain = await retained(db, slot);
    await db.query('CREATE TABLE idle_unrelated (id int, filler text)');
    await db.query(`INSERT INTO idle_unrelated SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g`);
    await db.query('CHECKPOINT');
    const samples: Array<{ restart: number; confirmed: number }> = [];
    const idleEnds = Date.now() + options.idleMs;
    let checkpointed = false;
    while (Date.now() < idleEnds) {
      await sleep(250);
      const left = idleEnds - Date.now();
      if (!checkpointed && left < options.idleMs / 2) {
        await db.query('CHECKPOINT');
        checkpointed = true;
      }
      // The first heartbeat periods after the unrelated writes are the slot catching up: judged from
      // the second half of the idle period on.
      const sample = await retained(db, slot);
      if (sample !== undefined && left < options.idleMs / 2) samples.push(sample);
    }
    const maxRetained = samples.length === 0 ? Number.NaN : Math.max(...samples.map((sample) => sample.restart));
    const maxConfirmedLag = samples.length === 0 ? Number.NaN : Math.max(...samples.map((sample) => sample.confirmed));

    // The checks.
    const committed = await db.query<{ id: string; alert_id: string; seq: number }>('SELECT id, alert_id, seq FROM alert_outbox');
    const unmarked = (await committedCount()).pending;
    const transitionRows = (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM alert_transitions'))[0]?.n ?? 0;
    const deliveries = readSink(sinkFile);
    const received = new Set(deliveries.map((delivery) => delivery.id));
    const committedIds = new Set(committed.map((row) => row.id));
    const missing = committed.filter((row) => !received.has(row.id)).length;
    const unexpected = [...received].filter((id) => !committedIds.has(id)).length;
    const notWritten = events.filter((event) => !committedIds.has(event.transition.id)).length;
    // Order per alert, in first-delivery order (what a receiver that deduplicates by id keeps).
    const lastSeq = new Map<string, number>();
    const seen = new Set<string>();
    let orderViolations = 0;
    const violationExamples: string[] = [];
    for (const delivery of deliveries) {
      if (seen.has(delivery.id)) continue;
      seen.add(delivery.id);
      const before = lastSeq.get(delivery.alert) ?? 0;
      if (delivery.seq <= before) {
        orderViolations += 1;
        if (violationExamples.length < 3) violationExamples.push(`${delivery.id} after #${before}`);
      }
      lastSeq.set(delivery.alert, Math.max(before, delivery.seq));
    }

    const figures: Array<[string, string | number]> = [
      ['seed', options.seed],
    ['server', `127.0.0.1:${cluster.target.port}${options.privateCluster ? ' (private cluster)' : ''}`],
      ['transitions', committed.length],
      ['transition rows', transitionRows],
      ['alerts', options.alerts],
      ['kills', relay.kills],
      ['restarts', restarts],
      ['relay runs', relay.runs],
      ['relay errors reported', relay.relayErrors],
      ['write failures retried', writeFailures],
      ['published', deliveries.length],
      ['duplicates', deliveries.length - received.size],
      ['published after dedup', received.size],
      ['missing', missing],
      ['unexpected', unexpected],
      ['not committed', notWritten],
      ['order violations', orderViolations],
      ['delivered but not marked', unmarked],
      ['WAL written during run', `${runWal} bytes`],
      ['retained WAL at drain', `${atDrain?.restart ?? Number.NaN} bytes`],
      ['max retained WAL idle', `${maxRetained} bytes`],
      ['max unconfirmed WAL idle', `${maxConfirmedLag} bytes`],
      ['bound', `${options.maxRetainedBytes} bytes`],
      ['run seconds', ((drainedAt - began) / 1000).toFixed(1)],
    ];
    for (const [name, value] of figures) console.log(`${name}: ${value}`);

    const failures: string[] = [];
    if (committed.length !== options.transitions) failures.push(`${committed.length} outbox rows committed, expected ${options.transitions}`);
    if (transitionRows !== committed.length) failures.push(`${transitionRows} transition rows but ${committed.length} outbox rows`);
    if (notWritten > 0) failures.push(`${notWritten} planned transitions never committed`);
    if (missing > 0) failures.push(`${missing} committed transitions never published`);
    if (unexpected > 0) failures.push(`${unexpected} published ids that were never committed`);
    if (orderViolations > 0) failures.push(`${orderViolations} order violations (${violationExamples.join(', ')})`);
    if (!drained) failures.push('the relay did not drain');
    if (relay.kills !== options.kills) failures.push(`${relay.kills} kills, expected ${options.kills}`);
    if (restarts !== options.restarts) failures.push(`${restarts} restarts, expected ${options.restarts}`);
    if (!(maxRetained <= options.maxRetainedBytes)) failures.push(`the idle slot retained ${maxRetained} bytes of WAL, bound ${options.maxRetainedBytes}`);
    console.log(failures.length === 0 ? 'result: PASS' : `result: FAIL (${failures.join('; ')})`);
    return failures.length === 0 ? 0 : 1;
  } finally {
    await relay.stop();
    await store.close().catch(() => undefined);
    if (options.keep) log(`kept database ${db.name} and ${sinkFile}`);
    else {
      await db.drop().catch((error: unknown) => log(`could not drop ${db.name}: ${(error as Error).message}`));
      rmSync(folder, { recursive: true, force: true });
      await cluster.remove();
    }
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`outbox-crash: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    console.log('result: FAIL (harness error)');
    process.exit(2);
  },
);
