import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createStreamSchema, defaultConfig, formatIssues, parseConfig } from '../../src/config/index.js';
import { GpError } from '../../src/model/index.js';

const EXAMPLE_FILE = new URL('../../gridpulse.example.yaml', import.meta.url);

const detectorSummary = (detectors: readonly { type: string; metrics: readonly string[]; alertType: string | undefined }[]): string[] =>
  detectors.map((detector) => `${detector.alertType ?? detector.type}:${detector.metrics.join(',')}`);

test('without a file the config has the documented engine, store and directory defaults', () => {
  const config = defaultConfig();
  assert.equal(config.engine.partitions, 4);
  assert.equal(config.dataDir, './data');
  assert.deepEqual(config.store, {
    url: 'duckdb:./data/gridpulse.duckdb',
    writeReadings: true,
    retention: { readingsMs: 14 * 86_400_000, aggregatesMs: 90 * 86_400_000, alertsMs: 90 * 86_400_000, opsMs: 30 * 86_400_000 },
  });
  assert.deepEqual(Object.keys(config.streams), ['power', 'machines']);
  assert.ok(Object.isFrozen(config) && Object.isFrozen(config.streams.power?.metrics[0]) && Object.isFrozen(config.streams.power?.detectors[0]?.params));
});

test('the built-in power stream has the documented fields, metrics, windows and detectors', () => {
  const power = defaultConfig().streams.power;
  assert.ok(power !== undefined);
  assert.equal(power.keyField, 'meterId');
  assert.equal(power.siteField, 'siteId');
  assert.equal(power.timeField, 'timestamp');
  assert.equal(power.timeFormat, 'auto');
  assert.equal(power.idField, undefined);
  assert.deepEqual(power.metrics, [
    { name: 'usageKw', field: 'usageKw', kind: 'gauge', min: 0, max: undefined, unit: 'kW' },
    { name: 'voltage', field: 'voltage', kind: 'gauge', min: 0, max: 1000, unit: 'V' },
    { name: 'current', field: 'current', kind: 'gauge', min: 0, max: undefined, unit: 'A' },
    { name: 'pf', field: 'pf', kind: 'gauge', min: 0, max: 1, unit: undefined },
  ]);
  assert.deepEqual(power.metricIndex, { usageKw: 0, voltage: 1, current: 2, pf: 3 });
  assert.equal(power.powerMetricIndex, 0);
  assert.equal(power.energyMetricIndex, -1);
  assert.equal(power.expectedIntervalMs, undefined);
  assert.equal(power.gapGrace, 0.5);
  assert.deepEqual(power.lateness, {
    outOfOrderMs: 120_000,
    allowedLatenessMs: 600_000,
    reportOutOfOrderOverMs: 0,
    maxFutureMs: 86_400_000,
    idleTimeoutMs: 60_000,
  });
  assert.deepEqual(power.windows, [
    { name: '1m', sizeMs: 60_000, slideMs: 60_000 },
    { name: '5m', sizeMs: 300_000, slideMs: 300_000 },
    { name: '15m', sizeMs: 900_000, slideMs: 900_000 },
    { name: '1m/15s', sizeMs: 60_000, slideMs: 15_000 },
  ]);
  assert.deepEqual(detectorSummary(power.detectors), [
    'spike:usageKw',
    'drop:usageKw',
    'outage:usageKw',
    'sustained_high:usageKw',
    'seasonal:usageKw',
    'zscore:usageKw',
    'iqr:usageKw',
    'out_of_range:',
    'physics:',
    'silence:',
  ]);
  // zscore and iqr are listed but off: with spike and drop on the same metric they would alert on the same events again.
  assert.deepEqual(
    power.detectors.filter((d) => !d.enabled).map((d) => d.type),
    ['zscore', 'iqr'],
  );
  assert.ok(power.detectors.every((detector) => Object.keys(detector.params).length === 0));
  assert.deepEqual(power.alerts, { resolveAfterMs: 300_000, minDurationMs: 0, cooldownMs: 600_000 });
  assert.deepEqual(power.state, { ttlMs: 7 * 86_400_000, maxKeysPerPartition: 1_000_000 });
});

test('the built-in machines stream has the AI4I metrics and the four failure-mode rules', () => {
  const machines = defaultConfig().streams.machines;
  assert.ok(machines !== undefined);
  assert.equal(machines.keyField, 'machine_id');
  assert.equal(machines.siteField, undefined);
  assert.deepEqual(
    machines.metrics.map((metric) => [metric.name, metric.unit, metric.min, metric.max]),
    [
      ['air_temp_k', 'K', 250, 400],
      ['process_temp_k', 'K', 250, 400],
      ['rpm', 'rpm', 0, 10_000],
      ['torque_nm', 'Nm', 0, 200],
      ['tool_wear_min', 'min', 0, undefined],
    ],
  );
  assert.equal(machines.powerMetricIndex, -1);
  assert.deepEqual(
    machines.windows.map((window) => window.name),
    ['1m', '5m', '15m', '1m/15s'],
  );
  // zscore leaves out tool_wear_min, a counter that resets at each tool change.
  assert.deepEqual(detectorSummary(machines.detectors), [
    'zscore:air_temp_k,process_temp_k,rpm,torque_nm',
    'out_of_range:',
    'physics:',
    'silence:',
    'overstrain:',
    'heat_dissipation:',
    'power_failure:',
    'tool_wear:',
  ]);
  const rules = machines.detectors.filter((detector) => detector.type === 'rule');
  assert.deepEqual(
    rules.map((rule) => rule.params.when),
    [
      'avg(torque_nm, 1m) > 65',
      'process_temp_k - air_temp_k < 8.6 and rpm < 1380',
      'torque_nm * rpm * 2 * pi / 60 < 3500 or torque_nm * rpm * 2 * pi / 60 > 9000',
      'tool_wear_min > 200',
    ],
  );
});

test('overriding one lateness value of a built-in stream keeps the other values and the rest of the stream', () => {
  const { config, issues } = parseConfig('streams:\n  power:\n    lateness:\n      allowed: 15m\n');
  assert.deepEqual(issues, []);
  const power = config?.streams.power;
  const defaults = defaultConfig().streams.power;
  assert.ok(power !== undefined && defaults !== undefined);
  assert.deepEqual(power.lateness, { ...defaults.lateness, allowedLatenessMs: 900_000 });
  assert.deepEqual({ ...power, lateness: defaults.lateness }, defaults);
  assert.deepEqual(config?.streams.machines, defaultConfig().streams.machines);
});

test('a detectors list replaces the built-in list; a metric mapping merges by name; site: null removes the site', () => {
  const { config, issues } = parseConfig({
    streams: {
      power: {
        site: null,
        metrics: { usageKw: { max: 500 }, frequency: { unit: 'Hz', field: 'freq' } },
        detectors: [{ type: 'spike', metrics: ['usageKw'], params: { risePercent: 80 } }, { type: 'zscore', enabled: false }],
      },
    },
  });
  assert.deepEqual(issues, []);
  const power = config?.streams.power;
  assert.ok(power !== undefined);
  assert.equal(power.siteField, undefined);
  assert.deepEqual(power.metrics[0], { name: 'usageKw', field: 'usageKw', kind: 'gauge', min: 0, max: 500, unit: 'kW' });
  assert.deepEqual(power.metrics[4], { name: 'frequency', field: 'freq', kind: 'gauge', min: undefined, max: undefined, unit: 'Hz' });
  assert.deepEqual(power.detectors, [
    { type: 'spike', metrics: ['usageKw'], params: { risePercent: 80 }, alertType: undefined, enabled: true },
    { type: 'zscore', metrics: [], params: {}, alertType: undefined, enabled: false },
  ]);
});

test('an interval-energy metric adds its derived kW metric last and the power and energy indexes point at them', () => {
  const stream = createStreamSchema('households', {
    key: 'meter_id',
    time: 'timestamp_utc',
    metrics: { kwh_per_halfhour: { kind: 'interval-energy' }, temperature_c: { unit: 'C' } },
    expectedInterval: '30m',
  });
  assert.deepEqual(
    stream.metrics.map((metric) => [metric.name, metric.field, metric.kind, metric.unit]),
    [
      ['kwh_per_halfhour', 'kwh_per_halfhour', 'interval-energy', undefined],
      ['temperature_c', 'temperature_c', 'gauge', 'C'],
      ['kwh_per_halfhour_kw', '', 'derived-power', 'kW'],
    ],
  );
  assert.equal(stream.energyMetricIndex, 0);
  assert.equal(stream.powerMetricIndex, 2);
  assert.equal(stream.metricIndex.kwh_per_halfhour_kw, 2);
  assert.equal(stream.timeField, 'timestamp_utc');
  assert.equal(stream.expectedIntervalMs, 1_800_000);
  assert.deepEqual(Object.keys(stream).sort(), [
    'alerts', 'detectors', 'energyMetricIndex', 'expectedIntervalMs', 'gapGrace', 'idField', 'keyField', 'lateness',
    'metricIndex', 'metrics', 'name', 'powerMetricIndex', 'siteField', 'state', 'timeField', 'timeFormat', 'windows',
  ]);
  // The default detectors watch the derived power metric.
  assert.deepEqual(detectorSummary(stream.detectors), [
    'spike:kwh_per_halfhour_kw',
    'drop:kwh_per_halfhour_kw',
    'outage:kwh_per_halfhour_kw',
    'sustained_high:kwh_per_halfhour_kw',
    'seasonal:kwh_per_halfhour_kw',
    'zscore:kwh_per_halfhour_kw',
    'iqr:kwh_per_halfhour_kw',
    'out_of_range:',
    'silence:',
  ]);
});

test('a new stream without a power metric gets the default detectors on all its metrics, and the stream defaults', () => {
  const stream = createStreamSchema('boilers', { key: 'boiler', metrics: ['flow', 'temperature'] });
  assert.deepEqual(detectorSummary(stream.detectors), [
    'spike:',
    'drop:',
    'outage:',
    'sustained_high:',
    'seasonal:',
    'zscore:',
    'iqr:',
    'out_of_range:',
    'silence:',
  ]);
  assert.equal(stream.powerMetricIndex, -1);
  assert.equal(stream.timeField, 'timestamp');
  assert.deepEqual(stream.lateness, defaultConfig().streams.power?.lateness);
  assert.deepEqual(stream.windows, defaultConfig().streams.power?.windows);
});

test('createStreamSchema throws GP_CONFIG_INVALID listing the issues of a bad stream', () => {
  assert.throws(
    () => createStreamSchema('boilers', { key: 'boiler', metrics: ['flow'], windows: ['7s/2s'] }),
    (error: unknown) =>
      error instanceof GpError &&
      error.code === 'GP_CONFIG_INVALID' &&
      error.message.includes('/streams/boilers/windows/0: expected a window size that is a whole multiple of its slide, got size 7s and slide 2s') &&
      Array.isArray(error.details.issues),
  );
});

test('gridpulse.example.yaml parses with no issues and equals the built-in defaults it restates', () => {
  const text = readFileSync(EXAMPLE_FILE, 'utf8');
  const { config, issues } = parseConfig(text, { source: 'gridpulse.example.yaml' });
  assert.equal(formatIssues(issues), '');
  assert.deepEqual(config, defaultConfig());
});

test('the commented-out stream in gridpulse.example.yaml is valid once uncommented', () => {
  const text = readFileSync(EXAMPLE_FILE, 'utf8');
  const start = text.indexOf('  # households:');
  assert.ok(start > 0);
  const uncommented = text.slice(0, start) + text.slice(start).replaceAll(/^ {2}# ?/gm, '  ');
  const { config, issues } = parseConfig(uncommented);
  assert.equal(formatIssues(issues), '');
  const households = config?.streams.households;
  assert.ok(households !== undefined);
  assert.equal(households.metrics[households.powerMetricIndex]?.name, 'kwh_per_halfhour_kw');
  assert.deepEqual(
    households.detectors.map((detector) => [detector.type, detector.enabled]),
    [
      ['spike', true],
      ['zscore', false],
      ['silence', true],
    ],
  );
});
