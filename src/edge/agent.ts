import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { EdgeConfig } from '../config/index.js';
import { createCollector, type Collector, type CollectorStats } from './collectors.js';
import { LocalDetection, type LocalDetectionStats } from './detect.js';
import { createHttpSender, Forwarder, type ForwarderStats, type ForwardSender } from './forwarder.js';
import { Intake } from './intake.js';
import { createKafkaSender } from './kafka-sender.js';
import { createSpool, type Spool, type SpoolRecovery, type SpoolStats } from './spool.js';

/** Where readings that cannot be delivered for their size are kept, in the agent's data directory (NDJSON). */
export const UNDELIVERABLE_FILE = 'undeliverable.ndjson';

export interface EdgeStatus {
  agent: string;
  uptimeSeconds: number;
  spool: SpoolStats & { oldestUnsentAgeSeconds: number; peakBytes: number };
  forwarder: ForwarderStats & { forwardedPerSecond: number };
  collectors: Array<{ name: string; kind: string; collected: number; rejected: number } & CollectorStats>;
  recovery: SpoolRecovery | undefined;
  /** Local detection (config `detect`), when on: counts and the recent alert events, newest first. */
  detection?: LocalDetectionStats;
}

export interface EdgeAgentOptions {
  config: EdgeConfig;
  /** Progress and problems, one line each (default: nothing). */
  log?: ((line: string) => void) | undefined;
}

/**
 * The edge agent: collectors → spool (durable, capped) → forwarder → the platform (its HTTP ingest,
 * or directly the Kafka raw topics `gridpulse process` consumes, by `forward.url`), with a
 * status endpoint (`GET /status` JSON, `GET /metrics` Prometheus, `GET /healthz`).
 * Lifecycle: create → `start()` (opens and recovers the spool, starts the forwarder, the
 * collectors and the status server) → `stop()` (collectors first, so that what they
 * acknowledged is in the spool; then the forwarder, which closes its connections; the spool is synced and closed).
 *
 * @example
 * const agent = createEdgeAgent({ config: loadEdgeConfig('edge.yaml'), log: console.log });
 * await agent.start();
 * console.log(agent.status().spool.unsent);
 * await agent.stop();
 */
export interface EdgeAgent {
  start(): Promise<SpoolRecovery>;
  status(): EdgeStatus;
  /** Where the status server listens, once started. */
  readonly statusAddress: string | undefined;
  collectors(): readonly Collector[];
  stop(): Promise<void>;
}

export function createEdgeAgent(options: EdgeAgentOptions): EdgeAgent {
  return new Agent(options);
}

class Agent implements EdgeAgent {
  private readonly spool: Spool;
  private readonly forwarder: Forwarder;
  private readonly intake: Intake;
  private readonly detection: LocalDetection | undefined;
  private readonly collectorList: Collector[];
  private server: Server | undefined;
  private recovery: SpoolRecovery | undefined;
  private readonly startedAt = Date.now();
  private peakBytes = 0;
  private oldestUnsentAt: number | undefined;
  private sampler: NodeJS.Timeout | undefined;
  private readonly rate: Array<{ at: number; forwarded: number }> = [];
  statusAddress: string | undefined;
  private stopping: Promise<void> | undefined;
  private metricsRegistry: Promise<{ render: () => Promise<string>; contentType: string }> | undefined;

  constructor(private readonly options: EdgeAgentOptions) {
    const { config } = options;
    const log = options.log ?? (() => undefined);
    const { forward } = config;
    // Made first: a Kafka URL or topic the Kafka log would refuse fails the agent's creation (GP_CONFIG_INVALID), before anything is opened.
    const sender: ForwardSender =
      forward.kind === 'kafka'
        ? createKafkaSender({ url: forward.url, topics: forward.topics, streams: Object.keys(config.streams), timeoutMs: forward.timeoutMs, clientId: `gridpulse-edge-${config.agent.name}` })
        : createHttpSender({ url: forward.url, token: forward.token, timeoutMs: forward.timeoutMs });
    this.spool = createSpool({
      dir: join(config.agent.dataDir, 'spool'),
      maxBytes: config.spool.maxBytes,
      segmentBytes: config.spool.segmentBytes,
      full: config.spool.full,
      fsync: config.spool.fsync,
      fsyncIntervalMs: config.spool.fsyncIntervalMs,
    });
    this.intake = new Intake(this.spool, config.streams, config.forward.idField);
    if (config.detect !== undefined) {
      const detection = new LocalDetection(config.detect, log);
      this.detection = detection;
      this.intake.onReading = (stream, reading) => detection.observe(stream, reading);
    }
    let lastRetryLog = 0;
    this.forwarder = new Forwarder({
      spool: this.spool,
      sender,
      batchReadings: forward.batchReadings,
      maxPerDevice: forward.maxPerDevice,
      backoffMinMs: forward.backoffMinMs,
      backoffMaxMs: forward.backoffMaxMs,
      backfillAfterMs: forward.backfillAfterMs,
      onRetry: (error, delay) => {
        // One line per 10 s at most: an outage of hours must not fill the disk with log lines.
        if (Date.now() - lastRetryLog < 10_000) return;
        lastRetryLog = Date.now();
        log(`forward: ${error}; retrying in ${delay} ms (${this.spool.stats().unsent} readings spooled)`);
      },
      onRejected: (stream, rejected) => log(`forward: the platform rejected ${rejected.length} reading(s) of ${stream || 'the default stream'}, e.g. ${rejected[0]?.reason ?? ''}`),
      onUndeliverable: async (stream, reading, reason) => {
        // Kept, with why, before the spool moves past it: nothing leaves the agent silently.
        const path = join(config.agent.dataDir, UNDELIVERABLE_FILE);
        const text = Buffer.from(reading.value.buffer, reading.value.byteOffset, reading.value.byteLength).toString('utf8');
        const line = `${JSON.stringify({ at: new Date().toISOString(), stream, device: reading.device, reason, reading: text })}\n`;
        const file = await open(path, 'a');
        try {
          await file.writeFile(line);
          await file.sync();
        } finally {
          await file.close();
        }
        log(`forward: a reading of ${reading.device} (${stream}, ${reading.value.byteLength} bytes) is refused for its size even alone (${reason}); set aside in ${path}`);
      },
    });
    this.collectorList = config.collectors.map((collector) => createCollector(collector, { intake: this.intake, stateDir: join(config.agent.dataDir, 'collectors'), log }));
  }

  collectors(): readonly Collector[] {
    return this.collectorList;
  }

  async start(): Promise<SpoolRecovery> {
    const log = this.options.log ?? (() => undefined);
    this.recovery = await this.spool.ready();
    if (this.recovery.reason !== undefined) log(`spool recovery: ${this.recovery.reason}`);
    for (const q of this.recovery.quarantined) log(`spool: corrupt segment ${q.file} copied to ${q.copy}; ${q.unreadableRecords} reading(s) after the corruption could not be read`);
    this.forwarder.start();
    this.sampler = setInterval(() => void this.sample(), 1000);
    this.sampler.unref();
    await this.sample();
    await this.startStatusServer();
    for (const collector of this.collectorList) await collector.start();
    return this.recovery;
  }

  private async sample(): Promise<void> {
    const stats = this.spool.stats();
    this.peakBytes = Math.max(this.peakBytes, stats.bytes);
    this.oldestUnsentAt = await this.spool.oldestUnsentAt().catch(() => this.oldestUnsentAt);
    const now = Date.now();
    this.rate.push({ at: now, forwarded: this.forwarder.stats().forwarded });
    while (this.rate.length > 11) this.rate.shift();
  }

  status(): EdgeStatus {
    const spool = this.spool.stats();
    this.peakBytes = Math.max(this.peakBytes, spool.bytes);
    const forwarder = this.forwarder.stats();
    const first = this.rate[0];
    const last = this.rate[this.rate.length - 1];
    const perSecond = first !== undefined && last !== undefined && last.at > first.at ? ((last.forwarded - first.forwarded) * 1000) / (last.at - first.at) : 0;
    const oldest = spool.unsent === 0 ? undefined : this.oldestUnsentAt;
    return {
      agent: this.options.config.agent.name,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      spool: { ...spool, oldestUnsentAgeSeconds: oldest === undefined ? 0 : Math.max(0, (Date.now() - oldest) / 1000), peakBytes: this.peakBytes },
      forwarder: { ...forwarder, forwardedPerSecond: Math.round(perSecond) },
      collectors: this.collectorList.map((collector) => ({
        name: collector.name,
        kind: collector.kind,
        collected: this.intake.collected.get(collector.name) ?? 0,
        rejected: this.intake.rejectedCounts.get(collector.name) ?? 0,
        ...collector.stats(),
      })),
      recovery: this.recovery,
      ...(this.detection === undefined ? {} : { detection: this.detection.stats() }),
    };
  }

  private async startStatusServer(): Promise<void> {
    const { host, port } = this.options.config.status;
    const server = createServer((request, response) => {
      const path = (request.url ?? '/').split('?')[0];
      if (path === '/status' || path === '/') {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify(this.status()));
      } else if (path === '/metrics') {
        this.metrics()
          .then(async (metrics) => {
            const text = await metrics.render();
            response.writeHead(200, { 'content-type': metrics.contentType });
            response.end(text);
          })
          .catch((error: unknown) => {
            response.writeHead(500, { 'content-type': 'text/plain' });
            response.end(String(error));
          });
      } else if (path === '/healthz') {
        response.writeHead(200, { 'content-type': 'text/plain' });
        response.end('ok\n');
      } else {
        response.writeHead(404, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ error: { code: 'GP_NOT_FOUND', message: `expected /status, /metrics or /healthz, got ${path ?? ''}` } }));
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    this.server = server;
    const address = server.address() as AddressInfo;
    this.statusAddress = `http://${address.address}:${address.port}`;
  }

  /** Prometheus metrics (prom-client, loaded on the first scrape), read from the status at scrape time. */
  private metrics(): Promise<{ render: () => Promise<string>; contentType: string }> {
    this.metricsRegistry ??= (async () => {
      const client = await import('prom-client');
      const registry = new client.Registry();
      const gauge = (name: string, help: string, read: (status: EdgeStatus) => number): void => {
        new client.Gauge({ name, help, registers: [registry], collect: function (this: { set: (value: number) => void }) { this.set(read(status())); } });
      };
      const counter = (name: string, help: string, read: (status: EdgeStatus) => number): void => {
        // Counters from the agent's own totals: prom-client's Gauge type is used so the value can be set; the names end in _total as counters do.
        new client.Gauge({ name, help, registers: [registry], collect: function (this: { set: (value: number) => void }) { this.set(read(status())); } });
      };
      const status = (): EdgeStatus => this.status();
      gauge('gridpulse_edge_spool_bytes', 'Bytes in the spool segments', (s) => s.spool.bytes);
      gauge('gridpulse_edge_spool_max_bytes', 'The spool cap', (s) => s.spool.maxBytes);
      gauge('gridpulse_edge_spool_unsent_readings', 'Readings spooled and not yet acknowledged by the platform', (s) => s.spool.unsent);
      gauge('gridpulse_edge_oldest_unsent_age_seconds', 'Age of the oldest reading not yet acknowledged by the platform', (s) => s.spool.oldestUnsentAgeSeconds);
      gauge('gridpulse_edge_forwarded_per_second', 'Readings acknowledged by the platform per second (last 10 s)', (s) => s.forwarder.forwardedPerSecond);
      gauge('gridpulse_edge_blocked_appends', 'Collector appends waiting for spool space (block policy)', (s) => s.spool.blockedAppends);
      gauge('gridpulse_edge_connected', '1 when the last forward attempt reached the platform', (s) => (s.forwarder.connected ? 1 : 0));
      counter('gridpulse_edge_forwarded_readings_total', 'Readings acknowledged by the platform', (s) => s.forwarder.forwarded);
      counter('gridpulse_edge_backfilled_readings_total', 'Readings forwarded marked as backfill', (s) => s.forwarder.backfilled);
      counter('gridpulse_edge_forward_retries_total', 'Forward attempts that failed and were retried', (s) => s.forwarder.retries);
      counter('gridpulse_edge_dropped_by_policy_total', 'Readings deleted unsent by the drop-oldest policy', (s) => s.spool.droppedByPolicy);
      counter('gridpulse_edge_corrupt_readings_total', 'Readings lost to corrupt spool segments (quarantined)', (s) => s.spool.corruptRecords);
      counter('gridpulse_edge_rejected_by_platform_total', 'Readings the platform rejected as invalid', (s) => s.forwarder.rejectedByPlatform);
      counter('gridpulse_edge_undeliverable_readings_total', 'Readings refused for their size even alone, kept in undeliverable.ndjson', (s) => s.forwarder.undeliverable);
      if (this.detection !== undefined) {
        counter('gridpulse_edge_local_readings_total', 'Readings checked by local detection', (s) => s.detection?.readings ?? 0);
        counter('gridpulse_edge_local_findings_total', 'Findings raised by local detection', (s) => s.detection?.findings ?? 0);
        counter('gridpulse_edge_local_alerts_opened_total', 'Alerts opened (or reopened) by local detection', (s) => s.detection?.alertsOpened ?? 0);
        counter('gridpulse_edge_local_alert_events_total', 'Alert events (open, update, escalate, resolve, reopen) of local detection', (s) => s.detection?.alertEvents ?? 0);
        gauge('gridpulse_edge_local_alerts_open', 'Alerts of local detection open now', (s) => s.detection?.open ?? 0);
        counter('gridpulse_edge_local_detection_errors_total', 'Failures inside local detection (collection goes on)', (s) => s.detection?.errors ?? 0);
      }
      const collected = new client.Gauge({ name: 'gridpulse_edge_collected_readings_total', help: 'Readings made durable in the spool, per collector', labelNames: ['collector'], registers: [registry] });
      return {
        contentType: registry.contentType,
        render: async () => {
          for (const c of this.status().collectors) collected.set({ collector: c.name }, c.collected);
          return registry.metrics();
        },
      };
    })();
    return this.metricsRegistry;
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const collector of this.collectorList) await collector.stop().catch(() => undefined);
      await this.forwarder.stop();
      if (this.sampler !== undefined) clearInterval(this.sampler);
      const server = this.server;
      if (server !== undefined) {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
      await this.spool.close();
    })();
    return this.stopping;
  }
}
