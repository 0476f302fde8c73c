import type { Reading } from '../model/index.js';

/**
 * Streaming quantile estimate with the P² algorithm (Jain & Chlamtac, "The P² algorithm for
 * dynamic calculation of quantiles and histograms without storing observations", CACM 1985):
 * five markers whose heights are adjusted with a piecewise-parabolic formula. O(1) time and
 * fixed memory per update, deterministic, JSON-safe state.
 */

export interface QuantileState {
  /** The quantile estimated (0 < p < 1). */
  p: number;
  /** Observations so far. */
  count: number;
  /** Marker heights (the first five observations until count reaches 5). */
  heights: number[];
  /** Actual marker positions (1-based). */
  positions: number[];
  /** Desired marker positions. */
  desired: number[];
}

export function createQuantileState(p: number): QuantileState {
  return { p, count: 0, heights: [0, 0, 0, 0, 0], positions: [1, 2, 3, 4, 5], desired: [0, 0, 0, 0, 0] };
}

/**
 * Adds metric `index` of a reading to the estimate (a reading, not a number: numbers passed to a
 * call that is not inlined are boxed, an allocation per reading).
 */
export function quantileAdd(s: QuantileState, reading: Reading, index: number): void {
  const x = reading.values[index]!;
  const p = s.p;
  const q = s.heights;
  const n = s.positions;
  const d = s.desired;
  if (s.count < 5) {
    // Insertion into the sorted first five observations.
    let i = s.count;
    while (i > 0 && q[i - 1]! > x) {
      q[i] = q[i - 1]!;
      i--;
    }
    q[i] = x;
    s.count++;
    if (s.count === 5) {
      d[0] = 1;
      d[1] = 1 + 2 * p;
      d[2] = 1 + 4 * p;
      d[3] = 3 + 2 * p;
      d[4] = 5;
    }
    return;
  }
  s.count++;
  let cell: number;
  if (x < q[0]!) {
    q[0] = x;
    cell = 0;
  } else if (x >= q[4]!) {
    if (x > q[4]!) q[4] = x;
    cell = 3;
  } else {
    cell = 0;
    while (cell < 3 && x >= q[cell + 1]!) cell++;
  }
  for (let i = cell + 1; i < 5; i++) n[i] = n[i]! + 1;
  d[1] = d[1]! + p / 2;
  d[2] = d[2]! + p;
  d[3] = d[3]! + (1 + p) / 2;
  d[4] = d[4]! + 1;
  for (let i = 1; i <= 3; i++) {
    const offset = d[i]! - n[i]!;
    const gapUp = n[i + 1]! - n[i]!;
    const gapDown = n[i - 1]! - n[i]!;
    if ((offset >= 1 && gapUp > 1) || (offset <= -1 && gapDown < -1)) {
      const step = offset >= 1 ? 1 : -1;
      const parabolic =
        q[i]! +
        (step / (n[i + 1]! - n[i - 1]!)) *
          ((n[i]! - n[i - 1]! + step) * ((q[i + 1]! - q[i]!) / gapUp) + (n[i + 1]! - n[i]! - step) * ((q[i]! - q[i - 1]!) / -gapDown));
      if (q[i - 1]! < parabolic && parabolic < q[i + 1]!) q[i] = parabolic;
      else q[i] = q[i]! + (step * (q[i + step]! - q[i]!)) / (n[i + step]! - n[i]!);
      n[i] = n[i]! + step;
    }
  }
}

/** Current estimate (NaN before any observation; the exact quantile of the first five before that). */
export function quantileValue(s: QuantileState): number {
  if (s.count === 0) return Number.NaN;
  if (s.count < 5) {
    const index = Math.min(s.count - 1, Math.max(0, Math.round(s.p * (s.count - 1))));
    return s.heights[index]!;
  }
  return s.heights[2]!;
}
