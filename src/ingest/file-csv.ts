/**
 * A tolerant CSV splitter that works on the lines of `readLines`.
 *
 * Why not csv-parse: replay must survive any single bad line and keep exact line numbers. With
 * csv-parse 7 (`skip_records_with_error`, `relax_quotes`, `max_record_size`) a record over
 * `max_record_size` ends the parse: every later record of the file is lost (checked with a
 * 300-byte line against a 100-byte limit). An over-long line must also never be buffered whole,
 * which csv-parse does up to the limit and the line reader does not do at all. So framing
 * (gzip, BOM, CRLF, over-long lines) stays in `readLines`, and this file only splits one line,
 * or a few lines when a quoted field holds a newline, into fields. It follows RFC 4180 quoting
 * (`"a, b"`, `"say ""hi"""`), and is relaxed where files in the wild are sloppy: a quote inside
 * an unquoted field is a plain character, and text after a closing quote is kept.
 */
import type { LineItem } from './line-reader.js';

/** Delimiters recognised when sniffing a CSV header, in order of preference on a tie. */
export const CSV_DELIMITERS = [',', ';', '\t', '|'] as const;

/** A quoted field may run over this many lines before it is declared unterminated. */
export const MAX_LINES_PER_RECORD = 100;

/**
 * Splits one CSV record into fields. Returns `undefined` when the text ends inside a quoted
 * field, i.e. the record continues on the next line.
 *
 * @example
 * splitCsvLine('m-1,"a, ""b""",3', ','); // ['m-1', 'a, "b"', '3']
 */
export function splitCsvLine(text: string, delimiter: string): string[] | undefined {
  // Fast path: most telemetry rows have no quotes at all.
  if (text.indexOf('"') === -1) return splitPlain(text, delimiter);
  const fields: string[] = [];
  const length = text.length;
  let position = 0;
  for (;;) {
    if (position === length) {
      fields.push('');
      return fields;
    }
    if (text.charCodeAt(position) === 0x22) {
      let value = '';
      let segment = position + 1;
      let cursor = segment;
      for (;;) {
        const quote = text.indexOf('"', cursor);
        if (quote === -1) return undefined;
        if (text.charCodeAt(quote + 1) === 0x22) {
          value += text.slice(segment, quote + 1);
          cursor = quote + 2;
          segment = cursor;
          continue;
        }
        value += text.slice(segment, quote);
        position = quote + 1;
        break;
      }
      const next = text.indexOf(delimiter, position);
      if (next === -1) {
        fields.push(value + text.slice(position));
        return fields;
      }
      fields.push(value + text.slice(position, next));
      position = next + delimiter.length;
    } else {
      const next = text.indexOf(delimiter, position);
      if (next === -1) {
        fields.push(text.slice(position));
        return fields;
      }
      fields.push(text.slice(position, next));
      position = next + delimiter.length;
    }
  }
}

// An indexOf loop is about twice as fast as String.prototype.split on short rows (measured).
function splitPlain(text: string, delimiter: string): string[] {
  const fields: string[] = [];
  let start = 0;
  let next = text.indexOf(delimiter);
  while (next !== -1) {
    fields.push(text.slice(start, next));
    start = next + delimiter.length;
    next = text.indexOf(delimiter, start);
  }
  fields.push(text.slice(start));
  return fields;
}

/**
 * Picks the delimiter of a header line: the candidate that occurs most often outside quotes
 * (`,` on a tie or when none occurs, which is a one-column file).
 *
 * @example
 * detectDelimiter('time;kwh;meter'); // ';'
 */
export function detectDelimiter(headerLine: string): string {
  const counts = new Map<string, number>();
  let quoted = false;
  for (const character of headerLine) {
    if (character === '"') quoted = !quoted;
    else if (!quoted && (CSV_DELIMITERS as readonly string[]).includes(character)) counts.set(character, (counts.get(character) ?? 0) + 1);
  }
  let best: string = ',';
  let bestCount = 0;
  for (const candidate of CSV_DELIMITERS) {
    const count = counts.get(candidate) ?? 0;
    if (count > bestCount) {
      best = candidate;
      bestCount = count;
    }
  }
  return best;
}

/**
 * Column names from a header row: trimmed; an empty name becomes `column_<n>`; a repeated name
 * gets `_2`, `_3`... so that every row maps to an object without losing a column.
 */
export function headerNames(fields: readonly string[]): string[] {
  const seen = new Set<string>();
  return fields.map((raw, index) => {
    const base = raw.trim() === '' ? `column_${index + 1}` : raw.trim();
    let name = base;
    for (let suffix = 2; seen.has(name); suffix += 1) name = `${base}_${suffix}`;
    seen.add(name);
    return name;
  });
}

/** One CSV data row, or why a line could not be one. `offset` is the row's first line number. */
export type CsvRow =
  | { offset: number; fields: string[] }
  | { offset: number; error: string; expected?: string; got?: string };

/**
 * Turns data lines (after the header) into rows. Holds back the lines of a record whose quoted
 * field continues on the next line; when such a record never closes (end of file, the byte
 * limit, or `MAX_LINES_PER_RECORD`) its first line becomes an error and the held-back lines are
 * read again as rows of their own, so one stray quote costs one row, not the rest of the file.
 */
export class CsvRowAssembler {
  private pending: Array<{ offset: number; text: string }> = [];
  private pendingLength = 0;

  constructor(
    private readonly columns: number,
    private readonly delimiter: string,
    private readonly maxLineBytes: number,
    private readonly limitLabel: string,
  ) {}

  /** Adds one line; completed rows (and errors) are appended to `out`. */
  push(line: LineItem, out: CsvRow[]): void {
    if ('oversize' in line) {
      this.abandonPending(out);
      out.push({ offset: line.offset, error: `line of ${line.bytes} bytes exceeds the ${this.limitLabel} limit` });
      return;
    }
    if (this.pending.length > 0) {
      this.pending.push(line);
      this.pendingLength += line.text.length + 1;
      this.tryPending(out);
      return;
    }
    this.startRecord(line, out);
  }

  /** End of input: a record still open is unterminated. */
  finish(out: CsvRow[]): void {
    while (this.pending.length > 0) this.abandonPending(out);
  }

  private startRecord(line: { offset: number; text: string }, out: CsvRow[]): void {
    if (line.text.length === 0 || line.text.trim().length === 0) return;
    const fields = splitCsvLine(line.text, this.delimiter);
    if (fields === undefined) {
      this.pending.push(line);
      this.pendingLength = line.text.length;
      return;
    }
    out.push(this.checked(line.offset, fields));
  }

  private tryPending(out: CsvRow[]): void {
    const text = this.pending.map((line) => line.text).join('\n');
    const fields = splitCsvLine(text, this.delimiter);
    if (fields !== undefined) {
      const offset = (this.pending[0] as { offset: number }).offset;
      this.pending = [];
      this.pendingLength = 0;
      out.push(this.checked(offset, fields));
      return;
    }
    // String length undercounts UTF-8 bytes; good enough to bound what is held back.
    if (this.pendingLength > this.maxLineBytes || this.pending.length >= MAX_LINES_PER_RECORD) this.abandonPending(out);
  }

  private abandonPending(out: CsvRow[]): void {
    const [first, ...rest] = this.pending;
    this.pending = [];
    this.pendingLength = 0;
    if (first === undefined) return;
    out.push({
      offset: first.offset,
      error: 'unterminated quoted field: a field opened with " is not closed',
      expected: 'a closing quote',
      got: 'end of record',
    });
    for (const line of rest) {
      if (this.pending.length > 0) {
        this.pending.push(line);
        this.pendingLength += line.text.length + 1;
        this.tryPending(out);
      } else {
        this.startRecord(line, out);
      }
    }
  }

  private checked(offset: number, fields: string[]): CsvRow {
    if (fields.length === this.columns) return { offset, fields };
    return {
      offset,
      error: `row has ${fields.length} columns, the header has ${this.columns}`,
      expected: `${this.columns} columns`,
      got: String(fields.length),
    };
  }
}
