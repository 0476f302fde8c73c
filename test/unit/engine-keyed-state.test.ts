import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alignDown, ReadingDecoder, StreamEngine, StreamRouter } from '../../src/engine/index.js';
import type { Aggregate, OpsEvent } from '../../src/model/index.js';
import { testSchema } from '../helpers/schema.js';

const T0 = Date.UTC(2025, 0, 6, 0, 0, 0);

/** Readings of `meters` meters every 10 s, in time order, with one late reading and one duplicate. */
function lines(meters: number, steps: number): string[] {
  const out: string[] = [];
  for (let s = 0; s < steps; s++) {
    for (let m = 0; m < meters; m++) {
      out.push(JSON.stringify({ meterId: `m-${m}`, siteId: `s-${m % 3}`, timestamp: T0 + s * 10_000 + m, usageKw: 5 + ((s * 7 + m * 3) % 11) }));
    }
  }
  out.splice(out.length - 5, 0, JSON.stringify({ meterId: 'm-1', siteId: 's-1', timestamp: T0 + (steps - 20) * 10_000 + 3, usageKw: 50 }));
  out.push(out[out.length - 1]!);
  return out;
}

function collect(): { aggregates: string[]; ops: OpsEvent[]; engine: StreamEngine } {
  const aggregates: string[] = [];
  const ops: OpsEvent[] = [];
  const engine = new StreamEngine({
    schema: testSchema(),
    detectors: [],
    partitions: 2,
    outputs: { aggregate: (a: Aggregate) => aggregates.push(JSON.stringify(a)), ops: (o) => ops.push(o) },
  });
  return { aggregates, ops, engine };
}

test('devices found by the decoder key id give the same aggregates and ops as devices found by their id string', () => {
  const input = lines(7, 120);
  const byRouter = collect();
  const router = new StreamRouter([byRouter.engine]);
  input.forEach((line, i) => router.processText(line, i + 1));
  router.finish();

  // The same readings given without key ids: the engine looks every device up by its id string.
  const byString = collect();
  const decoder = new ReadingDecoder(byString.engine.schema);
  input.forEach((line, i) => {
    assert.equal(decoder.decodeText(line, i + 1), null);
    byString.engine.process(decoder.reading);
  });
  byString.engine.finish();

  assert.ok(byRouter.aggregates.length > 100);
  assert.deepEqual(byRouter.aggregates, byString.aggregates);
  assert.deepEqual(
    byRouter.ops.map((o) => o.kind),
    byString.ops.map((o) => o.kind),
  );
  assert.ok(byRouter.ops.some((o) => o.kind === 'duplicate'), 'the duplicate is still recognised');
  assert.ok(byRouter.ops.some((o) => o.kind === 'late'), 'the late reading is still classified');
});

test('key ids that do not match the device (another decoder numbered them) never mix up devices', () => {
  const input = lines(5, 60);
  const reference = collect();
  const refDecoder = new ReadingDecoder(reference.engine.schema);
  for (const [i, line] of input.entries()) {
    assert.equal(refDecoder.decodeText(line, i + 1), null);
    reference.engine.process(refDecoder.reading);
  }
  reference.engine.finish();

  // The same readings, each given a key id that rotates over 0..3 whatever its device: every id
  // stands for several devices in turn.
  const mixed = collect();
  const decoder = new ReadingDecoder(mixed.engine.schema);
  for (const [i, line] of input.entries()) {
    assert.equal(decoder.decodeText(line, i + 1), null);
    mixed.engine.process(decoder.reading, i % 4);
  }
  mixed.engine.finish();
  assert.equal(mixed.engine.keyCount, 5);
  assert.deepEqual(mixed.aggregates, reference.aggregates);
});

test('the decoder hands out one string per device id and a stable key id for it', () => {
  const decoder = new ReadingDecoder(testSchema());
  decoder.decodeText('{"meterId":"m-42","siteId":"s-1","timestamp":1736121600000,"usageKw":1}', 1);
  const key = decoder.reading.key;
  const id = decoder.keyId;
  decoder.decodeText('{"meterId":"m-7","siteId":"s-1","timestamp":1736121600000,"usageKw":1}', 2);
  assert.notEqual(decoder.keyId, id);
  decoder.decodeText('{"meterId":"m-42","siteId":"s-2","timestamp":1736121610000,"usageKw":2}', 3);
  assert.equal(decoder.reading.key, 'm-42');
  assert.equal(decoder.keyId, id);
  assert.ok(Object.is(decoder.reading.key, key));
  assert.equal(decoder.reading.site, 's-2');
  // A record the scanner does not take (an escape) goes the general way: no key id, same key.
  decoder.decodeText('{"meterId":"m-42","siteId":"s\\u002d2","timestamp":1736121620000,"usageKw":2}', 4);
  assert.equal(decoder.reading.key, 'm-42');
  assert.equal(decoder.reading.site, 's-2');
  assert.equal(decoder.keyId, -1);
});

test('alignDown gives the start of the slot for times before and after the epoch, integer or not', () => {
  const exact = (time: number, size: number): number => time - (((time % size) + size) % size);
  const cases: Array<[number, number]> = [
    [T0 + 14_999, 15_000],
    [T0 + 15_000, 15_000],
    [-1, 60_000],
    [-60_000, 60_000],
    [0, 900_000],
    [T0 + 0.5, 15_000],
    [-0.25, 1000],
    [2 ** 53 - 1, 15_000],
    [T0 + 7, 0.3],
  ];
  for (const [time, size] of cases) assert.equal(alignDown(time, size), exact(time, size), `alignDown(${time}, ${size})`);
  assert.equal(alignDown(T0 + 14_999, 15_000), T0);
  assert.equal(alignDown(-1, 60_000), -60_000);
});
