// The small HTTP endpoint of `gridpulse process --metrics-port`: health, readiness, a JSON status
// and Prometheus metrics of one Kafka group member (owned partitions, lag, checkpoints, operator
// actions), so a member can be watched and alerted on like the platform.
import Fastify, { type FastifyInstance } from 'fastify';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { KafkaPartitionStatus, KafkaProcess, KafkaProcessStats } from './kafka-process.js';

export interface ProcessServerOptions {
  processor: KafkaProcess;
  group: string;
  port: number;
  host: string;
  /** Wall clock (epoch ms). */
  clock?: () => number;
}

/** What GET /status answers. */
export interface ProcessStatus {
  group: string;
  startedAt: number;
  now: number;
  joined: boolean;
  totals: KafkaProcessStats;
  /** Owned partitions, each with its lag (end offset − next offset to process; null when the end offset could not be read). */
  partitions: Array<KafkaPartitionStatus & { endOffset: number | null; lag: number | null }>;
}

export interface ProcessServer {
  /** The address it listens on (http://host:port). */
  readonly address: string;
  status(): Promise<ProcessStatus>;
  close(): Promise<void>;
}

const PARTITION_LABELS = ['topic', 'partition', 'stream'] as const;
type PartitionLabel = (typeof PARTITION_LABELS)[number];

/**
 * Starts the endpoint: `GET /healthz` (200 while the process runs), `GET /readyz` (200 once it is
 * in its consumer group, 503 before), `GET /status` (JSON, see `ProcessStatus`) and `GET /metrics`
 * (Prometheus text, `gridpulse_process_*` plus Node's default metrics).
 *
 * @example
 * const server = await startProcessServer({ processor, group: 'engine', port: 9464, host: '0.0.0.0' });
 * console.log(`metrics on ${server.address}/metrics`);
 */
export async function startProcessServer(options: ProcessServerOptions): Promise<ProcessServer> {
  const { processor, group } = options;
  const clock = options.clock ?? Date.now;
  const startedAt = clock();

  const status = async (): Promise<ProcessStatus> => {
    const partitions = processor.partitions();
    const ends = await processor.endOffsets().catch(() => new Map<string, number>());
    return {
      group,
      startedAt,
      now: clock(),
      joined: processor.joined,
      totals: processor.stats(),
      partitions: partitions.map((p) => {
        const end = ends.get(`${p.topic}/${p.partition}`);
        return { ...p, endOffset: end ?? null, lag: end === undefined ? null : Math.max(0, end - p.offset) };
      }),
    };
  };

  const registry = new Registry();
  registry.setDefaultLabels({ group });
  collectDefaultMetrics({ register: registry, prefix: 'gridpulse_process_node_' });
  const registers = [registry];
  // Read once per scrape, by the first collector that needs it.
  let scrape: Promise<ProcessStatus> | undefined;
  const current = (): Promise<ProcessStatus> => (scrape ??= status());
  const total = (name: string, help: string, read: (totals: KafkaProcessStats) => number): void => {
    new Counter({
      name,
      help,
      registers,
      async collect() {
        this.reset();
        this.inc(read((await current()).totals));
      },
    });
  };
  total('gridpulse_process_records_total', 'Records consumed from the raw topics by this process.', (t) => t.records);
  total('gridpulse_process_checkpoints_total', 'Partition checkpoints written.', (t) => t.checkpoints);
  total('gridpulse_process_checkpoints_restored_total', 'Partition checkpoints restored on assignment.', (t) => t.restored);
  total('gridpulse_process_checkpoints_unusable_total', 'Checkpoints that could not be read or restored (the one before was used).', (t) => t.corruptCheckpoints);
  new Counter({
    name: 'gridpulse_process_alert_actions_total',
    help: 'Operator actions queued by the API that this process took, by outcome.',
    labelNames: ['outcome'],
    registers,
    async collect() {
      const totals = (await current()).totals;
      this.reset();
      this.inc({ outcome: 'applied' }, totals.actionsApplied);
      this.inc({ outcome: 'refused' }, totals.actionsRefused);
    },
  });
  new Gauge({
    name: 'gridpulse_process_partitions_owned',
    help: 'Partitions of the raw topics this process owns now.',
    registers,
    async collect() {
      this.set((await current()).partitions.length);
    },
  });
  const perPartition = (name: string, help: string, read: (p: ProcessStatus['partitions'][number]) => number | null): void => {
    new Gauge<PartitionLabel>({
      name,
      help,
      labelNames: PARTITION_LABELS,
      registers,
      async collect() {
        this.reset();
        for (const p of (await current()).partitions) {
          const value = read(p);
          if (value !== null && Number.isFinite(value)) this.set({ topic: p.topic, partition: String(p.partition), stream: p.stream }, value);
        }
      },
    });
  };
  perPartition('gridpulse_process_partition_lag', 'Records of the partition not processed yet (end offset − next offset).', (p) => p.lag);
  perPartition('gridpulse_process_partition_offset', 'Next offset of the partition to process.', (p) => p.offset);
  perPartition('gridpulse_process_partition_checkpointed_offset', 'Offset of the partition’s newest checkpoint.', (p) => p.checkpointed);
  perPartition('gridpulse_process_partition_watermark_seconds', 'Event-time watermark of the partition’s engine (epoch seconds).', (p) => p.watermark / 1000);
  perPartition('gridpulse_process_partition_readings', 'Records the partition’s engine has processed since its state began (checkpointed with it).', (p) => p.readings);
  perPartition('gridpulse_process_partition_late_readings', 'LATE readings of the partition (they amended closed windows).', (p) => p.late);
  perPartition('gridpulse_process_partition_too_late_readings', 'TOO_LATE readings of the partition (on ops, changed nothing).', (p) => p.tooLate);
  perPartition('gridpulse_process_partition_pending_writes', 'Rows the partition’s store writer holds, not yet written.', (p) => p.pendingWrites);

  const app: FastifyInstance = Fastify({ logger: false });
  app.get('/healthz', () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    if (processor.joined) return { status: 'ready' };
    return reply.code(503).send({ error: { code: 'GP_UNAVAILABLE', message: `not in consumer group ${group} yet` } });
  });
  app.get('/status', () => status());
  app.get('/metrics', async (_request, reply) => {
    scrape = undefined;
    const text = await registry.metrics();
    scrape = undefined;
    return reply.type(registry.contentType).send(text);
  });
  app.setNotFoundHandler((request, reply) => reply.code(404).send({ error: { code: 'GP_NOT_FOUND', message: `no such endpoint: ${request.method} ${request.url.split('?')[0]} (this is gridpulse process: /healthz, /readyz, /status, /metrics)` } }));
  const address = await app.listen({ port: options.port, host: options.host });
  return {
    address,
    status,
    close: () => app.close(),
  };
}
