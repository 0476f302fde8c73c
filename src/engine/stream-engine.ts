import {
  GpError,
  opsEvent,
  severityForScore,
  type Aggregate,
  type AlertEmitter,
  type AlertEvent,
  type AuditSnapshot,
  type Detector,
  type DetectorContext,
  type Finding,
  type FindingHandler,
  type FindingInput,
  type Lateness,
  type OpsEvent,
  type Reading,
  type StreamSchema,
  type WindowSpec,
} from '../model/index.js';
import { countOf, sumOf, createAccumulator, resetAccumulator, writeStats } from './accumulator.js';
import { decodeEngine, encodeEngine, type DecodedEngine, type EngineSnapshot, type EngineView } from './checkpoint.js';
import { createKeyNumbers, DELTAS_AT, INTERVAL, INTERVAL_SAMPLES, keyLayout, LAST_TIME, RECENT, RECENT_AT, type KeyLayout } from './key-layout.js';
import { PaneRing } from './pane-ring.js';
import { ReadingRing } from './reading-ring.js';
import { TimerHeap } from './timer-heap.js';
import { alignDown, isoOf } from './time.js';

/** Where the engine's results go. Every callback is optional; each is called synchronously on the engine's thread. */
export interface EngineOutputs {
  /** A window result (first emission, revision 0) or an amendment (revision ≥ 1). */
  aggregate?(aggregate: Aggregate): void;
  /** An alert transition decided by the finding handler. */
  alert?(event: AlertEvent): void;
  /** Findings as detectors raise them (before the alert manager). */
  finding?(finding: Finding): void;
  ops?(event: OpsEvent): void;
  audit?(snapshot: AuditSnapshot): void;
  /** Each reading given to detectors, with its overall anomaly score. The Reading is reused: copy what you keep. */
  score?(reading: Reading, score: number): void;
  /** Each accepted reading (ON_TIME or LATE). The Reading is reused: copy what you keep. */
  reading?(reading: Reading, lateness: Lateness): void;
}

export interface StreamEngineOptions {
  schema: StreamSchema;
  /** Detector instances for this stream (from the detector registry). */
  detectors: readonly Detector[];
  /** Partitions by hash of the device id. Default 4. */
  partitions?: number;
  /** One finding handler (alert manager) per partition. Without one, findings only reach `outputs.finding`. */
  createFindingHandler?: (emit: AlertEmitter, partition: number) => FindingHandler;
  outputs: EngineOutputs;
  /** Wall clock for rejecting readings from the far future; omit for pure event-time replays. */
  wallClock?: () => number;
  /** Audit snapshot period in event time. Default 15 minutes. */
  auditIntervalMs?: number;
}

/** Counters for summaries and metrics. */
export interface EngineStats {
  readings: number;
  accepted: number;
  onTime: number;
  late: number;
  tooLate: number;
  outOfOrder: number;
  invalid: number;
  duplicates: number;
  clockSkew: number;
  aggregates: number;
  amendments: number;
  findings: number;
  alertEvents: number;
  keys: number;
  evicted: number;
  /**
   * Backfill readings accepted (`Reading.backfill`: forwarded after an outage), ON_TIME or LATE —
   * each also reported on ops as `late`. Counted since the engine was created (not checkpointed).
   */
  backfill: number;
  /** Findings raised while processing backfill readings (recorded, but given to no alert manager unless they clear a condition). Not checkpointed. */
  backfillFindings: number;
  watermark: number;
  maxEventTime: number;
}

const HOUR = 3_600_000;
/**
 * A device reporting at least this many times per pane (the windows' common step) has its window
 * data held in panes rather than reading by reading: measured at 10,000 and 5,000 devices, 10 s
 * and 5 s intervals are faster as readings, 2 s and 1 s as 15-s panes.
 */
const DENSE_PER_PANE = 4;
/**
 * Records a device's window data is sized for beyond its retained span: readings arrive between
 * two sweeps that drop the oldest, and the span is cut at pane starts (at 10 s, 162 of 165 held).
 */
const SLACK = 8;
/** A device's window data is sized ahead for at most this many records (beyond, it doubles as needed). */
const MAX_RESERVE = 1 << 16;
/** Key ids above this are looked up by string (the table would grow too large). */
const MAX_KEY_ID = 1 << 20;

export interface KeyState {
  key: string;
  site: string | undefined;
  seq: number;
  /** Its index in the engine's by-id table (see `process`), or -1. */
  keyId: number;
  partition: Partition;
  /**
   * The device's numbers in one array (see key-layout.ts): newest event time (detectors see
   * readings newer than it), learned interval, recent times for deduplication, interval samples,
   * per window spec the end up to which every window was emitted, per detector its timer.
   */
  numbers: Float64Array;
  recentIds: Array<string | undefined>;
  recentCursor: number;
  deltaCount: number;
  /**
   * What its windows can still use, every window spec folding from it: its readings one by one,
   * or, for a device that reports at least four times per pane, pre-aggregated in panes.
   */
  windowData: ReadingRing | PaneRing;
  detectorStates: unknown[];
  dirty: boolean;
}

export interface TimerRef {
  state: KeyState;
  detector: number;
}

export interface Partition {
  index: number;
  maxTime: number;
  keyCount: number;
  dirty: Set<KeyState>;
  timers: TimerHeap<TimerRef>;
  handler: FindingHandler | undefined;
  readings: number;
  late: number;
  tooLate: number;
  fired: number;
  amended: number;
}

/** A restore in steps (see `StreamEngine.prepareRestore`). */
export interface PreparedRestore {
  restoreHandlers(): void;
  undoHandlers(): void;
  commit(): void;
}

/** FNV-1a, 32 bit: a stable hash so a device always lands on the same partition. */
export function partitionOf(key: string, partitions: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % partitions;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/**
 * The event-time engine for one stream. Readings are partitioned by a hash of the device id;
 * each partition has its own keyed state, timer service and alert manager, and is driven by the
 * stream's watermark:
 *
 * - watermark = min over non-idle partitions of (their newest event time) − outOfOrder. A
 *   partition whose newest event time has fallen more than `idleTimeout` behind the stream's
 *   newest is idle and does not hold the watermark back, so its windows and silence timers
 *   still advance with everybody else's time.
 * - every reading is classified against the watermark at its arrival: ON_TIME (time ≥ watermark),
 *   LATE (within allowed lateness: it amends closed windows, which are re-emitted with a higher
 *   revision) or TOO_LATE (sent to ops with the watermark; it changes nothing).
 * - windows are aligned to the epoch, folded from the device's readings, emitted once the
 *   watermark passes their end and kept for allowed lateness after that.
 *
 * @example
 * const engine = new StreamEngine({ schema, detectors: createDetectors(schema), outputs: { aggregate: (a) => rows.push(a) } });
 * if (!decoder.decodeText(line, n)) engine.process(decoder.reading);
 * engine.finish();
 */
export class StreamEngine {
  readonly schema: StreamSchema;
  private readonly detectors: readonly Detector[];
  private readonly outputs: EngineOutputs;
  private readonly partitions: Partition[];
  private readonly keys = new Map<string, KeyState>();
  /** Devices by the decoder's key id (an array index instead of a hash lookup by string; created on first use). */
  private byKeyId: Array<KeyState | undefined> = [];
  private readonly windows: readonly WindowSpec[];
  private readonly fireStep: number;
  /** The windows' common step: the greatest common divisor of every window size and slide. */
  private readonly paneMs: number;
  private readonly retainMs: number;
  private readonly metricNames: readonly string[];
  private readonly metricCount: number;
  private readonly wallClock: (() => number) | undefined;
  private readonly auditInterval: number;
  private readonly mergeScratch: Float64Array;
  private readonly statsTemplate: number[];
  /** Indexes of the detectors that look at window results. */
  private readonly windowDetectors: number[];
  private readonly medianScratch = new Float64Array(INTERVAL_SAMPLES);
  /** Offsets in `KeyState.numbers`. */
  private readonly layout: KeyLayout;
  private readonly firedAt: number;
  private readonly deadlinesAt: number;
  private readonly queuedAt: number;
  /** The wall clock, read every few hundred readings (a reading needs to be a day ahead to be refused). */
  private wallNow = -Infinity;
  private wallReads = 0;
  private readonly ctx: EngineDetectorContext;
  private frontier = -Infinity;
  private watermarkValue = -Infinity;
  private nextFireAt = -Infinity;
  private nextSweepAt = -Infinity;
  private nextAuditAt = -Infinity;
  private keySeq = 0;
  private timerSeq = 0;
  private finished = false;
  /** True while a backfill reading is processed: findings raised meanwhile are backfill (they open no alerts). */
  private inBackfill = false;
  readonly stats: EngineStats = {
    readings: 0,
    accepted: 0,
    onTime: 0,
    late: 0,
    tooLate: 0,
    outOfOrder: 0,
    invalid: 0,
    duplicates: 0,
    clockSkew: 0,
    aggregates: 0,
    amendments: 0,
    findings: 0,
    alertEvents: 0,
    keys: 0,
    evicted: 0,
    backfill: 0,
    backfillFindings: 0,
    watermark: -Infinity,
    maxEventTime: -Infinity,
  };

  constructor(options: StreamEngineOptions) {
    this.schema = options.schema;
    this.detectors = options.detectors;
    this.outputs = options.outputs;
    this.wallClock = options.wallClock;
    this.auditInterval = options.auditIntervalMs ?? 15 * 60_000;
    this.windows = this.schema.windows;
    this.fireStep = this.windows.reduce((g, w) => gcd(g, w.slideMs), 0) || 60_000;
    this.paneMs = this.windows.reduce((g, w) => gcd(gcd(g, w.slideMs), w.sizeMs), 0) || 60_000;
    this.retainMs = this.windows.reduce((m, w) => Math.max(m, w.sizeMs), 0) + this.schema.lateness.allowedLatenessMs;
    this.metricNames = this.schema.metrics.map((m) => m.name);
    this.metricCount = this.metricNames.length;
    this.mergeScratch = createAccumulator(this.metricCount);
    this.statsTemplate = new Array<number>(this.metricCount * 8).fill(0.5);
    this.windowDetectors = this.detectors.flatMap((d, i) => (d.onWindow ? [i] : []));
    this.layout = keyLayout(this.windows.length, this.detectors.length);
    this.firedAt = this.layout.firedAt;
    this.deadlinesAt = this.layout.deadlinesAt;
    this.queuedAt = this.layout.queuedAt;
    const count = Math.max(1, Math.floor(options.partitions ?? 4));
    const emitAlert: AlertEmitter = (event) => {
      this.stats.alertEvents++;
      this.outputs.alert?.(event);
    };
    this.partitions = [];
    for (let i = 0; i < count; i++) {
      this.partitions.push({
        index: i,
        maxTime: -Infinity,
        keyCount: 0,
        dirty: new Set(),
        timers: new TimerHeap(),
        handler: options.createFindingHandler?.(emitAlert, i),
        readings: 0,
        late: 0,
        tooLate: 0,
        fired: 0,
        amended: 0,
      });
    }
    this.ctx = new EngineDetectorContext(this);
  }

  /** Current watermark of the stream (−Infinity before any reading). */
  get watermark(): number {
    return this.watermarkValue;
  }

  /** Records a record that could not be decoded (so counts stay complete). */
  rejectInvalid(event: OpsEvent): void {
    this.stats.readings++;
    this.stats.invalid++;
    this.outputs.ops?.(event);
  }

  /**
   * Processes one decoded reading. The reading object may be reused by the caller afterwards.
   * Returns how the reading was classified, or 'REJECTED' for duplicates and clock skew.
   * `keyId`: the decoder's `keyId` for the reading (optional): a small integer for the device id
   * that finds its state without hashing the id. Any value is safe (the device's id is checked).
   */
  process(reading: Reading, keyId = -1): Lateness | 'REJECTED' {
    const stats = this.stats;
    stats.readings++;
    const schema = this.schema;
    const time = reading.time;
    const lateness = schema.lateness;

    // A reading from the far future would drag the watermark forward and make every honest
    // reading after it TOO_LATE, so it is refused before it can touch the clock.
    if (this.wallClock !== undefined && (this.wallReads++ & 255) === 0) this.wallNow = this.wallClock();
    const reference = Math.max(this.frontier, this.wallNow);
    const futureLimit = reference + lateness.maxFutureMs;
    if (reference > -Infinity && time > futureLimit) {
      stats.clockSkew++;
      this.outputs.ops?.(
        opsEvent('clock_skew', schema.name, `timestamp ${isoOf(time)} is more than ${lateness.maxFutureMs} ms ahead of the newest time seen (${isoOf(futureLimit - lateness.maxFutureMs)})`, {
          key: reading.key,
          time,
          watermark: this.watermarkValue,
          offset: reading.offset,
          field: schema.timeField,
          expected: `a time before ${isoOf(futureLimit)}`,
          got: isoOf(time),
        }),
      );
      return 'REJECTED';
    }

    let state = keyId >= 0 ? this.byKeyId[keyId] : undefined;
    if (state === undefined || state.key !== reading.key) {
      state = this.keys.get(reading.key);
      if (state === undefined) state = this.createKey(reading.key, reading.site);
      if (keyId >= 0 && keyId < MAX_KEY_ID) this.rememberKeyId(state, keyId);
    }
    // Only a changed site is stored: the decoder gives a new string every time, and keeping each
    // one in long-lived state would make it survive (and be copied by) the young-generation GC.
    if (reading.site !== undefined && reading.site !== state.site) state.site = reading.site;
    const partition = state.partition;

    const numbers = state.numbers;
    const lastTime = numbers[LAST_TIME]!;
    if (time <= lastTime && this.isDuplicate(state, time, reading.id)) {
      stats.duplicates++;
      this.outputs.ops?.(
        opsEvent('duplicate', schema.name, reading.id !== undefined ? `reading id ${reading.id} was already received` : `a reading for ${isoOf(time)} was already received from this device`, {
          key: reading.key,
          time,
          watermark: this.watermarkValue,
          offset: reading.offset,
        }),
      );
      return 'REJECTED';
    }
    this.remember(state, time, reading.id);

    const wm = this.watermarkValue;
    const lag = this.frontier - time;
    let klass: Lateness = 'ON_TIME';
    if (time < wm) klass = time < wm - lateness.allowedLatenessMs ? 'TOO_LATE' : 'LATE';
    partition.readings++;
    const backfill = reading.backfill === true;

    if (klass === 'TOO_LATE') {
      stats.tooLate++;
      partition.tooLate++;
      this.outputs.ops?.(
        opsEvent('too_late', schema.name, `${backfill ? 'backfill ' : ''}reading for ${isoOf(time)} arrived ${lag} ms behind the newest event; the watermark ${isoOf(wm)} minus allowed lateness ${lateness.allowedLatenessMs} ms had passed it, so its windows are closed`, {
          key: reading.key,
          time,
          watermark: wm,
          offset: reading.offset,
          lagMs: lag,
        }),
      );
      return klass;
    }
    if (backfill) {
      // Late data by how it travelled, whatever the watermark says: one `late` ops record per
      // reading (as for LATE readings), its reason saying backfill.
      stats.backfill++;
      if (klass === 'LATE') {
        stats.late++;
        partition.late++;
      } else stats.onTime++;
      this.outputs.ops?.(
        opsEvent(
          'late',
          schema.name,
          `backfill: reading for ${isoOf(time)} was forwarded after an outage (${lag > 0 ? `${lag} ms behind the newest event` : 'newest event'}); ` +
            (klass === 'LATE' ? `it arrived behind the watermark ${isoOf(wm)} and closed windows were amended` : `on time for the watermark ${isoOf(wm)}, aggregated into its windows`) +
            '; findings from it open no alerts',
          { key: reading.key, time, watermark: wm, offset: reading.offset, lagMs: lag },
        ),
      );
    } else if (klass === 'LATE') {
      stats.late++;
      partition.late++;
      this.outputs.ops?.(
        opsEvent('late', schema.name, `reading for ${isoOf(time)} arrived behind the watermark ${isoOf(wm)}; closed windows were amended`, {
          key: reading.key,
          time,
          watermark: wm,
          offset: reading.offset,
          lagMs: lag,
        }),
      );
    } else {
      stats.onTime++;
      // Out of order for its own device: behind that device's newest reading. (Behind another
      // device's newest is how any fleet interleaves, and says nothing about this one.)
      const behindOwn = lastTime - time;
      if (behindOwn > 0 && behindOwn > lateness.reportOutOfOrderOverMs) {
        stats.outOfOrder++;
        this.outputs.ops?.(
          opsEvent('out_of_order', schema.name, `reading for ${isoOf(time)} arrived after a reading of the same device ${behindOwn} ms newer (within the ${lateness.outOfOrderMs} ms out-of-orderness bound)`, {
            key: reading.key,
            time,
            watermark: wm,
            offset: reading.offset,
            lagMs: behindOwn,
          }),
        );
      }
    }
    stats.accepted++;

    const inOrder = time > lastTime;
    if (inOrder) {
      if (lastTime > -Infinity) this.learnInterval(state, time - lastTime);
      numbers[LAST_TIME] = time;
    }
    this.deriveValues(state, reading);
    this.outputs.reading?.(reading, klass);

    // Everything this reading sets off — its detectors, the windows it amends or closes, the
    // timers its watermark fires — is evidence from the past when it is backfill.
    this.inBackfill = backfill;
    try {
      if (this.windows.length > 0) this.addToWindows(state, reading, klass === 'LATE');

      // Detectors see each device's readings in event-time order only.
      if (inOrder && this.detectors.length > 0) {
        const ctx = this.ctx;
        ctx.bind(state, wm);
        let score = 0;
        const detectors = this.detectors;
        for (let d = 0; d < detectors.length; d++) {
          ctx.detector = d;
          const s = detectors[d]!.onReading(state.detectorStates[d], reading, ctx);
          if (s > score) score = s;
        }
        this.outputs.score?.(reading, score);
      }

      // Only a new newest time of a partition can move the watermark (or change which partitions are idle).
      if (time > partition.maxTime) {
        partition.maxTime = time;
        if (time > this.frontier) {
          this.frontier = time;
          stats.maxEventTime = time;
        }
        this.advanceWatermark();
      }
    } finally {
      this.inBackfill = false;
    }
    return klass;
  }

  /**
   * End of a bounded input: the watermark moves to the newest event time (no more out-of-order
   * data can come), timers due by then fire, and every window still holding data is emitted,
   * complete or not, so no reading is missing from the aggregates.
   */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.frontier === -Infinity) return;
    this.applyWatermark(Math.max(this.watermarkValue, this.frontier), true);
  }

  /** Number of devices held. */
  get keyCount(): number {
    return this.keys.size;
  }

  /** Audit snapshots of every partition now. */
  snapshotAudit(): AuditSnapshot[] {
    return this.partitions.map((p) => this.auditOf(p));
  }

  /**
   * A checkpoint of everything that decides the engine's future output, as plain JSON (safe for
   * `JSON.stringify`): the clock (watermark, newest event times, partition idleness), every
   * device's state (the readings or panes its windows can still use, window emission and
   * amendment bookkeeping, recent readings for deduplication, the learned interval, each
   * detector's state, timers), each partition's
   * finding handler (alert manager, through its `snapshot()`) and the counters. Take it between
   * two `process()` calls; it copies, so the engine can go on at once.
   * Not included: the wall clock reading used against far-future timestamps (read afresh after a
   * restore). Throws GP_INTERNAL when a finding handler has no `snapshot()`.
   *
   * @example
   * const text = JSON.stringify(engine.snapshot());
   * const resumed = new StreamEngine({ schema, detectors: createDetectors(schema), createFindingHandler, outputs });
   * resumed.restore(JSON.parse(text)); // continues exactly where `engine` was
   */
  snapshot(): EngineSnapshot {
    return encodeEngine(this.checkpointView());
  }

  /**
   * Puts a checkpoint taken by `snapshot()` in place, on a freshly constructed engine of the same
   * stream, metrics, windows, detectors and partition count (new detector instances and new
   * finding handlers are fine: their state comes from the checkpoint). The engine then gives
   * exactly the output the engine that took the checkpoint would have given.
   * Throws GP_INPUT_INVALID naming the problem when the checkpoint is damaged or was taken with
   * another version, stream or layout (the engine is left unchanged), and GP_INTERNAL when the
   * engine has already processed data.
   */
  restore(snapshot: unknown): void {
    const prepared = this.prepareRestore(snapshot);
    prepared.restoreHandlers();
    prepared.commit();
  }

  /**
   * Restore in steps, so that a router can check every engine's checkpoint before changing any:
   * decoding (here) changes nothing; `restoreHandlers()` restores the finding handlers and, when
   * one refuses its state, puts the others back before throwing; `undoHandlers()` puts them back
   * afterwards; `commit()` cannot fail.
   */
  prepareRestore(snapshot: unknown): PreparedRestore {
    if (this.stats.readings > 0 || this.keys.size > 0 || this.frontier !== -Infinity || this.finished) {
      throw new GpError('GP_INTERNAL', `stream ${this.schema.name}: restore needs a freshly constructed engine, this one has processed ${this.stats.readings} records`, { stream: this.schema.name });
    }
    const decoded = decodeEngine(snapshot, this.checkpointView());
    decoded.partitions.forEach((saved, i) => {
      const handler = this.partitions[i]!.handler;
      if (saved.handler !== null && handler?.restore === undefined) {
        throw new GpError('GP_INPUT_INVALID', `engine checkpoint of stream ${this.schema.name} holds the alert state of partition ${i}, but this engine has no finding handler there that can restore it`, {
          stream: this.schema.name,
          field: `/partitions/${i}/handler`,
        });
      }
    });
    const before: unknown[] = [];
    const undo = (count: number): void => {
      for (let i = 0; i < count; i++) {
        const handler = this.partitions[i]!.handler;
        if (decoded.partitions[i]!.handler !== null && handler?.restore) handler.restore(before[i]);
      }
    };
    return {
      restoreHandlers: () => {
        for (let i = 0; i < this.partitions.length; i++) {
          const saved = decoded.partitions[i]!.handler;
          const handler = this.partitions[i]!.handler;
          if (saved === null || handler?.restore === undefined) continue;
          before[i] = handler.snapshot?.();
          try {
            handler.restore(saved);
          } catch (error) {
            undo(i);
            throw error;
          }
        }
      },
      undoHandlers: () => undo(this.partitions.length),
      commit: () => this.commitRestore(decoded),
    };
  }

  private checkpointView(): EngineView {
    const partitions = this.partitions;
    return {
      schema: this.schema,
      detectors: this.detectors,
      windows: this.windows,
      metricCount: this.metricCount,
      paneMs: this.paneMs,
      partitions,
      keys: this.keys,
      clock: {
        frontier: this.frontier,
        watermark: this.watermarkValue,
        nextFireAt: this.nextFireAt,
        nextSweepAt: this.nextSweepAt,
        nextAuditAt: this.nextAuditAt,
        keySeq: this.keySeq,
        timerSeq: this.timerSeq,
        finished: this.finished,
      },
      stats: this.stats,
      layout: this.layout,
      partitionOf: (key) => partitions[partitionOf(key, partitions.length)]!,
    };
  }

  private commitRestore(decoded: DecodedEngine): void {
    this.keys.clear();
    for (const [key, state] of decoded.keys) this.keys.set(key, state);
    decoded.partitions.forEach((saved, i) => {
      const p = this.partitions[i]!;
      p.maxTime = saved.maxTime;
      p.keyCount = saved.keyCount;
      p.readings = saved.readings;
      p.late = saved.late;
      p.tooLate = saved.tooLate;
      p.fired = saved.fired;
      p.amended = saved.amended;
      p.dirty = saved.dirty;
      p.timers = saved.timers;
    });
    const clock = decoded.clock;
    this.frontier = clock.frontier;
    this.watermarkValue = clock.watermark;
    this.nextFireAt = clock.nextFireAt;
    this.nextSweepAt = clock.nextSweepAt;
    this.nextAuditAt = clock.nextAuditAt;
    this.keySeq = clock.keySeq;
    this.timerSeq = clock.timerSeq;
    this.finished = clock.finished;
    Object.assign(this.stats, decoded.stats);
  }

  // ---------------------------------------------------------------------------------------

  private rememberKeyId(state: KeyState, keyId: number): void {
    const byKeyId = this.byKeyId;
    while (byKeyId.length <= keyId) byKeyId.push(undefined);
    const previous = byKeyId[keyId];
    if (previous !== undefined && previous.keyId === keyId) previous.keyId = -1;
    if (state.keyId >= 0 && byKeyId[state.keyId] === state) byKeyId[state.keyId] = undefined;
    byKeyId[keyId] = state;
    state.keyId = keyId;
  }

  private createKey(key: string, site: string | undefined): KeyState {
    const partition = this.partitions[partitionOf(key, this.partitions.length)]!;
    if (partition.keyCount >= this.schema.state.maxKeysPerPartition) this.evictOldest(partition);
    const detectors = this.detectors;
    const state: KeyState = {
      key,
      site,
      seq: this.keySeq++,
      keyId: -1,
      partition,
      numbers: createKeyNumbers(this.layout, this.schema.expectedIntervalMs ?? Number.NaN),
      recentIds: this.schema.idField !== undefined ? new Array<string | undefined>(RECENT) : [],
      recentCursor: 0,
      deltaCount: 0,
      windowData: new ReadingRing(this.metricCount),
      detectorStates: detectors.map((d) => d.createState()),
      dirty: false,
    };
    this.keys.set(key, state);
    partition.keyCount++;
    this.stats.keys = this.keys.size;
    return state;
  }

  private isDuplicate(state: KeyState, time: number, id: string | undefined): boolean {
    const numbers = state.numbers;
    if (id !== undefined && state.recentIds.length > 0) {
      for (let i = 0; i < RECENT; i++) if (state.recentIds[i] === id) return true;
      return false;
    }
    for (let i = RECENT_AT; i < RECENT_AT + RECENT; i++) if (numbers[i] === time) return true;
    return false;
  }

  private remember(state: KeyState, time: number, id: string | undefined): void {
    const i = state.recentCursor;
    state.numbers[RECENT_AT + i] = time;
    if (state.recentIds.length > 0) state.recentIds[i] = id;
    state.recentCursor = (i + 1) % RECENT;
  }

  /** The device's interval: declared, or the median of its last deltas (robust to gaps, which are multiples of it). */
  private learnInterval(state: KeyState, delta: number): void {
    if (this.schema.expectedIntervalMs !== undefined) return;
    const numbers = state.numbers;
    numbers[DELTAS_AT + (state.deltaCount % INTERVAL_SAMPLES)] = delta;
    state.deltaCount++;
    const n = Math.min(state.deltaCount, INTERVAL_SAMPLES);
    if (n < 3) {
      numbers[INTERVAL] = n === 1 ? delta : Math.min(numbers[DELTAS_AT]!, numbers[DELTAS_AT + 1]!);
      return;
    }
    if (state.deltaCount > INTERVAL_SAMPLES && state.deltaCount % 4 !== 0) return;
    // Median by insertion sort into a scratch array: no allocation on the hot path.
    const sorted = this.medianScratch;
    for (let i = 0; i < n; i++) {
      const v = numbers[DELTAS_AT + i]!;
      let j = i - 1;
      while (j >= 0 && sorted[j]! > v) {
        sorted[j + 1] = sorted[j]!;
        j--;
      }
      sorted[j + 1] = v;
    }
    numbers[INTERVAL] = sorted[(n - 1) >> 1]!;
  }

  /** kW from interval energy: kWh × 3.6e6 / interval ms. */
  private deriveValues(state: KeyState, reading: Reading): void {
    const schema = this.schema;
    if (schema.energyMetricIndex < 0 || schema.powerMetricIndex < 0) return;
    if (schema.metrics[schema.powerMetricIndex]!.kind !== 'derived-power') return;
    const kwh = reading.values[schema.energyMetricIndex]!;
    const interval = state.numbers[INTERVAL]!;
    reading.values[schema.powerMetricIndex] = interval > 0 ? (kwh * 3_600_000) / interval : Number.NaN;
  }

  private addToWindows(state: KeyState, reading: Reading, late: boolean): void {
    let ring = state.windowData;
    const time = reading.time;
    if (ring.count === ring.capacity) ring = this.makeRoom(state, ring);
    const offset = ring.insert(time, reading.values);
    if (!state.dirty) {
      state.dirty = true;
      state.partition.dirty.add(state);
    }
    if (!late) return;
    // The reading may land in windows that were already emitted: amend each of them.
    let amended = false;
    const windows = this.windows;
    for (let w = 0; w < windows.length; w++) {
      const spec = windows[w]!;
      const firedUpTo = state.numbers[this.firedAt + w]!;
      const firstEnd = alignDown(time, spec.slideMs) + spec.slideMs;
      if (firstEnd > firedUpTo) continue;
      if (!amended) {
        ring.markAmended(offset);
        amended = true;
      }
      const lastEnd = Math.min(firedUpTo, firstEnd - spec.slideMs + spec.sizeMs);
      for (let end = firstEnd; end <= lastEnd; end += spec.slideMs) this.emitWindow(state, w, spec, end, true);
    }
  }

  /**
   * A full ring grows to about what the device keeps at steady state: the retained span (largest
   * window + allowed lateness, plus the out-of-orderness the watermark lags by) at its interval.
   * A device found to report at least DENSE_PER_PANE times per pane goes over to panes.
   */
  private makeRoom(state: KeyState, ring: ReadingRing | PaneRing): ReadingRing | PaneRing {
    const interval = state.numbers[INTERVAL]!;
    const span = this.retainMs + this.schema.lateness.outOfOrderMs;
    if (ring instanceof ReadingRing && interval > 0 && interval * DENSE_PER_PANE <= this.paneMs) {
      const panes = PaneRing.fromReadings(ring, this.metricCount, this.paneMs, Math.ceil(span / this.paneMs) + SLACK);
      state.windowData = panes;
      return panes;
    }
    const step = ring instanceof PaneRing ? Math.max(interval, this.paneMs) : interval > 0 ? interval : this.paneMs;
    ring.reserve(Math.min(MAX_RESERVE, Math.ceil(span / step) + SLACK));
    return ring;
  }

  private emitWindow(state: KeyState, w: number, spec: WindowSpec, end: number, amendment: boolean): void {
    const start = end - spec.sizeMs;
    const scratch = this.mergeScratch;
    resetAccumulator(scratch, 0, this.metricCount);
    // Each reading that amended an emitted window raises the revision of every window holding it.
    const revision = state.windowData.fold(start, end, scratch);
    if (revision < 0) return;
    const stats = this.statsTemplate.slice(); // a packed double array: far cheaper to allocate than a Float64Array
    writeStats(scratch, stats);
    let count = 0;
    for (let m = 0; m < this.metricCount; m++) count = Math.max(count, countOf(scratch, m));
    const aggregate: Aggregate = {
      stream: this.schema.name,
      key: state.key,
      site: state.site,
      window: spec.name,
      start,
      end,
      revision,
      count,
      metrics: this.metricNames,
      stats,
      energyKwh: this.energyOf(scratch, spec, state),
    };
    this.stats.aggregates++;
    if (amendment) {
      this.stats.amendments++;
      state.partition.amended++;
    } else state.partition.fired++;
    this.outputs.aggregate?.(aggregate);
    const windowDetectors = this.windowDetectors;
    if (windowDetectors.length > 0) {
      const ctx = this.ctx;
      ctx.bind(state, this.watermarkValue);
      for (let i = 0; i < windowDetectors.length; i++) {
        const d = windowDetectors[i]!;
        ctx.detector = d;
        this.detectors[d]!.onWindow!(state.detectorStates[d], aggregate, ctx);
      }
    }
  }

  /**
   * Window energy in kWh: the sum of interval energy when the stream reports it; otherwise the
   * average power times the time the readings cover (count × interval, at most the window).
   */
  private energyOf(acc: Float64Array, spec: WindowSpec, state: KeyState): number | null {
    const schema = this.schema;
    if (schema.energyMetricIndex >= 0) {
      const m = schema.energyMetricIndex;
      return countOf(acc, m) > 0 ? sumOf(acc, m) : null;
    }
    if (schema.powerMetricIndex < 0) return null;
    const m = schema.powerMetricIndex;
    const n = countOf(acc, m);
    if (n === 0) return null;
    const interval = state.numbers[INTERVAL]!;
    const covered = interval > 0 ? Math.min(spec.sizeMs, n * interval) : spec.sizeMs;
    return ((sumOf(acc, m) / n) * covered) / HOUR;
  }

  private advanceWatermark(): void {
    const lateness = this.schema.lateness;
    let min = Infinity;
    for (const p of this.partitions) {
      if (p.maxTime === -Infinity) continue;
      if (this.frontier - p.maxTime > lateness.idleTimeoutMs) continue; // idle: does not hold time back
      if (p.maxTime < min) min = p.maxTime;
    }
    if (min === Infinity) return;
    const candidate = min - lateness.outOfOrderMs;
    if (candidate > this.watermarkValue) this.applyWatermark(candidate, false);
  }

  private applyWatermark(wm: number, final: boolean): void {
    this.watermarkValue = wm;
    this.stats.watermark = wm;
    for (const p of this.partitions) this.fireTimers(p, wm);
    if (wm < this.nextFireAt && !final) return;
    this.nextFireAt = alignDown(wm, this.fireStep) + this.fireStep;
    for (const p of this.partitions) {
      this.fireWindows(p, wm, final);
      p.handler?.onWatermark(wm);
    }
    if (wm >= this.nextSweepAt) {
      this.nextSweepAt = alignDown(wm, HOUR) + HOUR;
      this.sweepIdleKeys(wm);
    }
    if (wm >= this.nextAuditAt || final) {
      this.nextAuditAt = alignDown(wm, this.auditInterval) + this.auditInterval;
      if (this.outputs.audit) for (const p of this.partitions) this.outputs.audit(this.auditOf(p));
    }
  }

  private fireTimers(p: Partition, wm: number): void {
    const heap = p.timers;
    while (heap.size > 0 && heap.peekTime() <= wm) {
      const time = heap.peekTime();
      const item = heap.peekItem();
      heap.drop();
      const { state, detector } = item;
      const numbers = state.numbers;
      const deadline = numbers[this.deadlinesAt + detector]!;
      if (deadline !== deadline) {
        numbers[this.queuedAt + detector] = 0; // cancelled
        continue;
      }
      if (deadline > time) {
        heap.push(deadline, this.timerSeq++, item); // re-armed later: keep waiting
        continue;
      }
      numbers[this.queuedAt + detector] = 0;
      numbers[this.deadlinesAt + detector] = Number.NaN;
      const d = this.detectors[detector]!;
      if (d.onTimer === undefined) continue;
      const ctx = this.ctx;
      ctx.bind(state, wm);
      ctx.detector = detector;
      d.onTimer(state.detectorStates[detector], deadline, ctx);
    }
  }

  /** Called by the detector context. */
  setTimer(state: KeyState, detector: number, time: number): void {
    const numbers = state.numbers;
    numbers[this.deadlinesAt + detector] = time;
    if (time !== time || numbers[this.queuedAt + detector] === 1) return;
    numbers[this.queuedAt + detector] = 1;
    state.partition.timers.push(time, this.timerSeq++, { state, detector });
  }

  private fireWindows(p: Partition, wm: number, final: boolean): void {
    const windows = this.windows;
    const limit = final ? Infinity : wm;
    const firedAt = this.firedAt;
    for (const state of p.dirty) {
      const ring = state.windowData;
      const numbers = state.numbers;
      let stillDirty = false;
      if (ring.count > 0) {
        const oldest = ring.oldest;
        const newest = ring.newest;
        for (let w = 0; w < windows.length; w++) {
          const spec = windows[w]!;
          const firedUpTo = numbers[firedAt + w]!;
          let end = Math.max(firedUpTo + spec.slideMs, alignDown(oldest, spec.slideMs) + spec.slideMs);
          for (; end <= limit && end - spec.sizeMs <= newest; end += spec.slideMs) this.emitWindow(state, w, spec, end, false);
          const done = Math.max(firedUpTo, final ? end - spec.slideMs : alignDown(wm, spec.slideMs));
          numbers[firedAt + w] = done;
          // The newest reading's last window ends at its slide-aligned time + size.
          if (alignDown(newest, spec.slideMs) + spec.sizeMs > done) stillDirty = true;
        }
        // Readings (panes) are kept while some window holding them can still be amended: whole
        // panes of the windows' common step, so that what can be amended is the same either way.
        const retain = this.retainMs;
        const paneMs = this.paneMs;
        while (ring.count > 0 && alignDown(ring.oldest, paneMs) + retain <= wm) ring.dropOldest();
      }
      if (!stillDirty) {
        state.dirty = false;
        p.dirty.delete(state);
      }
    }
  }

  private sweepIdleKeys(wm: number): void {
    const ttl = this.schema.state.ttlMs;
    for (const state of this.keys.values()) {
      if (state.numbers[LAST_TIME]! < wm - ttl && !state.dirty) this.evict(state, `no reading for more than ${ttl} ms (state TTL)`);
    }
  }

  private evictOldest(p: Partition): void {
    let oldest: KeyState | undefined;
    for (const state of this.keys.values()) if (state.partition === p && (!oldest || state.numbers[LAST_TIME]! < oldest.numbers[LAST_TIME]!)) oldest = state;
    if (oldest) this.evict(oldest, `partition holds its maximum of ${this.schema.state.maxKeysPerPartition} devices; the least recently seen was evicted`);
  }

  private evict(state: KeyState, reason: string): void {
    this.keys.delete(state.key);
    if (state.keyId >= 0 && this.byKeyId[state.keyId] === state) this.byKeyId[state.keyId] = undefined;
    state.keyId = -1;
    state.partition.keyCount--;
    state.partition.dirty.delete(state);
    state.numbers.fill(Number.NaN, this.deadlinesAt, this.queuedAt);
    this.stats.evicted++;
    this.stats.keys = this.keys.size;
    this.outputs.ops?.(opsEvent('evicted', this.schema.name, reason, { key: state.key, time: state.numbers[LAST_TIME]!, watermark: this.watermarkValue }));
  }

  private auditOf(p: Partition): AuditSnapshot {
    let openWindows = 0;
    for (const state of this.keys.values()) if (state.partition === p) openWindows += state.windowData.count;
    return {
      stream: this.schema.name,
      partition: p.index,
      watermark: this.watermarkValue,
      maxEventTime: p.maxTime,
      keys: p.keyCount,
      readings: p.readings,
      late: p.late,
      tooLate: p.tooLate,
      windowsFired: p.fired,
      windowsAmended: p.amended,
      openWindows,
      timers: p.timers.size,
    };
  }

  /** Called by the detector context. */
  report(state: KeyState, detectorIndex: number, input: FindingInput): void {
    const detector = this.detectors[detectorIndex]!;
    const finding: Finding = {
      stream: this.schema.name,
      key: state.key,
      site: state.site,
      type: input.type ?? detector.alertType,
      detector: detector.type,
      metric: input.metric ?? detector.metric,
      time: input.time,
      score: Math.min(1, Math.max(0, input.score)),
      severity: input.severity ?? severityForScore(input.score),
      value: input.value,
      baseline: input.baseline,
      threshold: input.threshold,
      explain: input.explain,
      active: input.active ?? true,
      ...(input.holds ? { holds: true } : {}),
    };
    const interval = state.numbers[INTERVAL]!;
    if (interval > 0) finding.intervalMs = interval;
    this.stats.findings++;
    if (this.inBackfill) {
      // Evidence from the past opens no alert: the finding is recorded, and only a cleared
      // condition (e.g. a device silent during the outage has reported) reaches the alert manager.
      finding.backfill = true;
      this.stats.backfillFindings++;
      this.outputs.finding?.(finding);
      if (!finding.active) state.partition.handler?.onFinding(finding);
      return;
    }
    this.outputs.finding?.(finding);
    state.partition.handler?.onFinding(finding);
  }

  /** Called by the detector context. */
  emitOps(state: KeyState, event: OpsEvent): void {
    if (event.key === undefined) event.key = state.key;
    this.outputs.ops?.(event);
  }
}

/** One reusable context object: detectors get it on every call, so it must not be kept. */
class EngineDetectorContext implements DetectorContext {
  state!: KeyState;
  detector = 0;
  watermark = -Infinity;
  constructor(private readonly engine: StreamEngine) {}
  get schema(): StreamSchema {
    return this.engine.schema;
  }
  get key(): string {
    return this.state.key;
  }
  get site(): string | undefined {
    return this.state.site;
  }
  get intervalMs(): number {
    return this.state.numbers[INTERVAL]!;
  }
  bind(state: KeyState, watermark: number): void {
    this.state = state;
    this.watermark = watermark;
  }
  report(finding: FindingInput): void {
    this.engine.report(this.state, this.detector, finding);
  }
  ops(event: OpsEvent): void {
    this.engine.emitOps(this.state, event);
  }
  setTimer(time: number): void {
    this.engine.setTimer(this.state, this.detector, time);
  }
}
