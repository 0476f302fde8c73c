/** Number and time formatting shared by the pages. */

const numberFormats = new Map<number, Intl.NumberFormat>();
function numberFormat(digits: number): Intl.NumberFormat {
  let format = numberFormats.get(digits);
  if (!format) {
    format = new Intl.NumberFormat('en-GB', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
    numberFormats.set(digits, format);
  }
  return format;
}

/** 1234.5 → "1,234.5"; 0.01234 → "0.0123"; null → "–". Precision follows magnitude. */
export function formatNumber(value: number | null | undefined, unit?: string | null): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–';
  const magnitude = Math.abs(value);
  const digits = magnitude >= 100 ? 0 : magnitude >= 10 ? 1 : magnitude >= 1 ? 2 : 3;
  const text = numberFormat(digits).format(value);
  return unit ? `${text} ${unit}` : text;
}

/**
 * An axis tick label with as many decimals as the step between ticks needs, so that ticks 0.2
 * apart read 101.2, 101.4 … instead of 101, 101 … (formatNumber rounds by magnitude).
 */
export function formatTick(value: number, increment: number): string {
  if (!Number.isFinite(value)) return '';
  let digits = 0;
  if (Number.isFinite(increment) && increment > 0) {
    while (digits < 6) {
      const scaled = increment * 10 ** digits;
      if (Math.abs(Math.round(scaled) - scaled) <= 1e-6 * Math.max(1, scaled)) break;
      digits++;
    }
  }
  return numberFormat(digits).format(value);
}

/** 1234 → "1,234"; integers only. */
export function formatCount(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–';
  return numberFormat(0).format(value);
}

/** 1536 → "1.5 KiB". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${formatNumber(value)} ${units[unit]}`;
}

function pad(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** Local time: "14:05:09" today, "3 Nov 14:05" otherwise. */
export function formatTime(ms: number | null | undefined, now = Date.now()): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  const date = new Date(ms);
  const today = new Date(now);
  const clock = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  if (date.toDateString() === today.toDateString()) return clock;
  const day = date.toLocaleDateString('en-GB', { day: 'numeric', month: 'short', ...(date.getFullYear() !== today.getFullYear() ? { year: 'numeric' } : {}) });
  return `${day} ${clock.slice(0, 5)}`;
}

/** 65_000 → "1 min 5 s"; 3_600_000 → "1 h". */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  const sign = ms < 0 ? '−' : '';
  let rest = Math.round(Math.abs(ms) / 1000);
  if (rest === 0) return `${sign}${Math.round(Math.abs(ms))} ms`;
  const parts: string[] = [];
  for (const [size, name] of [
    [86_400, 'd'],
    [3_600, 'h'],
    [60, 'min'],
    [1, 's'],
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)} ${name}`);
      rest %= size;
    }
    if (parts.length === 2) break;
  }
  return sign + parts.join(' ');
}

/** "12 s ago" relative to `now`. */
export function formatAgo(ms: number | null | undefined, now = Date.now()): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  const delta = now - ms;
  if (delta < 1000 && delta > -1000) return 'just now';
  return delta > 0 ? `${formatDuration(delta)} ago` : `in ${formatDuration(-delta)}`;
}
