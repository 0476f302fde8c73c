import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type {
  DeviceLiveFeatures,
  IngestAuth,
  IngestRejection,
  IngestResult,
  LiveEvent,
  LiveFeed,
  PlatformStatus,
  RecentReading,
  SimulationRequest,
  SimulationStarted,
} from '../api/index.js';
import type { ChannelMetrics, DeadLetter, RedeliveryResult } from '../alerts/index.js';
import { describeProblem, ReadingDecoder } from '../engine/index.js';
import { createLiveSimulator, type LiveSimulator } from '../ingest/index.js';
import { createFileLog, type AppendRecord, type Log, type LogRecovery, type ReadBatch } from '../log/index.js';
import { GpError, opsEvent, statOf, type Alert, type OpsEvent, type StatName, type StreamSchema } from '../model/index.js';
import { createRedisFeatureCache, type RedisFeatureCache, type Store } from '../stores/index.js';
import type { PlatformOptions, PlatformRuntime } from './platform.js';
import { canQueueAlertActions, createAlertActionQueue, forwardAlertAction, type AlertActionQueue } from './alert-actions.js';
import { createKafkaLiveFollower, type KafkaLiveFollower } from './kafka-live.js';
import { createMlPlatformMethods } from './platform-ml.js';
import { deserializeError, type EngineCall, type EngineStats, type EngineWorkerData, type FeatureUpdate, type FromWorker, type RecordBatch, type ToWorker } from './platform-protocol.js';

/** The log consumer name under which the engine commits its offsets. */
const ENGINE_CONSUMER = 'engine';
const RATE_WINDOW_S = 10;
const READ_BATCH = 5000;
/** Records sent to the engine worker and not yet processed; the log is the buffer beyond this. */
const MAX_IN_FLIGHT = 50_000;
/** The engine worker's young generation (V8 semi-spaces), MB; see startEngineWorker. */
const ENGINE_YOUNG_GENERATION_MB = 96;

/** The main thread's copy of a device's live features, refreshed by the engine worker. */
interface DeviceMirror {
  stream: number;
  site: string | undefined;
  lastTime: number;
  last: Float64Array;
  avg1m: Record<string, number | null>;
  openAlerts: number;
}

/**
 * The engine worker, from the file next to this module: engine-worker.js when built; under tsx
 * (tests run the TypeScript sources) engine-worker.ts, loaded after registering tsx in the worker,
 * because its loader hooks are not carried into worker threads on Node 20.
 */
function startEngineWorker(data: EngineWorkerData): Worker {
  const here = import.meta.url;
  // A larger young generation: the engine allocates objects per reading that live until the store
  // has written them (rows, events); with V8's default the worker scavenged almost twice as often
  // and spent about a fifth more time in it (measured with --trace-gc, 10,000 meters).
  const resourceLimits = { maxYoungGenerationSizeMb: ENGINE_YOUNG_GENERATION_MB };
  if (!here.endsWith('.ts')) return new Worker(new URL('./engine-worker.js', here), { workerData: data, resourceLimits });
  const source = new URL('./engine-worker.ts', here).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(source)}); });`;
  return new Worker(bootstrap, { eval: true, workerData: data, resourceLimits });
}

/**
 * The live platform on two threads: this (main) thread owns the durable log, ingest validation
 * and append, the simulator and the API-facing object; a worker thread (engine-worker.ts) runs
 * the engine pipeline, the store, alert managers and checkpoints. A forwarder reads durable
 * records from the log and posts them to the worker in batches, never more than
 * `MAX_IN_FLIGHT` ahead of what the worker has processed.
 */
export function createThreadedPlatform(options: PlatformOptions): PlatformRuntime {
  const { config } = options;
  const clock = options.clock ?? Date.now;
  const onError = options.onError ?? (() => {});
  const onInfo = options.onInfo ?? (() => {});
  const streams: StreamSchema[] = Object.values(config.streams);
  if (streams.length === 0) throw new GpError('GP_CONFIG_INVALID', 'streams: expected at least one stream, got none');
  if (streams.length > 255) throw new GpError('GP_CONFIG_INVALID', `streams: expected at most 255 streams, got ${streams.length}`);
  const streamIndex = new Map(streams.map((s, i) => [s.name, i]));
  const dataDir = config.dataDir;
  const startedAt = clock();

  const log: Log = createFileLog({
    dir: join(dataDir, 'log'),
    partitions: 1,
    fsync: config.log.fsync,
    fsyncIntervalMs: config.log.fsyncIntervalMs,
    segmentBytes: config.log.segmentBytes,
    retention: { maxBytes: config.log.retentionBytes, maxAgeMs: config.log.retentionMs, keepUncommittedOf: [ENGINE_CONSUMER] },
    clock,
  });

  // ---- the engine worker and its calls ----
  let worker: Worker | undefined;
  let workerExited: Promise<void> | undefined;
  let workerFailure: Error | undefined;
  let workerGone = false;
  let nextCallId = 1;
  const pendingCalls = new Map<number, { resolve: (value: unknown) => void; reject: (error: unknown) => void }>();
  const post = (message: ToWorker, transfer?: ArrayBuffer[]): void => {
    worker?.postMessage(message, transfer);
  };
  const call = <T>(request: EngineCall): Promise<T> => {
    if (worker === undefined || workerGone || workerFailure !== undefined) {
      return Promise.reject(workerFailure ?? new GpError('GP_UNAVAILABLE', 'the engine is not running (the platform is starting or stopped)'));
    }
    const id = nextCallId++;
    return new Promise<T>((resolve, reject) => {
      pendingCalls.set(id, { resolve: resolve as (value: unknown) => void, reject });
      post({ t: 'call', id, call: request });
    });
  };
  const failCalls = (error: Error): void => {
    for (const pending of pendingCalls.values()) pending.reject(error);
    pendingCalls.clear();
  };

  // ---- what the main thread knows of the engine ----
  let engineStats: EngineStats = {
    consumed: 0,
    totals: { processed: 0, late: 0, tooLate: 0, aggregates: 0, alertEvents: 0, findingsByType: {}, opsByKind: {} },
    partitions: streams.map((s, i) => ({ stream: s.name, partition: i, watermark: null, maxEventTime: null, keys: 0 })),
    stateKeys: 0,
    store: { kind: config.store.url.split(':')[0] ?? 'store', pendingWrites: 0, lastWriteMs: null, writes: 0 },
    lastCheckpointAt: null,
  };
  const devices = new Map<string, DeviceMirror>();
  // ---- the live-feature cache in Redis (features.redis): devices changed since the last publish ----
  const redisFeatures = config.features.redis;
  const featureCache: RedisFeatureCache | undefined =
    redisFeatures === undefined
      ? undefined
      : createRedisFeatureCache({
          url: redisFeatures.url,
          ttlMs: redisFeatures.ttlMs,
          prefixes: redisFeatures.prefixes,
          clock,
          onWarning: (error) => onError(error, 'feature cache'),
          onInfo,
        });
  const featuresChanged = new Set<string>();
  const streamNames = streams.map((s) => s.name);
  const applyFeatures = (update: FeatureUpdate): void => {
    let at = 0;
    for (let i = 0; i < update.keys.length; i++) {
      const key = update.keys[i]!;
      if (featureCache !== undefined) featuresChanged.add(key);
      const stream = update.streams[i]!;
      const metrics = streams[stream]!.metrics.length;
      let mirror = devices.get(key);
      if (mirror === undefined) {
        mirror = { stream, site: undefined, lastTime: 0, last: new Float64Array(metrics), avg1m: {}, openAlerts: 0 };
        devices.set(key, mirror);
      }
      mirror.site = update.sites[i] ?? undefined;
      mirror.lastTime = update.lastTimes[i]!;
      mirror.last.set(update.lasts.subarray(at, at + metrics));
      at += metrics;
      const avg = update.avg1m[i];
      if (avg !== null && avg !== undefined) mirror.avg1m = avg;
      mirror.openAlerts = update.openAlerts[i]!;
    }
  };

  // ---- the SSE fan-out ----
  // Each listener with the event types it wants (undefined: all).
  const listeners = new Map<(event: LiveEvent) => void, ReadonlySet<LiveEvent['type']> | undefined>();
  const publish = (event: LiveEvent): void => {
    for (const [listener, types] of listeners) {
      if (types !== undefined && !types.has(event.type)) continue;
      try {
        listener(event);
      } catch (error) {
        onError(error, 'live listener');
      }
    }
  };
  // The worker gathers only the event types some listener wants.
  const ENGINE_EVENT_TYPES: ReadonlyArray<LiveEvent['type']> = ['aggregate', 'alert', 'ops'];
  let liveTypesSent = '';
  const liveChanged = (): void => {
    const wanted = ENGINE_EVENT_TYPES.filter((type) => [...listeners.values()].some((types) => types === undefined || types.has(type)));
    const text = wanted.join(',');
    if (text === liveTypesSent) return;
    liveTypesSent = text;
    post({ t: 'live', types: wanted });
  };

  // ---- counters kept on this thread: ingest ----
  const ingestTotals = { received: 0, accepted: 0, rejected: 0, rejectedByReason: {} as Record<string, number>, invalidOps: 0 };

  // ---- rates over the last seconds ----
  const samples: Array<{ at: number; accepted: number; processed: number }> = [];
  const sample = (): void => {
    samples.push({ at: clock(), accepted: ingestTotals.accepted, processed: engineStats.totals.processed });
    if (samples.length > RATE_WINDOW_S + 1) samples.shift();
  };
  const rate = (field: 'accepted' | 'processed'): number => {
    const first = samples[0];
    const last = samples[samples.length - 1];
    if (first === undefined || last === undefined || last.at <= first.at) return 0;
    return ((last[field] - first[field]) * 1000) / (last.at - first.at);
  };

  // ---- ingest: validate, append durably, acknowledge ----
  const decoders = streams.map((s) => new ReadingDecoder(s));
  const rejectionOf = (index: number, problem: { reason: string; field: string | undefined; expected: string | undefined; got: string | undefined }): IngestRejection => ({
    index,
    reason: problem.reason,
    ...(problem.field !== undefined ? { field: problem.field } : {}),
    ...(problem.expected !== undefined ? { expected: problem.expected } : {}),
    ...(problem.got !== undefined ? { got: problem.got } : {}),
  });
  const recordRejections = (stream: string, rejected: readonly IngestRejection[]): void => {
    if (rejected.length === 0) return;
    ingestTotals.rejected += rejected.length;
    const events: OpsEvent[] = [];
    for (const r of rejected) {
      ingestTotals.rejectedByReason[r.reason] = (ingestTotals.rejectedByReason[r.reason] ?? 0) + 1;
      events.push(opsEvent('invalid', stream, `rejected at ingest: ${describeProblem(r)}`, { field: r.field, expected: r.expected, got: r.got, time: clock() }));
      ingestTotals.invalidOps++;
    }
    post({ t: 'ops', events });
    // On the live feed too, beside the engine's own ops events (the store gets them from the worker).
    if (listeners.size > 0) for (const data of events) publish({ type: 'ops', data });
  };
  const streamOfObject = (item: unknown): number => {
    if (item !== null && typeof item === 'object' && !Array.isArray(item)) {
      for (let i = 0; i < streams.length; i++) if ((item as Record<string, unknown>)[streams[i]!.keyField] !== undefined) return i;
    }
    return 0;
  };

  let started = false;
  let closing = false;
  const requireRunning = (): void => {
    if (!started || closing) throw new GpError('GP_UNAVAILABLE', 'the platform is not accepting readings (starting or shutting down)');
  };

  async function appendItems(entries: ReadonlyArray<{ stream: number; item: unknown; index: number }>, auth: IngestAuth, total: number): Promise<IngestResult> {
    requireRunning();
    ingestTotals.received += total;
    const rejected: IngestRejection[] = [];
    const records: AppendRecord[] = [];
    for (const { stream, item, index } of entries) {
      const decoder = decoders[stream]!;
      const problem = decoder.decodeObject(item, index);
      if (problem) {
        rejected.push(rejectionOf(index, problem));
        continue;
      }
      const key = decoder.reading.key;
      if (auth.keys !== undefined && !auth.keys.has(key)) {
        rejected.push({ index, reason: 'device not allowed for this token', field: streams[stream]!.keyField, expected: 'a device this token may write', got: JSON.stringify(key) });
        continue;
      }
      records.push({ key: `${streams[stream]!.name}\t${key}`, value: JSON.stringify(item) });
    }
    if (records.length > 0) await log.append(records);
    ingestTotals.accepted += records.length;
    return { accepted: records.length, rejected };
  }

  // ---- the forwarder: durable records from the log to the engine worker ----
  let forwarded = 0;
  let forwarder: Promise<void> | undefined;
  let progressWaiter: (() => void) | undefined;
  const progressed = (): void => {
    const w = progressWaiter;
    progressWaiter = undefined;
    w?.();
  };
  const waitForProgress = (): Promise<void> => new Promise((resolve) => (progressWaiter = resolve));

  const streamOfKey = (key: string | undefined): number => {
    const tab = key?.indexOf('\t') ?? -1;
    return tab > 0 ? (streamIndex.get(key!.slice(0, tab)) ?? 0) : 0;
  };
  const pack = (batch: ReadBatch): RecordBatch => {
    const n = batch.records.length;
    let total = 0;
    for (const r of batch.records) total += r.value.byteLength;
    const message: RecordBatch = { t: 'records', offsets: new Float64Array(n), streams: new Uint8Array(n), ends: new Uint32Array(n), bytes: new Uint8Array(total), next: batch.nextOffset };
    let at = 0;
    // Records of one stream come in runs: the stream of the previous key is reused while the prefix matches.
    let prefix = '\u0000';
    let stream = 0;
    for (let i = 0; i < n; i++) {
      const record = batch.records[i]!;
      message.offsets[i] = record.offset;
      const key = record.key;
      if (key === undefined || !key.startsWith(prefix)) {
        stream = streamOfKey(key);
        const tab = key?.indexOf('\t') ?? -1;
        prefix = tab > 0 ? key!.slice(0, tab + 1) : '\u0000';
      }
      message.streams[i] = stream;
      message.bytes.set(record.value, at);
      at += record.value.byteLength;
      message.ends[i] = at;
    }
    return message;
  };

  const runForwarder = async (): Promise<void> => {
    for (;;) {
      if (workerFailure !== undefined) return;
      // On shutdown only what was already handed to the engine is finished; the rest stays durable
      // in the log and is processed after the next start (a backlog never holds up a stop).
      if (closing) return;
      if (forwarded - engineStats.consumed >= MAX_IN_FLIGHT) {
        await waitForProgress();
        continue;
      }
      const room = MAX_IN_FLIGHT - (forwarded - engineStats.consumed);
      const batch = await log.read(0, forwarded, { maxRecords: Math.min(READ_BATCH, room) });
      if (batch.records.length === 0) {
        if (batch.nextOffset > forwarded) {
          forwarded = batch.nextOffset;
          continue;
        }
        if (closing) return;
        await log.waitFor(0, forwarded, 250);
        continue;
      }
      const message = pack(batch);
      forwarded = batch.nextOffset;
      post(message, [message.offsets.buffer as ArrayBuffer, message.streams.buffer as ArrayBuffer, message.ends.buffer as ArrayBuffer, message.bytes.buffer as ArrayBuffer]);
    }
  };

  // ---- checkpoint offsets are committed here, in order ----
  let commits: Promise<void> = Promise.resolve();
  const commit = (offset: number): void => {
    commits = commits.then(
      () => log.commit(ENGINE_CONSUMER, 0, offset),
      () => log.commit(ENGINE_CONSUMER, 0, offset),
    );
    commits.catch((error: unknown) => onError(error, 'checkpoint'));
  };

  let readyWaiter: { resolve: (checkpoint: { offset: number; createdAt: number } | null) => void; reject: (error: unknown) => void } | undefined;
  const onWorkerMessage = (message: FromWorker): void => {
    switch (message.t) {
      case 'processed':
        engineStats = message.stats;
        if (message.events !== null && listeners.size > 0) for (const event of message.events) publish(event);
        progressed();
        return;
      case 'events':
        if (listeners.size > 0) for (const event of message.events) publish(event);
        return;
      case 'features':
        applyFeatures(message.update);
        return;
      case 'checkpointed':
        commit(message.offset);
        return;
      case 'reply': {
        const pending = pendingCalls.get(message.id);
        if (pending === undefined) return;
        pendingCalls.delete(message.id);
        if (message.ok) pending.resolve(message.value);
        else pending.reject(deserializeError(message.error));
        return;
      }
      case 'error':
        onError(deserializeError(message.error), message.where);
        return;
      case 'info':
        onInfo(message.message);
        return;
      case 'ready':
        engineStats = { ...engineStats, store: { ...engineStats.store, kind: message.storeKind } };
        readyWaiter?.resolve(message.checkpoint);
        return;
      case 'fatal':
        readyWaiter?.reject(deserializeError(message.error));
        return;
    }
  };

  const startWorker = (): Promise<{ offset: number; createdAt: number } | null> => {
    const w = startEngineWorker({ config });
    worker = w;
    const ready = new Promise<{ offset: number; createdAt: number } | null>((resolve, reject) => (readyWaiter = { resolve, reject }));
    w.on('message', onWorkerMessage);
    w.on('error', (error) => {
      workerFailure = new GpError('GP_INTERNAL', `the engine worker failed: ${error.message}`, {}, { cause: error });
      onError(workerFailure, 'engine');
      readyWaiter?.reject(workerFailure);
      failCalls(workerFailure);
      progressed();
    });
    workerExited = new Promise<void>((resolve) => {
      w.once('exit', (code) => {
        workerGone = true;
        if (!stopped) {
          workerFailure ??= new GpError('GP_INTERNAL', `the engine worker stopped unexpectedly (exit code ${code})`);
          readyWaiter?.reject(workerFailure);
          progressed();
        }
        failCalls(workerFailure ?? new GpError('GP_UNAVAILABLE', 'the engine is not running (the platform is stopped)'));
        resolve();
      });
    });
    return ready;
  };

  const timers: NodeJS.Timeout[] = [];
  const every = (ms: number, task: () => void): void => {
    const t = setInterval(task, ms);
    t.unref();
    timers.push(t);
  };

  let simulator: LiveSimulator | undefined;
  let recovery: LogRecovery | undefined;
  let recoveryText: string | null = null;
  let closed: Promise<void> | undefined;
  let stopped = false;

  const featuresOf = (key: string): DeviceLiveFeatures | undefined => {
    const mirror = devices.get(key);
    if (mirror === undefined) return followedFeatures(key);
    const metrics = streams[mirror.stream]!.metrics;
    const last: Record<string, number | null> = {};
    for (let i = 0; i < metrics.length; i++) {
      const v = mirror.last[i]!;
      last[metrics[i]!.name] = Number.isFinite(v) ? v : null;
    }
    return { stream: streams[mirror.stream]!.name, key, site: mirror.site, lastTime: mirror.lastTime, last, avg1m: { ...mirror.avg1m }, openAlerts: mirror.openAlerts };
  };

  // Features of the devices that changed since the last publish go to Redis, one pipelined batch
  // per few hundred devices. A failed batch's devices stay marked and go again at the next
  // interval (with their newest values); the cache counts and reports the failure.
  let featureCacheConnecting = featureCache !== undefined;
  let publishing: Promise<void> | undefined;
  const publishFeatures = async (): Promise<void> => {
    if (featureCache === undefined || featuresChanged.size === 0) return;
    const snapshots: DeviceLiveFeatures[] = [];
    for (const key of featuresChanged) {
      const features = featuresOf(key);
      if (features !== undefined) snapshots.push(features);
    }
    featuresChanged.clear();
    const result = await featureCache.write(snapshots);
    for (const failed of result.failed) featuresChanged.add(failed.key);
  };
  const publishFeaturesInBackground = (): void => {
    // While the first connection is being made, the changes wait rather than count as failures.
    if (publishing !== undefined || featureCacheConnecting) return;
    publishing = publishFeatures()
      .catch((error: unknown) => onError(error, 'feature cache'))
      .finally(() => (publishing = undefined));
  };

  const status = (): PlatformStatus => {
    const now = clock();
    const logStats = log.stats();
    const end = log.endOffset(0);
    const consumed = engineStats.consumed;
    const opsByKind = { ...engineStats.totals.opsByKind };
    if (ingestTotals.invalidOps > 0) opsByKind.invalid = (opsByKind.invalid ?? 0) + ingestTotals.invalidOps;
    return {
      startedAt,
      now,
      ingestRate: rate('accepted'),
      processRate: rate('processed'),
      totals: {
        received: ingestTotals.received,
        accepted: ingestTotals.accepted,
        rejected: ingestTotals.rejected,
        rejectedByReason: { ...ingestTotals.rejectedByReason },
        processed: engineStats.totals.processed,
        late: engineStats.totals.late,
        tooLate: engineStats.totals.tooLate,
        aggregates: engineStats.totals.aggregates,
        alertEvents: engineStats.totals.alertEvents,
        findingsByType: { ...engineStats.totals.findingsByType },
        opsByKind,
      },
      log: {
        bytes: logStats.bytes,
        segments: logStats.segments,
        partitions: [{ partition: 0, startOffset: log.startOffset(0), endOffset: end, consumedOffset: consumed, lag: Math.max(0, end - consumed) }],
      },
      engine: {
        partitions: engineStats.partitions.map((p) => ({ ...p, watermarkDelayMs: p.watermark === null ? null : now - p.watermark })),
        stateKeys: engineStats.stateKeys,
      },
      store: { ...engineStats.store },
      simulator: { running: simulator?.stats().running ?? false, meters: simulator?.stats().meters ?? 0, machines: simulator?.stats().machines ?? 0, sessions: simulator?.stats().sessions ?? 0 },
      lastCheckpointAt: engineStats.lastCheckpointAt,
      recovery: recoveryText,
      liveClients: listeners.size,
    };
  };

  /** The store's queries, answered by the engine worker (which holds the only connection). */
  const storeProxy = new Proxy({} as Store, {
    get(_target, name) {
      if (name === 'kind') return engineStats.store.kind;
      if (name === 'ready' || name === 'close') return () => Promise.resolve();
      if (typeof name !== 'string' || name === 'then') return undefined;
      return (...args: unknown[]) => call({ method: 'store', name, args });
    },
  });

  const operatorAction = (request: Extract<EngineCall, { method: 'operator' }>): Promise<Alert | undefined> =>
    call<Alert | null | undefined>(request).then(async (alert) => {
      await commits;
      return alert ?? undefined;
    });

  const newSimulator = (meters: number, machines: number, backfillMs: number, skipUntil?: number): LiveSimulator =>
    createLiveSimulator({
      meters,
      machines,
      ...(skipUntil === undefined ? {} : { skipUntil }),
      intervalMs: config.simulator.intervalMs,
      anomalyEveryMs: config.simulator.anomalyEveryMs,
      seed: config.simulator.seed,
      backfillMs,
      clock,
      emit: async (lines) => {
        await runtime.ingestLines(lines, { principal: 'simulator', keys: undefined });
      },
      onError: (error) => onError(error, 'simulator'),
    });

  // The outputs of `gridpulse process` members on the live feed (`--live-from`), and what they say
  // of the members' devices for the device pages: the newest 1-minute window's last values and
  // averages, and the alerts open on each device.
  let liveFollower: KafkaLiveFollower | undefined;
  const followed = new Map<string, DeviceLiveFeatures>();
  const followedOpen = new Set<string>(); // ids of the alerts open or acknowledged
  const followedOpenCount = new Map<string, number>(); // device key → its alerts in followedOpen
  const follow = (event: LiveEvent): void => {
    if (event.type === 'aggregate' && event.data.window === '1m') {
      const a = event.data;
      const known = followed.get(a.key);
      if (known !== undefined && known.lastTime > a.end) return; // an amendment of an older window
      const last: Record<string, number | null> = {};
      const avg1m: Record<string, number | null> = {};
      a.metrics.forEach((name, m) => {
        const value = (stat: StatName): number | null => {
          const v = statOf(a, m, stat);
          return Number.isFinite(v) ? v : null;
        };
        last[name] = value('last');
        avg1m[name] = value('avg');
      });
      followed.set(a.key, { stream: a.stream, key: a.key, site: a.site, lastTime: a.end, last, avg1m, openAlerts: 0 });
    } else if (event.type === 'alert') {
      const { alert } = event.data;
      const wasOpen = followedOpen.has(alert.id);
      const isOpen = alert.status !== 'resolved';
      if (wasOpen !== isOpen) {
        if (isOpen) followedOpen.add(alert.id);
        else followedOpen.delete(alert.id);
        const count = (followedOpenCount.get(alert.key) ?? 0) + (isOpen ? 1 : -1);
        if (count > 0) followedOpenCount.set(alert.key, count);
        else followedOpenCount.delete(alert.key);
      }
    }
    if (listeners.size > 0) publish(event);
  };
  const followedFeatures = (key: string): DeviceLiveFeatures | undefined => {
    const known = followed.get(key);
    return known === undefined ? undefined : { ...known, last: { ...known.last }, avg1m: { ...known.avg1m }, openAlerts: followedOpenCount.get(key) ?? 0 };
  };

  // Actions on alerts held by `gridpulse process` members writing to the same PostgreSQL store.
  const actionQueue: AlertActionQueue | undefined = canQueueAlertActions(config.store.url) ? createAlertActionQueue(config.store.url) : undefined;

  // Model serving and training (POST /v1/infer, /train-model): see platform-ml.ts.
  const ml = createMlPlatformMethods({ config, streams, store: storeProxy, clock });

  const runtime: PlatformRuntime = {
    ...ml,
    streams,
    defaultStream: streams[0]!.name,
    store: storeProxy,
    live: {
      subscribe(listener, types) {
        listeners.set(listener, types === undefined ? undefined : new Set(types));
        liveChanged();
        return () => {
          listeners.delete(listener);
          liveChanged();
        };
      },
      get subscribers() {
        return listeners.size;
      },
    } satisfies LiveFeed,
    get recovery() {
      return recovery;
    },

    async start() {
      if (started) return;
      mkdirSync(dataDir, { recursive: true });
      recovery = await log.ready();
      const torn = recovery.partitions.filter((p) => p.truncatedBytes > 0 || p.reason !== undefined);
      if (torn.length > 0) {
        recoveryText = torn.map((p) => `log partition ${p.partition}: cut ${p.truncatedBytes} bytes (${p.reason ?? 'torn tail'})`).join('; ');
        onInfo(`crash recovery: ${recoveryText}`);
      }
      let checkpoint: { offset: number; createdAt: number } | null;
      try {
        checkpoint = await startWorker();
      } catch (error) {
        stopped = true;
        await worker?.terminate();
        throw error;
      }
      const committed = log.committed(ENGINE_CONSUMER, 0);
      const consumed = Math.max(checkpoint?.offset ?? 0, log.startOffset(0));
      engineStats = { ...engineStats, consumed };
      forwarded = consumed;
      if (checkpoint) onInfo(`resumed from checkpoint of ${new Date(checkpoint.createdAt).toISOString()} at log offset ${consumed} (${log.endOffset(0) - consumed} readings to replay)`);
      else if (committed !== undefined && committed > 0) onInfo(`no checkpoint found; replaying the log from offset ${consumed}`);
      post({ t: 'begin', offset: consumed });
      // Listeners that came before the worker: tell it now what they want.
      liveTypesSent = '';
      liveChanged();
      started = true;
      forwarder = runForwarder().catch((error: unknown) => onError(error, 'engine'));
      sample();
      every(1000, sample);
      every(2000, () => {
        if (listeners.size > 0) publish({ type: 'status', data: status() });
      });
      every(3_600_000, () => {
        log.applyRetention().catch((error: unknown) => onError(error, 'log retention'));
      });
      if (featureCache !== undefined && redisFeatures !== undefined) {
        // Connecting must not hold up the start: a Redis that is down only means features are not published.
        featureCache
          .ready()
          .catch((error: unknown) => onError(error, 'feature cache'))
          .finally(() => (featureCacheConnecting = false));
        every(redisFeatures.intervalMs, publishFeaturesInBackground);
      }
      if (options.liveFrom !== undefined) {
        liveFollower = createKafkaLiveFollower({ url: options.liveFrom, publish: follow, onInfo, onError });
        await liveFollower.start();
      }
      const simulatorOn = options.simulator ?? config.simulator.enabled;
      if (simulatorOn) {
        const sim = config.simulator;
        // A first start generates an hour of history; a restart fills the time it was down (up to an
        // hour), so the simulated fleet does not look silent across a restart.
        let backfillMs = options.simulatorBackfillMs ?? 3_600_000;
        let skipUntil: number | undefined;
        const end = log.endOffset(0);
        if (checkpoint !== null || end > 0) {
          const last = end > log.startOffset(0) ? (await log.read(0, end - 1, { maxRecords: 1 })).records[0] : undefined;
          backfillMs = last === undefined ? 0 : Math.max(0, Math.min(3_600_000, clock() - last.timestamp + sim.intervalMs));
          skipUntil = last?.timestamp;
        }
        simulator = newSimulator(sim.meters, sim.machines, backfillMs, skipUntil);
        void simulator.start().catch((error: unknown) => onError(error, 'simulator'));
      }
    },

    async ingest(stream, items, auth) {
      const index = streamIndex.get(stream);
      if (index === undefined) {
        throw new GpError('GP_INPUT_INVALID', `stream: expected one of ${streams.map((s) => s.name).join(', ')}, got "${stream}"`, { field: 'stream' });
      }
      const result = await appendItems(items.map((item, i) => ({ stream: index, item, index: i })), auth, items.length);
      recordRejections(stream, result.rejected);
      return result;
    },

    async ingestLines(lines, auth = { principal: 'local', keys: undefined }) {
      const entries: Array<{ stream: number; item: unknown; index: number }> = [];
      const unparsed: IngestRejection[] = [];
      lines.forEach((line, index) => {
        try {
          const item: unknown = JSON.parse(line);
          entries.push({ stream: streamOfObject(item), item, index });
        } catch (error) {
          unparsed.push({ index, reason: 'malformed JSON', expected: 'a JSON object', got: `${line.slice(0, 60)}${line.length > 60 ? '…' : ''} (${(error as Error).message})` });
        }
      });
      const result = await appendItems(entries, auth, lines.length);
      const rejected = [...unparsed, ...result.rejected].sort((a, b) => a.index - b.index);
      recordRejections(streams[0]!.name, rejected);
      return { accepted: result.accepted, rejected };
    },

    isReady: () => started && !closing && workerFailure === undefined,

    reportRejected(stream, rejected) {
      ingestTotals.received += rejected.length;
      recordRejections(stream, rejected);
    },

    ...(config.alerts.delivery.channels.length === 0
      ? {}
      : {
          deadLetters: (filter: { channel?: string | undefined; limit?: number | undefined }) =>
            call<DeadLetter[]>({ method: 'delivery', action: 'list', channel: filter.channel, limit: filter.limit }),
          redeliverDeadLetter: (id: string) => call<RedeliveryResult>({ method: 'delivery', action: 'redeliver', id }),
          discardDeadLetter: (id: string) => call<boolean>({ method: 'delivery', action: 'discard', id }),
          deliveryMetrics: () => call<Record<string, ChannelMetrics>>({ method: 'delivery', action: 'metrics' }),
        }),
    acknowledgeAlert: (id, by, note) => operatorAction({ method: 'operator', action: 'acknowledge', id, by, note }),
    resolveAlert: (id, by, note) => operatorAction({ method: 'operator', action: 'resolve', id, by, note }),
    assignAlert: (id, assignee, by, note) => operatorAction({ method: 'operator', action: 'assign', id, assignee, by, note }),
    incidentPolicy: () => config.alerts.incidents,
    ...(actionQueue === undefined ? {} : { forwardAlertAction: (request) => forwardAlertAction(actionQueue, request) }),

    liveFeatures: featuresOf,

    ...(featureCache === undefined
      ? {}
      : {
          cachedFeatures: (key: string) => featureCache.find(streamNames, key),
          featureCacheStats: () => {
            const stats = featureCache.stats();
            return { devicesWritten: stats.devicesWritten, keysWritten: stats.keysWritten, writeErrors: stats.writeErrors, connected: stats.connected };
          },
        }),

    async recentReadings(key, limit) {
      const found = await call<{ stream: number; offsets: number[] } | null>({ method: 'recentOffsets', key });
      if (found === null) return [];
      const schema = streams[found.stream]!;
      const decoder = new ReadingDecoder(schema);
      const out: RecentReading[] = [];
      for (const offset of found.offsets.slice(found.offsets.length - Math.min(found.offsets.length, Math.max(0, limit)))) {
        if (offset < log.startOffset(0)) continue; // removed by log retention
        const [record] = (await log.read(0, offset, { maxRecords: 1 })).records;
        if (record === undefined || record.offset !== offset) continue;
        const text = Buffer.from(record.value.buffer, record.value.byteOffset, record.value.byteLength).toString('utf8');
        if (decoder.decodeText(text, offset) !== null) continue;
        const values: Record<string, number | null> = {};
        schema.metrics.forEach((m, i) => {
          const v = decoder.reading.values[i]!;
          values[m.name] = Number.isFinite(v) ? v : null;
        });
        out.push({ stream: schema.name, key, time: decoder.reading.time, receivedAt: record.timestamp, values });
      }
      return out;
    },

    status,

    startSimulation(request: SimulationRequest): SimulationStarted {
      if (simulator === undefined) {
        // On-demand machines work without the fleet simulator too.
        simulator = newSimulator(0, 0, 0);
        void simulator.start();
      }
      const session = simulator.startMachine(request.machineId, request.profile, request.durationSec);
      return { machineId: session.machineId, profile: session.profile, startedAt: session.startedAt, endsAt: session.endsAt };
    },

    async checkpoint() {
      if (!started || closing) throw new GpError('GP_UNAVAILABLE', 'the platform is not running');
      await call({ method: 'checkpoint' });
      await commits;
    },

    async drain() {
      if (!started) return;
      const target = log.endOffset(0);
      await call({ method: 'drain', target });
    },

    close() {
      closed ??= (async () => {
        await ml.closeModels();
        await actionQueue?.close().catch((error: unknown) => onError(error, 'alert actions'));
        await liveFollower?.close();
        if (!started) {
          await log.close().catch(() => {});
          await featureCache?.close();
          return;
        }
        await simulator?.stop();
        closing = true;
        for (const t of timers) clearInterval(t);
        await forwarder;
        const left = log.endOffset(0) - forwarded;
        if (left > 0) onInfo(`${left} readings stay in the log; they are processed on the next start`);
        try {
          await call({ method: 'close' });
        } catch (error) {
          onError(error, 'engine');
        }
        stopped = true;
        await commits.catch(() => {});
        const exited = await Promise.race([workerExited!.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000).unref())]);
        if (!exited) await worker?.terminate();
        if (featureCache !== undefined) {
          // The last changes the engine reported go out before the connection closes.
          await publishing;
          if (!featureCacheConnecting) await publishFeatures().catch((error: unknown) => onError(error, 'feature cache'));
          await featureCache.close().catch((error: unknown) => onError(error, 'feature cache'));
        }
        await log.close();
        listeners.clear();
      })();
      return closed;
    },
  };
  return runtime;
}
