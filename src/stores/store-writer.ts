import { GpError, type Aggregate, type AlertEvent, type OpsEvent } from '../model/index.js';
import type { ReadingRow, Store } from './store.js';

/**
 * A write buffer in front of a Store for the engine's hot path: the write methods return at once
 * (no promise per record), and the records reach the store in batches, one batch at a time.
 * Records of one kind are written in the order they were given; batches of different kinds go in
 * the order they were started (the tables are independent, and this keeps batches large when the
 * engine interleaves aggregates, ops and alert events record by record). Nothing is dropped silently: a batch that fails stays at the head
 * of the queue, its error goes to `onError` and is thrown by `flush()`, and the next `flush()`
 * tries it again. While failed, the writer keeps buffering (watch `pending()`) but writes nothing
 * more until `flush()` is called. The one exception is a record the store refuses as bad input:
 * retrying cannot help, so it alone is set aside and reported (`onError` with `rejected: true`,
 * and the pending `flush()` rejects with its error) while the records around it are written.
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
  /**
   * Resolves when every record given before the call is stored. Rejects with the error of a failed
   * batch (which stays queued), or, once all is written, with the error of a refused record.
   */
  flush(): Promise<void>;
  /**
   * Resolves once at most `limit` records are pending (backpressure without waiting for the
   * batches still filling). Rejects as `flush()` does; like it, it retries a failed batch.
   */
  waitForRoom(limit: number): Promise<void>;
  /** Records given but not yet stored or set aside (including the batch being written). */
  pending(): number;
}

export interface StoreWriterOptions {
  /** Most records per store call (default 5000). Consecutive records of one kind share a batch. */
  maxBatch?: number;
  /**
   * Told about each failure. `rejected: false`: the store failed (for example the disk is full);
   * the batch is kept and retried by the next `flush()`. `rejected: true`: the store refused this
   * one record as bad input (a GpError of the user domain); it is set aside, the rest goes on.
   */
  onError?: (error: unknown, batch: { kind: StoreWriteKind; size: number; rejected: boolean }) => void;
}

export type StoreWriteKind = 'readings' | 'aggregates' | 'alertEvents' | 'ops';

// Items are kept untyped inside; `send` restores the type from the kind they were pushed with.
interface Batch {
  kind: StoreWriteKind;
  items: unknown[];
}

interface Waiter {
  /** How many records (counted from the writer's start) must be handled before this waiter settles. */
  target: number;
  /** A record refused as bad input while this waiter waited. */
  error?: unknown;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** See `StoreWriter`. */
export function createStoreWriter(store: Store, options: StoreWriterOptions = {}): StoreWriter {
  const maxBatch = options.maxBatch ?? 5000;
  if (!Number.isInteger(maxBatch) || maxBatch < 1) {
    throw new GpError('GP_CONFIG_INVALID', `maxBatch: expected a positive integer, got ${String(options.maxBatch)}`, { field: 'maxBatch' });
  }
  const queue: Batch[] = [];
  // The newest batch of each kind that is neither full nor handed to the store: records of that
  // kind join it even when other kinds were given since, so interleaved calls still make big batches.
  const filling = new Map<StoreWriteKind, Batch>();
  const waiters: Waiter[] = [];
  const refusesInput = (error: unknown): boolean => error instanceof GpError && error.domain === 'user';
  let given = 0;
  // Records stored, or set aside as refused: the queue has moved past them.
  let done = 0;
  let draining = false;
  let scheduled = false;
  // The error of the batch at the head of the queue, until a flush() retries it.
  let failure: { error: unknown } | undefined;

  function push(kind: StoreWriteKind, items: readonly unknown[]): void {
    if (items.length === 0) return;
    let index = 0;
    while (index < items.length) {
      let batch = filling.get(kind);
      if (batch === undefined || batch.items.length >= maxBatch) {
        batch = { kind, items: [] };
        queue.push(batch);
        filling.set(kind, batch);
      }
      const take = Math.min(maxBatch - batch.items.length, items.length - index);
      for (let i = 0; i < take; i++) batch.items.push(items[index + i]);
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
        // From here the store may hold the batch: later records of its kind start a new one.
        if (filling.get(batch.kind) === batch) filling.delete(batch.kind);
        try {
          await send(batch);
        } catch (error) {
          if (!refusesInput(error)) {
            failure = { error };
            for (const waiter of waiters.splice(0)) waiter.reject(error);
            report(error, batch, false);
            return;
          }
          // The store refuses something in this batch as bad input: retrying it would fail forever
          // and hold up everything behind it. Halve the batch until the refused records stand
          // alone; the others are written, in order, and only those are set aside.
          if (batch.items.length > 1) {
            const half = Math.ceil(batch.items.length / 2);
            queue.splice(0, 1, { kind: batch.kind, items: batch.items.slice(0, half) }, { kind: batch.kind, items: batch.items.slice(half) });
            continue;
          }
          for (const waiter of waiters) waiter.error ??= error;
          report(error, batch, true);
        }
        queue.shift();
        done += batch.items.length;
        settleWaiters();
      }
    } finally {
      draining = false;
    }
  }

  function report(error: unknown, batch: Batch, rejected: boolean): void {
    try {
      options.onError?.(error, { kind: batch.kind, size: batch.items.length, rejected });
    } catch {
      // A throwing handler must not become an unhandled rejection; flush() still reports the error.
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
      if (waiter.target <= done) {
        waiters.splice(i, 1);
        if (waiter.error === undefined) waiter.resolve();
        else waiter.reject(waiter.error);
      }
    }
  }

  return {
    writeReadings: (rows) => push('readings', rows),
    upsertAggregates: (aggregates) => push('aggregates', aggregates),
    writeAlertEvents: (events) => push('alertEvents', events),
    writeOps: (events) => push('ops', events),
    pending: () => given - done,
    waitForRoom(limit: number): Promise<void> {
      const target = given - Math.max(0, limit);
      if (done >= target) return Promise.resolve();
      failure = undefined;
      const settled = new Promise<void>((resolve, reject) => waiters.push({ target, resolve, reject }));
      void drain();
      return settled;
    },
    flush(): Promise<void> {
      const target = given;
      if (done >= target) return Promise.resolve();
      // Seal the batches that are filling: records given from now on start new batches behind them.
      // Otherwise a later record could join an earlier batch and make `done` reach the target while
      // an older record of another kind is still unwritten (a checkpoint would then run ahead of the store).
      filling.clear();
      // flush() is the retry: a failed batch is tried again from here.
      failure = undefined;
      const settled = new Promise<void>((resolve, reject) => waiters.push({ target, resolve, reject }));
      void drain();
      return settled;
    },
  };
}
