import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FaultProxy, Fleet, agentStatus, edgeConfig, startAgent, startPlatform, stopChild, storedReadings, waitPlatformIdle, waitUntil, type Child } from './edge-harness.js';

const KILLS = 20;
const DEVICES = 200;

test(`SIGKILL the agent ${KILLS} times during an outage: every reading it acknowledged as durable is delivered, once`, { timeout: 300_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gp-edge-crash-'));
  const platformDir = join(dir, 'platform');
  const proxy = new FaultProxy();
  const fleet = new Fleet(DEVICES, 100);
  let platform: (Child & { address: string }) | undefined;
  let agent: Awaited<ReturnType<typeof startAgent>> | undefined;
  try {
    await proxy.start();
    platform = await startPlatform(platformDir);
    proxy.setTarget(platform.address);
    proxy.mode = 'refuse'; // the outage: the link is down the whole time the agent is killed
    const config = edgeConfig(dir, { url: proxy.url });
    let tornTails = 0;
    for (let kill = 0; kill < KILLS; kill++) {
      agent = await startAgent(config);
      if (/spool recovery: cut \d+ bytes/.test(agent.output())) tornTails++;
      fleet.start(agent.http);
      // Kill at a different moment each time, while posts are in flight.
      await new Promise((r) => setTimeout(r, 300 + ((kill * 137) % 700)));
      agent.child.kill('SIGKILL');
      await agent.exited;
      agent = undefined;
    }
    await fleet.stop();
    const acknowledged = fleet.acknowledged.size;
    assert.ok(acknowledged > DEVICES * KILLS, `readings were acknowledged between the kills (${acknowledged})`);

    // The link comes back: a last run of the agent forwards everything its spool holds.
    proxy.mode = 'pass';
    agent = await startAgent(config);
    const statusUrl = agent.status;
    await waitUntil(async () => (await agentStatus(statusUrl)).spool.unsent === 0, 120_000, 'the spool to drain');
    await waitPlatformIdle(platform.address);
    await stopChild(platform);
    platform = undefined;
    const stored = await storedReadings(platformDir);
    let missing = 0;
    for (const id of fleet.acknowledged) if (!stored.has(id)) missing++;
    const duplicated = [...stored.values()].filter((n) => n > 1).length;
    t.diagnostic(`${KILLS} kills: ${acknowledged} readings acknowledged (${fleet.failedPosts} posts failed while the agent was down), ${stored.size} stored, ${missing} missing, ${duplicated} duplicated; ${tornTails} restarts cut a torn tail`);
    assert.equal(missing, 0, 'every acknowledged reading is delivered');
    assert.equal(duplicated, 0, 'none twice');
    // Readings spooled but killed before the answer may be delivered too; nothing else is.
    assert.ok(stored.size >= acknowledged && stored.size <= fleet.sent, `stored ${stored.size}: between acknowledged ${acknowledged} and sent ${fleet.sent}`);
  } finally {
    await fleet.stop();
    if (agent !== undefined) await stopChild(agent);
    if (platform !== undefined) await stopChild(platform);
    await proxy.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
