import { ACC_STRIDE, addValuesAt, mergeInto, resetAccumulator } from './accumulator.js';
import type { ReadingRing } from './reading-ring.js';
import { RecordRing } from './record-ring.js';
import { alignDown } from './time.js';

const START = 0;
const AMENDMENTS = 1;
/** Offset of the accumulator inside a pane record. */
export const PANE_ACC = 2;

/**
 * The windows of a device that reports several times per pane: its readings pre-aggregated into
 * panes of the windows' common step, oldest first, in one growable ring of Float64Array records
 * `[start, amendments, accumulator…]`; a window is the merge of its panes. The engine holds a
 * device's readings one by one (ReadingRing) until it learns that the device reports at least
 * four times per pane: from there a pane's eleven numbers per metric cost less memory, and a
 * merge less time, than the readings they stand for.
 * Panes arrive almost always newest-last; a late reading that needs a pane between existing
 * ones shifts the newer records by one (rare).
 */
export class PaneRing extends RecordRing {
  constructor(
    private readonly metrics: number,
    /** Length of a pane (ms). */
    readonly paneMs: number,
    initialCapacity = 4,
  ) {
    super(PANE_ACC + metrics * ACC_STRIDE, initialCapacity);
  }

  /** Start of the oldest pane (Infinity when there is none). */
  get oldest(): number {
    return this.count > 0 ? this.timeAt(0) : Infinity;
  }

  /** Start of the newest pane (-Infinity when there is none). */
  get newest(): number {
    return this.count > 0 ? this.timeAt(this.count - 1) : -Infinity;
  }

  /** Start of the i-th oldest pane. */
  timeAt(i: number): number {
    return this.data[this.offsetAt(i) + START]!;
  }

  amendmentsAt(i: number): number {
    return this.data[this.offsetAt(i) + AMENDMENTS]!;
  }

  /** Counts one more reading that amended an emitted window in the pane at `offset` (each raises the revision of every window holding it). */
  markAmended(offset: number): void {
    this.data[offset + AMENDMENTS]! += 1;
  }

  /** Adds a reading (NaN values: absent metrics) to its pane and returns the pane's offset. */
  insert(time: number, values: Float64Array): number {
    const offset = this.paneFor(alignDown(time, this.paneMs));
    addValuesAt(this.data, offset + PANE_ACC, values, 0, this.metrics, time);
    return offset;
  }

  /**
   * Merges the panes starting in [start, end) into the accumulator `acc` (reset by the caller).
   * Returns how many readings in them amended an emitted window, or -1 when there are none.
   */
  fold(start: number, end: number, acc: Float64Array): number {
    let revision = 0;
    let any = false;
    // A window's panes are among the newest: walk back from the end.
    for (let i = this.count - 1; i >= 0; i--) {
      const offset = this.offsetAt(i);
      const paneStart = this.data[offset + START]!;
      if (paneStart >= end) continue;
      if (paneStart < start) break;
      mergeInto(acc, this.data, offset + PANE_ACC);
      revision += this.data[offset + AMENDMENTS]!;
      any = true;
    }
    return any ? revision : -1;
  }

  /** The readings of `ring` in panes of `paneMs`, with room for at least `capacity` panes. */
  static fromReadings(ring: ReadingRing, metrics: number, paneMs: number, capacity: number): PaneRing {
    const panes = new PaneRing(metrics, paneMs, Math.max(4, capacity));
    const values = new Float64Array(metrics);
    for (let i = 0; i < ring.count; i++) {
      const offset = panes.insert(ring.timeAt(i), ring.valuesAt(i, values));
      if (ring.amendedAt(i)) panes.markAmended(offset);
    }
    return panes;
  }

  /** Sets the amendment count of the pane at `offset` (restoring a checkpoint). */
  setAmendments(offset: number, amendments: number): void {
    this.data[offset + AMENDMENTS] = amendments;
  }

  /** Offset of the pane starting at `start`, created (empty) if needed. */
  paneFor(start: number): number {
    let position = this.count;
    while (position > 0) {
      const s = this.timeAt(position - 1);
      if (s === start) return this.offsetAt(position - 1);
      if (s < start) break;
      position--;
    }
    const offset = this.openAt(position);
    this.init(offset, start);
    return offset;
  }

  private init(offset: number, start: number): void {
    this.data[offset + START] = start;
    this.data[offset + AMENDMENTS] = 0;
    resetAccumulator(this.data, offset + PANE_ACC, this.metrics);
  }
}
