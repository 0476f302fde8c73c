import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RedisClientType } from 'redis';
import { createApiApp } from '../../src/api/index.js';
import { createPlatform } from '../../src/cli/platform.js';
import { parseConfig } from '../../src/config/index.js';
import { GpError } from '../../src/model/index.js';
import { createRedisFeatureCache, type LiveFeatureSnapshot } from '../../src/stores/index.js';

// The live-feature cache against the Redis of this machine (127.0.0.1:6379). Every key of this run
// carries RUN in its prefix or device id, so parallel runs never meet, and is deleted at the end.
const REDIS_URL = 'redis://127.0.0.1:6379';
const RUN = `gptest-${process.pid}-${Date.now()}`;

async function connectRedis(): Promise<RedisClientType> {
  const { createClient } = await import('redis');
  const client = createClient({ url: REDIS_URL, socket: { connectTimeout: 3000, reconnectStrategy: false } }) as unknown as RedisClientType;
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (cause) {
    throw new Error('Redis not reachable on 127.0.0.1:6379 — start it with scripts/servers.sh start redis', { cause });
  }
  return client;
}

async function deleteKeys(client: RedisClientType, pattern: string): Promise<void> {
  for await (const keys of client.scanIterator({ MATCH: pattern, COUNT: 1000 })) if (keys.length > 0) await client.del(keys);
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A loopback port nothing listens on (bound once, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const machine = (key: string, torque: number | null, avg: number | null): LiveFeatureSnapshot => ({
  stream: 'machines',
  key,
  site: undefined,
  lastTime: Date.UTC(2026, 0, 5, 10, 0, 30),
  last: { air_temp_k: 300.1, rpm: 1500, torque_nm: torque },
  avg1m: avg === null ? {} : { air_temp_k: 300, rpm: 1498.5, torque_nm: avg },
  openAlerts: 1,
});

test('the cache writes last values, 1-minute averages and a meta hash, all with the TTL, and read gives the snapshot back', { timeout: 30_000 }, async () => {
  const redis = await connectRedis();
  const prefixes = { machines: `${RUN}:machine`, power: `${RUN}:meter` };
  const cache = createRedisFeatureCache({ url: REDIS_URL, ttlMs: 60_000, prefixes, batchDevices: 500 });
  try {
    await cache.ready();
    const meter: LiveFeatureSnapshot = { stream: 'power', key: 'm-1', site: 's-9', lastTime: 1_767_600_000_000, last: { usageKw: 3.25, pf: null }, avg1m: { usageKw: 3.1, pf: 0.97 }, openAlerts: 0 };
    const result = await cache.write([machine('machine-7', 42.8, 41.25), meter]);
    assert.deepEqual([result.written, result.failed.length, result.error], [2, 0, undefined]);

    assert.equal(cache.keyOf('machines', 'machine-7', 'torque_nm_1m_avg'), `${RUN}:machine:machine-7:torque_nm_1m_avg`);
    assert.equal(await redis.get(`${RUN}:machine:machine-7:torque_nm_1m_avg`), '41.25');
    assert.equal(await redis.get(`${RUN}:machine:machine-7:torque_nm_last`), '42.8');
    assert.equal(await redis.get(`${RUN}:meter:m-1:usageKw_last`), '3.25');
    assert.equal(await redis.get(`${RUN}:meter:m-1:pf_1m_avg`), '0.97');
    assert.equal(await redis.exists(`${RUN}:meter:m-1:pf_last`), 0, 'a metric without a value has no key');
    for (const key of [`${RUN}:machine:machine-7:torque_nm_1m_avg`, `${RUN}:machine:machine-7:rpm_last`, `${RUN}:machine:machine-7:meta`, `${RUN}:meter:m-1:meta`]) {
      const ttl = await redis.pTTL(key);
      assert.ok(ttl > 50_000 && ttl <= 60_000, `${key} expires within the TTL, got PTTL ${ttl}`);
    }
    const meta = await redis.hGetAll(`${RUN}:meter:m-1:meta`);
    assert.equal(meta.stream, 'power');
    assert.equal(meta.lastTime, '1767600000000');
    assert.equal(meta.site, 's-9');
    assert.equal(meta.metrics, 'usageKw,pf');

    assert.deepEqual(await cache.read('power', 'm-1'), meter);
    assert.deepEqual(await cache.read('machines', 'machine-7'), { ...machine('machine-7', 42.8, 41.25), avg1m: { air_temp_k: 300, rpm: 1498.5, torque_nm: 41.25 } });
    assert.deepEqual((await cache.find(['power', 'machines'], 'machine-7'))?.last.torque_nm, 42.8, 'find looks in every stream');
    assert.equal(await cache.read('machines', 'no-such-machine'), undefined);

    // A later write replaces the values; a value that became unknown loses its key.
    await cache.write([machine('machine-7', null, 44)]);
    assert.equal(await redis.exists(`${RUN}:machine:machine-7:torque_nm_last`), 0);
    assert.equal((await cache.read('machines', 'machine-7'))?.avg1m.torque_nm, 44);

    // 1 200 devices go in three pipelined batches of at most 500.
    const before = cache.stats().batches;
    const many = Array.from({ length: 1200 }, (_, i) => machine(`bulk-${i}`, i, i / 2));
    assert.equal((await cache.write(many)).written, 1200);
    assert.equal(cache.stats().batches - before, 3);
    assert.equal(await redis.get(`${RUN}:machine:bulk-1199:torque_nm_1m_avg`), '599.5');
    const stats = cache.stats();
    assert.deepEqual([stats.devicesWritten, stats.writeErrors, stats.connected], [1203, 0, true]);
  } finally {
    await cache.close();
    await deleteKeys(redis, `${RUN}:*`);
    await redis.close();
  }
});

test('keys expire after the TTL, so a device that went silent disappears from Redis', { timeout: 30_000 }, async () => {
  const redis = await connectRedis();
  const prefix = `${RUN}:expiry`;
  const cache = createRedisFeatureCache({ url: REDIS_URL, ttlMs: 400, prefixes: { machines: prefix } });
  try {
    await cache.ready();
    await cache.write([machine('quiet-1', 40, 39)]);
    assert.equal(await redis.get(`${prefix}:quiet-1:torque_nm_1m_avg`), '39');
    assert.ok((await redis.pTTL(`${prefix}:quiet-1:meta`)) <= 400);
    await waitFor('the keys to expire', async () => ((await redis.exists([`${prefix}:quiet-1:torque_nm_1m_avg`, `${prefix}:quiet-1:torque_nm_last`, `${prefix}:quiet-1:meta`])) === 0 ? true : undefined), 5000);
    assert.equal(await cache.read('machines', 'quiet-1'), undefined);
  } finally {
    await cache.close();
    await deleteKeys(redis, `${prefix}:*`);
    await redis.close();
  }
});

test('an unreachable Redis: ready fails with GP_STORE_FAILED, writes fail fast and are counted, warnings are throttled, nothing crashes', { timeout: 30_000 }, async () => {
  await (await connectRedis()).close(); // the machine's Redis is up: the failure below is the wrong port, not a missing server
  const port = await closedPort();
  const warnings: GpError[] = [];
  const cache = createRedisFeatureCache({ url: `redis://:hunter2@127.0.0.1:${port}`, ttlMs: 60_000, timeoutMs: 500, onWarning: (error) => warnings.push(error) });
  try {
    await assert.rejects(cache.ready(), (error: unknown) => {
      assert.ok(error instanceof GpError);
      assert.equal(error.code, 'GP_STORE_FAILED');
      assert.match(error.message, new RegExp(`^feature cache at redis://:\\*\\*\\*@127\\.0\\.0\\.1:${port} could not connect`));
      assert.doesNotMatch(error.message, /hunter2/);
      return true;
    });
    for (let i = 0; i < 3; i++) {
      const started = Date.now();
      const result = await cache.write([machine('machine-1', 40, 41), machine('machine-2', 40, 41)]);
      assert.ok(Date.now() - started < 400, 'a write while Redis is down fails at once instead of waiting');
      assert.equal(result.written, 0);
      assert.deepEqual(result.failed.map((f) => f.key), ['machine-1', 'machine-2'], 'the failed snapshots come back to be written later');
      assert.equal(result.error?.code, 'GP_STORE_FAILED');
    }
    const stats = cache.stats();
    assert.deepEqual([stats.writeErrors, stats.devicesFailed, stats.devicesWritten, stats.connected], [3, 6, 0, false]);
    assert.match(stats.lastError ?? '', /not connected/);
    assert.equal(warnings.length, 1, 'one warning for the first failure, then quiet until warnEveryMs has passed');
    assert.doesNotMatch(warnings[0]!.message, /hunter2/);
    await assert.rejects(cache.read('machines', 'machine-1'), { code: 'GP_STORE_FAILED' });
  } finally {
    await cache.close();
  }
});

/** A platform (embedded log, DuckDB in a temp dir, no simulator) with the given features section, behind the real app. */
async function startPlatform(redis: Record<string, unknown>, errors: Array<{ error: unknown; where: string }> = []) {
  const dir = mkdtempSync(join(tmpdir(), 'gp-redis-features-'));
  const { config, issues } = parseConfig({ dataDir: dir, simulator: { enabled: false }, features: { redis } });
  assert.deepEqual(issues, []);
  const platform = createPlatform({ config: config!, simulator: false, onError: (error, where) => errors.push({ error, where }) });
  await platform.start();
  const app = await createApiApp({ platform, server: config!.server });
  return {
    platform,
    app,
    async close() {
      await app.close();
      await platform.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const T0 = Date.UTC(2026, 0, 5, 10, 0, 0);
const machineLine = (id: string, at: number, torque: number): string =>
  JSON.stringify({ machine_id: id, timestamp: new Date(at).toISOString(), air_temp_k: 300, process_temp_k: 310, rpm: 1500, torque_nm: torque, tool_wear_min: 10 });

test('gridpulse up with features.redis: readings posted over HTTP show up as machine:{id}:torque_nm_1m_avg in Redis, with a TTL', { timeout: 60_000 }, async () => {
  const redis = await connectRedis();
  const id = `${RUN}-press`;
  const remote = `${RUN}-remote`;
  const h = await startPlatform({ url: REDIS_URL, ttl: '1m', interval: '100ms' });
  try {
    // Six readings in the minute 10:00 and one at 10:04, which moves the watermark (newest − 120 s) past 10:01 and closes that minute.
    const torques = [40, 41.5, 43, 44.5, 46, 47.5];
    const lines = torques.map((torque, i) => machineLine(id, T0 + i * 10_000, torque));
    lines.push(machineLine(id, T0 + 4 * 60_000, 50));
    const posted = await h.app.inject({ method: 'POST', url: '/v1/streams/machines/readings', headers: { 'content-type': 'application/x-ndjson' }, payload: lines.join('\n') });
    assert.equal(posted.statusCode, 200, posted.body);
    assert.equal(posted.json<{ accepted: number }>().accepted, 7);

    const expectedAverage = torques.reduce((sum, t) => sum + t, 0) / torques.length;
    const avgKey = `machine:${id}:torque_nm_1m_avg`;
    const avg = await waitFor(`${avgKey} in Redis`, async () => (await redis.get(avgKey)) ?? undefined);
    assert.equal(Number(avg), expectedAverage, 'the average of the six readings of 10:00');
    const ttl = await redis.pTTL(avgKey);
    assert.ok(ttl > 0 && ttl <= 60_000, `the key has the configured TTL (1m), got PTTL ${ttl}`);
    assert.equal(await redis.get(`machine:${id}:torque_nm_last`), '50');
    assert.equal(await redis.get(`machine:${id}:rpm_1m_avg`), '1500');
    const meta = await redis.hGetAll(`machine:${id}:meta`);
    assert.deepEqual([meta.stream, meta.lastTime], ['machines', String(T0 + 4 * 60_000)]);

    // The status route answers a device of this process from memory …
    const local = await h.app.inject({ url: `/api/machines/${id}/status` });
    assert.equal(local.statusCode, 200, local.body);
    assert.equal(local.json<{ features: Record<string, number> }>().features.torque_nm_1m_avg, expectedAverage);

    // … and a device another gridpulse process published to the same Redis from the cache.
    const other = createRedisFeatureCache({ url: REDIS_URL, ttlMs: 60_000 });
    await other.ready();
    await other.write([{ stream: 'machines', key: remote, site: undefined, lastTime: T0, last: { torque_nm: 61 }, avg1m: { torque_nm: 58.5 }, openAlerts: 2 }]);
    await other.close();
    const fromRedis = await h.app.inject({ url: `/api/machines/${remote}/status` });
    assert.equal(fromRedis.statusCode, 200, fromRedis.body);
    const body = fromRedis.json<{ stream: string; status: string; last_seen: string; features: Record<string, number | null> }>();
    assert.deepEqual([body.stream, body.status, body.last_seen], ['machines', 'alert', new Date(T0).toISOString()]);
    assert.equal(body.features.torque_nm_1m_avg, 58.5);
    assert.equal(body.features.last_torque_nm, 61);
    assert.equal((await h.app.inject({ url: `/api/machines/${RUN}-nowhere/status` })).statusCode, 404);

    const metrics = (await h.app.inject({ url: '/metrics' })).body;
    const written = Number(/^gridpulse_feature_cache_devices_written_total (\d+)$/m.exec(metrics)?.[1]);
    assert.ok(written >= 1, `devices written counted in /metrics, got ${written}`);
    // Nothing new arrives: the device is not written again, so its TTL runs down and it will expire.
    const ttlBefore = await redis.pTTL(avgKey);
    await new Promise((resolve) => setTimeout(resolve, 600));
    assert.equal(h.platform.featureCacheStats?.().devicesWritten, written, 'an unchanged device is not written again');
    assert.ok((await redis.pTTL(avgKey)) <= ttlBefore - 500, 'its TTL is not refreshed');
    assert.match(metrics, /^gridpulse_feature_cache_write_errors_total 0$/m);
    assert.match(metrics, /^gridpulse_feature_cache_connected 1$/m);
  } finally {
    await h.close();
    await deleteKeys(redis, `machine:${RUN}-*`);
    await redis.close();
  }
});

test('gridpulse up with a Redis that does not answer keeps ingesting and processing; the failed writes are counted and reported', { timeout: 60_000 }, async () => {
  await (await connectRedis()).close();
  const port = await closedPort();
  const errors: Array<{ error: unknown; where: string }> = [];
  const h = await startPlatform({ url: `redis://:hunter2@127.0.0.1:${port}`, ttl: '1m', interval: '100ms' }, errors);
  try {
    const lines = [0, 1, 2, 3].map((minute) => machineLine(`${RUN}-offline`, T0 + minute * 60_000, 40 + minute));
    const posted = await h.app.inject({ method: 'POST', url: '/v1/streams/machines/readings', headers: { 'content-type': 'application/x-ndjson' }, payload: lines.join('\n') });
    assert.equal(posted.statusCode, 200, posted.body);
    await h.platform.drain();
    assert.equal(h.platform.status().totals.processed, 4);
    // After the first connection attempt gives up (5 s), each interval's write fails fast and is counted.
    const metrics = await waitFor('a counted write error in /metrics', async () => {
      const text = (await h.app.inject({ url: '/metrics' })).body;
      return Number(/^gridpulse_feature_cache_write_errors_total (\d+)$/m.exec(text)?.[1]) >= 1 ? text : undefined;
    });
    assert.match(metrics, /^gridpulse_feature_cache_connected 0$/m);
    const status = await h.app.inject({ url: `/api/machines/${RUN}-offline/status` });
    assert.equal(status.statusCode, 200, 'the status route still answers from memory');
    assert.equal(status.json<{ features: Record<string, number> }>().features.last_torque_nm, 43);
    const unknown = await h.app.inject({ url: `/api/machines/${RUN}-nowhere/status` });
    assert.equal(unknown.statusCode, 404, 'a failing Redis lookup falls back to the store instead of a 5xx');
    const reported = errors.filter((e) => e.where === 'feature cache');
    assert.ok(reported.length >= 1 && reported.every((e) => e.error instanceof GpError && e.error.code === 'GP_STORE_FAILED'), JSON.stringify(errors.map((e) => String(e.error))));
    assert.ok(reported.every((e) => !String((e.error as Error).message).includes('hunter2')), 'the password never shows in a report');
  } finally {
    await h.close();
  }
});
