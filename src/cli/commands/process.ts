import type { Command } from 'commander';
import { loadConfig } from '../../config/index.js';
import { GpError } from '../../model/index.js';
import { parseCount } from '../format.js';
import { createKafkaProcess } from '../kafka-process.js';
import { startProcessServer, type ProcessServer } from '../process-server.js';

export interface ProcessOptions {
  log: string;
  config?: string | undefined;
  dataDir?: string | undefined;
  store?: string | undefined;
  group?: string | undefined;
  streams?: string[] | undefined;
  topics?: Record<string, string> | undefined;
  kafkaOutputs?: boolean | undefined;
  checkpointIntervalMs?: number | undefined;
  sessionTimeoutMs?: number | undefined;
  untilEnd?: boolean | undefined;
  /** Serve /healthz, /readyz, /status and /metrics on this port (0: any free one). */
  metricsPort?: number | undefined;
  metricsHost?: string | undefined;
}

/**
 * `gridpulse process --log kafka://…`: the engine only (no API, no ingest) as one member of a
 * Kafka consumer group. Stops on SIGINT/SIGTERM after checkpointing every partition it owns, or by
 * itself with `--until-end` once every partition is processed to the end it had at start (with
 * shared checkpoints in PostgreSQL, every partition of the group, whichever member processed it).
 */
export async function runProcess(options: ProcessOptions, out: (text: string) => void): Promise<void> {
  if (!/^kafka:\/\//i.test(options.log.trim())) {
    throw new GpError('GP_INPUT_INVALID', `--log: expected kafka://host:port[,host:port...] (gridpulse process runs over Kafka; the embedded log is for gridpulse up), got ${JSON.stringify(options.log.replace(/\/\/[^@/]*@/, '//***@'))}`, { field: 'log' });
  }
  const config = loadConfig({ ...(options.config === undefined ? {} : { path: options.config }), dataDir: options.dataDir, storeUrl: options.store });
  const log = (message: string): void => out(`${new Date().toISOString()} ${message}`);
  const processor = createKafkaProcess({
    config,
    log: options.log,
    group: options.group,
    streams: options.streams,
    topics: options.topics,
    kafkaOutputs: options.kafkaOutputs,
    checkpointIntervalMs: options.checkpointIntervalMs,
    sessionTimeoutMs: options.sessionTimeoutMs,
    untilEnd: options.untilEnd,
    onInfo: log,
    onError: (error, where) => log(`error in ${where}: ${error instanceof Error ? error.message : String(error)}`),
  });
  let server: ProcessServer | undefined;
  try {
    await processor.start();
    if (options.metricsPort !== undefined) {
      server = await startProcessServer({ processor, group: options.group ?? 'gridpulse-engine', port: options.metricsPort, host: options.metricsHost ?? '127.0.0.1' });
      log(`status on ${server.address}/status, metrics on ${server.address}/metrics`);
    }
  } catch (error) {
    await processor.close();
    const code = (error as { code?: string }).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      throw new GpError('GP_INPUT_INVALID', `--metrics-port/--metrics-host: ${options.metricsHost ?? '127.0.0.1'}:${String(options.metricsPort)} cannot be listened on (${code}); pick another (0 = any free port)`, { field: 'metrics-port' }, { cause: error });
    }
    throw error;
  }
  const why = await new Promise<string>((resolve) => {
    void processor.ended.then(() => resolve('end of input'));
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  log(`stopping (${why}): checkpointing ${processor.stats().owned.length} partitions`);
  await processor.close();
  await server?.close();
  const stats = processor.stats();
  log(`stopped: ${stats.records} records processed, ${stats.checkpoints} checkpoints written, ${stats.restored} restored, ${stats.corruptCheckpoints} unusable`);
}

function metricsPortOf(text: string): number {
  const port = parseCount(text, '--metrics-port');
  if (port > 65535) throw new GpError('GP_INPUT_INVALID', `--metrics-port: expected a port number from 0 to 65535, got ${text}`, { field: 'metrics-port' });
  return port;
}

export function register(program: Command): void {
  program
    .command('process')
    .description('Run only the engine, as a member of a Kafka consumer group: each process owns some partitions of the raw topics, with checkpointed state.')
    .requiredOption('--log <url>', 'kafka://host:port[,host:port...]')
    .option('-c, --config <file>', 'config file (default: ./gridpulse.yaml if present, else built-in defaults)')
    .option('--data-dir <dir>', 'directory for file checkpoints and the DuckDB store (default ./data)')
    .option('--store <url>', 'store URL; with postgres://… the checkpoints go to its engine_checkpoints table, so several processes can share the partitions')
    .option('--group <name>', 'Kafka consumer group', 'gridpulse-engine')
    .option('--streams <names>', 'comma-separated streams to consume (default: every stream of the config)')
    .option('--topic <stream=topic>', 'raw topic of a stream instead of the default (power-usage-raw, sensor-raw-data, <stream>-raw); repeatable', (value: string, previous: string[] = []) => [...previous, value])
    .option('--kafka-outputs', 'also write aggregates, alerts and ops to the Kafka output topics')
    .option('--checkpoint-interval <ms>', 'checkpoint every partition this often (default: config checkpoint.interval)')
    .option('--session-timeout <ms>', 'Kafka group session timeout: how soon partitions of a killed process move', '10000')
    .option('--metrics-port <port>', 'serve /healthz, /readyz, /status (JSON: owned partitions, lag, checkpoints) and /metrics (Prometheus) on this port (0 = any free one)')
    .option('--metrics-host <host>', 'address for --metrics-port', '127.0.0.1')
    .option('--until-end', 'bounded run: process each partition up to its end at start, emit every open window (as replay does), checkpoint and exit')
    .addHelpText(
      'after',
      `
Examples:
  gridpulse process --log kafka://kafka1:9092,kafka2:9092 --store postgres://gridpulse@db/gridpulse
  gridpulse process --log kafka://kafka1:9092 --store postgres://gridpulse@db/gridpulse --kafka-outputs --metrics-port 9464 --metrics-host 0.0.0.0
  gridpulse process --log kafka://127.0.0.1:9092 --store postgres://postgres@127.0.0.1/gp --until-end`,
    )
    .action(async (opts: Record<string, string | string[] | boolean | undefined>) => {
      const topics: Record<string, string> = {};
      for (const pair of (opts.topic as string[] | undefined) ?? []) {
        const match = /^([^=]+)=([A-Za-z0-9._-]{1,249})$/.exec(pair);
        if (match === null) throw new GpError('GP_INPUT_INVALID', `--topic: expected stream=topic (a Kafka topic name: letters, digits and ._-), got ${JSON.stringify(pair)}`, { field: 'topic' });
        topics[match[1]!.trim()] = match[2]!;
      }
      const str = (k: string): string | undefined => (typeof opts[k] === 'string' ? opts[k] : undefined);
      await runProcess(
        {
          log: str('log')!,
          config: str('config'),
          dataDir: str('dataDir'),
          store: str('store'),
          group: str('group'),
          streams: str('streams')?.split(',').map((s) => s.trim()).filter(Boolean),
          topics,
          kafkaOutputs: opts.kafkaOutputs === true,
          checkpointIntervalMs: str('checkpointInterval') === undefined ? undefined : Math.max(1, parseCount(str('checkpointInterval')!, '--checkpoint-interval')),
          sessionTimeoutMs: parseCount(str('sessionTimeout') ?? '10000', '--session-timeout'),
          untilEnd: opts.untilEnd === true,
          metricsPort: str('metricsPort') === undefined ? undefined : metricsPortOf(str('metricsPort')!),
          metricsHost: str('metricsHost'),
        },
        (text) => process.stdout.write(`${text}\n`),
      );
    });
}
