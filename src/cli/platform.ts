import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, fsyncSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import type {
  DeviceLiveFeatures,
  IngestAuth,
  IngestRejection,
  IngestResult,
  LiveEvent,
  LiveFeed,
  Platform,
  PlatformStatus,
  RecentReading,
  SimulationRequest,
  SimulationStarted,
} from '../api/index.js';
import type { GridpulseConfig, MqttConfig } from '../config/index.js';
import { ReadingDecoder } from '../engine/index.js';
import { createLiveSimulator, createMqttSource, type LiveSimulator, type MqttSource } from '../ingest/index.js';
import { createFileLog, type AppendRecord, type Log, type LogRecovery } from '../log/index.js';
import { GpError, opsEvent, type Alert, type AlertEvent, type Lateness, type OpsEvent, type Reading, type StreamSchema } from '../model/index.js';
import { createStore, type Store } from '../stores/index.js';
import { createPipeline, type Pipeline } from './pipeline.js';

/** The log consumer name under which the engine commits its offsets. */
const ENGINE_CONSUMER = 'engine';
const CHECKPOINT_VERSION = 1;
const RECENT_READINGS = 50;
const RATE_WINDOW_S = 10;
const READ_BATCH = 2000;
const MAX_PENDING_WRITES = 50_000;

export interface PlatformOptions {
  config: GridpulseConfig;
  /** Wall clock (epoch ms); tests may drive it. */
  clock?: () => number;
  /** Run the built-in simulator (default: config.simulator.enabled). */
  simulator?: boolean;
  /** History the simulator generates on a first start (default 1 hour; 0 for none). */
  simulatorBackfillMs?: number;
  /** Told about background failures (store writes, checkpoints, simulator). */
  onError?: (error: unknown, where: string) => void;
  /** Told about notable events (recovery, checkpoints restored). */
  onInfo?: (message: string) => void;
}

/** The running platform: the `Platform` the API uses, plus lifecycle. */
export interface PlatformRuntime extends Platform {
  /** Opens the log (crash recovery), the store and the last checkpoint, and starts consuming. */
  start(): Promise<void>;
  /** Readings from text lines (simulator, files), routed to their stream by the device-id field. */
  ingestLines(lines: readonly string[], auth?: IngestAuth): Promise<IngestResult>;
  /** Writes a checkpoint now (state + log offsets), after flushing the store. */
  checkpoint(): Promise<void>;
  /** Resolves when the engine has consumed everything appended so far and the store has it. */
  drain(): Promise<void>;
  readonly recovery: LogRecovery | undefined;
  /** Records items refused before they reached `ingest` (an MQTT payload that is not JSON) as ops events and counts them. */
  reportRejected(stream: string, rejected: readonly IngestRejection[]): void;
  /** Stops the simulator, drains the log into the engine, flushes the store, checkpoints and closes. Idempotent. */
  close(): Promise<void>;
}

interface Checkpoint {
  version: number;
  createdAt: number;
  offsets: number[];
  state: unknown;
}

/** What the platform keeps in memory per device for the live API; nothing is allocated per reading. */
interface DeviceMemory {
  stream: number;
  key: string;
  site: string | undefined;
  lastTime: number;
  last: Float64Array;
  avg1m: Record<string, number | null>;
  /** Log offsets of the newest readings, a ring; `recentReadings` reads them back from the log. */
  recent: Float64Array;
  recentCount: number;
  open: Set<string>;
}

/**
 * Builds the live platform of `gridpulse up` from its config: the embedded durable log in
 * `dataDir/log`, the engine (with detectors and alert managers) consuming from it, the store,
 * checkpoints in `dataDir/checkpoints`, and the built-in simulator. Readings are acknowledged only
 * after the log has them on disk; the engine resumes after a crash from its last checkpoint and
 * replays the rest of the log, and every store write is idempotent, so nothing is lost or doubled.
 *
 * @example
 * const platform = createPlatform({ config: loadConfig(), simulator: false });
 * await platform.start();
 * await platform.ingest('power', [{ meterId: 'm-1', timestamp: Date.now(), usageKw: 3.2 }], { principal: 'test', keys: undefined });
 * await platform.close();
 */
export function createPlatform(options: PlatformOptions): PlatformRuntime {
  const { config } = options;
  const clock = options.clock ?? Date.now;
  const onError = options.onError ?? (() => {});
  const onInfo = options.onInfo ?? (() => {});
  const streams: StreamSchema[] = Object.values(config.streams);
  if (streams.length === 0) throw new GpError('GP_CONFIG_INVALID', 'streams: expected at least one stream, got none');
  const streamIndex = new Map(streams.map((s, i) => [s.name, i]));
  const dataDir = config.dataDir;
  const checkpointDir = join(dataDir, 'checkpoints');
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
  const store: Store = createStore(config.store.url, {
    retention: {
      readingsMs: config.store.retention.readingsMs,
      aggregatesMs: config.store.retention.aggregatesMs,
      alertsMs: config.store.retention.alertsMs,
      opsMs: config.store.retention.opsMs,
    },
  });

  // ---- live state: features per device, the SSE fan-out, counters ----
  const devices = new Map<string, DeviceMemory>();
  const listeners = new Set<(event: LiveEvent) => void>();
  const publish = (event: LiveEvent): void => {
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (error) {
        onError(error, 'live listener');
      }
    }
  };
  const totals: PlatformStatus['totals'] = {
    received: 0,
    accepted: 0,
    rejected: 0,
    rejectedByReason: {},
    processed: 0,
    late: 0,
    tooLate: 0,
    aggregates: 0,
    alertEvents: 0,
    findingsByType: {},
    opsByKind: {},
  };
  let storeWrites = 0;
  let lastWriteMs: number | null = null;

  const memoryOf = (stream: string, key: string, site: string | undefined): DeviceMemory => {
    let memory = devices.get(key);
    if (memory === undefined) {
      const index = streamIndex.get(stream) ?? 0;
      const metrics = streams[index]!.metrics.length;
      memory = { stream: index, key, site, lastTime: 0, last: new Float64Array(metrics).fill(Number.NaN), avg1m: {}, recent: new Float64Array(RECENT_READINGS), recentCount: 0, open: new Set() };
      devices.set(key, memory);
    }
    return memory;
  };
  const valuesOf = (stream: number, values: ArrayLike<number>): Record<string, number | null> => {
    const out: Record<string, number | null> = {};
    const metrics = streams[stream]!.metrics;
    for (let i = 0; i < metrics.length; i++) {
      const v = values[i]!;
      out[metrics[i]!.name] = Number.isFinite(v) ? v : null;
    }
    return out;
  };

  const pipeline: Pipeline = createPipeline({
    streams,
    partitions: config.engine.partitions,
    store,
    writeReadings: config.store.writeReadings,
    wallClock: clock,
    observer: {
      reading(r: Reading, lateness: Lateness) {
        totals.processed++;
        if (lateness === 'LATE') totals.late++;
        const memory = memoryOf(r.stream, r.key, r.site);
        if (r.time >= memory.lastTime) {
          memory.lastTime = r.time;
          for (let i = 0; i < memory.last.length; i++) memory.last[i] = r.values[i]!;
        }
        memory.recent[memory.recentCount++ % RECENT_READINGS] = r.offset;
      },
      aggregate(a) {
        totals.aggregates++;
        if (a.window === '1m') {
          const memory = memoryOf(a.stream, a.key, a.site);
          const avg: Record<string, number | null> = {};
          for (let m = 0; m < a.metrics.length; m++) {
            const v = a.stats[m * 8 + 3]!;
            avg[a.metrics[m]!] = Number.isFinite(v) ? v : null;
          }
          memory.avg1m = avg;
        }
        if (listeners.size > 0) publish({ type: 'aggregate', data: a });
      },
      alert(event: AlertEvent) {
        totals.alertEvents++;
        if (event.transition.kind === 'open' || event.transition.kind === 'reopen') {
          totals.findingsByType[event.alert.type] = (totals.findingsByType[event.alert.type] ?? 0) + 1;
        }
        const memory = memoryOf(event.alert.stream, event.alert.key, event.alert.site);
        if (event.alert.status === 'resolved') memory.open.delete(event.alert.id);
        else memory.open.add(event.alert.id);
        if (listeners.size > 0) publish({ type: 'alert', data: event });
      },
      ops(e: OpsEvent) {
        totals.opsByKind[e.kind] = (totals.opsByKind[e.kind] ?? 0) + 1;
        if (e.kind === 'too_late') totals.tooLate++;
        if (listeners.size > 0) publish({ type: 'ops', data: e });
      },
    },
  });
  const writer = pipeline.writer!;
  const decoders = streams.map((s) => new ReadingDecoder(s));
  const consumeDecoders = streams.map((s) => new ReadingDecoder(s));

  // ---- rates over the last seconds ----
  const samples: Array<{ at: number; accepted: number; processed: number }> = [];
  const sample = (): void => {
    samples.push({ at: clock(), accepted: totals.accepted, processed: totals.processed });
    if (samples.length > RATE_WINDOW_S + 1) samples.shift();
  };
  const rate = (field: 'accepted' | 'processed'): number => {
    const first = samples[0];
    const last = samples[samples.length - 1];
    if (first === undefined || last === undefined || last.at <= first.at) return 0;
    return ((last[field] - first[field]) * 1000) / (last.at - first.at);
  };

  // ---- ingest: validate, append durably, acknowledge ----
  const rejectionOf = (index: number, problem: { reason: string; field: string | undefined; expected: string | undefined; got: string | undefined }): IngestRejection => ({
    index,
    reason: problem.reason,
    ...(problem.field !== undefined ? { field: problem.field } : {}),
    ...(problem.expected !== undefined ? { expected: problem.expected } : {}),
    ...(problem.got !== undefined ? { got: problem.got } : {}),
  });
  const recordRejections = (stream: string, rejected: readonly IngestRejection[]): void => {
    totals.rejected += rejected.length;
    for (const r of rejected) {
      totals.rejectedByReason[r.reason] = (totals.rejectedByReason[r.reason] ?? 0) + 1;
      const event = opsEvent('invalid', stream, `rejected at ingest: ${r.reason}`, { field: r.field, expected: r.expected, got: r.got, time: clock() });
      writer.writeOps([event]);
      totals.opsByKind.invalid = (totals.opsByKind.invalid ?? 0) + 1;
    }
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
    totals.received += total;
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
    totals.accepted += records.length;
    return { accepted: records.length, rejected };
  }

  // ---- the engine's consumer loop ----
  let consumed = 0;
  let loop: Promise<void> | undefined;
  let checkpointRequested: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  let lastCheckpointAt: number | null = null;
  let checkpointSeq = 0;

  const processRecord = (key: string | undefined, value: Uint8Array, offset: number): void => {
    const tab = key?.indexOf('\t') ?? -1;
    const index = tab > 0 ? (streamIndex.get(key!.slice(0, tab)) ?? 0) : 0;
    const decoder = consumeDecoders[index]!;
    const engine = pipeline.engines[index]!;
    const text = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8');
    const problem = decoder.decodeText(text, offset);
    if (problem) {
      engine.rejectInvalid(opsEvent('invalid', engine.schema.name, problem.reason, { offset, watermark: engine.watermark, field: problem.field, expected: problem.expected, got: problem.got, key: problem.key, time: problem.time }));
    } else {
      engine.process(decoder.reading);
    }
  };

  const writeCheckpoint = async (): Promise<void> => {
    await writer.flush();
    const checkpoint: Checkpoint = { version: CHECKPOINT_VERSION, createdAt: clock(), offsets: [consumed], state: pipeline.router.snapshot() };
    await writer.flush();
    mkdirSync(checkpointDir, { recursive: true });
    checkpointSeq++;
    const name = `checkpoint-${String(checkpointSeq).padStart(12, '0')}.json`;
    const tmp = join(checkpointDir, `${name}.tmp`);
    writeFileSync(tmp, JSON.stringify(checkpoint));
    const fd = openSync(tmp, 'r');
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, join(checkpointDir, name));
    for (const old of listCheckpoints().slice(0, -2)) rmSync(join(checkpointDir, old), { force: true });
    await log.commit(ENGINE_CONSUMER, 0, consumed);
    lastCheckpointAt = clock();
  };

  const listCheckpoints = (): string[] => {
    try {
      return readdirSync(checkpointDir).filter((n) => /^checkpoint-\d{12}\.json$/.test(n)).sort();
    } catch {
      return [];
    }
  };

  /** The newest readable checkpoint; a corrupt one is reported and the one before it is used. */
  const loadCheckpoint = (): Checkpoint | undefined => {
    const names = listCheckpoints();
    for (let i = names.length - 1; i >= 0; i--) {
      const name = names[i]!;
      checkpointSeq = Math.max(checkpointSeq, Number(name.slice(11, 23)));
      try {
        const parsed = JSON.parse(readFileSync(join(checkpointDir, name), 'utf8')) as Checkpoint;
        if (parsed.version !== CHECKPOINT_VERSION || !Array.isArray(parsed.offsets)) throw new Error(`unsupported checkpoint version ${String(parsed.version)}`);
        pipeline.router.restore(parsed.state);
        return parsed;
      } catch (error) {
        onError(new GpError('GP_CHECKPOINT_INVALID', `checkpoint ${name} cannot be used (${(error as Error).message}); trying the one before`, {}, { cause: error }), 'checkpoint');
      }
    }
    return undefined;
  };

  const runLoop = async (): Promise<void> => {
    while (!closing || consumed < log.endOffset(0)) {
      if (checkpointRequested.length > 0) {
        const waiting = checkpointRequested;
        checkpointRequested = [];
        try {
          await writeCheckpoint();
          for (const w of waiting) w.resolve();
        } catch (error) {
          for (const w of waiting) w.reject(error);
        }
      }
      const batch = await log.read(0, consumed, { maxRecords: READ_BATCH });
      if (batch.records.length === 0) {
        if (closing) break;
        if (checkpointRequested.length === 0) await log.waitFor(0, consumed, 250);
        continue;
      }
      for (const record of batch.records) {
        processRecord(record.key, record.value, record.offset);
      }
      consumed = batch.nextOffset;
      if (writer.pending() > MAX_PENDING_WRITES) await writer.flush();
    }
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

  const requestCheckpoint = (): Promise<void> =>
    new Promise((resolve, reject) => {
      checkpointRequested.push({ resolve, reject });
    });

  const operatorAction = async (id: string, action: 'acknowledge' | 'resolve', by: string | undefined, note: string | undefined): Promise<Alert | undefined> => {
    for (const managers of pipeline.alertManagers.values()) {
      for (const manager of managers) {
        if (manager === undefined || manager.findAlert(id) === undefined) continue;
        const alert = action === 'acknowledge' ? manager.acknowledge(id, clock(), by, note) : manager.resolve(id, clock(), by, note);
        // Operator actions are not in the input log: a checkpoint makes them survive a crash.
        if (alert !== undefined) await requestCheckpoint();
        else await writer.flush();
        return alert;
      }
    }
    return undefined;
  };

  const status = (): PlatformStatus => {
    const now = clock();
    const logStats = log.stats();
    const end = log.endOffset(0);
    return {
      startedAt,
      now,
      ingestRate: rate('accepted'),
      processRate: rate('processed'),
      totals: { ...totals, rejectedByReason: { ...totals.rejectedByReason }, findingsByType: { ...totals.findingsByType }, opsByKind: { ...totals.opsByKind } },
      log: {
        bytes: logStats.bytes,
        segments: logStats.segments,
        partitions: [{ partition: 0, startOffset: log.startOffset(0), endOffset: end, consumedOffset: consumed, lag: end - consumed }],
      },
      engine: {
        partitions: pipeline.engines.map((engine, i) => {
          const wm = Number.isFinite(engine.watermark) ? engine.watermark : null;
          const max = Number.isFinite(engine.stats.maxEventTime) ? engine.stats.maxEventTime : null;
          return { stream: engine.schema.name, partition: i, watermark: wm, maxEventTime: max, watermarkDelayMs: wm === null ? null : now - wm, keys: engine.keyCount };
        }),
        stateKeys: pipeline.engines.reduce((sum, e) => sum + e.keyCount, 0),
      },
      store: { kind: store.kind, pendingWrites: writer.pending(), lastWriteMs, writes: storeWrites },
      simulator: { running: simulator?.stats().running ?? false, meters: simulator ? config.simulator.meters : 0, machines: simulator ? config.simulator.machines : 0, sessions: simulator?.stats().sessions ?? 0 },
      lastCheckpointAt,
      recovery: recoveryText,
      liveClients: listeners.size,
    };
  };

  const runtime: PlatformRuntime = {
    streams,
    defaultStream: streams[0]!.name,
    store,
    live: {
      subscribe(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
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
      await store.ready();
      const checkpoint = loadCheckpoint();
      const committed = log.committed(ENGINE_CONSUMER, 0);
      consumed = Math.max(checkpoint?.offsets[0] ?? 0, log.startOffset(0));
      if (checkpoint) onInfo(`resumed from checkpoint of ${new Date(checkpoint.createdAt).toISOString()} at log offset ${consumed} (${log.endOffset(0) - consumed} readings to replay)`);
      else if (committed !== undefined && committed > 0) onInfo(`no checkpoint found; replaying the log from offset ${consumed}`);
      started = true;
      loop = runLoop().catch((error: unknown) => onError(error, 'engine'));
      sample();
      every(1000, sample);
      every(1000, () => {
        const begin = clock();
        writer.flush().then(
          () => {
            storeWrites++;
            lastWriteMs = clock() - begin;
          },
          (error: unknown) => onError(error, 'store'),
        );
      });
      every(config.checkpoint.intervalMs, () => {
        requestCheckpoint().catch((error: unknown) => onError(error, 'checkpoint'));
      });
      every(2000, () => {
        if (listeners.size > 0) publish({ type: 'status', data: status() });
      });
      every(3_600_000, () => {
        store.applyRetention(clock()).catch((error: unknown) => onError(error, 'retention'));
        log.applyRetention().catch((error: unknown) => onError(error, 'log retention'));
      });
      const simulatorOn = options.simulator ?? config.simulator.enabled;
      if (simulatorOn) {
        const sim = config.simulator;
        simulator = createLiveSimulator({
          meters: sim.meters,
          machines: sim.machines,
          intervalMs: sim.intervalMs,
          anomalyEveryMs: sim.anomalyEveryMs,
          seed: sim.seed,
          backfillMs: checkpoint === undefined && log.endOffset(0) === 0 ? (options.simulatorBackfillMs ?? 3_600_000) : 0,
          clock,
          emit: async (lines) => {
            await runtime.ingestLines(lines, { principal: 'simulator', keys: undefined });
          },
          onError: (error) => onError(error, 'simulator'),
        });
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

    isReady: () => started && !closing,

    reportRejected(stream, rejected) {
      totals.received += rejected.length;
      recordRejections(stream, rejected);
    },

    acknowledgeAlert: (id, by, note) => operatorAction(id, 'acknowledge', by, note),
    resolveAlert: (id, by, note) => operatorAction(id, 'resolve', by, note),

    liveFeatures(key): DeviceLiveFeatures | undefined {
      const memory = devices.get(key);
      if (memory === undefined) return undefined;
      return {
        stream: streams[memory.stream]!.name,
        key,
        site: memory.site,
        lastTime: memory.lastTime,
        last: valuesOf(memory.stream, memory.last),
        avg1m: { ...memory.avg1m },
        openAlerts: memory.open.size,
      };
    },

    async recentReadings(key, limit) {
      const memory = devices.get(key);
      if (memory === undefined) return [];
      const count = Math.min(memory.recentCount, RECENT_READINGS, Math.max(0, limit));
      const out: RecentReading[] = [];
      const decoder = new ReadingDecoder(streams[memory.stream]!);
      for (let i = memory.recentCount - count; i < memory.recentCount; i++) {
        const offset = memory.recent[i % RECENT_READINGS]!;
        if (offset < log.startOffset(0)) continue; // removed by log retention
        const [record] = (await log.read(0, offset, { maxRecords: 1 })).records;
        if (record === undefined || record.offset !== offset) continue;
        const text = Buffer.from(record.value.buffer, record.value.byteOffset, record.value.byteLength).toString('utf8');
        if (decoder.decodeText(text, offset) !== null) continue;
        out.push({ stream: streams[memory.stream]!.name, key, time: decoder.reading.time, receivedAt: record.timestamp, values: valuesOf(memory.stream, decoder.reading.values) });
      }
      return out;
    },

    status,

    startSimulation(request: SimulationRequest): SimulationStarted {
      if (simulator === undefined) {
        // On-demand machines work without the fleet simulator too.
        simulator = createLiveSimulator({
          meters: 0,
          machines: 0,
          intervalMs: config.simulator.intervalMs,
          anomalyEveryMs: config.simulator.anomalyEveryMs,
          seed: config.simulator.seed,
          backfillMs: 0,
          clock,
          emit: async (lines) => {
            await runtime.ingestLines(lines, { principal: 'simulator', keys: undefined });
          },
          onError: (error) => onError(error, 'simulator'),
        });
        void simulator.start();
      }
      const session = simulator.startMachine(request.machineId, request.profile, request.durationSec);
      return { machineId: session.machineId, profile: session.profile, startedAt: session.startedAt, endsAt: session.endsAt };
    },

    checkpoint() {
      if (!started || loop === undefined) return Promise.reject(new GpError('GP_UNAVAILABLE', 'the platform is not running'));
      const done = requestCheckpoint();
      return done;
    },

    async drain() {
      const target = log.endOffset(0);
      while (consumed < target) await new Promise((r) => setTimeout(r, 10));
      await writer.flush();
    },

    close() {
      closed ??= (async () => {
        if (!started) {
          await store.close().catch(() => {});
          await log.close().catch(() => {});
          return;
        }
        await simulator?.stop();
        closing = true;
        for (const t of timers) clearInterval(t);
        await loop;
        try {
          await writeCheckpoint();
        } catch (error) {
          onError(error, 'checkpoint');
        }
        await store.close();
        await log.close();
        listeners.clear();
      })();
      return closed;
    },
  };
  return runtime;
}

/**
 * MQTT ingest into the platform: each message's readings (device id from the topic when the
 * payload has none) go through `platform.ingest`, and the broker gets its PUBACK only after they
 * are durable in the log. Payloads that are not JSON are recorded as invalid ops events.
 *
 * @example
 * const mqtt = createPlatformMqtt(platform, config.mqtt);
 * await mqtt.ready();
 */
export function createPlatformMqtt(platform: PlatformRuntime, mqtt: MqttConfig): MqttSource {
  return createMqttSource({
    url: mqtt.url,
    qos: mqtt.qos,
    ...(mqtt.clientId === undefined ? {} : { clientId: mqtt.clientId }),
    topics: mqtt.topics.map((t) => ({ topic: t.topic, ...(t.stream ? { stream: t.stream } : {}), ...(t.keyLevel === undefined ? {} : { keyLevel: t.keyLevel }) })),
    onReadings: async (batch) => {
      const stream = batch.stream ?? platform.defaultStream;
      const schema = platform.streams.find((s) => s.name === stream);
      const items = batch.items.map((item) =>
        batch.keyFromTopic !== undefined &&
        schema !== undefined &&
        item !== null &&
        typeof item === 'object' &&
        !Array.isArray(item) &&
        (item as Record<string, unknown>)[schema.keyField] === undefined
          ? { ...(item as Record<string, unknown>), [schema.keyField]: batch.keyFromTopic }
          : item,
      );
      if (batch.rejected.length > 0) platform.reportRejected(stream, batch.rejected.map((r) => ({ index: r.index, reason: `MQTT ${batch.topic}: ${r.reason}` })));
      if (items.length > 0) await platform.ingest(stream, items, { principal: 'mqtt', keys: undefined });
    },
  });
}
