/**
 * `gridpulse eval`: scores the alerts and ops events of a replay against the simulator's
 * labels; or, with `--model`, a trained model against a labelled CSV file (precision, recall, F1,
 * ROC AUC, confusion matrix and a precision-recall curve as SVG). Always exits 0 when the inputs
 * are valid: a poor score is a result, not an error.
 */
import { createReadStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { Command } from 'commander';
import { parseDuration } from '../../config/index.js';
import {
  type DetectionRecord,
  type EvalLabelSet,
  classificationMetrics,
  datasetForModel,
  evaluateDetections,
  formatConfusion,
  formatEvalReport,
  formatMetric,
  loadModel,
  parseDetectionRecord,
  parseLabelSet,
  prCurve,
  prCurveSvg,
  readCsvFile,
} from '../../ml/index.js';
import { GpError } from '../../model/index.js';

interface EvalFlags {
  labels: string;
  tolerance: string;
  json?: boolean;
  model?: string;
  data?: string;
  target?: string;
  key?: string;
  time?: string;
  threshold?: string;
  plot?: string;
}

export function register(program: Command): void {
  program
    .command('eval')
    .description(
      'Score detections against labelled anomalies (from `gridpulse simulate`): recall, precision, F1 and detection delay per anomaly type. ' +
        'The results are the files of `gridpulse replay --alerts-out ... --ops-out ...`.',
    )
    .argument('[results...]', 'NDJSON files of alert events and/or ops events (.gz allowed); each line is recognised by its fields')
    .option('--labels <file>', 'labels file written by gridpulse simulate', 'labels.json')
    .option('--tolerance <duration>', "how long after a label's end a detection still counts (it counts from 2 min before its start)", '15m')
    .option('--json', 'print the report as JSON instead of a table')
    .option('--model <file>', 'evaluate a model file (gridpulse train) on --data instead of detections')
    .option('--data <csv>', 'with --model: labelled CSV data; model inputs are taken from columns of the same name or machine role')
    .option('--target <column>', 'with --model: the label column (1/true/yes = failure)')
    .option('--key <column>', 'with --model: device id column (for rolling features)')
    .option('--time <column>', 'with --model: event time column (for rolling features)')
    .option('--threshold <score>', "with --model: score at which a row is a failure (default: the model's threshold)")
    .option('--plot <file>', 'with --model: where to write the precision-recall curve (SVG)', 'pr-curve.svg')
    .addHelpText(
      'after',
      [
        '',
        'Label type → detections: spike, drop, outage, sustained_high, overstrain, heat_dissipation, power_failure, tool_wear →',
        'alerts of that type; gap → silence alerts or ops gap; late → ops out_of_order/late/too_late; duplicate → ops duplicate;',
        'malformed → ops invalid or clock_skew. Late, duplicate and malformed labels match ops events by line number exactly',
        '(no delay is measured for them: a line is flagged when it is read).',
        'A detection matching no label of its type but one of another type on the same device is "explained" and left out of',
        'precision (a drop alert during an outage); it is counted in its own column.',
      ].join('\n'),
    )
    .action(async (results: string[], flags: EvalFlags) => {
      if (flags.model !== undefined) {
        await evaluateModel(flags.model, flags);
        return;
      }
      if (results.length === 0) {
        throw new GpError('GP_INPUT_INVALID', 'results: expected NDJSON files of alert/ops events (or --model <file> --data <csv> --target <column>), got none', { field: 'results' });
      }
      const toleranceMs = toleranceOption(flags.tolerance);
      const labels = await readLabels(flags.labels);
      const records: DetectionRecord[] = [];
      for (const file of results) {
        for await (const record of readRecords(file)) records.push(record);
      }
      const report = evaluateDetections(labels, records, { toleranceMs });
      process.stdout.write(flags.json === true ? `${JSON.stringify(report, null, 2)}\n` : formatEvalReport(report));
    });
}

function toleranceOption(text: string): number {
  try {
    return parseDuration(/^\s*\d+\s*$/.test(text) ? Number(text) : text);
  } catch (error) {
    if (!(error instanceof GpError)) throw error;
    throw new GpError('GP_INPUT_INVALID', `--tolerance: expected a duration like "15m" or "90s", got ${JSON.stringify(text)}`, { field: 'tolerance', got: text });
  }
}

function missingFile(path: string, error: unknown): Error {
  if ((error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    return new GpError('GP_FILE_NOT_FOUND', `${path}: no such file`, { path }, { cause: error });
  }
  return error instanceof Error ? error : new Error(String(error));
}

/** Reads and checks a labels file written by `gridpulse simulate`. */
export async function readLabels(path: string): Promise<EvalLabelSet> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw missingFile(path, error);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new GpError('GP_LABELS_INVALID', `${path}: expected a JSON labels file, got text that is not JSON (${(error as Error).message})`, { path }, { cause: error });
  }
  try {
    return parseLabelSet(value);
  } catch (error) {
    if (error instanceof GpError) throw new GpError(error.code, `${path} ${error.message}`, { ...error.details, path }, { cause: error });
    throw error;
  }
}

/** The detections in an alerts or ops NDJSON file (gzip too), one at a time. */
export async function* readRecords(path: string): AsyncGenerator<DetectionRecord> {
  const file = createReadStream(path);
  const opened = new Promise<void>((resolve, reject) => {
    file.once('open', () => resolve());
    file.once('error', (error) => reject(missingFile(path, error)));
  });
  await opened;
  let input: Readable = file;
  if (path.endsWith('.gz')) {
    const gunzip = createGunzip();
    file.pipe(gunzip);
    file.once('error', (error) => gunzip.destroy(error));
    input = gunzip;
  }
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let lineNumber = 0;
  for await (const line of lines) {
    lineNumber += 1;
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new GpError('GP_INPUT_INVALID', `${path}:${lineNumber}: expected an AlertEvent or OpsEvent JSON line, got ${JSON.stringify(line.slice(0, 80))}`, {
        path,
        line: lineNumber,
      });
    }
    yield parseDetectionRecord(value, `${path}:${lineNumber}`);
  }
}

/** `gridpulse eval --model`: the model's scores on labelled data against the labels. */
async function evaluateModel(path: string, flags: EvalFlags): Promise<void> {
  if (flags.data === undefined) throw new GpError('GP_INPUT_INVALID', '--data: expected a labelled CSV file to evaluate the model on, got none', { field: 'data' });
  if (flags.target === undefined) throw new GpError('GP_INPUT_INVALID', '--target: expected the label column of --data, got none', { field: 'target' });
  const loaded = await loadModel(path);
  try {
    const model = loaded.model;
    const threshold = flags.threshold === undefined ? model.threshold : Number(flags.threshold);
    if (!(threshold >= 0 && threshold <= 1)) throw new GpError('GP_INPUT_INVALID', `--threshold: expected a score from 0 to 1, got ${JSON.stringify(flags.threshold)}`, { field: 'threshold' });
    const table = await readCsvFile(flags.data);
    const data = datasetForModel(table, model, { target: flags.target, key: flags.key, time: flags.time });
    const rows: Float64Array[] = [];
    for (let r = 0; r < data.rows; r++) rows.push(Float64Array.from(data.columns, (column) => column[r]!));
    const scores = await loaded.score(rows);
    const labels = data.labels!;
    const metrics = classificationMetrics(scores, labels, threshold);
    await writeFile(flags.plot ?? 'pr-curve.svg', prCurveSvg(prCurve(scores, labels), { title: `${model.version} on ${flags.data}`, threshold }));
    const sameData = model.training?.fingerprint === data.fingerprint;
    if (flags.json === true) {
      process.stdout.write(`${JSON.stringify({ model: path, version: model.version, data: flags.data, trainingData: sameData, metrics, crossValidated: model.metrics, plot: flags.plot }, null, 2)}\n`);
      return;
    }
    const lines = [
      `model ${model.kind} ${model.version} on ${flags.data} (${data.rows} rows, ${metrics.confusion.tp + metrics.confusion.fn} failures), threshold ${threshold}:`,
      `  precision ${formatMetric(metrics.precision)}  recall ${formatMetric(metrics.recall)}  F1 ${formatMetric(metrics.f1)}  ROC AUC ${formatMetric(metrics.rocAuc)}  average precision ${formatMetric(metrics.averagePrecision)}`,
      formatConfusion(metrics.confusion),
    ];
    if (sameData) lines.push('note: this is the model\'s own training data (same SHA-256), so these figures are optimistic; the cross-validated ones below are the honest estimate');
    if (model.metrics !== null) {
      lines.push(`from training (${model.metrics.method}): precision ${formatMetric(model.metrics.precision)}  recall ${formatMetric(model.metrics.recall)}  F1 ${formatMetric(model.metrics.f1)}  ROC AUC ${formatMetric(model.metrics.rocAuc)}`);
    }
    lines.push(`precision-recall curve: ${flags.plot ?? 'pr-curve.svg'}`);
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await loaded.close();
  }
}
