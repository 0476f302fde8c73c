import type { Detector, DetectorContext, Reading } from '../model/index.js';
import { EwmaWeight, learnLevelAndNoise, formatDuration, formatNumber, formatPercent, scoreForRatio } from './common.js';

/**
 * The engine shared by `spike` (direction +1) and `drop` (direction −1): a value that moves away
 * from an EWMA baseline by a relative threshold and by more than k × the running mean absolute
 * deviation, and that got there suddenly. See spike.ts for the rule in full.
 */

/** Per-device state of a spike or drop detector. Plain numbers: checkpointed as JSON. */
export interface BaselineShiftState {
  /** Readings learned, up to the warm-up count. */
  n: number;
  /** Event time of the previous reading. */
  time: number;
  /** EWMA baseline. */
  base: number;
  /**
   * EWMA of |value − previous value|: the metric's running noise. Successive differences,
   * unlike |value − baseline|, are not inflated by the baseline lagging behind a ramp.
   */
  deviation: number;
  /** Previous value learned (not part of a reported spike or drop). */
  previous: number;
  /** Value of the latest reading at least `onset` older than the current one: tells a sudden move from a ramp. */
  reference: number;
  /** The reading that becomes the reference once it is `onset` old. */
  pendingValue: number;
  pendingTime: number;
  /** 1 while the condition is reported. */
  firing: number;
  /** Event time the current report began. */
  since: number;
}

export interface BaselineShiftConfig {
  type: string;
  alertType: string;
  metric: string;
  index: number;
  direction: 1 | -1;
  threshold: number;
  halfLifeMs: number;
  k: number;
  warmup: number;
  onsetMs: number;
  suddenness: number;
  adoptAfterMs: number;
  outageRatio: number;
}

/** A baseline older than this many half-lives weighs under 1/16: it is restarted, not judged against. */
const STALE_HALF_LIVES = 4;
/**
 * How much faster the deviation forgets than the baseline. 1: with the 5-minute baseline the
 * deviation already forgets an evening peak within minutes; forgetting faster (4 was tried)
 * leaves it an average of the last two or three differences, which a couple of quiet readings
 * shrink to nothing — a tiny noisy metric then fires on its own noise (detectors-quiet test),
 * with no gain in recall on the simulated week (spike 0.993, drop 0.986 at 1).
 */
const DEVIATION_SPEEDUP = 1;

export class BaselineShiftDetector implements Detector<BaselineShiftState> {
  readonly type: string;
  readonly alertType: string;
  readonly metric: string;
  private readonly config: BaselineShiftConfig;
  private readonly index: number;
  private readonly direction: number;
  private readonly threshold: number;
  private readonly halfLifeMs: number;
  private readonly k: number;
  private readonly warmup: number;
  private readonly onsetMs: number;
  private readonly suddenness: number;
  private readonly adoptAfterMs: number;
  private readonly outageRatio: number;
  private readonly staleAfterMs: number;
  private readonly weight: EwmaWeight;
  /**
   * The deviation's own half-life (baseline half-life ÷ DEVIATION_SPEEDUP): after an evening
   * peak the night's noise is a fraction of the peak's, and a deviation still remembering the
   * peak would hide a real drop at night behind k × a noise level that is long gone.
   */
  private readonly deviationWeight: EwmaWeight;

  constructor(config: BaselineShiftConfig) {
    this.config = config;
    this.type = config.type;
    this.alertType = config.alertType;
    this.metric = config.metric;
    this.index = config.index;
    this.direction = config.direction;
    this.threshold = config.threshold;
    this.halfLifeMs = config.halfLifeMs;
    this.k = config.k;
    this.warmup = Math.max(1, config.warmup);
    this.onsetMs = config.onsetMs;
    this.suddenness = config.suddenness;
    this.adoptAfterMs = config.adoptAfterMs;
    this.outageRatio = config.outageRatio;
    this.staleAfterMs = config.halfLifeMs * STALE_HALF_LIVES;
    this.weight = new EwmaWeight(config.halfLifeMs);
    this.deviationWeight = new EwmaWeight(config.halfLifeMs / DEVIATION_SPEEDUP);
  }

  createState(): BaselineShiftState {
    return { n: 0, time: 0, base: 0, deviation: 0, previous: 0, reference: 0, pendingValue: 0, pendingTime: 0, firing: 0, since: 0 };
  }

  onReading(state: BaselineShiftState, reading: Reading, ctx: DetectorContext): number {
    const x = reading.values[this.index];
    if (x === undefined || !Number.isFinite(x)) return 0;
    const t = reading.time;
    if (state.n === 0 || t - state.time > this.staleAfterMs) {
      if (state.firing === 1) this.clear(state, t, x, ctx, `; baseline restarted after ${formatDuration(t - state.time)} without readings`);
      state.n = 1;
      state.time = t;
      state.base = x;
      state.deviation = 0;
      state.previous = x;
      state.reference = x;
      state.pendingValue = x;
      state.pendingTime = t;
      state.firing = 0;
      state.since = t;
      return 0;
    }
    const step = t - state.time;
    state.time = t;
    if (t - state.pendingTime >= this.onsetMs) {
      state.reference = state.pendingValue;
      state.pendingValue = x;
      state.pendingTime = t;
    }
    const base = state.base;

    // At or below the outage floor the outage detector speaks; learning such values would drag
    // the baseline to zero and make the recovery look like a spike.
    if (this.outageRatio > 0 && base > 0 && x <= this.outageRatio * base) {
      if (state.firing === 1) this.clear(state, t, x, ctx, `; it fell to the outage floor (${formatPercent(this.outageRatio - 1)}), reported as an outage`);
      return 0;
    }

    const move = this.direction * (x - base);
    const noise = this.k * state.deviation;
    let evidence = 0;
    if (move > 0) {
      const reference = Math.abs(base);
      const relativeRatio = reference > 0 ? move / reference / this.threshold : Number.POSITIVE_INFINITY;
      const noiseRatio = noise > 0 ? move / noise : Number.POSITIVE_INFINITY;
      evidence = relativeRatio < noiseRatio ? relativeRatio : noiseRatio;
    }

    if (state.n >= this.warmup && evidence >= 1) {
      // A ramp reaches the threshold gradually; a spike gets most of the way in one go.
      if (state.firing === 1 || this.direction * (x - state.reference) >= this.suddenness * move) {
        if (state.firing === 0) {
          state.firing = 1;
          state.since = t;
        } else if (t - state.since >= this.adoptAfterMs) {
          this.adopt(state, t, x, ctx);
          return 0;
        }
        const score = scoreForRatio(evidence);
        this.fire(state, t, x, noise, score, ctx);
        return score; // the baseline stays frozen while firing
      }
    } else if (state.firing === 1) {
      this.clear(state, t, x, ctx, '');
    }

    learnLevelAndNoise(state, x, this.weight.of(step), this.deviationWeight.of(step), this.warmup);
    return 0;
  }

  private fire(state: BaselineShiftState, t: number, x: number, noise: number, score: number, ctx: DetectorContext): void {
    const base = state.base;
    const reference = Math.abs(base);
    const relative = reference > 0 ? (x - base) / reference : this.direction * Number.POSITIVE_INFINITY;
    const change = this.direction > 0 ? `${formatPercent(relative)} over` : `${formatPercent(-relative).slice(1)} below`;
    const limit = this.direction * Math.max(this.threshold * reference, noise);
    const explain =
      `${this.metric} ${formatNumber(x)} is ${change} its EWMA baseline ${formatNumber(base)} ` +
      `(half-life ${formatDuration(this.halfLifeMs)}); threshold ${formatPercent(this.direction * this.threshold)} ` +
      `and ${formatNumber(this.k)} × deviation ${formatNumber(state.deviation)} = ${formatNumber(noise)}` +
      (t > state.since ? `; ongoing for ${formatDuration(t - state.since)}` : '');
    ctx.report({ time: t, score, value: x, baseline: base, threshold: base + limit, explain, metric: this.metric, active: true });
  }

  private clear(state: BaselineShiftState, t: number, x: number, ctx: DetectorContext, why: string): void {
    state.firing = 0;
    const base = state.base;
    const explain =
      `${this.metric} ${formatNumber(x)} is back within ${formatPercent(this.direction * this.threshold)} of its EWMA baseline ` +
      `${formatNumber(base)} after ${formatDuration(t - state.since)}${why}`;
    ctx.report({ time: t, score: 0, value: x, baseline: base, threshold: base * (1 + this.direction * this.threshold), explain, metric: this.metric, active: false });
  }

  private adopt(state: BaselineShiftState, t: number, x: number, ctx: DetectorContext): void {
    const old = state.base;
    state.firing = 0;
    state.base = x;
    const explain =
      `${this.metric} stayed ${formatPercent((x - old) / Math.abs(old || 1))} ${this.direction > 0 ? 'over' : 'below'} its baseline ` +
      `${formatNumber(old)} for ${formatDuration(t - state.since)}; ${formatNumber(x)} is adopted as the new baseline (adoptAfter ${formatDuration(this.adoptAfterMs)})`;
    ctx.report({ time: t, score: 0, value: x, baseline: x, threshold: undefined, explain, metric: this.metric, active: false });
  }

  /** Parameters in effect, for tests and `config show`. */
  describe(): Readonly<BaselineShiftConfig> {
    return this.config;
  }
}
