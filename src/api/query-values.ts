import type { StreamSchema } from '../model/index.js';
import type { DeviceStatus, Store } from '../stores/index.js';
import { invalidInput, type ApiError } from './errors.js';

// Query values that JSON Schema alone cannot check: times given as epoch ms or ISO-8601,
// lists given repeated or comma-separated, stream and metric names of the running config.

const ISO_DATE = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}:?\d{2})?$/;
/** ECMAScript's time range: ±100,000,000 days around the epoch. */
const MAX_TIME = 8.64e15;
export const TIME_EXPECTED = 'a time as epoch milliseconds or ISO-8601 (e.g. 2025-11-07T15:10:01Z)';

/** Parses a time query value; undefined stays undefined. A zone-less ISO time is UTC. */
export function parseTime(value: string | undefined, field: string): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^-?\d+(\.\d+)?$/.test(text)) {
    const ms = Number(text);
    if (Number.isFinite(ms) && Math.abs(ms) <= MAX_TIME) return Math.trunc(ms);
    throw invalidInput(field, TIME_EXPECTED, value);
  }
  if (ISO_DATE.test(text)) {
    const zoned = /(Z|[+-]\d{2}:?\d{2})$/.test(text) || !text.includes(':') ? text : `${text}Z`;
    const ms = Date.parse(zoned.replace(' ', 'T'));
    if (Number.isFinite(ms)) return ms;
  }
  throw invalidInput(field, TIME_EXPECTED, value);
}

/** A list from a repeated or comma-separated query value, each item checked against `allowed` when given. */
export function parseList<T extends string>(value: string | readonly string[] | undefined, field: string, allowed?: readonly T[]): T[] | undefined {
  if (value === undefined) return undefined;
  const items = (typeof value === 'string' ? [value] : value)
    .flatMap((item) => item.split(','))
    .map((item) => item.trim())
    .filter((item) => item !== '');
  if (items.length === 0) return undefined;
  for (const item of items) {
    if (allowed !== undefined && !(allowed as readonly string[]).includes(item)) throw invalidInput(field, `one or more of ${allowed.join(', ')}`, item);
  }
  return [...new Set(items)] as T[];
}

/** Checks that a stream named in a query exists. */
export function checkStream(streams: readonly StreamSchema[], name: string | undefined, field = 'stream'): StreamSchema | undefined {
  if (name === undefined) return undefined;
  const stream = streams.find((s) => s.name === name);
  if (stream === undefined) throw invalidInput(field, `one of ${streams.map((s) => s.name).join(', ')}`, name);
  return stream;
}

/** Checks that a metric exists (in the stream when one is named, else in any stream). */
export function checkMetric(streams: readonly StreamSchema[], stream: StreamSchema | undefined, metric: string): void {
  const candidates = stream === undefined ? streams : [stream];
  const names = [...new Set(candidates.flatMap((s) => s.metrics.map((m) => m.name)))];
  if (!names.includes(metric)) throw invalidInput('metric', `one of ${names.join(', ')}`, metric);
}

/**
 * Checks the stream and metric of a query about one device against the config's streams and,
 * for a stream or metric the config does not declare, against what the store holds for that
 * device: a file replayed with a detected layout (`gridpulse replay meters.csv`) is stored under a
 * stream of its own, which the dashboard shows like any other. The error lists both.
 */
export async function checkDeviceMetric(streams: readonly StreamSchema[], store: Pick<Store, 'latestStatus'>, key: string, streamName: string | undefined, metric: string): Promise<void> {
  const declared = streamName === undefined ? undefined : streams.find((s) => s.name === streamName);
  const candidates = streamName === undefined ? streams : declared === undefined ? [] : [declared];
  const names = new Set(candidates.flatMap((s) => s.metrics.map((m) => m.name)));
  if (names.has(metric)) return;
  const stored = await store.latestStatus({ keys: [key] });
  if (streamName !== undefined && declared === undefined && !stored.some((s) => s.stream === streamName)) throw unknownStream(streams, stored, 'stream', streamName);
  for (const status of stored) if (streamName === undefined || status.stream === streamName) for (const name of Object.keys(status.lastAvg)) names.add(name);
  if (!names.has(metric)) throw invalidInput('metric', `one of ${[...names].join(', ')}`, metric);
}

/**
 * Checks a stream named in a query against the config's streams and the streams the store holds
 * devices of; the error lists both.
 */
export async function checkStoredStream(streams: readonly StreamSchema[], store: Pick<Store, 'latestStatus'>, name: string, field = 'stream'): Promise<void> {
  if (streams.some((s) => s.name === name)) return;
  const stored = await store.latestStatus({});
  if (stored.some((s) => s.stream === name)) return;
  throw unknownStream(streams, stored, field, name);
}

/** The error for a stream neither declared nor stored: it lists the declared streams, then the stored ones. */
function unknownStream(streams: readonly StreamSchema[], stored: readonly DeviceStatus[], field: string, name: string): ApiError {
  const known = [...new Set([...streams.map((s) => s.name), ...stored.map((s) => s.stream)])];
  return invalidInput(field, `one of ${known.join(', ')}`, name);
}
