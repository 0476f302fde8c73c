// Browser tests of the dashboard against the real platform: `gridpulse up` (built CLI, embedded log and
// DuckDB, built-in simulator) in a temporary data directory, driven by Debian's Chromium through
// playwright-core. Each page is opened, its charts must hold data, an alert is acknowledged and resolved,
// a model is trained from the Models page, and screenshots go to docs/screenshots/.
//
// GRIDPULSE_TEST_URL=http://127.0.0.1:8080 runs them against a platform that is already up instead.
//
// Needs: `npm run build` (the CLI in dist/) and the dashboard build in dist/ui
// (`npx vite build --config src/ui/vite.config.ts`), and Chromium at /usr/bin/chromium (`apt-get install chromium`).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

const ROOT = new URL('../../', import.meta.url).pathname;
const CLI = join(ROOT, 'dist/cli/main.js');
const UI_INDEX = join(ROOT, 'dist/ui/index.html');
const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = join(ROOT, 'docs/screenshots');
const START_TIMEOUT_MS = 120_000;
/** The simulator injects anomalies; the first alerts need closed windows behind the watermark. */
const DATA_TIMEOUT_MS = 180_000;

let platform: ChildProcess | undefined;
let platformOutput = '';
let dataDir = '';
let base = '';
let browser: Browser | undefined;
let desktop: BrowserContext | undefined;
const pageErrors: string[] = [];

function missingPrerequisites(): string[] {
  const missing: string[] = [];
  if (!existsSync(CLI)) missing.push(`the CLI is not built (${CLI}): run npm run build`);
  if (!existsSync(UI_INDEX)) missing.push(`the dashboard is not built (${UI_INDEX}): run npx vite build --config src/ui/vite.config.ts`);
  if (!existsSync(CHROMIUM)) missing.push(`Chromium is not installed at ${CHROMIUM}: apt-get install chromium`);
  return missing;
}

/** Half-hourly meters of a CSV file replayed into the store before `up` starts (a stream of its own, `history`). */
const HISTORY_KEY = 'MAC900001';
const HISTORY_METRIC = 'kwh_per_halfhour_kw';

/**
 * Three days of two half-hourly meters ending yesterday (inside the default retention), replayed
 * into the platform's store with `gridpulse replay`: the layout is detected, so the readings are
 * stored under a stream the platform's config does not declare.
 */
function replayHistory(): void {
  const end = Math.floor(Date.now() / 86_400_000) * 86_400_000 - 86_400_000;
  const lines = ['meter_id,timestamp_utc,kwh_per_halfhour'];
  for (const key of [HISTORY_KEY, 'MAC900002']) {
    for (let t = end - 3 * 86_400_000; t < end; t += 1_800_000) lines.push(`${key},${new Date(t).toISOString().replace('T', ' ').slice(0, 19)},${(0.2 + 0.1 * Math.sin(t / 3_600_000)).toFixed(3)}`);
  }
  const file = join(dataDir, 'history.csv');
  writeFileSync(file, `${lines.join('\n')}\n`);
  const r = spawnSync(process.execPath, [CLI, 'replay', file, '--store', `duckdb:${join(dataDir, 'data', 'gridpulse.duckdb')}`], { cwd: dataDir, encoding: 'utf8' });
  assert.equal(r.status, 0, `replay of the history file: ${r.stderr}`);
}

/** Starts `gridpulse up --port 0` and resolves with the dashboard address it prints. */
function startPlatform(): Promise<string> {
  dataDir = mkdtempSync(join(tmpdir(), 'gp-browser-'));
  replayHistory();
  const child = spawn(process.execPath, [CLI, 'up', '--port', '0', '--data-dir', join(dataDir, 'data'), '--backfill', '30'], {
    cwd: dataDir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  platform = child;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gridpulse up printed no address within ${START_TIMEOUT_MS / 1000} s; output:\n${platformOutput}`)), START_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
      platformOutput += chunk.toString();
      const match = /dashboard (http:\/\/\S+?)\/?\s/.exec(platformOutput);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1].replace('localhost', '127.0.0.1'));
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gridpulse up exited with ${code} before it was up; output:\n${platformOutput}`));
    });
  });
}

async function stopPlatform(): Promise<void> {
  const child = platform;
  if (!child || child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
}

async function getJson<T>(path: string, init?: RequestInit): Promise<T> {
  const response = await fetch(`${base}${path}`, init);
  const text = await response.text();
  assert.ok(response.ok, `${init?.method ?? 'GET'} ${path}: ${response.status} ${text}`);
  return JSON.parse(text) as T;
}

async function openPage(path: string, context = desktop): Promise<Page> {
  assert.ok(context, 'browser context');
  const page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(`${path}: ${error.message}`));
  await page.goto(`${base}/#${path}`);
  return page;
}

/** A chart (by data-testid) that has drawn at least `min` points on a canvas. */
async function expectChartWithData(page: Page, testid: string, min = 1, timeout = DATA_TIMEOUT_MS): Promise<number> {
  const chart = page.locator(`[data-testid="${testid}"]`);
  await chart.waitFor({ timeout });
  // A string predicate: it runs in the page, and the test's tsconfig has no DOM types.
  await page.waitForFunction(`Number(document.querySelector('[data-testid="${testid}"]')?.getAttribute('data-points') ?? 0) >= ${min}`, undefined, { timeout, polling: 500 });
  const canvas = chart.locator('canvas');
  assert.ok((await canvas.count()) > 0, `${testid} has a canvas`);
  // A live update may redraw the chart (a new canvas replaces the old one): measure the current one.
  let box: { width: number; height: number } | null = null;
  for (let attempt = 0; attempt < 20 && !(box && box.width > 100 && box.height > 50); attempt++) {
    if (attempt > 0) await page.waitForTimeout(250);
    box = await canvas.first().boundingBox().catch(() => null);
  }
  assert.ok(box && box.width > 100 && box.height > 50, `${testid} canvas has a size (${JSON.stringify(box)})`);
  return Number(await chart.getAttribute('data-points'));
}

/** Long pages (tables) are cut at the window's height, so the pictures stay readable in the README. */
async function screenshot(page: Page, name: string, fullPage = true): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, name), fullPage });
}

before(async () => {
  const external = process.env.GRIDPULSE_TEST_URL;
  const missing = missingPrerequisites().filter((m) => external === undefined || m.startsWith('Chromium'));
  if (missing.length) throw new Error(`browser tests cannot run:\n- ${missing.join('\n- ')}`);
  base = external?.replace(/\/$/, '') ?? (await startPlatform());
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  desktop = await browser.newContext({ viewport: { width: 1280, height: 900 } });
});

after(async () => {
  await browser?.close();
  await stopPlatform();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test('overview shows fleet load, readings per second, open alerts and newest alerts, live', { timeout: DATA_TIMEOUT_MS + 60_000 }, async () => {
  const page = await openPage('/');
  await expectChartWithData(page, 'chart-fleet-load', 2);
  assert.match((await page.getByTestId('fleet-load-now').textContent()) ?? '', /\d.*kW/);
  // Readings per second come from the status events (every 2 s): the chart grows without a reload.
  const before = await expectChartWithData(page, 'chart-readings-rate', 1);
  await expectChartWithData(page, 'chart-readings-rate', before + 2, 20_000);
  assert.match((await page.getByTestId('readings-rate').textContent()) ?? '', /^\d/);
  // The simulator's anomalies become alerts within a few minutes; the overview lists them as they come.
  await page.getByTestId('newest-alert').first().waitFor({ timeout: DATA_TIMEOUT_MS });
  // Read in one go: a live alert event between two reads would change the counts.
  const [bySeverity, total] = await page.evaluate<[number, number]>(
    `(() => { const n = (id) => Number((document.querySelector('[data-testid="' + id + '"]')?.textContent ?? '').replace(/[^0-9]/g, ''));
      return [n('open-alerts-critical') + n('open-alerts-warning') + n('open-alerts-info'), n('open-alerts-total')]; })()`,
  );
  assert.equal(bySeverity, total, 'open alerts by severity add up to the total');
  // The 24 h chart fills in as each meter's history arrives; the picture is taken once it is complete.
  await page.waitForFunction(`!/loading/.test(document.querySelector('[data-testid="fleet-note"]')?.textContent ?? '')`, undefined, { timeout: 120_000 });
  await screenshot(page, 'overview.png');
  await page.close();
});

test('devices list filters by stream and links to the device page', { timeout: 60_000 }, async () => {
  const page = await openPage('/devices');
  await page.getByTestId('device-row').first().waitFor({ timeout: 30_000 });
  const streams = await getJson<{ streams: Array<{ name: string }> }>('/api/streams');
  const machines = streams.streams.find((s) => s.name === 'machines');
  assert.ok(machines, 'the default config has a machines stream');
  await page.getByTestId('filter-stream').selectOption('machines');
  await page.waitForFunction(
    `(() => { const rows = [...document.querySelectorAll('[data-testid="device-row"]')]; return rows.length > 0 && rows.every((row) => row.getAttribute('data-stream') === 'machines'); })()`,
    undefined,
    { timeout: 30_000 },
  );
  const first = page.getByTestId('device-row').first();
  const key = await first.getAttribute('data-key');
  await first.locator('a').first().click();
  await page.waitForURL(`**/#/devices/${encodeURIComponent(key ?? '')}*`);
  await page.getByTestId('live-values').waitFor();
  await page.close();
});

const historySkip = process.env.GRIDPULSE_TEST_URL !== undefined ? 'the history file is replayed only into a platform these tests start' : false;
test('a device of a replayed file (a stream the platform does not run) shows its stored history, not a live feed', { timeout: 60_000, skip: historySkip }, async () => {
  // The devices list offers its stream in the filter and lists its meters under it.
  const list = await openPage('/devices');
  await list.getByTestId('device-row').first().waitFor({ timeout: 30_000 });
  await list.waitForSelector('[data-testid="filter-stream"] option[value="history"]', { state: 'attached', timeout: 10_000 });
  await list.getByTestId('filter-stream').selectOption('history');
  await list.waitForFunction(
    `(() => { const rows = [...document.querySelectorAll('[data-testid="device-row"]')]; return rows.length === 2 && rows.every((row) => row.getAttribute('data-stream') === 'history'); })()`,
    undefined,
    { timeout: 10_000 },
  );
  await list.close();
  const page = await openPage(`/devices/${HISTORY_KEY}?range=24h`);
  // Its data ends at 00:00 UTC yesterday. The range ends there (its own newest data), not at the
  // engine's present, whose last 24 hours hold none of it.
  await expectChartWithData(page, `chart-metric-${HISTORY_METRIC}`, 20, 30_000);
  await page.waitForFunction(`document.querySelector('[data-testid="device-live-state"]')?.getAttribute('data-state') === 'history'`, undefined, { timeout: 10_000 });
  assert.equal(await page.getByTestId('device-live-state').textContent(), 'stored history');
  assert.equal(await page.getByTestId('error').count(), 0, 'no error on the page');
  await page.close();
});

test('device page charts every metric with data, at a chosen resolution, with its alerts as markers', { timeout: DATA_TIMEOUT_MS + 60_000 }, async () => {
  // The device of a recent alert (the overview test waited for the first one), a meter if there is one.
  const { alerts } = await getJson<{ alerts: Array<{ id: string; key: string; stream: string }> }>('/api/alerts?limit=50');
  const alert = alerts.find((a) => a.stream === 'power') ?? alerts[0];
  assert.ok(alert, 'an alert exists');
  const { streams } = await getJson<{ streams: Array<{ name: string; metrics: Array<{ name: string }> }> }>('/api/streams');
  const metrics = streams.find((s) => s.name === alert.stream)?.metrics.map((m) => m.name) ?? [];
  assert.ok(metrics.length > 0, `metrics of ${alert.stream}`);
  const page = await openPage(`/devices/${encodeURIComponent(alert.key)}`);
  for (const metric of metrics) await expectChartWithData(page, `chart-metric-${metric}`, 2, 60_000);
  const first = metrics[0]!;
  assert.match((await page.locator(`[data-metric="${first}"] [data-testid="live-last"]`).textContent()) ?? '', /\d/);
  // 1-minute windows: the chart says which resolution it shows, and still has points.
  await page.getByTestId('resolution').selectOption('1m');
  await page.waitForSelector(`[data-testid="chart-metric-${first}"][data-resolution="1m"]`, { timeout: 30_000 });
  await expectChartWithData(page, `chart-metric-${first}`, 2, 60_000);
  // The alert is listed with its explanation and drawn on the charts as a shaded band.
  const row = page.locator(`[data-testid="device-alerts"] [data-testid="alert-row"][data-alert-id="${alert.id}"]`);
  await row.waitFor({ timeout: 30_000 });
  assert.ok(((await row.getByTestId('alert-explain').textContent()) ?? '').length > 10, 'an explanation');
  const markers = await page.evaluate<number>(
    `[...document.querySelectorAll('[data-testid^="chart-metric-"]')].reduce((sum, chart) => sum + Number(chart.getAttribute('data-markers') ?? 0), 0)`,
  );
  assert.ok(markers > 0, 'alert markers on the charts');
  await screenshot(page, 'device.png');
  await page.close();
});

test('alerts page: acknowledge and resolve change the row in place, and live events update it', { timeout: DATA_TIMEOUT_MS + 60_000 }, async () => {
  const page = await openPage('/alerts');
  const openRow = page.locator('[data-testid="alert-row"][data-status="open"]').first();
  await openRow.waitFor({ timeout: DATA_TIMEOUT_MS });
  await screenshot(page, 'alerts.png', false);
  const id = await openRow.getAttribute('data-alert-id');
  assert.ok(id, 'the row names its alert');
  const row = page.locator(`[data-testid="alert-row"][data-alert-id="${id}"]`);
  const navigations: string[] = [];
  page.on('framenavigated', (frame) => navigations.push(frame.url()));

  await row.getByTestId('alert-ack').click();
  await page.waitForSelector(`[data-testid="alert-row"][data-alert-id="${id}"][data-status="acknowledged"]`, { timeout: 15_000 });
  assert.equal(await row.getByTestId('alert-status').textContent(), 'acknowledged');
  assert.equal(await row.getByTestId('alert-ack').count(), 0, 'an acknowledged alert offers no second acknowledge');
  // The page shows the acknowledgement from the API's answer and the live feed; the store write of
  // the transition follows in the engine's write queue, so read the alert until it is there (10 s).
  // (The alert row and its transitions are two reads: a write can land between them, so wait for
  // both to agree, not for the transition alone.)
  type AlertDetail = { alert: { status: string }; transitions: Array<{ kind: string; status: string; by?: string }> };
  const settled = (detail: AlertDetail): boolean => {
    const at = detail.transitions.findIndex((t) => t.kind === 'acknowledge');
    return at >= 0 && (at < detail.transitions.length - 1 || detail.alert.status === 'acknowledged');
  };
  let afterAck = await getJson<AlertDetail>(`/api/alerts/${encodeURIComponent(id)}`);
  for (let tries = 0; tries < 50 && !settled(afterAck); tries++) {
    await new Promise((r) => setTimeout(r, 200));
    afterAck = await getJson<AlertDetail>(`/api/alerts/${encodeURIComponent(id)}`);
  }
  const kinds = afterAck.transitions.map((t) => `${t.kind}→${t.status}`);
  const ackAt = afterAck.transitions.findIndex((t) => t.kind === 'acknowledge');
  assert.ok(ackAt >= 0, `the server has the acknowledgement (${kinds.join(', ')})`);
  // Still acknowledged, unless the lifecycle moved on since (resolved by absence, then maybe reopened).
  if (ackAt === afterAck.transitions.length - 1) assert.equal(afterAck.alert.status, 'acknowledged', kinds.join(', '));

  // Resolved by someone else (through the API): the open page follows the live alert event.
  await getJson(`/api/alerts/${encodeURIComponent(id)}/resolve`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ by: 'browser-test' }) });
  // The page must follow: it shows "resolved" — or, when the condition still held and the alert
  // reopened at once (the lifecycle's cooldown rule), the reopened alert as the server has it.
  const deadline = Date.now() + 30_000;
  let shown: string | null;
  let server: { alert: { status: string; updatedAt: number }; transitions: Array<{ kind: string; status: string }> } | undefined;
  for (;;) {
    server = await getJson<typeof server & object>(`/api/alerts/${encodeURIComponent(id)}`);
    shown = await row.getAttribute('data-status');
    const updated = Number(await row.getAttribute('data-updated'));
    const kinds = server.transitions.map((t) => t.kind);
    assert.ok(kinds.includes('resolve'), `the server recorded the resolve (${kinds.join(', ')})`);
    if (shown === 'resolved' && server.alert.status === 'resolved') break;
    if (kinds.lastIndexOf('reopen') > kinds.lastIndexOf('resolve') && shown === server.alert.status && updated === server.alert.updatedAt) break;
    if (Date.now() > deadline) {
      assert.fail(`the row says ${shown}; the server says ${server.alert.status} after ${server.transitions.map((t) => `${t.kind}→${t.status}`).join(', ')}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  assert.deepEqual(navigations, [], 'no page reload');
  await page.close();
});

test('data-quality page counts a too-late reading under its device and its site', { timeout: 120_000 }, async () => {
  const { devices } = await getJson<{ devices: Array<{ key: string; site: string | null }> }>('/api/devices?stream=power');
  const device = devices.find((d) => d.site !== null);
  assert.ok(device?.site, 'a simulated meter with a site');
  const tooLateBefore = async (by: 'key' | 'site', group: string): Promise<number> => {
    const { rows } = await getJson<{ rows: Array<{ group: string | null; counts: Record<string, number> }> }>(`/api/quality?stream=power&by=${by}`);
    return rows.find((r) => r.group === group)?.counts.too_late ?? 0;
  };
  const [deviceBefore, siteBefore] = await Promise.all([tooLateBefore('key', device.key), tooLateBefore('site', device.site)]);
  // Three hours behind the newest data: far past the allowed lateness (10 min), so it is TOO_LATE, recorded on ops.
  const result = await getJson<{ accepted: number }>('/v1/streams/power/readings', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ meterId: device.key, siteId: device.site, timestamp: Date.now() - 3 * 3_600_000 + 7, usageKw: 3.2, voltage: 230, current: 14, pf: 0.97 }),
  });
  assert.equal(result.accepted, 1);
  const page = await openPage('/quality');
  // The page refreshes itself every 10 s; no reload.
  const cell = (table: string, group: string): string => `[data-testid="${table}"] [data-testid="quality-row"][data-group="${group}"] [data-kind="too_late"]`;
  await page.waitForFunction(`Number((document.querySelector('${cell('quality-by-device', device.key)}')?.textContent ?? '0').replace(/,/g, '')) >= ${deviceBefore + 1}`, undefined, { timeout: 90_000 });
  await page.waitForFunction(`Number((document.querySelector('${cell('quality-by-site', device.site)}')?.textContent ?? '0').replace(/,/g, '')) >= ${siteBefore + 1}`, undefined, { timeout: 30_000 });
  await screenshot(page, 'quality.png', false);
  await page.close();
});

test('system page shows throughput over time, partitions, state and store', { timeout: 90_000 }, async () => {
  const page = await openPage('/system');
  await expectChartWithData(page, 'chart-throughput', 3, 30_000);
  assert.ok((await page.getByTestId('log-partition').count()) > 0, 'log partitions listed');
  assert.ok((await page.getByTestId('engine-partition').count()) > 0, 'engine partitions listed');
  assert.match((await page.getByTestId('system-state-keys').textContent()) ?? '', /^[1-9]/);
  assert.ok((await page.getByTestId('system-recovery').textContent())?.trim(), 'recovery report shown');
  await screenshot(page, 'system.png');
  await page.close();
});

test('models page: a model trained from the form runs to done and shows its evaluation in the table', { timeout: 150_000 }, async () => {
  type ModelsJson = { serving: { version: string | null } | null; models: Array<{ version: string; serving: boolean; metrics: Record<string, number | null> & { confusion: { tp: number; fp: number; tn: number; fn: number } | null } | null }> };
  const before = await getJson<ModelsJson>('/api/models');
  const page = await openPage('/models');
  await page.getByTestId('models-table').waitFor();
  if (before.models.length === 0) {
    // A fresh platform: the empty states say what to do.
    assert.match((await page.getByTestId('models-empty').textContent({ timeout: 30_000 })) ?? '', /No models yet: train one here or with gridpulse train/);
    assert.match((await page.getByTestId('serving-none').textContent({ timeout: 30_000 })) ?? '', /No model serves yet/);
  }
  // The form offers the configured streams, the machines stream (the one with failure rules) first chosen.
  await page.waitForFunction(`document.querySelector('[data-testid="train-stream"]')?.value === 'machines'`, undefined, { timeout: 30_000 });

  // A 4xx shows the API's message: a stream the platform does not have (as a stale option would be).
  await page.evaluate(`(() => { const s = document.querySelector('[data-testid="train-stream"]'); s.append(new Option('gas', 'gas')); s.value = 'gas'; })()`);
  await page.getByTestId('train-start').click();
  await page.waitForFunction(`/stream: expected one of .*machines.*, got "gas"/.test(document.querySelector('[data-testid="train-error"]')?.textContent ?? '')`, undefined, { timeout: 15_000 });

  // Record every state the newest job row is drawn in, so that "running, then done" is seen whatever the timing.
  await page.evaluate(`(() => {
    window.jobStates = [];
    const host = document.querySelector('[data-testid="training-jobs"]');
    new MutationObserver(() => {
      const job = host.querySelector('[data-testid="training-job"]');
      if (!job) return;
      const state = job.getAttribute('data-job-id') + ' ' + job.getAttribute('data-status') + ' ' + job.querySelector('[data-testid="job-progress"]')?.textContent;
      if (window.jobStates[window.jobStates.length - 1] !== state) window.jobStates.push(state);
    }).observe(host, { childList: true, subtree: true });
  })()`);
  await page.getByTestId('train-stream').selectOption('machines');
  await page.getByTestId('train-model').selectOption('gbdt');
  await page.getByTestId('train-start').click();
  await page.waitForFunction(
    `['succeeded', 'failed'].includes(document.querySelector('[data-testid="training-job"]')?.getAttribute('data-status'))`,
    undefined,
    { timeout: 120_000, polling: 250 },
  );
  const job = page.getByTestId('training-job').first();
  if ((await job.getAttribute('data-status')) === 'failed') assert.fail(`training failed: ${await job.getByTestId('job-error').textContent()}`);
  assert.equal(await page.getByTestId('train-error').textContent(), '', 'the earlier error is cleared');
  const jobId = await job.getAttribute('data-job-id');
  const states = (await page.evaluate<string[]>('window.jobStates')).filter((s) => s.startsWith(`${jobId} `)).map((s) => s.slice(`${jobId} `.length));
  assert.ok(states.length >= 2 && /^running \d+%$/.test(states[0]!) && states[states.length - 1] === 'succeeded 100%', `job drawn as ${states.join(' → ')}`);
  const { jobs } = await getJson<{ jobs: Array<{ job_id: string; model_version: string | null }> }>('/train-model');
  const version = jobs.find((j) => j.job_id === jobId)?.model_version;
  assert.ok(version, `job ${jobId} names its model`);
  assert.match((await job.getByTestId('job-result').textContent()) ?? '', new RegExp(`model ${version} · F1 \\d\\.\\d{3}`));

  // The new model is in the table, serving, with the evaluation the API has for it.
  const row = page.locator(`[data-testid="model-row"][data-version="${version}"]`);
  await row.waitFor({ timeout: 15_000 });
  assert.equal(await row.getAttribute('data-serving'), 'true');
  const listed = (await getJson<ModelsJson>('/api/models')).models.find((m) => m.version === version);
  assert.ok(listed?.metrics, `GET /api/models lists ${version} with metrics`);
  const shown = (value: number | null | undefined): string => (value === null || value === undefined ? '–' : value.toFixed(3));
  for (const [testid, key] of [
    ['model-precision', 'precision'],
    ['model-recall', 'recall'],
    ['model-f1', 'f1'],
    ['model-roc-auc', 'rocAuc'],
    ['model-ap', 'averagePrecision'],
  ] as const) {
    assert.equal(await row.getByTestId(testid).textContent(), shown(listed.metrics[key] as number | null), testid);
  }
  assert.match((await row.getByTestId('model-f1').textContent()) ?? '', /^\d\.\d{3}$/, 'the simulated overstrain and heat-dissipation minutes give an F1');
  // The page selects the model it just trained: its confusion matrix is the stored one.
  const confusion = listed.metrics.confusion;
  assert.ok(confusion, 'a confusion matrix is stored');
  for (const cell of ['tp', 'fp', 'tn', 'fn'] as const) {
    assert.equal(Number(((await page.getByTestId(`confusion-${cell}`).textContent()) ?? '').replace(/,/g, '')), confusion[cell], `confusion ${cell}`);
  }
  assert.equal(await page.getByTestId('serving-version').textContent(), version);
  // The toast about the trained model would cover part of the picture.
  await page.waitForFunction(`document.querySelectorAll('.toast').length === 0`, undefined, { timeout: 15_000 });
  await screenshot(page, 'models.png');
  await page.close();
});

test('works at phone width without sideways scrolling', { timeout: 90_000 }, async () => {
  assert.ok(browser);
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  const page = await openPage('/', phone);
  await expectChartWithData(page, 'chart-fleet-load', 2, 60_000);
  for (const path of ['/', '/alerts', '/devices', '/models']) {
    await page.goto(`${base}/#${path}`);
    await page.getByTestId('page').locator('h1').waitFor();
    // The models page draws its table once the list has loaded (the model trained above).
    if (path === '/models') await page.getByTestId('model-row').first().waitFor({ timeout: 30_000 });
    const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
    assert.ok(overflow <= 0, `${path} is ${overflow}px wider than the phone`);
  }
  await page.goto(`${base}/#/`);
  await expectChartWithData(page, 'chart-fleet-load', 2, 60_000);
  await screenshot(page, 'overview-phone.png', false);
  await phone.close();
});

test('no page raised an uncaught error', () => {
  assert.deepEqual(pageErrors, []);
});
