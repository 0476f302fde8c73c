import { existsSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { isMap, isNode, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import { GpError, type StreamSchema } from '../model/index.js';
import {
  BUILT_IN_STREAMS,
  DEFAULT_DATA_DIR,
  DEFAULT_PARTITIONS,
  DEFAULT_RETENTION,
  DEFAULT_WRITE_READINGS,
  defaultStoreUrl,
  STREAM_DEFAULTS,
} from './defaults.js';
import { DurationReader } from './duration.js';
import { describeValue, formatIssues, pointer, pointerSegments, schemaIssues, type ConfigIssue } from './issues.js';
import { buildMaintenance, buildPlatformConfig, type PlatformConfig } from './platform-config.js';
import { ConfigInputSchema, type ConfigInput, type StreamInput } from './schema.js';
import { buildStream, copyPlain, deepFreeze, isMapping, mergeStreamInput, type DetectorValidator } from './stream-builder.js';

/**
 * The resolved configuration of gridpulse: defaults filled in, durations in milliseconds, frozen.
 *
 * @example
 * const config = loadConfig();
 * config.store.retention.readingsMs; // 1_209_600_000 (14 days)
 * config.streams.power.lateness.allowedLatenessMs; // 600_000
 */
export interface GridpulseConfig extends PlatformConfig {
  readonly engine: {
    /** Engine instances (and log partitions) readings are spread over by device key. */
    readonly partitions: number;
  };
  readonly store: {
    /** Where results go, e.g. `duckdb:./data/gridpulse.duckdb`; defaults to the DuckDB file in `dataDir`. */
    readonly url: string;
    /** Whether raw readings are stored as well as aggregates, alerts and ops events. */
    readonly writeReadings: boolean;
    /** How long each kind of record is kept. */
    readonly retention: { readonly readingsMs: number; readonly aggregatesMs: number; readonly alertsMs: number; readonly opsMs: number };
  };
  /** Directory for the embedded log, checkpoints and the default DuckDB file. */
  readonly dataDir: string;
  readonly streams: Readonly<Record<string, StreamSchema>>;
}

export interface ParseConfigOptions {
  /** Name of the file the text came from, used in issue locations (`gridpulse.yaml:12:7`). */
  readonly source?: string;
  /** Checks each detector against the detector registry; its issues are added to the rest. */
  readonly validateDetector?: DetectorValidator;
}

export interface ParseConfigResult {
  /** Present when there are no issues. */
  readonly config?: GridpulseConfig;
  readonly issues: readonly ConfigIssue[];
}

/** Values that replace the file's, from the environment. */
interface ConfigOverrides {
  readonly storeUrl?: string | undefined;
  readonly dataDir?: string | undefined;
}

/**
 * Parses and checks a config given as YAML text or as an already parsed object. Never throws for
 * bad input: every problem is returned as an issue with a JSON-pointer path and a message naming
 * what was expected and what was got; `config` is present only when there are none.
 *
 * @example
 * const { config, issues } = parseConfig('streams:\n  power:\n    lateness: { allowed: 15m }\n');
 * config?.streams.power.lateness.allowedLatenessMs; // 900_000
 * parseConfig({ engine: { partitions: 0 } }).issues;
 * // [{ path: '/engine/partitions', message: 'expected a whole number from 1 to 1024, got 0' }]
 */
export function parseConfig(input: unknown, options: ParseConfigOptions = {}): ParseConfigResult {
  return parseWithOverrides(input, options, {});
}

function parseWithOverrides(input: unknown, options: ParseConfigOptions, overrides: ConfigOverrides): ParseConfigResult {
  // Where an issue is: `file:line:column`, or `line L, column C` when the text has no file name.
  const place = (line: number, column: number): string =>
    options.source === undefined ? `line ${line}, column ${column}` : `${options.source}:${line}:${column}`;
  let value = input;
  let document: Document | undefined;
  let lineCounter: LineCounter | undefined;
  if (typeof input === 'string') {
    lineCounter = new LineCounter();
    document = parseDocument(input, { lineCounter, prettyErrors: false, uniqueKeys: true });
    if (document.errors.length > 0) {
      const counter = lineCounter;
      const issues = document.errors.map((error): ConfigIssue => {
        const { line, col } = counter.linePos(error.pos[0]);
        const firstLine = error.message.split('\n')[0] ?? error.message;
        return { path: '', message: `YAML syntax error at line ${line}, column ${col}: ${firstLine}`, location: place(line, col) };
      });
      return { issues };
    }
    try {
      value = document.toJS() as unknown;
    } catch (error) {
      // e.g. an alias expanded too many times (yaml's guard against "billion laughs" documents)
      return { issues: [{ path: '', message: `expected a YAML document that can be read, got: ${(error as Error).message}` }] };
    }
  }
  value ??= {};

  // Values with schema errors are dropped (defaults take their place) so that the semantic checks
  // can still run on everything else and the user sees all problems at once.
  const schemaProblems = schemaIssues(ConfigInputSchema, value);
  const { valid, metricsDropped } = withoutInvalid(value, schemaProblems);
  const semanticProblems: ConfigIssue[] = [];
  const config = buildConfig(valid, options, overrides, metricsDropped, semanticProblems);
  const reported = new Set(schemaProblems.map((issue) => issue.path));
  const issues = [...schemaProblems, ...semanticProblems.filter((issue) => !reported.has(issue.path))];
  const located = document === undefined || lineCounter === undefined ? issues : locateIssues(issues, document, lineCounter, place);
  return config === undefined || issues.length > 0 ? { issues: located } : { config, issues: [] };
}

function buildConfig(
  input: ConfigInput,
  options: ParseConfigOptions,
  overrides: ConfigOverrides,
  metricsDropped: ReadonlySet<string>,
  issues: ConfigIssue[],
): GridpulseConfig | undefined {
  const retention = { ...DEFAULT_RETENTION, ...input.store?.retention };
  const durations = new DurationReader(issues);
  const retentionMs = (kind: keyof typeof retention): number => durations.read(retention[kind], pointer('/store/retention', kind), { positive: true });
  const dataDir = overrides.dataDir ?? input.dataDir ?? DEFAULT_DATA_DIR;
  const store = {
    url: overrides.storeUrl ?? input.store?.url ?? defaultStoreUrl(dataDir),
    writeReadings: input.store?.writeReadings ?? DEFAULT_WRITE_READINGS,
    retention: {
      readingsMs: retentionMs('readings'),
      aggregatesMs: retentionMs('aggregates'),
      alertsMs: retentionMs('alerts'),
      opsMs: retentionMs('ops'),
    },
  };

  const streams: Record<string, StreamSchema> = {};
  const userStreams: Record<string, StreamInput> = input.streams ?? {};
  const isBuiltIn = (name: string): boolean => Object.hasOwn(BUILT_IN_STREAMS, name);
  const names = [...Object.keys(BUILT_IN_STREAMS), ...Object.keys(userStreams).filter((name) => !isBuiltIn(name))];
  // Maintenance windows are declared once, at the top; each stream's alert policy gets its own.
  // Their issues are reported once, by buildPlatformConfig below.
  const maintenance = buildMaintenance(input.alerts?.maintenance, []);
  for (const name of names) {
    const builtIn = isBuiltIn(name) ? BUILT_IN_STREAMS[name] : undefined;
    const user = userStreams[name] ?? {};
    const base = builtIn === undefined ? STREAM_DEFAULTS : mergeStreamInput(STREAM_DEFAULTS, builtIn);
    const schema = buildStream(name, mergeStreamInput(base, user), pointer('/streams', name), issues, {
      builtInDetectors: builtIn !== undefined && user.detectors === undefined,
      validateDetector: options.validateDetector,
      metricsUnchecked: metricsDropped.has(name),
      maintenance,
    });
    if (schema !== undefined) streams[name] = schema;
  }

  const platform = buildPlatformConfig(input, issues);
  for (const route of platform.mqtt?.topics ?? []) {
    if (route.stream !== undefined && streams[route.stream] === undefined && !Object.hasOwn(userStreams, route.stream)) {
      issues.push({ path: '/mqtt/topics', message: `expected the stream of each topic to be a configured stream, got ${describeValue(route.stream)}` });
    }
  }
  if (issues.length > 0) return undefined;
  return deepFreeze({ engine: { partitions: input.engine?.partitions ?? DEFAULT_PARTITIONS }, store, dataDir, streams, ...platform });
}

/**
 * A copy of the config without the values that failed the schema check. A value inside a list
 * takes the whole list with it (removing one item would shift the indexes in every other message).
 * Also says which streams lost their metrics, whose dependent checks must then be skipped.
 */
function withoutInvalid(value: unknown, problems: readonly ConfigIssue[]): { valid: ConfigInput; metricsDropped: Set<string> } {
  const metricsDropped = new Set<string>();
  if (!isMapping(value)) return { valid: {}, metricsDropped };
  const root = copyPlain(value) as Record<string, unknown>;
  for (const problem of problems) {
    const segments = pointerSegments(problem.path);
    let holder = root;
    for (const [depth, segment] of segments.entries()) {
      const child = holder[segment];
      if (depth < segments.length - 1 && isMapping(child)) {
        holder = child;
        continue;
      }
      delete holder[segment];
      if (segments[0] === 'streams' && (depth === 1 || (depth === 2 && segment === 'metrics'))) metricsDropped.add(segments[1] ?? '');
      break;
    }
  }
  return { valid: root, metricsDropped };
}

/** Adds `file:line:column` to each issue whose path (or nearest written ancestor) is in the YAML document. */
function locateIssues(
  issues: readonly ConfigIssue[],
  document: Document,
  lineCounter: LineCounter,
  place: (line: number, column: number) => string,
): ConfigIssue[] {
  return issues.map((issue) => {
    const offset = offsetOf(document, pointerSegments(issue.path));
    if (offset === undefined) return issue;
    const { line, col } = lineCounter.linePos(offset);
    return { ...issue, location: place(line, col) };
  });
}

function offsetOf(document: Document, segments: readonly string[]): number | undefined {
  let node: unknown = document.contents;
  let offset = rangeStart(node);
  for (const segment of segments) {
    if (isMap(node)) {
      const pair = node.items.find((item) => isPair(item) && isScalar(item.key) && String(item.key.value) === segment);
      if (pair === undefined) break;
      node = pair.value;
      // An empty value (`pf:`) has no node of its own; point at its key instead.
      offset = rangeStart(pair.value) ?? rangeStart(pair.key) ?? offset;
    } else if (isSeq(node)) {
      const item: unknown = node.items[Number(segment)];
      if (item === undefined) break;
      node = item;
      offset = rangeStart(item) ?? offset;
    } else {
      break;
    }
  }
  return offset;
}

function rangeStart(node: unknown): number | undefined {
  return isNode(node) && node.range !== undefined && node.range !== null ? node.range[0] : undefined;
}

let cachedDefaults: GridpulseConfig | undefined;

/**
 * The configuration used when there is no config file: streams `power` and `machines`, a DuckDB
 * store in ./data.
 *
 * @example
 * defaultConfig().streams.machines.keyField; // "machine_id"
 */
export function defaultConfig(): GridpulseConfig {
  if (cachedDefaults === undefined) {
    const { config, issues } = parseConfig({});
    if (config === undefined) throw new GpError('GP_INTERNAL', `the built-in defaults are invalid:\n${formatIssues(issues)}`, { issues });
    cachedDefaults = config;
  }
  return cachedDefaults;
}

export interface LoadConfigOptions {
  /** Config file to read; it must exist. */
  readonly path?: string;
  /** Environment to read GRIDPULSE_CONFIG, GRIDPULSE_STORE and GRIDPULSE_DATA_DIR from; defaults to process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Directory relative paths (and ./gridpulse.yaml) are resolved from; defaults to the current directory. */
  readonly cwd?: string;
  readonly validateDetector?: DetectorValidator;
  /** Replaces dataDir (a command-line flag); wins over GRIDPULSE_DATA_DIR. */
  readonly dataDir?: string | undefined;
  /** Replaces store.url (a command-line flag); wins over GRIDPULSE_STORE. */
  readonly storeUrl?: string | undefined;
}

/**
 * Loads the configuration: the file at `path`, else the file named by GRIDPULSE_CONFIG, else
 * ./gridpulse.yaml if it exists, else the built-in defaults. Then GRIDPULSE_STORE replaces
 * store.url and GRIDPULSE_DATA_DIR replaces dataDir. Throws GpError('GP_CONFIG_NOT_FOUND') when
 * a file that was asked for does not exist, and GpError('GP_CONFIG_INVALID', …, { issues }) with
 * one "path: message" line per issue when the config is wrong.
 *
 * @example
 * const config = loadConfig({ path: 'gridpulse.yaml', env: { GRIDPULSE_STORE: 'duckdb::memory:' } });
 * config.store.url; // "duckdb::memory:"
 */
export function loadConfig(options: LoadConfigOptions = {}): GridpulseConfig {
  // The one place that reads the process environment, so everything else can be given one.
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const fromEnvironment = options.path === undefined && nonEmpty(env.GRIDPULSE_CONFIG) !== undefined;
  const requested = options.path ?? nonEmpty(env.GRIDPULSE_CONFIG);

  let text: string | undefined;
  let source = 'built-in defaults';
  if (requested !== undefined) {
    text = readConfigFile(resolve(cwd, requested), requested, fromEnvironment);
    source = requested;
  } else if (existsSync(resolve(cwd, 'gridpulse.yaml'))) {
    text = readConfigFile(resolve(cwd, 'gridpulse.yaml'), 'gridpulse.yaml', false);
    source = 'gridpulse.yaml';
  }

  const overrides: ConfigOverrides = {
    storeUrl: options.storeUrl ?? nonEmpty(env.GRIDPULSE_STORE),
    dataDir: options.dataDir ?? nonEmpty(env.GRIDPULSE_DATA_DIR),
  };
  const parseOptions: ParseConfigOptions =
    options.validateDetector === undefined ? { source } : { source, validateDetector: options.validateDetector };
  const { config, issues } = parseWithOverrides(text ?? {}, parseOptions, overrides);
  if (config === undefined) {
    throw new GpError('GP_CONFIG_INVALID', `invalid config (${source}):\n${formatIssues(issues)}`, { issues, source });
  }
  return config;
}

function readConfigFile(absolutePath: string, shownPath: string, fromEnvironment: boolean): string {
  const via = fromEnvironment ? ' (named by GRIDPULSE_CONFIG)' : '';
  if (!existsSync(absolutePath)) {
    throw new GpError('GP_CONFIG_NOT_FOUND', `config file not found: ${shownPath}${via}`, { path: absolutePath });
  }
  if (statSync(absolutePath).isDirectory()) {
    throw new GpError('GP_CONFIG_INVALID', `expected a config file, got a directory: ${shownPath}${via}`, { path: absolutePath });
  }
  try {
    return readFileSync(absolutePath, 'utf8');
  } catch (error) {
    throw new GpError('GP_CONFIG_INVALID', `cannot read config file ${shownPath}${via}: ${(error as Error).message}`, { path: absolutePath }, { cause: error });
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}
