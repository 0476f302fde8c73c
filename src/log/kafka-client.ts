import { createRequire } from 'node:module';
import { GpError } from '../model/index.js';
import { messageOf } from './consumer-offsets.js';

/**
 * What the Kafka log and the Kafka sink need of a Kafka client, in gridpulse's terms (numbers for
 * offsets, Buffers for keys and values, GpErrors for failures). `createKafkajsClient` implements it
 * over kafkajs; a librdkafka-based client would implement the same and nothing else would change.
 *
 * Failures are `GP_LOG_FAILED` (external, retriable) with the broker list and the client's message,
 * except where a method says otherwise.
 */
export interface KafkaClient {
  readonly brokers: readonly string[];
  /** Connects to a seed broker and loads the cluster's metadata. */
  connect(): Promise<void>;
  /**
   * The number of partitions of `topic`, or undefined when it does not exist. The metadata request
   * allows the broker to auto-create the topic (when the broker is configured to).
   */
  partitionCount(topic: string): Promise<number | undefined>;
  /** CreateTopics; 'refused' when the broker does not support or allow it (the test broker does not). */
  createTopic(topic: string, partitions: number, replicationFactor: number | undefined): Promise<'created' | 'exists' | 'refused'>;
  /**
   * Produces with acks=all from the idempotent producer; every message names its partition. Resolves
   * with the base offset of each partition's batch: the n-th message of a partition in `messages`
   * has offset baseOffset + n.
   */
  produce(topic: string, messages: readonly ProduceMessage[]): Promise<Map<number, number>>;
  /** The first retained offset and the high watermark (next offset) of each partition. */
  listOffsets(topic: string, partitions: readonly number[]): Promise<Map<number, { start: number; end: number }>>;
  /**
   * One Fetch for one partition from `offset` (read committed). `maxWaitMs` > 0 with `minBytes` 1
   * is a long poll: the broker answers when data arrives or the time is up. `channel` names a set of
   * connections of its own, so a long poll does not hold up other requests (a broker answers the
   * requests of one connection in order).
   */
  fetch(topic: string, partition: number, offset: number, options: FetchOptions): Promise<FetchResult>;
  /** OffsetCommit outside any group generation (generation -1): the group must have no running members. */
  commitOffsets(group: string, topic: string, offsets: ReadonlyArray<{ partition: number; offset: number }>): Promise<void>;
  /** OffsetFetch: the committed next offset per partition (absent when the group never committed one). */
  fetchCommitted(group: string, topic: string, partitions: readonly number[]): Promise<Map<number, number>>;
  /** Ends every connection; idempotent. Requests in flight fail. */
  close(): Promise<void>;
}

export interface ProduceMessage {
  partition: number;
  key: Buffer | undefined;
  value: Buffer;
  /** Epoch ms, the record's CreateTime. */
  timestamp: number;
  headers?: Record<string, string> | undefined;
}

export interface FetchOptions {
  maxBytes: number;
  maxWaitMs: number;
  minBytes: number;
  channel?: string | undefined;
}

export interface FetchedRecord {
  offset: number;
  timestamp: number;
  key: Buffer | undefined;
  value: Buffer;
  headers: Record<string, string>;
}

export type FetchResult =
  | { outOfRange: false; records: FetchedRecord[]; highWatermark: number; logStartOffset: number | undefined }
  | { outOfRange: true };

export interface KafkaClientOptions {
  brokers: readonly string[];
  clientId: string;
  connectionTimeoutMs: number;
  requestTimeoutMs: number;
  /** Retries of a failing request (connection lost, leader moved) before it is reported. */
  retries: number;
}

// ---- kafkajs ---------------------------------------------------------------------------------
// The log needs Fetch, ListOffsets and OffsetCommit on chosen partitions without joining a group,
// which kafkajs's public API does not offer (its consumer always joins a group); its cluster and
// broker classes do, and their shapes are declared here (kafkajs 2.2). The producer is kafkajs's own.

interface KafkajsBroker {
  fetch(request: {
    replicaId: number;
    isolationLevel: number;
    maxWaitTime: number;
    minBytes: number;
    maxBytes: number;
    topics: Array<{ topic: string; partitions: Array<{ partition: number; fetchOffset: string; maxBytes: number }> }>;
  }): Promise<{
    responses: Array<{
      topicName: string;
      partitions: Array<{
        partition: number;
        errorCode: number;
        highWatermark: string;
        lastStartOffset?: string;
        messages: Array<{
          offset: string;
          timestamp: string;
          key: Buffer | null;
          value: Buffer | null;
          headers?: Record<string, Buffer | Buffer[] | string | undefined>;
          isControlRecord?: boolean;
        }>;
      }>;
    }>;
  }>;
  listOffsets(request: {
    replicaId?: number;
    isolationLevel: number;
    topics: Array<{ topic: string; partitions: Array<{ partition: number; timestamp: number }> }>;
  }): Promise<{ responses: Array<{ topic: string; partitions: Array<{ partition: number; offset: string; errorCode: number }> }> }>;
  offsetCommit(request: {
    groupId: string;
    groupGenerationId: number;
    memberId: string;
    topics: Array<{ topic: string; partitions: Array<{ partition: number; offset: string }> }>;
  }): Promise<{ responses: Array<{ topic: string; partitions: Array<{ partition: number; errorCode: number }> }> }>;
  offsetFetch(request: {
    groupId: string;
    topics: Array<{ topic: string; partitions: Array<{ partition: number }> }>;
  }): Promise<{ responses: Array<{ topic: string; partitions: Array<{ partition: number; offset: string; errorCode: number }> }> }>;
}

interface KafkajsCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  refreshMetadata(): Promise<void>;
  addTargetTopic(topic: string): Promise<void>;
  findTopicPartitionMetadata(topic: string): Array<{ partitionId: number; leader: number }>;
  findLeaderForPartitions(topic: string, partitions: number[]): Record<string, number[]>;
  findBroker(request: { nodeId: string | number }): Promise<KafkajsBroker>;
  findControllerBroker(): Promise<KafkajsBroker>;
  findGroupCoordinator(request: { groupId: string }): Promise<KafkajsBroker>;
  brokerPool: { metadata?: { brokers: Array<{ nodeId: number }> } };
}

interface KafkajsProducer {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  send(record: {
    topic: string;
    acks: number;
    messages: Array<{ partition: number; key: Buffer | null; value: Buffer; timestamp: string; headers?: Record<string, string> }>;
  }): Promise<Array<{ partition: number; baseOffset?: string; errorCode: number }>>;
}

interface KafkajsModule {
  Kafka: new (config: Record<string, unknown>) => {
    logger(): unknown;
    admin(): { connect(): Promise<void>; disconnect(): Promise<void>; createTopics(request: Record<string, unknown>): Promise<boolean> };
  };
  logLevel: { NOTHING: number };
  Partitioners: { DefaultPartitioner: unknown };
}

const READ_COMMITTED = 1;
const EARLIEST = -2;
const LATEST = -1;
// Kafka protocol error codes (org.apache.kafka.common.protocol.Errors) the log treats specially.
const NONE = 0;
const OFFSET_OUT_OF_RANGE = 1;
const RETRIABLE_PARTITION_ERRORS = new Set([3, 5, 6, 9, 13, 14, 15, 16]); // unknown topic/partition, leader not available, not leader, replica not available, network exception, coordinator loading/not available, not coordinator
const GROUP_MEMBER_ERRORS = new Set([22, 25, 27]); // illegal generation, unknown member, rebalance in progress

/**
 * The kafkajs implementation of `KafkaClient`. kafkajs is loaded on `connect()`, so the embedded
 * log starts without it. Three sets of connections: the producer's (one request in flight, as
 * idempotence requires), one for reads, metadata and offsets, and one per fetch `channel`.
 */
export function createKafkajsClient(options: KafkaClientOptions): KafkaClient {
  return new KafkajsClient(options);
}

class KafkajsClient implements KafkaClient {
  readonly brokers: readonly string[];
  private kafkajs: KafkajsModule | undefined;
  private clusterClass: (new (config: Record<string, unknown>) => KafkajsCluster) | undefined;
  private createProducer: ((config: Record<string, unknown>) => KafkajsProducer) | undefined;
  private socketFactory: unknown;
  private logger: unknown;
  private main: KafkajsCluster | undefined;
  private producer: KafkajsProducer | undefined;
  private producerConnecting: Promise<KafkajsProducer> | undefined;
  private readonly channels = new Map<string, Promise<KafkajsCluster>>();
  private connecting: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly options: KafkaClientOptions) {
    this.brokers = options.brokers;
  }

  connect(): Promise<void> {
    this.connecting ??= this.open().catch((cause: unknown) => {
      this.connecting = undefined;
      throw this.failure('cannot connect', cause);
    });
    return this.connecting;
  }

  private async open(): Promise<void> {
    const require = createRequire(import.meta.url);
    const kafkajs = require('kafkajs') as KafkajsModule;
    this.kafkajs = kafkajs;
    this.clusterClass = require('kafkajs/src/cluster') as new (config: Record<string, unknown>) => KafkajsCluster;
    this.createProducer = require('kafkajs/src/producer') as (config: Record<string, unknown>) => KafkajsProducer;
    this.socketFactory = (require('kafkajs/src/network/socketFactory') as () => unknown)();
    // kafkajs's own log lines (it logs every error response, e.g. an expected OFFSET_OUT_OF_RANGE) are
    // not ours to print: failures reach the caller as GpErrors.
    this.logger = new kafkajs.Kafka({ brokers: [...this.options.brokers], logLevel: kafkajs.logLevel.NOTHING }).logger();
    const main = this.newCluster(undefined);
    await main.connect();
    this.main = main;
  }

  private newCluster(maxInFlightRequests: number | undefined): KafkajsCluster {
    const Cluster = this.clusterClass as new (config: Record<string, unknown>) => KafkajsCluster;
    return new Cluster({
      logger: this.logger,
      socketFactory: this.socketFactory,
      brokers: [...this.options.brokers],
      clientId: this.options.clientId,
      connectionTimeout: this.options.connectionTimeoutMs,
      requestTimeout: this.options.requestTimeoutMs,
      enforceRequestTimeout: true,
      retry: { retries: this.options.retries },
      allowAutoTopicCreation: true,
      maxInFlightRequests: maxInFlightRequests ?? null,
      isolationLevel: READ_COMMITTED,
      offsets: new Map(),
    });
  }

  private cluster(): KafkajsCluster {
    if (this.closed) throw new GpError('GP_INTERNAL', 'the Kafka client is closed');
    if (this.main === undefined) throw new GpError('GP_INTERNAL', 'the Kafka client is not connected: await connect() first');
    return this.main;
  }

  async partitionCount(topic: string): Promise<number | undefined> {
    const cluster = this.cluster();
    try {
      await cluster.addTargetTopic(topic);
      await cluster.refreshMetadata();
      const partitions = cluster.findTopicPartitionMetadata(topic);
      return partitions.length === 0 ? undefined : partitions.length;
    } catch (cause) {
      if (typeOf(cause) === 'UNKNOWN_TOPIC_OR_PARTITION') return undefined;
      throw this.failure(`cannot read the metadata of topic ${topic}`, cause);
    }
  }

  async createTopic(topic: string, partitions: number, replicationFactor: number | undefined): Promise<'created' | 'exists' | 'refused'> {
    this.cluster();
    const kafkajs = this.kafkajs as KafkajsModule;
    const admin = new kafkajs.Kafka({
      brokers: [...this.options.brokers],
      clientId: this.options.clientId,
      connectionTimeout: this.options.connectionTimeoutMs,
      requestTimeout: this.options.requestTimeoutMs,
      retry: { retries: 1 },
      logLevel: kafkajs.logLevel.NOTHING,
    }).admin();
    try {
      await admin.connect();
      const created = await admin.createTopics({
        waitForLeaders: true,
        topics: [{ topic, numPartitions: partitions, ...(replicationFactor === undefined ? {} : { replicationFactor }) }],
      });
      return created ? 'created' : 'exists';
    } catch (cause) {
      if (typeOf(cause) === 'TOPIC_ALREADY_EXISTS') return 'exists';
      return 'refused';
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  async produce(topic: string, messages: readonly ProduceMessage[]): Promise<Map<number, number>> {
    const producer = await this.connectedProducer();
    let results: Awaited<ReturnType<KafkajsProducer['send']>>;
    try {
      results = await producer.send({
        topic,
        acks: -1,
        messages: messages.map((message) => ({
          partition: message.partition,
          key: message.key ?? null,
          value: message.value,
          timestamp: String(message.timestamp),
          ...(message.headers === undefined ? {} : { headers: message.headers }),
        })),
      });
    } catch (cause) {
      throw this.failure(`cannot append to topic ${topic}`, cause);
    }
    const baseOffsets = new Map<number, number>();
    for (const result of results) {
      if (result.errorCode !== NONE || result.baseOffset === undefined) {
        throw this.failure(`cannot append to partition ${result.partition} of topic ${topic}: error code ${result.errorCode}`, undefined);
      }
      baseOffsets.set(result.partition, Number(result.baseOffset));
    }
    return baseOffsets;
  }

  private connectedProducer(): Promise<KafkajsProducer> {
    if (this.producer !== undefined) return Promise.resolve(this.producer);
    this.cluster();
    this.producerConnecting ??= (async () => {
      const cluster = this.newCluster(1);
      // kafkajs asks the controller for an idempotent producer's id. Any broker may answer a
      // non-transactional InitProducerId (KIP-98), and the test broker names a controller (0) that
      // is none of its brokers: then ask the first broker of the metadata.
      const findController = cluster.findControllerBroker.bind(cluster);
      cluster.findControllerBroker = async () => {
        try {
          return await findController();
        } catch (cause) {
          const first = cluster.brokerPool.metadata?.brokers[0];
          if (typeNameOf(cause) !== 'KafkaJSBrokerNotFound' || first === undefined) throw cause;
          return cluster.findBroker({ nodeId: String(first.nodeId) });
        }
      };
      const createProducer = this.createProducer as (config: Record<string, unknown>) => KafkajsProducer;
      const producer = createProducer({
        cluster,
        logger: this.logger,
        idempotent: true,
        createPartitioner: (this.kafkajs as KafkajsModule).Partitioners.DefaultPartitioner,
        retry: { retries: Math.max(this.options.retries, 1) },
      });
      try {
        await producer.connect();
      } catch (cause) {
        this.producerConnecting = undefined;
        throw this.failure('cannot connect the producer', cause);
      }
      this.producer = producer;
      return producer;
    })();
    return this.producerConnecting;
  }

  async listOffsets(topic: string, partitions: readonly number[]): Promise<Map<number, { start: number; end: number }>> {
    const starts = await this.listOffsetsAt(topic, partitions, EARLIEST);
    const ends = await this.listOffsetsAt(topic, partitions, LATEST);
    const offsets = new Map<number, { start: number; end: number }>();
    for (const partition of partitions) offsets.set(partition, { start: starts.get(partition) ?? 0, end: ends.get(partition) ?? 0 });
    return offsets;
  }

  private async listOffsetsAt(topic: string, partitions: readonly number[], timestamp: number): Promise<Map<number, number>> {
    return this.retrying(`cannot list the offsets of topic ${topic}`, async (cluster) => {
      const offsets = new Map<number, number>();
      const byLeader = cluster.findLeaderForPartitions(topic, [...partitions]);
      for (const [nodeId, leaderPartitions] of Object.entries(byLeader)) {
        const broker = await cluster.findBroker({ nodeId });
        const { responses } = await broker.listOffsets({
          replicaId: -1,
          isolationLevel: READ_COMMITTED,
          topics: [{ topic, partitions: leaderPartitions.map((partition) => ({ partition, timestamp })) }],
        });
        for (const response of responses) {
          for (const answer of response.partitions) {
            if (answer.errorCode !== NONE) throw partitionError(answer.errorCode, topic, answer.partition);
            offsets.set(answer.partition, Number(answer.offset));
          }
        }
      }
      return offsets;
    });
  }

  async fetch(topic: string, partition: number, offset: number, options: FetchOptions): Promise<FetchResult> {
    const cluster = options.channel === undefined ? this.cluster() : await this.channel(options.channel, topic);
    return this.retrying(
      `cannot read partition ${partition} of topic ${topic}`,
      async (current) => {
        const leader = leaderOf(current, topic, partition);
        const broker = await current.findBroker({ nodeId: leader });
        let response: Awaited<ReturnType<KafkajsBroker['fetch']>>;
        try {
          response = await broker.fetch({
            replicaId: -1,
            isolationLevel: READ_COMMITTED,
            maxWaitTime: options.maxWaitMs,
            minBytes: options.minBytes,
            maxBytes: options.maxBytes,
            topics: [{ topic, partitions: [{ partition, fetchOffset: String(offset), maxBytes: options.maxBytes }] }],
          });
        } catch (cause) {
          // kafkajs turns a partition's error code into an exception.
          if (typeOf(cause) === 'OFFSET_OUT_OF_RANGE') return { outOfRange: true };
          throw cause;
        }
        const answer = response.responses.find((item) => item.topicName === topic)?.partitions.find((item) => item.partition === partition);
        if (answer === undefined) throw this.failure(`the broker's answer to a fetch of partition ${partition} of topic ${topic} has no such partition`, undefined);
        if (answer.errorCode === OFFSET_OUT_OF_RANGE) return { outOfRange: true };
        if (answer.errorCode !== NONE) throw partitionError(answer.errorCode, topic, partition);
        const records: FetchedRecord[] = [];
        for (const message of answer.messages) {
          if (message.isControlRecord === true) continue;
          records.push({
            offset: Number(message.offset),
            timestamp: Number(message.timestamp),
            key: message.key ?? undefined,
            value: message.value ?? Buffer.alloc(0),
            headers: headersOf(message.headers),
          });
        }
        const logStartOffset = answer.lastStartOffset === undefined || Number(answer.lastStartOffset) < 0 ? undefined : Number(answer.lastStartOffset);
        return { outOfRange: false, records, highWatermark: Number(answer.highWatermark), logStartOffset };
      },
      cluster,
    );
  }

  private channel(name: string, topic: string): Promise<KafkajsCluster> {
    this.cluster();
    let channel = this.channels.get(name);
    if (channel === undefined) {
      channel = (async () => {
        const cluster = this.newCluster(undefined);
        await cluster.connect();
        await cluster.addTargetTopic(topic);
        return cluster;
      })();
      this.channels.set(name, channel);
      channel.catch(() => this.channels.delete(name));
    }
    return channel.catch((cause: unknown) => {
      throw this.failure('cannot connect', cause);
    });
  }

  async commitOffsets(group: string, topic: string, offsets: ReadonlyArray<{ partition: number; offset: number }>): Promise<void> {
    await this.retrying(`cannot commit offsets of consumer group ${group} on topic ${topic}`, async (cluster) => {
      const coordinator = await cluster.findGroupCoordinator({ groupId: group });
      const { responses } = await coordinator.offsetCommit({
        groupId: group,
        groupGenerationId: -1,
        memberId: '',
        topics: [{ topic, partitions: offsets.map(({ partition, offset }) => ({ partition, offset: String(offset) })) }],
      });
      for (const response of responses) {
        for (const answer of response.partitions) {
          if (answer.errorCode === NONE) continue;
          if (GROUP_MEMBER_ERRORS.has(answer.errorCode)) {
            throw new GpError(
              'GP_CONFLICT',
              `consumer ${group}: the Kafka consumer group has running members (error code ${answer.errorCode}); its offsets are committed by those members, not by Log.commit`,
              { consumer: group, topic },
            );
          }
          throw partitionError(answer.errorCode, topic, answer.partition);
        }
      }
    });
  }

  async fetchCommitted(group: string, topic: string, partitions: readonly number[]): Promise<Map<number, number>> {
    return this.retrying(`cannot fetch the committed offsets of consumer group ${group} on topic ${topic}`, async (cluster) => {
      const coordinator = await cluster.findGroupCoordinator({ groupId: group });
      const { responses } = await coordinator.offsetFetch({ groupId: group, topics: [{ topic, partitions: partitions.map((partition) => ({ partition })) }] });
      const committed = new Map<number, number>();
      for (const response of responses) {
        for (const answer of response.partitions) {
          if (answer.errorCode !== NONE) throw partitionError(answer.errorCode, topic, answer.partition);
          const offset = Number(answer.offset);
          if (offset >= 0) committed.set(answer.partition, offset);
        }
      }
      return committed;
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const endings: Array<Promise<unknown>> = [];
    if (this.producerConnecting !== undefined) endings.push(this.producerConnecting.then((producer) => producer.disconnect()));
    for (const channel of this.channels.values()) endings.push(channel.then((cluster) => cluster.disconnect()));
    if (this.main !== undefined) endings.push(this.main.disconnect());
    await Promise.allSettled(endings);
  }

  /**
   * Runs a request, refreshing the metadata and trying again when the partition's leader or the
   * group's coordinator moved or a connection dropped (`retries` times, with a short pause).
   */
  private async retrying<T>(what: string, request: (cluster: KafkajsCluster) => Promise<T>, cluster: KafkajsCluster = this.cluster()): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await request(cluster);
      } catch (cause) {
        if (cause instanceof GpError) throw cause;
        if (this.closed) throw new GpError('GP_LOG_FAILED', `${what}: the Kafka client was closed meanwhile`, { brokers: this.brokers });
        if (attempt >= this.options.retries || !isRetriable(cause)) throw this.failure(what, cause);
        await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** attempt, 2000)));
        await cluster.refreshMetadata().catch(() => undefined);
      }
    }
  }

  private failure(what: string, cause: unknown): GpError {
    if (cause instanceof GpError) return cause;
    const detail = cause === undefined ? '' : `: ${messageOf(cause)}`;
    return new GpError('GP_LOG_FAILED', `Kafka at ${this.brokers.join(',')}: ${what}${detail}`, { brokers: this.brokers }, cause === undefined ? undefined : { cause });
  }
}

function leaderOf(cluster: KafkajsCluster, topic: string, partition: number): string {
  for (const [nodeId, partitions] of Object.entries(cluster.findLeaderForPartitions(topic, [partition]))) {
    if (partitions.includes(partition)) return nodeId;
  }
  throw Object.assign(new Error(`no leader known for partition ${partition} of topic ${topic}`), { retriable: true });
}

class PartitionError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
  get retriable(): boolean {
    return RETRIABLE_PARTITION_ERRORS.has(this.code);
  }
}

function partitionError(code: number, topic: string, partition: number): PartitionError {
  return new PartitionError(code, `partition ${partition} of topic ${topic}: Kafka error code ${code}`);
}

function isRetriable(cause: unknown): boolean {
  return typeof cause === 'object' && cause !== null && (cause as { retriable?: unknown }).retriable === true;
}

function typeOf(cause: unknown): string | undefined {
  const type = typeof cause === 'object' && cause !== null ? (cause as { type?: unknown }).type : undefined;
  return typeof type === 'string' ? type : undefined;
}

function typeNameOf(cause: unknown): string | undefined {
  return cause instanceof Error ? cause.name : undefined;
}

function headersOf(headers: Record<string, Buffer | Buffer[] | string | undefined> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    const first = Array.isArray(value) ? value[0] : value;
    if (first !== undefined) out[name] = first.toString();
  }
  return out;
}
