import type { TObject } from '@sinclair/typebox';
import { GpError, type Detector, type DetectorSpec, type StreamSchema } from '../model/index.js';
import { dropParams, createDropDetectors } from './drop.js';
import { iqrParams, createIqrDetectors } from './iqr.js';
import { modelParams, createModelDetectors, checkModelSpec } from './model.js';
import { outOfRangeParams, createOutOfRangeDetectors } from './out-of-range.js';
import { outageParams, createOutageDetectors } from './outage.js';
import { describeValue, parseDuration, resolveParams, validateParams, type SpecIssue } from './params.js';
import { physicsParams, createPhysicsDetectors } from './physics.js';
import { ruleParams, createRuleDetectors } from './rule.js';
import { compileRule, RuleSyntaxError } from './rule-parser.js';
import { seasonalParams, createSeasonalDetectors } from './seasonal.js';
import { DAY_MS } from './seasonal-profile.js';
import { silenceParams, createSilenceDetectors } from './silence.js';
import { spikeParams, createSpikeDetectors } from './spike.js';
import { sustainedHighParams, createSustainedHighDetectors } from './sustained-high.js';
import { zscoreParams, createZscoreDetectors } from './zscore.js';

/**
 * One kind of detector: its registry name, its parameter schema (with defaults), whether it
 * runs per metric, and its factory. Registered once, here or by `registerDetector`.
 */
export interface DetectorDefinition {
  readonly type: string;
  readonly params: TObject;
  /** Per-metric detectors take `metrics` (empty = every gauge/derived metric); whole-reading ones ignore it. */
  readonly perMetric: boolean;
  readonly create: (spec: DetectorSpec, schema: StreamSchema) => Detector[];
  /** Checks beyond the parameter schema (e.g. rule syntax), with JSON-pointer paths under `path`. */
  readonly check?: (spec: DetectorSpec, schema: StreamSchema, path: string) => SpecIssue[];
}

const definitions = new Map<string, DetectorDefinition>();

/**
 * Adds a detector kind to the registry (used by the built-in detectors below and by modules
 * above detectors, e.g. a trained model's score). A type can be registered once.
 *
 * @example
 * registerDetector({ type: 'model', params: Type.Object({}), perMetric: false, create: createModelDetectors });
 */
export function registerDetector(definition: DetectorDefinition): void {
  if (definitions.has(definition.type)) {
    throw new GpError('GP_INTERNAL', `detector type "${definition.type}" is already registered`, { type: definition.type });
  }
  definitions.set(definition.type, definition);
}

function checkProfileSlot(spec: DetectorSpec, _schema: StreamSchema, path: string): SpecIssue[] {
  const slot = parseDuration(spec.params.slot ?? '15m');
  if (Number.isFinite(slot) && (slot < 60_000 || DAY_MS % slot !== 0)) {
    return [{ path: `${path}/params/slot`, message: `expected a slot of at least 1m that divides a day (e.g. "15m", "30m", "1h"), got ${describeValue(spec.params.slot)}` }];
  }
  return [];
}

function checkRule(spec: DetectorSpec, schema: StreamSchema, path: string): SpecIssue[] {
  const when = spec.params.when;
  if (typeof when !== 'string' || when.length === 0) return [];
  try {
    compileRule(when, schema);
    return [];
  } catch (error) {
    if (error instanceof RuleSyntaxError) return [{ path: `${path}/params/when`, message: `${error.message} in "${when}"` }];
    throw error;
  }
}

function checkRange(spec: DetectorSpec, schema: StreamSchema, path: string): SpecIssue[] {
  const p = resolveParams(outOfRangeParams, spec.params);
  const issues: SpecIssue[] = [];
  if (p.min !== undefined && p.max !== undefined && p.min > p.max) {
    issues.push({ path: `${path}/params/min`, message: `expected min ≤ max, got min ${p.min} and max ${p.max}` });
  }
  spec.metrics.forEach((name, i) => {
    const index = schema.metricIndex[name];
    const metric = index === undefined ? undefined : schema.metrics[index];
    if (metric && p.min === undefined && p.max === undefined && metric.min === undefined && metric.max === undefined) {
      issues.push({ path: `${path}/metrics/${i}`, message: `metric "${name}" declares no min or max; set them on the metric or as params min/max` });
    }
  });
  return issues;
}

function checkPhysics(spec: DetectorSpec, schema: StreamSchema, path: string): SpecIssue[] {
  const issues: SpecIssue[] = [];
  for (const name of ['kw', 'voltage', 'current', 'pf', 'torque', 'rpm', 'processTemp', 'airTemp']) {
    const given = spec.params[name];
    if (typeof given === 'string' && schema.metricIndex[given] === undefined) {
      issues.push({ path: `${path}/params/${name}`, message: `unknown metric "${given}"; the stream has ${schema.metrics.map((m) => m.name).join(', ')}` });
    }
  }
  return issues;
}

function checkSustainedHigh(spec: DetectorSpec, schema: StreamSchema, path: string): SpecIssue[] {
  return checkProfileSlot(spec, schema, path);
}

registerDetector({ type: 'spike', params: spikeParams, perMetric: true, create: createSpikeDetectors });
registerDetector({ type: 'drop', params: dropParams, perMetric: true, create: createDropDetectors });
registerDetector({ type: 'outage', params: outageParams, perMetric: true, create: createOutageDetectors });
registerDetector({ type: 'sustained_high', params: sustainedHighParams, perMetric: true, create: createSustainedHighDetectors, check: checkSustainedHigh });
registerDetector({ type: 'silence', params: silenceParams, perMetric: false, create: createSilenceDetectors });
registerDetector({ type: 'zscore', params: zscoreParams, perMetric: true, create: createZscoreDetectors });
registerDetector({ type: 'iqr', params: iqrParams, perMetric: true, create: createIqrDetectors });
registerDetector({ type: 'seasonal', params: seasonalParams, perMetric: true, create: createSeasonalDetectors, check: checkProfileSlot });
registerDetector({ type: 'out_of_range', params: outOfRangeParams, perMetric: true, create: createOutOfRangeDetectors, check: checkRange });
registerDetector({ type: 'physics', params: physicsParams, perMetric: false, create: createPhysicsDetectors, check: checkPhysics });
registerDetector({ type: 'rule', params: ruleParams, perMetric: false, create: createRuleDetectors, check: checkRule });
registerDetector({ type: 'model', params: modelParams, perMetric: false, create: createModelDetectors, check: checkModelSpec });

/**
 * Registry names of every detector kind, in registration order.
 *
 * @example
 * detectorTypes(); // ['spike', 'drop', 'outage', 'sustained_high', 'silence', 'zscore', 'iqr', 'seasonal', 'out_of_range', 'physics', 'rule', 'model']
 */
export function detectorTypes(): string[] {
  return [...definitions.keys()];
}

/** The definition of a detector kind (parameter schema with defaults, factory), if registered. */
export function detectorDefinition(type: string): DetectorDefinition | undefined {
  return definitions.get(type);
}

/**
 * A spec's parameters merged with its detector's defaults (unknown types: as given).
 *
 * @example
 * resolveDetectorParams({ type: 'spike', metrics: [], params: { threshold: 0.5 }, alertType: undefined, enabled: true }).halfLife; // '30m'
 */
export function resolveDetectorParams(spec: Pick<DetectorSpec, 'type' | 'params'>): Record<string, unknown> {
  const definition = definitions.get(spec.type);
  return definition ? resolveParams(definition.params, spec.params) : { ...spec.params };
}

/**
 * Everything wrong with one detector spec of a stream, as JSON-pointer paths under `path`
 * (e.g. `/streams/power/detectors/2`) and messages that say what was expected and what was
 * got. Empty when the spec is good. Checks the type, the metrics, every parameter and, for
 * rules, the syntax of `when` (with the position of the error).
 *
 * @example
 * validateDetectorSpec({ type: 'spike', metrics: [], params: { threshold: 'abc' }, alertType: undefined, enabled: true }, power, '/streams/power/detectors/0');
 * // [{ path: '/streams/power/detectors/0/params/threshold', message: 'expected number ≥ 0, got "abc"' }]
 */
export function validateDetectorSpec(spec: DetectorSpec, schema: StreamSchema, path: string): SpecIssue[] {
  const definition = typeof spec.type === 'string' ? definitions.get(spec.type) : undefined;
  if (!definition) {
    return [{ path: `${path}/type`, message: `unknown detector type ${describeValue(spec.type)}; expected one of: ${detectorTypes().join(', ')}` }];
  }
  const issues: SpecIssue[] = [];
  const metrics: unknown = spec.metrics;
  if (!Array.isArray(metrics)) {
    issues.push({ path: `${path}/metrics`, message: `expected a list of metric names, got ${describeValue(metrics)}` });
  } else if (!definition.perMetric && metrics.length > 0) {
    issues.push({ path: `${path}/metrics`, message: `${spec.type} works on whole readings and takes no metrics, got ${describeValue(metrics)}` });
  } else {
    metrics.forEach((name: unknown, i) => {
      if (typeof name !== 'string' || schema.metricIndex[name] === undefined) {
        issues.push({ path: `${path}/metrics/${i}`, message: `unknown metric ${describeValue(name)}; the stream has ${schema.metrics.map((m) => m.name).join(', ')}` });
      }
    });
  }
  const paramIssues = validateParams(definition.params, spec.params, `${path}/params`);
  issues.push(...paramIssues);
  if (paramIssues.length === 0 && issues.length === 0 && definition.check) issues.push(...definition.check(spec, schema, path));
  return issues;
}

/**
 * The detector instances of a stream: for each enabled spec, one per metric (per-metric kinds;
 * `metrics` empty = every gauge and derived-power metric) or one per stream (silence, physics,
 * rule); a detector that cannot apply to the stream yields none (physics without its metrics,
 * out_of_range on a metric without bounds). Throws `GP_CONFIG_INVALID` with every problem when a
 * spec is invalid.
 *
 * @example
 * const detectors = createDetectors(config.streams.power);
 * detectors.map((d) => `${d.type}:${d.metric ?? '*'}`); // ['spike:usageKw', ..., 'silence:*']
 */
export function createDetectors(schema: StreamSchema): Detector[] {
  const detectors: Detector[] = [];
  const problems: SpecIssue[] = [];
  schema.detectors.forEach((spec, i) => {
    if (!spec.enabled) return;
    const issues = validateDetectorSpec(spec, schema, `/streams/${schema.name}/detectors/${i}`);
    if (issues.length > 0) {
      problems.push(...issues);
      return;
    }
    detectors.push(...definitions.get(spec.type)!.create(spec, schema));
  });
  if (problems.length > 0) {
    throw new GpError('GP_CONFIG_INVALID', problems.map((p) => `${p.path}: ${p.message}`).join('\n'), { issues: problems });
  }
  return detectors;
}

/**
 * The overall anomaly score of a reading: the maximum of the scores its detectors returned
 * (NaN ignored, clamped to [0, 1]; 0 with no scores). A reading is as anomalous as the most
 * certain detector says, so adding a quiet detector never lowers it.
 *
 * @example
 * combineScores([0.1, 0.75, 0]); // 0.75
 */
export function combineScores(scores: ArrayLike<number>): number {
  let best = 0;
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i]!;
    if (s > best) best = s;
  }
  return best > 1 ? 1 : best;
}
