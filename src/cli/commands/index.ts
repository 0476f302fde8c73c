import type { Command } from 'commander';
import { register as bench } from './bench.js';
import { register as config } from './config.js';
import { register as demo } from './demo.js';
import { register as edge } from './edge.js';
import { register as migrate } from './migrate.js';
import { register as models } from './models.js';
import { register as evaluate } from './eval.js';
import { register as processCommand } from './process.js';
import { register as replay } from './replay.js';
import { register as simulate } from './simulate.js';
import { register as token } from './token.js';
import { register as train } from './train.js';
import { register as up } from './up.js';

/** Every command, in the order `gridpulse --help` lists them (no discovery from the file system). */
export function registerCommands(program: Command): void {
  for (const register of [up, processCommand, demo, replay, simulate, edge, evaluate, train, models, bench, config, token, migrate]) register(program);
}
