/**
 * Retention on a schedule, with a fake clock: ten days pass; each day a reading and a 1-minute
 * window are written every 6 hours and the schedule ticks (a second tick within the hour must not
 * run); at each midnight the store's day partitions must be exactly the newest days each table
 * keeps (readings 3 days, aggregates 5). Shared by the server stores, which name their partitions
 * differently (`partitionName`).
 */
import assert from 'node:assert/strict';
import { createRetentionSchedule, type Store } from '../../src/stores/index.js';
import { DAY, reading, windowOf } from './store-conformance.js';

export const RETENTION_DAYS = { readingsMs: 3 * DAY, aggregatesMs: 5 * DAY };

export async function retentionOverTenDays(
  store: Store,
  partitions: (table: 'readings' | 'aggregates') => Promise<string[]>,
  partitionName: (table: 'readings' | 'aggregates', yyyymmdd: string) => string,
): Promise<void> {
  const day0 = Date.UTC(2025, 10, 1);
  let now = day0;
  const runs: number[] = [];
  const schedule = createRetentionSchedule({ store, clock: () => now, intervalMs: 3_600_000, onRun: (_result, at) => runs.push(at) });
  const name = (table: 'readings' | 'aggregates', day: number): string =>
    partitionName(table, new Date(day0 + day * DAY).toISOString().slice(0, 10).replaceAll('-', ''));
  const newest = (table: 'readings' | 'aggregates', day: number, keep: number): string[] =>
    Array.from({ length: Math.min(day + 1, keep) }, (_, i) => name(table, day - Math.min(day, keep - 1) + i));
  for (let day = 0; day < 10; day++) {
    for (let hour = 0; hour < 24; hour += 6) {
      now = day0 + day * DAY + hour * 3_600_000;
      await store.writeReadings([reading('m-1', now, day * 4 + hour / 6, { usageKw: day })]);
      await store.upsertAggregates([windowOf('m-1', '1m', now, day)]);
      await schedule.tick();
      now += 1_800_000;
      assert.equal(await schedule.tick(), undefined, 'not due again within the hour');
    }
    now = day0 + (day + 1) * DAY; // midnight: the day that just ended is complete
    await schedule.tick();
    assert.deepEqual(await partitions('readings'), newest('readings', day, 3), `readings partitions after day ${day}`);
    assert.deepEqual(await partitions('aggregates'), newest('aggregates', day, 5), `aggregates partitions after day ${day}`);
  }
  assert.ok(runs.length >= 7, `retention removed something on ${runs.length} runs`);
  assert.deepEqual(await store.counts(), { readings: 12, aggregates: 20, alerts: 0, transitions: 0, ops: 0 });
}
