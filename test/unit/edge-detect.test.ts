// Local detection on the edge agent: with the platform unreachable, a spike in collected readings
// opens an alert on the agent — logged, counted in /metrics, listed in /status.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEdgeConfig } from '../../src/config/index.js';
import { createEdgeAgent, type EdgeAgent } from '../../src/edge/index.js';
import { GpError } from '../../src/model/index.js';

const T0 = Date.UTC(2026, 0, 5, 8, 0, 0);
const STEP = 10_000;

/** A loopback port nobody listens on (taken, then released): the platform is down. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function withAgent(detect: Record<string, unknown>, run: (agent: EdgeAgent, http: string, lines: string[]) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'gp-edge-detect-'));
  const lines: string[] = [];
  const config = parseEdgeConfig({
    agent: { dataDir: join(dir, 'data') },
    spool: { maxBytes: '1MB', segmentBytes: '64KB' },
    forward: { url: `http://127.0.0.1:${await deadPort()}`, backoffMin: '50ms', backoffMax: '200ms', timeout: '1s' },
    status: { port: 0 },
    detect,
    collectors: [{ type: 'http', port: 0, stream: 'power' }],
  });
  const agent = createEdgeAgent({ config, log: (line) => lines.push(line) });
  try {
    await agent.start();
    const http = agent.status().collectors[0]?.address;
    assert.ok(http !== undefined);
    await run(agent, http, lines);
  } finally {
    await agent.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** m-1 at ~10 kW every 10 s, 30 kW for three readings from `spikeAt`. */
async function postMeter(http: string, count: number, spikeAt: number): Promise<void> {
  const lines = Array.from({ length: count }, (_, i) => JSON.stringify({ meterId: 'm-1', siteId: 's-1', timestamp: T0 + i * STEP, usageKw: i >= spikeAt && i < spikeAt + 3 ? 30 : 10 + (i % 3) * 0.1 }));
  const response = await fetch(`${http}/v1/streams/power/readings`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: lines.join('\n') });
  assert.equal(response.status, 200, await response.text());
}

test('with the platform down, a spike in collected readings opens a local alert: logged, counted in /metrics, listed in /status', async () => {
  await withAgent({ stream: 'power', detectors: ['spike', 'outage'] }, async (agent, http, lines) => {
    await postMeter(http, 120, 60);
    const status = agent.status();
    assert.equal(status.forwarder.forwarded, 0, 'nothing reached the platform');
    assert.equal(status.spool.unsent, 120, 'the readings wait in the spool');
    const detection = status.detection;
    assert.ok(detection !== undefined);
    assert.deepEqual(detection.detectors, ['spike', 'outage']);
    assert.equal(detection.readings, 120);
    assert.equal(detection.alertsOpened, 1);
    const opened = detection.recent.find((e) => e.kind === 'open');
    assert.ok(opened !== undefined, JSON.stringify(detection.recent));
    assert.equal(opened.type, 'spike');
    assert.equal(opened.key, 'm-1');
    assert.equal(opened.metric, 'usageKw');
    assert.equal(opened.openedAt, T0 + 60 * STEP, 'opened at the spike');
    assert.match(opened.explain, /usageKw/);
    assert.ok(lines.some((line) => line.startsWith('local alert open: spike m-1 usageKw')), lines.join('\n'));

    const metrics = await (await fetch(`${agent.statusAddress ?? ''}/metrics`)).text();
    assert.match(metrics, /^gridpulse_edge_local_alerts_opened_total 1$/m);
    assert.match(metrics, /^gridpulse_edge_local_readings_total 120$/m);
    const listed = (await (await fetch(`${agent.statusAddress ?? ''}/status`)).json()) as { detection?: { recent: Array<{ type: string; kind: string }> } };
    assert.ok(listed.detection?.recent.some((e) => e.type === 'spike' && e.kind === 'open'));

    // The same reading collected again (a device retrying) is checked once.
    const again = JSON.stringify({ meterId: 'm-1', siteId: 's-1', timestamp: T0 + 119 * STEP, usageKw: 10 + (119 % 3) * 0.1 });
    assert.equal((await fetch(`${http}/v1/streams/power/readings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: again })).status, 200);
    assert.equal(agent.status().spool.unsent, 121, 'spooled again (the platform drops the copy by id)');
    assert.equal(agent.status().detection?.readings, 120);
  });
});

test('only the configured detectors run on the agent', async () => {
  await withAgent({ stream: 'power', detectors: ['drop'] }, async (agent, http) => {
    await postMeter(http, 120, 60);
    const detection = agent.status().detection;
    assert.equal(detection?.readings, 120);
    assert.equal(detection?.alertsOpened, 0, JSON.stringify(detection?.recent));
    const metrics = await (await fetch(`${agent.statusAddress ?? ''}/metrics`)).text();
    assert.match(metrics, /^gridpulse_edge_local_alerts_opened_total 0$/m);
  });
});

test('without detect the agent runs no detection and says nothing about it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gp-edge-detect-'));
  try {
    const config = parseEdgeConfig({ agent: { dataDir: dir }, forward: { url: 'http://127.0.0.1:1' }, status: { port: 0 }, collectors: [{ type: 'http', port: 0 }] });
    assert.equal(config.detect, undefined);
    const agent = createEdgeAgent({ config });
    await agent.start();
    try {
      assert.equal(agent.status().detection, undefined);
      const metrics = await (await fetch(`${agent.statusAddress ?? ''}/metrics`)).text();
      assert.doesNotMatch(metrics, /gridpulse_edge_local_/);
    } finally {
      await agent.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('detect config: the stream, its detectors and a gridpulse.yaml are checked, naming the path', () => {
  const base = { forward: { url: 'http://127.0.0.1:8080' }, collectors: [{ type: 'stdin' }] };
  const issuesOf = (detect: unknown): string => {
    try {
      parseEdgeConfig({ ...base, detect });
    } catch (error) {
      assert.ok(error instanceof GpError);
      assert.equal(error.code, 'GP_CONFIG_INVALID');
      return error.message;
    }
    return 'no error';
  };
  assert.match(issuesOf({ stream: 'gas' }), /\/detect\/stream: expected a stream both the agent \(streams\) and the platform config know \(power, machines\), got "gas"/);
  assert.match(issuesOf({ stream: 'power', detectors: ['spike', 'sparkle'] }), /\/detect\/detectors\/1: expected one of the detectors of stream power \(.*spike.*\), got "sparkle"/);
  assert.match(issuesOf({ stream: 'power', detectors: [] }), /\/detect\/detectors/);
  assert.match(issuesOf({ stream: 'power', config: '/nonexistent/gridpulse.yaml' }), /\/detect\/config: expected a valid gridpulse config, got: .*not found/);

  // A rule is chosen by its name; a detector off by default is turned on by naming it.
  const machines = parseEdgeConfig({ ...base, detect: { stream: 'machines', detectors: ['overstrain'] } }).detect;
  assert.deepEqual(machines?.schema.detectors.map((d) => d.alertType ?? d.type), ['overstrain']);
  const zscore = parseEdgeConfig({ ...base, detect: { stream: 'power', detectors: ['zscore'] } }).detect;
  assert.deepEqual(zscore?.schema.detectors.map((d) => [d.type, d.enabled]), [['zscore', true]]);
  // Without a list: the stream's enabled detectors; readings deduplicate by the agent's id field.
  const all = parseEdgeConfig({ ...base, detect: { stream: 'power' } }).detect;
  assert.ok(all?.detectors.includes('spike') && !all.detectors.includes('zscore'), String(all?.detectors));
  assert.equal(all?.schema.idField, 'readingId');

  // The stream may come from the platform's own config file.
  const dir = mkdtempSync(join(tmpdir(), 'gp-edge-detect-'));
  try {
    writeFileSync(join(dir, 'gridpulse.yaml'), 'streams:\n  power:\n    detectors:\n      - type: spike\n        metrics: [usageKw]\n        params: { threshold: 1 }\n');
    const custom = parseEdgeConfig({ ...base, detect: { stream: 'power', config: 'gridpulse.yaml' } }, { cwd: dir }).detect;
    assert.deepEqual(custom?.detectors, ['spike']);
    assert.equal(custom?.schema.detectors[0]?.params.threshold, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the agent\'s HTTP collector answers 404 naming the streams for a stream the config does not declare, and spools nothing of it', async () => {
  await withAgent({ stream: 'power', detectors: ['spike'] }, async (agent, http) => {
    const response = await fetch(`${http}/v1/streams/gas/readings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ meterId: 'm-1', timestamp: T0, usageKw: 1 }) });
    assert.equal(response.status, 404);
    const body = (await response.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'GP_NOT_FOUND');
    assert.match(body.error.message, /^stream: expected one of power.*, got "gas"$/);
    assert.equal(agent.status().spool.unsent, 0);
  });
});
