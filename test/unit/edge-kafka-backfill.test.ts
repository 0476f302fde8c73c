// The edge agent's backfill marker for Kafka (`markBackfill`): a reading sent straight to a raw topic
// as backfill carries `"_backfill": true` exactly as the platform's HTTP ingest would have set it
// (`{ ...reading, _backfill: true }`), and the engine's decoder reads it on its fast path and
// through JSON.parse alike.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReadingDecoder } from '../../src/engine/index.js';
import { markBackfill } from '../../src/edge/kafka-sender.js';
import { testSchema } from '../helpers/schema.js';

const text = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
const marked = (json: string): string => text(markBackfill(Buffer.from(json, 'utf8')));
/** What the HTTP ingest stores for a reading of a backfill request. */
const asIngest = (json: string): string => JSON.stringify({ ...(JSON.parse(json) as Record<string, unknown>), _backfill: true });

test('a reading gets "_backfill": true as its last member, without being parsed, and reads as the HTTP ingest would have stored it', () => {
  const reading = '{"meterId":"m-1","siteId":"s-1","timestamp":1736121600000,"usageKw":1.25,"readingId":"r0RnVss5-mLaToyP"}';
  assert.equal(marked(reading), '{"meterId":"m-1","siteId":"s-1","timestamp":1736121600000,"usageKw":1.25,"readingId":"r0RnVss5-mLaToyP","_backfill":true}');
  assert.equal(marked(reading), asIngest(reading));
  assert.equal(marked('{}'), '{"_backfill":true}');
  assert.deepEqual(JSON.parse(marked('{ }')), { _backfill: true });
  // Whitespace around and inside (JSON from elsewhere than the agent's own intake) stays valid JSON.
  assert.deepEqual(JSON.parse(marked('  {\n  "meterId" : "m-1" ,\n  "usageKw" : 2\n}\n')), { meterId: 'm-1', usageKw: 2, _backfill: true });
  // Multi-byte text is kept byte for byte.
  const unicode = '{"meterId":"zähler-7","site":"電力","usageKw":3}';
  assert.equal(marked(unicode), '{"meterId":"zähler-7","site":"電力","usageKw":3,"_backfill":true}');
  // A view into a larger buffer (as the spool hands out records) is read within its bounds.
  const big = Buffer.from(`xx${reading}yy`, 'utf8');
  assert.equal(text(markBackfill(big.subarray(2, 2 + Buffer.byteLength(reading)))), asIngest(reading));
});

test('a reading that names the field already is rewritten so the name appears once, set to true', () => {
  for (const reading of [
    '{"meterId":"m-1","timestamp":1736121600000,"usageKw":1,"_backfill":false}',
    '{"_backfill":null,"meterId":"m-1","timestamp":1736121600000,"usageKw":1}',
    '{"meterId":"m-1","timestamp":1736121600000,"usageKw":1,"_backfill":true}',
    // Only in a value: the text is parsed (the name is not there as a member), the value kept.
    '{"meterId":"m-1","note":"\\"_backfill\\"","timestamp":1736121600000,"usageKw":1}',
  ]) {
    const result = marked(reading);
    assert.equal(result, asIngest(reading), reading);
    assert.equal(Object.keys(JSON.parse(result) as object).filter((name) => name === '_backfill').length, 1, result);
    assert.equal(result.match(/"_backfill":/g)?.length, 1, `one member named _backfill in ${result}`);
  }
});

test('text that is not a JSON object is passed on unchanged, for the engine to reject as it would over HTTP', () => {
  for (const value of ['[1,2]', '"reading"', '42', '', '   ', '{"meterId":"m-1"', 'not json}']) {
    const bytes = Buffer.from(value, 'utf8');
    assert.equal(markBackfill(bytes), bytes, JSON.stringify(value));
  }
  // Looks like an object at both ends and names the field, but does not parse: unchanged too.
  const broken = Buffer.from('{"_backfill":tru}', 'utf8');
  assert.equal(markBackfill(broken), broken);
});

test('the engine decodes a marked reading as backfill, on the fast path and through JSON.parse', () => {
  const schema = testSchema({ metricNames: ['usageKw'] });
  for (const reading of [
    '{"meterId":"m-1","timestamp":1736121600000,"usageKw":1}',
    '{"meterId":"m-1","timestamp":1736121600000,"usageKw":1,"_backfill":false}',
    '{"meterId":"m-1","timestamp":1736121600000,"usageKw":1,"nested":{"_backfill":false}}',
  ]) {
    const result = marked(reading);
    const fast = new ReadingDecoder(schema);
    assert.equal(fast.decodeText(result, 1), null, result);
    assert.equal(fast.reading.backfill, true, `decodeText ${result}`);
    const slow = new ReadingDecoder(schema);
    assert.equal(slow.decodeObject(JSON.parse(result), 1), null, result);
    assert.equal(slow.reading.backfill, true, `decodeObject ${result}`);
    // Unmarked, the same reading is live.
    const live = new ReadingDecoder(schema);
    assert.equal(live.decodeText(reading, 1), null);
    assert.equal(live.reading.backfill, false, reading);
  }
});
