/**
 * Where a device's numbers live in its one `KeyState.numbers` array. Every reading reads and
 * writes several of them (newest time, dedup ring, interval samples, timer deadlines); in one
 * Float64Array they share a few cache lines and one object, instead of five typed arrays and
 * boxed number fields, each a cache miss of its own once thousands of devices take turns.
 *
 * Layout: newest event time, learned interval, the last RECENT event times (dedup), the last
 * INTERVAL_SAMPLES deltas (interval learning), then per window spec the end up to which windows
 * were emitted, per detector its timer deadline (NaN: none) and whether a heap entry is queued
 * for it (0/1). A checkpoint stores the same numbers in the same order.
 */

/** Recent event times kept per device for deduplication. */
export const RECENT = 16;
/** Interval deltas kept per device for the learned interval (median). */
export const INTERVAL_SAMPLES = 8;

export const LAST_TIME = 0;
export const INTERVAL = 1;
export const RECENT_AT = 2;
export const DELTAS_AT = RECENT_AT + RECENT;
/** Offset of the per-window `firedUpTo` values. */
export const FIRED_AT = DELTAS_AT + INTERVAL_SAMPLES;

/** Offsets of the per-detector sections, which depend on the number of windows and detectors. */
export interface KeyLayout {
  readonly firedAt: number;
  readonly deadlinesAt: number;
  readonly queuedAt: number;
  readonly length: number;
}

export function keyLayout(windows: number, detectors: number): KeyLayout {
  const deadlinesAt = FIRED_AT + windows;
  const queuedAt = deadlinesAt + detectors;
  return { firedAt: FIRED_AT, deadlinesAt, queuedAt, length: queuedAt + detectors };
}

/** A new device's numbers: no time seen, the declared interval (or NaN), nothing emitted, no timers. */
export function createKeyNumbers(layout: KeyLayout, intervalMs: number): Float64Array {
  const numbers = new Float64Array(layout.length);
  numbers[LAST_TIME] = -Infinity;
  numbers[INTERVAL] = intervalMs;
  numbers.fill(Number.NaN, RECENT_AT, DELTAS_AT);
  numbers.fill(-Infinity, layout.firedAt, layout.deadlinesAt);
  numbers.fill(Number.NaN, layout.deadlinesAt, layout.queuedAt);
  return numbers;
}
