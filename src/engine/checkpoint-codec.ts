/**
 * Building blocks of checkpoints: JSON has no NaN, ±Infinity or −0 and turns typed arrays into
 * objects with numbered keys, while engine and detector state is full of all of them. These
 * helpers carry such values through `JSON.stringify` / `JSON.parse` exactly.
 */
import { Buffer } from 'node:buffer';
import { GpError } from '../model/index.js';

/** A number as JSON carries it: finite numbers as they are, the rest as text. */
export type JsonNumber = number | 'NaN' | 'Infinity' | '-Infinity' | '-0';

export function encodeNumber(value: number): JsonNumber {
  if (Number.isFinite(value)) return Object.is(value, -0) ? '-0' : value;
  return Number.isNaN(value) ? 'NaN' : value > 0 ? 'Infinity' : '-Infinity';
}

/** The number `encodeNumber` gave `json` for, or undefined when `json` is no such value. */
export function decodeNumber(json: unknown): number | undefined {
  if (typeof json === 'number') return Number.isFinite(json) ? json : undefined;
  switch (json) {
    case 'NaN':
      return Number.NaN;
    case 'Infinity':
      return Number.POSITIVE_INFINITY;
    case '-Infinity':
      return Number.NEGATIVE_INFINITY;
    case '-0':
      return -0;
    default:
      return undefined;
  }
}

/**
 * A JSON-safe copy of plain state (numbers, strings, booleans, null, arrays, Float64Arrays,
 * plain objects): Float64Arrays become `{ "$f64": [...] }`, non-finite numbers and −0
 * `{ "$num": "NaN" }`. `undefined` inside arrays becomes null, as with `JSON.stringify`.
 *
 * @example
 * const text = JSON.stringify(plainStateToJson({ v: new Float64Array([1, NaN]), t: -Infinity }));
 * plainStateFromJson(JSON.parse(text)); // { v: Float64Array [1, NaN], t: -Infinity }
 */
export function plainStateToJson(state: unknown): unknown {
  if (typeof state === 'number') return Number.isFinite(state) && !Object.is(state, -0) ? state : { $num: String(encodeNumber(state)) };
  if (state instanceof Float64Array) return { $f64: Array.from(state, (x) => (Number.isFinite(x) && !Object.is(x, -0) ? x : encodeNumber(x))) };
  if (Array.isArray(state)) return state.map(plainStateToJson);
  if (state !== null && typeof state === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(state)) out[key] = plainStateToJson(value);
    return out;
  }
  return state;
}

/** The state a `plainStateToJson` copy came from. */
export function plainStateFromJson(json: unknown): unknown {
  if (Array.isArray(json)) return json.map(plainStateFromJson);
  if (json !== null && typeof json === 'object') {
    const record = json as Record<string, unknown>;
    if (Array.isArray(record.$f64)) return Float64Array.from(record.$f64 as unknown[], (x) => decodeNumber(x) ?? Number(x));
    if (typeof record.$num === 'string' && Object.keys(record).length === 1) return decodeNumber(record.$num) ?? Number(record.$num);
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(record)) out[key] = plainStateFromJson(value);
    return out;
  }
  return json;
}

// ---- packed numbers --------------------------------------------------------------------------

// One tag byte per number, then its bytes (little-endian): most state is small counters, zeros,
// timestamps and offsets, which take 1–7 bytes instead of a float64's 8. Everything else is the
// float64 itself, bit for bit.
const SMALL_MAX = 239;
const TAG_U16 = 240;
const TAG_U32 = 241;
const TAG_U48 = 242;
const TAG_NEG_U32 = 243;
const TAG_NAN = 244;
const TAG_POS_INF = 245;
const TAG_NEG_INF = 246;
const TAG_F64 = 255;
const U48 = 2 ** 48;

/**
 * Collects numbers and packs them into one base64 string, exactly (NaN, ±Infinity and −0
 * included): small non-negative integers take one byte, integers up to 2^48 (epoch
 * milliseconds) up to seven, any other value nine. One writer is reused for many blobs, so
 * packing allocates only the output string.
 */
export class PackedWriter {
  private bytes = new Uint8Array(4096);
  private view = new DataView(this.bytes.buffer);
  /** Bytes written since the last reset; may be set back to an earlier value to drop what followed. */
  length = 0;

  reset(): void {
    this.length = 0;
  }

  push(value: number): void {
    if (this.length + 9 > this.bytes.length) this.grow();
    const bytes = this.bytes;
    let at = this.length;
    if (Number.isInteger(value) && !Object.is(value, -0)) {
      if (value >= 0) {
        if (value <= SMALL_MAX) {
          bytes[at++] = value;
        } else if (value < 0x1_0000) {
          bytes[at++] = TAG_U16;
          this.view.setUint16(at, value, true);
          at += 2;
        } else if (value < 0x1_0000_0000) {
          bytes[at++] = TAG_U32;
          this.view.setUint32(at, value, true);
          at += 4;
        } else if (value < U48) {
          bytes[at++] = TAG_U48;
          this.view.setUint32(at, value % 0x1_0000_0000, true);
          this.view.setUint16(at + 4, Math.floor(value / 0x1_0000_0000), true);
          at += 6;
        } else {
          at = this.float(at, value);
        }
      } else if (value > -0x1_0000_0000) {
        bytes[at++] = TAG_NEG_U32;
        this.view.setUint32(at, -value, true);
        at += 4;
      } else {
        at = this.float(at, value);
      }
    } else if (value !== value) {
      bytes[at++] = TAG_NAN;
    } else if (value === Infinity) {
      bytes[at++] = TAG_POS_INF;
    } else if (value === -Infinity) {
      bytes[at++] = TAG_NEG_INF;
    } else {
      at = this.float(at, value);
    }
    this.length = at;
  }

  pushAll(values: ArrayLike<number>, from = 0, to = values.length): void {
    for (let i = from; i < to; i++) this.push(values[i]!);
  }

  /** The bytes written since the last reset, as base64. */
  toBase64(): string {
    return Buffer.from(this.bytes.buffer, 0, this.length).toString('base64');
  }

  private float(at: number, value: number): number {
    this.bytes[at] = TAG_F64;
    this.view.setFloat64(at + 1, value, true);
    return at + 9;
  }

  private grow(): void {
    const bytes = new Uint8Array(this.bytes.length * 2);
    bytes.set(this.bytes.subarray(0, this.length));
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer);
  }
}

/** Reads back what a `PackedWriter` packed; a read past the end or a bad tag throws `fail(reason)`. */
export class PackedReader {
  private position = 0;
  private readonly bytes: Uint8Array;
  private readonly view: DataView;

  constructor(
    base64: string,
    private readonly fail: (reason: string) => GpError,
  ) {
    const decoded = Buffer.from(base64, 'base64');
    // Buffer skips characters outside the alphabet: a damaged text decodes to fewer bytes.
    const expected = Math.floor((base64.length * 3) / 4) - (base64.endsWith('==') ? 2 : base64.endsWith('=') ? 1 : 0);
    if (decoded.length !== expected) throw fail('expected base64 text');
    this.bytes = decoded;
    this.view = new DataView(decoded.buffer, decoded.byteOffset, decoded.byteLength);
  }

  /** Bytes not read yet (at least as many as the numbers left). */
  get remaining(): number {
    return this.bytes.length - this.position;
  }

  next(): number {
    const at = this.position;
    if (at >= this.bytes.length) throw this.fail('ended early');
    const tag = this.bytes[at]!;
    if (tag <= SMALL_MAX) {
      this.position = at + 1;
      return tag;
    }
    const size = tag === TAG_U16 ? 2 : tag === TAG_U32 || tag === TAG_NEG_U32 ? 4 : tag === TAG_U48 ? 6 : tag === TAG_F64 ? 8 : 0;
    if (at + 1 + size > this.bytes.length) throw this.fail('ended early');
    this.position = at + 1 + size;
    switch (tag) {
      case TAG_U16:
        return this.view.getUint16(at + 1, true);
      case TAG_U32:
        return this.view.getUint32(at + 1, true);
      case TAG_U48:
        return this.view.getUint32(at + 1, true) + this.view.getUint16(at + 5, true) * 0x1_0000_0000;
      case TAG_NEG_U32:
        return -this.view.getUint32(at + 1, true);
      case TAG_NAN:
        return Number.NaN;
      case TAG_POS_INF:
        return Infinity;
      case TAG_NEG_INF:
        return -Infinity;
      case TAG_F64:
        return this.view.getFloat64(at + 1, true);
      default:
        throw this.fail(`unknown tag ${tag} at byte ${at}`);
    }
  }

  /** The next value, which must be an integer in [min, max]. */
  nextInteger(min: number, max: number, what: string): number {
    const value = this.next();
    if (!Number.isInteger(value) || value < min || value > max) throw this.fail(`${what}: expected an integer from ${min} to ${max}, got ${value}`);
    return value;
  }

  /** Reads the next `count` values into `target` from `offset`. */
  into(target: Float64Array | number[], offset: number, count: number): void {
    for (let i = 0; i < count; i++) target[offset + i] = this.next();
  }
}

/** Describes a value in an error message, shortened. */
export function describeJson(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  let text: string;
  try {
    text = JSON.stringify(value) ?? typeof value;
  } catch {
    text = typeof value;
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
