import { copyFile, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createFileLog, recordBytes, type AppendRecord, type FsyncPolicy, type Log, type LogRecovery, type ReadBatch } from '../log/index.js';
import { GpError } from '../model/index.js';

export type SpoolFullPolicy = 'block' | 'drop-oldest';

export interface SpoolOptions {
  /** The spool's directory: the log's segments, the forwarder's offset, `quarantine/`. */
  dir: string;
  /** Cap on the bytes of all segments; appends are admitted against it before they are written. */
  maxBytes: number;
  segmentBytes: number;
  full: SpoolFullPolicy;
  fsync?: FsyncPolicy | undefined;
  fsyncIntervalMs?: number | undefined;
  clock?: (() => number) | undefined;
}

/** What opening the spool found: the log's recovery plus the segments copied aside. */
export interface SpoolRecovery {
  /** Bytes cut from a torn tail (a crash mid-write: records never acknowledged). */
  truncatedBytes: number;
  /** Segments with corruption inside (not a torn tail): copied to `quarantine/`, their unreadable records counted. */
  quarantined: Array<{ file: string; copy: string; unreadableRecords: number; reason: string }>;
  reason: string | undefined;
}

export interface SpoolStats {
  bytes: number;
  segments: number;
  /** Readings spooled and not yet acknowledged by the platform. */
  unsent: number;
  startOffset: number;
  endOffset: number;
  committed: number;
  /** Readings removed by the drop-oldest policy before they were sent, since the spool was created (kept across restarts). */
  droppedByPolicy: number;
  /** Appends currently waiting for space (block policy). */
  blockedAppends: number;
  /** Readings lost to corruption (quarantined segments), since the spool was opened. */
  corruptRecords: number;
  maxBytes: number;
  full: SpoolFullPolicy;
}

const PARTITION = 0;
const CONSUMER = 'forwarder';
const DROP_CONSUMER = 'dropped-by-policy';

/**
 * The edge agent's spool: the platform's embedded durable log (one partition, so readings leave
 * in the order they came) with a size cap and an explicit full policy.
 *
 * - `block`: an append that would take the spool past `maxBytes` waits until the forwarder has
 *   delivered whole segments (or, with `wait: false`, fails at once with GP_UNAVAILABLE so an HTTP
 *   collector can answer 503). Nothing is ever dropped.
 * - `drop-oldest`: the oldest closed segments are deleted, sent or not, until the append fits;
 *   every reading deleted unsent is counted in `droppedByPolicy` (kept in the log's consumer
 *   offsets, so the count survives restarts).
 *
 * Disk use stays at or under `maxBytes` (appends are admitted against it before they are
 * written). Corruption inside a closed segment (a checksum that fails, not a torn tail) is found
 * when the spool opens: the segment is copied to `quarantine/` and reported, its readable
 * records are still forwarded and the unreadable ones counted. A torn tail (a crash mid-write)
 * is cut: those records had not been acknowledged.
 *
 * Durability is the log's fsync policy: with `batch` (default) an append resolves only after
 * fsync, so an acknowledged reading survives a power cut; with `interval` a machine crash can
 * lose the last `fsyncIntervalMs` of acknowledged readings; with `none` up to the OS's write-back
 * delay (about 30 s on Linux). A process crash (kill -9) loses nothing acknowledged in any mode.
 *
 * @example
 * const spool = createSpool({ dir: './edge-data/spool', maxBytes: 1 << 30, segmentBytes: 8 << 20, full: 'block' });
 * await spool.ready();
 * await spool.append([{ key: 'power\tm-1', value: '{"meterId":"m-1",...}' }]);
 */
export interface Spool {
  ready(): Promise<SpoolRecovery>;
  /** Appends durably; resolves with the offsets. See the full policies above for what happens at the cap. */
  append(records: readonly AppendRecord[], options?: { wait?: boolean }): Promise<{ offsets: number[]; appendedAt: number }>;
  read(offset: number, maxRecords: number, maxBytes?: number): Promise<ReadBatch>;
  waitFor(offset: number, timeoutMs: number): Promise<boolean>;
  /** The forwarder's next offset (0 before it ever committed). */
  committed(): number;
  /** Marks everything before `nextOffset` delivered and deletes whole delivered segments. */
  commit(nextOffset: number): Promise<void>;
  stats(): SpoolStats;
  /** Append time (epoch ms) of the oldest unsent reading, undefined when none. */
  oldestUnsentAt(): Promise<number | undefined>;
  close(): Promise<void>;
}

export function createSpool(options: SpoolOptions): Spool {
  return new FileSpool(options);
}

class FileSpool implements Spool {
  private readonly log: Log;
  private reserved = 0;
  private dropping: Promise<void> | undefined;
  private readonly spaceWaiters = new Set<() => void>();
  private corruptRecords = 0;
  private dropped = 0;
  private closed = false;
  private lastStats: SpoolStats | undefined;

  constructor(private readonly options: SpoolOptions) {
    if (options.maxBytes < 4 * options.segmentBytes) {
      throw new GpError('GP_CONFIG_INVALID', `spool maxBytes: expected at least 4 segments (${4 * options.segmentBytes} bytes), got ${options.maxBytes}`, { field: 'maxBytes' });
    }
    this.log = createFileLog({
      dir: options.dir,
      partitions: 1,
      fsync: options.fsync ?? 'batch',
      fsyncIntervalMs: options.fsyncIntervalMs,
      segmentBytes: options.segmentBytes,
      retention: { maxBytes: 0, keepUncommittedOf: [CONSUMER] },
      clock: options.clock,
    });
  }

  async ready(): Promise<SpoolRecovery> {
    const recovery = await this.log.ready();
    this.dropped = this.log.committed(DROP_CONSUMER, PARTITION) ?? 0;
    return this.quarantine(recovery);
  }

  private async quarantine(recovery: LogRecovery): Promise<SpoolRecovery> {
    const entry = recovery.partitions[0];
    const result: SpoolRecovery = { truncatedBytes: entry?.truncatedBytes ?? 0, quarantined: [], reason: entry?.reason };
    const unreadable = (entry?.unreadable ?? []).filter((range) => range.reason.includes(' of ') && range.reason.includes('not the last segment'));
    if (unreadable.length === 0) return result;
    const partitionDir = join(this.options.dir, 'p-0');
    const quarantineDir = join(this.options.dir, 'quarantine');
    await mkdir(quarantineDir, { recursive: true });
    const names = (await readdir(partitionDir)).filter((name) => name.endsWith('.log')).sort();
    const stamp = new Date(this.now()).toISOString().replaceAll(':', '-');
    for (const range of unreadable) {
      // The segment holding the corrupt record: the last one starting at or before it.
      const file = names.filter((name) => Number(name.slice(0, 20)) <= range.fromOffset).at(-1);
      if (file === undefined) continue;
      const copy = join(quarantineDir, `${file}.${stamp}`);
      await copyFile(join(partitionDir, file), copy);
      const records = range.toOffset - range.fromOffset;
      this.corruptRecords += records;
      result.quarantined.push({ file, copy, unreadableRecords: records, reason: range.reason });
    }
    return result;
  }

  private now(): number {
    return (this.options.clock ?? Date.now)();
  }

  private used(): number {
    return this.log.stats().bytes + this.reserved;
  }

  async append(records: readonly AppendRecord[], options: { wait?: boolean } = {}): Promise<{ offsets: number[]; appendedAt: number }> {
    const offsets: number[] = [];
    let appendedAt = this.now();
    // Admitted in pieces of at most half a segment, so that a piece always fits once old segments go.
    const limit = Math.floor(this.options.segmentBytes / 2);
    let start = 0;
    while (start < records.length) {
      let bytes = 0;
      let end = start;
      while (end < records.length) {
        const record = records[end] as AppendRecord;
        const size = recordBytes(record.key, record.value);
        if (end > start && bytes + size > limit) break;
        bytes += size;
        end++;
      }
      await this.admit(bytes, options.wait ?? true);
      try {
        const result = await this.log.append(records.slice(start, end));
        for (const position of result.positions) offsets.push(position.offset);
        appendedAt = result.appendedAt;
      } finally {
        this.reserved -= bytes;
      }
      start = end;
    }
    return { offsets, appendedAt };
  }

  /** Returns once `bytes` more fit under the cap, reserved in the same synchronous step as the check (concurrent appends cannot both take the last space). */
  private async admit(bytes: number, wait: boolean): Promise<void> {
    const { maxBytes, full } = this.options;
    for (;;) {
      if (this.used() + bytes <= maxBytes) {
        this.reserved += bytes;
        return;
      }
      if (this.closed) throw new GpError('GP_UNAVAILABLE', 'the spool is closed');
      if (full === 'drop-oldest') {
        if (this.dropping === undefined) {
          this.dropping = this.dropOldest().finally(() => {
            this.dropping = undefined;
          });
        }
        await this.dropping;
        continue;
      }
      if (!wait) {
        throw new GpError('GP_UNAVAILABLE', `spool full: ${this.used()} of ${maxBytes} bytes used and the full policy is "block"; retry once the platform has taken readings`, {
          retryAfterSeconds: 1,
        });
      }
      await new Promise<void>((wake) => {
        const waiter = (): void => {
          clearTimeout(timer);
          this.spaceWaiters.delete(waiter);
          wake();
        };
        // Also re-checks now and then: space can come back from a retention run nobody announced.
        const timer = setTimeout(waiter, 1000);
        this.spaceWaiters.add(waiter);
      });
    }
  }

  private async dropOldest(): Promise<void> {
    if (this.log.dropOldestSegment === undefined) throw new GpError('GP_INTERNAL', 'the spool log cannot drop segments');
    // Where the forwarder stood before the removal (after it, `committed()` is at least the new start).
    const committedBefore = this.log.committed(CONSUMER, PARTITION) ?? 0;
    const report = await this.log.dropOldestSegment(PARTITION);
    if (report.segmentsRemoved === 0) {
      // Only the segment being written is left: space comes when it rolls; give writers a moment.
      await new Promise((wake) => setTimeout(wake, 5));
      return;
    }
    // Readings that went unsent: the removed offsets the forwarder had not committed past.
    const start = this.log.startOffset(PARTITION);
    const removedFrom = start - report.recordsRemoved;
    const unsent = Math.max(0, start - Math.max(removedFrom, committedBefore));
    if (unsent > 0) {
      this.dropped += unsent;
      await this.log.commit(DROP_CONSUMER, PARTITION, Math.min(this.dropped, this.log.endOffset(PARTITION)));
    }
  }

  read(offset: number, maxRecords: number, maxBytes?: number): Promise<ReadBatch> {
    return this.log.read(PARTITION, offset, maxBytes === undefined ? { maxRecords } : { maxRecords, maxBytes });
  }

  waitFor(offset: number, timeoutMs: number): Promise<boolean> {
    return this.log.waitFor(PARTITION, offset, timeoutMs);
  }

  committed(): number {
    return Math.max(this.log.committed(CONSUMER, PARTITION) ?? 0, this.log.startOffset(PARTITION));
  }

  async commit(nextOffset: number): Promise<void> {
    await this.log.commit(CONSUMER, PARTITION, nextOffset);
    const report = await this.log.applyRetention();
    if (report.segmentsRemoved > 0) for (const wake of [...this.spaceWaiters]) wake();
  }

  async oldestUnsentAt(): Promise<number | undefined> {
    const from = this.committed();
    if (from >= this.log.endOffset(PARTITION)) return undefined;
    const batch = await this.log.read(PARTITION, from, { maxRecords: 1 });
    return batch.records[0]?.timestamp;
  }

  stats(): SpoolStats {
    // After close, the figures it had (the agent reports them on its way out).
    if (this.closed && this.lastStats !== undefined) return { ...this.lastStats, blockedAppends: 0 };
    const stats = this.log.stats();
    const startOffset = this.log.startOffset(PARTITION);
    const endOffset = this.log.endOffset(PARTITION);
    const committed = this.committed();
    this.lastStats = {
      bytes: stats.bytes,
      segments: stats.segments,
      unsent: Math.max(0, endOffset - Math.max(committed, startOffset)),
      startOffset,
      endOffset,
      committed,
      droppedByPolicy: this.dropped,
      blockedAppends: this.spaceWaiters.size,
      corruptRecords: this.corruptRecords,
      maxBytes: this.options.maxBytes,
      full: this.options.full,
    };
    return this.lastStats;
  }

  async close(): Promise<void> {
    if (!this.closed) {
      try {
        this.stats();
      } catch {
        // never opened
      }
    }
    this.closed = true;
    for (const wake of [...this.spaceWaiters]) wake();
    await this.log.close();
  }
}
