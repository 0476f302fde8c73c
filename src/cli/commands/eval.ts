/**
 * `gridpulse eval`: scores the alerts and ops events of a replay against the simulator's
 * labels. Always exits 0 when the inputs are valid: a poor score is a result, not an error.
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { Command } from 'commander';
import { parseDuration } from '../../config/index.js';
import { type DetectionRecord, type EvalLabelSet, evaluateDetections, formatEvalReport, parseDetectionRecord, parseLabelSet } from '../../ml/index.js';
import { GpError } from '../../model/index.js';

interface EvalFlags {
  labels: string;
  tolerance: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('eval')
    .description(
      'Score detections against labelled anomalies (from `gridpulse simulate`): recall, precision, F1 and detection delay per anomaly type. ' +
        'The results are the files of `gridpulse replay --alerts-out ... --ops-out ...`.',
    )
    .argument('<results...>', 'NDJSON files of alert events and/or ops events (.gz allowed); each line is recognised by its fields')
    .option('--labels <file>', 'labels file written by gridpulse simulate', 'labels.json')
    .option('--tolerance <duration>', "how long after a label's end a detection still counts (it counts from 2 min before its start)", '15m')
    .option('--json', 'print the report as JSON instead of a table')
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
