import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import type { LogRecord } from '../log/index.js';
import type { Spool } from './spool.js';

const gzip = promisify(gzipCallback);

export interface ForwarderOptions {
  spool: Spool;
  /** Platform base URL, e.g. http://127.0.0.1:8080 (readings go to `/v1/streams/<stream>/readings`). */
  url: string;
  token?: string | undefined;
  /** Most readings per batch. */
  batchReadings: number;
  /** Most readings of one device per batch (see EDGE_DEFAULTS.maxPerDevice: a batch sent again must be recognised whole). */
  maxPerDevice: number;
  timeoutMs: number;
  backoffMinMs: number;
  backoffMaxMs: number;
  /** A reading spooled longer ago than this when it is sent is backfill. */
  backfillAfterMs: number;
  clock?: (() => number) | undefined;
  random?: (() => number) | undefined;
  /** Told about every failed attempt (the forwarder keeps retrying). */
  onRetry?: ((error: string, delayMs: number) => void) | undefined;
  /** Told about readings the platform rejected (bad input: delivered to its ops output, not retried). */
  onRejected?: ((stream: string, rejected: Array<{ index: number; reason: string }>) => void) | undefined;
}

export interface ForwarderStats {
  forwarded: number;
  backfilled: number;
  rejectedByPlatform: number;
  requests: number;
  retries: number;
  /** Requests answered 429 or 503 (with the Retry-After honoured). */
  throttled: number;
  /** Whether the last attempt reached the platform. */
  connected: boolean;
  lastError: string | undefined;
  lastSuccessAt: number | undefined;
}

/**
 * Sends spooled readings to the platform's HTTP ingest, oldest first, one request at a time
 * (so each device's readings arrive in the order they were collected), as gzip NDJSON with the
 * bearer token. The spool offset advances — and delivered segments are deleted — only after
 * the platform answered 200, i.e. after the readings are durable in its log. A request that
 * fails (connection refused or reset, no answer within `timeoutMs`, 5xx, 429) is sent again
 * after an exponential backoff with full jitter, never sooner than a Retry-After says. A
 * request whose answer was lost may have been stored: it is sent again unchanged and the
 * platform drops the copies by reading id (a batch holds at most `maxPerDevice` readings of a
 * device, the platform's duplicate window).
 *
 * Backfill: readings that waited in the spool longer than `backfillAfterMs` go in batches of
 * their own with the header `X-Gridpulse-Backfill: true` (a batch whose oldest reading passes that
 * age while it is retried is sent with the header from then on). The platform's ingest marks each
 * such reading `"_backfill": true`; its engine records them as late data and opens no alerts from them.
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
    connected: false,
    lastError: undefined,
    lastSuccessAt: undefined,
  };
  private abort: AbortController | undefined;

  constructor(private readonly options: ForwarderOptions) {
    this.clock = options.clock ?? Date.now;
    this.random = options.random ?? Math.random;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.abort?.abort();
    this.wake?.();
    await this.loop;
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

  /** Sends the batch (one request per stream in it) until every request is acknowledged; false when stopped first. */
  private async deliver(records: LogRecord[], cutAsBackfill: boolean): Promise<boolean> {
    let backfill = cutAsBackfill;
    const oldest = (records[0] as LogRecord).timestamp;
    const byStream = new Map<string, string[]>();
    for (const record of records) {
      const key = record.key ?? '';
      const tab = key.indexOf('\t');
      const stream = tab < 0 ? '' : key.slice(0, tab);
      let lines = byStream.get(stream);
      if (lines === undefined) byStream.set(stream, (lines = []));
      lines.push(Buffer.from(record.value.buffer, record.value.byteOffset, record.value.byteLength).toString('utf8'));
    }
    for (const [stream, lines] of byStream) {
      const body = await gzip(Buffer.from(lines.join('\n'), 'utf8'));
      let attempt = 0;
      for (;;) {
        if (!this.running) return false;
        // A batch cut as live that waited out an outage in retries is backfill by now.
        if (!backfill && oldest < this.clock() - this.options.backfillAfterMs) backfill = true;
        const outcome = await this.post(stream, body, backfill);
        if (outcome.ok) {
          this.stats_.forwarded += lines.length;
          if (backfill) this.stats_.backfilled += lines.length;
          this.stats_.rejectedByPlatform += outcome.rejected.length;
          if (outcome.rejected.length > 0) this.options.onRejected?.(stream, outcome.rejected);
          this.stats_.connected = true;
          this.stats_.lastSuccessAt = this.clock();
          break;
        }
        this.stats_.retries++;
        this.stats_.lastError = outcome.error;
        this.stats_.connected = outcome.reached;
        const ceiling = Math.min(this.options.backoffMaxMs, this.options.backoffMinMs * 2 ** Math.min(attempt, 30));
        // Full jitter (a random wait up to the ceiling), but never sooner than the server asked.
        const delay = Math.max(Math.round(this.random() * ceiling), outcome.retryAfterMs ?? 0, 10);
        attempt++;
        this.options.onRetry?.(outcome.error, delay);
        await this.sleep(delay);
      }
    }
    return true;
  }

  private async post(
    stream: string,
    body: Buffer,
    backfill: boolean,
  ): Promise<{ ok: true; rejected: Array<{ index: number; reason: string }> } | { ok: false; error: string; reached: boolean; retryAfterMs?: number | undefined }> {
    const path = stream === '' ? '/v1/readings' : `/v1/streams/${encodeURIComponent(stream)}/readings`;
    const headers: Record<string, string> = { 'content-type': 'application/x-ndjson', 'content-encoding': 'gzip' };
    if (this.options.token !== undefined) headers.authorization = `Bearer ${this.options.token}`;
    if (backfill) headers['x-gridpulse-backfill'] = 'true';
    this.stats_.requests++;
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
      if (response.status === 429 || response.status === 503) this.stats_.throttled++;
      return { ok: false, reached: true, error: `HTTP ${response.status}: ${text.slice(0, 200)}`, retryAfterMs };
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const reason = abort.signal.aborted ? `no answer within ${this.options.timeoutMs} ms` : (cause?.code ?? cause?.message ?? (error as Error).message);
      return { ok: false, reached: false, error: `${this.options.url}: ${reason}` };
    } finally {
      clearTimeout(timer);
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

/** Retry-After as delay-seconds or an HTTP date (RFC 9110 §10.2.3), in ms from now. */
export function retryAfterOf(header: string | null, now: number): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
