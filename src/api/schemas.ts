import { Type, type TSchema } from '@sinclair/typebox';

// JSON Schemas (TypeBox) of every route's params, query, body and responses. Fastify validates
// requests with them (ajv) and @fastify/swagger turns them into the OpenAPI document at /docs.

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
/** A string from a fixed list, as one JSON Schema `enum` (a union of literals would report only its first branch). */
const StringEnum = <T extends string>(values: readonly T[], options: { default?: T; description?: string } = {}) =>
  Type.Unsafe<T>({ type: 'string', enum: [...values], ...options });
const NumberMap = Type.Record(Type.String(), Nullable(Type.Number()));
const CountMap = Type.Record(Type.String(), Type.Number());
const Time = Type.Number({ description: 'epoch milliseconds' });

export const ErrorResponse = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'stable GP_ code' }),
      message: Type.String(),
      field: Type.Optional(Type.String()),
      expected: Type.Optional(Type.String()),
      got: Type.Optional(Type.String()),
    }),
  },
  { description: 'An error' },
);

export const TimeQuery = Type.String({ description: 'epoch milliseconds or ISO-8601', maxLength: 64 });
const Name = (description: string) => Type.String({ minLength: 1, maxLength: 256, description });
export const DeviceIdParams = Type.Object({ id: Name('device id (meter or machine)') });
export const AlertIdParams = Type.Object({ id: Name('alert id') });
export const StreamParams = Type.Object({ stream: Name('stream name') });
const ListQuery = (description: string) => Type.Union([Type.String({ maxLength: 256 }), Type.Array(Type.String({ maxLength: 256 }), { maxItems: 16 })], { description });

export const Severity = StringEnum(['info', 'warning', 'critical']);
export const AlertStatus = StringEnum(['open', 'acknowledged', 'resolved']);

export const AlertSchema = Type.Object({
  id: Type.String(),
  stream: Type.String(),
  key: Type.String(),
  site: Type.Optional(Type.String()),
  type: Type.String(),
  metric: Type.Optional(Type.String()),
  severity: Severity,
  status: AlertStatus,
  openedAt: Time,
  updatedAt: Time,
  resolvedAt: Type.Optional(Time),
  score: Nullable(Type.Number()),
  peakScore: Nullable(Type.Number()),
  value: Nullable(Type.Number()),
  findings: Type.Integer(),
  explain: Type.String(),
  muted: Type.Optional(Type.Boolean({ description: 'its latest transition fell in a maintenance window (recorded, not delivered)' })),
  flapping: Type.Optional(Type.Boolean({ description: 'held open while it flaps' })),
  assignee: Type.Optional(Type.String({ description: 'who the alert is assigned to' })),
  corrected: Type.Optional(Type.Boolean({ description: 'a late reading changed its evidence (a correct transition)' })),
});

export const TransitionSchema = Type.Object({
  id: Type.String(),
  alertId: Type.String(),
  seq: Type.Integer(),
  kind: Type.String({ description: 'open, update, escalate, resolve, reopen, acknowledge, assign, flapping, correct' }),
  time: Time,
  status: AlertStatus,
  severity: Severity,
  score: Nullable(Type.Number()),
  explain: Type.String(),
  by: Type.Optional(Type.String({ description: 'operator actions only: who acted' })),
  note: Type.Optional(Type.String({ description: 'operator actions only: the note given' })),
  assignee: Type.Optional(Type.String({ description: 'assign only: the new assignee' })),
  muted: Type.Optional(Type.Boolean({ description: 'inside a maintenance window: recorded, not delivered' })),
});

export const DeviceStatusSchema = Type.Object({
  stream: Type.String(),
  key: Type.String(),
  site: Nullable(Type.String()),
  lastSeen: Time,
  lastAvg: NumberMap,
  openAlerts: Type.Integer(),
});

export const LiveFeaturesSchema = Type.Object({
  stream: Type.String(),
  key: Type.String(),
  site: Type.Optional(Type.String()),
  lastTime: Time,
  last: NumberMap,
  avg1m: NumberMap,
  openAlerts: Type.Integer(),
});

export const StreamsResponse = Type.Object({
  streams: Type.Array(
    Type.Object({
      name: Type.String(),
      keyField: Type.String(),
      siteField: Nullable(Type.String()),
      timeField: Type.String(),
      metrics: Type.Array(Type.Object({ name: Type.String(), unit: Nullable(Type.String()), min: Nullable(Type.Number()), max: Nullable(Type.Number()) })),
      windows: Type.Array(Type.String()),
      detectors: Type.Array(Type.String()),
    }),
  ),
});

export const DevicesQuery = Type.Object({ stream: Type.Optional(Name('stream name')), site: Type.Optional(Name('site id')) });
export const DevicesResponse = Type.Object({
  devices: Type.Array(Type.Intersect([DeviceStatusSchema, Type.Object({ live: Nullable(LiveFeaturesSchema) })])),
});
export const DeviceResponse = Type.Object({ device: DeviceStatusSchema, live: Nullable(LiveFeaturesSchema), openAlerts: Type.Array(AlertSchema) });

export const SeriesQuery = Type.Object({
  metric: Name('metric name'),
  from: Type.Optional(TimeQuery),
  to: Type.Optional(TimeQuery),
  resolution: Type.Optional(StringEnum(['raw', '1m', '5m', '15m', 'auto'], { default: 'auto' })),
  stream: Type.Optional(Name('stream name')),
  maxPoints: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, description: 'for auto: the most points wanted (default 500)' })),
});
export const SeriesResponse = Type.Object({
  key: Type.String(),
  metric: Type.String(),
  resolution: Type.String({ description: 'raw, 1m, 5m or 15m (auto resolved)' }),
  from: Time,
  to: Time,
  points: Type.Array(
    Type.Object({
      time: Time,
      count: Type.Number(),
      min: Nullable(Type.Number()),
      max: Nullable(Type.Number()),
      avg: Nullable(Type.Number()),
      last: Nullable(Type.Number()),
    }),
  ),
  alerts: Type.Array(AlertSchema),
});

export const LimitQuery = (max: number, defaultValue: number) => Type.Integer({ minimum: 1, maximum: max, default: defaultValue });
export const RecentReadingSchema = Type.Object({ stream: Type.String(), key: Type.String(), time: Time, receivedAt: Time, values: NumberMap });
export const ReadingsQuery = Type.Object({ limit: Type.Optional(LimitQuery(10_000, 100)) });
export const ReadingsResponse = Type.Object({ readings: Type.Array(RecentReadingSchema) });

export const AlertsQuery = Type.Object({
  status: Type.Optional(ListQuery('open, acknowledged, resolved; repeated or comma-separated')),
  severity: Type.Optional(ListQuery('info, warning, critical; repeated or comma-separated')),
  type: Type.Optional(Name('alert type')),
  site: Type.Optional(Name('site id')),
  key: Type.Optional(Name('device id')),
  stream: Type.Optional(Name('stream name')),
  from: Type.Optional(TimeQuery),
  to: Type.Optional(TimeQuery),
  limit: Type.Optional(LimitQuery(10_000, 100)),
});
export const AlertsResponse = Type.Object({ alerts: Type.Array(AlertSchema) });
export const AlertDetailResponse = Type.Object({ alert: AlertSchema, transitions: Type.Array(TransitionSchema) });
export const AlertActionBody = Type.Object(
  { by: Type.Optional(Type.String({ maxLength: 200 })), note: Type.Optional(Type.String({ maxLength: 2000 })) },
  { additionalProperties: false },
);
export const AlertActionResponse = Type.Object({ alert: AlertSchema });
export const AlertAssignBody = Type.Object(
  {
    assignee: Type.String({ minLength: 1, maxLength: 200, description: 'who takes the alert' }),
    by: Type.Optional(Type.String({ maxLength: 200 })),
    note: Type.Optional(Type.String({ maxLength: 2000 })),
  },
  { additionalProperties: false },
);

export const IncidentsQuery = Type.Object({
  status: Type.Optional(StringEnum(['open', 'resolved', 'all'], { default: 'open', description: 'open (default): incidents with an open alert; resolved; all' })),
  stream: Type.Optional(Name('stream name')),
  from: Type.Optional(TimeQuery),
  to: Type.Optional(TimeQuery),
});
export const IncidentSchema = Type.Object({
  id: Type.String(),
  hint: StringEnum(['site outage', 'pipeline stall', 'device fault']),
  site: Nullable(Type.String()),
  sites: Type.Array(Type.String()),
  status: StringEnum(['open', 'resolved']),
  startedAt: Time,
  endedAt: Nullable(Time),
  devices: Type.Array(Type.String()),
  alertIds: Type.Array(Type.String()),
  siteDevices: Nullable(Type.Integer()),
  explain: Type.String(),
});
export const IncidentsResponse = Type.Object({ incidents: Type.Array(IncidentSchema) });

export const QualityQuery = Type.Object({
  stream: Type.Optional(Name('stream name')),
  from: Type.Optional(TimeQuery),
  to: Type.Optional(TimeQuery),
  by: Type.Optional(StringEnum(['key', 'site'], { default: 'key', description: 'group by device (key) or site' })),
});
export const QualityResponse = Type.Object({
  rows: Type.Array(Type.Object({ stream: Type.String(), group: Nullable(Type.String()), counts: CountMap, total: Type.Number() })),
});

export const StatusResponse = Type.Object(
  {
    startedAt: Time,
    now: Time,
    ingestRate: Type.Number(),
    processRate: Type.Number(),
    totals: Type.Object({}, { additionalProperties: true }),
    log: Type.Object({}, { additionalProperties: true }),
    engine: Type.Object({}, { additionalProperties: true }),
    store: Type.Object({}, { additionalProperties: true }),
    simulator: Type.Object({}, { additionalProperties: true }),
    lastCheckpointAt: Nullable(Time),
    recovery: Nullable(Type.String()),
    liveClients: Type.Integer(),
  },
  { additionalProperties: true, description: 'PlatformStatus (src/api/platform.ts)' },
);

export const LiveQuery = Type.Object({
  stream: Type.Optional(Name('only this stream')),
  site: Type.Optional(Name('only this site')),
  key: Type.Optional(ListQuery('only these devices; repeated or comma-separated')),
  types: Type.Optional(ListQuery('aggregate, alert, ops, status; repeated or comma-separated (default all)')),
});

export const SimulateParams = Type.Object({ machineId: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]*$', description: 'machine id' }) });
export const SimulateQuery = Type.Object({
  profile: Type.Optional(StringEnum(['normal', 'overstrain', 'heat_dissipation'], { default: 'normal' })),
  duration_sec: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400, default: 60 })),
});
export const SimulationResponse = Type.Object({ machineId: Type.String(), profile: Type.String(), startedAt: Time, endsAt: Time });

export const IngestResponse = Type.Object({
  accepted: Type.Integer(),
  rejected: Type.Array(
    Type.Object({
      index: Type.Integer({ description: 'position in the array, or line number − 1 for NDJSON' }),
      reason: Type.String(),
      field: Type.Optional(Type.String()),
      expected: Type.Optional(Type.String()),
      got: Type.Optional(Type.String()),
    }),
  ),
});
export const ReadingsBody = Type.Union([Type.Object({}, { additionalProperties: true }), Type.Array(Type.Object({}, { additionalProperties: true }))], {
  description: 'One reading, an array of readings, or NDJSON (one reading per line, Content-Type application/x-ndjson); gzip with Content-Encoding: gzip',
});
export const IngestHeaders = Type.Object({
  authorization: Type.Optional(Type.String({ description: 'Bearer <token> (required when server.auth.mode is tokens)' })),
  'content-encoding': Type.Optional(Type.String({ description: 'gzip or none' })),
  'x-gridpulse-backfill': Type.Optional(Type.String({ description: 'true: every reading is backfill (forwarded after an outage): recorded as late data, opens no alerts' })),
});

export const MachineLogsQuery = Type.Object({ limit: Type.Optional(LimitQuery(10_000, 100)) });
export const MachineLogsResponse = Type.Array(Type.Object({}, { additionalProperties: true }), {
  description: 'sensor_log rows, newest first: machine_id, timestamp (ISO-8601) and each metric under its field name',
});
export const MachineStatusResponse = Type.Object(
  {
    machine_id: Type.String(),
    stream: Type.String(),
    status: Type.String({ description: 'alert when the machine has open alerts, else normal' }),
    last_seen: Nullable(Type.String({ description: 'ISO-8601' })),
    features: NumberMap,
    open_alerts: Type.Integer(),
  },
  { description: 'Latest features of a machine, named as in the reference feature cache (last_<metric>, <metric>_1m_avg)' },
);

export const HealthResponse = Type.Object({ status: Type.String(), uptimeSeconds: Type.Number() });
export const ReadyResponse = Type.Object({ ready: Type.Boolean() });

/** The common error responses, for route schemas. */
export function errors(...statuses: number[]): Record<number, typeof ErrorResponse> {
  return Object.fromEntries(statuses.map((status) => [status, ErrorResponse]));
}

// ---- model serving and training (routes-ml.ts) ----

export const InferBody = Type.Object(
  {
    device_id: Type.String({ minLength: 1, maxLength: 256 }),
    session_id: Type.String({ maxLength: 256 }),
    sensor_type: Type.String({ maxLength: 128 }),
    start_ts_ms: Type.Number({ description: 'epoch milliseconds' }),
    end_ts_ms: Type.Number({ description: 'epoch milliseconds' }),
    feature_schema_version: Type.String({ maxLength: 128 }),
    features: Type.Array(Nullable(Type.Number()), { maxItems: 4096, description: "one number per model feature, in the model's order (GET /v1/model); null = missing" }),
  },
  { additionalProperties: false },
);
export const InferResult = Type.Object({
  device_id: Type.String(),
  session_id: Type.String(),
  score: Type.Number({ description: 'failure score, 0 … 1' }),
  model_version: Type.String(),
  threshold: Type.Number(),
  alert: Type.Boolean({ description: 'true when score ≥ threshold' }),
});
export const InferBatchBody = Type.Object({ requests: Type.Array(InferBody, { minItems: 1, maxItems: 1000 }) }, { additionalProperties: false });
export const InferBatchResponse = Type.Object({ results: Type.Array(InferResult) });
const MetricSummary = Nullable(
  Type.Object({ f1: Nullable(Type.Number()), precision: Nullable(Type.Number()), recall: Nullable(Type.Number()), rocAuc: Nullable(Type.Number()), method: Type.Optional(Type.String()) }),
);
export const ServingModelResponse = Type.Object({
  version: Type.String(),
  kind: Type.String(),
  features: Type.Array(Type.String()),
  threshold: Type.Number(),
  created_at: Type.String(),
  metrics: MetricSummary,
});
export const TrainModelBody = Type.Object(
  {
    stream: Type.Optional(Name('stream whose history is learned')),
    model: Type.Optional(StringEnum(['gbdt', 'forest', 'isolation-forest'], { default: 'gbdt' })),
    from: Type.Optional(Type.Number({ description: 'epoch ms; default 7 days before to' })),
    to: Type.Optional(Type.Number({ description: 'epoch ms; default now' })),
    label_types: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { maxItems: 32, description: 'alert types that mark a minute as a failure' })),
    folds: Type.Optional(Type.Integer({ minimum: 0, maximum: 10, default: 5 })),
  },
  { additionalProperties: false },
);
export const TrainingJobSchema = Type.Object({
  job_id: Type.String(),
  stream: Nullable(Type.String({ description: 'the stream asked for (null: the platform chose: a stream with a model detector, else machines)' })),
  model: StringEnum(['gbdt', 'forest', 'isolation-forest']),
  status: StringEnum(['running', 'succeeded', 'failed']),
  progress: Type.Number({ description: '0 … 1' }),
  stage: Type.String(),
  started_at: Time,
  finished_at: Nullable(Time),
  model_version: Nullable(Type.String()),
  rows: Nullable(Type.Integer()),
  metrics: MetricSummary,
  error: Nullable(Type.String()),
});
export const TrainingJobParams = Type.Object({ id: Name('training job id') });
export const TrainingJobsResponse = Type.Object({ jobs: Type.Array(TrainingJobSchema) });
const StoredModelSchema = Type.Object({
  file: Type.String({ description: 'file name in the models directory' }),
  version: Type.String({ description: "the file's model version (its file name when it cannot be read)" }),
  kind: Type.String({ description: 'gbdt, forest, isolation_forest or onnx ("?" when the file cannot be read)' }),
  created_at: Type.String({ description: 'ISO-8601' }),
  target: Nullable(Type.String()),
  features: Type.Integer(),
  threshold: Type.Number({ description: 'score at which a reading alerts' }),
  serving: Type.Boolean({ description: 'true for the model /v1/infer scores with' }),
  training: Nullable(
    Type.Object({
      source: Type.String(),
      rows: Type.Integer(),
      positives: Nullable(Type.Integer()),
      fingerprint: Type.String({ description: 'SHA-256 of the training data' }),
    }),
  ),
  metrics: Nullable(
    Type.Object(
      {
        method: Type.String({ description: 'how they were measured, e.g. 5-fold stratified cross-validation' }),
        threshold: Type.Number({ description: 'the score at which the confusion matrix counts a failure' }),
        precision: Nullable(Type.Number()),
        recall: Nullable(Type.Number()),
        f1: Nullable(Type.Number()),
        rocAuc: Nullable(Type.Number()),
        averagePrecision: Nullable(Type.Number()),
        confusion: Nullable(Type.Object({ tp: Type.Integer(), fp: Type.Integer(), tn: Type.Integer(), fn: Type.Integer() })),
      },
      { description: 'evaluation stored in the model file at training; null when the model had no labels to be judged by' },
    ),
  ),
  problem: Nullable(Type.String({ description: 'why the file is not a valid model (the other fields are then placeholders)' })),
});
export const ModelsResponse = Type.Object({
  serving: Nullable(
    Type.Object({
      version: Nullable(Type.String()),
      source: StringEnum(['config', 'directory'], { description: 'config: a model detector names the file (training does not replace it); directory: the newest model of the models directory' }),
    }),
  ),
  models: Type.Array(StoredModelSchema, { description: 'every *.json file of the models directory, newest first' }),
});
