// Fuzz: more than 10,000 malformed requests (random bytes, truncated JSON, wrong types, huge
// numbers, bad content types and encodings, bad tokens, oversize bodies, unknown routes) through
// the real app and platform. Each must get a 4xx JSON error with a GP_ code, and afterwards the
// app must still answer /healthz and accept a good reading.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import type { InjectOptions } from 'fastify';
import { hashToken } from '../../src/api/index.js';
import { eventually, meterReading, startHarness } from '../unit/api-harness.js';

const REQUESTS = 10_200;
const TOKEN = 'fuzz-admin-token';
const BOUND_TOKEN = 'fuzz-bound-token';
const BODY_BYTES = 16 * 1024;

/** mulberry32: a small seeded PRNG, so a failing case can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Case = InjectOptions & { label: string };

function makeCases(random: () => number): Array<() => Case> {
  const int = (n: number) => Math.floor(random() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)] as T;
  const word = (length = 1 + int(12)) => Array.from({ length }, () => String.fromCharCode(97 + int(26))).join('');
  const bytes = (length: number) => Buffer.from(Array.from({ length }, () => int(256)));
  const auth = { authorization: `Bearer ${TOKEN}` };
  const json = { ...auth, 'content-type': 'application/json' };
  const readings = (count: number) => JSON.stringify(Array.from({ length: count }, (_, i) => meterReading(`m-${int(50)}`, i)));
  const ingest = (payload: string | Buffer, headers: Record<string, string>, label: string): Case => ({ method: 'POST', url: pick(['/v1/readings', '/v1/streams/power/readings']), payload, headers, label });
  const notJson = (buffer: Buffer): Buffer => {
    try {
      JSON.parse(buffer.toString('utf8'));
      return Buffer.concat([Buffer.from('}'), buffer]);
    } catch {
      return buffer;
    }
  };
  const gzipBomb = gzipSync(Buffer.alloc(2 * 1024 * 1024, 0x20));
  const badInt = () => pick(['abc', '-3', '0', '1.5', '1e400', '99999999999999999999', 'NaN', 'Infinity', '0x10', word(), `${int(9)}${word(2)}`]);
  const badTime = () => pick(['yesterday', '1e400', '99999999999999999999', 'NaN', '2025-13-45', '2025-01-01Tnoon', word(), `${word(3)}-${word(2)}`]);
  const id = () => encodeURIComponent(word(4 + int(8)));

  return [
    () => ingest(notJson(bytes(1 + int(2000))), json, 'random bytes as JSON'),
    () => {
      const whole = readings(1 + int(5));
      return ingest(whole.slice(0, int(whole.length)), json, 'truncated JSON');
    },
    () => {
      const line = JSON.stringify(meterReading('m-1', int(100)));
      return ingest(line.slice(0, 1 + int(line.length - 2)), { ...auth, 'content-type': 'application/x-ndjson' }, 'truncated NDJSON line');
    },
    () => ingest(pick(['42', '"text"', 'true', 'false', 'null', '[]', '1e400', '-0', `"${word()}"`, String(random() * 1e308)]), json, 'scalar or empty JSON'),
    () => ingest(readings(1), { ...auth, 'content-type': pick(['text/plain', 'application/xml', 'multipart/form-data; boundary=x', 'application/octet-stream', 'text/csv', 'image/png', 'application/x-www-form-urlencoded', `${word()}/${word()}`]) }, 'unsupported content type'),
    () => ingest(readings(1), { ...auth, 'content-type': pick(['application/json;;;=', 'json', '/', 'application/', `${word()}`]) }, 'malformed content type'),
    () => ingest(readings(1), { ...json, 'content-encoding': pick(['br', 'deflate', 'compress', 'zstd', 'gzip, br', word()]) }, 'unsupported encoding'),
    () => ingest(notJson(bytes(10 + int(500))), { ...json, 'content-encoding': 'gzip' }, 'gzip header, not gzip data'),
    () => {
      const gz = gzipSync(readings(3));
      return ingest(gz.subarray(0, 1 + int(gz.length - 2)), { ...json, 'content-encoding': 'gzip' }, 'truncated gzip');
    },
    () => ingest(gzipBomb, { ...json, 'content-encoding': 'gzip' }, 'gzip bomb'),
    () => ingest(Buffer.alloc(BODY_BYTES + 1 + int(4000), 0x20), json, 'oversize body'),
    () => ingest(readings(1), { ...json, 'content-length': String(BODY_BYTES + 1 + int(1e9)) }, 'oversize Content-Length'),
    () => ingest(readings(51 + int(30)), json, 'too many readings'),
    () => ingest(readings(1), { 'content-type': 'application/json', ...pick([{}, { authorization: `Bearer ${word(20)}` }, { authorization: `Basic ${word(8)}` }, { authorization: 'Bearer' }, { authorization: word() }]) }, 'missing or wrong token'),
    () => ingest(readings(1 + int(3)), { 'content-type': 'application/json', authorization: `Bearer ${BOUND_TOKEN}` }, 'token bound to another device'),
    () => ({ method: 'POST', url: `/v1/streams/${id()}/readings`, payload: readings(1), headers: json, label: 'unknown stream' }),
    () => ({
      method: 'GET',
      url: pick([
        `/api/alerts?limit=${badInt()}`,
        `/api/alerts?from=${badTime()}`,
        `/api/alerts?status=${word()}`,
        `/api/alerts?severity=${word()}`,
        `/api/alerts?stream=${word()}x`,
        `/api/devices?stream=${word()}x`,
        `/api/devices/m-1/series?metric=${word()}x`,
        `/api/devices/m-1/series?metric=usageKw&from=${badTime()}`,
        `/api/devices/m-1/series?metric=usageKw&to=${badTime()}`,
        `/api/devices/m-1/series?metric=usageKw&resolution=${word()}x`,
        `/api/devices/m-1/series?metric=usageKw&maxPoints=${badInt()}`,
        `/api/devices/m-1/readings?limit=${badInt()}`,
        `/api/quality?by=${word()}x`,
        `/api/quality?from=${badTime()}`,
        `/api/machines/machine-001/logs?limit=${badInt()}`,
        `/api/live?types=${word()}x`,
        `/api/live?stream=${word()}x`,
      ]),
      label: 'bad query value',
    }),
    () => ({ method: 'POST', url: `/simulate/machine-${int(99)}?${pick([`profile=${word()}x`, `duration_sec=${badInt()}`, `duration_sec=${pick(['1e20', '86401', '99999999999'])}`])}`, label: 'bad simulation request' }),
    () => ({
      method: 'POST',
      url: `/api/alerts/al_${id()}/${pick(['ack', 'resolve'])}`,
      payload: pick(['"x"', '[1,2]', '{"by":{"a":1}}', '{"note":["x"]}', `{"note":"${'x'.repeat(2001 + int(100))}"}`, '{"by":', '{', 'null']),
      headers: { 'content-type': 'application/json' },
      label: 'bad alert action body',
    }),
    () => ({ method: 'POST', url: `/api/alerts/al_${id()}/${pick(['ack', 'resolve'])}`, label: 'unknown alert' }),
    () => ({ method: pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH'] as const), url: `/api/${id()}/${id()}`, label: 'unknown route' }),
    () => ({ method: pick(['PUT', 'DELETE', 'PATCH'] as const), url: pick(['/api/alerts', '/api/devices', '/v1/readings', '/api/status']), label: 'wrong method' }),
  ];
}

test(`${REQUESTS} malformed requests each get a 4xx JSON error, and the app still works afterwards`, async () => {
  const h = await startHarness({
    auth: {
      mode: 'tokens',
      tokens: [
        { name: 'fuzz-admin', sha256: hashToken(TOKEN), keys: undefined },
        { name: 'fuzz-bound', sha256: hashToken(BOUND_TOKEN), keys: ['m-only-this-one'] },
      ],
    },
    limits: { bodyBytes: BODY_BYTES, batchItems: 50, ratePerSecond: 1_000_000_000, burst: 1_000_000_000 },
    api: { maxDecompressedBytes: 64 * 1024 },
  });
  try {
    const random = prng(20251107);
    const cases = makeCases(random);
    const failures: string[] = [];
    const statuses = new Map<number, number>();
    for (let i = 0; i < REQUESTS; i++) {
      const { label, ...request } = (cases[i % cases.length] as () => Case)();
      const response = await h.app.inject(request);
      statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
      let problem: string | undefined;
      if (response.statusCode < 400 || response.statusCode >= 500) problem = `status ${response.statusCode}`;
      else if (!String(response.headers['content-type']).startsWith('application/json')) problem = `content-type ${String(response.headers['content-type'])}`;
      else {
        try {
          const code = response.json<{ error?: { code?: unknown; message?: unknown } }>().error?.code;
          if (typeof code !== 'string' || !code.startsWith('GP_')) problem = 'no GP_ error code';
        } catch {
          problem = 'body is not JSON';
        }
      }
      if (problem !== undefined && failures.length < 20) failures.push(`#${i} ${label} ${request.method ?? 'GET'} ${typeof request.url === 'string' ? request.url : ''}: ${problem}: ${response.body.slice(0, 160)}`);
    }
    assert.deepEqual(failures, [], `requests without a 4xx JSON error (status counts: ${JSON.stringify(Object.fromEntries(statuses))})`);
    for (const status of [400, 401, 403, 404, 413, 415]) assert.ok((statuses.get(status) ?? 0) > 0, `some requests got ${status}`);

    const health = await h.app.inject({ url: '/healthz' });
    assert.equal(health.statusCode, 200);
    const good = await h.app.inject({
      method: 'POST',
      url: '/v1/readings',
      payload: JSON.stringify(meterReading('m-after-fuzz', 0)),
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(good.statusCode, 200);
    assert.deepEqual(good.json(), { accepted: 1, rejected: [] });
    await eventually('the good reading to reach the engine', () => h.platform.liveFeatures('m-after-fuzz'));
  } finally {
    await h.close();
  }
});
