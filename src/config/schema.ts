import { Type, type Static } from '@sinclair/typebox';
import { DURATION_EXPECTED } from './duration.js';
import { AlertsPlatformInputSchema, CheckpointInputSchema, FeaturesInputSchema, LogInputSchema, MqttInputSchema, ServerInputSchema, SimulatorInputSchema } from './platform-config.js';

// The shape of gridpulse.yaml, declared once. Every key is optional: user values merge over the
// built-in defaults. Each schema may carry an `expected` text that error messages use instead of
// TypeBox's generic wording ("expected <expected>, got <value>").

const strict = { additionalProperties: false } as const;

/** Text or milliseconds; the text is parsed afterwards by `parseDuration`. */
const Duration = Type.Union([Type.String(), Type.Number()], { expected: DURATION_EXPECTED });

const FieldName = Type.String({ minLength: 1, expected: 'a non-empty field name' });

const TimeFormatInput = Type.Union(
  [Type.Literal('auto'), Type.Literal('epoch-ms'), Type.Literal('epoch-s'), Type.Literal('iso')],
  { expected: 'one of auto, epoch-ms, epoch-s, iso' },
);

export const TimeInputSchema = Type.Union(
  [FieldName, Type.Object({ field: Type.Optional(FieldName), format: Type.Optional(TimeFormatInput) }, strict)],
  { expected: 'a field name or a mapping { field, format }' },
);

export const MetricOptionsSchema = Type.Object(
  {
    field: Type.Optional(FieldName),
    kind: Type.Optional(
      Type.Union([Type.Literal('gauge'), Type.Literal('interval-energy')], { expected: 'one of gauge, interval-energy' }),
    ),
    unit: Type.Optional(Type.String()),
    min: Type.Optional(Type.Number()),
    max: Type.Optional(Type.Number()),
    power: Type.Optional(Type.Boolean()),
  },
  strict,
);

export const MetricsInputSchema = Type.Union(
  [
    // A metric given with no options (`pf:` in YAML) is null.
    Type.Record(Type.String(), Type.Union([MetricOptionsSchema, Type.Null()], { expected: 'a mapping of metric options' })),
    Type.Array(Type.String()),
  ],
  { expected: 'a mapping of metric name to options, or a list of metric names' },
);

export const WindowInputSchema = Type.Union(
  [Type.String(), Type.Object({ size: Duration, slide: Type.Optional(Duration) }, strict)],
  { expected: 'a window like "5m", "1m/15s" or { size, slide }' },
);

export const LatenessInputSchema = Type.Object(
  {
    outOfOrder: Type.Optional(Duration),
    allowed: Type.Optional(Duration),
    reportOutOfOrderOver: Type.Optional(Duration),
    maxFuture: Type.Optional(Duration),
    idleTimeout: Type.Optional(Duration),
  },
  strict,
);

export const DetectorInputSchema = Type.Object(
  {
    type: Type.String({ minLength: 1, expected: 'a detector type such as spike or rule' }),
    name: Type.Optional(Type.String({ minLength: 1, expected: 'a non-empty alert type name' })),
    metrics: Type.Optional(Type.Array(Type.String())),
    params: Type.Optional(Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()], { expected: 'a mapping of parameters' })),
    enabled: Type.Optional(Type.Boolean()),
  },
  strict,
);

const SeverityInput = Type.Union([Type.Literal('info'), Type.Literal('warning'), Type.Literal('critical')], { expected: 'one of info, warning, critical' });

export const AlertsInputSchema = Type.Object(
  {
    resolveAfter: Type.Optional(Duration),
    minDuration: Type.Optional(Duration),
    cooldown: Type.Optional(Duration),
    /** Off unless given: `{ flips: 3, window: 1h, quiet: 15m }`. */
    flapping: Type.Optional(
      Type.Object(
        {
          flips: Type.Integer({ minimum: 1, expected: 'a whole number of flips, at least 1' }),
          window: Duration,
          quiet: Type.Optional(Duration),
        },
        strict,
      ),
    ),
    /** Off unless given: `[{ after: 15m, to: critical }]`. */
    escalation: Type.Optional(Type.Array(Type.Object({ after: Duration, to: SeverityInput }, strict))),
  },
  strict,
);

export const StateInputSchema = Type.Object(
  {
    ttl: Type.Optional(Duration),
    maxKeysPerPartition: Type.Optional(Type.Integer({ minimum: 1, expected: 'a whole number ≥ 1' })),
  },
  strict,
);

/** Optional text fields can be set to null to remove a built-in value (e.g. `site: null`). */
const OptionalFieldName = Type.Union([FieldName, Type.Null()], { expected: 'a non-empty field name, or null for none' });

export const StreamInputSchema = Type.Object(
  {
    key: Type.Optional(FieldName),
    site: Type.Optional(OptionalFieldName),
    id: Type.Optional(OptionalFieldName),
    time: Type.Optional(TimeInputSchema),
    metrics: Type.Optional(MetricsInputSchema),
    expectedInterval: Type.Optional(Type.Union([Type.String(), Type.Number()], { expected: `"learn" or ${DURATION_EXPECTED}` })),
    gapGrace: Type.Optional(Type.Number({ minimum: 0, expected: 'a number ≥ 0' })),
    lateness: Type.Optional(LatenessInputSchema),
    windows: Type.Optional(Type.Array(WindowInputSchema)),
    detectors: Type.Optional(Type.Array(DetectorInputSchema)),
    alerts: Type.Optional(AlertsInputSchema),
    state: Type.Optional(StateInputSchema),
  },
  strict,
);

export const ConfigInputSchema = Type.Object(
  {
    engine: Type.Optional(
      Type.Object({ partitions: Type.Optional(Type.Integer({ minimum: 1, maximum: 1024, expected: 'a whole number from 1 to 1024' })) }, strict),
    ),
    store: Type.Optional(
      Type.Object(
        {
          url: Type.Optional(Type.String({ minLength: 1, expected: 'a store URL like "duckdb:./data/gridpulse.duckdb"' })),
          writeReadings: Type.Optional(Type.Boolean()),
          retention: Type.Optional(
            Type.Object(
              {
                readings: Type.Optional(Duration),
                aggregates: Type.Optional(Duration),
                alerts: Type.Optional(Duration),
                ops: Type.Optional(Duration),
              },
              strict,
            ),
          ),
        },
        strict,
      ),
    ),
    dataDir: Type.Optional(Type.String({ minLength: 1, expected: 'a non-empty directory path' })),
    streams: Type.Optional(Type.Record(Type.String(), StreamInputSchema)),
    server: Type.Optional(ServerInputSchema),
    mqtt: Type.Optional(MqttInputSchema),
    log: Type.Optional(LogInputSchema),
    checkpoint: Type.Optional(CheckpointInputSchema),
    simulator: Type.Optional(SimulatorInputSchema),
    features: Type.Optional(FeaturesInputSchema),
    alerts: Type.Optional(AlertsPlatformInputSchema),
  },
  strict,
);

/** One stream as written in the config file or passed to `createStreamSchema`; every key optional. */
export type StreamInput = Static<typeof StreamInputSchema>;
/** The whole config file as written; every key optional. */
export type ConfigInput = Static<typeof ConfigInputSchema>;
export type DetectorInput = Static<typeof DetectorInputSchema>;
export type MetricOptions = Static<typeof MetricOptionsSchema>;
export type WindowInput = Static<typeof WindowInputSchema>;
