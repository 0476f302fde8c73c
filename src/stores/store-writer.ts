import type { Aggregate, AlertEvent, OpsEvent } from '../model/index.js';
import type { ReadingRow, Store } from './store.js';

/**
 * A write buffer in front of a Store for the engine's hot path: the write methods return at once
 * (no promise per record), and the records reach the store in batches, in the order they were
 * given, one batch at a time. Nothing is dropped: a batch that fails stays at the head of the
 * queue, its error goes to `onError` and is thrown by `flush()`, and the next `flush()` tries it
 * again. While failed, the writer keeps buffering (watch `pending()`) but writes nothing more
 * until `flush()` is called.
 *
 * The writer keeps the records it is given (no copy): do not mutate them afterwards.
 *
 * @example
 * const writer = createStoreWriter(store, { maxBatch: 5000, onError: (error) => log.error(error) });
 * writer.upsertAggregates([aggregate]);   // returns immediately
 * if (writer.pending() > 50_000) await writer.flush();   // backpressure
 * await writer.flush();   // everything given so far is in the store
 */
export interface StoreWriter {
  writeReadings(rows: readonly ReadingRow[]): void;
  upsertAggregates(aggregates: readonly Aggregate[]): void;
  writeAlertEvents(events: readonly AlertEvent[]): void;
  writeOps(events: readonly OpsEvent[]): void;
  /** Resolves when every record given before the call is stored; rejects with the error of a failed batch. */
  flush(): Promise<void>;
  /** Records given but not yet stored (including the batch being written). */
  pending(): number;
}

export interface StoreWriterOptions {
  /** Most records per store call (default 5000). Consecutive records of one kind share a batch. */
  maxBatch?: number;
  /** Told about each failed batch; the batch is kept and retried by the next `flush()`. */
  onError?: (error: unknown, batch: { kind: StoreWriteKind; size: number }) => void;
}

export type StoreWriteKind = 'readings' | 'aggregates' | 'alertEvents' | 'ops';

// Items are kept untyped inside; `send` restores the type from the kind they were pushed with.
interface Batch {
  kind: StoreWriteKind;
  items: unknown[];
}

interface Waiter {
  /** Records that must be stored before this waiter resolves (counted from the writer's start). */
  target: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** See `StoreWriter`. */
export function createStoreWriter(store: Store, options: StoreWriterOptions = {}): StoreWriter {
  const maxBatch = options.maxBatch ?? 5000;
  if (!Number.isInteger(maxBatch) || maxBatch < 1) {
    throw new RangeError(`maxBatch: expected a positive integer, got ${String(options.maxBatch)}`);
  }
  const queue: Batch[] = [];
  const waiters: Waiter[] = [];
  let given = 0;
  let stored = 0;
  let draining = false;
  let scheduled = false;
  // The error of the batch at the head of the queue, until a flush() retries it.
  let failure: { error: unknown } | undefined;

  function push(kind: StoreWriteKind, items: readonly unknown[]): void {
    if (items.length === 0) return;
    let index = 0;
    while (index < items.length) {
      let tail = queue[queue.length - 1];
      // The head batch may be in the store's hands already: never grow it, start a new one.
      const inFlight = draining && queue.length === 1;
      if (tail === undefined || tail.kind !== kind || tail.items.length >= maxBatch || inFlight) {
        tail = { kind, items: [] };
        queue.push(tail);
      }
      const take = Math.min(maxBatch - tail.items.length, items.length - index);
      for (let i = 0; i < take; i++) tail.items.push(items[index + i]);
      index += take;
    }
    given += items.length;
    schedule();
  }

  function schedule(): void {
    if (draining || scheduled || failure !== undefined) return;
    scheduled = true;
    // setImmediate, not a microtask: records given in one synchronous run of the caller coalesce.
    setImmediate(() => {
      scheduled = false;
      void drain();
    });
  }

  async function drain(): Promise<void> {
    if (draining || failure !== undefined) return;
    draining = true;
    try {
      for (let batch = queue[0]; batch !== undefined; batch = queue[0]) {
        try {
          await send(batch);
        } catch (error) {
          failure = { error };
          for (const waiter of waiters.splice(0)) waiter.reject(error);
          try {
            options.onError?.(error, { kind: batch.kind, size: batch.items.length });
          } catch {
            // A throwing handler must not turn into an unhandled rejection; the batch's own error
            // still reaches the next flush().
          }
          return;
        }
        queue.shift();
        stored += batch.items.length;
        settleWaiters();
      }
    } finally {
      draining = false;
    }
  }

  function send(batch: Batch): Promise<void> {
    switch (batch.kind) {
      case 'readings':
        return store.writeReadings(batch.items as ReadingRow[]);
      case 'aggregates':
        return store.upsertAggregates(batch.items as Aggregate[]);
      case 'alertEvents':
        return store.writeAlertEvents(batch.items as AlertEvent[]);
      case 'ops':
        return store.writeOps(batch.items as OpsEvent[]);
    }
  }

  function settleWaiters(): void {
    for (let i = waiters.length - 1; i >= 0; i--) {
      const waiter = waiters[i] as Waiter;
      if (waiter.target <= stored) {
        waiters.splice(i, 1);
        waiter.resolve();
      }
    }
  }

  return {
    writeReadings: (rows) => push('readings', rows),
    upsertAggregates: (aggregates) => push('aggregates', aggregates),
    writeAlertEvents: (events) => push('alertEvents', events),
    writeOps: (events) => push('ops', events),
    pending: () => given - stored,
    flush(): Promise<void> {
      const target = given;
      if (stored >= target) return Promise.resolve();
      // flush() is the retry: a failed batch is tried again from here.
      failure = undefined;
      const done = new Promise<void>((resolve, reject) => waiters.push({ target, resolve, reject }));
      void drain();
      return done;
    },
  };
}
