/**
 * File sources for `gridpulse replay`: format sniffing and the record stream of one CSV or NDJSON
 * file (plain or gzip), read in a streaming way so that files larger than memory work.
 */
import { GpError } from '../model/index.js';
import { CsvRowAssembler, detectDelimiter, headerNames, splitCsvLine, type CsvRow } from './file-csv.js';
import { DEFAULT_MAX_LINE_BYTES, flattenBatches, readLineBatches, type LineItem } from './line-reader.js';
import { FILE_KEY_FIELD, ROW_TIME_FIELD, type DetectedLayout } from './detect-columns.js';

/** Records taken from the start of a file to detect its layout. */
export const DEFAULT_SAMPLE_SIZE = 200;

export interface SniffResult {
  format: 'ndjson' | 'csv';
  /** CSV only: column names of the header row. */
  header?: string[];
  /** The first records that parse (CSV rows as field → string, empty cells left out). */
  sample: Record<string, unknown>[];
  /** CSV only: `,` `;` tab or `|`. */
  delimiter?: string;
}

export interface SniffOptions {
  maxLineBytes?: number;
  /** Records to collect (default 200). */
  sampleSize?: number;
}

/**
 * A record of a file source, tagged with its position (1-based line number; for a CSV record
 * over several lines, its first line).
 * - `json`: one NDJSON line, as text, for the engine to decode.
 * - `object`: a CSV row (column → string; empty cells are left out so they read as missing), or
 *   an NDJSON record when the layout synthesizes fields: `ROW_TIME_FIELD` (epoch ms) for a
 *   `@row` layout and `FILE_KEY_FIELD` (the device name) when `layout.keyField` is undefined.
 * - `error`: a line that cannot be a record; becomes an ops event, and replay goes on.
 */
export type SourceRecord =
  | { offset: number; kind: 'json'; text: string }
  | { offset: number; kind: 'object'; value: Record<string, unknown> }
  | SourceError;

export interface SourceError {
  offset: number;
  kind: 'error';
  reason: string;
  field?: string;
  expected?: string;
  got?: string;
}

export interface ReadRecordsOptions {
  /** Longest line accepted (default 1 MiB); longer lines become error records. */
  maxLineBytes?: number;
}

/**
 * Looks at the start of a file: NDJSON if the first non-empty line starts with `{` or `[`, CSV
 * otherwise (delimiter from the header: `,` `;` tab `|`), and parses up to `sampleSize`
 * records for `detectColumns`. Lines that do not parse are left out of the sample; replay
 * reports them.
 *
 * @example
 * const { format, header, sample } = await sniffFile('lcl.csv.gz');
 * const layout = detectColumns(sample, header, 'lcl.csv.gz', {});
 */
export async function sniffFile(path: string, options: SniffOptions = {}): Promise<SniffResult> {
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const sampleSize = options.sampleSize ?? DEFAULT_SAMPLE_SIZE;
  // Bounds the look-ahead of a file whose first lines are mostly bad.
  const maxLines = sampleSize * 10 + 100;
  const sample: Record<string, unknown>[] = [];
  let format: SniffResult['format'] | undefined;
  let header: string[] | undefined;
  let delimiter: string | undefined;
  let assembler: CsvRowAssembler | undefined;
  let linesSeen = 0;
  const rows: CsvRow[] = [];
  const takeRows = (): void => {
    for (const row of rows) if ('fields' in row && header !== undefined && sample.length < sampleSize) sample.push(rowObject(header, row.fields));
    rows.length = 0;
  };

  scan: for await (const batch of readLineBatches(path, { maxLineBytes })) {
    for (const line of batch) {
      linesSeen += 1;
      if (sample.length >= sampleSize || linesSeen > maxLines) break scan;
      if (format === undefined) {
        if ('oversize' in line) throw oversizeHeader(path, line.offset, line.bytes, maxLineBytes);
        const start = line.text.trimStart();
        if (start === '') continue;
        if (start.startsWith('{') || start.startsWith('[')) {
          format = 'ndjson';
        } else {
          format = 'csv';
          const opened = openCsv(path, line.offset, line.text, maxLineBytes);
          header = opened.header;
          delimiter = opened.delimiter;
          assembler = opened.assembler;
          continue;
        }
      }
      if (format === 'ndjson') {
        if (!('text' in line)) continue;
        for (const record of jsonObjects(line.text)) if (sample.length < sampleSize) sample.push(record);
      } else if (assembler !== undefined) {
        assembler.push(line, rows);
        takeRows();
      }
    }
  }
  if (assembler !== undefined && sample.length < sampleSize) {
    assembler.finish(rows);
    takeRows();
  }
  if (format === 'ndjson') return { format, sample };
  const result: SniffResult = { format: 'csv', sample };
  if (header !== undefined) result.header = header;
  if (delimiter !== undefined) result.delimiter = delimiter;
  return result;
}

/**
 * Streams the records of one file with a detected layout. Reads the file's own header (CSV) and
 * checks that the layout's key and time columns are in it. Without a layout (NDJSON whose
 * records name their own stream fields) nothing is checked or added. Bad lines become
 * `error` records and reading goes on; only an unreadable file or a header that does not fit
 * the layout throws.
 *
 * For a `@row` layout, row i (0-based, counting every data line, good or bad, so that a bad row
 * does not shift the times of the rows after it) gets `layout.rowTime.startMs + i × intervalMs`
 * under `ROW_TIME_FIELD`.
 *
 * @example
 * for await (const record of readRecords('lcl.csv', layout)) {
 *   if (record.kind === 'error') ops(record.offset, record.reason);
 *   else engine.accept(record);
 * }
 */
export function readRecords(path: string, layout: DetectedLayout | undefined, options: ReadRecordsOptions = {}): AsyncIterableIterator<SourceRecord> {
  return flattenBatches(readRecordBatches(path, layout, options));
}

/**
 * Same as `readRecords`, one array per chunk of input: the faster form for the replay loop.
 *
 * @example
 * for await (const records of readRecordBatches(path, layout)) for (const record of records) handle(record);
 */
export async function* readRecordBatches(path: string, layout: DetectedLayout | undefined, options: ReadRecordsOptions = {}): AsyncGenerator<SourceRecord[]> {
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const limit = formatBytes(maxLineBytes);
  const synthesize = new RecordSynthesizer(layout);
  let format: 'ndjson' | 'csv' | undefined;
  let header: string[] = [];
  let assembler: CsvRowAssembler | undefined;
  const rows: CsvRow[] = [];

  for await (const batch of readLineBatches(path, { maxLineBytes })) {
    const out: SourceRecord[] = [];
    for (const line of batch) {
      if (format === undefined) {
        if ('oversize' in line) throw oversizeHeader(path, line.offset, line.bytes, maxLineBytes);
        const start = line.text.trimStart();
        if (start === '') continue;
        if (start.startsWith('{') || start.startsWith('[')) {
          format = 'ndjson';
        } else {
          format = 'csv';
          const opened = openCsv(path, line.offset, line.text, maxLineBytes);
          header = opened.header;
          assembler = opened.assembler;
          if (layout !== undefined) checkHeader(path, header, layout);
          continue;
        }
      }
      if (assembler !== undefined) {
        assembler.push(line, rows);
        csvRecords(rows, header, synthesize, out);
      } else {
        jsonRecords(line, limit, synthesize, out);
      }
    }
    if (out.length > 0) yield out;
  }
  if (assembler !== undefined) {
    assembler.finish(rows);
    const out: SourceRecord[] = [];
    csvRecords(rows, header, synthesize, out);
    if (out.length > 0) yield out;
  }
}

/** Adds the synthesized `@row` time and `@file` key, and counts rows for the former. */
class RecordSynthesizer {
  readonly needed: boolean;
  private rowIndex = 0;
  private readonly startMs: number;
  private readonly intervalMs: number;
  private readonly rowTime: boolean;
  private readonly deviceName: string | undefined;

  constructor(layout: DetectedLayout | undefined) {
    this.rowTime = layout?.rowTime !== undefined;
    this.startMs = layout?.rowTime?.startMs ?? 0;
    this.intervalMs = layout?.rowTime?.intervalMs ?? 0;
    this.deviceName = layout !== undefined && layout.keyField === undefined ? layout.deviceName : undefined;
    this.needed = this.rowTime || this.deviceName !== undefined;
  }

  /** A data row that will not become a record still takes its place in time. */
  skipRow(): void {
    this.rowIndex += 1;
  }

  apply(value: Record<string, unknown>): Record<string, unknown> {
    if (this.rowTime) value[ROW_TIME_FIELD] = this.startMs + this.rowIndex * this.intervalMs;
    if (this.deviceName !== undefined) value[FILE_KEY_FIELD] = this.deviceName;
    this.rowIndex += 1;
    return value;
  }
}

function csvRecords(rows: CsvRow[], header: readonly string[], synthesize: RecordSynthesizer, out: SourceRecord[]): void {
  for (const row of rows) {
    if ('fields' in row) {
      out.push({ offset: row.offset, kind: 'object', value: synthesize.apply(rowObject(header, row.fields)) });
    } else {
      synthesize.skipRow();
      out.push(errorRecord(row.offset, row.error, undefined, row.expected, row.got));
    }
  }
  rows.length = 0;
}

function jsonRecords(line: LineItem, limit: string, synthesize: RecordSynthesizer, out: SourceRecord[]): void {
  if ('oversize' in line) {
    synthesize.skipRow();
    out.push(errorRecord(line.offset, `line of ${line.bytes} bytes exceeds the ${limit} limit`));
    return;
  }
  if (!synthesize.needed) {
    const first = line.text.charCodeAt(0);
    // `{` or `[` first: the usual line, no need to look for blanks.
    if (first === 0x7b || first === 0x5b || line.text.trim() !== '') out.push({ offset: line.offset, kind: 'json', text: line.text });
    return;
  }
  if (line.text.trim() === '') return;
  // Fields must be added, so the line is decoded here rather than by the engine.
  let parsed: unknown;
  try {
    parsed = JSON.parse(line.text);
  } catch (error) {
    synthesize.skipRow();
    out.push(errorRecord(line.offset, `malformed JSON: ${error instanceof Error ? error.message : String(error)}`, undefined, 'a JSON object', preview(line.text)));
    return;
  }
  for (const item of Array.isArray(parsed) ? (parsed as unknown[]) : [parsed]) {
    if (isPlainObject(item)) {
      out.push({ offset: line.offset, kind: 'object', value: synthesize.apply(item) });
    } else {
      synthesize.skipRow();
      out.push(errorRecord(line.offset, `expected a JSON object, got ${describeJson(item)}`, undefined, 'a JSON object', describeJson(item)));
    }
  }
}

function openCsv(path: string, offset: number, headerLine: string, maxLineBytes: number): { header: string[]; delimiter: string; assembler: CsvRowAssembler } {
  const delimiter = detectDelimiter(headerLine);
  const fields = splitCsvLine(headerLine, delimiter);
  if (fields === undefined) {
    throw new GpError('GP_INPUT_INVALID', `${path}: line ${offset} (the CSV header) has a quoted field that is not closed`, { path, offset });
  }
  const header = headerNames(fields);
  return { header, delimiter, assembler: new CsvRowAssembler(header.length, delimiter, maxLineBytes, formatBytes(maxLineBytes)) };
}

function checkHeader(path: string, header: readonly string[], layout: DetectedLayout): void {
  const missing: string[] = [];
  if (layout.rowTime === undefined && !header.includes(layout.timeField)) missing.push(`time column "${layout.timeField}"`);
  if (layout.keyField !== undefined && !header.includes(layout.keyField)) missing.push(`key column "${layout.keyField}"`);
  if (missing.length > 0) {
    throw new GpError(
      'GP_INPUT_UNKNOWN_LAYOUT',
      `${path}: the header has no ${missing.join(' and no ')}. Columns found: ${header.map((column) => JSON.stringify(column)).join(', ')}. Map them with --key, --time, --site, --metrics, --energy, --stream.`,
      { path, columns: [...header] },
    );
  }
}

function rowObject(header: readonly string[], fields: readonly string[]): Record<string, unknown> {
  const value: Record<string, unknown> = {};
  for (let index = 0; index < header.length; index += 1) {
    const field = fields[index];
    if (field !== undefined && field !== '') value[header[index] as string] = field;
  }
  return value;
}

function* jsonObjects(text: string): Generator<Record<string, unknown>> {
  if (text.trim() === '') return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return;
  }
  for (const item of Array.isArray(parsed) ? (parsed as unknown[]) : [parsed]) if (isPlainObject(item)) yield item;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function errorRecord(offset: number, reason: string, field?: string, expected?: string, got?: string): SourceError {
  const record: SourceError = { offset, kind: 'error', reason };
  if (field !== undefined) record.field = field;
  if (expected !== undefined) record.expected = expected;
  if (got !== undefined) record.got = got;
  return record;
}

function oversizeHeader(path: string, offset: number, bytes: number, maxLineBytes: number): GpError {
  return new GpError('GP_INPUT_INVALID', `${path}: line ${offset}, the first non-empty line, has ${bytes} bytes and exceeds the ${formatBytes(maxLineBytes)} limit; cannot tell the format`, { path, offset });
}

function describeJson(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

function preview(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** `1 MiB`, `64 KiB` or `1000 bytes`: how limits read in messages. */
export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024 && bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} bytes`;
}
