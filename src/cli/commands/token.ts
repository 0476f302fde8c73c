import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { hashToken } from '../../api/index.js';
import { GpError } from '../../model/index.js';

/**
 * A new device token: random, printed once; only its SHA-256 goes into the config, so the config
 * file (and anyone who reads it) cannot be used to write readings.
 */
export function createToken(name: string, keys: readonly string[]): { token: string; yaml: string } {
  if (!/^[\w.-]{1,64}$/.test(name)) throw new GpError('GP_INPUT_INVALID', `--name: expected 1 to 64 letters, digits, "_", "." or "-", got "${name}"`);
  const token = `gp_${randomBytes(24).toString('base64url')}`;
  const lines = ['server:', '  auth:', '    mode: tokens', '    tokens:', `      - name: ${name}`, `        sha256: ${hashToken(token)}`];
  if (keys.length > 0) lines.push(`        keys: [${keys.map((k) => JSON.stringify(k)).join(', ')}]`);
  return { token, yaml: lines.join('\n') };
}

export function register(program: Command): void {
  program
    .command('token')
    .description('Create a device token for HTTP ingest: prints the token once and the config lines (with its SHA-256 only) to add to gridpulse.yaml.')
    .requiredOption('--name <name>', 'a name for the token (shown in metrics and rate limits)')
    .option('--keys <ids>', 'comma-separated device ids the token may write (default: any)')
    .action((opts: { name: string; keys?: string }) => {
      const keys = (opts.keys ?? '').split(',').map((k) => k.trim()).filter((k) => k !== '');
      const { token, yaml } = createToken(opts.name, keys);
      process.stdout.write(`token (shown once; send it as "Authorization: Bearer <token>"):\n${token}\n\nadd to gridpulse.yaml:\n${yaml}\n`);
    });
}
