import { MODEL_FILE_FORMAT, MODEL_FILE_FORMAT_VERSION, scoreTrees, type ModelFile, type ModelMetrics } from '../detectors/index.js';
import { GpError } from '../model/index.js';
import type { Dataset } from './dataset.js';
import { DEFAULT_FOREST, DEFAULT_GBDT, DEFAULT_ISOLATION, trainForest, trainGbdt, trainIsolationForest, type ForestOptions, type GbdtOptions, type IsolationOptions, type TrainedTrees, type TreeProgress } from './learners.js';
import { classificationMetrics, prCurve, stratifiedFolds, type ClassificationMetrics, type PrPoint } from './metrics.js';
import { binFeatures } from './tree-builder.js';

export type TrainableKind = 'gbdt' | 'forest' | 'isolation_forest';
export const TRAINABLE_KINDS: readonly TrainableKind[] = ['gbdt', 'forest', 'isolation_forest'];

/** The default alert threshold of a model (the edge design's 0.7). */
export const DEFAULT_THRESHOLD = 0.7;

export interface TrainOptions {
  kind: TrainableKind;
  /** Folds of stratified cross-validation (≥ 2), or 0/1 for none. Default 5. */
  folds?: number;
  /** Score at which a row counts as a failure, for the metrics and the model file. Default 0.7 (isolation forest: the (1 − contamination) quantile of training scores). */
  threshold?: number | undefined;
  /** Isolation forest without --threshold: the expected share of anomalies. Default 0.02. */
  contamination?: number;
  seed?: number;
  gbdt?: Partial<GbdtOptions>;
  forest?: Partial<ForestOptions>;
  isolation?: Partial<IsolationOptions>;
  /** Version of the model; default `<kind>-<created, compact ISO>-<8 hex of the fingerprint>`. */
  version?: string;
  /** Wall clock, for createdAt. */
  now?: () => number;
  /** Progress in [0, 1] with a stage name (cross-validation fold k, final model). May return a promise (to yield). */
  onProgress?: (fraction: number, stage: string) => void | Promise<void>;
}

export interface TrainResult {
  model: ModelFile;
  /** Cross-validated metrics over all out-of-fold scores, and per fold (null without labels or folds). */
  crossValidation: { pooled: ClassificationMetrics; folds: ClassificationMetrics[]; meanF1: number | null; curve: PrPoint[] } | null;
  /** Out-of-fold score of each row (NaN without cross-validation). */
  outOfFold: Float64Array;
  seconds: number;
}

function scoreRows(trained: TrainedTrees, kind: TrainableKind, columns: readonly Float64Array[], rows: ArrayLike<number>, out: Float64Array): void {
  const x = new Float64Array(columns.length);
  const model = { kind, trees: trained.trees, baseScore: trained.baseScore, sampleSize: trained.sampleSize };
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    for (let f = 0; f < columns.length; f++) x[f] = columns[f]![r]!;
    out[r] = scoreTrees(model, x);
  }
}

function compactTime(time: number): string {
  return new Date(time).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/**
 * Trains a model on a dataset: stratified k-fold cross-validation first (each fold's model is
 * trained on the other folds, bins included, and scores its own fold), then the final model on
 * every row. Returns the model file (with the cross-validated metrics) and the out-of-fold scores.
 *
 * @example
 * const { model, crossValidation } = await trainModel(data, { kind: 'gbdt', folds: 5 });
 * crossValidation?.pooled.f1; // 0.9
 */
export async function trainModel(data: Dataset, options: TrainOptions): Promise<TrainResult> {
  const started = performance.now();
  const kind = options.kind;
  const seed = options.seed ?? 1;
  const gbdt: GbdtOptions = { ...DEFAULT_GBDT, seed, ...options.gbdt };
  const forest: ForestOptions = { ...DEFAULT_FOREST, seed, ...options.forest };
  const isolation: IsolationOptions = { ...DEFAULT_ISOLATION, seed, ...options.isolation };
  const labels = data.labels;
  if (kind !== 'isolation_forest' && labels === undefined) {
    throw new GpError('GP_INPUT_INVALID', `--target: a ${kind} model learns from labels; name the label column with --target, or train --model isolation-forest without labels`, { field: 'target' });
  }
  let positives = 0;
  if (labels !== undefined) for (const l of labels) positives += l;
  if (labels !== undefined && kind !== 'isolation_forest' && (positives === 0 || positives === data.rows)) {
    throw new GpError('GP_INPUT_INVALID', `--target: expected both classes in "${data.target}", got ${positives === 0 ? 'no failures (1)' : 'only failures'} in ${data.rows} rows`, { field: 'target' });
  }
  const folds = options.folds ?? 5;
  const crossValidate = labels !== undefined && folds >= 2;
  if (crossValidate && positives < folds) {
    throw new GpError('GP_INPUT_INVALID', `--folds: expected at most as many folds as failures (${positives}), got ${folds}`, { field: 'folds' });
  }
  const steps = (crossValidate ? folds : 0) + 1;
  let step = 0;
  const stage = (name: string): TreeProgress => (done, total) => options.onProgress?.((step + done / total) / steps, name);

  const fit = async (rows: ArrayLike<number>, progress: TreeProgress): Promise<TrainedTrees> => {
    if (kind === 'gbdt') return trainGbdt(data.columns, labels!, rows, gbdt, progress, binFeatures(data.columns, rows));
    if (kind === 'forest') return trainForest(data.columns, labels!, rows, forest, progress, binFeatures(data.columns, rows));
    return trainIsolationForest(data.columns, rows, isolation, progress);
  };

  const all = Int32Array.from({ length: data.rows }, (_, i) => i);
  const outOfFold = new Float64Array(data.rows).fill(Number.NaN);
  const foldModels: TrainedTrees[] = [];
  let foldOf: Int32Array | undefined;
  if (crossValidate) {
    foldOf = stratifiedFolds(labels, folds, seed);
    for (let k = 0; k < folds; k++) {
      const train: number[] = [];
      const test: number[] = [];
      for (let r = 0; r < data.rows; r++) (foldOf[r] === k ? test : train).push(r);
      const trained = await fit(train, stage(`cross-validation fold ${k + 1} of ${folds}`));
      scoreRows(trained, kind, data.columns, test, outOfFold);
      foldModels.push(trained);
      step++;
    }
  }
  const final = await fit(all, stage('final model'));
  step++;
  const trainScores = new Float64Array(data.rows);
  scoreRows(final, kind, data.columns, all, trainScores);

  let threshold = options.threshold ?? DEFAULT_THRESHOLD;
  if (kind === 'isolation_forest' && options.threshold === undefined) {
    // No labels to choose by: flag the expected share of anomalies of the training data.
    const sorted = Array.from(trainScores).sort((a, b) => a - b);
    threshold = sorted[Math.min(sorted.length - 1, Math.floor((1 - (options.contamination ?? 0.02)) * sorted.length))]!;
  }

  let crossValidation: TrainResult['crossValidation'] = null;
  let metrics: ModelMetrics | null = null;
  if (crossValidate) {
    const pooled = classificationMetrics(outOfFold, labels, threshold);
    const perFold: ClassificationMetrics[] = [];
    for (let k = 0; k < folds; k++) {
      const s: number[] = [];
      const l: number[] = [];
      for (let r = 0; r < data.rows; r++) {
        if (foldOf![r] === k) {
          s.push(outOfFold[r]!);
          l.push(labels[r]!);
        }
      }
      perFold.push(classificationMetrics(s, l, threshold));
    }
    const f1s = perFold.map((m) => m.f1).filter((f): f is number => f !== null);
    const meanF1 = f1s.length === 0 ? null : f1s.reduce((a, b) => a + b, 0) / f1s.length;
    crossValidation = { pooled, folds: perFold, meanF1, curve: prCurve(outOfFold, labels) };
    metrics = {
      method: `${folds}-fold stratified cross-validation (seed ${seed}); precision, recall, F1 and confusion over all out-of-fold scores`,
      threshold,
      precision: pooled.precision,
      recall: pooled.recall,
      f1: pooled.f1,
      rocAuc: pooled.rocAuc,
      averagePrecision: pooled.averagePrecision,
      confusion: pooled.confusion,
      folds: perFold.map((m) => ({ precision: m.precision, recall: m.recall, f1: m.f1, rocAuc: m.rocAuc })),
    };
  } else if (labels !== undefined) {
    const m = classificationMetrics(trainScores, labels, threshold);
    metrics = { method: 'on the training data (no cross-validation: optimistic)', threshold, precision: m.precision, recall: m.recall, f1: m.f1, rocAuc: m.rocAuc, averagePrecision: m.averagePrecision, confusion: m.confusion };
  }

  const seconds = (performance.now() - started) / 1000;
  const createdAt = (options.now ?? Date.now)();
  const model: ModelFile = {
    format: MODEL_FILE_FORMAT,
    formatVersion: MODEL_FILE_FORMAT_VERSION,
    kind,
    version: options.version ?? `${kind}-${compactTime(createdAt)}-${data.fingerprint.slice(0, 8)}`,
    createdAt: new Date(createdAt).toISOString(),
    target: data.target,
    inputs: data.inputs,
    features: data.features,
    threshold,
    trees: final.trees,
    baseScore: final.baseScore,
    sampleSize: final.sampleSize,
    metrics,
    training: {
      source: data.source,
      rows: data.rows,
      positives: labels === undefined ? null : positives,
      fingerprint: data.fingerprint,
      seconds: Math.round(seconds * 100) / 100,
      options: {
        folds: crossValidate ? folds : 0,
        seed,
        ...(kind === 'gbdt' ? { gbdt } : kind === 'forest' ? { forest } : { isolation }),
      },
    },
  };
  return { model, crossValidation, outOfFold, seconds };
}
