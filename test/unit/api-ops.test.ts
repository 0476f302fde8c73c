import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApiApp } from '../../src/api/index.js';
import { createPlatform } from '../../src/cli/platform.js';
import { parseConfig } from '../../src/config/index.js';
import { errorOf, meterReading, settle, startHarness, type Harness } from './api-harness.js';

function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `) || (labels === '' && l.startsWith(`${name}{`)));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('ops routes: /metrics, /healthz, /readyz, /docs', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
    const items = [meterReading('m-ops', 0), meterReading('m-ops', 1), meterReading('m-ops', 5), { meterId: 'm-ops', usageKw: 2 }];
    await h.app.inject({ method: 'POST', url: '/v1/readings', payload: JSON.stringify(items), headers: { 'content-type': 'application/json' } });
    await settle(h);
  });
  after(() => h.close());

  test('/metrics has the platform\'s figures, HTTP durations and the event loop, as Prometheus text', async () => {
    const response = await h.app.inject({ url: '/metrics' });
    assert.equal(response.statusCode, 200);
    assert.match(String(response.headers['content-type']), /^text\/plain/);
    const text = response.body;
    assert.equal(sample(text, 'gridpulse_readings_received_total'), 4);
    assert.equal(sample(text, 'gridpulse_readings_accepted_total'), 3);
    assert.equal(sample(text, 'gridpulse_readings_rejected_total', '{reason="missing or invalid timestamp"}'), 1);
    assert.equal(sample(text, 'gridpulse_readings_processed_total'), 3);
    assert.equal(sample(text, 'gridpulse_readings_late_total', '{class="too_late"}'), 0);
    assert.ok((sample(text, 'gridpulse_aggregates_total') ?? 0) > 0);
    assert.ok((sample(text, 'gridpulse_log_bytes') ?? 0) > 0);
    assert.equal(sample(text, 'gridpulse_log_consumer_lag', '{partition="0"}'), 0);
    assert.ok((sample(text, 'gridpulse_watermark_delay_seconds', '{stream="power",partition="0"}') ?? 0) > 0);
    assert.ok((sample(text, 'gridpulse_engine_state_keys') ?? 0) >= 1);
    assert.equal(sample(text, 'gridpulse_sse_clients'), 0);
    assert.match(text, /gridpulse_http_request_duration_seconds_count\{method="POST",route="\/v1\/readings",status_code="200"\} 1/);
    assert.match(text, /^nodejs_eventloop_lag_seconds /m);
    for (const name of ['gridpulse_alert_events_total', 'gridpulse_store_write_seconds', 'gridpulse_store_pending_writes', 'gridpulse_log_segments', 'gridpulse_http_rate_limited_total']) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
    }
  });

  test('two apps in one process keep their metrics apart', async () => {
    const second = await createApiApp({ platform: h.platform, server: h.server });
    try {
      await second.inject({ url: '/healthz' });
      const text = (await second.inject({ url: '/metrics' })).body;
      assert.match(text, /route="\/healthz"/);
      assert.doesNotMatch(text, /route="\/v1\/readings"/, 'the first app\'s requests are not counted here');
    } finally {
      await second.close();
    }
  });

  test('/healthz answers while the process is up', async () => {
    const response = await h.app.inject({ url: '/healthz' });
    assert.equal(response.statusCode, 200);
    assert.equal(response.json<{ status: string }>().status, 'ok');
  });

  test('/readyz is 200 once the platform runs', async () => {
    const response = await h.app.inject({ url: '/readyz' });
    assert.equal(response.statusCode, 200);
    assert.deepEqual(response.json(), { ready: true });
  });

  test('/docs serves Swagger UI and /docs/json an OpenAPI document describing every route', async () => {
    const ui = await h.app.inject({ url: '/docs/' });
    assert.ok([200, 302].includes(ui.statusCode), String(ui.statusCode));
    const document = (await h.app.inject({ url: '/docs/json' })).json<{ openapi: string; paths: Record<string, Record<string, { summary?: string; responses: Record<string, unknown> }>> }>();
    assert.match(document.openapi, /^3\./);
    const expected: Array<[string, string]> = [
      ['/v1/readings', 'post'],
      ['/v1/streams/{stream}/readings', 'post'],
      ['/api/streams', 'get'],
      ['/api/devices', 'get'],
      ['/api/devices/{id}', 'get'],
      ['/api/devices/{id}/series', 'get'],
      ['/api/devices/{id}/readings', 'get'],
      ['/api/alerts', 'get'],
      ['/api/alerts/{id}', 'get'],
      ['/api/alerts/{id}/ack', 'post'],
      ['/api/alerts/{id}/resolve', 'post'],
      ['/api/quality', 'get'],
      ['/api/status', 'get'],
      ['/api/live', 'get'],
      ['/api/machines/{id}/logs', 'get'],
      ['/api/machines/{id}/status', 'get'],
      ['/simulate/{machineId}', 'post'],
      ['/metrics', 'get'],
      ['/healthz', 'get'],
      ['/readyz', 'get'],
    ];
    for (const [path, method] of expected) {
      const operation = document.paths[path]?.[method];
      assert.ok(operation, `${method.toUpperCase()} ${path} is in the document`);
      assert.ok(operation.summary, `${method.toUpperCase()} ${path} has a summary`);
      assert.ok(operation.responses['200'], `${method.toUpperCase()} ${path} describes its 200`);
    }
  });
});

describe('/readyz before the platform has started', () => {
  test('503 GP_UNAVAILABLE until start(), then 200', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gridpulse-ready-'));
    const { config } = parseConfig({ dataDir: dir, store: { url: `duckdb:${join(dir, 'gridpulse.duckdb')}` }, simulator: { enabled: false } });
    assert.ok(config);
    const platform = createPlatform({ config, simulator: false });
    const app = await createApiApp({ platform, server: config.server });
    try {
      const early = await app.inject({ url: '/readyz' });
      assert.equal(early.statusCode, 503);
      assert.equal(errorOf(early).code, 'GP_UNAVAILABLE');
      await platform.start();
      assert.equal((await app.inject({ url: '/readyz' })).statusCode, 200);
    } finally {
      await app.close();
      await platform.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the dashboard at /', () => {
  let h: Harness;
  let ui: string;
  before(async () => {
    ui = mkdtempSync(join(tmpdir(), 'gridpulse-ui-'));
    mkdirSync(join(ui, 'assets'));
    writeFileSync(join(ui, 'index.html'), '<!doctype html><title>gridpulse dashboard</title><div id="app"></div>');
    writeFileSync(join(ui, 'assets', 'app.js'), 'console.log("dashboard");');
    h = await startHarness({ api: { uiDir: ui } });
  });
  after(async () => {
    await h.close();
    rmSync(ui, { recursive: true, force: true });
  });

  test('/ and the assets are served from the built dashboard', async () => {
    const index = await h.app.inject({ url: '/' });
    assert.equal(index.statusCode, 200);
    assert.match(index.body, /gridpulse dashboard/);
    const asset = await h.app.inject({ url: '/assets/app.js' });
    assert.equal(asset.statusCode, 200);
    assert.match(String(asset.headers['content-type']), /javascript/);
  });

  test('a client-side route gets index.html; unknown API paths and missing assets stay JSON 404s', async () => {
    const route = await h.app.inject({ url: '/devices/m-1' });
    assert.equal(route.statusCode, 200);
    assert.match(route.body, /gridpulse dashboard/);
    for (const url of ['/api/nothing', '/assets/missing.js', '/v1/nothing']) {
      const response = await h.app.inject({ url });
      assert.equal(response.statusCode, 404, url);
      assert.equal(errorOf(response).code, 'GP_NOT_FOUND');
    }
  });

  test('without a built dashboard, / says how to build it', async () => {
    const bare = await createApiApp({ platform: h.platform, server: h.server, uiDir: join(ui, 'not-built') });
    try {
      const response = await bare.inject({ url: '/' });
      assert.equal(response.statusCode, 200);
      assert.match(response.body, /not built/);
      assert.match(response.body, /vite build --config src\/ui\/vite.config.ts/);
    } finally {
      await bare.close();
    }
  });
});
