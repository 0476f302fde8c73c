import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MINUTE, T0, errorOf, meterReading, settle, startHarness, type Harness } from './api-harness.js';

interface FleetPoint {
  time: number;
  devices: number;
  sum: number | null;
  avg: number | null;
  min: number | null;
  max: number | null;
}
interface FleetBody {
  metric: string;
  resolution: string;
  from: number;
  to: number;
  points: FleetPoint[];
}

/** Constant load per meter, so every window average is known. */
const LOAD_KW: Record<string, number> = { 'm-1': 1, 'm-2': 2.5, 'm-3': 10, 'm-4': 4 };
const SITE: Record<string, string> = { 'm-1': 's-1', 'm-2': 's-1', 'm-3': 's-2', 'm-4': 's-1' };

describe('GET /api/fleet/series over four meters on two sites', () => {
  let h: Harness;
  const get = (url: string) => h.app.inject({ url });
  const ingest = async (items: Array<Record<string, unknown>>): Promise<void> => {
    const response = await h.app.inject({ method: 'POST', url: '/v1/readings', payload: JSON.stringify(items), headers: { 'content-type': 'application/json' } });
    assert.equal(response.json<{ accepted: number }>().accepted, items.length);
    await settle(h);
  };
  const fleet = async (query: string): Promise<FleetBody> => {
    const response = await get(`/api/fleet/series?${query}`);
    assert.equal(response.statusCode, 200, response.body);
    return response.json<FleetBody>();
  };

  before(async () => {
    h = await startHarness();
    // One reading a minute for 15 minutes from m-1, m-2 and m-3; m-4 stops after minute 4.
    // The watermark ends at minute 12 (120 s out-of-orderness): minutes 0 to 11 are closed.
    const items: Array<Record<string, unknown>> = [];
    for (let minute = 0; minute < 15; minute++) {
      for (const meter of ['m-1', 'm-2', 'm-3', 'm-4']) {
        if (meter === 'm-4' && minute > 4) continue;
        items.push(meterReading(meter, minute, { siteId: SITE[meter], usageKw: LOAD_KW[meter] }));
      }
    }
    await ingest(items);
  });
  after(() => h.close());

  test('sums the meters’ 1-minute averages per closed window', async () => {
    const body = await fleet(`stream=power&metric=usageKw&resolution=1m&from=${T0}&to=${T0 + 14 * MINUTE}`);
    assert.equal(body.metric, 'usageKw');
    assert.equal(body.resolution, '1m');
    assert.deepEqual([body.from, body.to], [T0, T0 + 14 * MINUTE]);
    assert.equal(body.points.length, 12, 'minutes 0 to 11 are closed');
    assert.deepEqual(body.points[0], { time: T0, devices: 4, sum: 17.5, avg: 17.5 / 4, min: 1, max: 10 });
    assert.deepEqual(body.points[4], { time: T0 + 4 * MINUTE, devices: 4, sum: 17.5, avg: 17.5 / 4, min: 1, max: 10 });
    assert.deepEqual(body.points[5], { time: T0 + 5 * MINUTE, devices: 3, sum: 13.5, avg: 4.5, min: 1, max: 10 }, 'm-4 stopped reporting');
    assert.deepEqual(
      body.points.map((p) => p.time),
      Array.from({ length: 12 }, (_, minute) => T0 + minute * MINUTE),
    );
  });

  test('the fleet sum is the sum of the per-device series', async () => {
    const range = `metric=usageKw&resolution=1m&from=${T0}&to=${T0 + 14 * MINUTE}`;
    const bySum = new Map<number, number>();
    for (const meter of Object.keys(LOAD_KW)) {
      const series = (await get(`/api/devices/${meter}/series?${range}`)).json<{ points: Array<{ time: number; avg: number | null }> }>();
      for (const point of series.points) bySum.set(point.time, (bySum.get(point.time) ?? 0) + (point.avg ?? 0));
    }
    const body = await fleet(range);
    assert.deepEqual(
      body.points.map((p) => [p.time, p.sum]),
      [...bySum].sort((a, b) => a[0] - b[0]),
    );
  });

  test('site limits the fleet to that site’s meters', async () => {
    const s1 = await fleet(`metric=usageKw&resolution=1m&site=s-1&from=${T0}&to=${T0 + 5 * MINUTE}`);
    assert.deepEqual(s1.points.map((p) => [p.devices, p.sum]), [[3, 7.5], [3, 7.5], [3, 7.5], [3, 7.5], [3, 7.5], [2, 3.5]]);
    const s2 = await fleet(`metric=usageKw&resolution=1m&site=s-2&from=${T0}&to=${T0 + 5 * MINUTE}`);
    assert.ok(s2.points.every((p) => p.devices === 1 && p.sum === 10));
    assert.deepEqual((await fleet(`metric=usageKw&site=nowhere&from=${T0}&to=${T0 + 5 * MINUTE}`)).points, []);
  });

  test('auto picks the resolution from the range', async () => {
    assert.equal((await fleet(`metric=usageKw&from=${T0}&to=${T0 + 14 * MINUTE}`)).resolution, '1m');
    const coarse = await fleet(`metric=usageKw&from=${T0}&to=${T0 + 14 * MINUTE}&maxPoints=5`);
    assert.equal(coarse.resolution, '5m');
    assert.deepEqual(coarse.points.map((p) => p.time), [T0, T0 + 5 * MINUTE], 'the 5-minute windows that closed');
  });

  test('a late reading amends its window and the fleet sum follows', async () => {
    // m-1 reports 3 kW at 5:30 (late: the window of minute 5 has closed, but within the allowed lateness).
    await ingest([meterReading('m-1', 5.5, { siteId: 's-1', usageKw: 3 })]);
    const body = await fleet(`metric=usageKw&resolution=1m&from=${T0 + 5 * MINUTE}&to=${T0 + 5 * MINUTE}`);
    assert.deepEqual(body.points, [{ time: T0 + 5 * MINUTE, devices: 3, sum: 14.5, avg: 14.5 / 3, min: 2, max: 10 }], 'm-1 averages 2 kW in minute 5 now');
  });

  test('bad metric, resolution, times, stream, site and maxPoints are 400s naming the field', async () => {
    const cases: Array<[string, string]> = [
      ['metric=nope', 'metric'],
      ['', 'metric'],
      ['metric=rpm&stream=power', 'metric'],
      ['metric=usageKw&resolution=raw', 'resolution'],
      ['metric=usageKw&resolution=2m', 'resolution'],
      ['metric=usageKw&from=yesterday', 'from'],
      ['metric=usageKw&to=1e400', 'to'],
      [`metric=usageKw&from=${T0 + MINUTE}&to=${T0}`, 'from'],
      ['metric=usageKw&stream=gas', 'stream'],
      ['metric=usageKw&site=', 'site'],
      ['metric=usageKw&maxPoints=0', 'maxPoints'],
      ['metric=usageKw&maxPoints=1e3', 'maxPoints'],
    ];
    for (const [query, field] of cases) {
      const response = await get(`/api/fleet/series?${query}`);
      assert.equal(response.statusCode, 400, query);
      const error = errorOf(response);
      assert.equal(error.code, 'GP_INPUT_INVALID', query);
      assert.equal(error.field, field, query);
      assert.ok(error.expected, query);
    }
  });

  test('the route is in the OpenAPI document', async () => {
    const spec = (await get('/docs/json')).json<{ paths: Record<string, unknown> }>();
    assert.ok(spec.paths['/api/fleet/series'], 'GET /api/fleet/series is documented');
  });
});
