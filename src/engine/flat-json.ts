/**
 * An allocation-free scanner for the common shape of a telemetry record: one flat JSON object
 * whose values are numbers, plain strings, true/false/null. It finds only the fields it was
 * told about and reads them in place — no object per record, no string per number — which
 * makes it several times faster than `JSON.parse` followed by property reads.
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
 * Strings seen before, found again by the text they came from without allocating: device and
 * site ids repeat on every reading, so handing out the same string object saves an allocation
 * per reading and lets the engine's keyed state find the device by identity (a string whose hash
 * is already known). Open addressing on the scanner's FNV-1a hash; bounded (when full, strings
 * are simply not interned any more).
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

  /** The string equal to `text.slice(start, end)` (whose FNV-1a hash is `hash`), the same object every time. */
  intern(text: string, start: number, end: number, hash: number): string {
    const length = end - start;
    const mask = this.mask;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const candidate = this.strings[i];
      if (candidate === undefined) {
        const value = text.slice(start, end);
        // Keep a quarter of the table free so probes stay short.
        if (this.size * 4 < mask * 3) {
          this.strings[i] = value;
          this.hashes[i] = hash;
          this.size++;
          this.lastSlot = i;
        } else this.lastSlot = -1;
        return value;
      }
      if (this.hashes[i] === hash && candidate.length === length && text.startsWith(candidate, start)) {
        this.lastSlot = i;
        return candidate;
      }
    }
  }
}

export class FlatJsonScanner {
  readonly kinds: Uint8Array;
  readonly numbers: Float64Array;
  readonly starts: Int32Array;
  readonly ends: Int32Array;
  /** FNV-1a hash of each STRING slot's text (computed while the string is checked anyway). */
  readonly hashes: Int32Array;
  private readonly fields: readonly string[];
  private readonly fieldCount: number;
  /** Records of one source have their keys in the same order: remember which field the k-th key was. */
  private readonly predicted = new Int16Array(64).fill(-1);

  /** `fields`: the names to capture; their slots are their indexes in this list. */
  constructor(fields: readonly string[]) {
    this.fields = fields;
    this.fieldCount = fields.length;
    this.kinds = new Uint8Array(fields.length);
    this.numbers = new Float64Array(fields.length);
    this.starts = new Int32Array(fields.length);
    this.ends = new Int32Array(fields.length);
    this.hashes = new Int32Array(fields.length);
  }

  /** Text of a STRING slot, the same string object for the same text (see StringInterner). */
  internedOf(text: string, slot: number, interner: StringInterner): string {
    return interner.intern(text, this.starts[slot]!, this.ends[slot]!, this.hashes[slot]!);
  }

  /** Text of a STRING slot (allocates; call only for the fields that need it). */
  stringOf(text: string, slot: number): string {
    return text.slice(this.starts[slot], this.ends[slot]);
  }

  /** Scans `text`; returns false when it is not a simple flat object (use JSON.parse then). */
  scan(text: string): boolean {
    const kinds = this.kinds;
    kinds.fill(ABSENT);
    const n = text.length;
    // Escapes are rare in telemetry; a line with any backslash goes to JSON.parse, so strings can
    // be delimited with the native indexOf instead of a loop over every character.
    if (text.indexOf('\\') >= 0) return false;
    let i = skipSpace(text, 0, n);
    if (i >= n || text.charCodeAt(i) !== 123 /* { */) return false;
    i = skipSpace(text, i + 1, n);
    if (i < n && text.charCodeAt(i) === 125 /* } */) return skipSpace(text, i + 1, n) === n;
    for (let position = 0; ; position++) {
      if (i >= n || text.charCodeAt(i) !== 34 /* " */) return false;
      const keyStart = i + 1;
      const j = text.indexOf('"', keyStart);
      if (j < 0) return false;
      const slot = this.slotAt(position, text, keyStart, j - keyStart);
      i = skipSpace(text, j + 1, n);
      if (i >= n || text.charCodeAt(i) !== 58 /* : */) return false;
      i = skipSpace(text, i + 1, n);
      if (i >= n) return false;
      const c = text.charCodeAt(i);
      if (c === 34) {
        const valueStart = i + 1;
        const k = text.indexOf('"', valueStart);
        if (k < 0) return false;
        if (slot >= 0) {
          // JSON forbids raw control characters in strings: check the strings that are used.
          let hash = FNV_OFFSET;
          for (let q = valueStart; q < k; q++) {
            const code = text.charCodeAt(q);
            if (code < 32) return false;
            hash = Math.imul(hash ^ code, FNV_PRIME);
          }
          this.hashes[slot] = hash;
          kinds[slot] = STRING;
          this.starts[slot] = valueStart;
          this.ends[slot] = k;
        }
        i = k + 1;
      } else if (c === 45 /* - */ || (c >= 48 && c <= 57)) {
        const end = this.number(text, i, n, slot);
        if (end < 0) return false;
        i = end;
      } else if (c === 110 /* n */ && text.startsWith('null', i)) {
        if (slot >= 0) kinds[slot] = NULL;
        i += 4;
      } else if (c === 116 /* t */ && text.startsWith('true', i)) {
        if (slot >= 0) kinds[slot] = OTHER;
        i += 4;
      } else if (c === 102 /* f */ && text.startsWith('false', i)) {
        if (slot >= 0) kinds[slot] = OTHER;
        i += 5;
      } else return false;
      i = skipSpace(text, i, n);
      if (i >= n) return false;
      const sep = text.charCodeAt(i);
      if (sep === 44 /* , */) {
        i = skipSpace(text, i + 1, n);
        continue;
      }
      if (sep === 125 /* } */) return skipSpace(text, i + 1, n) === n;
      return false;
    }
  }

  private slotAt(position: number, text: string, start: number, length: number): number {
    if (position < 64) {
      const guess = this.predicted[position]!;
      if (guess >= 0) {
        const name = this.fields[guess]!;
        if (name.length === length && text.startsWith(name, start)) return guess;
      }
      const slot = this.slotOf(text, start, length);
      this.predicted[position] = slot;
      return slot;
    }
    return this.slotOf(text, start, length);
  }

  private slotOf(text: string, start: number, length: number): number {
    const fields = this.fields;
    for (let f = 0; f < this.fieldCount; f++) {
      const name = fields[f]!;
      if (name.length === length && text.startsWith(name, start)) return f;
    }
    return -1;
  }

  /** Parses a JSON number at i; returns the index after it, or −1 to fall back. */
  private number(text: string, start: number, n: number, slot: number): number {
    let i = start;
    let negative = false;
    if (text.charCodeAt(i) === 45) {
      negative = true;
      i++;
    }
    let mantissa = 0;
    let digits = 0;
    let exponent = 0;
    const intStart = i;
    for (; i < n; i++) {
      const d = text.charCodeAt(i) - 48;
      if (d < 0 || d > 9) break;
      mantissa = mantissa * 10 + d;
      digits++;
    }
    if (i === intStart) return -1;
    if (digits > 1 && text.charCodeAt(intStart) === 48) return -1; // leading zero: not JSON
    if (i < n && text.charCodeAt(i) === 46 /* . */) {
      i++;
      const fracStart = i;
      for (; i < n; i++) {
        const d = text.charCodeAt(i) - 48;
        if (d < 0 || d > 9) break;
        mantissa = mantissa * 10 + d;
        digits++;
        exponent--;
      }
      if (i === fracStart) return -1;
    }
    const e = i < n ? text.charCodeAt(i) : 0;
    if (e === 101 || e === 69 /* e E */) {
      i++;
      let expNegative = false;
      const s = i < n ? text.charCodeAt(i) : 0;
      if (s === 43 || s === 45) {
        expNegative = s === 45;
        i++;
      }
      let exp = 0;
      const expStart = i;
      for (; i < n; i++) {
        const d = text.charCodeAt(i) - 48;
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
      value = Number(text.slice(start, i)); // rare: long or extreme numbers, converted exactly by the runtime
      if (!Number.isFinite(value)) return -1;
      negative = false;
    }
    this.kinds[slot] = NUMBER;
    this.numbers[slot] = negative ? -value : value;
    return i;
  }
}

function skipSpace(text: string, from: number, n: number): number {
  let i = from;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c !== 32 && c !== 9 && c !== 10 && c !== 13) break;
    i++;
  }
  return i;
}
