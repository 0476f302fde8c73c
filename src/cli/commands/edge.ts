import type { Command } from 'commander';
import { loadEdgeConfig } from '../../config/index.js';
import { createEdgeAgent } from '../../edge/index.js';

/**
 * `gridpulse edge --config edge.yaml`: runs the edge agent until SIGINT/SIGTERM. It prints one
 * line per listening address (`status http://…`, `collector <name> http://…`) and `edge agent
 * ready` once every collector runs; on a signal the collectors stop first (so that everything
 * they acknowledged is in the spool), then the forwarder, and the spool is synced.
 */
export function register(program: Command): void {
  program
    .command('edge')
    .description('Run the edge agent: collect readings (MQTT, Modbus TCP, HTTP, file, stdin, simulator), spool them durably on disk and forward them to the platform.')
    .requiredOption('-c, --config <file>', 'edge agent config (YAML), see edge.example.yaml')
    .action(async (opts: { config: string }) => {
      const config = loadEdgeConfig(opts.config);
      const say = (line: string): void => void process.stdout.write(`${line}\n`);
      const agent = createEdgeAgent({ config, log: (line) => process.stderr.write(`${line}\n`) });
      const recovery = await agent.start();
      say(`edge agent ${config.agent.name}: spool ${config.agent.dataDir} (cap ${config.spool.maxBytes} bytes, full policy ${config.spool.full}, fsync ${config.spool.fsync}); forwarding to ${config.forward.url}`);
      if (recovery.truncatedBytes > 0) say(`spool recovery: cut ${recovery.truncatedBytes} bytes of a torn tail`);
      say(`status ${agent.statusAddress ?? ''}/status`);
      for (const collector of agent.collectors()) {
        const address = collector.stats().address;
        say(`collector ${collector.name} (${collector.kind})${address === undefined ? '' : ` ${address}`}`);
      }
      say('edge agent ready');
      await new Promise<void>((resolve) => {
        const stop = (signal: string): void => {
          say(`${signal}: stopping (collectors, then the forwarder; the spool keeps what was not sent)`);
          agent.stop().then(resolve, (error: unknown) => {
            process.stderr.write(`stopping failed: ${(error as Error).message}\n`);
            process.exitCode = 1;
            resolve();
          });
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
      const status = agent.status();
      say(`stopped: ${status.forwarder.forwarded} forwarded, ${status.spool.unsent} left in the spool, ${status.spool.droppedByPolicy} dropped by policy`);
    });
}
