import { GpError, KAFKA_TOPIC_PATTERN, aggregateToJson, type Aggregate, type AggregateJson, type AlertEvent, type AuditSnapshot, type OpsEvent } from '../model/index.js';
import { createKafkajsClient, type KafkaClient, type ProduceMessage } from './kafka-client.js';
import { parseKafkaUrl } from './kafka-log.js';
import { partitionOfKey } from './partitioner.js';

/**
 * The output topics. Alerts of the `power` stream go to `power-alerts`, those of every other stream
 * (machines: predictive maintenance) to `anomaly-alerts`.
 */
export interface KafkaOutputTopics {
  aggregates: string;
  powerAlerts: string;
  anomalyAlerts: string;
  ops: string;
  audit: string;
}

export const DEFAULT_OUTPUT_TOPICS: Readonly<KafkaOutputTopics> = Object.freeze({
  aggregates: 'gridpulse-aggregates',
  powerAlerts: 'power-alerts',
  anomalyAlerts: 'anomaly-alerts',
  ops: 'gridpulse-ops',
  audit: 'gridpulse-audit',
});

/**
 * One output message: `key` (the device key, or stream/partition for audit) chooses the partition,
 * so a device's messages stay in order; `id` is deterministic — the same result computed twice
 * (a replay, a restart from a checkpoint) gets the same id — and travels in the `gp-id` header and
 * in the JSON as `id`, for consumers to drop duplicates. `gp-schema` names the JSON's schema.
 */
export interface OutputMessage {
  topic: string;
  key: string;
  id: string;
  schema: string;
  value: Record<string, unknown>;
}

/** Schema names (the version after the slash changes only when a field changes meaning or goes away). */
export const OUTPUT_SCHEMAS = Object.freeze({
  aggregate: 'gridpulse.aggregate/1',
  alert: 'gridpulse.alert/1',
  ops: 'gridpulse.ops/1',
  audit: 'gridpulse.audit/1',
});

/**
 * `gridpulse.aggregate/1`: the aggregate's JSON (`AggregateJson`) with `id` =
 * `<stream>/<key>/<window>/<start>/<revision>`. An amendment (a LATE reading) comes as the next
 * revision of the same window: its `upsertKey` (`<stream>/<key>/<window>/<start>`) is the window's.
 */
export function aggregateMessage(aggregate: Aggregate, topics: KafkaOutputTopics = DEFAULT_OUTPUT_TOPICS): OutputMessage {
  const json: AggregateJson = aggregateToJson(aggregate);
  const upsertKey = `${json.stream}/${json.key}/${json.window}/${json.start}`;
  const id = `${upsertKey}/${json.revision}`;
  return { topic: topics.aggregates, key: json.key, id, schema: OUTPUT_SCHEMAS.aggregate, value: { schema: OUTPUT_SCHEMAS.aggregate, id, upsertKey, ...json } };
}

/**
 * `gridpulse.alert/1`: `{ schema, id, alert, transition }` with `id` = the transition's id (alert id
 * and sequence number); `alert` is the alert as it stands after the transition. Absent values are null.
 */
export function alertMessage(event: AlertEvent, topics: KafkaOutputTopics = DEFAULT_OUTPUT_TOPICS): OutputMessage {
  const { alert, transition } = event;
  const id = transition.id;
  return {
    topic: alert.stream === 'power' ? topics.powerAlerts : topics.anomalyAlerts,
    key: alert.key,
    id,
    schema: OUTPUT_SCHEMAS.alert,
    value: {
      schema: OUTPUT_SCHEMAS.alert,
      id,
      alert: { ...alert, site: alert.site ?? null, metric: alert.metric ?? null, resolvedAt: alert.resolvedAt ?? null },
      transition: { ...transition, by: transition.by ?? null, note: transition.note ?? null },
    },
  };
}

/**
 * `gridpulse.ops/1`: the ops event (absent values null) with `id` =
 * `<stream>/<kind>/<key>/<time>/<offset>` (`-` for an absent part).
 */
export function opsMessage(event: OpsEvent, topics: KafkaOutputTopics = DEFAULT_OUTPUT_TOPICS): OutputMessage {
  const part = (value: string | number | undefined): string => (value === undefined ? '-' : String(value));
  const id = `${event.stream}/${event.kind}/${part(event.key)}/${part(event.time)}/${part(event.offset)}`;
  const value: Record<string, unknown> = { schema: OUTPUT_SCHEMAS.ops, id };
  for (const [name, field] of Object.entries(event)) value[name] = field ?? null;
  return { topic: topics.ops, key: event.key ?? event.stream, id, schema: OUTPUT_SCHEMAS.ops, value };
}

/** `gridpulse.audit/1`: the snapshot with `id` = `<stream>/<partition>/<watermark>`, keyed by `<stream>/<partition>`. */
export function auditMessage(snapshot: AuditSnapshot, topics: KafkaOutputTopics = DEFAULT_OUTPUT_TOPICS): OutputMessage {
  const id = `${snapshot.stream}/${snapshot.partition}/${snapshot.watermark}`;
  return { topic: topics.audit, key: `${snapshot.stream}/${snapshot.partition}`, id, schema: OUTPUT_SCHEMAS.audit, value: { schema: OUTPUT_SCHEMAS.audit, id, ...snapshot } };
}

export interface KafkaSinkOptions {
  /** A `kafka://host:port[,host:port...]` URL. */
  url: string;
  topics?: Partial<KafkaOutputTopics> | undefined;
  clientId?: string | undefined;
  /** Another client than kafkajs; the sink closes it. */
  client?: KafkaClient | undefined;
  /** Wall clock for message timestamps, default `Date.now`. */
  clock?: (() => number) | undefined;
}

/** Writes the engine's outputs to Kafka topics as JSON; see `aggregateMessage` and the others for the schemas. */
export interface KafkaSink {
  readonly topics: Readonly<KafkaOutputTopics>;
  ready(): Promise<void>;
  writeAggregates(aggregates: readonly Aggregate[]): Promise<void>;
  writeAlerts(events: readonly AlertEvent[]): Promise<void>;
  writeOps(events: readonly OpsEvent[]): Promise<void>;
  writeAudit(snapshots: readonly AuditSnapshot[]): Promise<void>;
  /** Idempotent; waits for writes in flight. */
  close(): Promise<void>;
}

/**
 * A sink of the engine's outputs into Kafka topics, through the idempotent producer (acks=all). A
 * write resolves once Kafka acknowledged every message. Messages go to `partitionOfKey(key, n)` of
 * their topic, and carry the headers `gp-id` and `gp-schema`. A write that failed may have been
 * written in part; writing it again duplicates nothing a consumer that drops repeated ids would see.
 *
 * @example
 * const sink = createKafkaSink({ url: 'kafka://127.0.0.1:9092' });
 * await sink.ready();
 * await sink.writeAlerts(events);
 * await sink.close();
 */
export function createKafkaSink(options: KafkaSinkOptions): KafkaSink {
  if (typeof options !== 'object' || options === null) throw new GpError('GP_CONFIG_INVALID', `kafka sink: expected options with a url, got ${String(options)}`, { field: 'url' });
  const { brokers } = parseKafkaUrl(options.url, 'kafka sink url');
  const topics: KafkaOutputTopics = { ...DEFAULT_OUTPUT_TOPICS, ...(options.topics ?? {}) };
  for (const [name, topic] of Object.entries(topics)) {
    if (typeof topic !== 'string' || !KAFKA_TOPIC_PATTERN.test(topic)) {
      throw new GpError('GP_CONFIG_INVALID', `kafka sink topics.${name}: expected a Kafka topic name (letters, digits and ._-), got ${JSON.stringify(topic)}`, {
        field: `topics.${name}`,
      });
    }
  }
  const client = options.client ?? createKafkajsClient({ brokers, clientId: options.clientId ?? 'gridpulse-sink', connectionTimeoutMs: 3000, requestTimeoutMs: 30_000, retries: 5 });
  return new TopicSink(client, Object.freeze(topics), options.clock ?? Date.now);
}

class TopicSink implements KafkaSink {
  private readonly partitionCounts = new Map<string, Promise<number>>();
  private readonly writes = new Set<Promise<unknown>>();
  private connecting: Promise<void> | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly client: KafkaClient,
    readonly topics: Readonly<KafkaOutputTopics>,
    private readonly clock: () => number,
  ) {}

  ready(): Promise<void> {
    if (this.closing !== undefined) return Promise.reject(new GpError('GP_INTERNAL', 'the Kafka sink is closed'));
    this.connecting ??= this.client.connect().catch((cause: unknown) => {
      this.connecting = undefined;
      throw cause;
    });
    return this.connecting;
  }

  writeAggregates(aggregates: readonly Aggregate[]): Promise<void> {
    return this.write(aggregates.map((aggregate) => aggregateMessage(aggregate, this.topics)));
  }

  writeAlerts(events: readonly AlertEvent[]): Promise<void> {
    return this.write(events.map((event) => alertMessage(event, this.topics)));
  }

  writeOps(events: readonly OpsEvent[]): Promise<void> {
    return this.write(events.map((event) => opsMessage(event, this.topics)));
  }

  writeAudit(snapshots: readonly AuditSnapshot[]): Promise<void> {
    return this.write(snapshots.map((snapshot) => auditMessage(snapshot, this.topics)));
  }

  private write(messages: OutputMessage[]): Promise<void> {
    const writing = this.send(messages);
    this.writes.add(writing);
    void writing.finally(() => this.writes.delete(writing)).catch(() => undefined);
    return writing;
  }

  private async send(messages: OutputMessage[]): Promise<void> {
    await this.ready();
    const byTopic = new Map<string, OutputMessage[]>();
    for (const message of messages) byTopic.set(message.topic, [...(byTopic.get(message.topic) ?? []), message]);
    const timestamp = this.clock();
    for (const [topic, items] of byTopic) {
      const count = await this.partitionCount(topic);
      const produced: ProduceMessage[] = items.map((message) => ({
        partition: partitionOfKey(message.key, count),
        key: Buffer.from(message.key, 'utf8'),
        value: Buffer.from(JSON.stringify(message.value), 'utf8'),
        timestamp,
        headers: { 'gp-id': message.id, 'gp-schema': message.schema },
      }));
      await this.client.produce(topic, produced);
    }
  }

  private partitionCount(topic: string): Promise<number> {
    let count = this.partitionCounts.get(topic);
    if (count === undefined) {
      count = this.client.partitionCount(topic).then((partitions) => {
        if (partitions === undefined) {
          throw new GpError('GP_LOG_FAILED', `Kafka output topic ${topic} does not exist and the broker did not create it: create it first`, { topic });
        }
        return partitions;
      });
      this.partitionCounts.set(topic, count);
      count.catch(() => this.partitionCounts.delete(topic));
    }
    return count;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      while (this.writes.size > 0) await Promise.allSettled([...this.writes]);
      await this.client.close();
    })();
    return this.closing;
  }
}
