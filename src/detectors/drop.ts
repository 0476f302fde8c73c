import { Type, type Static } from '@sinclair/typebox';
import type { DetectorSpec, StreamSchema } from '../model/index.js';
import { BaselineShiftDetector } from './baseline-shift.js';
import { selectMetrics } from './common.js';
import { DurationParam, parseDuration, resolveParams } from './params.js';

/**
 * Parameters of `drop`.
 *
 * Rule: the mirror of `spike`. A reading fires when its value falls below the device's EWMA
 * baseline (half-life `halfLife`) by at least `threshold` (relative, 0.35 = −35%) AND by more
 * than `k` × the running mean absolute deviation, after `warmup` readings, and the fall was
 * sudden (at least `suddenness` of it since the reference reading, the latest reading at least
 * `onset` older), so an evening ramp-down is not a drop. The baseline is frozen while firing; a fall
 * that lasts `adoptAfter` becomes the new baseline. A value at or below `outageRatio` × the
 * baseline is an outage, not a drop: the outage detector takes precedence, and an ongoing drop
 * finding clears.
 *
 * Score: evidence = the smaller of (fall ÷ threshold) and (fall ÷ k·deviation); 0.5 at 1,
 * 0.75 at 2, critical from 2.5.
 *
 * @example
 * { type: 'drop', metrics: ['usageKw'], params: { threshold: 0.5 } }
 */
export const dropParams = Type.Object({
  threshold: Type.Number({ minimum: 0, maximum: 1, default: 0.35, description: 'Relative fall below the baseline that fires (0.35 = −35%).' }),
  halfLife: DurationParam('5m', 'Half-life of the EWMA baseline, in event time.'),
  k: Type.Number({ minimum: 0, default: 6, description: 'Noise guard: the fall must also exceed k × the running mean absolute deviation.' }),
  warmup: Type.Integer({ minimum: 1, default: 12, description: 'Readings learned before the first report.' }),
  onset: DurationParam('1m', 'Suddenness reference: the latest reading at least this much older than the current one.'),
  suddenness: Type.Number({ minimum: 0, maximum: 1, default: 0.75, description: 'Share of the fall that must have happened since the recent level (0 = any fall).' }),
  adoptAfter: DurationParam('1h', 'A fall reported this long is adopted as the new baseline.'),
  outageRatio: Type.Number({ minimum: 0, maximum: 1, default: 0.05, description: 'At or below this share of the baseline the value is an outage (outage detector), not a drop.' }),
});
export type DropParams = Static<typeof dropParams>;

/**
 * Builds one drop detector per metric of the spec.
 *
 * @example
 * const [detector] = createDropDetectors({ type: 'drop', metrics: ['usageKw'], params: {}, alertType: undefined, enabled: true }, power);
 */
export function createDropDetectors(spec: DetectorSpec, schema: StreamSchema): BaselineShiftDetector[] {
  const p = resolveParams(dropParams, spec.params);
  return selectMetrics(spec, schema).map(
    (metric) =>
      new BaselineShiftDetector({
        type: 'drop',
        alertType: spec.alertType ?? 'drop',
        metric: metric.name,
        index: metric.index,
        direction: -1,
        threshold: p.threshold,
        halfLifeMs: parseDuration(p.halfLife),
        k: p.k,
        warmup: p.warmup,
        onsetMs: parseDuration(p.onset),
        suddenness: p.suddenness,
        adoptAfterMs: parseDuration(p.adoptAfter),
        outageRatio: p.outageRatio,
      }),
  );
}
