/**
 * Machines of the simulator, modelled on the AI4I 2020 predictive-maintenance data set
 * (10,000 readings; measured there: air 300.0 K σ 2.0; process 310.0 K σ 1.5 with
 * process − air 10.0 K σ 1.0; rpm 1539 σ 179, right-skewed, log-rpm 7.333 σ 0.108; torque
 * 40.0 Nm σ 10.0; correlation rpm/torque −0.875; mean torque ≈ −50.3 + 137 284 / rpm with a spread
 * that shrinks from 6 Nm at 1250 rpm to 1 Nm at 2050 rpm; mechanical power torque·ω 6.3 kW σ 1.1).
 *
 * In time, each quantity drifts slowly instead of being drawn afresh: air temperature follows
 * a daily cycle (±1 K, warmest at 15:00) plus a 6-hour drift (σ 1.8 K); the temperature
 * difference is 10 K − 0.35 × (air − 300 K) plus a 2-hour drift (σ 0.7 K); log-rpm a 30-minute drift (σ 0.095) plus jitter (0.05);
 * torque the AI4I curve plus its spread (partly a 10-minute drift, partly jitter).
 *
 * Normal operation is kept clear of the AI4I failure rules, so every failure in the output is a
 * labelled episode: process − air ≥ 8.8 K whenever rpm < 1400, rpm ≥ 1300, torque ≤ 62 Nm, torque·ω in 3.8–8.7 kW,
 * and tools are changed at 100–195 min of wear (tool wear grows with running time and resets
 * at each change).
 */
import {
  AnomalyPlacer,
  type ReadingGrid,
  type ScheduledAnomaly,
  anomalyCount,
} from './simulator-anomalies.js';
import { AutoRegressive, SimulationRandom, deriveSeed } from './simulator-random.js';

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const RADIANS_PER_RPM = (2 * Math.PI) / 60;

export const MACHINE_PURPOSE_PROFILE = 11;
export const MACHINE_PURPOSE_NOISE = 12;
export const MACHINE_PURPOSE_ANOMALY = 13;

export function machineId(index: number): string {
  return `machine-${String(index + 1).padStart(3, '0')}`;
}

export interface MachineProfile {
  index: number;
  machineId: string;
  /** Offset of its readings within each interval, whole seconds (its timestamps carry no milliseconds). */
  phaseMs: number;
  /** Wear of the tool in place at the first reading, minutes. */
  initialWear: number;
}

export function createMachineProfile(seed: number, index: number, intervalMs: number): MachineProfile {
  const random = new SimulationRandom(deriveSeed(seed, 2, index, MACHINE_PURPOSE_PROFILE));
  return {
    index,
    machineId: machineId(index),
    phaseMs: Math.floor((random.next() * intervalMs) / 1000) * 1000,
    initialWear: random.uniform(0, 100),
  };
}

/** The tool changes of one machine: reading index where each tool starts, and the tool-wear episodes. */
export interface ToolPlan {
  /** Ascending; the first may be negative (the first tool was already in use before the run). */
  starts: number[];
  episodes: ScheduledAnomaly[];
}

/**
 * Plans every tool change of the run. Normal tools are changed at 100–195 min of wear; for
 * tool-wear episodes a tool is kept until 205–240 min, which is placed where the episode fits
 * the warm-up, the end margin and the other reservations of `placer`.
 */
export function planTools(
  random: SimulationRandom,
  grid: ReadingGrid,
  initialWear: number,
  rate: number,
  firstIndex: number,
  lastTime: number,
  placer: AnomalyPlacer,
): ToolPlan {
  const minutesPerReading = grid.intervalMs / MINUTE_MS;
  const eligibleFrom = grid.firstTime + firstIndex * grid.intervalMs;
  const wanted = anomalyCount(random, rate, lastTime - eligibleFrom);
  const targets: number[] = [];
  for (let i = 0; i < wanted; i += 1) targets.push(random.uniform(eligibleFrom, lastTime));
  targets.sort((a, b) => a - b);

  const starts: number[] = [];
  const episodes: ScheduledAnomaly[] = [];
  let start = -Math.floor(initialWear / minutesPerReading);
  while (start < grid.count) {
    starts.push(start);
    const startTime = grid.firstTime + start * grid.intervalMs;
    let life = random.uniform(100, 195);
    const next = targets[0];
    if (next !== undefined && next <= startTime) {
      // At least one reading must fall at or above 200 min, even with long intervals.
      const longLife = Math.max(random.uniform(205, 240), 200 + minutesPerReading);
      const firstWorn = start + Math.ceil(200 / minutesPerReading);
      const lastWorn = start + Math.floor(longLife / minutesPerReading);
      const episodeStart = grid.firstTime + firstWorn * grid.intervalMs;
      const episodeEnd = grid.firstTime + lastWorn * grid.intervalMs;
      if (episodeEnd > lastTime || lastWorn >= grid.count) {
        targets.length = 0;
      } else if (firstWorn >= firstIndex && placer.isFree(episodeStart, episodeEnd)) {
        targets.shift();
        placer.reserve(episodeStart, episodeEnd);
        life = longLife;
        episodes.push({
          type: 'tool_wear',
          firstIndex: firstWorn,
          lastIndex: lastWorn,
          magnitude: Math.floor((lastWorn - start) * minutesPerReading),
          variant: undefined,
          delayMs: 0,
          targets: [],
          startTime: episodeStart,
          endTime: episodeEnd,
          offsets: [],
        });
      }
    }
    start += Math.floor(life / minutesPerReading) + 1;
  }
  return { starts, episodes };
}

/** One machine reading as written (already rounded). */
export interface MachineValues {
  airTempK: number;
  processTempK: number;
  rpm: number;
  torqueNm: number;
  toolWearMin: number;
}

const roundTo = (value: number, scale: number): number => Math.round(value * scale) / scale;
const clamp = (value: number, low: number, high: number): number => Math.min(high, Math.max(low, value));

/** AI4I's mean torque at a given speed, and the spread around it. */
function torqueCurve(rpm: number): { mean: number; spread: number } {
  return { mean: -50.27 + 137_284 / rpm, spread: Math.min(6, 4.4 * (1450 / rpm) ** 4) };
}

/**
 * Produces the readings of one machine. Every call draws the same number of random values
 * whatever the episode, so an episode leaves the readings after it unchanged.
 */
export class MachineModel {
  private readonly random: SimulationRandom;
  private readonly airDrift: AutoRegressive;
  private readonly differenceDrift: AutoRegressive;
  private readonly speedDrift: AutoRegressive;
  private readonly torqueDrift: AutoRegressive;

  constructor(seed: number, index: number, intervalMs: number) {
    this.random = new SimulationRandom(deriveSeed(seed, 2, index, MACHINE_PURPOSE_NOISE));
    this.airDrift = new AutoRegressive(this.random, 1.8, 6 * HOUR_MS, intervalMs);
    this.differenceDrift = new AutoRegressive(this.random, 0.7, 2 * HOUR_MS, intervalMs);
    this.speedDrift = new AutoRegressive(this.random, 0.095, 30 * MINUTE_MS, intervalMs);
    this.torqueDrift = new AutoRegressive(this.random, 1, 10 * MINUTE_MS, intervalMs);
  }

  next(time: number, toolWearMin: number, episode: ScheduledAnomaly | undefined): MachineValues {
    const random = this.random;
    const hour = (time % DAY_MS) / HOUR_MS;
    let air = 300 + Math.cos((2 * Math.PI * (hour - 15)) / 24) + this.airDrift.step() + 0.1 * random.normal();
    // AI4I: the difference shrinks as the air warms (correlation −0.70), which is why the process
    // temperature varies less than the air temperature.
    let difference = 10 - 0.35 * (air - 300) + this.differenceDrift.step() + 0.1 * random.normal();
    let rpm = Math.exp(7.333 + this.speedDrift.step() + 0.05 * random.normal());
    const torqueNoise = 0.6 * this.torqueDrift.step() + 0.8 * random.normal();
    // Episode noise is drawn always, used only inside an episode.
    const noiseA = random.normal();
    const noiseB = random.normal();
    const uniform = random.next();

    rpm = clamp(rpm, 1300, 2900);
    // Keep normal operation clear of the heat-dissipation rule (difference < 8.6 K at rpm < 1380).
    if (rpm < 1400) difference = Math.max(8.8, difference);
    const curve = torqueCurve(rpm);
    let torque = curve.mean + curve.spread * torqueNoise;
    const omega = (value: number): number => value * RADIANS_PER_RPM;
    torque = clamp(torque, Math.max(3.8, 3800 / omega(rpm)), Math.min(62, 8700 / omega(rpm)));

    switch (episode?.type) {
      case 'overstrain': {
        const [target = 69, powerLow = 8500, powerHigh = 8900] = episode.targets;
        torque = clamp(target + 0.7 * noiseA, 66, 72);
        // Speed falls under the load so that the mechanical power stays in its normal band.
        rpm = (powerLow + (powerHigh - powerLow) * uniform) / omega(torque);
        difference = Math.max(difference, 9);
        break;
      }
      case 'heat_dissipation': {
        const [speed = 1300, target = 8, warmer = 2] = episode.targets;
        rpm = clamp(speed + 8 * noiseA, 1200, 1375);
        difference = clamp(target + 0.1 * noiseB, 7.5, 8.4);
        air += warmer;
        const heatCurve = torqueCurve(rpm);
        torque = clamp(heatCurve.mean + heatCurve.spread * torqueNoise, 3800 / omega(rpm), Math.min(62, 8700 / omega(rpm)));
        break;
      }
      case 'power_failure': {
        if (episode.variant === 'low') {
          const [speed = 2500, target = 6] = episode.targets;
          rpm = clamp(speed + 20 * noiseA, 2250, 2850);
          torque = clamp(target + 0.4 * noiseB, 3.8, 10);
        } else {
          const [power = 10_000, target = 61] = episode.targets;
          torque = clamp(target + 0.4 * noiseB, 58, 64.5);
          rpm = Math.max(1400, (power + 100 * noiseA) / (torque * RADIANS_PER_RPM));
        }
        break;
      }
      default:
        break;
    }
    air = roundTo(air, 10);
    return {
      airTempK: air,
      processTempK: roundTo(air + difference, 10),
      rpm: Math.round(rpm),
      torqueNm: roundTo(torque, 10),
      toolWearMin: Math.floor(toolWearMin),
    };
  }
}

/** Epoch ms to ISO-8601 without the milliseconds when there are none (`2025-01-06T00:00:07Z`). */
export function isoSeconds(time: number): string {
  const text = new Date(time).toISOString();
  return text.endsWith('.000Z') ? `${text.slice(0, -5)}Z` : text;
}

export function machineLine(profile: MachineProfile, time: number, values: MachineValues): string {
  return `{"machine_id":"${profile.machineId}","timestamp":"${isoSeconds(time)}","air_temp_k":${values.airTempK},"process_temp_k":${values.processTempK},"rpm":${values.rpm},"torque_nm":${values.torqueNm},"tool_wear_min":${values.toolWearMin}}`;
}
