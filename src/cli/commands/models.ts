/** `gridpulse models list`: the model files of a directory, newest first. */
import type { Command } from 'commander';
import { formatMetric, listModels } from '../../ml/index.js';

export function register(program: Command): void {
  const models = program.command('models').description('Model files written by `gridpulse train`');
  models
    .command('list')
    .description('List the model files of a directory, newest first: kind, version, creation time, target, features, threshold, cross-validated F1 and ROC AUC')
    .option('--dir <dir>', 'directory of model files (default: the one `gridpulse train` writes to and `gridpulse up` serves from)', 'data/models')
    .option('--json', 'print the list as JSON')
    .action(async (flags: { dir: string; json?: boolean }) => {
      const list = await listModels(flags.dir);
      if (flags.json === true) {
        process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
        return;
      }
      if (list.length === 0) {
        process.stdout.write(`no model files in ${flags.dir} (train one with gridpulse train)\n`);
        return;
      }
      const rows = list.map((m) =>
        m.problem !== undefined
          ? [m.path, 'invalid', '', '', '', '', '', '', m.problem]
          : [m.path, m.kind, m.version, m.createdAt, m.target ?? '-', String(m.features), String(m.threshold), formatMetric(m.f1), formatMetric(m.rocAuc)],
      );
      const header = ['file', 'kind', 'version', 'created', 'target', 'features', 'threshold', 'F1', 'AUC'];
      const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (i < 8 ? r[i]!.length : 0))));
      const line = (cells: string[]): string => cells.map((c, i) => (i < cells.length - 1 ? c.padEnd(widths[i]!) : c)).join('  ');
      process.stdout.write(`${[line(header), ...rows.map(line)].join('\n')}\n`);
    });
}
