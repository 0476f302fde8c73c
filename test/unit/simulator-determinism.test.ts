import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { simulate, simulateLines } from '../../src/ingest/simulator.js';
import { resolveSimulationOptions } from '../../src/ingest/simulator-options.js';
import { GpError } from '../../src/model/index.js';

function run(options: Parameters<typeof simulateLines>[0]): { lines: string[]; labels: string } {
  const stream = simulateLines(options);
  const lines = [...stream.lines];
  return { lines, labels: JSON.stringify(stream.labels()) };
}

const digest = (lines: string[]): string => createHash('sha256').update(lines.join('\n')).digest('hex');

describe('simulator determinism', () => {
  const options = { meters: 6, machines: 2, days: 2.5, seed: 42 };

  it('gives byte-identical telemetry and labels for the same seed', () => {
    const first = run(options);
    const second = run(options);
    assert.equal(digest(first.lines), digest(second.lines));
    assert.equal(first.labels, second.labels);
    // The run is not trivially empty: anomalies were injected after the warm-up day.
    assert.ok((JSON.parse(first.labels) as { anomalies: unknown[] }).anomalies.length > 10);
  });

  it('gives different telemetry and labels for a different seed', () => {
    const first = run(options);
    const other = run({ ...options, seed: 43 });
    assert.notEqual(digest(first.lines), digest(other.lines));
    assert.notEqual(first.labels, other.labels);
  });

  it('keeps a meter\'s readings when other meters are added or anomalies are turned off', () => {
    const meterOne = (lines: string[]): string[] => lines.filter((line) => line.startsWith('{"meterId":"m-0001"'));
    const small = run({ meters: 2, days: 2, seed: 5, anomalyRate: 0 });
    const large = run({ meters: 12, days: 2, seed: 5, anomalyRate: 0 });
    assert.deepEqual(meterOne(large.lines), meterOne(small.lines));
    // With anomalies, the readings outside the labelled ones are unchanged.
    const withAnomalies = simulateLines({ meters: 2, days: 2, seed: 5 });
    const noisy = meterOne([...withAnomalies.lines]);
    const labels = withAnomalies.labels().anomalies.filter((label) => label.key === 'm-0001');
    const clean = new Set(meterOne(small.lines));
    const untouched = noisy.filter((line) => {
      const time = Number(/"timestamp":(\d+)/.exec(line)?.[1]);
      return !labels.some((label) => time >= label.start && time <= label.end);
    });
    assert.ok(untouched.length > 2500);
    for (const line of untouched) assert.ok(clean.has(line), `changed outside any label: ${line}`);
  });

  it('writes the same bytes to a file, and gzip when the name ends in .gz', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'gridpulse-sim-'));
    try {
      const plain = await simulate({ meters: 3, days: 2, seed: 9, out: join(directory, 'a.ndjson'), labels: join(directory, 'a.json') });
      const zipped = await simulate({ meters: 3, days: 2, seed: 9, out: join(directory, 'b.ndjson.gz'), labels: join(directory, 'b.json') });
      const text = readFileSync(join(directory, 'a.ndjson'), 'utf8');
      assert.equal(gunzipSync(readFileSync(join(directory, 'b.ndjson.gz'))).toString('utf8'), text);
      assert.equal(readFileSync(join(directory, 'a.json'), 'utf8'), readFileSync(join(directory, 'b.json'), 'utf8'));
      assert.equal(text.split('\n').length - 1, plain.lines);
      assert.equal(zipped.lines, plain.lines);
      const labels = JSON.parse(readFileSync(join(directory, 'a.json'), 'utf8')) as { lines: number; anomalies: unknown[] };
      assert.equal(labels.lines, plain.lines);
      assert.equal(labels.anomalies.length, Object.values(plain.anomalies).reduce((sum, count) => sum + count, 0));
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  it('rejects bad options with a message naming the option', () => {
    const message = (input: Parameters<typeof resolveSimulationOptions>[0]): string => {
      try {
        resolveSimulationOptions(input);
      } catch (error) {
        assert.ok(error instanceof GpError);
        assert.equal(error.code, 'GP_INPUT_INVALID');
        return error.message;
      }
      assert.fail('expected an error');
    };
    assert.match(message({ meters: '-3' }), /^--meters: expected a whole number/);
    assert.match(message({ intervalMs: 'soon' }), /^--interval: expected a duration/);
    assert.match(message({ start: 'yesterday' }), /^--start: expected an ISO-8601 time/);
    assert.match(message({ anomalyRate: 'lots' }), /^--anomalies: expected a number/);
    assert.deepEqual(resolveSimulationOptions({ intervalMs: '15m', start: '2025-03-03T00:00:00Z', days: '0.5' }), {
      meters: 20,
      machines: 0,
      days: 0.5,
      seed: 1,
      intervalMs: 900_000,
      start: Date.UTC(2025, 2, 3),
      anomalyRate: 1,
      warmupMs: 86_400_000,
    });
  });
});
