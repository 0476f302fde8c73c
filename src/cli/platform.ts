import type { IngestAuth, IngestRejection, IngestResult, Platform } from '../api/index.js';
import type { GridpulseConfig, MqttConfig } from '../config/index.js';
import { createMqttSource, type MqttSource } from '../ingest/index.js';
import type { LogRecovery } from '../log/index.js';
import { createThreadedPlatform } from './platform-threaded.js';

export interface PlatformOptions {
  config: GridpulseConfig;
  /** Wall clock (epoch ms) of ingest, the simulator and status; the engine thread keeps Date.now. */
  clock?: () => number;
  /** Run the built-in simulator (default: config.simulator.enabled). */
  simulator?: boolean;
  /** History the simulator generates on a first start (default 1 hour; 0 for none). */
  simulatorBackfillMs?: number;
  /**
   * `kafka://…`: also put on the live feed what `gridpulse process` members write to Kafka's output
   * topics (`--kafka-outputs`): their aggregates, alert transitions and ops events (see kafka-live.ts).
   */
  liveFrom?: string | undefined;
  /** Told about background failures (store writes, checkpoints, simulator). */
  onError?: (error: unknown, where: string) => void;
  /** Told about notable events (recovery, checkpoints restored). */
  onInfo?: (message: string) => void;
}

/** The running platform: the `Platform` the API uses, plus lifecycle. */
export interface PlatformRuntime extends Platform {
  /** Opens the log (crash recovery), the store and the last checkpoint, and starts consuming. */
  start(): Promise<void>;
  /** Readings from text lines (simulator, files), routed to their stream by the device-id field. */
  ingestLines(lines: readonly string[], auth?: IngestAuth): Promise<IngestResult>;
  /** Writes a checkpoint now (state + log offsets), after flushing the store. */
  checkpoint(): Promise<void>;
  /** Resolves when the engine has consumed everything appended so far and the store has it. */
  drain(): Promise<void>;
  readonly recovery: LogRecovery | undefined;
  /** Records items refused before they reached `ingest` (an MQTT payload that is not JSON) as ops events and counts them. */
  reportRejected(stream: string, rejected: readonly IngestRejection[]): void;
  /** Stops the simulator, drains the log into the engine, flushes the store, checkpoints and closes. Idempotent. */
  close(): Promise<void>;
}

/**
 * Builds the live platform of `gridpulse up` from its config: the embedded durable log in
 * `dataDir/log`, the engine (with detectors and alert managers) consuming from it, the store,
 * checkpoints in `dataDir/checkpoints`, and the built-in simulator. Ingest, the log and the API
 * run on the calling thread; the engine, the store and checkpoints on a worker thread (see
 * platform-threaded.ts), so each has a core of its own. Readings are acknowledged only
 * after the log has them on disk; the engine resumes after a crash from its last checkpoint and
 * replays the rest of the log, and every store write is idempotent, so nothing is lost or doubled.
 *
 * @example
 * const platform = createPlatform({ config: loadConfig(), simulator: false });
 * await platform.start();
 * await platform.ingest('power', [{ meterId: 'm-1', timestamp: Date.now(), usageKw: 3.2 }], { principal: 'test', keys: undefined });
 * await platform.close();
 */
export function createPlatform(options: PlatformOptions): PlatformRuntime {
  return createThreadedPlatform(options);
}

/**
 * MQTT ingest into the platform: each message's readings (device id from the topic when the
 * payload has none) go through `platform.ingest`, and the broker gets its PUBACK only after they
 * are durable in the log. Payloads that are not JSON are recorded as invalid ops events.
 *
 * @example
 * const mqtt = createPlatformMqtt(platform, config.mqtt);
 * await mqtt.ready();
 */
export function createPlatformMqtt(platform: PlatformRuntime, mqtt: MqttConfig): MqttSource {
  return createMqttSource({
    url: mqtt.url,
    qos: mqtt.qos,
    ...(mqtt.clientId === undefined ? {} : { clientId: mqtt.clientId }),
    topics: mqtt.topics.map((t) => ({ topic: t.topic, ...(t.stream ? { stream: t.stream } : {}), ...(t.keyLevel === undefined ? {} : { keyLevel: t.keyLevel }) })),
    onReadings: async (batch) => {
      const stream = batch.stream ?? platform.defaultStream;
      const schema = platform.streams.find((s) => s.name === stream);
      const items = batch.items.map((item) =>
        batch.keyFromTopic !== undefined &&
        schema !== undefined &&
        item !== null &&
        typeof item === 'object' &&
        !Array.isArray(item) &&
        (item as Record<string, unknown>)[schema.keyField] === undefined
          ? { ...(item as Record<string, unknown>), [schema.keyField]: batch.keyFromTopic }
          : item,
      );
      if (batch.rejected.length > 0) platform.reportRejected(stream, batch.rejected.map((r) => ({ index: r.index, reason: `MQTT ${batch.topic}: ${r.reason}` })));
      if (items.length > 0) await platform.ingest(stream, items, { principal: 'mqtt', keys: undefined });
    },
  });
}
