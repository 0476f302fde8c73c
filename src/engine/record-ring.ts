/**
 * A growable ring of fixed-size Float64Array records, oldest first: the storage of a device's
 * window data (ReadingRing, PaneRing). One contiguous block per device instead of an object per
 * record keeps the hot path free of allocation and of pointer chasing. Records are kept in time
 * order; one that belongs before newer ones shifts them by one (rare: late readings).
 */
export class RecordRing {
  data: Float64Array;
  /** Records the ring holds before it must grow. */
  capacity: number;
  private head = 0;
  count = 0;

  constructor(
    /** Numbers per record. */
    readonly stride: number,
    initialCapacity: number,
  ) {
    this.capacity = initialCapacity;
    this.data = new Float64Array(initialCapacity * stride);
  }

  /** Offset in `data` of the i-th oldest record. */
  offsetAt(i: number): number {
    let slot = this.head + i;
    if (slot >= this.capacity) slot -= this.capacity;
    return slot * this.stride;
  }

  dropOldest(): void {
    this.head = this.head + 1 === this.capacity ? 0 : this.head + 1;
    this.count--;
  }

  /**
   * Grows the ring to hold at least `capacity` records (at least twice the current capacity).
   * The engine calls it when the ring is full with the number of records the device will keep,
   * so a device reaches its steady size in one step instead of several doublings, each
   * allocating and touching fresh memory.
   */
  reserve(capacity: number): void {
    if (capacity > this.capacity) this.grow(capacity);
  }

  /** Makes room for a record at index `position` (0 = oldest, count = newest), growing when full and shifting newer records by one; returns its offset. */
  protected openAt(position: number): number {
    if (this.count === this.capacity) this.grow();
    for (let j = this.count - 1; j >= position; j--) {
      const from = this.offsetAt(j);
      this.data.copyWithin(this.offsetAt(j + 1), from, from + this.stride);
    }
    this.count++;
    return this.offsetAt(position);
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
