// The Kafka alert channel against the project's Kafka-protocol test broker (librdkafka's mock
// cluster, `scripts/servers.sh start kafka`): every transition routed to the channel arrives on the
// topic keyed by its id, with the id in the `gridpulse-id` header and the generic JSON body, the
// transitions of one alert in order; a channel configured in alerts.delivery takes only what its
// route matches; a broker that is down makes the notification retry and end as a dead letter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { createAlertDelivery, createAlertRouter, createDeliveryWorker, createKafkaChannel } from '../../src/alerts/index.js';
import { alertKafkaConnector } from '../../src/cli/alert-kafka.js';
import { parseConfig } from '../../src/config/index.js';
import { createKafkajsClient } from '../../src/log/index.js';
import type { AlertEvent } from '../../src/model/index.js';
import { testKafkaUrl } from '../helpers/kafka-processes.js';
import { alertEvents } from '../unit/alerts-delivery-harness.js';

const HINT = 'start it with scripts/servers.sh start kafka';
const RUN = `gp-alerts-${process.pid}-${Date.now()}`;

/** The test broker's bootstrap list (host:port,…); throws saying how to start it when there is none. */
const bootstrap = (): string => testKafkaUrl().slice('kafka://'.length);

interface Consumed {
  key: string | undefined;
  id: string | undefined;
  contentType: string | undefined;
  partition: number;
  body: { id: string; type: string; data: { alert: { id: string } } };
}

/** Every record of `topic`, read partition by partition from the start. */
async function consume(brokers: string, topic: string): Promise<Consumed[]> {
  const client = createKafkajsClient({ brokers: brokers.split(','), clientId: `${RUN}-reader`, connectionTimeoutMs: 3000, requestTimeoutMs: 10_000, retries: 2 });
  try {
    await client.connect();
    const partitions = (await client.partitionCount(topic)) ?? 0;
    const out: Consumed[] = [];
    for (let partition = 0; partition < partitions; partition++) {
      // The test broker answers a fetch with one record batch (one produce request) at a time.
      for (let offset = 0; ; ) {
        const result = await client.fetch(topic, partition, offset, { maxBytes: 1024 * 1024, maxWaitMs: 0, minBytes: 0 });
        if (result.outOfRange || result.records.length === 0) break;
        for (const record of result.records) {
          out.push({
            key: record.key?.toString(),
            id: record.headers['gridpulse-id'],
            contentType: record.headers['content-type'],
            partition,
            body: JSON.parse(record.value.toString()) as Consumed['body'],
          });
        }
        offset = (result.records.at(-1)?.offset ?? offset) + 1;
      }
    }
    return out;
  } finally {
    await client.close();
  }
}

void test('each transition reaches the Kafka topic keyed by its id, with the id in a header, in order per alert', { timeout: 60_000 }, async () => {
  const brokers = bootstrap();
  const topic = `${RUN}-all`;
  const events: AlertEvent[] = alertEvents(3);
  assert.equal(events.length, 6, 'an open and a resolve for each of 3 meters');
  const channel = createKafkaChannel({ name: 'bus', url: `kafka://${brokers}`, topic, connector: alertKafkaConnector, timeoutMs: 10_000 });
  const worker = createDeliveryWorker({ channels: [channel], router: createAlertRouter([{ channels: ['bus'] }]) });
  try {
    await worker.ready().catch((cause: unknown) => {
      throw new Error(`the Kafka test broker at ${brokers} does not answer (${(cause as Error).message}) — ${HINT}`, { cause });
    });
    for (const event of events) assert.equal(worker.submit(event).accepted, true);
    // A repeat (a replay after a restart) carries the same key: consumers drop it by key.
    worker.submit(events[0]!);
    await worker.idle();
    assert.deepEqual(worker.metrics().bus, { delivered: 7, retried: 0, failed: 0, deadLettered: 0, rejected: 0, redelivered: 0, queued: 0, disabled: undefined });
  } finally {
    await worker.close();
  }
  const records = await consume(brokers, topic);
  assert.equal(records.length, 7);
  for (const record of records) {
    assert.equal(record.key, record.id, 'the key is the notification id');
    assert.equal(record.body.id, record.id, 'the body carries the same id');
    assert.equal(record.contentType, 'application/json');
  }
  const deduplicated = [...new Set(records.map((r) => r.key))].sort();
  assert.deepEqual(deduplicated, events.map((e) => e.transition.id).sort(), 'every transition, once after deduplication by key');
  for (const event of events) {
    const ofAlert = records.filter((r) => r.body.data.alert.id === event.alert.id);
    assert.equal(new Set(ofAlert.map((r) => r.partition)).size, 1, 'one alert, one partition');
    const kinds = ofAlert.map((r) => r.body.type);
    assert.equal(kinds.indexOf('alert.open') < kinds.indexOf('alert.resolve'), true, `open before resolve, got ${kinds.join(', ')}`);
  }
});

void test('a kafka channel configured in alerts.delivery takes what its route matches: only the opens', { timeout: 60_000 }, async () => {
  const brokers = bootstrap();
  const topic = `${RUN}-opens`;
  const dir = mkdtempSync(join(tmpdir(), 'gp-kafka-channel-'));
  const { config, issues } = parseConfig({
    dataDir: dir,
    alerts: {
      delivery: {
        deadLetters: 'memory',
        channels: { bus: { type: 'kafka', url: `kafka://${brokers}`, topic, timeout: '10s', retry: { attempts: 3, baseDelay: '10ms', maxDelay: '100ms' } } },
        routes: [{ name: 'opens', match: { kinds: ['open'] }, channels: ['bus'] }],
      },
    },
  });
  assert.deepEqual(issues, []);
  const events = alertEvents(2);
  const delivery = createAlertDelivery(config!.alerts.delivery, { dataDir: dir, kafka: alertKafkaConnector });
  try {
    await delivery.ready();
    for (const event of events) delivery.submit(event);
    await delivery.idle();
  } finally {
    await delivery.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const records = await consume(brokers, topic);
  assert.deepEqual(records.map((r) => r.key).sort(), events.filter((e) => e.transition.kind === 'open').map((e) => e.transition.id).sort());
  assert.ok(records.every((r) => r.body.type === 'alert.open'));
});

void test('a broker that does not answer: the notification is retried, then kept as a dead letter with the reason', { timeout: 60_000 }, async () => {
  // A port nobody listens on: take a free one and close it again.
  const port = await new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port: free } = server.address() as { port: number };
      server.close(() => resolve(free));
    });
  });
  const channel = createKafkaChannel({
    name: 'down',
    url: `kafka://127.0.0.1:${port}`,
    topic: `${RUN}-down`,
    connector: alertKafkaConnector,
    timeoutMs: 1000,
    retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 20 },
  });
  const worker = createDeliveryWorker({ channels: [channel], router: createAlertRouter([{ channels: ['down'] }]) });
  const [event] = alertEvents(1);
  try {
    await worker.ready();
    worker.submit(event!);
    await worker.idle();
    const [dead] = await worker.listDeadLetters();
    assert.equal(dead?.transitionId, event!.transition.id);
    assert.equal(dead?.attempts, 2);
    assert.match(dead?.reason ?? '', /gave up after 2 attempts: Kafka produce to kafka:\/\/127\.0\.0\.1:\d+ .*-down/);
    assert.equal(worker.metrics().down?.retried, 1);
  } finally {
    await worker.close();
  }
});
