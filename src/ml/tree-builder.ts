import type { TreeArrays } from '../detectors/index.js';

/** Bin of a missing value (NaN). Value bins are 0 … maxBins − 1. */
export const MISSING_BIN = 65535;
/** Default most bins per feature. */
export const DEFAULT_MAX_BINS = 1024;

/** Features cut into bins (histogram-based trees): thresholds and the bin of every row. */
export interface BinnedFeatures {
  /** Upper edge of each bin but the last, per feature: bin b holds values ≤ thresholds[b] (and > thresholds[b − 1]). */
  thresholds: Float64Array[];
  /** Bin of each row, per feature (`MISSING_BIN` for NaN). */
  bins: Uint16Array[];
  /** Most value bins of any feature. */
  maxBins: number;
}

/**
 * Cuts each feature into at most `maxBins` bins: between every two distinct values when there are
 * few, else at quantiles (1024 by default: LightGBM's 255 leave the sparse tails of a feature —
 * AI4I's power failures below 3.5 kW — too coarse to split exactly). Only `fitRows` decide the
 * edges (the training rows of a fold); every row is binned.
 *
 * @example
 * const binned = binFeatures(data.columns, trainRows);
 */
export function binFeatures(columns: readonly Float64Array[], fitRows: ArrayLike<number>, maxBins = DEFAULT_MAX_BINS): BinnedFeatures {
  const MAX_VALUE_BINS = Math.min(65535, Math.max(2, maxBins));
  const thresholds: Float64Array[] = [];
  const bins: Uint16Array[] = [];
  for (const values of columns) {
    const sorted: number[] = [];
    for (let i = 0; i < fitRows.length; i++) {
      const v = values[fitRows[i]!]!;
      if (!Number.isNaN(v)) sorted.push(v);
    }
    sorted.sort((a, b) => a - b);
    const distinct: number[] = [];
    for (const v of sorted) if (distinct.length === 0 || distinct[distinct.length - 1] !== v) distinct.push(v);
    const edges: number[] = [];
    if (distinct.length <= MAX_VALUE_BINS) {
      for (let i = 1; i < distinct.length; i++) edges.push((distinct[i - 1]! + distinct[i]!) / 2);
    } else {
      for (let j = 1; j < MAX_VALUE_BINS; j++) {
        const at = Math.floor((j * sorted.length) / MAX_VALUE_BINS);
        const below = sorted[at - 1]!;
        const above = sorted[at]!;
        if (below < above) {
          const edge = (below + above) / 2;
          if (edges.length === 0 || edges[edges.length - 1]! < edge) edges.push(edge);
        }
      }
    }
    const cut = Float64Array.from(edges);
    const binned = new Uint16Array(values.length);
    for (let r = 0; r < values.length; r++) binned[r] = binOf(cut, values[r]!);
    thresholds.push(cut);
    bins.push(binned);
  }
  return { thresholds, bins, maxBins: thresholds.reduce((most, t) => Math.max(most, t.length + 1), 1) };
}

function binOf(edges: Float64Array, v: number): number {
  if (Number.isNaN(v)) return MISSING_BIN;
  let low = 0;
  let high = edges.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (v <= edges[mid]!) high = mid;
    else low = mid + 1;
  }
  return low;
}

/** A small deterministic random generator (mulberry32), so that training is repeatable for a seed. */
export class Random {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0 || 1;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }
}

export interface TreeOptions {
  maxDepth: number;
  /** Least hessian sum in a child (gbdt: about rows × p(1 − p); forests: rows). */
  minChildWeight: number;
  minLeafRows: number;
  /** L2 regularisation of leaf values. */
  lambda: number;
  /** Node values are −G/(H + λ) × this (the learning rate). */
  valueScale: number;
  /** Features tried per node (all when ≥ the feature count); drawn with `random`. */
  featuresPerNode: number;
  random: Random;
}

/**
 * Grows one tree on gradients and hessians (second-order, as in XGBoost/LightGBM): a split's gain
 * is G_L²/(H_L+λ) + G_R²/(H_R+λ) − G²/(H+λ), found over the histograms of the binned features;
 * missing values go to whichever side gains more (or the bigger side when the node has none).
 * With g = −y, h = 1 and λ = 0 this is a regression tree on y (a random-forest tree: variance
 * reduction, which for 0/1 labels is Gini reduction, and node values = share of positives).
 * Nodes are numbered so that children come after their parents; `leafOfRow` gets each row's leaf.
 */
export function growTree(
  binned: BinnedFeatures,
  rows: Int32Array,
  gradient: Float64Array,
  hessian: Float64Array,
  options: TreeOptions,
  leafOfRow?: Int32Array,
): TreeArrays {
  const featureCount = binned.bins.length;
  const tree: TreeArrays = { feature: [], threshold: [], left: [], right: [], missingLeft: [], value: [], size: [] };
  const index = rows.slice();
  const histogramG = new Float64Array(binned.maxBins);
  const histogramH = new Float64Array(binned.maxBins);
  const histogramN = new Int32Array(binned.maxBins);
  const candidates = Array.from({ length: featureCount }, (_, i) => i);

  const newNode = (g: number, h: number, count: number): number => {
    tree.feature.push(-1);
    tree.threshold.push(0);
    tree.left.push(-1);
    tree.right.push(-1);
    tree.missingLeft.push(1);
    tree.value.push(h + options.lambda > 0 ? (-g / (h + options.lambda)) * options.valueScale : 0);
    tree.size.push(count);
    return tree.feature.length - 1;
  };

  interface Pending {
    node: number;
    start: number;
    end: number;
    depth: number;
    g: number;
    h: number;
  }
  let g0 = 0;
  let h0 = 0;
  for (const r of index) {
    g0 += gradient[r]!;
    h0 += hessian[r]!;
  }
  const queue: Pending[] = [{ node: newNode(g0, h0, index.length), start: 0, end: index.length, depth: 0, g: g0, h: h0 }];
  while (queue.length > 0) {
    const { node, start, end, depth, g, h } = queue.shift()!;
    const count = end - start;
    if (depth >= options.maxDepth || count < 2 * options.minLeafRows) {
      if (leafOfRow) for (let i = start; i < end; i++) leafOfRow[index[i]!] = node;
      continue;
    }
    // Features tried at this node: all, or a random subset (partial Fisher–Yates shuffle).
    const tried = Math.min(options.featuresPerNode, featureCount);
    if (tried < featureCount) {
      for (let i = 0; i < tried; i++) {
        const j = i + options.random.below(featureCount - i);
        const swap = candidates[i]!;
        candidates[i] = candidates[j]!;
        candidates[j] = swap;
      }
    }
    const parentScore = (g * g) / (h + options.lambda);
    let bestGain = 1e-12;
    let bestFeature = -1;
    let bestBin = 0;
    let bestMissingLeft = true;
    for (let c = 0; c < tried; c++) {
      const f = candidates[c]!;
      const bins = binned.bins[f]!;
      const valueBins = binned.thresholds[f]!.length + 1;
      if (valueBins < 2) continue;
      histogramG.fill(0, 0, valueBins);
      histogramH.fill(0, 0, valueBins);
      histogramN.fill(0, 0, valueBins);
      let gm = 0;
      let hm = 0;
      let nm = 0;
      for (let i = start; i < end; i++) {
        const r = index[i]!;
        const b = bins[r]!;
        if (b === MISSING_BIN) {
          gm += gradient[r]!;
          hm += hessian[r]!;
          nm++;
          continue;
        }
        histogramG[b] = histogramG[b]! + gradient[r]!;
        histogramH[b] = histogramH[b]! + hessian[r]!;
        histogramN[b] = histogramN[b]! + 1;
      }
      let gl = 0;
      let hl = 0;
      let nl = 0;
      for (let b = 0; b < valueBins - 1; b++) {
        gl += histogramG[b]!;
        hl += histogramH[b]!;
        nl += histogramN[b]!;
        if (histogramN[b] === 0) continue;
        for (let side = 0; side < (nm > 0 ? 2 : 1); side++) {
          const missingLeft = side === 0;
          const gL = missingLeft ? gl + gm : gl;
          const hL = missingLeft ? hl + hm : hl;
          const nL = missingLeft ? nl + nm : nl;
          const gR = g - gL;
          const hR = h - hL;
          const nR = count - nL;
          if (nL < options.minLeafRows || nR < options.minLeafRows || hL < options.minChildWeight || hR < options.minChildWeight) continue;
          const gain = (gL * gL) / (hL + options.lambda) + (gR * gR) / (hR + options.lambda) - parentScore;
          if (gain > bestGain) {
            bestGain = gain;
            bestFeature = f;
            bestBin = b;
            // Without missing values at this node, they later follow the bigger side.
            bestMissingLeft = nm > 0 ? missingLeft : nL >= nR;
          }
        }
      }
    }
    if (bestFeature < 0) {
      if (leafOfRow) for (let i = start; i < end; i++) leafOfRow[index[i]!] = node;
      continue;
    }
    // Partition index[start, end) into left | right.
    const bins = binned.bins[bestFeature]!;
    let i = start;
    let j = end - 1;
    const goesLeft = (r: number): boolean => {
      const b = bins[r]!;
      return b === MISSING_BIN ? bestMissingLeft : b <= bestBin;
    };
    while (i <= j) {
      if (goesLeft(index[i]!)) i++;
      else {
        const swap = index[i]!;
        index[i] = index[j]!;
        index[j] = swap;
        j--;
      }
    }
    let gL = 0;
    let hL = 0;
    for (let k = start; k < i; k++) {
      gL += gradient[index[k]!]!;
      hL += hessian[index[k]!]!;
    }
    const leftNode = newNode(gL, hL, i - start);
    const rightNode = newNode(g - gL, h - hL, end - i);
    tree.feature[node] = bestFeature;
    tree.threshold[node] = binned.thresholds[bestFeature]![bestBin]!;
    tree.left[node] = leftNode;
    tree.right[node] = rightNode;
    tree.missingLeft[node] = bestMissingLeft ? 1 : 0;
    queue.push({ node: leftNode, start, end: i, depth: depth + 1, g: gL, h: hL });
    queue.push({ node: rightNode, start: i, end, depth: depth + 1, g: g - gL, h: h - hL });
  }
  return tree;
}
