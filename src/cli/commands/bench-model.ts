/**
 * `gridpulse bench --model <file>`: what scoring every reading with a trained model costs. The
 * same machines-stream readings (from the machines simulator, in memory) go through the engine
 * with the stream's default detectors, and again with the `model` detector added, in one process,
 * beside a bare split + JSON.parse loop over the same bytes.
 */
import { resolve } from 'node:path';
import { loadConfig } from '../../config/index.js';
import { readModelFile, resolveDetectorParams, type ModelKind } from '../../detectors/index.js';
import { simulateLines } from '../../ingest/index.js';
import { GpError, type DetectorSpec, type StreamSchema } from '../../model/index.js';
import { createPipeline } from '../pipeline.js';
import { formatRate } from '../format.js';

export interface ModelBenchOptions {
  /** Model file written by `gridpulse train` (a tree model: gbdt, forest, isolation_forest). */
  modelPath: string;
  readings: number;
  machines: number;
  intervalMs: number;
  partitions: number;
  seed: number;
  /** Timed runs of each engine configuration, alternating; the fastest of each is kept. */
  rounds: number;
}

/** One configuration of the engine over the whole input (the fastest round). */
export interface ModelBenchRun {
  seconds: number;
  rate: number;
  accepted: number;
  findings: number;
  alertsOpened: Record<string, number>;
  alertTransitions: number;
}

export interface ModelBenchResult {
  model: { path: string; kind: ModelKind; version: string; trees: number; features: number; threshold: number };
  readings: number;
  machines: number;
  bytes: number;
  rounds: number;
  bare: { seconds: number; rate: number };
  withoutModel: ModelBenchRun;
  withModel: ModelBenchRun;
  /** Findings and alerts the model detector added (the other detectors see the same readings in both runs). */
  modelFindings: number;
  modelAlerts: number;
  /** Extra engine time per reading with the model detector on, µs. */
  modelCostMicroseconds: number;
  /** Rate with the model as a share of the rate without it. */
  ratio: number;
  peakRssMb: number;
}

/** Alert type of the detector the bench adds; the machines stream's own detectors use other names. */
const MODEL_ALERT_TYPE = 'model';
/** Anomalies start this long after each machine's first reading (the simulator's default is a day). */
const WARMUP_MS = 15 * 60_000;

/**
 * NDJSON machines-stream readings in one buffer: `machines` simulated machines (AI4I-like
 * temperatures, speed, torque and tool wear; overstrain, heat-dissipation and power-failure
 * episodes at the simulator's default rate after a 15-minute warm-up) reporting every
 * `intervalMs`, in event-time order, cut at `readings` lines. Deterministic for a seed.
 */
export function generateMachineInput(options: Pick<ModelBenchOptions, 'readings' | 'machines' | 'intervalMs' | 'seed'>): Buffer {
  const perMachine = Math.ceil(options.readings / options.machines) + 1;
  const run = simulateLines({
    meters: 0,
    machines: options.machines,
    intervalMs: options.intervalMs,
    days: Math.max(1 / 1440, (perMachine * options.intervalMs) / 86_400_000),
    seed: options.seed,
    warmupMs: WARMUP_MS,
  });
  const chunks: Buffer[] = [];
  let lines: string[] = [];
  let count = 0;
  for (const line of run.lines) {
    lines.push(line);
    if (++count === options.readings) break;
    if (lines.length === 10_000) {
      chunks.push(Buffer.from(`${lines.join('\n')}\n`));
      lines = [];
    }
  }
  if (lines.length > 0) chunks.push(Buffer.from(`${lines.join('\n')}\n`));
  if (count !== options.readings) throw new GpError('GP_INTERNAL', `the machines simulator produced ${count} of ${options.readings} readings`);
  return Buffer.concat(chunks);
}

/** The baseline: split the buffer into lines and JSON.parse each, nothing else. */
function bareLoop(input: Buffer): number {
  let checksum = 0;
  let start = 0;
  for (;;) {
    const end = input.indexOf(10, start);
    if (end < 0) break;
    const record = JSON.parse(input.toString('utf8', start, end)) as { torque_nm: number };
    checksum += record.torque_nm;
    start = end + 1;
  }
  return checksum;
}

function feed(router: { processBytes(bytes: Buffer, start: number, end: number, offset: number): void }, input: Buffer): void {
  let start = 0;
  let line = 0;
  for (;;) {
    const end = input.indexOf(10, start);
    if (end < 0) break;
    router.processBytes(input, start, end, ++line);
    start = end + 1;
  }
}

function seconds(fn: () => void): number {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

/** The machines stream with its default detectors and the model detector after them. */
function withModelDetector(schema: StreamSchema, modelPath: string): StreamSchema {
  const params = resolveDetectorParams({ type: 'model', params: { path: modelPath } });
  const spec: DetectorSpec = { type: 'model', metrics: [], params, alertType: MODEL_ALERT_TYPE, enabled: true };
  return { ...schema, detectors: [...schema.detectors, spec] };
}

async function timedRun(schema: StreamSchema, partitions: number, input: Buffer): Promise<ModelBenchRun> {
  const pipeline = createPipeline({ streams: [schema], partitions });
  const elapsed = seconds(() => feed(pipeline.router, input));
  const summary = await pipeline.finish();
  const stats = summary.streams[schema.name]!;
  return {
    seconds: elapsed,
    rate: stats.accepted / elapsed,
    accepted: stats.accepted,
    findings: stats.findings,
    alertsOpened: summary.alertsOpened,
    alertTransitions: summary.alertTransitions,
  };
}

/** Same input, same detectors: every round must count the same; a difference is a bug, not noise. */
function sameCounts(a: ModelBenchRun, b: ModelBenchRun): boolean {
  return a.accepted === b.accepted && a.findings === b.findings && a.alertTransitions === b.alertTransitions && JSON.stringify(a.alertsOpened) === JSON.stringify(b.alertsOpened);
}

/**
 * Measures the engine on the machines stream with and without the model detector.
 *
 * @example
 * const r = await runModelBench({ modelPath: 'models/gbdt.json', readings: 200_000, machines: 1000, intervalMs: 10_000, partitions: 4, seed: 1, rounds: 2 });
 * r.modelCostMicroseconds; // e.g. 1.9
 */
export async function runModelBench(options: ModelBenchOptions, log: (line: string) => void = () => {}): Promise<ModelBenchResult> {
  if (options.readings < 1) throw new GpError('GP_INPUT_INVALID', `--readings: expected at least 1 reading, got ${options.readings}`, { field: 'readings' });
  if (options.machines < 1 || options.machines > 9_999) throw new GpError('GP_INPUT_INVALID', `--machines: expected 1 to 9999 machines, got ${options.machines}`, { field: 'machines' });
  if (options.rounds < 1) throw new GpError('GP_INPUT_INVALID', `rounds: expected at least 1, got ${options.rounds}`, { field: 'rounds' });
  const modelPath = resolve(options.modelPath);
  const model = readModelFile(modelPath);
  if (model.kind === 'onnx') {
    throw new GpError(
      'GP_INPUT_INVALID',
      `--model: expected a tree model file (gbdt, forest, isolation_forest) that the model detector scores, got an ONNX model (${options.modelPath}); ONNX models are served by POST /v1/infer`,
      { field: 'model', path: options.modelPath },
    );
  }
  const config = loadConfig({ env: {} });
  const plain = config.streams.machines;
  if (plain === undefined) throw new GpError('GP_INTERNAL', 'the built-in machines stream is missing from the default config');
  const scored = withModelDetector(plain, modelPath);

  log(`generating ${options.readings.toLocaleString('en')} machine readings over ${options.machines.toLocaleString('en')} machines …`);
  const input = generateMachineInput(options);

  // Warm every path on a slice so the JIT has seen them (the model detector's too), then measure the full input.
  const warm = input.subarray(0, input.indexOf(10, Math.min(input.length - 1, 5_000_000)) + 1);
  bareLoop(warm);
  for (const schema of [plain, scored]) {
    const pipeline = createPipeline({ streams: [schema], partitions: options.partitions });
    feed(pipeline.router, warm);
    await pipeline.finish();
  }

  log('measuring the bare split + JSON.parse loop …');
  const bareSeconds = Math.min(
    seconds(() => bareLoop(input)),
    seconds(() => bareLoop(input)),
  );
  let without: ModelBenchRun | undefined;
  let withModel: ModelBenchRun | undefined;
  for (let round = 1; round <= options.rounds; round++) {
    log(`round ${round} of ${options.rounds}: the engine with the machines stream's default detectors, then with the model detector added …`);
    const off = await timedRun(plain, options.partitions, input);
    const on = await timedRun(scored, options.partitions, input);
    if ((without && !sameCounts(without, off)) || (withModel && !sameCounts(withModel, on))) {
      throw new GpError('GP_INTERNAL', `round ${round} counted other findings or alerts than round 1 on the same input`);
    }
    if (!without || off.seconds < without.seconds) without = off;
    if (!withModel || on.seconds < withModel.seconds) withModel = on;
  }
  for (const [name, run] of [['without the model', without!], ['with the model', withModel!]] as const) {
    if (run.accepted !== options.readings) throw new GpError('GP_INTERNAL', `the engine ${name} accepted ${run.accepted} of ${options.readings} readings`);
  }
  const off = without!;
  const on = withModel!;
  return {
    model: { path: options.modelPath, kind: model.kind, version: model.version, trees: model.trees.length, features: model.features.length, threshold: model.threshold },
    readings: options.readings,
    machines: options.machines,
    bytes: input.length,
    rounds: options.rounds,
    bare: { seconds: bareSeconds, rate: options.readings / bareSeconds },
    withoutModel: off,
    withModel: on,
    modelFindings: on.findings - off.findings,
    modelAlerts: on.alertsOpened[MODEL_ALERT_TYPE] ?? 0,
    modelCostMicroseconds: ((on.seconds - off.seconds) / options.readings) * 1e6,
    ratio: on.rate / off.rate,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
  };
}

export function formatModelBench(r: ModelBenchResult): string {
  const alerts = (run: ModelBenchRun): string => Object.values(run.alertsOpened).reduce((sum, n) => sum + n, 0).toLocaleString('en');
  return [
    `model            ${r.model.kind} ${r.model.version}: ${r.model.trees} trees, ${r.model.features} features, threshold ${r.model.threshold}`,
    `input            ${r.readings.toLocaleString('en')} machine readings, ${r.machines.toLocaleString('en')} machines, ${(r.bytes / 2 ** 20).toFixed(0)} MiB NDJSON in memory`,
    `bare parse       ${formatRate(r.bare.rate)} readings/s  (${r.bare.seconds.toFixed(2)} s: split lines + JSON.parse)`,
    `engine           ${formatRate(r.withoutModel.rate)} readings/s  (${r.withoutModel.seconds.toFixed(2)} s: machines stream, default windows, detectors and alerts)`,
    `engine + model   ${formatRate(r.withModel.rate)} readings/s  (${r.withModel.seconds.toFixed(2)} s: the same, with the model detector scoring every reading)`,
    `model cost       ${r.modelCostMicroseconds.toFixed(2)} µs per reading; ${(r.ratio * 100).toFixed(1)}% of the rate without it (fastest of ${r.rounds} rounds each)`,
    `outputs          without the model ${r.withoutModel.findings.toLocaleString('en')} findings, ${alerts(r.withoutModel)} alerts; ` +
      `with it ${r.withModel.findings.toLocaleString('en')} findings, ${alerts(r.withModel)} alerts (model: ${r.modelFindings.toLocaleString('en')} findings, ${r.modelAlerts.toLocaleString('en')} alerts)`,
    `memory           peak RSS ${r.peakRssMb.toFixed(0)} MiB (includes the input buffer)`,
  ].join('\n');
}
