// Retention removes what is older than store.retention, measured from the wall clock: data of an
// old file replayed into the live store goes within a minute of `gridpulse up` starting. It must
// say so on the console (it removed silently); this is the line, from a real DuckDB store's run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDuckDbStore, createRetentionSchedule, DEFAULT_RETENTION, describeRetention, type RetentionResult } from '../../src/stores/index.js';
import { reading, windowOf } from '../helpers/store-conformance.js';

test('a retention run that removed old replayed rows says how many of what, older than which cutoff', async () => {
  const store = createDuckDbStore({ path: ':memory:' });
  try {
    const old = Date.UTC(2013, 2, 31, 12);
    await store.writeReadings([reading('MAC000002', old, 1, { usageKw: 0.2 }), reading('MAC000002', old + 1_800_000, 2, { usageKw: 0.3 })]);
    await store.upsertAggregates([windowOf('MAC000002', '1m', old, 0.2)]);
    const now = Date.UTC(2026, 11, 2, 15);
    const lines: string[] = [];
    const schedule = createRetentionSchedule({ store, clock: () => now, onRun: (result, at) => lines.push(describeRetention(result, at, DEFAULT_RETENTION)) });
    const result = await schedule.tick();
    assert.deepEqual(result && { readings: result.readings, alerts: result.alerts, ops: result.ops }, { readings: 2, alerts: 0, ops: 0 });
    assert.ok((result?.aggregates ?? 0) > 0);
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /^store retention \(store\.retention, measured from the wall clock\) removed 2 readings before 2026-11-18T15:00:00\.000Z, \d+ aggregate rows before 2026-09-03T15:00:00\.000Z$/);
    // Nothing old left: the next run removes nothing and says nothing.
    const quiet = createRetentionSchedule({ store, clock: () => now, onRun: (r, at) => lines.push(describeRetention(r, at, DEFAULT_RETENTION)) });
    await quiet.tick();
    assert.equal(lines.length, 1);
  } finally {
    await store.close();
  }
});

test('the line names only the tables that lost rows, with thousands separated', () => {
  const result: RetentionResult = { readings: 0, aggregates: 0, alerts: 3, ops: 12_345 };
  const line = describeRetention(result, Date.UTC(2026, 0, 31), { readingsMs: 86_400_000, aggregatesMs: 86_400_000, alertsMs: 10 * 86_400_000, opsMs: 30 * 86_400_000 });
  assert.equal(line, 'store retention (store.retention, measured from the wall clock) removed 3 resolved alerts before 2026-01-21T00:00:00.000Z, 12,345 ops events before 2026-01-01T00:00:00.000Z');
});
