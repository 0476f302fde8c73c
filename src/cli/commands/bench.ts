import type { Command } from 'commander';
import { loadConfig, parseDuration } from '../../config/index.js';
import type { StreamSchema } from '../../model/index.js';
import { SimulationRandom } from '../../ingest/index.js';
import { createPipeline } from '../pipeline.js';
import { formatRate, parseCount } from '../format.js';
import { formatHttpBench, parseHttpBenchOptions, runHttpBench } from './bench-http.js';
import { formatKafkaBench, runKafkaBench } from './bench-kafka.js';
import { formatModelBench, runModelBench } from './bench-model.js';
import { formatStoreBench, runStoreBench } from './bench-stores.js';

export interface BenchOptions {
  readings: number;
  meters: number;
  intervalMs: number;
  partitions: number;
  seed: number;
  /** Also measure the engine with parts switched off (see `BenchBreakdown`). */
  breakdown?: boolean;
}

/**
 * Where the engine's time goes: the same input through the engine with its windows, its
 * detectors or both switched off (everything else — decoding, validation, deduplication, the
 * clock and lateness, the alert managers — stays on), each as readings/s, CPU seconds and % of
 * the bare loop, measured in the same run as the full engine.
 */
export interface BenchBreakdown {
  variant: 'core' | 'windows' | 'detectors';
  description: string;
  seconds: number;
  rate: number;
  cpuSeconds: number;
  /** Rate as a fraction of the bare-parse rate (wall time). */
  ratio: number;
  /** CPU microseconds per reading. */
  cpuMicros: number;
  /** What the variant produced (0 aggregates without windows, 0 findings without detectors). */
  aggregates: number;
  findings: number;
}

export interface BenchResult {
  readings: number;
  meters: number;
  bytes: number;
  bareSeconds: number;
  bareRate: number;
  engineSeconds: number;
  engineRate: number;
  ratio: number;
  /**
   * Process CPU time (user + system, every thread: GC and compiler included) of the faster bare
   * round and of the engine. On a machine shared with other work the CPU-time ratio is steadier
   * than the wall-clock one, which counts the time the process waited for a core.
   */
  bareCpuSeconds: number;
  engineCpuSeconds: number;
  cpuRatio: number;
  aggregates: number;
  findings: number;
  alertTransitions: number;
  peakRssMb: number;
  heapAfterMb: number;
  /** With `breakdown`: the engine with parts switched off, in this order: core, +windows, +detectors. */
  breakdown?: BenchBreakdown[];
}

const VARIANTS: ReadonlyArray<{ variant: BenchBreakdown['variant']; description: string; windows: boolean; detectors: boolean }> = [
  { variant: 'core', description: 'no windows, no detectors: decode, validate, dedup, clock, lateness', windows: false, detectors: false },
  { variant: 'windows', description: 'core + the 4 default windows (no detectors)', windows: true, detectors: false },
  { variant: 'detectors', description: 'core + the default detectors and alerts (no windows)', windows: false, detectors: true },
];

/**
 * NDJSON power readings in one buffer: `meters` meters reporting every `intervalMs`, each with its
 * own level and daily shape plus noise, in event-time order (phases spread over the interval).
 */
export function generateBenchInput(options: BenchOptions): Buffer {
  const random = new SimulationRandom(options.seed);
  const levels = Array.from({ length: options.meters }, () => random.logUniform(0.5, 200));
  const pfs = Array.from({ length: options.meters }, () => random.uniform(0.85, 0.99));
  const ids = Array.from({ length: options.meters }, (_, m) => `m-${String(m + 1).padStart(5, '0')}`);
  const sites = Array.from({ length: options.meters }, (_, m) => `s-${String(Math.floor(m / 10) + 1).padStart(4, '0')}`);
  const t0 = Date.UTC(2025, 0, 6);
  const chunks: Buffer[] = [];
  let lines: string[] = [];
  for (let i = 0; i < options.readings; i++) {
    const m = i % options.meters;
    const step = Math.floor(i / options.meters);
    const time = t0 + step * options.intervalMs + Math.floor((m * options.intervalMs) / options.meters);
    const hour = (time / 3_600_000) % 24;
    const shape = 0.7 + 0.3 * Math.sin(((hour - 8) / 24) * 2 * Math.PI);
    const kw = levels[m]! * shape * (1 + 0.03 * random.normal());
    const voltage = 230 + 2 * random.normal();
    const pf = pfs[m]!;
    const current = (kw * 1000) / (voltage * pf);
    lines.push(
      `{"meterId":"${ids[m]}","siteId":"${sites[m]}","timestamp":${time},"usageKw":${kw.toFixed(3)},"voltage":${voltage.toFixed(1)},"current":${current.toFixed(2)},"pf":${pf.toFixed(3)}}`,
    );
    if (lines.length === 10_000) {
      chunks.push(Buffer.from(lines.join('\n') + '\n'));
      lines = [];
    }
  }
  if (lines.length > 0) chunks.push(Buffer.from(lines.join('\n') + '\n'));
  return Buffer.concat(chunks);
}

/** The baseline: split the buffer into lines and JSON.parse each, nothing else. */
function bareLoop(input: Buffer): number {
  let checksum = 0;
  let start = 0;
  for (;;) {
    const end = input.indexOf(10, start);
    if (end < 0) break;
    const record = JSON.parse(input.toString('utf8', start, end)) as { usageKw: number };
    checksum += record.usageKw;
    start = end + 1;
  }
  return checksum;
}

export async function runBench(options: BenchOptions, log: (line: string) => void = () => {}): Promise<BenchResult> {
  const config = loadConfig({ env: {} });
  const schema = config.streams.power!;
  log(`generating ${options.readings.toLocaleString('en')} readings over ${options.meters.toLocaleString('en')} meters …`);
  const input = generateBenchInput(options);
  let cpuSeconds = 0;
  const measure = (fn: () => void): number => {
    const cpu = process.cpuUsage();
    const t = process.hrtime.bigint();
    fn();
    const seconds = Number(process.hrtime.bigint() - t) / 1e9;
    const used = process.cpuUsage(cpu);
    cpuSeconds = (used.user + used.system) / 1e6;
    return seconds;
  };

  // Warm both paths on a slice so the JIT has seen them, then measure the full input.
  const warm = input.subarray(0, input.indexOf(10, Math.min(input.length - 1, 5_000_000)) + 1);
  bareLoop(warm);
  const warmPipeline = createPipeline({ streams: [schema], partitions: options.partitions });
  feed(warmPipeline.router, warm);
  await warmPipeline.finish();

  log('measuring the bare split + JSON.parse loop …');
  const bareRounds = [0, 1].map(() => [measure(() => bareLoop(input)), cpuSeconds] as const);
  const [bareSeconds, bareCpuSeconds] = bareRounds[0]![0] <= bareRounds[1]![0] ? bareRounds[0]! : bareRounds[1]!;
  log('measuring the full engine (all default windows, detectors and alerts of the power stream) …');
  const pipeline = createPipeline({ streams: [schema], partitions: options.partitions });
  const engineSeconds = measure(() => feed(pipeline.router, input));
  const engineCpuSeconds = cpuSeconds;
  const heapAfterMb = process.memoryUsage().heapUsed / 2 ** 20;
  const summary = await pipeline.finish();
  const stats = summary.streams.power!;
  if (stats.accepted !== options.readings) throw new Error(`engine accepted ${stats.accepted} of ${options.readings} readings`);
  const peakRssMb = process.resourceUsage().maxRSS / 1024;
  let breakdown: BenchBreakdown[] | undefined;
  if (options.breakdown) {
    breakdown = [];
    for (const v of VARIANTS) {
      log(`measuring the engine with parts switched off: ${v.description} …`);
      const partial: StreamSchema = { ...schema, windows: v.windows ? schema.windows : [], detectors: v.detectors ? schema.detectors : [] };
      const run = createPipeline({ streams: [partial], partitions: options.partitions });
      const seconds = measure(() => feed(run.router, input));
      const cpu = cpuSeconds;
      const done = await run.finish();
      const counts = done.streams.power!;
      if (counts.accepted !== options.readings) throw new Error(`engine (${v.variant}) accepted ${counts.accepted} of ${options.readings} readings`);
      breakdown.push({
        variant: v.variant,
        description: v.description,
        seconds,
        rate: options.readings / seconds,
        cpuSeconds: cpu,
        ratio: bareSeconds / seconds,
        cpuMicros: (cpu / options.readings) * 1e6,
        aggregates: counts.aggregates,
        findings: counts.findings,
      });
    }
  }
  return {
    readings: options.readings,
    meters: options.meters,
    bytes: input.length,
    bareSeconds,
    bareRate: options.readings / bareSeconds,
    engineSeconds,
    engineRate: options.readings / engineSeconds,
    ratio: bareSeconds / engineSeconds,
    bareCpuSeconds,
    engineCpuSeconds,
    cpuRatio: bareCpuSeconds / engineCpuSeconds,
    aggregates: stats.aggregates,
    findings: stats.findings,
    alertTransitions: summary.alertTransitions,
    peakRssMb,
    heapAfterMb,
    ...(breakdown === undefined ? {} : { breakdown }),
  };
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

export function formatBench(r: BenchResult): string {
  return [
    `input            ${r.readings.toLocaleString('en')} readings, ${r.meters.toLocaleString('en')} meters, ${(r.bytes / 2 ** 20).toFixed(0)} MiB NDJSON in memory`,
    `bare parse       ${formatRate(r.bareRate)} readings/s  (${r.bareSeconds.toFixed(2)} s: split lines + JSON.parse)`,
    `full engine      ${formatRate(r.engineRate)} readings/s  (${r.engineSeconds.toFixed(2)} s: decode, validate, 4 windows, detectors, alerts)`,
    `ratio            ${(r.ratio * 100).toFixed(1)}% of the bare-parse rate (goal ≥ 50%)`,
    `cpu time         bare ${r.bareCpuSeconds.toFixed(2)} s, engine ${r.engineCpuSeconds.toFixed(2)} s: ${(r.cpuRatio * 100).toFixed(1)}% (process CPU, all threads; steadier than wall time on a busy machine)`,
    `outputs          ${r.aggregates.toLocaleString('en')} aggregates, ${r.alertTransitions.toLocaleString('en')} alert transitions`,
    `memory           peak RSS ${r.peakRssMb.toFixed(0)} MiB (includes the input buffer), heap after run ${r.heapAfterMb.toFixed(0)} MiB`,
    ...(r.breakdown === undefined ? [] : formatBreakdown(r)),
  ].join('\n');
}

/** The breakdown table: each variant's rate and CPU per reading, and what windows and detectors add to the core. */
function formatBreakdown(r: BenchResult): string[] {
  const rows = r.breakdown!;
  const micros = (cpu: number): string => `${((cpu / r.readings) * 1e6).toFixed(2)} µs`;
  const bareMicros = micros(r.bareCpuSeconds);
  const core = rows.find((b) => b.variant === 'core')!;
  const row = (label: string, rate: number, ratio: number, cpu: string, note = ''): string =>
    `  ${label.padEnd(13)}${formatRate(rate).padStart(10)}   ${`${(ratio * 100).toFixed(1)}%`.padStart(9)}   ${cpu.padStart(9)}${note === '' ? '' : `  (${note})`}`;
  const lines = ['', 'breakdown        readings/s   % of bare   CPU per reading', row('bare parse', r.bareRate, 1, bareMicros)];
  for (const b of rows) lines.push(row(b.variant, b.rate, b.ratio, `${b.cpuMicros.toFixed(2)} µs`, b.description));
  lines.push(row('full engine', r.engineRate, r.ratio, micros(r.engineCpuSeconds)));
  const added = (variant: BenchBreakdown['variant']): string => {
    const b = rows.find((x) => x.variant === variant)!;
    return `${(b.cpuMicros - core.cpuMicros).toFixed(2)} µs`;
  };
  lines.push(`  windows add ${added('windows')} per reading to the core, detectors ${added('detectors')}; both together ${((r.engineCpuSeconds / r.readings) * 1e6 - core.cpuMicros).toFixed(2)} µs`);
  return lines;
}

export function register(program: Command): void {
  program
    .command('bench')
    .description('Measure the engine against a bare split + JSON.parse loop on the same in-memory NDJSON, in one run, on one core.')
    .option('--readings <n>', 'readings to generate', '2000000')
    .option('--meters <n>', 'meters they come from', '10000')
    .option('--interval <duration>', 'reporting interval of each meter', '10s')
    .option('--partitions <n>', 'engine partitions', '4')
    .option('--seed <n>', 'seed of the generated data', '1')
    .option('--json', 'print the figures as JSON')
    .option('--breakdown', 'also run the engine without windows, without detectors and without both, on the same input in the same run: where its time goes')
    .option('--http', 'instead: post readings over HTTP to `gridpulse up` in a second process and measure accepted readings/s, ingest latency and POST→SSE alert latency')
    .option('--duration <duration>', 'with --http: how long to load the platform', '60s')
    .option('--batch <n>', 'with --http: readings per request', '500')
    .option('--concurrency <n>', 'with --http: requests in flight', '8')
    .option('--rate <n>', 'with --http: offered readings/s over all connections (0: as fast as the server answers)', '0')
    .option(
      '--stores [urls]',
      'instead: bulk write rates of stores (comma-separated URLs of scratch locations; rows are left there) beside an embedded DuckDB baseline',
    )
    .option('--store-rows <n>', 'with --stores: raw readings to write (and a quarter as many 1-minute aggregates)', '200000')
    .option('--model <file>', "instead: the cost of a trained model (a file from `gridpulse train`): machines-stream readings/s with the stream's default detectors and with the model detector added, beside the bare-parse baseline")
    .option('--machines <n>', 'with --model: machines the readings come from', '1000')
    .option('--kafka <url>', 'instead: end-to-end readings/s from a Kafka topic (kafka://host:port) through `gridpulse process` into DuckDB (1 process) and PostgreSQL (1 and 2 processes, with --bench-store), beside a bare consumer of the same topic; --readings defaults to 400000 here')
    .option('--bench-store <url>', 'with --kafka: a PostgreSQL server (postgres://user@host:port) where the bench creates and drops scratch databases')
    .action(async (opts: { readings: string; meters: string; interval: string; partitions: string; seed: string; json?: boolean; breakdown?: boolean; http?: boolean; duration: string; batch: string; concurrency: string; rate: string; stores?: string | boolean; storeRows: string; model?: string; machines: string; kafka?: string; benchStore?: string }, command: Command) => {
      if (opts.kafka !== undefined) {
        const readings = command.getOptionValueSource('readings') === 'default' ? 400_000 : parseCount(opts.readings, '--readings');
        const kafkaOptions = { kafka: opts.kafka, readings, meters: parseCount(opts.meters, '--meters'), intervalMs: parseDuration(opts.interval), seed: parseCount(opts.seed, '--seed'), postgres: opts.benchStore };
        const result = await runKafkaBench(kafkaOptions, opts.json ? () => {} : (line) => process.stderr.write(`${line}\n`));
        process.stdout.write(opts.json ? `${JSON.stringify(result, null, 2)}\n` : `${formatKafkaBench(result)}\n`);
        return;
      }
      if (opts.model !== undefined) {
        const result = await runModelBench(
          {
            modelPath: opts.model,
            readings: parseCount(opts.readings, '--readings'),
            machines: parseCount(opts.machines, '--machines'),
            intervalMs: parseDuration(opts.interval),
            partitions: parseCount(opts.partitions, '--partitions'),
            seed: parseCount(opts.seed, '--seed'),
            rounds: 2,
          },
          opts.json ? () => {} : (line) => process.stderr.write(`${line}\n`),
        );
        process.stdout.write(opts.json ? `${JSON.stringify(result, null, 2)}\n` : `${formatModelBench(result)}\n`);
        return;
      }
      if (opts.stores !== undefined) {
        const rowCount = parseCount(opts.storeRows, '--store-rows');
        const result = await runStoreBench(
          {
            urls: typeof opts.stores === 'string' ? opts.stores.split(',').map((u) => u.trim()).filter((u) => u !== '') : [],
            readings: rowCount,
            aggregates: Math.max(1, Math.floor(rowCount / 4)),
            meters: Math.min(parseCount(opts.meters, '--meters'), rowCount),
            batch: 5000,
          },
          opts.json ? () => {} : (line) => process.stderr.write(`${line}\n`),
        );
        process.stdout.write(opts.json ? `${JSON.stringify(result, null, 2)}\n` : `${formatStoreBench(result)}\n`);
        return;
      }
      if (opts.http) {
        const httpOptions = parseHttpBenchOptions(opts);
        const result = await runHttpBench(httpOptions, opts.json ? () => {} : (line) => process.stderr.write(`${line}\n`));
        process.stdout.write(opts.json ? `${JSON.stringify(result, null, 2)}\n` : `${formatHttpBench(result, httpOptions)}\n`);
        return;
      }
      const result = await runBench(
        {
          readings: parseCount(opts.readings, '--readings'),
          meters: parseCount(opts.meters, '--meters'),
          intervalMs: parseDuration(opts.interval),
          partitions: parseCount(opts.partitions, '--partitions'),
          seed: parseCount(opts.seed, '--seed'),
          breakdown: opts.breakdown === true,
        },
        opts.json ? () => {} : (line) => process.stderr.write(`${line}\n`),
      );
      process.stdout.write(opts.json ? `${JSON.stringify(result, null, 2)}\n` : `${formatBench(result)}\n`);
    });
}
