import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { createApiApp } from '../../api/index.js';
import { loadConfig, type GridpulseConfig } from '../../config/index.js';
import { GpError } from '../../model/index.js';
import { parseCount } from '../format.js';
import { createPlatform, createPlatformMqtt, type PlatformRuntime } from '../platform.js';
import { redactUrl } from '../../stores/index.js';

export interface UpOptions {
  config?: string | undefined;
  dataDir?: string | undefined;
  store?: string | undefined;
  port?: string | undefined;
  host?: string | undefined;
  simulator: boolean;
  backfill?: string | undefined;
  liveFrom?: string | undefined;
}

/** The dashboard's build output, next to the compiled CLI (dist/ui). */
function uiDir(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const candidate of [join(here, '../../ui'), join(here, '../../../dist/ui')]) {
    // A built dashboard has its bundles in assets/ (src/ui holds the unbuilt index.html).
    if (existsSync(join(candidate, 'index.html')) && existsSync(join(candidate, 'assets'))) return candidate;
  }
  return undefined;
}

function withFlags(config: GridpulseConfig, options: UpOptions): GridpulseConfig {
  const port = options.port === undefined ? config.server.port : parseCount(options.port, '--port');
  if (port > 65535) throw new GpError('GP_INPUT_INVALID', `--port: expected a port number from 0 to 65535, got ${options.port}`);
  return { ...config, server: { ...config.server, port, host: options.host ?? config.server.host } };
}

/**
 * `gridpulse up`: the whole platform in one process — embedded log, engine, store, HTTP and MQTT
 * ingest, API, live dashboard and (unless `--no-simulator`) a simulated fleet. Stops gracefully on
 * SIGINT/SIGTERM: ingest first, then the engine drains the log, flushes and checkpoints.
 */
export async function runUp(options: UpOptions, out: (text: string) => void): Promise<void> {
  const config = withFlags(loadConfig({ ...(options.config === undefined ? {} : { path: options.config }), dataDir: options.dataDir, storeUrl: options.store }), options);
  const log = (message: string): void => out(`${new Date().toISOString()} ${message}`);
  const platform: PlatformRuntime = createPlatform({
    config,
    simulator: options.simulator,
    ...(options.backfill === undefined ? {} : { simulatorBackfillMs: parseCount(options.backfill, '--backfill') * 60_000 }),
    ...(options.liveFrom === undefined ? {} : { liveFrom: options.liveFrom }),
    onError: (error, where) => log(`error in ${where}: ${error instanceof Error ? error.message : String(error)}`),
    onInfo: (message) => log(message),
  });
  await platform.start();
  const dashboard = uiDir();
  const app = await createApiApp({ platform, server: config.server, ...(dashboard ? { uiDir: dashboard } : {}) });
  let address: string;
  try {
    address = await app.listen({ port: config.server.port, host: config.server.host });
  } catch (error) {
    await app.close().catch(() => {});
    await platform.close();
    const code = (error as { code?: string }).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      const why = code === 'EADDRINUSE' ? 'is in use by another process' : code === 'EACCES' ? 'needs privileges' : 'is not an address of this machine';
      throw new GpError('GP_INPUT_INVALID', `--port/--host: ${config.server.host}:${config.server.port} ${why}; pick another with --port (0 = any free port) or server.port`, {}, { cause: error });
    }
    throw error;
  }
  const mqtt = config.mqtt === undefined ? undefined : createPlatformMqtt(platform, config.mqtt);
  if (mqtt) {
    await mqtt.ready();
    log(`MQTT: subscribed to ${config.mqtt!.topics.map((t) => t.topic).join(', ')} on ${config.mqtt!.url}`);
  }
  const shownAddress = address.replace('127.0.0.1', 'localhost');
  out(`gridpulse is up: dashboard ${shownAddress}/  API ${shownAddress}/docs  metrics ${shownAddress}/metrics`);
  out(`  data in ${config.dataDir} (store ${redactUrl(config.store.url)}), auth ${config.server.auth.mode}${options.simulator ? `, simulator: ${config.simulator.meters} meters + ${config.simulator.machines} machines` : ', no simulator'}`);
  if (!dashboard) out('  (the dashboard is not built: run npm run build)');

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log(`${signal}: stopping ingest, draining the log, flushing and checkpointing …`);
      void (async () => {
        try {
          await mqtt?.close();
          await app.close();
          await platform.close();
          log('stopped cleanly');
        } catch (error) {
          log(`error while stopping: ${error instanceof Error ? error.message : String(error)}`);
          process.exitCode = 1;
        }
        resolve();
      })();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}

export function register(program: Command): void {
  program
    .command('up')
    .description('Run the whole platform: durable log, engine, store, HTTP/MQTT ingest, API and live dashboard (embedded parts, no servers needed).')
    .option('-c, --config <file>', 'config file (default: ./gridpulse.yaml if present, else built-in defaults)')
    .option('--data-dir <dir>', 'directory for the log, checkpoints and the DuckDB store (default ./data)')
    .option('--store <url>', 'store URL (duckdb:<file>, postgres://…, elasticsearch://…); several separated by commas write to all and read from the first')
    .option('-p, --port <port>', 'HTTP port (0 picks a free one; default 8080)')
    .option('--host <host>', 'address to listen on (default 127.0.0.1)')
    .option('--no-simulator', 'do not start the built-in simulated fleet')
    .option('--backfill <minutes>', 'minutes of simulated history generated on a first start (default 60)')
    .option('--live-from <kafka-url>', 'also show on the live feed what `gridpulse process --kafka-outputs` members write to the Kafka output topics (kafka://host:port[,…])')
    .action(async (opts: UpOptions) => {
      await runUp(opts, (text) => process.stdout.write(`${text}\n`));
    });
}
