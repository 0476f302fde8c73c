import { existsSync, readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { formatDuration, formatIssues, parseConfig } from '../../config/index.js';
import { validateDetectorSpec } from '../../detectors/index.js';
import { GpError } from '../../model/index.js';

/** Validates a config file (or the built-in defaults) and describes the streams it declares. */
export function checkConfig(path: string | undefined): { ok: boolean; text: string } {
  let input: unknown = {};
  let source = 'built-in defaults';
  if (path !== undefined) {
    if (!existsSync(path)) throw new GpError('GP_CONFIG_NOT_FOUND', `config file ${path} does not exist`, { path });
    input = readFileSync(path, 'utf8');
    source = path;
  }
  const { config, issues } = parseConfig(input, { source, validateDetector: validateDetectorSpec });
  if (!config || issues.length > 0) return { ok: false, text: `${source}: ${issues.length} problem(s)\n${formatIssues(issues)}` };
  const lines = [`${source}: ok`, `store ${config.store.url}`];
  for (const s of Object.values(config.streams)) {
    lines.push(
      `stream ${s.name}: key ${s.keyField}${s.siteField ? `, site ${s.siteField}` : ''}, time ${s.timeField} (${s.timeFormat}), ` +
        `metrics ${s.metrics.map((m) => m.name).join(' ')}, windows ${s.windows.map((w) => w.name).join(' ')}, ` +
        `detectors ${s.detectors.filter((d) => d.enabled).map((d) => d.alertType ?? d.type).join(' ')}, ` +
        `lateness ${formatDuration(s.lateness.outOfOrderMs)} out-of-order / ${formatDuration(s.lateness.allowedLatenessMs)} allowed`,
    );
  }
  return { ok: true, text: lines.join('\n') };
}

export function register(program: Command): void {
  const config = program.command('config').description('Work with gridpulse.yaml.');
  config
    .command('check [file]')
    .description('Validate a config file (default: the built-in defaults) and print every problem with its JSON-pointer path.')
    .action((file: string | undefined) => {
      const result = checkConfig(file);
      process.stdout.write(`${result.text}\n`);
      if (!result.ok) process.exitCode = 2;
    });
}
