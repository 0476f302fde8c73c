// The edge agent's MQTT collector against the real Mosquitto on 127.0.0.1:1883 (scripts/servers.sh start mosquitto).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { parseEdgeConfig } from '../../src/config/index.js';
import { createEdgeAgent, createSpool } from '../../src/edge/index.js';

const BROKER = 'mqtt://127.0.0.1:1883';

test('MQTT: readings published with QoS 1 are spooled durably with the device from the topic, and a message sent twice gets the same reading id', { timeout: 60_000 }, async () => {
  const run = randomUUID().slice(0, 8);
  let publisher: mqtt.MqttClient;
  try {
    publisher = await mqtt.connectAsync(BROKER, { clientId: `gp-edge-pub-${run}`, connectTimeout: 3000, reconnectPeriod: 0 });
  } catch (error) {
    throw new Error('Mosquitto not reachable on 127.0.0.1:1883 — start it with scripts/servers.sh start mosquitto', { cause: error });
  }
  const dir = mkdtempSync(join(tmpdir(), 'gp-edge-mqtt-'));
  const dataDir = join(dir, 'edge');
  try {
    const config = parseEdgeConfig({
      agent: { dataDir },
      spool: { maxBytes: '4MB', segmentBytes: '256KB' },
      forward: { url: 'http://127.0.0.1:9', backoffMax: '200ms' }, // link down: readings stay in the spool
      status: { port: 0 },
      collectors: [{ type: 'mqtt', url: BROKER, clientId: `gp-edge-${run}`, stream: 'power', topics: [{ topic: `gp-edge-test/${run}/+/readings`, keyLevel: 2 }] }],
    });
    const agent = createEdgeAgent({ config });
    await agent.start();
    const base = 1_767_225_600_000;
    for (let i = 0; i < 300; i++) {
      const meter = `m-${i % 6}`;
      await publisher.publishAsync(`gp-edge-test/${run}/${meter}/readings`, JSON.stringify({ timestamp: base + i * 1000, usageKw: i / 10 }), { qos: 1 });
    }
    // The same message again (a device retrying after a lost PUBACK).
    await publisher.publishAsync(`gp-edge-test/${run}/m-0/readings`, JSON.stringify({ timestamp: base, usageKw: 0 }), { qos: 1 });
    const start = Date.now();
    while (agent.status().collectors[0]!.collected < 301 && Date.now() - start < 10_000) await new Promise((r) => setTimeout(r, 50));
    await agent.stop();
    assert.equal(agent.status().collectors[0]!.collected, 301);

    const spool = createSpool({ dir: join(dataDir, 'spool'), maxBytes: 4 * 1024 * 1024, segmentBytes: 256 * 1024, full: 'block' });
    await spool.ready();
    const batch = await spool.read(0, 1000);
    await spool.close();
    const readings = batch.records.map((r) => JSON.parse(Buffer.from(r.value).toString()) as { meterId: string; timestamp: number; readingId: string });
    assert.equal(readings.length, 301);
    assert.deepEqual(
      readings.slice(0, 6).map((r) => r.meterId),
      ['m-0', 'm-1', 'm-2', 'm-3', 'm-4', 'm-5'],
      'the device id comes from the topic level',
    );
    assert.equal(new Set(readings.map((r) => r.readingId)).size, 300, 'one id per distinct reading');
    assert.equal(readings[300]!.readingId, readings[0]!.readingId, 'the copy has the id of the first: the platform keeps one');
  } finally {
    await publisher.endAsync();
    rmSync(dir, { recursive: true, force: true });
  }
});
