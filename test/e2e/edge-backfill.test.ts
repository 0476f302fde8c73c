import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { FaultProxy, agentStatus, edgeConfig, startAgent, startPlatform, stopChild, storedReadings, waitPlatformIdle, waitUntil, type Child } from './edge-harness.js';

// Three meters, one reading every 10 s of event time (an hour ago, so that every reading is in the
// past), posted to a real agent in front of a real `gridpulse up`. m-a spikes while the link is down
// (its readings reach the platform as backfill); m-b spikes the same way once the link is back.
const STEP = 10_000;
const T0 = Math.floor((Date.now() - 3_600_000) / 60_000) * 60_000;
const DEVICES = ['m-a', 'm-b', 'm-c'];
const OUTAGE = [60, 150] as const; // readings [60, 150) are collected while the platform is unreachable
const SPIKE_A = 90;
const SPIKE_B = 180;
const END = 240;

function reading(device: string, i: number): Record<string, unknown> {
  const spike = (device === 'm-a' && i >= SPIKE_A && i < SPIKE_A + 3) || (device === 'm-b' && i >= SPIKE_B && i < SPIKE_B + 3);
  return { meterId: device, siteId: 's-1', timestamp: T0 + i * STEP, usageKw: spike ? 30 : 10 + (i % 3) * 0.1 };
}

async function post(http: string, from: number, to: number): Promise<void> {
  for (let start = from; start < to; start += 30) {
    const lines: string[] = [];
    for (let i = start; i < Math.min(to, start + 30); i++) for (const d of DEVICES) lines.push(JSON.stringify(reading(d, i)));
    const response = await fetch(`${http}/v1/streams/power/readings`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: lines.join('\n') });
    assert.equal(response.status, 200, await response.text());
  }
}

async function query(dataDir: string, sql: string): Promise<unknown[][]> {
  const instance = await DuckDBInstance.create(join(dataDir, 'gridpulse.duckdb'));
  const connection = await instance.connect();
  try {
    return (await connection.runAndReadAll(sql)).getRows();
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

test('after an outage the platform stores and aggregates the backfilled readings, records them as late backfill, and raises no live alert for a spike inside them', { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gp-edge-backfill-'));
  const platformDir = join(dir, 'platform');
  const proxy = new FaultProxy();
  let platform: (Child & { address: string }) | undefined;
  let agent: Awaited<ReturnType<typeof startAgent>> | undefined;
  try {
    await proxy.start();
    platform = await startPlatform(platformDir);
    proxy.setTarget(platform.address);
    agent = await startAgent(edgeConfig(dir, { url: proxy.url })); // backfillAfter: 5s
    const statusUrl = agent.status;

    // Link up: an hour-old start, forwarded live.
    await post(agent.http, 0, OUTAGE[0]);
    await waitUntil(async () => (await agentStatus(statusUrl)).spool.unsent === 0, 30_000, 'the first readings to be forwarded');
    assert.equal((await agentStatus(statusUrl)).forwarder.backfilled, 0, 'nothing is backfill while the link is up');

    // Link down: the agent spools, m-a spikes; the readings wait longer than backfillAfter.
    proxy.mode = 'refuse';
    proxy.cutAll();
    await post(agent.http, OUTAGE[0], OUTAGE[1]);
    await new Promise((r) => setTimeout(r, 6500));
    assert.equal((await agentStatus(statusUrl)).spool.unsent, (OUTAGE[1] - OUTAGE[0]) * DEVICES.length);

    // Link back: the spool drains as backfill; then live readings, with m-b spiking.
    proxy.mode = 'pass';
    await waitUntil(async () => (await agentStatus(statusUrl)).spool.unsent === 0, 60_000, 'the spool to drain');
    const backfilled = (await agentStatus(statusUrl)).forwarder.backfilled;
    assert.equal(backfilled, (OUTAGE[1] - OUTAGE[0]) * DEVICES.length, 'every reading of the outage went as backfill');
    await post(agent.http, OUTAGE[1], END);
    await waitUntil(async () => (await agentStatus(statusUrl)).spool.unsent === 0, 30_000, 'the live readings to be forwarded');
    assert.equal((await agentStatus(statusUrl)).forwarder.backfilled, backfilled, 'readings sent promptly are live');
    await waitPlatformIdle(platform.address);
    await stopChild(agent);
    agent = undefined;
    await stopChild(platform);
    platform = undefined;

    // Every reading is stored once.
    const stored = await storedReadings(platformDir);
    for (const d of DEVICES) for (let i = 0; i < END; i++) assert.equal(stored.get(`${d}|${T0 + i * STEP}`), 1, `${d} reading ${i}`);

    // Each backfill reading is on ops as late data, saying backfill; nothing else is.
    const late = await query(platformDir, `SELECT key, count(*), min(time_ms), max(time_ms) FROM ops WHERE kind = 'late' AND reason LIKE 'backfill:%' GROUP BY key ORDER BY key`);
    assert.deepEqual(
      late.map((row) => [String(row[0]), Number(row[1]), Number(row[2]), Number(row[3])]),
      DEVICES.map((d) => [d, OUTAGE[1] - OUTAGE[0], T0 + OUTAGE[0] * STEP, T0 + (OUTAGE[1] - 1) * STEP]),
    );

    // The spike is in the aggregates: the 1-minute window holding it has a maximum of 30 kW.
    const spikeAt = T0 + SPIKE_A * STEP;
    const windows = await query(
      platformDir,
      `SELECT max(stat_max), max(reading_count) FROM aggregates WHERE key = 'm-a' AND metric = 'usageKw' AND window_name = '1m' AND start_ms <= ${spikeAt} AND end_ms > ${spikeAt}`,
    );
    assert.deepEqual(windows.map((row) => [Number(row[0]), Number(row[1])]), [[30, 6]]);

    // No alert for m-a's old spike; the same spike live (m-b) opens one.
    const alerts = await query(platformDir, `SELECT key, type, opened_at_ms FROM alerts ORDER BY key, opened_at_ms`);
    const described = alerts.map((row) => `${String(row[0])} ${String(row[1])} at reading ${(Number(row[2]) - T0) / STEP}`);
    assert.deepEqual(
      described.filter((a) => a.startsWith('m-a')),
      [],
      `no alert from backfilled data (alerts: ${described.join('; ')})`,
    );
    assert.ok(described.includes(`m-b spike at reading ${SPIKE_B}`), `the live spike of m-b opened an alert (alerts: ${described.join('; ')})`);
  } finally {
    if (agent !== undefined) await stopChild(agent);
    if (platform !== undefined) await stopChild(platform);
    await proxy.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
