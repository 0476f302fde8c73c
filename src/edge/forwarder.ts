import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import type { LogRecord } from '../log/index.js';
import type { Spool } from './spool.js';

const gzip = promisify(gzipCallback);

export interface ForwarderOptions {
  spool: Spool;
  /** How batches leave the agent: `createHttpSender` (the platform's HTTP ingest) or `createKafkaSender` (Kafka raw topics). The forwarder closes it on `stop()`. */
  sender: ForwardSender;
  /** Most readings per batch. */
  batchReadings: number;
  /** Most readings of one device per batch (see EDGE_DEFAULTS.maxPerDevice: a batch sent again must be recognised whole). */
  maxPerDevice: number;
  backoffMinMs: number;
  backoffMaxMs: number;
  /** A reading spooled longer ago than this when it is sent is backfill. */
  backfillAfterMs: number;
  clock?: (() => number) | undefined;
  random?: (() => number) | undefined;
  /** Told about every failed attempt (the forwarder keeps retrying). */
  onRetry?: ((error: string, delayMs: number) => void) | undefined;
  /**
   * A reading refused for its size even alone (HTTP 413 from the platform's body limit, a Kafka
   * record over the log's limit): no retry can deliver it. The forwarder awaits this before it moves
   * past the reading, so the handler keeps it (the agent writes it to a file) — set aside, counted
   * and reported, never dropped silently. Without a handler the forwarder keeps retrying it.
   */
  onUndeliverable?: ((stream: string, reading: ForwardReading, reason: string) => Promise<void>) | undefined;
  /** Told about readings the platform rejected (bad input: delivered to its ops output, not retried). */
  onRejected?: ((stream: string, rejected: Array<{ index: number; reason: string }>) => void) | undefined;
}

export interface ForwarderStats {
  forwarded: number;
  backfilled: number;
  rejectedByPlatform: number;
  /** Send attempts: HTTP requests, or appends of one stream's readings to its Kafka topic. */
  requests: number;
  retries: number;
  /** Requests answered 429 or 503 (with the Retry-After honoured); HTTP only. */
  throttled: number;
  /** Readings set aside because the other side refuses them for their size even one by one (see `onUndeliverable`). */
  undeliverable: number;
  /** Whether the last attempt reached the platform (HTTP: got an answer; Kafka: reached the brokers and found the topic). */
  connected: boolean;
  lastError: string | undefined;
  lastSuccessAt: number | undefined;
}

/** One spooled reading as a sender gets it: the device (the spool key without its stream) and the reading's JSON object text. */
export interface ForwardReading {
  device: string;
  value: Uint8Array;
}

/**
 * What one send attempt came to. `reached`: whether the other side answered at all; `throttled`: it
 * asked to slow down (HTTP 429/503); `tooLarge`: it refuses the send for its size (HTTP 413, a Kafka
 * record over the log's limit) — sending it again unchanged cannot help.
 */
export type SendOutcome =
  | { ok: true; rejected: Array<{ index: number; reason: string }> }
  | { ok: false; error: string; reached: boolean; retryAfterMs?: number | undefined; throttled?: boolean | undefined; tooLarge?: boolean | undefined };

/** One stream's readings of a batch, ready to be sent (again and again, until one attempt succeeds). */
export interface PreparedSend {
  /** Sends the readings, marked as backfill or not; resolves ok only once they are durable where they went. Never rejects. */
  send(backfill: boolean): Promise<SendOutcome>;
}

/**
 * How the forwarder's batches leave the agent. The forwarder owns everything else — reading the
 * spool, cutting batches, retrying with backoff, committing the spool — so a sender only sends:
 * `prepare` is called once per stream of a batch (readings in spool order, so each device's in
 * collection order), then `send` of what it returned until one attempt succeeds; `backfill` may
 * turn true between attempts. One send at a time. Connections are the sender's: it opens them
 * when it needs them and `close()` (idempotent) ends them.
 *
 * @example
 * const sender = createHttpSender({ url: 'http://127.0.0.1:8080', token: undefined, timeoutMs: 15_000 });
 * const forwarder = new Forwarder({ spool, sender, batchReadings: 5000, maxPerDevice: 16, backoffMinMs: 250, backoffMaxMs: 30_000, backfillAfterMs: 30_000 });
 */
export interface ForwardSender {
  /** Where readings go, as configured (for messages). */
  readonly target: string;
  prepare(stream: string, readings: readonly ForwardReading[]): Promise<PreparedSend>;
  /** The forwarder is stopping: end a send in flight early if the sender can (it then resolves as failed). */
  interrupt(): void;
  close(): Promise<void>;
}

/**
 * Sends spooled readings on, oldest first, one send at a time (so each device's readings arrive
 * in the order they were collected), through a `ForwardSender`: the platform's HTTP ingest
 * (`createHttpSender`) or Kafka raw topics (`createKafkaSender`). The spool offset advances — and
 * delivered segments are deleted — only after every send of the batch succeeded, i.e. after the
 * readings are durable on the other side (HTTP: the platform answered 200, its log has them;
 * Kafka: every append was acknowledged with acks=all). A send that fails is made again after an
 * exponential backoff with full jitter, never sooner than a Retry-After says. A send whose answer
 * was lost may have been stored: it is made again unchanged and the platform drops the copies by
 * reading id (a batch holds at most `maxPerDevice` readings of a device, the platform's duplicate
 * window).
 *
 * Backfill: readings that waited in the spool longer than `backfillAfterMs` go in batches of
 * their own, sent as backfill (a batch whose oldest reading passes that age while it is retried is
 * sent as backfill from then on): over HTTP with the header `X-Gridpulse-Backfill: true`, whose
 * readings the platform's ingest marks `"_backfill": true`; to Kafka with that field added to each
 * reading by the agent. The engine records them as late data and opens no alerts from them.
 */
export class Forwarder {
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private readonly clock: () => number;
  private readonly random: () => number;
  private readonly stats_: ForwarderStats = {
    forwarded: 0,
    backfilled: 0,
    rejectedByPlatform: 0,
    requests: 0,
    retries: 0,
    throttled: 0,
    undeliverable: 0,
    connected: false,
    lastError: undefined,
    lastSuccessAt: undefined,
  };

  constructor(private readonly options: ForwarderOptions) {
    this.clock = options.clock ?? Date.now;
    this.random = options.random ?? Math.random;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Stops after the send in flight (interrupted where the sender can) and closes the sender. */
  async stop(): Promise<void> {
    this.running = false;
    this.options.sender.interrupt();
    this.wake?.();
    await this.loop;
    await this.options.sender.close();
  }

  stats(): ForwarderStats {
    return { ...this.stats_ };
  }

  private async run(): Promise<void> {
    const { spool } = this.options;
    while (this.running) {
      const from = spool.committed();
      const batch = await spool.read(from, this.options.batchReadings, 8 * 1024 * 1024).catch(() => undefined);
      if (batch === undefined) {
        await this.sleep(1000);
        continue;
      }
      if (batch.records.length === 0) {
        await spool.waitFor(from, 1000).catch(() => false);
        continue;
      }
      const { records, backfill } = this.cut(batch.records);
      const delivered = await this.deliver(records, backfill);
      if (!delivered) return; // stopped
      const last = records[records.length - 1] as LogRecord;
      await spool.commit(last.offset + 1);
    }
  }

  /** The batch to send: a run of readings that are all backfill or all live, at most `maxPerDevice` of a device. */
  private cut(records: LogRecord[]): { records: LogRecord[]; backfill: boolean } {
    const threshold = this.clock() - this.options.backfillAfterMs;
    const backfill = (records[0] as LogRecord).timestamp < threshold;
    const perDevice = new Map<string, number>();
    let end = 0;
    for (; end < records.length; end++) {
      const record = records[end] as LogRecord;
      if (record.timestamp < threshold !== backfill) break;
      const key = record.key ?? '';
      const count = (perDevice.get(key) ?? 0) + 1;
      if (count > this.options.maxPerDevice) break;
      perDevice.set(key, count);
    }
    return { records: records.slice(0, Math.max(end, 1)), backfill };
  }

  /** Sends the batch (one send per stream in it) until every send succeeded; false when stopped first. */
  private async deliver(records: LogRecord[], cutAsBackfill: boolean): Promise<boolean> {
    const oldest = (records[0] as LogRecord).timestamp;
    // The spool key is `<stream>\t<device>` (see Intake); a key without a tab has the default stream ''.
    const byStream = new Map<string, ForwardReading[]>();
    for (const record of records) {
      const key = record.key ?? '';
      const tab = key.indexOf('\t');
      const stream = tab < 0 ? '' : key.slice(0, tab);
      let readings = byStream.get(stream);
      if (readings === undefined) byStream.set(stream, (readings = []));
      readings.push({ device: tab < 0 ? key : key.slice(tab + 1), value: record.value });
    }
    const state = { backfill: cutAsBackfill, oldest };
    for (const [stream, readings] of byStream) {
      if (!(await this.sendAll(stream, readings, state))) return false;
    }
    return true;
  }

  /**
   * Sends one stream's readings until a send succeeds; false when stopped first. A send refused for
   * its size is split in halves, in order, down to single readings; a single reading refused for
   * its size goes to `onUndeliverable`.
   */
  private async sendAll(stream: string, readings: readonly ForwardReading[], state: { backfill: boolean; oldest: number }): Promise<boolean> {
    const { sender } = this.options;
    const prepared = await sender.prepare(stream, readings);
    let attempt = 0;
    for (;;) {
      if (!this.running) return false;
      // A batch cut as live that waited out an outage in retries is backfill by now.
      if (!state.backfill && state.oldest < this.clock() - this.options.backfillAfterMs) state.backfill = true;
      this.stats_.requests++;
      const outcome = await prepared.send(state.backfill);
      if (outcome.ok) {
        this.stats_.forwarded += readings.length;
        if (state.backfill) this.stats_.backfilled += readings.length;
        this.stats_.rejectedByPlatform += outcome.rejected.length;
        if (outcome.rejected.length > 0) this.options.onRejected?.(stream, outcome.rejected);
        this.stats_.connected = true;
        this.stats_.lastSuccessAt = this.clock();
        return true;
      }
      if (outcome.throttled === true) this.stats_.throttled++;
      this.stats_.lastError = outcome.error;
      this.stats_.connected = outcome.reached;
      if (!this.running) return false; // interrupted by stop(): no backoff to wait out
      if (outcome.tooLarge === true && readings.length > 1) {
        const half = Math.ceil(readings.length / 2);
        return (await this.sendAll(stream, readings.slice(0, half), state)) && (await this.sendAll(stream, readings.slice(half), state));
      }
      if (outcome.tooLarge === true && this.options.onUndeliverable !== undefined) {
        await this.options.onUndeliverable(stream, readings[0]!, outcome.error);
        this.stats_.undeliverable++;
        this.stats_.connected = true;
        return true;
      }
      this.stats_.retries++;
      const ceiling = Math.min(this.options.backoffMaxMs, this.options.backoffMinMs * 2 ** Math.min(attempt, 30));
      // Full jitter (a random wait up to the ceiling), but never sooner than the server asked.
      const delay = Math.max(Math.round(this.random() * ceiling), outcome.retryAfterMs ?? 0, 10);
      attempt++;
      this.options.onRetry?.(outcome.error, delay);
      await this.sleep(delay);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }
}

export interface HttpSenderOptions {
  /** Platform base URL, e.g. http://127.0.0.1:8080 (readings go to `/v1/streams/<stream>/readings`, the default stream '' to `/v1/readings`). */
  url: string;
  token?: string | undefined;
  /** An attempt without an answer within this long fails (and is retried). */
  timeoutMs: number;
  clock?: (() => number) | undefined;
}

/**
 * The platform's HTTP ingest as a `ForwardSender`: one request per stream of a batch, gzip NDJSON
 * with the bearer token, `X-Gridpulse-Backfill: true` on backfill. Success is a 200 (the readings
 * are durable in the platform's log); its `rejected` list (bad readings, delivered to the
 * platform's ops output) is passed on, not retried. Refused or reset connections, no answer within
 * `timeoutMs`, 5xx and 429 fail the attempt (with the Retry-After of 429/503).
 *
 * @example
 * const sender = createHttpSender({ url: 'http://127.0.0.1:8080', token: process.env.GP_TOKEN, timeoutMs: 15_000 });
 */
export function createHttpSender(options: HttpSenderOptions): ForwardSender {
  return new HttpSender(options);
}

class HttpSender implements ForwardSender {
  readonly target: string;
  private abort: AbortController | undefined;
  private interrupted = false;
  private readonly clock: () => number;

  constructor(private readonly options: HttpSenderOptions) {
    this.target = options.url;
    this.clock = options.clock ?? Date.now;
  }

  async prepare(stream: string, readings: readonly ForwardReading[]): Promise<PreparedSend> {
    const lines = readings.map(({ value }) => Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8'));
    const body = await gzip(Buffer.from(lines.join('\n'), 'utf8'));
    return { send: (backfill) => this.post(stream, body, backfill) };
  }

  interrupt(): void {
    this.interrupted = true;
    this.abort?.abort();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  private async post(stream: string, body: Buffer, backfill: boolean): Promise<SendOutcome> {
    const path = stream === '' ? '/v1/readings' : `/v1/streams/${encodeURIComponent(stream)}/readings`;
    const headers: Record<string, string> = { 'content-type': 'application/x-ndjson', 'content-encoding': 'gzip' };
    if (this.options.token !== undefined) headers.authorization = `Bearer ${this.options.token}`;
    if (backfill) headers['x-gridpulse-backfill'] = 'true';
    const abort = new AbortController();
    this.abort = abort;
    const timer = setTimeout(() => abort.abort(), this.options.timeoutMs);
    try {
      const response = await fetch(`${this.options.url}${path}`, { method: 'POST', headers, body, signal: abort.signal });
      const text = await response.text();
      if (response.status === 200) {
        const parsed = JSON.parse(text) as { rejected?: Array<{ index: number; reason: string }> };
        return { ok: true, rejected: parsed.rejected ?? [] };
      }
      const retryAfterMs = retryAfterOf(response.headers.get('retry-after'), this.clock());
      const throttled = response.status === 429 || response.status === 503;
      return { ok: false, reached: true, error: `HTTP ${response.status}: ${text.slice(0, 200)}`, retryAfterMs, throttled, tooLarge: response.status === 413 };
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const reason = this.interrupted ? 'stopped before the platform answered' : abort.signal.aborted ? `no answer within ${this.options.timeoutMs} ms` : (cause?.code ?? cause?.message ?? (error as Error).message);
      return { ok: false, reached: false, error: `${this.options.url}: ${reason}` };
    } finally {
      clearTimeout(timer);
      if (this.abort === abort) this.abort = undefined;
    }
  }
}

/** Retry-After as delay-seconds or an HTTP date (RFC 9110 §10.2.3), in ms from now. */
export function retryAfterOf(header: string | null, now: number): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
