/**
 * `gridpulse train`: trains a failure model from a CSV file with stratified cross-validation and
 * writes the model file (JSON) and its precision–recall curve (SVG).
 */
import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { parseDuration } from '../../config/index.js';
import {
  buildDataset,
  formatConfusion,
  formatMetric,
  prCurveSvg,
  readCsvFile,
  trainModel,
  writeModelFile,
  type TrainableKind,
  type TrainResult,
} from '../../ml/index.js';
import { GpError } from '../../model/index.js';
import { parseCount } from '../format.js';

interface TrainFlags {
  data: string;
  target?: string;
  exclude?: string;
  model: string;
  folds: string;
  out: string;
  threshold?: string;
  key?: string;
  time?: string;
  rolling?: string;
  trees?: string;
  seed: string;
  version?: string;
  json?: boolean;
}

const KINDS: Record<string, TrainableKind> = { gbdt: 'gbdt', forest: 'forest', 'isolation-forest': 'isolation_forest', isolation_forest: 'isolation_forest' };

/** A comma-separated list (names may contain spaces: "Product ID"). */
export function listOption(text: string | undefined): string[] {
  return text === undefined ? [] : text.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

export function register(program: Command): void {
  program
    .command('train')
    .description(
      'Train a failure model from a CSV file: gradient-boosted trees (gbdt), a random forest, or an isolation forest (no labels). ' +
        'Prints the stratified cross-validated precision, recall, F1 and ROC AUC, writes the model file and its precision-recall curve (SVG).',
    )
    .requiredOption('--data <csv>', 'training data, CSV with a header (a byte-order mark and CRLF are fine)')
    .option('--target <column>', 'label column: 1/true/yes = failure (required except for isolation-forest)')
    .option('--exclude <columns>', 'comma-separated columns never used as inputs (ids, leaking labels)')
    .option('--model <kind>', 'gbdt | forest | isolation-forest', 'gbdt')
    .option('--folds <k>', 'folds of stratified cross-validation (0: none)', '5')
    .option('--out <dir>', 'directory of model files (the default is where `gridpulse up` with the default data directory looks: it serves the newest)', 'data/models')
    .option('--threshold <score>', 'score at which a row is a failure (metrics, alerts); default 0.7 (isolation-forest: the top 2% of training scores)')
    .option('--key <column>', 'device id column (rolling features per device)')
    .option('--time <column>', 'event time column, epoch ms or ISO-8601 (needed by --rolling)')
    .option('--rolling <windows>', 'comma-separated rolling windows, e.g. 1m,5m: mean, standard deviation and change of each input')
    .option('--trees <n>', 'number of trees (default: gbdt 150, forest 100, isolation-forest 100)')
    .option('--seed <n>', 'seed of folds, sampling and feature choice', '1')
    .option('--version <name>', 'model version (default <kind>-<time>-<fingerprint>)')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      [
        '',
        'Example (AI4I 2020; the five failure-mode flags would leak the label and are excluded):',
        '  gridpulse train --data ai4i2020.csv --target "Machine failure" --exclude "UDI,Product ID,TWF,HDF,PWF,OSF,RNF"',
      ].join('\n'),
    )
    .action(async (flags: TrainFlags) => {
      const kind = KINDS[flags.model];
      if (kind === undefined) throw new GpError('GP_INPUT_INVALID', `--model: expected gbdt, forest or isolation-forest, got ${JSON.stringify(flags.model)}`, { field: 'model' });
      const threshold = flags.threshold === undefined ? undefined : Number(flags.threshold);
      if (threshold !== undefined && !(threshold >= 0 && threshold <= 1)) throw new GpError('GP_INPUT_INVALID', `--threshold: expected a score from 0 to 1, got ${JSON.stringify(flags.threshold)}`, { field: 'threshold' });
      const rolling = listOption(flags.rolling).map((w) => {
        let ms: number;
        try {
          ms = parseDuration(w);
        } catch {
          ms = Number.NaN;
        }
        if (!(ms > 0)) throw new GpError('GP_INPUT_INVALID', `--rolling: expected durations like 1m,5m, got ${JSON.stringify(w)}`, { field: 'rolling' });
        return ms;
      });
      const table = await readCsvFile(flags.data);
      const data = buildDataset(table, { target: flags.target, exclude: listOption(flags.exclude), key: flags.key, time: flags.time, rollingWindowsMs: rolling });
      const trees = flags.trees === undefined ? undefined : parseCount(flags.trees, '--trees');
      const seed = parseCount(flags.seed, '--seed');
      const result = await trainModel(data, {
        kind,
        folds: parseCount(flags.folds, '--folds'),
        threshold,
        seed,
        ...(trees === undefined ? {} : { gbdt: { trees }, forest: { trees }, isolation: { trees } }),
        ...(flags.version === undefined ? {} : { version: flags.version }),
      });
      const path = await writeModelFile(flags.out, result.model);
      const plot = path.replace(/\.json$/, '-pr.svg');
      if (result.crossValidation !== null) await writeFile(plot, prCurveSvg(result.crossValidation.curve, { title: `${result.model.version} (cross-validated)`, threshold: result.model.threshold }));
      if (flags.json === true) {
        process.stdout.write(`${JSON.stringify({ model: path, plot: result.crossValidation === null ? null : plot, version: result.model.version, seconds: result.seconds, metrics: result.model.metrics }, null, 2)}\n`);
        return;
      }
      process.stdout.write(formatTrainReport(result, path, result.crossValidation === null ? undefined : plot));
    });
}

export function formatTrainReport(result: TrainResult, path: string, plot: string | undefined): string {
  const m = result.model;
  const lines = [
    `model ${m.kind} ${m.version}: ${m.training?.rows ?? 0} rows${m.training?.positives === null || m.training === null ? '' : `, ${m.training.positives} failures`}, ${m.features.length} features (${m.features.map((f) => f.name).join(', ')})`,
    `trained in ${result.seconds.toFixed(1)} s`,
  ];
  const cv = result.crossValidation;
  if (cv !== null) {
    const p = cv.pooled;
    lines.push(
      `${cv.folds.length}-fold stratified cross-validation, threshold ${m.threshold}:`,
      `  precision ${formatMetric(p.precision)}  recall ${formatMetric(p.recall)}  F1 ${formatMetric(p.f1)}  ROC AUC ${formatMetric(p.rocAuc)}  average precision ${formatMetric(p.averagePrecision)}`,
      `  F1 per fold ${cv.folds.map((f) => formatMetric(f.f1)).join(' ')} (mean ${formatMetric(cv.meanF1)})`,
      formatConfusion(p.confusion),
    );
  } else if (m.metrics !== null) {
    lines.push(`${m.metrics.method}: precision ${formatMetric(m.metrics.precision)} recall ${formatMetric(m.metrics.recall)} F1 ${formatMetric(m.metrics.f1)}`);
  } else {
    lines.push(`no labels: threshold ${m.threshold.toFixed(3)} flags the top 2% of training scores`);
  }
  lines.push(`model file: ${path}`);
  if (plot !== undefined) lines.push(`precision-recall curve: ${plot}`);
  return `${lines.join('\n')}\n`;
}
