import { createAlertManager, type AlertManager } from '../alerts/index.js';
import type { ForwardedActionRequest } from '../api/index.js';
import { createDetectors } from '../detectors/index.js';
import { StreamEngine, StreamRouter, type EngineStats } from '../engine/index.js';
import type { Aggregate, Alert, AlertEvent, AlertStatus, Lateness, OpsEvent, OpsKind, Reading, StreamSchema } from '../model/index.js';
import { createStoreWriter, type ReadingRow, type Store, type StoreWriter } from '../stores/index.js';
import { LineFile, writeAggregate, writeAlertEvent, writeOps, writeScore } from './output-files.js';

export interface PipelineFiles {
  alerts?: string | undefined;
  aggregates?: string | undefined;
  ops?: string | undefined;
  scores?: string | undefined;
}

export interface PipelineOptions {
  streams: readonly StreamSchema[];
  partitions: number;
  /** Send every record to this stream instead of routing by device-id field. */
  forcedStream?: string | undefined;
  store?: Store | undefined;
  /** Also store raw readings (default true when a store is given). */
  writeReadings?: boolean;
  files?: PipelineFiles;
  wallClock?: () => number;
  /** Sees every result after it went to the store and files (the live platform's SSE and features). */
  observer?: PipelineObserver;
}

/** Optional taps on the engine's outputs; each is called synchronously on the engine's thread. */
export interface PipelineObserver {
  aggregate?(aggregate: Aggregate): void;
  alert?(event: AlertEvent): void;
  ops?(event: OpsEvent): void;
  /** The Reading is reused by the engine: copy what you keep. */
  reading?(reading: Reading, lateness: Lateness): void;
}

export interface PipelineSummary {
  streams: Record<string, EngineStats>;
  alertsOpened: Record<string, number>;
  alertTransitions: number;
  ops: Partial<Record<OpsKind, number>>;
  files: Record<string, { path: string; lines: number }>;
}

/**
 * The engine wired to its detectors, per-partition alert managers, the store and the output
 * files: what `gridpulse replay` (and later the live platform) runs. The composition root —
 * the modules it joins never import one another.
 *
 * @example
 * const pipeline = createPipeline({ streams: [config.streams.power], partitions: 4, store });
 * pipeline.router.processText(line, 1);
 * const summary = await pipeline.finish();
 */
export interface Pipeline {
  readonly router: StreamRouter;
  readonly engines: readonly StreamEngine[];
  /** The store's write buffer, when a store was given. */
  readonly writer: StoreWriter | undefined;
  /** Alert managers by stream name, one per partition (operator actions and inspection). */
  readonly alertManagers: ReadonlyMap<string, readonly AlertManager[]>;
  /** Resolves when files and the store have room for more (call every few thousand records). */
  backpressure(): Promise<void>;
  /** Ends the input: fires what is left, flushes the store and closes the files. */
  finish(): Promise<PipelineSummary>;
}

export function createPipeline(options: PipelineOptions): Pipeline {
  const files = options.files ?? {};
  const open = (path: string | undefined): LineFile | undefined => (path ? new LineFile(path) : undefined);
  const alertsFile = open(files.alerts);
  const aggregatesFile = open(files.aggregates);
  const opsFile = open(files.ops);
  const scoresFile = open(files.scores);
  const store = options.store;
  const writer: StoreWriter | undefined = store ? createStoreWriter(store, { maxBatch: 5000 }) : undefined;
  const writeReadings = (options.writeReadings ?? true) && writer !== undefined;

  const alertsOpened: Record<string, number> = {};
  const opsCounts: Partial<Record<OpsKind, number>> = {};
  let transitions = 0;
  const observer = options.observer ?? {};
  const alertManagers = new Map<string, AlertManager[]>();

  const engines = options.streams.map((schema) => {
    const metricNames = schema.metrics.map((m) => m.name);
    const onAlert = (event: AlertEvent): void => {
      transitions++;
      if (event.transition.kind === 'open') alertsOpened[event.alert.type] = (alertsOpened[event.alert.type] ?? 0) + 1;
      if (alertsFile) writeAlertEvent(alertsFile, event);
      writer?.writeAlertEvents([event]);
      observer.alert?.(event);
    };
    // The store keeps tumbling windows (what the API's resolutions read); sliding windows feed the
    // detectors, the live feed and the files, and would be three quarters of the store's rows.
    const storedWindows = new Set(schema.windows.filter((w) => w.slideMs === w.sizeMs).map((w) => w.name));
    const managers: AlertManager[] = [];
    alertManagers.set(schema.name, managers);
    return new StreamEngine({
      schema,
      detectors: createDetectors(schema),
      partitions: options.partitions,
      createFindingHandler: (emit, partition) => {
        const manager = createAlertManager({ policy: schema.alerts, emit });
        managers[partition] = manager;
        return manager;
      },
      ...(options.wallClock ? { wallClock: options.wallClock } : {}),
      outputs: {
        alert: onAlert,
        aggregate: (a) => {
          if (aggregatesFile) writeAggregate(aggregatesFile, a);
          if (storedWindows.has(a.window)) writer?.upsertAggregates([a]);
          observer.aggregate?.(a);
        },
        ops: (e) => {
          opsCounts[e.kind] = (opsCounts[e.kind] ?? 0) + 1;
          if (opsFile) writeOps(opsFile, e);
          writer?.writeOps([e]);
          observer.ops?.(e);
        },
        ...(scoresFile ? { score: (r: Reading, s: number) => writeScore(scoresFile, r, s, metricNames) } : {}),
        ...(writeReadings || observer.reading
          ? {
              reading: (r: Reading, lateness: Lateness) => {
                if (writeReadings) writer.writeReadings([toRow(r, metricNames)]);
                observer.reading?.(r, lateness);
              },
            }
          : {}),
      },
    });
  });
  const router = new StreamRouter(engines, options.forcedStream);
  const lineFiles = [alertsFile, aggregatesFile, opsFile, scoresFile].filter((f): f is LineFile => f !== undefined);

  return {
    router,
    engines,
    writer,
    alertManagers,
    async backpressure() {
      await Promise.all(lineFiles.map((f) => f.drain()));
      if (writer && writer.pending() > 50_000) await writer.flush();
    },
    async finish() {
      router.finish();
      await writer?.flush();
      await Promise.all(lineFiles.map((f) => f.close()));
      const out: PipelineSummary['files'] = {};
      const named: Array<[string, LineFile | undefined]> = [
        ['alerts', alertsFile],
        ['aggregates', aggregatesFile],
        ['ops', opsFile],
        ['scores', scoresFile],
      ];
      for (const [name, file] of named) if (file) out[name] = { path: file.path, lines: file.lines };
      return {
        streams: Object.fromEntries(engines.map((e) => [e.schema.name, { ...e.stats }])),
        alertsOpened,
        alertTransitions: transitions,
        ops: opsCounts,
        files: out,
      };
    },
  };
}

function toRow(r: Reading, metricNames: readonly string[]): ReadingRow {
  const values: Record<string, number | null> = {};
  for (let i = 0; i < metricNames.length; i++) {
    const v = r.values[i]!;
    values[metricNames[i]!] = Number.isFinite(v) ? v : null;
  }
  return { stream: r.stream, key: r.key, site: r.site, time: r.time, values, offset: r.offset };
}

/** An operator action on an alert (the API's acknowledge, resolve and assign). */
export type OperatorAction = ForwardedActionRequest;

/** The alert manager of the pipeline that holds the alert, and the alert as it holds it. */
function holderOf(pipeline: Pipeline, id: string): { manager: AlertManager; alert: Alert } | undefined {
  for (const managers of pipeline.alertManagers.values()) {
    for (const manager of managers) {
      const alert = manager?.findAlert(id);
      if (manager !== undefined && alert !== undefined) return { manager, alert };
    }
  }
  return undefined;
}

/**
 * Applies an operator action in the alert manager that holds the alert, at `at`. `held`: some
 * manager of the pipeline holds the alert; `alert`: the alert after the action, undefined when its
 * status does not allow it (`status` then says what it is).
 */
export function applyOperatorAction(pipeline: Pipeline, request: OperatorAction, at: number): { held: false } | { held: true; alert: Alert | undefined; status: AlertStatus } {
  const holder = holderOf(pipeline, request.id);
  if (holder === undefined) return { held: false };
  const { manager } = holder;
  let alert: Alert | undefined;
  if (request.action === 'assign') alert = manager.assign(request.id, at, request.assignee ?? '', request.by, request.note);
  else if (request.action === 'acknowledge') alert = manager.acknowledge(request.id, at, request.by, request.note);
  else alert = manager.resolve(request.id, at, request.by, request.note);
  return { held: true, alert, status: alert?.status ?? holder.alert.status };
}

/** True when an alert manager of the pipeline holds the alert. */
export function holdsAlert(pipeline: Pipeline, id: string): boolean {
  return holderOf(pipeline, id) !== undefined;
}
