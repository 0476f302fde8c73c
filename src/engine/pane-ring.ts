import { ACC_STRIDE, resetAccumulator } from './accumulator.js';

const START = 0;
const AMENDMENTS = 1;
/** Offset of the accumulator inside a pane record. */
export const PANE_ACC = 2;

/**
 * The panes of one device and one window spec, oldest first, in a single growable ring of
 * Float64Array records `[start, amendments, accumulator…]`. One contiguous block per device and
 * window instead of an object per pane keeps the hot path free of allocation and of pointer
 * chasing, which dominated the engine's time with thousands of devices.
 * Panes arrive almost always newest-last; a late reading that needs a pane between existing
 * ones shifts the newer records by one (rare).
 */
export class PaneRing {
  data: Float64Array;
  /** Panes the ring holds before it must grow. */
  capacity: number;
  private head = 0;
  count = 0;
  readonly stride: number;

  constructor(private readonly metrics: number, initialCapacity = 4) {
    this.stride = PANE_ACC + metrics * ACC_STRIDE;
    this.capacity = initialCapacity;
    this.data = new Float64Array(initialCapacity * this.stride);
  }

  /** Offset in `data` of the i-th oldest pane. */
  offsetAt(i: number): number {
    let slot = this.head + i;
    if (slot >= this.capacity) slot -= this.capacity;
    return slot * this.stride;
  }

  startAt(i: number): number {
    return this.data[this.offsetAt(i) + START]!;
  }

  amendmentsAt(i: number): number {
    return this.data[this.offsetAt(i) + AMENDMENTS]!;
  }

  addAmendment(offset: number): void {
    this.data[offset + AMENDMENTS]! += 1;
  }

  /** Sets the amendment count of the pane at `offset` (restoring a checkpoint). */
  setAmendments(offset: number, amendments: number): void {
    this.data[offset + AMENDMENTS] = amendments;
  }

  /** Offset of the pane starting at `start`, created (empty) if needed. */
  paneFor(start: number): number {
    const count = this.count;
    if (count > 0) {
      const newest = this.offsetAt(count - 1);
      const newestStart = this.data[newest + START]!;
      if (newestStart === start) return newest;
      if (start < newestStart) return this.insertOlder(start);
    }
    if (count === this.capacity) this.grow();
    const offset = this.offsetAt(count);
    this.init(offset, start);
    this.count = count + 1;
    return offset;
  }

  dropOldest(): void {
    this.head = this.head + 1 === this.capacity ? 0 : this.head + 1;
    this.count--;
  }

  private insertOlder(start: number): number {
    let position = this.count - 1;
    while (position >= 0) {
      const s = this.startAt(position);
      if (s === start) return this.offsetAt(position);
      if (s < start) break;
      position--;
    }
    position++; // insert before the pane now at `position`
    if (this.count === this.capacity) this.grow();
    for (let j = this.count - 1; j >= position; j--) {
      const from = this.offsetAt(j);
      this.data.copyWithin(this.offsetAt(j + 1), from, from + this.stride);
    }
    this.count++;
    const offset = this.offsetAt(position);
    this.init(offset, start);
    return offset;
  }

  private init(offset: number, start: number): void {
    this.data[offset + START] = start;
    this.data[offset + AMENDMENTS] = 0;
    resetAccumulator(this.data, offset + PANE_ACC, this.metrics);
  }

  /**
   * Grows the ring to hold at least `capacity` panes (at least twice the current capacity). The
   * engine calls it when the ring is full with the number of panes the device will keep, so a
   * device reaches its steady size in one step instead of several doublings, each allocating and
   * touching fresh memory.
   */
  reserve(capacity: number): void {
    if (capacity > this.capacity) this.grow(capacity);
  }

  private grow(atLeast = 0): void {
    const capacity = Math.max(this.capacity * 2, atLeast);
    const data = new Float64Array(capacity * this.stride);
    for (let i = 0; i < this.count; i++) {
      const from = this.offsetAt(i);
      data.set(this.data.subarray(from, from + this.stride), i * this.stride);
    }
    this.data = data;
    this.capacity = capacity;
    this.head = 0;
  }
}
