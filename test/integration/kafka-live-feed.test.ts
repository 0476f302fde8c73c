// The live feed of `gridpulse up --live-from kafka://…` in a Kafka deployment: a `gridpulse process`
// member writes its outputs to Kafka's output topics (--kafka-outputs) and its results to PostgreSQL;
// the platform on the same store follows the topics and puts the member's alert transitions,
// aggregates and ops events on its live feed (what the dashboard's SSE stream carries), once each.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LiveEvent } from '../../src/api/index.js';
import { createPlatform, type PlatformRuntime } from '../../src/cli/platform.js';
import { liveEventOf } from '../../src/cli/kafka-live.js';
import { parseConfig } from '../../src/config/index.js';
import { checkpointedUpTo, produce, query, startPrivateKafka, startProcess, TestDatabases, type PrivateKafka, type Running } from '../helpers/kafka-processes.js';

const run = `${process.pid}-${Date.now()}`;
const dir = mkdtempSync(join(tmpdir(), 'gp-kafka-live-'));
const databases = new TestDatabases(`gp_klive_${run}`);
const T0 = Date.UTC(2026, 0, 5, 0, 0, 0);
let broker: PrivateKafka | undefined;
let member: Running | undefined;
let platform: PlatformRuntime | undefined;

before(() => {
  broker = startPrivateKafka(dir);
});

after(async () => {
  member?.child.kill('SIGKILL');
  await member?.exit;
  await platform?.close();
  broker?.stop();
  await databases.dropAll();
  rmSync(dir, { recursive: true, force: true });
});

test("the platform's live feed carries the alert transitions, aggregates and ops events a gridpulse process member writes to the Kafka output topics, once each", { timeout: 240_000 }, async () => {
  const storeUrl = await databases.create('store');
  const topic = `live-power-${run}`;
  const group = `live-${run}`;
  const { config, issues } = parseConfig({ dataDir: join(dir, 'up'), store: { url: storeUrl }, simulator: { enabled: false } });
  assert.deepEqual(issues, []);
  const infos: string[] = [];
  platform = createPlatform({ config: config!, simulator: false, liveFrom: broker!.url, onInfo: (message) => infos.push(message) });
  await platform.start();
  assert.ok(infos.some((message) => /live feed: following gridpulse-aggregates, power-alerts, anomaly-alerts, gridpulse-ops/.test(message)), infos.join('\n'));
  const events: LiveEvent[] = [];
  platform.live.subscribe((event) => events.push(event));

  // 8 meters every 30 s for 2 hours; m-3 goes dark after the first hour (an outage alert), and one line is broken (an invalid ops event).
  const lines: string[] = [];
  for (let step = 0; step < 240; step++) {
    for (let m = 0; m < 8; m++) {
      const usageKw = m === 3 && step >= 120 ? 0 : 2 + ((step * 7 + m) % 10) * 0.02;
      lines.push(JSON.stringify({ meterId: `m-${m}`, siteId: 's-1', timestamp: T0 + step * 30_000 + m * 100, usageKw, voltage: 230, current: (usageKw * 1000) / 230 / 0.97, pf: 0.97 }));
    }
  }
  lines.push('{"meterId":"m-5","timestamp":"not a time","usageKw":1}');
  await produce(broker!.url, topic, lines);
  member = startProcess({ kafkaUrl: broker!.url, storeUrl, group, topic, dir, name: 'member', untilEnd: false, extraArgs: ['--kafka-outputs'] });
  await checkpointedUpTo(storeUrl, group, lines.length, [member]);

  const stored = await query<{ id: string; kind: string }>(storeUrl, 'SELECT id, kind FROM alert_transitions ORDER BY id');
  assert.ok(stored.some((row) => row.kind === 'open'), 'the member opened alerts');
  const storedWindows = await query<{ n: string }>(storeUrl, 'SELECT count(DISTINCT (key, window_name, start_ms)) AS n FROM aggregates');
  // Outputs reach Kafka before each checkpoint; the follower reads them a moment later.
  const deadline = Date.now() + 60_000;
  const alertIds = (): string[] => events.flatMap((event) => (event.type === 'alert' ? [event.data.transition.id] : []));
  const tumblingWindows = (): Set<string> => new Set(events.flatMap((event) => (event.type === 'aggregate' && !event.data.window.includes('/') ? [`${event.data.key}/${event.data.window}/${event.data.start}`] : [])));
  while (Date.now() < deadline && (new Set(alertIds()).size < stored.length || tumblingWindows().size < Number(storedWindows[0]!.n))) await new Promise((resolve) => setTimeout(resolve, 250));

  const received = alertIds();
  assert.deepEqual([...received].sort(), stored.map((row) => row.id), 'every transition the member stored came over the live feed, once');
  const outage = events.find((event) => event.type === 'alert' && event.data.alert.key === 'm-3' && event.data.alert.type === 'outage');
  assert.ok(outage?.type === 'alert' && outage.data.alert.site === 's-1' && outage.data.alert.resolvedAt === undefined, 'alert events come back with absent values absent, not null');
  assert.equal(tumblingWindows().size, Number(storedWindows[0]!.n), 'every tumbling window the member stored came over the live feed');
  const aggregate = events.find((event) => event.type === 'aggregate');
  assert.ok(aggregate?.type === 'aggregate' && aggregate.data.metrics.includes('usageKw') && aggregate.data.stats.length === aggregate.data.metrics.length * 8);
  // Device pages: the newest 1-minute window the member wrote, and the alerts open on the device.
  const newestEnd = Math.max(...events.flatMap((event) => (event.type === 'aggregate' && event.data.key === 'm-0' && event.data.window === '1m' ? [event.data.end] : [])));
  const m0 = platform.liveFeatures('m-0');
  assert.equal(m0?.stream, 'power');
  assert.equal(m0?.lastTime, newestEnd);
  assert.ok(typeof m0?.avg1m.usageKw === 'number' && m0.avg1m.usageKw > 1.9 && m0.avg1m.usageKw < 2.3, JSON.stringify(m0));
  const openOfM3 = await query<{ n: string }>(storeUrl, `SELECT count(*) AS n FROM alerts WHERE key = 'm-3' AND status <> 'resolved'`);
  assert.ok(Number(openOfM3[0]!.n) >= 1);
  assert.equal(platform.liveFeatures('m-3')?.openAlerts, Number(openOfM3[0]!.n), 'open alerts of a member-held device');
  assert.equal(platform.liveFeatures('m-3')?.last.usageKw, 0);
  assert.equal(platform.liveFeatures('no-such-meter'), undefined);
  assert.ok(events.some((event) => event.type === 'ops' && event.data.kind === 'invalid' && event.data.field === 'timestamp' && event.data.lagMs === undefined), 'the broken line came as an invalid ops event naming the field (absent values absent)');
});

test('an output message that is not gridpulse output is refused with the reason; audit snapshots are not live events', () => {
  assert.throws(() => liveEventOf(Buffer.from('{"schema":"someone.else/1"}')), /schema "someone.else\/1" is not a gridpulse output schema/);
  assert.throws(() => liveEventOf(Buffer.from('{"schema":"gridpulse.alert/1","alert":null}')), /without alert or transition/);
  assert.throws(() => liveEventOf(Buffer.from('not json')));
  assert.equal(liveEventOf(Buffer.from('{"schema":"gridpulse.audit/1","stream":"power","partition":0}')), undefined);
});
