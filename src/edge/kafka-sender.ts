import { createKafkaLog, parseKafkaUrl, rawTopicOf, type AppendRecord, type KafkaLog } from '../log/index.js';
import { BACKFILL_FIELD, GpError, KAFKA_TOPIC_PATTERN } from '../model/index.js';
import type { ForwardReading, ForwardSender, PreparedSend, SendOutcome } from './forwarder.js';

export interface KafkaSenderOptions {
  /** `kafka://host:port[,host:port...]`. */
  url: string;
  /** Raw topic per stream instead of the defaults (`rawTopicOf`), as `gridpulse process --topic stream=topic`. */
  topics?: Readonly<Record<string, string>> | undefined;
  /** The streams the agent collects: each must have a topic of its own (checked when the sender is made). */
  streams: readonly string[];
  /** A produce request without an answer within this long fails (and the forwarder retries it). */
  timeoutMs: number;
  /** Kafka client id, default "gridpulse-edge". */
  clientId?: string | undefined;
}

/** How long connecting to a broker may take, at most (the forwarder retries). */
const CONNECTION_TIMEOUT_MS = 3000;
/**
 * Retries of a request inside the Kafka client (leader moved, connection dropped) before an attempt
 * fails and the forwarder's own backoff takes over: few, so that an attempt against brokers that are
 * down ends soon (and `stop()` does not wait long for it).
 */
const CLIENT_RETRIES = 2;

/**
 * Kafka raw topics as a `ForwardSender`: the readings of a stream are appended to that stream's raw
 * topic (`rawTopicOf(stream, topics)`: `power-usage-raw`, `sensor-raw-data`, `<stream>-raw`, or as
 * `topics` says), the same topics `gridpulse process` consumes, by the Kafka log (`createKafkaLog`:
 * an idempotent producer with acks=all). The record key is the device id, so the partition is the
 * one Kafka's default partitioner picks for it (`partitionOfKey`) and a device's readings stay in one
 * partition, in the order they were collected. An attempt succeeds only once every record of it is
 * acknowledged by all in-sync replicas. Backfill readings get `"_backfill": true` added to their JSON
 * (`markBackfill`), as the platform's HTTP ingest does for a backfill request.
 *
 * One Kafka log (client and connections) per topic, opened on its first send; a log whose attempt
 * failed is closed and a new one opened for the next attempt (a fresh producer, new connections).
 * An append in flight cannot be cut short: `interrupt()` does nothing and `close()` waits for it.
 *
 * Throws GP_CONFIG_INVALID when the URL is not a Kafka URL or two streams would share a topic.
 *
 * @example
 * const sender = createKafkaSender({ url: 'kafka://10.0.0.1:9092', streams: ['power', 'machines'], timeoutMs: 15_000 });
 */
export function createKafkaSender(options: KafkaSenderOptions): ForwardSender {
  return new KafkaSender(options);
}

class KafkaSender implements ForwardSender {
  readonly target: string;
  private readonly brokers: string[];
  private readonly topics: Readonly<Record<string, string>>;
  private readonly logs = new Map<string, KafkaLog>();
  private closing: Promise<void> | undefined;

  constructor(private readonly options: KafkaSenderOptions) {
    this.target = options.url;
    this.brokers = parseKafkaUrl(options.url, '/forward/url').brokers;
    this.topics = options.topics ?? {};
    const streamOf = new Map<string, string>();
    for (const stream of options.streams) {
      const topic = rawTopicOf(stream, this.topics);
      const field = `/forward/topics/${stream.replaceAll('~', '~0').replaceAll('/', '~1')}`;
      if (!KAFKA_TOPIC_PATTERN.test(topic) || topic === '.' || topic === '..') {
        throw new GpError(
          'GP_CONFIG_INVALID',
          `${field}: expected a Kafka topic name (1 to 249 letters, digits and ._-) for stream ${JSON.stringify(stream)}, got ${JSON.stringify(topic)} (name the topic in forward.topics)`,
          { field },
        );
      }
      const other = streamOf.get(topic);
      if (other !== undefined) {
        throw new GpError(
          'GP_CONFIG_INVALID',
          `${field}: expected a topic no other stream uses (gridpulse process reads one stream per topic), got ${JSON.stringify(topic)}, the topic of stream ${other} too`,
          { field },
        );
      }
      streamOf.set(topic, stream);
    }
  }

  prepare(stream: string, readings: readonly ForwardReading[]): Promise<PreparedSend> {
    if (stream === '') {
      // Only a spool written while forwarding over HTTP with a stream named '' holds these; the config refuses that name for Kafka.
      const error = `${readings.length} spooled reading(s) have no stream (the platform's default stream over HTTP) and so no Kafka topic: forward them over HTTP, or name the stream`;
      return Promise.resolve({ send: () => Promise.resolve({ ok: false, reached: false, error }) });
    }
    const topic = rawTopicOf(stream, this.topics);
    const records: { live?: AppendRecord[]; backfill?: AppendRecord[] } = {};
    return Promise.resolve({
      send: (backfill: boolean) => {
        const batch = backfill
          ? (records.backfill ??= readings.map(({ device, value }) => ({ key: device, value: markBackfill(value) })))
          : (records.live ??= readings.map(({ device, value }) => ({ key: device, value })));
        return this.append(topic, batch);
      },
    });
  }

  private async append(topic: string, records: AppendRecord[]): Promise<SendOutcome> {
    if (this.closing !== undefined) return { ok: false, reached: false, error: `topic ${topic}: the forwarder is stopping` };
    let log = this.logs.get(topic);
    let opened = false;
    try {
      if (log === undefined) {
        log = createKafkaLog({
          brokers: this.brokers,
          topic,
          clientId: this.options.clientId ?? 'gridpulse-edge',
          connectionTimeoutMs: Math.min(CONNECTION_TIMEOUT_MS, Math.max(1, this.options.timeoutMs)),
          requestTimeoutMs: Math.max(1, this.options.timeoutMs),
          retries: CLIENT_RETRIES,
        });
        this.logs.set(topic, log);
      }
      await log.ready();
      opened = true;
      await log.append(records);
      return { ok: true, rejected: [] };
    } catch (error) {
      // A fresh client for the next attempt; this one may hold a producer whose sequence no longer matches the broker's.
      this.logs.delete(topic);
      await log?.close().catch(() => undefined);
      const message = error instanceof Error ? error.message : String(error);
      // The log refuses a record over its size limit before it sends anything (GP_INPUT_INVALID).
      const tooLarge = error instanceof GpError && error.code === 'GP_INPUT_INVALID';
      return { ok: false, reached: opened, error: `topic ${topic}: ${message}`, tooLarge };
    }
  }

  interrupt(): void {
    // kafkajs cannot abandon a produce request: the append in flight finishes or fails on its own (within the request timeout).
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      const logs = [...this.logs.values()];
      this.logs.clear();
      await Promise.allSettled(logs.map((log) => log.close()));
    })();
    return this.closing;
  }
}

const QUOTED_FIELD = Buffer.from(`"${BACKFILL_FIELD}"`, 'utf8');
const MEMBER = Buffer.from(`"${BACKFILL_FIELD}":true}`, 'utf8');
const NEXT_MEMBER = Buffer.from(`,"${BACKFILL_FIELD}":true}`, 'utf8');
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

function isJsonSpace(byte: number | undefined): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

/**
 * A reading's JSON object text with the backfill marker `"_backfill": true` (`BACKFILL_FIELD`), as the
 * platform's HTTP ingest sets it on the readings of a backfill request. Cheap in the usual case: the
 * member is written in place of the closing brace, nothing is parsed. A text that names the field
 * already (or only seems to, inside a string) is parsed, the field set and the object written again,
 * so that no name appears twice. A text that is not a JSON object is returned as it is (the engine
 * rejects it, as it would over HTTP).
 *
 * @example
 * markBackfill(Buffer.from('{"meterId":"m-1","usageKw":1.5}')).toString(); // '{"meterId":"m-1","usageKw":1.5,"_backfill":true}'
 */
export function markBackfill(value: Uint8Array): Uint8Array {
  let start = 0;
  let end = value.length - 1;
  while (start <= end && isJsonSpace(value[start])) start++;
  while (end >= start && isJsonSpace(value[end])) end--;
  if (end <= start || value[start] !== OPEN_BRACE || value[end] !== CLOSE_BRACE) return value;
  const text = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (text.includes(QUOTED_FIELD)) return rewritten(text) ?? value;
  let inner = end - 1;
  while (inner > start && isJsonSpace(value[inner])) inner--;
  const empty = inner === start;
  return Buffer.concat([text.subarray(start, end), empty ? MEMBER : NEXT_MEMBER]);
}

/** The object parsed, marked and written again; undefined when the text is not a JSON object. */
function rewritten(text: Buffer): Uint8Array | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.toString('utf8'));
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
  return Buffer.from(JSON.stringify({ ...(parsed as Record<string, unknown>), [BACKFILL_FIELD]: true }), 'utf8');
}
