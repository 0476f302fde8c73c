import type { ChannelMetrics, DeadLetter, IncidentPolicy, RedeliveryResult } from '../alerts/index.js';
import type { ModelMetrics } from '../detectors/index.js';
import type { Aggregate, Alert, AlertEvent, AlertStatus, OpsEvent, StreamSchema } from '../model/index.js';
import type { Store } from '../stores/index.js';

/**
 * What the HTTP API needs from the running platform. The API (routes, validation, auth, SSE,
 * metrics) is built on this interface only; `gridpulse up` provides the implementation, which
 * owns the log, the engine, the store and the simulator. The API never opens a connection or
 * listens on a port itself.
 *
 * Deliberately left out: how readings reach the engine (through the log, see src/log), and
 * anything about HTTP (status codes, bodies) — that is the API's business.
 */
/** An operator action handed to the engine process that holds the alert. */
export interface ForwardedActionRequest {
  action: 'acknowledge' | 'resolve' | 'assign';
  id: string;
  by: string | undefined;
  note: string | undefined;
  assignee?: string | undefined;
}

/**
 * What became of a forwarded action: applied (the alert after it), refused (the alert's status did
 * not allow it), unclaimed (no engine process took it in `waitedMs`; it was withdrawn, nothing
 * changed) or pending (a process took it but did not finish in `waitedMs`; it will be applied).
 */
export type ForwardedAlertAction =
  | { outcome: 'applied'; alert: Alert }
  | { outcome: 'refused'; status: AlertStatus | undefined; message: string | undefined }
  | { outcome: 'unclaimed'; waitedMs: number }
  | { outcome: 'pending'; claimedBy: string; waitedMs: number };

export interface Platform {
  readonly streams: readonly StreamSchema[];
  /** The stream `POST /v1/readings` writes to when the URL names none (the first configured). */
  readonly defaultStream: string;
  /** Queries for series, status, alerts and data quality. */
  readonly store: Store;
  /** Live events (aggregates, alert events, ops, status) for SSE. */
  readonly live: LiveFeed;
  /**
   * Validates each item (as the engine's decoder does: key, time, metric types), checks it against
   * the caller's allowed keys, appends the accepted ones to the durable log and resolves once they
   * are durable. Rejected items are listed with their index and reason; nothing is partly accepted.
   */
  ingest(stream: string, items: readonly unknown[], auth: IngestAuth): Promise<IngestResult>;
  /** Acknowledge an open alert (an operator action). Undefined when no open alert has that id. */
  acknowledgeAlert(id: string, by: string | undefined, note: string | undefined): Promise<Alert | undefined>;
  /** Resolve an open or acknowledged alert (an operator action). Undefined when no such alert. */
  resolveAlert(id: string, by: string | undefined, note: string | undefined): Promise<Alert | undefined>;
  /**
   * Optional: assign an open or acknowledged alert to `assignee` (an operator action, like
   * acknowledge: the alert manager's `assign`, checkpointed). Undefined when no such alert.
   * Absent: `POST /api/alerts/:id/assign` answers 501.
   */
  assignAlert?(id: string, assignee: string, by: string | undefined, note: string | undefined): Promise<Alert | undefined>;
  /**
   * Optional: an operator action on an alert that the store shows but this platform's own engine
   * does not hold — in a Kafka deployment the `gridpulse process` member owning the device's
   * partition holds it. The action is handed to that process and its outcome awaited (see
   * `ForwardedAlertAction`).
   */
  forwardAlertAction?(request: ForwardedActionRequest): Promise<ForwardedAlertAction>;
  /** Optional: how `GET /api/incidents` groups alerts (`alerts.incidents`); absent: `DEFAULT_INCIDENT_POLICY`. */
  incidentPolicy?(): IncidentPolicy;
  /** Last value and 1-minute averages per metric, from memory (newest data), or undefined for an unknown device. */
  liveFeatures(key: string): DeviceLiveFeatures | undefined;
  /** Most recent raw readings of a device from the log (newest last). */
  recentReadings(key: string, limit: number): Promise<RecentReading[]>;
  status(): PlatformStatus;
  /** Starts a simulated machine (or restarts it with another profile) for `durationSec` seconds. */
  startSimulation(request: SimulationRequest): SimulationStarted;
  /**
   * Optional: one alert by id, in any status, or undefined when there is none. When absent, the
   * API finds an alert through its transitions and `store.listAlerts` (slower).
   */
  getAlert?(id: string): Promise<Alert | undefined>;
  /**
   * Optional: true once the platform can take readings and answer queries (log recovered, store
   * ready, engine running); `GET /readyz` answers 503 while it is false. Absent means ready.
   */
  isReady?(): boolean;
  /**
   * Optional (when `alerts.delivery` has channels): the notifications given up on, oldest first;
   * a dead letter sent again (one attempt, same id and body); one dropped for good; counters per
   * channel. Absent: the dead-letter routes answer 404 "alert delivery is not configured".
   */
  deadLetters?(filter: { channel?: string | undefined; limit?: number | undefined }): Promise<DeadLetter[]>;
  redeliverDeadLetter?(id: string): Promise<RedeliveryResult>;
  discardDeadLetter?(id: string): Promise<boolean>;
  deliveryMetrics?(): Promise<Record<string, ChannelMetrics>>;
  /**
   * Optional: a device's live features from the shared feature cache (Redis, `features.redis`),
   * for a device this process does not hold in memory — one whose engine runs in another gridpulse
   * process publishing to the same Redis. Undefined when the cache has none (never written or
   * expired); rejects when the cache cannot answer. Present only when a cache is configured.
   */
  cachedFeatures?(key: string): Promise<DeviceLiveFeatures | undefined>;
  /** Optional: counters of the feature cache, present only when one is configured. */
  featureCacheStats?(): FeatureCacheStatus;
  /**
   * Optional (model serving, `POST /v1/infer`): the model that inference uses, or undefined when
   * there is none (no `model` detector configured and none trained yet).
   */
  servingModel?(): Promise<ServingModel | undefined>;
  /**
   * Optional: scores feature vectors with the serving model, in one batch. Rejects with
   * `GP_INPUT_INVALID` (field `features`, naming the expected count) when a vector does not fit
   * the model, `GP_NOT_FOUND` when there is no model.
   */
  infer?(requests: readonly InferenceRequest[]): Promise<InferenceResult[]>;
  /** Optional: starts training a model from the store's history in the background. */
  startTraining?(request: TrainingRequest): TrainingJob;
  /** Optional: a training job by id (undefined when unknown). */
  trainingJob?(id: string): TrainingJob | undefined;
  /** Optional: every training job of this process, newest first. */
  trainingJobs?(): TrainingJob[];
  /**
   * Optional: every model file of the platform's models directory (where `POST /train-model` and
   * `gridpulse train --out` write), newest first, with its cross-validated evaluation, and which
   * model serves. A file that is not a valid model is listed with its problem rather than hidden.
   */
  listModels?(): Promise<ModelListing>;
}

/** The models of the platform's models directory and the one that serves (`GET /api/models`). */
export interface ModelListing {
  /**
   * The model `/v1/infer` scores with, or null when there is none. `source`: `config` when a
   * `model` detector names its file (training then does not change what serves), `directory`
   * when it is the newest valid model of the directory (or the one this process trained last).
   * `version` is null when a configured file cannot be read.
   */
  serving: { version: string | null; source: 'config' | 'directory' } | null;
  models: StoredModel[];
}

/** One model file, as `gridpulse models list` shows it, with the whole evaluation stored in it. */
export interface StoredModel {
  /** File name inside the models directory. */
  file: string;
  /** The file's model version (the file name when the file cannot be read). */
  version: string;
  kind: string;
  createdAt: string;
  target: string | null;
  features: number;
  threshold: number;
  /** True for the model that `/v1/infer` scores with. */
  serving: boolean;
  training: { source: string; rows: number; positives: number | null; fingerprint: string } | null;
  /** As measured at training (cross-validated unless `method` says otherwise); null when the model has no labels to be judged by. */
  metrics: StoredModelMetrics | null;
  /** Set when the file is not a valid model file (the other fields are then placeholders). */
  problem: string | null;
}

/** A model file's stored evaluation: the metrics as `gridpulse train` wrote them, without the per-fold figures; the confusion matrix is null when the file has none. */
export type StoredModelMetrics = Omit<ModelMetrics, 'folds' | 'confusion'> & { confusion: ModelMetrics['confusion'] | null };

/** The model `POST /v1/infer` scores with. */
export interface ServingModel {
  version: string;
  kind: string;
  path: string;
  /** Feature names, in the order `features[]` must give them. */
  features: string[];
  threshold: number;
  createdAt: string;
  metrics: { f1: number | null; precision: number | null; recall: number | null; rocAuc: number | null; method: string } | null;
}

/** One inference request (the edge design's `/v1/infer` body). */
export interface InferenceRequest {
  deviceId: string;
  sessionId: string;
  sensorType: string;
  startTsMs: number;
  endTsMs: number;
  featureSchemaVersion: string;
  /** One number per model feature, in the model's order; null = missing. */
  features: ReadonlyArray<number | null>;
}

export interface InferenceResult {
  deviceId: string;
  sessionId: string;
  score: number;
  modelVersion: string;
  threshold: number;
  /** True when the score reached the threshold. */
  alert: boolean;
}

export interface TrainingRequest {
  /** Stream whose history is learned (default: the first stream with a `model` detector, else `machines`, else the first). */
  stream?: string | undefined;
  kind?: 'gbdt' | 'forest' | 'isolation_forest' | undefined;
  /** History from/to, epoch ms (default: the last 7 days up to now). */
  from?: number | undefined;
  to?: number | undefined;
  /** Alert types that label a minute as a failure (default: overstrain, heat_dissipation, power_failure, tool_wear). */
  labelTypes?: readonly string[] | undefined;
  folds?: number | undefined;
}

export interface TrainingJob {
  id: string;
  status: 'running' | 'succeeded' | 'failed';
  /** 0 … 1. */
  progress: number;
  stage: string;
  request: TrainingRequest;
  startedAt: number;
  finishedAt: number | null;
  modelVersion: string | null;
  modelPath: string | null;
  rows: number | null;
  metrics: { f1: number | null; precision: number | null; recall: number | null; rocAuc: number | null } | null;
  error: string | null;
}

/** Counters of the live-feature cache since the platform started. */
export interface FeatureCacheStatus {
  /** Device feature snapshots written. */
  devicesWritten: number;
  /** Keys set (values and meta hashes). */
  keysWritten: number;
  /** Batches (one round trip each) that failed; their devices are written again at the next interval. */
  writeErrors: number;
  /** True while the cache has a live connection. */
  connected: boolean;
}

export interface IngestAuth {
  /** Token name (or "open" in open mode), for metrics and rate limits. */
  principal: string;
  /** Device ids the caller may write; undefined = any. */
  keys: ReadonlySet<string> | undefined;
}

export interface IngestRejection {
  index: number;
  reason: string;
  field?: string | undefined;
  expected?: string | undefined;
  got?: string | undefined;
}

export interface IngestResult {
  accepted: number;
  rejected: IngestRejection[];
}

export interface DeviceLiveFeatures {
  stream: string;
  key: string;
  site: string | undefined;
  /** Event time of the newest reading. */
  lastTime: number;
  last: Record<string, number | null>;
  /** Average of each metric over the newest closed 1-minute window. */
  avg1m: Record<string, number | null>;
  openAlerts: number;
}

export interface RecentReading {
  stream: string;
  key: string;
  time: number;
  /** Arrival time at the platform (log append time). */
  receivedAt: number;
  values: Record<string, number | null>;
}

/** Per stream and engine partition: where event time stands and how far behind the log consumption is. */
export interface PartitionStatus {
  stream: string;
  partition: number;
  watermark: number | null;
  maxEventTime: number | null;
  /** Wall clock minus watermark, ms (how far event time trails real time). */
  watermarkDelayMs: number | null;
  keys: number;
}

export interface PlatformStatus {
  startedAt: number;
  now: number;
  /** Readings per second accepted at ingest over the last 10 s. */
  ingestRate: number;
  /** Readings per second processed by the engine over the last 10 s. */
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
  log: { bytes: number; segments: number; partitions: Array<{ partition: number; startOffset: number; endOffset: number; consumedOffset: number; lag: number }> };
  engine: { partitions: PartitionStatus[]; stateKeys: number };
  store: { kind: string; pendingWrites: number; lastWriteMs: number | null; writes: number };
  simulator: { running: boolean; meters: number; machines: number; sessions: number };
  /** Last checkpoint time (wall clock), or null before the first. */
  lastCheckpointAt: number | null;
  /** What crash recovery found at start (torn tails truncated), or null when the log was clean. */
  recovery: string | null;
  liveClients: number;
}

export type LiveEvent =
  | { type: 'aggregate'; data: Aggregate }
  | { type: 'alert'; data: AlertEvent }
  | { type: 'ops'; data: OpsEvent }
  | { type: 'status'; data: PlatformStatus };

/**
 * Fan-out of live events. A subscriber gets events synchronously in engine order; it must not
 * block (the SSE layer buffers per client with a bound and drops slow clients).
 */
export interface LiveFeed {
  /**
   * `types`: the event types the listener wants (default every type). The feed may leave out
   * events of other types, so the engine does not gather events nobody reads.
   */
  subscribe(listener: (event: LiveEvent) => void, types?: ReadonlySet<LiveEvent['type']>): () => void;
  readonly subscribers: number;
}

export interface SimulationRequest {
  machineId: string;
  profile: 'normal' | 'overstrain' | 'heat_dissipation';
  durationSec: number;
}

export interface SimulationStarted {
  machineId: string;
  profile: string;
  startedAt: number;
  endsAt: number;
}
