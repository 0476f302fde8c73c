/**
 * Mergeable per-metric window statistics kept in a Float64Array, ACC_STRIDE slots per metric:
 * count, sum, shift K, Σ(x−K), Σ(x−K)², min, max, first time, first value, last time, last value.
 *
 * Variance comes from sums of deviations from a shift K (the metric's first value added): as
 * cheap as plain sums of squares (no division per value, unlike Welford) but without their
 * cancellation when the level is large and the spread small (230 V ± 0.5 V). Accumulators
 * merge exactly by re-basing the source's sums onto the target's shift, so a window can be the
 * merge of its panes (see PaneRing). The plain sum is kept separately so sums of round numbers
 * stay round.
 */
export const ACC_STRIDE = 11;
const N = 0;
const SUM = 1;
const SHIFT = 2;
const SD = 3;
const SD2 = 4;
const MIN = 5;
const MAX = 6;
const FIRST_T = 7;
const FIRST = 8;
const LAST_T = 9;
const LAST = 10;

/** Slot offsets inside one metric's accumulator (for checkpoints, which pack the common shapes compactly). */
export const ACC_SLOT = { N, SUM, SHIFT, SD, SD2, MIN, MAX, FIRST_T, FIRST, LAST_T, LAST } as const;

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
    acc[o + FIRST_T] = Infinity;
    acc[o + FIRST] = Number.NaN;
    acc[o + LAST_T] = -Infinity;
    acc[o + LAST] = Number.NaN;
  }
}

/**
 * Adds one reading at `time` to the accumulator at `base` in `acc`: its `metrics` values start
 * at `from` in `values` (NaN = absent). Ties in time keep the first-added value as first and the
 * last-added as last.
 */
export function addValuesAt(acc: Float64Array, base: number, values: Float64Array, from: number, metrics: number, time: number): void {
  for (let m = 0, o = base; m < metrics; m++, o += ACC_STRIDE) {
    const x = values[from + m]!;
    if (x !== x) continue; // NaN: absent
    const n = acc[o + N]!;
    if (n === 0) acc[o + SHIFT] = x;
    acc[o + N] = n + 1;
    acc[o + SUM] = acc[o + SUM]! + x;
    const d = x - acc[o + SHIFT]!;
    acc[o + SD] = acc[o + SD]! + d;
    acc[o + SD2] = acc[o + SD2]! + d * d;
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

/** target (a whole accumulator) += the accumulator at `sourceBase` in `sourceArray`. */
export function mergeInto(target: Float64Array, sourceArray: Float64Array, sourceBase: number): void {
  for (let o = 0, so = sourceBase; o < target.length; o += ACC_STRIDE, so += ACC_STRIDE) {
    const nb = sourceArray[so + N]!;
    if (nb === 0) continue;
    const na = target[o + N]!;
    if (na === 0) {
      for (let k = 0; k < ACC_STRIDE; k++) target[o + k] = sourceArray[so + k]!;
      continue;
    }
    // Re-base the source's deviations from its shift onto the target's shift.
    const delta = sourceArray[so + SHIFT]! - target[o + SHIFT]!;
    const sdb = sourceArray[so + SD]!;
    target[o + SD2] = target[o + SD2]! + sourceArray[so + SD2]! + 2 * delta * sdb + nb * delta * delta;
    target[o + SD] = target[o + SD]! + sdb + nb * delta;
    target[o + N] = na + nb;
    target[o + SUM] = target[o + SUM]! + sourceArray[so + SUM]!;
    if (sourceArray[so + MIN]! < target[o + MIN]!) target[o + MIN] = sourceArray[so + MIN]!;
    if (sourceArray[so + MAX]! > target[o + MAX]!) target[o + MAX] = sourceArray[so + MAX]!;
    if (sourceArray[so + FIRST_T]! < target[o + FIRST_T]!) {
      target[o + FIRST_T] = sourceArray[so + FIRST_T]!;
      target[o + FIRST] = sourceArray[so + FIRST]!;
    }
    if (sourceArray[so + LAST_T]! >= target[o + LAST_T]!) {
      target[o + LAST_T] = sourceArray[so + LAST_T]!;
      target[o + LAST] = sourceArray[so + LAST]!;
    }
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
