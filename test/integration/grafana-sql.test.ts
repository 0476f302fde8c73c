// The Grafana provisioning shipped in grafana/provisioning, checked without Grafana (it is not
// installed here): the files parse and reference the provisioned data source, and every panel,
// template-variable and annotation query of the three dashboards — with Grafana's variables and
// macros substituted as Grafana would (test/helpers/grafana-sql.ts) — runs against the real
// PostgreSQL schema on 127.0.0.1:5432 (scripts/servers.sh start postgres) and returns what the
// data written through the store implies.
//
// The run creates its own database (dropped afterwards); the store writes it in a non-public
// schema, and the queries run as a read-only role whose search_path points there — the setup the
// README asks Grafana users for.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { STAT_NAMES, STATS_PER_METRIC, opsEvent, type Aggregate, type AlertEvent, type AlertStatus, type OpsEvent, type Severity, type TransitionKind } from '../../src/model/index.js';
import { createPostgresStore, type ReadingRow } from '../../src/stores/index.js';
import { DAY, MINUTE, T0 } from '../helpers/store-conformance.js';
import {
  allPanels,
  dashboardQueries,
  durationMs,
  grafanaIntervalMs,
  interpolateGrafanaSql,
  loadProvisioning,
  type DashboardQuery,
  type GrafanaDashboard,
  type GrafanaQueryContext,
} from '../helpers/grafana-sql.js';

const ROOT = fileURLToPath(new URL('../../grafana/provisioning/', import.meta.url));
const SERVER = 'postgres://postgres@127.0.0.1:5432';
const UNREACHABLE = 'PostgreSQL not reachable on 127.0.0.1:5432 — start it with scripts/servers.sh start postgres';
const database = `gp_grafana_${process.pid}_${Date.now()}`;
const reader = `gp_grafana_reader_${process.pid}_${Date.now()}`;
const SCHEMA = 'gridpulse';

const provisioning = loadProvisioning(ROOT);
const dataSource = provisioning.dataSources[0];
const dashboards = [...provisioning.dashboards.values()];
const dashboardByUid = new Map(dashboards.map((d) => [d.uid, d]));

// ---- the data set -------------------------------------------------------------------------
// Four devices over ten minutes from T0 (2025-11-07T12:00Z): meters m-1 and m-2 on site s-1 and
// m-3 on s-2 report every 20 s (m-3 falls silent after 4 min 40 s), machine-001 (no site) every 30 s.

const SECOND = 1000;
const RANGE = { from: T0 - 60 * MINUTE, to: T0 + 60 * MINUTE };

interface Device {
  stream: string;
  key: string;
  site: string | undefined;
  every: number;
  count: number;
  values: (i: number) => Record<string, number>;
}
const DEVICES: readonly Device[] = [
  { stream: 'power', key: 'm-1', site: 's-1', every: 20 * SECOND, count: 30, values: (i) => ({ usageKw: 10 + i * 0.5, voltage: 230 + (i % 3) }) },
  { stream: 'power', key: 'm-2', site: 's-1', every: 20 * SECOND, count: 30, values: (i) => ({ usageKw: 50 - i * 0.25, voltage: 229 }) },
  { stream: 'power', key: 'm-3', site: 's-2', every: 20 * SECOND, count: 15, values: (i) => ({ usageKw: 5 + i, voltage: 231 }) },
  { stream: 'machines', key: 'machine-001', site: undefined, every: 30 * SECOND, count: 20, values: (i) => ({ torque_nm: 40 + i, rpm: 1500 }) },
];

function readingsOf(device: Device): ReadingRow[] {
  return Array.from({ length: device.count }, (_, i) => ({
    stream: device.stream,
    key: device.key,
    site: device.site,
    time: T0 + i * device.every,
    offset: i + 1,
    values: device.values(i),
  }));
}

/** The windows of one size the engine would emit for these readings (all on time: revision 0). */
function windowsOf(device: Device, window: '1m' | '5m' | '15m'): Aggregate[] {
  const length = durationMs(window);
  const byStart = new Map<number, ReadingRow[]>();
  for (const row of readingsOf(device)) {
    const start = Math.floor(row.time / length) * length;
    byStart.set(start, [...(byStart.get(start) ?? []), row]);
  }
  const metrics = Object.keys(device.values(0));
  return [...byStart].map(([start, rows]) => {
    const stats = new Array<number>(metrics.length * STATS_PER_METRIC).fill(Number.NaN);
    metrics.forEach((metric, m) => {
      const values = rows.map((row) => row.values[metric] as number);
      const sum = values.reduce((a, b) => a + b, 0);
      const avg = sum / values.length;
      const stat: Record<(typeof STAT_NAMES)[number], number> = {
        count: values.length,
        min: Math.min(...values),
        max: Math.max(...values),
        avg,
        sum,
        stddev: Math.sqrt(values.reduce((a, v) => a + (v - avg) ** 2, 0) / values.length),
        first: values[0] as number,
        last: values.at(-1) as number,
      };
      STAT_NAMES.forEach((name, s) => {
        stats[m * STATS_PER_METRIC + s] = stat[name];
      });
    });
    const usage = metrics.indexOf('usageKw');
    const energyKwh = usage < 0 ? null : (stats[usage * STATS_PER_METRIC + STAT_NAMES.indexOf('avg')] as number) * (length / 3_600_000);
    return { stream: device.stream, key: device.key, site: device.site, window, start, end: start + length, revision: 0, count: rows.length, metrics, stats, energyKwh };
  });
}

interface Step {
  seq: number;
  kind: TransitionKind;
  at: number;
  status: AlertStatus;
  severity: Severity;
}
function alertLife(id: string, device: Device, type: string, metric: string, steps: readonly Step[]): AlertEvent[] {
  const opened = (steps[0] as Step).at;
  return steps.map((step) => ({
    alert: {
      id,
      stream: device.stream,
      key: device.key,
      site: device.site,
      type,
      metric,
      severity: step.severity,
      status: step.status,
      openedAt: opened,
      updatedAt: step.at,
      resolvedAt: step.status === 'resolved' ? step.at : undefined,
      score: 0.6 + step.seq / 10,
      peakScore: 0.9,
      value: 42,
      findings: step.seq + 1,
      explain: `${metric} ${type} on ${device.key} (step ${step.seq})`,
    },
    transition: { id: `${id}#${step.seq}`, alertId: id, seq: step.seq, kind: step.kind, time: step.at, status: step.status, severity: step.severity, score: 0.6 + step.seq / 10, explain: `${step.kind} at step ${step.seq}` },
  }));
}

const [M1, M2, M3, MACHINE] = DEVICES as [Device, Device, Device, Device];
const ALERT_EVENTS: AlertEvent[] = [
  ...alertLife('a-m1-spike', M1, 'spike', 'usageKw', [
    { seq: 0, kind: 'open', at: T0 + 3 * MINUTE, status: 'open', severity: 'warning' },
    { seq: 1, kind: 'escalate', at: T0 + 4 * MINUTE, status: 'open', severity: 'critical' },
    { seq: 2, kind: 'resolve', at: T0 + 6 * MINUTE, status: 'resolved', severity: 'critical' },
  ]),
  ...alertLife('a-m3-silence', M3, 'silence', 'usageKw', [{ seq: 0, kind: 'open', at: T0 + 6 * MINUTE, status: 'open', severity: 'critical' }]),
  ...alertLife('a-m2-drop', M2, 'drop', 'usageKw', [
    { seq: 0, kind: 'open', at: T0 + 8 * MINUTE, status: 'open', severity: 'warning' },
    { seq: 1, kind: 'acknowledge', at: T0 + 9 * MINUTE, status: 'acknowledged', severity: 'warning' },
  ]),
  ...alertLife('a-machine-range', MACHINE, 'out_of_range', 'torque_nm', [
    { seq: 0, kind: 'open', at: T0 + 5 * MINUTE, status: 'open', severity: 'info' },
    { seq: 1, kind: 'resolve', at: T0 + 7 * MINUTE, status: 'resolved', severity: 'info' },
    { seq: 2, kind: 'reopen', at: T0 + 8 * MINUTE, status: 'open', severity: 'info' },
  ]),
];

// Late, out-of-order and duplicate readings point at readings that were stored (late ones amend
// their windows); too-late ones were refused, so no stored reading has their time.
const OPS: OpsEvent[] = [
  opsEvent('late', 'power', 'late by 2m30s', { key: 'm-1', time: T0 + 2 * MINUTE, offset: 101, lagMs: 150_000 }),
  opsEvent('late', 'power', 'late by 2m10s', { key: 'm-1', time: T0 + 2 * MINUTE + 20 * SECOND, offset: 102, lagMs: 130_000 }),
  opsEvent('late', 'power', 'late by 2m', { key: 'm-1', time: T0 + 7 * MINUTE, offset: 103, lagMs: 120_000 }),
  opsEvent('late', 'power', 'late by 3m', { key: 'm-2', time: T0 + 2 * MINUTE + 40 * SECOND, offset: 104, lagMs: 180_000 }),
  opsEvent('too_late', 'power', 'older than allowed lateness 10m', { key: 'm-1', time: T0 + MINUTE + 10 * SECOND, watermark: T0 + 12 * MINUTE, offset: 105, lagMs: 660_000 }),
  opsEvent('too_late', 'power', 'older than allowed lateness 10m', { key: 'm-1', time: T0 + 8 * MINUTE + 10 * SECOND, watermark: T0 + 19 * MINUTE, offset: 106, lagMs: 660_000 }),
  opsEvent('duplicate', 'power', 'same reading again', { key: 'm-1', time: T0 + 3 * MINUTE, offset: 107 }),
  opsEvent('out_of_order', 'power', 'behind the newest reading by 40s', { key: 'm-2', time: T0 + 4 * MINUTE, offset: 108, lagMs: 40_000 }),
  opsEvent('invalid', 'power', 'usageKw: expected a number, got "abc"', { key: 'm-2', time: T0 + 5 * MINUTE + 30 * SECOND, offset: 109, field: 'usageKw', expected: 'a number', got: '"abc"' }),
  opsEvent('invalid', 'power', 'line 110: not JSON', { watermark: T0 + 6 * MINUTE, offset: 110, field: 'line', expected: 'a JSON object', got: '{"meterId": ' }),
  opsEvent('gap', 'power', 'no reading for 1m (expected every 20s)', { key: 'm-3', time: T0 + 6 * MINUTE, missed: 3 }),
  opsEvent('gap', 'power', 'no reading for 4m20s (expected every 20s)', { key: 'm-3', time: T0 + 9 * MINUTE, missed: 12 }),
  opsEvent('clock_skew', 'machines', 'device clock 90s ahead', { key: 'machine-001', time: T0 + 5 * MINUTE, offset: 111 }),
  // Two days before the range: every panel's time filter must leave it out.
  opsEvent('late', 'power', 'late by 2m', { key: 'm-1', time: T0 - 2 * DAY, offset: 1, lagMs: 120_000 }),
];

// ---- the database -------------------------------------------------------------------------

async function admin<T>(body: (client: pg.Client) => Promise<T>, db = 'postgres'): Promise<T> {
  const client = new pg.Client({ connectionString: `${SERVER}/${db}` });
  try {
    await client.connect();
  } catch (cause) {
    throw new Error(UNREACHABLE, { cause });
  }
  try {
    return await body(client);
  } finally {
    await client.end();
  }
}

let databaseCreated = false;
let roleCreated = false;
let readerClient: pg.Client | undefined;
let prepared: Promise<pg.Client> | undefined;

/** Creates the database, writes the data set through the store, and connects as the read-only role. */
function fixture(): Promise<pg.Client> {
  prepared ??= (async () => {
    await admin(async (client) => {
      await client.query(`CREATE DATABASE ${database}`);
    });
    databaseCreated = true;
    const store = createPostgresStore({ url: `${SERVER}/${database}`, schema: SCHEMA });
    try {
      await store.ready();
      await store.writeReadings(DEVICES.flatMap(readingsOf));
      await store.upsertAggregates(DEVICES.flatMap((device) => (['1m', '5m', '15m'] as const).flatMap((window) => windowsOf(device, window))));
      await store.writeAlertEvents(ALERT_EVENTS);
      await store.writeOps(OPS);
    } finally {
      await store.close();
    }
    // The README's reader role: SELECT only, read-only transactions, search_path on the store's schema.
    await admin(async (client) => {
      await client.query(`CREATE ROLE ${reader} LOGIN`);
      roleCreated = true;
      await client.query(`ALTER ROLE ${reader} SET default_transaction_read_only = on`);
      await client.query(`ALTER ROLE ${reader} IN DATABASE ${database} SET search_path = ${SCHEMA}`);
    });
    await admin(async (client) => {
      await client.query(`GRANT USAGE ON SCHEMA ${SCHEMA} TO ${reader}`);
      await client.query(`GRANT SELECT ON ALL TABLES IN SCHEMA ${SCHEMA} TO ${reader}`);
    }, database);
    const client = new pg.Client({ connectionString: `postgres://${reader}@127.0.0.1:5432/${database}`, statement_timeout: 10_000 });
    await client.connect();
    readerClient = client;
    return client;
  })();
  return prepared;
}

after(async () => {
  await readerClient?.end();
  if (!databaseCreated && !roleCreated) return;
  await admin(async (client) => {
    if (databaseCreated) await client.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    if (roleCreated) await client.query(`DROP ROLE IF EXISTS ${reader}`);
  });
});

// ---- running a dashboard query ------------------------------------------------------------

const NUMERIC = new Set([20, 21, 23, 700, 701, 1700]); // int8, int2, int4, float4, float8, numeric
const TEXT = new Set([25, 1043]); // text, varchar
const TIMESTAMPTZ = 1184;

interface QueryResult {
  sql: string;
  columns: { name: string; type: number }[];
  rows: Record<string, unknown>[];
}

/** Variables of the device drill-down, chosen the way a user would pick them. */
type Selection = Record<string, string>;

function contextFor(query: DashboardQuery, variables: Selection): GrafanaQueryContext {
  const minInterval = query.panel?.interval ?? (dataSource?.jsonData?.['timeInterval'] as string | undefined);
  return { ...RANGE, intervalMs: grafanaIntervalMs(RANGE, minInterval), variables };
}

async function run(query: DashboardQuery, variables: Selection = {}): Promise<QueryResult> {
  const client = await fixture();
  const sql = interpolateGrafanaSql(query.sql, contextFor(query, variables));
  let result: pg.QueryArrayResult;
  try {
    result = await client.query({ text: sql, rowMode: 'array' });
  } catch (cause) {
    throw new Error(`${query.dashboard} · ${query.origin} "${query.name}" failed: ${(cause as Error).message}\n${sql}`, { cause });
  }
  const columns = result.fields.map((field) => ({ name: field.name, type: field.dataTypeID }));
  const rows = result.rows.map((row) => Object.fromEntries(columns.map((column, i) => [column.name, row[i]])));
  return { sql, columns, rows };
}

function findQuery(uid: string, name: string, origin: DashboardQuery['origin']): DashboardQuery {
  const dashboard = dashboardByUid.get(uid);
  assert.ok(dashboard, `dashboard ${uid}`);
  const query = dashboardQueries(dashboard).find((q) => q.name === name && q.origin === origin);
  assert.ok(query, `${uid}: no ${origin} named "${name}"`);
  return query;
}

async function rowsOf(uid: string, name: string, variables: Selection = {}, origin: DashboardQuery['origin'] = 'panel'): Promise<Record<string, unknown>[]> {
  return (await run(findQuery(uid, name, origin), variables)).rows;
}

/** Numbers and numeric strings (pg returns int8 and numeric as strings) as numbers, times as epoch ms. */
function plain(row: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(row).map(([key, value]) => [
      key,
      value instanceof Date ? value.getTime() : typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value,
    ]),
  );
}

function sortedBy(rows: Record<string, unknown>[], column: string): Record<string, unknown>[] {
  return [...rows].sort((a, b) => (String(a[column]) < String(b[column]) ? -1 : String(a[column]) > String(b[column]) ? 1 : 0));
}

function near(actual: unknown, expected: number, what: string): void {
  assert.ok(typeof actual === 'number' && Math.abs(actual - expected) < 0.005, `${what}: expected ${expected}, got ${String(actual)}`);
}

/** Checks what Grafana needs from a result, by where the query is used. */
function assertGrafanaShape(query: DashboardQuery, result: QueryResult): void {
  const label = `${query.dashboard} · ${query.origin} "${query.name}"`;
  assert.ok(result.rows.length > 0, `${label}: no rows for the test data\n${result.sql}`);
  const names = result.columns.map((column) => column.name);
  assert.equal(new Set(names).size, names.length, `${label}: duplicate column names ${names.join(', ')}`);
  for (const column of result.columns) {
    assert.ok(
      NUMERIC.has(column.type) || TEXT.has(column.type) || column.type === TIMESTAMPTZ,
      `${label}: column "${column.name}" has type oid ${column.type}; Grafana gets numbers, text and timestamptz from these dashboards`,
    );
  }
  const type = (name: string): number | undefined => result.columns.find((column) => column.name === name)?.type;
  if (query.origin === 'variable') {
    assert.ok(TEXT.has(result.columns[0]?.type ?? 0), `${label}: the first column holds the values and must be text`);
    for (const row of result.rows) assert.ok(String(Object.values(row)[0]) !== '', `${label}: empty option`);
    return;
  }
  if (query.origin === 'annotation') {
    assert.equal(type('time'), TIMESTAMPTZ, `${label}: needs a timestamptz column "time"`);
    assert.ok(TEXT.has(type('text') ?? 0), `${label}: needs a text column "text"`);
    if (names.includes('timeend')) assert.equal(type('timeend'), TIMESTAMPTZ, `${label}: timeend must be timestamptz`);
    return;
  }
  const panelType = query.panel?.type;
  if (query.format === 'time_series' || panelType === 'timeseries') {
    assert.equal(query.format, 'time_series', `${label}: a time series panel should ask for format time_series`);
    assert.equal(type('time'), TIMESTAMPTZ, `${label}: needs a timestamptz column "time" (got ${names.join(', ')})`);
    const times = result.rows.map((row) => (row['time'] as Date).getTime());
    assert.deepEqual(times, [...times].sort((a, b) => a - b), `${label}: Grafana needs rows in ascending time`);
    for (const time of times) assert.ok(time >= RANGE.from && time <= RANGE.to, `${label}: a point at ${new Date(time).toISOString()} is outside the range`);
    const values = result.columns.filter((column) => column.name !== 'time' && column.name !== 'metric');
    assert.ok(values.length > 0, `${label}: no value column`);
    for (const column of values) assert.ok(NUMERIC.has(column.type), `${label}: value column "${column.name}" must be numeric`);
    if (names.includes('metric')) {
      // Grafana names series after the metric column only in the three-column long form.
      assert.deepEqual([...names].sort(), ['metric', 'time', 'value'], `${label}: long form must be exactly time, metric, value`);
      assert.ok(TEXT.has(type('metric') ?? 0), `${label}: metric must be text`);
    }
    return;
  }
  assert.equal(query.format, 'table', `${label}: format`);
  if (panelType === 'stat' || panelType === 'barchart' || panelType === 'bargauge') {
    assert.ok(result.columns.some((column) => NUMERIC.has(column.type)), `${label}: a ${panelType} panel needs a numeric column`);
  }
  if (panelType === 'barchart') {
    const xField = query.panel?.options?.['xField'];
    assert.ok(typeof xField === 'string' && TEXT.has(type(xField) ?? 0), `${label}: the bar chart's x field ${String(xField)} must be a text column`);
  }
}

// The device drill-down is checked for two selections: a meter's usageKw per 1m window and a
// machine's torque per 5m window ("any metric"). The others have no variables.
const DEVICE_SELECTIONS: readonly Selection[] = [
  { stream: 'power', device: 'm-1', metric: 'usageKw', window: '1m' },
  { stream: 'machines', device: 'machine-001', metric: 'torque_nm', window: '5m' },
];

function selectionsFor(dashboard: GrafanaDashboard): readonly Selection[] {
  return (dashboard.templating?.list ?? []).length === 0 ? [{}] : DEVICE_SELECTIONS;
}

// ---- tests ------------------------------------------------------------------------------

describe('Grafana substitution (the harness the query tests rely on)', () => {
  const context: GrafanaQueryContext = { from: T0, to: T0 + MINUTE, intervalMs: 60_000, variables: { device: "o'hare", window: '5m', sites: ['s-1', 's-2'] } };

  test('replaces variables, globals and the macros it knows, as Grafana writes them', () => {
    assert.equal(
      interpolateGrafanaSql('key = ${device:sqlstring} AND w = $window AND site IN (${sites:sqlstring}) AND t BETWEEN $__from AND ${__to} AND b = $__interval_ms', context),
      `key = 'o''hare' AND w = 5m AND site IN ('s-1','s-2') AND t BETWEEN ${T0} AND ${T0 + MINUTE} AND b = 60000`,
    );
    assert.equal(
      interpolateGrafanaSql('WHERE $__timeFilter(to_timestamp(t / 1000.0)) AND $__timeFrom() < $__timeTo() -- $__interval', context),
      "WHERE to_timestamp(t / 1000.0) BETWEEN '2025-11-07T12:00:00.000Z' AND '2025-11-07T12:01:00.000Z' AND '2025-11-07T12:00:00.000Z' < '2025-11-07T12:01:00.000Z' -- 1m",
    );
  });

  test('fails on anything it does not model', () => {
    assert.throws(() => interpolateGrafanaSql('WHERE $__unixEpochFilter(t)', context), /__unixEpochFilter/);
    assert.throws(() => interpolateGrafanaSql('WHERE $__timeGroupAlias(t, 1m)', context), /__timeGroupAlias/);
    assert.throws(() => interpolateGrafanaSql('WHERE key = $meter', context), /unknown variable "meter"/);
    assert.throws(() => interpolateGrafanaSql('WHERE key = ${device:json}', context), /unsupported variable format "json"/);
    assert.throws(() => interpolateGrafanaSql('WHERE key = [[device]]', context), /deprecated/);
    assert.throws(() => interpolateGrafanaSql('WHERE x > $__range_ms', context), /unknown global variable/);
    assert.throws(() => interpolateGrafanaSql('WHERE key = $1', context), /\$1/);
  });
});

describe('Grafana provisioning files', () => {
  test('the data source is PostgreSQL, configured from the environment, TimescaleDB off', () => {
    assert.equal(provisioning.dataSources.length, 1);
    assert.ok(dataSource);
    assert.equal(dataSource.uid, 'gridpulse-postgres');
    assert.equal(dataSource.type, 'grafana-postgresql-datasource');
    const placeholder = /^\$\{?GRIDPULSE_PG_[A-Z]+\}?$/;
    assert.match(String(dataSource.url), placeholder, 'host:port');
    assert.match(String(dataSource.user), placeholder, 'user');
    assert.match(String(dataSource.jsonData?.['database']), placeholder, 'database');
    assert.match(String(dataSource.secureJsonData?.['password']), placeholder, 'password');
    assert.equal(dataSource.jsonData?.['timescaledb'], false);
  });

  test('the dashboard provider loads the folder the dashboards are in', () => {
    assert.equal(provisioning.providers.length, 1);
    const provider = provisioning.providers[0];
    assert.equal(provider?.type, 'file');
    const path = String(provider?.options?.path);
    assert.ok(path.endsWith('/dashboards/gridpulse'), path);
    assert.ok(existsSync(`${ROOT}dashboards/gridpulse`));
    assert.deepEqual([...provisioning.dashboards.keys()], ['data-quality.json', 'device.json', 'system-health.json']);
  });

  test('the dashboards parse, have unique uids, and every query uses the provisioned data source by uid', () => {
    const uids = dashboards.map((d) => d.uid);
    assert.deepEqual([...uids].sort(), ['gridpulse-data-quality', 'gridpulse-device', 'gridpulse-system-health']);
    assert.equal(new Set(uids).size, uids.length, 'dashboard uids are unique');
    assert.equal(new Set(dashboards.map((d) => d.title)).size, dashboards.length, 'dashboard titles are unique');
    for (const dashboard of dashboards) {
      // Grafana 10.4 and 11.x write schema version 39; newer releases migrate it on load.
      assert.equal(dashboard.schemaVersion, 39, `${dashboard.uid}: schemaVersion`);
      assert.equal(dashboard.id ?? null, null, `${dashboard.uid}: a provisioned dashboard has no id`);
      const panels = allPanels(dashboard);
      const ids = panels.map((panel) => panel.id);
      assert.equal(new Set(ids).size, ids.length, `${dashboard.uid}: panel ids are unique`);
      for (const panel of panels) {
        assert.ok(panel.gridPos && panel.gridPos.x + panel.gridPos.w <= 24, `${dashboard.uid}: panel "${panel.title}" fits the 24-column grid`);
        assert.equal(panel.datasource?.uid, dataSource?.uid, `${dashboard.uid}: panel "${panel.title}" data source`);
        for (const target of panel.targets ?? []) {
          assert.equal(target.datasource?.uid, dataSource?.uid, `${dashboard.uid}: panel "${panel.title}" target data source`);
          assert.equal(target.rawQuery, true, `${dashboard.uid}: panel "${panel.title}" is raw SQL`);
          assert.equal(target.editorMode, 'code', `${dashboard.uid}: panel "${panel.title}" opens in the code editor`);
        }
      }
      const queries = dashboardQueries(dashboard);
      assert.ok(queries.length >= 6, `${dashboard.uid}: ${queries.length} queries`);
      for (const query of queries) assert.equal(query.datasource?.uid, dataSource?.uid, `${dashboard.uid}: ${query.origin} "${query.name}" data source`);
    }
  });
});

describe('Grafana dashboards against the PostgreSQL schema', () => {
  test('every panel, variable and annotation query runs and returns what Grafana needs', async (t) => {
    await fixture();
    let ran = 0;
    for (const dashboard of dashboards) {
      for (const selection of selectionsFor(dashboard)) {
        for (const query of dashboardQueries(dashboard)) {
          const suffix = Object.keys(selection).length === 0 ? '' : ` [${Object.values(selection).join(', ')}]`;
          await t.test(`${dashboard.uid} · ${query.origin} "${query.name}"${suffix}`, async () => {
            assertGrafanaShape(query, await run(query, selection));
            ran += 1;
          });
        }
      }
    }
    // 6 + 8 panels, and the device dashboard's 3 variables, 1 annotation and 10 panels twice.
    assert.equal(ran, 6 + 8 + 2 * (3 + 1 + 10));
  });

  test('the device drill-down variables offer what was written', async () => {
    const options = async (name: string, selection: Selection): Promise<string[]> =>
      (await rowsOf('gridpulse-device', name, selection, 'variable')).map((row) => String(Object.values(row)[0]));
    assert.deepEqual(await options('stream', {}), ['machines', 'power']);
    assert.deepEqual(await options('device', { stream: 'power' }), ['m-1', 'm-2', 'm-3']);
    assert.deepEqual(await options('device', { stream: 'machines' }), ['machine-001']);
    assert.deepEqual(await options('metric', { stream: 'power', device: 'm-1' }), ['usageKw', 'voltage']);
    assert.deepEqual(await options('metric', { stream: 'machines', device: 'machine-001' }), ['rpm', 'torque_nm']);
    const window = dashboardByUid.get('gridpulse-device')?.templating?.list.find((variable) => variable.name === 'window');
    assert.equal(window?.query, '1m,5m,15m');
  });

  test('data quality: counts per kind, site and device match the ops events written in range', async () => {
    const DQ = 'gridpulse-data-quality';
    // 5 late events were written; one lies two days before the range.
    assert.deepEqual((await rowsOf(DQ, 'Data-quality events in range, by kind')).map(plain), [
      { invalid: 2, duplicate: 1, out_of_order: 1, late: 4, too_late: 2, gap: 2, clock_skew: 1, total: 13 },
    ]);

    const series = (await rowsOf(DQ, 'Data-quality events by kind')).map(plain);
    const late = series.filter((row) => row['metric'] === 'late');
    assert.deepEqual(late.map((row) => [row['time'], row['value']]), [[T0 + 2 * MINUTE, 3], [T0 + 7 * MINUTE, 1]]);
    assert.equal(series.reduce((sum, row) => sum + (row['value'] as number), 0), 13);

    const zero = { invalid: 0, duplicate: 0, out_of_order: 0, late: 0, too_late: 0, gap: 0, clock_skew: 0 };
    // Most events first; rows with equal totals follow the database's collation, so they are compared as a set.
    const perSite = (await rowsOf(DQ, 'Per site')).map(plain);
    assert.deepEqual(perSite[0], { ...zero, site: 's-1', invalid: 1, duplicate: 1, out_of_order: 1, late: 4, too_late: 2, total: 9 });
    assert.deepEqual(sortedBy(perSite.slice(1), 'site'), [
      // The keyless invalid line and machine-001 (whose devices row has no site).
      { ...zero, site: '(unknown)', invalid: 1, clock_skew: 1, total: 2 },
      { ...zero, site: 's-2', gap: 2, total: 2 },
    ]);

    const perDeviceRows = (await rowsOf(DQ, 'Per device')).map(plain);
    const perDevice = new Map(perDeviceRows.map((row) => [row['device'], row]));
    assert.deepEqual(perDeviceRows.map((row) => row['total']), [6, 3, 2, 1, 1]);
    assert.deepEqual([...perDevice.keys()].slice(0, 3), ['m-1', 'm-2', 'm-3']);
    assert.deepEqual([...perDevice.keys()].slice(3).sort(), ['(no device)', 'machine-001']);
    assert.deepEqual(perDevice.get('m-1'), {
      ...zero, stream: 'power', device: 'm-1', site: 's-1', duplicate: 1, late: 3, too_late: 2, total: 6,
      'most intervals missed': 0, 'newest event': T0 + 8 * MINUTE + 10 * SECOND,
    });
    assert.equal(perDevice.get('m-3')?.['most intervals missed'], 12);
    assert.equal(perDevice.get('(no device)')?.['invalid'], 1);

    const worst = (await rowsOf(DQ, 'Worst devices')).map(plain);
    assert.deepEqual(worst.map((row) => [row['device'], row['issues'], row['readings']]), [
      ['m-1', 6, 30],
      ['m-2', 3, 30],
      ['m-3', 2, 15],
      ['machine-001', 1, 20],
    ]);
    assert.deepEqual(worst.map((row) => row['issues per 100 readings']), [20, 10, 13.33, 5]);

    const newest = (await rowsOf(DQ, 'Newest data-quality events')).map(plain);
    assert.equal(newest.length, 13);
    assert.deepEqual(newest.slice(0, 2).map((row) => [row['kind'], row['device'], row['time']]), [
      ['gap', 'm-3', T0 + 9 * MINUTE],
      ['too_late', 'm-1', T0 + 8 * MINUTE + 10 * SECOND],
    ]);
    const invalid = newest.find((row) => row['kind'] === 'invalid' && row['device'] === 'm-2');
    assert.deepEqual([invalid?.['field'], invalid?.['expected'], invalid?.['got']], ['usageKw', 'a number', '"abc"']);
  });

  test("device drill-down: a meter's usageKw windows, raw readings, alerts and transitions", async () => {
    const DEV = 'gridpulse-device';
    const meter = { stream: 'power', device: 'm-1', metric: 'usageKw', window: '1m' };
    assert.deepEqual((await rowsOf(DEV, 'Newest reading', meter)).map(plain), [{ 'newest reading': T0 + 9 * MINUTE + 40 * SECOND }]);
    assert.deepEqual((await rowsOf(DEV, 'Readings in range', meter)).map(plain), [{ readings: 30 }]);
    assert.deepEqual((await rowsOf(DEV, 'Open alerts', meter)).map(plain), [{ 'open alerts': 0 }]);
    assert.deepEqual((await rowsOf(DEV, 'Data-quality events in range', meter)).map(plain), [{ events: 6 }]);

    // 1m windows of readings 10, 10.5, 11 | 11.5, 12, 12.5 | ... | 23.5, 24, 24.5.
    const windows = (await rowsOf(DEV, '$metric per $window window: avg, min, max', meter)).map(plain);
    assert.equal(windows.length, 10);
    assert.deepEqual(windows[0], { time: T0, avg: 10.5, min: 10, max: 11 });
    assert.deepEqual(windows[9], { time: T0 + 9 * MINUTE, avg: 24, min: 23.5, max: 24.5 });

    const averages = (await rowsOf(DEV, '$metric averages: 1m, 5m, 15m', meter)).map(plain);
    assert.equal(averages.length, 10 + 2 + 1);
    assert.deepEqual(averages.filter((row) => row['time'] === T0).map((row) => [row['metric'], row['value']]), [['15m', 17.25], ['1m', 10.5], ['5m', 13.5]]);

    const raw = (await rowsOf(DEV, '$metric raw readings', meter)).map(plain);
    assert.equal(raw.length, 30);
    assert.deepEqual(raw[0], { time: T0, value: 10 });
    assert.deepEqual(raw[29], { time: T0 + 9 * MINUTE + 40 * SECOND, value: 24.5 });

    const alerts = (await rowsOf(DEV, 'Alerts of $device', meter)).map(plain);
    assert.deepEqual(alerts.map((row) => [row['id'], row['type'], row['severity'], row['status'], row['opened'], row['resolved']]), [
      ['a-m1-spike', 'spike', 'critical', 'resolved', T0 + 3 * MINUTE, T0 + 6 * MINUTE],
    ]);
    const transitions = (await rowsOf(DEV, 'Alert transitions of $device', meter)).map(plain);
    assert.deepEqual(transitions.map((row) => [row['time'], row['seq'], row['kind'], row['status'], row['severity']]), [
      [T0 + 6 * MINUTE, 2, 'resolve', 'resolved', 'critical'],
      [T0 + 4 * MINUTE, 1, 'escalate', 'open', 'critical'],
      [T0 + 3 * MINUTE, 0, 'open', 'open', 'warning'],
    ]);
    assert.deepEqual((await rowsOf(DEV, 'Data-quality events of $device', meter)).map(plain).map((row) => [row['kind'], row['events']]), [
      ['late', 3],
      ['too_late', 2],
      ['duplicate', 1],
    ]);
    const annotations = (await rowsOf(DEV, 'Alert periods of $device', meter, 'annotation')).map(plain);
    assert.deepEqual(annotations.map((row) => [row['time'], row['timeend'], row['tags']]), [[T0 + 3 * MINUTE, T0 + 6 * MINUTE, 'spike,critical']]);
  });

  test("device drill-down: a machine's torque per 5m window, and an alert that reopened", async () => {
    const DEV = 'gridpulse-device';
    const machine = { stream: 'machines', device: 'machine-001', metric: 'torque_nm', window: '5m' };
    // 5m windows of torque 40..49 and 50..59.
    assert.deepEqual((await rowsOf(DEV, '$metric per $window window: avg, min, max', machine)).map(plain), [
      { time: T0, avg: 44.5, min: 40, max: 49 },
      { time: T0 + 5 * MINUTE, avg: 54.5, min: 50, max: 59 },
    ]);
    assert.deepEqual((await rowsOf(DEV, 'Open alerts', machine)).map(plain), [{ 'open alerts': 1 }]);
    const transitions = (await rowsOf(DEV, 'Alert transitions of $device', machine)).map(plain);
    assert.deepEqual(transitions.map((row) => row['kind']), ['reopen', 'resolve', 'open']);
    const raw = (await rowsOf(DEV, '$metric raw readings', machine)).map(plain);
    assert.deepEqual(raw.map((row) => row['value']), Array.from({ length: 20 }, (_, i) => 40 + i));
  });

  test('system health: throughput, alert activity, open alerts, newest data and lateness match the data set', async () => {
    const SH = 'gridpulse-system-health';
    assert.deepEqual((await rowsOf(SH, 'Open alerts by severity')).map(plain), [{ critical: 1, warning: 1, info: 1 }]);
    assert.deepEqual((await rowsOf(SH, 'In range')).map(plain), [{ readings: 30 + 30 + 15 + 20, devices: 4 }]);

    const readings = (await rowsOf(SH, 'Readings per minute')).map(plain);
    const at = (rows: Record<string, unknown>[], time: number): [unknown, unknown][] =>
      rows.filter((row) => row['time'] === time).map((row) => [row['metric'], row['value']]);
    assert.deepEqual(at(readings, T0), [['machines', 2], ['power', 9]]);
    assert.deepEqual(at(readings, T0 + 5 * MINUTE), [['machines', 2], ['power', 6]]);

    const windows = (await rowsOf(SH, 'Aggregate windows per minute')).map(plain);
    assert.deepEqual(at(windows, T0), [['15m', 4], ['1m', 4], ['5m', 4]]);
    assert.deepEqual(at(windows, T0 + 5 * MINUTE), [['1m', 3], ['5m', 3]]);

    // 4 alerts opened and one reopened; two resolve steps — all in the hour from T0.
    assert.deepEqual((await rowsOf(SH, 'Alerts opened and resolved per hour')).map(plain), [{ time: T0, opened: 5, resolved: 2 }]);

    assert.deepEqual((await rowsOf(SH, 'Open alerts by type and severity')).map(plain), [
      { type: 'drop', critical: 0, warning: 1, info: 0 },
      { type: 'out_of_range', critical: 0, warning: 0, info: 1 },
      { type: 'silence', critical: 1, warning: 0, info: 0 },
    ]);

    const newest = (await rowsOf(SH, 'Newest data per stream')).map(plain);
    assert.deepEqual(newest.map((row) => [row['stream'], row['newest reading'], row['newest window end']]), [
      ['machines', T0 + 9 * MINUTE + 30 * SECOND, T0 + 10 * MINUTE],
      ['power', T0 + 9 * MINUTE + 40 * SECOND, T0 + 10 * MINUTE],
    ]);
    for (const row of newest) {
      const expected = (Date.now() - (row['newest reading'] as number)) / 1000;
      assert.ok(Math.abs((row['reading age'] as number) - expected) < 60, `${String(row['stream'])}: reading age ${String(row['reading age'])} s, expected about ${expected}`);
    }

    const lateness = new Map((await rowsOf(SH, 'Late and too-late readings')).map(plain).map((row) => [row['time'], row]));
    // Minute 1: 11 readings stored + 1 too late; minute 2: 3 of 11 late; minute 7: 1 of 8; minute 8: 8 stored + 1 too late.
    near(lateness.get(T0 + MINUTE)?.['too_late'], 100 / 12, 'too-late share, minute 1');
    near(lateness.get(T0 + 2 * MINUTE)?.['late'], 300 / 11, 'late share, minute 2');
    near(lateness.get(T0 + 7 * MINUTE)?.['late'], 100 / 8, 'late share, minute 7');
    near(lateness.get(T0 + 8 * MINUTE)?.['too_late'], 100 / 9, 'too-late share, minute 8');
    near(lateness.get(T0)?.['late'], 0, 'late share, minute 0');
  });

  test('the reader role cannot write: the dashboards work with SELECT and a read-only session', async () => {
    const client = await fixture();
    await assert.rejects(client.query(`DELETE FROM ops`), /read-only transaction|permission denied/);
  });
});
