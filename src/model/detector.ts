import type { Aggregate, Finding, OpsEvent, Reading, Severity } from './records.js';
import type { StreamSchema } from './stream.js';

/**
 * The contract between the engine and every detector. A detector instance is bound to one
 * stream and (usually) one metric when it is created; the engine keeps one state object per
 * device for it and calls it on that device's partition thread only, in event-time order.
 *
 * One required method, `onReading`; the others are optional hooks.
 * Deliberately left out: I/O, wall-clock time, randomness — a detector sees only event time, so
 * replaying the same input gives the same findings. Detectors never throw on odd values: NaN
 * means "no value" and is skipped.
 *
 * @example
 * const d = createDetector(spec, schema)[0];
 * const state = d.createState();
 * const score = d.onReading(state, reading, ctx); // 0 = normal … 1 = certainly anomalous
 */
export interface Detector<S = unknown> {
  /** Registry name (spike, drop, ...). */
  readonly type: string;
  /** Alert type its findings carry (the type, or a rule's name). */
  readonly alertType: string;
  /** Metric it watches, or undefined for whole-reading detectors (physics, silence). */
  readonly metric: string | undefined;
  /** Fresh per-device state. Must be plain data (numbers, arrays, typed arrays, plain objects) so it can be checkpointed as JSON. */
  createState(): S;
  /**
   * Called with each reading of the device that is newer than the device's previous one.
   * Returns this reading's anomaly score in [0, 1] (0 when the detector has nothing to say).
   */
  onReading(state: S, reading: Reading, ctx: DetectorContext): number;
  /** Called with each window result of the device (first emission and amendments). */
  onWindow?(state: S, aggregate: Aggregate, ctx: DetectorContext): void;
  /** Called when the watermark passes a time set with `ctx.setTimer`. */
  onTimer?(state: S, time: number, ctx: DetectorContext): void;
}

/** What a detector may use during a call. Valid only during that call. */
export interface DetectorContext {
  readonly schema: StreamSchema;
  readonly key: string;
  readonly site: string | undefined;
  /** Current watermark of the partition. */
  readonly watermark: number;
  /** The device's reporting interval: declared, or learned from its readings (NaN until known). */
  readonly intervalMs: number;
  /** Raise a finding; the engine fills stream, key, site and detector. */
  report(finding: FindingInput): void;
  /** Write to the ops side output (e.g. a gap). */
  ops(event: OpsEvent): void;
  /** Ask for `onTimer` once the watermark reaches `time`. One pending timer per device and detector; a new call replaces it. NaN cancels. */
  setTimer(time: number): void;
}

export type FindingInput = Pick<Finding, 'time' | 'score' | 'value' | 'explain'> &
  Partial<Pick<Finding, 'severity' | 'baseline' | 'threshold' | 'active' | 'metric' | 'type' | 'holds'>>;

/** Default severity for a score: ≥ 0.8 critical, ≥ 0.5 warning, else info. */
export function severityForScore(score: number): Severity {
  return score >= 0.8 ? 'critical' : score >= 0.5 ? 'warning' : 'info';
}

/** Build the detectors of one spec for one stream (one per metric where the detector is per metric). */
export type DetectorFactory = (spec: import('./stream.js').DetectorSpec, schema: StreamSchema) => Detector[];
