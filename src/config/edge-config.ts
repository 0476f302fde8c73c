import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { parse as parseYaml } from 'yaml';
import { GpError, KAFKA_TOPIC_PATTERN, type StreamSchema } from '../model/index.js';
import { defaultConfig, loadConfig, type GridpulseConfig } from './config-file.js';
import { parseDuration } from './duration.js';
import { formatIssues, pointer, schemaIssues, type ConfigIssue } from './issues.js';

/*
 * The edge agent's config file (`gridpulse edge --config edge.yaml`): where the spool lives and
 * how big it may grow, where readings are forwarded, and which collectors feed it. Declared once
 * as a TypeBox schema; sizes take "64MB"/"1GiB" or bytes, durations "500ms"/"30s" or ms.
 */

const Text = (expected: string) => Type.String({ minLength: 1, expected });
const Size = Type.Union([Type.Integer({ minimum: 1 }), Type.String({ pattern: '^\\s*\\d+(\\.\\d+)?\\s*([kKmMgG](i?[bB])?|[bB])?\\s*$' })], {
  expected: 'a size like "64MB", "1GiB" or a number of bytes',
});
const Duration = Type.Union([Type.Integer({ minimum: 0 }), Type.String({ minLength: 1 })], { expected: 'a duration like "500ms", "30s", "5m" or a number of milliseconds' });
const Port = Type.Integer({ minimum: 0, maximum: 65535, expected: 'a TCP port 0..65535 (0 picks a free one)' });
const Strict = { additionalProperties: false } as const;

const HttpCollector = Type.Object(
  { type: Type.Literal('http'), name: Type.Optional(Text('a name')), host: Type.Optional(Text('an address')), port: Type.Optional(Port), stream: Type.Optional(Text('a stream name')) },
  Strict,
);
const MqttCollector = Type.Object(
  {
    type: Type.Literal('mqtt'),
    name: Type.Optional(Text('a name')),
    url: Text('a broker URL like mqtt://127.0.0.1:1883'),
    topics: Type.Array(Type.Object({ topic: Text('an MQTT topic filter'), stream: Type.Optional(Text('a stream name')), keyLevel: Type.Optional(Type.Integer({ minimum: 0 })) }, Strict), {
      minItems: 1,
      expected: 'a list of topic filters',
    }),
    clientId: Type.Optional(Text('an MQTT client id')),
    stream: Type.Optional(Text('a stream name')),
  },
  Strict,
);
const ModbusRegister = Type.Object(
  {
    metric: Text('the metric (field) name the register becomes'),
    address: Type.Integer({ minimum: 0, maximum: 65535, expected: 'a register address 0..65535' }),
    kind: Type.Optional(Type.Union([Type.Literal('holding'), Type.Literal('input')], { expected: '"holding" or "input"' })),
    type: Type.Optional(
      Type.Union([Type.Literal('uint16'), Type.Literal('int16'), Type.Literal('uint32'), Type.Literal('int32'), Type.Literal('float32')], {
        expected: 'one of uint16, int16, uint32, int32, float32',
      }),
    ),
    scale: Type.Optional(Type.Number({ expected: 'a number the raw value is multiplied by' })),
    offset: Type.Optional(Type.Number({ expected: 'a number added after scaling' })),
    wordOrder: Type.Optional(Type.Union([Type.Literal('big'), Type.Literal('little')], { expected: '"big" (high word first) or "little"' })),
  },
  Strict,
);
const ModbusCollector = Type.Object(
  {
    type: Type.Literal('modbus'),
    name: Type.Optional(Text('a name')),
    host: Text('the Modbus TCP server address'),
    port: Type.Optional(Port),
    unitId: Type.Optional(Type.Integer({ minimum: 0, maximum: 255 })),
    device: Text('the device id the readings carry'),
    stream: Type.Optional(Text('a stream name')),
    interval: Type.Optional(Duration),
    timeout: Type.Optional(Duration),
    registers: Type.Array(ModbusRegister, { minItems: 1, expected: 'a list of registers' }),
  },
  Strict,
);
const FileCollector = Type.Object(
  {
    type: Type.Literal('file'),
    name: Type.Optional(Text('a name')),
    path: Text('a CSV or NDJSON file path'),
    format: Type.Optional(Type.Union([Type.Literal('csv'), Type.Literal('ndjson')], { expected: '"csv" or "ndjson"' })),
    stream: Type.Optional(Text('a stream name')),
    poll: Type.Optional(Duration),
  },
  Strict,
);
const StdinCollector = Type.Object(
  { type: Type.Literal('stdin'), name: Type.Optional(Text('a name')), format: Type.Optional(Type.Union([Type.Literal('csv'), Type.Literal('ndjson')])), stream: Type.Optional(Text('a stream name')) },
  Strict,
);
const SimulatorCollector = Type.Object(
  {
    type: Type.Literal('simulator'),
    name: Type.Optional(Text('a name')),
    meters: Type.Optional(Type.Integer({ minimum: 0 })),
    machines: Type.Optional(Type.Integer({ minimum: 0 })),
    interval: Type.Optional(Duration),
    anomalyEvery: Type.Optional(Duration),
    seed: Type.Optional(Type.Integer()),
  },
  Strict,
);
const Collector = Type.Union([HttpCollector, MqttCollector, ModbusCollector, FileCollector, StdinCollector, SimulatorCollector], {
  expected: 'a collector with type http, mqtt, modbus, file, stdin or simulator',
});

export const EdgeConfigSchema = Type.Object(
  {
    agent: Type.Optional(Type.Object({ name: Type.Optional(Type.String({ pattern: '^[\\w.:@-]{1,64}$', expected: 'a name of letters, digits and ._:@-' })), dataDir: Type.Optional(Text('a directory')) }, Strict)),
    streams: Type.Optional(Type.Record(Type.String(), Type.Object({ key: Text('the field holding the device id'), time: Type.Optional(Text('the time field')) }, Strict))),
    spool: Type.Optional(
      Type.Object(
        {
          maxBytes: Type.Optional(Size),
          segmentBytes: Type.Optional(Size),
          full: Type.Optional(Type.Union([Type.Literal('block'), Type.Literal('drop-oldest')], { expected: '"block" or "drop-oldest"' })),
          fsync: Type.Optional(Type.Union([Type.Literal('batch'), Type.Literal('interval'), Type.Literal('none')], { expected: '"batch", "interval" or "none"' })),
          fsyncInterval: Type.Optional(Duration),
        },
        Strict,
      ),
    ),
    forward: Type.Object(
      {
        url: Text('the platform URL, e.g. http://127.0.0.1:8080, or Kafka brokers, e.g. kafka://127.0.0.1:9092'),
        topics: Type.Optional(Type.Record(Type.String(), Text('a Kafka topic name'), { expected: 'a mapping of stream names to Kafka topics' })),
        token: Type.Optional(Text('a bearer token')),
        tokenEnv: Type.Optional(Text('the name of an environment variable holding the token')),
        batchReadings: Type.Optional(Type.Integer({ minimum: 1, maximum: 50_000 })),
        maxPerDevice: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
        idField: Type.Optional(Text('a field name')),
        timeout: Type.Optional(Duration),
        backoffMin: Type.Optional(Duration),
        backoffMax: Type.Optional(Duration),
        backfillAfter: Type.Optional(Duration),
      },
      Strict,
    ),
    status: Type.Optional(Type.Object({ host: Type.Optional(Text('an address')), port: Type.Optional(Port) }, Strict)),
    detect: Type.Optional(
      Type.Object(
        {
          stream: Text('the stream whose readings are checked on the agent'),
          detectors: Type.Optional(Type.Array(Text('a detector type (spike, drop, ...) or a rule name of the stream'), { minItems: 1, expected: 'a list of detector types or rule names' })),
          config: Type.Optional(Text('a gridpulse.yaml that defines the stream (default: the built-in streams)')),
          recentAlerts: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, expected: 'how many recent alert events /status lists, 1..10000' })),
        },
        Strict,
      ),
    ),
    collectors: Type.Array(Collector, { minItems: 1, expected: 'a list of collectors' }),
  },
  Strict,
);

type Input = Static<typeof EdgeConfigSchema>;
type WithoutName<T> = T extends { name?: string } ? Omit<T, 'name'> & { name: string } : never;

/** One collector as configured, with its name filled in (`<type>` or `<type>-<n>`). */
export type EdgeCollectorConfig = WithoutName<Input['collectors'][number]>;
export type EdgeFullPolicy = 'block' | 'drop-oldest';

/** The edge agent's resolved config: sizes in bytes, durations in ms, defaults applied, frozen. */
export interface EdgeConfig {
  readonly agent: { readonly name: string; readonly dataDir: string };
  /** Per stream, the field holding the device id (readings are ordered and deduplicated per device). */
  readonly streams: Readonly<Record<string, { readonly key: string; readonly time: string }>>;
  readonly spool: {
    readonly maxBytes: number;
    readonly segmentBytes: number;
    readonly full: EdgeFullPolicy;
    readonly fsync: 'batch' | 'interval' | 'none';
    readonly fsyncIntervalMs: number;
  };
  readonly forward: {
    /** `http`: the platform's HTTP ingest (`http://`, `https://`); `kafka`: the raw topics `gridpulse process` consumes (`kafka://`). */
    readonly kind: 'http' | 'kafka';
    readonly url: string;
    /** HTTP only (a Kafka URL takes none). */
    readonly token: string | undefined;
    /** Kafka only: the raw topic per stream where it is not the default (`rawTopicOf`), as `gridpulse process --topic stream=topic`. */
    readonly topics: Readonly<Record<string, string>>;
    readonly batchReadings: number;
    readonly maxPerDevice: number;
    readonly idField: string;
    readonly timeoutMs: number;
    readonly backoffMinMs: number;
    readonly backoffMaxMs: number;
    readonly backfillAfterMs: number;
  };
  readonly status: { readonly host: string; readonly port: number };
  readonly collectors: readonly EdgeCollectorConfig[];
  /** Local detection (absent: off): the stream's schema with only the chosen detectors, all enabled, deduplicating by `forward.idField`. */
  readonly detect: EdgeDetectConfig | undefined;
}

export interface EdgeDetectConfig {
  readonly schema: StreamSchema;
  /** The detectors chosen, as named in the config (all the stream's enabled ones when none were named). */
  readonly detectors: readonly string[];
  readonly recentAlerts: number;
}

export const EDGE_DEFAULTS = {
  name: 'edge',
  dataDir: './edge-data',
  streams: { power: { key: 'meterId', time: 'timestamp' }, machines: { key: 'machine_id', time: 'timestamp' } },
  maxBytes: 1024 * 1024 * 1024,
  segmentBytes: 8 * 1024 * 1024,
  full: 'block',
  fsync: 'batch',
  fsyncIntervalMs: 1000,
  batchReadings: 5000,
  // The platform recognises a resent reading by id among the device's last 16 (the engine's ring):
  // a batch never holds more of one device, so a batch sent again is recognised whole.
  maxPerDevice: 16,
  idField: 'readingId',
  timeoutMs: 15_000,
  backoffMinMs: 250,
  backoffMaxMs: 30_000,
  backfillAfterMs: 30_000,
  statusHost: '127.0.0.1',
  statusPort: 9464,
  recentAlerts: 50,
} as const;

/** Parses "64MB", "1GiB", "512k" or a number of bytes (k/M/G are powers of 1024, as the log's sizes). */
export function parseSize(value: string | number): number {
  if (typeof value === 'number') return value;
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kKmMgG])?(?:i?[bB])?\s*$/.exec(value) ?? /^\s*(\d+)\s*[bB]\s*$/.exec(value);
  if (match === null) throw new GpError('GP_CONFIG_INVALID', `expected a size like "64MB", got ${JSON.stringify(value)}`);
  const unit = (match[2] ?? '').toLowerCase();
  const factor = unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1;
  return Math.round(Number(match[1]) * factor);
}

/**
 * Checks and resolves an edge config (already parsed from YAML). Throws GP_CONFIG_INVALID
 * listing every problem as `/json/pointer: expected …, got …`.
 *
 * @example
 * const config = parseEdgeConfig({ forward: { url: 'http://127.0.0.1:8080' }, collectors: [{ type: 'http', port: 8181 }] });
 */
export function parseEdgeConfig(input: unknown, options: { env?: Readonly<Record<string, string | undefined>>; cwd?: string; source?: string } = {}): EdgeConfig {
  const source = options.source ?? 'edge config';
  const issues: ConfigIssue[] = schemaIssues(EdgeConfigSchema, input ?? {});
  const fail = (): never => {
    throw new GpError('GP_CONFIG_INVALID', `invalid edge config (${source}):\n${formatIssues(issues)}`, { issues, source });
  };
  if (issues.length > 0) fail();
  const config = input as Input;
  const duration = (path: string, value: string | number | undefined, fallback: number): number => {
    if (value === undefined) return fallback;
    try {
      return parseDuration(value);
    } catch (error) {
      issues.push({ path, message: (error as Error).message });
      return fallback;
    }
  };
  const size = (path: string, value: string | number | undefined, fallback: number): number => {
    if (value === undefined) return fallback;
    try {
      return parseSize(value);
    } catch (error) {
      issues.push({ path, message: (error as Error).message });
      return fallback;
    }
  };
  const spool = config.spool ?? {};
  const segmentBytes = size('/spool/segmentBytes', spool.segmentBytes, EDGE_DEFAULTS.segmentBytes);
  const maxBytes = size('/spool/maxBytes', spool.maxBytes, EDGE_DEFAULTS.maxBytes);
  if (segmentBytes < 64 * 1024 || segmentBytes > 1024 ** 3) issues.push({ path: '/spool/segmentBytes', message: `expected 64KiB..1GiB, got ${segmentBytes} bytes` });
  // Space comes back a whole segment at a time, and the segment being written never goes.
  if (maxBytes < 4 * segmentBytes) issues.push({ path: '/spool/maxBytes', message: `expected at least 4 segments (${4 * segmentBytes} bytes with segmentBytes ${segmentBytes}), got ${maxBytes}` });
  const forward = config.forward;
  const kind = /^\s*kafka:/i.test(forward.url) ? 'kafka' : 'http';
  const streams: Record<string, { key: string; time: string }> = {};
  for (const [name, stream] of Object.entries({ ...EDGE_DEFAULTS.streams, ...(config.streams ?? {}) })) streams[name] = { key: stream.key, time: stream.time ?? 'timestamp' };
  if (kind === 'kafka') {
    checkKafkaForwarding(forward, streams, issues);
  } else {
    try {
      const url = new URL(forward.url);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') issues.push({ path: '/forward/url', message: `expected an http://, https:// or kafka:// URL, got ${url.protocol}` });
      if (url.password !== '') issues.push({ path: '/forward/url', message: 'expected no password in the URL (use forward.token or forward.tokenEnv), got one' });
    } catch {
      issues.push({ path: '/forward/url', message: `expected a URL like http://127.0.0.1:8080 or kafka://127.0.0.1:9092, got ${JSON.stringify(forward.url)}` });
    }
    if (forward.topics !== undefined) {
      issues.push({ path: '/forward/topics', message: `expected no topics when forwarding over HTTP (topics name the Kafka raw topics of a kafka:// URL), got ${Object.keys(forward.topics).length} stream(s)` });
    }
  }
  let token = kind === 'kafka' ? undefined : forward.token;
  if (forward.tokenEnv !== undefined && kind === 'http') {
    const env = options.env ?? process.env;
    token = env[forward.tokenEnv];
    if (token === undefined || token === '') issues.push({ path: '/forward/tokenEnv', message: `expected the environment variable ${forward.tokenEnv} to hold the token, got nothing` });
  }
  const counts = new Map<string, number>();
  const names = new Set<string>();
  const collectors = config.collectors.map((collector, index) => {
    const n = (counts.get(collector.type) ?? 0) + 1;
    counts.set(collector.type, n);
    const name = collector.name ?? (n === 1 ? collector.type : `${collector.type}-${n}`);
    if (names.has(name)) issues.push({ path: `/collectors/${index}/name`, message: `expected a name no other collector has, got ${JSON.stringify(name)} again` });
    names.add(name);
    const stream = 'stream' in collector ? collector.stream : undefined;
    if (stream !== undefined && streams[stream] === undefined) {
      issues.push({ path: `/collectors/${index}/stream`, message: `expected one of the streams ${Object.keys(streams).join(', ')}, got ${JSON.stringify(stream)}` });
    }
    for (const key of ['interval', 'timeout', 'poll', 'anomalyEvery'] as const) {
      const value = (collector as Record<string, unknown>)[key];
      if (typeof value === 'string') duration(`/collectors/${index}/${key}`, value, 0);
    }
    return { ...collector, name };
  });
  const detect = config.detect === undefined ? undefined : resolveDetect(config.detect, streams, forward.idField ?? EDGE_DEFAULTS.idField, options, issues);
  const resolved: EdgeConfig = {
    agent: { name: config.agent?.name ?? EDGE_DEFAULTS.name, dataDir: resolve(options.cwd ?? '.', config.agent?.dataDir ?? EDGE_DEFAULTS.dataDir) },
    streams,
    spool: {
      maxBytes,
      segmentBytes,
      full: spool.full ?? EDGE_DEFAULTS.full,
      fsync: spool.fsync ?? EDGE_DEFAULTS.fsync,
      fsyncIntervalMs: duration('/spool/fsyncInterval', spool.fsyncInterval, EDGE_DEFAULTS.fsyncIntervalMs),
    },
    forward: {
      kind,
      url: kind === 'kafka' ? forward.url.trim() : forward.url.replace(/\/+$/, ''),
      token,
      topics: { ...(forward.topics ?? {}) },
      batchReadings: forward.batchReadings ?? EDGE_DEFAULTS.batchReadings,
      maxPerDevice: forward.maxPerDevice ?? EDGE_DEFAULTS.maxPerDevice,
      idField: forward.idField ?? EDGE_DEFAULTS.idField,
      timeoutMs: duration('/forward/timeout', forward.timeout, EDGE_DEFAULTS.timeoutMs),
      backoffMinMs: duration('/forward/backoffMin', forward.backoffMin, EDGE_DEFAULTS.backoffMinMs),
      backoffMaxMs: duration('/forward/backoffMax', forward.backoffMax, EDGE_DEFAULTS.backoffMaxMs),
      backfillAfterMs: duration('/forward/backfillAfter', forward.backfillAfter, EDGE_DEFAULTS.backfillAfterMs),
    },
    status: { host: config.status?.host ?? EDGE_DEFAULTS.statusHost, port: config.status?.port ?? EDGE_DEFAULTS.statusPort },
    collectors,
    detect,
  };
  if (issues.length > 0) fail();
  return Object.freeze(resolved);
}

/** Kafka URL's shape: brokers after the scheme and nothing else (the Kafka log parses the broker list itself when the agent starts). */
const KAFKA_URL = /^\s*kafka:\/\/[^/@?#\s]+\/?\s*$/i;

/**
 * The checks of forwarding to Kafka that need nothing but the config: the URL's shape (no
 * credentials: Kafka SASL and TLS are not supported), no token, `forward.topics` naming streams of the
 * agent with valid topic names, and every stream named (a stream's name chooses its topic).
 */
function checkKafkaForwarding(forward: Input['forward'], streams: Readonly<Record<string, unknown>>, issues: ConfigIssue[]): void {
  const url = forward.url;
  if (/^\s*kafka:\/\/[^/?#]*@/i.test(url)) {
    issues.push({ path: '/forward/url', message: 'expected kafka://host:port[,host:port...] without credentials (Kafka SASL and TLS are not supported yet), got a URL with credentials' });
  } else if (!KAFKA_URL.test(url)) {
    issues.push({ path: '/forward/url', message: `expected kafka://host:port[,host:port...] (nothing after the brokers), got ${JSON.stringify(url)}` });
  }
  for (const field of ['token', 'tokenEnv'] as const) {
    if (forward[field] !== undefined) {
      issues.push({ path: `/forward/${field}`, message: `expected no token when forwarding to Kafka (a kafka:// URL takes no authentication: Kafka SASL is not supported yet), got forward.${field}` });
    }
  }
  if ('' in streams) {
    issues.push({ path: pointer('/streams', ''), message: 'expected every stream to have a name when forwarding to Kafka (a stream\'s readings go to its raw topic, named after it), got a stream named ""' });
  }
  for (const [stream, topic] of Object.entries(forward.topics ?? {})) {
    const path = pointer('/forward/topics', stream);
    if (!(stream in streams)) issues.push({ path, message: `expected one of the agent's streams (${Object.keys(streams).join(', ')}), got ${JSON.stringify(stream)}` });
    if (!KAFKA_TOPIC_PATTERN.test(topic) || topic === '.' || topic === '..') issues.push({ path, message: `expected a Kafka topic name (1 to 249 letters, digits and ._-), got ${JSON.stringify(topic)}` });
  }
}

/**
 * The stream of `detect` from the built-in streams or `detect.config`, narrowed to the named
 * detectors (a name matches a detector's type or its alert type, e.g. a rule's name; a detector
 * off by default is turned on by naming it).
 */
function resolveDetect(
  detect: NonNullable<Input['detect']>,
  streams: Readonly<Record<string, { key: string; time: string }>>,
  idField: string,
  options: { env?: Readonly<Record<string, string | undefined>>; cwd?: string },
  issues: ConfigIssue[],
): EdgeDetectConfig | undefined {
  let platform: GridpulseConfig;
  try {
    platform = detect.config === undefined ? defaultConfig() : loadConfig({ path: detect.config, ...(options.cwd === undefined ? {} : { cwd: options.cwd }), env: options.env ?? {} });
  } catch (error) {
    issues.push({ path: '/detect/config', message: `expected a valid gridpulse config, got: ${(error as Error).message}` });
    return undefined;
  }
  const schema = platform.streams[detect.stream];
  const edgeStream = streams[detect.stream];
  if (schema === undefined || edgeStream === undefined) {
    const known = Object.keys(platform.streams).filter((name) => streams[name] !== undefined);
    issues.push({ path: '/detect/stream', message: `expected a stream both the agent (streams) and the platform config know (${known.join(', ') || 'none'}), got ${JSON.stringify(detect.stream)}` });
    return undefined;
  }
  if (edgeStream.key !== schema.keyField) {
    issues.push({ path: '/detect/stream', message: `expected the agent's streams.${detect.stream}.key to be the stream's key field ${schema.keyField}, got ${edgeStream.key}` });
  }
  const named = (spec: StreamSchema['detectors'][number]): string[] => [spec.type, ...(spec.alertType === undefined ? [] : [spec.alertType])];
  let specs = schema.detectors.filter((spec) => spec.enabled);
  if (detect.detectors !== undefined) {
    const available = [...new Set(schema.detectors.flatMap(named))];
    detect.detectors.forEach((name, index) => {
      if (!available.includes(name)) issues.push({ path: `/detect/detectors/${index}`, message: `expected one of the detectors of stream ${detect.stream} (${available.join(', ')}), got ${JSON.stringify(name)}` });
    });
    const chosen = new Set(detect.detectors);
    specs = schema.detectors.filter((spec) => named(spec).some((name) => chosen.has(name))).map((spec) => ({ ...spec, enabled: true }));
  }
  return {
    schema: { ...schema, idField: idField, detectors: specs },
    detectors: detect.detectors ?? [...new Set(specs.map((spec) => spec.alertType ?? spec.type))],
    recentAlerts: detect.recentAlerts ?? EDGE_DEFAULTS.recentAlerts,
  };
}

/** Reads and checks an edge config file (YAML). Relative paths in it are taken from the file's directory's caller (`cwd`). */
export function loadEdgeConfig(path: string, options: { env?: Readonly<Record<string, string | undefined>>; cwd?: string } = {}): EdgeConfig {
  const absolute = resolve(options.cwd ?? '.', path);
  if (!existsSync(absolute)) throw new GpError('GP_CONFIG_NOT_FOUND', `edge config file not found: ${path}`, { path: absolute });
  let parsed: unknown;
  try {
    parsed = parseYaml(readFileSync(absolute, 'utf8'));
  } catch (error) {
    throw new GpError('GP_CONFIG_INVALID', `edge config ${path}: expected YAML, got: ${(error as Error).message}`, { path: absolute }, { cause: error });
  }
  return parseEdgeConfig(parsed, { ...options, source: path });
}
