import { GpError, KAFKA_TOPIC_PATTERN } from '../model/index.js';
import { checkConsumerName } from './consumer-offsets.js';
import { createKafkajsClient, type KafkaClient, type ProduceMessage } from './kafka-client.js';
import type { AppendRecord, AppendResult, Log, LogRecord, LogRecovery, LogStats, ReadBatch, ReadLimits, RetentionReport } from './log.js';
import { partitionOfKey } from './partitioner.js';

/** The raw-readings topic of each built-in stream; other streams use `<stream>-raw`. */
export const DEFAULT_RAW_TOPICS: Readonly<Record<string, string>> = Object.freeze({ power: 'power-usage-raw', machines: 'sensor-raw-data' });

/**
 * The topic that holds a stream's raw readings: `topics[stream]`, else the default of the built-in
 * streams (`power` → `power-usage-raw`, `machines` → `sensor-raw-data`), else `<stream>-raw`.
 *
 * @example
 * rawTopicOf('power'); // "power-usage-raw"
 */
export function rawTopicOf(stream: string, topics: Readonly<Record<string, string>> = {}): string {
  return topics[stream] ?? DEFAULT_RAW_TOPICS[stream] ?? `${stream}-raw`;
}

export interface KafkaLogOptions {
  /** Where Kafka is: a `kafka://host:port[,host:port...]` URL, or `host:port` strings. */
  brokers: string | readonly string[];
  /** The topic this log is (one per stream, see `rawTopicOf`). */
  topic: string;
  /**
   * The number of partitions the topic must have. When the topic does not exist, `ready()` creates it
   * with this many (CreateTopics); a topic with another count is a config error (keys would map to
   * other partitions than in the rest of the deployment). Without it the topic's own count is used.
   */
  partitions?: number | undefined;
  /** Replication factor of a topic `ready()` creates; default: the broker's. */
  replicationFactor?: number | undefined;
  /** Consumers whose committed offsets `ready()` loads, so that `committed()` answers for them at once. */
  consumers?: readonly string[] | undefined;
  /** Default "gridpulse". */
  clientId?: string | undefined;
  /** Default 3000. */
  connectionTimeoutMs?: number | undefined;
  /** Default 30000. */
  requestTimeoutMs?: number | undefined;
  /** Retries of a request that failed for a reason that may pass (leader moved, connection lost), default 5. */
  retries?: number | undefined;
  /**
   * Upper bound on the bytes of one partition's records in one produce request, default 900 KiB (under
   * the 1 MiB a Kafka broker takes in one record batch by default, `message.max.bytes`). Larger
   * appends are sent in several requests, in order. One record's key and value may not exceed it.
   */
  maxBatchBytes?: number | undefined;
  /** Wall clock for append times (epoch ms), default `Date.now`. */
  clock?: (() => number) | undefined;
  /** Another client than kafkajs (see `KafkaClient`); the log closes it. */
  client?: KafkaClient | undefined;
}

/** The Log over a Kafka topic, with what only Kafka has: the topic, and offsets asked of the broker. */
export interface KafkaLog extends Log {
  readonly topic: string;
  readonly brokers: readonly string[];
  /** Asks the broker for a consumer's committed next offset (and updates what `committed()` answers). */
  fetchCommitted(consumer: string, partition: number): Promise<number | undefined>;
  /** Asks the broker for every partition's start and end offset (and updates `startOffset()` / `endOffset()`). */
  refreshOffsets(): Promise<void>;
}

/**
 * The Log over a Kafka topic (kafkajs by default). Records are produced by an idempotent producer
 * with acks=all, so an acknowledged append is on every in-sync replica and a producer retry never
 * duplicates it; each record goes to `partition`, else `partitionOfKey(key, partitions)` — the same
 * partition Kafka's default partitioners (Java, librdkafka murmur2, kafkajs) choose for that key —
 * else partition 0. Appends are written one request at a time, in order; appends that queue while
 * one is in flight go together in the next.
 *
 * How it answers what the Log interface assumes of a local file:
 * - `partitions`: the topic's count, known once `ready()` has resolved (before that, the
 *   `partitions` option or 0).
 * - `ready()` reports each partition's start and end offset; there is no torn tail to recover:
 *   the broker recovers its own log segments and replication keeps what was acknowledged, so
 *   `truncatedBytes` is 0 and `reason` undefined.
 * - `startOffset` / `endOffset` are synchronous, so they answer from what this log last learnt:
 *   `ready()`, its own appends, every read and wait (a fetch carries the high watermark and log
 *   start), `refreshOffsets()`. Records other producers append meanwhile show up at the next of those.
 * - `committed()` answers from memory: commits made through this log, the `consumers` option
 *   (loaded by `ready()`) and `fetchCommitted()`. Commits are Kafka consumer-group offsets
 *   (OffsetCommit outside a group generation), so `kafka-consumer-groups.sh` shows them; a group
 *   whose members are running (a kafkajs consumer in that group) refuses them (GP_CONFLICT).
 *   Kafka expires the offsets of a group without members after `offsets.retention.minutes`
 *   (7 days by default).
 * - `waitFor()` long-polls the partition's leader (Fetch with a wait time, on connections of the
 *   partition's own, so it never holds up reads) and is woken at once by this log's own appends.
 * - `applyRetention()` removes nothing and reports zeros: retention is the broker's business
 *   (the topic's `retention.ms` / `retention.bytes`). `stats()` reports the offsets this log knows
 *   and its own append counters; bytes, segments and fsyncs are the broker's and reported as 0.
 * - Record timestamps are the append time (sent as the record's CreateTime; a topic with
 *   `message.timestamp.type=LogAppendTime` gives the broker's time instead).
 * - Offsets may have gaps where Kafka leaves them (transaction markers, compacted topics); reads skip them.
 * - A failed append (GP_LOG_FAILED) may have been written in part (Kafka has no atomic write across
 *   partitions without transactions); appending it again may duplicate those records.
 *
 * @example
 * const log = createKafkaLog({ brokers: 'kafka://127.0.0.1:9092', topic: rawTopicOf('power'), consumers: ['engine'] });
 * await log.ready();
 * const { positions } = await log.append([{ key: 'm-1', value: '{"meterId":"m-1","timestamp":1763900000000,"usageKw":1.2}' }]);
 * const batch = await log.read(positions[0]!.partition, 0);
 * await log.commit('engine', positions[0]!.partition, batch.nextOffset);
 * await log.close();
 */
export function createKafkaLog(options: KafkaLogOptions): KafkaLog {
  return new KafkaTopicLog(resolveOptions(options));
}

// ---- URLs ------------------------------------------------------------------------------------

const DEFAULT_PORT = 9092;
const URL_SHAPE = 'kafka://host:port[,host:port...]';

/**
 * The brokers of a `kafka://host:port[,host:port...]` URL (port 9092 when left out; IPv6 hosts in
 * brackets). Credentials, paths and queries are refused (TLS and SASL are not supported yet).
 *
 * @example
 * parseKafkaUrl('kafka://10.0.0.1:9092,10.0.0.2'); // { brokers: ['10.0.0.1:9092', '10.0.0.2:9092'] }
 */
export function parseKafkaUrl(url: string, field = 'log'): { brokers: string[] } {
  if (typeof url !== 'string') throw urlError(field, `got ${describe(url)}`);
  const match = /^kafka:\/\/(.*)$/i.exec(url.trim());
  if (match === null) {
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url.trim())?.[1];
    throw urlError(field, scheme === undefined ? `got ${JSON.stringify(redact(url))} (no scheme)` : `got a ${scheme}: URL ${JSON.stringify(redact(url))}`);
  }
  let rest = (match[1] as string).replace(/\/$/, '');
  if (rest.includes('@')) {
    throw urlError(field, `got ${JSON.stringify(redact(url))}: credentials in the URL are not supported (Kafka SASL is not implemented yet)`);
  }
  const extra = /[/?#]/.exec(rest);
  if (extra !== null) throw urlError(field, `got ${JSON.stringify(url)}: nothing may follow the brokers (found "${rest.slice(extra.index)}")`);
  rest = rest.trim();
  if (rest === '') throw urlError(field, `got ${JSON.stringify(url)}: no broker`);
  return { brokers: rest.split(',').map((broker, index) => parseBroker(broker.trim(), `${field} broker ${index + 1}`)) };
}

function parseBroker(text: string, field: string): string {
  const match = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d+))?$/.exec(text);
  if (match === null) throw new GpError('GP_CONFIG_INVALID', `${field}: expected host:port (IPv6 hosts in brackets), got ${JSON.stringify(text)}`, { field });
  const port = match[2] === undefined ? DEFAULT_PORT : Number(match[2]);
  if (!(port >= 1 && port <= 65535)) throw new GpError('GP_CONFIG_INVALID', `${field}: expected a port 1..65535, got ${match[2] ?? ''} in ${JSON.stringify(text)}`, { field });
  return `${match[1] as string}:${port}`;
}

function urlError(field: string, got: string): GpError {
  return new GpError('GP_CONFIG_INVALID', `${field}: expected ${URL_SHAPE}, ${got}`, { field });
}

function redact(url: string): string {
  return String(url).replace(/\/\/[^@/]*@/, '//***@');
}

// ---- options ---------------------------------------------------------------------------------

const DEFAULTS = { clientId: 'gridpulse', connectionTimeoutMs: 3000, requestTimeoutMs: 30_000, retries: 5, maxBatchBytes: 900 * 1024 } as const;
const OPTION_NAMES = [
  'brokers',
  'topic',
  'partitions',
  'replicationFactor',
  'consumers',
  'clientId',
  'connectionTimeoutMs',
  'requestTimeoutMs',
  'retries',
  'maxBatchBytes',
  'clock',
  'client',
];
const MAX_PARTITIONS = 10_000;
/** Bytes a record takes in a batch besides its key and value (varint lengths, deltas, attributes), at most. */
const RECORD_OVERHEAD_BYTES = 32;
const DEFAULT_MAX_RECORDS = 1000;
const DEFAULT_MAX_BYTES = 1024 * 1024;
/** Longest single long poll of `waitFor`; it polls again until its own timeout. */
const LONG_POLL_MS = 1000;

interface ResolvedOptions {
  brokers: string[];
  topic: string;
  partitions: number | undefined;
  replicationFactor: number | undefined;
  consumers: string[];
  maxBatchBytes: number;
  clock: () => number;
  client: KafkaClient;
}

function resolveOptions(options: KafkaLogOptions): ResolvedOptions {
  const invalid = (field: string, expected: string, got: unknown): GpError =>
    new GpError('GP_CONFIG_INVALID', `log ${field}: expected ${expected}, got ${describe(got)}`, { field });
  if (typeof options !== 'object' || options === null) throw invalid('options', 'an object with at least brokers and a topic', options);
  for (const name of Object.keys(options)) {
    if (!OPTION_NAMES.includes(name)) throw invalid(name, `one of the options ${OPTION_NAMES.join(', ')}`, `unknown option "${name}"`);
  }
  let brokers: string[];
  if (typeof options.brokers === 'string') {
    brokers = /^[a-z][a-z0-9+.-]*:\/\//i.test(options.brokers)
      ? parseKafkaUrl(options.brokers, 'log brokers').brokers
      : options.brokers.split(',').map((broker, index) => parseBroker(broker.trim(), `log brokers[${index}]`));
  } else if (Array.isArray(options.brokers) && options.brokers.length > 0) {
    brokers = options.brokers.map((broker: unknown, index) => {
      if (typeof broker !== 'string') throw invalid(`brokers[${index}]`, 'host:port', broker);
      return parseBroker(broker.trim(), `log brokers[${index}]`);
    });
  } else throw invalid('brokers', `a ${URL_SHAPE} URL or a list of host:port`, options.brokers);
  const topic: unknown = options.topic;
  if (typeof topic !== 'string' || !KAFKA_TOPIC_PATTERN.test(topic) || topic === '.' || topic === '..') {
    throw invalid('topic', 'a Kafka topic name (1 to 249 letters, digits and ._-)', topic);
  }
  const partitions = options.partitions;
  if (partitions !== undefined && (!Number.isInteger(partitions) || partitions < 1 || partitions > MAX_PARTITIONS)) {
    throw invalid('partitions', `an integer 1..${MAX_PARTITIONS}`, partitions);
  }
  const replicationFactor = options.replicationFactor;
  if (replicationFactor !== undefined && (!Number.isInteger(replicationFactor) || replicationFactor < 1)) {
    throw invalid('replicationFactor', 'a positive integer', replicationFactor);
  }
  const consumers: unknown = options.consumers ?? [];
  if (!Array.isArray(consumers)) throw invalid('consumers', 'a list of consumer names', consumers);
  consumers.forEach((consumer, index) => checkConsumerName(consumer, `log consumers[${index}]`));
  const positive = (field: 'connectionTimeoutMs' | 'requestTimeoutMs' | 'maxBatchBytes', minimum: number): number => {
    const value = options[field] ?? DEFAULTS[field];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < minimum) throw invalid(field, `an integer >= ${minimum}`, value);
    return value;
  };
  const connectionTimeoutMs = positive('connectionTimeoutMs', 1);
  const requestTimeoutMs = positive('requestTimeoutMs', 1);
  const maxBatchBytes = positive('maxBatchBytes', 1024);
  const retries = options.retries ?? DEFAULTS.retries;
  if (!Number.isSafeInteger(retries) || retries < 0) throw invalid('retries', 'an integer >= 0', retries);
  const clientId = options.clientId ?? DEFAULTS.clientId;
  if (typeof clientId !== 'string' || clientId === '') throw invalid('clientId', 'a non-empty string', clientId);
  const clock = options.clock ?? Date.now;
  if (typeof clock !== 'function') throw invalid('clock', 'a function returning epoch ms', clock);
  const client = options.client ?? createKafkajsClient({ brokers, clientId, connectionTimeoutMs, requestTimeoutMs, retries });
  return { brokers, topic, partitions, replicationFactor, consumers: [...(consumers as string[])], maxBatchBytes, clock, client };
}

// ---- the log ---------------------------------------------------------------------------------

interface PendingAppend {
  timestamp: number;
  messages: ProduceMessage[];
  positions: Array<{ partition: number; offset: number }>;
  placed: number;
  resolve: (result: AppendResult) => void;
  reject: (error: unknown) => void;
}

interface Waiter {
  partition: number;
  offset: number;
  done: boolean;
  resolve: (arrived: boolean) => void;
  timer: NodeJS.Timeout;
}

type LogState = 'new' | 'opening' | 'open' | 'closed';

class KafkaTopicLog implements KafkaLog {
  readonly kind = 'kafka';
  readonly topic: string;
  readonly brokers: readonly string[];
  private readonly options: ResolvedOptions;
  private readonly client: KafkaClient;
  private state: LogState = 'new';
  private opening: Promise<LogRecovery> | undefined;
  private closing: Promise<void> | undefined;
  private count = 0;
  private starts: number[] = [];
  private ends: number[] = [];
  private readonly commits = new Map<string, Map<number, number>>();
  private queue: PendingAppend[] = [];
  private writing = false;
  private idleWaiters: Array<() => void> = [];
  private readonly waiters = new Set<Waiter>();
  private appendedRecords = 0;
  private appendedBatches = 0;

  constructor(options: ResolvedOptions) {
    this.options = options;
    this.topic = options.topic;
    this.brokers = options.brokers;
    this.client = options.client;
  }

  get partitions(): number {
    return this.state === 'open' ? this.count : (this.options.partitions ?? 0);
  }

  ready(): Promise<LogRecovery> {
    if (this.closing !== undefined) return Promise.reject(closedError());
    if (this.opening === undefined) {
      this.state = 'opening';
      const opening = this.open();
      this.opening = opening;
      opening.catch(() => {
        if (this.opening === opening) {
          this.opening = undefined;
          this.state = 'new';
        }
      });
    }
    return this.opening;
  }

  private async open(): Promise<LogRecovery> {
    const { topic, partitions, replicationFactor } = this.options;
    await this.client.connect();
    let count = await this.client.partitionCount(topic);
    if (count === undefined && partitions !== undefined) {
      const outcome = await this.client.createTopic(topic, partitions, replicationFactor);
      if (outcome !== 'refused') count = await this.client.partitionCount(topic);
    }
    if (count === undefined) {
      throw new GpError(
        'GP_LOG_FAILED',
        `topic ${topic} does not exist on Kafka at ${this.brokers.join(',')} and was not created${partitions === undefined ? ` (create it with the partition count of the deployment, e.g. kafka-topics.sh --create --topic ${topic} --partitions 12, or let the brokers create topics: auto.create.topics.enable)` : ' (the broker refused CreateTopics)'}`,
        { topic, brokers: this.brokers },
      );
    }
    if (partitions !== undefined && count !== partitions) {
      throw new GpError(
        'GP_CONFIG_INVALID',
        `log partitions: topic ${topic} has ${count} partitions, expected ${partitions} (keys map to partitions by their count, so it must match)`,
        { field: 'partitions', topic, partitions: count },
      );
    }
    this.count = count;
    this.starts = new Array<number>(count).fill(0);
    this.ends = new Array<number>(count).fill(0);
    await this.loadOffsets();
    for (const consumer of this.options.consumers) {
      const committed = await this.client.fetchCommitted(consumer, topic, this.allPartitions());
      this.commits.set(consumer, committed);
    }
    if (this.closing !== undefined) throw closedError();
    this.state = 'open';
    return {
      partitions: this.allPartitions().map((partition) => ({
        partition,
        startOffset: this.starts[partition] as number,
        endOffset: this.ends[partition] as number,
        truncatedBytes: 0,
        reason: undefined,
      })),
    };
  }

  private allPartitions(): number[] {
    return Array.from({ length: this.count }, (_, partition) => partition);
  }

  private async loadOffsets(partitions: number[] = this.allPartitions()): Promise<void> {
    const offsets = await this.client.listOffsets(this.topic, partitions);
    for (const [partition, { start, end }] of offsets) this.learn(partition, end, start);
  }

  /** Records what a broker answer told about a partition; offsets only grow. */
  private learn(partition: number, end: number, start: number | undefined): void {
    if (end > (this.ends[partition] as number)) this.ends[partition] = end;
    if (start !== undefined && start > (this.starts[partition] as number)) this.starts[partition] = Math.min(start, this.ends[partition] as number);
    this.wake(partition);
  }

  async refreshOffsets(): Promise<void> {
    if (this.state !== 'open') await this.whenOpen();
    await this.loadOffsets();
  }

  // ---- append ------------------------------------------------------------------------------

  async append(records: readonly AppendRecord[]): Promise<AppendResult> {
    if (this.state !== 'open') await this.whenOpen();
    if (!Array.isArray(records)) throw new GpError('GP_INPUT_INVALID', `records: expected an array of records, got ${typeof records}`, { field: 'records' });
    const timestamp = this.now();
    if (records.length === 0) return { positions: [], appendedAt: timestamp };
    const messages = (records as readonly AppendRecord[]).map((record, index) => this.message(record, index, timestamp));
    return new Promise<AppendResult>((resolve, reject) => {
      this.queue.push({ timestamp, messages, positions: new Array<{ partition: number; offset: number }>(messages.length), placed: 0, resolve, reject });
      this.kickWriter();
    });
  }

  private message(record: AppendRecord, index: number, timestamp: number): ProduceMessage {
    if (typeof record !== 'object' || record === null) {
      throw new GpError('GP_INPUT_INVALID', `records[${index}]: expected an object with a value, got ${String(record)}`, { field: `records[${index}]` });
    }
    const { key, value, partition } = record;
    if (key !== undefined && typeof key !== 'string') {
      throw new GpError('GP_INPUT_INVALID', `records[${index}].key: expected a string or nothing, got ${typeof key}`, { field: `records[${index}].key` });
    }
    let valueBuffer: Buffer;
    if (typeof value === 'string') valueBuffer = Buffer.from(value, 'utf8');
    else if (value instanceof Uint8Array) valueBuffer = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    else {
      throw new GpError('GP_INPUT_INVALID', `records[${index}].value: expected a string or bytes, got ${value === null ? 'null' : typeof value}`, {
        field: `records[${index}].value`,
      });
    }
    let target = 0;
    if (partition !== undefined) target = this.checkPartition(partition, `records[${index}].partition`);
    else if (key !== undefined) target = partitionOfKey(key, this.count);
    const keyBuffer = key === undefined ? undefined : Buffer.from(key, 'utf8');
    const size = (keyBuffer?.length ?? 0) + valueBuffer.length;
    if (size + RECORD_OVERHEAD_BYTES > this.options.maxBatchBytes) {
      throw new GpError(
        'GP_INPUT_INVALID',
        `records[${index}]: key and value take ${size} bytes, more than the ${this.options.maxBatchBytes - RECORD_OVERHEAD_BYTES} a record may (maxBatchBytes)`,
        { field: `records[${index}]` },
      );
    }
    return { partition: target, key: keyBuffer, value: valueBuffer, timestamp };
  }

  private kickWriter(): void {
    if (this.writing) return;
    this.writing = true;
    void this.drainQueue();
  }

  /** The writer: one produce request at a time, so records of a partition get offsets in append order. Never rejects. */
  private async drainQueue(): Promise<void> {
    while (this.queue.length > 0) {
      const group = this.queue.splice(0);
      try {
        await this.writeGroup(group);
      } catch (cause) {
        for (const pending of group) if (pending.placed < pending.messages.length) pending.reject(cause);
      }
    }
    this.writing = false;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  /**
   * Sends a group of appends in requests of at most `maxBatchBytes` per partition, in order, and
   * settles each append as soon as all its records are placed.
   */
  private async writeGroup(group: PendingAppend[]): Promise<void> {
    let chunk: Array<{ pending: PendingAppend; index: number }> = [];
    let chunkBytes = new Map<number, number>();
    const flush = async (): Promise<void> => {
      if (chunk.length === 0) return;
      const sent = chunk;
      chunk = [];
      chunkBytes = new Map();
      const baseOffsets = await this.client.produce(
        this.topic,
        sent.map(({ pending, index }) => pending.messages[index] as ProduceMessage),
      );
      const next = new Map(baseOffsets);
      for (const { pending, index } of sent) {
        const partition = (pending.messages[index] as ProduceMessage).partition;
        const offset = next.get(partition);
        if (offset === undefined) throw new GpError('GP_LOG_FAILED', `Kafka did not acknowledge partition ${partition} of topic ${this.topic}`, { topic: this.topic });
        next.set(partition, offset + 1);
        pending.positions[index] = { partition, offset };
        pending.placed++;
      }
      for (const [partition, end] of next) this.learn(partition, end, undefined);
      for (const pending of new Set(sent.map(({ pending }) => pending))) {
        if (pending.placed === pending.messages.length) {
          this.appendedBatches++;
          this.appendedRecords += pending.messages.length;
          pending.resolve({ positions: pending.positions, appendedAt: pending.timestamp });
        }
      }
    };
    for (const pending of group) {
      for (let index = 0; index < pending.messages.length; index++) {
        const message = pending.messages[index] as ProduceMessage;
        const bytes = (message.key?.length ?? 0) + message.value.length + RECORD_OVERHEAD_BYTES;
        const used = chunkBytes.get(message.partition) ?? 0;
        if (used + bytes > this.options.maxBatchBytes) await flush();
        chunk.push({ pending, index });
        chunkBytes.set(message.partition, (chunkBytes.get(message.partition) ?? 0) + bytes);
      }
    }
    await flush();
  }

  private whenIdle(): Promise<void> {
    if (!this.writing) return Promise.resolve();
    return new Promise((wake) => this.idleWaiters.push(wake));
  }

  // ---- read --------------------------------------------------------------------------------

  async read(partition: number, offset: number, limits: ReadLimits = {}): Promise<ReadBatch> {
    if (this.state !== 'open') await this.whenOpen();
    this.checkOpenPartition(partition);
    checkOffset(offset, 'offset');
    const maxRecords = checkLimit(limits.maxRecords, DEFAULT_MAX_RECORDS, 'maxRecords');
    const maxBytes = checkLimit(limits.maxBytes, DEFAULT_MAX_BYTES, 'maxBytes');
    let from = Math.max(offset, this.starts[partition] as number);
    for (let attempt = 0; attempt < 3; attempt++) {
      const result = await this.client.fetch(this.topic, partition, from, { maxBytes, maxWaitMs: 0, minBytes: 0 });
      if (result.outOfRange) {
        // Below the log start (retention removed it meanwhile) or past the end: ask where the partition is now.
        await this.loadOffsets([partition]);
        if (from < (this.starts[partition] as number)) {
          from = this.starts[partition] as number;
          continue;
        }
        return { records: [], nextOffset: from };
      }
      this.learn(partition, result.highWatermark, result.logStartOffset);
      const records: LogRecord[] = [];
      let bytes = 0;
      let next = from;
      for (const record of result.records) {
        // A fetch answers whole record batches, which may begin before the offset asked for.
        if (record.offset < from) continue;
        if (records.length >= maxRecords || (records.length > 0 && bytes >= maxBytes)) break;
        records.push({ partition, offset: record.offset, timestamp: record.timestamp, key: record.key?.toString('utf8'), value: record.value });
        bytes += (record.key?.length ?? 0) + record.value.length;
        next = record.offset + 1;
      }
      return { records, nextOffset: next };
    }
    return { records: [], nextOffset: from };
  }

  waitFor(partition: number, offset: number, timeoutMs: number): Promise<boolean> {
    if (this.state !== 'open') return this.whenOpen().then(() => this.waitFor(partition, offset, timeoutMs));
    try {
      this.checkOpenPartition(partition);
      checkOffset(offset, 'offset');
      if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0)) {
        throw new GpError('GP_INPUT_INVALID', `timeoutMs: expected a number of milliseconds >= 0, got ${String(timeoutMs)}`, { field: 'timeoutMs' });
      }
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    if (offset < (this.ends[partition] as number)) return Promise.resolve(true);
    if (timeoutMs === 0) return Promise.resolve(false);
    return new Promise<boolean>((resolve, reject) => {
      const waiter: Waiter = {
        partition,
        offset,
        done: false,
        resolve: (arrived) => {
          if (waiter.done) return;
          waiter.done = true;
          clearTimeout(waiter.timer);
          this.waiters.delete(waiter);
          resolve(arrived);
        },
        timer: setTimeout(() => waiter.resolve(false), timeoutMs),
      };
      this.waiters.add(waiter);
      this.longPoll(waiter, Date.now() + timeoutMs).catch((cause: unknown) => {
        if (waiter.done) return;
        waiter.done = true;
        clearTimeout(waiter.timer);
        this.waiters.delete(waiter);
        reject(cause instanceof Error ? cause : new Error(String(cause)));
      });
    });
  }

  /** Fetches with a wait time until the partition's high watermark passes the waiter's offset. */
  private async longPoll(waiter: Waiter, deadline: number): Promise<void> {
    const { partition, offset } = waiter;
    while (!waiter.done) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) return;
      const from = Math.max(this.starts[partition] as number, Math.min(offset, this.ends[partition] as number));
      let result;
      try {
        result = await this.client.fetch(this.topic, partition, from, {
          maxBytes: 1,
          maxWaitMs: Math.min(remaining, LONG_POLL_MS),
          minBytes: 1,
          channel: `wait-${partition}`,
        });
      } catch (cause) {
        if (waiter.done || this.closing !== undefined) return;
        throw cause;
      }
      if (result.outOfRange) await this.loadOffsets([partition]);
      else this.learn(partition, result.highWatermark, result.logStartOffset);
    }
  }

  private wake(partition: number): void {
    for (const waiter of this.waiters) if (waiter.partition === partition && waiter.offset < (this.ends[partition] as number)) waiter.resolve(true);
  }

  startOffset(partition: number): number {
    this.checkOpenPartition(partition);
    return this.starts[partition] as number;
  }

  endOffset(partition: number): number {
    this.checkOpenPartition(partition);
    return this.ends[partition] as number;
  }

  // ---- consumers ---------------------------------------------------------------------------

  async commit(consumer: string, partition: number, nextOffset: number): Promise<void> {
    if (this.state !== 'open') await this.whenOpen();
    checkConsumerName(consumer, 'consumer');
    this.checkOpenPartition(partition);
    checkOffset(nextOffset, 'nextOffset');
    // Another producer may have appended since this log last heard of the partition: ask before refusing.
    if (nextOffset > (this.ends[partition] as number)) await this.loadOffsets([partition]);
    const end = this.ends[partition] as number;
    if (nextOffset > end) {
      throw new GpError('GP_INPUT_INVALID', `nextOffset: expected at most the end of partition ${partition} (${end}), got ${nextOffset}`, { field: 'nextOffset' });
    }
    await this.client.commitOffsets(consumer, this.topic, [{ partition, offset: nextOffset }]);
    let offsets = this.commits.get(consumer);
    if (offsets === undefined) {
      offsets = new Map();
      this.commits.set(consumer, offsets);
    }
    offsets.set(partition, nextOffset);
  }

  committed(consumer: string, partition: number): number | undefined {
    checkConsumerName(consumer, 'consumer');
    this.checkOpenPartition(partition);
    return this.commits.get(consumer)?.get(partition);
  }

  async fetchCommitted(consumer: string, partition: number): Promise<number | undefined> {
    if (this.state !== 'open') await this.whenOpen();
    checkConsumerName(consumer, 'consumer');
    this.checkOpenPartition(partition);
    const committed = await this.client.fetchCommitted(consumer, this.topic, [partition]);
    const offset = committed.get(partition);
    let offsets = this.commits.get(consumer);
    if (offsets === undefined) {
      offsets = new Map();
      this.commits.set(consumer, offsets);
    }
    if (offset === undefined) offsets.delete(partition);
    else offsets.set(partition, offset);
    return offset;
  }

  // ---- the rest ----------------------------------------------------------------------------

  async applyRetention(): Promise<RetentionReport> {
    if (this.state !== 'open') await this.whenOpen();
    // Retention of a topic is the broker's (retention.ms, retention.bytes); this log removes nothing.
    return { segmentsRemoved: 0, bytesRemoved: 0, recordsRemoved: 0 };
  }

  stats(): LogStats {
    return {
      bytes: 0,
      segments: 0,
      partitions: this.allPartitions().map((partition) => ({
        partition,
        startOffset: this.starts[partition] as number,
        endOffset: this.ends[partition] as number,
        bytes: 0,
      })),
      appendedRecords: this.appendedRecords,
      appendedBatches: this.appendedBatches,
      fsyncs: 0,
    };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.opening !== undefined) await this.opening.catch(() => undefined);
      await this.whenIdle();
      for (const waiter of this.waiters) waiter.resolve(false);
      this.state = 'closed';
      await this.client.close();
    })();
    return this.closing;
  }

  // ---- checks ------------------------------------------------------------------------------

  private async whenOpen(): Promise<void> {
    if (this.state === 'closed' || this.closing !== undefined) throw closedError();
    await this.ready();
    if (this.state !== 'open') throw closedError();
  }

  private checkOpenPartition(partition: number): void {
    if (this.state !== 'open') {
      if (this.state === 'closed' || this.closing !== undefined) throw closedError();
      throw new GpError('GP_INTERNAL', 'the log is not open yet: await ready() first');
    }
    this.checkPartition(partition, 'partition');
  }

  private checkPartition(partition: unknown, field: string): number {
    if (typeof partition !== 'number' || !Number.isInteger(partition) || partition < 0 || partition >= this.count) {
      throw new GpError(
        'GP_INPUT_INVALID',
        `${field}: partition ${String(partition)} does not exist (topic ${this.topic} has ${this.count} partition${this.count === 1 ? '' : 's'}: 0..${this.count - 1})`,
        { field, partitions: this.count },
      );
    }
    return partition;
  }

  private now(): number {
    const now = this.options.clock();
    if (!Number.isFinite(now)) throw new GpError('GP_INTERNAL', `the log's clock returned ${String(now)}, not epoch ms`);
    return Math.floor(now);
  }
}

function closedError(): GpError {
  return new GpError('GP_INTERNAL', 'the log is closed: create a new one to keep using the topic');
}

function checkOffset(offset: unknown, field: string): void {
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) {
    throw new GpError('GP_INPUT_INVALID', `${field}: expected an offset (an integer >= 0), got ${String(offset)}`, { field });
  }
}

function checkLimit(value: unknown, fallback: number, field: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new GpError('GP_INPUT_INVALID', `${field}: expected a positive integer, got ${describe(value)}`, { field });
  }
  return value;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return value.startsWith('unknown option') ? value : JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  return JSON.stringify(value) ?? String(value);
}
