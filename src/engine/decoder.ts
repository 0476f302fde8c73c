import { BACKFILL_FIELD, type Reading, type StreamSchema } from '../model/index.js';
import { ABSENT, FlatJsonScanner, NULL, NUMBER, OTHER, STRING, StringInterner } from './flat-json.js';
import { parseTime } from './time.js';

/** Why a record could not become a reading: the field, what was expected and what was got. */
export interface DecodeError {
  reason: string;
  field: string | undefined;
  expected: string | undefined;
  got: string | undefined;
  /** Device id, when it could be read (so the error can be attributed). */
  key: string | undefined;
  time: number | undefined;
}

const MAX_GOT = 80;

/** Short printable form of an offending value for error messages. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing (field missing)';
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.length > MAX_GOT ? `${value.slice(0, MAX_GOT)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/**
 * A decode problem as one sentence naming the field, what was expected and what was got (the
 * ops record's reason); `reason` replaces the problem's own opening words.
 */
export function describeProblem(problem: { reason: string; field?: string | undefined; expected?: string | undefined; got?: string | undefined }, reason = problem.reason): string {
  if (problem.field !== undefined) return `${reason}: field ${problem.field} expected ${problem.expected}, got ${problem.got}`;
  return problem.expected !== undefined ? `${reason}; expected ${problem.expected}` : reason;
}

function error(reason: string, field: string | undefined, expected: string | undefined, got: string | undefined, key?: string, time?: number): DecodeError {
  return { reason, field, expected, got, key, time };
}

/**
 * Turns one record (an NDJSON line or a parsed object, e.g. a CSV row of strings) into the
 * decoder's reusable `reading`. Returns null on success, or a DecodeError. The Reading object is
 * reused for the next record: a caller that keeps it must copy it (`copyReading`).
 *
 * @example
 * const decoder = new ReadingDecoder(config.streams.power);
 * const problem = decoder.decodeText('{"meterId":"m-1","timestamp":1763900000000,"usageKw":12.3}', 1);
 * if (!problem) engine.process(decoder.reading);
 */
export class ReadingDecoder {
  readonly reading: Reading;
  private readonly fields: string[];
  private readonly metricCount: number;
  private readonly scanner: FlatJsonScanner;
  /** Device and site ids, one string object per id (no allocation per reading). */
  private readonly ids = new StringInterner();
  /**
   * A small integer standing for the decoded reading's device id (the same for the same id from
   * this decoder), or -1 when there is none: the engine finds the device's state by it without
   * a hash lookup (`StreamEngine.process(reading, keyId)`).
   */
  keyId = -1;
  // Scanner slots: 0 key, 1 time, 2 site, 3 id, 4 the backfill marker, then one per metric (derived metrics have no field).
  private static readonly BACKFILL_SLOT = 4;
  private static readonly FIRST_METRIC_SLOT = 5;

  constructor(readonly schema: StreamSchema) {
    this.metricCount = schema.metrics.length;
    this.fields = schema.metrics.map((m) => m.field);
    // A field name that is not set gets a name no JSON key can equal ("\u0000…"), so it never matches.
    const none = (tag: string): string => `\u0000${tag}`;
    this.scanner = new FlatJsonScanner([
      schema.keyField,
      schema.timeField,
      schema.siteField ?? none('site'),
      schema.idField ?? none('id'),
      BACKFILL_FIELD,
      ...this.fields.map((f, i) => (f.length > 0 ? f : none(`derived${i}`))),
    ]);
    this.reading = {
      stream: schema.name,
      key: '',
      site: undefined,
      time: Number.NaN,
      values: new Float64Array(this.metricCount),
      id: undefined,
      offset: 0,
      backfill: false,
    };
  }

  /** One record as a string (a line of a text source). */
  decodeText(text: string, offset: number): DecodeError | null {
    this.keyId = -1;
    if (this.scanner.scanText(text) && this.fromScan(offset)) return null;
    return this.decodeSlow(text, offset);
  }

  /**
   * One record as the UTF-8 bytes `start`…`end` of `bytes`, read where they are (a file's or a
   * broker message's buffer): the common record is decoded without making a string of it.
   */
  decodeBytes(bytes: Buffer, start: number, end: number, offset: number): DecodeError | null {
    this.keyId = -1;
    if (this.scanner.scan(bytes, start, end) && this.fromScan(offset)) return null;
    return this.decodeSlow(bytes.toString('utf8', start, end), offset);
  }

  /** Not a simple flat record, or something about it is wrong: the general path decides and explains. */
  private decodeSlow(text: string, offset: number): DecodeError | null {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      return error(`malformed JSON: ${(e as Error).message}`, undefined, 'a JSON object', describeValue(text));
    }
    return this.decodeObject(parsed, offset);
  }

  /** Fills the reading from the scanner's slots; false when any field needs the general path. */
  private fromScan(offset: number): boolean {
    const sc = this.scanner;
    const kinds = sc.kinds;
    const schema = this.schema;
    const r = this.reading;
    let key: string;
    let keyId = -1;
    if (kinds[0] === STRING && sc.ends[0]! > sc.starts[0]!) {
      key = sc.internedOf(0, this.ids);
      keyId = this.ids.lastSlot;
    } else if (kinds[0] === NUMBER) key = String(sc.numbers[0]);
    else return false;
    let time: number;
    if (kinds[1] === NUMBER) time = parseTime(sc.numbers[1], schema.timeFormat);
    else if (kinds[1] === STRING) time = parseTime(sc.stringOf(1), schema.timeFormat);
    else return false;
    if (time !== time) return false;
    // The backfill marker: true or false here; any other value is for the general path to explain.
    const mark = kinds[ReadingDecoder.BACKFILL_SLOT];
    let backfill = false;
    if (mark === OTHER) backfill = sc.numbers[ReadingDecoder.BACKFILL_SLOT] === 1;
    else if (mark !== ABSENT && mark !== NULL) return false;
    const values = r.values;
    let present = 0;
    for (let m = 0; m < this.metricCount; m++) {
      const slot = ReadingDecoder.FIRST_METRIC_SLOT + m;
      const kind = kinds[slot];
      if (kind === NUMBER) {
        values[m] = sc.numbers[slot]!;
        present++;
      } else if (kind === ABSENT || kind === NULL) {
        values[m] = Number.NaN;
      } else if (kind === STRING) {
        const raw = sc.stringOf(slot);
        const v = raw.trim() === '' ? Number.NaN : Number(raw);
        if (!Number.isFinite(v)) return false;
        values[m] = v;
        present++;
      } else return false;
    }
    if (present === 0) return false;
    r.offset = offset;
    r.key = key;
    r.time = time;
    r.backfill = backfill;
    this.keyId = keyId;
    if (schema.siteField !== undefined) {
      r.site = kinds[2] === STRING && sc.ends[2]! > sc.starts[2]! ? sc.internedOf(2, this.ids) : kinds[2] === NUMBER ? String(sc.numbers[2]) : undefined;
    }
    if (schema.idField !== undefined) {
      r.id = kinds[3] === STRING ? sc.stringOf(3) : kinds[3] === NUMBER ? String(sc.numbers[3]) : undefined;
    }
    return true;
  }

  decodeObject(record: unknown, offset: number): DecodeError | null {
    this.keyId = -1;
    const schema = this.schema;
    if (record === null || typeof record !== 'object' || Array.isArray(record)) {
      return error('not a JSON object', undefined, 'a JSON object', describeValue(record));
    }
    const obj = record as Record<string, unknown>;
    const r = this.reading;
    r.offset = offset;

    const rawKey = obj[schema.keyField];
    let key: string;
    if (typeof rawKey === 'string' && rawKey.length > 0) key = rawKey;
    else if (typeof rawKey === 'number' && Number.isFinite(rawKey)) key = String(rawKey);
    else return error(`missing or invalid device id`, schema.keyField, 'a non-empty string', describeValue(rawKey));
    r.key = key;

    const rawTime = obj[schema.timeField];
    const time = parseTime(rawTime, schema.timeFormat);
    if (time !== time) {
      return error('missing or invalid timestamp', schema.timeField, timeExpectation(schema), describeValue(rawTime), key);
    }
    r.time = time;

    const mark = obj[BACKFILL_FIELD];
    if (mark === true) r.backfill = true;
    else if (mark === undefined || mark === null || mark === false) r.backfill = false;
    else return error('backfill marker is not a boolean', BACKFILL_FIELD, 'true or false', describeValue(mark), key, time);

    if (schema.siteField !== undefined) {
      const site = obj[schema.siteField];
      r.site = typeof site === 'string' && site.length > 0 ? site : typeof site === 'number' ? String(site) : undefined;
    }
    if (schema.idField !== undefined) {
      const id = obj[schema.idField];
      r.id = typeof id === 'string' ? id : typeof id === 'number' ? String(id) : undefined;
    }

    const values = r.values;
    const fields = this.fields;
    let present = 0;
    for (let m = 0; m < this.metricCount; m++) {
      const field = fields[m]!;
      if (field.length === 0) {
        values[m] = Number.NaN; // derived metric, filled in by the engine
        continue;
      }
      const v = obj[field];
      if (typeof v === 'number') {
        // JSON cannot carry NaN/Infinity, but objects from other sources can.
        if (!Number.isFinite(v)) return error('value is not finite', field, 'a finite number', String(v), key, time);
        values[m] = v;
        present++;
      } else if (v === undefined || v === null) {
        // Absent. (An empty string is a wrong type; CSV sources leave empty cells out instead.)
        values[m] = Number.NaN;
      } else if (typeof v === 'string') {
        const n = v.trim() === '' ? Number.NaN : Number(v);
        if (!Number.isFinite(n)) return error('value is not a number', field, 'a finite number', describeValue(v), key, time);
        values[m] = n;
        present++;
      } else {
        return error('value is not a number', field, 'a finite number', describeValue(v), key, time);
      }
    }
    if (present === 0) {
      return error('reading has no metric values', undefined, `at least one of ${fields.filter((f) => f).join(', ')}`, 'none', key, time);
    }
    return null;
  }
}

function timeExpectation(schema: StreamSchema): string {
  switch (schema.timeFormat) {
    case 'epoch-ms':
      return 'epoch milliseconds';
    case 'epoch-s':
      return 'epoch seconds';
    case 'iso':
      return 'an ISO-8601 time';
    default:
      return 'epoch ms, epoch s or an ISO-8601 time';
  }
}
