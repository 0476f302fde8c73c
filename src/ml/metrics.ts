/** Classification metrics for the failure (positive) class. */

export interface Confusion {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

export interface ClassificationMetrics {
  threshold: number;
  confusion: Confusion;
  /** Null when undefined (no predicted positives for precision; no actual positives for recall). */
  precision: number | null;
  recall: number | null;
  f1: number | null;
  rocAuc: number | null;
  averagePrecision: number | null;
}

export interface PrPoint {
  threshold: number;
  precision: number;
  recall: number;
}

/**
 * The confusion matrix at a threshold: a row is predicted a failure when its score ≥ threshold.
 *
 * @example
 * confusionAt([0.9, 0.2], Uint8Array.of(1, 0), 0.5); // { tp: 1, fp: 0, tn: 1, fn: 0 }
 */
export function confusionAt(scores: ArrayLike<number>, labels: ArrayLike<number>, threshold: number): Confusion {
  const c: Confusion = { tp: 0, fp: 0, tn: 0, fn: 0 };
  for (let i = 0; i < scores.length; i++) {
    const predicted = scores[i]! >= threshold;
    if (labels[i] === 1) {
      if (predicted) c.tp++;
      else c.fn++;
    } else if (predicted) c.fp++;
    else c.tn++;
  }
  return c;
}

/**
 * Area under the ROC curve: the probability that a random failure scores above a random normal
 * row (ties count one half), from the ranks (Mann–Whitney U). Null without both classes.
 *
 * @example
 * rocAuc([0.9, 0.8, 0.1], Uint8Array.of(1, 0, 0)); // 1
 */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number | null {
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  let positives = 0;
  let rankSum = 0;
  let i = 0;
  while (i < n) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]!] === scores[order[i]!]) j++;
    const averageRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) {
      if (labels[order[k]!] === 1) {
        positives++;
        rankSum += averageRank;
      }
    }
    i = j + 1;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return null;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/**
 * The precision–recall curve: one point per distinct score, from the highest (predict failure
 * when score ≥ that score), in order of rising recall.
 */
export function prCurve(scores: ArrayLike<number>, labels: ArrayLike<number>): PrPoint[] {
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]!);
  let positives = 0;
  for (let i = 0; i < n; i++) positives += labels[i] === 1 ? 1 : 0;
  const points: PrPoint[] = [];
  if (positives === 0) return points;
  let tp = 0;
  let fp = 0;
  let i = 0;
  while (i < n) {
    const s = scores[order[i]!]!;
    while (i < n && scores[order[i]!] === s) {
      if (labels[order[i]!] === 1) tp++;
      else fp++;
      i++;
    }
    points.push({ threshold: s, precision: tp / (tp + fp), recall: tp / positives });
  }
  return points;
}

/** Average precision: Σ (R_k − R_{k−1}) · P_k over the curve's points (no interpolation). */
export function averagePrecision(curve: readonly PrPoint[]): number | null {
  if (curve.length === 0) return null;
  let previous = 0;
  let sum = 0;
  for (const p of curve) {
    sum += (p.recall - previous) * p.precision;
    previous = p.recall;
  }
  return sum;
}

/**
 * Precision, recall, F1 (at `threshold`), ROC AUC and average precision of scores against labels.
 *
 * @example
 * classificationMetrics(scores, labels, 0.7).f1; // 0.91
 */
export function classificationMetrics(scores: ArrayLike<number>, labels: ArrayLike<number>, threshold: number): ClassificationMetrics {
  const confusion = confusionAt(scores, labels, threshold);
  const precision = confusion.tp + confusion.fp === 0 ? null : confusion.tp / (confusion.tp + confusion.fp);
  const recall = confusion.tp + confusion.fn === 0 ? null : confusion.tp / (confusion.tp + confusion.fn);
  const f1 = confusion.tp + confusion.fn === 0 ? null : (2 * confusion.tp) / (2 * confusion.tp + confusion.fp + confusion.fn);
  return { threshold, confusion, precision, recall, f1, rocAuc: rocAuc(scores, labels), averagePrecision: averagePrecision(prCurve(scores, labels)) };
}

/**
 * The fold of each row for stratified k-fold cross-validation: failures and normal rows are each
 * shuffled (seeded) and dealt round-robin, so every fold has the same share of failures.
 *
 * @example
 * const fold = stratifiedFolds(labels, 5, 1); // fold[i] in 0..4
 */
export function stratifiedFolds(labels: ArrayLike<number>, k: number, seed: number): Int32Array {
  const fold = new Int32Array(labels.length);
  let state = seed >>> 0 || 1;
  const random = (): number => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296;
  };
  for (const cls of [1, 0]) {
    const members: number[] = [];
    for (let i = 0; i < labels.length; i++) if ((labels[i] === 1 ? 1 : 0) === cls) members.push(i);
    for (let i = members.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      const swap = members[i]!;
      members[i] = members[j]!;
      members[j] = swap;
    }
    members.forEach((row, i) => (fold[row] = i % k));
  }
  return fold;
}

/** "0.912" or "n/a". */
export function formatMetric(value: number | null): string {
  return value === null ? 'n/a' : value.toFixed(3);
}

/** The confusion matrix as a small text table. */
export function formatConfusion(c: Confusion): string {
  const width = Math.max(6, ...[c.tp, c.fp, c.tn, c.fn].map((x) => String(x).length));
  const cell = (x: number | string): string => String(x).padStart(width);
  return [
    `${' '.repeat(18)}${cell('pred 1')} ${cell('pred 0')}`,
    `  actual 1 (fail) ${cell(c.tp)} ${cell(c.fn)}`,
    `  actual 0        ${cell(c.fp)} ${cell(c.tn)}`,
  ].join('\n');
}

/**
 * The precision–recall curve as an SVG image (written by hand: axes, grid, the curve, the
 * operating point at the threshold and the average precision in the title).
 *
 * @example
 * writeFileSync('pr.svg', prCurveSvg(prCurve(scores, labels), { title: 'gbdt', threshold: 0.7 }));
 */
export function prCurveSvg(curve: readonly PrPoint[], options: { title: string; threshold?: number | undefined; width?: number; height?: number }): string {
  const width = options.width ?? 560;
  const height = options.height ?? 420;
  const left = 60;
  const right = 20;
  const top = 40;
  const bottom = 50;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const x = (recall: number): number => left + recall * plotW;
  const y = (precision: number): number => top + (1 - precision) * plotH;
  const escape = (text: string): string => text.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  parts.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  for (let t = 0; t <= 10; t++) {
    const v = t / 10;
    parts.push(`<line x1="${x(v).toFixed(1)}" y1="${top}" x2="${x(v).toFixed(1)}" y2="${top + plotH}" stroke="#e5e5e5"/>`);
    parts.push(`<line x1="${left}" y1="${y(v).toFixed(1)}" x2="${left + plotW}" y2="${y(v).toFixed(1)}" stroke="#e5e5e5"/>`);
    if (t % 2 === 0) {
      parts.push(`<text x="${x(v).toFixed(1)}" y="${top + plotH + 16}" text-anchor="middle">${v.toFixed(1)}</text>`);
      parts.push(`<text x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${v.toFixed(1)}</text>`);
    }
  }
  parts.push(`<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`);
  parts.push(`<text x="${left + plotW / 2}" y="${height - 12}" text-anchor="middle">recall</text>`);
  parts.push(`<text x="16" y="${top + plotH / 2}" text-anchor="middle" transform="rotate(-90 16 ${top + plotH / 2})">precision</text>`);
  const ap = averagePrecision(curve);
  parts.push(`<text x="${left}" y="24" font-size="14" font-weight="bold">${escape(options.title)}${ap === null ? '' : ` — average precision ${ap.toFixed(3)}`}</text>`);
  if (curve.length > 0) {
    // A step curve starting at recall 0 with the first point's precision.
    const points: string[] = [`${x(0).toFixed(1)},${y(curve[0]!.precision).toFixed(1)}`];
    for (const p of curve) points.push(`${x(p.recall).toFixed(1)},${y(p.precision).toFixed(1)}`);
    parts.push(`<polyline fill="none" stroke="#1f6feb" stroke-width="2" points="${points.join(' ')}"/>`);
    if (options.threshold !== undefined) {
      // The operating point: the lowest score still ≥ the threshold.
      const at = [...curve].reverse().find((p) => p.threshold >= options.threshold!);
      if (at !== undefined) {
        parts.push(`<circle cx="${x(at.recall).toFixed(1)}" cy="${y(at.precision).toFixed(1)}" r="5" fill="#d1242f"/>`);
        parts.push(
          `<text x="${(x(at.recall) - 8).toFixed(1)}" y="${(y(at.precision) + 18).toFixed(1)}" text-anchor="end" fill="#d1242f">threshold ${options.threshold} (P ${at.precision.toFixed(2)}, R ${at.recall.toFixed(2)})</text>`,
        );
      }
    }
  }
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
