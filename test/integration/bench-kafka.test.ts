// `gridpulse bench --kafka` at a small size against a Kafka test broker of its own (scripts/servers.sh
// start kafka) and PostgreSQL (scripts/servers.sh start postgres): the output's structure, every store
// holding every reading afterwards, the scratch databases gone, and clear errors for bad flags.
// No timing is asserted: the figures themselves are the bench's business (README, Performance).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPrivateKafka, type PrivateKafka } from '../helpers/kafka-processes.js';
import { runNode } from '../helpers/run-node.js';
import { pgAdmin, PG_SERVER } from '../helpers/servers.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const brokerDir = mkdtempSync(join(tmpdir(), 'gp-bench-kafka-test-'));
let broker: PrivateKafka | undefined;
let kafkaUrl = '';

after(() => {
  broker?.stop();
  rmSync(brokerDir, { recursive: true, force: true });
});

const bench = (args: readonly string[]): ReturnType<typeof runNode> => runNode([MAIN, 'bench', ...args]);

async function benchDatabases(): Promise<string[]> {
  const rows = await pgAdmin<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE 'gp_bench_kafka_%'`);
  return rows.map((row) => row.datname);
}

interface Row {
  label: string;
  store: string;
  processes: number;
  seconds: number;
  readingsPerSecond: number;
  vsBare: number;
  stored: number;
}

before(async () => {
  broker = startPrivateKafka(brokerDir);
  kafkaUrl = broker.url;
  await pgAdmin('SELECT 1');
});

test('bench --kafka --json: bare consume, DuckDB with 1 process and PostgreSQL with 1 and 2 processes, each store holding every reading', { timeout: 300_000 }, async () => {
  const databasesBefore = await benchDatabases();
  const { code, stdout, stderr } = await bench(['--kafka', kafkaUrl, '--readings', '12000', '--meters', '150', '--bench-store', PG_SERVER, '--json']);
  const context = `\n--- stdout\n${stdout}\n--- stderr (last 3000 characters)\n${stderr.slice(-3000)}`;
  assert.equal(code, 0, `the bench exits 0${context}`);
  const result = JSON.parse(stdout) as { readings: number; meters: number; topic: string; partitions: number; compressedBytes: number; rows: Row[]; skipped?: string };
  assert.equal(result.readings, 12000);
  assert.equal(result.meters, 150);
  assert.match(result.topic, /^gridpulse-bench-/);
  assert.ok(result.partitions >= 1, context);
  assert.ok(result.compressedBytes > 0, context);
  assert.equal(result.skipped, undefined, `nothing skipped with --bench-store${context}`);
  assert.deepEqual(
    result.rows.map((row) => [row.label, row.store, row.processes]),
    [
      ['bare consume', 'none', 1],
      ['duckdb, 1 process', 'duckdb', 1],
      ['postgres, 1 process', 'postgres', 1],
      ['postgres, 2 processes', 'postgres', 2],
    ],
    context,
  );
  for (const row of result.rows) {
    assert.equal(row.stored, 12000, `${row.label}: every reading parsed or stored${context}`);
    assert.ok(row.seconds > 0 && Number.isFinite(row.readingsPerSecond) && row.readingsPerSecond > 0, `${row.label}: a rate${context}`);
    assert.ok(Math.abs(row.vsBare - row.readingsPerSecond / result.rows[0]!.readingsPerSecond) < 1e-9, `${row.label}: compared with the bare consume rate of the same run${context}`);
  }
  assert.deepEqual(await benchDatabases(), databasesBefore, 'the scratch databases are dropped');
});

test('bench --kafka without --bench-store: a table with the bare consume and DuckDB rows, and says PostgreSQL was skipped', { timeout: 180_000 }, async () => {
  const { code, stdout, stderr } = await bench(['--kafka', kafkaUrl, '--readings', '3000', '--meters', '50']);
  const context = `\n--- stdout\n${stdout}\n--- stderr (last 2000 characters)\n${stderr.slice(-2000)}`;
  assert.equal(code, 0, context);
  assert.match(stdout, /^input +3,000 readings, 50 meters, topic gridpulse-bench-\S+ \(\d+ partitions, /m, context);
  assert.match(stdout, /^bare consume +\S+( [kM])? +\d+\.\d\d +100\.0% +3,000$/m, context);
  assert.match(stdout, /^duckdb, 1 process +\S+( [kM])? +\d+\.\d\d +\d+\.\d% +3,000$/m, context);
  assert.match(stdout, /^postgres +skipped: no --bench-store postgres:\/\/user@host:port given$/m, context);
  assert.doesNotMatch(stdout, /^postgres, /m, context);
});

test('bench --kafka: bad --kafka and --bench-store URLs are refused, naming the flag', { timeout: 60_000 }, async () => {
  const badKafka = await bench(['--kafka', 'http://127.0.0.1:9092', '--readings', '10']);
  assert.notEqual(badKafka.code, 0);
  assert.match(badKafka.stderr, /--kafka: expected kafka:\/\/host:port/, badKafka.stderr);
  const badStore = await bench(['--kafka', kafkaUrl, '--readings', '10', '--bench-store', `${PG_SERVER}/somedb`]);
  assert.notEqual(badStore.code, 0);
  assert.match(badStore.stderr, /--bench-store: expected a PostgreSQL server as postgres:\/\/user@host:port \(no database/, badStore.stderr);
});
