import { Type, type Static } from '@sinclair/typebox';
import type { Detector, DetectorContext, DetectorSpec, Reading, StreamSchema } from '../model/index.js';
import { formatDuration, formatNumber, formatPercent, formatTime, scoreForRatio, selectMetrics } from './common.js';
import { DurationParam, parseDuration, resolveParams } from './params.js';
import { createQuantileState, quantileAdd, quantileValue, type QuantileState } from './quantile.js';
import { profileConfigOf } from './seasonal.js';
import { createProfileState, describeSlot, profileLookup, profileObserve, profileObserveClamped, type ProfileConfig, type ProfileState } from './seasonal-profile.js';

/**
 * Parameters of `sustained_high`.
 *
 * Rule: a reading is high when its value is above the limit; once every reading of the device
 * has been high for at least `duration`, each high reading reports an active finding, and the
 * first reading that is not high reports `active: false`. The limit, in order of precedence:
 * - `level`: an absolute value (reports from the first reading);
 * - `percentile`: the learned percentile (0–100) of all the device's values (P² estimate);
 * - otherwise the expected level with a margin: high when value > expected × (1 + `ratio`) and
 *   value − expected > `k` × deviation. The expected level is the top of the device's seasonal
 *   range (time of day × weekday/weekend, see `seasonal`; slot `slot`, shift `timeShift`,
 *   `dayWeight`, `minDays`, `utcOffsetMinutes`) once learned (the other day type's profile is
 *   borrowed, with twice the margins, until the reading's own day type is learned), else a
 *   slow EWMA baseline (half-life `baselineHalfLife`) with its mean absolute deviation.
 * Learned modes report only after `warmup` of event time since the device's first reading. The
 * slow baseline is frozen while high; the profile learns high readings clipped to the limit.
 *
 * Score: `level` and `percentile`: value ÷ limit; expected level: the smaller of excess ÷
 * (ratio·expected) and excess ÷ (k·deviation); 0.5 at 1, critical from 2.5 (`scoreForRatio`).
 *
 * @example
 * { type: 'sustained_high', metrics: ['usageKw'], params: { level: 40, duration: '15m' } }
 */
export const sustainedHighParams = Type.Object({
  ratio: Type.Number({ minimum: 0, default: 0.15, description: 'Margin over the expected level (0.15 = +15%).' }),
  duration: DurationParam('5m', 'How long every reading must be high before it is reported.'),
  level: Type.Optional(Type.Number({ description: 'Absolute limit; overrides the learned ones.' })),
  percentile: Type.Optional(Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 100, description: 'Learned percentile of the values used as the limit (e.g. 95).' })),
  k: Type.Number({ minimum: 0, default: 3, description: 'Noise guard: the excess must also exceed k × the deviation.' }),
  baselineHalfLife: DurationParam('30m', 'Half-life of the slow baseline used while the seasonal profile is not learned.'),
  warmup: DurationParam('1d', 'Event time learned before learned limits report.'),
  slot: DurationParam('15m', 'Time-of-day slot of the seasonal profile; must divide a day.'),
  timeShift: DurationParam('30m', 'Tolerated shift in time of day of the seasonal profile.'),
  dayWeight: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.25, description: 'Weight of the newest day in the profile.' }),
  minDays: Type.Integer({ minimum: 1, default: 1, description: 'Days a slot must have been seen before the profile is used.' }),
  suddenness: Type.Number({ minimum: 0, maximum: 1, default: 0.6, description: 'With learned limits: share of the excess that must have appeared within `onset` when a high run starts (0 = any start). A step up is an event; a ramp to a daily peak is not.' }),
  adoptAfter: DurationParam('3h', 'A run judged against the recent level (not the profile) that lasts this long is the new level: it ends and the baseline takes it.'),
  onset: DurationParam('1m', 'Window in which the rise must have happened (see suddenness); with readings a minute apart, the step from the previous reading.'),
  utcOffsetMinutes: Type.Number({ minimum: -840, maximum: 840, default: 0, description: 'Local time offset from UTC.' }),
});
export type SustainedHighParams = Static<typeof sustainedHighParams>;

export interface SustainedHighState {
  /** The device's seasonal profile (its own object, see SeasonalState). */
  profile: ProfileState;
  /** 1 once a reading was seen. */
  n: number;
  /** Readings learned into the slow baseline (capped). */
  learned: number;
  /** First reading's time (warm-up) and previous reading's time. */
  start: number;
  time: number;
  /** Slow baseline and its mean absolute deviation. */
  slowBase: number;
  /** Noise: EWMA of |value − previous value| (a lagging baseline on a ramp does not inflate it). */
  slowDeviation: number;
  previous: number;
  quantile: QuantileState;
  /** Time the current run of high readings began, or -1. */
  highSince: number;
  /** Limit in force when the current high run began: the run goes on while the value stays above it (the expectation is frozen at the onset). */
  runLimit: number;
  /** Latest value at least `onset` old, and the value waiting to become it. */
  reference: number;
  pendingValue: number;
  pendingTime: number;
  /** 1 while reported. */
  active: number;
}

const MODE_LEVEL = 0;
const MODE_PERCENTILE = 1;
const MODE_PROFILE = 2;
const MODE_BASELINE = 3;

export class SustainedHighDetector implements Detector<SustainedHighState> {
  readonly type = 'sustained_high';
  readonly alertType: string;
  readonly metric: string;
  private readonly index: number;
  private readonly ratio: number;
  private readonly durationMs: number;
  private readonly hasLevel: boolean;
  private readonly level: number;
  private readonly hasPercentile: boolean;
  private readonly quantile: number;
  private readonly k: number;
  private readonly baselineHalfLifeMs: number;
  private readonly warmupMs: number;
  private readonly profile: ProfileConfig;
  private readonly suddenness: number;
  private readonly onsetMs: number;
  private readonly adoptAfterMs: number;
  private readonly decayPerMs: number;
  private lastStep = Number.NaN;
  private lastWeight = 0.5;

  constructor(alertType: string, metric: string, index: number, p: SustainedHighParams) {
    this.alertType = alertType;
    this.metric = metric;
    this.index = index;
    this.ratio = p.ratio;
    this.durationMs = parseDuration(p.duration);
    this.hasLevel = p.level !== undefined;
    this.level = p.level ?? 0;
    this.hasPercentile = p.percentile !== undefined;
    this.quantile = (p.percentile ?? 50) / 100;
    this.k = p.k;
    this.baselineHalfLifeMs = parseDuration(p.baselineHalfLife);
    this.warmupMs = parseDuration(p.warmup);
    this.profile = profileConfigOf(p);
    this.suddenness = p.suddenness;
    this.onsetMs = parseDuration(p.onset);
    this.adoptAfterMs = parseDuration(p.adoptAfter);
    this.decayPerMs = this.baselineHalfLifeMs > 0 ? Math.LN2 / this.baselineHalfLifeMs : Number.POSITIVE_INFINITY;
  }

  createState(): SustainedHighState {
    return {
      profile: createProfileState(this.profile),
      n: 0,
      learned: 0,
      start: 0,
      time: 0,
      slowBase: 0,
      slowDeviation: 0,
      previous: 0,
      quantile: createQuantileState(this.quantile),
      highSince: -1,
      runLimit: 0,
      reference: 0,
      pendingValue: 0,
      pendingTime: 0,
      active: 0,
    };
  }

  onReading(state: SustainedHighState, reading: Reading, ctx: DetectorContext): number {
    const x = reading.values[this.index];
    if (x === undefined || !Number.isFinite(x)) return 0;
    const t = reading.time;
    if (state.n === 0) {
      state.n = 1;
      state.start = t;
      state.time = t;
      state.slowBase = x;
      state.previous = x;
      state.reference = x;
      state.pendingValue = x;
      state.pendingTime = t;
    }
    if (t - state.pendingTime >= this.onsetMs) {
      state.reference = state.pendingValue;
      state.pendingValue = x;
      state.pendingTime = t;
    }
    let mode = -1;
    let limit = 0;
    let expected = 0;
    let deviation = 0;
    let evidence = 0;
    if (this.hasLevel) {
      mode = MODE_LEVEL;
      limit = this.level;
      if (x > limit) evidence = limit > 0 ? x / limit : 1;
    } else if (t - state.start >= this.warmupMs) {
      if (this.hasPercentile) {
        mode = MODE_PERCENTILE;
        limit = quantileValue(state.quantile);
        if (x > limit) evidence = limit > 0 ? x / limit : 1;
      } else {
        let widen = 1;
        if (profileLookup(state.profile, this.profile, reading)) {
          mode = MODE_PROFILE;
          // The slot's own mean: a ramp shifted in time is told apart by `suddenness`, not by taking
          // the highest slot nearby (which hid real episodes near daily peaks).
          expected = state.profile.expectedMean;
          deviation = state.profile.expectedDeviation;
          // The other day type's profile is a weak expectation (weekends differ): twice the margins.
          if (state.profile.expectedBorrowed === 1) widen = 1.5;
          // The other day type's profile can sit far from this day (a plant stopped on Saturday,
          // an office closed): it is no upper expectation, the recent level is.
          const borrowed = state.profile.expectedBorrowed === 1;
          // A level the device has held recently is not "high" either, even where the profile of
          // the past days expects less (a plant running a shift it did not run yesterday): the
          // expectation is the higher of the profile and the recent baseline (frozen while high),
          // the latter capped by the level just before any step (a baseline lagging behind a
          // falling curve must not hide an episode that starts from the lower level).
          const recent = state.slowBase < state.reference ? state.slowBase : state.reference;
          if (recent > expected || borrowed) {
            mode = MODE_BASELINE;
            expected = recent;
            deviation = state.slowDeviation;
            widen = 1;
          }
        } else {
          mode = MODE_BASELINE;
          expected = state.slowBase;
          deviation = state.slowDeviation;
        }
        const margin = widen * this.ratio * Math.abs(expected);
        const noise = widen * this.k * deviation;
        limit = expected + (margin > noise ? margin : noise);
        const excess = x - expected;
        // A run of high readings must start with a step: most of the excess appeared within
        // `onset`. Daily ramps to a peak (and their day-to-day variation) rise slowly.
        if (state.highSince >= 0) {
          // A run goes on above the limit of its onset (a profile step mid-episode does not end
          // it), but only while the value also stands clear of the current expectation: a
          // natural rise through the onset limit does not keep a morning's run going all day.
          if (state.runLimit < limit) limit = state.runLimit;
          const floor = expected + margin / 2;
          if (floor > limit) limit = floor;
        }
        // The step itself must clear the margin: a steep daily ramp that creeps over the limit is not one.
        const step = x - state.reference;
        if (x > limit && (state.highSince >= 0 || (step >= this.suddenness * (x - expected) && step >= margin))) {
          const relativeRatio = margin > 0 ? excess / margin : Number.POSITIVE_INFINITY;
          const noiseRatio = noise > 0 ? excess / noise : Number.POSITIVE_INFINITY;
          evidence = relativeRatio < noiseRatio ? relativeRatio : noiseRatio;
          if (evidence === Number.POSITIVE_INFINITY) evidence = 1;
        }
      }
    }

    // Learning, inline (numbers passed to a call that is not inlined are boxed): a percentile learns every value,
    // the profile learns a high value clipped to the limit (it adapts over days without absorbing
    // an episode), the slow baseline is frozen while high.
    if (this.hasPercentile) quantileAdd(state.quantile, reading, this.index);
    else if (!this.hasLevel) {
      if (evidence > 0) profileObserveClamped(state.profile, this.profile, reading, this.index, Number.NEGATIVE_INFINITY, limit);
      else {
        profileObserve(state.profile, this.profile, reading, this.index);
        if (state.learned < 1_000_000) state.learned++;
        // The EWMA weight, inline: remembered for a repeated step (a steady interval saves the exp()).
        const step = t - state.time;
        let weight: number;
        if (step === this.lastStep) weight = this.lastWeight;
        else {
          weight = step > 0 ? 1 - Math.exp(-step * this.decayPerMs) : 0;
          this.lastStep = step;
          this.lastWeight = weight;
        }
        const countWeight = 1 / state.learned;
        if (countWeight > weight) weight = countWeight;
        state.slowDeviation += weight * (Math.abs(x - state.previous) - state.slowDeviation);
        state.previous = x;
        // The recent baseline follows a fall four times faster than a rise: after a step down (the
        // office closes) the level held recently is the new, lower one.
        if (x < state.slowBase) {
          const fall = 1 - (1 - weight) ** 4;
          state.slowBase += fall * (x - state.slowBase);
        } else state.slowBase += weight * (x - state.slowBase);
      }
    }

    let result = 0;
    if (evidence > 0) {
      if (state.highSince < 0) {
        state.highSince = t;
        state.runLimit = limit;
      }
      const elapsed = t - state.highSince;
      if (mode === MODE_BASELINE && elapsed >= this.adoptAfterMs) {
        // High for longer than any episode: this is the device's new level. The run ends and the
        // recent baseline, frozen during it, takes the level (the profile keeps its own view).
        if (state.active === 1) {
          state.active = 0;
          ctx.report({
            time: t,
            score: 0,
            value: x,
            baseline: x,
            threshold: undefined,
            explain: `${this.metric} stayed above ${formatNumber(limit)} for ${formatDuration(elapsed)}; ${formatNumber(x)} is adopted as its recent level (adoptAfter ${formatDuration(this.adoptAfterMs)})`,
            metric: this.metric,
            active: false,
          });
        }
        state.highSince = -1;
        state.slowBase = x;
        state.reference = x;
        return 0;
      }
      if (elapsed >= this.durationMs) {
        state.active = 1;
        result = Math.max(0.5, scoreForRatio(evidence));
        this.report(state, t, x, mode, limit, expected, deviation, result, ctx);
      }
    } else {
      if (state.active === 1) {
        state.active = 0;
        const explain =
          `${this.metric} ${formatNumber(x)} is no longer above ${formatNumber(limit)}; ` +
          `it was high for ${formatDuration(t - state.highSince)} (since ${formatTime(state.highSince)})`;
        ctx.report({ time: t, score: 0, value: x, baseline: mode >= MODE_PROFILE ? expected : undefined, threshold: limit, explain, metric: this.metric, active: false });
      }
      state.highSince = -1;
    }
    state.time = t;
    return result;
  }

  private report(
    state: SustainedHighState,
    t: number,
    x: number,
    mode: number,
    limit: number,
    expected: number,
    deviation: number,
    score: number,
    ctx: DetectorContext,
  ): void {
    let basis: string;
    if (mode === MODE_LEVEL) basis = `the configured level ${formatNumber(limit)}`;
    else if (mode === MODE_PERCENTILE) basis = `its learned ${formatNumber(Math.round(this.quantile * 1000) / 10)}th percentile ${formatNumber(limit)}`;
    else {
      const source =
        mode === MODE_PROFILE
          ? `seasonal profile, ${describeSlot(this.profile, state.profile)}`
          : `slow EWMA baseline, half-life ${formatDuration(this.baselineHalfLifeMs)}`;
      basis =
        `${formatNumber(limit)} (expected ${formatNumber(expected)} from its ${source}; margin ${formatPercent(this.ratio)} ` +
        `and ${formatNumber(this.k)} × deviation ${formatNumber(deviation)})`;
    }
    const explain =
      `${this.metric} has been above ${basis} for ${formatDuration(t - state.highSince)} since ${formatTime(state.highSince)}; ` +
      `now ${formatNumber(x)}; duration threshold ${formatDuration(this.durationMs)}`;
    ctx.report({ time: t, score, value: x, baseline: mode >= MODE_PROFILE ? expected : undefined, threshold: limit, explain, metric: this.metric, active: true });
  }
}

/**
 * Builds one sustained_high detector per metric of the spec.
 *
 * @example
 * createSustainedHighDetectors({ type: 'sustained_high', metrics: ['usageKw'], params: { level: 40 }, alertType: undefined, enabled: true }, power);
 */
export function createSustainedHighDetectors(spec: DetectorSpec, schema: StreamSchema): SustainedHighDetector[] {
  const p = resolveParams(sustainedHighParams, spec.params);
  return selectMetrics(spec, schema).map((m) => new SustainedHighDetector(spec.alertType ?? 'sustained_high', m.name, m.index, p));
}
