// The Kafka log against the project's Kafka-protocol test broker (librdkafka's mock cluster through
// kcat, started by `scripts/servers.sh start kafka`): the Log conformance suite, then what only Kafka
// has. The mock cluster auto-creates a topic with 4 partitions on first use and has no CreateTopics,
// so every test uses topics of its own named after this run, and asks for 4 partitions.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { GpError, STAT_NAMES, STATS_PER_METRIC, opsEvent, type AlertEvent } from '../../src/model/index.js';
import { createKafkaLog, createKafkaSink, createKafkajsClient, partitionOfKey, type KafkaLog } from '../../src/log/index.js';
import { logConformance, PARTITIONS, readAll } from '../helpers/log-conformance.js';

const RUN = `gptest-${process.pid}-${Date.now()}`;
const KAFKA_DIR = process.env.GP_KAFKA_DIR ?? '/tmp/gridpulse-kafka';
const HINT = 'start it with scripts/servers.sh start kafka';

/** The test broker's bootstrap list: GP_KAFKA_BOOTSTRAP, else the file `scripts/servers.sh start kafka` writes. */
function bootstrap(): string {
  const fromEnvironment = process.env.GP_KAFKA_BOOTSTRAP?.trim();
  if (fromEnvironment) return fromEnvironment;
  const file = `${KAFKA_DIR}/bootstrap`;
  const recorded = existsSync(file) ? readFileSync(file, 'utf8').trim() : '';
  if (recorded === '') throw new Error(`no Kafka test broker: neither GP_KAFKA_BOOTSTRAP nor ${file} is set — ${HINT}`);
  return recorded;
}

let reachable: Promise<string> | undefined;
/** The bootstrap list once a broker answered; a test fails with the way to start the broker when none does. */
function brokers(): Promise<string> {
  reachable ??= (async () => {
    const list = bootstrap();
    const probe = createKafkaLog({ brokers: list, topic: `${RUN}-probe`, retries: 0, connectionTimeoutMs: 2000 });
    try {
      await probe.ready();
    } catch (cause) {
      throw new Error(`the Kafka test broker at ${list} does not answer (${(cause as Error).message}) — ${HINT}`, { cause });
    } finally {
      await probe.close();
    }
    return list;
  })();
  return reachable;
}

function topicOf(name: string): string {
  return `${RUN}-${name}`;
}

logConformance({
  name: 'Kafka (test broker)',
  open: async (name) => {
    const list = await brokers();
    const topic = topicOf(name);
    return {
      log: createKafkaLog({ brokers: list, topic, partitions: PARTITIONS }),
      reopen: ({ consumers }) => createKafkaLog({ brokers: list, topic, partitions: PARTITIONS, consumers }),
    };
  },
});

describe('Kafka log: what only Kafka has', () => {
  async function openLog(name: string, extra: { consumers?: string[] } = {}): Promise<KafkaLog> {
    const log = createKafkaLog({ brokers: await brokers(), topic: topicOf(name), partitions: PARTITIONS, ...extra });
    await log.ready();
    return log;
  }

  test('another producer’s keyed records (kafkajs default partitioner) land where partitionOfKey says', async () => {
    const require = createRequire(import.meta.url);
    const { Kafka, Partitioners, logLevel } = require('kafkajs') as typeof import('kafkajs');
    const topic = topicOf('foreign-producer');
    const log = await openLog('foreign-producer');
    const kafka = new Kafka({ brokers: (await brokers()).split(','), logLevel: logLevel.NOTHING });
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    const keys = [...Array.from({ length: 300 }, (_, index) => `machine-${index}`), 'zähler-1', '電力-7', '', 'm'];
    try {
      await producer.connect();
      await producer.send({ topic, acks: -1, messages: keys.map((key) => ({ key, value: `from kafkajs ${key}` })) });
      const where = new Map<string, number>();
      for (let partition = 0; partition < PARTITIONS; partition++) {
        for (const record of (await readAll(log, partition)).records) where.set(record.key as string, partition);
      }
      assert.equal(where.size, keys.length, 'every record was read back');
      for (const key of keys) assert.equal(where.get(key), partitionOfKey(key, PARTITIONS), `key ${JSON.stringify(key)}`);
    } finally {
      await producer.disconnect();
      await log.close();
    }
  });

  test('librdkafka’s murmur2 partitioner (kcat) puts keyed records where partitionOfKey says', async () => {
    const topic = topicOf('kcat-producer');
    const log = await openLog('kcat-producer');
    const keys = [...Array.from({ length: 200 }, (_, index) => `meter-${index}`), 'zähler-1', '電力-7'];
    try {
      await new Promise<void>((resolve, reject) => {
        const child = execFile(
          'kcat',
          ['-P', '-b', bootstrap(), '-t', topic, '-K', '\t', '-X', 'topic.partitioner=murmur2_random', '-X', 'request.required.acks=-1'],
          { timeout: 20_000 },
          (error) => (error === null ? resolve() : reject(new Error(`kcat failed: ${error.message}`, { cause: error }))),
        );
        child.stdin?.end(keys.map((key) => `${key}\tfrom kcat`).join('\n') + '\n');
      });
      const where = new Map<string, number>();
      for (let partition = 0; partition < PARTITIONS; partition++) {
        for (const record of (await readAll(log, partition)).records) where.set(record.key as string, partition);
      }
      assert.equal(where.size, keys.length, 'every record was read back');
      for (const key of keys) assert.equal(where.get(key), partitionOfKey(key, PARTITIONS), `key ${JSON.stringify(key)}`);
    } finally {
      await log.close();
    }
  });

  test('a record another writer appends wakes a waitFor (a long poll on the broker) and moves endOffset', async () => {
    const reader = await openLog('other-writer');
    const writer = await openLog('other-writer');
    try {
      assert.equal(reader.endOffset(3), 0);
      const started = Date.now();
      const waiting = reader.waitFor(3, 0, 15_000);
      setTimeout(() => void writer.append([{ partition: 3, value: 'from the other writer' }]), 300);
      assert.equal(await waiting, true);
      assert.ok(Date.now() - started < 5000, `woken within a long poll, not at the 15 s timeout (${Date.now() - started} ms)`);
      assert.equal(reader.endOffset(3), 1, 'the fetch told the reader where the partition ends');
      const { records } = await reader.read(3, 0);
      assert.equal(Buffer.from(records[0]?.value ?? []).toString(), 'from the other writer');
    } finally {
      await reader.close();
      await writer.close();
    }
  });

  test('commits are Kafka consumer-group offsets: kafkajs admin sees them, another log fetches them', async () => {
    const require = createRequire(import.meta.url);
    const { Kafka, logLevel } = require('kafkajs') as typeof import('kafkajs');
    const group = `${RUN}.engine`;
    const log = await openLog('group-offsets');
    const other = await openLog('group-offsets');
    const admin = new Kafka({ brokers: (await brokers()).split(','), logLevel: logLevel.NOTHING }).admin();
    try {
      await log.append([{ partition: 0, value: 'a' }, { partition: 0, value: 'b' }, { partition: 2, value: 'c' }]);
      await log.commit(group, 0, 2);
      await log.commit(group, 2, 1);
      await admin.connect();
      const [offsets] = await admin.fetchOffsets({ groupId: group, topics: [topicOf('group-offsets')] });
      assert.deepEqual(
        offsets?.partitions.map(({ partition, offset }) => [partition, offset]).sort((a, b) => Number(a[0]) - Number(b[0])),
        [
          [0, '2'],
          [1, '-1'],
          [2, '1'],
          [3, '-1'],
        ],
      );
      assert.equal(other.committed(group, 0), undefined, 'committed() answers from memory: not loaded yet');
      assert.equal(await other.fetchCommitted(group, 0), 2);
      assert.equal(other.committed(group, 0), 2, 'fetchCommitted fills what committed() answers');
      assert.equal(await other.fetchCommitted(group, 1), undefined);
    } finally {
      await admin.disconnect();
      await log.close();
      await other.close();
    }
  });

  test('retention is the broker’s: applyRetention removes nothing; stats count this log’s appends', async () => {
    const log = await openLog('retention');
    try {
      await log.append([{ partition: 1, value: 'x' }, { partition: 1, value: 'y' }]);
      await log.append([{ partition: 2, value: 'z' }]);
      assert.deepEqual(await log.applyRetention(), { segmentsRemoved: 0, bytesRemoved: 0, recordsRemoved: 0 });
      assert.equal((await log.read(1, 0)).records.length, 2);
      const stats = log.stats();
      assert.equal(stats.appendedRecords, 3);
      assert.equal(stats.appendedBatches, 2);
      assert.deepEqual(
        stats.partitions.map((partition) => partition.endOffset),
        [0, 2, 1, 0],
      );
    } finally {
      await log.close();
    }
  });

  test('a topic with another partition count than asked for is a config error', async () => {
    const list = await brokers();
    await (await openLog('partition-count')).close();
    const log = createKafkaLog({ brokers: list, topic: topicOf('partition-count'), partitions: 8 });
    try {
      await assert.rejects(log.ready(), (error: unknown) => {
        assert.ok(error instanceof GpError);
        assert.equal(error.code, 'GP_CONFIG_INVALID');
        assert.match(error.message, /has 4 partitions, expected 8/);
        return true;
      });
    } finally {
      await log.close();
    }
  });

  test('an unreachable broker fails ready() with GP_LOG_FAILED naming it', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const log = createKafkaLog({ brokers: `kafka://127.0.0.1:${port}`, topic: topicOf('nowhere'), retries: 0, connectionTimeoutMs: 1000 });
    const started = Date.now();
    try {
      await assert.rejects(log.ready(), (error: unknown) => {
        assert.ok(error instanceof GpError);
        assert.equal(error.code, 'GP_LOG_FAILED');
        assert.equal(error.retriable, true);
        assert.ok(error.message.includes(`127.0.0.1:${port}`), error.message);
        return true;
      });
      assert.ok(Date.now() - started < 15_000, `gave up in ${Date.now() - started} ms`);
    } finally {
      await log.close();
    }
  });
});

describe('Kafka sink: output topics', () => {
  test('aggregates, alerts, ops and audit arrive as JSON of their schema, keyed by device, with deterministic ids in gp-id', async () => {
    const list = await brokers();
    const topics = {
      aggregates: topicOf('out-aggregates'),
      powerAlerts: topicOf('out-power-alerts'),
      anomalyAlerts: topicOf('out-anomaly-alerts'),
      ops: topicOf('out-ops'),
      audit: topicOf('out-audit'),
    };
    const sink = createKafkaSink({ url: `kafka://${list}`, topics, clock: () => 1_763_900_123_000 });
    const client = createKafkajsClient({ brokers: list.split(','), clientId: 'sink-test', connectionTimeoutMs: 3000, requestTimeoutMs: 10_000, retries: 2 });
    const stats = new Array<number>(STATS_PER_METRIC).fill(Number.NaN);
    stats[STAT_NAMES.indexOf('count')] = 4;
    stats[STAT_NAMES.indexOf('avg')] = 12.5;
    const aggregate = { stream: 'power', key: 'm-7', site: 's-1', window: '1m', start: 1_763_900_040_000, end: 1_763_900_100_000, revision: 1, count: 4, metrics: ['usageKw'], stats, energyKwh: 0.21 };
    const alertOf = (stream: string, key: string): AlertEvent => ({
      alert: {
        id: `${stream}:${key}:spike:1763900040000`,
        stream,
        key,
        site: undefined,
        type: 'spike',
        metric: 'usageKw',
        severity: 'warning',
        status: 'open',
        openedAt: 1_763_900_040_000,
        updatedAt: 1_763_900_040_000,
        resolvedAt: undefined,
        score: 0.8,
        peakScore: 0.8,
        value: 40,
        findings: 1,
        explain: 'usageKw 40 > 3 x baseline 12',
      },
      transition: { id: `${stream}:${key}:spike:1763900040000#1`, alertId: `${stream}:${key}:spike:1763900040000`, seq: 1, kind: 'open', time: 1_763_900_040_000, status: 'open', severity: 'warning', score: 0.8, explain: 'opened' },
    });
    try {
      await sink.ready();
      await sink.writeAggregates([aggregate]);
      await sink.writeAlerts([alertOf('power', 'm-7'), alertOf('machines', 'machine-001')]);
      await sink.writeAlerts([alertOf('power', 'm-7')]); // written again, as after a restart: same id
      await sink.writeOps([opsEvent('too_late', 'power', 'reading 600 s behind the watermark', { key: 'm-7', time: 1_763_899_000_000, offset: 17 })]);
      await sink.writeAudit([{ stream: 'power', partition: 2, watermark: 1_763_900_000_000, maxEventTime: 1_763_900_120_000, keys: 3, readings: 90, late: 1, tooLate: 1, windowsFired: 6, windowsAmended: 1, openWindows: 3, timers: 3 }]);
      await client.connect();
      async function messagesOf(topic: string, key: string): Promise<Array<{ id: string | undefined; schema: string | undefined; key: string | undefined; json: Record<string, unknown> }>> {
        const partition = partitionOfKey(key, PARTITIONS);
        const records = [];
        // The test broker answers a fetch with one record batch (one produce request) at a time.
        for (let offset = 0; ; ) {
          const result = await client.fetch(topic, partition, offset, { maxBytes: 1024 * 1024, maxWaitMs: 0, minBytes: 0 });
          if (result.outOfRange || result.records.length === 0) break;
          records.push(...result.records);
          offset = (result.records[result.records.length - 1]?.offset ?? offset) + 1;
        }
        return records.map((record) => ({
          id: record.headers['gp-id'],
          schema: record.headers['gp-schema'],
          key: record.key?.toString(),
          json: JSON.parse(record.value.toString()) as Record<string, unknown>,
        }));
      }
      const [aggregateOut] = await messagesOf(topics.aggregates, 'm-7');
      assert.equal(aggregateOut?.id, 'power/m-7/1m/1763900040000/1');
      assert.equal(aggregateOut?.schema, 'gridpulse.aggregate/1');
      assert.equal(aggregateOut?.key, 'm-7');
      assert.deepEqual(
        { ...aggregateOut?.json, metrics: undefined },
        { schema: 'gridpulse.aggregate/1', id: 'power/m-7/1m/1763900040000/1', upsertKey: 'power/m-7/1m/1763900040000', stream: 'power', key: 'm-7', site: 's-1', window: '1m', start: 1_763_900_040_000, end: 1_763_900_100_000, revision: 1, count: 4, energyKwh: 0.21, metrics: undefined },
      );
      const usage = (aggregateOut?.json.metrics as Record<string, Record<string, number | null>>).usageKw;
      assert.equal(usage?.avg, 12.5);
      assert.equal(usage?.max, null, 'a stat without a value is null');
      const powerAlerts = await messagesOf(topics.powerAlerts, 'm-7');
      assert.deepEqual(
        powerAlerts.map((message) => message.id),
        ['power:m-7:spike:1763900040000#1', 'power:m-7:spike:1763900040000#1'],
        'a repeated write carries the same id, for consumers to drop',
      );
      const alertJson = powerAlerts[0]?.json as { schema: string; alert: Record<string, unknown>; transition: Record<string, unknown> };
      assert.equal(alertJson.schema, 'gridpulse.alert/1');
      assert.equal(alertJson.alert.site, null);
      assert.equal(alertJson.alert.resolvedAt, null);
      assert.equal(alertJson.transition.kind, 'open');
      const [machineAlert] = await messagesOf(topics.anomalyAlerts, 'machine-001');
      assert.equal(machineAlert?.id, 'machines:machine-001:spike:1763900040000#1', 'machine alerts go to the anomaly topic');
      const [ops] = await messagesOf(topics.ops, 'm-7');
      assert.equal(ops?.id, 'power/too_late/m-7/1763899000000/17');
      assert.equal(ops?.json.kind, 'too_late');
      assert.equal(ops?.json.watermark, null);
      const [audit] = await messagesOf(topics.audit, 'power/2');
      assert.equal(audit?.id, 'power/2/1763900000000');
      assert.equal(audit?.json.readings, 90);
    } finally {
      await sink.close();
      await sink.close();
      await client.close();
    }
  });
});
