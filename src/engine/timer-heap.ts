/**
 * A binary min-heap of event-time timers. Ties are broken by a sequence number given at push,
 * so timers due at the same time fire in a fixed order and replays stay deterministic.
 * Entries are cancelled lazily: the owner keeps the authoritative deadline and ignores (or
 * re-pushes) entries that no longer match it, which makes re-arming a timer on every reading O(1).
 */
export class TimerHeap<T> {
  private times: number[] = [];
  private seqs: number[] = [];
  private items: T[] = [];

  get size(): number {
    return this.times.length;
  }

  peekTime(): number {
    return this.times.length > 0 ? this.times[0]! : Infinity;
  }

  push(time: number, seq: number, item: T): void {
    this.times.push(time);
    this.seqs.push(seq);
    this.items.push(item);
    this.up(this.times.length - 1);
  }

  /** Visits every entry (in heap order, not time order): for checkpoints. Pushing them again in any order rebuilds a heap that pops the same sequence, since (time, seq) orders entries totally. */
  forEach(visit: (time: number, seq: number, item: T) => void): void {
    for (let i = 0; i < this.times.length; i++) visit(this.times[i]!, this.seqs[i]!, this.items[i]!);
  }

  /** The earliest entry's item; call only when size > 0. */
  peekItem(): T {
    return this.items[0]!;
  }

  /** Removes the earliest entry (without allocating); call only when size > 0. */
  drop(): void {
    const lastTime = this.times.pop()!;
    const lastSeq = this.seqs.pop()!;
    const lastItem = this.items.pop()!;
    if (this.times.length > 0) {
      this.times[0] = lastTime;
      this.seqs[0] = lastSeq;
      this.items[0] = lastItem;
      this.down(0);
    }
  }

  /** Removes the earliest entry; call only when size > 0. */
  pop(): { time: number; item: T } {
    const time = this.times[0]!;
    const item = this.items[0]!;
    this.drop();
    return { time, item };
  }

  private less(a: number, b: number): boolean {
    const ta = this.times[a]!;
    const tb = this.times[b]!;
    return ta < tb || (ta === tb && this.seqs[a]! < this.seqs[b]!);
  }

  private swap(a: number, b: number): void {
    const t = this.times[a]!;
    this.times[a] = this.times[b]!;
    this.times[b] = t;
    const s = this.seqs[a]!;
    this.seqs[a] = this.seqs[b]!;
    this.seqs[b] = s;
    const i = this.items[a]!;
    this.items[a] = this.items[b]!;
    this.items[b] = i;
  }

  private up(index: number): void {
    let i = index;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  private down(index: number): void {
    let i = index;
    const n = this.times.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let smallest = i;
      if (l < n && this.less(l, smallest)) smallest = l;
      if (r < n && this.less(r, smallest)) smallest = r;
      if (smallest === i) return;
      this.swap(i, smallest);
      i = smallest;
    }
  }
}
