/**
 * The anomaly model of the simulator: which anomalies exist, how large they are, and where they
 * are placed. Every anomaly is drawn on its own (magnitude, length, delay), so detectors are
 * evaluated on a spread of easy and hard cases rather than on one size.
 *
 * Meters (stream `power`), each drawn per anomaly:
 * - spike: usage +50 … +300 % of the local level for 1–3 readings (magnitude +0.5 … +3.0).
 * - drop: usage −40 … −90 % for 1–3 readings (magnitude −0.4 … −0.9).
 * - outage: usage below 2 % of the level (current ≈ 0) for 5–60 min while the meter keeps
 *   reporting (magnitude −0.98 … −0.999, the fraction lost).
 * - sustained_high: usage +30 … +80 % for 15 min – 2 h (magnitude +0.3 … +0.8).
 * - gap: the meter sends nothing for 1–12 expected readings (magnitude = readings missed;
 *   start/end = times of the first and last missing reading).
 * - late: one reading delayed by 1.5 intervals – 2 h, log-uniform, i.e. written where its event
 *   time + delay falls, after its device's next reading (magnitude = delay in seconds; end =
 *   arrival time).
 * - duplicate: one reading written twice, the identical copy less than half an interval later
 *   (magnitude 1; offsets = line of the copy).
 * - malformed: one extra corrupt line next to a real reading, which is still there: truncated
 *   JSON, a string where a number belongs, no meterId, no timestamp, NaN/Infinity in the text,
 *   or a timestamp 2–30 years in the future (magnitude 1; `variant` says which).
 * Machines (stream `machines`):
 * - overstrain: torque 66–72 Nm for 3–20 min with rpm lowered so that torque·ω stays within
 *   8.5–8.9 kW (magnitude = the episode's target torque, Nm).
 * - heat_dissipation: process − air temperature 7.5–8.4 K with rpm 1200–1375 for 10–60 min,
 *   air 1.5–3 K warmer than usual (magnitude = the episode's target difference, K).
 * - power_failure: torque·ω below 3.5 kW (high rpm, torque 4–10 Nm) or above 9.5 kW (torque
 *   58–64.5 Nm, rpm ≥ 1400) for 5–30 min (magnitude = the episode's target power, W).
 * - tool_wear: a tool kept in use until 205–240 min of wear, where normal tools are changed at
 *   100–195 min (start = first reading at ≥ 200 min, magnitude = highest wear, min).
 *
 * Placement: at rate 1, each device gets 3–6 anomalies of each of its types per week of
 * eligible time (rate scales this). None starts in the device's first `warmupMs` (default 24 h:
 * detectors learn a baseline first) or in the last hour of the run, and anomalies of one device
 * are at least 1 h apart, so each label is one clean case.
 */
import type { SimulationRandom } from './simulator-random.js';

export const METER_ANOMALY_TYPES = ['spike', 'drop', 'outage', 'sustained_high', 'gap', 'late', 'duplicate', 'malformed'] as const;
export const MACHINE_ANOMALY_TYPES = ['overstrain', 'heat_dissipation', 'power_failure', 'tool_wear'] as const;
export const ANOMALY_TYPES = [...METER_ANOMALY_TYPES, ...MACHINE_ANOMALY_TYPES] as const;
export type MeterAnomalyType = (typeof METER_ANOMALY_TYPES)[number];
export type MachineAnomalyType = (typeof MACHINE_ANOMALY_TYPES)[number];
export type AnomalyType = MeterAnomalyType | MachineAnomalyType;

export const MALFORMED_VARIANTS = ['truncated', 'wrong_type', 'missing_key', 'missing_time', 'non_finite', 'future_time'] as const;
export type MalformedVariant = (typeof MALFORMED_VARIANTS)[number];

/** One injected anomaly, as written to the labels file. */
export interface AnomalyLabel {
  /** `a-000001`, numbered in order of start time. */
  id: string;
  type: AnomalyType;
  stream: 'power' | 'machines';
  /** meterId or machine_id. */
  key: string;
  /** Event time of the first affected (or missing) reading, epoch ms. */
  start: number;
  /** Event time of the last affected reading; for `late`, the arrival time. */
  end: number;
  /** Size of the anomaly; its unit depends on the type (see `describeAnomalyModel`). */
  magnitude: number;
  /** 1-based line numbers of the affected lines: the late reading, the duplicate copy, the malformed line. */
  offsets?: number[];
  /** Sub-kind: the malformed variant, or `low`/`high` for power_failure. */
  variant?: string;
}

/** The labels file written next to the simulated telemetry. */
export interface SimulationLabels {
  version: 1;
  seed: number;
  /** Start and end of the simulated period, epoch ms. */
  start: number;
  end: number;
  intervalMs: number;
  meters: number;
  machines: number;
  warmupMs: number;
  anomalyRate: number;
  /** Lines in the telemetry file. */
  lines: number;
  anomalies: AnomalyLabel[];
}

/** Smallest time between two anomalies of one device (and between the last one and the end of the run). */
export const ANOMALY_SEPARATION_MS = 3_600_000;
const WEEK_MS = 7 * 86_400_000;
const MINUTE_MS = 60_000;
const PLACEMENT_TRIES = 200;

/**
 * One anomaly placed on a device's reading grid: readings `firstIndex` … `lastIndex` (for a
 * single-reading anomaly both equal). Filled in while the lines are generated: `offsets`.
 */
export interface ScheduledAnomaly {
  type: AnomalyType;
  firstIndex: number;
  lastIndex: number;
  magnitude: number;
  variant: MalformedVariant | 'low' | 'high' | undefined;
  /** late: arrival delay; duplicate, malformed: how long after the reading the extra line arrives. */
  delayMs: number;
  /** Type-specific targets drawn once per anomaly (machine profiles). */
  targets: number[];
  /** Event-time span reserved on the device (end includes a late reading's delay). */
  startTime: number;
  endTime: number;
  offsets: number[];
}

/** A device's readings: times are `firstTime + index × intervalMs` for index < count. */
export interface ReadingGrid {
  firstTime: number;
  count: number;
  intervalMs: number;
}

/** What a type-specific draw returns before placement. */
export interface AnomalyDraw {
  type: AnomalyType;
  readings: number;
  magnitude: number;
  variant: ScheduledAnomaly['variant'];
  delayMs: number;
  targets: number[];
}

function readingsFor(durationMs: number, intervalMs: number): number {
  return Math.max(1, Math.round(durationMs / intervalMs));
}

function round(value: number, decimals: number): number {
  const scale = 10 ** decimals;
  return Math.round(value * scale) / scale;
}

/** Draws the size of one meter anomaly (see the module comment for the ranges). */
export function drawMeterAnomaly(type: MeterAnomalyType, random: SimulationRandom, intervalMs: number): AnomalyDraw {
  const draw: AnomalyDraw = { type, readings: 1, magnitude: 1, variant: undefined, delayMs: 0, targets: [] };
  // Extra lines arrive after their reading but before the device's next one.
  const extraLineDelay = (): number => Math.max(1, Math.round(random.uniform(1, intervalMs / 2)));
  switch (type) {
    case 'spike':
      draw.readings = random.integer(1, 3);
      draw.magnitude = round(random.uniform(0.5, 3), 3);
      break;
    case 'drop':
      draw.readings = random.integer(1, 3);
      draw.magnitude = -round(random.uniform(0.4, 0.9), 3);
      break;
    case 'outage':
      draw.readings = readingsFor(random.uniform(5, 60) * MINUTE_MS, intervalMs);
      // The fraction of the level that still flows (standby of the meter's own electronics).
      draw.magnitude = -round(1 - random.uniform(0.001, 0.02), 4);
      break;
    case 'sustained_high':
      draw.readings = readingsFor(random.uniform(15, 120) * MINUTE_MS, intervalMs);
      draw.magnitude = round(random.uniform(0.3, 0.8), 3);
      break;
    case 'gap':
      draw.readings = random.integer(1, 12);
      draw.magnitude = draw.readings;
      break;
    case 'late':
      // At least one and a half intervals: it arrives after its device's next reading. (A reading
      // delayed by less arrives before anything newer of its device and within the watermark's
      // out-of-orderness bound: it is not late for anyone, and nothing could report it.)
      draw.delayMs = Math.round(random.logUniform(Math.min(1.5 * intervalMs, 3_600_000), 7_200_000));
      draw.magnitude = draw.delayMs / 1000;
      break;
    case 'duplicate':
      draw.delayMs = extraLineDelay();
      break;
    case 'malformed':
      draw.variant = random.pick(MALFORMED_VARIANTS);
      draw.delayMs = extraLineDelay();
      break;
  }
  return draw;
}

/**
 * Draws the size of one machine episode. `targets` holds the per-episode set points the
 * machine model follows: overstrain [torque, powerLow, powerHigh]; heat_dissipation
 * [rpm, temperature difference, extra air temperature]; power_failure low [rpm, torque] or high
 * [power, torque]. tool_wear is not drawn here: it follows the machine's tool changes.
 */
export function drawMachineAnomaly(type: Exclude<MachineAnomalyType, 'tool_wear'>, random: SimulationRandom, intervalMs: number): AnomalyDraw {
  const draw: AnomalyDraw = { type, readings: 1, magnitude: 0, variant: undefined, delayMs: 0, targets: [] };
  switch (type) {
    case 'overstrain': {
      draw.readings = readingsFor(random.uniform(3, 20) * MINUTE_MS, intervalMs);
      const torque = round(random.uniform(67, 71), 1);
      draw.targets = [torque, 8500, 8900];
      draw.magnitude = torque;
      break;
    }
    case 'heat_dissipation': {
      draw.readings = readingsFor(random.uniform(10, 60) * MINUTE_MS, intervalMs);
      const difference = round(random.uniform(7.7, 8.3), 2);
      draw.targets = [random.uniform(1250, 1360), difference, random.uniform(1.5, 3)];
      draw.magnitude = difference;
      break;
    }
    case 'power_failure': {
      draw.readings = readingsFor(random.uniform(5, 30) * MINUTE_MS, intervalMs);
      if (random.next() < 0.5) {
        draw.variant = 'low';
        const rpm = random.uniform(2300, 2800);
        const torque = random.uniform(4, 9);
        draw.targets = [rpm, torque];
        draw.magnitude = Math.round((torque * rpm * 2 * Math.PI) / 60);
      } else {
        draw.variant = 'high';
        const power = Math.round(random.uniform(9600, 10400));
        draw.targets = [power, random.uniform(59, 63.5)];
        draw.magnitude = power;
      }
      break;
    }
  }
  return draw;
}

/**
 * How many anomalies of one type a device gets: 3–6 per week of eligible time, times the rate,
 * rounded at random so that short runs still get their share on average.
 */
export function anomalyCount(random: SimulationRandom, rate: number, eligibleMs: number): number {
  if (rate <= 0 || eligibleMs <= 0) return 0;
  return random.roundStochastic(rate * random.uniform(3, 6) * (eligibleMs / WEEK_MS));
}

/**
 * Keeps the reserved spans of one device and places new anomalies at random where they keep
 * `ANOMALY_SEPARATION_MS` from every other one.
 */
export class AnomalyPlacer {
  private readonly reserved: Array<{ start: number; end: number }> = [];
  /** Anomalies that found no free place (high rates on short runs). */
  skipped = 0;

  /**
   * @param firstIndex first reading index an anomaly may touch (after the warm-up)
   * @param lastTime latest event time an anomaly may reach (an hour before the end of the run)
   */
  constructor(
    private readonly random: SimulationRandom,
    private readonly grid: ReadingGrid,
    private readonly firstIndex: number,
    private readonly lastTime: number,
  ) {}

  /** Reserves a span placed by someone else (tool-wear episodes follow the tool changes). */
  reserve(start: number, end: number): void {
    this.reserved.push({ start, end });
  }

  isFree(start: number, end: number): boolean {
    for (const span of this.reserved) {
      if (start < span.end + ANOMALY_SEPARATION_MS && span.start < end + ANOMALY_SEPARATION_MS) return false;
    }
    return true;
  }

  place(draw: AnomalyDraw): ScheduledAnomaly | undefined {
    const { firstTime, intervalMs } = this.grid;
    const lastIndex = Math.min(this.grid.count - 1, Math.floor((this.lastTime - firstTime) / intervalMs));
    const highestStart = lastIndex - draw.readings + 1;
    if (highestStart < this.firstIndex) {
      this.skipped += 1;
      return undefined;
    }
    for (let attempt = 0; attempt < PLACEMENT_TRIES; attempt += 1) {
      const first = this.random.integer(this.firstIndex, highestStart);
      const startTime = firstTime + first * intervalMs;
      const lastReadingTime = startTime + (draw.readings - 1) * intervalMs;
      const endTime = draw.type === 'late' ? startTime + draw.delayMs : lastReadingTime;
      if (endTime > this.lastTime || !this.isFree(startTime, endTime)) continue;
      this.reserve(startTime, endTime);
      return {
        type: draw.type,
        firstIndex: first,
        lastIndex: first + draw.readings - 1,
        magnitude: draw.magnitude,
        variant: draw.variant,
        delayMs: draw.delayMs,
        targets: draw.targets,
        startTime,
        endTime,
        offsets: [],
      };
    }
    this.skipped += 1;
    return undefined;
  }
}

/** Places a list of draws, longest first (they are the hardest to fit), and returns them in time order. */
export function placeAll(placer: AnomalyPlacer, draws: AnomalyDraw[]): ScheduledAnomaly[] {
  const ordered = draws.map((draw, index) => ({ draw, index }));
  ordered.sort((a, b) => b.draw.readings - a.draw.readings || a.index - b.index);
  const placed: ScheduledAnomaly[] = [];
  for (const { draw } of ordered) {
    const anomaly = placer.place(draw);
    if (anomaly !== undefined) placed.push(anomaly);
  }
  placed.sort((a, b) => a.firstIndex - b.firstIndex);
  return placed;
}

/**
 * A text for the README describing what the simulator injects and how large it is.
 *
 * @example
 * process.stdout.write(describeAnomalyModel());
 */
export function describeAnomalyModel(): string {
  return [
    'Injected anomalies (each drawn on its own; ranges are uniform unless noted):',
    '',
    '| stream | type | what is injected | magnitude in the labels |',
    '|---|---|---|---|',
    '| power | spike | usage +50 … +300 % of the local level for 1–3 readings | +0.5 … +3.0 (relative change) |',
    '| power | drop | usage −40 … −90 % for 1–3 readings | −0.4 … −0.9 |',
    '| power | outage | usage < 2 % of the level, current ≈ 0, for 5–60 min; the meter keeps reporting | −0.98 … −0.999 |',
    '| power | sustained_high | usage +30 … +80 % for 15 min – 2 h | +0.3 … +0.8 |',
    '| power | gap | the meter sends nothing for 1–12 expected readings (start/end = first/last missing reading) | readings missed |',
    "| power | late | one reading delayed by 1.5 intervals – 2 h (log-uniform), written where event time + delay falls, after its device's next reading (end = arrival) | delay, s |",
    '| power | duplicate | one reading written twice; the identical copy arrives < ½ interval later (offsets = the copy) | 1 |',
    '| power | malformed | one extra corrupt line beside a real reading: truncated JSON, "usageKw":"abc", no meterId, no timestamp, NaN/Infinity, timestamp 2–30 years ahead (`variant`) | 1 |',
    '| machines | overstrain | torque 66–72 Nm for 3–20 min, rpm lowered so torque·ω stays 8.5–8.9 kW | target torque, Nm |',
    '| machines | heat_dissipation | process − air 7.5–8.4 K with rpm 1200–1375 for 10–60 min, air 1.5–3 K warmer | target difference, K |',
    '| machines | power_failure | torque·ω < 3.5 kW (rpm 2300–2800, torque 4–10 Nm) or > 9.5 kW (torque 58–64.5 Nm, rpm ≥ 1400) for 5–30 min (`variant` low/high) | target power, W |',
    '| machines | tool_wear | a tool kept until 205–240 min of wear (normal tools are changed at 100–195 min) | highest wear, min |',
    '',
    'At `--anomalies 1` every device gets 3–6 anomalies of each of its types per week of eligible time.',
    'Nothing is injected in a device\'s first 24 h (`--warmup`, so detectors can learn a baseline) nor in',
    'the last hour of the run, and anomalies of one device are at least 1 h apart: each label is one clean case.',
    '',
  ].join('\n');
}
