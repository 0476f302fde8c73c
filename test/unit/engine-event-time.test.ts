import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StreamEngine, StreamRouter, partitionOf } from '../../src/engine/index.js';
import { aggregateToJson, type Aggregate, type OpsEvent, type StreamSchema } from '../../src/model/index.js';
import { testSchema } from '../helpers/schema.js';

const T0 = Date.UTC(2025, 0, 6, 0, 0, 0);
const SEC = 1000;
const MIN = 60_000;

interface Run {
  aggregates: Aggregate[];
  ops: OpsEvent[];
  engine: StreamEngine;
  router: StreamRouter;
}

function run(schema: StreamSchema, lines: Array<Record<string, unknown>>, partitions = 1): Run {
  const aggregates: Aggregate[] = [];
  const ops: OpsEvent[] = [];
  const engine = new StreamEngine({ schema, detectors: [], partitions, outputs: { aggregate: (a) => aggregates.push(a), ops: (o) => ops.push(o) } });
  const router = new StreamRouter([engine]);
  lines.forEach((line, i) => router.processText(JSON.stringify(line), i + 1));
  return { aggregates, ops, engine, router };
}

function reading(meterId: string, time: number, usageKw: number): Record<string, unknown> {
  return { meterId, siteId: 's-1', timestamp: time, usageKw };
}

/** Final result per window: the highest revision of each (key, window, start). */
function finalWindows(aggregates: Aggregate[]): Map<string, ReturnType<typeof aggregateToJson>> {
  const out = new Map<string, ReturnType<typeof aggregateToJson>>();
  for (const a of aggregates) {
    const id = `${a.key}|${a.window}|${a.start}`;
    const prev = out.get(id);
    if (!prev || prev.revision <= a.revision) out.set(id, aggregateToJson(a));
  }
  return out;
}

/** Floating-point sums depend on the order of addition in their last bits: compare to 12 significant digits. */
function stripRevision(m: Map<string, ReturnType<typeof aggregateToJson>>): unknown {
  const rows = Object.fromEntries([...m.entries()].sort().map(([k, v]) => [k, { ...v, revision: 0 }]));
  return JSON.parse(JSON.stringify(rows, (_k, v: unknown) => (typeof v === 'number' && !Number.isInteger(v) ? Number(v.toPrecision(12)) : v)));
}

test('out-of-order readings within the bound give the same aggregates as in-order ones', () => {
  const inOrder: Array<Record<string, unknown>> = [];
  for (let i = 0; i < 60; i++) inOrder.push(reading('m-1', T0 + i * 10 * SEC, 10 + (i % 7)));
  // Shuffle within 90 s (less than the 120 s out-of-orderness bound): swap neighbours in blocks of 9.
  const shuffled: Array<Record<string, unknown>> = [];
  for (let b = 0; b < inOrder.length; b += 9) shuffled.push(...inOrder.slice(b, b + 9).reverse());
  const a = run(testSchema(), inOrder);
  a.router.finish();
  const b = run(testSchema(), shuffled);
  b.router.finish();
  assert.equal(b.engine.stats.late, 0, 'nothing is LATE within the bound');
  assert.equal(b.engine.stats.tooLate, 0);
  assert.ok(b.ops.some((o) => o.kind === 'out_of_order'), 'out-of-order arrivals are reported on ops');
  const fa = finalWindows(a.aggregates);
  const fb = finalWindows(b.aggregates);
  assert.equal(fa.size, 10 + 2, 'ten 1-minute windows and two 5-minute windows');
  assert.deepEqual(stripRevision(fb), stripRevision(fa));
  const first = fa.get(`m-1|1m|${T0}`)!;
  assert.equal(first.count, 6);
  assert.equal(first.metrics.usageKw!.sum, 10 + 11 + 12 + 13 + 14 + 15);
  assert.equal(first.metrics.usageKw!.first, 10);
  assert.equal(first.metrics.usageKw!.last, 15);
});

test('a LATE reading amends a closed window and the amendment is emitted with a higher revision', () => {
  const lines: Array<Record<string, unknown>> = [];
  for (let i = 0; i <= 8 * 6; i++) lines.push(reading('m-1', T0 + i * 10 * SEC, 10)); // 0 .. 8 min
  const r = run(testSchema(), lines);
  // Watermark is now 8 min − 2 min = 6 min: the window [0, 1 min) was emitted.
  const before = r.aggregates.filter((a) => a.window === '1m' && a.start === T0);
  assert.equal(before.length, 1);
  assert.equal(before[0]!.revision, 0);
  assert.equal(before[0]!.count, 6);
  r.router.processText(JSON.stringify(reading('m-1', T0 + 30 * SEC + 500, 40)), 100);
  const lateOps = r.ops.filter((o) => o.kind === 'late');
  assert.equal(lateOps.length, 1);
  assert.equal(lateOps[0]!.watermark, T0 + 6 * MIN);
  const after = r.aggregates.filter((a) => a.window === '1m' && a.start === T0);
  assert.equal(after.length, 2, 'the amended window is emitted again');
  const amended = aggregateToJson(after[1]!);
  assert.equal(amended.revision, 1);
  assert.equal(amended.count, 7);
  assert.equal(amended.metrics.usageKw!.max, 40);
  assert.equal(amended.metrics.usageKw!.sum, 100);
  // The 5-minute window [0, 5 min) was also closed and is amended too.
  const five = r.aggregates.filter((a) => a.window === '5m' && a.start === T0);
  assert.equal(five.at(-1)!.revision, 1);
  assert.equal(five.at(-1)!.count, 31);
});

test('a TOO_LATE reading goes to ops with the watermark at its arrival and changes nothing', () => {
  const lines: Array<Record<string, unknown>> = [];
  for (let i = 0; i <= 20 * 6; i++) lines.push(reading('m-1', T0 + i * 10 * SEC, 10)); // 0 .. 20 min
  const r = run(testSchema(), lines);
  const emitted = r.aggregates.length;
  // Watermark 18 min; allowed lateness 10 min: anything before 8 min is too late.
  r.router.processText(JSON.stringify(reading('m-1', T0 + 2 * MIN + 5 * SEC, 999)), 500);
  assert.equal(r.engine.stats.tooLate, 1);
  const tooLate = r.ops.filter((o) => o.kind === 'too_late');
  assert.equal(tooLate.length, 1);
  assert.equal(tooLate[0]!.watermark, T0 + 18 * MIN);
  assert.equal(tooLate[0]!.offset, 500);
  assert.equal(tooLate[0]!.key, 'm-1');
  assert.match(tooLate[0]!.reason, /allowed lateness/);
  assert.equal(r.aggregates.length, emitted, 'no aggregate was amended');
});

test('an idle partition does not hold back the windows of the others', () => {
  // Two devices on different partitions; one stops after a minute, the other keeps reporting.
  const keys = ['m-1', 'm-2', 'm-3', 'm-4', 'm-5'];
  const a = keys[0]!;
  const b = keys.find((k) => partitionOf(k, 2) !== partitionOf(a, 2))!;
  const lines: Array<Record<string, unknown>> = [];
  for (let i = 0; i <= 30 * 6; i++) {
    lines.push(reading(a, T0 + i * 10 * SEC, 5));
    if (i < 6) lines.push(reading(b, T0 + i * 10 * SEC + 1, 7));
  }
  const r = run(testSchema(), lines, 2);
  // Without idleness the watermark would stay at b's last time − 2 min and nothing would fire.
  assert.ok(r.engine.watermark >= T0 + 27 * MIN, `watermark advanced to ${new Date(r.engine.watermark).toISOString()}`);
  const aWindows = r.aggregates.filter((x) => x.key === a && x.window === '1m');
  assert.ok(aWindows.length >= 27, `active device's windows fired (${aWindows.length})`);
  const bWindows = r.aggregates.filter((x) => x.key === b && x.window === '1m');
  assert.equal(bWindows.length, 1, "the idle device's own window was closed by the others' time too");
});

test('bad records become invalid ops events naming field, expectation and value, and processing goes on', () => {
  const r = run(testSchema(), []);
  const bad = [
    '{"meterId":"m-1","timestamp":',
    '{"meterId":"m-1","timestamp":1736121600000,"usageKw":"abc"}',
    '{"timestamp":1736121600000,"usageKw":1}',
    '{"meterId":"m-1","usageKw":1}',
    '{"meterId":"m-1","timestamp":1736121600000,"usageKw":NaN}',
    '[1,2]',
  ];
  bad.forEach((line, i) => r.router.processText(line, i + 1));
  r.router.processText(JSON.stringify(reading('m-1', T0, 3)), 7);
  r.router.processText(JSON.stringify(reading('m-1', T0 + 3 * 365 * 86_400_000, 3)), 8);
  const invalid = r.ops.filter((o) => o.kind === 'invalid');
  assert.equal(invalid.length, 6);
  assert.deepEqual(
    invalid.map((o) => o.offset),
    [1, 2, 3, 4, 5, 6],
  );
  assert.equal(invalid[1]!.field, 'usageKw');
  assert.equal(invalid[1]!.expected, 'a finite number');
  assert.equal(invalid[1]!.got, '"abc"');
  assert.equal(invalid[2]!.field, 'meterId');
  assert.equal(invalid[3]!.field, 'timestamp');
  assert.match(invalid[4]!.reason, /malformed JSON/);
  const skew = r.ops.filter((o) => o.kind === 'clock_skew');
  assert.equal(skew.length, 1);
  assert.equal(skew[0]!.offset, 8);
  assert.equal(r.engine.stats.accepted, 1);
  assert.equal(r.engine.watermark, T0 - 120_000, 'the far-future reading did not move the watermark');
});

test('duplicates are reported and counted once', () => {
  const line = reading('m-1', T0, 3);
  const r = run(testSchema(), [line, reading('m-1', T0 + 10 * SEC, 4), line]);
  r.router.finish();
  assert.equal(r.ops.filter((o) => o.kind === 'duplicate').length, 1);
  const w = finalWindows(r.aggregates).get(`m-1|1m|${T0}`)!;
  assert.equal(w.count, 2);
});

test('out of order is judged per device: a fleet whose devices interleave reports nothing, a device that goes back on itself is reported with its own lag', () => {
  const lines: Array<Record<string, unknown>> = [];
  // m-2's readings are stamped 4 s before m-1's and arrive after them: behind the newest event of
  // the stream, never behind m-2's own newest.
  for (let i = 0; i < 30; i++) {
    lines.push(reading('m-1', T0 + i * 10 * SEC, 10));
    lines.push(reading('m-2', T0 + i * 10 * SEC - 4 * SEC, 20));
  }
  const fleet = run(testSchema(), lines);
  assert.deepEqual(fleet.ops.filter((o) => o.kind === 'out_of_order'), [], 'devices interleaving with each other are not out of order');
  // m-3 sends 12:05:00, then 12:04:30: the second is 30 s behind its own device's newest.
  lines.push(reading('m-3', T0 + 300 * SEC, 5), reading('m-3', T0 + 270 * SEC, 5));
  const back = run(testSchema(), lines);
  const reported = back.ops.filter((o) => o.kind === 'out_of_order');
  assert.equal(reported.length, 1, JSON.stringify(reported));
  assert.equal(reported[0]!.key, 'm-3');
  assert.equal(reported[0]!.time, T0 + 270 * SEC);
  assert.equal(reported[0]!.lagMs, 30 * SEC);
  assert.match(reported[0]!.reason, /after a reading of the same device 30000 ms newer/);
});
