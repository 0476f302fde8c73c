import * as zlib from 'node:zlib';

/*
 * One record on disk (little-endian), a "frame":
 *
 *   u32  body length (bytes after the 8-byte frame header)
 *   u32  CRC-32 (IEEE, as zlib) of the body
 *   body:
 *     u8   format version (1)
 *     u8   flags: bit 0 = the record has a key
 *     u64  offset
 *     f64  timestamp (epoch ms, the append's wall time)
 *     u32  key length in bytes (0 when there is no key)
 *     ...  key (UTF-8), then value (the rest of the body)
 *
 * The offset is inside the checksummed body, so a frame copied to the wrong place, or a stale
 * frame left behind a truncation, is caught as well as a torn or flipped one.
 */
export const FRAME_HEADER_BYTES = 8;
const BODY_FIXED_BYTES = 22;
/** Bytes a record takes beyond its key and value. */
export const RECORD_OVERHEAD_BYTES = FRAME_HEADER_BYTES + BODY_FIXED_BYTES;
/** Largest key + value accepted by `append`; a larger length read from a file is corruption. */
export const MAX_RECORD_BYTES = 16 * 1024 * 1024;
const FORMAT_VERSION = 1;
const FLAG_HAS_KEY = 1;
const TWO_TO_32 = 2 ** 32;

type Crc32 = (data: Uint8Array) => number;

/** CRC-32 as zlib computes it: node:zlib's native one when present (Node >= 20.15), else a table. */
export const crc32: Crc32 = nativeCrc32() ?? tableCrc32();

function nativeCrc32(): Crc32 | undefined {
  const candidate = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;
  return typeof candidate === 'function' ? (data) => candidate(data) : undefined;
}

/** The bitwise-reflected CRC-32 of IEEE 802.3 (polynomial 0xEDB88320), one table lookup per byte. */
export function tableCrc32(): Crc32 {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return (data) => {
    let crc = 0xffffffff;
    for (let i = 0; i < data.length; i++) crc = (table[(crc ^ (data[i] as number)) & 0xff] as number) ^ (crc >>> 8);
    return (crc ^ 0xffffffff) >>> 0;
  };
}

/** A record ready to be framed: the key already in UTF-8, the value as text or bytes. */
export interface EncodableRecord {
  key: Buffer | undefined;
  value: string | Uint8Array;
  valueBytes: number;
}

export function frameBytes(record: EncodableRecord): number {
  return RECORD_OVERHEAD_BYTES + (record.key?.length ?? 0) + record.valueBytes;
}

/**
 * Writes the frame of `record` at `position` with offset, timestamp and checksum left blank
 * (`sealFrame` fills them once the writer has assigned the offset). Returns the frame's end.
 */
export function writeFrame(buffer: Buffer, position: number, record: EncodableRecord): number {
  const keyBytes = record.key?.length ?? 0;
  const bodyBytes = BODY_FIXED_BYTES + keyBytes + record.valueBytes;
  buffer.writeUInt32LE(bodyBytes, position);
  const body = position + FRAME_HEADER_BYTES;
  buffer[body] = FORMAT_VERSION;
  buffer[body + 1] = record.key === undefined ? 0 : FLAG_HAS_KEY;
  buffer.writeUInt32LE(keyBytes, body + 18);
  let cursor = body + BODY_FIXED_BYTES;
  if (record.key !== undefined) cursor += record.key.copy(buffer, cursor);
  if (typeof record.value === 'string') cursor += buffer.write(record.value, cursor, 'utf8');
  else {
    buffer.set(record.value, cursor);
    cursor += record.value.length;
  }
  return cursor;
}

/** Stamps offset and timestamp into the frame at `position` and computes its checksum. Returns the frame's length. */
export function sealFrame(buffer: Buffer, position: number, offset: number, timestamp: number): number {
  const bodyBytes = buffer.readUInt32LE(position);
  const body = position + FRAME_HEADER_BYTES;
  buffer.writeUInt32LE(offset % TWO_TO_32, body + 2);
  buffer.writeUInt32LE(Math.floor(offset / TWO_TO_32), body + 6);
  buffer.writeDoubleLE(timestamp, body + 10);
  buffer.writeUInt32LE(crc32(buffer.subarray(body, body + bodyBytes)), position + 4);
  return FRAME_HEADER_BYTES + bodyBytes;
}

export interface FrameOk {
  ok: true;
  /** Whole frame length, header included. */
  length: number;
  offset: number;
  timestamp: number;
  /** Key start/end and value start/end, relative to the buffer given to `parseFrame`. */
  keyStart: number;
  keyEnd: number;
  hasKey: boolean;
  valueEnd: number;
}

export interface FrameBad {
  ok: false;
  /** 'incomplete': the frame runs past the available bytes (a torn write or a short read); 'corrupt': it can never be valid. */
  problem: 'incomplete' | 'corrupt';
  /** When incomplete: the whole frame's length, if the header could be read. */
  needed: number | undefined;
  reason: string;
}

/**
 * Parses the frame at `position` of `buffer` (bytes up to `end` are available), verifying its
 * checksum. `verify: false` skips the checksum (never used on data handed to a caller).
 */
export function parseFrame(buffer: Buffer, position: number, end: number, verify = true): FrameOk | FrameBad {
  const available = end - position;
  if (available < FRAME_HEADER_BYTES) {
    return { ok: false, problem: 'incomplete', needed: undefined, reason: `incomplete record header (${available} of ${FRAME_HEADER_BYTES} bytes)` };
  }
  const bodyBytes = buffer.readUInt32LE(position);
  if (bodyBytes < BODY_FIXED_BYTES || bodyBytes > BODY_FIXED_BYTES + MAX_RECORD_BYTES) {
    return { ok: false, problem: 'corrupt', needed: undefined, reason: `invalid record length ${bodyBytes}` };
  }
  const length = FRAME_HEADER_BYTES + bodyBytes;
  if (available < length) {
    return { ok: false, problem: 'incomplete', needed: length, reason: `incomplete record (${available} of ${length} bytes)` };
  }
  const body = position + FRAME_HEADER_BYTES;
  if (verify && crc32(buffer.subarray(body, body + bodyBytes)) !== buffer.readUInt32LE(position + 4)) {
    return { ok: false, problem: 'corrupt', needed: undefined, reason: 'checksum mismatch' };
  }
  if (buffer[body] !== FORMAT_VERSION) {
    return { ok: false, problem: 'corrupt', needed: undefined, reason: `unknown record format ${String(buffer[body])}` };
  }
  const keyBytes = buffer.readUInt32LE(body + 18);
  const keyStart = body + BODY_FIXED_BYTES;
  if (keyBytes > bodyBytes - BODY_FIXED_BYTES) {
    return { ok: false, problem: 'corrupt', needed: undefined, reason: `key length ${keyBytes} exceeds the record` };
  }
  return {
    ok: true,
    length,
    offset: buffer.readUInt32LE(body + 2) + buffer.readUInt32LE(body + 6) * TWO_TO_32,
    timestamp: buffer.readDoubleLE(body + 10),
    keyStart,
    keyEnd: keyStart + keyBytes,
    hasKey: ((buffer[body + 1] as number) & FLAG_HAS_KEY) !== 0,
    valueEnd: position + length,
  };
}
