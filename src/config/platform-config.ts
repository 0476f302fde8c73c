import { isIP } from 'node:net';
import { Type, type Static } from '@sinclair/typebox';
import { DURATION_EXPECTED, DurationReader } from './duration.js';
import { describeValue, pointer, type ConfigIssue } from './issues.js';
import { KAFKA_TOPIC_PATTERN, type MaintenanceWindow } from '../model/index.js';

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

// alerts.delivery: where alert transitions are sent (webhook, MQTT and Kafka channels), which
// transitions go where (routes), and which webhook targets are allowed.
const DeliveryTemplate = Type.Union([Type.Literal('generic'), Type.Literal('slack')], { expected: 'generic or slack' });
const SeverityName = Type.Union([Type.Literal('info'), Type.Literal('warning'), Type.Literal('critical')], { expected: 'info, warning or critical' });
const TransitionKindName = Type.Union(
  [
    Type.Literal('open'),
    Type.Literal('update'),
    Type.Literal('escalate'),
    Type.Literal('resolve'),
    Type.Literal('reopen'),
    Type.Literal('acknowledge'),
    Type.Literal('assign'),
    Type.Literal('flapping'),
    Type.Literal('correct'),
  ],
  { expected: 'one of open, update, escalate, resolve, reopen, acknowledge, assign, flapping, correct' },
);
const Names = (expected: string) => Type.Array(Type.String({ minLength: 1, expected }));

export const DeliveryRetryInputSchema = Type.Object(
  {
    attempts: Type.Optional(Count('a whole number of attempts, at least 1')),
    baseDelay: Type.Optional(Duration),
    maxDelay: Type.Optional(Duration),
  },
  strict,
);

/** One channel; which keys apply depends on `type` (checked after the schema, so each problem has its own path). */
export const DeliveryChannelInputSchema = Type.Object(
  {
    type: Type.Union([Type.Literal('webhook'), Type.Literal('mqtt'), Type.Literal('kafka')], { expected: 'webhook, mqtt or kafka' }),
    url: Type.String({ minLength: 1, expected: 'a URL like "https://hooks.example.com/gridpulse" (webhook), "mqtt://127.0.0.1:1883" (mqtt) or "kafka://127.0.0.1:9092" (kafka)' }),
    secret: Type.Optional(Type.String({ expected: 'a Standard Webhooks secret like "whsec_" followed by base64' })),
    previousSecrets: Type.Optional(Type.Array(Type.String({ expected: 'a Standard Webhooks secret like "whsec_" followed by base64' }))),
    timeout: Type.Optional(Duration),
    retry: Type.Optional(DeliveryRetryInputSchema),
    template: Type.Optional(DeliveryTemplate),
    topic: Type.Optional(Type.String({ minLength: 1, expected: 'an MQTT topic like "gridpulse/alerts/{site}/{type}" or a Kafka topic like "gridpulse-alert-notifications"' })),
    qos: Type.Optional(Type.Union([Type.Literal(1), Type.Literal(2)], { expected: '1 or 2' })),
    clientId: Type.Optional(Type.String({ minLength: 1, expected: 'a non-empty MQTT client id' })),
  },
  strict,
);

export const DeliveryRouteInputSchema = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, expected: 'a non-empty route name' })),
    match: Type.Optional(
      Type.Object(
        {
          streams: Type.Optional(Names('a stream name')),
          types: Type.Optional(Names('an alert type like "spike"')),
          sites: Type.Optional(Names('a site id')),
          severities: Type.Optional(Type.Array(SeverityName)),
          minSeverity: Type.Optional(SeverityName),
          kinds: Type.Optional(Type.Array(TransitionKindName)),
        },
        strict,
      ),
    ),
    channels: Type.Array(Type.String({ minLength: 1, expected: 'a channel name' }), { minItems: 1, expected: 'a list of at least one channel name' }),
    template: Type.Optional(DeliveryTemplate),
  },
  strict,
);

export const AlertDeliveryInputSchema = Type.Object(
  {
    queueCapacity: Type.Optional(Count('a whole number of notifications per channel, at least 1')),
    deadLetters: Type.Optional(Type.Union([Type.Literal('file'), Type.Literal('memory')], { expected: 'file or memory' })),
    allow: Type.Optional(
      Type.Object(
        {
          hosts: Type.Optional(Names('a host name like "hooks.example.com" or "*.example.com"')),
          cidrs: Type.Optional(Names('an address range like "203.0.113.0/24" or "2001:db8::/32"')),
        },
        strict,
      ),
    ),
    channels: Type.Optional(Type.Record(Type.String(), DeliveryChannelInputSchema)),
    routes: Type.Optional(Type.Array(DeliveryRouteInputSchema)),
    grouping: Type.Optional(
      Type.Object(
        {
          enabled: Type.Optional(Type.Boolean({ expected: 'true or false' })),
          groupWait: Type.Optional(Duration),
          groupInterval: Type.Optional(Duration),
        },
        strict,
      ),
    ),
  },
  strict,
);

const MAINTENANCE_TIME_EXPECTED = 'a time like "2025-11-24T02:00:00Z" or epoch milliseconds';

/** `alerts.maintenance[]`: a time range in which the alerts of some devices or sites are muted. */
export const MaintenanceWindowInputSchema = Type.Object(
  {
    streams: Type.Optional(Names('a stream name')),
    keys: Type.Optional(Names('a device id')),
    sites: Type.Optional(Names('a site id')),
    from: Type.Union([Type.String(), Type.Number()], { expected: MAINTENANCE_TIME_EXPECTED }),
    to: Type.Union([Type.String(), Type.Number()], { expected: MAINTENANCE_TIME_EXPECTED }),
    reason: Type.Optional(Type.String({ expected: 'a text saying why' })),
  },
  strict,
);

/** `alerts.incidents`: how device alerts of one site are grouped into a site incident. */
export const IncidentsInputSchema = Type.Object(
  {
    minDevices: Type.Optional(Count('a whole number of devices, at least 2', 2)),
    minShare: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1, expected: 'a share of the site\'s devices above 0 and at most 1, like 0.5' })),
    window: Type.Optional(Duration),
    types: Type.Optional(Names('an alert type like "silence"')),
  },
  strict,
);

/** The top-level `alerts` section (delivery, maintenance windows, incidents; per-stream alert policy stays under `streams.<name>.alerts`). */
export const AlertsPlatformInputSchema = Type.Object(
  {
    delivery: Type.Optional(AlertDeliveryInputSchema),
    maintenance: Type.Optional(Type.Array(MaintenanceWindowInputSchema)),
    incidents: Type.Optional(IncidentsInputSchema),
  },
  strict,
);

export type ServerInput = Static<typeof ServerInputSchema>;
export type MqttInput = Static<typeof MqttInputSchema>;
export type LogInput = Static<typeof LogInputSchema>;
export type CheckpointInput = Static<typeof CheckpointInputSchema>;
export type SimulatorInput = Static<typeof SimulatorInputSchema>;
export type FeaturesInput = Static<typeof FeaturesInputSchema>;
export type AlertsPlatformInput = Static<typeof AlertsPlatformInputSchema>;
type DeliveryChannelInput = Static<typeof DeliveryChannelInputSchema>;
type DeliveryRouteInput = Static<typeof DeliveryRouteInputSchema>;

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

/** How a channel retries one notification: `attempts` in all, waits drawn by full jitter from `baseDelay·2^(n−1)`, capped at `maxDelay`. */
export interface DeliveryRetryConfig {
  readonly attempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export type DeliveryTemplateName = 'generic' | 'slack';

/** A Standard Webhooks endpoint. `url` and `secrets` are secret: never log them as they are. */
export interface WebhookChannelConfig {
  readonly type: 'webhook';
  readonly name: string;
  readonly url: string;
  /** The signing secrets, `whsec_…`: the current one first, then previous ones still accepted during a rotation. */
  readonly secrets: readonly string[];
  readonly timeoutMs: number;
  readonly retry: DeliveryRetryConfig;
  readonly template: DeliveryTemplateName;
}

/** An MQTT topic on a broker; `{stream}`, `{key}`, `{site}`, `{type}`, `{severity}`, `{kind}` in the topic are filled per alert. */
export interface MqttChannelConfig {
  readonly type: 'mqtt';
  readonly name: string;
  /** May hold a password: never log it as is. */
  readonly url: string;
  readonly topic: string;
  readonly qos: 1 | 2;
  readonly clientId: string | undefined;
  readonly timeoutMs: number;
  readonly retry: DeliveryRetryConfig;
  readonly template: DeliveryTemplateName;
}

/** A Kafka topic: each notification is one record keyed by its id, from an idempotent producer with acks=all. */
export interface KafkaChannelConfig {
  readonly type: 'kafka';
  readonly name: string;
  /** `kafka://host:port[,host:port…]`. */
  readonly url: string;
  readonly topic: string;
  readonly clientId: string | undefined;
  readonly timeoutMs: number;
  readonly retry: DeliveryRetryConfig;
  readonly template: DeliveryTemplateName;
}

export type DeliveryChannelConfig = WebhookChannelConfig | MqttChannelConfig | KafkaChannelConfig;

/** Which transitions go to which channels. A field left out matches everything; a list matches any of its values. */
export interface DeliveryRouteConfig {
  readonly name: string;
  readonly streams: readonly string[] | undefined;
  readonly types: readonly string[] | undefined;
  readonly sites: readonly string[] | undefined;
  readonly severities: readonly ('info' | 'warning' | 'critical')[] | undefined;
  readonly minSeverity: 'info' | 'warning' | 'critical' | undefined;
  readonly kinds: readonly ('open' | 'update' | 'escalate' | 'resolve' | 'reopen' | 'acknowledge' | 'assign' | 'flapping' | 'correct')[] | undefined;
  readonly channels: readonly string[];
  /** Undefined: each channel's own template. */
  readonly template: DeliveryTemplateName | undefined;
}

/** `alerts.delivery`: nothing is delivered while `channels` is empty (the default). */
export interface AlertDeliveryConfig {
  /** Notifications waiting per channel; when a channel's queue is full, new transitions are refused (reported), never dropped. */
  readonly queueCapacity: number;
  /** `file`: dead letters kept in `<dataDir>/alerts/dead-letters.jsonl`; `memory`: lost on restart. */
  readonly deadLetters: 'file' | 'memory';
  /** Webhook targets: with `hosts`, only those host names; internal addresses only inside `cidrs`. */
  readonly allow: { readonly hosts: readonly string[]; readonly cidrs: readonly string[] };
  readonly channels: readonly DeliveryChannelConfig[];
  readonly routes: readonly DeliveryRouteConfig[];
  /**
   * Site incidents in delivery (`alerts.delivery.grouping`): alerts of `policy.types` are held for
   * `groupWaitMs` (wall time) and a site outage is sent as one incident notification, updated at
   * most every `groupIntervalMs`. `policy` is `alerts.incidents`, the policy of `GET /api/incidents`.
   */
  readonly grouping: DeliveryGroupingConfig;
}

export interface DeliveryGroupingConfig {
  readonly enabled: boolean;
  readonly groupWaitMs: number;
  readonly groupIntervalMs: number;
  readonly policy: IncidentsConfig;
}

/** One maintenance window (`alerts.maintenance[]`), times in epoch ms; `streams` undefined: every stream. */
export interface MaintenanceWindowConfig extends MaintenanceWindow {
  readonly streams: readonly string[] | undefined;
}

/**
 * `alerts.incidents`: alerts of `types` opened within `windowMs` of each other at one site make a
 * site incident when they concern at least `minDevices` devices or `minShare` of the site's devices.
 */
export interface IncidentsConfig {
  readonly minDevices: number;
  readonly minShare: number;
  readonly windowMs: number;
  readonly types: readonly string[];
}

export interface PlatformConfig {
  readonly server: ServerConfig;
  readonly mqtt: MqttConfig | undefined;
  readonly log: LogConfig;
  readonly checkpoint: { readonly intervalMs: number };
  readonly simulator: SimulatorConfig;
  readonly features: FeaturesConfig;
  readonly alerts: { readonly delivery: AlertDeliveryConfig; readonly maintenance: readonly MaintenanceWindowConfig[]; readonly incidents: IncidentsConfig };
}

export const PLATFORM_DEFAULTS = {
  server: { host: '127.0.0.1', port: 8080, auth: 'open', bodyBytes: 8 * 1024 * 1024, batchItems: 50_000, ratePerSecond: 100_000, burst: 200_000, sseBufferEvents: 1000 },
  mqtt: { qos: 1, topics: [{ topic: 'gridpulse/+/readings', keyLevel: 1 }] },
  log: { fsync: 'batch', fsyncInterval: '1s', segmentBytes: 64 * 1024 * 1024, retentionBytes: 1024 * 1024 * 1024, retention: '7d' },
  checkpoint: { interval: '5s' },
  simulator: { enabled: true, meters: 200, machines: 20, sites: 8, interval: '5s', anomalyEvery: '20s', seed: 1 },
  features: { redis: { ttl: '10m', interval: '1s' } },
  alerts: {
    incidents: { minDevices: 5, minShare: 0.5, window: '2m', types: ['silence', 'outage'] },
    delivery: {
      queueCapacity: 10_000,
      deadLetters: 'file',
      webhookTimeout: '15s',
      mqttTimeout: '10s',
      kafkaTimeout: '10s',
      retry: { attempts: 8, baseDelay: '1s', maxDelay: '5m' },
      grouping: { enabled: true, groupWait: '30s', groupInterval: '5m' },
    },
  },
} as const;

export interface PlatformInput {
  server?: ServerInput | undefined;
  mqtt?: MqttInput | undefined;
  log?: LogInput | undefined;
  checkpoint?: CheckpointInput | undefined;
  simulator?: SimulatorInput | undefined;
  features?: FeaturesInput | undefined;
  alerts?: AlertsPlatformInput | undefined;
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
    alerts: buildAlerts(input.alerts, duration, issues),
  };
}

function buildAlerts(input: AlertsPlatformInput | undefined, duration: (path: string, value: string | number) => number, issues: ConfigIssue[]): PlatformConfig['alerts'] {
  const incidents = buildIncidents(input?.incidents, duration);
  return { delivery: buildAlertDelivery(input?.delivery, incidents, duration, issues), maintenance: buildMaintenance(input?.maintenance, issues), incidents };
}

function buildIncidents(input: Static<typeof IncidentsInputSchema> | undefined, duration: (path: string, value: string | number) => number): IncidentsConfig {
  const d = PLATFORM_DEFAULTS.alerts.incidents;
  return {
    minDevices: input?.minDevices ?? d.minDevices,
    minShare: input?.minShare ?? d.minShare,
    windowMs: duration(pointer('/alerts/incidents', 'window'), input?.window ?? d.window),
    types: [...(input?.types ?? d.types)],
  };
}

/**
 * Resolves `alerts.maintenance`: times to epoch ms (ISO-8601 text or a number), `from` before `to`.
 * Adds an issue at the JSON pointer of each bad time; a bad window is left out.
 */
export function buildMaintenance(input: readonly Static<typeof MaintenanceWindowInputSchema>[] | undefined, issues: ConfigIssue[]): MaintenanceWindowConfig[] {
  const windows: MaintenanceWindowConfig[] = [];
  (input ?? []).forEach((window, index) => {
    const at = pointer('/alerts/maintenance', index);
    const from = readTime(window.from, pointer(at, 'from'), issues);
    const to = readTime(window.to, pointer(at, 'to'), issues);
    if (from === undefined || to === undefined) return;
    if (to <= from) {
      issues.push({ path: pointer(at, 'to'), message: `expected a time after from (${describeValue(window.from)}), got ${describeValue(window.to)}` });
      return;
    }
    windows.push({
      streams: window.streams,
      ...(window.keys !== undefined ? { keys: window.keys } : {}),
      ...(window.sites !== undefined ? { sites: window.sites } : {}),
      from,
      to,
      reason: window.reason ?? '',
    });
  });
  return windows;
}

const ISO_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

function readTime(value: string | number, path: string, issues: ConfigIssue[]): number | undefined {
  const time = typeof value === 'number' ? value : ISO_TIME.test(value.trim()) ? Date.parse(value.trim()) : Number.NaN;
  if (Number.isFinite(time)) return time;
  issues.push({ path, message: `expected ${MAINTENANCE_TIME_EXPECTED}, got ${describeValue(value)}` });
  return undefined;
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

const CHANNEL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const WEBHOOK_ONLY = ['secret', 'previousSecrets'] as const;
const MQTT_ONLY = ['topic', 'qos', 'clientId'] as const;
const KAFKA_FOREIGN = ['secret', 'previousSecrets', 'qos'] as const;
/** Standard Webhooks: a symmetric secret is 24 to 64 random bytes, base64 behind `whsec_`. */
const SECRET_MIN_BYTES = 24;
const SECRET_MAX_BYTES = 64;

function buildAlertDelivery(
  input: Static<typeof AlertDeliveryInputSchema> | undefined,
  incidents: IncidentsConfig,
  duration: (path: string, value: string | number) => number,
  issues: ConfigIssue[],
): AlertDeliveryConfig {
  const d = PLATFORM_DEFAULTS.alerts.delivery;
  const at = '/alerts/delivery';
  const hosts = input?.allow?.hosts ?? [];
  const cidrs = input?.allow?.cidrs ?? [];
  for (const [index, host] of hosts.entries()) {
    if (!/^(\*\.)?[A-Za-z0-9._-]+$/.test(host) || host.startsWith('.') || host.endsWith('.')) {
      issues.push({ path: pointer(at, 'allow', 'hosts', index), message: `expected a host name like "hooks.example.com" or "*.example.com", got ${describeValue(host)}` });
    }
  }
  for (const [index, cidr] of cidrs.entries()) {
    if (!isCidr(cidr)) issues.push({ path: pointer(at, 'allow', 'cidrs', index), message: `expected an address range like "203.0.113.0/24" or "2001:db8::/32", got ${describeValue(cidr)}` });
  }
  const channels: DeliveryChannelConfig[] = [];
  for (const [name, channel] of Object.entries(input?.channels ?? {})) {
    const built = buildChannel(name, channel, pointer(at, 'channels', name), duration, issues);
    if (built !== undefined) channels.push(built);
  }
  const known = new Set(Object.keys(input?.channels ?? {}));
  const routes = (input?.routes ?? []).map((route, index) => buildRoute(route, index, known, pointer(at, 'routes', index), issues));
  const grouping = {
    enabled: input?.grouping?.enabled ?? d.grouping.enabled,
    groupWaitMs: duration(pointer(at, 'grouping', 'groupWait'), input?.grouping?.groupWait ?? d.grouping.groupWait),
    groupIntervalMs: duration(pointer(at, 'grouping', 'groupInterval'), input?.grouping?.groupInterval ?? d.grouping.groupInterval),
    policy: incidents,
  };
  return { queueCapacity: input?.queueCapacity ?? d.queueCapacity, deadLetters: input?.deadLetters ?? d.deadLetters, allow: { hosts: [...hosts], cidrs: [...cidrs] }, channels, routes, grouping };
}

function buildChannel(
  name: string,
  input: DeliveryChannelInput,
  at: string,
  duration: (path: string, value: string | number) => number,
  issues: ConfigIssue[],
): DeliveryChannelConfig | undefined {
  const d = PLATFORM_DEFAULTS.alerts.delivery;
  // A type that failed the schema was removed: which keys belong is unknown, so nothing more is said.
  if (!['webhook', 'mqtt', 'kafka'].includes(input.type)) return undefined;
  const before = issues.length;
  if (!CHANNEL_NAME.test(name)) {
    issues.push({ path: at, message: `expected a channel name of letters, digits, "_", "." and "-" (starting with a letter or digit), got ${describeValue(name)}` });
  }
  const foreign = input.type === 'webhook' ? MQTT_ONLY : input.type === 'mqtt' ? WEBHOOK_ONLY : KAFKA_FOREIGN;
  const article = { webhook: 'a webhook', mqtt: 'an mqtt', kafka: 'a kafka' }[input.type];
  for (const key of foreign) {
    const value = input[key];
    if (value === undefined) continue;
    // Secrets are never echoed, even when misplaced.
    const got = key === 'secret' || key === 'previousSecrets' ? 'a value' : describeValue(value);
    const owner = key === 'qos' ? 'mqtt' : key === 'secret' || key === 'previousSecrets' ? 'webhook' : 'mqtt and kafka';
    issues.push({ path: pointer(at, key), message: `expected no ${key} for ${article} channel (${key} belongs to ${owner} channels), got ${got}` });
  }
  const timeoutMs = duration(pointer(at, 'timeout'), input.timeout ?? { webhook: d.webhookTimeout, mqtt: d.mqttTimeout, kafka: d.kafkaTimeout }[input.type]);
  const retry = {
    attempts: input.retry?.attempts ?? d.retry.attempts,
    baseDelayMs: duration(pointer(at, 'retry', 'baseDelay'), input.retry?.baseDelay ?? d.retry.baseDelay),
    maxDelayMs: duration(pointer(at, 'retry', 'maxDelay'), input.retry?.maxDelay ?? d.retry.maxDelay),
  };
  if (retry.maxDelayMs < retry.baseDelayMs) {
    issues.push({ path: pointer(at, 'retry', 'maxDelay'), message: `expected a maximum delay no shorter than the base delay (${describeValue(input.retry?.baseDelay ?? d.retry.baseDelay)}), got ${describeValue(input.retry?.maxDelay ?? d.retry.maxDelay)}` });
  }
  const template = input.template ?? 'generic';
  if (input.type === 'webhook') {
    checkWebhookUrl(input.url, pointer(at, 'url'), issues);
    if (input.secret === undefined) {
      issues.push({ path: pointer(at, 'secret'), message: 'expected a Standard Webhooks secret like "whsec_" followed by base64 of 24 to 64 random bytes, got nothing (this key is required for webhook channels)' });
    } else {
      checkSecret(input.secret, pointer(at, 'secret'), issues);
    }
    for (const [index, secret] of (input.previousSecrets ?? []).entries()) checkSecret(secret, pointer(at, 'previousSecrets', index), issues);
    if (issues.length > before) return undefined;
    return { type: 'webhook', name, url: input.url, secrets: [input.secret ?? '', ...(input.previousSecrets ?? [])], timeoutMs, retry, template };
  }
  if (input.type === 'kafka') {
    if (!/^kafka:\/\/[^/@?#]+$/i.test(input.url.trim())) {
      issues.push({ path: pointer(at, 'url'), message: `expected a Kafka URL like "kafka://127.0.0.1:9092,127.0.0.1:9093", got ${describeValue(input.url)}` });
    }
    if (input.topic === undefined) {
      issues.push({ path: pointer(at, 'topic'), message: 'expected a Kafka topic like "gridpulse-alert-notifications", got nothing (this key is required for kafka channels)' });
    } else if (!KAFKA_TOPIC_PATTERN.test(input.topic) || input.topic === '.' || input.topic === '..') {
      issues.push({ path: pointer(at, 'topic'), message: `expected a Kafka topic name (1 to 249 letters, digits and ._-), got ${describeValue(input.topic)}` });
    }
    if (issues.length > before) return undefined;
    return { type: 'kafka', name, url: input.url.trim(), topic: input.topic ?? '', clientId: input.clientId, timeoutMs, retry, template };
  }
  if (!/^(mqtts?|wss?|tcp):\/\/[^/]/.test(input.url)) {
    issues.push({ path: pointer(at, 'url'), message: `expected a broker URL like "mqtt://127.0.0.1:1883", got ${describeValue(redactedUrl(input.url))}` });
  }
  if (input.topic === undefined) {
    issues.push({ path: pointer(at, 'topic'), message: 'expected an MQTT topic like "gridpulse/alerts/{site}/{type}", got nothing (this key is required for mqtt channels)' });
  } else if (/[+#]/.test(input.topic) || input.topic.includes('\u0000')) {
    issues.push({ path: pointer(at, 'topic'), message: `expected a topic to publish to, without the wildcards + and #, got ${describeValue(input.topic)}` });
  }
  if (issues.length > before) return undefined;
  return { type: 'mqtt', name, url: input.url, topic: input.topic ?? '', qos: input.qos ?? 1, clientId: input.clientId, timeoutMs, retry, template };
}

function buildRoute(input: DeliveryRouteInput, index: number, channels: ReadonlySet<string>, at: string, issues: ConfigIssue[]): DeliveryRouteConfig {
  for (const [position, channel] of input.channels.entries()) {
    if (!channels.has(channel)) {
      const list = channels.size === 0 ? 'none are configured' : [...channels].join(', ');
      issues.push({ path: pointer(at, 'channels', position), message: `expected a channel of alerts.delivery.channels (${list}), got ${describeValue(channel)}` });
    }
  }
  const match = input.match ?? {};
  return {
    name: input.name ?? `route-${index}`,
    streams: match.streams,
    types: match.types,
    sites: match.sites,
    severities: match.severities,
    minSeverity: match.minSeverity,
    kinds: match.kinds,
    channels: [...input.channels],
    template: input.template,
  };
}

function checkWebhookUrl(url: string, path: string, issues: ConfigIssue[]): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    issues.push({ path, message: 'expected an http or https URL like "https://hooks.example.com/gridpulse", got text that is not a URL' });
    return;
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    issues.push({ path, message: `expected an http or https URL like "https://hooks.example.com/gridpulse", got a URL with the scheme ${parsed.protocol.replace(':', '')}` });
  } else if (parsed.username !== '' || parsed.password !== '') {
    issues.push({ path, message: `expected a URL without a user name or password (the signature authenticates gridpulse), got credentials in the URL for ${parsed.host}` });
  }
}

function checkSecret(secret: string, path: string, issues: ConfigIssue[]): void {
  const expected = `a Standard Webhooks secret like "whsec_" followed by base64 of ${SECRET_MIN_BYTES} to ${SECRET_MAX_BYTES} random bytes`;
  // The secret itself never goes into a message.
  if (!secret.startsWith('whsec_')) {
    issues.push({ path, message: `expected ${expected}, got text without the "whsec_" prefix` });
    return;
  }
  const encoded = secret.slice('whsec_'.length);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(encoded) || encoded.length % 4 !== 0 || encoded.length === 0) {
    issues.push({ path, message: `expected ${expected}, got "whsec_" followed by text that is not base64` });
    return;
  }
  const bytes = Buffer.from(encoded, 'base64').length;
  if (bytes < SECRET_MIN_BYTES || bytes > SECRET_MAX_BYTES) {
    issues.push({ path, message: `expected ${expected}, got a secret of ${bytes} bytes` });
  }
}

function isCidr(text: string): boolean {
  const slash = text.indexOf('/');
  const address = slash === -1 ? text : text.slice(0, slash);
  const family = isIP(address);
  if (family === 0) return false;
  if (slash === -1) return true;
  const prefix = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (family === 4 ? 32 : 128);
}

/** A URL for messages: the password, if any, replaced. */
function redactedUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:/@]*):[^@/]*@/i, '$1:***@');
}
