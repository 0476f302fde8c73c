// Backfill readings (forwarded by an edge agent after an outage, marked `"_backfill": true`):
// decoded into Reading.backfill, aggregated like any reading, reported on ops as late data, and
// findings from them open no alerts — while a condition they clear still resolves its alert.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAlertManager } from '../../src/alerts/index.js';
import { defaultConfig } from '../../src/config/index.js';
import { createDetectors } from '../../src/detectors/index.js';
import { ReadingDecoder, StreamEngine, StreamRouter } from '../../src/engine/index.js';
import { aggregateToJson, copyReading, type Aggregate, type AlertEvent, type Finding, type OpsEvent, type StreamSchema } from '../../src/model/index.js';
import { testSchema } from '../helpers/schema.js';

const T0 = Date.UTC(2026, 0, 5, 8, 0, 0);
const STEP = 10_000;

test('the decoder reads the backfill marker on the fast path and through JSON.parse alike', () => {
  const schema = testSchema({ metricNames: ['usageKw'] });
  const cases: Array<[string, boolean]> = [
    ['{"meterId":"m-1","timestamp":1736121600000,"usageKw":1,"_backfill":true}', true],
    ['{"_backfill" : true , "meterId":"m-1","timestamp":1736121600000,"usageKw":1}', true],
    ['{"meterId":"m-1","timestamp":1736121600000,"usageKw":1,"_backfill":false}', false],
    ['{"meterId":"m-1","timestamp":1736121600000,"usageKw":1,"_backfill":null}', false],
    ['{"meterId":"m-1","timestamp":1736121600000,"usageKw":1}', false],
    // The marker's name as a value is not the marker.
    ['{"meterId":"_backfill","timestamp":1736121600000,"usageKw":1,"note":"_backfill"}', false],
    ['{"meterId":"m-1","note":"_backfill","timestamp":1736121600000,"usageKw":1,"_backfill":true}', true],
    // A nested object sends the record to JSON.parse, which must agree.
    ['{"meterId":"m-1","timestamp":1736121600000,"usageKw":1,"x":{"_backfill":false},"_backfill":true}', true],
  ];
  for (const [text, expected] of cases) {
    const fast = new ReadingDecoder(schema);
    assert.equal(fast.decodeText(text, 1), null, text);
    assert.equal(fast.reading.backfill, expected, `decodeText ${text}`);
    const slow = new ReadingDecoder(schema);
    assert.equal(slow.decodeObject(JSON.parse(text), 1), null, text);
    assert.equal(slow.reading.backfill, expected, `decodeObject ${text}`);
  }
  // The decoder reuses its Reading: a live record after a backfill one is live again.
  const decoder = new ReadingDecoder(schema);
  decoder.decodeText(cases[0]![0], 1);
  assert.equal(decoder.reading.backfill, true);
  decoder.decodeText(cases[4]![0], 2);
  assert.equal(decoder.reading.backfill, false);
  assert.equal(copyReading({ ...decoder.reading, backfill: true }).backfill, true, 'copyReading keeps the mark');
});

test('a backfill marker that is not a boolean is refused, naming the field', () => {
  const schema = testSchema();
  for (const text of ['{"meterId":"m-1","timestamp":1736121600000,"usageKw":1,"_backfill":"yes"}', '{"meterId":"m-1","timestamp":1736121600000,"usageKw":1,"_backfill":1}']) {
    const problem = new ReadingDecoder(schema).decodeText(text, 1);
    assert.ok(problem, text);
    assert.equal(problem.field, '_backfill');
    assert.equal(problem.expected, 'true or false');
    assert.equal(problem.key, 'm-1');
  }
});

interface Run {
  aggregates: Aggregate[];
  alerts: AlertEvent[];
  findings: Finding[];
  ops: OpsEvent[];
  engine: StreamEngine;
}

/** The platform's engine on the built-in power stream with its default detectors and alert manager. */
function run(schema: StreamSchema, records: Array<Record<string, unknown>>): Run {
  const out: Run = { aggregates: [], alerts: [], findings: [], ops: [], engine: undefined as unknown as StreamEngine };
  out.engine = new StreamEngine({
    schema,
    detectors: createDetectors(schema),
    partitions: 1,
    createFindingHandler: (emit) => createAlertManager({ policy: schema.alerts, emit }),
    outputs: { aggregate: (a) => out.aggregates.push(a), alert: (e) => out.alerts.push(e), finding: (f) => out.findings.push(f), ops: (o) => out.ops.push(o) },
  });
  const router = new StreamRouter([out.engine]);
  records.forEach((record, i) => router.processText(JSON.stringify(record), i + 1));
  router.finish();
  return out;
}

/** Meter m-1 at ~10 kW every 10 s for `count` readings, with 30 kW at `spikeAt`..`spikeAt+2`. */
function meter(count: number, spikeAt: number, key = 'm-1'): Array<Record<string, unknown>> {
  return Array.from({ length: count }, (_, i) => ({ meterId: key, siteId: 's-1', timestamp: T0 + i * STEP, usageKw: i >= spikeAt && i < spikeAt + 3 ? 30 : 10 + (i % 3) * 0.1 }));
}

/** Final value per window (highest revision), as plain JSON. */
function finalWindows(aggregates: Aggregate[]): Record<string, unknown> {
  const out: Record<string, ReturnType<typeof aggregateToJson>> = {};
  for (const a of aggregates) {
    const id = `${a.key}|${a.window}|${a.start}`;
    const previous = out[id];
    if (previous === undefined || previous.revision <= a.revision) out[id] = aggregateToJson(a);
  }
  return JSON.parse(JSON.stringify(Object.fromEntries(Object.entries(out).map(([k, v]) => [k, { ...v, revision: 0 }])))) as Record<string, unknown>;
}

test('a spike inside backfilled readings is aggregated and recorded, but opens no alert; the same spike live does', () => {
  const schema = defaultConfig().streams.power!;
  const readings = meter(180, 90);
  const live = run(schema, readings);
  const opened = live.alerts.filter((e) => e.transition.kind === 'open' && e.alert.type === 'spike');
  assert.equal(opened.length, 1, `live: one spike alert opens (got ${live.alerts.map((e) => `${e.alert.type}:${e.transition.kind}`).join(', ')})`);

  // An outage from reading 60 to 150: those readings reach the platform as backfill.
  const outage = readings.map((r, i) => (i >= 60 && i < 150 ? { ...r, _backfill: true } : r));
  const backfilled = run(schema, outage);
  assert.deepEqual(
    backfilled.alerts.filter((e) => e.alert.type === 'spike').map((e) => e.transition.kind),
    [],
    'no spike alert from the backfilled spike',
  );
  const spikeFindings = backfilled.findings.filter((f) => f.type === 'spike' && f.active);
  assert.ok(spikeFindings.length > 0, 'the detector still found the spike');
  assert.ok(spikeFindings.every((f) => f.backfill === true), 'and marked its findings backfill');
  assert.equal(backfilled.engine.stats.backfillFindings, backfilled.findings.filter((f) => f.backfill).length);

  // Every backfill reading is reported once on ops as late data, with the reason saying backfill.
  const late = backfilled.ops.filter((o) => o.kind === 'late');
  assert.equal(late.length, 90);
  assert.ok(late.every((o) => o.reason.startsWith('backfill: ')), late[0]?.reason);
  assert.deepEqual(
    late.map((o) => o.time),
    outage.filter((r) => r._backfill === true).map((r) => r.timestamp),
  );
  assert.equal(backfilled.engine.stats.backfill, 90);
  assert.equal(backfilled.engine.stats.accepted, 180, 'nothing is dropped');

  // The aggregates do not depend on how the readings travelled.
  assert.deepEqual(finalWindows(backfilled.aggregates), finalWindows(live.aggregates));
});

test('backfill readings behind the watermark amend closed windows, and their ops record says so', () => {
  const schema = defaultConfig().streams.power!;
  // m-2 reports live through the outage and moves the watermark; m-1's readings of minutes 5..10 come afterwards as backfill.
  const m1 = meter(60, 1_000);
  const m2 = meter(60, 1_000, 'm-2');
  const order = [...m1.slice(0, 30).flatMap((r, i) => [r, m2[i]!]), ...m2.slice(30), ...m1.slice(30).map((r) => ({ ...r, _backfill: true }))];
  const result = run(schema, order);
  const late = result.ops.filter((o) => o.kind === 'late');
  assert.equal(late.length, 30);
  assert.ok(late.some((o) => o.reason.includes('closed windows were amended')), late[0]?.reason);
  assert.ok(
    result.aggregates.some((a) => a.key === 'm-1' && a.revision > 0),
    'a closed window of m-1 was amended',
  );
  assert.equal(result.engine.stats.late, late.filter((o) => o.reason.includes('amended')).length, 'LATE backfill readings count as late');
  const all = run(schema, [...m1, ...m2]);
  assert.deepEqual(finalWindows(result.aggregates), finalWindows(all.aggregates), 'the amended windows hold every reading');
});

test('a silence alert opened while a device was cut off is resolved by its backfill', () => {
  const schema = defaultConfig().streams.power!;
  // m-1 reports for 10 min, goes quiet (its edge is cut off) while m-2 goes on for 20 min;
  // then m-1's readings of the gap arrive as backfill.
  const m1 = meter(120, 1_000);
  const m2 = meter(120, 1_000, 'm-2');
  const order = [...m1.slice(0, 60).flatMap((r, i) => [r, m2[i]!]), ...m2.slice(60), ...m1.slice(60).map((r) => ({ ...r, _backfill: true }))];
  const result = run(schema, order);
  const silence = result.alerts.filter((e) => e.alert.type === 'silence' && e.alert.key === 'm-1').map((e) => e.transition.kind);
  assert.equal(silence[0], 'open', `silence of m-1 opened live (got ${silence.join(', ')})`);
  assert.ok(silence.includes('resolve'), `and the backfill resolved it (got ${silence.join(', ')})`);
  assert.ok(
    result.findings.some((f) => f.type === 'silence' && f.key === 'm-1' && !f.active && f.backfill === true),
    'the clearing finding came from a backfill reading',
  );
});
