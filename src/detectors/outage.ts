import { Type, type Static } from '@sinclair/typebox';
import type { Detector, DetectorContext, DetectorSpec, Reading, StreamSchema } from '../model/index.js';
import { EwmaWeight, countInShare, learnLevelAndNoise, formatDuration, formatNumber, selectMetrics, SHARE_HALF_LIFE_MS } from './common.js';
import { DurationParam, parseDuration, resolveParams } from './params.js';

/**
 * Parameters of `outage`.
 *
 * Rule: a reading is an outage when its value is at or below the floor: `level` when given
 * (an absolute value), else `ratio` × the device's EWMA baseline (half-life `halfLife`), and
 * then only once the baseline is meaningfully above zero — positive and more than `k` × the
 * metric's running mean absolute deviation — after `warmup` readings. A metric that hovers
 * around zero has no outage, and neither has a device that sits at its floor often: when more
 * than `floorShare` of its readings were at or below the floor (weights halving every day of
 * event time; a reported outage counts as one reading, so a long outage does not hide the next),
 * zero is one of its normal states, not a fault (a London meter, read half-hourly, is 0 in three
 * half-hours of four). Each such reading reports an active finding; the first reading
 * above the floor reports `active: false`. Readings in an outage are not learned.
 *
 * Score: 1 − 0.5 × value ÷ floor, between 0.5 (at the floor) and 1 (zero or below): an outage
 * at zero is critical.
 *
 * @example
 * { type: 'outage', metrics: ['usageKw'], params: { ratio: 0.02 } }
 */
export const outageParams = Type.Object({
  ratio: Type.Number({ minimum: 0, maximum: 1, default: 0.05, description: 'Floor as a share of the baseline (0.05 = 5%).' }),
  level: Type.Optional(Type.Number({ description: 'Absolute floor; when set the baseline is not needed.' })),
  halfLife: DurationParam('30m', 'Half-life of the EWMA baseline, in event time.'),
  k: Type.Number({ minimum: 0, default: 3, description: 'The baseline must exceed k × the running mean absolute deviation to count as above zero.' }),
  warmup: Type.Integer({ minimum: 1, default: 12, description: 'Readings learned before the first report (not used with level).' }),
  floorShare: Type.Number({
    minimum: 0,
    maximum: 1,
    default: 0.1,
    description: 'A device whose readings were at or below the floor more often than this share (over about a day) has no outage: zero is one of its normal states (not used with level).',
  }),
});
export type OutageParams = Static<typeof outageParams>;

/** Per-device state of an outage detector. */
export interface OutageState {
  n: number;
  time: number;
  base: number;
  deviation: number;
  /** Previous value learned: the deviation is the EWMA of successive differences, which a ramp or an evening peak hours ago does not inflate. */
  previous: number;
  /** 1 while an outage is reported. */
  active: number;
  since: number;
  /** Floor in force when the outage began (kept while the baseline is frozen). */
  floor: number;
  /**
   * Share of the readings at or below the floor, and the readings counted in it (see
   * `countInShare`, weights halving every day of event time); an outage counts its first reading only.
   */
  share: number[];
}

export class OutageDetector implements Detector<OutageState> {
  readonly type = 'outage';
  readonly alertType: string;
  readonly metric: string;
  private readonly index: number;
  private readonly ratio: number;
  private readonly level: number;
  private readonly hasLevel: boolean;
  private readonly halfLifeMs: number;
  private readonly k: number;
  private readonly warmup: number;
  private readonly weight: EwmaWeight;
  /** The deviation forgets four times faster than the baseline (see baseline-shift.ts). */
  private readonly deviationWeight: EwmaWeight;
  private readonly floorShare: number;
  private readonly floorShareWeight = new EwmaWeight(SHARE_HALF_LIFE_MS);

  constructor(alertType: string, metric: string, index: number, p: OutageParams) {
    this.alertType = alertType;
    this.metric = metric;
    this.index = index;
    this.ratio = p.ratio;
    this.hasLevel = p.level !== undefined;
    this.level = p.level ?? 0;
    this.halfLifeMs = parseDuration(p.halfLife);
    this.k = p.k;
    this.warmup = Math.max(1, p.warmup);
    this.floorShare = p.floorShare;
    this.weight = new EwmaWeight(this.halfLifeMs);
    this.deviationWeight = new EwmaWeight(this.halfLifeMs / 4);
  }

  createState(): OutageState {
    return { n: 0, time: 0, base: 0, deviation: 0, previous: 0, active: 0, since: 0, floor: 0, share: [0, 0] };
  }

  onReading(state: OutageState, reading: Reading, ctx: DetectorContext): number {
    const x = reading.values[this.index];
    if (x === undefined || !Number.isFinite(x)) return 0;
    const t = reading.time;
    let floor: number;
    let armed: boolean;
    if (this.hasLevel) {
      floor = this.level;
      armed = true;
    } else if (state.active === 1) {
      floor = state.floor;
      armed = true;
    } else {
      floor = this.ratio * state.base;
      armed = state.n >= this.warmup && state.base > 0 && state.base > this.k * state.deviation && state.share[0]! <= this.floorShare;
    }
    // The share at the floor counts every reading except the second and later ones of a reported
    // outage: a device whose zeros come one or a few at a time (a duty cycle) reaches the share
    // whether they are reported or not, while one long outage counts once and does not hide the next.
    if (!(state.active === 1 && armed && x <= floor)) countInShare(state.share, 0, x <= floor ? 1 : 0, this.floorShareWeight.of(t - state.time));
    if (armed && x <= floor) {
      if (state.active === 0) {
        state.active = 1;
        state.since = t;
        state.floor = floor;
      }
      state.time = t;
      const score = floor > 0 && x > 0 ? 1 - (0.5 * x) / floor : 1;
      this.report(state, t, x, floor, score, ctx);
      return score;
    }
    if (state.active === 1) {
      state.active = 0;
      const explain = `${this.metric} ${formatNumber(x)} recovered above the outage floor ${formatNumber(floor)} after ${formatDuration(t - state.since)}`;
      ctx.report({ time: t, score: 0, value: x, baseline: state.base, threshold: floor, explain, metric: this.metric, active: false });
    }
    if (state.n === 0) {
      state.base = x;
      state.previous = x;
      state.n = 1;
    } else {
      learnLevelAndNoise(state, x, this.weight.of(t - state.time), this.deviationWeight.of(t - state.time), this.warmup);
    }
    state.time = t;
    return 0;
  }

  private report(state: OutageState, t: number, x: number, floor: number, score: number, ctx: DetectorContext): void {
    const source = this.hasLevel
      ? `the configured level`
      : `${Math.round(this.ratio * 100)}% of its EWMA baseline ${formatNumber(state.base)}, half-life ${formatDuration(this.halfLifeMs)}`;
    const explain =
      `${this.metric} ${formatNumber(x)} is at or below the outage floor ${formatNumber(floor)} (${source})` +
      (t > state.since ? `; out for ${formatDuration(t - state.since)}` : '');
    ctx.report({ time: t, score, value: x, baseline: this.hasLevel ? undefined : state.base, threshold: floor, explain, metric: this.metric, active: true });
  }
}

/**
 * Builds one outage detector per metric of the spec.
 *
 * @example
 * createOutageDetectors({ type: 'outage', metrics: ['usageKw'], params: {}, alertType: undefined, enabled: true }, power);
 */
export function createOutageDetectors(spec: DetectorSpec, schema: StreamSchema): OutageDetector[] {
  const p = resolveParams(outageParams, spec.params);
  return selectMetrics(spec, schema).map((m) => new OutageDetector(spec.alertType ?? 'outage', m.name, m.index, p));
}
