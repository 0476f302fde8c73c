import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sniffFile } from '../../src/ingest/file-source.js';
import { detectColumns, deviceNameOf, metricName, ROW_TIME_FIELD, type LayoutHints } from '../../src/ingest/detect-columns.js';
import { GpError } from '../../src/model/index.js';

const fixtures = new URL('../fixtures/', import.meta.url);
const lclPath = new URL('lcl-2meters-excerpt.csv', fixtures).pathname;
const ai4iPath = new URL('ai4i2020-excerpt.csv', fixtures).pathname;
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'gp-detect-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

async function detect(path: string, hints: LayoutHints = {}): Promise<ReturnType<typeof detectColumns>> {
  const sniffed = await sniffFile(path);
  return detectColumns(sniffed.sample, sniffed.header, path, hints);
}

function layoutError(check: (message: string) => boolean): (error: unknown) => boolean {
  return (error: unknown) => error instanceof GpError && error.code === 'GP_INPUT_UNKNOWN_LAYOUT' && check(error.message);
}

describe('sniffFile', () => {
  it('sees CSV with its header, delimiter and a 200-record sample (LCL excerpt)', async () => {
    const sniffed = await sniffFile(lclPath);
    assert.equal(sniffed.format, 'csv');
    assert.equal(sniffed.delimiter, ',');
    assert.deepEqual(sniffed.header, ['meter_id', 'timestamp_utc', 'kwh_per_halfhour']);
    assert.equal(sniffed.sample.length, 200);
    assert.deepEqual(sniffed.sample[0], { meter_id: 'MAC000002', timestamp_utc: '2013-01-01 00:00:00', kwh_per_halfhour: '0.219' });
  });

  it('sees NDJSON when the first non-empty line starts with { or [, skipping lines that do not parse', async () => {
    const path = file('power.jsonl', '\n{"meterId":"m-1","timestamp":1700000000000,"usageKw":1.5}\n{broken\n[{"meterId":"m-2","timestamp":1700000000000,"usageKw":2}]\n');
    const sniffed = await sniffFile(path);
    assert.equal(sniffed.format, 'ndjson');
    assert.equal(sniffed.header, undefined);
    assert.deepEqual(sniffed.sample, [
      { meterId: 'm-1', timestamp: 1700000000000, usageKw: 1.5 },
      { meterId: 'm-2', timestamp: 1700000000000, usageKw: 2 },
    ]);
  });

  it('strips the BOM so the first AI4I column is "UDI"', async () => {
    const sniffed = await sniffFile(ai4iPath);
    assert.equal(sniffed.header?.[0], 'UDI');
    assert.equal(sniffed.sample.length, 200);
  });
});

describe('detectColumns', () => {
  it('finds key, time, interval energy and the half-hour interval in the LCL excerpt', async () => {
    const layout = await detect(lclPath);
    assert.deepEqual(layout, {
      keyField: 'meter_id',
      deviceName: 'lcl-2meters-excerpt',
      timeField: 'timestamp_utc',
      timeFormat: 'iso',
      metrics: [{ name: 'kwh_per_halfhour', field: 'kwh_per_halfhour', kind: 'interval-energy' }],
      intervalMs: 30 * 60_000,
      ignored: [],
    });
  });

  it('maps AI4I with --time @row: measurements become metrics, row number, text and failure flags are ignored', async () => {
    const layout = await detect(ai4iPath, { time: '@row' });
    assert.equal(layout.timeField, ROW_TIME_FIELD);
    assert.equal(layout.timeFormat, 'epoch-ms');
    assert.deepEqual(layout.rowTime, { startMs: Date.UTC(2020, 0, 1), intervalMs: 60_000 });
    assert.equal(layout.intervalMs, 60_000);
    assert.equal(layout.keyField, undefined, 'no id column: one device named after the file');
    assert.equal(layout.deviceName, 'ai4i2020-excerpt');
    assert.deepEqual(
      layout.metrics.map((metric) => [metric.name, metric.field, metric.kind]),
      [
        ['air_temperature_k', 'Air temperature [K]', 'gauge'],
        ['process_temperature_k', 'Process temperature [K]', 'gauge'],
        ['rotational_speed_rpm', 'Rotational speed [rpm]', 'gauge'],
        ['torque_nm', 'Torque [Nm]', 'gauge'],
        ['tool_wear_min', 'Tool wear [min]', 'gauge'],
      ],
    );
    assert.deepEqual(layout.ignored, ['UDI', 'Product ID', 'Type', 'Machine failure', 'TWF', 'HDF', 'PWF', 'OSF', 'RNF']);
  });

  it('takes AI4I hints written loosely: --key "product id", --metrics "torque nm", --interval 10s', async () => {
    const layout = await detect(ai4iPath, { time: '@row', key: 'product id', metrics: ['torque nm', 'rotational_speed_rpm'], rowInterval: 10_000 });
    assert.equal(layout.keyField, 'Product ID');
    assert.deepEqual(
      layout.metrics.map((metric) => metric.field),
      ['Rotational speed [rpm]', 'Torque [Nm]'],
    );
    assert.equal(layout.intervalMs, 10_000);
    assert.ok(layout.ignored.includes('Air temperature [K]'));
  });

  it('makes a file with only a timestamp and numbers one device named after the file', async () => {
    const path = file('boiler-3.csv', 'ts,temperature,pressure\n1700000000,61.5,1.2\n1700000015,61.7,1.3\n1700000030,61.9,1.2\n');
    const layout = await detect(path);
    assert.equal(layout.keyField, undefined);
    assert.equal(layout.deviceName, 'boiler-3');
    assert.equal(layout.timeField, 'ts');
    assert.equal(layout.timeFormat, 'epoch-s');
    assert.equal(layout.intervalMs, 15_000);
    assert.deepEqual(layout.metrics, [
      { name: 'temperature', field: 'temperature', kind: 'gauge' },
      { name: 'pressure', field: 'pressure', kind: 'gauge' },
    ]);
  });

  it('reads NDJSON power readings: epoch ms, camelCase metrics kept, site found', async () => {
    const path = file('power.ndjson', [
      '{"meterId":"m-1","siteId":"s-1","timestamp":1763900000000,"usageKw":12.3,"voltage":229.8}',
      '{"meterId":"m-1","siteId":"s-1","timestamp":1763900010000,"usageKw":12.1,"voltage":230.1}',
    ].join('\n'));
    const layout = await detect(path);
    assert.equal(layout.keyField, 'meterId');
    assert.equal(layout.siteField, 'siteId');
    assert.equal(layout.timeFormat, 'epoch-ms');
    assert.equal(layout.intervalMs, 10_000);
    assert.deepEqual(layout.metrics.map((metric) => metric.name), ['usageKw', 'voltage']);
  });

  it('does not take an id that counts rows for the device key', async () => {
    const path = file('rows.csv', 'id,timestamp,kw\n1,2024-01-01T00:00:00Z,1.5\n2,2024-01-01T00:01:00Z,2.5\n3,2024-01-01T00:02:00Z,0.5\n4,2024-01-01T00:03:00Z,3\n');
    const layout = await detect(path);
    assert.equal(layout.keyField, undefined);
    assert.deepEqual(layout.ignored, ['id']);
    assert.deepEqual(layout.metrics.map((metric) => metric.name), ['kw']);
    assert.equal(layout.intervalMs, 60_000);
  });

  it('fails on an unknown layout with the columns found and the flags to map them', async () => {
    const path = file('mystery.csv', 'sensor,reading,comment\na,1.5,ok\nb,2.5,fine\n');
    await assert.rejects(
      detect(path),
      layoutError((message) =>
        ['"sensor"', '"reading"', '"comment"', '--key', '--time', '--site', '--metrics', '--energy', '--stream', '@row'].every((part) => message.includes(part)) && message.includes('mystery.csv'),
      ),
    );
  });

  it('tries the field names of a configured stream (--stream) before the usual names', async () => {
    const path = file('feed.csv', 'unit,read_at,timestamp,kw\nu1,2024-01-01T00:00:00Z,2020-01-01T00:00:00Z,1.5\nu1,2024-01-01T00:05:00Z,2020-01-01T00:00:00Z,1.7\n');
    const sniffed = await sniffFile(path);
    const layout = detectColumns(sniffed.sample, sniffed.header, path, {}, { keyField: 'unit', timeField: 'readAt', siteField: undefined });
    assert.equal(layout.keyField, 'unit');
    assert.equal(layout.timeField, 'read_at');
    assert.equal(layout.intervalMs, 5 * 60_000);
  });

  it('fails on a file with only a header, saying there is nothing to detect from', async () => {
    const path = file('empty.csv', 'meter_id,timestamp,kwh\n');
    await assert.rejects(detect(path), layoutError((message) => message.includes('no data records') && message.includes('"timestamp"')));
  });

  it('fails when a hint names no column, listing the columns', async () => {
    await assert.rejects(detect(lclPath, { time: 'when' }), layoutError((message) => message.includes('--time "when" names no column') && message.includes('"timestamp_utc"')));
    await assert.rejects(detect(lclPath, { metrics: ['voltage'] }), layoutError((message) => message.includes('--metrics "voltage"')));
  });

  it('fails when the time column holds no times, showing a value', async () => {
    const path = file('dates.csv', 'date,kwh\n01/02/2013,1\n02/02/2013,2\n');
    await assert.rejects(detect(path), layoutError((message) => message.includes('"01/02/2013"') && message.includes('ISO-8601')));
  });

  it('uses --energy for interval energy and rejects a non-numeric metric hint', async () => {
    const path = file('site.csv', 'device,time,import,label\nd1,2024-01-01T00:00:00Z,0.4,a\nd1,2024-01-01T00:15:00Z,0.5,b\n');
    const layout = await detect(path, { energy: ['import'] });
    assert.deepEqual(layout.metrics, [{ name: 'import', field: 'import', kind: 'interval-energy' }]);
    assert.equal(layout.keyField, 'device');
    assert.equal(layout.intervalMs, 15 * 60_000);
    await assert.rejects(detect(path, { metrics: ['label'] }), layoutError((message) => message.includes('"label" is not numeric') && message.includes('"a"')));
  });
});

describe('names', () => {
  it('turns column names into snake_case metric names', () => {
    assert.equal(metricName('Air temperature [K]'), 'air_temperature_k');
    assert.equal(metricName('energy(kWh/hh)'), 'energy_kwh_hh');
    assert.equal(metricName('kwh_per_halfhour'), 'kwh_per_halfhour');
    assert.equal(metricName('Voltage'), 'voltage');
    assert.equal(metricName('2nd sensor'), 'm_2nd_sensor');
  });

  it('names a device after the file without its extensions', () => {
    assert.equal(deviceNameOf('/data/press-7.ndjson.gz'), 'press-7');
    assert.equal(deviceNameOf('meter.csv'), 'meter');
  });
});
