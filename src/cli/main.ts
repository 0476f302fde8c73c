#!/usr/bin/env node
/**
 * The `gridpulse` command. The only place in the code base that listens on ports or exits the
 * process. Each command lives in `./commands/<name>.ts` and registers itself on the program.
 */
import { Command } from 'commander';
import { GpError } from '../model/index.js';
import { registerCommands } from './commands/index.js';

const program = new Command();
program
  .name('gridpulse')
  .description('Real-time monitoring of electricity-meter and industrial-machine telemetry.')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)');
registerCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof GpError) {
    process.stderr.write(`gridpulse: ${error.message}\n`);
    process.exitCode = error.domain === 'user' ? 2 : 1;
  } else {
    process.stderr.write(`gridpulse: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  }
}
