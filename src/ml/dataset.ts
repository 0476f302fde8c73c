import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { FeatureComputer, machineRoleOf, mapInputs, type FeatureSpec, type MachineRole, type ModelFile, type ModelInput } from '../detectors/index.js';
import { GpError } from '../model/index.js';

/** A table of text cells, as read from a CSV file. */
export interface Table {
  header: string[];
  rows: string[][];
  /** SHA-256 (hex) of the bytes the table was read from. */
  fingerprint: string;
  source: string;
}

/**
 * Parses CSV text (RFC 4180 quoting, comma or semicolon, CRLF or LF, a UTF-8 byte-order mark
 * ignored). Blank lines are skipped; a row with another number of cells than the header is an
 * error naming its line.
 *
 * @example
 * parseCsv('a,b\n1,2\n', 'x.csv').rows; // [['1', '2']]
 */
export function parseCsv(text: string, source: string, fingerprint = sha256(text)): Table {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const firstLine = body.slice(0, body.search(/\r?\n|$/));
  const delimiter = (firstLine.match(/;/g)?.length ?? 0) > (firstLine.match(/,/g)?.length ?? 0) ? ';' : ',';
  const records: string[][] = [];
  const lineOf: number[] = [];
  let cells: string[] = [];
  let cell = '';
  let quoted = false;
  let line = 1;
  let recordLine = 1;
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (quoted) {
      if (c === '"') {
        if (body[i + 1] === '"') {
          cell += '"';
          i++;
        } else quoted = false;
      } else {
        if (c === '\n') line++;
        cell += c;
      }
    } else if (c === '"' && cell === '') quoted = true;
    else if (c === delimiter) {
      cells.push(cell);
      cell = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && body[i + 1] === '\n') i++;
      cells.push(cell);
      if (!(cells.length === 1 && cells[0] === '')) {
        records.push(cells);
        lineOf.push(recordLine);
      }
      cells = [];
      cell = '';
      line++;
      recordLine = line;
    } else cell += c;
  }
  if (cell !== '' || cells.length > 0) {
    cells.push(cell);
    records.push(cells);
    lineOf.push(recordLine);
  }
  const header = (records.shift() ?? []).map((h) => h.trim());
  lineOf.shift();
  if (header.length === 0) throw new GpError('GP_INPUT_INVALID', `${source}: expected a CSV header line, got an empty file`, { path: source });
  records.forEach((row, i) => {
    if (row.length !== header.length) {
      throw new GpError('GP_INPUT_INVALID', `${source}:${lineOf[i]}: expected ${header.length} cells like the header, got ${row.length}`, { path: source, line: lineOf[i] });
    }
  });
  return { header, rows: records, fingerprint, source };
}

/** Reads a CSV file into a table (its fingerprint is the SHA-256 of the file's bytes). */
export async function readCsvFile(path: string): Promise<Table> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new GpError('GP_FILE_NOT_FOUND', `${path}: no such file`, { path }, { cause: error });
    throw error;
  }
  return parseCsv(bytes.toString('utf8'), path, createHash('sha256').update(bytes).digest('hex'));
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Features ready for training: one Float64Array per feature (column-major), labels when supervised. */
export interface Dataset {
  inputs: ModelInput[];
  features: FeatureSpec[];
  columns: Float64Array[];
  /** 1 = failure (positive class), 0 = normal; undefined without a target. */
  labels: Uint8Array | undefined;
  rows: number;
  target: string | null;
  source: string;
  fingerprint: string;
}

export interface DatasetOptions {
  /** Label column (0/1, true/false, yes/no). Absent: unsupervised. */
  target?: string | undefined;
  /** Columns never used as inputs (ids, leaking labels such as AI4I's failure-mode flags). */
  exclude?: readonly string[] | undefined;
  /** Device id column: rolling features are computed per device. */
  key?: string | undefined;
  /** Event time column (epoch ms or ISO-8601): needed for rolling features. */
  time?: string | undefined;
  /** Rolling windows (ms) for rolling mean, standard deviation and change of each machine input; needs `time`. Default none. */
  rollingWindowsMs?: readonly number[] | undefined;
  /** Add the engineered machine features (temperature difference, mechanical power, torque × tool wear). Default true. */
  engineered?: boolean | undefined;
}

/** Text columns with more distinct values than this are not categories (ids): they must be excluded. */
const MAX_CATEGORIES = 50;
const TRUE_WORDS = new Set(['1', 'true', 'yes', 'y', 't']);
const FALSE_WORDS = new Set(['0', 'false', 'no', 'n', 'f']);

function column(table: Table, name: string, option: string): number {
  const index = table.header.indexOf(name);
  if (index < 0) throw new GpError('GP_INPUT_INVALID', `${option}: expected a column of ${table.source} (${table.header.join(', ')}), got "${name}"`, { field: option, got: name });
  return index;
}

/**
 * The engineered features of machine data, from the inputs' machine roles: process − air
 * temperature (K), mechanical power torque · ω in W (ω = rpm · 2π/60), and torque × tool wear
 * (the AI4I overstrain measure, Nm·min).
 */
export function engineeredFeatures(inputs: readonly ModelInput[]): FeatureSpec[] {
  const byRole = new Map<MachineRole, string>();
  for (const input of inputs) {
    const role = input.type === 'number' ? machineRoleOf(input.name) : undefined;
    if (role !== undefined && !byRole.has(role)) byRole.set(role, input.name);
  }
  const out: FeatureSpec[] = [];
  const air = byRole.get('airTemp');
  const process = byRole.get('processTemp');
  const rpm = byRole.get('rpm');
  const torque = byRole.get('torque');
  const wear = byRole.get('toolWear');
  if (air !== undefined && process !== undefined) out.push({ name: 'temp_diff_k', kind: 'difference', a: process, b: air });
  if (torque !== undefined && rpm !== undefined) out.push({ name: 'power_w', kind: 'product', a: torque, b: rpm, scale: (2 * Math.PI) / 60 });
  if (torque !== undefined && wear !== undefined) out.push({ name: 'torque_x_wear', kind: 'product', a: torque, b: wear, scale: 1 });
  return out;
}

function parseTime(text: string): number {
  const trimmed = text.trim();
  if (/^-?\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
  return Date.parse(trimmed);
}

/**
 * Turns a table into training data: every column except the target, the excluded ones, the key
 * and the time becomes an input (numbers; text with at most 50 distinct values becomes a
 * category); the engineered machine features and, with a time column, rolling statistics are
 * added; each feature is computed with the same code the `model` detector runs live.
 *
 * @example
 * const data = buildDataset(await readCsvFile('ai4i2020.csv'), { target: 'Machine failure', exclude: ['UDI', 'Product ID', 'TWF', 'HDF', 'PWF', 'OSF', 'RNF'] });
 */
export function buildDataset(table: Table, options: DatasetOptions): Dataset {
  const exclude = new Set(options.exclude ?? []);
  for (const name of exclude) column(table, name, '--exclude');
  const target = options.target === undefined ? -1 : column(table, options.target, '--target');
  const key = options.key === undefined ? -1 : column(table, options.key, '--key');
  const time = options.time === undefined ? -1 : column(table, options.time, '--time');
  const windows = options.rollingWindowsMs ?? [];
  if (windows.length > 0 && time < 0) throw new GpError('GP_INPUT_INVALID', '--rolling: rolling features need a time column (--time)', { field: 'rolling' });
  const n = table.rows.length;
  if (n === 0) throw new GpError('GP_INPUT_INVALID', `${table.source}: expected data rows under the header, got none`, { path: table.source });

  const inputs: ModelInput[] = [];
  const inputColumns: number[] = [];
  table.header.forEach((name, c) => {
    if (c === target || c === key || c === time || exclude.has(name)) return;
    let numeric = true;
    const distinct = new Set<string>();
    for (const row of table.rows) {
      const cell = row[c]!.trim();
      if (cell === '') continue;
      if (numeric && !Number.isFinite(Number(cell))) numeric = false;
      if (!numeric) {
        distinct.add(cell);
        if (distinct.size > MAX_CATEGORIES) {
          throw new GpError(
            'GP_INPUT_INVALID',
            `column "${name}": expected numbers or a category with at most ${MAX_CATEGORIES} values, got text with more distinct values (an id?); leave it out with --exclude "${name}"`,
            { field: 'exclude', got: name },
          );
        }
      }
    }
    inputs.push(numeric ? { name, type: 'number' } : { name, type: 'category', categories: [...distinct].sort() });
    inputColumns.push(c);
  });
  if (inputs.length === 0) throw new GpError('GP_INPUT_INVALID', `${table.source}: expected at least one input column besides the target and the excluded ones, got none`);

  const features: FeatureSpec[] = inputs.map((input) => ({ name: input.name, kind: 'input', input: input.name }));
  if (options.engineered !== false) features.push(...engineeredFeatures(inputs));
  for (const windowMs of windows) {
    for (const input of inputs) {
      if (input.type !== 'number') continue;
      const label = windowMs % 60_000 === 0 ? `${windowMs / 60_000}m` : `${windowMs / 1000}s`;
      features.push({ name: `${input.name}_mean_${label}`, kind: 'rolling_mean', input: input.name, windowMs });
      features.push({ name: `${input.name}_std_${label}`, kind: 'rolling_std', input: input.name, windowMs });
      features.push({ name: `${input.name}_delta_${label}`, kind: 'rolling_delta', input: input.name, windowMs });
    }
  }

  const raw = inputs.map((input, i) => {
    const c = inputColumns[i]!;
    const values = new Float64Array(n);
    const codes = input.categories === undefined ? undefined : new Map(input.categories.map((v, k) => [v, k]));
    table.rows.forEach((row, r) => {
      const cell = row[c]!.trim();
      values[r] = cell === '' ? Number.NaN : codes === undefined ? Number(cell) : (codes.get(cell) ?? Number.NaN);
    });
    return values;
  });
  const times = new Float64Array(n);
  if (time >= 0) {
    table.rows.forEach((row, r) => {
      const t = parseTime(row[time]!);
      if (!Number.isFinite(t)) throw new GpError('GP_INPUT_INVALID', `${table.source} row ${r + 2}: ${table.header[time]}: expected epoch ms or ISO-8601, got "${row[time]}"`, { field: 'time' });
      times[r] = t;
    });
  }
  const columns = computeFeatures({ inputs, features }, raw, times, key < 0 ? undefined : table.rows.map((row) => row[key]!), time >= 0);

  let labels: Uint8Array | undefined;
  if (target >= 0) {
    labels = new Uint8Array(n);
    table.rows.forEach((row, r) => {
      const cell = row[target]!.trim().toLowerCase();
      if (TRUE_WORDS.has(cell)) labels![r] = 1;
      else if (!FALSE_WORDS.has(cell)) {
        throw new GpError('GP_INPUT_INVALID', `${table.source} row ${r + 2}: ${options.target}: expected 0/1 (or true/false, yes/no), got "${row[target]}"`, { field: 'target' });
      }
    });
  }
  return { inputs, features, columns, labels, rows: n, target: options.target ?? null, source: table.source, fingerprint: table.fingerprint };
}

/**
 * Feature columns from input columns, through the detector's `FeatureComputer`. Rolling features
 * are computed per device (`keys`) in time order.
 */
export function computeFeatures(model: Pick<ModelFile, 'inputs' | 'features'>, raw: Float64Array[], times: Float64Array, keys: readonly string[] | undefined, ordered: boolean): Float64Array[] {
  const n = times.length;
  const computer = new FeatureComputer(model);
  const columns = model.features.map(() => new Float64Array(n));
  const row = new Float64Array(model.inputs.length);
  const out = new Float64Array(model.features.length);
  const order = Array.from({ length: n }, (_, i) => i);
  if (computer.rolling && ordered) order.sort((a, b) => times[a]! - times[b]! || a - b);
  const states = new Map<string, ReturnType<FeatureComputer['createRollingState']>>();
  for (const r of order) {
    for (let i = 0; i < raw.length; i++) row[i] = raw[i]![r]!;
    let state;
    if (computer.rolling && ordered) {
      const key = keys?.[r] ?? '';
      state = states.get(key);
      if (state === undefined) states.set(key, (state = computer.createRollingState()));
    }
    computer.compute(row, times[r]!, state, out);
    for (let f = 0; f < out.length; f++) columns[f]![r] = out[f]!;
  }
  return columns;
}

/**
 * The features of a trained model for a table (for `gridpulse eval`): each model input is taken
 * from the column of the same name, else the column with the same machine role, and coded as at
 * training.
 */
export function datasetForModel(table: Table, model: ModelFile, options: { target?: string | undefined; key?: string | undefined; time?: string | undefined }): Dataset {
  const sources = mapInputs(model, table.header, {});
  model.inputs.forEach((input, i) => {
    if (sources[i]! < 0) throw new GpError('GP_INPUT_INVALID', `${table.source}: expected a column for model input "${input.name}", got none among ${table.header.join(', ')}`, { field: 'data' });
  });
  const n = table.rows.length;
  const raw = model.inputs.map((input, i) => {
    const c = sources[i]!;
    const codes = input.categories === undefined ? undefined : new Map(input.categories.map((v, k) => [v, k]));
    const values = new Float64Array(n);
    table.rows.forEach((row, r) => {
      const cell = row[c]!.trim();
      values[r] = cell === '' ? Number.NaN : codes === undefined ? Number(cell) : (codes.get(cell) ?? Number.NaN);
    });
    return values;
  });
  const time = options.time === undefined ? -1 : column(table, options.time, '--time');
  const key = options.key === undefined ? -1 : column(table, options.key, '--key');
  const times = new Float64Array(n);
  if (time >= 0) table.rows.forEach((row, r) => (times[r] = parseTime(row[time]!)));
  const columns = computeFeatures(model, raw, times, key < 0 ? undefined : table.rows.map((row) => row[key]!), time >= 0);
  let labels: Uint8Array | undefined;
  if (options.target !== undefined) {
    const target = column(table, options.target, '--target');
    labels = new Uint8Array(n);
    table.rows.forEach((row, r) => {
      const cell = row[target]!.trim().toLowerCase();
      if (TRUE_WORDS.has(cell)) labels![r] = 1;
      else if (!FALSE_WORDS.has(cell)) throw new GpError('GP_INPUT_INVALID', `${table.source} row ${r + 2}: ${options.target}: expected 0/1, got "${row[target]}"`, { field: 'target' });
    });
  }
  return { inputs: model.inputs, features: model.features, columns, labels, rows: n, target: options.target ?? null, source: table.source, fingerprint: table.fingerprint };
}
