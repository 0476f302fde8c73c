/**
 * Per-metric window statistics kept in a Float64Array, ACC_STRIDE slots per metric: count, sum,
 * shift K, Σ(x−K), Σ(x−K)², min, max, first value, last value. A window folds its readings in
 * time order (see ReadingRing), so the first value added is the first and the last the last.
 *
 * Variance comes from sums of deviations from a shift K (the metric's first value in the
 * window): as cheap as plain sums of squares (no division per value, unlike Welford) but
 * without their cancellation when the level is large and the spread small (230 V ± 0.5 V). The
 * plain sum is kept separately so sums of round numbers stay round.
 */
export const ACC_STRIDE = 9;
const N = 0;
const SUM = 1;
const SHIFT = 2;
const SD = 3;
const SD2 = 4;
const MIN = 5;
const MAX = 6;
const FIRST = 7;
const LAST = 8;

export function createAccumulator(metricCount: number): Float64Array {
  const acc = new Float64Array(metricCount * ACC_STRIDE);
  resetAccumulator(acc, 0, metricCount);
  return acc;
}

/** Clears the accumulator of `metrics` metrics that starts at `base` in `acc`. */
export function resetAccumulator(acc: Float64Array, base: number, metrics: number): void {
  const last = base + metrics * ACC_STRIDE;
  for (let o = base; o < last; o += ACC_STRIDE) {
    acc[o + N] = 0;
    acc[o + SUM] = 0;
    acc[o + SHIFT] = 0;
    acc[o + SD] = 0;
    acc[o + SD2] = 0;
    acc[o + MIN] = Infinity;
    acc[o + MAX] = -Infinity;
    acc[o + FIRST] = Number.NaN;
    acc[o + LAST] = Number.NaN;
  }
}

/**
 * Adds one reading to the accumulator at `base` in `acc`: its `metrics` values start at `from`
 * in `values` (NaN = absent). Readings must come in time order (ties: in arrival order).
 */
export function addValuesAt(acc: Float64Array, base: number, values: Float64Array, from: number, metrics: number): void {
  for (let m = 0, o = base; m < metrics; m++, o += ACC_STRIDE) {
    const x = values[from + m]!;
    if (x !== x) continue; // NaN: absent
    const n = acc[o + N]!;
    if (n === 0) {
      acc[o + SHIFT] = x;
      acc[o + FIRST] = x;
    }
    acc[o + N] = n + 1;
    acc[o + SUM] = acc[o + SUM]! + x;
    const d = x - acc[o + SHIFT]!;
    acc[o + SD] = acc[o + SD]! + d;
    acc[o + SD2] = acc[o + SD2]! + d * d;
    if (x < acc[o + MIN]!) acc[o + MIN] = x;
    if (x > acc[o + MAX]!) acc[o + MAX] = x;
    acc[o + LAST] = x;
  }
}

/**
 * Writes the public statistics (STAT_NAMES order: count, min, max, avg, sum, stddev, first,
 * last) of every metric into `out` (length metrics × 8). stddev is the population standard
 * deviation. A metric without values has count 0 and NaN elsewhere.
 */
export function writeStats(acc: Float64Array, out: number[]): void {
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
    const sd = acc[o + SD]!;
    out[s + 1] = acc[o + MIN]!;
    out[s + 2] = acc[o + MAX]!;
    out[s + 3] = sum / n;
    out[s + 4] = sum;
    out[s + 5] = Math.sqrt(Math.max(0, (acc[o + SD2]! - (sd * sd) / n) / n));
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
