// A file replayed with a detected layout (`gridpulse replay meters.csv`) is stored under a stream
// of its own, which `gridpulse up` on the same store does not declare. Its devices are listed on
// the dashboard; their series must load too (the series route refused every metric the config
// does not declare: "metric: expected one of usageKw, voltage, …").
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createApiApp } from '../../src/api/index.js';
import { replay } from '../../src/cli/commands/replay.js';
import { createPlatform, type PlatformRuntime } from '../../src/cli/platform.js';
import { parseConfig } from '../../src/config/index.js';
import { errorOf } from './api-harness.js';

const FIXTURE = new URL('../fixtures/lcl-2meters-excerpt.csv', import.meta.url).pathname;
const STREAM = 'lcl-2meters-excerpt';
const METRIC = 'kwh_per_halfhour_kw';

let dir = '';
let platform: PlatformRuntime;
let app: FastifyInstance;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gridpulse-replayed-'));
  const url = `duckdb:${join(dir, 'gridpulse.duckdb')}`;
  await replay({ files: [FIXTURE], hints: {}, store: url });
  const { config } = parseConfig({ dataDir: dir, store: { url }, simulator: { enabled: false } });
  platform = createPlatform({ config: config!, simulator: false });
  await platform.start();
  app = await createApiApp({ platform, server: config!.server });
});
after(async () => {
  await app?.close();
  await platform?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('the series of a device of a replayed stream loads, with or without the stream named', async () => {
  const devices = (await app.inject({ url: '/api/devices' })).json<{ devices: Array<{ stream: string; key: string; lastSeen: number }> }>().devices;
  const device = devices.find((d) => d.key === 'MAC000002');
  assert.equal(device?.stream, STREAM, 'the replayed meter is listed under its detected stream');
  const to = device.lastSeen;
  for (const streamParam of ['', `&stream=${STREAM}`]) {
    const response = await app.inject({ url: `/api/devices/MAC000002/series?metric=${METRIC}&resolution=15m&from=${to - 86_400_000}&to=${to}${streamParam}` });
    assert.equal(response.statusCode, 200, `${streamParam}: ${response.body}`);
    const body = response.json<{ metric: string; points: Array<{ time: number; avg: number | null }> }>();
    assert.equal(body.metric, METRIC);
    assert.ok(body.points.length >= 40, `a day of half-hourly readings (${body.points.length} points)`);
    assert.ok(body.points.every((p) => typeof p.avg === 'number' && p.avg >= 0));
  }
});

test('an unknown metric or stream of such a device is a 400 that lists the stored ones beside the declared ones', async () => {
  const metric = await app.inject({ url: '/api/devices/MAC000002/series?metric=nope' });
  assert.equal(metric.statusCode, 400);
  assert.equal(errorOf(metric).field, 'metric');
  assert.match(errorOf(metric).expected ?? '', new RegExp(`usageKw.*${METRIC}`));
  const stream = await app.inject({ url: `/api/devices/MAC000002/series?metric=${METRIC}&stream=gas` });
  assert.equal(stream.statusCode, 400);
  assert.equal(errorOf(stream).field, 'stream');
  assert.match(errorOf(stream).expected ?? '', new RegExp(`power, machines, ${STREAM}`));
  // A declared stream's metric is still checked against that stream.
  const declared = await app.inject({ url: `/api/devices/MAC000002/series?metric=${METRIC}&stream=power` });
  assert.equal(declared.statusCode, 400);
  assert.equal(errorOf(declared).field, 'metric');
});

test('the devices list filters on a replayed stream too; a stream neither declared nor stored is a 400 listing both kinds', async () => {
  const listed = await app.inject({ url: `/api/devices?stream=${STREAM}` });
  assert.equal(listed.statusCode, 200, listed.body);
  const devices = listed.json<{ devices: Array<{ stream: string; key: string }> }>().devices;
  assert.deepEqual(devices.map((d) => `${d.stream}/${d.key}`).sort(), [`${STREAM}/MAC000002`, `${STREAM}/MAC000003`]);
  const declaredButEmpty = await app.inject({ url: '/api/devices?stream=machines' });
  assert.equal(declaredButEmpty.statusCode, 200);
  assert.deepEqual(declaredButEmpty.json<{ devices: unknown[] }>().devices, []);
  const unknown = await app.inject({ url: '/api/devices?stream=gas' });
  assert.equal(unknown.statusCode, 400);
  assert.equal(errorOf(unknown).field, 'stream');
  assert.match(errorOf(unknown).expected ?? '', new RegExp(`power, machines, ${STREAM}`));
});
