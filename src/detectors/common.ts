import type { DetectorSpec, MetricSpec, StreamSchema } from '../model/index.js';

/** A metric a detector instance watches: its name, index into `Reading.values`, and spec. */
export interface SelectedMetric {
  name: string;
  index: number;
  spec: MetricSpec;
}

/**
 * The metrics a per-metric detector runs on: the spec's list, or (when empty) every metric of
 * kind `gauge` or `derived-power`. Unknown names are skipped here; `validateDetectorSpec` reports them.
 *
 * @example
 * selectMetrics({ ...spec, metrics: [] }, power).map((m) => m.name); // ['usageKw', 'voltage', 'current', 'pf']
 */
export function selectMetrics(spec: DetectorSpec, schema: StreamSchema): SelectedMetric[] {
  const out: SelectedMetric[] = [];
  if (spec.metrics.length === 0) {
    schema.metrics.forEach((metric, index) => {
      if (metric.kind === 'gauge' || metric.kind === 'derived-power') out.push({ name: metric.name, index, spec: metric });
    });
    return out;
  }
  for (const name of spec.metrics) {
    const index = schema.metricIndex[name];
    const metric = index === undefined ? undefined : schema.metrics[index];
    if (index !== undefined && metric) out.push({ name, index, spec: metric });
  }
  return out;
}

/** Index of a metric by name, or -1 when the stream has none of that name. */
export function metricIndexOf(schema: StreamSchema, name: string): number {
  const index = schema.metricIndex[name];
  return index === undefined ? -1 : index;
}

/**
 * Weight of a new observation in an EWMA with a half-life in event time: after one half-life
 * the old estimate weighs one half. Zero for a non-positive step.
 */
export function ewmaWeight(stepMs: number, halfLifeMs: number): number {
  if (!(stepMs > 0)) return 0;
  if (!(halfLifeMs > 0)) return 1;
  return 1 - Math.exp((-stepMs * Math.LN2) / halfLifeMs);
}

/**
 * `ewmaWeight` for one half-life that remembers its last step: devices report at a steady
 * interval, so the same step comes again and again and the exp() is saved. A pure-function
 * memo (still deterministic); one per detector instance, whose mutable number fields are
 * updated in place (no allocation on the hot path).
 *
 * @example
 * const weight = new EwmaWeight(30 * 60_000);
 * weight.of(60_000); // ≈ 0.0228
 */
/** A per-device level and noise estimate, learned together (spike, drop, outage). */
export interface LevelAndNoise {
  /** Readings learned, up to the warm-up count. */
  n: number;
  /** EWMA baseline. */
  base: number;
  /** EWMA of |value − previous value|: noise that a ramp or a level long gone does not inflate. */
  deviation: number;
  previous: number;
}

/**
 * Learns one value into a level and its noise. During warm-up each weight is at least
 * 1/(readings + 1), so the first readings count as a plain mean.
 */
export function learnLevelAndNoise(state: LevelAndNoise, x: number, levelWeight: number, noiseWeight: number, warmup: number): void {
  let weight = levelWeight;
  let deviationWeight = noiseWeight;
  if (state.n < warmup) {
    const countWeight = 1 / (state.n + 1);
    if (countWeight > weight) weight = countWeight;
    if (countWeight > deviationWeight) deviationWeight = countWeight;
    state.n++;
  }
  state.deviation += deviationWeight * (Math.abs(x - state.previous) - state.deviation);
  state.previous = x;
  state.base += weight * (x - state.base);
}

/** Half-life of a share of a device's readings (outage: at its floor; sustained_high: in high runs): a day, so a daily pattern counts whole. */
export const SHARE_HALF_LIFE_MS = 86_400_000;
const SHARE_SEEN_CAP = 1_000_000;

/**
 * Counts one reading in a share — the share (0–1) of a device's readings that meet some
 * condition, kept as two numbers of `v`: the share at `at`, the readings counted (capped) at
 * `at + 1` — `hit` 1 when it meets the condition, 0 when not: an EWMA with the given
 * weight, except that each reading weighs at least as in a plain mean of those counted so far, so
 * the share is sound from the first reading on.
 */
export function countInShare(v: number[], at: number, hit: number, weight: number): void {
  const seen = v[at + 1]!;
  const share = v[at]!;
  const countWeight = 1 / (seen + 1);
  v[at] = share + (weight > countWeight ? weight : countWeight) * (hit - share);
  if (countWeight >= weight && seen < SHARE_SEEN_CAP) v[at + 1] = seen + 1;
}

export class EwmaWeight {
  readonly halfLifeMs: number;
  private lastStep = Number.NaN;
  private lastWeight = 0.5;

  constructor(halfLifeMs: number) {
    this.halfLifeMs = halfLifeMs;
  }

  of(stepMs: number): number {
    if (stepMs === this.lastStep) return this.lastWeight;
    const weight = ewmaWeight(stepMs, this.halfLifeMs);
    this.lastStep = stepMs;
    this.lastWeight = weight;
    return weight;
  }
}

/**
 * Maps evidence to a score. `ratio` is the evidence divided by its threshold (1 = just at the
 * threshold). Below 1 the score is `0.5 × ratio` (under 0.5: no finding); at or above 1 it is
 * `1 − 0.5 / ratio`: 0.5 at the threshold, 0.75 at twice it, 0.8 (critical) at 2.5 times it,
 * approaching 1 beyond.
 *
 * @example
 * scoreForRatio(2); // 0.75
 */
export function scoreForRatio(ratio: number): number {
  if (!(ratio > 0)) return 0;
  if (ratio < 1) return 0.5 * ratio;
  if (ratio === Number.POSITIVE_INFINITY) return 1;
  return 1 - 0.5 / ratio;
}

/** A number for an explanation: integers as they are, others with 3 significant digits (2 decimals from 1 up). */
export function formatNumber(x: number): string {
  if (Number.isNaN(x)) return 'n/a';
  if (!Number.isFinite(x)) return x > 0 ? '∞' : '−∞';
  const magnitude = Math.abs(x);
  let text: string;
  if (Number.isInteger(x) && magnitude < 1e9) text = String(x);
  else if (magnitude >= 1000) text = x.toFixed(0);
  else if (magnitude >= 100) text = x.toFixed(1);
  else if (magnitude >= 1) text = x.toFixed(2);
  else if (magnitude === 0) text = '0';
  else text = x.toPrecision(3);
  return text.replace('-', '−');
}

/** A relative change as a signed percentage: `+212%`, `−61%`. */
export function formatPercent(fraction: number): string {
  if (!Number.isFinite(fraction)) return fraction > 0 ? '+∞%' : '−∞%';
  const percent = Math.round(fraction * 100);
  return percent >= 0 ? `+${percent}%` : `−${-percent}%`;
}

/** A duration for an explanation: `45s`, `12m`, `1h30m`, `2d4h`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const totalSeconds = Math.round(ms / 1000);
  const days = Math.floor(totalSeconds / 86_400);
  const hours = Math.floor((totalSeconds % 86_400) / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = totalSeconds % 60;
  const parts: string[] = [];
  if (days) parts.push(`${days}d`);
  if (hours) parts.push(`${hours}h`);
  if (minutes) parts.push(`${minutes}m`);
  if (seconds || parts.length === 0) parts.push(`${seconds}s`);
  return parts.slice(0, 2).join('');
}

/** An event time for an explanation (ISO-8601, UTC). */
export function formatTime(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : 'n/a';
}

/**
 * An array of `length` zeros held as unboxed doubles (filled with a fraction first, so V8 gives it
 * double elements from the start instead of small integers it would convert on the first
 * fraction): detector state kept in one array instead of an object whose number fields would each
 * be a heap number of its own.
 */
export function doubles(length: number): number[] {
  return new Array<number>(length).fill(0.5).fill(0);
}
