import { Type, type Static } from '@sinclair/typebox';
import type { Detector, DetectorContext, DetectorSpec, Reading, StreamSchema } from '../model/index.js';
import { formatDuration, formatNumber, scoreForRatio, selectMetrics } from './common.js';
import { DurationParam, parseDuration, resolveParams } from './params.js';
import {
  DAY_MS,
  EXPECTED_BORROWED,
  EXPECTED_DEVIATION,
  EXPECTED_HIGH,
  EXPECTED_LOW,
  EXPECTED_MEAN,
  createProfileState,
  describeSlot,
  profileLookup,
  profileObserve,
  profileObserveClamped,
  type ProfileConfig,
  type ProfileState,
} from './seasonal-profile.js';

/**
 * Parameters of `seasonal`.
 *
 * Rule: each device learns a time-of-day profile (slots of `slot`, weekday and weekend apart,
 * local time = UTC + `utcOffsetMinutes`): per slot an EWMA across days (newest day weighs
 * `dayWeight`) of the slot mean and of the mean absolute deviation of readings from it. A slot
 * is learned after `minDays` days; until then nothing is reported for it, unless `borrow` is on:
 * then the other day type's slot is used (with twice as wide thresholds). Borrowing is off by
 * default because a weekend is not a weekday: a plant or office far below its weekday profile
 * every Saturday would be reported all of its first weekends. The expected range at a time is
 * spanned by the learned means within ± `timeShift` (so an evening peak half an hour early is
 * normal). A reading fires when its distance beyond that range exceeds both `k` × the slot's
 * deviation and `ratio` × the range edge it passed. `direction` limits it to high or low values.
 * Fired readings are learned clipped to the threshold, so one anomaly moves the profile little
 * and a lasting change is learned over days.
 *
 * Score: evidence = the smaller of distance ÷ (k·deviation) and distance ÷ (ratio·edge);
 * 0.5 at 1, 0.75 at 2, critical from 2.5.
 *
 * @example
 * { type: 'seasonal', metrics: ['usageKw'], params: { slot: '30m', utcOffsetMinutes: 60 } }
 */
export const seasonalParams = Type.Object({
  k: Type.Number({ minimum: 0, default: 5, description: 'Distance beyond the expected range must exceed k × the slot deviation.' }),
  ratio: Type.Number({ minimum: 0, default: 0.3, description: 'Distance must also exceed this share of the expected level (0.3 = 30%).' }),
  slot: DurationParam('15m', 'Time-of-day slot; must divide a day.'),
  timeShift: DurationParam('30m', 'Tolerated shift in time of day: neighbouring slots within it widen the expected range.'),
  dayWeight: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.25, description: 'Weight of the newest day in the EWMA across days.' }),
  minDays: Type.Integer({ minimum: 1, default: 2, description: 'Days a slot must have been seen before it is used.' }),
  utcOffsetMinutes: Type.Number({ minimum: -840, maximum: 840, default: 0, description: 'Local time offset from UTC used to cut days and slots.' }),
  direction: Type.Union([Type.Literal('both'), Type.Literal('high'), Type.Literal('low')], { default: 'both', description: 'Which side fires.' }),
  borrow: Type.Boolean({
    default: false,
    description: "Until a slot of the reading's day type (weekday, weekend) is learned, judge against the other day type's slot with thresholds twice as wide.",
  }),
});
export type SeasonalParams = Static<typeof seasonalParams>;

/** Profile settings from the shared parameter names (slot, timeShift, dayWeight, minDays, utcOffsetMinutes; `borrow` is seasonal's alone). */
export function profileConfigOf(p: { slot: unknown; timeShift: unknown; dayWeight: number; minDays: number; utcOffsetMinutes: number; borrow?: boolean }): ProfileConfig {
  let slotMs = parseDuration(p.slot);
  if (!(slotMs >= 60_000) || DAY_MS % slotMs !== 0) slotMs = 900_000;
  const shift = parseDuration(p.timeShift);
  return {
    slotMs,
    slots: DAY_MS / slotMs,
    shiftSlots: Number.isFinite(shift) ? Math.min(Math.floor(DAY_MS / slotMs / 2), Math.round(shift / slotMs)) : 0,
    dayWeight: p.dayWeight,
    minDays: p.minDays,
    borrow: p.borrow ?? false,
    offsetMs: p.utcOffsetMinutes * 60_000,
  };
}

export interface SeasonalState {
  /** The device's profile (one array of numbers, see seasonal-profile.ts; shared code with sustained_high). */
  profile: ProfileState;
  firing: number;
  since: number;
}

/** Widening of both thresholds while the other day type's profile is borrowed. */
const BORROWED_FACTOR = 2;

export class SeasonalDetector implements Detector<SeasonalState> {
  readonly type = 'seasonal';
  readonly alertType: string;
  readonly metric: string;
  private readonly index: number;
  private readonly k: number;
  private readonly ratio: number;
  private readonly high: boolean;
  private readonly low: boolean;
  private readonly profile: ProfileConfig;

  constructor(alertType: string, metric: string, index: number, p: SeasonalParams) {
    this.alertType = alertType;
    this.metric = metric;
    this.index = index;
    this.k = p.k;
    this.ratio = p.ratio;
    this.high = p.direction !== 'low';
    this.low = p.direction !== 'high';
    this.profile = profileConfigOf(p);
  }

  createState(): SeasonalState {
    return { profile: createProfileState(this.profile), firing: 0, since: 0 };
  }

  onReading(state: SeasonalState, reading: Reading, ctx: DetectorContext): number {
    const x = reading.values[this.index];
    if (x === undefined || !Number.isFinite(x)) return 0;
    const t = reading.time;
    const profile = state.profile;
    let evidence = 0;
    let distance = 0;
    let edge = 0;
    let noise = 0;
    let allowed = 0;
    if (profileLookup(profile, this.profile, reading)) {
      const widen = profile[EXPECTED_BORROWED] === 1 ? BORROWED_FACTOR : 1;
      if (this.high && x > profile[EXPECTED_HIGH]!) {
        distance = x - profile[EXPECTED_HIGH]!;
        edge = profile[EXPECTED_HIGH]!;
      } else if (this.low && x < profile[EXPECTED_LOW]!) {
        distance = profile[EXPECTED_LOW]! - x;
        edge = profile[EXPECTED_LOW]!;
      }
      if (distance > 0) {
        noise = widen * this.k * profile[EXPECTED_DEVIATION]!;
        allowed = widen * this.ratio * Math.abs(edge);
        const noiseRatio = noise > 0 ? distance / noise : Number.POSITIVE_INFINITY;
        const relativeRatio = allowed > 0 ? distance / allowed : Number.POSITIVE_INFINITY;
        evidence = noiseRatio < relativeRatio ? noiseRatio : relativeRatio;
      }
    }
    if (evidence >= 1) {
      if (state.firing === 0) {
        state.firing = 1;
        state.since = t;
      }
      const score = scoreForRatio(evidence);
      const widen = profile[EXPECTED_BORROWED] === 1 ? BORROWED_FACTOR : 1;
      const side = x > edge ? 'above' : 'below';
      const explain =
        `${this.metric} ${formatNumber(x)} is ${formatNumber(distance)} ${side} its seasonal expected range ` +
        `${formatNumber(profile[EXPECTED_LOW]!)}–${formatNumber(profile[EXPECTED_HIGH]!)} (${describeSlot(this.profile, profile)}, ±${formatDuration(this.profile.shiftSlots * this.profile.slotMs)}); ` +
        `thresholds ${formatNumber(widen * this.k)} × deviation ${formatNumber(profile[EXPECTED_DEVIATION]!)} = ${formatNumber(noise)} and ` +
        `${Math.round(widen * this.ratio * 100)}% of ${formatNumber(edge)} = ${formatNumber(allowed)}` +
        (t > state.since ? `; ongoing for ${formatDuration(t - state.since)}` : '');
      const limit = x > edge ? edge + Math.max(noise, allowed) : edge - Math.max(noise, allowed);
      ctx.report({ time: t, score, value: x, baseline: profile[EXPECTED_MEAN], threshold: limit, explain, metric: this.metric, active: true });
      // Learned clipped to the threshold: one anomaly moves the profile little, a new normal is learned over days.
      profileObserveClamped(profile, this.profile, reading, this.index, limit, limit);
      return score;
    }
    if (state.firing === 1) {
      state.firing = 0;
      const explain = `${this.metric} ${formatNumber(x)} is back within its seasonal expected range after ${formatDuration(t - state.since)}`;
      ctx.report({ time: t, score: 0, value: x, baseline: profile[EXPECTED_MEAN], threshold: undefined, explain, metric: this.metric, active: false });
    }
    profileObserve(profile, this.profile, reading, this.index);
    return 0;
  }
}

/**
 * Builds one seasonal detector per metric of the spec.
 *
 * @example
 * createSeasonalDetectors({ type: 'seasonal', metrics: ['usageKw'], params: {}, alertType: undefined, enabled: true }, power);
 */
export function createSeasonalDetectors(spec: DetectorSpec, schema: StreamSchema): SeasonalDetector[] {
  const p = resolveParams(seasonalParams, spec.params);
  return selectMetrics(spec, schema).map((m) => new SeasonalDetector(spec.alertType ?? 'seasonal', m.name, m.index, p));
}
