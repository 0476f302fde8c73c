/**
 * `gridpulse simulate`: meter and machine telemetry with injected anomalies, plus the labels
 * file that `gridpulse eval` scores detections against.
 */
import type { Command } from 'commander';
import { ANOMALY_TYPES, type SimulationSummary, describeAnomalyModel, simulate } from '../../ingest/index.js';

interface SimulateFlags {
  meters: string;
  machines: string;
  days: string;
  seed: string;
  interval: string;
  start: string;
  out: string;
  labels: string;
  /** The rate, or false after --no-anomalies. */
  anomalies: string | false;
  warmup: string;
}

export function register(program: Command): void {
  program
    .command('simulate')
    .description(
      'Generate realistic meter (stream power) and machine (stream machines) telemetry with injected anomalies, ' +
        'and a labels file with the ground truth for `gridpulse eval`. The same seed gives byte-identical output.',
    )
    .option('--meters <n>', 'electricity meters, about 10 per site (7 homes, 2 offices, 1 plant)', '20')
    .option('--machines <n>', 'machines with AI4I-like readings, written into the same file', '0')
    .option('--days <d>', 'length of the simulated period in days (fractions allowed)', '7')
    .option('--seed <s>', 'seed of every random draw', '1')
    .option('--interval <duration>', 'reporting interval of every device, e.g. 60s, 15m', '60s')
    .option('--start <time>', 'start of the period, ISO-8601 or epoch ms (the default is a Monday)', '2025-01-06T00:00:00Z')
    .option('--out <file>', 'telemetry output, NDJSON in arrival order; a name ending in .gz is gzip-compressed', 'sim.ndjson')
    .option('--labels <file>', 'labels output (JSON): every injected anomaly with its time, size and line numbers', 'labels.json')
    .option('--anomalies <rate>', 'how many anomalies to inject: 1 gives 3–6 of each type per device per week, 2 twice as many', '1')
    .option('--no-anomalies', 'inject no anomalies (clean telemetry)')
    .option('--warmup <duration>', "no anomaly within this long of a device's first reading, so detectors can learn a baseline", '24h')
    .addHelpText('after', `\n${describeAnomalyModel()}`)
    .action(async (flags: SimulateFlags) => {
      const started = performance.now();
      const summary = await simulate({
        meters: flags.meters,
        machines: flags.machines,
        days: flags.days,
        seed: flags.seed,
        intervalMs: flags.interval,
        start: flags.start,
        anomalyRate: flags.anomalies === false ? 0 : flags.anomalies,
        warmupMs: flags.warmup,
        out: flags.out,
        labels: flags.labels,
      });
      const anomaliesWanted = flags.anomalies !== false && Number(flags.anomalies) > 0;
      process.stderr.write(formatSummary(summary, (performance.now() - started) / 1000, anomaliesWanted));
    });
}

function formatSummary(summary: SimulationSummary, seconds: number, anomaliesWanted: boolean): string {
  const lines = [
    `wrote ${summary.lines.toLocaleString('en')} lines (${summary.readings.toLocaleString('en')} readings) from ${summary.meters} meters and ${summary.machines} machines to ${summary.out ?? ''} in ${seconds.toFixed(1)} s`,
    `labels: ${summary.labelsPath ?? ''}`,
  ];
  const injected = ANOMALY_TYPES.filter((type) => summary.anomalies[type] > 0);
  const total = injected.reduce((sum, type) => sum + summary.anomalies[type], 0);
  if (total > 0) {
    lines.push(`anomalies: ${total} (${injected.map((type) => `${type} ${summary.anomalies[type]}`).join(', ')})`);
  } else if (anomaliesWanted) {
    lines.push('anomalies: none — the run is too short: none is injected in the warm-up (--warmup, default 24h) or the last hour; try --days 2 or more');
  } else {
    lines.push('anomalies: none (--no-anomalies or --anomalies 0)');
  }
  if (summary.skippedAnomalies > 0) lines.push(`skipped: ${summary.skippedAnomalies} anomalies found no free place (rate too high for the run length)`);
  return `${lines.join('\n')}\n`;
}
