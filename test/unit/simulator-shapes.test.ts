import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { simulateLines } from '../../src/ingest/simulator.js';
import { meterKind } from '../../src/ingest/simulator-meters.js';

interface MeterLine {
  meterId: string;
  siteId: string;
  timestamp: number;
  usageKw: number;
  voltage: number;
  current: number;
  pf: number;
}

interface MachineLine {
  machine_id: string;
  timestamp: string;
  air_temp_k: number;
  process_temp_k: number;
  rpm: number;
  torque_nm: number;
  tool_wear_min: number;
}

const HOUR_MS = 3_600_000;
const mean = (values: number[]): number => values.reduce((sum, value) => sum + value, 0) / values.length;
const deviation = (values: number[]): number => {
  const centre = mean(values);
  return Math.sqrt(mean(values.map((value) => (value - centre) ** 2)));
};
const power = (reading: MachineLine): number => (reading.torque_nm * reading.rpm * 2 * Math.PI) / 60;

/** The AI4I failure rules a reading breaks (overstrain here means torque above 65 Nm). */
function failureRules(reading: MachineLine): string[] {
  const broken: string[] = [];
  if (reading.torque_nm > 65) broken.push('overstrain');
  if (reading.process_temp_k - reading.air_temp_k < 8.6 && reading.rpm < 1380) broken.push('heat_dissipation');
  if (power(reading) < 3500 || power(reading) > 9000) broken.push('power_failure');
  if (reading.tool_wear_min >= 200) broken.push('tool_wear');
  return broken;
}

// A clean week (2025-01-06 is a Monday) at 5-minute readings.
const week = [...simulateLines({ meters: 10, machines: 3, days: 7, seed: 3, intervalMs: '5m', anomalyRate: 0 }).lines].map(
  (line) => JSON.parse(line) as MeterLine | MachineLine,
);
const meters = week.filter((reading): reading is MeterLine => 'meterId' in reading);
const machines = week.filter((reading): reading is MachineLine => 'machine_id' in reading);

/** Mean usage of one meter kind on one day of the week (0 = Sunday) between two hours. */
function usage(kind: string, weekday: number | 'weekdays', fromHour: number, toHour: number): number {
  const picked = meters.filter((reading) => {
    const index = Number(reading.meterId.slice(2)) - 1;
    const date = new Date(reading.timestamp);
    const day = date.getUTCDay();
    const hour = date.getUTCHours() + date.getUTCMinutes() / 60;
    const dayMatches = weekday === 'weekdays' ? day >= 1 && day <= 5 : day === weekday;
    return meterKind(index) === kind && dayMatches && hour >= fromHour && hour < toHour;
  });
  assert.ok(picked.length > 0, `no ${kind} readings on ${weekday} ${fromHour}-${toHour}`);
  return mean(picked.map((reading) => reading.usageKw));
}

describe('simulator load shapes and physics', () => {
  it('gives homes an evening peak well above the night', () => {
    const night = usage('residential', 'weekdays', 2, 4);
    const evening = usage('residential', 'weekdays', 18, 21);
    assert.ok(night > 0.15 && night < 0.8, `night ${night} kW`);
    assert.ok(evening > 3 * night, `evening ${evening} kW vs night ${night} kW`);
    assert.ok(usage('residential', 'weekdays', 6.5, 8.5) > 1.5 * night, 'a morning peak');
  });

  it('gives offices their load on weekday office hours, not on Sunday', () => {
    const weekdayNoon = usage('commercial', 'weekdays', 11, 13);
    const sundayNoon = usage('commercial', 0, 11, 13);
    assert.ok(weekdayNoon > 2.5 * sundayNoon, `weekday noon ${weekdayNoon} kW vs Sunday noon ${sundayNoon} kW`);
    assert.ok(sundayNoon >= 10 && weekdayNoon <= 80, `${sundayNoon}..${weekdayNoon}`);
    assert.ok(usage('commercial', 'weekdays', 1, 4) < 0.5 * weekdayNoon, 'low at night');
  });

  it('gives plants production shifts on weekdays within 100–800 kW', () => {
    const weekdayMorning = usage('industrial', 'weekdays', 9, 12);
    const sunday = usage('industrial', 0, 9, 12);
    assert.ok(weekdayMorning > 2 * sunday, `weekday ${weekdayMorning} kW vs Sunday ${sunday} kW`);
    assert.ok(sunday >= 90 && weekdayMorning <= 850);
  });

  it('keeps kW, volts, amps and power factor consistent, with meters reporting at their own instants', () => {
    for (const reading of meters) {
      assert.ok(reading.voltage > 220 && reading.voltage < 240, `voltage ${reading.voltage}`);
      assert.ok(reading.pf >= 0.84 && reading.pf <= 1, `pf ${reading.pf}`);
      const apparent = (reading.voltage * reading.current * reading.pf) / 1000;
      assert.ok(Math.abs(apparent - reading.usageKw) <= 0.01 * reading.usageKw + 0.002, `${reading.usageKw} kW vs V·I·pf ${apparent}`);
    }
    const phases = new Set(meters.map((reading) => reading.timestamp % 300_000));
    assert.equal(phases.size, 10);
    assert.deepEqual([...new Set(meters.map((reading) => reading.siteId))], ['s-01']);
  });

  it('gives machines AI4I-like readings that break no failure rule outside an episode', () => {
    const air = machines.map((reading) => reading.air_temp_k);
    const difference = machines.map((reading) => reading.process_temp_k - reading.air_temp_k);
    const rpm = machines.map((reading) => reading.rpm);
    const torque = machines.map((reading) => reading.torque_nm);
    assert.ok(Math.abs(mean(air) - 300) < 1.5 && deviation(air) > 1 && deviation(air) < 3, `air ${mean(air)} σ ${deviation(air)}`);
    assert.ok(Math.abs(mean(difference) - 10) < 0.7, `process − air ${mean(difference)}`);
    assert.ok(Math.abs(mean(rpm) - 1540) < 100 && deviation(rpm) > 100 && deviation(rpm) < 250, `rpm ${mean(rpm)} σ ${deviation(rpm)}`);
    assert.ok(Math.abs(mean(torque) - 40) < 5 && deviation(torque) > 6 && deviation(torque) < 14, `torque ${mean(torque)} σ ${deviation(torque)}`);
    const rpmCentre = mean(rpm);
    const torqueCentre = mean(torque);
    const correlation =
      mean(rpm.map((value, i) => (value - rpmCentre) * ((torque[i] ?? 0) - torqueCentre))) / (deviation(rpm) * deviation(torque));
    assert.ok(correlation < -0.7, `rpm/torque correlation ${correlation}`);
    for (const reading of machines) assert.deepEqual(failureRules(reading), [], JSON.stringify(reading));
    // Tool wear grows with running time and resets at each tool change (every 100–195 min).
    const first = machines.filter((reading) => reading.machine_id === 'machine-001');
    const changes = first.filter((reading, i) => i > 0 && reading.tool_wear_min < (first[i - 1]?.tool_wear_min ?? 0)).length;
    assert.ok(changes >= (7 * 24 * 60) / 200 && changes <= (7 * 24 * 60) / 95, `${changes} tool changes`);
    assert.match(first[0]?.timestamp ?? '', /^2025-01-06T00:0\d:\d\dZ$/);
  });

  it('makes every reading of a labelled machine episode break its own rule', () => {
    const run = simulateLines({ machines: 3, meters: 0, days: 8, seed: 8 });
    const readings = [...run.lines].map((line) => JSON.parse(line) as MachineLine);
    const labels = run.labels().anomalies;
    const types = new Set(labels.map((label) => label.type));
    assert.deepEqual([...types].sort(), ['heat_dissipation', 'overstrain', 'power_failure', 'tool_wear']);
    for (const label of labels) {
      const inside = readings.filter((reading) => {
        const time = Date.parse(reading.timestamp);
        return reading.machine_id === label.key && time >= label.start && time <= label.end;
      });
      assert.ok(inside.length >= 1, label.id);
      for (const reading of inside) assert.deepEqual(failureRules(reading), [label.type], `${label.id} ${JSON.stringify(reading)}`);
      if (label.type === 'overstrain') assert.ok(label.end - label.start >= 2 * 60_000, 'overstrain lasts minutes');
    }
    // Outside the episodes the machines stay clean.
    const outside = readings.filter((reading) => {
      const time = Date.parse(reading.timestamp);
      return !labels.some((label) => label.key === reading.machine_id && time >= label.start && time <= label.end + HOUR_MS / 60);
    });
    for (const reading of outside) assert.deepEqual(failureRules(reading), [], JSON.stringify(reading));
  });
});
