// MQTT ingest against the real Mosquitto on 127.0.0.1:1883 (scripts/servers.sh start mosquitto).
// Every run uses its own topic prefix and client ids; sessions are removed at the end.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { parseConfig } from '../../src/config/index.js';
import { createMqttSource, type MqttBatch, type MqttSource, type MqttSourceOptions } from '../../src/ingest/index.js';
import { GpError } from '../../src/model/index.js';

const BROKER = 'mqtt://127.0.0.1:1883';
const run = randomUUID().slice(0, 8);
const prefix = `gridpulse-test/${run}`;
let publisher: MqttClient;
const clientIds: string[] = [];
const openSources: MqttSource[] = [];

before(async () => {
  try {
    publisher = await mqtt.connectAsync(BROKER, { clientId: `gp-test-pub-${run}`, connectTimeout: 3000, reconnectPeriod: 0 });
  } catch (error) {
    throw new Error('Mosquitto not reachable on 127.0.0.1:1883 — start it with scripts/servers.sh start mosquitto', { cause: error });
  }
});

after(async () => {
  await Promise.all(openSources.map((s) => s.close()));
  await publisher?.endAsync();
  // Remove the persistent sessions this run left on the broker.
  for (const clientId of clientIds) {
    const cleaner = await mqtt.connectAsync(BROKER, { clientId, clean: true, protocolVersion: 5, properties: { sessionExpiryInterval: 0 }, reconnectPeriod: 0 });
    await cleaner.endAsync();
  }
});

function newClientId(name: string): string {
  const clientId = `gp-test-${name}-${run}`;
  clientIds.push(clientId);
  return clientId;
}

/** A source that records the batches it was given; `handle` decides how each delivery ends. */
function source(
  options: Partial<MqttSourceOptions> & Pick<MqttSourceOptions, 'topics'>,
  handle: (batch: MqttBatch, call: number) => Promise<void> = () => Promise.resolve(),
): { source: MqttSource; batches: MqttBatch[] } {
  const batches: MqttBatch[] = [];
  let calls = 0;
  const created = createMqttSource({
    url: BROKER,
    qos: 1,
    sessionExpirySec: 120,
    reconnectMinMs: 100,
    ...options,
    onReadings: (batch) => {
      calls += 1;
      batches.push(batch);
      return handle(batch, calls);
    },
  });
  openSources.push(created);
  return { source: created, batches };
}

async function waitUntil(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function publish(topic: string, payload: string, qos: 0 | 1 = 1): Promise<void> {
  await publisher.publishAsync(topic, payload, { qos });
}

const never = (): Promise<void> => new Promise<void>(() => {});

describe('MQTT source on Mosquitto', () => {
  it('hands over an object, an array and NDJSON with the device id from the topic, and lists the unparseable parts', async () => {
    const topics = `${prefix}/parse`;
    const parsed = parseConfig(
      ['mqtt:', `  url: "${BROKER}"`, `  clientId: ${newClientId('parse')}`, '  topics:', `    - topic: "${topics}/+/readings"`, '      stream: power', '      keyLevel: 3'].join('\n'),
    );
    assert.deepEqual(parsed.issues, []);
    const mqttConfig = parsed.config?.mqtt;
    assert.ok(mqttConfig);
    const { source: mqttSource, batches } = source({ ...mqttConfig, sessionExpirySec: 120 });
    await mqttSource.ready();
    assert.deepEqual(mqttSource.stats().subscriptions, [{ topic: `${topics}/+/readings`, grantedQos: 1 }]);

    await publish(`${topics}/m-1/readings`, '{"timestamp":1763900000000,"usageKw":1.5}');
    await publish(`${topics}/m-2/readings`, '[{"timestamp":1763900000000,"usageKw":2},{"meterId":"m-2","timestamp":1763900005000,"usageKw":2.5}]');
    await publish(`${topics}/m-3/readings`, '{"timestamp":1,"usageKw":1}\n{"timestamp":2,"usage\n\n{"timestamp":3,"usageKw":3}\n');
    await publish(`${topics}/m-4/readings`, '{"meterId": ');
    await publish(`${topics}/m-5/readings`, '');
    await waitUntil(() => batches.length === 4 && mqttSource.stats().empty === 1, 'four batches and one empty message');

    const byKey = new Map(batches.map((b) => [b.keyFromTopic, b]));
    assert.deepEqual([...byKey.keys()].sort(), ['m-1', 'm-2', 'm-3', 'm-4']);
    for (const batch of batches) {
      assert.equal(batch.stream, 'power');
      assert.equal(batch.topic, `${topics}/${batch.keyFromTopic}/readings`);
      assert.equal(batch.redelivered, false);
    }
    assert.deepEqual(byKey.get('m-1')?.items, [{ timestamp: 1763900000000, usageKw: 1.5 }]);
    assert.deepEqual(byKey.get('m-1')?.rejected, []);
    assert.deepEqual(byKey.get('m-2')?.items, [
      { timestamp: 1763900000000, usageKw: 2 },
      { meterId: 'm-2', timestamp: 1763900005000, usageKw: 2.5 },
    ]);
    const ndjson = byKey.get('m-3');
    assert.deepEqual(ndjson?.items, [
      { timestamp: 1, usageKw: 1 },
      { timestamp: 3, usageKw: 3 },
    ]);
    assert.equal(ndjson?.rejected.length, 1);
    assert.equal(ndjson?.rejected[0]?.index, 1);
    assert.equal(ndjson?.rejected[0]?.line, 2);
    assert.match(ndjson?.rejected[0]?.reason ?? '', /^line 2: expected JSON, got "\{\\"timestamp\\":2,\\"usage"/);
    const broken = byKey.get('m-4');
    assert.deepEqual(broken?.items, []);
    assert.equal(broken?.rejected.length, 1);
    assert.match(broken?.rejected[0]?.reason ?? '', /^expected JSON or NDJSON, got "\{\\"meterId\\":"/);

    const stats = mqttSource.stats();
    assert.equal(stats.messages, 5);
    assert.equal(stats.readings, 5);
    assert.equal(stats.rejected, 2);
    assert.equal(stats.acknowledged, 5); // the empty message too: there was nothing to keep
    assert.equal(stats.errors, 0);
    await mqttSource.close();
  });

  it('does not acknowledge a message whose onReadings rejects: the broker delivers it again after the reconnect, once', async () => {
    const clientId = newClientId('reject');
    const topic = `${prefix}/reject/m-7/readings`;
    const topics = [{ topic: `${prefix}/reject/+/readings`, stream: 'power', keyLevel: 3 }];
    const first = source({ clientId, topics }, (_batch, call) => (call === 1 ? Promise.reject(new Error('log append failed: disk full')) : Promise.resolve()));
    await first.source.ready();

    await publish(topic, '{"timestamp":1763900000000,"usageKw":7}');
    await waitUntil(() => first.batches.length === 2, 'the redelivery after the failed append');
    assert.deepEqual(first.batches[1]?.items, [{ timestamp: 1763900000000, usageKw: 7 }]);
    assert.equal(first.batches[1]?.keyFromTopic, 'm-7');
    assert.equal(first.batches[1]?.redelivered, true);
    const stats = first.source.stats();
    assert.equal(stats.failedDeliveries, 1);
    assert.match(stats.lastError ?? '', /disk full/);
    assert.ok(stats.reconnects >= 1, `expected a reconnect, got ${stats.reconnects}`);
    assert.equal(stats.sessionPresent, true);
    assert.equal(stats.readings, 1);

    // The second delivery was acknowledged: a later source with the same session gets only new messages.
    await first.source.close();
    const second = source({ clientId, topics });
    await second.source.ready();
    await publish(`${prefix}/reject/marker/readings`, '{"timestamp":1763900001000,"usageKw":0}');
    await waitUntil(() => second.batches.some((b) => b.keyFromTopic === 'marker'), 'the marker message');
    assert.deepEqual(
      second.batches.map((b) => b.keyFromTopic),
      ['marker'],
    );
    await second.source.close();
  });

  it('treats an onReadings that does not settle within ackTimeoutMs as failed and gets the message again', async () => {
    const topics = [{ topic: `${prefix}/hang/+/readings`, keyLevel: 3 }];
    const { source: mqttSource, batches } = source({ clientId: newClientId('hang'), topics, ackTimeoutMs: 300 }, (_batch, call) => (call === 1 ? never() : Promise.resolve()));
    await mqttSource.ready();
    await publish(`${prefix}/hang/machine-001/readings`, '{"timestamp":"2025-11-07T15:10:01Z","torque_nm":42.8}');
    await waitUntil(() => batches.length === 2, 'the redelivery after the handler timed out');
    assert.equal(batches[1]?.redelivered, true);
    assert.equal(batches[1]?.stream, undefined);
    assert.equal(batches[1]?.keyFromTopic, 'machine-001');
    assert.deepEqual(batches[1]?.items, [{ timestamp: '2025-11-07T15:10:01Z', torque_nm: 42.8 }]);
    assert.match(mqttSource.stats().lastError ?? '', /did not settle within 300 ms/);
    await mqttSource.close();
  });

  it('keeps the session across restarts: an unacknowledged message and one published while down reach the next source', async () => {
    const clientId = newClientId('session');
    const topics = [{ topic: `${prefix}/session/+/readings`, stream: 'power', keyLevel: 3 }];
    // A process that dies before its readings are durable: onReadings never resolves.
    const crashed = source({ clientId, topics, closeTimeoutMs: 200 }, never);
    await crashed.source.ready();
    await publish(`${prefix}/session/m-1/readings`, '{"timestamp":1763900000000,"usageKw":1}');
    await waitUntil(() => crashed.batches.length === 1, 'the first delivery');
    await Promise.all([crashed.source.close(), crashed.source.close()]);
    await crashed.source.close();
    assert.equal(crashed.source.stats().acknowledged, 0);
    assert.equal(crashed.source.stats().connected, false);
    await assert.rejects(crashed.source.ready(), (error: unknown) => error instanceof GpError && error.code === 'GP_MQTT_FAILED' && /closed/.test(error.message));

    await publish(`${prefix}/session/m-2/readings`, '{"timestamp":1763900005000,"usageKw":2}');

    const restarted = source({ clientId, topics });
    await restarted.source.ready();
    await waitUntil(() => restarted.batches.length === 2, 'both messages after the restart');
    assert.equal(restarted.source.stats().sessionPresent, true);
    assert.deepEqual(
      restarted.batches.map((b) => [b.keyFromTopic, b.redelivered, b.items]),
      [
        ['m-1', true, [{ timestamp: 1763900000000, usageKw: 1 }]],
        ['m-2', false, [{ timestamp: 1763900005000, usageKw: 2 }]],
      ],
    );
    await restarted.source.close();
  });

  it('reports messages of a subscription left in the session by an earlier configuration as rejected', async () => {
    const clientId = newClientId('stale');
    const old = source({ clientId, topics: [{ topic: `${prefix}/stale/old/#` }] });
    await old.source.ready();
    await old.source.close();
    const current = source({ clientId, topics: [{ topic: `${prefix}/stale/new/+`, keyLevel: 3 }] });
    await current.source.ready();
    await publish(`${prefix}/stale/old/m-9`, '{"timestamp":1}');
    await waitUntil(() => current.batches.length === 1, 'the message on the old subscription');
    const batch = current.batches[0];
    assert.equal(batch?.stream, undefined);
    assert.equal(batch?.keyFromTopic, undefined);
    assert.deepEqual(batch?.items, []);
    assert.match(batch?.rejected[0]?.reason ?? '', /matches none of the configured topic filters/);
    await current.source.close();
  });

  it('delivers QoS 0 messages at most once through the same handler', async () => {
    const { source: mqttSource, batches } = source({ clientId: newClientId('qos0'), qos: 0, topics: [{ topic: `${prefix}/qos0/+`, keyLevel: 3 }] });
    await mqttSource.ready();
    assert.equal(mqttSource.stats().subscriptions[0]?.grantedQos, 0);
    await publish(`${prefix}/qos0/m-0`, '{"timestamp":5,"usageKw":0.5}', 0);
    await waitUntil(() => batches.length === 1, 'the QoS 0 message');
    assert.deepEqual(batches[0]?.items, [{ timestamp: 5, usageKw: 0.5 }]);
    assert.equal(batches[0]?.keyFromTopic, 'm-0');
    await mqttSource.close();
  });

  it('reconnects by itself when the broker restarts, and the session survives the restart', async () => {
    // A broker of our own (the system's mosquitto binary on a free port), so that restarting it disturbs nobody.
    const dir = mkdtempSync(join(tmpdir(), 'gp-mosquitto-'));
    const port = await freePort();
    const config = join(dir, 'mosquitto.conf');
    writeFileSync(config, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence true', `persistence_location ${dir}/`, 'user root', ''].join('\n'));
    const url = `mqtt://127.0.0.1:${port}`;
    let broker = await startBroker(config, port);
    try {
      const clientId = newClientId('restart');
      const { source: mqttSource, batches } = source({ url, clientId, topics: [{ topic: 'plant/+/readings', keyLevel: 1 }] });
      await mqttSource.ready();
      await stopBroker(broker);
      await waitUntil(() => !mqttSource.stats().connected, 'the source to notice the broker is gone');
      broker = await startBroker(config, port);
      await waitUntil(() => mqttSource.stats().connected, 'the source to reconnect');
      assert.equal(mqttSource.stats().reconnects, 1);
      assert.equal(mqttSource.stats().sessionPresent, true);
      const local = await mqtt.connectAsync(url, { clientId: `gp-test-pub-restart-${run}`, reconnectPeriod: 0 });
      await local.publishAsync('plant/press-4/readings', '{"timestamp":1,"rpm":1500}', { qos: 1 });
      await local.endAsync();
      await waitUntil(() => batches.length === 1, 'the message published after the restart');
      assert.equal(batches[0]?.keyFromTopic, 'press-4');
      assert.equal(mqttSource.stats().disconnects, 1);
      await mqttSource.close();
    } finally {
      await stopBroker(broker);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ready() rejects with GP_MQTT_FAILED naming the URL when no broker answers', async () => {
    const port = await freePort();
    const url = `mqtt://127.0.0.1:${port}`;
    const { source: mqttSource } = source({ url, clientId: 'gp-test-unreachable', connectTimeoutMs: 800, topics: [{ topic: 'gridpulse/+/readings', keyLevel: 1 }] });
    await assert.rejects(mqttSource.ready(), (error: unknown) => {
      assert.ok(error instanceof GpError);
      assert.equal(error.code, 'GP_MQTT_FAILED');
      assert.equal(error.retriable, true);
      assert.match(error.message, new RegExp(`^MQTT broker mqtt://127\\.0\\.0\\.1:${port} not reachable within 0\\.8 s: .*ECONNREFUSED`));
      return true;
    });
    await mqttSource.close();
    await mqttSource.close();
  });

  it('rejects topic filters and key levels that cannot work, naming the config entry', () => {
    const onReadings = (): Promise<void> => Promise.resolve();
    const attempt = (topics: MqttSourceOptions['topics']): unknown => {
      try {
        createMqttSource({ url: BROKER, qos: 1, topics, onReadings });
        return undefined;
      } catch (error) {
        return error;
      }
    };
    const wildcard = attempt([{ topic: 'gridpulse/+/readings' }, { topic: 'gridpulse/#/readings' }]);
    assert.ok(wildcard instanceof GpError);
    assert.equal(wildcard.code, 'GP_CONFIG_INVALID');
    assert.match(wildcard.message, /^\/mqtt\/topics\/1: expected "#" only as the whole last level/);
    const level = attempt([{ topic: 'gridpulse/+/readings', keyLevel: 3 }]);
    assert.ok(level instanceof GpError);
    assert.match(level.message, /^\/mqtt\/topics\/0: expected keyLevel to be a level of the topic filter "gridpulse\/\+\/readings" \(0 to 2\), got 3/);
    assert.equal(attempt([{ topic: '$share/ingest/gridpulse/+/readings', keyLevel: 1 }]), undefined);
    assert.equal(attempt([{ topic: 'plant/#', keyLevel: 4 }]), undefined);
  });
});

async function startBroker(config: string, port: number): Promise<ChildProcess> {
  const broker = spawn('mosquitto', ['-c', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  broker.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<never>((_, reject) => {
    broker.once('error', reject);
    broker.once('exit', (code) => reject(new Error(`mosquitto exited with ${code}: ${stderr}`)));
  });
  const listening = (async () => {
    for (;;) {
      const open = await new Promise<boolean>((resolve) => {
        const socket = connect(port, '127.0.0.1', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(false));
      });
      if (open) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  await Promise.race([listening, exited]);
  exited.catch(() => {});
  return broker;
}

async function stopBroker(broker: ChildProcess): Promise<void> {
  if (broker.exitCode !== null || broker.signalCode !== null) return;
  const exited = new Promise((resolve) => broker.once('exit', resolve));
  broker.kill('SIGTERM');
  await exited;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
