import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { ReadableStream, ReadableStreamReadResult } from 'node:stream/web';
import { join } from 'node:path';
import { createApiApp } from '../../src/api/index.js';
import { parseConfig } from '../../src/config/index.js';
import { createPlatform, createPlatformMqtt } from '../../src/cli/platform.js';

const BROKER = 'mqtt://127.0.0.1:1883';

test('a reading published to Mosquitto reaches the store and the live SSE feed; a payload that is not JSON becomes an ops record', { timeout: 60_000 }, async () => {
  const { default: mqtt } = await import('mqtt');
  const publisher = await mqtt.connectAsync(BROKER, { connectTimeout: 3000, reconnectPeriod: 0 }).catch((error: Error) => {
    throw new Error(`Mosquitto not reachable on 127.0.0.1:1883 — start it with scripts/servers.sh start mosquitto (${error.message})`);
  });
  const dir = mkdtempSync(join(tmpdir(), 'gp-mqtt-platform-'));
  const prefix = `gp-test-${process.pid}-${Date.now()}`;
  const { config, issues } = parseConfig({
    dataDir: dir,
    simulator: { enabled: false },
    mqtt: { url: BROKER, clientId: `${prefix}-platform`, topics: [{ topic: `${prefix}/+/readings`, keyLevel: 1, stream: 'power' }] },
  });
  assert.deepEqual(issues, []);
  const platform = createPlatform({ config: config!, simulator: false });
  await platform.start();
  const source = createPlatformMqtt(platform, config!.mqtt!);
  const app = await createApiApp({ platform, server: config!.server });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  const controller = new AbortController();
  try {
    await source.ready();
    const sse = await fetch(`${address}/api/live?key=meter-mqtt&types=aggregate`, { signal: controller.signal });
    assert.equal(sse.status, 200);
    const reader = (sse.body as ReadableStream<Uint8Array>).getReader();
    const aggregate = (async () => {
      const decoder = new TextDecoder();
      let text = '';
      for (;;) {
        const chunk: ReadableStreamReadResult<Uint8Array> = await reader.read();
        if (chunk.done) return undefined;
        text += decoder.decode(chunk.value);
        const match = /event: aggregate\ndata: (.*)\n/.exec(text);
        if (match) return JSON.parse(match[1]!) as { key: string; window: string; count: number };
      }
    })();

    const t0 = Date.UTC(2026, 0, 5, 10, 0, 0);
    // The device id comes from the topic; one message holds an array, one NDJSON, one is broken.
    await publisher.publishAsync(`${prefix}/meter-mqtt/readings`, JSON.stringify([{ timestamp: t0, usageKw: 3.5 }, { timestamp: t0 + 20_000, usageKw: 3.7 }]), { qos: 1 });
    await publisher.publishAsync(`${prefix}/meter-mqtt/readings`, `{"timestamp":${t0 + 40_000},"usageKw":3.6}\n{"timestamp":${t0 + 300_000},"usageKw":3.6}`, { qos: 1 });
    await publisher.publishAsync(`${prefix}/meter-mqtt/readings`, '{"timestamp": oops', { qos: 1 });

    const first = await Promise.race([aggregate, new Promise<undefined>((r) => setTimeout(() => r(undefined), 20_000))]);
    assert.ok(first, 'an aggregate of meter-mqtt arrived on SSE');
    assert.equal(first.key, 'meter-mqtt');
    assert.equal(first.count, 3, 'the first minute holds the three readings of 10:00');

    await platform.drain();
    const series = await platform.store.querySeries({ stream: 'power', key: 'meter-mqtt', metric: 'usageKw', from: t0, to: t0 + 600_000, resolution: 'raw' });
    assert.deepEqual(series.points.map((p) => p.last), [3.5, 3.7, 3.6, 3.6], 'the four readings are in the store');
    const quality = await platform.store.dataQuality({ stream: 'power' });
    assert.ok(quality.some((row) => row.counts.invalid >= 1), 'the broken payload is an invalid ops record');
    assert.equal(platform.status().totals.rejected, 1);
  } finally {
    controller.abort();
    await source.close();
    await app.close();
    await platform.close();
    await publisher.endAsync();
    rmSync(dir, { recursive: true, force: true });
  }
});
