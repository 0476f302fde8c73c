// The edge agent forwarding straight to Kafka (`forward.url: kafka://…`), against a Kafka test broker
// of this file's own (scripts/servers.sh start kafka through startPrivateKafka): every collected
// reading lands once in its stream's raw topic, keyed by device id, each device's in collection
// order; readings that waited in the spool arrive marked `"_backfill": true`; `gridpulse process`
// of the topic stores every forwarded reading once and reports the backfilled ones as late backfill;
// and the config refuses what Kafka forwarding cannot do.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEdgeConfig } from '../../src/config/index.js';
import { createEdgeAgent, type EdgeAgent, type EdgeStatus } from '../../src/edge/index.js';
import { createKafkaLog, partitionOfKey } from '../../src/log/index.js';
import { GpError } from '../../src/model/index.js';
import { gridpulse, query, startPrivateKafka, TestDatabases, type PrivateKafka } from '../helpers/kafka-processes.js';

const run = `${process.pid}-${Date.now()}`;
const dir = mkdtempSync(join(tmpdir(), 'gp-edge-kafka-'));
const databases = new TestDatabases(`gp_edgekafka_${run.replace(/-/g, '_')}`);
let broker: PrivateKafka | undefined;
let kafkaUrl = '';
const T0 = Date.UTC(2026, 0, 5, 8, 0, 0);
const STEP = 10_000;

before(() => {
  broker = startPrivateKafka(dir);
  kafkaUrl = broker.url;
});

after(async () => {
  broker?.stop();
  await databases.dropAll();
  rmSync(dir, { recursive: true, force: true });
});

interface TopicRecord {
  partition: number;
  offset: number;
  key: string | undefined;
  text: string;
  reading: Record<string, unknown>;
}

/** Every record of a topic, partition by partition, in offset order. */
async function readTopic(topic: string): Promise<TopicRecord[]> {
  const log = createKafkaLog({ brokers: kafkaUrl, topic });
  try {
    await log.ready();
    await log.refreshOffsets();
    const records: TopicRecord[] = [];
    for (let partition = 0; partition < log.partitions; partition++) {
      let offset = log.startOffset(partition);
      while (offset < log.endOffset(partition)) {
        const batch = await log.read(partition, offset, { maxRecords: 1000 });
        if (batch.records.length === 0) break;
        for (const record of batch.records) {
          const text = Buffer.from(record.value).toString('utf8');
          records.push({ partition, offset: record.offset, key: record.key, text, reading: JSON.parse(text) as Record<string, unknown> });
        }
        offset = batch.nextOffset;
      }
    }
    return records;
  } finally {
    await log.close();
  }
}

async function startAgent(name: string, forward: Record<string, unknown>): Promise<{ agent: EdgeAgent; http: string }> {
  const config = parseEdgeConfig({
    agent: { name: 'kafka-edge', dataDir: join(dir, name) },
    forward: { backoffMin: '50ms', backoffMax: '500ms', timeout: '5s', ...forward },
    status: { port: 0 },
    collectors: [{ type: 'http', port: 0 }],
  });
  const agent = createEdgeAgent({ config });
  await agent.start();
  const http = agent.collectors()[0]?.stats().address;
  assert.ok(http !== undefined, 'the HTTP collector listens');
  return { agent, http };
}

/** Posts readings (NDJSON) to the agent's HTTP collector; 200 means durable in the spool. The stream comes from each reading's key field. */
async function post(http: string, readings: ReadonlyArray<Record<string, unknown>>): Promise<void> {
  const response = await fetch(`${http}/v1/readings`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: readings.map((r) => JSON.stringify(r)).join('\n') });
  const text = await response.text();
  assert.equal(response.status, 200, text);
  assert.equal((JSON.parse(text) as { accepted: number }).accepted, readings.length, text);
}

async function waitUntil(check: () => boolean, what: string, agent: EdgeAgent, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}; agent status: ${JSON.stringify(agent.status().forwarder)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function meterReading(meter: string, step: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { meterId: meter, siteId: 's-1', timestamp: T0 + step * STEP, usageKw: 2 + (step % 5) * 0.1, voltage: 230, current: 9, pf: 0.97, ...extra };
}

/** A port nothing listens on (listened on, then closed). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Groups a topic's records by device: checks that the key is the device id and all of a device's records are in its partitionOfKey partition. */
function byDevice(records: readonly TopicRecord[], keyField: string, partitions: number): Map<string, TopicRecord[]> {
  const devices = new Map<string, TopicRecord[]>();
  for (const record of records) {
    const device = record.reading[keyField];
    assert.equal(typeof device, 'string', `${keyField} of ${record.text}`);
    assert.equal(record.key, device, `the record key is the device id (${record.text})`);
    assert.equal(record.partition, partitionOfKey(device as string, partitions), `${String(device)} is in the partition Kafka's default partitioner picks`);
    let list = devices.get(device as string);
    if (list === undefined) devices.set(device as string, (list = []));
    list.push(record);
  }
  return devices;
}

test('an agent forwarding to Kafka puts every collected reading once into its stream’s raw topic, keyed by device id, each device’s in collection order, and empties its spool', { timeout: 180_000 }, async () => {
  const powerTopic = `edge-power-${run}`;
  const meters = Array.from({ length: 12 }, (_, i) => `m-${i}`);
  const machines = ['machine-001', 'machine-002', 'machine-003'];
  const STEPS = 60;
  // Power goes to a topic of our own (forward.topics); machines to its default raw topic, sensor-raw-data.
  const { agent, http } = await startAgent('forward', { url: kafkaUrl, topics: { power: powerTopic } });
  try {
    // One request per tick: every meter and machine, interleaved, so batches hold several devices and both streams.
    for (let step = 0; step < STEPS; step++) {
      const tick: Array<Record<string, unknown>> = [];
      for (const meter of meters) tick.push(meterReading(meter, step, { seq: step }));
      for (const machine of machines) tick.push({ machine_id: machine, timestamp: new Date(T0 + step * STEP).toISOString(), rpm: 1500 + step, torque_nm: 40, seq: step });
      await post(http, tick);
    }
    const total = STEPS * (meters.length + machines.length);
    await waitUntil(() => agent.status().spool.unsent === 0, 'the spool to empty', agent);
    const status = agent.status();
    assert.equal(status.spool.unsent, 0);
    assert.equal(status.forwarder.forwarded, total, 'every reading acknowledged by Kafka');
    assert.equal(status.forwarder.backfilled, 0, 'readings sent at once are live');
    assert.equal(status.forwarder.retries, 0);
    assert.equal(status.forwarder.connected, true);
  } finally {
    await agent.stop();
  }

  const power = await readTopic(powerTopic);
  const sensors = await readTopic('sensor-raw-data');
  assert.equal(power.length, STEPS * meters.length, 'the power topic holds every meter reading once');
  assert.equal(sensors.length, STEPS * machines.length, 'sensor-raw-data holds every machine reading once');
  for (const [records, keyField, devices] of [
    [power, 'meterId', meters],
    [sensors, 'machine_id', machines],
  ] as const) {
    const grouped = byDevice(records, keyField, 4);
    assert.deepEqual([...grouped.keys()].sort(), [...devices].sort());
    for (const [device, list] of grouped) {
      assert.deepEqual(
        list.map((record) => record.reading.seq),
        Array.from({ length: STEPS }, (_, step) => step),
        `${device}: its readings in collection order, each once`,
      );
      assert.equal(new Set(list.map((record) => record.reading.readingId)).size, STEPS, `${device}: every reading carries an id of its own (readingId)`);
      for (const record of list) assert.equal(record.reading._backfill, undefined, `a live reading is not marked: ${record.text}`);
    }
  }
});

/**
 * Collects `spooled` steps of `meters` while the agent cannot reach Kafka (its URL names a closed
 * port), waits until they are older than backfillAfter (2 s), restarts the agent on the same spool
 * with the broker's URL, lets it drain, then collects `live` more steps.
 */
async function spoolThenForward(name: string, topic: string, meters: readonly string[], spooled: number, live: number): Promise<{ outage: EdgeStatus; final: EdgeStatus }> {
  const forward = { topics: { power: topic }, backfillAfter: '2s' };
  const down = await startAgent(name, { ...forward, url: `kafka://127.0.0.1:${await closedPort()}` });
  let outage: EdgeStatus;
  try {
    for (let step = 0; step < spooled; step++) await post(down.http, meters.map((meter) => meterReading(meter, step)));
    await waitUntil(() => down.agent.status().forwarder.retries >= 2, 'the agent to fail to reach Kafka twice', down.agent);
    outage = down.agent.status();
  } finally {
    await down.agent.stop();
  }
  const acknowledgedAt = Date.now();
  // The spooled readings must be older than backfillAfter when the next agent sends them.
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, acknowledgedAt + 2500 - Date.now())));

  const up = await startAgent(name, { ...forward, url: kafkaUrl });
  try {
    await waitUntil(() => up.agent.status().spool.unsent === 0, 'the spool to drain', up.agent);
    for (let step = spooled; step < spooled + live; step++) await post(up.http, meters.map((meter) => meterReading(meter, step)));
    await waitUntil(() => up.agent.status().spool.unsent === 0, 'the live readings to be forwarded', up.agent);
    return { outage, final: up.agent.status() };
  } finally {
    await up.agent.stop();
  }
}

test('readings that waited in the spool longer than backfillAfter reach Kafka marked "_backfill": true, readings sent at once do not', { timeout: 180_000 }, async () => {
  const topic = `edge-backfill-${run}`;
  const meters = ['m-a', 'm-b', 'm-c', 'm-d', 'm-e'];
  const SPOOLED = 10;
  const LIVE = 10;
  const { outage, final } = await spoolThenForward('backfill', topic, meters, SPOOLED, LIVE);

  // While Kafka was out of reach: nothing forwarded, the reason in /status.
  assert.equal(outage.forwarder.forwarded, 0);
  assert.equal(outage.forwarder.connected, false);
  assert.equal(outage.spool.unsent, SPOOLED * meters.length);
  assert.match(outage.forwarder.lastError ?? '', /topic edge-backfill-.*ECONNREFUSED/, 'lastError names the topic and why');
  // After: everything delivered, the spooled part counted as backfill.
  assert.equal(final.spool.unsent, 0);
  assert.equal(final.forwarder.forwarded, (SPOOLED + LIVE) * meters.length, 'the second agent forwarded what the first had spooled and what it collected');
  assert.equal(final.forwarder.backfilled, SPOOLED * meters.length);

  const records = await readTopic(topic);
  assert.equal(records.length, (SPOOLED + LIVE) * meters.length, 'each reading once');
  for (const [device, list] of byDevice(records, 'meterId', 4)) {
    assert.deepEqual(
      list.map((record) => ((record.reading.timestamp as number) - T0) / STEP),
      Array.from({ length: SPOOLED + LIVE }, (_, step) => step),
      `${device}: in collection order`,
    );
    for (const record of list) {
      const step = ((record.reading.timestamp as number) - T0) / STEP;
      if (step < SPOOLED) {
        assert.equal(record.reading._backfill, true, `spooled reading ${step} of ${device} is backfill: ${record.text}`);
        assert.equal(record.text.split('"_backfill"').length, 2, `the marker appears once: ${record.text}`);
      } else assert.equal(record.reading._backfill, undefined, `live reading ${step} of ${device} is not marked: ${record.text}`);
    }
  }
});

test('gridpulse process --until-end of the topic an agent forwarded to stores every reading once and reports the backfilled ones as late backfill', { timeout: 300_000 }, async () => {
  const topic = `edge-process-${run}`;
  const meters = ['m-1', 'm-2', 'm-3', 'm-4'];
  const SPOOLED = 30;
  const LIVE = 30;
  await spoolThenForward('process', topic, meters, SPOOLED, LIVE);

  const storeUrl = await databases.create('process');
  const configFile = join(dir, 'gridpulse-process.yaml');
  writeFileSync(configFile, 'streams:\n  power:\n    id: readingId\n');
  gridpulse(
    ['process', '-c', configFile, '--log', kafkaUrl, '--store', storeUrl, '--group', `edge-${run}`, '--streams', 'power', '--topic', `power=${topic}`, '--until-end', '--data-dir', join(dir, 'process-data')],
    dir,
  );
  const stored = await query<{ key: string; n: string; first: string; last: string }>(
    storeUrl,
    `SELECT key, count(*) AS n, min(time_ms) AS first, max(time_ms) AS last FROM readings WHERE stream = 'power' GROUP BY key ORDER BY key`,
  );
  assert.deepEqual(
    stored.map((row) => [row.key, Number(row.n), Number(row.first), Number(row.last)]),
    meters.map((meter) => [meter, SPOOLED + LIVE, T0, T0 + (SPOOLED + LIVE - 1) * STEP]),
    'every forwarded reading stored once',
  );
  const late = await query<{ key: string; n: string; first: string; last: string }>(
    storeUrl,
    `SELECT key, count(*) AS n, min(time_ms) AS first, max(time_ms) AS last FROM ops WHERE kind = 'late' AND reason LIKE 'backfill:%' GROUP BY key ORDER BY key`,
  );
  assert.deepEqual(
    late.map((row) => [row.key, Number(row.n), Number(row.first), Number(row.last)]),
    meters.map((meter) => [meter, SPOOLED, T0, T0 + (SPOOLED - 1) * STEP]),
    'the engine read the marker: exactly the spooled readings are late backfill',
  );
});

test('the config refuses what forwarding to Kafka cannot do, naming the field, what was expected and what was got', () => {
  const base = { collectors: [{ type: 'stdin' }] };
  const refused = (input: Record<string, unknown>, pattern: RegExp, options: { env?: Record<string, string> } = {}): string => {
    let message = '';
    assert.throws(
      () => parseEdgeConfig({ ...base, ...input }, options),
      (error: unknown) => {
        message = String((error as Error).message);
        return error instanceof GpError && error.code === 'GP_CONFIG_INVALID' && pattern.test(message);
      },
      `${JSON.stringify(input)} is refused with ${String(pattern)}`,
    );
    return message;
  };
  const credentials = refused({ forward: { url: 'kafka://edge:s3cret@127.0.0.1:9092' } }, /\/forward\/url: expected kafka:\/\/host:port\[,host:port\.\.\.\] without credentials .*got a URL with credentials/);
  assert.doesNotMatch(credentials, /s3cret/, 'the password is not repeated');
  refused({ forward: { url: 'kafka://127.0.0.1:9092/topic?x=1' } }, /\/forward\/url: expected kafka:\/\/host:port\[,host:port\.\.\.\] \(nothing after the brokers\), got "kafka:\/\/127\.0\.0\.1:9092\/topic\?x=1"/);
  refused({ forward: { url: 'kafka://127.0.0.1:9092', token: 'abc' } }, /\/forward\/token: expected no token when forwarding to Kafka .*got forward\.token/);
  refused({ forward: { url: 'kafka://127.0.0.1:9092', tokenEnv: 'GP_EDGE_TOKEN' } }, /\/forward\/tokenEnv: expected no token when forwarding to Kafka .*got forward\.tokenEnv/, { env: { GP_EDGE_TOKEN: 'abc' } });
  refused({ forward: { url: 'kafka://127.0.0.1:9092', topics: { pumps: 'pumps-raw' } } }, /\/forward\/topics\/pumps: expected one of the agent's streams \(power, machines\), got "pumps"/);
  refused({ forward: { url: 'kafka://127.0.0.1:9092', topics: { power: 'power usage!' } } }, /\/forward\/topics\/power: expected a Kafka topic name \(1 to 249 letters, digits and \._-\), got "power usage!"/);
  refused({ forward: { url: 'kafka://127.0.0.1:9092', topics: { power: 7 } } }, /\/forward\/topics\/power: .*got 7/);
  refused({ forward: { url: 'kafka://127.0.0.1:9092', topics: ['power'] } }, /\/forward\/topics: expected a mapping of stream names to Kafka topics/);
  refused({ forward: { url: 'http://127.0.0.1:8080', topics: { power: 'p' } } }, /\/forward\/topics: expected no topics when forwarding over HTTP .*got 1 stream/);
  refused({ streams: { '': { key: 'id' } }, forward: { url: 'kafka://127.0.0.1:9092' } }, /\/streams\/: expected every stream to have a name when forwarding to Kafka .*got a stream named ""/);
  refused({ forward: { url: 'ftp://127.0.0.1:9092' } }, /\/forward\/url: expected an http:\/\/, https:\/\/ or kafka:\/\/ URL, got ftp:/);

  // Accepted: brokers, topics, no token.
  const config = parseEdgeConfig({ ...base, streams: { pumps: { key: 'pump_id' } }, forward: { url: ' kafka://10.0.0.1:9092,10.0.0.2 ', topics: { pumps: 'site-a.pumps' } } });
  assert.equal(config.forward.kind, 'kafka');
  assert.equal(config.forward.url, 'kafka://10.0.0.1:9092,10.0.0.2');
  assert.deepEqual(config.forward.topics, { pumps: 'site-a.pumps' });
  assert.equal(config.forward.token, undefined);
  assert.equal(parseEdgeConfig({ ...base, forward: { url: 'http://127.0.0.1:8080' } }).forward.kind, 'http');
});

test('an agent is not created when its Kafka brokers or topics cannot work, and nothing is opened', () => {
  const dataDir = join(dir, 'refused');
  const attempt = (forward: Record<string, unknown>, pattern: RegExp): void => {
    const config = parseEdgeConfig({ agent: { dataDir }, forward, status: { port: 0 }, collectors: [{ type: 'stdin' }] });
    assert.throws(() => createEdgeAgent({ config }), (error: unknown) => error instanceof GpError && error.code === 'GP_CONFIG_INVALID' && pattern.test(error.message));
  };
  attempt({ url: 'kafka://127.0.0.1:99999' }, /\/forward\/url broker 1: expected a port 1\.\.65535, got 99999/);
  attempt({ url: 'kafka://127.0.0.1:9092,bad_host' }, /\/forward\/url broker 2: expected host:port .*got "bad_host"/);
  // Two streams on one topic: gridpulse process could not tell them apart.
  attempt({ url: 'kafka://127.0.0.1:9092', topics: { machines: 'power-usage-raw' } }, /\/forward\/topics\/machines: expected a topic no other stream uses .*got "power-usage-raw", the topic of stream power too/);
  assert.equal(existsSync(dataDir), false, 'no spool was created');
});
