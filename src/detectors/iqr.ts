import { Type, type Static } from '@sinclair/typebox';
import type { Detector, DetectorContext, DetectorSpec, Reading, StreamSchema } from '../model/index.js';
import { formatDuration, formatNumber, scoreForRatio, selectMetrics } from './common.js';
import { DurationParam, parseDuration, resolveParams } from './params.js';

/**
 * Parameters of `iqr`.
 *
 * Rule: over the device's last `window` readings (the reading itself not included), with
 * quartiles Q1, Q3 (linear interpolation) and IQR = Q3 − Q1, a reading fires when it lies
 * outside the fences Q1 − k·IQR or Q3 + k·IQR, once half the window is filled, and three
 * guards agree: the value differs from the median by at least `minChange` of |median| (a quantised or
 * very smooth metric has a tiny IQR), and a new episode starts suddenly — at least `suddenness`
 * of the distance from the median must have appeared since the reference reading (the latest
 * one at least `onset` older) — so a load ramp is not an outlier — and the fence cuts off a rare
 * tail: at most `maxOutside` of the window lies beyond it (a metric that is mostly zero with
 * regular pulses has IQR 0, and its pulses are not outliers). The window is kept as a ring
 * plus a sorted copy: each reading replaces the oldest value in the sorted copy with binary
 * searches and one memmove, no allocation.
 *
 * Score: evidence = the smaller of (distance beyond the inner quartile ÷ k·IQR) and
 * |value − median| ÷ (minChange·|median|); 0.5 at 1, 0.75 at 2, critical from 2.5.
 *
 * @example
 * { type: 'iqr', metrics: ['usageKw'], params: { window: 240, k: 2.5 } }
 */
export const iqrParams = Type.Object({
  window: Type.Integer({ minimum: 4, maximum: 100_000, default: 120, description: 'Readings in the rolling window.' }),
  k: Type.Number({ exclusiveMinimum: 0, default: 3, description: 'Fence distance in IQRs beyond the quartiles.' }),
  minChange: Type.Number({ minimum: 0, default: 0.25, description: 'Relative guard: |value − median| must also be at least this share of |median|.' }),
  maxOutside: Type.Number({ minimum: 0, maximum: 1, default: 0.05, description: 'A new episode needs at most this share of the window beyond the same fence (the fence must cut off a rare tail).' }),
  onset: DurationParam('1m', 'Suddenness reference: the latest reading at least this much older than the current one.'),
  suddenness: Type.Number({ minimum: 0, maximum: 1, default: 0.75, description: 'Share of the distance from the median that must be new (0 = off).' }),
});
export type IqrParams = Static<typeof iqrParams>;

/**
 * Per-device state. The two windows are Float64Arrays so that a sorted shift is one memmove;
 * checkpoint them with `detectorStateToJson` / `detectorStateFromJson`.
 */
export interface IqrState {
  /** Ring of the last `window` values in arrival order. */
  values: Float64Array;
  /** The same values sorted ascending (first `count` entries). */
  sorted: Float64Array;
  position: number;
  count: number;
  /** Value of the latest reading at least `onset` older than the current one (suddenness test). */
  reference: number;
  pendingValue: number;
  pendingTime: number;
  firing: number;
  since: number;
}

export class IqrDetector implements Detector<IqrState> {
  readonly type = 'iqr';
  readonly alertType: string;
  readonly metric: string;
  private readonly index: number;
  private readonly window: number;
  private readonly k: number;
  private readonly minChange: number;
  private readonly onsetMs: number;
  private readonly suddenness: number;
  private readonly maxOutside: number;

  constructor(alertType: string, metric: string, index: number, p: IqrParams) {
    this.alertType = alertType;
    this.metric = metric;
    this.index = index;
    this.window = p.window;
    this.k = p.k;
    this.minChange = p.minChange;
    this.onsetMs = parseDuration(p.onset);
    this.suddenness = p.suddenness;
    this.maxOutside = p.maxOutside;
  }

  createState(): IqrState {
    return {
      values: new Float64Array(this.window),
      sorted: new Float64Array(this.window),
      position: 0,
      count: 0,
      reference: 0, pendingValue: 0, pendingTime: 0,
      firing: 0,
      since: 0,
    };
  }

  onReading(state: IqrState, reading: Reading, ctx: DetectorContext): number {
    const x = reading.values[this.index];
    if (x === undefined || !Number.isFinite(x)) return 0;
    const t = reading.time;
    if (state.count === 0) {
      state.reference = x;
      state.pendingValue = x;
      state.pendingTime = t;
    } else if (t - state.pendingTime >= this.onsetMs) {
      state.reference = state.pendingValue;
      state.pendingValue = x;
      state.pendingTime = t;
    }
    let score = 0;
    const n = state.count;
    if (n * 2 >= this.window) {
      const sorted = state.sorted;
      const q1 = quantileOfSorted(sorted, n, 0.25);
      const median = quantileOfSorted(sorted, n, 0.5);
      const q3 = quantileOfSorted(sorted, n, 0.75);
      const spread = q3 - q1;
      const fence = this.k * spread;
      const beyond = x > q3 ? x - q3 : x < q1 ? q1 - x : 0;
      const magnitude = Math.abs(x - median);
      const relativeFloor = this.minChange * Math.abs(median);
      let evidence = 0;
      if (beyond > 0) {
        const fenceRatio = fence > 0 ? beyond / fence : Number.POSITIVE_INFINITY;
        const relativeRatio = relativeFloor > 0 ? magnitude / relativeFloor : Number.POSITIVE_INFINITY;
        evidence = fenceRatio < relativeRatio ? fenceRatio : relativeRatio;
      }
      if (evidence >= 1 && (state.firing === 1 || (Math.abs(x - state.reference) >= this.suddenness * magnitude && this.rareBeyond(sorted, n, x > q3 ? q3 + fence : q1 - fence, x > q3)))) {
        if (state.firing === 0) {
          state.firing = 1;
          state.since = t;
        }
        score = scoreForRatio(evidence);
        const upper = x > q3;
        const limit = upper ? q3 + fence : q1 - fence;
        const explain =
          `${this.metric} ${formatNumber(x)} is ${upper ? 'above the upper' : 'below the lower'} IQR fence ${formatNumber(limit)} ` +
          `of its last ${n} readings (Q1 ${formatNumber(q1)}, median ${formatNumber(median)}, Q3 ${formatNumber(q3)}, IQR ${formatNumber(spread)}, k ${formatNumber(this.k)}) ` +
          (median !== 0 ? `and ${Math.round((magnitude / Math.abs(median)) * 100)}% from the median (at least ${Math.round(this.minChange * 100)}% required)` : 'and the median is 0') +
          (t > state.since ? `; ongoing for ${formatDuration(t - state.since)}` : '');
        ctx.report({ time: t, score, value: x, baseline: median, threshold: limit, explain, metric: this.metric, active: true });
      } else {
        if (state.firing === 1) {
          state.firing = 0;
          const explain = `${this.metric} ${formatNumber(x)} is back inside its IQR fences ${formatNumber(q1 - fence)}–${formatNumber(q3 + fence)} after ${formatDuration(t - state.since)}`;
          ctx.report({ time: t, score: 0, value: x, baseline: median, threshold: undefined, explain, metric: this.metric, active: false });
        }
      }
    }
    this.push(state, x);
    return score;
  }

  /** True when few enough window values lie beyond `fence` on the value's side (two binary searches at most). */
  private rareBeyond(sorted: Float64Array, n: number, fence: number, upper: boolean): boolean {
    const beyond = upper ? n - upperBound(sorted, n, fence) : lowerBound(sorted, n, fence);
    return beyond <= this.maxOutside * n;
  }

  private push(state: IqrState, x: number): void {
    const sorted = state.sorted;
    const n = state.count;
    if (n < this.window) {
      const at = upperBound(sorted, n, x);
      sorted.copyWithin(at + 1, at, n);
      sorted[at] = x;
      state.count = n + 1;
    } else {
      // Replace the oldest value in place: shift the values between its slot and the new one's by one.
      const old = state.values[state.position]!;
      const i = lowerBound(sorted, n, old);
      if (x > old) {
        const end = upperBound(sorted, n, x);
        sorted.copyWithin(i, i + 1, end);
        sorted[end - 1] = x;
      } else {
        const at = lowerBound(sorted, n, x);
        sorted.copyWithin(at + 1, at, i);
        sorted[at] = x;
      }
    }
    state.values[state.position] = x;
    state.position = state.position + 1 === this.window ? 0 : state.position + 1;
  }
}

/** First index in sorted[0, n) whose value is ≥ x (n when none). */
function lowerBound(sorted: Float64Array, n: number, x: number): number {
  let low = 0;
  let high = n;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (sorted[mid]! < x) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** First index in sorted[0, n) whose value is > x (n when none). */
function upperBound(sorted: Float64Array, n: number, x: number): number {
  let low = 0;
  let high = n;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (sorted[mid]! <= x) low = mid + 1;
    else high = mid;
  }
  return low;
}

function quantileOfSorted(sorted: Float64Array, n: number, q: number): number {
  const position = (n - 1) * q;
  const below = Math.floor(position);
  const fraction = position - below;
  const low = sorted[below]!;
  return fraction > 0 ? low + fraction * (sorted[below + 1]! - low) : low;
}

/**
 * Builds one iqr detector per metric of the spec.
 *
 * @example
 * createIqrDetectors({ type: 'iqr', metrics: ['usageKw'], params: {}, alertType: undefined, enabled: true }, power);
 */
export function createIqrDetectors(spec: DetectorSpec, schema: StreamSchema): IqrDetector[] {
  const p = resolveParams(iqrParams, spec.params);
  return selectMetrics(spec, schema).map((m) => new IqrDetector(spec.alertType ?? 'iqr', m.name, m.index, p));
}
