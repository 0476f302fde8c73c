/**
 * Mergeable per-metric window statistics kept in a Float64Array, ACC_STRIDE slots per metric:
 * n, mean, m2 (Welford, numerically stable for large levels with small variance), min, max,
 * first time, first value, last time, last value, sum. Panes merge with Chan's parallel formula, so a
 * sliding window is the merge of its panes and never re-reads readings.
 */
export const ACC_STRIDE = 10;
const N = 0;
const MEAN = 1;
const M2 = 2;
const MIN = 3;
const MAX = 4;
const FIRST_T = 5;
const FIRST = 6;
const LAST_T = 7;
const LAST = 8;
// A plain running sum besides Welford's mean: sums of round numbers stay round (385, not 384.99999999999994).
const SUM = 9;

export function createAccumulator(metricCount: number): Float64Array {
  const acc = new Float64Array(metricCount * ACC_STRIDE);
  resetAccumulator(acc);
  return acc;
}

export function resetAccumulator(acc: Float64Array): void {
  for (let o = 0; o < acc.length; o += ACC_STRIDE) {
    acc[o + N] = 0;
    acc[o + MEAN] = 0;
    acc[o + M2] = 0;
    acc[o + MIN] = Infinity;
    acc[o + MAX] = -Infinity;
    acc[o + FIRST_T] = Infinity;
    acc[o + FIRST] = Number.NaN;
    acc[o + LAST_T] = -Infinity;
    acc[o + LAST] = Number.NaN;
    acc[o + SUM] = 0;
  }
}

/** Adds one reading's values (NaN = absent) at `time`. Ties in time keep the first-arrived value as first and the last-arrived as last. */
export function addValues(acc: Float64Array, values: Float64Array, time: number): void {
  const metrics = values.length;
  for (let m = 0; m < metrics; m++) {
    const x = values[m]!;
    if (x !== x) continue; // NaN: absent
    const o = m * ACC_STRIDE;
    const n = acc[o + N]! + 1;
    acc[o + N] = n;
    acc[o + SUM] = acc[o + SUM]! + x;
    const delta = x - acc[o + MEAN]!;
    const mean = acc[o + MEAN]! + delta / n;
    acc[o + MEAN] = mean;
    acc[o + M2] = acc[o + M2]! + delta * (x - mean);
    if (x < acc[o + MIN]!) acc[o + MIN] = x;
    if (x > acc[o + MAX]!) acc[o + MAX] = x;
    if (time < acc[o + FIRST_T]!) {
      acc[o + FIRST_T] = time;
      acc[o + FIRST] = x;
    }
    if (time >= acc[o + LAST_T]!) {
      acc[o + LAST_T] = time;
      acc[o + LAST] = x;
    }
  }
}

/** target += source (Chan et al.'s pairwise combination of mean and M2). */
export function mergeInto(target: Float64Array, source: Float64Array): void {
  for (let o = 0; o < target.length; o += ACC_STRIDE) {
    const nb = source[o + N]!;
    if (nb === 0) continue;
    const na = target[o + N]!;
    const n = na + nb;
    const delta = source[o + MEAN]! - target[o + MEAN]!;
    target[o + MEAN] = target[o + MEAN]! + (delta * nb) / n;
    target[o + M2] = target[o + M2]! + source[o + M2]! + (delta * delta * na * nb) / n;
    target[o + N] = n;
    target[o + SUM] = target[o + SUM]! + source[o + SUM]!;
    if (source[o + MIN]! < target[o + MIN]!) target[o + MIN] = source[o + MIN]!;
    if (source[o + MAX]! > target[o + MAX]!) target[o + MAX] = source[o + MAX]!;
    if (source[o + FIRST_T]! < target[o + FIRST_T]!) {
      target[o + FIRST_T] = source[o + FIRST_T]!;
      target[o + FIRST] = source[o + FIRST]!;
    }
    if (source[o + LAST_T]! >= target[o + LAST_T]!) {
      target[o + LAST_T] = source[o + LAST_T]!;
      target[o + LAST] = source[o + LAST]!;
    }
  }
}

/**
 * Writes the public statistics (STAT_NAMES order: count, min, max, avg, sum, stddev, first,
 * last) of every metric into `out` (length metrics × 8). stddev is the population standard
 * deviation. A metric without values has count 0 and NaN elsewhere.
 */
export function writeStats(acc: Float64Array, out: Float64Array): void {
  const metrics = acc.length / ACC_STRIDE;
  for (let m = 0; m < metrics; m++) {
    const o = m * ACC_STRIDE;
    const s = m * 8;
    const n = acc[o + N]!;
    out[s] = n;
    if (n === 0) {
      for (let k = 1; k < 8; k++) out[s + k] = Number.NaN;
      continue;
    }
    const sum = acc[o + SUM]!;
    out[s + 1] = acc[o + MIN]!;
    out[s + 2] = acc[o + MAX]!;
    out[s + 3] = sum / n;
    out[s + 4] = sum;
    out[s + 5] = Math.sqrt(Math.max(0, acc[o + M2]! / n));
    out[s + 6] = acc[o + FIRST]!;
    out[s + 7] = acc[o + LAST]!;
  }
}

/** Readings counted in the accumulator for one metric. */
export function countOf(acc: Float64Array, metric: number): number {
  return acc[metric * ACC_STRIDE + N]!;
}

/** Sum of one metric's values in the accumulator. */
export function sumOf(acc: Float64Array, metric: number): number {
  return acc[metric * ACC_STRIDE + SUM]!;
}
