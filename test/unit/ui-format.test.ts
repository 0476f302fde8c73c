// Chart axis labels of the dashboard: ticks carry the decimals their step needs. A pressure of
// 101.2–102 kPa with ticks 0.2 apart was labelled "102, 102, 102, 101, 101".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatTick } from '../../src/ui/format.js';

test('axis ticks show the decimals of their step, no more, with thousands grouped', () => {
  assert.deepEqual([101.2, 101.4, 101.6, 101.8, 102].map((t) => formatTick(t, 0.2)), ['101.2', '101.4', '101.6', '101.8', '102']);
  assert.deepEqual([0, 0.25, 0.5, 0.75].map((t) => formatTick(t, 0.25)), ['0', '0.25', '0.5', '0.75']);
  assert.deepEqual([10_000, 15_000, 20_000].map((t) => formatTick(t, 5_000)), ['10,000', '15,000', '20,000']);
  assert.deepEqual([0.0012, 0.0014].map((t) => formatTick(t, 0.0002)), ['0.0012', '0.0014']);
  assert.equal(formatTick(Number.NaN, 1), '');
});
