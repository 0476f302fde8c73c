import { createHash } from 'node:crypto';
import type { AppendRecord } from '../log/index.js';
import { GpError } from '../model/index.js';
import type { Spool } from './spool.js';

export interface IntakeRejection {
  index: number;
  reason: string;
}

export interface IntakeResult {
  accepted: number;
  rejected: IntakeRejection[];
}

export interface TakeOptions {
  /** The stream of every item; undefined: each item's stream is the first whose key field it has. */
  stream?: string | undefined;
  /** Device id for items that lack their key field (an MQTT topic level, a Modbus device). */
  defaultKey?: string | undefined;
  /** Whether to wait for space when the spool is full under the block policy (false: fail with GP_UNAVAILABLE). */
  wait: boolean;
  collector: string;
}

/**
 * Where every collector hands its readings: each becomes one spool record whose key is
 * `<stream>\t<device>` (the forwarder orders and groups by it) and whose value is the reading's
 * JSON with a stable id in `idField`: the id it came with, or a content hash (SHA-256 of the
 * stream and the reading's JSON, 16 base64url characters). The same reading collected twice (an
 * MQTT redelivery, an HTTP client retrying after a lost answer, a file read again) gets the same
 * id, so the platform keeps one. `take` resolves once the readings are durable in the spool.
 */
export class Intake {
  readonly collected = new Map<string, number>();
  readonly rejectedCounts = new Map<string, number>();
  /** The streams of the agent's config, in config order. */
  readonly streamNames: readonly string[];
  /** Told about every accepted reading (local detection). */
  onReading: ((stream: string, reading: Record<string, unknown>) => void) | undefined;

  constructor(
    private readonly spool: Spool,
    private readonly streams: Readonly<Record<string, { readonly key: string }>>,
    private readonly idField: string,
  ) {
    this.streamNames = Object.keys(streams);
  }

  async take(items: readonly unknown[], options: TakeOptions): Promise<IntakeResult> {
    const records: AppendRecord[] = [];
    const accepted: Array<{ stream: string; reading: Record<string, unknown> }> = [];
    const rejected: IntakeRejection[] = [];
    items.forEach((item, index) => {
      const outcome = this.normalize(item, options);
      if (typeof outcome === 'string') rejected.push({ index, reason: outcome });
      else {
        records.push(outcome.record);
        accepted.push(outcome);
      }
    });
    if (records.length > 0) await this.spool.append(records, { wait: options.wait });
    this.collected.set(options.collector, (this.collected.get(options.collector) ?? 0) + records.length);
    if (rejected.length > 0) this.rejectedCounts.set(options.collector, (this.rejectedCounts.get(options.collector) ?? 0) + rejected.length);
    if (this.onReading !== undefined) for (const { stream, reading } of accepted) this.onReading(stream, reading);
    return { accepted: records.length, rejected };
  }

  private normalize(item: unknown, options: TakeOptions): { record: AppendRecord; stream: string; reading: Record<string, unknown> } | string {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) return `expected a reading (a JSON object), got ${Array.isArray(item) ? 'an array' : JSON.stringify(item)}`;
    const reading = item as Record<string, unknown>;
    let stream = options.stream;
    if (stream === undefined) stream = this.streamNames.find((name) => reading[(this.streams[name] as { key: string }).key] !== undefined);
    if (stream === undefined) {
      if (options.defaultKey === undefined) return `expected one of the key fields ${this.streamNames.map((n) => `${(this.streams[n] as { key: string }).key} (${n})`).join(', ')}, got none`;
      stream = this.streamNames[0] ?? '';
    }
    const keyField = (this.streams[stream] as { key: string }).key;
    let device = reading[keyField];
    if (device === undefined && options.defaultKey !== undefined) {
      reading[keyField] = options.defaultKey;
      device = options.defaultKey;
    }
    if (typeof device !== 'string' && typeof device !== 'number') return `${keyField}: expected the device id (a string), got ${device === undefined ? 'nothing' : JSON.stringify(device)}`;
    if (reading[this.idField] === undefined) {
      reading[this.idField] = createHash('sha256').update(stream).update('\n').update(JSON.stringify(reading)).digest('base64url').slice(0, 16);
    }
    return { record: { key: `${stream}\t${String(device)}`, value: JSON.stringify(reading) }, stream, reading };
  }
}

/** Parses a request or message body: a JSON object, a JSON array, or NDJSON lines. */
export function parseReadings(text: string, ndjson: boolean): { items: unknown[]; rejected: IntakeRejection[] } {
  const trimmed = text.trim();
  if (trimmed === '') return { items: [], rejected: [] };
  if (!ndjson && (trimmed.startsWith('[') || trimmed.startsWith('{'))) {
    try {
      const value: unknown = JSON.parse(trimmed);
      return { items: Array.isArray(value) ? value : [value], rejected: [] };
    } catch {
      // not one JSON value: read it as NDJSON below
    }
  }
  const items: unknown[] = [];
  const rejected: IntakeRejection[] = [];
  const lines = text.split('\n');
  for (let line = 0; line < lines.length; line++) {
    const content = (lines[line] as string).trim();
    if (content === '') continue;
    try {
      items.push(JSON.parse(content));
    } catch (error) {
      rejected.push({ index: line, reason: `line ${line + 1}: malformed JSON: ${(error as Error).message}` });
    }
  }
  return { items, rejected };
}

/** Turns CSV lines (the first being the header) into readings; numeric-looking cells become numbers. */
export function csvRow(header: readonly string[], line: string): Record<string, unknown> {
  const cells = line.split(',');
  const row: Record<string, unknown> = {};
  header.forEach((name, index) => {
    const cell = (cells[index] ?? '').trim().replace(/^"(.*)"$/, '$1');
    if (cell === '') return;
    row[name] = /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(cell) ? Number(cell) : cell;
  });
  return row;
}

export function isSpoolFull(error: unknown): boolean {
  return error instanceof GpError && error.code === 'GP_UNAVAILABLE';
}
