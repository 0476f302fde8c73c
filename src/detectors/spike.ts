import { Type, type Static } from '@sinclair/typebox';
import type { DetectorSpec, StreamSchema } from '../model/index.js';
import { BaselineShiftDetector } from './baseline-shift.js';
import { selectMetrics } from './common.js';
import { DurationParam, parseDuration, resolveParams } from './params.js';

/**
 * Parameters of `spike`.
 *
 * Rule: a reading fires when its value rises over the device's EWMA baseline (half-life
 * `halfLife` of event time) by at least `threshold` (relative, 0.4 = +40%) AND by more than
 * `k` × the running mean absolute deviation of the metric (so a noisy or tiny metric does not
 * fire on its own noise), after `warmup` readings. The rise must also be sudden: at least
 * `suddenness` of it must have happened since the reference reading (the latest reading at
 * least `onset` older; the previous one for readings a minute or more apart) — a load ramping
 * up over half an hour is not a spike. While firing the baseline is
 * frozen, so the spike is not learned as normal; a rise that lasts `adoptAfter` is a new level
 * and becomes the baseline (the finding then clears). Values at or below `outageRatio` × the
 * baseline are left to the outage detector and not learned. A baseline unseen for 4 half-lives
 * restarts with a new warm-up. The defaults suit readings up to about 5 minutes apart: with
 * 15–30-minute readings a 45-minute ramp is one or two steps and looks sudden, so raise
 * `halfLife` or `k` for such streams.
 *
 * Score: evidence = the smaller of (rise ÷ threshold) and (rise ÷ k·deviation); score 0.5 at 1,
 * 0.75 at 2, critical (0.8) from 2.5 (see `scoreForRatio`).
 *
 * @example
 * { type: 'spike', metrics: ['usageKw'], params: { threshold: 0.5, halfLife: '1h' } }
 */
export const spikeParams = Type.Object({
  threshold: Type.Number({ minimum: 0, default: 0.4, description: 'Relative rise over the baseline that fires (0.4 = +40%).' }),
  halfLife: DurationParam('5m', 'Half-life of the EWMA baseline, in event time.'),
  k: Type.Number({ minimum: 0, default: 6, description: 'Noise guard: the rise must also exceed k × the running mean absolute deviation.' }),
  warmup: Type.Integer({ minimum: 1, default: 12, description: 'Readings learned before the first report.' }),
  onset: DurationParam('1m', 'Suddenness reference: the latest reading at least this much older than the current one.'),
  suddenness: Type.Number({ minimum: 0, maximum: 1, default: 0.75, description: 'Share of the rise that must have happened since the recent level (0 = any rise).' }),
  adoptAfter: DurationParam('1h', 'A rise reported this long is adopted as the new baseline.'),
  outageRatio: Type.Number({ minimum: 0, maximum: 1, default: 0.05, description: 'Values at or below this share of the baseline are outages: not judged, not learned.' }),
});
export type SpikeParams = Static<typeof spikeParams>;

/**
 * Builds one spike detector per metric of the spec.
 *
 * @example
 * const [detector] = createSpikeDetectors({ type: 'spike', metrics: ['usageKw'], params: {}, alertType: undefined, enabled: true }, power);
 */
export function createSpikeDetectors(spec: DetectorSpec, schema: StreamSchema): BaselineShiftDetector[] {
  const p = resolveParams(spikeParams, spec.params);
  return selectMetrics(spec, schema).map(
    (metric) =>
      new BaselineShiftDetector({
        type: 'spike',
        alertType: spec.alertType ?? 'spike',
        metric: metric.name,
        index: metric.index,
        direction: 1,
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
