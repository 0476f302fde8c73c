/**
 * Everything a store answers through the Store interface, in a canonical order, so two stores fed
 * the same data can be compared row by row: every device's series of every metric at raw, 1m, 5m
 * and 15m; fleet series; device statuses; alerts with their transitions; data quality by device
 * and site; counts. Numbers are compared with a tiny relative tolerance (server databases may sum
 * floating point in another order); everything else must be equal.
 */
import assert from 'node:assert/strict';
import type { Store } from '../../src/stores/index.js';

export interface StoreDump {
  counts: Record<string, number>;
  statuses: unknown[];
  series: Record<string, unknown>;
  fleet: Record<string, unknown>;
  alerts: unknown[];
  transitions: Record<string, unknown>;
  quality: Record<string, unknown>;
}

export async function dumpStore(store: Store, metrics: Record<string, readonly string[]>, range: { from: number; to: number }): Promise<StoreDump> {
  const statuses = (await store.latestStatus({})).sort((a, b) => a.key.localeCompare(b.key));
  const series: Record<string, unknown> = {};
  for (const status of statuses) {
    for (const metric of metrics[status.stream] ?? []) {
      for (const resolution of ['raw', '1m', '5m', '15m'] as const) {
        const result = await store.querySeries({ stream: status.stream, key: status.key, metric, from: range.from, to: range.to, resolution });
        series[`${status.key} ${metric} ${resolution}`] = result.points;
      }
    }
  }
  const fleet: Record<string, unknown> = {};
  for (const [stream, names] of Object.entries(metrics)) {
    for (const metric of names) {
      for (const resolution of ['1m', '15m'] as const) {
        fleet[`${stream} ${metric} ${resolution}`] = (await store.queryFleetSeries({ stream, metric, from: range.from, to: range.to, resolution })).points;
      }
    }
  }
  const alerts = (await store.listAlerts({ limit: 100_000 })).sort((a, b) => a.id.localeCompare(b.id));
  const transitions: Record<string, unknown> = {};
  for (const alert of alerts) transitions[alert.id] = await store.alertTransitions(alert.id);
  const quality: Record<string, unknown> = {};
  for (const by of ['key', 'site'] as const) {
    quality[by] = (await store.dataQuality({ by })).sort((a, b) => `${a.stream} ${a.group ?? ''}`.localeCompare(`${b.stream} ${b.group ?? ''}`));
  }
  return { counts: await store.counts(), statuses, series, fleet, alerts, transitions, quality };
}

/** Asserts two dumps are equal, numbers within 1e-9 relative; the message names the first difference's path. */
export function assertSameDump(actual: StoreDump, expected: StoreDump, label: string): void {
  compare(actual, expected, label);
}

function compare(actual: unknown, expected: unknown, path: string): void {
  if (typeof expected === 'number' && typeof actual === 'number') {
    if (actual === expected) return;
    const scale = Math.max(Math.abs(actual), Math.abs(expected), 1e-12);
    assert.ok(Math.abs(actual - expected) / scale < 1e-9, `${path}: expected ${expected}, got ${actual}`);
    return;
  }
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${path}: expected an array, got ${JSON.stringify(actual)}`);
    assert.equal(actual.length, expected.length, `${path}: expected ${expected.length} rows, got ${actual.length}`);
    expected.forEach((item, i) => compare(actual[i], item, `${path}[${i}]`));
    return;
  }
  if (expected !== null && typeof expected === 'object') {
    assert.ok(actual !== null && typeof actual === 'object', `${path}: expected an object, got ${JSON.stringify(actual)}`);
    const keys = new Set([...Object.keys(expected), ...Object.keys(actual)]);
    for (const key of keys) compare((actual as Record<string, unknown>)[key], (expected as Record<string, unknown>)[key], `${path}.${key}`);
    return;
  }
  assert.deepEqual(actual, expected, `${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}
