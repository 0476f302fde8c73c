import { RECORD_OVERHEAD_BYTES } from './record-format.js';

/**
 * The Log: where accepted readings are kept durably before (and while) the engine processes them.
 * Ingest appends and acknowledges its caller only after `append` resolves; the engine reads from
 * an offset per partition and, after a restart, resumes from the offsets of its last checkpoint.
 * The embedded implementation (`createFileLog`) keeps segment files in a directory; the Kafka one
 * (issue 8) keeps topics. The edge agent uses the same component as its spool.
 *
 * Offsets are per partition, start at 0, and grow by one per record, forever (retention removes
 * old records but never renumbers). A record is identified by (partition, offset).
 *
 * Lifecycle: create → `ready()` (recovers the files, reporting a torn tail) → append/read → `close()`.
 * `close()` is idempotent, waits for appends in flight, syncs what is pending and releases file
 * handles. Async calls made before `ready()` open the log first; `startOffset`, `endOffset` and
 * `committed` need `ready()` to have resolved.
 *
 * Visibility: readers (`read`, `waitFor`, `endOffset`) see a record once its append is
 * acknowledged, i.e. durable under the implementation's fsync policy. With the file log's
 * default `fsync: 'batch'` a consumer therefore never processes a record that a crash could
 * take back; with 'interval' or 'none' a machine crash can (see `FsyncPolicy`).
 *
 * Errors are `GpError`s: bad arguments (a partition that does not exist, a negative offset)
 * are user errors (GP_INPUT_INVALID); failing files or servers are external.
 *
 * Deliberately left out: transactions across partitions, compaction by key, and consumer-group
 * membership (a consumer is a name with committed offsets; who runs it is the caller's business).
 *
 * @example
 * const log = createFileLog({ dir: './data/log', partitions: 4 });
 * const recovery = await log.ready();
 * const { positions } = await log.append([{ key: 'm-1', value: '{"meterId":"m-1",...}' }]);
 * const batch = await log.read(0, 0, { maxRecords: 1000 });
 * await log.commit('engine', 0, batch.nextOffset);
 * await log.close();
 */
export interface Log {
  readonly kind: string;
  readonly partitions: number;
  ready(): Promise<LogRecovery>;
  /**
   * Appends a batch. A record goes to `partition` when given, else to the partition of its `key`
   * (`partitionOfKey`), else to partition 0. Resolves once the batch is durable under the fsync
   * policy, with each record's (partition, offset) in input order.
   */
  append(records: readonly AppendRecord[]): Promise<AppendResult>;
  /**
   * Records of one partition from `offset` on, in offset order (at most `maxRecords`, default
   * 1000, and about `maxBytes`, default 1 MiB — at least one record when there is one). An offset
   * below the log start begins at the log start; at or past the end gives no records and
   * `nextOffset` = `offset`. Offsets may have gaps only where recovery reported records as
   * unreadable (`LogRecovery`).
   */
  read(partition: number, offset: number, limits?: ReadLimits): Promise<ReadBatch>;
  /**
   * Resolves true when the partition has a record at or after `offset` (at once if it has one
   * already; otherwise woken by the append that adds it, no polling), or false after
   * `timeoutMs` or when the log closes.
   */
  waitFor(partition: number, offset: number, timeoutMs: number): Promise<boolean>;
  /** Offset of the oldest retained record of a partition. */
  startOffset(partition: number): number;
  /** Offset the next appended record of the partition will get (while an append is in flight: the end of the acknowledged records). */
  endOffset(partition: number): number;
  /**
   * Stores a consumer's next offset for a partition, durably, before resolving. A consumer is a
   * name (letters, digits, `._:@-`); `nextOffset` may not exceed `endOffset(partition)`.
   */
  commit(consumer: string, partition: number, nextOffset: number): Promise<void>;
  /** The consumer's committed next offset (from memory), or undefined when it never committed. */
  committed(consumer: string, partition: number): number | undefined;
  /**
   * Removes whole segments that are older than the age limit or beyond the size limit and, when
   * `keepUncommittedOf` names consumers, only those all of them have committed past.
   */
  applyRetention(): Promise<RetentionReport>;
  /**
   * Removes the partition's oldest segment at once, whatever consumers have committed — for a
   * spool whose full policy is to drop the oldest data (the edge agent's `drop-oldest`). Only a
   * closed segment goes (never the one being written); resolves with what went (all zeros when
   * the partition has nothing but its open segment). Optional: the file log has it, Kafka does not.
   */
  dropOldestSegment?(partition: number): Promise<RetentionReport>;
  stats(): LogStats;
  close(): Promise<void>;
}

/** Bytes a record of this key and value takes in a file-log segment (frame header and fixed fields included). */
export function recordBytes(key: string | undefined, value: string | Uint8Array): number {
  const keyBytes = key === undefined ? 0 : Buffer.byteLength(key, 'utf8');
  return RECORD_OVERHEAD_BYTES + keyBytes + (typeof value === 'string' ? Buffer.byteLength(value, 'utf8') : value.length);
}

export interface AppendRecord {
  key?: string | undefined;
  partition?: number | undefined;
  /** The payload: a reading as JSON text, or bytes. */
  value: string | Uint8Array;
}

export interface AppendResult {
  /** One per appended record, in input order. */
  positions: Array<{ partition: number; offset: number }>;
  /** Wall-clock time (epoch ms) stamped on every record of the batch: its arrival time. */
  appendedAt: number;
}

export interface LogRecord {
  partition: number;
  offset: number;
  /** Arrival (append) time, epoch ms. */
  timestamp: number;
  key: string | undefined;
  value: Uint8Array;
}

export interface ReadLimits {
  maxRecords?: number;
  maxBytes?: number;
}

export interface ReadBatch {
  records: LogRecord[];
  /** Offset to read from next. */
  nextOffset: number;
}

/** What `ready()` found: torn or corrupt tails are truncated and reported, never silently kept or dropped. */
export interface LogRecovery {
  partitions: Array<{
    partition: number;
    startOffset: number;
    endOffset: number;
    /** Bytes cut from the end of the last segment (a torn write from a crash). */
    truncatedBytes: number;
    /** Why, e.g. "checksum mismatch at byte 1048123 of 00000000000000000000.log"; every problem found, joined by "; ". */
    reason: string | undefined;
    /**
     * Offset ranges [fromOffset, toOffset) that reads skip: records after corruption inside an
     * older segment (which is left in place, not cut), or offsets a consumer had committed past
     * that a machine crash took back (they are never handed out again).
     */
    unreadable?: Array<{ fromOffset: number; toOffset: number; reason: string }>;
  }>;
}

/** What one `applyRetention()` call removed, over all partitions. */
export interface RetentionReport {
  segmentsRemoved: number;
  bytesRemoved: number;
  recordsRemoved: number;
}

/** Sizes and counters since the log was opened (appendedRecords, appendedBatches, fsyncs). */
export interface LogStats {
  bytes: number;
  segments: number;
  partitions: Array<{ partition: number; startOffset: number; endOffset: number; bytes: number }>;
  appendedRecords: number;
  appendedBatches: number;
  fsyncs: number;
}
