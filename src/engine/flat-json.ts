/**
 * An allocation-free scanner for the common shape of a telemetry record: one flat JSON object
 * whose values are numbers, plain strings, true/false/null. It reads the record's UTF-8 bytes
 * where they are and finds only the fields it was told about — no string per record, no object,
 * no string per number — which makes it about twice as fast as decoding the bytes to a string
 * and `JSON.parse`-ing it.
 *
 * Anything else (escapes in strings, nested objects or arrays, numbers it cannot convert
 * exactly, malformed text) makes `scan` return false, and the caller falls back to
 * `JSON.parse`, which then also produces the error message. So the scanner never decides
 * that input is invalid; it only decides that input is simple.
 */

/** Kind of value found for a field. */
export const ABSENT = 0;
export const NUMBER = 1;
export const STRING = 2;
export const NULL = 3;
export const OTHER = 4; // true / false

// 10^0 .. 10^22 are exact doubles; m × 10^e or m / 10^e with m < 2^53 is then correctly rounded (Clinger's fast path).
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);
const MAX_EXACT_MANTISSA = 2 ** 53;
const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;

/**
 * Strings seen before, found again by the bytes they came from without allocating: device and
 * site ids repeat on every reading, so handing out the same string object saves an allocation
 * per reading and lets the engine's keyed state find the device by identity (a string whose hash
 * is already known). Open addressing on the scanner's FNV-1a hash; bounded (when full, strings
 * are simply not interned any more). Only ASCII text is interned (its bytes are its characters);
 * other text is decoded every time.
 */
export class StringInterner {
  private readonly hashes: Int32Array;
  private readonly strings: Array<string | undefined>;
  private readonly mask: number;
  private size = 0;
  /** Table slot of the string the last `intern` returned, or -1 when it was not interned: a small integer id for it. */
  lastSlot = -1;

  constructor(bits = 16) {
    this.hashes = new Int32Array(1 << bits);
    this.strings = new Array<string | undefined>(1 << bits).fill(undefined);
    this.mask = (1 << bits) - 1;
  }

  /** The string of the ASCII bytes `start`…`end` of `bytes` (whose FNV-1a hash is `hash`), the same object every time. */
  intern(bytes: Buffer, start: number, end: number, hash: number): string {
    const length = end - start;
    const mask = this.mask;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const candidate = this.strings[i];
      if (candidate === undefined) {
        const value = bytes.toString('latin1', start, end);
        // Keep a quarter of the table free so probes stay short.
        if (this.size * 4 < mask * 3) {
          this.strings[i] = value;
          this.hashes[i] = hash;
          this.size++;
          this.lastSlot = i;
        } else this.lastSlot = -1;
        return value;
      }
      if (this.hashes[i] === hash && candidate.length === length && sameAscii(candidate, bytes, start)) {
        this.lastSlot = i;
        return candidate;
      }
    }
  }
}

function sameAscii(text: string, bytes: Buffer, start: number): boolean {
  for (let k = 0; k < text.length; k++) if (text.charCodeAt(k) !== bytes[start + k]) return false;
  return true;
}

/** Lines longer than this (in UTF-8 bytes, at most 3 per character) go straight to JSON.parse from `scanText`. */
const MAX_SCRATCH = 1 << 20;

/**
 * Scans the UTF-8 bytes of a record where they arrived (a file's or a broker message's buffer),
 * so the common record costs no string at all; `scanText` takes a string for sources that have
 * one. Slots hold where each captured field's value is: `kinds`, `numbers` (a number, or 1/0 for
 * true/false), and for strings their byte range and hash.
 */
export class FlatJsonScanner {
  readonly kinds: Uint8Array;
  readonly numbers: Float64Array;
  readonly starts: Int32Array;
  readonly ends: Int32Array;
  /** FNV-1a hash of each STRING slot's bytes (computed while the string is checked anyway). */
  readonly hashes: Int32Array;
  /** Whether each STRING slot's bytes are all ASCII. */
  readonly ascii: Uint8Array;
  /** The bytes of the last scan. */
  bytes: Buffer = Buffer.alloc(0);
  private readonly names: readonly Uint8Array[];
  private readonly fieldCount: number;
  /** Records of one source have their keys in the same order: remember which field the k-th key was. */
  private readonly predicted = new Int16Array(64).fill(-1);
  private scratch = Buffer.alloc(4096);

  /** `fields`: the names to capture; their slots are their indexes in this list. */
  constructor(fields: readonly string[]) {
    this.names = fields.map((f) => Buffer.from(f, 'utf8'));
    this.fieldCount = fields.length;
    this.kinds = new Uint8Array(fields.length);
    this.numbers = new Float64Array(fields.length);
    this.starts = new Int32Array(fields.length);
    this.ends = new Int32Array(fields.length);
    this.hashes = new Int32Array(fields.length);
    this.ascii = new Uint8Array(fields.length);
  }

  /** Text of a STRING slot, the same string object for the same ASCII text (see StringInterner); `interner.lastSlot` is -1 for text not interned. */
  internedOf(slot: number, interner: StringInterner): string {
    if (this.ascii[slot] === 0) {
      interner.lastSlot = -1;
      return this.stringOf(slot);
    }
    return interner.intern(this.bytes, this.starts[slot]!, this.ends[slot]!, this.hashes[slot]!);
  }

  /** Text of a STRING slot (allocates; call only for the fields that need it). */
  stringOf(slot: number): string {
    return this.bytes.toString('utf8', this.starts[slot], this.ends[slot]);
  }

  /** Scans a string (through a reusable UTF-8 copy); false for lines over a megabyte, as for any record that is not simple. */
  scanText(text: string): boolean {
    if (text.length * 3 > this.scratch.length) {
      if (text.length * 3 > MAX_SCRATCH) return false;
      this.scratch = Buffer.alloc(Math.max(text.length * 3, this.scratch.length * 2));
    }
    const length = this.scratch.write(text, 0, 'utf8');
    return this.scan(this.scratch, 0, length);
  }

  /** Scans bytes `start`…`end` of `bytes`; returns false when they are not a simple flat object (use JSON.parse then). */
  scan(bytes: Buffer, start: number, end: number): boolean {
    this.bytes = bytes;
    const kinds = this.kinds;
    kinds.fill(ABSENT);
    const n = end;
    let i = skipSpace(bytes, start, n);
    if (i >= n || bytes[i] !== 123 /* { */) return false;
    i = skipSpace(bytes, i + 1, n);
    if (i < n && bytes[i] === 125 /* } */) return skipSpace(bytes, i + 1, n) === n;
    for (let position = 0; ; position++) {
      if (i >= n || bytes[i] !== 34 /* " */) return false;
      const keyStart = i + 1;
      i = stringEnd(bytes, keyStart, n);
      if (i < 0) return false;
      const slot = this.slotAt(position, bytes, keyStart, i - keyStart);
      i = skipSpace(bytes, i + 1, n);
      if (i >= n || bytes[i] !== 58 /* : */) return false;
      i = skipSpace(bytes, i + 1, n);
      if (i >= n) return false;
      const c = bytes[i]!;
      if (c === 34) {
        const valueStart = i + 1;
        if (slot < 0) {
          i = stringEnd(bytes, valueStart, n);
          if (i < 0) return false;
        } else {
          // A captured string is hashed (for interning) and checked for ASCII in the same pass.
          let hash = FNV_OFFSET;
          let high = 0;
          for (i = valueStart; i < n; i++) {
            const b = bytes[i]!;
            if (b === 34) break;
            if (b === 92 || b < 32) return false;
            high |= b;
            hash = Math.imul(hash ^ b, FNV_PRIME);
          }
          if (i >= n) return false;
          this.hashes[slot] = hash;
          this.ascii[slot] = high < 128 ? 1 : 0;
          kinds[slot] = STRING;
          this.starts[slot] = valueStart;
          this.ends[slot] = i;
        }
        i++;
      } else if (c === 45 /* - */ || (c >= 48 && c <= 57)) {
        const after = this.number(bytes, i, n, slot);
        if (after < 0) return false;
        i = after;
      } else if (c === 110 /* n */ && matches(bytes, i, n, NULL_BYTES)) {
        if (slot >= 0) kinds[slot] = NULL;
        i += 4;
      } else if (c === 116 /* t */ && matches(bytes, i, n, TRUE_BYTES)) {
        if (slot >= 0) {
          kinds[slot] = OTHER;
          this.numbers[slot] = 1;
        }
        i += 4;
      } else if (c === 102 /* f */ && matches(bytes, i, n, FALSE_BYTES)) {
        if (slot >= 0) {
          kinds[slot] = OTHER;
          this.numbers[slot] = 0;
        }
        i += 5;
      } else return false;
      i = skipSpace(bytes, i, n);
      if (i >= n) return false;
      const sep = bytes[i];
      if (sep === 44 /* , */) {
        i = skipSpace(bytes, i + 1, n);
        continue;
      }
      if (sep === 125 /* } */) return skipSpace(bytes, i + 1, n) === n;
      return false;
    }
  }

  private slotAt(position: number, bytes: Buffer, start: number, length: number): number {
    if (position < 64) {
      const guess = this.predicted[position]!;
      if (guess >= 0 && sameBytes(this.names[guess]!, bytes, start, length)) return guess;
      const slot = this.slotOf(bytes, start, length);
      this.predicted[position] = slot;
      return slot;
    }
    return this.slotOf(bytes, start, length);
  }

  private slotOf(bytes: Buffer, start: number, length: number): number {
    const names = this.names;
    for (let f = 0; f < this.fieldCount; f++) if (sameBytes(names[f]!, bytes, start, length)) return f;
    return -1;
  }

  /** Parses a JSON number at i; returns the index after it, or −1 to fall back. */
  private number(bytes: Buffer, start: number, n: number, slot: number): number {
    let i = start;
    let negative = false;
    if (bytes[i] === 45) {
      negative = true;
      i++;
    }
    let mantissa = 0;
    let digits = 0;
    let exponent = 0;
    const intStart = i;
    for (; i < n; i++) {
      const d = bytes[i]! - 48;
      if (d < 0 || d > 9) break;
      mantissa = mantissa * 10 + d;
      digits++;
    }
    if (i === intStart) return -1;
    if (digits > 1 && bytes[intStart] === 48) return -1; // leading zero: not JSON
    if (i < n && bytes[i] === 46 /* . */) {
      i++;
      const fracStart = i;
      for (; i < n; i++) {
        const d = bytes[i]! - 48;
        if (d < 0 || d > 9) break;
        mantissa = mantissa * 10 + d;
        digits++;
        exponent--;
      }
      if (i === fracStart) return -1;
    }
    const e = i < n ? bytes[i] : 0;
    if (e === 101 || e === 69 /* e E */) {
      i++;
      let expNegative = false;
      const s = i < n ? bytes[i] : 0;
      if (s === 43 || s === 45) {
        expNegative = s === 45;
        i++;
      }
      let exp = 0;
      const expStart = i;
      for (; i < n; i++) {
        const d = bytes[i]! - 48;
        if (d < 0 || d > 9) break;
        exp = exp * 10 + d;
        if (exp > 400) return -1;
      }
      if (i === expStart) return -1;
      exponent += expNegative ? -exp : exp;
    }
    if (slot < 0) return i;
    let value: number;
    if (mantissa < MAX_EXACT_MANTISSA && digits <= 17 && exponent >= -22 && exponent <= 22) {
      value = exponent >= 0 ? mantissa * POW10[exponent]! : mantissa / POW10[-exponent]!;
    } else {
      value = Number(bytes.toString('latin1', start, i)); // rare: long or extreme numbers, converted exactly by the runtime
      if (!Number.isFinite(value)) return -1;
      negative = false;
    }
    this.kinds[slot] = NUMBER;
    this.numbers[slot] = negative ? -value : value;
    return i;
  }
}

const NULL_BYTES = Buffer.from('null');
const TRUE_BYTES = Buffer.from('true');
const FALSE_BYTES = Buffer.from('false');

function matches(bytes: Buffer, at: number, n: number, word: Uint8Array): boolean {
  return at + word.length <= n && sameBytes(word, bytes, at, word.length);
}

function sameBytes(name: Uint8Array, bytes: Buffer, start: number, length: number): boolean {
  if (name.length !== length) return false;
  for (let k = 0; k < length; k++) if (name[k] !== bytes[start + k]) return false;
  return true;
}

/**
 * Index of the quote that closes the string starting at `from`, or -1. Escapes are rare in
 * telemetry; a string with a backslash (or a raw control character, which JSON forbids) sends the
 * record to JSON.parse, which decides and explains.
 */
function stringEnd(bytes: Buffer, from: number, n: number): number {
  for (let i = from; i < n; i++) {
    const b = bytes[i]!;
    if (b === 34) return i;
    if (b === 92 || b < 32) return -1;
  }
  return -1;
}

function skipSpace(bytes: Buffer, from: number, n: number): number {
  let i = from;
  while (i < n) {
    const c = bytes[i];
    if (c !== 32 && c !== 9 && c !== 10 && c !== 13) break;
    i++;
  }
  return i;
}
