import { mkdir, open, readdir, readFile, rename, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { GpError } from '../model/index.js';
import { ConsumerOffsets, checkConsumerName, messageOf } from './consumer-offsets.js';
import { fsyncDirectory, ioError, lockDirectory } from './files.js';
import type { AppendRecord, AppendResult, Log, LogRecord, LogRecovery, LogStats, ReadBatch, ReadLimits, RetentionReport } from './log.js';
import { partitionOfKey } from './partitioner.js';
import { FRAME_HEADER_BYTES, MAX_RECORD_BYTES, frameBytes, parseFrame, sealFrame, writeFrame, type EncodableRecord } from './record-format.js';
import { INDEX_INTERVAL_BYTES, SEGMENT_FILE_PATTERN, Segment, scanSegment } from './segment.js';

/**
 * When an append counts as durable:
 * - `batch` (default): the segment is fsynced before `append` resolves. Concurrent appends are
 *   group-committed: everything queued while one write+fsync runs goes into the next one.
 * - `interval`: `append` resolves once the records are written to the file (in the OS page
 *   cache) and a timer fsyncs every `fsyncIntervalMs`. A crash of the process loses nothing
 *   acknowledged; a crash of the machine (power loss, kernel panic) loses the appends
 *   acknowledged in the last `fsyncIntervalMs` at most.
 * - `none`: like `interval` without the timer: the OS writes back when it likes (on Linux
 *   typically within 30 s). For tests and throw-away data.
 * In every mode `close()` fsyncs, and a segment is fsynced when it is rolled (except `none`).
 */
export type FsyncPolicy = 'batch' | 'interval' | 'none';

export interface FileLogRetention {
  /** Upper bound on the bytes of each partition; whole closed segments are removed, oldest first, while a partition is above it. */
  maxBytes?: number | undefined;
  /** Closed segments whose newest record was appended longer ago than this (by the log's clock) are removed. */
  maxAgeMs?: number | undefined;
  /**
   * Consumers whose uncommitted records are never removed: a segment goes only when every one of
   * them has committed past its last record. A listed consumer that never committed keeps everything.
   */
  keepUncommittedOf?: readonly string[] | undefined;
}

export interface FileLogOptions {
  /** The log's directory; created (with parents) when missing. One log instance per directory (a lock file guards it). */
  dir: string;
  /** Number of partitions, default 1. It may grow between runs (keys then map differently), never shrink. */
  partitions?: number | undefined;
  /** Default `batch`; see `FsyncPolicy`. */
  fsync?: FsyncPolicy | undefined;
  /** For `fsync: 'interval'`: ms between fsyncs, default 1000. */
  fsyncIntervalMs?: number | undefined;
  /** A segment is rolled (closed, and a new one started) before it would grow past this, default 64 MiB. */
  segmentBytes?: number | undefined;
  /** What `applyRetention()` removes; nothing by default. */
  retention?: FileLogRetention | undefined;
  /** Wall clock for append times and age retention (epoch ms), default `Date.now`. */
  clock?: (() => number) | undefined;
}

const DEFAULTS = { partitions: 1, fsync: 'batch', fsyncIntervalMs: 1000, segmentBytes: 64 * 1024 * 1024 } as const;
const MAX_PARTITIONS = 1024;
const MIN_SEGMENT_BYTES = 1024;
const MAX_SEGMENT_BYTES = 1024 * 1024 * 1024;
const DEFAULT_MAX_RECORDS = 1000;
const DEFAULT_MAX_BYTES = 1024 * 1024;
const MIN_READ_BYTES = 16 * 1024;
const CURSORS_PER_PARTITION = 8;
const MAX_GROUP_BYTES = 16 * 1024 * 1024;
const META_FILE = 'log.json';
const CONSUMERS_DIR = 'consumers';
const FORMAT = 1;
const OPTION_NAMES = ['dir', 'partitions', 'fsync', 'fsyncIntervalMs', 'segmentBytes', 'retention', 'clock'];
const RETENTION_NAMES = ['maxBytes', 'maxAgeMs', 'keepUncommittedOf'];

/**
 * The embedded durable log: per partition, segment files `dir/p-<n>/<20-digit base offset>.log`
 * of checksummed records (see record-format.ts), with a sparse in-memory index per segment and
 * the last read positions remembered, so a consumer reading on from where it stopped costs one
 * positioned read per batch. Consumer offsets live in `dir/consumers/<name>.json`.
 *
 * Appends are serialized through one writer; appends queued while it writes are committed
 * together (one write and one fsync per touched partition). With `fsync: 'batch'` readers see
 * a record (read, waitFor, endOffset) only once it is durable, so nothing a consumer processed
 * can vanish in a crash. `ready()` verifies every segment: a torn or corrupt tail is truncated,
 * corruption inside an older segment is reported and its remaining records skipped (see
 * `LogRecovery`). Retention runs when `applyRetention()` is called.
 *
 * A capacity cap with a full policy ('block' / 'drop-oldest') is the edge spool's (src/edge):
 * it admits appends against `stats().bytes` and, for 'drop-oldest', calls `dropOldestSegment`.
 *
 * @example
 * const log = createFileLog({ dir: './data/log', partitions: 4, retention: { maxAgeMs: 86_400_000, keepUncommittedOf: ['engine'] } });
 * const recovery = await log.ready();
 * const { positions } = await log.append([{ key: 'm-1', value: '{"meterId":"m-1","timestamp":1763900000000,"usageKw":1.2}' }]);
 * const batch = await log.read(positions[0]!.partition, 0);
 * await log.commit('engine', positions[0]!.partition, batch.nextOffset);
 * await log.close();
 */
export function createFileLog(options: FileLogOptions): Log {
  return new FileLog(resolveOptions(options));
}

interface ResolvedOptions {
  dir: string;
  partitions: number;
  fsync: FsyncPolicy;
  fsyncIntervalMs: number;
  segmentBytes: number;
  maxBytes: number | undefined;
  maxAgeMs: number | undefined;
  keepUncommittedOf: string[];
  clock: () => number;
}

interface Waiter {
  offset: number;
  resolve: (arrived: boolean) => void;
  timer: NodeJS.Timeout;
}

interface Cursor {
  segment: Segment;
  offset: number;
  position: number;
}

interface Partition {
  id: number;
  dir: string;
  segments: Segment[];
  /** Write handle of the last segment. */
  handle: FileHandle;
  // The writer's view, ahead of the segments' published sizes while a write is in flight.
  writeSize: number;
  writeNext: number;
  writeTimestamp: number | undefined;
  /** Offset after the last record readers may see. */
  visibleEnd: number;
  /** Written since the last fsync. */
  dirty: boolean;
  waiters: Waiter[];
  cursors: Cursor[];
}

interface PartitionBatch {
  buffer: Buffer;
  frames: number;
  /** Index in the caller's array of each frame's record. */
  inputIndexes: number[];
}

interface PendingBatch {
  timestamp: number;
  bytes: number;
  parts: Map<number, PartitionBatch>;
  positions: Array<{ partition: number; offset: number }>;
  resolve: (result: AppendResult) => void;
  reject: (error: unknown) => void;
}

type LogState = 'new' | 'opening' | 'open' | 'closed';

class FileLog implements Log {
  readonly kind = 'file';
  readonly partitions: number;
  private readonly options: ResolvedOptions;
  private readonly consumers: ConsumerOffsets;
  private state: LogState = 'new';
  private opening: Promise<LogRecovery> | undefined;
  private closing: Promise<void> | undefined;
  private parts: Partition[] = [];
  private unlock: (() => Promise<void>) | undefined;
  // The writer: batches queue here and one loop writes them, group by group.
  private queue: PendingBatch[] = [];
  private writing = false;
  private syncDue = false;
  private idleWaiters: Array<() => void> = [];
  /** Set when a write or fsync failed in a way that leaves the files uncertain; appends are refused until the log is reopened. */
  private failure: GpError | undefined;
  private syncTimer: NodeJS.Timeout | undefined;
  private retentionTail: Promise<unknown> = Promise.resolve();
  private readonly reads = new Set<Promise<unknown>>();
  private appendedRecords = 0;
  private appendedBatches = 0;
  private fsyncs = 0;

  constructor(options: ResolvedOptions) {
    this.options = options;
    this.partitions = options.partitions;
    this.consumers = new ConsumerOffsets(join(options.dir, CONSUMERS_DIR));
  }

  ready(): Promise<LogRecovery> {
    if (this.closing !== undefined) return Promise.reject(closedError());
    if (this.opening === undefined) {
      this.state = 'opening';
      const opening = this.open();
      this.opening = opening;
      // A failed open may be retried (for example once another process released the directory).
      opening.catch(() => {
        if (this.opening === opening) {
          this.opening = undefined;
          this.state = 'new';
        }
      });
    }
    return this.opening;
  }

  // ---- append ------------------------------------------------------------------------------

  async append(records: readonly AppendRecord[]): Promise<AppendResult> {
    if (this.state !== 'open') await this.whenOpen();
    if (this.failure !== undefined) throw this.failure;
    if (!Array.isArray(records)) throw new GpError('GP_INPUT_INVALID', `records: expected an array of records, got ${typeof records}`, { field: 'records' });
    const timestamp = this.now();
    if (records.length === 0) return { positions: [], appendedAt: timestamp };
    const batch = this.encode(records, timestamp);
    return new Promise<AppendResult>((resolvePromise, rejectPromise) => {
      batch.resolve = resolvePromise;
      batch.reject = rejectPromise;
      this.queue.push(batch);
      this.kickWriter();
    });
  }

  private encode(records: readonly AppendRecord[], timestamp: number): PendingBatch {
    const count = this.partitions;
    const encoded: EncodableRecord[] = new Array<EncodableRecord>(records.length);
    const partitionOf = new Int32Array(records.length);
    const bytesOf = new Array<number>(count).fill(0);
    const framesOf = new Array<number>(count).fill(0);
    for (let index = 0; index < records.length; index++) {
      const record = records[index];
      if (typeof record !== 'object' || record === null) {
        throw new GpError('GP_INPUT_INVALID', `records[${index}]: expected an object with a value, got ${String(record)}`, { field: `records[${index}]` });
      }
      const { key, value, partition } = record;
      if (key !== undefined && typeof key !== 'string') {
        throw new GpError('GP_INPUT_INVALID', `records[${index}].key: expected a string or nothing, got ${typeof key}`, { field: `records[${index}].key` });
      }
      let valueBytes: number;
      if (typeof value === 'string') valueBytes = Buffer.byteLength(value, 'utf8');
      else if (value instanceof Uint8Array) valueBytes = value.length;
      else {
        throw new GpError('GP_INPUT_INVALID', `records[${index}].value: expected a string or bytes, got ${value === null ? 'null' : typeof value}`, {
          field: `records[${index}].value`,
        });
      }
      let target = 0;
      if (partition !== undefined) target = this.checkPartition(partition, `records[${index}].partition`);
      else if (key !== undefined && count > 1) target = partitionOfKey(key, count);
      const keyBuffer = key === undefined ? undefined : Buffer.from(key, 'utf8');
      if ((keyBuffer?.length ?? 0) + valueBytes > MAX_RECORD_BYTES) {
        throw new GpError('GP_INPUT_INVALID', `records[${index}]: key and value take ${(keyBuffer?.length ?? 0) + valueBytes} bytes, more than the ${MAX_RECORD_BYTES} a record may`, {
          field: `records[${index}]`,
        });
      }
      const item: EncodableRecord = { key: keyBuffer, value, valueBytes };
      encoded[index] = item;
      partitionOf[index] = target;
      bytesOf[target] = (bytesOf[target] as number) + frameBytes(item);
      framesOf[target] = (framesOf[target] as number) + 1;
    }
    const parts = new Map<number, PartitionBatch>();
    const cursors = new Map<number, number>();
    let bytes = 0;
    for (let partition = 0; partition < count; partition++) {
      const frames = framesOf[partition] as number;
      if (frames === 0) continue;
      parts.set(partition, { buffer: Buffer.allocUnsafe(bytesOf[partition] as number), frames, inputIndexes: [] });
      bytes += bytesOf[partition] as number;
      cursors.set(partition, 0);
    }
    for (let index = 0; index < records.length; index++) {
      const partition = partitionOf[index] as number;
      const part = parts.get(partition) as PartitionBatch;
      cursors.set(partition, writeFrame(part.buffer, cursors.get(partition) as number, encoded[index] as EncodableRecord));
      part.inputIndexes.push(index);
    }
    const noop = (): void => undefined;
    return { timestamp, bytes, parts, positions: new Array<{ partition: number; offset: number }>(records.length), resolve: noop, reject: noop };
  }

  private kickWriter(): void {
    if (this.writing) return;
    this.writing = true;
    void this.drainQueue();
  }

  /**
   * The writer loop; never rejects (each group settles its own batches). It must notice an
   * empty queue and clear `writing` in one synchronous step, or an append queued in between
   * would wait for a writer that has already left.
   */
  private async drainQueue(): Promise<void> {
    for (;;) {
      try {
        if (this.queue.length > 0) {
          // Everything queued goes in one group, up to a bound that keeps one write from growing without limit.
          let take = 0;
          let bytes = 0;
          while (take < this.queue.length && (take === 0 || bytes < MAX_GROUP_BYTES)) bytes += (this.queue[take++] as PendingBatch).bytes;
          await this.writeGroup(this.queue.splice(0, take));
        } else if (this.syncDue) {
          this.syncDue = false;
          await this.syncDirty();
        } else break;
      } catch (cause) {
        // Not expected (writeGroup settles its batches itself); if it happens, stop taking appends.
        this.failure ??= new GpError('GP_INTERNAL', `the log writer failed: ${messageOf(cause)}`, {}, { cause });
        for (const batch of this.queue.splice(0)) batch.reject(this.failure);
      }
    }
    this.writing = false;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  private async writeGroup(group: PendingBatch[]): Promise<void> {
    if (this.failure !== undefined) {
      for (const batch of group) batch.reject(this.failure);
      return;
    }
    const touched: Array<{ partition: Partition; segments: number; size: number; next: number; timestamp: number | undefined }> = [];
    const writes: Array<Promise<void>> = [];
    for (const partition of this.parts) {
      const items: Array<{ batch: PendingBatch; part: PartitionBatch }> = [];
      for (const batch of group) {
        const part = batch.parts.get(partition.id);
        if (part !== undefined) items.push({ batch, part });
      }
      if (items.length === 0) continue;
      touched.push({ partition, segments: partition.segments.length, size: partition.writeSize, next: partition.writeNext, timestamp: partition.writeTimestamp });
      // Partitions are separate files: their writes (and fsyncs below) run side by side.
      writes.push(this.writePartition(partition, items));
    }
    const failed = (await Promise.allSettled(writes)).find((outcome) => outcome.status === 'rejected');
    if (failed !== undefined) {
      const cause: unknown = failed.reason;
      const error = ioError(`log append failed: ${messageOf(cause)}`, { dir: this.options.dir }, cause);
      await this.rollBack(touched, error);
      for (const batch of group) batch.reject(error);
      return;
    }
    if (this.options.fsync === 'batch') {
      try {
        await Promise.all(touched.map(({ partition }) => partition.handle.sync()));
        this.fsyncs += touched.length;
        for (const { partition } of touched) partition.dirty = false;
      } catch (cause) {
        // After a failed fsync the page cache may no longer match the disk: refuse further appends.
        this.failure = ioError(`log fsync failed, the log must be reopened: ${messageOf(cause)}`, { dir: this.options.dir }, cause);
        for (const batch of group) batch.reject(this.failure);
        return;
      }
    }
    for (const { partition } of touched) this.publish(partition);
    for (const batch of group) {
      this.appendedBatches++;
      this.appendedRecords += batch.positions.length;
      batch.resolve({ positions: batch.positions, appendedAt: batch.timestamp });
    }
  }

  /** Writes one partition's share of a group, rolling to a new segment when the current one is full. */
  private async writePartition(partition: Partition, items: Array<{ batch: PendingBatch; part: PartitionBatch }>): Promise<void> {
    const segmentBytes = this.options.segmentBytes;
    const pieces: Buffer[] = [];
    let piecesBytes = 0;
    for (const { batch, part } of items) {
      let position = 0;
      let pieceStart = 0;
      for (let frame = 0; frame < part.frames; frame++) {
        const length = part.buffer.readUInt32LE(position) + FRAME_HEADER_BYTES;
        const filled = partition.writeSize + piecesBytes + (position - pieceStart);
        if (filled > 0 && filled + length > segmentBytes) {
          if (position > pieceStart) {
            pieces.push(part.buffer.subarray(pieceStart, position));
            piecesBytes += position - pieceStart;
            pieceStart = position;
          }
          await this.writePieces(partition, pieces, piecesBytes);
          pieces.length = 0;
          piecesBytes = 0;
          await this.roll(partition);
        }
        const tail = partition.segments[partition.segments.length - 1] as Segment;
        tail.noteRecord(partition.writeNext, partition.writeSize + piecesBytes + (position - pieceStart));
        sealFrame(part.buffer, position, partition.writeNext, batch.timestamp);
        batch.positions[part.inputIndexes[frame] as number] = { partition: partition.id, offset: partition.writeNext };
        partition.writeNext++;
        partition.writeTimestamp = batch.timestamp;
        position += length;
      }
      if (position > pieceStart) {
        pieces.push(part.buffer.subarray(pieceStart, position));
        piecesBytes += position - pieceStart;
      }
    }
    await this.writePieces(partition, pieces, piecesBytes);
  }

  private async writePieces(partition: Partition, pieces: Buffer[], bytes: number): Promise<void> {
    if (bytes === 0) return;
    const data = pieces.length === 1 ? (pieces[0] as Buffer) : Buffer.concat(pieces, bytes);
    let written = 0;
    while (written < bytes) {
      const { bytesWritten } = await partition.handle.write(data, written, bytes - written, partition.writeSize + written);
      written += bytesWritten;
    }
    partition.writeSize += bytes;
    partition.dirty = true;
  }

  /** Closes the full tail segment (fsynced unless `fsync: 'none'`) and starts the next one at the next offset. */
  private async roll(partition: Partition): Promise<void> {
    const old = partition.segments[partition.segments.length - 1] as Segment;
    if (this.options.fsync !== 'none') {
      await partition.handle.sync();
      this.fsyncs++;
    }
    await partition.handle.close();
    old.size = partition.writeSize;
    old.nextOffset = partition.writeNext;
    old.lastTimestamp = partition.writeTimestamp;
    old.closed = true;
    const segment = new Segment(partition.dir, partition.writeNext);
    partition.handle = await open(segment.path, 'wx');
    if (this.options.fsync !== 'none') await fsyncDirectory(partition.dir);
    partition.segments.push(segment);
    partition.writeSize = 0;
    partition.dirty = false;
  }

  /**
   * Undoes a failed group's writes so the log stays usable (a full disk, say): each touched
   * partition is cut back to where the group began. When that is impossible (a segment was
   * rolled meanwhile, or the cut fails) appends are refused until the log is reopened, whose
   * recovery then finds the files as they are.
   */
  private async rollBack(
    touched: Array<{ partition: Partition; segments: number; size: number; next: number; timestamp: number | undefined }>,
    error: GpError,
  ): Promise<void> {
    for (const before of touched) {
      const { partition } = before;
      if (partition.segments.length !== before.segments) {
        this.failure = error;
        continue;
      }
      try {
        await partition.handle.truncate(before.size);
        (partition.segments[partition.segments.length - 1] as Segment).forgetFrom(before.next);
        partition.writeSize = before.size;
        partition.writeNext = before.next;
        partition.writeTimestamp = before.timestamp;
        partition.cursors = [];
      } catch {
        this.failure = error;
      }
    }
  }

  /** Makes a partition's written records visible to readers and wakes its waiters. */
  private publish(partition: Partition): void {
    const tail = partition.segments[partition.segments.length - 1] as Segment;
    tail.size = partition.writeSize;
    tail.nextOffset = partition.writeNext;
    tail.lastTimestamp = partition.writeTimestamp;
    partition.visibleEnd = partition.writeNext;
    if (partition.waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const waiter of partition.waiters) {
      if (waiter.offset < partition.visibleEnd) {
        clearTimeout(waiter.timer);
        waiter.resolve(true);
      } else still.push(waiter);
    }
    partition.waiters = still;
  }

  private async syncDirty(): Promise<void> {
    for (const partition of this.parts) {
      if (!partition.dirty) continue;
      try {
        await partition.handle.sync();
        this.fsyncs++;
        partition.dirty = false;
      } catch (cause) {
        this.failure ??= ioError(`log fsync failed, the log must be reopened: ${messageOf(cause)}`, { dir: this.options.dir }, cause);
      }
    }
  }

  private whenIdle(): Promise<void> {
    if (!this.writing) return Promise.resolve();
    return new Promise((wake) => this.idleWaiters.push(wake));
  }

  // ---- read --------------------------------------------------------------------------------

  async read(partitionId: number, offset: number, limits: ReadLimits = {}): Promise<ReadBatch> {
    if (this.state !== 'open') await this.whenOpen();
    const partition = this.partition(partitionId);
    checkOffset(offset, 'offset');
    const maxRecords = checkLimit(limits.maxRecords, DEFAULT_MAX_RECORDS, 'maxRecords');
    const maxBytes = checkLimit(limits.maxBytes, DEFAULT_MAX_BYTES, 'maxBytes');
    const reading = this.readRecords(partition, offset, maxRecords, maxBytes).catch((cause: unknown) => {
      if (cause instanceof GpError) throw cause;
      throw ioError(`cannot read partition ${partitionId} of log ${this.options.dir}: ${messageOf(cause)}`, { partition: partitionId }, cause);
    });
    this.reads.add(reading);
    try {
      return await reading;
    } finally {
      this.reads.delete(reading);
    }
  }

  private async readRecords(partition: Partition, offset: number, maxRecords: number, maxBytes: number): Promise<ReadBatch> {
    const records: LogRecord[] = [];
    let next = Math.max(offset, this.startOffsetOf(partition));
    let bytes = 0;
    let minimumRead = 0;
    while (records.length < maxRecords && bytes < maxBytes && next < partition.visibleEnd) {
      const located = this.locate(partition, next);
      if (located === undefined) break;
      const { segment, index } = located;
      if (next >= segment.nextOffset) {
        // Records missing here (corruption found at open): go on with the next segment.
        const following = partition.segments[index + 1];
        if (following === undefined) break;
        next = following.baseOffset;
        continue;
      }
      const start = located.position;
      // Read about what the limits will take (from the segment's average record size), plus
      // the stretch from the indexed position to `next` when the read does not start there.
      const skipping = next - located.offset > 0 ? INDEX_INTERVAL_BYTES : 0;
      const recordsInSegment = segment.nextOffset - segment.baseOffset;
      const expected = Math.ceil(((maxRecords - records.length) * 1.25 * segment.size) / Math.max(recordsInSegment, 1));
      const length = Math.min(segment.size - start, Math.max(MIN_READ_BYTES, Math.min(maxBytes - bytes, expected) + skipping, minimumRead));
      const chunk = await segment.read(start, length);
      if (chunk === undefined) {
        // Removed by retention meanwhile: continue from the (new) start of the log.
        next = Math.max(next, this.startOffsetOf(partition));
        continue;
      }
      if (chunk.length < length) {
        throw ioError(`log segment ${segment.path} is shorter than the ${segment.size} bytes it had: the file changed after the log opened it`, { path: segment.path });
      }
      minimumRead = 0;
      let cursor = 0;
      let frameOffset = located.offset;
      let stop = false;
      while (cursor < chunk.length) {
        const frame = parseFrame(chunk, cursor, chunk.length);
        if (!frame.ok) {
          if (frame.problem === 'incomplete' && start + chunk.length < segment.size) {
            minimumRead = frame.needed ?? FRAME_HEADER_BYTES;
            break;
          }
          throw ioError(
            `${frame.reason} reading offset ${frameOffset} at byte ${start + cursor} of ${segment.path}: the file changed after the log opened it`,
            { path: segment.path, offset: frameOffset },
          );
        }
        if (frame.offset !== frameOffset) {
          throw ioError(`record with offset ${frame.offset} where ${frameOffset} was expected at byte ${start + cursor} of ${segment.path}: the file changed after the log opened it`, {
            path: segment.path,
            offset: frameOffset,
          });
        }
        if (frame.offset >= partition.visibleEnd) {
          stop = true;
          break;
        }
        if (frame.offset >= next) {
          records.push({
            partition: partition.id,
            offset: frame.offset,
            timestamp: frame.timestamp,
            key: frame.hasKey ? chunk.toString('utf8', frame.keyStart, frame.keyEnd) : undefined,
            value: chunk.subarray(frame.keyEnd, frame.valueEnd),
          });
          bytes += frame.length;
          next = frame.offset + 1;
        }
        cursor += frame.length;
        frameOffset++;
        if (records.length >= maxRecords || bytes >= maxBytes) break;
      }
      if (cursor > 0) this.remember(partition, { segment, offset: frameOffset, position: start + cursor });
      if (stop) break;
    }
    return { records, nextOffset: next };
  }

  /** The segment holding `offset` and the nearest known record position at or before it. */
  private locate(partition: Partition, offset: number): { segment: Segment; index: number; offset: number; position: number } | undefined {
    const segments = partition.segments;
    let low = 0;
    let high = segments.length - 1;
    let index = -1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      if ((segments[middle] as Segment).baseOffset <= offset) {
        index = middle;
        low = middle + 1;
      } else high = middle - 1;
    }
    const segment = segments[index];
    if (segment === undefined) return undefined;
    let best = segment.lookup(offset);
    for (const cursor of partition.cursors) {
      if (cursor.segment === segment && cursor.offset <= offset && cursor.offset > best.offset) best = cursor;
    }
    return { segment, index, offset: best.offset, position: best.position };
  }

  private remember(partition: Partition, cursor: Cursor): void {
    const cursors = partition.cursors;
    const same = cursors.findIndex((c) => c.segment === cursor.segment && c.offset === cursor.offset);
    if (same >= 0) cursors.splice(same, 1);
    cursors.push(cursor);
    if (cursors.length > CURSORS_PER_PARTITION) cursors.shift();
  }

  waitFor(partitionId: number, offset: number, timeoutMs: number): Promise<boolean> {
    if (this.state !== 'open') return this.whenOpen().then(() => this.waitFor(partitionId, offset, timeoutMs));
    try {
      return this.waitForRecord(this.partition(partitionId), offset, timeoutMs);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  private waitForRecord(partition: Partition, offset: number, timeoutMs: number): Promise<boolean> {
    checkOffset(offset, 'offset');
    if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0)) {
      throw new GpError('GP_INPUT_INVALID', `timeoutMs: expected a number of milliseconds >= 0, got ${String(timeoutMs)}`, { field: 'timeoutMs' });
    }
    if (offset < partition.visibleEnd) return Promise.resolve(true);
    return new Promise<boolean>((resolvePromise) => {
      const waiter: Waiter = {
        offset,
        resolve: resolvePromise,
        timer: setTimeout(() => {
          partition.waiters = partition.waiters.filter((w) => w !== waiter);
          resolvePromise(false);
        }, Math.min(timeoutMs, 2 ** 31 - 1)),
      };
      partition.waiters.push(waiter);
    });
  }

  startOffset(partitionId: number): number {
    return this.startOffsetOf(this.partition(partitionId));
  }

  endOffset(partitionId: number): number {
    return this.partition(partitionId).visibleEnd;
  }

  private startOffsetOf(partition: Partition): number {
    return (partition.segments[0] as Segment).baseOffset;
  }

  // ---- consumers ---------------------------------------------------------------------------

  async commit(consumer: string, partitionId: number, nextOffset: number): Promise<void> {
    if (this.state !== 'open') await this.whenOpen();
    checkConsumerName(consumer, 'consumer');
    const partition = this.partition(partitionId);
    checkOffset(nextOffset, 'nextOffset');
    if (nextOffset > partition.visibleEnd) {
      throw new GpError('GP_INPUT_INVALID', `nextOffset: expected at most the end of partition ${partitionId} (${partition.visibleEnd}), got ${nextOffset}`, {
        field: 'nextOffset',
      });
    }
    await this.consumers.commit(consumer, partitionId, nextOffset);
  }

  committed(consumer: string, partitionId: number): number | undefined {
    checkConsumerName(consumer, 'consumer');
    this.partition(partitionId);
    return this.consumers.get(consumer, partitionId);
  }

  // ---- retention ---------------------------------------------------------------------------

  applyRetention(): Promise<RetentionReport> {
    const run = async (): Promise<RetentionReport> => {
      if (this.state !== 'open') await this.whenOpen();
      const report: RetentionReport = { segmentsRemoved: 0, bytesRemoved: 0, recordsRemoved: 0 };
      for (const partition of this.parts) await this.retainPartition(partition, report);
      return report;
    };
    const result = this.retentionTail.then(run, run);
    this.retentionTail = result.catch(() => undefined);
    return result;
  }

  private async retainPartition(partition: Partition, report: RetentionReport): Promise<void> {
    const { maxBytes, maxAgeMs, keepUncommittedOf } = this.options;
    const now = this.now();
    let bytes = partition.segments.reduce((sum, segment) => sum + segment.size, 0);
    while (partition.segments.length > 1) {
      const oldest = partition.segments[0] as Segment;
      // Only whole segments that will never be written again and whose records are all visible.
      if (!oldest.closed || oldest.nextOffset > partition.visibleEnd) break;
      const empty = oldest.nextOffset === oldest.baseOffset;
      const tooBig = maxBytes !== undefined && bytes > maxBytes;
      const tooOld = maxAgeMs !== undefined && (oldest.lastTimestamp === undefined || oldest.lastTimestamp < now - maxAgeMs);
      if (!empty && !tooBig && !tooOld) break;
      const stillNeeded = keepUncommittedOf.some((consumer) => (this.consumers.get(consumer, partition.id) ?? -1) < oldest.nextOffset);
      if (stillNeeded && !empty) break;
      await this.removeOldestSegment(partition);
      bytes -= oldest.size;
      report.segmentsRemoved++;
      report.bytesRemoved += oldest.size;
      report.recordsRemoved += oldest.nextOffset - oldest.baseOffset;
    }
  }

  dropOldestSegment(partitionId: number): Promise<RetentionReport> {
    const run = async (): Promise<RetentionReport> => {
      if (this.state !== 'open') await this.whenOpen();
      const partition = this.partition(partitionId);
      const report: RetentionReport = { segmentsRemoved: 0, bytesRemoved: 0, recordsRemoved: 0 };
      const oldest = partition.segments[0] as Segment;
      // Never the segment being written, nor one whose records are not all visible yet.
      if (partition.segments.length < 2 || !oldest.closed || oldest.nextOffset > partition.visibleEnd) return report;
      await this.removeOldestSegment(partition);
      report.segmentsRemoved = 1;
      report.bytesRemoved = oldest.size;
      report.recordsRemoved = oldest.nextOffset - oldest.baseOffset;
      return report;
    };
    // Serialized with retention, which removes segments from the same end.
    const result = this.retentionTail.then(run, run);
    this.retentionTail = result.catch(() => undefined);
    return result;
  }

  /** Drops a partition's oldest segment: readers stop finding it at once, its file goes right after. */
  private async removeOldestSegment(partition: Partition): Promise<void> {
    const oldest = partition.segments.shift() as Segment;
    partition.cursors = partition.cursors.filter((cursor) => cursor.segment !== oldest);
    await oldest.markRemoved();
    try {
      await unlink(oldest.path);
    } catch (cause) {
      throw ioError(`cannot remove log segment ${oldest.path}: ${messageOf(cause)}`, { path: oldest.path }, cause);
    }
  }

  // ---- stats and lifecycle -----------------------------------------------------------------

  stats(): LogStats {
    const partitions = this.parts.map((partition) => ({
      partition: partition.id,
      startOffset: this.startOffsetOf(partition),
      endOffset: partition.visibleEnd,
      bytes: partition.segments.reduce((sum, segment) => sum + segment.size, 0),
    }));
    return {
      bytes: partitions.reduce((sum, partition) => sum + partition.bytes, 0),
      segments: this.parts.reduce((sum, partition) => sum + partition.segments.length, 0),
      partitions,
      appendedRecords: this.appendedRecords,
      appendedBatches: this.appendedBatches,
      fsyncs: this.fsyncs,
    };
  }

  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    if (this.opening !== undefined) await this.opening.catch(() => undefined);
    const wasOpen = this.state === 'open';
    this.state = 'closed';
    if (!wasOpen) return;
    if (this.syncTimer !== undefined) clearInterval(this.syncTimer);
    await this.whenIdle();
    await Promise.allSettled([...this.reads]);
    await this.retentionTail;
    await this.consumers.settled();
    const problems: string[] = [];
    for (const partition of this.parts) {
      for (const waiter of partition.waiters) {
        clearTimeout(waiter.timer);
        waiter.resolve(false);
      }
      partition.waiters = [];
      try {
        if (partition.dirty && this.failure === undefined) {
          await partition.handle.sync();
          this.fsyncs++;
          partition.dirty = false;
        }
      } catch (cause) {
        problems.push(messageOf(cause));
      }
      await partition.handle.close().catch((cause: unknown) => problems.push(messageOf(cause)));
      for (const segment of partition.segments) await segment.closeReadHandle();
    }
    await this.unlock?.();
    if (problems.length > 0) throw ioError(`closing log ${this.options.dir}: ${problems.join('; ')}`, { dir: this.options.dir });
  }

  private async whenOpen(): Promise<void> {
    if (this.state === 'closed' || this.closing !== undefined) throw closedError();
    await this.ready();
    if (this.state !== 'open') throw closedError();
  }

  private partition(partitionId: number): Partition {
    if (this.state !== 'open') {
      if (this.state === 'closed') throw closedError();
      throw new GpError('GP_INTERNAL', 'the log is not open yet: await ready() first');
    }
    return this.parts[this.checkPartition(partitionId, 'partition')] as Partition;
  }

  private checkPartition(partition: unknown, field: string): number {
    if (typeof partition !== 'number' || !Number.isInteger(partition) || partition < 0 || partition >= this.partitions) {
      throw new GpError(
        'GP_INPUT_INVALID',
        `${field}: partition ${String(partition)} does not exist (the log has ${this.partitions} partition${this.partitions === 1 ? '' : 's'}: 0..${this.partitions - 1})`,
        { field, partitions: this.partitions },
      );
    }
    return partition;
  }

  private now(): number {
    const now = this.options.clock();
    if (typeof now !== 'number' || !Number.isFinite(now)) throw new GpError('GP_INTERNAL', `the log's clock returned ${String(now)}, not a time in epoch ms`);
    return now;
  }

  // ---- open and recovery -------------------------------------------------------------------

  private async open(): Promise<LogRecovery> {
    const dir = this.options.dir;
    try {
      await mkdir(dir, { recursive: true });
    } catch (cause) {
      throw ioError(`cannot create log directory ${dir}: ${messageOf(cause)}`, { dir }, cause);
    }
    this.unlock = await lockDirectory(dir);
    try {
      await this.checkLayout();
      await this.consumers.load();
      const recovery: LogRecovery = { partitions: [] };
      for (let id = 0; id < this.partitions; id++) recovery.partitions.push(await this.recoverPartition(id));
      if (this.options.fsync === 'interval') {
        this.syncTimer = setInterval(() => {
          if (!this.parts.some((partition) => partition.dirty)) return;
          this.syncDue = true;
          this.kickWriter();
        }, this.options.fsyncIntervalMs);
        this.syncTimer.unref();
      }
      this.state = 'open';
      return recovery;
    } catch (cause) {
      for (const partition of this.parts) await partition.handle.close().catch(() => undefined);
      this.parts = [];
      await this.unlock();
      this.unlock = undefined;
      if (cause instanceof GpError) throw cause;
      throw ioError(`cannot open log ${dir}: ${messageOf(cause)}`, { dir }, cause);
    }
  }

  /** `log.json` records the format and partition count; fewer partitions than before would orphan records. */
  private async checkLayout(): Promise<void> {
    const dir = this.options.dir;
    const path = join(dir, META_FILE);
    let previous = 0;
    const text = await readFile(path, 'utf8').catch((cause: NodeJS.ErrnoException) => {
      if (cause.code === 'ENOENT') return undefined;
      throw cause;
    });
    if (text !== undefined) {
      const meta = JSON.parse(text) as { format?: unknown; partitions?: unknown };
      if (meta.format !== FORMAT) throw ioError(`log ${dir} has format ${String(meta.format)}; this build reads format ${FORMAT}`, { dir });
      previous = Number(meta.partitions);
    }
    for (const name of await readdir(dir)) {
      const match = /^p-(\d+)$/.exec(name);
      if (match !== null) previous = Math.max(previous, Number(match[1]) + 1);
    }
    if (previous > this.partitions) {
      throw new GpError(
        'GP_CONFIG_INVALID',
        `log partitions: the log in ${dir} has ${previous} partitions, the options say ${this.partitions}; partitions can be added, never removed`,
        { field: 'partitions', dir },
      );
    }
    if (previous !== this.partitions || text === undefined) {
      const temporary = `${path}.tmp`;
      await writeFile(temporary, `${JSON.stringify({ format: FORMAT, partitions: this.partitions })}\n`);
      await rename(temporary, path);
      await fsyncDirectory(dir);
    }
  }

  private async recoverPartition(id: number): Promise<LogRecovery['partitions'][number]> {
    const dir = join(this.options.dir, `p-${id}`);
    await mkdir(dir, { recursive: true });
    const names = (await readdir(dir)).filter((name) => SEGMENT_FILE_PATTERN.test(name)).sort();
    const segments: Segment[] = [];
    const problems: string[] = [];
    const unreadable: Array<{ fromOffset: number; toOffset: number; reason: string }> = [];
    let truncatedBytes = 0;
    for (let index = 0; index < names.length; index++) {
      const name = names[index] as string;
      const segment = new Segment(dir, Number(name.slice(0, 20)));
      const previous = segments[segments.length - 1];
      if (previous !== undefined && segment.baseOffset < previous.nextOffset) {
        throw ioError(`log segment ${join(dir, name)} starts at offset ${segment.baseOffset}, inside the previous segment (which ends at ${previous.nextOffset})`, {
          path: join(dir, name),
        });
      }
      const scan = await scanSegment(segment);
      segment.size = scan.validBytes;
      segment.nextOffset = scan.nextOffset;
      segment.lastTimestamp = scan.lastTimestamp;
      const isTail = index === names.length - 1;
      if (!isTail) segment.closed = true;
      if (scan.problem !== undefined) {
        const where = `${scan.problem.reason} at byte ${scan.problem.atByte} of ${name}`;
        if (isTail) {
          const handle = await open(segment.path, 'r+');
          try {
            await handle.truncate(scan.validBytes);
            await handle.sync();
          } finally {
            await handle.close();
          }
          truncatedBytes = scan.fileBytes - scan.validBytes;
          problems.push(`${where}: cut ${truncatedBytes} bytes`);
        } else {
          const toOffset = Number((names[index + 1] as string).slice(0, 20));
          const reason = `${where} (not the last segment: left in place; offsets ${scan.nextOffset}..${toOffset - 1} are skipped by reads)`;
          unreadable.push({ fromOffset: scan.nextOffset, toOffset, reason });
          problems.push(reason);
        }
      }
      segments.push(segment);
    }
    if (segments.length === 0) segments.push(await this.createSegment(dir, 0));
    // A consumer that committed past the end saw records that a machine crash then took (possible
    // with fsync 'interval' or 'none'): never hand out those offsets again.
    let tail = segments[segments.length - 1] as Segment;
    const ahead = this.consumers.highest(id);
    if (ahead !== undefined && ahead.next > tail.nextOffset) {
      const reason = `consumer ${ahead.consumer} had committed offset ${ahead.next} but the partition ends at ${tail.nextOffset} (records lost in a machine crash); offsets ${tail.nextOffset}..${ahead.next - 1} are skipped`;
      unreadable.push({ fromOffset: tail.nextOffset, toOffset: ahead.next, reason });
      problems.push(reason);
      if (tail.size === 0 && segments.length > 1) {
        segments.pop();
        await unlink(tail.path);
      } else tail.closed = true;
      tail = await this.createSegment(dir, ahead.next);
      segments.push(tail);
    }
    const handle = await open(tail.path, 'r+');
    this.parts.push({
      id,
      dir,
      segments,
      handle,
      writeSize: tail.size,
      writeNext: tail.nextOffset,
      writeTimestamp: tail.lastTimestamp,
      visibleEnd: tail.nextOffset,
      dirty: false,
      waiters: [],
      cursors: [],
    });
    const entry: LogRecovery['partitions'][number] = {
      partition: id,
      startOffset: (segments[0] as Segment).baseOffset,
      endOffset: tail.nextOffset,
      truncatedBytes,
      reason: problems.length === 0 ? undefined : problems.join('; '),
    };
    if (unreadable.length > 0) entry.unreadable = unreadable;
    return entry;
  }

  private async createSegment(dir: string, baseOffset: number): Promise<Segment> {
    const segment = new Segment(dir, baseOffset);
    const handle = await open(segment.path, 'wx');
    await handle.sync();
    await handle.close();
    await fsyncDirectory(dir);
    return segment;
  }
}

function closedError(): GpError {
  return new GpError('GP_INTERNAL', 'the log is closed: create a new one to keep using the directory');
}

function checkOffset(offset: unknown, field: string): void {
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) {
    throw new GpError('GP_INPUT_INVALID', `${field}: expected an offset (an integer >= 0), got ${String(offset)}`, { field });
  }
}

function checkLimit(value: unknown, fallback: number, field: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new GpError('GP_INPUT_INVALID', `${field}: expected a positive integer, got ${describe(value)}`, { field });
  }
  return value;
}

function resolveOptions(options: FileLogOptions): ResolvedOptions {
  const invalid = (field: string, expected: string, got: unknown): GpError =>
    new GpError('GP_CONFIG_INVALID', `log ${field}: expected ${expected}, got ${describe(got)}`, { field });
  if (typeof options !== 'object' || options === null) throw invalid('options', 'an object with at least a dir', options);
  for (const name of Object.keys(options)) {
    if (!OPTION_NAMES.includes(name)) throw invalid(name, `one of the options ${OPTION_NAMES.join(', ')}`, `unknown option "${name}"`);
  }
  if (typeof options.dir !== 'string' || options.dir.trim() === '') throw invalid('dir', 'a directory path', options.dir);
  const partitions = options.partitions ?? DEFAULTS.partitions;
  if (!Number.isInteger(partitions) || partitions < 1 || partitions > MAX_PARTITIONS) throw invalid('partitions', `an integer 1..${MAX_PARTITIONS}`, partitions);
  const fsync = options.fsync ?? DEFAULTS.fsync;
  if (fsync !== 'batch' && fsync !== 'interval' && fsync !== 'none') throw invalid('fsync', '"batch", "interval" or "none"', fsync);
  const fsyncIntervalMs = options.fsyncIntervalMs ?? DEFAULTS.fsyncIntervalMs;
  if (typeof fsyncIntervalMs !== 'number' || !Number.isInteger(fsyncIntervalMs) || fsyncIntervalMs < 1 || fsyncIntervalMs > 2 ** 31 - 1) {
    throw invalid('fsyncIntervalMs', 'a positive integer number of milliseconds', fsyncIntervalMs);
  }
  const segmentBytes = options.segmentBytes ?? DEFAULTS.segmentBytes;
  if (!Number.isInteger(segmentBytes) || segmentBytes < MIN_SEGMENT_BYTES || segmentBytes > MAX_SEGMENT_BYTES) {
    throw invalid('segmentBytes', `an integer ${MIN_SEGMENT_BYTES}..${MAX_SEGMENT_BYTES}`, segmentBytes);
  }
  const retention = options.retention ?? {};
  if (typeof retention !== 'object' || retention === null) throw invalid('retention', 'an object', retention);
  for (const name of Object.keys(retention)) {
    if (!RETENTION_NAMES.includes(name)) throw invalid(`retention.${name}`, `one of ${RETENTION_NAMES.join(', ')}`, `unknown option "${name}"`);
  }
  const { maxBytes, maxAgeMs } = retention;
  const keepUncommittedOf: unknown = retention.keepUncommittedOf ?? [];
  if (maxBytes !== undefined && (typeof maxBytes !== 'number' || !Number.isSafeInteger(maxBytes) || maxBytes < 0)) {
    throw invalid('retention.maxBytes', 'an integer number of bytes >= 0', maxBytes);
  }
  if (maxAgeMs !== undefined && (typeof maxAgeMs !== 'number' || !Number.isFinite(maxAgeMs) || maxAgeMs < 0)) {
    throw invalid('retention.maxAgeMs', 'a number of milliseconds >= 0', maxAgeMs);
  }
  if (!Array.isArray(keepUncommittedOf)) throw invalid('retention.keepUncommittedOf', 'a list of consumer names', keepUncommittedOf);
  keepUncommittedOf.forEach((consumer, index) => {
    try {
      checkConsumerName(consumer, `retention.keepUncommittedOf[${index}]`);
    } catch {
      throw invalid(`retention.keepUncommittedOf[${index}]`, 'a consumer name of letters, digits and ._:@-', consumer);
    }
  });
  const clock = options.clock ?? Date.now;
  if (typeof clock !== 'function') throw invalid('clock', 'a function returning epoch ms', clock);
  return {
    dir: resolve(options.dir),
    partitions,
    fsync,
    fsyncIntervalMs,
    segmentBytes,
    maxBytes,
    maxAgeMs,
    keepUncommittedOf: [...(keepUncommittedOf as string[])],
    clock,
  };
}

function describe(value: unknown): string {
  if (typeof value === 'string') return value.startsWith('unknown option') ? value : JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  return JSON.stringify(value) ?? String(value);
}
