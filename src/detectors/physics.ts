import { Type, type Static } from '@sinclair/typebox';
import type { Detector, DetectorContext, DetectorSpec, Reading, StreamSchema } from '../model/index.js';
import { formatDuration, formatNumber, metricIndexOf, scoreForRatio } from './common.js';
import { resolveParams } from './params.js';

/**
 * Parameters of `physics`: consistency checks between metrics of one reading. One detector per
 * stream (metric undefined); each check is enabled when the stream has all its metrics, and a
 * stream with none of them gets no detector. Each check reports on its own (its finding's
 * `metric` names the check's main metric) and reports `active: false` when it holds again.
 *
 * - Power balance (meters): |kW − V·I·PF·`phaseFactor`/1000| ÷ max(|kW|, |V·I·PF/1000|) >
 *   `tolerance` (0.15 = 15%), judged when all four values are present and the larger of the two
 *   powers is at least `minKw` (at tiny loads quantisation of current and power factor dominates).
 *   Metrics: `kw`, `voltage`, `current`, `pf`. Score: error ÷ tolerance.
 * - Mechanical power (machines): P = torque · ω = `torque` (Nm) × `rpm` × 2π/60, in W, outside
 *   [`minW`, `maxW`]. Score: minW ÷ P below, P ÷ maxW above.
 * - Heat dissipation (machines): process − air temperature < `minTempDiff` K while `rpm` <
 *   `minRpm`. Score: the smaller of minTempDiff ÷ difference and minRpm ÷ rpm.
 * Scores go through `scoreForRatio` (0.5 at the limit, critical from 2.5 × it).
 *
 * @example
 * { type: 'physics', metrics: [], params: { tolerance: 0.1, phaseFactor: 1.732 } }
 */
export const physicsParams = Type.Object({
  kw: Type.String({ minLength: 1, default: 'usageKw', description: 'Active power metric, kW.' }),
  voltage: Type.String({ minLength: 1, default: 'voltage', description: 'Voltage metric, V.' }),
  current: Type.String({ minLength: 1, default: 'current', description: 'Current metric, A.' }),
  pf: Type.String({ minLength: 1, default: 'pf', description: 'Power factor metric (0–1).' }),
  tolerance: Type.Number({ exclusiveMinimum: 0, default: 0.15, description: 'Allowed relative mismatch of kW and V·I·PF/1000.' }),
  minKw: Type.Number({ minimum: 0, default: 0.1, description: 'Below this power (kW) the balance is not judged.' }),
  phaseFactor: Type.Number({ exclusiveMinimum: 0, default: 1, description: 'Multiplier of V·I·PF (1.732 for three-phase line-to-line voltage).' }),
  torque: Type.String({ minLength: 1, default: 'torque_nm', description: 'Torque metric, Nm.' }),
  rpm: Type.String({ minLength: 1, default: 'rpm', description: 'Rotational speed metric, rpm.' }),
  minW: Type.Number({ minimum: 0, default: 3500, description: 'Lowest plausible mechanical power, W.' }),
  maxW: Type.Number({ minimum: 0, default: 9000, description: 'Highest plausible mechanical power, W.' }),
  processTemp: Type.String({ minLength: 1, default: 'process_temp_k', description: 'Process temperature metric, K.' }),
  airTemp: Type.String({ minLength: 1, default: 'air_temp_k', description: 'Air temperature metric, K.' }),
  minTempDiff: Type.Number({ default: 8.6, description: 'Heat dissipation fails when process − air temperature (K) is below this while rpm is below minRpm.' }),
  minRpm: Type.Number({ minimum: 0, default: 1380, description: 'Heat dissipation: rotational speed below which a small temperature difference fails.' }),
});
export type PhysicsParams = Static<typeof physicsParams>;

export interface PhysicsState {
  /** 1 while the power balance / mechanical power / heat dissipation check is reported. */
  balance: number;
  mechanical: number;
  heat: number;
  balanceSince: number;
  mechanicalSince: number;
  heatSince: number;
}

const TWO_PI_OVER_60 = (2 * Math.PI) / 60;

export class PhysicsDetector implements Detector<PhysicsState> {
  readonly type = 'physics';
  readonly alertType: string;
  readonly metric = undefined;
  private readonly p: PhysicsParams;
  private readonly kw: number;
  private readonly voltage: number;
  private readonly current: number;
  private readonly pf: number;
  private readonly torque: number;
  private readonly rpm: number;
  private readonly processTemp: number;
  private readonly airTemp: number;
  readonly checksBalance: boolean;
  readonly checksMechanical: boolean;
  readonly checksHeat: boolean;

  constructor(alertType: string, schema: StreamSchema, p: PhysicsParams) {
    this.alertType = alertType;
    this.p = p;
    this.kw = metricIndexOf(schema, p.kw);
    this.voltage = metricIndexOf(schema, p.voltage);
    this.current = metricIndexOf(schema, p.current);
    this.pf = metricIndexOf(schema, p.pf);
    this.torque = metricIndexOf(schema, p.torque);
    this.rpm = metricIndexOf(schema, p.rpm);
    this.processTemp = metricIndexOf(schema, p.processTemp);
    this.airTemp = metricIndexOf(schema, p.airTemp);
    this.checksBalance = this.kw >= 0 && this.voltage >= 0 && this.current >= 0 && this.pf >= 0;
    this.checksMechanical = this.torque >= 0 && this.rpm >= 0;
    this.checksHeat = this.processTemp >= 0 && this.airTemp >= 0 && this.rpm >= 0;
  }

  createState(): PhysicsState {
    return { balance: 0, mechanical: 0, heat: 0, balanceSince: 0, mechanicalSince: 0, heatSince: 0 };
  }

  onReading(state: PhysicsState, reading: Reading, ctx: DetectorContext): number {
    // The checks take the reading, not its numbers: numbers passed to a call that is not inlined
    // would be boxed, an allocation per reading on the hot path.
    let score = 0;
    if (this.checksBalance) {
      const s = this.balance(state, reading, ctx);
      if (s > score) score = s;
    }
    if (this.checksMechanical) {
      const s = this.mechanical(state, reading, ctx);
      if (s > score) score = s;
    }
    if (this.checksHeat) {
      const s = this.heat(state, reading, ctx);
      if (s > score) score = s;
    }
    return score;
  }

  private balance(state: PhysicsState, reading: Reading, ctx: DetectorContext): number {
    const v = reading.values;
    const t = reading.time;
    const kw = v[this.kw]!;
    const volts = v[this.voltage]!;
    const amps = v[this.current]!;
    const pf = v[this.pf]!;
    if (!(Number.isFinite(kw) && Number.isFinite(volts) && Number.isFinite(amps) && Number.isFinite(pf))) return 0;
    const estimate = (volts * amps * pf * this.p.phaseFactor) / 1000;
    const reference = Math.max(Math.abs(kw), Math.abs(estimate));
    const error = reference >= this.p.minKw && reference > 0 ? Math.abs(kw - estimate) / reference : 0;
    const ratio = error / this.p.tolerance;
    if (ratio > 1) {
      if (state.balance === 0) {
        state.balance = 1;
        state.balanceSince = t;
      }
      const score = scoreForRatio(ratio);
      const factor = this.p.phaseFactor === 1 ? '' : ` × ${formatNumber(this.p.phaseFactor)}`;
      const explain =
        `${this.p.kw} ${formatNumber(kw)} kW does not match V·I·PF${factor}/1000 = ${formatNumber(estimate)} kW ` +
        `(${formatNumber(volts)} V × ${formatNumber(amps)} A × PF ${formatNumber(pf)}): off by ${Math.round(error * 100)}%, tolerance ${Math.round(this.p.tolerance * 100)}%` +
        (t > state.balanceSince ? `; for ${formatDuration(t - state.balanceSince)}` : '');
      ctx.report({ time: t, score, value: kw, baseline: estimate, threshold: this.p.tolerance, explain, metric: this.p.kw, active: true });
      return score;
    }
    if (state.balance === 1) {
      state.balance = 0;
      const explain = `${this.p.kw} ${formatNumber(kw)} kW matches V·I·PF/1000 = ${formatNumber(estimate)} kW again (within ${Math.round(this.p.tolerance * 100)}%) after ${formatDuration(t - state.balanceSince)}`;
      ctx.report({ time: t, score: 0, value: kw, baseline: estimate, threshold: this.p.tolerance, explain, metric: this.p.kw, active: false });
    }
    return 0;
  }

  private mechanical(state: PhysicsState, reading: Reading, ctx: DetectorContext): number {
    const t = reading.time;
    const torque = reading.values[this.torque]!;
    const rpm = reading.values[this.rpm]!;
    if (!(Number.isFinite(torque) && Number.isFinite(rpm))) return 0;
    const watts = torque * rpm * TWO_PI_OVER_60;
    const low = watts < this.p.minW;
    const high = watts > this.p.maxW;
    if (low || high) {
      if (state.mechanical === 0) {
        state.mechanical = 1;
        state.mechanicalSince = t;
      }
      const ratio = low ? (watts > 0 ? this.p.minW / watts : Number.POSITIVE_INFINITY) : watts / this.p.maxW;
      const score = scoreForRatio(ratio);
      const explain =
        `mechanical power ${this.p.torque} ${formatNumber(torque)} Nm × ${this.p.rpm} ${formatNumber(rpm)} × 2π/60 = ${formatNumber(watts)} W ` +
        `is ${low ? 'below' : 'above'} the plausible range ${formatNumber(this.p.minW)}–${formatNumber(this.p.maxW)} W` +
        (t > state.mechanicalSince ? `; for ${formatDuration(t - state.mechanicalSince)}` : '');
      ctx.report({ time: t, score, value: watts, baseline: undefined, threshold: low ? this.p.minW : this.p.maxW, explain, metric: this.p.torque, active: true });
      return score;
    }
    if (state.mechanical === 1) {
      state.mechanical = 0;
      const explain = `mechanical power ${formatNumber(watts)} W is back inside ${formatNumber(this.p.minW)}–${formatNumber(this.p.maxW)} W after ${formatDuration(t - state.mechanicalSince)}`;
      ctx.report({ time: t, score: 0, value: watts, baseline: undefined, threshold: undefined, explain, metric: this.p.torque, active: false });
    }
    return 0;
  }

  private heat(state: PhysicsState, reading: Reading, ctx: DetectorContext): number {
    const t = reading.time;
    const processTemp = reading.values[this.processTemp]!;
    const airTemp = reading.values[this.airTemp]!;
    const rpm = reading.values[this.rpm]!;
    if (!(Number.isFinite(processTemp) && Number.isFinite(airTemp) && Number.isFinite(rpm))) return 0;
    const difference = processTemp - airTemp;
    if (difference < this.p.minTempDiff && rpm < this.p.minRpm) {
      if (state.heat === 0) {
        state.heat = 1;
        state.heatSince = t;
      }
      const tempRatio = difference > 0 ? this.p.minTempDiff / difference : Number.POSITIVE_INFINITY;
      const rpmRatio = rpm > 0 ? this.p.minRpm / rpm : Number.POSITIVE_INFINITY;
      const score = scoreForRatio(tempRatio < rpmRatio ? tempRatio : rpmRatio);
      const explain =
        `heat dissipation: ${this.p.processTemp} − ${this.p.airTemp} = ${formatNumber(difference)} K is below ${formatNumber(this.p.minTempDiff)} K ` +
        `while ${this.p.rpm} ${formatNumber(rpm)} is below ${formatNumber(this.p.minRpm)}` +
        (t > state.heatSince ? `; for ${formatDuration(t - state.heatSince)}` : '');
      ctx.report({ time: t, score, value: difference, baseline: undefined, threshold: this.p.minTempDiff, explain, metric: this.p.processTemp, active: true });
      return score;
    }
    if (state.heat === 1) {
      state.heat = 0;
      const explain = `heat dissipation is back to normal: ${this.p.processTemp} − ${this.p.airTemp} = ${formatNumber(difference)} K, ${this.p.rpm} ${formatNumber(rpm)} after ${formatDuration(t - state.heatSince)}`;
      ctx.report({ time: t, score: 0, value: difference, baseline: undefined, threshold: this.p.minTempDiff, explain, metric: this.p.processTemp, active: false });
    }
    return 0;
  }
}

/**
 * Builds the stream's physics detector, or none when the stream has the metrics of no check.
 *
 * @example
 * createPhysicsDetectors({ type: 'physics', metrics: [], params: {}, alertType: undefined, enabled: true }, power); // [PhysicsDetector]
 */
export function createPhysicsDetectors(spec: DetectorSpec, schema: StreamSchema): PhysicsDetector[] {
  const detector = new PhysicsDetector(spec.alertType ?? 'physics', schema, resolveParams(physicsParams, spec.params));
  return detector.checksBalance || detector.checksMechanical || detector.checksHeat ? [detector] : [];
}
