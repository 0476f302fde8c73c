import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Alert, AlertTransition } from '../../src/model/index.js';
import { MINUTE, T0, errorOf, meterReading, settle, startHarness, type Harness } from './api-harness.js';

interface DeviceRow {
  stream: string;
  key: string;
  site: string | null;
  lastSeen: number;
  lastAvg: Record<string, number | null>;
  openAlerts: number;
  live: { key: string; last: Record<string, number | null> } | null;
}

describe('portal routes over a fleet with one out-of-range alert', () => {
  let h: Harness;
  let alertId = '';
  const get = (url: string) => h.app.inject({ url });
  const post = (url: string, payload?: unknown) =>
    h.app.inject({ method: 'POST', url, ...(payload === undefined ? {} : { payload: JSON.stringify(payload), headers: { 'content-type': 'application/json' } }) });

  before(async () => {
    h = await startHarness();
    // Three meters on two sites, one reading a minute for 30 minutes; m-1 reports 5000 V in its last reading, at minute 29
    // (an out_of_range alert that stays open: no in-range reading follows).
    const items: Array<Record<string, unknown>> = [];
    for (let minute = 0; minute < 30; minute++) {
      items.push(meterReading('m-1', minute, minute === 29 ? { voltage: 5000 } : {}));
      items.push(meterReading('m-2', minute));
      items.push(meterReading('m-3', minute, { siteId: 's-2' }));
    }
    const machine = (second: number, torque: number) => ({
      machine_id: 'machine-001',
      timestamp: new Date(T0 + second * 1000).toISOString(),
      air_temp_k: 299,
      process_temp_k: 309.5,
      rpm: 1500,
      torque_nm: torque,
      tool_wear_min: 5,
    });
    const response = await h.app.inject({ method: 'POST', url: '/v1/readings', payload: JSON.stringify(items), headers: { 'content-type': 'application/json' } });
    assert.equal(response.json<{ accepted: number }>().accepted, 90);
    await h.app.inject({
      method: 'POST',
      url: '/v1/streams/machines/readings',
      // One reading every 20 s for 4 minutes: the first 1-minute windows close.
      payload: Array.from({ length: 13 }, (_, i) => JSON.stringify(machine(i * 20, 40 + (i % 3)))).join('\n'),
      headers: { 'content-type': 'application/x-ndjson' },
    });
    await settle(h);
    const alerts = (await get('/api/alerts?key=m-1&type=out_of_range')).json<{ alerts: Alert[] }>().alerts;
    assert.equal(alerts.length, 1, 'the 5000 V reading opens an out_of_range alert');
    alertId = alerts[0]!.id;
  });
  after(() => h.close());

  test('GET /api/streams describes each stream', async () => {
    const body = (await get('/api/streams')).json<{ streams: Array<{ name: string; keyField: string; metrics: Array<{ name: string; unit: string | null }>; windows: string[]; detectors: string[] }> }>();
    const power = body.streams.find((s) => s.name === 'power');
    assert.ok(power);
    assert.equal(power.keyField, 'meterId');
    assert.deepEqual(power.metrics.find((m) => m.name === 'usageKw'), { name: 'usageKw', unit: 'kW', min: 0, max: null });
    assert.ok(power.windows.includes('1m') && power.windows.includes('15m'));
    assert.ok(power.detectors.includes('out_of_range'));
    assert.ok(body.streams.some((s) => s.name === 'machines' && s.keyField === 'machine_id'));
  });

  test('GET /api/devices lists devices with status and live features, filtered by stream and site', async () => {
    const all = (await get('/api/devices')).json<{ devices: DeviceRow[] }>().devices;
    assert.deepEqual(all.map((d) => d.key).sort(), ['m-1', 'm-2', 'm-3', 'machine-001']);
    const m1 = all.find((d) => d.key === 'm-1')!;
    assert.equal(m1.site, 's-1');
    assert.ok(m1.openAlerts >= 1);
    assert.equal(m1.live?.last['voltage'], 5000, 'the live features hold the newest reading');
    assert.ok(typeof m1.lastAvg['usageKw'] === 'number');
    const power = (await get('/api/devices?stream=power')).json<{ devices: DeviceRow[] }>().devices;
    assert.equal(power.length, 3);
    const site2 = (await get('/api/devices?site=s-2')).json<{ devices: DeviceRow[] }>().devices;
    assert.deepEqual(site2.map((d) => d.key), ['m-3']);
    const bad = await get('/api/devices?stream=gas');
    assert.equal(bad.statusCode, 400);
    assert.equal(errorOf(bad).field, 'stream');
  });

  test('GET /api/devices/:id gives status, live features and open alerts; an unknown device is 404', async () => {
    const body = (await get('/api/devices/m-1')).json<{ device: DeviceRow; live: DeviceRow['live']; openAlerts: Alert[] }>();
    assert.equal(body.device.key, 'm-1');
    assert.equal(body.live?.key, 'm-1');
    assert.ok(body.openAlerts.some((a) => a.id === alertId));
    assert.ok(body.openAlerts.every((a) => a.key === 'm-1' && a.status !== 'resolved'));
    const missing = await get('/api/devices/no-such-meter');
    assert.equal(missing.statusCode, 404);
    assert.equal(errorOf(missing).code, 'GP_NOT_FOUND');
  });

  test('GET /api/devices/:id/series at 1m gives one point per closed minute, with the alert for markers', async () => {
    const from = new Date(T0).toISOString();
    const response = await get(`/api/devices/m-1/series?metric=usageKw&resolution=1m&from=${from}&to=${T0 + 29 * MINUTE}`);
    assert.equal(response.statusCode, 200);
    const body = response.json<{ resolution: string; points: Array<{ time: number; count: number; avg: number | null }>; alerts: Alert[] }>();
    assert.equal(body.resolution, '1m');
    assert.equal(body.points.length, 27, 'minutes 0 to 26 are closed: the watermark is at minute 27');
    assert.deepEqual(body.points.slice(0, 3).map((p) => [p.time, p.count]), [[T0, 1], [T0 + MINUTE, 1], [T0 + 2 * MINUTE, 1]]);
    assert.equal(body.points[1]?.avg, 4.1);
    assert.ok(body.alerts.some((a) => a.id === alertId));
    const early = (await get(`/api/devices/m-1/series?metric=usageKw&resolution=1m&from=${T0}&to=${T0 + 20 * MINUTE}`)).json<{ alerts: Alert[] }>();
    assert.deepEqual(early.alerts, [], 'no alert overlaps minutes 0 to 20');
  });

  test('series: raw gives the readings, auto picks a resolution, a range without alerts has none', async () => {
    const raw = (await get(`/api/devices/m-2/series?metric=voltage&resolution=raw&from=${T0}&to=${T0 + 4 * MINUTE}`)).json<{ resolution: string; points: unknown[]; alerts: unknown[] }>();
    assert.equal(raw.resolution, 'raw');
    assert.equal(raw.points.length, 5);
    assert.deepEqual(raw.alerts, []);
    const auto = (await get(`/api/devices/m-2/series?metric=usageKw&from=${T0}&to=${T0 + 30 * MINUTE}&maxPoints=10`)).json<{ resolution: string }>();
    assert.equal(auto.resolution, '5m');
  });

  test('series: bad metric, times, resolution and maxPoints are 400s naming the field', async () => {
    const cases: Array<[string, string]> = [
      ['metric=nope', 'metric'],
      ['', 'metric'],
      ['metric=usageKw&from=yesterday', 'from'],
      ['metric=usageKw&to=1e400', 'to'],
      [`metric=usageKw&from=${T0 + MINUTE}&to=${T0}`, 'from'],
      ['metric=usageKw&resolution=2m', 'resolution'],
      ['metric=usageKw&maxPoints=0', 'maxPoints'],
      ['metric=usageKw&stream=gas', 'stream'],
      ['metric=rpm&stream=power', 'metric'],
    ];
    for (const [query, field] of cases) {
      const response = await get(`/api/devices/m-1/series?${query}`);
      assert.equal(response.statusCode, 400, query);
      const error = errorOf(response);
      assert.equal(error.code, 'GP_INPUT_INVALID', query);
      assert.equal(error.field, field, query);
      assert.ok(error.expected, query);
    }
  });

  test('GET /api/devices/:id/readings gives the newest raw readings, oldest of them first', async () => {
    const body = (await get('/api/devices/m-2/readings?limit=2')).json<{ readings: Array<{ time: number; receivedAt: number }> }>();
    assert.deepEqual(body.readings.map((r) => r.time), [T0 + 28 * MINUTE, T0 + 29 * MINUTE]);
    for (const query of ['limit=abc', 'limit=0', 'limit=1.5', 'limit=99999999']) {
      const response = await get(`/api/devices/m-2/readings?${query}`);
      assert.equal(response.statusCode, 400, query);
      assert.equal(errorOf(response).field, 'limit');
    }
  });

  test('GET /api/alerts filters by status, severity, type, site, key, stream and time', async () => {
    const list = async (query: string) => (await get(`/api/alerts?${query}`)).json<{ alerts: Alert[] }>().alerts.map((a) => a.id);
    assert.ok((await list('')).includes(alertId));
    assert.deepEqual(await list('key=m-2'), []);
    assert.ok((await list('status=open,acknowledged')).includes(alertId));
    assert.ok((await list('status=resolved&status=open')).includes(alertId));
    assert.ok((await list('site=s-1&stream=power&type=out_of_range')).includes(alertId));
    assert.deepEqual(await list('site=s-2&type=out_of_range'), []);
    assert.deepEqual(await list(`to=${new Date(T0 + 5 * MINUTE).toISOString()}&type=out_of_range`), [], 'the alert opened at minute 29');
    assert.ok((await list(`from=${T0 + 29 * MINUTE}&type=out_of_range`)).includes(alertId));
    const alert = (await get(`/api/alerts/${alertId}`)).json<{ alert: Alert }>().alert;
    assert.ok((await list(`severity=${alert.severity}`)).includes(alertId));
    assert.equal((await list('limit=1')).length, 1);
  });

  test('GET /api/alerts rejects bad filters with 400 naming the field', async () => {
    const cases: Array<[string, string]> = [
      ['status=closed', 'status'],
      ['severity=open,loud', 'severity'],
      ['from=last-week', 'from'],
      ['limit=-5', 'limit'],
      ['limit=abc', 'limit'],
      ['stream=gas', 'stream'],
    ];
    for (const [query, field] of cases) {
      const response = await get(`/api/alerts?${query}`);
      assert.equal(response.statusCode, 400, query);
      assert.equal(errorOf(response).field, field, query);
    }
  });

  test('GET /api/alerts/:id gives the alert and its transitions; an unknown id is 404', async () => {
    const body = (await get(`/api/alerts/${alertId}`)).json<{ alert: Alert; transitions: AlertTransition[] }>();
    assert.equal(body.alert.id, alertId);
    assert.equal(body.alert.type, 'out_of_range');
    assert.equal(body.alert.key, 'm-1');
    assert.equal(body.transitions[0]?.kind, 'open');
    const missing = await get('/api/alerts/al_0000000000000000');
    assert.equal(missing.statusCode, 404);
    assert.equal(errorOf(missing).code, 'GP_NOT_FOUND');
  });

  test('acknowledge then resolve an alert; a second resolve is 409, unknown ids 404, bad bodies 400/415', async () => {
    const ack = await post(`/api/alerts/${alertId}/ack`, { by: 'ops-anna', note: 'looking' });
    assert.equal(ack.statusCode, 200);
    assert.equal(ack.json<{ alert: Alert }>().alert.status, 'acknowledged');
    const again = await post(`/api/alerts/${alertId}/ack`);
    assert.equal(again.statusCode, 200, 'acknowledging twice is harmless');
    const detail = (await get(`/api/alerts/${alertId}`)).json<{ alert: Alert; transitions: AlertTransition[] }>();
    assert.equal(detail.alert.status, 'acknowledged');
    assert.ok(detail.transitions.some((t) => t.kind === 'acknowledge'));

    const badBodies: Array<[unknown, number]> = [[{ by: { name: 'x' } }, 400], ['just text', 400], [[1, 2], 400], [{ note: 'x'.repeat(3000) }, 400]];
    for (const [payload, status] of badBodies) {
      const response = await post(`/api/alerts/${alertId}/resolve`, payload);
      assert.equal(response.statusCode, status, JSON.stringify(payload).slice(0, 40));
      assert.equal(errorOf(response).code, 'GP_INPUT_INVALID');
    }
    const xmlBody = await h.app.inject({ method: 'POST', url: `/api/alerts/${alertId}/resolve`, payload: '<by>me</by>', headers: { 'content-type': 'application/xml' } });
    assert.equal(xmlBody.statusCode, 415);
    assert.equal(errorOf(xmlBody).code, 'GP_UNSUPPORTED_MEDIA_TYPE');

    const resolve = await post(`/api/alerts/${alertId}/resolve`, { by: 'ops-anna' });
    assert.equal(resolve.statusCode, 200);
    assert.equal(resolve.json<{ alert: Alert }>().alert.status, 'resolved');
    for (const action of ['resolve', 'ack']) {
      const conflict = await post(`/api/alerts/${alertId}/${action}`);
      assert.equal(conflict.statusCode, 409, action);
      const error = errorOf(conflict);
      assert.equal(error.code, 'GP_CONFLICT');
      assert.equal(error.got, 'resolved');
    }
    const unknown = await post('/api/alerts/al_0000000000000000/ack', {});
    assert.equal(unknown.statusCode, 404);
  });

  test('GET /api/quality counts ops events per device or site', async () => {
    await h.app.inject({ method: 'POST', url: '/v1/readings', payload: JSON.stringify([{ meterId: 'm-2', usageKw: 1 }]), headers: { 'content-type': 'application/json' } });
    await settle(h);
    const byKey = (await get('/api/quality?stream=power')).json<{ rows: Array<{ stream: string; group: string | null; counts: Record<string, number>; total: number }> }>();
    assert.ok(byKey.rows.length > 0);
    assert.ok(byKey.rows.every((r) => r.stream === 'power' && r.total === Object.values(r.counts).reduce((a, b) => a + b, 0)));
    const bySite = await get('/api/quality?by=site');
    assert.equal(bySite.statusCode, 200);
    for (const query of ['by=meter', 'from=soon', 'stream=gas']) {
      const response = await get(`/api/quality?${query}`);
      assert.equal(response.statusCode, 400, query);
    }
  });

  test('GET /api/status reports totals, log, engine partitions and store', async () => {
    const status = (await get('/api/status')).json<{ totals: { accepted: number; received: number }; engine: { partitions: Array<{ stream: string; watermark: number | null }> }; log: { bytes: number } }>();
    assert.ok(status.totals.accepted >= 103);
    assert.ok(status.totals.received > status.totals.accepted);
    assert.ok(status.log.bytes > 0);
    assert.ok(status.engine.partitions.some((p) => p.stream === 'power' && p.watermark === T0 + 27 * MINUTE));
  });

  test('compatibility: /api/machines/:id/logs in the sensor_log shape, newest first', async () => {
    const response = await get('/api/machines/machine-001/logs?limit=2');
    assert.equal(response.statusCode, 200);
    const rows = response.json<Array<Record<string, unknown>>>();
    assert.deepEqual(rows, [
      { machine_id: 'machine-001', timestamp: '2025-01-01T00:04:00.000Z', air_temp_k: 299, process_temp_k: 309.5, rpm: 1500, torque_nm: 40, tool_wear_min: 5 },
      { machine_id: 'machine-001', timestamp: '2025-01-01T00:03:40.000Z', air_temp_k: 299, process_temp_k: 309.5, rpm: 1500, torque_nm: 42, tool_wear_min: 5 },
    ]);
    assert.equal((await get('/api/machines/machine-404/logs')).statusCode, 404);
    assert.equal((await get('/api/machines/machine-001/logs?limit=none')).statusCode, 400);
  });

  test('compatibility: /api/machines/:id/status gives the feature cache (last value, 1-minute average)', async () => {
    const response = await get('/api/machines/machine-001/status');
    assert.equal(response.statusCode, 200);
    const body = response.json<{ machine_id: string; status: string; last_seen: string; features: Record<string, number | null> }>();
    assert.equal(body.machine_id, 'machine-001');
    assert.equal(body.status, 'normal');
    assert.equal(body.last_seen, '2025-01-01T00:04:00.000Z');
    assert.equal(body.features['last_torque_nm'], 40);
    assert.equal(body.features['torque_nm_1m_avg'], 41, 'the newest closed minute [00:01, 00:02) averages 41, 42, 40');
    const missing = await get('/api/machines/machine-404/status');
    assert.equal(missing.statusCode, 404);
    assert.equal(errorOf(missing).code, 'GP_NOT_FOUND');
  });

  test('POST /simulate/:machineId starts a machine; bad profile, duration or id are 400', async () => {
    const response = await h.app.inject({ method: 'POST', url: '/simulate/machine-042?profile=overstrain&duration_sec=30' });
    assert.equal(response.statusCode, 200);
    const started = response.json<{ machineId: string; profile: string; startedAt: number; endsAt: number }>();
    assert.equal(started.machineId, 'machine-042');
    assert.equal(started.profile, 'overstrain');
    assert.equal(started.endsAt - started.startedAt, 30_000);
    const cases: Array<[string, string]> = [
      ['/simulate/machine-042?profile=meltdown', 'profile'],
      ['/simulate/machine-042?duration_sec=0', 'duration_sec'],
      ['/simulate/machine-042?duration_sec=abc', 'duration_sec'],
      ['/simulate/machine-042?duration_sec=1e12', 'duration_sec'],
      ['/simulate/%20bad%20id', 'machineId'],
    ];
    for (const [url, field] of cases) {
      const bad = await h.app.inject({ method: 'POST', url });
      assert.equal(bad.statusCode, 400, url);
      assert.equal(errorOf(bad).field, field, url);
    }
  });

  test('an unknown route is a JSON 404', async () => {
    for (const url of ['/api/nothing', '/v1/other', '/api/devices/m-1/nothing']) {
      const response = await get(url);
      assert.equal(response.statusCode, 404, url);
      assert.equal(errorOf(response).code, 'GP_NOT_FOUND');
    }
    const wrongMethod = await h.app.inject({ method: 'DELETE', url: '/api/alerts' });
    assert.equal(wrongMethod.statusCode, 404);
    assert.equal(errorOf(wrongMethod).code, 'GP_NOT_FOUND');
  });
});
