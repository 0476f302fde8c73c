import { Type, type Static } from '@sinclair/typebox';
import type { Detector, DetectorContext, DetectorSpec, Reading, StreamSchema } from '../model/index.js';
import { formatDuration, formatNumber, scoreForRatio, selectMetrics } from './common.js';
import { DurationParam, parseDuration, resolveParams } from './params.js';

/**
 * Parameters of `zscore`.
 *
 * Rule: z = (value − mean) ÷ std over the device's last `window` readings (the reading itself
 * not included). A reading fires when |z| ≥ `threshold`, once half the window is filled, and
 * two guards agree: the value differs from the mean by at least `minChange` of |mean| (a
 * very smooth metric has a tiny std, and its ordinary wiggles would otherwise have huge z),
 * and a new episode must start suddenly — at least `suddenness` of the distance from the mean
 * must have appeared since the reference reading (the latest one at least `onset` older) — so
 * the start of a load ramp is not an outlier. Values enter the window clipped to mean ± max(threshold·std,
 * minChange·|mean|), so one outlier does not inflate the std that judges the next readings.
 *
 * Score: evidence = the smaller of |z| ÷ threshold and |value − mean| ÷ (minChange·|mean|);
 * 0.5 at 1, 0.75 at 2, critical from 2.5 (`scoreForRatio`).
 *
 * @example
 * { type: 'zscore', metrics: ['usageKw'], params: { window: 120, threshold: 5 } }
 */
export const zscoreParams = Type.Object({
  window: Type.Integer({ minimum: 4, maximum: 100_000, default: 60, description: 'Readings in the rolling window.' }),
  threshold: Type.Number({ exclusiveMinimum: 0, default: 4, description: '|z| at or above this fires.' }),
  minChange: Type.Number({ minimum: 0, default: 0.25, description: 'Relative guard: |value − mean| must also be at least this share of |mean|.' }),
  onset: DurationParam('1m', 'Suddenness reference: the latest reading at least this much older than the current one.'),
  suddenness: Type.Number({ minimum: 0, maximum: 1, default: 0.75, description: 'Share of the distance from the mean that must be new (0 = off).' }),
});
export type ZscoreParams = Static<typeof zscoreParams>;

export interface ZscoreState {
  /** Ring of the last `window` values (as entered, i.e. clipped). */
  values: number[];
  /** Next slot of the ring. */
  position: number;
  count: number;
  mean: number;
  /** Sum of squared deviations from the mean (Welford). */
  squares: number;
  /** Value of the latest reading at least `onset` older than the current one (suddenness test). */
  reference: number;
  pendingValue: number;
  pendingTime: number;
  firing: number;
  since: number;
}

export class ZscoreDetector implements Detector<ZscoreState> {
  readonly type = 'zscore';
  readonly alertType: string;
  readonly metric: string;
  private readonly index: number;
  private readonly window: number;
  private readonly threshold: number;
  private readonly minChange: number;
  private readonly onsetMs: number;
  private readonly suddenness: number;

  constructor(alertType: string, metric: string, index: number, p: ZscoreParams) {
    this.alertType = alertType;
    this.metric = metric;
    this.index = index;
    this.window = p.window;
    this.threshold = p.threshold;
    this.minChange = p.minChange;
    this.onsetMs = parseDuration(p.onset);
    this.suddenness = p.suddenness;
  }

  createState(): ZscoreState {
    return { values: new Array<number>(this.window).fill(0), position: 0, count: 0, mean: 0, squares: 0, reference: 0, pendingValue: 0, pendingTime: 0, firing: 0, since: 0 };
  }

  onReading(state: ZscoreState, reading: Reading, ctx: DetectorContext): number {
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
    const n = state.count;
    const mean = state.mean;
    const std = n > 1 ? Math.sqrt(state.squares / n) : 0;
    const distance = x - mean;
    const magnitude = Math.abs(distance);
    const relativeFloor = this.minChange * Math.abs(mean);
    let evidence = 0;
    if (n * 2 >= this.window && magnitude > 0) {
      const zRatio = std > 0 ? magnitude / std / this.threshold : Number.POSITIVE_INFINITY;
      const relativeRatio = relativeFloor > 0 ? magnitude / relativeFloor : Number.POSITIVE_INFINITY;
      evidence = zRatio < relativeRatio ? zRatio : relativeRatio;
    }
    let score: number;
    if (evidence >= 1 && (state.firing === 1 || Math.abs(x - state.reference) >= this.suddenness * magnitude)) {
      if (state.firing === 0) {
        state.firing = 1;
        state.since = t;
      }
      score = scoreForRatio(evidence);
      const z = std > 0 ? distance / std : distance > 0 ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
      const explain =
        `${this.metric} ${formatNumber(x)} has z-score ${z >= 0 ? '+' : ''}${formatNumber(z)} against its last ${n} readings ` +
        `(mean ${formatNumber(mean)}, std ${formatNumber(std)}); threshold |z| ≥ ${formatNumber(this.threshold)} ` +
        `and a change of at least ${Math.round(this.minChange * 100)}% of the mean` +
        (t > state.since ? `; ongoing for ${formatDuration(t - state.since)}` : '');
      const limit = Math.max(this.threshold * std, relativeFloor);
      ctx.report({ time: t, score, value: x, baseline: mean, threshold: distance > 0 ? mean + limit : mean - limit, explain, metric: this.metric, active: true });
    } else {
      if (state.firing === 1) {
        state.firing = 0;
        const explain = `${this.metric} ${formatNumber(x)} is back within ${formatNumber(this.threshold)} std of its rolling mean ${formatNumber(mean)} after ${formatDuration(t - state.since)}`;
        ctx.report({ time: t, score: 0, value: x, baseline: mean, threshold: undefined, explain, metric: this.metric, active: false });
      }
      score = 0;
    }
    this.push(state, x, std, relativeFloor);
    return score;
  }

  private push(state: ZscoreState, x: number, std: number, relativeFloor: number): void {
    let value = x;
    if (state.count * 2 >= this.window) {
      const bound = Math.max(this.threshold * std, relativeFloor);
      if (value > state.mean + bound) value = state.mean + bound;
      else if (value < state.mean - bound) value = state.mean - bound;
    }
    const ring = state.values;
    const position = state.position;
    if (state.count < this.window) {
      state.count++;
      const delta = value - state.mean;
      state.mean += delta / state.count;
      state.squares += delta * (value - state.mean);
    } else {
      const old = ring[position]!;
      const meanBefore = state.mean;
      state.mean = meanBefore + (value - old) / this.window;
      state.squares += (value - old) * (value - state.mean + old - meanBefore);
      if (!(state.squares > 0)) state.squares = 0; // rounding below zero, or overflow from absurd values (healed at the next lap)
    }
    ring[position] = value;
    state.position = position + 1 === this.window ? 0 : position + 1;
    // Sliding updates drift in floating point; recompute exactly once per lap of the ring.
    if (state.position === 0 && state.count === this.window) recompute(state, this.window);
  }
}

function recompute(state: ZscoreState, window: number): void {
  let sum = 0;
  for (let i = 0; i < window; i++) sum += state.values[i]!;
  const mean = sum / window;
  let squares = 0;
  for (let i = 0; i < window; i++) {
    const d = state.values[i]! - mean;
    squares += d * d;
  }
  state.mean = mean;
  state.squares = squares;
}

/**
 * Builds one zscore detector per metric of the spec.
 *
 * @example
 * createZscoreDetectors({ type: 'zscore', metrics: ['usageKw'], params: {}, alertType: undefined, enabled: true }, power);
 */
export function createZscoreDetectors(spec: DetectorSpec, schema: StreamSchema): ZscoreDetector[] {
  const p = resolveParams(zscoreParams, spec.params);
  return selectMetrics(spec, schema).map((m) => new ZscoreDetector(spec.alertType ?? 'zscore', m.name, m.index, p));
}
