// The live platform's engine thread: the pipeline (engines, detectors, alert managers, store
// writer), the store (the only connection to it), device live features and checkpoints. The main
// thread owns the log and sends durable records here in bounded batches; see platform.ts.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import type { LiveEvent } from '../api/index.js';
import { createAlertDelivery, type DeliveryReport, type DeliveryWorker } from '../alerts/index.js';
import { alertKafkaConnector } from './alert-kafka.js';
import { describeProblem, ReadingDecoder } from '../engine/index.js';
import { GpError, opsEvent, type Alert, type AlertEvent, type Lateness, type OpsEvent, type Reading, type StreamSchema } from '../model/index.js';
import { createOutboxRelay, createRetentionSchedule, createStore, describeRetention, type OutboxRelay, type Store } from '../stores/index.js';
import { writeJsonInSlices } from './json-slices.js';
import { applyOperatorAction, createPipeline, type Pipeline } from './pipeline.js';
import { serializeError, type EngineCall, type EngineStats, type EngineWorkerData, type FeatureUpdate, type FromWorker, type RecordBatch, type ToWorker } from './platform-protocol.js';

const CHECKPOINT_VERSION = 1;
const RECENT_READINGS = 50;
const MAX_PENDING_WRITES = 50_000;
const FEATURES_EVERY_MS = 250;
/** Records the engine processes before it lets the event loop run (see runTasks). */
const SLICE_RECORDS = 1000;

interface Checkpoint {
  version: number;
  createdAt: number;
  offsets: number[];
  state: unknown;
}

/** What the engine keeps in memory per device for the live API; nothing is allocated per reading. */
interface DeviceMemory {
  stream: number;
  key: string;
  site: string | undefined;
  lastTime: number;
  last: Float64Array;
  avg1m: Record<string, number | null>;
  avgChanged: boolean;
  /** Log offsets of the newest readings, a ring; the main thread reads them back from the log. */
  recent: Float64Array;
  recentCount: number;
  open: Set<string>;
  dirty: boolean;
}

function runEngineWorker(): void {
  const port = parentPort;
  if (port === null) throw new Error('engine-worker: must run in a worker thread');
  const { config } = workerData as EngineWorkerData;
  const clock = Date.now;
  const streams: StreamSchema[] = Object.values(config.streams);
  const streamIndex = new Map(streams.map((s, i) => [s.name, i]));
  const checkpointDir = join(config.dataDir, 'checkpoints');
  const send = (message: FromWorker, transfer?: ArrayBuffer[]): void => port.postMessage(message, transfer);
  const onError = (error: unknown, where: string): void => send({ t: 'error', where, error: serializeError(error) });

  const store: Store = createStore(config.store.url, {
    retention: {
      readingsMs: config.store.retention.readingsMs,
      aggregatesMs: config.store.retention.aggregatesMs,
      alertsMs: config.store.retention.alertsMs,
      opsMs: config.store.retention.opsMs,
    },
  });

  // ---- alert delivery (alerts.delivery) ----
  // Every alert transition goes to the routed channels. Delivery is at least once with stable ids
  // (webhook-id = transition id): a checkpoint is written only once everything submitted before it
  // was delivered or dead-lettered (durably, in file mode), so a crash replays from a point whose
  // transitions all reached their channels; the replayed ones are sent again with the same ids.
  const delivery: DeliveryWorker | undefined =
    config.alerts.delivery.channels.length === 0
      ? undefined
      : createAlertDelivery(config.alerts.delivery, { dataDir: config.dataDir, onReport: (report) => reportDelivery(report), kafka: alertKafkaConnector });
  // Transitions a full channel queue refused: submitted again, in order, before the next batch.
  const deliveryBacklog: AlertEvent[] = [];
  const reportDelivery = (report: DeliveryReport): void => {
    if (report.kind === 'dead-lettered' || report.kind === 'channel-disabled' || report.kind === 'dead-letter-store-failed' || report.kind === 'overflow') {
      const what = report.kind === 'overflow' ? `transition ${report.transitionId}: channel queue full (${report.capacity}); the engine waits` : `${report.channel}: ${'transitionId' in report ? `transition ${report.transitionId}: ` : ''}${report.reason}`;
      onError(new GpError('GP_UNAVAILABLE', `alert delivery, ${report.kind}: ${what}`), 'alert delivery');
    }
  };
  // With the PostgreSQL store, transitions and their outbox rows are committed together, and the
  // outbox relay (logical replication, or polling where wal_level is not logical) hands each row to
  // the channels, acknowledging it only once delivered or dead-lettered: a crash anywhere repeats at
  // most the row in flight (same id). Other stores: the engine submits, and checkpoints wait.
  const viaOutbox = delivery !== undefined && !config.store.url.includes(',') && /^postgres(ql)?:\/\//i.test(config.store.url.trim());
  const outbox: OutboxRelay | undefined =
    viaOutbox && delivery !== undefined
      ? createOutboxRelay({
          url: config.store.url.trim(),
          mode: 'auto',
          deliver: async (notification) => {
            while (!delivery.submit(notification.event).accepted) await delivery.waitForCapacity(notification.event);
            await delivery.idle();
          },
          onError: (error) => onError(error, 'alert outbox'),
        })
      : undefined;
  const submitAlert = (event: AlertEvent): void => {
    if (delivery === undefined || outbox !== undefined) return;
    if (deliveryBacklog.length > 0 || !delivery.submit(event).accepted) deliveryBacklog.push(event);
  };
  const drainDeliveryBacklog = async (): Promise<void> => {
    while (delivery !== undefined && deliveryBacklog.length > 0) {
      const event = deliveryBacklog[0]!;
      if (delivery.submit(event).accepted) deliveryBacklog.shift();
      else await delivery.waitForCapacity(event);
    }
  };

  // ---- live state ----
  const devices = new Map<string, DeviceMemory>();
  const dirty: DeviceMemory[] = [];
  // Which event types the main thread's live subscribers want: only those are collected.
  let liveAggregates = false;
  let liveAlerts = false;
  let liveOps = false;
  let events: LiveEvent[] = [];
  const totals: EngineStats['totals'] = { processed: 0, late: 0, tooLate: 0, aggregates: 0, alertEvents: 0, findingsByType: {}, opsByKind: {} };
  let storeWrites = 0;
  let lastWriteMs: number | null = null;
  let lastCheckpointAt: number | null = null;
  let consumed = 0;

  const memoryOf = (stream: string, key: string, site: string | undefined): DeviceMemory => {
    let memory = devices.get(key);
    if (memory === undefined) {
      const index = streamIndex.get(stream) ?? 0;
      const metrics = streams[index]!.metrics.length;
      memory = { stream: index, key, site, lastTime: 0, last: new Float64Array(metrics).fill(Number.NaN), avg1m: {}, avgChanged: true, recent: new Float64Array(RECENT_READINGS), recentCount: 0, open: new Set(), dirty: false };
      devices.set(key, memory);
    }
    if (!memory.dirty) {
      memory.dirty = true;
      dirty.push(memory);
    }
    return memory;
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
          memory.avgChanged = true;
        }
        if (liveAggregates) events.push({ type: 'aggregate', data: a });
      },
      alert(event: AlertEvent) {
        totals.alertEvents++;
        if (event.transition.kind === 'open' || event.transition.kind === 'reopen') {
          totals.findingsByType[event.alert.type] = (totals.findingsByType[event.alert.type] ?? 0) + 1;
        }
        const memory = memoryOf(event.alert.stream, event.alert.key, event.alert.site);
        if (event.alert.status === 'resolved') memory.open.delete(event.alert.id);
        else memory.open.add(event.alert.id);
        submitAlert(event);
        if (liveAlerts) {
          // Out at once, with the events before it (their order kept), not at the end of the batch:
          // under load a batch takes a large part of a second. The store write follows in its queue.
          events.push({ type: 'alert', data: event });
          send({ t: 'events', events });
          events = [];
        }
      },
      ops(e: OpsEvent) {
        totals.opsByKind[e.kind] = (totals.opsByKind[e.kind] ?? 0) + 1;
        if (e.kind === 'too_late') totals.tooLate++;
        if (liveOps) events.push({ type: 'ops', data: e });
      },
    },
  });
  const writer = pipeline.writer!;
  const decoders = streams.map((s) => new ReadingDecoder(s));

  const stats = (): EngineStats => ({
    consumed,
    totals: { ...totals, findingsByType: { ...totals.findingsByType }, opsByKind: { ...totals.opsByKind } },
    partitions: pipeline.engines.map((engine, i) => ({
      stream: engine.schema.name,
      partition: i,
      watermark: Number.isFinite(engine.watermark) ? engine.watermark : null,
      maxEventTime: Number.isFinite(engine.stats.maxEventTime) ? engine.stats.maxEventTime : null,
      keys: engine.keyCount,
    })),
    stateKeys: pipeline.engines.reduce((sum, e) => sum + e.keyCount, 0),
    store: { kind: store.kind, pendingWrites: writer.pending(), lastWriteMs, writes: storeWrites },
    lastCheckpointAt,
  });

  const sendProcessed = (): void => {
    const out = events.length > 0 ? events : null;
    events = [];
    send({ t: 'processed', stats: stats(), events: out });
  };

  const sendFeatures = (): void => {
    if (dirty.length === 0) return;
    let metrics = 0;
    for (const m of dirty) metrics += m.last.length;
    const update: FeatureUpdate = {
      keys: new Array<string>(dirty.length),
      streams: new Uint8Array(dirty.length),
      sites: new Array<string | null>(dirty.length),
      lastTimes: new Float64Array(dirty.length),
      lasts: new Float64Array(metrics),
      avg1m: new Array<Record<string, number | null> | null>(dirty.length),
      openAlerts: new Uint32Array(dirty.length),
    };
    let at = 0;
    dirty.forEach((m, i) => {
      update.keys[i] = m.key;
      update.streams[i] = m.stream;
      update.sites[i] = m.site ?? null;
      update.lastTimes[i] = m.lastTime;
      update.lasts.set(m.last, at);
      at += m.last.length;
      update.avg1m[i] = m.avgChanged ? m.avg1m : null;
      update.openAlerts[i] = m.open.size;
      m.avgChanged = false;
      m.dirty = false;
    });
    dirty.length = 0;
    send({ t: 'features', update }, [update.streams.buffer as ArrayBuffer, update.lastTimes.buffer as ArrayBuffer, update.lasts.buffer as ArrayBuffer, update.openAlerts.buffer as ArrayBuffer]);
  };

  // ---- records ----
  /** Records `from` up to `to` (exclusive) of a batch; `consumed` moves once the last is done. */
  const processRecords = (batch: RecordBatch, from: number, to: number): void => {
    const bytes = Buffer.from(batch.bytes.buffer, batch.bytes.byteOffset, batch.bytes.byteLength);
    let start = from === 0 ? 0 : batch.ends[from - 1]!;
    for (let i = from; i < to; i++) {
      const end = batch.ends[i]!;
      const offset = batch.offsets[i]!;
      const index = batch.streams[i]!;
      const decoder = decoders[index]!;
      const engine = pipeline.engines[index]!;
      const problem = decoder.decodeBytes(bytes, start, end, offset);
      start = end;
      if (problem) {
        engine.rejectInvalid(opsEvent('invalid', engine.schema.name, describeProblem(problem), { offset, watermark: engine.watermark, field: problem.field, expected: problem.expected, got: problem.got, key: problem.key, time: problem.time }));
      } else {
        engine.process(decoder.reading, decoder.keyId);
      }
    }
    if (to === batch.offsets.length) consumed = batch.next;
  };

  /** Lets the event loop run: the store's writes (their steps are callbacks) go on beside the engine. */
  const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

  // ---- checkpoints ----
  let checkpointSeq = 0;
  const listCheckpoints = (): string[] => {
    try {
      return readdirSync(checkpointDir).filter((n) => /^checkpoint-\d{12}\.json$/.test(n)).sort();
    } catch {
      return [];
    }
  };

  // A checkpoint is taken between two batches (the state and the offset agree) and written once the
  // store holds everything given before it (the state must never run ahead of the store). The
  // engine goes on meanwhile: waiting for the store would hold up every alert behind the backlog.
  let checkpointInFlight: Promise<void> = Promise.resolve();
  let checkpointsPending = 0;
  /** Engine time the last checkpoint took from the engine: the snapshot and its serialization. */
  let lastCheckpointCostMs = 0;
  let lastCheckpointStart = Number.NEGATIVE_INFINITY;

  const persistCheckpoint = async (checkpoint: Checkpoint): Promise<void> => {
    await mkdir(checkpointDir, { recursive: true });
    checkpointSeq++;
    const name = `checkpoint-${String(checkpointSeq).padStart(12, '0')}.json`;
    const tmp = join(checkpointDir, `${name}.tmp`);
    const file = await open(tmp, 'w');
    try {
      // In slices with the engine going on between them (tens of MB for 10,000 devices: in one
      // piece, a stall of a few hundred ms that every alert behind it waits out). The time it
      // takes from the engine counts in the checkpoint's cost, like the snapshot's.
      lastCheckpointCostMs += await writeJsonInSlices(file, checkpoint);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, join(checkpointDir, name));
    for (const old of listCheckpoints().slice(0, -2)) rmSync(join(checkpointDir, old), { force: true });
    send({ t: 'checkpointed', offset: checkpoint.offsets[0]! });
    lastCheckpointAt = clock();
  };

  /** Takes a checkpoint now (call it between batches) and resolves once it is on disk. */
  const startCheckpoint = (waitForDelivery = true): Promise<void> => {
    const begin = performance.now();
    lastCheckpointStart = begin;
    const checkpoint: Checkpoint = { version: CHECKPOINT_VERSION, createdAt: clock(), offsets: [consumed], state: pipeline.router.snapshot() };
    lastCheckpointCostMs = performance.now() - begin;
    // The store has every record before the checkpoint, and the channels every transition.
    const delivered = waitForDelivery && delivery !== undefined ? drainDeliveryBacklog().then(() => delivery.idle()) : Promise.resolve();
    const stored = Promise.all([writer.flush(), delivered]);
    // Its failure is reported through `done`; this keeps it from counting as unhandled meanwhile.
    stored.catch(() => undefined);
    // Checkpoints reach the disk in the order they were taken.
    const done = checkpointInFlight.then(() => stored).then(() => persistCheckpoint(checkpoint));
    checkpointsPending++;
    checkpointInFlight = done.then(
      () => {
        checkpointsPending--;
      },
      () => {
        checkpointsPending--;
      },
    );
    return done;
  };

  /** A checkpoint that must be on disk before the caller goes on (operator actions, close). */
  const writeCheckpoint = (): Promise<void> => startCheckpoint();

  /**
   * The periodic checkpoint, in the background; skipped while the previous one is still being
   * written, and spaced so that taking and serializing snapshots stays under 5% of the engine's
   * time (with many devices a checkpoint takes the engine a large part of a second).
   */
  const periodicCheckpoint = (): void => {
    if (checkpointsPending > 0) return;
    if (performance.now() - lastCheckpointStart < lastCheckpointCostMs * 20) return;
    startCheckpoint().catch((error: unknown) => onError(error, 'checkpoint'));
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

  // ---- one task at a time: batches, checkpoints and operator actions never interleave ----
  type Task = { kind: 'batch'; batch: RecordBatch } | { kind: 'serial'; run: () => Promise<void> };
  const tasks: Task[] = [];
  let wake: (() => void) | undefined;
  let stopped = false;
  const enqueue = (task: Task): void => {
    tasks.push(task);
    const w = wake;
    wake = undefined;
    w?.();
  };
  const serial = <T>(run: () => Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      enqueue({ kind: 'serial', run: () => run().then(resolve, reject) });
    });

  const drainWaiters: Array<{ target: number; resolve: () => void }> = [];
  const settleDrains = (): void => {
    for (let i = drainWaiters.length - 1; i >= 0; i--) {
      const waiter = drainWaiters[i]!;
      if (consumed >= waiter.target) {
        drainWaiters.splice(i, 1);
        waiter.resolve();
      }
    }
  };

  const runTasks = async (): Promise<void> => {
    while (!stopped) {
      const task = tasks.shift();
      if (task === undefined) {
        await new Promise<void>((resolve) => (wake = resolve));
        continue;
      }
      if (task.kind === 'batch') {
        // In slices, with the event loop let in between: the store writer's batches advance only
        // in callbacks, and without a turn of the loop they would wait for the whole backlog in
        // flight (tens of thousands of records), the engine then waiting for the store in turn.
        const size = task.batch.offsets.length;
        for (let from = 0; from < size; from += SLICE_RECORDS) {
          if (from > 0) await yieldToLoop();
          try {
            processRecords(task.batch, from, Math.min(size, from + SLICE_RECORDS));
          } catch (error) {
            // The engine cannot go on past a record it failed on (that would drop it): the thread
            // ends, the main thread reports the engine down, and a restart replays from the checkpoint.
            onError(error, 'engine');
            process.exit(1);
          }
          // A channel queue that was full: the engine waits for room rather than drop a transition.
          if (deliveryBacklog.length > 0) await drainDeliveryBacklog();
          // Backpressure: the store writes in the background; past the bound the engine waits until
          // it is back to half of it (not until it is empty: that would stall alerts for the whole backlog).
          if (writer.pending() > MAX_PENDING_WRITES) {
            await writer.waitForRoom(MAX_PENDING_WRITES / 2).catch(async (error: unknown) => {
              onError(error, 'store');
              await new Promise((resolve) => setTimeout(resolve, 1000)); // the store is down: retry, slowly
            });
          }
        }
        if (tasks.length > 0) await yieldToLoop();
      } else {
        await task.run();
      }
      sendProcessed();
      settleDrains();
    }
  };

  const operatorAction = async (request: Extract<EngineCall, { method: 'operator' }>): Promise<Alert | undefined> => {
    const applied = applyOperatorAction(pipeline, request, clock());
    if (!applied.held) return undefined;
    // Operator actions are not in the input log: a checkpoint makes them survive a crash.
    if (applied.alert !== undefined) await writeCheckpoint();
    else await writer.flush();
    return applied.alert;
  };

  const timers: NodeJS.Timeout[] = [];
  const every = (ms: number, task: () => void): void => {
    const t = setInterval(task, ms);
    timers.push(t);
  };

  const call = async (request: EngineCall): Promise<unknown> => {
    switch (request.method) {
      case 'store': {
        const method = (store as unknown as Record<string, unknown>)[request.name];
        if (typeof method !== 'function' || request.name === 'close' || request.name === 'ready') throw new GpError('GP_INTERNAL', `store has no query ${request.name}`);
        return (method as (...args: unknown[]) => Promise<unknown>).apply(store, request.args);
      }
      case 'operator':
        return serial(async () => {
          const alert = await operatorAction(request);
          sendFeatures();
          return alert;
        });
      case 'recentOffsets': {
        const memory = devices.get(request.key);
        if (memory === undefined) return null;
        const count = Math.min(memory.recentCount, RECENT_READINGS);
        const offsets: number[] = [];
        for (let i = memory.recentCount - count; i < memory.recentCount; i++) offsets.push(memory.recent[i % RECENT_READINGS]!);
        return { stream: memory.stream, offsets };
      }
      case 'drain':
        if (consumed < request.target) await new Promise<void>((resolve) => drainWaiters.push({ target: request.target, resolve }));
        await writer.flush();
        sendFeatures();
        sendProcessed();
        return null;
      case 'checkpoint':
        return serial(writeCheckpoint);
      case 'delivery': {
        if (delivery === undefined) return null;
        if (request.action === 'metrics') return delivery.metrics();
        if (request.action === 'list') {
          return delivery.listDeadLetters({ ...(request.channel === undefined ? {} : { channel: request.channel }), ...(request.limit === undefined ? {} : { limit: request.limit }) });
        }
        if (request.action === 'redeliver') return delivery.redeliver(request.id);
        return delivery.discardDeadLetter(request.id);
      }
      case 'close':
        return serial(async () => {
          for (const t of timers) clearInterval(t);
          // Whatever is not delivered yet goes to the dead-letter list (kept on disk in file mode):
          // shutting down never waits on a receiver that is down, and loses nothing.
          // Transitions still waiting for room in a full queue are not dead-lettered: the final
          // checkpoint is then skipped, so a restart replays them from the previous one.
          const undelivered = deliveryBacklog.length;
          await outbox?.stop().catch((error: unknown) => onError(error, 'alert outbox'));
          if (delivery !== undefined) await delivery.close().catch((error: unknown) => onError(error, 'alert delivery'));
          try {
            if (undelivered === 0) await startCheckpoint(false);
            else onError(new GpError('GP_UNAVAILABLE', `alert delivery: ${undelivered} transitions were waiting for a full channel queue; no final checkpoint, a restart replays them`), 'alert delivery');
          } catch (error) {
            onError(error, 'checkpoint');
          }
          sendFeatures();
          sendProcessed();
          stopped = true;
          await store.close();
        });
    }
  };

  port.on('message', (message: ToWorker) => {
    switch (message.t) {
      case 'records':
        enqueue({ kind: 'batch', batch: message });
        return;
      case 'ops':
        writer.writeOps(message.events);
        return;
      case 'live':
        liveAggregates = message.types.includes('aggregate');
        liveAlerts = message.types.includes('alert');
        liveOps = message.types.includes('ops');
        return;
      case 'begin':
        consumed = message.offset;
        start();
        return;
      case 'call':
        call(message.call)
          .then(
            (value) => send({ t: 'reply', id: message.id, ok: true, value }),
            (error: unknown) => send({ t: 'reply', id: message.id, ok: false, error: serializeError(error) }),
          )
          .finally(() => {
            // After the reply to close nothing is left to do: the thread ends.
            if (message.call.method === 'close') port.close();
          });
        return;
    }
  });

  const start = (): void => {
    runTasks().catch((error: unknown) => onError(error, 'engine'));
    every(1000, () => {
      const begin = clock();
      writer.flush().then(
        () => {
          storeWrites++;
          lastWriteMs = clock() - begin;
          // Keeps the main thread's status current while no batches arrive.
          sendProcessed();
        },
        (error: unknown) => onError(error, 'store'),
      );
    });
    every(FEATURES_EVERY_MS, sendFeatures);
    every(config.checkpoint.intervalMs, () => {
      serial(() => Promise.resolve(periodicCheckpoint())).catch((error: unknown) => onError(error, 'checkpoint'));
    });
    // Retention once an hour (the first a minute after start), by the wall clock.
    const retention = createRetentionSchedule({
      store,
      clock,
      // What retention removed is said, never dropped silently (a replay of an old file into this store goes within a minute).
      onRun: (result, now) => send({ t: 'info', message: describeRetention(result, now, config.store.retention) }),
      onError: (error) => onError(error, 'retention'),
    });
    every(60_000, () => void retention.tick());
  };

  void (async () => {
    try {
      await store.ready();
      await delivery?.ready();
      if (outbox !== undefined) {
        const { mode, reason } = await outbox.start();
        send({ t: 'info', message: `alert outbox relay: ${mode} mode (${reason})` });
      }
      const checkpoint = loadCheckpoint();
      send({ t: 'ready', checkpoint: checkpoint === undefined ? null : { offset: checkpoint.offsets[0] ?? 0, createdAt: checkpoint.createdAt }, storeKind: store.kind });
    } catch (error) {
      send({ t: 'fatal', error: serializeError(error) });
      await store.close().catch(() => {});
      port.close();
    }
  })();
}

runEngineWorker();
