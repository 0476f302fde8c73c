// The live feed of `gridpulse up` in a Kafka deployment: what the `gridpulse process` members
// compute reaches Kafka's output topics (`--kafka-outputs`); `up --live-from kafka://…` reads them
// and puts the aggregates, alert transitions and ops events on its own live feed (SSE, dashboard),
// beside those of its own engine.
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import type { Consumer, KafkaMessage } from 'kafkajs';
import type { LiveEvent } from '../api/index.js';
import { DEFAULT_OUTPUT_TOPICS, OUTPUT_SCHEMAS, parseKafkaUrl, type KafkaOutputTopics } from '../log/index.js';
import { GpError, aggregateFromJson, type AggregateJson, type AlertEvent, type OpsEvent } from '../model/index.js';

export interface KafkaLiveOptions {
  /** `kafka://host:port[,host:port...]`: the brokers the members write their outputs to. */
  url: string;
  /** Output topics other than the defaults (as given to the members' sink). */
  topics?: Partial<KafkaOutputTopics> | undefined;
  publish(event: LiveEvent): void;
  onInfo?: ((message: string) => void) | undefined;
  onError?: ((error: unknown, where: string) => void) | undefined;
}

export interface KafkaLiveStats {
  /** Messages read from the output topics. */
  received: number;
  /** Events put on the live feed. */
  published: number;
  /** Messages whose `gp-id` was seen shortly before (a member computed them again after a restart or a move). */
  duplicates: number;
  /** Messages that are not gridpulse output JSON (counted, reported, skipped). */
  unreadable: number;
}

export interface KafkaLiveFollower {
  /** Joins (a group of its own, reading from the newest messages on) and resolves once partitions are assigned. */
  start(): Promise<void>;
  stats(): KafkaLiveStats;
  close(): Promise<void>;
}

/** How many recent message ids are remembered to drop repeats. */
const RECENT_IDS = 50_000;
const JOIN_TIMEOUT_MS = 30_000;

/** Turns the nulls of output JSON (absent values) back into absent properties. */
function withoutNulls<T>(value: Record<string, unknown>): T {
  const out: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(value)) if (field !== null) out[name] = field;
  return out as T;
}

/** The live event of one output message, or undefined for a schema the feed does not show (audit). Throws on anything else. */
export function liveEventOf(value: Buffer): LiveEvent | undefined {
  const json = JSON.parse(value.toString('utf8')) as Record<string, unknown>;
  switch (json.schema) {
    case OUTPUT_SCHEMAS.aggregate:
      if (typeof json.metrics !== 'object' || json.metrics === null || typeof json.key !== 'string') throw new Error('an aggregate without key or metrics');
      return { type: 'aggregate', data: aggregateFromJson(json as unknown as AggregateJson) };
    case OUTPUT_SCHEMAS.alert: {
      const { alert, transition } = json as { alert?: unknown; transition?: unknown };
      if (typeof alert !== 'object' || alert === null || typeof transition !== 'object' || transition === null) throw new Error('an alert message without alert or transition');
      const event: AlertEvent = { alert: withoutNulls(alert as Record<string, unknown>), transition: withoutNulls(transition as Record<string, unknown>) };
      return { type: 'alert', data: event };
    }
    case OUTPUT_SCHEMAS.ops: {
      const { schema: _schema, id: _id, ...rest } = json;
      if (typeof rest.kind !== 'string' || typeof rest.stream !== 'string') throw new Error('an ops message without kind or stream');
      return { type: 'ops', data: withoutNulls<OpsEvent>(rest) };
    }
    case OUTPUT_SCHEMAS.audit:
      return undefined;
    default:
      throw new Error(`schema ${JSON.stringify(json.schema)} is not a gridpulse output schema`);
  }
}

/**
 * Follows the members' output topics for the live feed. Each `gridpulse up` reads all partitions in
 * a consumer group of its own (it commits nothing), from the newest messages on: the feed is live,
 * history comes from the store. Members write their outputs when they checkpoint (every 5 s by
 * default), so events arrive that much after they were computed.
 *
 * @example
 * const follower = createKafkaLiveFollower({ url: 'kafka://kafka1:9092', publish: (event) => feed(event) });
 * await follower.start();
 */
export function createKafkaLiveFollower(options: KafkaLiveOptions): KafkaLiveFollower {
  const { brokers } = parseKafkaUrl(options.url, '--live-from');
  const topics: KafkaOutputTopics = { ...DEFAULT_OUTPUT_TOPICS, ...(options.topics ?? {}) };
  const names = [...new Set([topics.aggregates, topics.powerAlerts, topics.anomalyAlerts, topics.ops])];
  const info = options.onInfo ?? (() => undefined);
  const report = options.onError ?? (() => undefined);
  const stats: KafkaLiveStats = { received: 0, published: 0, duplicates: 0, unreadable: 0 };
  const recent = new Set<string>();
  const order: string[] = [];
  let consumer: Consumer | undefined;

  const seen = (id: string): boolean => {
    if (recent.has(id)) return true;
    recent.add(id);
    order.push(id);
    if (order.length > RECENT_IDS) recent.delete(order.splice(0, order.length - RECENT_IDS)[0]!);
    return false;
  };

  const onMessage = (message: KafkaMessage): void => {
    stats.received++;
    const id = message.headers?.['gp-id']?.toString();
    if (id !== undefined && seen(id)) {
      stats.duplicates++;
      return;
    }
    let event: LiveEvent | undefined;
    try {
      event = message.value === null ? undefined : liveEventOf(message.value);
    } catch (error) {
      if (stats.unreadable++ % 1000 === 0) report(new GpError('GP_INPUT_INVALID', `live feed from Kafka: a message is not gridpulse output (${(error as Error).message}); skipped (${stats.unreadable} so far)`), 'live feed from Kafka');
      return;
    }
    if (event === undefined) return;
    stats.published++;
    options.publish(event);
  };

  return {
    stats: () => ({ ...stats }),

    async start() {
      const require = createRequire(import.meta.url);
      const kafkajs = require('kafkajs') as typeof import('kafkajs');
      const kafka = new kafkajs.Kafka({ brokers, clientId: 'gridpulse-live', logLevel: kafkajs.logLevel.NOTHING, connectionTimeout: 3000 });
      const groupId = `gridpulse-live-${hostname()}-${process.pid}-${Date.now()}`;
      const joining = kafka.consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 1000 });
      consumer = joining;
      const joined = new Promise<void>((resolve) => joining.on(joining.events.GROUP_JOIN, () => resolve()));
      joining.on(joining.events.CRASH, (event) => report(event.payload.error, `live feed from Kafka (restarting: ${String(event.payload.restart)})`));
      try {
        await joining.connect();
        await joining.subscribe({ topics: names, fromBeginning: false });
        await joining.run({
          autoCommit: false,
          eachMessage: ({ message }) => Promise.resolve(onMessage(message)),
        });
      } catch (cause) {
        await joining.disconnect().catch(() => undefined);
        throw new GpError('GP_LOG_FAILED', `--live-from: cannot read the output topics ${names.join(', ')} at ${brokers.join(',')}: ${(cause as Error).message}`, { brokers }, { cause });
      }
      let timer: NodeJS.Timeout | undefined;
      const joinedInTime = await Promise.race([joined.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), JOIN_TIMEOUT_MS)))]);
      clearTimeout(timer);
      if (!joinedInTime) {
        await joining.disconnect().catch(() => undefined);
        throw new GpError('GP_LOG_FAILED', `--live-from: no partitions of ${names.join(', ')} were assigned within ${JOIN_TIMEOUT_MS / 1000} s by the brokers at ${brokers.join(',')}`, { brokers });
      }
      info(`live feed: following ${names.join(', ')} at ${brokers.join(',')} (outputs of gridpulse process --kafka-outputs)`);
    },

    async close() {
      await consumer?.disconnect().catch((error: unknown) => report(error, 'live feed from Kafka'));
      consumer = undefined;
    },
  };
}
