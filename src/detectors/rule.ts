import { Type, type Static } from '@sinclair/typebox';
import { STATS_PER_METRIC, type Aggregate, type Detector, type DetectorContext, type DetectorSpec, type Reading, type StreamSchema } from '../model/index.js';
import { formatDuration, formatNumber, formatTime } from './common.js';
import { DurationParam, parseDuration, resolveParams } from './params.js';
import { compileRule, type CompiledRule } from './rule-parser.js';

/**
 * Parameters of `rule`: a composite condition over the reading's values and the device's window
 * aggregates, e.g. `avg(torque_nm, 1m) > 65` (language: see rule-parser.ts).
 *
 * Rule: `when` is evaluated on each reading and on each window emission of the device; a
 * window term uses the latest emitted aggregate (by window start, amendments included) of that
 * window. Once `when` has held on every evaluation for `for`, each evaluation where it holds
 * reports an active finding; the first evaluation where it does not hold reports
 * `active: false`. An evaluation whose values are absent (unknown) changes nothing. Findings
 * carry the spec's `alertType` (the rule's name; default `rule`), the fixed `score` (a rule is
 * a yes/no condition), as value and threshold the two sides of a top-level comparison, and an
 * explanation listing every value the rule read.
 *
 * @example
 * { type: 'rule', alertType: 'overstrain', params: { when: 'avg(torque_nm, 1m) > 65', for: '30s' } }
 */
export const ruleParams = Type.Object({
  when: Type.String({ minLength: 1, description: 'The condition, e.g. "avg(torque_nm, 1m) > 65".', expected: 'a condition like "avg(torque_nm, 1m) > 65"' }),
  for: DurationParam('0s', 'How long the condition must hold before it is reported.'),
  score: Type.Number({ minimum: 0, maximum: 1, default: 0.7, description: 'Score of the findings (0.7 = warning, 0.8 and up = critical).' }),
});
export type RuleParams = Static<typeof ruleParams>;

export interface RuleState {
  /** Latest value of each metric the rule reads, and whether it is known (1) — NaN is kept out of the JSON state. */
  current: number[];
  currentKnown: number[];
  /** Per window term: latest value, whether it is known, whether any window was seen, and the span of the aggregate it came from. */
  windowValues: number[];
  windowKnown: number[];
  windowSeen: number[];
  windowStart: number[];
  windowEnd: number[];
  /** Event time of the device's latest reading. */
  time: number;
  /** Time the condition started to hold, or -1. */
  holdSince: number;
  active: number;
}

export class RuleDetector implements Detector<RuleState> {
  readonly type = 'rule';
  readonly alertType: string;
  readonly metric: string | undefined;
  readonly rule: CompiledRule;
  private readonly forMs: number;
  private readonly score: number;
  private readonly metricScratch: Float64Array;
  private readonly windowScratch: Float64Array;

  constructor(alertType: string, schema: StreamSchema, p: RuleParams) {
    this.alertType = alertType;
    this.rule = compileRule(p.when, schema);
    this.forMs = parseDuration(p.for);
    this.score = p.score;
    this.metric = this.rule.metricNames.length === 1 && this.rule.terms.every((t) => t.metric === this.rule.metricNames[0])
      ? this.rule.metricNames[0]
      : this.rule.metricNames.length === 0 && this.rule.terms.length > 0 && this.rule.terms.every((t) => t.metric === this.rule.terms[0]!.metric)
        ? this.rule.terms[0]!.metric
        : undefined;
    this.metricScratch = new Float64Array(schema.metrics.length).fill(Number.NaN);
    this.windowScratch = new Float64Array(this.rule.terms.length).fill(Number.NaN);
  }

  createState(): RuleState {
    const metrics = this.rule.metrics.length;
    const terms = this.rule.terms.length;
    return {
      current: new Array<number>(metrics).fill(0),
      currentKnown: new Array<number>(metrics).fill(0),
      windowValues: new Array<number>(terms).fill(0),
      windowKnown: new Array<number>(terms).fill(0),
      windowSeen: new Array<number>(terms).fill(0),
      windowStart: new Array<number>(terms).fill(0),
      windowEnd: new Array<number>(terms).fill(0),
      time: 0,
      holdSince: -1,
      active: 0,
    };
  }

  onReading(state: RuleState, reading: Reading, ctx: DetectorContext): number {
    const metrics = this.rule.metrics;
    for (let i = 0; i < metrics.length; i++) {
      const x = reading.values[metrics[i]!];
      if (x !== undefined && Number.isFinite(x)) {
        state.current[i] = x;
        state.currentKnown[i] = 1;
      } else {
        state.current[i] = 0;
        state.currentKnown[i] = 0;
      }
    }
    state.time = reading.time;
    return this.evaluate(state, reading.time, ctx);
  }

  onWindow(state: RuleState, aggregate: Aggregate, ctx: DetectorContext): void {
    const terms = this.rule.terms;
    let changed = false;
    for (let j = 0; j < terms.length; j++) {
      const term = terms[j]!;
      if (term.window !== aggregate.window) continue;
      if (state.windowSeen[j] === 1 && aggregate.start < state.windowStart[j]!) continue; // an amendment of an older window
      const value = aggregate.stats[term.metricIndex * STATS_PER_METRIC + term.statIndex];
      const known = value !== undefined && Number.isFinite(value);
      // A window without a value of the metric is still the latest window: its statistic is unknown.
      state.windowValues[j] = known ? value : 0;
      state.windowKnown[j] = known ? 1 : 0;
      state.windowSeen[j] = 1;
      state.windowStart[j] = aggregate.start;
      state.windowEnd[j] = aggregate.end;
      changed = true;
    }
    if (changed) this.evaluate(state, Math.max(aggregate.end, state.time), ctx);
  }

  private fill(state: RuleState): void {
    const metrics = this.rule.metrics;
    for (let i = 0; i < metrics.length; i++) {
      this.metricScratch[metrics[i]!] = state.currentKnown[i] === 1 ? state.current[i]! : Number.NaN;
    }
    const windows = this.windowScratch;
    for (let j = 0; j < windows.length; j++) {
      windows[j] = state.windowKnown[j] === 1 ? state.windowValues[j]! : Number.NaN;
    }
  }

  private evaluate(state: RuleState, t: number, ctx: DetectorContext): number {
    this.fill(state);
    this.rule.run(this.metricScratch, this.windowScratch);
    const holds = this.rule.registers[this.rule.result]!;
    if (holds !== holds) return 0; // unknown: nothing changes
    if (holds === 1) {
      if (state.holdSince < 0) state.holdSince = t;
      if (t - state.holdSince < this.forMs) return 0;
      state.active = 1;
      this.report(state, t, true, ctx);
      return this.score;
    }
    if (state.active === 1) {
      state.active = 0;
      this.report(state, t, false, ctx);
    }
    state.holdSince = -1;
    return 0;
  }

  private report(state: RuleState, t: number, active: boolean, ctx: DetectorContext): void {
    const m = this.metricScratch;
    const w = this.windowScratch;
    const registers = this.rule.registers;
    const left = this.rule.left !== undefined ? registers[this.rule.left]! : active ? 1 : 0;
    const right = this.rule.right !== undefined ? registers[this.rule.right] : undefined;
    const values: string[] = this.rule.metricNames.map((name, i) => `${name} = ${formatNumber(m[this.rule.metrics[i]!]!)}`);
    this.rule.terms.forEach((term, j) => {
      values.push(`${term.text} = ${formatNumber(w[j]!)} (window ending ${formatTime(state.windowEnd[j]!)})`);
    });
    const held = t - state.holdSince;
    const explain = active
      ? `rule ${this.alertType}: "${this.rule.text}" holds${held > 0 || this.forMs > 0 ? ` for ${formatDuration(held)} (for ${formatDuration(this.forMs)})` : ''}: ${values.join(', ')}`
      : `rule ${this.alertType}: "${this.rule.text}" no longer holds after ${formatDuration(held)}: ${values.join(', ')}`;
    ctx.report({
      time: t,
      score: active ? this.score : 0,
      value: Number.isFinite(left) ? left : Number.NaN,
      baseline: undefined,
      threshold: right !== undefined && Number.isFinite(right) ? right : undefined,
      explain,
      metric: this.metric,
      active,
    });
  }
}

/**
 * Builds the rule's detector (one per spec; the rule names its own metrics). Throws
 * `RuleSyntaxError` when the rule does not parse — `validateDetectorSpec` reports it first.
 *
 * @example
 * createRuleDetectors({ type: 'rule', metrics: [], params: { when: 'tool_wear_min > 200' }, alertType: 'tool_wear', enabled: true }, machines);
 */
export function createRuleDetectors(spec: DetectorSpec, schema: StreamSchema): RuleDetector[] {
  return [new RuleDetector(spec.alertType ?? 'rule', schema, resolveParams(ruleParams, spec.params))];
}
