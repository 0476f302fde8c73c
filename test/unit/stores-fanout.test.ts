// Several stores as one (`--store a,b`): writes reach every store, queries come from the first, and a
// store that fails makes the write fail (naming it) so the caller retries instead of one store
// silently missing the batch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GpError } from '../../src/model/index.js';
import { createDuckDbStore, createFanOutStore, createStore, type Store } from '../../src/stores/index.js';
import { T0, MINUTE, reading, windowOf } from '../helpers/store-conformance.js';

test('a fan-out writes every batch to each store and answers queries from the first', async () => {
  const primary = createDuckDbStore({ path: ':memory:' });
  const copy = createDuckDbStore({ path: ':memory:' });
  const store = createFanOutStore([primary, copy]);
  await store.ready();
  assert.equal(store.kind, 'fanout(duckdb,duckdb)');
  await store.upsertAggregates([windowOf('m-1', '1m', T0, 10), windowOf('m-1', '1m', T0 + MINUTE, 12)]);
  await store.writeReadings([reading('m-1', T0 + 1000, 1, { usageKw: 10 }), reading('m-1', T0 + 2000, 2, { usageKw: 11 })]);
  for (const s of [primary, copy]) {
    const counts = await s.counts();
    assert.equal(counts.readings, 2);
    assert.ok(counts.aggregates > 0);
  }
  // Only the primary answers: data written to the copy alone is not seen through the fan-out.
  await copy.upsertAggregates([windowOf('m-2', '1m', T0, 99)]);
  const statuses = await store.latestStatus({});
  assert.deepEqual(statuses.map((s) => s.key), ['m-1']);
  const series = await store.querySeries({ key: 'm-1', metric: 'usageKw', from: T0, to: T0 + MINUTE, resolution: '1m' });
  assert.deepEqual(series.points.map((p) => p.avg), [10, 12]);
  await store.close();
  await assert.rejects(primary.counts(), /closed/);
  await assert.rejects(copy.counts(), /closed/);
});

test('when one store fails, the write fails naming that store, and a retry lands the batch once everywhere', async () => {
  const primary = createDuckDbStore({ path: ':memory:' });
  const inner = createDuckDbStore({ path: ':memory:' });
  let failNext = true;
  const flaky: Store = {
    ...bind(inner),
    kind: 'flaky',
    upsertAggregates: async (rows) => {
      if (failNext) {
        failNext = false;
        throw new GpError('GP_STORE_FAILED', 'connection reset');
      }
      return inner.upsertAggregates(rows);
    },
  };
  const store = createFanOutStore([primary, flaky]);
  await store.ready();
  const batch = [windowOf('m-1', '1m', T0, 10)];
  await assert.rejects(store.upsertAggregates(batch), (error: unknown) => {
    assert.ok(error instanceof GpError);
    assert.equal(error.code, 'GP_STORE_FAILED');
    assert.match(error.message, /store 2 \(flaky\): connection reset/);
    return true;
  });
  await store.upsertAggregates(batch); // the caller's retry
  for (const s of [primary, inner]) {
    const series = await s.querySeries({ key: 'm-1', metric: 'usageKw', from: T0, to: T0, resolution: '1m' });
    assert.deepEqual(series.points.map((p) => p.avg), [10], 'exactly one window in each store');
  }
  await store.close();
});

test('createStore fans out on commas, refuses an empty part, and keeps passwords out of messages', async () => {
  const store = createStore('duckdb::memory:, duckdb::memory:');
  assert.equal(store.kind, 'fanout(duckdb,duckdb)');
  await store.close();
  assert.throws(
    () => createStore('duckdb::memory:,,postgres://gp:secret@db/x'),
    (error: unknown) => error instanceof GpError && error.code === 'GP_STORE_URL_INVALID' && /empty one at position 2/.test(error.message) && !/secret/.test(error.message),
  );
  assert.throws(
    () => createStore('duckdb::memory:,mysql://gp:secret@db:3306/x'),
    (error: unknown) => error instanceof GpError && error.code === 'GP_STORE_URL_INVALID' && /gp:\*\*\*@/.test(error.message) && !/secret/.test(error.message),
  );
});

function bind(store: Store): Store {
  return {
    kind: store.kind,
    ready: () => store.ready(),
    writeReadings: (r) => store.writeReadings(r),
    upsertAggregates: (a) => store.upsertAggregates(a),
    writeAlertEvents: (e) => store.writeAlertEvents(e),
    writeOps: (e) => store.writeOps(e),
    applyRetention: (now, retention) => store.applyRetention(now, retention),
    querySeries: (q) => store.querySeries(q),
    queryFleetSeries: (q) => store.queryFleetSeries(q),
    latestStatus: (q) => store.latestStatus(q),
    listAlerts: (f) => store.listAlerts(f),
    alertTransitions: (id) => store.alertTransitions(id),
    dataQuality: (q) => store.dataQuality(q),
    counts: () => store.counts(),
    close: () => store.close(),
  };
}
