import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { simulateLines } from '../../src/ingest/simulator.js';
import type { AnomalyLabel, SimulationLabels } from '../../src/ingest/simulator-anomalies.js';

interface MeterLine {
  meterId: string;
  timestamp: number;
  usageKw: number;
  voltage: number;
  current: number;
  pf: number;
}

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
// Twice the default rate, so that a short run still holds many labels of every type.
const stream = simulateLines({ meters: 10, machines: 2, days: 4, seed: 11, anomalyRate: 2 });
const lines = [...stream.lines];
const labels: SimulationLabels = stream.labels();
const summary = stream.summary();
const labelledOffsets = new Set(labels.anomalies.flatMap((label) => label.offsets ?? []));
const ofType = (type: AnomalyLabel['type']): AnomalyLabel[] => labels.anomalies.filter((label) => label.type === type);

/** Normal meter readings (not the extra or displaced lines), by meter, in file order. */
const readings = new Map<string, MeterLine[]>();
lines.forEach((line, index) => {
  if (labelledOffsets.has(index + 1) || !line.startsWith('{"meterId"')) return;
  const reading = JSON.parse(line) as MeterLine;
  const list = readings.get(reading.meterId) ?? [];
  list.push(reading);
  readings.set(reading.meterId, list);
});

/** Event time of a meter line (epoch ms) or a machine line (ISO-8601). */
function lineTime(line: string): number {
  const match = /"timestamp":(?:(\d+)|"([^"]+)")/.exec(line);
  return match?.[1] !== undefined ? Number(match[1]) : Date.parse(match?.[2] ?? '');
}

/** Is this line something an ingest must reject: not JSON, or a missing/wrong field, or a time years ahead? */
function isBadReading(line: string): boolean {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return true;
  }
  return (
    typeof value.meterId !== 'string' ||
    typeof value.timestamp !== 'number' ||
    typeof value.usageKw !== 'number' ||
    value.timestamp > labels.end + 365 * DAY_MS
  );
}

describe('simulator labels', () => {
  it('counts every line and every type of anomaly', () => {
    assert.equal(labels.lines, lines.length);
    assert.equal(summary.lines, lines.length);
    for (const type of ['spike', 'drop', 'outage', 'sustained_high', 'gap', 'late', 'duplicate', 'malformed'] as const) {
      assert.ok(ofType(type).length >= 3, `${type}: ${ofType(type).length} labels`);
      assert.equal(summary.anomalies[type], ofType(type).length);
    }
    for (const type of ['overstrain', 'heat_dissipation', 'power_failure', 'tool_wear'] as const) {
      assert.ok(ofType(type).length >= 1, `${type}: ${ofType(type).length} labels`);
    }
    // Extra lines are exactly the duplicates and the malformed lines.
    assert.equal(lines.length - summary.readings, ofType('duplicate').length + ofType('malformed').length);
    assert.deepEqual(
      labels.anomalies.map((label) => label.id),
      labels.anomalies.map((_, index) => `a-${String(index + 1).padStart(6, '0')}`),
    );
  });

  it('writes each duplicate as an identical second line, and no other line twice', () => {
    const seen = new Map<string, number>();
    for (const line of lines) seen.set(line, (seen.get(line) ?? 0) + 1);
    const repeated = [...seen.values()].filter((count) => count > 1);
    assert.equal(repeated.length, ofType('duplicate').length);
    assert.ok(repeated.every((count) => count === 2));
    for (const label of ofType('duplicate')) {
      const [offset] = label.offsets ?? [];
      assert.ok(offset !== undefined);
      const copy = lines[offset - 1] ?? '';
      const original = lines.indexOf(copy);
      assert.ok(original >= 0 && original < offset - 1, 'the original comes first');
      assert.equal((JSON.parse(copy) as MeterLine).timestamp, label.start);
    }
  });

  it('points malformed offsets at lines an ingest must reject, beside an intact reading', () => {
    const variants = new Set<string>();
    for (const label of ofType('malformed')) {
      const [offset] = label.offsets ?? [];
      assert.ok(offset !== undefined);
      assert.ok(isBadReading(lines[offset - 1] ?? ''), `line ${offset} (${label.variant}) looks valid: ${lines[offset - 1]}`);
      variants.add(label.variant ?? '');
      // The real reading is still there.
      assert.ok((readings.get(label.key) ?? []).some((reading) => reading.timestamp === label.start));
    }
    assert.ok(variants.size >= 4, `variants seen: ${[...variants].join(', ')}`);
    // And no other line is bad.
    const bad = lines.flatMap((line, index) => (line.startsWith('{"meterId"') || line.startsWith('{"machine_id"') ? [] : [index + 1]));
    for (const offset of bad) assert.ok(labelledOffsets.has(offset), `unlabelled odd line ${offset}`);
  });

  it('leaves no reading of the meter inside a gap, and readings on both sides', () => {
    for (const label of ofType('gap')) {
      const times = (readings.get(label.key) ?? []).map((reading) => reading.timestamp);
      assert.equal(times.filter((time) => time >= label.start && time <= label.end).length, 0);
      assert.equal((label.end - label.start) / labels.intervalMs + 1, label.magnitude);
      assert.ok(times.includes(label.start - labels.intervalMs));
      assert.ok(times.includes(label.end + labels.intervalMs));
    }
  });

  it('writes a late reading where it arrived: after readings up to its arrival time', () => {
    for (const label of ofType('late')) {
      const [offset] = label.offsets ?? [];
      assert.ok(offset !== undefined);
      const late = JSON.parse(lines[offset - 1] ?? '') as MeterLine;
      assert.equal(late.meterId, label.key);
      assert.equal(late.timestamp, label.start);
      assert.ok(label.magnitude >= 1 && label.magnitude <= 7200);
      // The nearest ordinary line before it is no later than the arrival time, the one after no earlier.
      const timeAt = (index: number): number => lineTime(lines[index] ?? '');
      let before = offset - 2;
      while (labelledOffsets.has(before + 1)) before -= 1;
      assert.ok(timeAt(before) <= label.end);
      let after = offset;
      while (labelledOffsets.has(after + 1)) after += 1;
      assert.ok(timeAt(after) >= label.end);
      // It is missing from its own place: the meter has no other reading at that time.
      assert.equal((readings.get(label.key) ?? []).filter((reading) => reading.timestamp === label.start).length, 0);
    }
  });

  it('injects the labelled sizes: spikes up, drops down, outages near zero', () => {
    // Anomalies draw from their own random stream, so a clean run holds the undisturbed values.
    const clean = simulateLines({ meters: 10, days: 4, seed: 11, anomalyRate: 0 });
    const cleanUsage = new Map<string, number>();
    for (const line of clean.lines) {
      const reading = JSON.parse(line) as MeterLine;
      cleanUsage.set(`${reading.meterId}@${reading.timestamp}`, reading.usageKw);
    }
    const affected = (label: AnomalyLabel): Array<{ usage: number; normal: number; reading: MeterLine }> =>
      (readings.get(label.key) ?? [])
        .filter((reading) => reading.timestamp >= label.start && reading.timestamp <= label.end)
        .map((reading) => ({ usage: reading.usageKw, normal: cleanUsage.get(`${label.key}@${reading.timestamp}`) ?? Number.NaN, reading }));
    // Both values are rounded to 1 W before they are compared; the clean one's rounding is scaled by the factor.
    const close = (actual: number, normal: number, factor: number): boolean => Math.abs(actual - normal * factor) <= 0.0005 * (1 + factor) + 1e-9;
    for (const type of ['spike', 'drop', 'sustained_high'] as const) {
      for (const label of ofType(type)) {
        const [low, high] = type === 'spike' ? [0.5, 3] : type === 'drop' ? [-0.9, -0.4] : [0.3, 0.8];
        assert.ok(label.magnitude >= low && label.magnitude <= high, `${label.id} magnitude ${label.magnitude}`);
        const inside = affected(label);
        assert.ok(inside.length >= 1);
        for (const { usage, normal } of inside) assert.ok(close(usage, normal, 1 + label.magnitude), `${type} ${label.id}: ${usage} vs ${normal}`);
      }
    }
    for (const label of ofType('outage')) {
      const inside = affected(label);
      assert.ok(inside.length >= 5, 'the meter keeps reporting during an outage');
      for (const { usage, normal, reading } of inside) {
        // Below 2 % of the level (the clean value carries up to about 15 % of noise).
        assert.ok(usage <= 0.025 * normal + 0.0005, `outage ${label.id}: ${usage} kW where ${normal} kW was normal`);
        assert.ok(reading.current <= 0.025 * (normal * 1000) / (reading.voltage * reading.pf) + 0.01);
      }
    }
  });

  it('starts no anomaly in a device\'s first day and keeps an hour between anomalies of one device', () => {
    const byKey = new Map<string, AnomalyLabel[]>();
    for (const label of labels.anomalies) byKey.set(label.key, [...(byKey.get(label.key) ?? []), label]);
    for (const [key, list] of byKey) {
      for (const label of list) assert.ok(label.start >= labels.start + DAY_MS, `${key} ${label.id} in the warm-up`);
      for (const label of list) assert.ok(label.end <= labels.end - HOUR_MS, `${key} ${label.id} in the last hour`);
      const sorted = [...list].sort((a, b) => a.start - b.start);
      for (let i = 1; i < sorted.length; i += 1) {
        const previous = sorted[i - 1];
        const next = sorted[i];
        assert.ok(previous !== undefined && next !== undefined);
        assert.ok(next.start - previous.end >= HOUR_MS, `${previous.id} and ${next.id} are too close`);
      }
    }
  });

  it('writes lines in event-time order apart from the labelled extra and late lines', () => {
    let last = -1;
    lines.forEach((line, index) => {
      if (labelledOffsets.has(index + 1)) return;
      const time = lineTime(line);
      assert.ok(time >= last, `line ${index + 1} goes back in time`);
      last = time;
    });
  });

  it('reports nothing with --no-anomalies', () => {
    const clean = simulateLines({ meters: 3, days: 3, seed: 11, anomalyRate: 0 });
    const count = [...clean.lines].length;
    assert.equal(clean.labels().anomalies.length, 0);
    assert.equal(clean.summary().readings, count);
    assert.equal(count, 3 * 3 * 1440);
  });
});
