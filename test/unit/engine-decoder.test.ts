import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReadingDecoder, parseTime } from '../../src/engine/index.js';
import { testSchema } from '../helpers/schema.js';

const schema = testSchema({ metricNames: ['usageKw', 'voltage', 'current', 'pf'], idField: 'rid' });

/**
 * Decodes through the fast scanner (decodeText, and decodeBytes on the line inside a larger
 * buffer) and through JSON.parse + decodeObject, and returns the outcomes.
 */
function both(text: string): { fast: unknown; slow: unknown } {
  const a = new ReadingDecoder(schema);
  const b = new ReadingDecoder(schema);
  const c = new ReadingDecoder(schema);
  const fastError = a.decodeText(text, 1);
  const line = Buffer.from(text, 'utf8');
  const framed = Buffer.concat([Buffer.from('{"meterId":"before"}\n'), line, Buffer.from('\n{"meterId":"after"}')]);
  const bytesError = c.decodeBytes(framed, 21, 21 + line.length, 1);
  let slowError: unknown;
  try {
    slowError = b.decodeObject(JSON.parse(text), 1);
  } catch {
    slowError = 'malformed';
  }
  const view = (d: ReadingDecoder, e: unknown): unknown =>
    e ? (e === 'malformed' ? 'malformed' : { error: (e as { field: unknown }).field }) : { ...d.reading, values: [...d.reading.values].map((v) => (Number.isNaN(v) ? 'NaN' : v)) };
  const fast = fastError ? (fastError.reason.startsWith('malformed') ? 'malformed' : { error: fastError.field }) : view(a, null);
  const fromBytes = bytesError ? (bytesError.reason.startsWith('malformed') ? 'malformed' : { error: bytesError.field }) : view(c, null);
  assert.deepEqual(fromBytes, fast, `bytes and text decode alike: ${text}`);
  return { fast, slow: view(b, slowError) };
}

test('the fast scanner and JSON.parse decode the same readings, byte for byte', () => {
  const cases = [
    '{"meterId":"m-1","siteId":"s-1","timestamp":1736121600000,"usageKw":12.3,"voltage":229.8,"current":53.1,"pf":0.97}',
    ' { "meterId" : "m-1" , "timestamp" : "2025-01-06T00:00:00Z" , "usageKw" : -0.000123e+2 } ',
    '{"meterId":42,"timestamp":1736121600,"usageKw":1E3,"extra":{"nested":[1,2]}}',
    '{"meterId":"m-\\"q\\"","timestamp":1736121600000,"usageKw":1}',
    '{"meterId":"m-1","timestamp":1736121600000,"usageKw":"7.5","voltage":null}',
    '{"meterId":"m-1","timestamp":1736121600000,"usageKw":"7.5","voltage":null,"pf":""}',
    '{"meterId":"m-1","timestamp":1736121600000,"usageKw":" "}',
    '{"meterId":"m-1","timestamp":1736121600000,"usageKw":true}',
    '{"meterId":"m-1","timestamp":1736121600000,"usageKw":12345678901234567890}',
    '{"meterId":"m-1","timestamp":1736121600000,"usageKw":0.1,"usageKw":0.2}',
    '{"meterId":"m-1","timestamp":1736121600000,"usageKw":01}',
    '{"meterId":"m-1","timestamp":1736121600000,"usageKw":1.}',
    '{"meterId":"m-1","timestamp":1736121600000,"usageKw":NaN}',
    '{"meterId":"m-1","timestamp":1736121600000,"usageKw":1}x',
    '{"meterId":"m-1","timestamp":1736121600000,"usageKw":1e400}',
    '{"meterId":"m-1","timestamp":1736121600000,"rid":"r-9","usageKw":5e-324}',
    '{"meterId":"","timestamp":1736121600000,"usageKw":1}',
    '{"meterId":"m-1","timestamp":"yesterday","usageKw":1}',
    '{"meterId":"Zähler-Ost-1","siteId":"Straße 5","timestamp":1736121600000,"usageKw":1}',
    '{"meterId":"m-1","timestamp":1736121600000,"usageKw":1,"_backfill":true}',
    '{"meterId":"m-1","timestamp":1736121600000,"usageKw":1,"_backfill":true,"_backfill":false}',
    '{"meterId":"m-1","timestamp":1736121600000,"usageKw":1,"_backfill":"yes"}',
    '{"meterId":"m-1\tx","timestamp":1736121600000,"usageKw":1}',
    '{"meterId":"m-1","timestamp":1736121600000,"usageKw":1,"note":"a \\"quote\\""}',
    '{}',
    '[]',
    '',
  ];
  for (const text of cases) {
    const { fast, slow } = both(text);
    assert.deepEqual(fast, slow, text);
  }
});

test('random numbers decode exactly as JSON.parse does them', () => {
  let seed = 7;
  const next = (): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  for (let i = 0; i < 20_000; i++) {
    const magnitude = Math.floor(next() * 30) - 15;
    const value = (next() - 0.5) * 10 ** magnitude;
    const forms = [String(value), value.toFixed(Math.floor(next() * 8)), value.toExponential(Math.floor(next() * 10)), value.toPrecision(1 + Math.floor(next() * 17))];
    for (const form of forms) {
      const text = `{"meterId":"m","timestamp":1736121600000,"usageKw":${form}}`;
      const d = new ReadingDecoder(schema);
      assert.equal(d.decodeText(text, 1), null, text);
      assert.equal(Object.is(d.reading.values[0], JSON.parse(form)), true, `${form}: ${d.reading.values[0]} vs ${JSON.parse(form)}`);
    }
  }
});

test('times: epoch ms, epoch s and ISO-8601 with or without zone (no zone means UTC)', () => {
  assert.equal(parseTime(1736121600000, 'auto'), 1736121600000);
  assert.equal(parseTime(1736121600, 'auto'), 1736121600000);
  assert.equal(parseTime('2013-01-01 00:30:00', 'auto'), Date.UTC(2013, 0, 1, 0, 30));
  assert.equal(parseTime('2025-11-07T15:10:01Z', 'iso'), Date.UTC(2025, 10, 7, 15, 10, 1));
  assert.equal(parseTime('2025-11-07T17:10:01.250+02:00', 'auto'), Date.UTC(2025, 10, 7, 15, 10, 1, 250));
  assert.ok(Number.isNaN(parseTime('2025-02-31T00:00:00Z', 'auto')), '31 February is rejected');
  assert.ok(Number.isNaN(parseTime('soon', 'auto')));
  assert.ok(Number.isNaN(parseTime(1736121600000, 'iso')));
});

test('an empty string where a number belongs is a wrong type, not a missing value', () => {
  const d = new ReadingDecoder(schema);
  const problem = d.decodeText('{"meterId":"m-1","timestamp":1736121600000,"usageKw":"","voltage":230}', 3);
  assert.ok(problem);
  assert.equal(problem.field, 'usageKw');
  assert.equal(problem.expected, 'a finite number');
  assert.equal(problem.got, '""');
});

test('typical records take the scanner path, odd ones do not', async () => {
  const { FlatJsonScanner } = await import('../../src/engine/flat-json.js');
  const scanner = new FlatJsonScanner(['meterId', 'timestamp', 'usageKw']);
  assert.equal(scanner.scanText('{"meterId":"m-1","siteId":"s-1","timestamp":1736121600000,"usageKw":12.3,"pf":0.97}'), true);
  assert.equal(scanner.numbers[2], 12.3);
  assert.equal(scanner.scanText('{"meterId":"m-\\u0031","timestamp":1,"usageKw":1}'), false, 'escapes go to JSON.parse');
  assert.equal(scanner.scanText('{"meterId":"m-1","x":{"y":1},"usageKw":1}'), false, 'nesting goes to JSON.parse');
  const bytes = Buffer.from('xx{"meterId":"m-2","timestamp":5,"usageKw":-1.5}yy');
  assert.equal(scanner.scan(bytes, 2, bytes.length - 2), true, 'a record inside a larger buffer');
  assert.equal(scanner.stringOf(0), 'm-2');
  assert.equal(scanner.numbers[2], -1.5);
  assert.equal(scanner.scan(bytes, 2, bytes.length), false, 'trailing bytes are not part of the record');
});
