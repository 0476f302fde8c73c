import { addValuesAt } from './accumulator.js';
import { RecordRing } from './record-ring.js';

const TIME = 0;
const AMENDED = 1;
/** Offset of the values inside a reading record. */
export const READING_VALUES = 2;
const VALUES = READING_VALUES;

/**
 * The readings of one device that some window can still use, oldest first, in one growable ring
 * of Float64Array records `[time, amended, value per metric…]`. A window is the fold of the
 * readings between its start and end, in time order.
 *
 * Readings rather than pre-aggregated panes (PaneRing) for a device that reports less than about
 * four times per pane: a pane holds eleven numbers per metric however few readings it covers, a
 * reading one. A meter reporting every 10 s keeps 25 minutes (the largest window plus allowed
 * lateness) in about 8 KB this way against about 40 KB of 15-second panes, and at ten thousand
 * devices the engine's time went mostly to fetching panes from memory. Each reading is added
 * once to every window it falls in; in time order, so the result does not depend on the order
 * readings arrived in.
 * Readings arrive almost always newest-last; an older one shifts the newer records by one.
 */
export class ReadingRing extends RecordRing {
  /** Time of the oldest and of the newest reading (kept here so that the engine's sweep over its devices reads no reading). */
  oldest = Infinity;
  newest = -Infinity;

  constructor(
    private readonly metrics: number,
    initialCapacity = 8,
  ) {
    super(VALUES + metrics, initialCapacity);
  }

  timeAt(i: number): number {
    return this.data[this.offsetAt(i) + TIME]!;
  }

  /** Copies the values of the i-th oldest reading into `out` and returns it. */
  valuesAt(i: number, out: Float64Array): Float64Array {
    const offset = this.offsetAt(i) + VALUES;
    for (let m = 0; m < this.metrics; m++) out[m] = this.data[offset + m]!;
    return out;
  }

  amendedAt(i: number): boolean {
    return this.data[this.offsetAt(i) + AMENDED] === 1;
  }

  /** Marks the reading at `offset` as one that amended an emitted window (it counts in the revision of every window holding it). */
  markAmended(offset: number): void {
    this.data[offset + AMENDED] = 1;
  }

  /**
   * Adds a reading (NaN values: absent metrics) in time order, after any of the same time, and
   * returns its offset.
   */
  insert(time: number, values: ArrayLike<number>): number {
    let position = this.count;
    while (position > 0 && this.timeAt(position - 1) > time) position--;
    const offset = this.openAt(position);
    const data = this.data;
    data[offset + TIME] = time;
    data[offset + AMENDED] = 0;
    for (let m = 0; m < this.metrics; m++) data[offset + VALUES + m] = values[m]!;
    if (time < this.oldest) this.oldest = time;
    if (time > this.newest) this.newest = time;
    return offset;
  }

  override dropOldest(): void {
    super.dropOldest();
    if (this.count > 0) this.oldest = this.timeAt(0);
    else {
      this.oldest = Infinity;
      this.newest = -Infinity;
    }
  }

  /**
   * Adds the readings with start ≤ time < end to the accumulator `acc` (reset by the caller), in
   * time order. Returns how many of them amended an emitted window, or -1 when there are none.
   */
  fold(start: number, end: number, acc: Float64Array): number {
    const data = this.data;
    const metrics = this.metrics;
    let amended = 0;
    let any = false;
    for (let i = this.firstAtOrAfter(start); i < this.count; i++) {
      const offset = this.offsetAt(i);
      const time = data[offset + TIME]!;
      if (time >= end) break;
      amended += data[offset + AMENDED]!;
      addValuesAt(acc, 0, data, offset + VALUES, metrics, time);
      any = true;
    }
    return any ? amended : -1;
  }

  /** Index of the oldest reading at or after `time` (count when there is none): a binary search. */
  private firstAtOrAfter(time: number): number {
    let low = 0;
    let high = this.count;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (this.timeAt(middle) < time) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}
