import type { TimeFormat } from '../model/index.js';

// ISO-8601 date-time, with a space or T between date and time. No zone means UTC: meter
// exports (e.g. London's `2013-01-01 00:30:00`) are UTC by convention, and reading them as the
// machine's local time would make results depend on where the replay runs.
const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;

/** Epoch-second values below this are taken as seconds by the `auto` format (1e11 s is the year 5138; 1e11 ms is 1973). */
const SECONDS_BELOW = 1e11;

/**
 * Parses an event time to epoch ms, or returns NaN when it cannot.
 *
 * @example
 * parseTime('2013-01-01 00:30:00', 'auto'); // 1357000200000 (UTC)
 * parseTime(1763900000, 'auto');            // 1763900000000 (epoch seconds)
 */
export function parseTime(value: unknown, format: TimeFormat): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return Number.NaN;
    if (format === 'epoch-s') return Math.round(value * 1000);
    if (format === 'iso') return Number.NaN;
    if (format === 'auto' && Math.abs(value) < SECONDS_BELOW) return Math.round(value * 1000);
    return value;
  }
  if (typeof value !== 'string' || value.length === 0) return Number.NaN;
  const first = value.charCodeAt(0);
  const numeric = (first >= 48 && first <= 57) || first === 45;
  if (numeric && format !== 'iso' && /^-?\d+(\.\d+)?$/.test(value)) return parseTime(Number(value), format);
  if (format === 'epoch-ms' || format === 'epoch-s') return Number.NaN;
  return parseIso(value);
}

export function parseIso(text: string): number {
  const m = ISO.exec(text);
  if (!m) return Number.NaN;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const month = Number(mo);
  const day = Number(d);
  const hour = h === undefined ? 0 : Number(h);
  const minute = mi === undefined ? 0 : Number(mi);
  const second = s === undefined ? 0 : Number(s);
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 24 || minute > 59 || second > 60) return Number.NaN;
  let ms = Date.UTC(Number(y), month - 1, day, hour, minute, second);
  if (frac !== undefined) ms += Math.round(Number(`0.${frac}`) * 1000);
  if (zone !== undefined && zone !== 'Z' && zone !== 'z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    const offsetMinutes = Number(digits.slice(0, 2)) * 60 + (digits.length > 2 ? Number(digits.slice(2)) : 0);
    ms -= sign * offsetMinutes * 60_000;
  }
  // Date.UTC rolls 31 February over into March; reject such dates instead.
  if (new Date(Date.UTC(Number(y), month - 1, day)).getUTCDate() !== day) return Number.NaN;
  return ms;
}

/** Start of the window/pane of length `size` containing `time`, aligned to the epoch (UTC). */
export function alignDown(time: number, size: number): number {
  // Fast path, for integer times and sizes (epoch ms): a division instead of two floating-point
  // remainders (each a call into the C library), on the engine's hottest path. The quotient can be
  // off by one only when it rounds; the checks catch that, and the exact formula decides then.
  const start = Math.floor(time / size) * size;
  const rest = time - start;
  if (rest >= 0 && rest < size && Number.isInteger(time) && Number.isInteger(size) && time < MAX_FAST_TIME && time > -MAX_FAST_TIME) return start;
  return time - (((time % size) + size) % size);
}

/** Below 2^52 in magnitude, integer products and differences of times are exact. */
const MAX_FAST_TIME = 2 ** 52;

export function isoOf(time: number): string {
  return Number.isFinite(time) ? new Date(time).toISOString() : String(time);
}
