import { Type, type Static } from '@sinclair/typebox';
import { DURATION_EXPECTED, DurationReader } from './duration.js';
import { describeValue, pointer, type ConfigIssue } from './issues.js';

// The live platform's sections of gridpulse.yaml (`gridpulse up`): HTTP server and its limits,
// device tokens, MQTT ingest, the embedded log, checkpoints, the built-in simulator and the
// optional live-feature cache in Redis.

const strict = { additionalProperties: false } as const;
const Duration = Type.Union([Type.String(), Type.Number()], { expected: DURATION_EXPECTED });
const Count = (expected: string, minimum = 1) => Type.Integer({ minimum, expected });

export const ServerInputSchema = Type.Object(
  {
    host: Type.Optional(Type.String({ minLength: 1, expected: 'a host name or address like "127.0.0.1"' })),
    port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, expected: 'a port number from 0 to 65535' })),
    auth: Type.Optional(
      Type.Object(
        {
          mode: Type.Optional(Type.Union([Type.Literal('open'), Type.Literal('tokens')], { expected: 'open or tokens' })),
          tokens: Type.Optional(
            Type.Array(
              Type.Object(
                {
                  name: Type.String({ minLength: 1, expected: 'a non-empty token name' }),
                  sha256: Type.String({ pattern: '^[0-9a-f]{64}$', expected: 'the token\'s SHA-256 as 64 lowercase hex digits (gridpulse token create prints it)' }),
                  keys: Type.Optional(Type.Array(Type.String({ minLength: 1, expected: 'a device id' }))),
                },
                strict,
              ),
            ),
          ),
        },
        strict,
      ),
    ),
    limits: Type.Optional(
      Type.Object(
        {
          bodyBytes: Type.Optional(Count('a size in bytes, at least 1024', 1024)),
          batchItems: Type.Optional(Count('a whole number of readings, at least 1')),
          ratePerSecond: Type.Optional(Count('readings per second per token, at least 1')),
          burst: Type.Optional(Count('a whole number of readings, at least 1')),
          sseBufferEvents: Type.Optional(Count('a whole number of events, at least 16', 16)),
        },
        strict,
      ),
    ),
  },
  strict,
);

export const MqttInputSchema = Type.Object(
  {
    url: Type.String({ pattern: '^(mqtts?|wss?|tcp)://', expected: 'a broker URL like "mqtt://127.0.0.1:1883"' }),
    qos: Type.Optional(Type.Union([Type.Literal(0), Type.Literal(1)], { expected: '0 or 1' })),
    clientId: Type.Optional(Type.String({ minLength: 1 })),
    topics: Type.Optional(
      Type.Array(
        Type.Object(
          {
            topic: Type.String({ minLength: 1, expected: 'an MQTT topic filter like "gridpulse/+/readings"' }),
            stream: Type.Optional(Type.String({ minLength: 1, expected: 'a stream name' })),
            keyLevel: Type.Optional(Type.Integer({ minimum: 0, expected: 'the 0-based topic level that holds the device id' })),
          },
          strict,
        ),
      ),
    ),
  },
  strict,
);

export const LogInputSchema = Type.Object(
  {
    fsync: Type.Optional(Type.Union([Type.Literal('batch'), Type.Literal('interval'), Type.Literal('none')], { expected: 'batch, interval or none' })),
    fsyncInterval: Type.Optional(Duration),
    segmentBytes: Type.Optional(Count('a size in bytes, at least 1 MiB (1048576)', 1_048_576)),
    retentionBytes: Type.Optional(Count('a size in bytes, at least 1 MiB (1048576)', 1_048_576)),
    retention: Type.Optional(Duration),
  },
  strict,
);

export const CheckpointInputSchema = Type.Object({ interval: Type.Optional(Duration) }, strict);

export const SimulatorInputSchema = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean()),
    meters: Type.Optional(Count('a whole number of meters', 0)),
    machines: Type.Optional(Count('a whole number of machines', 0)),
    sites: Type.Optional(Count('a whole number of sites, at least 1')),
    interval: Type.Optional(Duration),
    anomalyEvery: Type.Optional(Duration),
    seed: Type.Optional(Type.Integer({ expected: 'a whole number' })),
  },
  strict,
);

export const FeaturesInputSchema = Type.Object(
  {
    redis: Type.Optional(
      Type.Object(
        {
          url: Type.String({ pattern: '^rediss?://[^/]', expected: 'a Redis URL like "redis://127.0.0.1:6379"' }),
          ttl: Type.Optional(Duration),
          interval: Type.Optional(Duration),
          prefixes: Type.Optional(Type.Record(Type.String(), Type.String({ minLength: 1, pattern: '^[^\\s]+$', expected: 'a key prefix without spaces, like "machine"' }))),
        },
        strict,
      ),
    ),
  },
  strict,
);

export type ServerInput = Static<typeof ServerInputSchema>;
export type MqttInput = Static<typeof MqttInputSchema>;
export type LogInput = Static<typeof LogInputSchema>;
export type CheckpointInput = Static<typeof CheckpointInputSchema>;
export type SimulatorInput = Static<typeof SimulatorInputSchema>;
export type FeaturesInput = Static<typeof FeaturesInputSchema>;

/** A device token as configured: only its SHA-256 is stored; `keys` bounds which devices it may write. */
export interface TokenConfig {
  readonly name: string;
  readonly sha256: string;
  readonly keys: readonly string[] | undefined;
}

export interface ServerConfig {
  readonly host: string;
  readonly port: number;
  /** `open`: anyone may write (local demos); `tokens`: a valid bearer token is required. */
  readonly auth: { readonly mode: 'open' | 'tokens'; readonly tokens: readonly TokenConfig[] };
  readonly limits: {
    /** Largest request body accepted (compressed size), bytes. */
    readonly bodyBytes: number;
    /** Most readings in one request. */
    readonly batchItems: number;
    /** Sustained readings per second per token (or per client address in open mode). */
    readonly ratePerSecond: number;
    /** Readings a token may send at once above the rate. */
    readonly burst: number;
    /** Events buffered per live (SSE) client before it is dropped. */
    readonly sseBufferEvents: number;
  };
}

export interface MqttConfig {
  readonly url: string;
  readonly qos: 0 | 1;
  readonly clientId: string | undefined;
  readonly topics: ReadonlyArray<{ readonly topic: string; readonly stream: string | undefined; readonly keyLevel: number | undefined }>;
}

export interface LogConfig {
  readonly fsync: 'batch' | 'interval' | 'none';
  readonly fsyncIntervalMs: number;
  readonly segmentBytes: number;
  readonly retentionBytes: number;
  readonly retentionMs: number;
}

export interface SimulatorConfig {
  readonly enabled: boolean;
  readonly meters: number;
  readonly machines: number;
  readonly sites: number;
  readonly intervalMs: number;
  /** Mean time between injected anomalies over the whole fleet. */
  readonly anomalyEveryMs: number;
  readonly seed: number;
}

/**
 * The live-feature cache in Redis (`features.redis`): per device the last value and the newest
 * 1-minute average of each metric under `{prefix}:{id}:{metric}_last` / `_1m_avg`, each with a TTL.
 */
export interface RedisFeaturesConfig {
  /** May hold a password: never log it as is. */
  readonly url: string;
  /** Time to live of every key written; a device silent this long disappears from Redis. */
  readonly ttlMs: number;
  /** How often the devices whose features changed are written. */
  readonly intervalMs: number;
  /** Key prefix per stream (over the built-in machines → machine, power → meter; other streams use their name). */
  readonly prefixes: Readonly<Record<string, string>>;
}

export interface FeaturesConfig {
  /** Undefined (the default): features stay in memory only. */
  readonly redis: RedisFeaturesConfig | undefined;
}

export interface PlatformConfig {
  readonly server: ServerConfig;
  readonly mqtt: MqttConfig | undefined;
  readonly log: LogConfig;
  readonly checkpoint: { readonly intervalMs: number };
  readonly simulator: SimulatorConfig;
  readonly features: FeaturesConfig;
}

export const PLATFORM_DEFAULTS = {
  server: { host: '127.0.0.1', port: 8080, auth: 'open', bodyBytes: 8 * 1024 * 1024, batchItems: 50_000, ratePerSecond: 100_000, burst: 200_000, sseBufferEvents: 1000 },
  mqtt: { qos: 1, topics: [{ topic: 'gridpulse/+/readings', keyLevel: 1 }] },
  log: { fsync: 'batch', fsyncInterval: '1s', segmentBytes: 64 * 1024 * 1024, retentionBytes: 1024 * 1024 * 1024, retention: '7d' },
  checkpoint: { interval: '5s' },
  simulator: { enabled: true, meters: 200, machines: 20, sites: 8, interval: '5s', anomalyEvery: '20s', seed: 1 },
  features: { redis: { ttl: '10m', interval: '1s' } },
} as const;

export interface PlatformInput {
  server?: ServerInput | undefined;
  mqtt?: MqttInput | undefined;
  log?: LogInput | undefined;
  checkpoint?: CheckpointInput | undefined;
  simulator?: SimulatorInput | undefined;
  features?: FeaturesInput | undefined;
}

/** Resolves the platform sections, adding an issue (with its JSON pointer) for each bad duration. */
export function buildPlatformConfig(input: PlatformInput, issues: ConfigIssue[]): PlatformConfig {
  const durations = new DurationReader(issues);
  const duration = (path: string, value: string | number): number => durations.read(value, path, { positive: true });
  const d = PLATFORM_DEFAULTS;
  const server = input.server ?? {};
  const tokens = (server.auth?.tokens ?? []).map((t) => ({ name: t.name, sha256: t.sha256, keys: t.keys }));
  const mode = server.auth?.mode ?? (tokens.length > 0 ? 'tokens' : d.server.auth);
  if (mode === 'tokens' && tokens.length === 0) {
    issues.push({ path: '/server/auth/tokens', message: 'expected at least one token when auth mode is "tokens", got none' });
  }
  const log = input.log ?? {};
  const sim = input.simulator ?? {};
  const mqtt = input.mqtt;
  const features = buildFeatures(input.features, duration, issues);
  return {
    server: {
      host: server.host ?? d.server.host,
      port: server.port ?? d.server.port,
      auth: { mode, tokens },
      limits: {
        bodyBytes: server.limits?.bodyBytes ?? d.server.bodyBytes,
        batchItems: server.limits?.batchItems ?? d.server.batchItems,
        ratePerSecond: server.limits?.ratePerSecond ?? d.server.ratePerSecond,
        burst: server.limits?.burst ?? d.server.burst,
        sseBufferEvents: server.limits?.sseBufferEvents ?? d.server.sseBufferEvents,
      },
    },
    mqtt:
      mqtt === undefined
        ? undefined
        : {
            url: mqtt.url,
            qos: mqtt.qos ?? d.mqtt.qos,
            clientId: mqtt.clientId,
            topics: (mqtt.topics ?? d.mqtt.topics).map((t) => ({ topic: t.topic, stream: 'stream' in t ? t.stream : undefined, keyLevel: t.keyLevel })),
          },
    log: {
      fsync: log.fsync ?? d.log.fsync,
      fsyncIntervalMs: duration(pointer('/log', 'fsyncInterval'), log.fsyncInterval ?? d.log.fsyncInterval),
      segmentBytes: log.segmentBytes ?? d.log.segmentBytes,
      retentionBytes: log.retentionBytes ?? d.log.retentionBytes,
      retentionMs: duration(pointer('/log', 'retention'), log.retention ?? d.log.retention),
    },
    checkpoint: { intervalMs: duration(pointer('/checkpoint', 'interval'), input.checkpoint?.interval ?? d.checkpoint.interval) },
    simulator: {
      enabled: sim.enabled ?? d.simulator.enabled,
      meters: sim.meters ?? d.simulator.meters,
      machines: sim.machines ?? d.simulator.machines,
      sites: sim.sites ?? d.simulator.sites,
      intervalMs: duration(pointer('/simulator', 'interval'), sim.interval ?? d.simulator.interval),
      anomalyEveryMs: duration(pointer('/simulator', 'anomalyEvery'), sim.anomalyEvery ?? d.simulator.anomalyEvery),
      seed: sim.seed ?? d.simulator.seed,
    },
    features,
  };
}

function buildFeatures(input: FeaturesInput | undefined, duration: (path: string, value: string | number) => number, issues: ConfigIssue[]): FeaturesConfig {
  const redis = input?.redis;
  if (redis === undefined) return { redis: undefined };
  const d = PLATFORM_DEFAULTS.features.redis;
  const at = '/features/redis';
  const ttlMs = duration(pointer(at, 'ttl'), redis.ttl ?? d.ttl);
  const intervalMs = duration(pointer(at, 'interval'), redis.interval ?? d.interval);
  // A device that changes every interval must not see its keys expire between two writes.
  if (Number.isFinite(ttlMs) && Number.isFinite(intervalMs) && ttlMs <= intervalMs) {
    issues.push({ path: pointer(at, 'ttl'), message: `expected a time to live longer than the interval (${describeValue(redis.interval ?? d.interval)}), got ${describeValue(redis.ttl ?? d.ttl)}` });
  }
  return { redis: { url: redis.url, ttlMs, intervalMs, prefixes: { ...redis.prefixes } } };
}
