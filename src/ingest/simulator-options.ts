/**
 * Options of the telemetry simulator, their defaults and their validation. The CLI passes the
 * user's text straight in; every problem becomes a GpError naming the option.
 */
import { parseDuration } from '../config/index.js';
import { GpError } from '../model/index.js';

const DAY_MS = 86_400_000;

export interface SimulationOptions {
  /** Electricity meters (stream `power`), about ten per site. */
  meters: number;
  /** Machines (stream `machines`). */
  machines: number;
  /** Length of the simulated period in days (fractions allowed). */
  days: number;
  /** Seed of every random draw: the same options give byte-identical output. */
  seed: number;
  /** Reporting interval of every device, ms. */
  intervalMs: number;
  /** Start of the simulated period, epoch ms. */
  start: number;
  /** Scale of the number of injected anomalies: 1 gives 3–6 of each type per device per week; 0 injects none. */
  anomalyRate: number;
  /** No anomaly starts within this long of a device's first reading, so detectors can learn a baseline. */
  warmupMs: number;
}

/** 2025-01-06T00:00:00Z is a Monday, so day 0 of the default run is a working day. */
export const DEFAULT_SIMULATION_START = Date.UTC(2025, 0, 6);

export const DEFAULT_SIMULATION_OPTIONS: Readonly<SimulationOptions> = Object.freeze({
  meters: 20,
  machines: 0,
  days: 1,
  seed: 1,
  intervalMs: 60_000,
  start: DEFAULT_SIMULATION_START,
  anomalyRate: 1,
  warmupMs: DAY_MS,
});

/** What a caller may pass: numbers, or the text a user typed (`"60s"`, `"2025-01-06T00:00:00Z"`). */
export type SimulationOptionsInput = {
  [K in keyof SimulationOptions]?: SimulationOptions[K] | string;
};

/**
 * Parses a duration option (`"60s"`, `"15m"`, `"1h30m"`, or a number of milliseconds) with
 * the config's grammar, reporting a problem against the command-line option.
 *
 * @example
 * parseDurationOption('60s', 'interval'); // 60000
 * parseDurationOption('soon', 'interval'); // throws GpError GP_INPUT_INVALID naming --interval
 */
export function parseDurationOption(value: string | number, option: string): number {
  try {
    return parseDuration(typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : value);
  } catch (error) {
    if (error instanceof GpError) throw invalidOption(option, 'a duration like "60s", "15m", "1h30m" or a number of milliseconds', value);
    throw error;
  }
}

/**
 * Validates simulator options and fills in the defaults.
 *
 * @example
 * resolveSimulationOptions({ meters: '200', days: '7', intervalMs: '60s' });
 * resolveSimulationOptions({ meters: -1 }); // throws GpError GP_INPUT_INVALID: "--meters: expected ..."
 */
export function resolveSimulationOptions(input: SimulationOptionsInput = {}): SimulationOptions {
  const defaults = DEFAULT_SIMULATION_OPTIONS;
  const meters = integerOption(input.meters ?? defaults.meters, 'meters', 0, 100_000);
  const machines = integerOption(input.machines ?? defaults.machines, 'machines', 0, 9_999);
  if (meters + machines === 0) throw invalidOption('meters', 'at least one meter or machine', '0 meters and 0 machines');
  const days = numberOption(input.days ?? defaults.days, 'days', 1 / 1440, 3660);
  const seed = integerOption(input.seed ?? defaults.seed, 'seed', 0, Number.MAX_SAFE_INTEGER);
  const intervalMs = durationOption(input.intervalMs ?? defaults.intervalMs, 'interval', 100, DAY_MS);
  const start = timeOption(input.start ?? defaults.start, 'start');
  const anomalyRate = numberOption(input.anomalyRate ?? defaults.anomalyRate, 'anomalies', 0, 100);
  const warmupMs = durationOption(input.warmupMs ?? defaults.warmupMs, 'warmup', 0, 3660 * DAY_MS);
  return { meters, machines, days, seed, intervalMs, start, anomalyRate, warmupMs };
}

function integerOption(value: number | string, option: string, low: number, high: number): number {
  const parsed = typeof value === 'number' ? value : /^\s*-?\d+\s*$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(parsed) || parsed < low || parsed > high) {
    throw invalidOption(option, `a whole number from ${low} to ${high}`, value);
  }
  return parsed;
}

function numberOption(value: number | string, option: string, low: number, high: number): number {
  const parsed = typeof value === 'number' ? value : value.trim() === '' ? Number.NaN : Number(value);
  if (!Number.isFinite(parsed) || parsed < low || parsed > high) {
    throw invalidOption(option, `a number from ${formatBound(low)} to ${formatBound(high)}`, value);
  }
  return parsed;
}

function durationOption(value: number | string, option: string, lowMs: number, highMs: number): number {
  const parsed = parseDurationOption(value, option);
  if (!Number.isFinite(parsed) || parsed < lowMs || parsed > highMs || !Number.isInteger(parsed)) {
    throw invalidOption(option, `a whole number of milliseconds from ${lowMs} to ${highMs} (or a duration like "60s")`, value);
  }
  return parsed;
}

function timeOption(value: number | string, option: string): number {
  let parsed = Number.NaN;
  if (typeof value === 'number') parsed = value;
  else if (/^\s*\d+\s*$/.test(value)) parsed = Number(value);
  else if (/^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value.trim())) parsed = Date.parse(value.trim());
  if (!Number.isSafeInteger(parsed) || parsed < 0) {
    throw invalidOption(option, 'an ISO-8601 time like "2025-01-06T00:00:00Z" or epoch milliseconds', value);
  }
  return parsed;
}

function formatBound(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toPrecision(3);
}

function invalidOption(option: string, expected: string, got: unknown): GpError {
  return new GpError('GP_INPUT_INVALID', `--${option}: expected ${expected}, got ${JSON.stringify(got)}`, {
    field: option,
    expected,
    got: String(got),
  });
}
