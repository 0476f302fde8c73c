import { readFileSync, statSync } from 'node:fs';
import { GpError } from '../model/index.js';

/**
 * Model files of gridpulse and everything that scoring one needs: the file format, the feature
 * computation (shared by training in src/ml and by the `model` detector, so that a model sees the
 * same numbers live as when it was trained), tree inference and per-feature contributions.
 *
 * A model file is JSON (`format: "gridpulse-model"`, `formatVersion: 1`):
 * - `kind`: `gbdt` (gradient-boosted trees, logistic loss: score = sigmoid(baseScore + Σ leaves)),
 *   `forest` (random forest: score = mean leaf share of the failure class), `isolation_forest`
 *   (unsupervised: score = 2^(−mean path length / c(sampleSize))), or `onnx` (a user's ONNX graph,
 *   scored by src/ml only — onnxruntime is asynchronous).
 * - `inputs`: the raw columns the model reads (numbers, or categories coded by their index).
 * - `features`: how each model feature is computed from the inputs, in the order of the trees'
 *   feature indices: an input, a difference, a product (times a scale), or a rolling statistic of
 *   an input over the device's readings of the last `windowMs` (event time).
 * - `trees`: flat arrays per tree (node i: `feature[i]` −1 for a leaf, `threshold[i]`, `left[i]`,
 *   `right[i]`, `missingLeft[i]` 1 when a missing value goes left, `value[i]` the node's
 *   prediction, `size[i]` training rows at the node — isolation forests need it).
 * - `threshold`: the score at which a reading counts as a failure / alert.
 * - `metrics`, `training` (rows, positives, SHA-256 fingerprint of the training data, options),
 *   `version`, `createdAt`.
 */
export const MODEL_FILE_FORMAT = 'gridpulse-model';
export const MODEL_FILE_FORMAT_VERSION = 1;
export const MODEL_KINDS = ['gbdt', 'forest', 'isolation_forest', 'onnx'] as const;
export type ModelKind = (typeof MODEL_KINDS)[number];

/** A raw column of the training data that the model reads. */
export interface ModelInput {
  name: string;
  type: 'number' | 'category';
  /** Category values; a value is coded as its index here (an unknown one is missing). */
  categories?: string[];
}

export type RollingStatistic = 'rolling_mean' | 'rolling_std' | 'rolling_delta';
export const ROLLING_STATISTICS: readonly RollingStatistic[] = ['rolling_mean', 'rolling_std', 'rolling_delta'];

/** How one model feature is computed from the inputs (names refer to `ModelInput.name`). */
export type FeatureSpec =
  | { name: string; kind: 'input'; input: string }
  | { name: string; kind: 'difference'; a: string; b: string }
  | { name: string; kind: 'product'; a: string; b: string; scale: number }
  | { name: string; kind: RollingStatistic; input: string; windowMs: number };

/** One tree as flat arrays (see the format above). */
export interface TreeArrays {
  feature: number[];
  threshold: number[];
  left: number[];
  right: number[];
  missingLeft: number[];
  value: number[];
  size: number[];
}

export interface OnnxSpec {
  /** The .onnx file, relative to the model file. */
  file: string;
  /** Name of the graph input that takes a float tensor [rows, features]. */
  inputName: string;
  /** Name of the output to read (one score per row, or [rows, 2] class probabilities: the second column is taken). */
  outputName: string;
}

export interface ModelMetrics {
  /** How they were measured, e.g. "5-fold stratified cross-validation". */
  method: string;
  threshold: number;
  precision: number | null;
  recall: number | null;
  f1: number | null;
  rocAuc: number | null;
  averagePrecision: number | null;
  confusion: { tp: number; fp: number; tn: number; fn: number };
  /** Per fold, when cross-validated. */
  folds?: Array<{ precision: number | null; recall: number | null; f1: number | null; rocAuc: number | null }>;
}

export interface ModelTraining {
  source: string;
  rows: number;
  positives: number | null;
  /** SHA-256 (hex) of the training data as read (the file's bytes, or the rows taken from a store). */
  fingerprint: string;
  seconds: number;
  options: Record<string, unknown>;
}

export interface ModelFile {
  format: typeof MODEL_FILE_FORMAT;
  formatVersion: typeof MODEL_FILE_FORMAT_VERSION;
  kind: ModelKind;
  version: string;
  createdAt: string;
  /** Target column of supervised models (null for unsupervised ones). */
  target: string | null;
  inputs: ModelInput[];
  features: FeatureSpec[];
  threshold: number;
  trees: TreeArrays[];
  /** gbdt: starting margin (log-odds of the base rate). */
  baseScore: number;
  /** isolation_forest: rows per tree. */
  sampleSize: number;
  onnx?: OnnxSpec;
  metrics: ModelMetrics | null;
  training: ModelTraining | null;
}

// ---- reading a model file ----

type Checker = (ok: boolean, field: string, expected: string, got: unknown) => void;

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text === undefined ? typeof value : text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

/**
 * Checks a parsed model file and returns it typed. Throws `GP_INPUT_INVALID` naming the first
 * field that is wrong (`trees/3/left: expected ...`), prefixed by `source`.
 *
 * @example
 * const model = parseModelFile(JSON.parse(text), 'models/gbdt-1.json');
 */
export function parseModelFile(value: unknown, source: string): ModelFile {
  const fail: Checker = (ok, field, expected, got) => {
    if (!ok) throw new GpError('GP_INPUT_INVALID', `${source}: ${field}: expected ${expected}, got ${describe(got)}`, { field, path: source });
  };
  fail(value !== null && typeof value === 'object' && !Array.isArray(value), '/', 'a JSON object (a gridpulse model file)', value);
  const m = value as Record<string, unknown>;
  fail(m.format === MODEL_FILE_FORMAT, 'format', `"${MODEL_FILE_FORMAT}"`, m.format);
  fail(m.formatVersion === MODEL_FILE_FORMAT_VERSION, 'formatVersion', String(MODEL_FILE_FORMAT_VERSION), m.formatVersion);
  fail(typeof m.kind === 'string' && (MODEL_KINDS as readonly string[]).includes(m.kind), 'kind', MODEL_KINDS.join(', '), m.kind);
  fail(typeof m.version === 'string' && m.version.length > 0, 'version', 'a non-empty text', m.version);
  fail(typeof m.threshold === 'number' && m.threshold >= 0 && m.threshold <= 1, 'threshold', 'a number from 0 to 1', m.threshold);
  fail(Array.isArray(m.inputs) && m.inputs.length > 0, 'inputs', 'a non-empty list', m.inputs);
  const inputs = m.inputs as unknown[];
  const inputNames = new Set<string>();
  inputs.forEach((input, i) => {
    const x = input as Record<string, unknown> | null;
    fail(x !== null && typeof x === 'object' && typeof x.name === 'string', `inputs/${i}`, 'an object with a name', input);
    fail(x!.type === 'number' || x!.type === 'category', `inputs/${i}/type`, 'number or category', x!.type);
    if (x!.type === 'category') fail(Array.isArray(x!.categories) && x!.categories.every((c) => typeof c === 'string'), `inputs/${i}/categories`, 'a list of texts', x!.categories);
    inputNames.add(x!.name as string);
  });
  fail(Array.isArray(m.features) && m.features.length > 0, 'features', 'a non-empty list', m.features);
  (m.features as unknown[]).forEach((feature, i) => checkFeature(feature, i, inputNames, fail));
  const featureCount = (m.features as unknown[]).length;
  if (m.kind === 'onnx') {
    const o = m.onnx as Record<string, unknown> | undefined;
    fail(o !== undefined && o !== null && typeof o === 'object', 'onnx', 'an object { file, inputName, outputName }', o);
    for (const name of ['file', 'inputName', 'outputName']) fail(typeof o![name] === 'string' && (o![name]).length > 0, `onnx/${name}`, 'a non-empty text', o![name]);
  } else {
    fail(Array.isArray(m.trees) && m.trees.length > 0, 'trees', 'a non-empty list of trees', m.trees);
    (m.trees as unknown[]).forEach((tree, i) => checkTree(tree, i, featureCount, fail));
  }
  if (m.kind === 'gbdt') fail(typeof m.baseScore === 'number' && Number.isFinite(m.baseScore), 'baseScore', 'a finite number', m.baseScore);
  if (m.kind === 'isolation_forest') fail(typeof m.sampleSize === 'number' && m.sampleSize >= 2, 'sampleSize', 'a number ≥ 2', m.sampleSize);
  return {
    ...(m as unknown as ModelFile),
    target: typeof m.target === 'string' ? m.target : null,
    createdAt: typeof m.createdAt === 'string' ? m.createdAt : '',
    trees: (m.trees as TreeArrays[] | undefined) ?? [],
    baseScore: typeof m.baseScore === 'number' ? m.baseScore : 0,
    sampleSize: typeof m.sampleSize === 'number' ? m.sampleSize : 0,
    metrics: (m.metrics as ModelMetrics | null | undefined) ?? null,
    training: (m.training as ModelTraining | null | undefined) ?? null,
  };
}

function checkFeature(feature: unknown, i: number, inputs: Set<string>, fail: Checker): void {
  const at = `features/${i}`;
  const f = feature as Record<string, unknown> | null;
  fail(f !== null && typeof f === 'object' && typeof f.name === 'string', at, 'an object with a name', feature);
  const input = (field: string): void => fail(typeof f![field] === 'string' && inputs.has(f![field]), `${at}/${field}`, `one of the inputs (${[...inputs].join(', ')})`, f![field]);
  switch (f!.kind) {
    case 'input':
      input('input');
      break;
    case 'difference':
      input('a');
      input('b');
      break;
    case 'product':
      input('a');
      input('b');
      fail(typeof f!.scale === 'number' && Number.isFinite(f!.scale), `${at}/scale`, 'a finite number', f!.scale);
      break;
    case 'rolling_mean':
    case 'rolling_std':
    case 'rolling_delta':
      input('input');
      fail(typeof f!.windowMs === 'number' && f!.windowMs > 0, `${at}/windowMs`, 'a number of milliseconds > 0', f!.windowMs);
      break;
    default:
      fail(false, `${at}/kind`, 'input, difference, product, rolling_mean, rolling_std or rolling_delta', f!.kind);
  }
}

function checkTree(tree: unknown, i: number, featureCount: number, fail: Checker): void {
  const at = `trees/${i}`;
  const t = tree as Record<string, unknown> | null;
  fail(t !== null && typeof t === 'object', at, 'an object of node arrays', tree);
  const feature = t!.feature;
  fail(Array.isArray(feature) && feature.length > 0, `${at}/feature`, 'a non-empty list', feature);
  const nodes = (feature as unknown[]).length;
  for (const name of ['threshold', 'left', 'right', 'missingLeft', 'value', 'size']) {
    const list = t![name];
    fail(Array.isArray(list) && list.length === nodes && list.every((x) => typeof x === 'number'), `${at}/${name}`, `a list of ${nodes} numbers`, list);
  }
  const f = feature as number[];
  const left = t!.left as number[];
  const right = t!.right as number[];
  for (let n = 0; n < nodes; n++) {
    const k = f[n]!;
    fail(Number.isInteger(k) && k >= -1 && k < featureCount, `${at}/feature/${n}`, `-1 (leaf) or a feature index below ${featureCount}`, k);
    if (k >= 0) {
      // Children come after their parent, so inference always ends.
      fail(Number.isInteger(left[n]) && left[n]! > n && left[n]! < nodes, `${at}/left/${n}`, `a node index from ${n + 1} to ${nodes - 1}`, left[n]);
      fail(Number.isInteger(right[n]) && right[n]! > n && right[n]! < nodes, `${at}/right/${n}`, `a node index from ${n + 1} to ${nodes - 1}`, right[n]);
    }
  }
}

const cache = new Map<string, { mtimeMs: number; size: number; model: ModelFile }>();

/**
 * Reads and checks a model file (cached by path, size and modification time, so the detectors of
 * many partitions share one copy). Throws `GP_FILE_NOT_FOUND` or `GP_INPUT_INVALID`.
 *
 * @example
 * const model = readModelFile('models/gbdt-20250101T000000Z.json');
 */
export function readModelFile(path: string): ModelFile {
  let stats;
  try {
    stats = statSync(path);
  } catch (error) {
    throw new GpError('GP_FILE_NOT_FOUND', `${path}: no such model file`, { path, field: 'path' }, { cause: error });
  }
  const cached = cache.get(path);
  if (cached !== undefined && cached.mtimeMs === stats.mtimeMs && cached.size === stats.size) return cached.model;
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new GpError('GP_INPUT_INVALID', `${path}: expected a JSON model file, got text that is not JSON (${(error as Error).message})`, { path }, { cause: error });
  }
  const model = parseModelFile(value, path);
  cache.set(path, { mtimeMs: stats.mtimeMs, size: stats.size, model });
  return model;
}

// ---- machine roles: matching a model's inputs to a stream's metrics ----

/** What a machine column measures, recognised from its name (AI4I's and the machines stream's). */
export type MachineRole = 'airTemp' | 'processTemp' | 'rpm' | 'torque' | 'toolWear';
const ROLE_PATTERNS: ReadonlyArray<[MachineRole, RegExp]> = [
  ['airTemp', /air.?temp/i],
  ['processTemp', /process.?temp/i],
  ['rpm', /rpm|rotational.?speed/i],
  ['torque', /torque/i],
  ['toolWear', /tool.?wear/i],
];

/**
 * The machine role of a column name, if it has one.
 *
 * @example
 * machineRoleOf('Air temperature [K]'); // 'airTemp'
 * machineRoleOf('air_temp_k'); // 'airTemp'
 */
export function machineRoleOf(name: string): MachineRole | undefined {
  for (const [role, pattern] of ROLE_PATTERNS) if (pattern.test(name)) return role;
  return undefined;
}

/**
 * Where each model input comes from in a stream: `explicit` maps input → metric; otherwise an
 * input is taken from the metric of the same name, else from the metric with the same machine
 * role (so a model trained on AI4I's "Torque [Nm]" reads the stream's `torque_nm`). −1 = no
 * metric (the input is missing: a missing value follows each split's missing direction).
 *
 * @example
 * mapInputs(model, ['air_temp_k', 'process_temp_k', 'rpm', 'torque_nm', 'tool_wear_min'], {}); // [0, 1, 2, 3, 4]
 */
export function mapInputs(model: Pick<ModelFile, 'inputs'>, metricNames: readonly string[], explicit: Readonly<Record<string, string>>): number[] {
  return model.inputs.map((input) => {
    const given = explicit[input.name];
    if (given !== undefined) return metricNames.indexOf(given);
    const same = metricNames.indexOf(input.name);
    if (same >= 0) return same;
    const role = machineRoleOf(input.name);
    if (role === undefined) return -1;
    const matches = metricNames.map((name, i) => (machineRoleOf(name) === role ? i : -1)).filter((i) => i >= 0);
    return matches.length === 1 ? matches[0]! : -1;
  });
}

// ---- features ----

/**
 * Rolling history of one device for the rolling features: a ring of the newest readings' times
 * and input values (plain arrays, so detector state checkpoints as JSON).
 */
export interface RollingState {
  times: number[];
  /** `capacity × rollingInputs` values, reading-major. */
  values: number[];
  /** Index of the slot the next reading goes into. */
  next: number;
  count: number;
}

/** Readings kept per device for rolling features (at a 1 s interval: 10 minutes). */
export const ROLLING_CAPACITY = 600;

/**
 * Computes a model's features from its inputs, one row at a time, in the order of
 * `model.features`. Training (src/ml) and the live detector both use it, so a rolling mean means
 * the same in both.
 *
 * @example
 * const computer = new FeatureComputer(model);
 * const state = computer.createRollingState();
 * computer.compute(inputs, time, state, out); // out: Float64Array(model.features.length)
 */
export class FeatureComputer {
  readonly featureCount: number;
  readonly inputCount: number;
  /** True when some feature needs the device's history. */
  readonly rolling: boolean;
  private readonly kinds: Int8Array;
  private readonly a: Int32Array;
  private readonly b: Int32Array;
  private readonly scale: Float64Array;
  private readonly windowMs: Float64Array;
  /** Inputs that rolling features read, and each rolling feature's slot among them. */
  private readonly rollingInputs: number[];
  private readonly rollingSlot: Int32Array;

  constructor(model: Pick<ModelFile, 'inputs' | 'features'>) {
    const inputIndex = new Map(model.inputs.map((input, i) => [input.name, i]));
    const index = (name: string): number => inputIndex.get(name) ?? -1;
    this.featureCount = model.features.length;
    this.inputCount = model.inputs.length;
    this.kinds = new Int8Array(this.featureCount);
    this.a = new Int32Array(this.featureCount);
    this.b = new Int32Array(this.featureCount);
    this.scale = new Float64Array(this.featureCount);
    this.windowMs = new Float64Array(this.featureCount);
    this.rollingSlot = new Int32Array(this.featureCount).fill(-1);
    this.rollingInputs = [];
    model.features.forEach((f, i) => {
      switch (f.kind) {
        case 'input':
          this.kinds[i] = 0;
          this.a[i] = index(f.input);
          break;
        case 'difference':
          this.kinds[i] = 1;
          this.a[i] = index(f.a);
          this.b[i] = index(f.b);
          break;
        case 'product':
          this.kinds[i] = 2;
          this.a[i] = index(f.a);
          this.b[i] = index(f.b);
          this.scale[i] = f.scale;
          break;
        default: {
          this.kinds[i] = f.kind === 'rolling_mean' ? 3 : f.kind === 'rolling_std' ? 4 : 5;
          const input = index(f.input);
          let slot = this.rollingInputs.indexOf(input);
          if (slot < 0) {
            slot = this.rollingInputs.length;
            this.rollingInputs.push(input);
          }
          this.a[i] = input;
          this.rollingSlot[i] = slot;
          this.windowMs[i] = f.windowMs;
        }
      }
    });
    this.rolling = this.rollingInputs.length > 0;
  }

  createRollingState(): RollingState {
    return { times: [], values: [], next: 0, count: 0 };
  }

  /**
   * Features of one reading into `out`. `inputs[i]` is input i (NaN when missing); `state` is the
   * device's history (needed only when `rolling`), updated with this reading first.
   */
  compute(inputs: ArrayLike<number>, time: number, state: RollingState | undefined, out: Float64Array): void {
    if (this.rolling && state !== undefined) this.remember(inputs, time, state);
    for (let i = 0; i < this.featureCount; i++) {
      const a = this.a[i]!;
      const x = a >= 0 ? inputs[a]! : Number.NaN;
      switch (this.kinds[i]) {
        case 0:
          out[i] = x;
          break;
        case 1: {
          const b = this.b[i]!;
          out[i] = x - (b >= 0 ? inputs[b]! : Number.NaN);
          break;
        }
        case 2: {
          const b = this.b[i]!;
          out[i] = x * (b >= 0 ? inputs[b]! : Number.NaN) * this.scale[i]!;
          break;
        }
        default:
          out[i] = state === undefined ? Number.NaN : this.rollingValue(state, i, time);
      }
    }
  }

  private remember(inputs: ArrayLike<number>, time: number, state: RollingState): void {
    const width = this.rollingInputs.length;
    const slot = state.next;
    state.times[slot] = time;
    for (let k = 0; k < width; k++) {
      const input = this.rollingInputs[k]!;
      state.values[slot * width + k] = input >= 0 ? inputs[input]! : Number.NaN;
    }
    state.next = (slot + 1) % ROLLING_CAPACITY;
    if (state.count < ROLLING_CAPACITY) state.count++;
  }

  /** The rolling statistic of feature i over readings in (time − window, time]. */
  private rollingValue(state: RollingState, feature: number, time: number): number {
    const width = this.rollingInputs.length;
    const k = this.rollingSlot[feature]!;
    const from = time - this.windowMs[feature]!;
    let n = 0;
    let sum = 0;
    let squares = 0;
    let newest = Number.NaN;
    let oldest = Number.NaN;
    for (let j = 1; j <= state.count; j++) {
      const slot = (state.next - j + ROLLING_CAPACITY) % ROLLING_CAPACITY;
      const t = state.times[slot]!;
      if (t <= from || t > time) {
        if (t <= from) break;
        continue;
      }
      const v = state.values[slot * width + k]!;
      if (Number.isNaN(v)) continue;
      if (n === 0) newest = v;
      oldest = v;
      n++;
      sum += v;
      squares += v * v;
    }
    if (n === 0) return Number.NaN;
    switch (this.kinds[feature]) {
      case 3:
        return sum / n;
      case 4: {
        const mean = sum / n;
        return Math.sqrt(Math.max(0, squares / n - mean * mean));
      }
      default:
        return newest - oldest;
    }
  }
}

// ---- inference ----

const EULER_GAMMA = 0.5772156649015329;

/** Average path length of an unsuccessful search in a binary search tree of n points (isolation forests). */
export function averagePathLength(n: number): number {
  if (n <= 1) return 0;
  if (n === 2) return 1;
  return 2 * (Math.log(n - 1) + EULER_GAMMA) - (2 * (n - 1)) / n;
}

function leafOf(tree: TreeArrays, x: ArrayLike<number>): number {
  let node = 0;
  const feature = tree.feature;
  for (;;) {
    const f = feature[node]!;
    if (f < 0) return node;
    const v = x[f]!;
    node = Number.isNaN(v) ? (tree.missingLeft[node] === 1 ? tree.left[node]! : tree.right[node]!) : v <= tree.threshold[node]! ? tree.left[node]! : tree.right[node]!;
  }
}

function depthOf(tree: TreeArrays, x: ArrayLike<number>): number {
  let node = 0;
  let depth = 0;
  for (;;) {
    const f = tree.feature[node]!;
    if (f < 0) return depth + averagePathLength(tree.size[node]!);
    const v = x[f]!;
    node = Number.isNaN(v) ? (tree.missingLeft[node] === 1 ? tree.left[node]! : tree.right[node]!) : v <= tree.threshold[node]! ? tree.left[node]! : tree.right[node]!;
    depth++;
  }
}

/**
 * The score in [0, 1] of one feature row under a tree model (not `onnx`).
 *
 * @example
 * scoreTrees(model, features); // 0.93
 */
export function scoreTrees(model: Pick<ModelFile, 'kind' | 'trees' | 'baseScore' | 'sampleSize'>, x: ArrayLike<number>): number {
  const trees = model.trees;
  if (model.kind === 'gbdt') {
    let margin = model.baseScore;
    for (const tree of trees) margin += tree.value[leafOf(tree, x)]!;
    return 1 / (1 + Math.exp(-margin));
  }
  if (model.kind === 'forest') {
    let sum = 0;
    for (const tree of trees) sum += tree.value[leafOf(tree, x)]!;
    return sum / trees.length;
  }
  if (model.kind === 'isolation_forest') {
    let sum = 0;
    for (const tree of trees) sum += depthOf(tree, x);
    return 2 ** (-(sum / trees.length) / averagePathLength(model.sampleSize));
  }
  throw new GpError('GP_INPUT_INVALID', `kind: expected a tree model (gbdt, forest, isolation_forest) for tree scoring, got "${model.kind}"`, { field: 'kind' });
}

/**
 * How much each feature moved this row's prediction (Saabas' path attribution): along the
 * decision path, each split adds the change of node value to the feature it split on — in
 * log-odds for gbdt, in probability for forests. For isolation forests, each split on a short
 * path counts for its feature (how much the feature helped isolate the row). `out` gets one
 * number per feature.
 */
export function contributions(model: Pick<ModelFile, 'kind' | 'trees'>, x: ArrayLike<number>, out: Float64Array): void {
  out.fill(0);
  const scale = model.kind === 'forest' || model.kind === 'isolation_forest' ? 1 / model.trees.length : 1;
  for (const tree of model.trees) {
    let node = 0;
    let depth = 0;
    for (;;) {
      const f = tree.feature[node]!;
      if (f < 0) break;
      const v = x[f]!;
      const child = Number.isNaN(v) ? (tree.missingLeft[node] === 1 ? tree.left[node]! : tree.right[node]!) : v <= tree.threshold[node]! ? tree.left[node]! : tree.right[node]!;
      if (model.kind === 'isolation_forest') out[f] = out[f]! + scale / (depth + 1);
      else out[f] = out[f]! + (tree.value[child]! - tree.value[node]!) * scale;
      node = child;
      depth++;
    }
  }
}

/**
 * The `top` features with the largest positive contribution (towards a failure), as indices.
 *
 * @example
 * topFeatures(contributionsOfRow, 3); // [4, 2, 7]
 */
export function topFeatures(contribution: Float64Array, top: number): number[] {
  const order: number[] = [];
  for (let i = 0; i < contribution.length; i++) if (contribution[i]! > 0) order.push(i);
  order.sort((a, b) => contribution[b]! - contribution[a]! || a - b);
  return order.slice(0, top);
}
