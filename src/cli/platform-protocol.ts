// Messages between the live platform's main thread (log, ingest, API) and its engine worker
// (pipeline, store, alert managers, checkpoints). Everything here crosses `postMessage`, so it is
// plain data: records travel as one byte buffer per batch (transferred, not copied) and device
// features as parallel arrays, so the structured clone never walks thousands of small objects.
import type { LiveEvent, PartitionStatus, PlatformStatus } from '../api/index.js';
import type { GridpulseConfig } from '../config/index.js';
import { GpError, type ErrorCode, type OpsEvent } from '../model/index.js';

/** What the worker is started with (`workerData`). */
export interface EngineWorkerData {
  config: GridpulseConfig;
}

/** A batch of durable log records for the engine, in offset order. */
export interface RecordBatch {
  t: 'records';
  /** Offset of each record. */
  offsets: Float64Array;
  /** Stream index of each record. */
  streams: Uint8Array;
  /** End (exclusive) of each record's value in `bytes`; record i starts at `ends[i - 1]` (0 for the first). */
  ends: Uint32Array;
  /** The records' values (UTF-8 JSON), back to back. */
  bytes: Uint8Array;
  /** Offset to read from after this batch. */
  next: number;
}

export type EngineCall =
  | { method: 'store'; name: string; args: unknown[] }
  | { method: 'operator'; action: 'acknowledge' | 'resolve'; id: string; by: string | undefined; note: string | undefined }
  | { method: 'operator'; action: 'assign'; id: string; assignee: string; by: string | undefined; note: string | undefined }
  | { method: 'recentOffsets'; key: string }
  | { method: 'drain'; target: number }
  | { method: 'checkpoint' }
  | { method: 'delivery'; action: 'list'; channel: string | undefined; limit: number | undefined }
  | { method: 'delivery'; action: 'redeliver' | 'discard'; id: string }
  | { method: 'delivery'; action: 'metrics' }
  | { method: 'close' };

export type ToWorker =
  | { t: 'begin'; offset: number }
  | RecordBatch
  /** Readings refused at ingest, recorded as ops events by the store writer. */
  | { t: 'ops'; events: OpsEvent[] }
  /**
   * The event types the main thread's live subscribers want (events of other types are not
   * collected; none while the list is empty).
   */
  | { t: 'live'; types: Array<LiveEvent['type']> }
  | { t: 'call'; id: number; call: EngineCall };

/** The engine side of `PlatformStatus`, sent with every processed batch. */
export interface EngineStats {
  consumed: number;
  totals: Pick<PlatformStatus['totals'], 'processed' | 'late' | 'tooLate' | 'aggregates' | 'alertEvents' | 'findingsByType' | 'opsByKind'>;
  partitions: Array<Omit<PartitionStatus, 'watermarkDelayMs'>>;
  stateKeys: number;
  store: PlatformStatus['store'];
  lastCheckpointAt: number | null;
}

/** Live features of the devices that changed since the last update, as parallel arrays. */
export interface FeatureUpdate {
  keys: string[];
  streams: Uint8Array;
  sites: Array<string | null>;
  lastTimes: Float64Array;
  /** Last values, each device's metrics (of its stream) back to back. */
  lasts: Float64Array;
  /** The newest 1-minute averages, or null when unchanged since the last update. */
  avg1m: Array<Record<string, number | null> | null>;
  openAlerts: Uint32Array;
}

export interface SerializedError {
  name: string;
  message: string;
  code?: string;
  details?: Record<string, unknown>;
}

export type FromWorker =
  | { t: 'ready'; checkpoint: { offset: number; createdAt: number } | null; storeKind: string }
  | { t: 'fatal'; error: SerializedError }
  | { t: 'processed'; stats: EngineStats; events: LiveEvent[] | null }
  /**
   * Live events sent ahead of the end of a batch: as soon as the engine emits an alert event, it
   * goes out with the events before it (in order), so an alert never waits for its batch to end.
   */
  | { t: 'events'; events: LiveEvent[] }
  | { t: 'features'; update: FeatureUpdate }
  /** A checkpoint up to `offset` is on disk: the main thread commits the offset in the log. */
  | { t: 'checkpointed'; offset: number }
  | { t: 'reply'; id: number; ok: true; value: unknown }
  | { t: 'reply'; id: number; ok: false; error: SerializedError }
  | { t: 'error'; where: string; error: SerializedError }
  | { t: 'info'; message: string };

/** An error as plain data, for `postMessage` (a GpError keeps its code and details). */
export function serializeError(error: unknown): SerializedError {
  if (error instanceof GpError) return { name: error.name, message: error.message, code: error.code, details: error.details };
  if (error instanceof Error) return { name: error.name, message: error.message };
  return { name: 'Error', message: String(error) };
}

/** The error again on this side: a GpError when it had a code. */
export function deserializeError(error: SerializedError): Error {
  if (error.code !== undefined) return new GpError(error.code as ErrorCode, error.message, error.details ?? {});
  const out = new Error(error.message);
  out.name = error.name;
  return out;
}
