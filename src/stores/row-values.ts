import type { Alert, AlertStatus, Severity } from '../model/index.js';

// Reading values back from server databases' rows, the same way in every server store: drivers
// return numbers as numbers or strings (64-bit integers, NUMERIC), nulls as null, and gridpulse
// stores NaN and Infinity as null.

/** NaN and Infinity are stored as null, as in DuckDB. */
export function finite(value: number | null | undefined): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/** A time in whole epoch milliseconds, or null. */
export function ms(value: number | null | undefined): number | null {
  const number = finite(value);
  return number === null ? null : Math.round(number);
}

/** A number from a driver value (number or numeric string), or null when absent or not finite. */
export function nullableNumber(value: unknown): number | null {
  if (value === null || value === undefined) return null;
  const number = Number(value);
  return Number.isFinite(number) ? number : null;
}

export function text(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  return value === null || value === undefined ? '' : JSON.stringify(value);
}

export function nullableText(value: unknown): string | null {
  return value === null || value === undefined ? null : text(value);
}

/** The names a store's alert rows use for their three times (epoch ms). */
export interface AlertTimeColumns {
  opened: string;
  updated: string;
  resolved: string;
}

/** An alert from a row of a store's `alerts` table (the columns every server store shares). */
export function rowToAlert(row: Record<string, unknown>, times: AlertTimeColumns): Alert {
  return {
    id: text(row['id']),
    stream: text(row['stream']),
    key: text(row['key']),
    site: nullableText(row['site']) ?? undefined,
    type: text(row['type']),
    metric: nullableText(row['metric']) ?? undefined,
    severity: text(row['severity']) as Severity,
    status: text(row['status']) as AlertStatus,
    openedAt: Number(row[times.opened]),
    updatedAt: Number(row[times.updated]),
    resolvedAt: nullableNumber(row[times.resolved]) ?? undefined,
    score: nullableNumber(row['score']) ?? Number.NaN,
    peakScore: nullableNumber(row['peak_score']) ?? Number.NaN,
    value: nullableNumber(row['value']) ?? Number.NaN,
    findings: Number(row['findings']),
    explain: text(row['explain']),
  };
}
