// The store writer's backpressure wait: the engine waits until the backlog is back under a bound,
// not until the store is empty, so that alerts are not held up behind the whole backlog.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDuckDbStore, createStoreWriter, type ReadingRow } from '../../src/stores/index.js';

const T0 = Date.UTC(2025, 10, 7, 12, 0, 0);

function readings(count: number): ReadingRow[] {
  return Array.from({ length: count }, (_, i) => ({ stream: 'power', key: `m-${i % 5}`, site: undefined, time: T0 + i * 1000, values: { usageKw: i }, offset: i }));
}

test('waitForRoom resolves once the backlog is at most the limit, while the rest is still being written', async () => {
  const store = createDuckDbStore({ path: ':memory:' });
  try {
    const writer = createStoreWriter(store, { maxBatch: 50 });
    writer.writeReadings(readings(1000));
    assert.equal(writer.pending(), 1000);
    await writer.waitForRoom(300);
    const left = writer.pending();
    assert.ok(left <= 300, `${left} records still pending after waitForRoom(300)`);
    assert.ok(left > 0, 'waitForRoom waited for the whole backlog');
    assert.equal(await writer.waitForRoom(1000).then(() => 'at once'), 'at once');
    await writer.flush();
    assert.equal(writer.pending(), 0);
    assert.equal((await store.counts()).readings, 1000);
  } finally {
    await store.close();
  }
});
