import { GpError } from '../model/index.js';
import { describeValue, type ConfigIssue } from './issues.js';

const UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000, ms: 1 } as const;
type Unit = keyof typeof UNIT_MS;
/** Largest unit first; the order a duration text must follow ("1h30m", not "30m1h"). */
const UNIT_ORDER: readonly Unit[] = ['d', 'h', 'm', 's', 'ms'];

// "ms" must be tried before "m", so it comes first in the alternation.
const COMPONENT = /(\d+(?:\.\d+)?)\s*(ms|d|h|m|s)/y;

export const DURATION_EXPECTED = 'a duration like "10m", "1h30m" or "500ms" (units d, h, m, s, ms) or a number of milliseconds';

/**
 * Parses a duration into milliseconds. Text needs units, largest first (`"500ms"`, `"15s"`,
 * `"2m"`, `"1h30m"`, `"7d"`); a plain number is milliseconds. The result must be a whole,
 * non-negative number of milliseconds.
 *
 * @example
 * parseDuration('1h30m'); // 5_400_000
 * parseDuration(250);     // 250
 * parseDuration('10 minutes'); // throws GpError GP_CONFIG_INVALID
 */
export function parseDuration(text: string | number): number {
  const milliseconds = typeof text === 'number' ? text : parseDurationText(text);
  if (!Number.isFinite(milliseconds) || milliseconds < 0 || !Number.isInteger(milliseconds)) {
    throw invalid(text, 'a whole, non-negative number of milliseconds');
  }
  return milliseconds;
}

function parseDurationText(text: string): number {
  const trimmed = text.trim();
  // A bare "0" cannot be misread whatever unit was meant, so it needs none.
  if (trimmed === '0') return 0;
  if (trimmed === '') throw invalid(text);
  let total = 0;
  let position = 0;
  let previousUnitRank = -1;
  while (position < trimmed.length) {
    COMPONENT.lastIndex = position;
    const match = COMPONENT.exec(trimmed);
    if (match === null) {
      const hint = /^\d+(\.\d+)?$/.test(trimmed) ? ' (text needs a unit; write a plain number for milliseconds)' : '';
      throw invalid(text, undefined, hint);
    }
    const unit = match[2] as Unit;
    const rank = UNIT_ORDER.indexOf(unit);
    if (rank <= previousUnitRank) throw invalid(text, undefined, ' (each unit at most once, largest first)');
    previousUnitRank = rank;
    total += Number(match[1]) * UNIT_MS[unit];
    position = COMPONENT.lastIndex;
    while (trimmed[position] === ' ') position += 1;
  }
  // Decimal components ("1.5h") are fine as long as they land on a whole millisecond.
  return Math.round(total * 1000) / 1000;
}

function invalid(got: string | number, expected = DURATION_EXPECTED, hint = ''): GpError {
  const shown = typeof got === 'string' ? JSON.stringify(got) : String(got);
  return new GpError('GP_CONFIG_INVALID', `expected ${expected}, got ${shown}${hint}`, { got });
}

/**
 * Formats milliseconds as the most compact duration text, the inverse of `parseDuration`.
 * Fractions of a millisecond are rounded.
 *
 * @example
 * formatDuration(60_000); // "1m"
 * formatDuration(90_000); // "1m30s"
 * formatDuration(0);      // "0s"
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) throw new GpError('GP_INTERNAL', `formatDuration: expected a finite number of milliseconds, got ${ms}`);
  let rest = Math.round(Math.abs(ms));
  if (rest === 0) return '0s';
  let text = ms < 0 ? '-' : '';
  for (const unit of UNIT_ORDER) {
    const count = Math.floor(rest / UNIT_MS[unit]);
    if (count > 0) {
      text += `${count}${unit}`;
      rest -= count * UNIT_MS[unit];
    }
  }
  return text;
}

/**
 * Reads durations of a config into milliseconds, adding an issue at the value's JSON pointer
 * instead of throwing; a value that cannot be used reads as NaN.
 *
 * @example
 * const durations = new DurationReader(issues);
 * durations.read('0s', '/checkpoint/interval', { positive: true }); // NaN, and an issue "expected a duration greater than zero"
 */
export class DurationReader {
  constructor(private readonly issues: ConfigIssue[]) {}

  read(value: unknown, path: string, options: { positive?: boolean; expected?: string } = {}): number {
    if (typeof value !== 'string' && typeof value !== 'number') return Number.NaN;
    let milliseconds: number;
    try {
      milliseconds = parseDuration(value);
    } catch (error) {
      const message = error instanceof GpError ? error.message : String(error);
      this.issues.push({
        path,
        message: options.expected === undefined ? message : message.replace(`expected ${DURATION_EXPECTED}`, `expected ${options.expected}`),
      });
      return Number.NaN;
    }
    if (options.positive === true && milliseconds === 0) {
      this.issues.push({ path, message: `expected a duration greater than zero, got ${describeValue(value)}` });
      return Number.NaN;
    }
    return milliseconds;
  }
}
