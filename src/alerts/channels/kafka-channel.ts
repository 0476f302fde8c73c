import { GpError, KAFKA_TOPIC_PATTERN } from '../../model/index.js';
import { DEFAULT_RETRY_POLICY, errorMessage, type AttemptContext, type Channel, type DeliveryResult, type Notification, type RetryPolicy, type TemplateName } from './channel.js';

/** One record to produce: the partition is chosen by the channel. */
export interface KafkaProduceRecord {
  partition: number;
  key: Buffer | undefined;
  value: Buffer;
  /** Epoch ms, the record's CreateTime. */
  timestamp: number;
  headers?: Record<string, string> | undefined;
}

/**
 * What the Kafka channel needs of a Kafka client. The log module's `createKafkajsClient` has exactly
 * this (kafkajs's idempotent producer, acks=all); the caller hands it in through a
 * `KafkaConnector`, since alerts do not import the log module (DESIGN.md's one-way arrows).
 */
export interface KafkaProducerClient {
  connect(): Promise<void>;
  /** Partitions of `topic`, undefined when it does not exist (the request may make the broker create it). */
  partitionCount(topic: string): Promise<number | undefined>;
  /** Resolves once every record was acknowledged by all in-sync replicas. */
  produce(topic: string, records: readonly KafkaProduceRecord[]): Promise<Map<number, number>>;
  close(): Promise<void>;
}

/**
 * Makes the Kafka clients of Kafka channels. `gridpulse up` gives one built on the log module
 * (`src/cli/alert-kafka.ts`): kafkajs and Kafka's own murmur2 partitioning.
 */
export interface KafkaConnector {
  /** A client for a `kafka://host:port[,host:port…]` URL; throws GP_CONFIG_INVALID for a URL it cannot read. */
  client(url: string, options: { clientId: string; requestTimeoutMs: number }): KafkaProducerClient;
  /** The partition of `key` among `partitions` (Kafka's default partitioner). */
  partitionOf(key: string, partitions: number): number;
}

export interface KafkaChannelOptions {
  readonly name: string;
  /** `kafka://host:port[,host:port…]`. */
  readonly url: string;
  /** A Kafka topic name (letters, digits, `.`, `_`, `-`). */
  readonly topic: string;
  readonly connector: KafkaConnector;
  /** Default `gridpulse-alerts-<channel name>`. */
  readonly clientId?: string | undefined;
  /** How long one produce may wait for the brokers' acknowledgement. Default 10 s. */
  readonly timeoutMs?: number;
  readonly retry?: RetryPolicy;
  readonly template?: TemplateName;
  /** Wall clock (record timestamps), epoch ms. */
  readonly clock?: () => number;
}


/**
 * Produces each notification (the rendered JSON) to a Kafka topic through an idempotent producer
 * with acks=all. The record key is the notification id (the transition id, or the incident notice
 * id) — stable across retries, redeliveries and replays, so consumers deduplicate on it (and a
 * compacted topic keeps one record per notification); the id is also in the header `gridpulse-id`.
 * The partition is chosen by the alert id (the incident id for an incident notice), so the
 * notifications of one alert stay in order in one partition. An attempt is delivered once the
 * brokers acknowledged it; a broker that is down, a missing topic or a timeout is `retry`.
 *
 * @example
 * const channel = createKafkaChannel({ name: 'bus', url: 'kafka://127.0.0.1:9092', topic: 'gridpulse-alert-notifications', connector });
 * await channel.ready();
 */
export function createKafkaChannel(options: KafkaChannelOptions): Channel {
  if (!/^kafka:\/\/[^/@?#]+$/i.test(options.url.trim())) {
    throw new GpError('GP_CONFIG_INVALID', `channels.${options.name}.url: expected a Kafka URL like "kafka://127.0.0.1:9092,127.0.0.1:9093", got ${JSON.stringify(options.url)}`, {
      field: `channels.${options.name}.url`,
    });
  }
  if (!KAFKA_TOPIC_PATTERN.test(options.topic) || options.topic === '.' || options.topic === '..') {
    throw new GpError('GP_CONFIG_INVALID', `channels.${options.name}.topic: expected a Kafka topic name (1 to 249 letters, digits and ._-), got ${JSON.stringify(options.topic)}`, {
      field: `channels.${options.name}.topic`,
    });
  }
  const timeoutMs = options.timeoutMs ?? 10_000;
  const clock = options.clock ?? Date.now;
  const target = `${options.url.trim()} ${options.topic}`;
  const client = options.connector.client(options.url.trim(), { clientId: options.clientId ?? `gridpulse-alerts-${options.name}`, requestTimeoutMs: timeoutMs });
  let partitions: number | undefined;
  let closed = false;

  async function deliver(notification: Notification, _context: AttemptContext): Promise<DeliveryResult> {
    if (closed) return { outcome: 'retry', reason: `Kafka channel ${options.name} is closed` };
    try {
      await client.connect();
      partitions ??= await client.partitionCount(options.topic);
      if (partitions === undefined) return { outcome: 'retry', reason: `Kafka topic ${options.topic} does not exist at ${options.url.trim()} (create it, or let the brokers create topics)` };
      // One alert's notifications share a partition, so they stay in order for consumers.
      const orderKey = notification.incident?.incident.id ?? notification.event.alert.id;
      await client.produce(options.topic, [
        {
          partition: options.connector.partitionOf(orderKey, partitions),
          key: Buffer.from(notification.id),
          value: Buffer.from(notification.body),
          timestamp: clock(),
          headers: { 'gridpulse-id': notification.id, 'content-type': 'application/json' },
        },
      ]);
      return { outcome: 'delivered' };
    } catch (error) {
      // The partition count is read again next time: the topic may have been recreated.
      partitions = undefined;
      return { outcome: 'retry', reason: `Kafka produce to ${target}: ${errorMessage(error)}` };
    }
  }

  return {
    name: options.name,
    kind: 'kafka',
    defaultTemplate: options.template ?? 'generic',
    retry: options.retry ?? DEFAULT_RETRY_POLICY,
    target,
    ready: () => client.connect(),
    deliver,
    async close() {
      if (closed) return;
      closed = true;
      await client.close();
    },
  };
}
