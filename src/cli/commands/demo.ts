import { join } from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../../config/index.js';
import { isoOf } from '../../engine/index.js';
import { simulate } from '../../ingest/index.js';
import { evaluateDetections, formatEvalReport, type DetectionRecord } from '../../ml/index.js';
import { createStore } from '../../stores/index.js';
import { parseCount } from '../format.js';
import { readLabels, readRecords } from './eval.js';
import { formatReplaySummary, replay } from './replay.js';

/**
 * The whole file-based platform in one command: simulate a fleet with injected anomalies,
 * replay it through the engine into the embedded store, score the detectors against the
 * ground truth, and show what the store now answers.
 */
export async function runDemo(options: { dir: string; meters: number; machines: number; days: number; seed: number }, out: (text: string) => void): Promise<void> {
  const config = loadConfig();
  const sim = join(options.dir, 'sim.ndjson');
  const labels = join(options.dir, 'labels.json');
  const alerts = join(options.dir, 'alerts.ndjson');
  const ops = join(options.dir, 'ops.ndjson');
  out(`1. simulating ${options.meters} meters and ${options.machines} machines for ${options.days} days (seed ${options.seed}) …`);
  const summary = await simulate({ meters: options.meters, machines: options.machines, days: options.days, seed: options.seed, out: sim, labels });
  out(`   ${summary.lines.toLocaleString('en')} lines → ${sim}, ground truth → ${labels}`);
  out(`2. replaying through the engine into ${config.store.url} …`);
  const result = await replay({ files: [sim], hints: {}, alertsOut: alerts, opsOut: ops, progress: process.stderr.isTTY });
  out(formatReplaySummary(result).replace(/^/gm, '   '));
  out('3. scoring the detectors against the injected anomalies …');
  const detections: DetectionRecord[] = [];
  for (const file of [alerts, ops]) for await (const record of readRecords(file)) detections.push(record);
  const report = evaluateDetections(await readLabels(labels), detections);
  out(formatEvalReport(report).replace(/^/gm, '   '));
  out('4. what the store answers:');
  const store = createStore(config.store.url);
  await store.ready();
  try {
    const newest = await store.listAlerts({ limit: 5 });
    out(`   newest alerts:`);
    for (const a of newest) out(`   - ${a.status.padEnd(9)} ${a.severity.padEnd(8)} ${a.type.padEnd(16)} ${a.key.padEnd(12)} opened ${isoOf(a.openedAt)}  ${a.explain}`);
    const quality = await store.dataQuality({ by: 'site' });
    const worst = [...quality].sort((a, b) => b.total - a.total).slice(0, 3);
    out(`   sites with the most data-quality events: ${worst.map((q) => `${q.group ?? '(none)'} ${q.total}`).join(', ')}`);
  } finally {
    await store.close();
  }
  out(`\nNext: gridpulse replay <your file>, gridpulse eval --labels ${labels} ${alerts} ${ops}, gridpulse --help`);
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('Simulate a fleet with injected anomalies, replay it into the embedded store, and score the detectors (no servers needed).')
    .option('--dir <dir>', 'where the demo files go', './data/demo')
    .option('--meters <n>', 'meters to simulate', '20')
    .option('--machines <n>', 'machines to simulate', '3')
    .option('--days <d>', 'days to simulate (the first day is the detectors\' warm-up)', '3')
    .option('--seed <s>', 'seed', '1')
    .action(async (opts: { dir: string; meters: string; machines: string; days: string; seed: string }) => {
      await runDemo(
        { dir: opts.dir, meters: parseCount(opts.meters, '--meters'), machines: parseCount(opts.machines, '--machines'), days: Number(opts.days), seed: parseCount(opts.seed, '--seed') },
        (text) => process.stdout.write(`${text}\n`),
      );
    });
}
