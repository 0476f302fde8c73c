// `gridpulse bench --kafka kafka://…`: end-to-end readings/s from a Kafka topic through
// `gridpulse process` (engine, detectors, alerts, store writes, checkpoints) into a store, beside the
// bare consume rate of the same topic (a kafkajs consumer that only parses each message), all
// measured in one run on one topic produced once.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { Kafka } from 'kafkajs';
import { parseKafkaUrl, partitionOfKey } from '../../log/index.js';
import { GpError } from '../../model/index.js';
import { createStore, redactUrl } from '../../stores/index.js';
import { formatRate } from '../format.js';
import { generateBenchInput } from './bench.js';

export interface KafkaBenchOptions {
  /** `kafka://host:port[,host:port...]`. */
  kafka: string;
  readings: number;
  meters: number;
  intervalMs: number;
  seed: number;
  /** A PostgreSQL server (`postgres://user@host:port`) for scratch databases; without it the PostgreSQL runs are skipped. */
  postgres?: string | undefined;
}

export interface KafkaBenchRow {
  /** What ran: `bare consume`, or the store and the number of `gridpulse process` members. */
  label: string;
  store: 'none' | 'duckdb' | 'postgres';
  processes: number;
  seconds: number;
  readingsPerSecond: number;
  /** Against the bare consume rate of the same run. */
  vsBare: number;
  /** Readings the store holds afterwards (the bare consumer: messages parsed). */
  stored: number;
}

export interface KafkaBenchResult {
  readings: number;
  meters: number;
  topic: string;
  partitions: number;
  /** Estimated bytes on the broker (gzip-compressed batches). */
  compressedBytes: number;
  produceSeconds: number;
  rows: KafkaBenchRow[];
  /** Why the PostgreSQL runs did not run, when they did not. */
  skipped?: string;
}

/** Readings per produce request; each partition's share is one gzip-compressed record batch. */
const CHUNK = 8000;
const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'main.js');

function kafkajsModule(): typeof import('kafkajs') {
  return createRequire(import.meta.url)('kafkajs') as typeof import('kafkajs');
}

/**
 * Produces the readings once to a new topic (keyed by meter, gzip-compressed batches: the Kafka
 * test broker keeps about 5 MB per partition), then measures in turn: a bare kafkajs consumer that
 * only parses, `gridpulse process --until-end` into DuckDB (1 process), and with `postgres` into
 * scratch PostgreSQL databases with 1 and 2 processes. Each measurement has its own consumer group
 * and store; each engine run is timed from the first partition assignment to the last process's
 * end (every open window emitted, the store flushed, checkpoints written), and checked afterwards:
 * the store must hold every reading.
 *
 * @example
 * const result = await runKafkaBench({ kafka: 'kafka://127.0.0.1:9092', readings: 400_000, meters: 10_000, intervalMs: 10_000, seed: 1 });
 * console.log(formatKafkaBench(result));
 */
export async function runKafkaBench(options: KafkaBenchOptions, log: (line: string) => void = () => {}): Promise<KafkaBenchResult> {
  const { brokers } = parseKafkaUrl(options.kafka, '--kafka');
  if (options.readings < 1) throw new GpError('GP_INPUT_INVALID', `--readings: expected at least 1 reading, got ${options.readings}`, { field: 'readings' });
  const postgres = options.postgres?.trim().replace(/\/$/, '');
  if (postgres !== undefined && !/^postgres(ql)?:\/\/[^/?]+$/i.test(postgres)) {
    throw new GpError('GP_INPUT_INVALID', `--bench-store: expected a PostgreSQL server as postgres://user@host:port (no database: the bench creates scratch databases), got ${JSON.stringify(redactUrl(postgres))}`, { field: 'bench-store' });
  }
  const kafkajs = kafkajsModule();
  const kafka = new kafkajs.Kafka({ brokers, clientId: 'gridpulse-bench', logLevel: kafkajs.logLevel.NOTHING, connectionTimeout: 3000 });
  const run = `${Date.now()}-${process.pid}`;
  const topic = `gridpulse-bench-${run}`;
  const dir = mkdtempSync(join(tmpdir(), 'gp-bench-kafka-'));
  const databases: string[] = [];
  try {
    log(`generating ${options.readings.toLocaleString('en')} readings over ${options.meters.toLocaleString('en')} meters …`);
    const lines = generateBenchInput({ readings: options.readings, meters: options.meters, intervalMs: options.intervalMs, partitions: 4, seed: options.seed }).toString('utf8').split('\n');
    lines.pop();
    const partitions = await createTopic(kafka, topic, options.kafka);
    log(`producing them to ${topic} (${partitions} partitions) …`);
    const produceStarted = process.hrtime.bigint();
    const compressedBytes = await produce(kafka, topic, partitions, lines);
    const produceSeconds = secondsSince(produceStarted);
    await checkRetained(kafka, topic, options.readings);

    const rows: KafkaBenchRow[] = [];
    log('bare consume: a kafkajs consumer that only parses each message …');
    const bare = await bareConsume(kafka, topic, options.readings, `gridpulse-bench-bare-${run}`);
    rows.push({ label: 'bare consume', store: 'none', processes: 1, seconds: bare.seconds, readingsPerSecond: options.readings / bare.seconds, vsBare: 1, stored: bare.parsed });

    const engineRun = async (store: 'duckdb' | 'postgres', url: string, processes: number): Promise<void> => {
      const label = `${store}, ${processes} process${processes === 1 ? '' : 'es'}`;
      log(`${label}: gridpulse process --until-end …`);
      const { seconds, outputs } = await processRun({ kafka: options.kafka, topic, url, processes, group: `gridpulse-bench-${store}-${processes}-${run}`, dataDir: join(dir, `${store}-${processes}`) });
      const target = createStore(url);
      let stored: number;
      try {
        await target.ready();
        stored = (await target.counts()).readings;
      } finally {
        await target.close();
      }
      if (stored !== options.readings) {
        const members = outputs.map((output, index) => `--- member ${index + 1} (last 3000 characters)\n${output.slice(-3000)}`).join('\n');
        throw new GpError('GP_STORE_FAILED', `${label}: the store holds ${stored} readings after the run, expected ${options.readings}\n${members}`);
      }
      const rate = options.readings / seconds;
      rows.push({ label, store, processes, seconds, readingsPerSecond: rate, vsBare: rate / rows[0]!.readingsPerSecond, stored });
    };
    await engineRun('duckdb', `duckdb:${join(dir, 'bench.duckdb')}`, 1);
    let skipped: string | undefined;
    if (postgres === undefined) skipped = 'no --bench-store postgres://user@host:port given';
    else {
      for (const processes of [1, 2]) {
        const name = `gp_bench_kafka_${run.replace(/-/g, '_')}_${processes}`;
        await pgAdmin(postgres, `CREATE DATABASE ${name}`);
        databases.push(name);
        await engineRun('postgres', `${postgres}/${name}`, processes);
      }
    }
    return { readings: options.readings, meters: options.meters, topic, partitions, compressedBytes, produceSeconds, rows, ...(skipped === undefined ? {} : { skipped }) };
  } finally {
    for (const name of databases) await pgAdmin(postgres!, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

export function formatKafkaBench(r: KafkaBenchResult): string {
  const lines = [
    `input            ${r.readings.toLocaleString('en')} readings, ${r.meters.toLocaleString('en')} meters, topic ${r.topic} (${r.partitions} partitions, about ${(r.compressedBytes / 2 ** 20).toFixed(1)} MiB gzip), produced in ${r.produceSeconds.toFixed(1)} s`,
    `                        readings/s     seconds   vs bare consume   stored`,
  ];
  for (const row of r.rows) {
    lines.push(`${row.label.padEnd(22)} ${formatRate(row.readingsPerSecond).padStart(9)}   ${row.seconds.toFixed(2).padStart(9)}   ${`${(row.vsBare * 100).toFixed(1)}%`.padStart(15)}   ${row.stored.toLocaleString('en')}`);
  }
  if (r.skipped !== undefined) lines.push(`postgres                 skipped: ${r.skipped}`);
  return lines.join('\n');
}

function secondsSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

async function pgAdmin(server: string, sql: string): Promise<void> {
  const pg = (await import('pg')).default;
  const client = new pg.Client({ connectionString: `${server}/postgres` });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (cause) {
    throw new GpError('GP_UNAVAILABLE', `--bench-store: PostgreSQL at ${redactUrl(server)} does not answer: ${(cause as Error).message}`, {}, { cause });
  }
  try {
    await client.query(sql);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A new topic (created by the broker on first use, or by CreateTopics where it does not do that); its partition count. */
async function createTopic(kafka: Kafka, topic: string, url: string): Promise<number> {
  const admin = kafka.admin();
  try {
    await admin.connect();
  } catch (cause) {
    throw new GpError('GP_LOG_FAILED', `--kafka: Kafka at ${url} does not answer (${(cause as Error).message}); the test broker starts with scripts/servers.sh start kafka`, {}, { cause });
  }
  try {
    for (let attempt = 0; attempt < 20; attempt++) {
      const found = (await admin.fetchTopicMetadata({ topics: [topic] }).catch(() => undefined))?.topics[0]?.partitions.length;
      if (found !== undefined && found > 0) return found;
      if (attempt === 0) await admin.createTopics({ topics: [{ topic, numPartitions: 4 }] }).catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    throw new GpError('GP_LOG_FAILED', `--kafka: Kafka at ${url} did not create topic ${topic}`);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Appends the readings in order, keyed by meter, one gzip batch per partition and request; returns the estimated compressed bytes. */
async function produce(kafka: Kafka, topic: string, partitions: number, lines: readonly string[]): Promise<number> {
  const { CompressionTypes } = kafkajsModule();
  const producer = kafka.producer({ allowAutoTopicCreation: true, idempotent: false, maxInFlightRequests: 1 });
  await producer.connect();
  let bytes = 0;
  try {
    for (let at = 0; at < lines.length; at += CHUNK) {
      const messages = lines.slice(at, at + CHUNK).map((value) => {
        const key = value.slice(12, value.indexOf('"', 12));
        return { key, value, partition: partitionOfKey(key, partitions) };
      });
      bytes += gzipSync(messages.map((message) => message.value).join('\n')).length;
      await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages });
    }
  } finally {
    await producer.disconnect().catch(() => undefined);
  }
  return bytes;
}

/** Every reading is still on the broker: none trimmed by its retention, none appended twice. */
async function checkRetained(kafka: Kafka, topic: string, readings: number): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    const held = offsets.reduce((sum, { low, high }) => sum + Number(high) - Number(low), 0);
    if (held !== readings) {
      throw new GpError(
        'GP_LOG_GAP',
        `--readings: topic ${topic} holds ${held} of the ${readings} readings produced (the broker's retention trimmed it: the Kafka test broker keeps about 5 MB per partition); give fewer --readings`,
        { held, readings },
      );
    }
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** The baseline: a consumer in a group of its own that JSON.parses each message; timed from joining the group to the last message. */
async function bareConsume(kafka: Kafka, topic: string, readings: number, group: string): Promise<{ seconds: number; parsed: number }> {
  const consumer = kafka.consumer({ groupId: group });
  let joined: bigint | undefined;
  let parsed = 0;
  let checksum = 0;
  let resolveDone: (seconds: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => (resolveDone = resolve));
  consumer.on(consumer.events.GROUP_JOIN, () => {
    joined ??= process.hrtime.bigint();
  });
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) {
          checksum += (JSON.parse(message.value === null ? 'null' : message.value.toString('utf8')) as { usageKw: number }).usageKw;
          parsed++;
        }
        if (parsed >= readings) resolveDone(secondsSince(joined ?? process.hrtime.bigint()));
        await Promise.resolve();
      },
    });
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new GpError('GP_LOG_FAILED', `bare consume: ${parsed} of ${readings} messages after 10 minutes`)), 600_000).unref());
    const seconds = await Promise.race([done, timeout]);
    if (!Number.isFinite(checksum)) throw new GpError('GP_INTERNAL', 'bare consume: a message without a numeric usageKw');
    return { seconds, parsed };
  } finally {
    await consumer.disconnect().catch(() => undefined);
  }
}

interface ProcessRunOptions {
  kafka: string;
  topic: string;
  url: string;
  processes: number;
  group: string;
  dataDir: string;
}

/**
 * `processes` × `gridpulse process --until-end` of one group, started together; seconds from the
 * first assignment of a partition to the end of the last one, and what each member printed. A
 * process that fails fails the bench.
 */
async function processRun(options: ProcessRunOptions): Promise<{ seconds: number; outputs: string[] }> {
  // From dist/ the compiled CLI; from src/ (through tsx) the TypeScript one.
  const entry = MAIN.includes('/src/') ? ['--import', 'tsx', MAIN.replace(/\.js$/, '.ts')] : [MAIN];
  let firstAssigned: bigint | undefined;
  const runs = Array.from({ length: options.processes }, (_, index) => {
    const child = spawn(
      process.execPath,
      [
        ...entry,
        'process',
        '--log',
        options.kafka,
        '--store',
        options.url,
        '--group',
        options.group,
        '--streams',
        'power',
        '--topic',
        `power=${options.topic}`,
        '--data-dir',
        join(options.dataDir, String(index)),
        '--until-end',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_NO_WARNINGS: '1' } },
    );
    let output = '';
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (firstAssigned === undefined && /assigned [^\n]*\/\d+[^\n]* \(group /.test(output)) firstAssigned = process.hrtime.bigint();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    return new Promise<{ end: bigint; output: string }>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', (code, signal) => {
        if (code === 0) resolve({ end: process.hrtime.bigint(), output });
        else reject(new GpError('GP_INTERNAL', `gridpulse process (${options.group}, member ${index + 1}) exited with ${String(code ?? signal)}:\n${output.slice(-2000)}`));
      });
    });
  });
  const ends = await Promise.all(runs);
  const last = ends.reduce((a, b) => (a > b.end ? a : b.end), 0n);
  if (firstAssigned === undefined) throw new GpError('GP_INTERNAL', `gridpulse process (${options.group}) never logged a partition assignment`);
  return { seconds: Number(last - firstAssigned) / 1e9, outputs: ends.map((run) => run.output) };
}
