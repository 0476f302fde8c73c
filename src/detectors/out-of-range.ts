import { Type, type Static } from '@sinclair/typebox';
import type { Detector, DetectorContext, DetectorSpec, Reading, StreamSchema } from '../model/index.js';
import { formatDuration, formatNumber, scoreForRatio, selectMetrics } from './common.js';
import { resolveParams } from './params.js';

/**
 * Parameters of `out_of_range`.
 *
 * Rule: a reading fires when its value is below `min` or above `max`; each bound defaults to
 * the metric's declared plausible range (`MetricSpec.min` / `max`). A metric with neither bound
 * gets no detector. Each reading outside reports an active finding; the first reading back
 * inside reports `active: false`.
 *
 * Score: 1 + distance outside ÷ scale, through `scoreForRatio` (scale = max − min when both are
 * known, else |bound|, else 1): 0.5 just outside, 0.75 one range-width outside.
 *
 * @example
 * { type: 'out_of_range', metrics: ['voltage'], params: { min: 207, max: 253 } }
 */
export const outOfRangeParams = Type.Object({
  min: Type.Optional(Type.Number({ description: 'Lowest plausible value (default: the metric spec).' })),
  max: Type.Optional(Type.Number({ description: 'Highest plausible value (default: the metric spec).' })),
});
export type OutOfRangeParams = Static<typeof outOfRangeParams>;

export interface OutOfRangeState {
  active: number;
  since: number;
}

export class OutOfRangeDetector implements Detector<OutOfRangeState> {
  readonly type = 'out_of_range';
  readonly alertType: string;
  readonly metric: string;
  private readonly index: number;
  private readonly min: number;
  private readonly max: number;
  private readonly scale: number;

  constructor(alertType: string, metric: string, index: number, min: number | undefined, max: number | undefined) {
    this.alertType = alertType;
    this.metric = metric;
    this.index = index;
    this.min = min ?? Number.NEGATIVE_INFINITY;
    this.max = max ?? Number.POSITIVE_INFINITY;
    if (min !== undefined && max !== undefined && max > min) this.scale = max - min;
    else this.scale = Math.abs(min ?? max ?? 1) || 1;
  }

  createState(): OutOfRangeState {
    return { active: 0, since: 0 };
  }

  onReading(state: OutOfRangeState, reading: Reading, ctx: DetectorContext): number {
    const x = reading.values[this.index];
    if (x === undefined || !Number.isFinite(x)) return 0;
    const t = reading.time;
    const outside = x < this.min ? this.min - x : x > this.max ? x - this.max : 0;
    if (outside > 0) {
      if (state.active === 0) {
        state.active = 1;
        state.since = t;
      }
      const score = scoreForRatio(1 + outside / this.scale);
      const below = x < this.min;
      const explain =
        `${this.metric} ${formatNumber(x)} is ${below ? 'below the minimum' : 'above the maximum'} ${formatNumber(below ? this.min : this.max)} ` +
        `of its plausible range ${this.rangeText()} by ${formatNumber(outside)}` +
        (t > state.since ? `; outside for ${formatDuration(t - state.since)}` : '');
      ctx.report({ time: t, score, value: x, baseline: undefined, threshold: below ? this.min : this.max, explain, metric: this.metric, active: true });
      return score;
    }
    if (state.active === 1) {
      state.active = 0;
      const explain = `${this.metric} ${formatNumber(x)} is back inside its plausible range ${this.rangeText()} after ${formatDuration(t - state.since)}`;
      ctx.report({ time: t, score: 0, value: x, baseline: undefined, threshold: undefined, explain, metric: this.metric, active: false });
    }
    return 0;
  }

  private rangeText(): string {
    return `${Number.isFinite(this.min) ? formatNumber(this.min) : '−∞'}…${Number.isFinite(this.max) ? formatNumber(this.max) : '∞'}`;
  }
}

/**
 * Builds one out_of_range detector per metric of the spec that has a bound (from the params or
 * the metric spec).
 *
 * @example
 * createOutOfRangeDetectors({ type: 'out_of_range', metrics: ['voltage'], params: { min: 207, max: 253 }, alertType: undefined, enabled: true }, power);
 */
export function createOutOfRangeDetectors(spec: DetectorSpec, schema: StreamSchema): OutOfRangeDetector[] {
  const p = resolveParams(outOfRangeParams, spec.params);
  const out: OutOfRangeDetector[] = [];
  for (const m of selectMetrics(spec, schema)) {
    const min = p.min ?? m.spec.min;
    const max = p.max ?? m.spec.max;
    if (min === undefined && max === undefined) continue;
    out.push(new OutOfRangeDetector(spec.alertType ?? 'out_of_range', m.name, m.index, min, max));
  }
  return out;
}
