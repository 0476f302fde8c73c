// The MQTT alert channel against the real Mosquitto on 127.0.0.1:1883 (scripts/servers.sh start mosquitto):
// a subscriber receives each transition as JSON with QoS 1, on the topic filled from the alert.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt';
import { createAlertDelivery, createAlertRouter, createDeliveryWorker, createMqttChannel, genericBody, type DeliveryWorker } from '../../src/alerts/index.js';
import { parseConfig, formatIssues } from '../../src/config/index.js';
import { GpError } from '../../src/model/index.js';
import { alertEvents, testTime } from '../unit/alerts-delivery-harness.js';

const BROKER = 'mqtt://127.0.0.1:1883';
const run = randomUUID().slice(0, 8);
const prefix = `gridpulse-test/${run}/alerts`;
let subscriber: MqttClient;
const received: Array<{ topic: string; body: string; packet: IPublishPacket }> = [];
// Closed at the end even when a test fails half-way (close is idempotent), so no connection keeps the run alive.
const workers: DeliveryWorker[] = [];
const track = (worker: DeliveryWorker): DeliveryWorker => {
  workers.push(worker);
  return worker;
};

before(async () => {
  try {
    subscriber = await mqtt.connectAsync(BROKER, { clientId: `gp-test-alerts-sub-${run}`, protocolVersion: 5, connectTimeout: 3000, reconnectPeriod: 0 });
  } catch (error) {
    throw new Error('Mosquitto not reachable on 127.0.0.1:1883 — start it with scripts/servers.sh start mosquitto', { cause: error });
  }
  subscriber.on('message', (topic, payload, packet) => received.push({ topic, body: payload.toString('utf8'), packet }));
  await subscriber.subscribeAsync(`${prefix}/#`, { qos: 1 });
});

after(async () => {
  await Promise.all(workers.map((worker) => worker.close()));
  await subscriber?.endAsync();
});

async function waitForMessages(count: number, topicStart: string): Promise<typeof received> {
  for (let round = 0; round < 500; round += 1) {
    const matching = received.filter((message) => message.topic.startsWith(topicStart));
    if (matching.length >= count) return matching;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return received.filter((message) => message.topic.startsWith(topicStart));
}

test('each transition is published once as JSON with QoS 1 on the topic filled from the alert, carrying its id', async () => {
  const channel = createMqttChannel({ name: 'plant', url: BROKER, topic: `${prefix}/one/{site}/{type}/{kind}`, clientId: `gp-test-alerts-pub-${run}` });
  const worker = track(createDeliveryWorker({ channels: [channel], router: createAlertRouter([{ channels: ['plant'] }]) }));
  await worker.ready();
  const events = alertEvents(3);
  for (const event of events) assert.equal(worker.submit(event).accepted, true);
  await worker.idle();
  assert.equal(worker.metrics().plant?.delivered, events.length, 'delivered means the broker acknowledged');

  const messages = await waitForMessages(events.length, `${prefix}/one/`);
  assert.equal(messages.length, events.length);
  assert.deepEqual(
    messages.map((message) => message.topic),
    events.map((event) => `${prefix}/one/s-1/spike/${event.transition.kind}`),
    'published in the order the transitions were submitted',
  );
  for (const [index, message] of messages.entries()) {
    const event = events[index];
    assert.ok(event);
    assert.equal(message.packet.qos, 1);
    assert.deepEqual(JSON.parse(message.body), JSON.parse(JSON.stringify(genericBody(event))));
    assert.equal(message.packet.properties?.contentType, 'application/json');
    assert.deepEqual({ ...message.packet.properties?.userProperties }, { 'gridpulse-id': event.transition.id });
  }
  await worker.close();
});

test('from the config: an mqtt channel and a route with the Slack template', async () => {
  const { config, issues } = parseConfig({
    alerts: {
      delivery: {
        deadLetters: 'memory',
        channels: { plant: { type: 'mqtt', url: BROKER, topic: `${prefix}/config/{stream}/{severity}`, clientId: `gp-test-alerts-cfg-${run}` } },
        routes: [{ match: { kinds: ['open'] }, channels: ['plant'], template: 'slack' }],
      },
    },
  });
  assert.equal(formatIssues(issues), '');
  assert.ok(config);
  const worker = track(createAlertDelivery(config.alerts.delivery, { dataDir: '/nonexistent-not-used-with-memory' }));
  await worker.ready();
  const events = alertEvents(2);
  for (const event of events) worker.submit(event);
  await worker.idle();
  const messages = await waitForMessages(2, `${prefix}/config/`);
  assert.deepEqual(messages.map((message) => message.topic), [`${prefix}/config/power/info`, `${prefix}/config/power/info`]);
  const body = JSON.parse(messages[0]?.body ?? '{}') as { text?: string; blocks?: unknown[] };
  assert.match(body.text ?? '', /^\[INFO\] spike opened on power\/m-1/);
  assert.ok(Array.isArray(body.blocks));
  assert.equal(worker.metrics().plant?.delivered, 2, 'only the opens were routed');
  await worker.close();
});

test('while the broker cannot be reached, attempts are retried and finally dead-lettered, never lost', async () => {
  // A port that was free a moment ago: nothing listens there.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));

  const { clock, sleep, time } = testTime();
  const channel = createMqttChannel({ name: 'down', url: `mqtt://user:pa55word@127.0.0.1:${port}`, topic: `${prefix}/down`, connectTimeoutMs: 300, retry: { attempts: 3, baseDelayMs: 100, maxDelayMs: 1000 } });
  const worker = track(createDeliveryWorker({ channels: [channel], router: createAlertRouter([{ channels: ['down'] }]), clock, sleep }));
  await assert.rejects(channel.ready(), (error: unknown) => error instanceof GpError && error.code === 'GP_MQTT_FAILED' && !error.message.includes('pa55word'));
  const [event] = alertEvents(1);
  assert.ok(event);
  worker.submit(event);
  await worker.idle();
  assert.equal(time.delays.length, 2);
  const [dead] = await worker.listDeadLetters();
  assert.equal(dead?.transitionId, event.transition.id);
  assert.equal(dead?.attempts, 3);
  assert.match(dead?.reason ?? '', /^gave up after 3 attempts: MQTT broker mqtt:\/\/user:\*\*\*@127\.0\.0\.1:\d+ is not connected$/);
  await worker.close();
});
