// A reading the platform refuses for its size even alone (413 from its body limit) must not stall
// the edge agent for ever: the forwarder splits a refused batch down to single readings, delivers
// the others in order, and sets the one that can never go aside — in <dataDir>/undeliverable.ndjson,
// counted in /status and /metrics, logged — before the spool moves past it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApiApp } from '../../src/api/index.js';
import { parseConfig, parseEdgeConfig } from '../../src/config/index.js';
import { createPlatform } from '../../src/cli/platform.js';
import { createEdgeAgent, UNDELIVERABLE_FILE } from '../../src/edge/index.js';

const T0 = Date.UTC(2026, 0, 5, 8, 0, 0);

test('a reading too large for the platform even alone is set aside in undeliverable.ndjson, counted and logged; every other reading is delivered, in order', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gp-edge-undeliverable-'));
  const { config, issues } = parseConfig({
    dataDir: join(dir, 'platform'),
    store: { url: 'duckdb::memory:' },
    simulator: { enabled: false },
    server: { limits: { bodyBytes: 2048 } },
    streams: { power: { id: 'readingId' } },
  });
  assert.deepEqual(issues, []);
  const platform = createPlatform({ config: config!, simulator: false });
  await platform.start();
  const app = await createApiApp({ platform, server: config!.server });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address() as { port: number };
  const lines: string[] = [];
  const edge = parseEdgeConfig({
    agent: { dataDir: join(dir, 'edge') },
    spool: { maxBytes: '1MB', segmentBytes: '64KB' },
    forward: { url: `http://127.0.0.1:${address.port}`, backoffMin: '20ms', backoffMax: '100ms', timeout: '2s' },
    status: { port: 0 },
    collectors: [{ type: 'http', port: 0, stream: 'power' }],
  });
  const agent = createEdgeAgent({ config: edge, log: (line) => lines.push(line) });
  try {
    await agent.start();
    const http = agent.status().collectors[0]!.address!;
    // 40 readings of m-1, the 21st with a 4 kB random note: over the 2 kB body limit on its own,
    // even gzipped (the agent compresses; random text does not shrink).
    const readings = Array.from({ length: 40 }, (_, i) => ({ meterId: 'm-1', siteId: 's-1', timestamp: T0 + i * 10_000, usageKw: 2 + i / 100, ...(i === 20 ? { note: randomBytes(3072).toString('base64') } : {}) }));
    const posted = await fetch(`${http}/v1/streams/power/readings`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: readings.map((r) => JSON.stringify(r)).join('\n') });
    assert.equal(posted.status, 200, await posted.text());
    for (let i = 0; i < 300 && agent.status().spool.unsent > 0; i++) await new Promise((r) => setTimeout(r, 100));
    const status = agent.status();
    assert.equal(status.spool.unsent, 0, `the spool drained (it did not stall on the large reading): ${JSON.stringify(status.forwarder)}`);
    assert.equal(status.forwarder.undeliverable, 1, `${JSON.stringify(status.forwarder)}\n${lines.join("\n")}`);
    assert.equal(status.forwarder.forwarded, 39);
    const kept = readFileSync(join(dir, 'edge', UNDELIVERABLE_FILE), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { stream: string; device: string; reason: string; reading: string });
    assert.equal(kept.length, 1);
    assert.equal(kept[0]!.stream, 'power');
    assert.equal(kept[0]!.device, 'm-1');
    assert.match(kept[0]!.reason, /^HTTP 413/);
    assert.equal((JSON.parse(kept[0]!.reading) as { timestamp: number }).timestamp, T0 + 20 * 10_000, 'the reading itself, as collected');
    assert.ok(lines.some((line) => /refused for its size even alone .* set aside in .*undeliverable\.ndjson/.test(line)), lines.join('\n'));
    const metrics = await (await fetch(`${agent.statusAddress ?? ""}/metrics`)).text();
    assert.match(metrics, /gridpulse_edge_undeliverable_readings_total 1/);
    // The platform has every other reading, once, in collection order.
    await platform.drain();
    const stored = await platform.store.querySeries({ key: 'm-1', metric: 'usageKw', from: T0, to: T0 + 400_000, resolution: 'raw' });
    assert.deepEqual(
      stored.points.map((p) => p.time),
      readings.filter((_, i) => i !== 20).map((r) => r.timestamp),
    );
  } finally {
    await agent.stop();
    await app.close();
    await platform.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
