import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { STATS_PER_METRIC, opsEvent, type Aggregate, type AlertEvent, type OpsEvent } from '../../src/model/index.js';
import { createDuckDbStore, createStoreWriter, type ReadingRow, type Store } from '../../src/stores/index.js';

const T0 = Date.UTC(2025, 10, 7, 12, 0, 0);
const MINUTE = 60_000;

function aggregate(key: string, start: number, avg: number): Aggregate {
  const stats = new Float64Array(STATS_PER_METRIC).fill(avg);
  stats[0] = 1;
  return { stream: 'power', key, site: 's-1', window: '1m', start, end: start + MINUTE, revision: 0, count: 1, metrics: ['usageKw'], stats, energyKwh: null };
}

function reading(offset: number): ReadingRow {
  return { stream: 'power', key: 'm-1', site: 's-1', time: T0 + offset * 1000, offset, values: { usageKw: offset } };
}

function late(offset: number): OpsEvent {
  return opsEvent('late', 'power', 'late', { key: 'm-1', time: T0, offset });
}

interface Call {
  method: 'writeReadings' | 'upsertAggregates' | 'writeAlertEvents' | 'writeOps';
  items: unknown[];
  release: () => void;
  fail: (error: unknown) => void;
}

/**
 * A store whose writes complete only when the test says so, to observe ordering, batching and
 * what flush() waits for, without timers.
 */
function gatedStore(): { store: Store; calls: Call[]; nextCall: () => Promise<Call> } {
  const calls: Call[] = [];
  const listeners: ((call: Call) => void)[] = [];
  const record = (method: Call['method'], items: readonly unknown[]): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const call: Call = { method, items: [...items], release: resolve, fail: reject };
      calls.push(call);
      listeners.splice(0).forEach((listener) => listener(call));
    });
  const unused = (): Promise<never> => Promise.reject(new Error('not used by the writer'));
  const store: Store = {
    kind: 'gated',
    ready: () => Promise.resolve(),
    writeReadings: (rows) => record('writeReadings', rows),
    upsertAggregates: (aggregates) => record('upsertAggregates', aggregates),
    writeAlertEvents: (events) => record('writeAlertEvents', events),
    writeOps: (events) => record('writeOps', events),
    applyRetention: unused,
    querySeries: unused,
    queryFleetSeries: unused,
    latestStatus: unused,
    listAlerts: unused,
    alertTransitions: unused,
    dataQuality: unused,
    counts: unused,
    close: () => Promise.resolve(),
  };
  const nextCall = (): Promise<Call> => new Promise((resolve) => listeners.push(resolve));
  return { store, calls, nextCall };
}

describe('store writer', () => {
  test('writes in call order, one batch at a time, batches capped at maxBatch', async () => {
    const { store, calls, nextCall } = gatedStore();
    const writer = createStoreWriter(store, { maxBatch: 3 });
    const first = nextCall();
    writer.writeReadings([reading(1), reading(2)]);
    writer.writeReadings([reading(3), reading(4)]);
    writer.writeOps([late(1)]);
    writer.upsertAggregates([aggregate('m-1', T0, 1)]);
    assert.equal(writer.pending(), 6);
    assert.equal(calls.length, 0, 'nothing is written synchronously on the caller’s path');

    const call1 = await first;
    assert.equal(call1.method, 'writeReadings');
    assert.deepEqual(call1.items.map((r) => (r as ReadingRow).offset), [1, 2, 3]);
    // Records given while a batch is in the store's hands go into a later batch, never into it.
    writer.upsertAggregates([aggregate('m-1', T0 + MINUTE, 2)]);
    assert.equal(writer.pending(), 7);
    assert.equal(calls.length, 1, 'only one batch is in flight');

    const order: string[] = [];
    for (let expected = 0; expected < 3; expected++) {
      const next = nextCall();
      calls[calls.length - 1]?.release();
      const call = await next;
      order.push(`${call.method}:${call.items.length}`);
    }
    calls[calls.length - 1]?.release();
    await writer.flush();
    assert.deepEqual(order, ['writeReadings:1', 'writeOps:1', 'upsertAggregates:2']);
    assert.equal(writer.pending(), 0);
  });

  test('records given kind by kind, interleaved, still travel in large batches', async () => {
    const { store, calls, nextCall } = gatedStore();
    const writer = createStoreWriter(store);
    const first = nextCall();
    for (let i = 0; i < 100; i++) {
      writer.upsertAggregates([aggregate('m-1', T0 + i * MINUTE, i)]);
      writer.writeOps([late(i)]);
      writer.writeReadings([reading(i)]);
    }
    const flushing = writer.flush();
    await first;
    for (let later = 0; later < 2; later++) {
      const next = nextCall();
      calls[calls.length - 1]?.release();
      await next;
    }
    calls[calls.length - 1]?.release();
    await flushing;
    assert.deepEqual(
      calls.map((call) => `${call.method}:${call.items.length}`),
      ['upsertAggregates:100', 'writeOps:100', 'writeReadings:100'],
    );
    // Within a kind, the order given is the order written.
    assert.deepEqual(calls[0]?.items.map((a) => (a as Aggregate).start), Array.from({ length: 100 }, (_, i) => T0 + i * MINUTE));
  });

  test('flush waits until everything given before it is stored', async () => {
    const { store, nextCall } = gatedStore();
    const writer = createStoreWriter(store);
    const called = nextCall();
    writer.writeOps([late(1), late(2)]);
    let flushed = false;
    const flushing = writer.flush().then(() => {
      flushed = true;
    });
    const call = await called;
    await Promise.resolve();
    assert.equal(flushed, false);
    assert.equal(writer.pending(), 2);
    call.release();
    await flushing;
    assert.equal(flushed, true);
    assert.equal(writer.pending(), 0);
    // Nothing pending: flush resolves at once.
    await writer.flush();
  });

  test('flush waits for older records of every kind, even when newer records arrive while a batch is being written', async () => {
    const { store, nextCall } = gatedStore();
    const writer = createStoreWriter(store);
    let call = nextCall();
    writer.writeOps([late(1)]);
    const opsCall = await call; // the ops batch is in the store's hands
    writer.writeReadings([reading(2)]);
    writer.upsertAggregates([aggregate('m-1', 0, 1)]);
    let flushed = false;
    const flushing = writer.flush().then(() => {
      flushed = true;
    });
    // Newer readings after the flush must not join the readings batch queued before it.
    writer.writeReadings([reading(3), reading(4)]);
    call = nextCall();
    opsCall.release();
    const readingsCall = await call;
    assert.equal(readingsCall.method, 'writeReadings');
    assert.equal(readingsCall.items.length, 1, 'the batch given before the flush is sealed');
    call = nextCall();
    readingsCall.release();
    const aggregatesCall = await call;
    assert.equal(aggregatesCall.method, 'upsertAggregates');
    await Promise.resolve();
    assert.equal(flushed, false, 'the aggregate given before the flush is not stored yet');
    call = nextCall();
    aggregatesCall.release();
    await flushing;
    assert.equal(flushed, true);
    (await call).release();
    await writer.flush();
    assert.equal(writer.pending(), 0);
  });

  test('a failed batch is reported, kept, and retried by the next flush', async () => {
    const { store, calls, nextCall } = gatedStore();
    const errors: string[] = [];
    const writer = createStoreWriter(store, {
      onError: (error, batch) => errors.push(`${(error as Error).message} (${batch.kind} x${batch.size}, rejected=${batch.rejected})`),
    });
    const event: AlertEvent = {
      alert: {
        id: 'a-1', stream: 'power', key: 'm-1', site: 's-1', type: 'spike', metric: 'usageKw', severity: 'warning', status: 'open',
        openedAt: T0, updatedAt: T0, resolvedAt: undefined, score: 0.7, peakScore: 0.7, value: 42, findings: 1, explain: 'spike',
      },
      transition: { id: 'a-1#0', alertId: 'a-1', seq: 0, kind: 'open', time: T0, status: 'open', severity: 'warning', score: 0.7, explain: 'spike' },
    };
    const first = nextCall();
    writer.writeAlertEvents([event]);
    const flushing = writer.flush();
    (await first).fail(new Error('disk full'));
    await assert.rejects(flushing, /disk full/);
    assert.deepEqual(errors, ['disk full (alertEvents x1, rejected=false)']);
    assert.equal(writer.pending(), 1, 'the failed batch is not dropped');

    // While failed, new records are buffered behind it and nothing is written on its own.
    writer.writeOps([late(1)]);
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(calls.length, 1);
    assert.equal(writer.pending(), 2);

    const retry = nextCall();
    const flushingAgain = writer.flush();
    const retried = await retry;
    assert.equal(retried.method, 'writeAlertEvents');
    assert.deepEqual(retried.items, [event]);
    const then = nextCall();
    retried.release();
    const opsCall = await then;
    assert.equal(opsCall.method, 'writeOps');
    opsCall.release();
    await flushingAgain;
    assert.equal(writer.pending(), 0);
  });

  test('a record the store refuses as bad input is set aside alone; the others are written in order', async () => {
    const store = createDuckDbStore({ path: ':memory:' });
    try {
      const refused: string[] = [];
      const writer = createStoreWriter(store, {
        onError: (error, batch) => refused.push(`${batch.kind} x${batch.size} rejected=${batch.rejected}: ${(error as Error).message}`),
      });
      const batch = Array.from({ length: 9 }, (_, i) => aggregate('m-1', T0 + i * MINUTE, i));
      batch.splice(4, 0, aggregate('m-1', Number.NaN, -1));
      writer.upsertAggregates(batch);
      writer.writeOps([late(1)]);
      await assert.rejects(writer.flush(), /start: expected epoch milliseconds/);
      assert.deepEqual(refused, ['aggregates x1 rejected=true: aggregates[0].start: expected epoch milliseconds (a finite number), got NaN']);
      assert.equal(writer.pending(), 0);
      const counts = await store.counts();
      assert.equal(counts.aggregates, 9);
      assert.equal(counts.ops, 1);
      const series = await store.querySeries({ key: 'm-1', metric: 'usageKw', from: T0, to: T0 + 8 * MINUTE, resolution: '1m' });
      assert.deepEqual(series.points.map((p) => p.avg), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
      // The writer goes on: a later flush with nothing refused resolves.
      writer.writeOps([late(2)]);
      await writer.flush();
      assert.equal((await store.counts()).ops, 2);
    } finally {
      await store.close();
    }
  });

  test('drives a DuckDB store end to end', async () => {
    const store = createDuckDbStore({ path: ':memory:' });
    await store.ready();
    try {
      const writer = createStoreWriter(store, { maxBatch: 100 });
      for (let i = 0; i < 250; i++) {
        writer.upsertAggregates([aggregate(`m-${i % 5}`, T0 + Math.floor(i / 5) * MINUTE, i)]);
        writer.writeReadings([reading(i)]);
      }
      // A later amendment of the first window lands after the original: order is kept.
      writer.upsertAggregates([{ ...aggregate('m-0', T0, 999), revision: 1 }]);
      await writer.flush();
      const counts = await store.counts();
      assert.equal(counts.aggregates, 250);
      assert.equal(counts.readings, 250);
      const series = await store.querySeries({ key: 'm-0', metric: 'usageKw', from: T0, to: T0, resolution: '1m' });
      assert.deepEqual(series.points.map((p) => p.avg), [999]);
    } finally {
      await store.close();
    }
  });
});
