import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { FeatureCacheStatus, Platform, PlatformStatus } from './platform.js';

/**
 * The app's Prometheus metrics, on a registry of its own (several apps in one process do not
 * clash). Platform figures are read from `platform.status()` once per scrape; HTTP figures
 * (request durations, live clients, rate limiting) are counted by the API itself.
 */
export interface ApiMetrics {
  readonly registry: Registry;
  readonly requestDuration: Histogram<'method' | 'route' | 'status_code'>;
  readonly liveClients: Gauge;
  readonly liveDropped: Counter;
  readonly rateLimited: Counter;
  /** Prometheus text of every metric. */
  scrape(): Promise<string>;
}

export function createApiMetrics(platform: Platform): ApiMetrics {
  const registry = new Registry();
  let snapshot: PlatformStatus | undefined;
  const status = (): PlatformStatus => snapshot ?? platform.status();
  const registers = [registry];

  /** A counter that mirrors a platform total (reset and set on each scrape). */
  function total(name: string, help: string, read: (s: PlatformStatus) => number): void {
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(Math.max(0, read(status())));
      },
    });
  }
  function totalBy<L extends string>(name: string, help: string, label: L, read: (s: PlatformStatus) => Record<string, number>): void {
    new Counter<L>({
      name,
      help,
      labelNames: [label],
      registers,
      collect() {
        this.reset();
        for (const [value, count] of Object.entries(read(status()))) this.inc({ [label]: value } as Record<L, string>, Math.max(0, count));
      },
    });
  }
  function gauge(name: string, help: string, read: (s: PlatformStatus) => number | null): void {
    new Gauge({
      name,
      help,
      registers,
      collect() {
        const value = read(status());
        if (value === null) this.reset();
        else this.set(value);
      },
    });
  }

  total('gridpulse_readings_received_total', 'Readings received at ingest (HTTP, MQTT, simulator).', (s) => s.totals.received);
  total('gridpulse_readings_accepted_total', 'Readings accepted at ingest and appended to the log.', (s) => s.totals.accepted);
  totalBy('gridpulse_readings_rejected_total', 'Readings rejected at ingest, by reason.', 'reason', (s) => s.totals.rejectedByReason);
  total('gridpulse_readings_processed_total', 'Readings processed by the engine.', (s) => s.totals.processed);
  totalBy('gridpulse_readings_late_total', 'Readings that arrived behind the watermark, by class (late: amended a window; too_late: past the allowed lateness).', 'class', (s) => ({
    late: s.totals.late,
    too_late: s.totals.tooLate,
  }));
  total('gridpulse_aggregates_total', 'Window aggregates emitted (amendments included) and written to the store.', (s) => s.totals.aggregates);
  total('gridpulse_alert_events_total', 'Alert transitions emitted (open, update, escalate, resolve, reopen, acknowledge).', (s) => s.totals.alertEvents);
  totalBy('gridpulse_findings_total', 'Detector findings, by alert type.', 'type', (s) => s.totals.findingsByType);
  totalBy('gridpulse_ops_events_total', 'Data-quality and pipeline events, by kind.', 'kind', (s) => s.totals.opsByKind);
  gauge('gridpulse_ingest_readings_per_second', 'Readings per second accepted at ingest over the last 10 s.', (s) => s.ingestRate);
  gauge('gridpulse_process_readings_per_second', 'Readings per second processed by the engine over the last 10 s.', (s) => s.processRate);

  gauge('gridpulse_store_write_seconds', 'Duration of the most recent store write.', (s) => (s.store.lastWriteMs === null ? null : s.store.lastWriteMs / 1000));
  gauge('gridpulse_store_pending_writes', 'Rows waiting to be written to the store.', (s) => s.store.pendingWrites);
  total('gridpulse_store_writes_total', 'Store write batches completed.', (s) => s.store.writes);

  gauge('gridpulse_log_bytes', 'Size of the durable log on disk.', (s) => s.log.bytes);
  gauge('gridpulse_log_segments', 'Segment files of the durable log.', (s) => s.log.segments);
  new Gauge<'partition'>({
    name: 'gridpulse_log_consumer_lag',
    help: 'Records appended to the log and not yet consumed by the engine, per log partition.',
    labelNames: ['partition'],
    registers,
    collect() {
      this.reset();
      for (const p of status().log.partitions) this.set({ partition: String(p.partition) }, p.lag);
    },
  });
  new Gauge<'stream' | 'partition'>({
    name: 'gridpulse_watermark_delay_seconds',
    help: 'Wall clock minus watermark, per stream and engine partition (how far event time trails real time).',
    labelNames: ['stream', 'partition'],
    registers,
    collect() {
      this.reset();
      for (const p of status().engine.partitions) {
        if (p.watermarkDelayMs !== null) this.set({ stream: p.stream, partition: String(p.partition) }, p.watermarkDelayMs / 1000);
      }
    },
  });
  new Gauge<'stream' | 'partition'>({
    name: 'gridpulse_engine_partition_keys',
    help: 'Devices held in engine state, per stream and partition.',
    labelNames: ['stream', 'partition'],
    registers,
    collect() {
      this.reset();
      for (const p of status().engine.partitions) this.set({ stream: p.stream, partition: String(p.partition) }, p.keys);
    },
  });
  gauge('gridpulse_engine_state_keys', 'Keyed state entries held by the engine.', (s) => s.engine.stateKeys);
  gauge('gridpulse_last_checkpoint_timestamp_seconds', 'Wall-clock time of the last checkpoint.', (s) => (s.lastCheckpointAt === null ? null : s.lastCheckpointAt / 1000));
  gauge('gridpulse_simulator_running', '1 while the built-in simulator runs.', (s) => (s.simulator.running ? 1 : 0));

  // The live-feature cache (features.redis), only when the platform has one.
  const featureCache = platform.featureCacheStats?.bind(platform);
  if (featureCache !== undefined) {
    const cacheTotal = (name: string, help: string, read: (s: FeatureCacheStatus) => number): void => {
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(Math.max(0, read(featureCache())));
        },
      });
    };
    cacheTotal('gridpulse_feature_cache_devices_written_total', 'Device feature snapshots written to the Redis feature cache.', (s) => s.devicesWritten);
    cacheTotal('gridpulse_feature_cache_keys_written_total', 'Keys set in the Redis feature cache (values and meta hashes).', (s) => s.keysWritten);
    cacheTotal('gridpulse_feature_cache_write_errors_total', 'Feature cache write batches that failed (their devices are written again at the next interval).', (s) => s.writeErrors);
    new Gauge({
      name: 'gridpulse_feature_cache_connected',
      help: '1 while the Redis feature cache has a live connection.',
      registers,
      collect() {
        this.set(featureCache().connected ? 1 : 0);
      },
    });
  }

  const requestDuration = new Histogram<'method' | 'route' | 'status_code'>({
    name: 'gridpulse_http_request_duration_seconds',
    help: 'HTTP request duration, by method, route pattern and status code.',
    labelNames: ['method', 'route', 'status_code'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });
  const liveClients = new Gauge({ name: 'gridpulse_sse_clients', help: 'Clients connected to /api/live.', registers });
  const liveDropped = new Counter({ name: 'gridpulse_sse_dropped_total', help: 'Live clients dropped because they read too slowly.', registers });
  const rateLimited = new Counter({ name: 'gridpulse_http_rate_limited_total', help: 'Ingest requests refused with 429 by the per-token rate limit.', registers });
  collectDefaultMetrics({ register: registry });

  return {
    registry,
    requestDuration,
    liveClients,
    liveDropped,
    rateLimited,
    async scrape() {
      snapshot = platform.status();
      try {
        return await registry.metrics();
      } finally {
        snapshot = undefined;
      }
    },
  };
}
