/**
 * The telemetry simulator: meters and machines with realistic daily and weekly behaviour,
 * injected anomalies, and a labels file that says exactly what was injected where, so that
 * detectors can be scored (`gridpulse eval`).
 *
 * Lines come out in arrival order: event-time order, except for the injected late readings,
 * duplicate copies and malformed lines, which sit where they arrived. Everything is a pure
 * function of the options: the same seed gives byte-identical telemetry and labels.
 *
 * Load shapes and noise: see `simulator-meters.ts`; machines: `simulator-machines.ts`;
 * anomalies and their sizes: `simulator-anomalies.ts` and `describeAnomalyModel()`.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { GpError } from '../model/index.js';
import {
  ANOMALY_SEPARATION_MS,
  ANOMALY_TYPES,
  AnomalyPlacer,
  type AnomalyDraw,
  type AnomalyLabel,
  type AnomalyType,
  MACHINE_ANOMALY_TYPES,
  METER_ANOMALY_TYPES,
  type MalformedVariant,
  type ReadingGrid,
  type ScheduledAnomaly,
  type SimulationLabels,
  anomalyCount,
  drawMachineAnomaly,
  drawMeterAnomaly,
  placeAll,
} from './simulator-anomalies.js';
import {
  MACHINE_PURPOSE_ANOMALY,
  MachineModel,
  type MachineProfile,
  createMachineProfile,
  machineLine,
  planTools,
} from './simulator-machines.js';
import {
  MeterNoise,
  type MeterProfile,
  type MeterValues,
  PURPOSE_ANOMALY,
  createMeterProfile,
  meterLine,
  meterLineFields,
} from './simulator-meters.js';
import { type SimulationOptions, type SimulationOptionsInput, resolveSimulationOptions } from './simulator-options.js';
import { SimulationRandom, deriveSeed } from './simulator-random.js';

const DAY_MS = 86_400_000;
const YEAR_MS = 365.25 * DAY_MS;

/** What a run produced. */
export interface SimulationSummary {
  /** Lines written, extra lines (duplicates, malformed) included. */
  lines: number;
  /** Readings written once each (late ones included, gaps excluded). */
  readings: number;
  meters: number;
  machines: number;
  seed: number;
  start: number;
  end: number;
  intervalMs: number;
  /** Labels per anomaly type. */
  anomalies: Record<AnomalyType, number>;
  /** Anomalies that found no free place (very high `--anomalies` rates on short runs). */
  skippedAnomalies: number;
  /** Where the telemetry and labels were written (file runs only). */
  out?: string;
  labelsPath?: string;
}

/** The in-memory form: iterate `lines` once; afterwards `labels()` and `summary()` are complete. */
export interface SimulationStream {
  options: SimulationOptions;
  lines: Iterable<string>;
  labels: () => SimulationLabels;
  summary: () => SimulationSummary;
}

/** A line waiting for its arrival time: a late reading, a duplicate copy, a malformed line. */
interface PendingLine {
  arrival: number;
  sequence: number;
  text: string;
  anomaly: ScheduledAnomaly;
}

/** Min-heap of pending lines by (arrival, sequence): ties keep the order they were made in. */
class PendingLines {
  private readonly items: PendingLine[] = [];

  get size(): number {
    return this.items.length;
  }

  peekArrival(): number {
    return this.items[0]?.arrival ?? Number.POSITIVE_INFINITY;
  }

  push(item: PendingLine): void {
    const items = this.items;
    items.push(item);
    let child = items.length - 1;
    while (child > 0) {
      const parent = (child - 1) >> 1;
      const above = items[parent];
      if (above === undefined || !before(item, above)) break;
      items[child] = above;
      child = parent;
    }
    items[child] = item;
  }

  pop(): PendingLine | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    let parent = 0;
    for (;;) {
      const left = parent * 2 + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const leftItem = items[left];
      const rightItem = items[right];
      if (leftItem === undefined) break;
      let child = left;
      let childItem = leftItem;
      if (rightItem !== undefined && before(rightItem, leftItem)) {
        child = right;
        childItem = rightItem;
      }
      if (!before(childItem, last)) break;
      items[parent] = childItem;
      parent = child;
    }
    items[parent] = last;
    return top;
  }
}

function before(a: PendingLine, b: PendingLine): boolean {
  return a.arrival < b.arrival || (a.arrival === b.arrival && a.sequence < b.sequence);
}

/** What every device does per reading: return its own line, or nothing, and queue extra lines. */
interface Device {
  stream: 'power' | 'machines';
  key: string;
  order: number;
  grid: ReadingGrid;
  anomalies: ScheduledAnomaly[];
  /** Anomalies that found no free place on this device. */
  skippedAnomalies: number;
  /** The line of reading `index` at `time`; undefined when the reading is not written (gap, late). */
  reading(index: number, time: number, queue: (text: string, arrival: number, anomaly: ScheduledAnomaly) => void): string | undefined;
}

function gridFor(options: SimulationOptions, phaseMs: number): ReadingGrid {
  const firstTime = options.start + phaseMs;
  const end = options.start + Math.round(options.days * DAY_MS);
  return { firstTime, count: Math.max(0, Math.ceil((end - firstTime) / options.intervalMs)), intervalMs: options.intervalMs };
}

/** Anomalies start after the warm-up and end an hour before the run does (time to be detected). */
function eligibleRange(options: SimulationOptions): { firstIndex: number; lastTime: number } {
  const end = options.start + Math.round(options.days * DAY_MS);
  return { firstIndex: Math.ceil(options.warmupMs / options.intervalMs), lastTime: end - ANOMALY_SEPARATION_MS };
}

/** The anomaly covering reading `index`, walking a cursor forward through a time-ordered list. */
class AnomalyCursor {
  private position = 0;
  constructor(private readonly anomalies: ScheduledAnomaly[]) {}
  at(index: number): ScheduledAnomaly | undefined {
    let current = this.anomalies[this.position];
    while (current !== undefined && current.lastIndex < index) {
      this.position += 1;
      current = this.anomalies[this.position];
    }
    return current !== undefined && current.firstIndex <= index ? current : undefined;
  }
}

function createMeter(options: SimulationOptions, index: number): Device {
  const profile = createMeterProfile(options.seed, index, options.intervalMs);
  const grid = gridFor(options, profile.phaseMs);
  const random = new SimulationRandom(deriveSeed(options.seed, 1, index, PURPOSE_ANOMALY));
  const { anomalies, skipped } = scheduleMeter(options, grid, random);
  const noise = new MeterNoise(options.seed, profile, options.intervalMs);
  const cursor = new AnomalyCursor(anomalies);
  const values: MeterValues = { level: 0, usageKw: 0, voltage: 0, powerFactor: 0 };
  return {
    stream: 'power',
    key: profile.meterId,
    order: profile.phaseMs * 2,
    grid,
    anomalies,
    skippedAnomalies: skipped,
    reading(readingIndex, time, queue) {
      noise.next(time, values);
      const anomaly = cursor.at(readingIndex);
      let usage = values.usageKw;
      switch (anomaly?.type) {
        case 'spike':
        case 'drop':
        case 'sustained_high':
          usage *= 1 + anomaly.magnitude;
          break;
        case 'outage':
          // What still flows: up to the label's residual fraction of the level.
          usage = values.level * (1 + anomaly.magnitude) * random.uniform(0.5, 1);
          break;
        case 'gap':
          return undefined;
        default:
          break;
      }
      const line = meterLine(meterLineFields(profile, time, usage, values.voltage, values.powerFactor));
      switch (anomaly?.type) {
        case 'late':
          queue(line, time + anomaly.delayMs, anomaly);
          return undefined;
        case 'duplicate':
          queue(line, time + anomaly.delayMs, anomaly);
          return line;
        case 'malformed':
          queue(corruptLine(line, profile, time, anomaly.variant as MalformedVariant, random), time + anomaly.delayMs, anomaly);
          return line;
        default:
          return line;
      }
    },
  };
}

function scheduleMeter(options: SimulationOptions, grid: ReadingGrid, random: SimulationRandom): { anomalies: ScheduledAnomaly[]; skipped: number } {
  if (options.anomalyRate <= 0) return { anomalies: [], skipped: 0 };
  const { firstIndex, lastTime } = eligibleRange(options);
  const placer = new AnomalyPlacer(random, grid, firstIndex, lastTime);
  const eligibleMs = lastTime - (grid.firstTime + firstIndex * grid.intervalMs);
  const draws: AnomalyDraw[] = [];
  for (const type of METER_ANOMALY_TYPES) {
    const count = anomalyCount(random, options.anomalyRate, eligibleMs);
    for (let i = 0; i < count; i += 1) draws.push(drawMeterAnomaly(type, random, options.intervalMs));
  }
  return { anomalies: placeAll(placer, draws), skipped: placer.skipped };
}

/** One corrupt line beside a real reading (the real one is written as well). */
function corruptLine(line: string, profile: MeterProfile, time: number, variant: MalformedVariant, random: SimulationRandom): string {
  switch (variant) {
    case 'truncated':
      // Any proper prefix of an object misses its closing brace, so it never parses.
      return line.slice(0, random.integer(10, line.length - 5));
    case 'wrong_type':
      return line.replace(/"usageKw":[^,]+/, `"usageKw":${JSON.stringify(random.pick(['abc', 'n/a', '12,5', '']))}`);
    case 'missing_key':
      return line.replace(`"meterId":"${profile.meterId}",`, '');
    case 'missing_time':
      return line.replace(`"timestamp":${time},`, '');
    case 'non_finite':
      return line.replace(/"usageKw":[^,]+/, `"usageKw":${random.pick(['NaN', 'Infinity', '-Infinity'])}`);
    case 'future_time':
      return line.replace(`"timestamp":${time},`, `"timestamp":${time + Math.round(random.integer(2, 30) * YEAR_MS)},`);
  }
}

function createMachine(options: SimulationOptions, index: number): Device {
  const profile: MachineProfile = createMachineProfile(options.seed, index, options.intervalMs);
  const grid = gridFor(options, profile.phaseMs);
  const random = new SimulationRandom(deriveSeed(options.seed, 2, index, MACHINE_PURPOSE_ANOMALY));
  const { firstIndex, lastTime } = eligibleRange(options);
  const placer = new AnomalyPlacer(random, grid, firstIndex, lastTime);
  const plan = planTools(random, grid, profile.initialWear, options.anomalyRate, firstIndex, lastTime, placer);
  const anomalies: ScheduledAnomaly[] = [...plan.episodes];
  if (options.anomalyRate > 0) {
    const eligibleMs = lastTime - (grid.firstTime + firstIndex * grid.intervalMs);
    const draws: AnomalyDraw[] = [];
    for (const type of MACHINE_ANOMALY_TYPES) {
      if (type === 'tool_wear') continue;
      const count = anomalyCount(random, options.anomalyRate, eligibleMs);
      for (let i = 0; i < count; i += 1) draws.push(drawMachineAnomaly(type, random, options.intervalMs));
    }
    anomalies.push(...placeAll(placer, draws));
    anomalies.sort((a, b) => a.firstIndex - b.firstIndex);
  }
  const model = new MachineModel(options.seed, index, options.intervalMs);
  const cursor = new AnomalyCursor(anomalies);
  const minutesPerReading = options.intervalMs / 60_000;
  let tool = 0;
  return {
    stream: 'machines',
    key: profile.machineId,
    // Machines after meters at the same instant.
    order: profile.phaseMs * 2 + 1,
    grid,
    anomalies,
    skippedAnomalies: placer.skipped,
    reading(readingIndex, time) {
      while (tool + 1 < plan.starts.length && (plan.starts[tool + 1] ?? Number.POSITIVE_INFINITY) <= readingIndex) tool += 1;
      const wear = (readingIndex - (plan.starts[tool] ?? 0)) * minutesPerReading;
      return machineLine(profile, time, model.next(time, wear, cursor.at(readingIndex)));
    },
  };
}

function emptyCounts(): Record<AnomalyType, number> {
  const counts = {} as Record<AnomalyType, number>;
  for (const type of ANOMALY_TYPES) counts[type] = 0;
  return counts;
}

/**
 * Generates the telemetry in memory, one line (without the newline) at a time. Nothing is
 * held but the devices' state and the few lines waiting for their arrival time, so it streams
 * millions of lines in constant memory.
 *
 * @example
 * const run = simulateLines({ meters: 5, days: 3, seed: 7 });
 * for (const line of run.lines) process.stdout.write(`${line}\n`);
 * const labels = run.labels(); // complete once the lines were consumed
 */
export function simulateLines(input: SimulationOptionsInput = {}): SimulationStream {
  const options = resolveSimulationOptions(input);
  const devices: Device[] = [];
  for (let i = 0; i < options.meters; i += 1) devices.push(createMeter(options, i));
  for (let i = 0; i < options.machines; i += 1) devices.push(createMachine(options, i));
  // Within each interval devices report in the order of their phase offset.
  const ordered = [...devices].sort((a, b) => a.order - b.order);
  const end = options.start + Math.round(options.days * DAY_MS);
  let lineCount = 0;
  let readingCount = 0;
  let started = false;
  let finished = false;

  function* generate(): Generator<string> {
    const pending = new PendingLines();
    let sequence = 0;
    const queue = (text: string, arrival: number, anomaly: ScheduledAnomaly): void => {
      pending.push({ arrival, sequence: sequence++, text, anomaly });
    };
    // Numbers the line and records it in its label (late readings are readings, just out of place).
    const release = (waiting: PendingLine): string => {
      lineCount += 1;
      if (waiting.anomaly.type === 'late') readingCount += 1;
      waiting.anomaly.offsets.push(lineCount);
      return waiting.text;
    };
    for (let tickStart = options.start, index = 0; tickStart < end; tickStart += options.intervalMs, index += 1) {
      for (const device of ordered) {
        const time = device.grid.firstTime + index * options.intervalMs;
        if (time >= end) continue;
        const line = device.reading(index, time, queue);
        if (line === undefined) continue;
        while (pending.size > 0 && pending.peekArrival() < time) {
          const waiting = pending.pop();
          if (waiting === undefined) break;
          yield release(waiting);
        }
        lineCount += 1;
        readingCount += 1;
        yield line;
      }
    }
    for (let waiting = pending.pop(); waiting !== undefined; waiting = pending.pop()) yield release(waiting);
    finished = true;
  }

  const lines: Iterable<string> = {
    [Symbol.iterator]: () => {
      // Device state moves forward as lines are made: a second pass would continue, not repeat.
      if (started) throw new GpError('GP_INTERNAL', 'simulateLines: the lines can be iterated only once; call simulateLines again');
      started = true;
      return generate();
    },
  };

  const requireFinished = (what: string): void => {
    if (!finished) throw new GpError('GP_INTERNAL', `simulateLines: ${what}() is complete only after every line was read`);
  };

  const labels = (): SimulationLabels => {
    requireFinished('labels');
    const anomalies: Array<Omit<AnomalyLabel, 'id'>> = [];
    for (const device of devices) {
      for (const anomaly of device.anomalies) {
        const label: Omit<AnomalyLabel, 'id'> = {
          type: anomaly.type,
          stream: device.stream,
          key: device.key,
          start: anomaly.startTime,
          end: anomaly.endTime,
          magnitude: anomaly.magnitude,
        };
        if (anomaly.offsets.length > 0) label.offsets = [...anomaly.offsets];
        if (anomaly.variant !== undefined) label.variant = anomaly.variant;
        anomalies.push(label);
      }
    }
    anomalies.sort(
      (a, b) => a.start - b.start || compareText(a.stream, b.stream) || compareText(a.key, b.key) || compareText(a.type, b.type),
    );
    return {
      version: 1,
      seed: options.seed,
      start: options.start,
      end,
      intervalMs: options.intervalMs,
      meters: options.meters,
      machines: options.machines,
      warmupMs: options.warmupMs,
      anomalyRate: options.anomalyRate,
      lines: lineCount,
      anomalies: anomalies.map((label, i) => ({ id: `a-${String(i + 1).padStart(6, '0')}`, ...label })),
    };
  };

  const summary = (): SimulationSummary => {
    requireFinished('summary');
    const counts = emptyCounts();
    let skipped = 0;
    for (const device of devices) {
      for (const anomaly of device.anomalies) counts[anomaly.type] += 1;
      skipped += device.skippedAnomalies;
    }
    return {
      lines: lineCount,
      readings: readingCount,
      meters: options.meters,
      machines: options.machines,
      seed: options.seed,
      start: options.start,
      end,
      intervalMs: options.intervalMs,
      anomalies: counts,
      skippedAnomalies: skipped,
    };
  };

  return { options, lines, labels, summary };
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Options of a run written to files. */
export interface SimulateToFilesOptions extends SimulationOptionsInput {
  /** Telemetry output; a name ending in `.gz` is gzip-compressed. */
  out: string;
  /** Labels output (JSON). */
  labels: string;
}

/**
 * Runs the simulator into files: NDJSON telemetry (gzip when the name ends in `.gz`) and the
 * labels JSON. Streams with back-pressure, so memory stays flat for millions of lines.
 *
 * @example
 * const summary = await simulate({ meters: 200, days: 7, intervalMs: '60s', out: 'sim.ndjson.gz', labels: 'labels.json' });
 * console.error(`${summary.lines} lines`);
 */
export async function simulate(options: SimulateToFilesOptions): Promise<SimulationSummary> {
  const run = simulateLines(options);
  try {
    await createDirectory(dirname(options.out));
    await createDirectory(dirname(options.labels));
    const target: Writable = createWriteStream(options.out);
    const source = Readable.from(chunked(run.lines), { objectMode: false });
    // Fastest gzip level: twice the speed of the default for a third more bytes, and the run
    // is mostly about producing test input quickly.
    if (options.out.endsWith('.gz')) await pipeline(source, createGzip({ level: 1 }), target);
    else await pipeline(source, target);
    await writeFile(options.labels, formatLabels(run.labels()));
  } catch (error) {
    throw fileError(error, options);
  }
  return { ...run.summary(), out: options.out, labelsPath: options.labels };
}

/**
 * Creates a missing output directory one level at a time. (Node's recursive mkdir can spin for
 * ever when a parent refuses new entries, as /proc does; here that is a plain error.)
 */
async function createDirectory(path: string): Promise<void> {
  try {
    await stat(path);
    return;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const parent = dirname(path);
  if (parent !== path) await createDirectory(parent);
  await mkdir(path);
}

/** Joins lines into chunks of about 64 KiB: one write per line would dominate the run time. */
function* chunked(lines: Iterable<string>): Generator<string> {
  let buffer = '';
  for (const line of lines) {
    buffer += `${line}\n`;
    if (buffer.length >= 65_536) {
      yield buffer;
      buffer = '';
    }
  }
  if (buffer.length > 0) yield buffer;
}

/** Labels JSON with one anomaly per line: readable, diffable, and still small for thousands of labels. */
export function formatLabels(labels: SimulationLabels): string {
  const { anomalies, ...header } = labels;
  const head = JSON.stringify(header, null, 2).slice(0, -2);
  const body = anomalies.map((label) => `    ${JSON.stringify(label)}`).join(',\n');
  return `${head},\n  "anomalies": [${anomalies.length > 0 ? `\n${body}\n  ` : ''}]\n}\n`;
}

function fileError(error: unknown, options: SimulateToFilesOptions): unknown {
  if (error instanceof GpError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const path = (error as NodeJS.ErrnoException | undefined)?.path ?? options.out;
  if (code === 'ENOENT') {
    return new GpError('GP_FILE_NOT_FOUND', `cannot write ${path}: its directory cannot be created`, { path }, { cause: error });
  }
  if (code === 'EACCES' || code === 'EISDIR' || code === 'EROFS') {
    return new GpError('GP_INPUT_INVALID', `cannot write ${path}: ${code}`, { path, field: 'out' }, { cause: error });
  }
  return error;
}
