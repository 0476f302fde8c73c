import { Type, type Static } from '@sinclair/typebox';
import type { Detector, DetectorContext, DetectorSpec, Reading, StreamSchema } from '../model/index.js';
import { formatDuration, formatNumber } from './common.js';
import {
  FeatureComputer,
  contributions,
  mapInputs,
  readModelFile,
  scoreTrees,
  topFeatures,
  type ModelFile,
  type RollingState,
} from './model-scoring.js';
import { resolveParams, type SpecIssue } from './params.js';

/**
 * Parameters of `model`: a trained model's score per reading. One detector per stream (whole
 * readings). The model file is read once when the detector is created (from `gridpulse train`;
 * a relative path is taken from the working directory). Each reading's inputs are taken from the
 * stream's metrics (`inputs` maps a model input to a metric; unmapped inputs match a metric of the
 * same name, else of the same machine role — AI4I's "Torque [Nm]" reads `torque_nm`), the
 * model's features are computed (rolling ones over the device's recent readings), and the score
 * is compared with `threshold`.
 *
 * A reading whose score reaches the threshold raises a finding with the score itself as its score
 * (a probability: ≥ 0.8 is critical), and an `explain` naming the `top` features that pushed the
 * score up most, with their values; the finding clears (`active: false`) once a reading scores
 * below the threshold again. ONNX models are not scored here: onnxruntime answers asynchronously
 * and a detector must answer each reading at once — serve them with `POST /v1/infer`.
 *
 * @example
 * { type: 'model', params: { path: 'models/gbdt-20250101T000000Z.json', threshold: 0.7 } }
 */
export const modelParams = Type.Object({
  path: Type.String({ minLength: 1, expected: 'the path of a model file written by gridpulse train', description: 'Model file (JSON) written by `gridpulse train`.' }),
  threshold: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: "Score at which a reading raises a finding (default: the model file's threshold, 0.7 unless trained with another)." })),
  inputs: Type.Record(Type.String(), Type.String({ minLength: 1 }), {
    default: {},
    expected: 'a mapping of model input name to stream metric name',
    description: 'Model input → stream metric, for inputs whose metric is not found by name or machine role.',
  }),
  top: Type.Integer({ minimum: 1, maximum: 10, default: 3, description: 'Contributing features named in explain.' }),
});
export type ModelParams = Static<typeof modelParams>;

export interface ModelState {
  /** 1 while a finding is reported. */
  active: number;
  since: number;
  rolling: RollingState;
}

export class ModelDetector implements Detector<ModelState> {
  readonly type = 'model';
  readonly alertType: string;
  readonly metric = undefined;
  readonly model: ModelFile;
  readonly threshold: number;
  private readonly top: number;
  private readonly computer: FeatureComputer;
  /** Stream metric index of each model input (−1: missing). */
  private readonly sources: number[];
  private readonly metricNames: string[];
  private readonly inputs: Float64Array;
  private readonly features: Float64Array;
  private readonly contribution: Float64Array;
  private readonly contributionUnit: string;

  constructor(alertType: string, schema: StreamSchema, model: ModelFile, p: ModelParams) {
    this.alertType = alertType;
    this.model = model;
    this.threshold = p.threshold ?? model.threshold;
    this.top = p.top;
    this.computer = new FeatureComputer(model);
    this.metricNames = schema.metrics.map((m) => m.name);
    this.sources = mapInputs(model, this.metricNames, p.inputs);
    this.inputs = new Float64Array(model.inputs.length);
    this.features = new Float64Array(model.features.length);
    this.contribution = new Float64Array(model.features.length);
    this.contributionUnit = model.kind === 'gbdt' ? 'contribution in log-odds' : model.kind === 'forest' ? 'contribution to the score' : 'isolating splits';
  }

  createState(): ModelState {
    return { active: 0, since: 0, rolling: this.computer.createRollingState() };
  }

  /** The model's score of one reading (updates the device's rolling history). */
  score(state: ModelState, reading: Reading): number {
    const values = reading.values;
    for (let i = 0; i < this.sources.length; i++) {
      const source = this.sources[i]!;
      this.inputs[i] = source >= 0 ? values[source]! : Number.NaN;
    }
    this.computer.compute(this.inputs, reading.time, state.rolling, this.features);
    return scoreTrees(this.model, this.features);
  }

  onReading(state: ModelState, reading: Reading, ctx: DetectorContext): number {
    const t = reading.time;
    const score = this.score(state, reading);
    if (score >= this.threshold) {
      if (state.active === 0) {
        state.active = 1;
        state.since = t;
      }
      contributions(this.model, this.features, this.contribution);
      const top = topFeatures(this.contribution, this.top);
      const evidence = top.map((i) => `${this.model.features[i]!.name} = ${formatNumber(this.features[i]!)} (+${formatNumber(this.contribution[i]!)})`);
      const explain =
        `model ${this.model.kind} ${this.model.version}: failure score ${score.toFixed(3)} ≥ threshold ${this.threshold}` +
        (evidence.length > 0 ? `; top features ${evidence.join(', ')} (${this.contributionUnit})` : '') +
        (t > state.since ? `; for ${formatDuration(t - state.since)}` : '');
      ctx.report({ time: t, score, value: score, baseline: undefined, threshold: this.threshold, explain, metric: this.metricOf(top[0]), active: true });
      return score;
    }
    if (state.active === 1) {
      state.active = 0;
      const explain = `model ${this.model.kind} ${this.model.version}: failure score ${score.toFixed(3)} is below threshold ${this.threshold} again after ${formatDuration(t - state.since)}`;
      ctx.report({ time: t, score: 0, value: score, baseline: undefined, threshold: this.threshold, explain, active: false });
    }
    return 0;
  }

  /** The stream metric a feature reads directly, if it is a plain input. */
  private metricOf(feature: number | undefined): string | undefined {
    if (feature === undefined) return undefined;
    const spec = this.model.features[feature]!;
    if (spec.kind !== 'input') return undefined;
    const source = this.sources[this.model.inputs.findIndex((input) => input.name === spec.input)];
    return source === undefined || source < 0 ? undefined : this.metricNames[source];
  }
}

/**
 * Builds the stream's model detector (reads the model file).
 *
 * @example
 * createModelDetectors({ type: 'model', metrics: [], params: { path: 'models/m.json' }, alertType: undefined, enabled: true }, machines); // [ModelDetector]
 */
export function createModelDetectors(spec: DetectorSpec, schema: StreamSchema): ModelDetector[] {
  const p = resolveParams(modelParams, spec.params);
  return [new ModelDetector(spec.alertType ?? 'model', schema, readModelFile(p.path), p)];
}

/**
 * Checks beyond the parameter schema: the model file exists and is valid, is a tree model, and
 * each numeric input finds a metric of the stream.
 */
export function checkModelSpec(spec: DetectorSpec, schema: StreamSchema, path: string): SpecIssue[] {
  const p = resolveParams(modelParams, spec.params);
  let model: ModelFile;
  try {
    model = readModelFile(p.path);
  } catch (error) {
    return [{ path: `${path}/params/path`, message: (error as Error).message }];
  }
  if (model.kind === 'onnx') {
    return [{ path: `${path}/params/path`, message: `${p.path} is an ONNX model: the model detector scores tree models (gbdt, forest, isolation_forest); serve ONNX models with POST /v1/infer` }];
  }
  const metricNames = schema.metrics.map((m) => m.name);
  const issues: SpecIssue[] = [];
  for (const [input, metric] of Object.entries(p.inputs)) {
    if (!model.inputs.some((i) => i.name === input)) issues.push({ path: `${path}/params/inputs/${input}`, message: `unknown model input; the model has ${model.inputs.map((i) => i.name).join(', ')}` });
    else if (!metricNames.includes(metric)) issues.push({ path: `${path}/params/inputs/${input}`, message: `unknown metric "${metric}"; the stream has ${metricNames.join(', ')}` });
  }
  const sources = mapInputs(model, metricNames, p.inputs);
  model.inputs.forEach((input, i) => {
    if (sources[i]! < 0 && input.type === 'number') {
      issues.push({ path: `${path}/params/inputs`, message: `model input "${input.name}" matches no metric of the stream (${metricNames.join(', ')}); map it with inputs: { "${input.name}": <metric> }` });
    }
  });
  return issues;
}
