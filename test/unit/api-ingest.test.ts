import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { hashToken } from '../../src/api/index.js';
import { errorOf, meterReading, settle, startHarness, type Harness } from './api-harness.js';

interface IngestJson {
  accepted: number;
  rejected: Array<{ index: number; reason: string; field?: string; expected?: string; got?: string }>;
}

describe('HTTP ingest in open mode', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ limits: { bodyBytes: 64 * 1024, batchItems: 100 }, api: { maxDecompressedBytes: 256 * 1024 } });
  });
  after(() => h.close());

  const post = (url: string, payload: string | Buffer | Readable, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
    h.app.inject({ method: 'POST', url, payload, headers });

  test('a JSON object is one reading, stored and visible as the device\'s recent reading', async () => {
    const response = await post('/v1/readings', JSON.stringify(meterReading('m-obj', 0)));
    assert.equal(response.statusCode, 200);
    assert.deepEqual(response.json(), { accepted: 1, rejected: [] });
    await settle(h);
    const recent = await h.app.inject({ url: '/api/devices/m-obj/readings' });
    const readings = recent.json<{ readings: Array<{ key: string; values: Record<string, number | null> }> }>().readings;
    assert.equal(readings.length, 1);
    assert.equal(readings[0]?.values['usageKw'], 4);
  });

  test('a JSON array: each bad item is listed with its index and reason, the rest are accepted', async () => {
    const items = [meterReading('m-arr', 0), { meterId: 'm-arr', usageKw: 1 }, meterReading('m-arr', 1, { usageKw: 'abc' }), meterReading('m-arr', 2)];
    const response = await post('/v1/readings', JSON.stringify(items));
    assert.equal(response.statusCode, 200);
    const body = response.json<IngestJson>();
    assert.equal(body.accepted, 2);
    assert.deepEqual(body.rejected.map((r) => [r.index, r.field]), [[1, 'timestamp'], [2, 'usageKw']]);
    assert.ok(body.rejected.every((r) => r.reason.length > 0));
  });

  test('NDJSON: a line that is not JSON is rejected with its line index; blank lines are skipped; the rest go in', async () => {
    const lines = [JSON.stringify(meterReading('m-nd', 0)), '{"meterId": "m-nd", oops', '', JSON.stringify(meterReading('m-nd', 1)), JSON.stringify({ meterId: 'm-nd' })];
    const response = await post('/v1/streams/power/readings', lines.join('\n') + '\n', { 'content-type': 'application/x-ndjson' });
    assert.equal(response.statusCode, 200);
    const body = response.json<IngestJson>();
    assert.equal(body.accepted, 2);
    assert.deepEqual(body.rejected.map((r) => r.index), [1, 4]);
    assert.match(body.rejected[0]?.reason ?? '', /line 2 is not JSON/);
    assert.equal(body.rejected[1]?.field, 'timestamp');
  });

  test('gzip bodies are read (Content-Encoding: gzip)', async () => {
    const payload = gzipSync(JSON.stringify([meterReading('m-gz', 0), meterReading('m-gz', 1)]));
    const response = await post('/v1/readings', payload, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    assert.equal(response.statusCode, 200);
    assert.equal(response.json<IngestJson>().accepted, 2);
  });

  test('a stream named in the URL gets the readings; an unknown stream is 404 naming the streams', async () => {
    const machine = { machine_id: 'machine-001', timestamp: '2025-01-01T00:00:00Z', air_temp_k: 299, process_temp_k: 309, rpm: 1500, torque_nm: 40, tool_wear_min: 5 };
    const ok = await post('/v1/streams/machines/readings', JSON.stringify(machine));
    assert.equal(ok.json<IngestJson>().accepted, 1);
    const unknown = await post('/v1/streams/gas/readings', JSON.stringify(machine));
    assert.equal(unknown.statusCode, 404);
    const error = errorOf(unknown);
    assert.equal(error.code, 'GP_NOT_FOUND');
    assert.equal(error.field, 'stream');
    assert.match(error.message, /power, machines/);
  });

  test('malformed, empty or scalar JSON is a 400 naming the body', async () => {
    for (const payload of ['{"meterId": "m-1", ', '', '   ', '42', '"text"', 'null', '[]']) {
      const response = await post('/v1/readings', payload);
      assert.equal(response.statusCode, 400, `payload ${JSON.stringify(payload)}`);
      const error = errorOf(response);
      assert.equal(error.code, 'GP_INPUT_INVALID');
      assert.equal(error.field, 'body');
    }
  });

  test('NDJSON in which no line is JSON is a 400, not a list of rejections', async () => {
    const response = await post('/v1/readings', 'a,b,c\n1,2,3\n', { 'content-type': 'application/x-ndjson' });
    assert.equal(response.statusCode, 400);
    assert.match(errorOf(response).got ?? '', /no line that is JSON/);
  });

  test('unsupported content types and encodings are 415 naming the header', async () => {
    const body = JSON.stringify(meterReading('m-1', 0));
    const cases: Array<[Record<string, string>, string]> = [
      [{ 'content-type': 'text/csv' }, 'Content-Type'],
      [{ 'content-type': 'application/x-www-form-urlencoded' }, 'Content-Type'],
      [{}, 'Content-Type'],
      [{ 'content-type': 'application/json', 'content-encoding': 'br' }, 'Content-Encoding'],
    ];
    for (const [headers, field] of cases) {
      const response = await post('/v1/readings', body, headers);
      assert.equal(response.statusCode, 415, JSON.stringify(headers));
      const error = errorOf(response);
      assert.equal(error.code, 'GP_UNSUPPORTED_MEDIA_TYPE');
      assert.equal(error.field, field);
    }
  });

  test('a body that claims gzip but is not is a 400', async () => {
    const response = await post('/v1/readings', JSON.stringify(meterReading('m-1', 0)), { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    assert.equal(response.statusCode, 400);
    assert.match(errorOf(response).message, /gzip/);
  });

  test('a truncated gzip body is a 400', async () => {
    const whole = gzipSync(JSON.stringify([meterReading('m-1', 0), meterReading('m-1', 1)]));
    const response = await post('/v1/readings', whole.subarray(0, Math.floor(whole.length / 2)), { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    assert.equal(response.statusCode, 400);
    assert.equal(errorOf(response).code, 'GP_INPUT_INVALID');
  });

  test('a Content-Length over the limit is refused with 413 before the body is read', async () => {
    let pulled = 0;
    const body = new Readable({
      read() {
        pulled += 1;
        this.push(null);
      },
    });
    const response = await post('/v1/readings', body, { 'content-type': 'application/json', 'content-length': String(10 * 1024 * 1024) });
    assert.equal(response.statusCode, 413);
    assert.equal(errorOf(response).code, 'GP_PAYLOAD_TOO_LARGE');
    assert.equal(pulled, 0);
  });

  test('a streamed body without Content-Length is cut off at the limit, long before its end', async () => {
    const chunk = Buffer.alloc(16 * 1024, 0x20);
    const total = 8 * 1024 * 1024;
    let sent = 0;
    const body = new Readable({
      read() {
        if (sent >= total) return void this.push(null);
        sent += chunk.length;
        this.push(chunk);
      },
    });
    const response = await post('/v1/readings', body);
    assert.equal(response.statusCode, 413);
    assert.match(errorOf(response).message, /larger than the limit of 65536 bytes/);
    assert.ok(sent < total / 4, `read ${sent} of ${total} bytes`);
  });

  test('a gzip bomb is stopped at the decompressed limit', async () => {
    const bomb = gzipSync(Buffer.alloc(20 * 1024 * 1024, 0x20));
    assert.ok(bomb.length < 64 * 1024, `the bomb (${bomb.length} bytes) must pass the wire limit`);
    const response = await post('/v1/readings', bomb, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    assert.equal(response.statusCode, 413);
    assert.match(errorOf(response).message, /after gunzip/);
  });

  test('more readings than batchItems is a 413, as JSON and as NDJSON', async () => {
    const items = Array.from({ length: 101 }, (_, i) => meterReading('m-big', i));
    const json = await post('/v1/readings', JSON.stringify(items));
    assert.equal(json.statusCode, 413);
    assert.match(errorOf(json).message, /100 readings/);
    const ndjson = await post('/v1/readings', items.map((i) => JSON.stringify(i)).join('\n'), { 'content-type': 'application/x-ndjson' });
    assert.equal(ndjson.statusCode, 413);
  });
});

describe('HTTP ingest with device tokens', () => {
  let h: Harness;
  const TOKEN_A = 'token-for-meter-a';
  const TOKEN_ADMIN = 'token-for-anything';
  before(async () => {
    h = await startHarness({
      auth: {
        mode: 'tokens',
        tokens: [
          { name: 'meter-a', sha256: hashToken(TOKEN_A), keys: ['m-a'] },
          { name: 'admin', sha256: hashToken(TOKEN_ADMIN), keys: undefined },
        ],
      },
    });
  });
  after(() => h.close());

  const post = (payload: unknown, authorization?: string) =>
    h.app.inject({
      method: 'POST',
      url: '/v1/readings',
      payload: JSON.stringify(payload),
      headers: { 'content-type': 'application/json', ...(authorization === undefined ? {} : { authorization }) },
    });

  test('no token is 401 with a Bearer challenge', async () => {
    const response = await post(meterReading('m-a', 0));
    assert.equal(response.statusCode, 401);
    assert.equal(errorOf(response).code, 'GP_AUTH_REQUIRED');
    assert.match(String(response.headers['www-authenticate']), /^Bearer/);
  });

  test('a wrong token, or another scheme, is 401', async () => {
    for (const authorization of ['Bearer not-a-token', `Basic ${Buffer.from('a:b').toString('base64')}`, 'Bearer', `Bearer ${hashToken(TOKEN_A)}`]) {
      const response = await post(meterReading('m-a', 0), authorization);
      assert.equal(response.statusCode, 401, authorization);
      assert.equal(errorOf(response).code, 'GP_AUTH_REQUIRED');
    }
  });

  test('a token bound to a device writes that device', async () => {
    const response = await post(meterReading('m-a', 0), `Bearer ${TOKEN_A}`);
    assert.equal(response.statusCode, 200);
    assert.equal(response.json<IngestJson>().accepted, 1);
  });

  test('a token bound to one device cannot write another: 403 when every reading is another device\'s', async () => {
    const response = await post([meterReading('m-b', 0), meterReading('m-c', 0)], `Bearer ${TOKEN_A}`);
    assert.equal(response.statusCode, 403);
    const error = errorOf(response);
    assert.equal(error.code, 'GP_AUTH_FORBIDDEN');
    assert.equal(error.field, 'meterId');
    await settle(h);
    assert.equal(h.platform.liveFeatures('m-b'), undefined);
  });

  test('in a mixed batch the other device\'s readings are rejected one by one and the own ones accepted', async () => {
    const response = await post([meterReading('m-a', 1), meterReading('m-b', 1)], `Bearer ${TOKEN_A}`);
    assert.equal(response.statusCode, 200);
    const body = response.json<IngestJson>();
    assert.equal(body.accepted, 1);
    assert.deepEqual(body.rejected.map((r) => [r.index, r.reason]), [[1, 'device not allowed for this token']]);
  });

  test('an unbound token writes any device', async () => {
    const response = await post([meterReading('m-b', 2), meterReading('m-c', 2)], `Bearer ${TOKEN_ADMIN}`);
    assert.equal(response.statusCode, 200);
    assert.equal(response.json<IngestJson>().accepted, 2);
  });

  test('the token is checked before the body is read: a bad body without a token is 401, not 400', async () => {
    const response = await h.app.inject({ method: 'POST', url: '/v1/readings', payload: '{not json', headers: { 'content-type': 'application/json' } });
    assert.equal(response.statusCode, 401);
  });
});

describe('HTTP ingest rate limit (readings per second per token)', () => {
  let h: Harness;
  let now = 1_000_000;
  before(async () => {
    h = await startHarness({ limits: { ratePerSecond: 2, burst: 5 }, api: { now: () => now } });
  });
  after(() => h.close());

  const post = (count: number, payload?: string) =>
    h.app.inject({
      method: 'POST',
      url: '/v1/readings',
      payload: payload ?? JSON.stringify(Array.from({ length: count }, (_, i) => meterReading('m-rate', now / 1000 + i))),
      headers: { 'content-type': 'application/json' },
    });

  test('a burst is allowed, then 429 with Retry-After until the bucket refills', async () => {
    assert.equal((await post(3)).statusCode, 200);
    const limited = await post(3);
    assert.equal(limited.statusCode, 429);
    assert.equal(errorOf(limited).code, 'GP_RATE_LIMITED');
    assert.equal(limited.headers['retry-after'], '1');
    now += 1000;
    assert.equal((await post(3)).statusCode, 200, 'two more readings a second later');
  });

  test('an empty bucket refuses before the body is read (a broken body gets 429, not 400)', async () => {
    assert.equal((await post(1)).statusCode, 200, 'the last reading left in the bucket');
    const response = await post(0, '{broken');
    assert.equal(response.statusCode, 429);
    assert.ok(Number(response.headers['retry-after']) >= 1);
  });

  test('a batch larger than the burst can never pass: 413', async () => {
    now += 60_000;
    const response = await post(6);
    assert.equal(response.statusCode, 413);
    assert.match(errorOf(response).message, /burst of 5/);
  });

  test('rate-limited requests are counted in /metrics', async () => {
    const metrics = await h.app.inject({ url: '/metrics' });
    const line = metrics.body.split('\n').find((l) => l.startsWith('gridpulse_http_rate_limited_total'));
    assert.ok(line !== undefined && Number(line.split(' ')[1]) >= 2, line);
  });
});
