import { Type, type Static } from '@sinclair/typebox';
import { opsEvent, type Detector, type DetectorContext, type DetectorSpec, type Reading, type StreamSchema } from '../model/index.js';
import { formatDuration, formatTime, scoreForRatio } from './common.js';
import { OptionalDurationParam, parseDuration, resolveParams } from './params.js';

/**
 * Parameters of `silence`.
 *
 * Rule: a device is silent once no reading has come for interval × (1 + grace) of event time,
 * where the interval is `interval` if given, else the device's interval from the engine
 * (declared on the stream, or learned; nothing is reported while it is unknown) and grace is
 * `grace` if given, else the stream's `gapGrace`. "Missed" counts the expected readings that
 * did not come.
 * - Timer path (the watermark passes the deadline while the device is quiet): an active finding
 *   with the intervals missed so far, re-armed every interval so cascading gaps are counted
 *   (the score grows with them), and an ops `gap` event when the silence is first seen. A long
 *   silence is re-checked less often (every missed/4 intervals, at most every half of the
 *   stream's `alerts.resolveAfterMs`, so the open alert stays fresh).
 * - Reading path: a reading after a silence reports `active: false` with the total missed and
 *   an ops `gap` event with the final count (time = the first missing reading's time). Before
 *   that, it reports every check of the schedule above that falls before the reading and that no
 *   timer reported yet (all of them when the gap was never seen by a timer: replay, or a
 *   partition that was behind), then one ops `gap`.
 * Every finding's time is a point of that schedule (deadline, then deadline + steps), never the
 * watermark at the moment a timer fired: the findings, and the alert's id (from its opening
 * time), are the same however fast the watermark moved — one process or a partitioned group.
 * Missed: round(gap ÷ interval) − 1 when a reading closes the gap; floor(elapsed ÷ interval −
 * grace) while it is open. Score: `scoreForRatio(missed)`: 0.5 for one, 0.75 for two, ...
 *
 * @example
 * { type: 'silence', metrics: [], params: { grace: 1 } }
 */
export const silenceParams = Type.Object({
  interval: OptionalDurationParam('Expected reporting interval; default: the stream\'s declared or learned interval.'),
  grace: Type.Optional(Type.Number({ minimum: 0, description: 'Grace as a share of the interval; default: the stream\'s gapGrace.' })),
});
export type SilenceParams = Static<typeof silenceParams>;

export interface SilenceState {
  /** 1 once a reading was seen. */
  seen: number;
  /** Event time of the device's latest reading. */
  previous: number;
  /** 1 while a silence found by the timer is open. */
  open: number;
  /** Intervals missed, as last reported. */
  missed: number;
  /** While open: event time of the next scheduled check (checks before a resuming reading are reported by it). */
  next?: number;
}

export class SilenceDetector implements Detector<SilenceState> {
  readonly type = 'silence';
  readonly alertType: string;
  readonly metric = undefined;
  private readonly stream: string;
  private readonly intervalMs: number;
  private readonly grace: number;
  private readonly refreshMs: number;

  constructor(alertType: string, schema: StreamSchema, p: SilenceParams) {
    this.alertType = alertType;
    this.stream = schema.name;
    this.intervalMs = p.interval === undefined ? Number.NaN : parseDuration(p.interval);
    this.grace = p.grace ?? (Number.isFinite(schema.gapGrace) && schema.gapGrace >= 0 ? schema.gapGrace : 0.5);
    this.refreshMs = schema.alerts.resolveAfterMs / 2;
  }

  createState(): SilenceState {
    return { seen: 0, previous: 0, open: 0, missed: 0 };
  }

  private interval(ctx: DetectorContext): number {
    return this.intervalMs > 0 ? this.intervalMs : ctx.intervalMs;
  }

  onReading(state: SilenceState, reading: Reading, ctx: DetectorContext): number {
    const t = reading.time;
    const interval = this.interval(ctx);
    const known = interval > 0 && Number.isFinite(interval);
    if (state.seen === 0) {
      state.seen = 1;
      state.previous = t;
      if (known) ctx.setTimer(t + interval * (1 + this.grace));
      return 0;
    }
    const previous = state.previous;
    state.previous = t;
    if (!known) {
      state.open = 0;
      return 0;
    }
    const limit = interval * (1 + this.grace);
    const gap = t - previous;
    if (state.open === 1 || gap > limit) {
      // The checks a timer would have made before this reading, had the watermark got there first.
      let due = state.open === 1 ? (state.next ?? Number.NaN) : previous + limit;
      while (due < t) due = this.check(state, previous, due, interval, limit, ctx, state.open === 1);
      const missed = Math.max(state.open === 1 ? 0 : 1, Math.round(gap / interval) - 1);
      state.open = 0;
      // Absent, not undefined: a state shaped like createState() packs compactly into checkpoints.
      delete state.next;
      state.missed = missed;
      this.close(t, previous, gap, missed, interval, ctx);
    }
    ctx.setTimer(t + limit);
    return 0;
  }

  onTimer(state: SilenceState, time: number, ctx: DetectorContext): void {
    if (state.seen === 0) return;
    const interval = this.interval(ctx);
    if (!(interval > 0 && Number.isFinite(interval))) return;
    const limit = interval * (1 + this.grace);
    if (time - state.previous < limit) {
      // The interval grew since the timer was set: wait for the new deadline.
      ctx.setTimer(state.previous + limit);
      return;
    }
    ctx.setTimer(this.check(state, state.previous, time, interval, limit, ctx, true));
  }

  /**
   * One check of an open silence at event time `at` (a point of the schedule): an active finding
   * with the readings missed by then; with `announce`, the silence is marked open and, when first
   * seen, an ops event says so (a reading that ends a gap no timer saw reports only its end).
   * Returns the time of the next check.
   */
  private check(state: SilenceState, previous: number, at: number, interval: number, limit: number, ctx: DetectorContext, announce: boolean): number {
    const elapsed = at - previous;
    const missed = Math.max(1, Math.floor(elapsed / interval - this.grace + 1e-9));
    state.missed = missed;
    ctx.report({
      time: at,
      score: scoreForRatio(missed),
      value: missed,
      baseline: interval,
      threshold: limit,
      explain: `no reading for ${formatDuration(elapsed)} since ${formatTime(previous)}: ${missed} expected reading${missed === 1 ? '' : 's'} missed so far (${this.terms(interval)})`,
      active: true,
      // Silence lasts until the device reports again, however far apart these re-reports are.
      holds: true,
    });
    if (announce && state.open === 0) {
      state.open = 1;
      ctx.ops(
        opsEvent('gap', this.stream, `device silent: no reading since ${formatTime(previous)}, ${missed} missed so far`, {
          key: ctx.key,
          time: previous + interval,
          watermark: ctx.watermark,
          missed,
        }),
      );
    }
    let step = interval * Math.max(1, Math.floor(missed / 4));
    const refresh = Math.max(interval, this.refreshMs);
    if (step > refresh) step = refresh;
    state.next = at + step;
    return state.next;
  }

  private close(t: number, previous: number, gap: number, missed: number, interval: number, ctx: DetectorContext): void {
    ctx.report({
      time: t,
      score: 0,
      value: missed,
      baseline: interval,
      threshold: interval * (1 + this.grace),
      explain: `readings resumed at ${formatTime(t)} after ${formatDuration(gap)} of silence: ${missed} expected reading${missed === 1 ? '' : 's'} missed in total (${this.terms(interval)})`,
      active: false,
    });
    ctx.ops(
      opsEvent('gap', this.stream, `gap of ${formatDuration(gap)} ended: ${missed} expected reading${missed === 1 ? '' : 's'} missed`, {
        key: ctx.key,
        time: previous + interval,
        watermark: ctx.watermark,
        missed,
      }),
    );
  }

  private terms(interval: number): string {
    return `interval ${formatDuration(interval)}, grace ${Math.round(this.grace * 100)}%`;
  }
}

/**
 * Builds the stream's silence detector (one per stream, metric undefined).
 *
 * @example
 * createSilenceDetectors({ type: 'silence', metrics: [], params: {}, alertType: undefined, enabled: true }, power); // [SilenceDetector]
 */
export function createSilenceDetectors(spec: DetectorSpec, schema: StreamSchema): SilenceDetector[] {
  return [new SilenceDetector(spec.alertType ?? 'silence', schema, resolveParams(silenceParams, spec.params))];
}
