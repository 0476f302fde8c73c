import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  FaultProxy,
  Fleet,
  agentStatus,
  edgeConfig,
  startAgent,
  startPlatform,
  stopChild,
  storedReadings,
  waitPlatformIdle,
  waitUntil,
  type Child,
} from './edge-harness.js';

// 200 meters every 100 ms: 2,000 readings/s into the agent's HTTP collector, through every outage.
const DEVICES = 200;
const TICK_MS = 100;
// GP_EDGE_STOPS="3" shortens a local run while debugging; GP_EDGE_LONG=1 adds the 300 s outage.
const STOPS_S = process.env.GP_EDGE_STOPS !== undefined ? process.env.GP_EDGE_STOPS.split(',').map(Number) : process.env.GP_EDGE_LONG === '1' ? [10, 70, 300] : [10, 70];
const FAULT_S = 4;

test(`outages (platform stopped ${STOPS_S.join(' s, ')} s; hangs, resets, responses dropped after storing) at 2,000 readings/s: every acknowledged reading is stored exactly once`, { timeout: 900_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gp-edge-outage-'));
  const platformDir = join(dir, 'platform');
  const proxy = new FaultProxy();
  const fleet = new Fleet(DEVICES, TICK_MS);
  let platform: (Child & { address: string }) | undefined;
  let agent: Awaited<ReturnType<typeof startAgent>> | undefined;
  try {
    await proxy.start();
    platform = await startPlatform(platformDir);
    proxy.setTarget(platform.address);
    agent = await startAgent(edgeConfig(dir, { url: proxy.url }));
    const statusUrl = agent.status;
    fleet.start(agent.http);
    await new Promise((r) => setTimeout(r, 2000));

    const figures: string[] = [];
    // Peak spool bytes during a scenario, sampled every 200 ms.
    const during = async (what: string, run: () => Promise<void>): Promise<void> => {
      let peak = 0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          peak = Math.max(peak, (await agentStatus(statusUrl)).spool.bytes);
          await new Promise((r) => setTimeout(r, 200));
        }
      })();
      await run();
      const recovered = Date.now();
      const drain = await waitUntil(async () => (await agentStatus(statusUrl)).spool.unsent < DEVICES * 2, 600_000, `the spool to drain after ${what}`);
      sampling = false;
      await sampler;
      const line = `${what}: peak spool ${(peak / 1024 / 1024).toFixed(1)} MiB, drained in ${((Date.now() - recovered) / 1000).toFixed(1)} s (${drain} ms to under one tick of readings unsent)`;
      figures.push(line);
      t.diagnostic(line);
    };

    for (const seconds of STOPS_S) {
      await during(`platform stopped ${seconds} s`, async () => {
        await stopChild(platform!);
        await new Promise((r) => setTimeout(r, seconds * 1000));
        platform = await startPlatform(platformDir);
        proxy.setTarget(platform.address);
      });
    }
    for (const mode of ['hang', 'reset', 'drop-response'] as const) {
      await during(`proxy ${mode} ${FAULT_S} s`, async () => {
        proxy.mode = mode;
        proxy.cutAll();
        await new Promise((r) => setTimeout(r, FAULT_S * 1000));
        proxy.mode = 'pass';
        proxy.cutAll();
      });
    }
    assert.ok(proxy.droppedResponses > 0, 'the proxy dropped answers of requests the platform had stored');

    await fleet.stop();
    await waitUntil(async () => (await agentStatus(statusUrl)).spool.unsent === 0, 120_000, 'the last readings to be forwarded');
    const status = await agentStatus(statusUrl);
    assert.ok(status.forwarder.retries > 0, 'the forwarder retried');
    assert.ok(status.forwarder.backfilled > 0, 'readings sent after an outage were marked as backfill');
    assert.equal(status.forwarder.rejectedByPlatform, 0);
    await waitPlatformIdle(platform.address);
    await stopChild(platform);
    platform = undefined;

    const stored = await storedReadings(platformDir);
    let missing = 0;
    for (const id of fleet.acknowledged) if (!stored.has(id)) missing++;
    const duplicated = [...stored.values()].filter((n) => n > 1).length;
    t.diagnostic(`${fleet.acknowledged.size} readings acknowledged by the agent (${fleet.sent} sent, ${fleet.failedPosts} posts failed), ${stored.size} stored, ${missing} missing, ${duplicated} stored more than once; ${proxy.droppedResponses} answers dropped`);
    console.log(figures.join('\n'));
    assert.ok(fleet.acknowledged.size > DEVICES * 10 * (STOPS_S.reduce((a, b) => a + b, 0) + 3 * FAULT_S), 'the fleet kept posting at about 2,000 readings/s through the outages');
    assert.equal(missing, 0, 'no acknowledged reading is lost');
    assert.equal(duplicated, 0, 'no reading is stored twice (copies sent again are dropped by id)');
    assert.equal(stored.size, fleet.acknowledged.size, 'nothing but the acknowledged readings is stored');
  } finally {
    await fleet.stop();
    if (agent !== undefined) await stopChild(agent);
    if (platform !== undefined) await stopChild(platform);
    await proxy.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
