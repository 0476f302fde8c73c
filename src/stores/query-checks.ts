import { GpError, type AlertStatus } from '../model/index.js';
import { DEFAULT_RETENTION, type RetentionPolicy } from './store.js';

// What every Store implementation checks and decides the same way: the resolutions a query may
// ask for, how `auto` picks one, and the input checks that name the field, what was expected and
// what was got.

export const WINDOW_MS = { '1m': 60_000, '5m': 300_000, '15m': 900_000 } as const;
export type WindowName = keyof typeof WINDOW_MS;
const WINDOWS_FINEST_FIRST: readonly WindowName[] = ['1m', '5m', '15m'];
export const RESOLUTIONS = ['raw', '1m', '5m', '15m', 'auto'] as const;
export const FLEET_RESOLUTIONS = ['1m', '5m', '15m', 'auto'] as const;
export const ALERT_STATUSES: readonly AlertStatus[] = ['open', 'acknowledged', 'resolved'];
const DEFAULT_MAX_POINTS = 500;
export const DEFAULT_ALERT_LIMIT = 1000;

/** The finest window resolution whose points over [from, to] fit in `maxPoints`. */
export function pickResolution(from: number, to: number, maxPoints: number): WindowName {
  const span = to - from;
  // Window resolutions only: raw readings are optional and irregular, so their count says little
  // about what a chart of the range needs.
  for (const window of WINDOWS_FINEST_FIRST) {
    if (Math.ceil(span / WINDOW_MS[window]) <= maxPoints) return window;
  }
  return '15m';
}

export function oneOrMany<T extends string>(value: T | readonly T[] | undefined, allowed: readonly T[], field: string): T[] | undefined {
  if (value === undefined) return undefined;
  const values: readonly T[] = typeof value === 'string' ? [value] : value;
  for (const item of values) {
    if (!allowed.includes(item)) {
      throw new GpError('GP_INPUT_INVALID', `${field}: expected one or more of ${allowed.join(', ')}, got ${JSON.stringify(item)}`, { field });
    }
  }
  return [...values];
}

export function mergeRetention(base: RetentionPolicy, overrides: Partial<RetentionPolicy> | undefined, field: string): RetentionPolicy {
  const merged: RetentionPolicy = { ...base };
  if (overrides === undefined) return merged;
  for (const name of Object.keys(DEFAULT_RETENTION) as (keyof RetentionPolicy)[]) {
    const value = overrides[name];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new GpError('GP_CONFIG_INVALID', `${field}.${name}: expected a duration in milliseconds (a number >= 0), got ${JSON.stringify(value)}`, {
        field: `${field}.${name}`,
      });
    }
    merged[name] = value;
  }
  return merged;
}

export function requireText(value: unknown, field: string): void {
  if (typeof value !== 'string' || value === '') {
    throw new GpError('GP_INPUT_INVALID', `${field}: expected a non-empty string, got ${JSON.stringify(value) ?? String(value)}`, { field });
  }
}

export function requireFinite(value: unknown, field: string, expected: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new GpError('GP_INPUT_INVALID', `${field}: expected ${expected} (a finite number), got ${String(value)}`, { field });
  }
}

export function requireTimeRange(from: unknown, to: unknown): void {
  requireFinite(from, 'from', 'epoch milliseconds');
  requireFinite(to, 'to', 'epoch milliseconds');
  if ((from as number) > (to as number)) {
    throw new GpError('GP_INPUT_INVALID', `from: expected a time at or before to (${String(to)}), got ${String(from)}`, { field: 'from' });
  }
}

export function requireOneOf(value: unknown, allowed: readonly string[], field: string): void {
  if (!(allowed as readonly unknown[]).includes(value)) {
    throw new GpError('GP_INPUT_INVALID', `${field}: expected one of ${allowed.join(', ')}, got ${JSON.stringify(value) ?? String(value)}`, { field });
  }
}

/** The `maxPoints` of an `auto` query, or the default when it gives none. */
export function requireMaxPoints(value: number | undefined): number {
  const maxPoints = value ?? DEFAULT_MAX_POINTS;
  if (!Number.isFinite(maxPoints) || maxPoints < 1) {
    throw new GpError('GP_INPUT_INVALID', `maxPoints: expected a positive number, got ${String(value)}`, { field: 'maxPoints' });
  }
  return maxPoints;
}
