import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { createGunzip, type Gunzip } from 'node:zlib';
import { ApiError, describeGot, invalidInput, invalidInputDescribed } from './errors.js';
import type { IngestRejection } from './platform.js';

/** A request body of readings, split into items, before the platform sees them. */
export interface IngestBody {
  /** Parsed items, in body order. */
  items: unknown[];
  /** NDJSON: `items[i]` came from line `positions[i]` (0-based); undefined for a JSON body (index = position). */
  positions: number[] | undefined;
  /** NDJSON lines that are not JSON, with their line index (line number − 1). */
  invalid: IngestRejection[];
  /** Items in the body, parseable or not: what the batch limit and the rate limit count. */
  count: number;
}

export interface BodyLimits {
  /** Bytes on the wire (compressed size). */
  bodyBytes: number;
  /** Bytes after gunzip: the guard against gzip bombs. */
  decompressedBytes: number;
  batchItems: number;
}

export const JSON_TYPES = ['application/json'];
export const NDJSON_TYPES = ['application/x-ndjson', 'application/ndjson', 'application/jsonl', 'application/jsonlines', 'application/x-jsonlines'];
const BODY_EXPECTED = 'a JSON object, a JSON array of objects, or NDJSON (Content-Type: application/x-ndjson)';

/** Which parser a Content-Type asks for; a 415 `ApiError` when it is none we read. */
export function bodyFormat(contentType: string | undefined): 'json' | 'ndjson' {
  const [head = '', ...parameters] = (contentType ?? '').split(';');
  const type = head.trim().toLowerCase();
  // Parameters (charset=utf-8) must be well-formed `name=value` pairs: a mangled header is refused, not guessed at.
  const wellFormed = parameters.every((p) => /^\s*[\w.+-]+=("[^"]*"|[\w.+-]+)\s*$/.test(p));
  if (wellFormed && (JSON_TYPES.includes(type) || /^application\/[\w.-]+\+json$/.test(type))) return 'json';
  if (wellFormed && NDJSON_TYPES.includes(type)) return 'ndjson';
  const got = contentType === undefined || contentType.trim() === '' ? 'none' : describeGot(contentType);
  throw new ApiError(415, 'GP_UNSUPPORTED_MEDIA_TYPE', `Content-Type: expected application/json or application/x-ndjson, got ${got}`, {
    field: 'Content-Type',
    expected: 'application/json or application/x-ndjson',
    got,
  });
}

function encodingOf(headers: IncomingHttpHeaders): 'identity' | 'gzip' {
  const value = (headers['content-encoding'] ?? '').trim().toLowerCase();
  if (value === '' || value === 'identity') return 'identity';
  if (value === 'gzip' || value === 'x-gzip') return 'gzip';
  const got = describeGot(value);
  throw new ApiError(415, 'GP_UNSUPPORTED_MEDIA_TYPE', `Content-Encoding: expected gzip or none, got ${got}`, {
    field: 'Content-Encoding',
    expected: 'gzip or none',
    got,
  });
}

function tooLarge(what: string, limit: number): ApiError {
  return new ApiError(413, 'GP_PAYLOAD_TOO_LARGE', `${what}: larger than the limit of ${limit} bytes`, {
    field: 'body',
    expected: `at most ${limit} bytes`,
    got: 'more',
    headers: { connection: 'close' },
  });
}

function tooManyItems(limit: number, got: string): ApiError {
  return new ApiError(413, 'GP_PAYLOAD_TOO_LARGE', `body: more than the limit of ${limit} readings in one request`, {
    field: 'body',
    expected: `at most ${limit} readings`,
    got,
  });
}

/**
 * Checks the headers (Content-Type, Content-Encoding, Content-Length) before anything is read,
 * then reads the body while counting bytes, both as sent and after gunzip, and stops at the
 * first limit passed — an oversize body is never read whole.
 */
export async function readIngestBody(payload: Readable, headers: IncomingHttpHeaders, limits: BodyLimits): Promise<IngestBody> {
  const format = bodyFormat(headers['content-type']);
  const encoding = encodingOf(headers);
  const declared = headers['content-length'];
  if (declared !== undefined && Number(declared) > limits.bodyBytes) throw tooLarge('body (Content-Length)', limits.bodyBytes);
  const bytes = await readBytes(payload, encoding, limits);
  const text = bytes.toString('utf8');
  return format === 'json' ? parseJson(text, limits.batchItems) : parseNdjson(text, limits.batchItems);
}

function readBytes(payload: Readable, encoding: 'identity' | 'gzip', limits: BodyLimits): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let decoded = 0;
    let settled = false;
    const gunzip: Gunzip | undefined = encoding === 'gzip' ? createGunzip() : undefined;

    const cleanup = (): void => {
      payload.removeListener('data', onData);
      payload.removeListener('end', onEnd);
      payload.removeListener('error', onError);
      if (gunzip !== undefined) {
        gunzip.removeAllListeners();
        gunzip.on('error', () => undefined);
        gunzip.destroy();
      }
    };
    const fail = (error: unknown): void => {
      if (settled) return;
      settled = true;
      cleanup();
      // Stop reading, but do not destroy the socket: the error response still has to go out.
      payload.pause();
      reject(error instanceof Error ? error : new Error(String(error)));
    };
    const finish = (): void => {
      if (settled) return;
      settled = true;
      cleanup();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
    };
    function onData(chunk: Buffer): void {
      if (settled) return;
      received += chunk.length;
      if (received > limits.bodyBytes) return fail(tooLarge('body', limits.bodyBytes));
      if (gunzip === undefined) {
        chunks.push(chunk);
        return;
      }
      if (!gunzip.write(chunk)) {
        payload.pause();
        gunzip.once('drain', () => {
          if (!settled) payload.resume();
        });
      }
    }
    function onEnd(): void {
      if (gunzip === undefined) finish();
      else gunzip.end();
    }
    function onError(error: Error): void {
      fail(invalidInputDescribed('body', 'a complete request body', `a broken upload (${error.message})`));
    }
    if (gunzip !== undefined) {
      gunzip.on('data', (chunk: Buffer) => {
        if (settled) return;
        decoded += chunk.length;
        if (decoded > limits.decompressedBytes) return fail(tooLarge('body after gunzip', limits.decompressedBytes));
        chunks.push(chunk);
      });
      gunzip.on('end', finish);
      gunzip.on('error', (error: Error) => fail(invalidInputDescribed('body', 'gzip data (Content-Encoding: gzip)', `data that does not gunzip (${error.message})`)));
    }
    payload.on('data', onData);
    payload.on('end', onEnd);
    payload.on('error', onError);
    payload.resume();
  });
}

function parseJson(text: string, batchItems: number): IngestBody {
  if (text.trim() === '') throw invalidInputDescribed('body', BODY_EXPECTED, 'an empty body');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw invalidInputDescribed('body', BODY_EXPECTED, `malformed JSON (${(error as Error).message})`);
  }
  let items: unknown[];
  if (Array.isArray(value)) items = value;
  else if (typeof value === 'object' && value !== null) items = [value];
  else throw invalidInput('body', 'a JSON object or an array of objects', value);
  if (items.length === 0) throw invalidInputDescribed('body', BODY_EXPECTED, 'an empty array');
  if (items.length > batchItems) throw tooManyItems(batchItems, `${items.length} readings`);
  return { items, positions: undefined, invalid: [], count: items.length };
}

function parseNdjson(text: string, batchItems: number): IngestBody {
  const items: unknown[] = [];
  const positions: number[] = [];
  const invalid: IngestRejection[] = [];
  let count = 0;
  let line = 0;
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    const content = text.slice(start, end).trim();
    if (content !== '') {
      count += 1;
      if (count > batchItems) throw tooManyItems(batchItems, `more than ${batchItems} lines`);
      try {
        items.push(JSON.parse(content));
        positions.push(line);
      } catch (error) {
        const got = describeGot(content);
        invalid.push({ index: line, reason: `line ${line + 1} is not JSON (${(error as Error).message})`, expected: 'a JSON object', got });
      }
    }
    line += 1;
    start = end + 1;
  }
  if (count === 0) throw invalidInputDescribed('body', BODY_EXPECTED, 'an empty body');
  // Not one line parses: the body as a whole is not NDJSON (a 400, not a list of rejections).
  const first = invalid[0];
  if (items.length === 0 && first !== undefined) {
    throw invalidInputDescribed('body', 'NDJSON: one JSON object per line', `no line that is JSON (${first.reason})`);
  }
  return { items, positions, invalid, count };
}
