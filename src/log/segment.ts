import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { parseFrame } from './record-format.js';

/** A sparse index entry is kept every this many bytes of a segment, so a lookup scans at most this much. */
export const INDEX_INTERVAL_BYTES = 4096;
const SCAN_CHUNK_BYTES = 4 * 1024 * 1024;

/** `00000000000000001234.log`: the offset of the segment's first record, 20 digits. */
export function segmentFileName(baseOffset: number): string {
  return `${String(baseOffset).padStart(20, '0')}.log`;
}

export const SEGMENT_FILE_PATTERN = /^(\d{20})\.log$/;

/**
 * One segment file of a partition and what is known about it in memory. `size`, `nextOffset`
 * and `lastTimestamp` describe the records readers may see (the writer advances them only
 * when a write is acknowledged); bytes beyond `size` may be in flight.
 */
export class Segment {
  readonly path: string;
  readonly name: string;
  size = 0;
  /** Offset after the segment's last readable record (`baseOffset` when it has none). */
  nextOffset: number;
  /** Append time of the newest record, undefined while the segment is empty. */
  lastTimestamp: number | undefined;
  /** True once a newer segment follows and this one will never be written again. */
  closed = false;
  removed = false;
  // Sparse index: record offsets and their byte positions, ascending.
  private readonly indexOffsets: number[] = [];
  private readonly indexPositions: number[] = [];
  private lastIndexedPosition = -INDEX_INTERVAL_BYTES;
  private readHandle: Promise<FileHandle> | undefined;
  private readers = 0;

  constructor(
    readonly partitionDir: string,
    readonly baseOffset: number,
  ) {
    this.name = segmentFileName(baseOffset);
    this.path = join(partitionDir, this.name);
    this.nextOffset = baseOffset;
  }

  /** Notes that the record `offset` starts at byte `position` (in file order). */
  noteRecord(offset: number, position: number): void {
    if (position - this.lastIndexedPosition < INDEX_INTERVAL_BYTES) return;
    this.indexOffsets.push(offset);
    this.indexPositions.push(position);
    this.lastIndexedPosition = position;
  }

  /** Drops index entries from `offset` on (their records were cut off after a failed write). */
  forgetFrom(offset: number): void {
    while (this.indexOffsets.length > 0 && (this.indexOffsets[this.indexOffsets.length - 1] as number) >= offset) {
      this.indexOffsets.pop();
      this.indexPositions.pop();
    }
    this.lastIndexedPosition = this.indexPositions[this.indexPositions.length - 1] ?? -INDEX_INTERVAL_BYTES;
  }

  /** The indexed record at or before `offset`: where a scan for `offset` starts. */
  lookup(offset: number): { offset: number; position: number } {
    let low = 0;
    let high = this.indexOffsets.length - 1;
    let found = -1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      if ((this.indexOffsets[middle] as number) <= offset) {
        found = middle;
        low = middle + 1;
      } else high = middle - 1;
    }
    if (found < 0) return { offset: this.baseOffset, position: 0 };
    return { offset: this.indexOffsets[found] as number, position: this.indexPositions[found] as number };
  }

  /**
   * Reads `length` bytes at `position`, through one read handle shared by all readers and
   * closed when the segment is removed and its last reader is done. Undefined when the
   * segment was removed (by retention) before the read began.
   */
  async read(position: number, length: number): Promise<Buffer | undefined> {
    if (this.removed) return undefined;
    this.readers++;
    try {
      if (this.readHandle === undefined) {
        const opening = open(this.path, 'r');
        this.readHandle = opening;
        // A failed open is not kept: the next read tries again.
        opening.catch(() => {
          if (this.readHandle === opening) this.readHandle = undefined;
        });
      }
      const handle = await this.readHandle;
      const buffer = Buffer.allocUnsafe(length);
      let filled = 0;
      while (filled < length) {
        const { bytesRead } = await handle.read(buffer, filled, length - filled, position + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      return filled === length ? buffer : buffer.subarray(0, filled);
    } finally {
      this.readers--;
      if (this.removed && this.readers === 0) await this.closeReadHandle();
    }
  }

  /** Marks the segment removed; its read handle closes now or when the last reader finishes. */
  async markRemoved(): Promise<void> {
    this.removed = true;
    if (this.readers === 0) await this.closeReadHandle();
  }

  async closeReadHandle(): Promise<void> {
    const pending = this.readHandle;
    this.readHandle = undefined;
    if (pending === undefined) return;
    try {
      await (await pending).close();
    } catch {
      // An open that failed has nothing to close.
    }
  }
}

export interface ScanResult {
  /** Bytes of valid records from the start of the file. */
  validBytes: number;
  fileBytes: number;
  nextOffset: number;
  lastTimestamp: number | undefined;
  /** The first problem found, if any: the segment's valid records end at `atByte`. */
  problem: { atByte: number; reason: string } | undefined;
}

/**
 * Reads a segment file from the start, verifying every record's checksum and that offsets run
 * on from the base offset one by one, and fills the segment's sparse index. Stops at the first
 * problem (a torn or corrupt record); everything before it is valid.
 */
export async function scanSegment(segment: Segment): Promise<ScanResult> {
  const handle = await open(segment.path, 'r');
  try {
    const fileBytes = (await handle.stat()).size;
    let buffer = Buffer.allocUnsafe(Math.min(SCAN_CHUNK_BYTES, Math.max(fileBytes, 1)));
    let chunkStart = 0;
    let expected = segment.baseOffset;
    let lastTimestamp: number | undefined;
    let position = 0;
    while (position < fileBytes) {
      // Refill so that the chunk starts at `position`.
      const want = Math.min(buffer.length, fileBytes - position);
      const { bytesRead } = await handle.read(buffer, 0, want, position);
      chunkStart = position;
      const chunkEnd = bytesRead;
      let cursor = 0;
      while (cursor < chunkEnd) {
        const frame = parseFrame(buffer, cursor, chunkEnd);
        if (!frame.ok) {
          const atByte = chunkStart + cursor;
          const endOfFile = chunkStart + chunkEnd >= fileBytes;
          if (frame.problem === 'incomplete' && !endOfFile) {
            // The frame continues past this chunk: read on from its start, with room for it.
            if (frame.needed !== undefined && frame.needed > buffer.length) buffer = Buffer.allocUnsafe(frame.needed);
            break;
          }
          return { validBytes: atByte, fileBytes, nextOffset: expected, lastTimestamp, problem: { atByte, reason: frame.reason } };
        }
        if (frame.offset !== expected) {
          const atByte = chunkStart + cursor;
          return {
            validBytes: atByte,
            fileBytes,
            nextOffset: expected,
            lastTimestamp,
            problem: { atByte, reason: `record with offset ${frame.offset} where ${expected} was expected` },
          };
        }
        segment.noteRecord(expected, chunkStart + cursor);
        lastTimestamp = frame.timestamp;
        expected++;
        cursor += frame.length;
      }
      position = chunkStart + cursor;
      if (cursor === 0 && bytesRead === 0) break;
    }
    return { validBytes: position, fileBytes, nextOffset: expected, lastTimestamp, problem: undefined };
  } finally {
    await handle.close();
  }
}
