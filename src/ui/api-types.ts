/**
 * The JSON shapes the dashboard reads from the HTTP API (docs: notes/api-contract, types in
 * src/api/platform.ts and src/stores/store.ts). The UI is its own build and speaks only HTTP, so
 * the server-side shapes that carry Node types are mirrored here as plain JSON; the pure record
 * types come from src/model. Optional fields are the ones JSON drops when they are undefined.
 */
import type { AggregateJson, Alert, AlertEvent, AlertStatus, AlertTransition, OpsKind, Severity } from '../model/index.js';

export type { AggregateJson, Alert, AlertEvent, AlertStatus, AlertTransition, OpsKind, Severity };

export type Resolution = 'raw' | '1m' | '5m' | '15m' | 'auto';

export interface StreamInfo {
  name: string;
  keyField: string;
  siteField?: string | null;
  timeField: string;
  metrics: Array<{ name: string; unit?: string | null; min?: number | null; max?: number | null }>;
  windows: string[];
  detectors: string[];
}

export interface DeviceLiveFeatures {
  stream: string;
  key: string;
  site?: string | null;
  lastTime: number;
  last: Record<string, number | null>;
  avg1m: Record<string, number | null>;
  openAlerts: number;
}

export interface DeviceStatus {
  stream: string;
  key: string;
  site: string | null;
  lastSeen: number;
  lastAvg: Record<string, number | null>;
  openAlerts: number;
}

export type DeviceRow = DeviceStatus & { live: DeviceLiveFeatures | null };

export interface DeviceDetail {
  device: DeviceStatus;
  live: DeviceLiveFeatures | null;
  openAlerts: Alert[];
}

export interface SeriesPoint {
  time: number;
  count: number;
  min: number | null;
  max: number | null;
  avg: number | null;
  last: number | null;
}

export interface SeriesResult {
  key: string;
  metric: string;
  resolution: Exclude<Resolution, 'auto'>;
  points: SeriesPoint[];
  /** Alerts of the device overlapping the range, for markers. */
  alerts?: Alert[];
}

/** One window of `GET /api/fleet/series`: the device averages of a metric combined over the fleet. */
export interface FleetSeriesPoint {
  time: number;
  /** Devices with a value in this window. */
  devices: number;
  /** Sum of the device averages (fleet load for a power metric). */
  sum: number | null;
  avg: number | null;
  min: number | null;
  max: number | null;
}

export interface FleetSeriesResult {
  metric: string;
  resolution: '1m' | '5m' | '15m';
  from: number;
  to: number;
  points: FleetSeriesPoint[];
}

export interface RecentReading {
  stream: string;
  key: string;
  time: number;
  receivedAt: number;
  values: Record<string, number | null>;
}

export interface QualityRow {
  stream: string;
  group: string | null;
  counts: Partial<Record<OpsKind, number>>;
  total: number;
}

export interface PartitionStatus {
  stream: string;
  partition: number;
  watermark: number | null;
  maxEventTime: number | null;
  watermarkDelayMs: number | null;
  keys: number;
}

export interface LogPartitionStatus {
  partition: number;
  startOffset: number;
  endOffset: number;
  consumedOffset: number;
  lag: number;
}

export interface PlatformStatus {
  startedAt: number;
  now: number;
  ingestRate: number;
  processRate: number;
  totals: {
    received: number;
    accepted: number;
    rejected: number;
    rejectedByReason: Record<string, number>;
    processed: number;
    late: number;
    tooLate: number;
    aggregates: number;
    alertEvents: number;
    findingsByType: Record<string, number>;
    opsByKind: Record<string, number>;
  };
  log: { bytes: number; segments: number; partitions: LogPartitionStatus[] };
  engine: { partitions: PartitionStatus[]; stateKeys: number };
  store: { kind: string; pendingWrites: number; lastWriteMs: number | null; writes: number };
  simulator: { running: boolean; meters: number; machines: number; sessions: number };
  lastCheckpointAt: number | null;
  recovery: string | null;
  liveClients: number;
}

export interface ApiErrorBody {
  error: { code: string; message: string; field?: string; expected?: string; got?: string };
}

/** What `/api/live` sends, by SSE event name. */
export interface LiveEvents {
  aggregate: AggregateJson;
  alert: AlertEvent;
  status: PlatformStatus;
  ops: { kind: OpsKind; stream: string; key?: string; time?: number; reason: string };
}
export type LiveEventType = keyof LiveEvents;

/** Cross-validated metrics as `GET /v1/model` and the training jobs give them. */
export interface ModelMetricsSummary {
  f1: number | null;
  precision: number | null;
  recall: number | null;
  rocAuc: number | null;
  method?: string;
}

/** `GET /v1/model`: the model `/v1/infer` scores with. */
export interface ServingModel {
  version: string;
  kind: string;
  features: string[];
  threshold: number;
  created_at: string;
  metrics: ModelMetricsSummary | null;
}

export interface Confusion {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

/** One model file of `GET /api/models`. */
export interface StoredModel {
  file: string;
  version: string;
  kind: string;
  created_at: string;
  target: string | null;
  features: number;
  threshold: number;
  serving: boolean;
  training: { source: string; rows: number; positives: number | null; fingerprint: string } | null;
  metrics: {
    method: string;
    threshold: number;
    precision: number | null;
    recall: number | null;
    f1: number | null;
    rocAuc: number | null;
    averagePrecision: number | null;
    confusion: Confusion | null;
  } | null;
  /** Set when the file is not a valid model file. */
  problem: string | null;
}

export interface ModelListing {
  serving: { version: string | null; source: 'config' | 'directory' } | null;
  models: StoredModel[];
}

export type TrainableModel = 'gbdt' | 'forest' | 'isolation-forest';

/** A training job of `POST /train-model` / `GET /train-model`. */
export interface TrainingJob {
  job_id: string;
  /** The stream asked for; null when the platform chose. */
  stream: string | null;
  model: TrainableModel;
  status: 'running' | 'succeeded' | 'failed';
  /** 0 … 1. */
  progress: number;
  stage: string;
  started_at: number;
  finished_at: number | null;
  model_version: string | null;
  rows: number | null;
  metrics: ModelMetricsSummary | null;
  error: string | null;
}
