import { Type, type Static } from '@sinclair/typebox';
import type { Detector, DetectorContext, DetectorSpec, Reading, StreamSchema } from '../model/index.js';
import { countInShare, doubles, EwmaWeight, formatDuration, formatNumber, formatPercent, formatTime, scoreForRatio, selectMetrics, SHARE_HALF_LIFE_MS } from './common.js';
import { DurationParam, parseDuration, resolveParams } from './params.js';
import { createQuantileState, quantileAdd, quantileValue, type QuantileState } from './quantile.js';
import { profileConfigOf } from './seasonal.js';
import { createProfileState, profileObserve, profileObserveClamped, profileSlotMean, type ProfileConfig, type ProfileState } from './seasonal-profile.js';

/**
 * Parameters of `sustained_high`.
 *
 * With `level` (an absolute value, reported from the first reading) or `percentile` (the learned
 * percentile, 0–100, of all the device's values, after `warmup`): a reading is high when its
 * value is above that limit; once every reading has been high for `duration`, each high reading
 * reports an active finding, and the first one that is not reports `active: false`.
 *
 * Otherwise the limit is learned (reported after `warmup`), and a run of high readings must be a
 * step up that holds, not a ramp or noise:
 * - Expected level: the device's recent level and trend, a straight line fitted to its readings
 *   with weights halving every `baselineHalfLife` of age (at least the device's reporting
 *   interval), followed at most `duration` ahead. Where the device's daily profile (time of day ×
 *   weekday/weekend, see `seasonal`: `slot`, `dayWeight`, `minDays`, `utcOffsetMinutes`;
 *   interpolated between slots) is within 25% of the fitted level, that level is also carried
 *   along the profile: the expectation is the higher of the two within `duration` (a morning rise
 *   the profile knows is no step) and follows the profile beyond it.
 * - Onset: value > expected + max(`ratio` × expected, `k` × deviation) (the band), and at least
 *   `suddenness` of the excess (and the margin itself) appeared within `onset`. Where the profile
 *   fits the day (the values of the last twelve half-lives within 25% of the profile at their
 *   times), the value must also be above the profile's mean for the time of day. Right after a
 *   fall (see below), a step back to within the band of the level before the fall, or less, is a
 *   return, not a rise.
 * - The run goes on while each value stays above the expectation by half the margin. After
 *   `duration` and at least three readings it is judged once: the mean excess must reach the
 *   margin (and k × deviation), and the run's own straight line, taken back to its first reading,
 *   must stand above the onset limit (a step, not a bend in a ramp). A run that passes is reported
 *   until it ends; the readings of one that fails are learned as normal.
 * The fit learns no high reading. A reading more than twice the band below the expectation is a
 * fall (a drop, an outage) and is not learned either, unless the fall lasts `duration`: then it is
 * the new level, the fit restarts from it and the level before is remembered for `adoptAfter`. A
 * high run that lasts `adoptAfter` is also the new level. The deviation is an EWMA of |value −
 * expected| (over six half-lives, each error counted up to twice the band) of the readings
 * outside runs and falls. A device whose readings were in runs judged to be steps more than
 * `highShare` of the time (weights halving every day of readings) is not reported: such runs are
 * how it works (a load that is off, then on for an hour or two, several times a day), and each is
 * learned as its level instead. `timeShift` is accepted for compatibility and not used.
 *
 * Score: `level` and `percentile`: value ÷ limit; learned: the smaller of excess ÷ (ratio ×
 * expected) and excess ÷ (k × deviation); 0.5 at 1, critical from 2.5 (`scoreForRatio`).
 *
 * @example
 * { type: 'sustained_high', metrics: ['usageKw'], params: { level: 40, duration: '15m' } }
 */
export const sustainedHighParams = Type.Object({
  ratio: Type.Number({ minimum: 0, default: 0.15, description: 'Margin over the expected level (0.15 = +15%).' }),
  duration: DurationParam('5m', 'How long a run must be high before it is reported.'),
  level: Type.Optional(Type.Number({ description: 'Absolute limit; overrides the learned ones.' })),
  percentile: Type.Optional(Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 100, description: 'Learned percentile of the values used as the limit (e.g. 95).' })),
  k: Type.Number({ minimum: 0, default: 3, description: 'Noise guard: the excess must also exceed k × the deviation.' }),
  baselineHalfLife: DurationParam('5m', 'Half-life of the weights of the recent level and trend (a linear fit to the recent readings).'),
  warmup: DurationParam('1d', 'Event time learned before learned limits report.'),
  slot: DurationParam('15m', 'Time-of-day slot of the seasonal profile; must divide a day.'),
  timeShift: DurationParam('30m', 'Accepted for compatibility; not used (the profile is interpolated between slots).'),
  dayWeight: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.25, description: 'Weight of the newest day in the profile.' }),
  minDays: Type.Integer({ minimum: 1, default: 1, description: 'Days a slot must have been seen before the profile is used.' }),
  suddenness: Type.Number({ minimum: 0, maximum: 1, default: 0.6, description: 'With learned limits: share of the excess that must have appeared within `onset` when a high run starts (0 = any start).' }),
  adoptAfter: DurationParam('3h', 'A high run, or a fall, that lasts this long is the new level; the level before a fall is remembered this long.'),
  onset: DurationParam('1m', 'Window in which the rise must have happened (see suddenness); with readings a minute apart, the step from the previous reading.'),
  utcOffsetMinutes: Type.Number({ minimum: -840, maximum: 840, default: 0, description: 'Local time offset from UTC.' }),
  highShare: Type.Number({
    minimum: 0,
    maximum: 1,
    default: 0.25,
    description: 'With learned limits: a device in high runs for more than this share of its readings (over about a day) is not reported; its runs are learned as its level.',
  }),
});
export type SustainedHighParams = Static<typeof sustainedHighParams>;

/**
 * The recent level and trend: weighted least squares over the learned readings, a reading's
 * weight halving every half-life of age. Sums of w, w·u, w·u², w·x and w·u·x, where u is the
 * reading's time − `time` in minutes and `time` is the latest learned reading's time; `profile`
 * is the profile's mean at `time`, NaN where unknown (the level is carried along the profile from
 * it). Seven numbers in the state's array, at FIT (and a copy at MEMORY), in this order:
 */
const F_TIME = 0;
const F_W = 1;
const F_U = 2;
const F_UU = 3;
const F_X = 4;
const F_UX = 5;
const F_PROFILE = 6;
const FIT_SIZE = 7;

// The state's numbers, at these offsets of `SustainedHighState.v`.
/** 1 once a reading was seen. */
const N = 0;
/** Readings learned into the deviation (capped). */
const LEARNED = 1;
/** First reading's time (warm-up) and the previous reading's. */
const START = 2;
const TIME = 3;
/** Recent level and trend; frozen during runs and short falls. */
const FIT = 4;
/** The fit as it was before the latest fall became the new level; used until MEMORY_UNTIL. */
const MEMORY = FIT + FIT_SIZE;
const MEMORY_UNTIL = MEMORY + FIT_SIZE;
/** Noise: EWMA of |value − expected| over readings outside runs and falls. */
const DEVIATION = MEMORY_UNTIL + 1;
/** The day so far against the profile: EWMAs (over DAY_HALF_LIVES half-lives) of the values and of the profile at their times. */
const DAY_LEVEL = DEVIATION + 1;
const DAY_PROFILE = DAY_LEVEL + 1;
/** Time the current run of high readings began, or -1. */
const HIGH_SINCE = DAY_PROFILE + 1;
/** Limit when the current high run began. */
const RUN_LIMIT = HIGH_SINCE + 1;
/** Over the run: readings, Σ excess, Σ expected, and Σu, Σu², Σu·value with u = time since the run began ÷ duration (or a minute). */
const RUN_COUNT = RUN_LIMIT + 1;
const RUN_EXCESS = RUN_COUNT + 1;
const RUN_EXPECTED_SUM = RUN_EXCESS + 1;
const RUN_U = RUN_EXPECTED_SUM + 1;
const RUN_UU = RUN_U + 1;
const RUN_UX = RUN_UU + 1;
/** 1 once the run has been judged a step (it is reported), 0 while pending. */
const RUN_CONFIRMED = RUN_UX + 1;
/** Time the current fall (readings below the expectation by twice the margin) began, or -1. */
const LOW_SINCE = RUN_CONFIRMED + 1;
/** Latest value at least `onset` old, and the value waiting to become it. */
const REFERENCE = LOW_SINCE + 1;
const PENDING_VALUE = REFERENCE + 1;
const PENDING_TIME = PENDING_VALUE + 1;
/** 1 while reported. */
const ACTIVE = PENDING_TIME + 1;
/** Share of the readings in runs judged to be steps, and readings counted in it (see `countInShare`, weights halving every day of readings at the device's interval). */
const SHARE = ACTIVE + 1;
const STATE_SIZE = SHARE + 2;

/**
 * A device's state: its numbers in one array of unboxed doubles (offsets above) — an object with
 * as many number fields keeps each in a heap number of its own, and with thousands of devices
 * taking turns each was a cache miss — beside its seasonal profile (see SeasonalState) and the
 * P² quantile markers of `percentile`.
 */
export interface SustainedHighState {
  profile: ProfileState;
  quantile: QuantileState;
  v: number[];
}

/** A run is judged on at least this many readings: two points always lie on a line. */
const MIN_RUN_READINGS = 3;
/** The profile is followed only where it is within this factor of the device's recent level. */
const PROFILE_AGREEMENT = 1.25;
/** Unit of the fit's time axis. */
const MINUTE_MS = 60_000;
/** A reading this many bands below the expectation is a fall (a drop, an outage), not noise. */
const FALL_BANDS = 2;
/** The noise is averaged over this many half-lives of the fit. */
const DEVIATION_HALF_LIVES = 6;
/** Whether the profile fits the day is judged over this many half-lives of the fit. */
const DAY_HALF_LIVES = 12;

/**
 * exp(−step · ln 2 ÷ (half-lives × half-life)), remembered for a repeated step and half-life: devices
 * report at a steady interval, so the same step comes again and again and the exp() is saved.
 */
class StepDecay {
  private step = Number.NaN;
  private halfLife = Number.NaN;
  private value = 1;
  constructor(private readonly halfLives: number) {}
  of(step: number, halfLife: number): number {
    if (step !== this.step || halfLife !== this.halfLife) {
      this.step = step;
      this.halfLife = halfLife;
      this.value = Math.exp((-step * Math.LN2) / (this.halfLives * halfLife));
    }
    return this.value;
  }
}

function copyFit(v: number[], from: number, to: number): void {
  for (let k = 0; k < FIT_SIZE; k++) v[to + k] = v[from + k]!;
}

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
  private readonly halfLifeMs: number;
  private readonly warmupMs: number;
  private readonly profile: ProfileConfig;
  private readonly suddenness: number;
  private readonly onsetMs: number;
  private readonly adoptAfterMs: number;
  private readonly highShare: number;
  private readonly shareWeight = new EwmaWeight(SHARE_HALF_LIFE_MS);
  /** Weight of one reading in the share of high readings, at the current device's interval. */
  private readingShareWeight = 0;
  /** Time unit of the run's sums: `duration`, or a minute if that is zero. */
  private readonly runUnitMs: number;
  // The half-life for the current device (at least its reporting interval), and the decays of the
  // fit, the deviation and the day's agreement over a step of time.
  private deviceHalfLifeMs = 0;
  private readonly fitDecay = new StepDecay(1);
  private readonly deviationDecay = new StepDecay(DEVIATION_HALF_LIVES);
  private readonly dayDecay = new StepDecay(DAY_HALF_LIVES);
  // Results of expectation(), in fields (no allocation per reading).
  private expected = 0;
  private slope = 0;
  private carried = false;

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
    const halfLife = parseDuration(p.baselineHalfLife);
    this.halfLifeMs = halfLife > 0 ? halfLife : 300_000;
    this.warmupMs = parseDuration(p.warmup);
    this.profile = profileConfigOf(p);
    this.suddenness = p.suddenness;
    this.onsetMs = parseDuration(p.onset);
    this.adoptAfterMs = parseDuration(p.adoptAfter);
    this.highShare = p.highShare;
    this.runUnitMs = this.durationMs > 0 ? this.durationMs : MINUTE_MS;
  }

  createState(): SustainedHighState {
    const v = doubles(STATE_SIZE);
    v[FIT + F_PROFILE] = Number.NaN;
    v[MEMORY + F_PROFILE] = Number.NaN;
    v[MEMORY_UNTIL] = Number.NEGATIVE_INFINITY;
    v[HIGH_SINCE] = -1;
    v[LOW_SINCE] = -1;
    return { profile: createProfileState(this.profile), quantile: createQuantileState(this.quantile), v };
  }

  onReading(state: SustainedHighState, reading: Reading, ctx: DetectorContext): number {
    const v = state.v;
    const x = reading.values[this.index];
    if (x === undefined || !Number.isFinite(x)) return 0;
    const t = reading.time;
    if (v[N]! === 0) {
      v[N] = 1;
      v[START] = t;
      v[TIME] = t;
      v[REFERENCE] = x;
      v[PENDING_VALUE] = x;
      v[PENDING_TIME] = t;
    }
    if (t - v[PENDING_TIME]! >= this.onsetMs) {
      v[REFERENCE] = v[PENDING_VALUE]!;
      v[PENDING_VALUE] = x;
      v[PENDING_TIME] = t;
    }
    if (this.hasLevel || this.hasPercentile) return this.onFixedLimit(state, reading, x, t, ctx);
    // A fit needs a few readings per half-life: with sparse readings it spans at least one interval.
    this.deviceHalfLifeMs = ctx.intervalMs > this.halfLifeMs ? ctx.intervalMs : this.halfLifeMs;
    this.readingShareWeight = this.shareWeight.of(ctx.intervalMs);

    // Values near the limits of a double can overflow the sums: start again rather than stay stuck.
    if (!Number.isFinite(v[FIT + F_X]! + v[FIT + F_UX]! + v[FIT + F_UU]! + v[DEVIATION]!)) {
      v[FIT + F_W] = 0;
      v[DEVIATION] = 0;
      v[MEMORY_UNTIL] = Number.NEGATIVE_INFINITY;
    }
    let expected = x;
    let limit = Number.POSITIVE_INFINITY;
    let evidence = 0;
    let band = 0;
    let low = false;
    let returned = false;
    if (v[FIT + F_W]! > 0) {
      this.expectation(state, FIT, t);
      expected = this.expected;
      const margin = this.ratio * Math.abs(expected);
      const noise = this.k * v[DEVIATION]!;
      band = margin > noise ? margin : noise;
      low = x < expected - FALL_BANDS * band;
      if (t - v[START]! >= this.warmupMs) {
        if (v[HIGH_SINCE]! >= 0) limit = expected + band / 2;
        else {
          limit = expected + band;
          // Not above the usual level for the time of day (where the profile fits the day): no rise either.
          if (v[DAY_PROFILE]! > 0 && v[DAY_LEVEL]! <= PROFILE_AGREEMENT * v[DAY_PROFILE]! && PROFILE_AGREEMENT * v[DAY_LEVEL]! >= v[DAY_PROFILE]!) {
            const usual = this.profileAt(state, t);
            if (usual > limit) limit = usual;
          }
        }
        const step = x - v[REFERENCE]!;
        let high = x > limit && (v[HIGH_SINCE]! >= 0 || (step >= this.suddenness * (x - expected) && step >= margin));
        if (high && v[HIGH_SINCE]! < 0 && t < v[MEMORY_UNTIL]!) {
          // Back to about the level held before the latest fall (the end of an outage), or below it:
          // a return, not a rise. The fit restarts from it and the memory has served.
          const slope = this.slope;
          const carried = this.carried;
          this.expectation(state, MEMORY, t);
          const before = this.expected;
          this.slope = slope;
          this.carried = carried;
          const beforeMargin = this.ratio * Math.abs(before);
          if (x <= before + (beforeMargin > noise ? beforeMargin : noise)) {
            high = false;
            returned = true;
            v[MEMORY_UNTIL] = Number.NEGATIVE_INFINITY;
          }
        }
        if (high) {
          const relativeRatio = margin > 0 ? (x - expected) / margin : Number.POSITIVE_INFINITY;
          const noiseRatio = noise > 0 ? (x - expected) / noise : Number.POSITIVE_INFINITY;
          evidence = relativeRatio < noiseRatio ? relativeRatio : noiseRatio;
          if (!(evidence > 0)) evidence = Number.MIN_VALUE;
          else if (evidence === Number.POSITIVE_INFINITY) evidence = 1;
        }
      }
    }

    // Learning, inline (numbers passed to a call that is not inlined are boxed): the profile learns
    // a high value clipped to the limit and a fall clipped to its threshold; the fit learns neither.
    if (evidence > 0) profileObserveClamped(state.profile, this.profile, reading, this.index, Number.NEGATIVE_INFINITY, limit);
    else if (low) profileObserveClamped(state.profile, this.profile, reading, this.index, expected - FALL_BANDS * band, Number.POSITIVE_INFINITY);
    else profileObserve(state.profile, this.profile, reading, this.index);
    if (evidence === 0 && v[FIT + F_W]! > 0 && !low) {
      // The noise, from every reading outside runs and falls, averaged more slowly than the fit (the
      // noise of a device changes slowly); an error counts up to twice the band, so one reading does
      // not swamp it, and errors beyond the band still count (or the estimate would shrink itself).
      if (v[LEARNED]! < 1_000_000) v[LEARNED] = v[LEARNED]! + 1;
      let weight = 1 - this.deviationDecay.of(t - v[TIME]!, this.deviceHalfLifeMs);
      const countWeight = 1 / v[LEARNED]!;
      if (countWeight > weight) weight = countWeight;
      let error = x > expected ? x - expected : expected - x;
      if (error > 2 * band) error = 2 * band;
      v[DEVIATION] = v[DEVIATION]! + (weight * (error - v[DEVIATION]!));
      const usual = this.profileAt(state, t);
      if (usual > 0) {
        const dayWeight = 1 - this.dayDecay.of(t - v[TIME]!, this.deviceHalfLifeMs);
        v[DAY_LEVEL] = v[DAY_LEVEL]! + (dayWeight * (x - v[DAY_LEVEL]!));
        v[DAY_PROFILE] = v[DAY_PROFILE]! + (dayWeight * (usual - v[DAY_PROFILE]!));
      }
    }
    v[TIME] = t;
    if (evidence > 0) v[LOW_SINCE] = -1;
    else if (returned) {
      v[LOW_SINCE] = -1;
      this.restartFit(state, t, x);
    } else if (low) {
      if (v[LOW_SINCE]! < 0) v[LOW_SINCE] = t;
      else if (t - v[LOW_SINCE]! >= this.durationMs) {
        // A fall that lasts is the new level; the level before it is kept to recognise a return.
        v[LOW_SINCE] = -1;
        if (!(t < v[MEMORY_UNTIL]!)) {
          copyFit(v, FIT, MEMORY);
          v[MEMORY_UNTIL] = t + this.adoptAfterMs;
        }
        this.restartFit(state, t, x);
      }
    } else {
      v[LOW_SINCE] = -1;
      this.learnFit(state, t, x);
    }

    if (evidence > 0) return this.onHigh(state, x, t, limit, expected, evidence, ctx);
    // Readings of a run not judged yet are counted once it is: this one, and such a run's, are not high.
    this.countShare(state, 0, this.unjudged(state) + 1);
    this.endRun(state, x, t, limit, expected, ctx);
    return 0;
  }

  /** Counts `readings` readings, high (1) or not (0), in the device's share of high readings. */
  private countShare(state: SustainedHighState, high: number, readings: number): void {
    for (let i = 0; i < readings; i++) countInShare(state.v, SHARE, high, this.readingShareWeight);
  }

  /** Readings of the current run not judged yet (not yet counted in the share). */
  private unjudged(state: SustainedHighState): number {
    const v = state.v;
    return v[HIGH_SINCE]! >= 0 && v[RUN_CONFIRMED]! === 0 ? v[RUN_COUNT]! : 0;
  }

  /** `level` and `percentile`: every reading above the limit for `duration`. */
  private onFixedLimit(state: SustainedHighState, reading: Reading, x: number, t: number, ctx: DetectorContext): number {
    const v = state.v;
    let limit = this.level;
    if (this.hasPercentile) {
      limit = quantileValue(state.quantile);
      quantileAdd(state.quantile, reading, this.index);
      if (t - v[START]! < this.warmupMs) return 0;
    }
    if (!(x > limit)) {
      this.endRun(state, x, t, limit, Number.NaN, ctx);
      return 0;
    }
    if (v[HIGH_SINCE]! < 0) v[HIGH_SINCE] = t;
    if (t - v[HIGH_SINCE]! < this.durationMs) return 0;
    v[ACTIVE] = 1;
    const score = Math.max(0.5, scoreForRatio(limit > 0 ? x / limit : 1));
    const basis = this.hasPercentile ? `its learned ${formatNumber(Math.round(this.quantile * 1000) / 10)}th percentile ${formatNumber(limit)}` : `the configured level ${formatNumber(limit)}`;
    this.report(state, t, x, basis, limit, Number.NaN, score, ctx);
    return score;
  }

  /** A high reading with a learned limit: starts, judges, reports or adopts the run. */
  private onHigh(state: SustainedHighState, x: number, t: number, limit: number, expected: number, evidence: number, ctx: DetectorContext): number {
    const v = state.v;
    if (v[HIGH_SINCE]! < 0) {
      v[HIGH_SINCE] = t;
      v[RUN_LIMIT] = limit;
      v[RUN_COUNT] = 0;
      v[RUN_EXCESS] = 0;
      v[RUN_EXPECTED_SUM] = 0;
      v[RUN_U] = 0;
      v[RUN_UU] = 0;
      v[RUN_UX] = 0;
      v[RUN_CONFIRMED] = 0;
    }
    const elapsed = t - v[HIGH_SINCE]!;
    if (elapsed >= this.adoptAfterMs) {
      // High for longer than any episode: this is the device's new level. The run ends and the fit
      // restarts from it (the profile keeps its own view).
      if (v[ACTIVE]! === 1) {
        v[ACTIVE] = 0;
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
      this.countShare(state, 0, this.unjudged(state) + 1);
      v[HIGH_SINCE] = -1;
      v[REFERENCE] = x;
      this.restartFit(state, t, x);
      return 0;
    }
    const u = elapsed / this.runUnitMs;
    v[RUN_COUNT] = v[RUN_COUNT]! + 1;
    v[RUN_EXCESS] = v[RUN_EXCESS]! + (x - expected);
    v[RUN_EXPECTED_SUM] = v[RUN_EXPECTED_SUM]! + expected;
    v[RUN_U] = v[RUN_U]! + u;
    v[RUN_UU] = v[RUN_UU]! + (u * u);
    v[RUN_UX] = v[RUN_UX]! + (u * x);
    if (v[RUN_CONFIRMED]! === 0) {
      if (elapsed < this.durationMs || v[RUN_COUNT] < MIN_RUN_READINGS) return 0;
      const step = this.isStep(state);
      const habitual = v[SHARE]! > this.highShare;
      this.countShare(state, step ? 1 : 0, v[RUN_COUNT]);
      if (!step || habitual) {
        // Noise, a bend in a ramp, or a step of a device often in such runs: its readings are
        // normal and are learned.
        this.learnRun(state, t);
        v[HIGH_SINCE] = -1;
        return 0;
      }
      v[RUN_CONFIRMED] = 1;
    } else this.countShare(state, 1, 1);
    v[ACTIVE] = 1;
    const score = Math.max(0.5, scoreForRatio(evidence));
    const basis =
      `${formatNumber(limit)} (expected ${formatNumber(expected)} from its slow EWMA baseline, half-life ${formatDuration(this.deviceHalfLifeMs)}; margin ${formatPercent(this.ratio)} ` +
      `and ${formatNumber(this.k)} × deviation ${formatNumber(v[DEVIATION]!)}, halved once the run began above ${formatNumber(v[RUN_LIMIT]!)}; ` +
      `trend ${formatNumber(this.slope * MINUTE_MS)}/min${this.carried ? ', carried along its daily profile' : ''})`;
    this.report(state, t, x, basis, limit, expected, score, ctx);
    return score;
  }

  /** The judgement of a run after `duration`: mean excess over the margin and the noise guard, and a step at its start. */
  private isStep(state: SustainedHighState): boolean {
    const v = state.v;
    const n = v[RUN_COUNT]!;
    if (v[RUN_EXCESS]! < this.ratio * Math.abs(v[RUN_EXPECTED_SUM]!) || v[RUN_EXCESS]! < this.k * v[DEVIATION]! * n) return false;
    const determinant = n * v[RUN_UU]! - v[RUN_U]! * v[RUN_U]!;
    if (!(determinant > 0)) return false;
    const sum = v[RUN_EXCESS]! + v[RUN_EXPECTED_SUM]!;
    const atStart = (sum * v[RUN_UU]! - v[RUN_U]! * v[RUN_UX]!) / determinant;
    return atStart >= v[RUN_LIMIT]!;
  }

  private endRun(state: SustainedHighState, x: number, t: number, limit: number, expected: number, ctx: DetectorContext): void {
    const v = state.v;
    if (v[ACTIVE]! === 1) {
      v[ACTIVE] = 0;
      const explain =
        `${this.metric} ${formatNumber(x)} is no longer above ${formatNumber(limit)}; ` +
        `it was high for ${formatDuration(t - v[HIGH_SINCE]!)} (since ${formatTime(v[HIGH_SINCE]!)})`;
      ctx.report({ time: t, score: 0, value: x, baseline: Number.isNaN(expected) ? undefined : expected, threshold: limit, explain, metric: this.metric, active: false });
    }
    v[HIGH_SINCE] = -1;
  }

  private report(state: SustainedHighState, t: number, x: number, basis: string, limit: number, expected: number, score: number, ctx: DetectorContext): void {
    const v = state.v;
    const explain =
      `${this.metric} has been above ${basis} for ${formatDuration(t - v[HIGH_SINCE]!)} since ${formatTime(v[HIGH_SINCE]!)}; ` +
      `now ${formatNumber(x)}; duration threshold ${formatDuration(this.durationMs)}`;
    ctx.report({ time: t, score, value: x, baseline: Number.isNaN(expected) ? undefined : expected, threshold: limit, explain, metric: this.metric, active: true });
  }

  /** The profile's mean at a time, interpolated between slot centres; NaN where its slots are not learned. */
  private profileAt(state: SustainedHighState, time: number): number {
    const config = this.profile;
    const position = (time + config.offsetMs) / config.slotMs - 0.5;
    const left = Math.floor(position);
    const a = profileSlotMean(state.profile, config, left);
    const b = profileSlotMean(state.profile, config, left + 1);
    if (Number.isNaN(a)) return b;
    if (Number.isNaN(b)) return a;
    return a + (position - left) * (b - a);
  }

  /** Sets `expected` (at time t) and `slope` (per ms) from a fit. */
  private expectation(state: SustainedHighState, fit: number, t: number): void {
    const v = state.v;
    const w = v[fit + F_W]!;
    let level = v[fit + F_X]! / w;
    let slope = 0;
    const determinant = w * v[fit + F_UU]! - v[fit + F_U]! * v[fit + F_U]!;
    // Too little spread in time (one reading, or a few close together): the level alone.
    if (determinant > 1e-9 * w * w) {
      level = (v[fit + F_X]! * v[fit + F_UU]! - v[fit + F_U]! * v[fit + F_UX]!) / determinant;
      slope = (w * v[fit + F_UX]! - v[fit + F_U]! * v[fit + F_X]!) / determinant / MINUTE_MS;
    }
    const elapsed = t - v[fit + F_TIME]!;
    let expected = level + slope * (elapsed < this.durationMs ? elapsed : this.durationMs);
    // Along the profile, where it agrees with the fit: the level carried by the profile's change,
    // the higher of the two while the trend is followed, the profile's course beyond that.
    const then = v[fit + F_PROFILE]!;
    this.carried = then > 0 && level <= PROFILE_AGREEMENT * then && PROFILE_AGREEMENT * level >= then;
    if (this.carried) {
      if (elapsed <= this.durationMs) {
        const now = this.profileAt(state, t);
        if (now > 0 && (level * now) / then > expected) expected = (level * now) / then;
      } else {
        const horizon = this.profileAt(state, v[fit + F_TIME]! + this.durationMs);
        const now = this.profileAt(state, t);
        if (horizon > 0 && now > 0) {
          const carried = (level * horizon) / then;
          expected = ((carried > expected ? carried : expected) * now) / horizon;
        }
      }
    }
    this.expected = expected;
    this.slope = slope;
  }

  /** Ages the fit to time t: its time axis moves there and its weights decay. */
  private moveFit(v: number[], t: number): void {
    const elapsed = t - v[FIT + F_TIME]!;
    if (v[FIT + F_W]! > 0 && elapsed !== 0) {
      const d = elapsed / MINUTE_MS;
      const decay = this.fitDecay.of(elapsed, this.deviceHalfLifeMs);
      v[FIT + F_UU] = decay * (v[FIT + F_UU]! - 2 * d * v[FIT + F_U]! + d * d * v[FIT + F_W]!);
      v[FIT + F_U] = decay * (v[FIT + F_U]! - d * v[FIT + F_W]!);
      v[FIT + F_UX] = decay * (v[FIT + F_UX]! - d * v[FIT + F_X]!);
      v[FIT + F_X] = decay * v[FIT + F_X]!;
      v[FIT + F_W] = decay * v[FIT + F_W]!;
    }
    v[FIT + F_TIME] = t;
  }

  private learnFit(state: SustainedHighState, t: number, x: number): void {
    const v = state.v;
    this.moveFit(v, t);
    v[FIT + F_W] = v[FIT + F_W]! + 1;
    v[FIT + F_X] = v[FIT + F_X]! + x;
    v[FIT + F_PROFILE] = this.profileAt(state, t);
  }

  private restartFit(state: SustainedHighState, t: number, x: number): void {
    const v = state.v;
    v[FIT + F_W] = 0;
    v[FIT + F_U] = 0;
    v[FIT + F_UU] = 0;
    v[FIT + F_X] = 0;
    v[FIT + F_UX] = 0;
    v[FIT + F_TIME] = t;
    this.learnFit(state, t, x);
  }

  /** Adds the run's readings to the fit (with equal weights, as a block at time t): they were normal after all. */
  private learnRun(state: SustainedHighState, t: number): void {
    const v = state.v;
    this.moveFit(v, t);
    const n = v[RUN_COUNT]!;
    const sum = v[RUN_EXCESS]! + v[RUN_EXPECTED_SUM]!;
    // In the fit's minutes, a run reading's time − t = u × run unit − elapsed.
    const scale = this.runUnitMs / MINUTE_MS;
    const shift = (t - v[HIGH_SINCE]!) / MINUTE_MS;
    v[FIT + F_W] = v[FIT + F_W]! + n;
    v[FIT + F_X] = v[FIT + F_X]! + sum;
    v[FIT + F_U] = v[FIT + F_U]! + (scale * v[RUN_U]! - n * shift);
    v[FIT + F_UU] = v[FIT + F_UU]! + (scale * scale * v[RUN_UU]! - 2 * scale * shift * v[RUN_U]! + n * shift * shift);
    v[FIT + F_UX] = v[FIT + F_UX]! + (scale * v[RUN_UX]! - shift * sum);
    v[FIT + F_PROFILE] = this.profileAt(state, t);
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
