/**
 * Electricity meters of the simulator: load shapes by day and week, measurement noise, and the
 * physics that ties usage, voltage, current and power factor together.
 *
 * Local time is UTC (the simulated sites are on UTC; day 0 of the default run is a Monday).
 *
 * Load shapes (smooth functions of the hour of day and day of week):
 * - residential: base 0.2–0.6 kW; a morning peak around 06:30–08:00 on weekdays (later and
 *   broader at weekends), an evening peak around 18:00–20:00 reaching 2–5 kW, and some midday
 *   use (more at weekends).
 * - commercial: 10–18 kW at night and on Sundays; 40–80 kW during office hours on weekdays
 *   (opening 07:00–08:30, closing 17:30–19:00, smooth ramps, a small lunch dip); Saturdays
 *   10–25 % of the office-hours rise.
 * - industrial: 100–200 kW when idle, 400–800 kW in production; two shifts (06:00–22:00 on
 *   weekdays) or three (Monday 06:00 to Saturday 06:00), with short dips at shift changes.
 *
 * Noise: usage = level × (1 + drift + jitter), where drift is a first-order autoregressive
 * process (correlation time 15 min; standard deviation 5 % residential, 3 % commercial, 2 %
 * industrial) and jitter is white noise (3 %, 2 %, 1.5 %). Voltage is the meter's own nominal
 * (230 V ± 1.5 %) plus a drift (σ 1 V, 5 min), a sag of up to 2 V at peak load and 0.3 V of jitter.
 * Power factor is fixed per meter in 0.85–0.99 with ±0.003 jitter. Current follows from
 * the rounded values: current = usageKw × 1000 / (voltage × pf) (single-phase equivalent).
 */
import { AutoRegressive, SimulationRandom, deriveSeed } from './simulator-random.js';

export type MeterKind = 'residential' | 'commercial' | 'industrial';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** Where each meter kind sits in a block of ten meters (one site): 7 homes, 2 offices, 1 plant. */
const KIND_PATTERN: readonly MeterKind[] = [
  'residential',
  'residential',
  'commercial',
  'residential',
  'residential',
  'industrial',
  'residential',
  'residential',
  'commercial',
  'residential',
];
export const METERS_PER_SITE = 10;

/** Purposes of the per-meter random streams (part of the derived seed). */
export const PURPOSE_PROFILE = 1;
export const PURPOSE_NOISE = 2;
export const PURPOSE_ANOMALY = 3;

export function meterKind(index: number): MeterKind {
  return KIND_PATTERN[index % KIND_PATTERN.length] ?? 'residential';
}

export function meterId(index: number): string {
  return `m-${String(index + 1).padStart(4, '0')}`;
}

export function siteId(index: number): string {
  return `s-${String(Math.floor(index / METERS_PER_SITE) + 1).padStart(2, '0')}`;
}

/** Bell curve over the hour of day, with the distance taken around the clock (23:00 is near 01:00). */
function bell(hour: number, centre: number, width: number): number {
  let distance = Math.abs(hour - centre);
  if (distance > 12) distance = 24 - distance;
  return Math.exp(-0.5 * (distance / width) ** 2);
}

function logistic(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/** Hour of day (fractional) and day of week (0 = Sunday) of an epoch-ms time, in UTC. */
function calendar(time: number): { hour: number; weekday: number; weekHour: number } {
  const days = Math.floor(time / DAY_MS);
  const hour = (time - days * DAY_MS) / HOUR_MS;
  // 1970-01-01 was a Thursday.
  const weekday = (days + 4) % 7;
  // Hours since Monday 00:00.
  const weekHour = ((weekday + 6) % 7) * 24 + hour;
  return { hour, weekday, weekHour };
}

/** The smooth expected load of one meter, kW. */
export type LoadShape = (time: number) => number;

function residentialShape(random: SimulationRandom): LoadShape {
  const base = random.uniform(0.2, 0.6);
  const morningCentre = random.uniform(6.5, 8);
  const morningWidth = random.uniform(0.6, 1);
  const morningHeight = random.uniform(0.8, 2);
  const eveningCentre = random.uniform(18, 20);
  const eveningWidth = random.uniform(1.2, 2);
  const eveningHeight = random.uniform(2, 5) - base;
  const middayWeekday = random.uniform(0.1, 0.4);
  const middayWeekend = random.uniform(0.5, 1.2);
  return (time) => {
    const { hour, weekday } = calendar(time);
    const weekend = weekday === 0 || weekday === 6;
    const morning = weekend
      ? 0.8 * morningHeight * bell(hour, morningCentre + 1.5, morningWidth * 1.5)
      : morningHeight * bell(hour, morningCentre, morningWidth);
    const midday = (weekend ? middayWeekend : middayWeekday) * bell(hour, 13, 2.5);
    return base + morning + midday + eveningHeight * bell(hour, eveningCentre, eveningWidth);
  };
}

function commercialShape(random: SimulationRandom): LoadShape {
  const base = random.uniform(10, 18);
  const peak = random.uniform(40, 80);
  const opens = random.uniform(7, 8.5);
  const closes = random.uniform(17.5, 19);
  const saturday = random.uniform(0.1, 0.25);
  return (time) => {
    const { hour, weekday } = calendar(time);
    const day = weekday === 0 ? 0 : weekday === 6 ? saturday : 1;
    if (day === 0) return base;
    const occupancy = logistic((hour - opens) / 0.35) * logistic((closes - hour) / 0.35);
    const lunch = 1 - 0.05 * bell(hour, 12.5, 0.7);
    return base + (peak - base) * day * occupancy * lunch;
  };
}

function industrialShape(random: SimulationRandom): LoadShape {
  const idle = random.uniform(100, 200);
  const production = random.uniform(400, 800);
  const threeShifts = random.next() < 0.5;
  // Production windows in hours since Monday 00:00.
  const windows: Array<[number, number]> = threeShifts
    ? [[6, 126]]
    : [0, 1, 2, 3, 4].map((day): [number, number] => [day * 24 + 6, day * 24 + 22]);
  const shiftChanges = threeShifts ? [6, 14, 22] : [14];
  return (time) => {
    const { hour, weekHour } = calendar(time);
    let running = 0;
    for (const [from, to] of windows) running += logistic((weekHour - from) / 0.25) * logistic((to - weekHour) / 0.25);
    let dip = 1;
    for (const change of shiftChanges) dip -= 0.1 * bell(hour, change, 0.3);
    return idle + (production - idle) * running * dip;
  };
}

/** Everything fixed about one meter. */
export interface MeterProfile {
  index: number;
  meterId: string;
  siteId: string;
  kind: MeterKind;
  shape: LoadShape;
  /** Offset of its readings within each interval, ms (meters do not all report at the same instant). */
  phaseMs: number;
  nominalVoltage: number;
  powerFactor: number;
  /** Highest level of its shape, for the voltage sag. */
  peakLevel: number;
  driftSigma: number;
  jitterSigma: number;
}

export function createMeterProfile(seed: number, index: number, intervalMs: number): MeterProfile {
  const random = new SimulationRandom(deriveSeed(seed, 1, index, PURPOSE_PROFILE));
  const kind = meterKind(index);
  const shape = kind === 'residential' ? residentialShape(random) : kind === 'commercial' ? commercialShape(random) : industrialShape(random);
  // Whole milliseconds, anywhere in the interval.
  const phaseMs = Math.floor(random.next() * intervalMs);
  let peakLevel = 0;
  // Sample a Monday at 10-minute steps for the peak (2025-01-06 is a Monday).
  for (let minute = 0; minute < 1440; minute += 10) peakLevel = Math.max(peakLevel, shape(Date.UTC(2025, 0, 6) + minute * 60_000));
  return {
    index,
    meterId: meterId(index),
    siteId: siteId(index),
    kind,
    shape,
    phaseMs,
    nominalVoltage: 230 * random.uniform(0.985, 1.015),
    powerFactor: random.uniform(0.85, 0.99),
    peakLevel,
    driftSigma: kind === 'residential' ? 0.05 : kind === 'commercial' ? 0.03 : 0.02,
    jitterSigma: kind === 'residential' ? 0.03 : kind === 'commercial' ? 0.02 : 0.015,
  };
}

/** One meter reading before anomalies are applied. */
export interface MeterValues {
  level: number;
  usageKw: number;
  voltage: number;
  powerFactor: number;
}

/** Produces the normal readings of one meter, one per call, with a fixed number of random draws each. */
export class MeterNoise {
  private readonly random: SimulationRandom;
  private readonly drift: AutoRegressive;
  private readonly voltageDrift: AutoRegressive;

  constructor(
    seed: number,
    private readonly profile: MeterProfile,
    intervalMs: number,
  ) {
    this.random = new SimulationRandom(deriveSeed(seed, 1, profile.index, PURPOSE_NOISE));
    this.drift = new AutoRegressive(this.random, profile.driftSigma, 15 * 60_000, intervalMs);
    this.voltageDrift = new AutoRegressive(this.random, 1, 5 * 60_000, intervalMs);
  }

  next(time: number, into: MeterValues): MeterValues {
    const level = this.profile.shape(time);
    const factor = Math.max(0.5, 1 + this.drift.step() + this.profile.jitterSigma * this.random.normal());
    into.level = level;
    into.usageKw = level * factor;
    const sag = (2 * into.usageKw) / this.profile.peakLevel;
    into.voltage = this.profile.nominalVoltage + this.voltageDrift.step() - Math.min(sag, 3) + 0.3 * this.random.normal();
    into.powerFactor = Math.min(1, this.profile.powerFactor + 0.003 * this.random.normal());
    return into;
  }
}

const roundTo = (value: number, scale: number): number => Math.round(value * scale) / scale;

/** The fields of a meter line, rounded as written. */
export interface MeterLineFields {
  meterId: string;
  siteId: string;
  timestamp: number;
  usageKw: number;
  voltage: number;
  current: number;
  pf: number;
}

export function meterLineFields(profile: MeterProfile, time: number, usageKw: number, voltage: number, powerFactor: number): MeterLineFields {
  const usage = roundTo(usageKw, 1000);
  const volts = roundTo(voltage, 10);
  const pf = roundTo(powerFactor, 1000);
  return {
    meterId: profile.meterId,
    siteId: profile.siteId,
    timestamp: time,
    usageKw: usage,
    voltage: volts,
    current: roundTo((usage * 1000) / (volts * pf), 100),
    pf,
  };
}

/** The NDJSON line of a meter reading (field order fixed, so output is byte-stable). */
export function meterLine(fields: MeterLineFields): string {
  return `{"meterId":"${fields.meterId}","siteId":"${fields.siteId}","timestamp":${fields.timestamp},"usageKw":${fields.usageKw},"voltage":${fields.voltage},"current":${fields.current},"pf":${fields.pf}}`;
}
