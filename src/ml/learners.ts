import { averagePathLength, type TreeArrays } from '../detectors/index.js';
import { binFeatures, growTree, Random, type BinnedFeatures } from './tree-builder.js';

/**
 * The learners: gradient-boosted trees (logistic loss), a random forest and an isolation forest,
 * all written here. There is no maintained JavaScript gradient-boosting library (the npm
 * packages that exist are unmaintained ports or bindings to native XGBoost/LightGBM builds), so
 * gbdt follows the histogram method of LightGBM/XGBoost's `hist`: features cut into ≤ 255
 * bins, second-order gains, L2-regularised leaves. Training yields to the event loop between
 * trees (`pause`) so that a server training in the background keeps answering.
 */
export interface GbdtOptions {
  trees: number;
  learningRate: number;
  maxDepth: number;
  minChildWeight: number;
  minLeafRows: number;
  lambda: number;
  /** Weight of a positive row's gradient (class imbalance); 1 = none. */
  positiveWeight: number;
  seed: number;
}

export const DEFAULT_GBDT: GbdtOptions = { trees: 150, learningRate: 0.1, maxDepth: 4, minChildWeight: 1, minLeafRows: 5, lambda: 1, positiveWeight: 1, seed: 1 };

export interface ForestOptions {
  trees: number;
  maxDepth: number;
  minLeafRows: number;
  /** Features tried per split; 0 = √(feature count). */
  featuresPerNode: number;
  seed: number;
}

export const DEFAULT_FOREST: ForestOptions = { trees: 100, maxDepth: 14, minLeafRows: 1, featuresPerNode: 0, seed: 1 };

export interface IsolationOptions {
  trees: number;
  sampleSize: number;
  seed: number;
}

export const DEFAULT_ISOLATION: IsolationOptions = { trees: 100, sampleSize: 256, seed: 1 };

export interface TrainedTrees {
  trees: TreeArrays[];
  baseScore: number;
  sampleSize: number;
}

/** Called after each tree (done, total); may return a promise to yield. */
export type TreeProgress = (done: number, total: number) => void | Promise<void>;

function rowsOf(rows: ArrayLike<number>): Int32Array {
  return Int32Array.from(rows);
}

/**
 * Gradient-boosted trees with logistic loss on `rows` of the data (labels 0/1).
 *
 * @example
 * const { trees, baseScore } = await trainGbdt(data.columns, data.labels, trainRows, DEFAULT_GBDT);
 */
export async function trainGbdt(
  columns: readonly Float64Array[],
  labels: Uint8Array,
  rows: ArrayLike<number>,
  options: GbdtOptions,
  progress?: TreeProgress,
  binned: BinnedFeatures = binFeatures(columns, rows),
): Promise<TrainedTrees> {
  const index = rowsOf(rows);
  const n = labels.length;
  let positives = 0;
  for (const r of index) positives += labels[r]!;
  const rate = Math.min(1 - 1e-6, Math.max(1e-6, positives / Math.max(1, index.length)));
  const baseScore = Math.log(rate / (1 - rate));
  const margin = new Float64Array(n).fill(baseScore);
  const gradient = new Float64Array(n);
  const hessian = new Float64Array(n);
  const leafOfRow = new Int32Array(n);
  const random = new Random(options.seed);
  const trees: TreeArrays[] = [];
  for (let t = 0; t < options.trees; t++) {
    for (const r of index) {
      const p = 1 / (1 + Math.exp(-margin[r]!));
      const weight = labels[r] === 1 ? options.positiveWeight : 1;
      gradient[r] = (p - labels[r]!) * weight;
      hessian[r] = Math.max(p * (1 - p), 1e-16) * weight;
    }
    const tree = growTree(
      binned,
      index,
      gradient,
      hessian,
      { maxDepth: options.maxDepth, minChildWeight: options.minChildWeight, minLeafRows: options.minLeafRows, lambda: options.lambda, valueScale: options.learningRate, featuresPerNode: columns.length, random },
      leafOfRow,
    );
    for (const r of index) margin[r] = margin[r]! + tree.value[leafOfRow[r]!]!;
    trees.push(tree);
    await progress?.(t + 1, options.trees);
  }
  return { trees, baseScore, sampleSize: 0 };
}

/**
 * A random forest: each tree on a bootstrap sample of `rows`, √(features) tried per split, leaves
 * holding the share of positives.
 */
export async function trainForest(
  columns: readonly Float64Array[],
  labels: Uint8Array,
  rows: ArrayLike<number>,
  options: ForestOptions,
  progress?: TreeProgress,
  binned: BinnedFeatures = binFeatures(columns, rows),
): Promise<TrainedTrees> {
  const n = labels.length;
  const gradient = new Float64Array(n);
  const hessian = new Float64Array(n).fill(1);
  for (let r = 0; r < n; r++) gradient[r] = -labels[r]!;
  const random = new Random(options.seed);
  const featuresPerNode = options.featuresPerNode > 0 ? options.featuresPerNode : Math.max(1, Math.round(Math.sqrt(columns.length)));
  const trees: TreeArrays[] = [];
  const sample = new Int32Array(rows.length);
  for (let t = 0; t < options.trees; t++) {
    for (let i = 0; i < sample.length; i++) sample[i] = rows[random.below(rows.length)]!;
    trees.push(growTree(binned, sample, gradient, hessian, { maxDepth: options.maxDepth, minChildWeight: 0, minLeafRows: options.minLeafRows, lambda: 0, valueScale: 1, featuresPerNode, random }));
    await progress?.(t + 1, options.trees);
  }
  return { trees, baseScore: 0, sampleSize: 0 };
}

/**
 * An isolation forest (Liu, Ting & Zhou 2008): trees of random splits on samples of `sampleSize`
 * rows, grown to depth ⌈log2 sampleSize⌉; rows that are isolated on short paths are anomalies.
 * Needs no labels.
 */
export async function trainIsolationForest(columns: readonly Float64Array[], rows: ArrayLike<number>, options: IsolationOptions, progress?: TreeProgress): Promise<TrainedTrees> {
  const random = new Random(options.seed);
  const sampleSize = Math.min(options.sampleSize, rows.length);
  const maxDepth = Math.ceil(Math.log2(Math.max(2, sampleSize)));
  const trees: TreeArrays[] = [];
  for (let t = 0; t < options.trees; t++) {
    // Sample without replacement (partial shuffle of a copy).
    const pool = Array.from(rows);
    for (let i = 0; i < sampleSize; i++) {
      const j = i + random.below(pool.length - i);
      const swap = pool[i]!;
      pool[i] = pool[j]!;
      pool[j] = swap;
    }
    const tree: TreeArrays = { feature: [], threshold: [], left: [], right: [], missingLeft: [], value: [], size: [] };
    const grow = (sample: number[], depth: number): number => {
      const node = tree.feature.length;
      tree.feature.push(-1);
      tree.threshold.push(0);
      tree.left.push(-1);
      tree.right.push(-1);
      tree.missingLeft.push(0);
      tree.value.push(0);
      tree.size.push(sample.length);
      if (depth >= maxDepth || sample.length <= 1) return node;
      const splittable: Array<{ f: number; low: number; high: number }> = [];
      for (let f = 0; f < columns.length; f++) {
        let low = Number.POSITIVE_INFINITY;
        let high = Number.NEGATIVE_INFINITY;
        for (const r of sample) {
          const v = columns[f]![r]!;
          if (v < low) low = v;
          if (v > high) high = v;
        }
        if (high > low) splittable.push({ f, low, high });
      }
      if (splittable.length === 0) return node;
      const { f, low, high } = splittable[random.below(splittable.length)]!;
      const threshold = low + random.next() * (high - low);
      const left = sample.filter((r) => columns[f]![r]! <= threshold);
      const right = sample.filter((r) => !(columns[f]![r]! <= threshold));
      tree.feature[node] = f;
      tree.threshold[node] = threshold;
      tree.left[node] = grow(left, depth + 1);
      tree.right[node] = grow(right, depth + 1);
      return node;
    };
    grow(pool.slice(0, sampleSize), 0);
    trees.push(tree);
    await progress?.(t + 1, options.trees);
  }
  return { trees, baseScore: 0, sampleSize };
}

export { averagePathLength };
