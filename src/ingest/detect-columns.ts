/**
 * Column auto-detection for file replay: which column is the device, which the time, which are
 * metrics (and which of those hold interval energy), from a sample of the file's records.
 */
import { GpError, type StreamSchema } from '../model/index.js';

/** Name of the synthesized time field of a `--time @row` layout (the records carry epoch ms under it). */
export const ROW_TIME_FIELD = '@row';
/** Name of the synthesized key field: when `keyField` is undefined, records carry the device name under it. */
export const FILE_KEY_FIELD = '@file';
/** Default spacing of synthesized row times (`--interval`): one minute. */
export const DEFAULT_ROW_INTERVAL_MS = 60_000;
/** Default time of the first row of a `@row` layout: 2020-01-01T00:00:00Z. */
export const DEFAULT_ROW_START_MS = Date.UTC(2020, 0, 1);

/** Mapping hints from the command line (`--key --time --site --metrics --energy --stream --interval --start`). */
export interface LayoutHints {
  /** Column of the device id, or `@file` for one device named after the file. */
  key?: string | undefined;
  /** Column of the event time, or `@row` to number the rows (see `rowInterval`, `start`). */
  time?: string | undefined;
  site?: string | undefined;
  /** Columns to use as gauge metrics (only these, plus `energy`). */
  metrics?: readonly string[] | undefined;
  /** Columns holding energy per interval (kWh). */
  energy?: readonly string[] | undefined;
  /** A configured stream to replay into; detection does not use it, the CLI does. */
  stream?: string | undefined;
  /** For `time: '@row'`: milliseconds between rows (default 60 000). */
  rowInterval?: number | undefined;
  /** For `time: '@row'`: epoch ms of the first row (default 2020-01-01T00:00:00Z). */
  start?: number | undefined;
}

export interface DetectedMetric {
  /** snake_case name used in outputs (see `metricName`). */
  name: string;
  /** The column it is read from. */
  field: string;
  kind: 'gauge' | 'interval-energy';
}

export interface DetectedLayout {
  /** Column of the device id; undefined → one device, `deviceName`, carried under `FILE_KEY_FIELD`. */
  keyField: string | undefined;
  /** The file's base name without extensions (`meters.csv.gz` → `meters`). */
  deviceName: string;
  /** Column of the event time, or `ROW_TIME_FIELD` when times are synthesized from row numbers. */
  timeField: string;
  timeFormat: 'epoch-ms' | 'epoch-s' | 'iso';
  siteField?: string;
  metrics: DetectedMetric[];
  /** Median positive step between consecutive times of one device in the sample. */
  intervalMs: number | undefined;
  /** Columns that are none of the above: text columns, row numbers, 0/1 flags. */
  ignored: string[];
  /** Set for `@row` layouts: the time of row i (0-based, counting bad rows too) is `startMs + i × intervalMs`. */
  rowTime?: { startMs: number; intervalMs: number };
}

// Candidate names, compared after `normalizeName`, in order of preference.
const KEY_NAMES = ['meterid', 'lclid', 'machineid', 'deviceid', 'id', 'device'];
const TIME_NAMES = ['timestamp', 'timestamputc', 'tstp', 'time', 'ts', 'date', 'datetime'];
const SITE_NAMES = ['siteid', 'site'];
const ENERGY_NAMES = ['consumptionkwh', 'kwh', 'energykwhhh', 'kwhperhalfhour'];
// A kWh column with one of these words is a meter register (cumulative), not energy per interval.
const CUMULATIVE_WORDS = ['total', 'cumulative', 'register', 'reading'];

const NUMERIC_SHARE = 0.95;
// epoch ms of 1973-03-03; as seconds it would be the year 5138, so larger numbers are ms.
const EPOCH_MS_THRESHOLD = 1e11;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?$/i;
const FLAGS = '--key, --time, --site, --metrics, --energy, --stream';

/**
 * Compares column names the way users type them: case, spaces, underscores, brackets and other
 * punctuation do not count (`Air temperature [K]` ≈ `air_temperature_k` ≈ `AirTemperatureK`).
 *
 * @example
 * normalizeName('energy(kWh/hh)'); // 'energykwhhh'
 */
export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '');
}

/**
 * The metric name for a column. A name that is already an identifier starting with a lower-case
 * letter is kept as written, so that NDJSON fields such as `usageKw` keep the names the
 * configured streams and detectors use; anything else is lower-cased with each run of other
 * characters turned into one `_`.
 *
 * @example
 * metricName('Air temperature [K]'); // 'air_temperature_k'
 * metricName('energy(kWh/hh)');      // 'energy_kwh_hh'
 */
export function metricName(column: string): string {
  if (/^[a-z][A-Za-z0-9_]*$/.test(column)) return column;
  const snake = column
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
  if (snake === '') return 'metric';
  return /^[0-9]/.test(snake) ? `m_${snake}` : snake;
}

/**
 * The device name of a file without an id column: its base name without extensions.
 *
 * @example
 * deviceNameOf('/data/press-7.ndjson.gz'); // 'press-7'
 */
export function deviceNameOf(fileName: string): string {
  const base = fileName.split(/[\\/]/).pop() ?? fileName;
  const dot = base.indexOf('.', 1);
  const stem = dot === -1 ? base : base.slice(0, dot);
  return stem === '' ? 'file' : stem;
}

/**
 * Works out the layout of a file from a sample of its records (`sniffFile`), its header (CSV)
 * and hints from the command line.
 *
 * - Key: the first column named like meter_id, meterId, LCLid, machine_id, device_id, id or
 *   device, unless it counts rows (see below). No such column → one device named after the file (also with the hint `key: '@file'`).
 * - Time: a column named timestamp, timestamp_utc, tstp, time, ts, date or datetime; failing
 *   that, the first column whose values are ISO-8601 date-times. Its format is epoch ms, epoch s
 *   (numbers below 1e11) or ISO-8601. The hint `time: '@row'` is for files without times (such
 *   as AI4I 2020): row i (0-based) gets `start + i × rowInterval` (defaults 2020-01-01T00:00:00Z
 *   and one minute; the CLI's `--time @row --interval 1m --start ...`).
 * - Metrics: columns where at least 95% of the non-empty sample values are finite numbers.
 *   Columns named like consumption_kwh, kwh, energy(kWh/hh) or kwh_per_halfhour (any name with
 *   "kWh" that does not say total/cumulative/register/reading) hold interval energy; the first
 *   such column becomes `interval-energy`, others stay gauges, since a stream sums one energy
 *   metric.
 * - Not metrics unless named in `hints.metrics`, because they describe rows rather than
 *   measure anything: a row counter (integers each one above the previous, at least 3, like
 *   AI4I's UDI) and a 0/1 flag (every value exactly 0 or 1, like AI4I's `Machine failure` and
 *   TWF; a label must never be a feature). A measurement that is all zeros in the sample and
 *   written as `0` is taken for a flag: name it with `--metrics` if it is not one.
 *
 * With `stream` (the configured stream of `--stream`), its key, time and site field names are
 * tried first. Hints are matched like column names (`normalizeName`) and must exist; a layout without a
 * time column fails with `GP_INPUT_UNKNOWN_LAYOUT`, listing the columns found and the flags.
 *
 * @example
 * const { header, sample } = await sniffFile('lcl.csv');
 * const layout = detectColumns(sample, header, 'lcl.csv', {});
 * // { keyField: 'meter_id', timeField: 'timestamp_utc', timeFormat: 'iso', intervalMs: 1800000,
 * //   metrics: [{ name: 'kwh_per_halfhour', field: 'kwh_per_halfhour', kind: 'interval-energy' }], ... }
 */
export function detectColumns(
  sample: readonly Record<string, unknown>[],
  header: readonly string[] | undefined,
  fileName: string,
  hints: LayoutHints = {},
  stream?: Pick<StreamSchema, 'keyField' | 'timeField' | 'siteField'>,
): DetectedLayout {
  const columns = header !== undefined && header.length > 0 ? [...header] : columnsOf(sample);
  const deviceName = deviceNameOf(fileName);
  const columnList = columns.length === 0 ? '(none)' : columns.map((column) => JSON.stringify(column)).join(', ');
  const fail = (problem: string): never => {
    throw new GpError(
      'GP_INPUT_UNKNOWN_LAYOUT',
      `${fileName}: ${problem}. Columns found: ${columnList}. Map them with ${FLAGS} ` +
        `(e.g. --time <column> --key <column> --metrics <a,b>; --time @row --interval 1m for rows without times; --key @file for one device).`,
      { file: fileName, columns },
    );
  };
  const byNormal = new Map<string, string>();
  for (const column of columns) if (!byNormal.has(normalizeName(column))) byNormal.set(normalizeName(column), column);
  const hinted = (flag: string, name: string): string => {
    const column = columns.includes(name) ? name : byNormal.get(normalizeName(name));
    return column ?? fail(`${flag} "${name}" names no column`);
  };
  const firstNamed = (candidates: readonly string[]): string | undefined => {
    for (const candidate of candidates) {
      const column = byNormal.get(candidate);
      if (column !== undefined) return column;
    }
    return undefined;
  };
  // A configured stream (`--stream`): its own field names come before the usual candidates.
  const preferred = (field: string | undefined, candidates: readonly string[]): string[] =>
    field === undefined ? [...candidates] : [normalizeName(field), ...candidates];
  const profiles = new Map(columns.map((column) => [column, profile(sample, column)]));
  const profileOf = (column: string): ColumnProfile => profiles.get(column) ?? profile(sample, column);

  if (sample.length === 0) fail('no data records to detect the layout from (the file is empty, has only a header, or its first lines do not parse)');

  // Time.
  let timeField: string;
  let timeFormat: DetectedLayout['timeFormat'];
  let rowTime: DetectedLayout['rowTime'];
  if (hints.time !== undefined && hints.time.trim().toLowerCase() === ROW_TIME_FIELD) {
    const intervalMs = hints.rowInterval ?? DEFAULT_ROW_INTERVAL_MS;
    const startMs = hints.start ?? DEFAULT_ROW_START_MS;
    if (!(Number.isFinite(intervalMs) && intervalMs > 0)) fail(`--interval must be a positive duration, got ${String(intervalMs)}`);
    if (!Number.isFinite(startMs)) fail(`--start must be a time, got ${String(startMs)}`);
    timeField = ROW_TIME_FIELD;
    timeFormat = 'epoch-ms';
    rowTime = { startMs, intervalMs };
  } else {
    const explicit = hints.time !== undefined;
    const named = explicit ? hinted('--time', hints.time ?? '') : (firstNamed(preferred(stream?.timeField, TIME_NAMES)) ?? columns.find((column) => profileOf(column).isoShare >= NUMERIC_SHARE && profileOf(column).hasClock));
    if (named === undefined) return fail('no time column found (looked for timestamp, timestamp_utc, tstp, time, ts, date or ISO-8601 values)');
    const format = timeFormatOf(profileOf(named));
    if (format === undefined) {
      const example = profileOf(named).firstValue;
      return fail(`column "${named}" does not hold times: expected epoch ms, epoch s or ISO-8601 like 2013-01-01T00:00:00Z, got ${example === undefined ? 'no values' : JSON.stringify(example)}`);
    }
    timeField = named;
    timeFormat = format;
  }

  // Key and site.
  let keyField: string | undefined;
  if (hints.key !== undefined && hints.key.trim().toLowerCase() === FILE_KEY_FIELD) keyField = undefined;
  else if (hints.key !== undefined) keyField = hinted('--key', hints.key);
  else {
    // An `id` that counts rows (1, 2, 3...) names rows, not devices.
    keyField = preferred(stream?.keyField, KEY_NAMES).map((candidate) => byNormal.get(candidate)).find((column) => column !== undefined && !profileOf(column).isRowCounter);
  }
  if (keyField === timeField) fail(`the key and the time cannot both be column "${keyField}"`);
  const siteField = hints.site !== undefined ? hinted('--site', hints.site) : firstNamed(preferred(stream?.siteField, SITE_NAMES));

  // Metrics.
  const taken = new Set<string>([timeField, ...(keyField === undefined ? [] : [keyField]), ...(siteField === undefined ? [] : [siteField])]);
  const requireNumeric = (flag: string, column: string): string => {
    const columnProfile = profileOf(column);
    if (taken.has(column)) fail(`${flag} "${column}" is already the key, time or site column`);
    if (columnProfile.nonEmpty > 0 && columnProfile.numericShare < NUMERIC_SHARE) {
      fail(`${flag} "${column}" is not numeric: expected numbers, got ${JSON.stringify(columnProfile.firstNonNumeric)}`);
    }
    return column;
  };
  const energyColumns = new Set((hints.energy ?? []).map((name) => requireNumeric('--energy', hinted('--energy', name))));
  let gaugeColumns: Set<string>;
  if (hints.metrics !== undefined) {
    gaugeColumns = new Set(hints.metrics.map((name) => requireNumeric('--metrics', hinted('--metrics', name))));
  } else {
    gaugeColumns = new Set(
      columns.filter((column) => {
        if (taken.has(column)) return false;
        const columnProfile = profileOf(column);
        return columnProfile.nonEmpty > 0 && columnProfile.numericShare >= NUMERIC_SHARE && !columnProfile.isRowCounter && !(columnProfile.isFlag && !isEnergyName(column));
      }),
    );
    if (hints.energy === undefined) {
      const energy = columns.find((column) => gaugeColumns.has(column) && isEnergyName(column));
      if (energy !== undefined) energyColumns.add(energy);
    }
  }
  const metrics: DetectedMetric[] = [];
  const names = new Set<string>();
  for (const column of columns) {
    const isEnergy = energyColumns.has(column);
    if (!isEnergy && !gaugeColumns.has(column)) continue;
    const base = metricName(column);
    let name = base;
    for (let suffix = 2; names.has(name); suffix += 1) name = `${base}_${suffix}`;
    names.add(name);
    metrics.push({ name, field: column, kind: isEnergy ? 'interval-energy' : 'gauge' });
  }
  const used = new Set([...taken, ...metrics.map((metric) => metric.field)]);
  const ignored = columns.filter((column) => !used.has(column));

  const layout: DetectedLayout = {
    keyField,
    deviceName,
    timeField,
    timeFormat,
    metrics,
    intervalMs: rowTime !== undefined ? rowTime.intervalMs : medianStep(sample, keyField, timeField, timeFormat),
    ignored,
  };
  if (siteField !== undefined) layout.siteField = siteField;
  if (rowTime !== undefined) layout.rowTime = rowTime;
  return layout;
}

function isEnergyName(column: string): boolean {
  const normal = normalizeName(column);
  if (ENERGY_NAMES.includes(normal)) return true;
  return normal.includes('kwh') && !CUMULATIVE_WORDS.some((word) => normal.includes(word));
}

function columnsOf(sample: readonly Record<string, unknown>[]): string[] {
  const seen = new Set<string>();
  for (const record of sample) for (const key of Object.keys(record)) seen.add(key);
  return [...seen];
}

interface ColumnProfile {
  nonEmpty: number;
  numericShare: number;
  isoShare: number;
  /** Some ISO values carry a time of day, not only a date. */
  hasClock: boolean;
  isRowCounter: boolean;
  isFlag: boolean;
  medianNumber: number;
  firstValue: unknown;
  firstNonNumeric: unknown;
}

function profile(sample: readonly Record<string, unknown>[], column: string): ColumnProfile {
  let nonEmpty = 0;
  let numeric = 0;
  let iso = 0;
  let hasClock = false;
  let counter = true;
  let flag = true;
  let previous: number | undefined;
  let firstValue: unknown;
  let firstNonNumeric: unknown;
  const numbers: number[] = [];
  for (const record of sample) {
    const value = record[column];
    if (value === undefined || value === null || (typeof value === 'string' && value.trim() === '')) continue;
    nonEmpty += 1;
    if (firstValue === undefined) firstValue = value;
    const number = toNumber(value);
    if (number === undefined) {
      if (firstNonNumeric === undefined) firstNonNumeric = value;
      counter = false;
      flag = false;
      if (typeof value === 'string' && ISO_TIME.test(value.trim())) {
        iso += 1;
        if (value.trim().length > 10) hasClock = true;
      }
      continue;
    }
    numeric += 1;
    numbers.push(number);
    if (!(Number.isInteger(number) && (previous === undefined || number === previous + 1))) counter = false;
    previous = number;
    const written = typeof value === 'string' ? value.trim() : value;
    if (!(written === '0' || written === '1' || written === 0 || written === 1)) flag = false;
  }
  numbers.sort((a, b) => a - b);
  return {
    nonEmpty,
    numericShare: nonEmpty === 0 ? 0 : numeric / nonEmpty,
    isoShare: nonEmpty === 0 ? 0 : iso / nonEmpty,
    hasClock,
    isRowCounter: counter && numeric >= 3 && numeric === nonEmpty,
    isFlag: flag && numeric > 0 && numeric === nonEmpty,
    medianNumber: numbers.length === 0 ? Number.NaN : (numbers[Math.floor(numbers.length / 2)] ?? Number.NaN),
    firstValue,
    firstNonNumeric,
  };
}

function toNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (text === '') return undefined;
  const number = Number(text);
  return Number.isFinite(number) ? number : undefined;
}

function timeFormatOf(columnProfile: ColumnProfile): DetectedLayout['timeFormat'] | undefined {
  if (columnProfile.nonEmpty === 0) return undefined;
  if (columnProfile.isoShare >= NUMERIC_SHARE) return 'iso';
  if (columnProfile.numericShare >= NUMERIC_SHARE) return Math.abs(columnProfile.medianNumber) >= EPOCH_MS_THRESHOLD ? 'epoch-ms' : 'epoch-s';
  return undefined;
}

/**
 * Epoch ms of a sample time value, or NaN. ISO-8601 without a zone is UTC (LCL writes
 * `2013-01-01 00:30:00`, which `Date.parse` would read as local time).
 */
function parseSampleTime(value: unknown, format: DetectedLayout['timeFormat']): number {
  if (format !== 'iso') {
    const number = toNumber(value);
    if (number === undefined) return Number.NaN;
    return format === 'epoch-s' ? number * 1000 : number;
  }
  if (typeof value !== 'string') return Number.NaN;
  let text = value.trim().replace(' ', 'T').replace(',', '.');
  if (text.length === 10) text += 'T00:00:00';
  if (!/(?:Z|[+-]\d{2}(?::?\d{2})?)$/i.test(text.slice(10))) text += 'Z';
  return Date.parse(text);
}

function medianStep(
  sample: readonly Record<string, unknown>[],
  keyField: string | undefined,
  timeField: string,
  timeFormat: DetectedLayout['timeFormat'],
): number | undefined {
  const lastTime = new Map<string, number>();
  const steps: number[] = [];
  for (const record of sample) {
    const time = parseSampleTime(record[timeField], timeFormat);
    if (!Number.isFinite(time)) continue;
    const key = keyField === undefined ? '' : String(record[keyField]);
    const previous = lastTime.get(key);
    if (previous !== undefined && time > previous) steps.push(time - previous);
    lastTime.set(key, time);
  }
  if (steps.length === 0) return undefined;
  steps.sort((a, b) => a - b);
  return steps[Math.floor(steps.length / 2)];
}
