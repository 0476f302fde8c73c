/**
 * The engine's checkpoint format and its codec. `StreamEngine.snapshot()` turns the whole
 * state that can change future output into plain JSON; `StreamEngine.restore()` reads it back
 * into a fresh engine of the same stream, which then continues exactly as the one that took it.
 *
 * Size matters (tens of thousands of devices): every device is one row whose numbers (clock,
 * dedup ring, learned interval, window bookkeeping, timers, the readings or panes its windows
 * can still use, detector states) are packed into one base64 string (`PackedWriter`: one byte
 * for a small counter, up to seven for an epoch time or a step between two, nine for a double).
 */
import { GpError, type Detector, type StreamSchema, type WindowSpec } from '../model/index.js';
import { ACC_SLOT, ACC_STRIDE } from './accumulator.js';
import { describeJson, decodeNumber, encodeNumber, PackedReader, PackedWriter, plainStateFromJson, plainStateToJson, type JsonNumber } from './checkpoint-codec.js';
import { DELTAS_AT, INTERVAL, INTERVAL_SAMPLES, LAST_TIME, RECENT, RECENT_AT, type KeyLayout } from './key-layout.js';
import { PANE_ACC, PaneRing } from './pane-ring.js';
import { READING_VALUES, ReadingRing } from './reading-ring.js';
import { TimerHeap } from './timer-heap.js';
import type { EngineStats, KeyState, Partition, TimerRef } from './stream-engine.js';

/**
 * Version of the checkpoint format. 2: a device profile's numbers (seasonal, sustained_high) are
 * laid out slot by slot — as many numbers as in version 1, so only the version tells them apart.
 * 3: a device's window data is its readings, or panes only for a device reporting several times per pane.
 */
export const ENGINE_SNAPSHOT_VERSION = 3;

/**
 * A checkpoint of one `StreamEngine`: plain JSON (safe for `JSON.stringify`), versioned.
 * Treat it as opaque; only `version` and `stream` are meant to be read by others.
 */
export interface EngineSnapshot {
  version: 3;
  stream: string;
  /** What the state was built for; restore refuses a checkpoint whose layout differs from the engine's. */
  layout: EngineSnapshotLayout;
  clock: EngineSnapshotClock;
  stats: Record<string, JsonNumber>;
  partitions: PartitionSnapshot[];
  /** One row per device, in the engine's key order. */
  keys: KeyRow[];
}

export interface EngineSnapshotLayout {
  metrics: string[];
  /** `name=sizeMs/slideMs` per window spec. */
  windows: string[];
  /** `type/alertType/metric` per detector instance, in engine order. */
  detectors: string[];
  partitions: number;
  /** Numbers in each detector's packed per-device state; -1 when its state is kept as JSON. */
  detectorSizes: number[];
  /** Whether readings are deduplicated by id (the stream has an idField). */
  ids: boolean;
}

export interface EngineSnapshotClock {
  frontier: JsonNumber;
  watermark: JsonNumber;
  nextFireAt: JsonNumber;
  nextSweepAt: JsonNumber;
  nextAuditAt: JsonNumber;
  keySeq: number;
  timerSeq: number;
  finished: boolean;
}

export interface PartitionSnapshot {
  maxTime: JsonNumber;
  readings: number;
  late: number;
  tooLate: number;
  fired: number;
  amended: number;
  /** Indexes into `keys` of the devices with windows still to emit, in the order they are visited. */
  dirty: number[];
  /** Pending timers, four numbers each: time, sequence, key index (-1: an evicted device), detector. */
  timers: JsonNumber[];
  /** The finding handler's (alert manager's) own snapshot, or null without a handler. */
  handler: unknown;
}

/**
 * `[key, site, packed numbers, recent reading ids or null, detector states kept as JSON]`; the
 * last two are left out when empty. States kept as JSON are keyed by detector index.
 */
export type KeyRow = [string, string | null, string] | [string, string | null, string, Array<string | null> | null] | [string, string | null, string, Array<string | null> | null, Record<string, unknown>];

/** What the codec needs to see of an engine. */
export interface EngineView {
  schema: StreamSchema;
  detectors: readonly Detector[];
  windows: readonly WindowSpec[];
  metricCount: number;
  /** The windows' common step: the length of a device's panes when it has them. */
  paneMs: number;
  partitions: readonly Partition[];
  keys: ReadonlyMap<string, KeyState>;
  clock: EngineClock;
  stats: EngineStats;
  /** Offsets in each device's `numbers`. */
  layout: KeyLayout;
  partitionOf(key: string): Partition;
}

export interface EngineClock {
  frontier: number;
  watermark: number;
  nextFireAt: number;
  nextSweepAt: number;
  nextAuditAt: number;
  keySeq: number;
  timerSeq: number;
  finished: boolean;
}

/** A decoded checkpoint, ready to be put in place. */
export interface DecodedEngine {
  clock: EngineClock;
  stats: EngineStats;
  keys: Map<string, KeyState>;
  partitions: DecodedPartition[];
}

export interface DecodedPartition {
  maxTime: number;
  keyCount: number;
  readings: number;
  late: number;
  tooLate: number;
  fired: number;
  amended: number;
  dirty: Set<KeyState>;
  timers: TimerHeap<TimerRef>;
  handler: unknown;
}

const STAT_FIELDS: ReadonlyArray<keyof EngineStats> = [
  'readings',
  'accepted',
  'onTime',
  'late',
  'tooLate',
  'outOfOrder',
  'invalid',
  'duplicates',
  'clockSkew',
  'aggregates',
  'amendments',
  'findings',
  'alertEvents',
  'keys',
  'evicted',
  'watermark',
  'maxEventTime',
];

// ---- layout ---------------------------------------------------------------------------------

function windowLabel(w: WindowSpec): string {
  return `${w.name}=${w.sizeMs}/${w.slideMs}`;
}

function detectorLabel(d: Detector): string {
  return `${d.type}/${d.alertType}/${d.metric ?? '*'}`;
}

/** Numbers in a plain state made of numbers, number arrays, Float64Arrays and plain objects; -1 for anything else. */
function packedSize(template: unknown): number {
  if (typeof template === 'number') return 1;
  if (template instanceof Float64Array) return template.length;
  if (Array.isArray(template) || isPlainObject(template)) {
    let total = 0;
    for (const value of Object.values(template)) {
      const size = packedSize(value);
      if (size < 0) return -1;
      total += size;
    }
    return total;
  }
  return -1;
}

function layoutOf(view: EngineView, templates: readonly unknown[]): EngineSnapshotLayout {
  return {
    metrics: view.schema.metrics.map((m) => m.name),
    windows: view.windows.map(windowLabel),
    detectors: view.detectors.map(detectorLabel),
    partitions: view.partitions.length,
    detectorSizes: templates.map(packedSize),
    ids: view.schema.idField !== undefined,
  };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

// ---- encode ---------------------------------------------------------------------------------

/** Writes `state` in the order of `template`'s leaves; false (and nothing kept) when its shape differs. */
function packState(template: unknown, state: unknown, out: PackedWriter): boolean {
  const mark = out.length;
  if (packInto(template, state, out)) return true;
  out.length = mark;
  return false;
}

function packInto(template: unknown, state: unknown, out: PackedWriter): boolean {
  if (typeof template === 'number') {
    if (typeof state !== 'number') return false;
    out.push(state);
    return true;
  }
  if (template instanceof Float64Array) {
    if (!(state instanceof Float64Array) || state.length !== template.length) return false;
    out.pushAll(state);
    return true;
  }
  if (Array.isArray(template)) {
    if (!Array.isArray(state) || state.length !== template.length) return false;
    for (let i = 0; i < template.length; i++) if (!packInto(template[i], state[i], out)) return false;
    return true;
  }
  if (isPlainObject(template)) {
    if (!isPlainObject(state)) return false;
    // Runs once per device and detector at every checkpoint: the template's names are looked up
    // once, and the state's are walked in place (for…in gives Object.keys' order) so that packing
    // tens of thousands of devices allocates nothing per object.
    const names = namesOf(template);
    let i = 0;
    for (const name in state) {
      if (name !== names[i] || !packInto(template[name], state[name], out)) return false;
      i++;
    }
    return i === names.length;
  }
  return false;
}

const templateNames = new WeakMap<object, readonly string[]>();

function namesOf(template: Record<string, unknown>): readonly string[] {
  let names = templateNames.get(template);
  if (names === undefined) {
    names = Object.keys(template);
    templateNames.set(template, names);
  }
  return names;
}

const HELD_READINGS = 0;
const HELD_PANES = 1;
const PANE_EMPTY = 0;
const PANE_SINGLE = 1;
const PANE_FULL = 2;

/** A device's window data: HELD_READINGS or HELD_PANES, then the records. */
function packWindowData(held: ReadingRing | PaneRing, metricCount: number, out: PackedWriter): void {
  if (held instanceof ReadingRing) {
    out.push(HELD_READINGS);
    packReadings(held, metricCount, out);
  } else {
    out.push(HELD_PANES);
    packPanes(held, metricCount, out);
  }
}

/**
 * Readings: their count, then per reading a code (1 when it amended an emitted window, + 2 when
 * its time follows whole rather than as the step from the previous one), its time and values.
 */
function packReadings(ring: ReadingRing, metricCount: number, out: PackedWriter): void {
  const data = ring.data;
  out.push(ring.count);
  let previous = 0;
  for (let i = 0; i < ring.count; i++) {
    const time = ring.timeAt(i);
    const step = time - previous;
    const whole = i === 0 || previous + step !== time;
    out.push((ring.amendedAt(i) ? 1 : 0) + (whole ? 2 : 0));
    out.push(whole ? time : step);
    const values = ring.offsetAt(i) + READING_VALUES;
    out.pushAll(data, values, values + metricCount);
    previous = time;
  }
}

/** Panes: their count, then per pane its start, amendments and per metric its accumulator — as (time, value) when it holds one reading, the common case. */
function packPanes(ring: PaneRing, metricCount: number, out: PackedWriter): void {
  const data = ring.data;
  out.push(ring.count);
  for (let i = 0; i < ring.count; i++) {
    const offset = ring.offsetAt(i);
    const start = ring.timeAt(i);
    out.push(start);
    out.push(ring.amendmentsAt(i));
    for (let m = 0, o = offset + PANE_ACC; m < metricCount; m++, o += ACC_STRIDE) {
      if (isEmptyMetric(data, o)) {
        out.push(PANE_EMPTY);
      } else if (isSingleReading(data, o, start)) {
        out.push(PANE_SINGLE);
        out.push(data[o + ACC_SLOT.LAST_T]! - start);
        out.push(data[o + ACC_SLOT.LAST]!);
      } else {
        out.push(PANE_FULL);
        out.pushAll(data, o, o + ACC_STRIDE);
      }
    }
  }
}

function isEmptyMetric(acc: Float64Array, o: number): boolean {
  return (
    acc[o + ACC_SLOT.N] === 0 &&
    Object.is(acc[o + ACC_SLOT.SUM], 0) &&
    Object.is(acc[o + ACC_SLOT.SHIFT], 0) &&
    Object.is(acc[o + ACC_SLOT.SD], 0) &&
    Object.is(acc[o + ACC_SLOT.SD2], 0) &&
    acc[o + ACC_SLOT.MIN] === Infinity &&
    acc[o + ACC_SLOT.MAX] === -Infinity &&
    acc[o + ACC_SLOT.FIRST_T] === Infinity &&
    Number.isNaN(acc[o + ACC_SLOT.FIRST]) &&
    acc[o + ACC_SLOT.LAST_T] === -Infinity &&
    Number.isNaN(acc[o + ACC_SLOT.LAST])
  );
}

/** One reading (t, x) added to an empty accumulator, and nothing else: rebuilt exactly from (t − start, x). */
function isSingleReading(acc: Float64Array, o: number, start: number): boolean {
  const x = acc[o + ACC_SLOT.LAST]!;
  const t = acc[o + ACC_SLOT.LAST_T]!;
  return (
    acc[o + ACC_SLOT.N] === 1 &&
    Number.isFinite(x) &&
    Object.is(acc[o + ACC_SLOT.SUM], x) &&
    Object.is(acc[o + ACC_SLOT.SHIFT], x) &&
    Object.is(acc[o + ACC_SLOT.SD], 0) &&
    Object.is(acc[o + ACC_SLOT.SD2], 0) &&
    Object.is(acc[o + ACC_SLOT.MIN], x) &&
    Object.is(acc[o + ACC_SLOT.MAX], x) &&
    Object.is(acc[o + ACC_SLOT.FIRST], x) &&
    acc[o + ACC_SLOT.FIRST_T] === t &&
    start + (t - start) === t
  );
}

/**
 * The checkpoint of an engine. Throws GP_INTERNAL when a partition's finding handler keeps
 * state it cannot checkpoint (it has no `snapshot()`).
 */
export function encodeEngine(view: EngineView): EngineSnapshot {
  const templates = view.detectors.map((d) => d.createState());
  const layout = layoutOf(view, templates);
  const sizes = layout.detectorSizes;
  const keyIndex = new Map<KeyState, number>();
  const out = new PackedWriter();
  const keys: KeyRow[] = [];
  for (const state of view.keys.values()) {
    keyIndex.set(state, keys.length);
    out.reset();
    const numbers = state.numbers;
    out.push(state.seq);
    out.push(numbers[LAST_TIME]!);
    out.push(state.recentCursor);
    out.push(state.deltaCount);
    out.push(numbers[INTERVAL]!);
    // Recent times, interval deltas, firedUpTo per window, timer deadline and queued flag per detector.
    out.pushAll(numbers, RECENT_AT, view.layout.length);
    packWindowData(state.windowData, view.metricCount, out);
    let loose: Record<string, unknown> | undefined;
    for (let d = 0; d < templates.length; d++) {
      const value = state.detectorStates[d];
      if (sizes[d]! >= 0 && packState(templates[d], value, out)) continue;
      loose ??= {};
      loose[String(d)] = plainStateToJson(value);
    }
    const site = state.site ?? null;
    const packed = out.toBase64();
    const ids = layout.ids ? Array.from(state.recentIds, (id) => id ?? null) : null;
    keys.push(loose ? [state.key, site, packed, ids, loose] : ids ? [state.key, site, packed, ids] : [state.key, site, packed]);
  }
  const partitions = view.partitions.map((p): PartitionSnapshot => {
    const timers: JsonNumber[] = [];
    p.timers.forEach((time, seq, item) => {
      // An evicted device's entry is still in the heap (cancelled lazily): it keeps the heap's size, which audits show.
      timers.push(encodeNumber(time), seq, keyIndex.get(item.state) ?? -1, item.detector);
    });
    let handler: unknown = null;
    if (p.handler !== undefined) {
      if (p.handler.snapshot === undefined) {
        throw new GpError('GP_INTERNAL', `stream ${view.schema.name}: the finding handler of partition ${p.index} has no snapshot(), so the engine cannot be checkpointed`, { stream: view.schema.name, partition: p.index });
      }
      handler = p.handler.snapshot();
    }
    return {
      maxTime: encodeNumber(p.maxTime),
      readings: p.readings,
      late: p.late,
      tooLate: p.tooLate,
      fired: p.fired,
      amended: p.amended,
      dirty: [...p.dirty].map((state) => keyIndex.get(state)!),
      timers,
      handler: handler ?? null,
    };
  });
  const clock = view.clock;
  const stats: Record<string, JsonNumber> = {};
  for (const field of STAT_FIELDS) stats[field] = encodeNumber(view.stats[field]);
  return {
    version: ENGINE_SNAPSHOT_VERSION,
    stream: view.schema.name,
    layout,
    clock: {
      frontier: encodeNumber(clock.frontier),
      watermark: encodeNumber(clock.watermark),
      nextFireAt: encodeNumber(clock.nextFireAt),
      nextSweepAt: encodeNumber(clock.nextSweepAt),
      nextAuditAt: encodeNumber(clock.nextAuditAt),
      keySeq: clock.keySeq,
      timerSeq: clock.timerSeq,
      finished: clock.finished,
    },
    stats,
    partitions,
    keys,
  };
}

// ---- decode ---------------------------------------------------------------------------------

function invalid(stream: string, path: string, expected: string, got: unknown): GpError {
  return new GpError('GP_INPUT_INVALID', `engine checkpoint of stream ${stream}, ${path}: expected ${expected}, got ${describeJson(got)}`, {
    stream,
    field: path,
    expected,
    got: describeJson(got),
  });
}

function mismatch(stream: string, what: string, saved: readonly unknown[], now: readonly unknown[]): GpError {
  return new GpError(
    'GP_INPUT_INVALID',
    `engine checkpoint of stream ${stream} does not fit this engine: its ${what} are [${saved.join(', ')}], the engine's are [${now.join(', ')}]; restore needs the configuration the checkpoint was taken with`,
    { stream, field: `layout/${what}`, expected: now.join(', '), got: saved.join(', ') },
  );
}

function record(value: unknown, stream: string, path: string): Record<string, unknown> {
  if (!isPlainObject(value)) throw invalid(stream, path, 'an object', value);
  return value;
}

function array(value: unknown, stream: string, path: string): unknown[] {
  if (!Array.isArray(value)) throw invalid(stream, path, 'an array', value);
  return value;
}

function integer(value: unknown, stream: string, path: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw invalid(stream, path, `an integer from ${min} to ${max}`, value);
  return value;
}

function number(value: unknown, stream: string, path: string): number {
  const decoded = decodeNumber(value);
  if (decoded === undefined) throw invalid(stream, path, 'a number (or "NaN", "Infinity", "-Infinity", "-0")', value);
  return decoded;
}

function strings(value: unknown, stream: string, path: string): string[] {
  const list = array(value, stream, path);
  list.forEach((item, i) => {
    if (typeof item !== 'string') throw invalid(stream, `${path}/${i}`, 'a string', item);
  });
  return list as string[];
}

function sameList(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Checks that a checkpoint's layout fits the engine; throws a GpError naming the difference. */
function checkLayout(root: Record<string, unknown>, view: EngineView, expected: EngineSnapshotLayout): void {
  const stream = view.schema.name;
  const layout = record(root.layout, stream, '/layout');
  const metrics = strings(layout.metrics, stream, '/layout/metrics');
  if (!sameList(metrics, expected.metrics)) throw mismatch(stream, 'metrics', metrics, expected.metrics);
  const windows = strings(layout.windows, stream, '/layout/windows');
  if (!sameList(windows, expected.windows)) throw mismatch(stream, 'windows', windows, expected.windows);
  const detectors = strings(layout.detectors, stream, '/layout/detectors');
  if (!sameList(detectors, expected.detectors)) throw mismatch(stream, 'detectors', detectors, expected.detectors);
  const partitions = integer(layout.partitions, stream, '/layout/partitions', 1);
  if (partitions !== expected.partitions) throw mismatch(stream, 'partitions', [partitions], [expected.partitions]);
  const sizes = array(layout.detectorSizes, stream, '/layout/detectorSizes');
  sizes.forEach((size, d) => {
    if (size !== expected.detectorSizes[d]) {
      throw new GpError(
        'GP_INPUT_INVALID',
        `engine checkpoint of stream ${stream} does not fit this engine: detector ${expected.detectors[d]} keeps ${describeJson(size)} numbers per device in the checkpoint and ${expected.detectorSizes[d]} now (its parameters changed, or this version of gridpulse keeps other state for it); restore needs the configuration and version the checkpoint was taken with`,
        { stream, field: `layout/detectorSizes/${d}`, expected: expected.detectorSizes[d], got: describeJson(size) },
      );
    }
  });
  if (sizes.length !== expected.detectorSizes.length) throw mismatch(stream, 'detectorSizes', sizes, expected.detectorSizes);
  if (layout.ids !== expected.ids) {
    throw mismatch(stream, 'id deduplication', [layout.ids === true ? 'by idField' : 'by time'], [expected.ids ? 'by idField' : 'by time']);
  }
}

function unpackInto(template: unknown, reader: PackedReader): unknown {
  if (typeof template === 'number') return reader.next();
  if (template instanceof Float64Array) {
    reader.into(template, 0, template.length);
    return template;
  }
  if (Array.isArray(template)) {
    for (let i = 0; i < template.length; i++) template[i] = unpackInto(template[i], reader);
    return template;
  }
  const object = template as Record<string, unknown>;
  for (const name of Object.keys(object)) object[name] = unpackInto(object[name], reader);
  return object;
}

function unpackWindowData(reader: PackedReader, metricCount: number, paneMs: number): ReadingRing | PaneRing {
  const held = reader.nextInteger(HELD_READINGS, HELD_PANES, 'window data kind');
  return held === HELD_READINGS ? unpackReadings(reader, metricCount) : unpackPanes(reader, metricCount, paneMs);
}

function unpackReadings(reader: PackedReader, metricCount: number): ReadingRing {
  const count = reader.nextInteger(0, reader.remaining, 'reading count');
  const ring = new ReadingRing(metricCount, Math.max(8, count));
  const values = new Float64Array(metricCount);
  let previous = -Infinity;
  for (let i = 0; i < count; i++) {
    const code = reader.nextInteger(0, 3, 'reading code');
    const time = code >= 2 ? reader.next() : previous + reader.next();
    // Readings are held in time order: anything else is a damaged checkpoint.
    if (!Number.isFinite(time) || time < previous) throw new Error(`reading ${i} is at ${time}, before ${previous}`);
    previous = time;
    reader.into(values, 0, metricCount);
    const offset = ring.insert(time, values);
    if ((code & 1) === 1) ring.markAmended(offset);
  }
  return ring;
}

function unpackPanes(reader: PackedReader, metricCount: number, paneMs: number): PaneRing {
  const count = reader.nextInteger(0, reader.remaining, 'pane count');
  const ring = new PaneRing(metricCount, paneMs, Math.max(16, count));
  let previous = -Infinity;
  for (let i = 0; i < count; i++) {
    const start = reader.next();
    // paneFor appends only for a start after the newest: the order is what makes the ring valid.
    if (!Number.isFinite(start) || !(start > previous)) throw new Error(`pane ${i} starts at ${start}, not after ${previous}`);
    previous = start;
    const offset = ring.paneFor(start);
    const data = ring.data;
    ring.setAmendments(offset, reader.nextInteger(0, Number.MAX_SAFE_INTEGER, 'pane amendments'));
    for (let m = 0, o = offset + PANE_ACC; m < metricCount; m++, o += ACC_STRIDE) {
      const code = reader.nextInteger(PANE_EMPTY, PANE_FULL, 'pane metric code');
      if (code === PANE_SINGLE) {
        const t = start + reader.next();
        const x = reader.next();
        data[o + ACC_SLOT.N] = 1;
        data[o + ACC_SLOT.SUM] = x;
        data[o + ACC_SLOT.SHIFT] = x;
        data[o + ACC_SLOT.SD] = 0;
        data[o + ACC_SLOT.SD2] = 0;
        data[o + ACC_SLOT.MIN] = x;
        data[o + ACC_SLOT.MAX] = x;
        data[o + ACC_SLOT.FIRST_T] = t;
        data[o + ACC_SLOT.FIRST] = x;
        data[o + ACC_SLOT.LAST_T] = t;
        data[o + ACC_SLOT.LAST] = x;
      } else if (code === PANE_FULL) {
        reader.into(data, o, ACC_STRIDE);
      }
    }
  }
  return ring;
}

/**
 * Reads a checkpoint taken by `encodeEngine` for the engine `view` describes. Builds new state
 * only (the engine is untouched), so a bad checkpoint changes nothing. Throws GP_INPUT_INVALID
 * with a message naming what does not fit.
 */
export function decodeEngine(json: unknown, view: EngineView): DecodedEngine {
  const stream = view.schema.name;
  if (!isPlainObject(json)) throw invalid(stream, '/', 'an engine checkpoint object', json);
  const root = json;
  if (root.version !== ENGINE_SNAPSHOT_VERSION) {
    const older = typeof root.version === 'number' && root.version < ENGINE_SNAPSHOT_VERSION ? ' (it was written by an earlier gridpulse)' : '';
    throw new GpError('GP_INPUT_INVALID', `engine checkpoint version ${describeJson(root.version)} is not supported${older}; this gridpulse reads version ${ENGINE_SNAPSHOT_VERSION}`, {
      stream,
      field: '/version',
      expected: ENGINE_SNAPSHOT_VERSION,
      got: describeJson(root.version),
    });
  }
  if (root.stream !== stream) {
    throw new GpError('GP_INPUT_INVALID', `engine checkpoint is of stream ${describeJson(root.stream)}, this engine runs stream "${stream}"`, {
      stream,
      field: '/stream',
      expected: stream,
      got: describeJson(root.stream),
    });
  }
  const templates = view.detectors.map((d) => d.createState());
  const layout = layoutOf(view, templates);
  checkLayout(root, view, layout);

  const clockJson = record(root.clock, stream, '/clock');
  const clock: EngineClock = {
    frontier: number(clockJson.frontier, stream, '/clock/frontier'),
    watermark: number(clockJson.watermark, stream, '/clock/watermark'),
    nextFireAt: number(clockJson.nextFireAt, stream, '/clock/nextFireAt'),
    nextSweepAt: number(clockJson.nextSweepAt, stream, '/clock/nextSweepAt'),
    nextAuditAt: number(clockJson.nextAuditAt, stream, '/clock/nextAuditAt'),
    keySeq: integer(clockJson.keySeq, stream, '/clock/keySeq'),
    timerSeq: integer(clockJson.timerSeq, stream, '/clock/timerSeq'),
    finished: clockJson.finished === true,
  };
  if (typeof clockJson.finished !== 'boolean') throw invalid(stream, '/clock/finished', 'true or false', clockJson.finished);

  const statsJson = record(root.stats, stream, '/stats');
  const stats = {} as EngineStats;
  for (const field of STAT_FIELDS) stats[field] = number(statsJson[field], stream, `/stats/${field}`);

  const detectorCount = view.detectors.length;
  const windowCount = view.windows.length;
  const keyNumbers = view.layout;
  const keyRows = array(root.keys, stream, '/keys');
  const keyList: KeyState[] = [];
  const keys = new Map<string, KeyState>();
  keyRows.forEach((rowJson, index) => {
    const path = `/keys/${index}`;
    const row = array(rowJson, stream, path);
    const key = row[0];
    if (typeof key !== 'string') throw invalid(stream, `${path}/0`, 'a device id', key);
    if (keys.has(key)) throw invalid(stream, `${path}/0`, 'each device once', `${key} twice`);
    const site = row[1];
    if (site !== null && typeof site !== 'string') throw invalid(stream, `${path}/1`, 'a site id or null', site);
    const packed = row[2];
    if (typeof packed !== 'string') throw invalid(stream, `${path}/2`, 'packed numbers (base64)', packed);
    const fail = (reason: string): GpError => invalid(stream, `${path}/2`, 'the packed numbers of a device', reason);
    const reader = new PackedReader(packed, fail);
    const numbers = new Float64Array(keyNumbers.length);
    let seq: number, recentCursor: number, deltaCount: number, windowData: ReadingRing | PaneRing;
    try {
      seq = reader.nextInteger(0, Number.MAX_SAFE_INTEGER, 'seq');
      numbers[LAST_TIME] = reader.next();
      recentCursor = reader.nextInteger(0, RECENT - 1, 'recentCursor');
      deltaCount = reader.nextInteger(0, Number.MAX_SAFE_INTEGER, 'deltaCount');
      numbers[INTERVAL] = reader.next();
      reader.into(numbers, RECENT_AT, RECENT);
      reader.into(numbers, DELTAS_AT, INTERVAL_SAMPLES);
      reader.into(numbers, keyNumbers.firedAt, windowCount);
      reader.into(numbers, keyNumbers.deadlinesAt, detectorCount);
      for (let d = 0; d < detectorCount; d++) numbers[keyNumbers.queuedAt + d] = reader.nextInteger(0, 1, 'timerQueued');
      windowData = unpackWindowData(reader, view.metricCount, view.paneMs);
    } catch (error) {
      if (error instanceof GpError) throw error;
      throw fail((error as Error).message);
    }
    const recentIds = layout.ids ? new Array<string | undefined>(RECENT) : [];
    const ids = row[3];
    if (layout.ids) {
      const list = array(ids, stream, `${path}/3`);
      if (list.length !== RECENT) throw invalid(stream, `${path}/3`, `${RECENT} recent reading ids`, list.length);
      list.forEach((id, i) => {
        if (id !== null && typeof id !== 'string') throw invalid(stream, `${path}/3/${i}`, 'a reading id or null', id);
        recentIds[i] = id ?? undefined;
      });
    } else if (ids !== undefined && ids !== null) {
      throw invalid(stream, `${path}/3`, 'null (the stream has no idField)', ids);
    }
    const loose = row[4] === undefined ? {} : record(row[4], stream, `${path}/4`);
    for (const name of Object.keys(loose)) {
      if (!/^\d+$/.test(name) || Number(name) >= detectorCount) throw invalid(stream, `${path}/4/${name}`, `a detector index below ${detectorCount}`, name);
    }
    const detectorStates: unknown[] = [];
    for (let d = 0; d < detectorCount; d++) {
      const saved = loose[String(d)];
      if (saved !== undefined) detectorStates.push(plainStateFromJson(saved));
      else if (layout.detectorSizes[d]! >= 0) detectorStates.push(unpackInto(view.detectors[d]!.createState(), reader));
      else throw invalid(stream, `${path}/4/${d}`, `the state of detector ${layout.detectors[d]}`, undefined);
    }
    if (reader.remaining !== 0) throw fail(`${reader.remaining} bytes left over`);
    // The same fields in the same order as the engine's own new devices (one object shape on the hot path).
    const state: KeyState = {
      key,
      site: site ?? undefined,
      seq,
      keyId: -1,
      partition: view.partitionOf(key),
      numbers,
      recentIds,
      recentCursor,
      deltaCount,
      windowData,
      detectorStates,
      dirty: false,
    };
    keys.set(key, state);
    keyList.push(state);
  });

  const partitionsJson = array(root.partitions, stream, '/partitions');
  if (partitionsJson.length !== view.partitions.length) throw mismatch(stream, 'partitions', [partitionsJson.length], [view.partitions.length]);
  const orphan = evictedDevice(keyNumbers);
  const partitions = partitionsJson.map((entry, p): DecodedPartition => {
    const path = `/partitions/${p}`;
    const saved = record(entry, stream, path);
    const own = view.partitions[p]!;
    const dirty = new Set<KeyState>();
    array(saved.dirty, stream, `${path}/dirty`).forEach((value, i) => {
      const state = keyList[integer(value, stream, `${path}/dirty/${i}`, 0, keyList.length - 1)]!;
      if (state.partition !== own || dirty.has(state)) throw invalid(stream, `${path}/dirty/${i}`, 'a device of this partition, once', state.key);
      state.dirty = true;
      dirty.add(state);
    });
    const timers = new TimerHeap<TimerRef>();
    const flat = array(saved.timers, stream, `${path}/timers`);
    if (flat.length % 4 !== 0) throw invalid(stream, `${path}/timers`, 'four numbers per timer', flat.length);
    for (let i = 0; i < flat.length; i += 4) {
      const time = number(flat[i], stream, `${path}/timers/${i}`);
      // New timers must sort after every restored one at the same time, as they would have.
      const seq = integer(flat[i + 1], stream, `${path}/timers/${i + 1}`, 0, Math.max(0, clock.timerSeq - 1));
      const keyAt = integer(flat[i + 2], stream, `${path}/timers/${i + 2}`, -1, keyList.length - 1);
      const detector = integer(flat[i + 3], stream, `${path}/timers/${i + 3}`, 0, Math.max(0, detectorCount - 1));
      const state = keyAt < 0 ? orphan : keyList[keyAt]!;
      if (keyAt >= 0 && state.partition !== own) throw invalid(stream, `${path}/timers/${i + 2}`, 'a device of this partition', state.key);
      timers.push(time, seq, { state, detector });
    }
    return {
      maxTime: number(saved.maxTime, stream, `${path}/maxTime`),
      keyCount: keyList.reduce((n, state) => (state.partition === own ? n + 1 : n), 0),
      readings: integer(saved.readings, stream, `${path}/readings`),
      late: integer(saved.late, stream, `${path}/late`),
      tooLate: integer(saved.tooLate, stream, `${path}/tooLate`),
      fired: integer(saved.fired, stream, `${path}/fired`),
      amended: integer(saved.amended, stream, `${path}/amended`),
      dirty,
      timers,
      handler: saved.handler ?? null,
    };
  });
  stats.keys = keys.size;
  return { clock, stats, keys, partitions };
}

/**
 * Stands for evicted devices whose timers are still queued: every deadline is cancelled, so
 * their entries pop without effect, as the evicted device's own would have.
 */
function evictedDevice(layout: KeyLayout): KeyState {
  const numbers = new Float64Array(layout.length).fill(Number.NaN);
  numbers.fill(1, layout.queuedAt);
  return {
    key: '',
    site: undefined,
    seq: -1,
    keyId: -1,
    partition: undefined as unknown as Partition,
    numbers,
    recentIds: [],
    recentCursor: 0,
    deltaCount: 0,
    windowData: new ReadingRing(0, 1),
    detectorStates: [],
    dirty: false,
  };
}
