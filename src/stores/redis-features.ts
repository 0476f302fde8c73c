import type { RedisClientType } from 'redis';
import { GpError } from '../model/index.js';

/**
 * A device's live features as the feature cache holds them: the newest reading's values and the
 * average of each metric over the newest closed 1-minute window. The same shape as the API's
 * `DeviceLiveFeatures` (stores may not import the API, so it is declared here again).
 */
export interface LiveFeatureSnapshot {
  stream: string;
  key: string;
  site: string | undefined;
  /** Event time of the newest reading (epoch ms). */
  lastTime: number;
  last: Record<string, number | null>;
  avg1m: Record<string, number | null>;
  openAlerts: number;
}

/** Key prefix per stream; a stream not listed uses its own name. */
export const DEFAULT_FEATURE_PREFIXES: Readonly<Record<string, string>> = { machines: 'machine', power: 'meter' };

export interface RedisFeatureCacheOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` (TLS). */
  url: string;
  /** Every key written gets this time to live (Redis PX), so a silent device's features expire. */
  ttlMs: number;
  /** Key prefix per stream, merged over `DEFAULT_FEATURE_PREFIXES`. */
  prefixes?: Readonly<Record<string, string>>;
  /** Devices per pipelined batch (one round trip each). Default 500. */
  batchDevices?: number;
  /** How long a connect or a batch may take before it counts as failed. Default 5000 ms. */
  timeoutMs?: number;
  /**
   * Told about failed writes (a GpError). Called for the first failure after a success and then at
   * most once per `warnEveryMs`, with the number of failures in between, so an outage does not flood logs.
   */
  onWarning?: (error: GpError) => void;
  /** Told when writes succeed again after failures. */
  onInfo?: (message: string) => void;
  /** Default 60 000 ms. */
  warnEveryMs?: number;
  /** Wall clock for the warning throttle and the `updatedAt` field. Default Date.now. */
  clock?: () => number;
}

/** Counters of a feature cache since it was created. */
export interface FeatureCacheStats {
  /** Device snapshots written. */
  devicesWritten: number;
  /** Redis keys set (values and meta hashes). */
  keysWritten: number;
  /** Pipelined batches written. */
  batches: number;
  /** Batches that failed (Redis down, timeout, error reply). */
  writeErrors: number;
  /** Device snapshots not written because their batch failed. */
  devicesFailed: number;
  lastError: string | null;
  connected: boolean;
}

/** What `write` did: failed snapshots are handed back so the caller can try them again. */
export interface FeatureWriteResult {
  written: number;
  failed: LiveFeatureSnapshot[];
  /** The first failure of this call, if any (already counted and reported to `onWarning`). */
  error: GpError | undefined;
}

/**
 * The live-feature cache in Redis, for other services to read a device's newest values.
 *
 * Key layout (prefix per stream: `machine` for `machines`, `meter` for `power`, else the stream
 * name; `{id}` is the device id as it arrived):
 * - `{prefix}:{id}:{metric}_last` — the newest reading's value (a decimal string);
 * - `{prefix}:{id}:{metric}_1m_avg` — the average over the newest closed 1-minute window;
 * - `{prefix}:{id}:meta` — a hash: `stream`, `lastTime` (epoch ms), `site` (empty when none),
 *   `openAlerts`, `metrics` (comma-separated names), `updatedAt` (epoch ms of the write).
 * Each write sets every key of the device with the same TTL (PX `ttlMs`); a metric with no value
 * has its key deleted. A device that stops changing is not written again, so its keys expire.
 *
 * Lifecycle: create → `ready()` (connects; the client is loaded only then) → `write`/`read` →
 * `close()` (idempotent). A Redis outage never throws from `write`: the failed batch is counted,
 * reported (throttled) and handed back; the client keeps reconnecting in the background.
 *
 * @example
 * const cache = createRedisFeatureCache({ url: 'redis://127.0.0.1:6379', ttlMs: 600_000 });
 * await cache.ready();
 * await cache.write([{ stream: 'machines', key: 'machine-001', site: undefined, lastTime: Date.now(), last: { torque_nm: 42.8 }, avg1m: { torque_nm: 41.9 }, openAlerts: 0 }]);
 * // GET machine:machine-001:torque_nm_1m_avg → "41.9"
 */
export interface RedisFeatureCache {
  readonly kind: 'redis';
  ready(): Promise<void>;
  write(features: readonly LiveFeatureSnapshot[]): Promise<FeatureWriteResult>;
  /** The snapshot of one device of a stream, or undefined when Redis has none (never written or expired). Throws GP_STORE_FAILED when Redis cannot answer. */
  read(stream: string, key: string): Promise<LiveFeatureSnapshot | undefined>;
  /** The snapshot of a device in the first of `streams` that has it (one round trip to look). */
  find(streams: readonly string[], key: string): Promise<LiveFeatureSnapshot | undefined>;
  /** The Redis key of one feature: `keyOf('machines', 'machine-001', 'torque_nm_1m_avg')` → `machine:machine-001:torque_nm_1m_avg`. */
  keyOf(stream: string, key: string, feature: string): string;
  stats(): FeatureCacheStats;
  close(): Promise<void>;
}

type Client = RedisClientType;

/** The commands a write queues on a pipeline (node-redis's multi types are too deep to name here). */
interface FeaturePipeline {
  set(key: string, value: string, options: { expiration: { type: 'PX'; value: number } }): unknown;
  del(key: string): unknown;
  hSet(key: string, value: Record<string, string>): unknown;
  pExpire(key: string, milliseconds: number): unknown;
}

const LAST_SUFFIX = '_last';
const AVG_SUFFIX = '_1m_avg';
const META = 'meta';

export function createRedisFeatureCache(options: RedisFeatureCacheOptions): RedisFeatureCache {
  const url = typeof options.url === 'string' ? options.url.trim() : '';
  if (!/^rediss?:\/\/[^/]/i.test(url)) {
    throw new GpError('GP_CONFIG_INVALID', `features.redis.url: expected a Redis URL like "redis://127.0.0.1:6379", got ${JSON.stringify(redact(String(options.url)))}`, {
      field: 'url',
    });
  }
  if (!Number.isFinite(options.ttlMs) || options.ttlMs < 1) {
    throw new GpError('GP_CONFIG_INVALID', `features.redis.ttl: expected a positive time to live in milliseconds, got ${String(options.ttlMs)}`, { field: 'ttl' });
  }
  const ttlMs = Math.round(options.ttlMs);
  const batchDevices = options.batchDevices ?? 500;
  if (!Number.isInteger(batchDevices) || batchDevices < 1) {
    throw new GpError('GP_CONFIG_INVALID', `batchDevices: expected a positive whole number, got ${String(options.batchDevices)}`, { field: 'batchDevices' });
  }
  const prefixes: Record<string, string> = { ...DEFAULT_FEATURE_PREFIXES, ...options.prefixes };
  for (const [stream, prefix] of Object.entries(prefixes)) {
    if (typeof prefix !== 'string' || prefix === '') {
      throw new GpError('GP_CONFIG_INVALID', `features.redis.prefixes.${stream}: expected a non-empty key prefix, got ${JSON.stringify(prefix)}`, { field: 'prefixes' });
    }
  }
  const timeoutMs = options.timeoutMs ?? 5000;
  const warnEveryMs = options.warnEveryMs ?? 60_000;
  const clock = options.clock ?? Date.now;
  const where = redact(url);

  const counters: Omit<FeatureCacheStats, 'connected'> = { devicesWritten: 0, keysWritten: 0, batches: 0, writeErrors: 0, devicesFailed: 0, lastError: null };
  let client: Client | undefined;
  let connecting: Promise<void> | undefined;
  let lastSocketError: string | undefined;
  let closed = false;
  // Throttled reporting: failures since the last warning, and when that warning went out.
  let failuresUnreported = 0;
  let lastWarnAt = Number.NEGATIVE_INFINITY;
  let failing = false;

  const prefixOf = (stream: string): string => prefixes[stream] ?? stream;
  const keyOf = (stream: string, key: string, feature: string): string => `${prefixOf(stream)}:${key}:${feature}`;

  const failure = (what: string, cause: unknown): GpError =>
    new GpError('GP_STORE_FAILED', `feature cache at ${where} could not ${what}: ${messageOf(cause)}`, { url: where, operation: what }, { cause });

  async function loadClient(): Promise<Client> {
    let redis: typeof import('redis');
    try {
      redis = await import('redis');
    } catch (cause) {
      throw new GpError('GP_STORE_FAILED', `the Redis feature cache needs the "redis" package: npm install redis (${messageOf(cause)})`, {}, { cause });
    }
    const created = redis.createClient({
      url,
      // Commands fail at once while disconnected instead of queueing without bound during an outage.
      disableOfflineQueue: true,
      socket: { connectTimeout: timeoutMs, reconnectStrategy: (retries: number) => Math.min(100 * 2 ** Math.min(retries, 10), 5000) },
    }) as unknown as Client;
    // Without a listener an 'error' event would crash the process; the failure shows in write results.
    created.on('error', (error: unknown) => {
      lastSocketError = messageOf(error);
    });
    return created;
  }

  /** Starts connecting once; the client then reconnects by itself after any outage. */
  function connect(): Promise<void> {
    connecting ??= (async () => {
      const created = await loadClient();
      client = created;
      await created.connect();
    })();
    return connecting;
  }

  function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      timer.unref();
    });
    // The losing promise may still settle later; its outcome is of no interest then.
    promise.catch(() => {});
    return Promise.race([promise, expired]).catch((cause: unknown) => {
      throw failure(what, cause);
    }).finally(() => clearTimeout(timer));
  }

  /** The connected client, or a GpError saying why there is none. */
  function readyClient(what: string): Client {
    if (closed) throw new GpError('GP_INTERNAL', 'the feature cache is closed: create a new one to keep using Redis');
    if (client?.isReady === true) return client;
    if (connecting === undefined) void connect().catch(() => {});
    throw failure(what, new Error(`not connected${lastSocketError === undefined ? '' : ` (${lastSocketError})`}; reconnecting in the background`));
  }

  function report(error: GpError): void {
    counters.writeErrors++;
    counters.lastError = error.message;
    failing = true;
    failuresUnreported++;
    const now = clock();
    if (now - lastWarnAt < warnEveryMs) return;
    const more = failuresUnreported > 1 ? ` (${failuresUnreported} failed batches since the last warning; features are written again once Redis answers)` : '';
    lastWarnAt = now;
    failuresUnreported = 0;
    options.onWarning?.(more === '' ? error : new GpError(error.code, `${error.message}${more}`, error.details, { cause: error.cause }));
  }

  function appendDevice(multi: FeaturePipeline, f: LiveFeatureSnapshot): number {
    const px = { expiration: { type: 'PX' as const, value: ttlMs } };
    const metrics = [...new Set([...Object.keys(f.last), ...Object.keys(f.avg1m)])];
    let keys = 0;
    for (const metric of metrics) {
      for (const [suffix, value] of [
        [LAST_SUFFIX, f.last[metric]],
        [AVG_SUFFIX, f.avg1m[metric]],
      ] as const) {
        const redisKey = keyOf(f.stream, f.key, `${metric}${suffix}`);
        if (typeof value === 'number' && Number.isFinite(value)) {
          multi.set(redisKey, String(value), px);
          keys++;
        } else {
          multi.del(redisKey);
        }
      }
    }
    const meta = keyOf(f.stream, f.key, META);
    multi.hSet(meta, {
      stream: f.stream,
      lastTime: String(f.lastTime),
      site: f.site ?? '',
      openAlerts: String(f.openAlerts),
      metrics: metrics.join(','),
      updatedAt: String(clock()),
    });
    multi.pExpire(meta, ttlMs);
    return keys + 1;
  }

  function snapshotOf(stream: string, key: string, meta: Record<string, string>, values: ReadonlyArray<string | null>, metrics: readonly string[]): LiveFeatureSnapshot {
    const last: Record<string, number | null> = {};
    const avg1m: Record<string, number | null> = {};
    metrics.forEach((metric, i) => {
      last[metric] = numberOrNull(values[2 * i]);
      avg1m[metric] = numberOrNull(values[2 * i + 1]);
    });
    return {
      stream: meta.stream || stream,
      key,
      site: meta.site ? meta.site : undefined,
      lastTime: Number(meta.lastTime),
      last,
      avg1m,
      openAlerts: Number(meta.openAlerts ?? 0) || 0,
    };
  }

  async function valuesOf(redis: Client, stream: string, key: string, meta: Record<string, string>): Promise<LiveFeatureSnapshot> {
    const metrics = (meta.metrics ?? '').split(',').filter((m) => m !== '');
    if (metrics.length === 0) return snapshotOf(stream, key, meta, [], metrics);
    const keys = metrics.flatMap((metric) => [keyOf(stream, key, `${metric}${LAST_SUFFIX}`), keyOf(stream, key, `${metric}${AVG_SUFFIX}`)]);
    const values = await withTimeout(redis.mGet(keys), `read the features of ${stream} device ${JSON.stringify(key)}`);
    return snapshotOf(stream, key, meta, values, metrics);
  }

  return {
    kind: 'redis',

    async ready() {
      if (closed) throw new GpError('GP_INTERNAL', 'the feature cache is closed: create a new one to keep using Redis');
      if (client?.isReady === true) return;
      await withTimeout(connect(), 'connect');
    },

    async write(features) {
      const failed: LiveFeatureSnapshot[] = [];
      let firstError: GpError | undefined;
      let written = 0;
      for (let start = 0; start < features.length; start += batchDevices) {
        const batch = features.slice(start, start + batchDevices);
        try {
          const redis = readyClient(`write the features of ${batch.length} device(s)`);
          const multi = redis.multi();
          let keys = 0;
          for (const f of batch) keys += appendDevice(multi, f);
          // One round trip per batch; a pipeline, not MULTI/EXEC, so Redis is never blocked for a whole batch.
          await withTimeout(multi.execAsPipeline(), `write the features of ${batch.length} device(s)`);
          written += batch.length;
          counters.devicesWritten += batch.length;
          counters.keysWritten += keys;
          counters.batches++;
          if (failing) {
            failing = false;
            options.onInfo?.(`feature cache at ${where}: writing again after ${counters.writeErrors} failed batches in all`);
            failuresUnreported = 0;
            lastWarnAt = Number.NEGATIVE_INFINITY;
          }
        } catch (cause) {
          const error = cause instanceof GpError ? cause : failure('write features', cause);
          if (error.code === 'GP_INTERNAL') throw error;
          firstError ??= error;
          failed.push(...batch);
          counters.devicesFailed += batch.length;
          report(error);
        }
      }
      return { written, failed, error: firstError };
    },

    async read(stream, key) {
      const what = `read the features of ${stream} device ${JSON.stringify(key)}`;
      const redis = readyClient(what);
      const meta = await withTimeout(redis.hGetAll(keyOf(stream, key, META)), what);
      if (Object.keys(meta).length === 0) return undefined;
      return valuesOf(redis, stream, key, meta);
    },

    async find(streams, key) {
      const what = `look up device ${JSON.stringify(key)}`;
      const redis = readyClient(what);
      const multi = redis.multi();
      for (const stream of streams) multi.hGetAll(keyOf(stream, key, META));
      const metas = (await withTimeout(multi.execAsPipeline(), what)) as unknown as Array<Record<string, string>>;
      const at = metas.findIndex((meta) => meta !== null && typeof meta === 'object' && Object.keys(meta).length > 0);
      if (at < 0) return undefined;
      return valuesOf(redis, streams[at]!, key, metas[at]!);
    },

    keyOf,

    stats: () => ({ ...counters, connected: client?.isReady === true }),

    async close() {
      if (closed) return;
      closed = true;
      const current = client;
      if (current === undefined) {
        await connecting?.catch(() => {});
        return;
      }
      try {
        if (current.isReady) await withTimeout(current.close(), 'close');
        else current.destroy();
      } catch {
        current.destroy();
      }
    },
  };
}

function numberOrNull(text: string | null | undefined): number | null {
  if (text === null || text === undefined || text === '') return null;
  const value = Number(text);
  return Number.isFinite(value) ? value : null;
}

function messageOf(cause: unknown): string {
  if (cause instanceof AggregateError && cause.errors.length > 0) return cause.errors.map(messageOf).join('; ');
  if (cause instanceof Error) return cause.message || cause.name;
  return String(cause);
}

// A Redis URL may carry a password; it never goes into a message or a log.
function redact(url: string): string {
  return url.replace(/\/\/([^/@:]*):[^/@]*@/, '//$1:***@');
}
