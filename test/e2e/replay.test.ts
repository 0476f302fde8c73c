import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { replay } from '../../src/cli/commands/replay.js';
import { createStore } from '../../src/stores/index.js';
import { partitionOfKey } from '../../src/log/index.js';
import type { AlertEvent, OpsEvent } from '../../src/model/index.js';

const FIXTURES = new URL('../fixtures/', import.meta.url).pathname;

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'gp-e2e-'));
}

function lines<T>(path: string): T[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as T);
}

/** Meter readings every minute; m-3 stops for 20 minutes halfway, while the others keep reporting. */
function meterFile(dir: string): string {
  const t0 = Date.UTC(2025, 0, 6);
  const out: string[] = [];
  for (let i = 0; i < 180; i++) {
    for (const m of ['m-1', 'm-2', 'm-3', 'm-4']) {
      if (m === 'm-3' && i >= 90 && i < 110) continue;
      const level = m === 'm-1' ? 5 : 2;
      const usageKw = level * (1 + 0.02 * Math.sin(i / 3 + m.length)) * (m === 'm-2' && i === 120 ? 3 : 1);
      out.push(JSON.stringify({ meterId: m, siteId: 's-1', timestamp: t0 + i * 60_000 + Number(m.slice(2)) * 1000, usageKw: Number(usageKw.toFixed(3)), voltage: 230, current: Number(((usageKw * 1000) / 230 / 0.95).toFixed(3)), pf: 0.95 }));
    }
  }
  const path = join(dir, 'meters.ndjson');
  writeFileSync(path, out.join('\n') + '\n');
  return path;
}

test('replaying the same file twice gives byte-identical aggregate, alert and ops outputs', async () => {
  const dir = tempDir();
  const input = meterFile(dir);
  const run = async (n: number): Promise<string[]> => {
    await replay({ files: [input], hints: {}, noStore: true, aggregatesOut: join(dir, `agg${n}.ndjson`), alertsOut: join(dir, `alerts${n}.ndjson`), opsOut: join(dir, `ops${n}.ndjson`) });
    return ['agg', 'alerts', 'ops'].map((k) => readFileSync(join(dir, `${k}${n}.ndjson`), 'utf8'));
  };
  const [a1, al1, o1] = await run(1);
  const [a2, al2, o2] = await run(2);
  assert.ok(a1!.length > 10_000, 'aggregates were written');
  assert.ok(al1!.length > 0, 'alerts were written');
  assert.equal(a2, a1);
  assert.equal(al2, al1);
  assert.equal(o2, o1);
});

test('a silent meter is detected in event time while the others keep reporting, and the spike on another is alerted', async () => {
  const dir = tempDir();
  const input = meterFile(dir);
  const alertsPath = join(dir, 'alerts.ndjson');
  const opsPath = join(dir, 'ops.ndjson');
  await replay({ files: [input], hints: {}, noStore: true, alertsOut: alertsPath, opsOut: opsPath });
  const alerts = lines<AlertEvent>(alertsPath);
  const silence = alerts.filter((e) => e.alert.type === 'silence' && e.transition.kind === 'open');
  assert.deepEqual([...new Set(silence.map((e) => e.alert.key))], ['m-3'], 'only the silent meter');
  const t0 = Date.UTC(2025, 0, 6);
  const opened = silence[0]!.alert.openedAt;
  assert.ok(opened > t0 + 89 * 60_000 && opened < t0 + 93 * 60_000, `opened at ${new Date(opened).toISOString()}, right after the last reading + 1.5 intervals`);
  const resolved = alerts.find((e) => e.alert.id === silence[0]!.alert.id && e.transition.kind === 'resolve');
  assert.ok(resolved, 'resolved when the meter came back');
  const gaps = lines<OpsEvent>(opsPath).filter((o) => o.kind === 'gap' && o.key === 'm-3');
  assert.ok(gaps.some((g) => g.missed === 20), `a gap of 20 missed readings is on ops (${gaps.map((g) => g.missed).join(',')})`);
  const spikes = alerts.filter((e) => e.alert.type === 'spike' && e.transition.kind === 'open');
  assert.deepEqual([...new Set(spikes.map((e) => e.alert.key))], ['m-2']);
});

test('the London smart-meter excerpt replays with no flags: interval energy becomes kW and lands in the store', async () => {
  const dir = tempDir();
  const url = `duckdb:${join(dir, 'gp.duckdb')}`;
  const summary = await replay({ files: [join(FIXTURES, 'lcl-2meters-excerpt.csv')], hints: {}, store: url });
  assert.match(summary.inputs[0]!.layout, /key meter_id, time timestamp_utc \(iso\), interval 1800 s, metrics kwh_per_halfhour \(interval energy → kW\)/);
  const stream = Object.values(summary.streams).find((s) => s.readings > 0)!;
  assert.equal(stream.accepted, 300);
  assert.equal(stream.keys, 2);
  const store = createStore(url);
  await store.ready();
  try {
    const series = await store.querySeries({ key: 'MAC000002', metric: 'kwh_per_halfhour_kw', from: Date.UTC(2013, 0, 1), to: Date.UTC(2013, 0, 2), resolution: '15m' });
    assert.ok(series.points.length > 40);
    // 0.219 kWh in half an hour is an average of 0.438 kW.
    const first = series.points.find((p) => p.time === Date.UTC(2013, 0, 1))!;
    assert.ok(Math.abs(first.avg! - 0.438) < 1e-9, `first half hour is ${first.avg} kW`);
  } finally {
    await store.close();
  }
});

test('a London meter that reads 0 most of the time raises no outage (its zeros are how it works)', async () => {
  // MAC000004 reads 0 in three half-hours of four and ~0.17 kWh in the others; each zero after a
  // reading opened an outage (93 in these two weeks) before outage learned how often a device sits
  // at its floor. Its real gaps are still gaps.
  const dir = tempDir();
  const alertsPath = join(dir, 'alerts.ndjson');
  const summary = await replay({ files: [join(FIXTURES, 'lcl-mac000004-2weeks.csv')], hints: {}, noStore: true, alertsOut: alertsPath });
  const stream = Object.values(summary.streams).find((s) => s.readings > 0)!;
  assert.equal(stream.accepted, 672);
  const opened = lines<AlertEvent>(alertsPath).filter((e) => e.transition.kind === 'open');
  assert.ok(opened.length > 0, 'the other detectors still see this meter');
  assert.deepEqual(
    opened.filter((e) => e.alert.type === 'outage').map((e) => e.transition.explain),
    [],
  );
});

test('the AI4I excerpt replays as the machines stream with --key @file --time @row', async () => {
  const dir = tempDir();
  const aggregates = join(dir, 'agg.ndjson');
  const summary = await replay({
    files: [join(FIXTURES, 'ai4i2020-excerpt.csv')],
    stream: 'machines',
    hints: { key: '@file', time: '@row', rowInterval: 60_000, start: Date.UTC(2020, 0, 1) },
    noStore: true,
    aggregatesOut: aggregates,
  });
  assert.equal(summary.streams.machines!.accepted, 200);
  const rows = lines<{ window: string; key: string; metrics: Record<string, { avg: number | null }> }>(aggregates);
  const m = rows.find((r) => r.window === '15m')!;
  assert.equal(m.key, 'ai4i2020-excerpt');
  assert.ok(m.metrics.torque_nm!.avg! > 20 && m.metrics.torque_nm!.avg! < 60);
  assert.ok(m.metrics.air_temp_k!.avg! > 295 && m.metrics.air_temp_k!.avg! < 305);
});

test('bad input becomes ops records with field, expectation and value, and the replay goes on', async () => {
  const dir = tempDir();
  const t = Date.UTC(2025, 0, 6);
  const good = (i: number): string => JSON.stringify({ meterId: 'm-1', timestamp: t + i * 60_000, usageKw: 1 });
  const input = join(dir, 'bad.ndjson');
  writeFileSync(
    input,
    [
      good(0),
      '{"meterId":"m-1","timestamp":',
      '{"meterId":"m-1","timestamp":1736121660000,"usageKw":"abc"}',
      '{"timestamp":1736121660000,"usageKw":1}',
      '{"meterId":"m-1","usageKw":1}',
      '{"meterId":"m-1","timestamp":1736121660000,"usageKw":NaN}',
      JSON.stringify({ meterId: 'm-1', timestamp: t + 20 * 365 * 86_400_000, usageKw: 1 }),
      `{"meterId":"m-1","pad":"${'x'.repeat(10 * 1024 * 1024)}"}`,
      good(1),
    ].join('\n') + '\n',
  );
  const opsPath = join(dir, 'ops.ndjson');
  const summary = await replay({ files: [input], hints: {}, noStore: true, opsOut: opsPath });
  const ops = lines<OpsEvent>(opsPath);
  const byLine = new Map(ops.map((o) => [o.offset, o]));
  assert.equal(byLine.get(2)?.kind, 'invalid');
  assert.match(byLine.get(2)!.reason, /malformed JSON/);
  assert.deepEqual([byLine.get(3)?.field, byLine.get(3)?.expected, byLine.get(3)?.got], ['usageKw', 'a finite number', '"abc"']);
  assert.equal(byLine.get(4)?.field, 'meterId');
  assert.equal(byLine.get(5)?.field, 'timestamp');
  assert.equal(byLine.get(6)?.kind, 'invalid');
  assert.equal(byLine.get(7)?.kind, 'clock_skew');
  assert.match(byLine.get(8)!.reason, /exceeds the 1 MiB limit/);
  assert.equal(summary.streams.power!.accepted, 2, 'both good readings were processed');
});

test('--topic-partitions: each partition of the topic keeps its own event time, so readings of a partition that runs 5 minutes behind the other are on time, as in gridpulse process', async () => {
  const dir = tempDir();
  const meters = Array.from({ length: 8 }, (_, i) => `m-${i + 1}`);
  const behind = new Set(meters.filter((m) => partitionOfKey(m, 2) === 1));
  assert.ok(behind.size > 0 && behind.size < meters.length, 'the meters fall into both partitions');
  // In file order the meters of partition 1 arrive 5 minutes of event time behind those of partition 0.
  const t0 = Date.UTC(2025, 0, 6);
  const out: string[] = [];
  for (let i = 0; i < 120; i++) {
    for (const m of meters) {
      const step = behind.has(m) ? i - 5 : i;
      if (step < 0) continue;
      out.push(JSON.stringify({ meterId: m, siteId: 's-1', timestamp: t0 + step * 60_000, usageKw: 2, voltage: 230, current: 9, pf: 0.95 }));
    }
  }
  for (let step = 115; step < 120; step++) for (const m of behind) out.push(JSON.stringify({ meterId: m, siteId: 's-1', timestamp: t0 + step * 60_000, usageKw: 2, voltage: 230, current: 9, pf: 0.95 }));
  const input = join(dir, 'lagging.ndjson');
  writeFileSync(input, `${out.join('\n')}\n`);
  const plain = await replay({ files: [input], hints: {}, store: `duckdb:${join(dir, 'plain.duckdb')}` });
  const split = await replay({ files: [input], hints: {}, store: `duckdb:${join(dir, 'split.duckdb')}`, topicPartitions: 2 });
  assert.ok(plain.streams.power!.late > 100, `one event time for the file: the lagging meters' readings are late (${plain.streams.power!.late})`);
  assert.equal(split.streams.power!.late, 0, 'each partition its own event time: nothing is late');
  assert.equal(split.streams.power!.accepted, out.length);
  assert.equal(split.streams.power!.keys, meters.length);

  // The same as replaying each partition's lines on its own (what one Kafka partition's engine sees).
  const parts = [0, 1].map((p) => {
    const path = join(dir, `part-${p}.ndjson`);
    writeFileSync(path, `${out.filter((line) => partitionOfKey((JSON.parse(line) as { meterId: string }).meterId, 2) === p).join('\n')}\n`);
    return path;
  });
  const alone = await Promise.all(parts.map((path, p) => replay({ files: [path], hints: {}, store: `duckdb:${join(dir, `alone-${p}.duckdb`)}` })));
  for (const field of ['accepted', 'onTime', 'late', 'aggregates', 'amendments'] as const) {
    assert.equal(split.streams.power![field], alone[0]!.streams.power![field] + alone[1]!.streams.power![field], field);
  }
  assert.equal(split.alertTransitions, alone[0]!.alertTransitions + alone[1]!.alertTransitions);
  const counts = async (url: string): Promise<Record<string, number>> => {
    const store = createStore(url);
    await store.ready();
    try {
      return await store.counts();
    } finally {
      await store.close();
    }
  };
  const [both, first, second] = await Promise.all([counts(`duckdb:${join(dir, 'split.duckdb')}`), counts(`duckdb:${join(dir, 'alone-0.duckdb')}`), counts(`duckdb:${join(dir, 'alone-1.duckdb')}`)]);
  for (const table of ['readings', 'aggregates', 'alerts', 'transitions'] as const) assert.equal(both[table], first[table]! + second[table]!, table);
});

test('--topic-partitions and --partitions refuse what is not a whole number from 1 to 1024, and --topic-partitions refuses output files', async () => {
  const dir = tempDir();
  const input = meterFile(dir);
  await assert.rejects(replay({ files: [input], hints: {}, noStore: true, topicPartitions: 0 }), /--topic-partitions: expected a whole number from 1 to 1024, got 0/);
  await assert.rejects(replay({ files: [input], hints: {}, noStore: true, partitions: Number('four') }), /--partitions: expected a whole number from 1 to 1024, got NaN/);
  await assert.rejects(
    replay({ files: [input], hints: {}, noStore: true, topicPartitions: 4, alertsOut: join(dir, 'a.ndjson') }),
    /--topic-partitions: writes to the store only, as gridpulse process does; got --alerts-out as well/,
  );
});
