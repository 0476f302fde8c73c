// `gridpulse process --metrics-port`: a Kafka group member answers /healthz, /readyz, /status and
// /metrics (Prometheus) with what it owns and how far behind it is.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { checkpointedUpTo, produce, startPrivateKafka, startProcess, TestDatabases, type PrivateKafka, type Running } from '../helpers/kafka-processes.js';

const ROOT = resolve(import.meta.dirname, '../..');
const run = `${process.pid}-${Date.now()}`;
const dir = mkdtempSync(join(tmpdir(), 'gp-kafka-metrics-'));
const databases = new TestDatabases(`gp_kmet_${run}`);
let broker: PrivateKafka | undefined;
let member: Running | undefined;

before(() => {
  broker = startPrivateKafka(dir);
});

after(async () => {
  member?.child.kill('SIGKILL');
  await member?.exit;
  broker?.stop();
  await databases.dropAll();
  rmSync(dir, { recursive: true, force: true });
});

async function addressOf(running: Running): Promise<string> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const found = /metrics on (http:\/\/[^\s/]+)\/metrics/.exec(running.output());
    if (found !== null) return found[1]!;
    if (Date.now() > deadline) assert.fail(`the member did not say where its metrics are:\n${running.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('a member with --metrics-port reports its partitions, offsets, lag and checkpoints on /status and /metrics', { timeout: 180_000 }, async () => {
  const storeUrl = await databases.create('store');
  const topic = `metrics-power-${run}`;
  const group = `metrics-${run}`;
  const lines: string[] = [];
  for (let step = 0; step < 120; step++) {
    for (let m = 0; m < 10; m++) lines.push(JSON.stringify({ meterId: `m-${m}`, siteId: 's-1', timestamp: Date.UTC(2026, 0, 5) + step * 30_000 + m * 10, usageKw: 2 + (m % 3) * 0.1 }));
  }
  await produce(broker!.url, topic, lines);
  member = startProcess({ kafkaUrl: broker!.url, storeUrl, group, topic, dir, name: 'member', untilEnd: false, extraArgs: ['--metrics-port', '0'] });
  const address = await addressOf(member);
  await checkpointedUpTo(storeUrl, group, lines.length, [member]);

  assert.equal((await fetch(`${address}/healthz`)).status, 200);
  assert.equal((await fetch(`${address}/readyz`)).status, 200);
  const status = (await (await fetch(`${address}/status`)).json()) as { group: string; joined: boolean; totals: { records: number }; partitions: Array<{ topic: string; stream: string; offset: number; endOffset: number; lag: number; readings: number }> };
  assert.equal(status.group, group);
  assert.equal(status.joined, true);
  assert.equal(status.partitions.length, 4, 'the one member owns the topic’s 4 partitions');
  assert.ok(status.partitions.every((p) => p.topic === topic && p.stream === 'power' && p.lag === 0 && p.offset === p.endOffset), JSON.stringify(status.partitions));
  assert.equal(status.partitions.reduce((sum, p) => sum + p.offset, 0), lines.length);
  assert.equal(status.partitions.reduce((sum, p) => sum + p.readings, 0), lines.length);
  assert.equal(status.totals.records, lines.length);

  const metrics = await fetch(`${address}/metrics`);
  assert.match(metrics.headers.get('content-type') ?? '', /text\/plain/);
  const text = await metrics.text();
  assert.match(text, new RegExp(`^gridpulse_process_records_total\\{group="${group}"\\} ${lines.length}$`, 'm'));
  assert.match(text, new RegExp(`^gridpulse_process_partitions_owned\\{group="${group}"\\} 4$`, 'm'));
  const lags = [...text.matchAll(/^gridpulse_process_partition_lag\{([^}]*)\} (\d+)$/gm)];
  assert.equal(lags.length, 4, text);
  assert.ok(lags.every((found) => found[2] === '0' && found[1]!.includes(`topic="${topic}"`)));
  assert.match(text, /^gridpulse_process_checkpoints_total\{group="[^"]+"\} [1-9]\d*$/m);

  const missing = await fetch(`${address}/nope`);
  assert.equal(missing.status, 404);
  assert.match(((await missing.json()) as { error: { message: string } }).error.message, /\/healthz, \/readyz, \/status, \/metrics/);
});

test('a --metrics-port that is not a port is refused before anything starts, naming the flag', () => {
  const tsx = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
  const ran = spawnSync(process.execPath, ['--import', tsx, join(ROOT, 'src/cli/main.ts'), 'process', '--log', 'kafka://127.0.0.1:1', '--metrics-port', '70000'], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
  assert.notEqual(ran.status, 0);
  assert.match(ran.stderr, /--metrics-port: expected a port number from 0 to 65535, got 70000/);
});
