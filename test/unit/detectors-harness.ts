// Test harness for the detector tests: hand-built stream schemas, a fake DetectorContext that
// records what detectors report, a seeded PRNG and synthetic load curves. Not a test file itself.
import type { Aggregate, Detector, DetectorContext, DetectorSpec, FindingInput, MetricSpec, OpsEvent, Reading, StreamSchema } from '../../src/model/index.js';
import { STATS_PER_METRIC, STAT_NAMES } from '../../src/model/index.js';

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;
/** Monday 2025-01-06 00:00 UTC. */
export const MONDAY = Date.UTC(2025, 0, 6);

function metric(name: string, extra: Partial<MetricSpec> = {}): MetricSpec {
  return { name, field: name, kind: 'gauge', min: undefined, max: undefined, unit: undefined, ...extra };
}

export function spec(type: string, params: Record<string, unknown> = {}, metrics: string[] = [], alertType?: string): DetectorSpec {
  return { type, metrics, params, alertType, enabled: true };
}

export function schemaOf(name: string, metrics: MetricSpec[], detectors: DetectorSpec[] = [], extra: Partial<StreamSchema> = {}): StreamSchema {
  const metricIndex: Record<string, number> = {};
  metrics.forEach((m, i) => (metricIndex[m.name] = i));
  return {
    name,
    keyField: 'id',
    siteField: undefined,
    timeField: 'timestamp',
    timeFormat: 'auto',
    idField: undefined,
    metrics,
    metricIndex,
    powerMetricIndex: metricIndex.usageKw ?? -1,
    energyMetricIndex: -1,
    lateness: { outOfOrderMs: 120_000, allowedLatenessMs: 600_000, reportOutOfOrderOverMs: 500, maxFutureMs: DAY, idleTimeoutMs: 60_000 },
    expectedIntervalMs: undefined,
    gapGrace: 0.5,
    windows: [
      { name: '1m', sizeMs: MINUTE, slideMs: MINUTE },
      { name: '5m', sizeMs: 5 * MINUTE, slideMs: 5 * MINUTE },
      { name: '15m', sizeMs: 15 * MINUTE, slideMs: 15 * MINUTE },
      { name: '1m/15s', sizeMs: MINUTE, slideMs: 15_000 },
    ],
    detectors,
    alerts: { resolveAfterMs: 5 * MINUTE, minDurationMs: 0, cooldownMs: 10 * MINUTE },
    state: { ttlMs: 7 * DAY, maxKeysPerPartition: 100_000 },
    ...extra,
  };
}

export function powerSchema(detectors: DetectorSpec[] = [], extra: Partial<StreamSchema> = {}): StreamSchema {
  return schemaOf(
    'power',
    [metric('usageKw', { unit: 'kW' }), metric('voltage', { unit: 'V', min: 180, max: 260 }), metric('current', { unit: 'A' }), metric('pf', { min: 0, max: 1 })],
    detectors,
    extra,
  );
}

export function machineSchema(detectors: DetectorSpec[] = []): StreamSchema {
  return schemaOf(
    'machines',
    [metric('air_temp_k'), metric('process_temp_k'), metric('rpm'), metric('torque_nm'), metric('tool_wear_min')],
    detectors,
  );
}

/** A schema with one metric `x` (for generic tests on any numeric metric). */
export function singleSchema(detectors: DetectorSpec[] = []): StreamSchema {
  return schemaOf('generic', [metric('x')], detectors);
}

export interface Recorded extends FindingInput {
  detector: string;
}

/** A DetectorContext that records reports, ops events and the pending timer. */
export class FakeContext implements DetectorContext {
  readonly schema: StreamSchema;
  readonly key = 'dev-1';
  readonly site = undefined;
  watermark = Number.NEGATIVE_INFINITY;
  intervalMs = Number.NaN;
  timer = Number.NaN;
  readonly findings: Recorded[] = [];
  readonly opsEvents: OpsEvent[] = [];
  current = '';

  constructor(schema: StreamSchema) {
    this.schema = schema;
  }
  report(finding: FindingInput): void {
    this.findings.push({ ...finding, detector: this.current });
  }
  ops(event: OpsEvent): void {
    this.opsEvents.push(event);
  }
  setTimer(time: number): void {
    this.timer = time;
  }
  active(): Recorded[] {
    return this.findings.filter((f) => f.active !== false);
  }
  cleared(): Recorded[] {
    return this.findings.filter((f) => f.active === false);
  }
}

export function reading(schema: StreamSchema, time: number, values: Record<string, number>): Reading {
  const array = new Float64Array(schema.metrics.length).fill(Number.NaN);
  for (const [name, value] of Object.entries(values)) {
    const index = schema.metricIndex[name];
    if (index !== undefined) array[index] = value;
  }
  return { stream: schema.name, key: 'dev-1', site: undefined, time, values: array, id: undefined, offset: 0 };
}

export interface Sample {
  time: number;
  values: Record<string, number>;
}

/**
 * Feeds samples to detectors with their own states (like the engine does for one device) and
 * returns the context (findings, ops) and the per-reading overall scores (max over detectors).
 */
export function run(schema: StreamSchema, detectors: Detector[], samples: Iterable<Sample>, ctx = new FakeContext(schema), states = detectors.map((d) => d.createState())): { ctx: FakeContext; scores: number[]; states: unknown[] } {
  const scores: number[] = [];
  for (const sample of samples) {
    const r = reading(schema, sample.time, sample.values);
    let best = 0;
    detectors.forEach((d, i) => {
      ctx.current = `${d.type}:${d.metric ?? '*'}`;
      const s = d.onReading(states[i], r, ctx);
      if (!(s >= 0 && s <= 1)) throw new Error(`${d.type} returned score ${s}`);
      if (s > best) best = s;
    });
    scores.push(best);
  }
  return { ctx, scores, states };
}

/** An aggregate for a window with one statistic set per metric (others NaN). */
export function aggregate(schema: StreamSchema, window: string, start: number, end: number, stats: Record<string, Partial<Record<(typeof STAT_NAMES)[number], number>>>, revision = 0): Aggregate {
  const array = new Float64Array(schema.metrics.length * STATS_PER_METRIC).fill(Number.NaN);
  for (const [name, byStat] of Object.entries(stats)) {
    const m = schema.metricIndex[name]!;
    for (const [stat, value] of Object.entries(byStat)) {
      array[m * STATS_PER_METRIC + STAT_NAMES.indexOf(stat as (typeof STAT_NAMES)[number])] = value;
    }
  }
  return { stream: schema.name, key: 'dev-1', site: undefined, window, start, end, revision, count: 1, metrics: schema.metrics.map((m) => m.name), stats: array, energyKwh: null };
}

/** Seeded PRNG (mulberry32) with a Gaussian helper. */
export function prng(seed: number): { next(): number; gaussian(): number } {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    gaussian() {
      const u = Math.max(next(), 1e-12);
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
    },
  };
}

/** Constant level with Gaussian noise of `noise` (relative). */
export function* constantWithNoise(start: number, count: number, stepMs: number, level: number, noise: number, seed = 1, name = 'x'): Generator<Sample> {
  const random = prng(seed);
  for (let i = 0; i < count; i++) yield { time: start + i * stepMs, values: { [name]: level * (1 + noise * random.gaussian()) } };
}

function smoothstep(from: number, to: number, t: number): number {
  if (t <= from) return 0;
  if (t >= to) return 1;
  const x = (t - from) / (to - from);
  return x * x * (3 - 2 * x);
}

/**
 * A realistic building load (kW) by UTC time of day: night base 1.5, a weekday morning ramp
 * over an hour to 3.5, a midday plateau at 2.2, an evening ramp over 45 minutes to a 4.2 peak,
 * and a ramp down over an hour; weekends ramp an hour and a half later, sit higher at midday
 * and peak lower. Each day is scaled by 0.9–1.1 (changing smoothly) and shifted by up to ±20
 * minutes, and every reading carries `noise` relative Gaussian noise.
 */
export function* dailyLoad(start: number, days: number, stepMs: number, noise = 0.03, seed = 7): Generator<Sample> {
  const random = prng(seed);
  const dayScale: number[] = [];
  const dayShift: number[] = [];
  for (let d = 0; d <= days + 1; d++) {
    dayScale.push(0.9 + 0.2 * random.next());
    dayShift.push((random.next() - 0.5) * 40 * MINUTE);
  }
  for (let t = start; t < start + days * DAY; t += stepMs) {
    const d = Math.floor((t - start) / DAY);
    const fraction = (t - start - d * DAY) / DAY;
    const scale = dayScale[d]! + fraction * (dayScale[d + 1]! - dayScale[d]!);
    const weekday = new Date(t).getUTCDay();
    const weekend = weekday === 0 || weekday === 6;
    const h = (((t % DAY) + DAY - dayShift[d]!) % DAY) / HOUR;
    let level = 1.5;
    if (weekend) {
      level += smoothstep(8, 9, h) * (3.0 - level);
      level += smoothstep(10, 11, h) * (2.8 - level);
      level += smoothstep(17.5, 18.25, h) * (3.8 - level);
    } else {
      level += smoothstep(6.5, 7.5, h) * (3.5 - level);
      level += smoothstep(8.5, 9.5, h) * (2.2 - level);
      level += smoothstep(17, 17.75, h) * (4.2 - level);
    }
    level += smoothstep(21.5, 22.5, h) * (1.5 - level);
    const value = level * scale * (1 + noise * random.gaussian());
    yield { time: t, values: { usageKw: value, x: value } };
  }
}
