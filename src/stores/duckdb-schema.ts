import { labelsTableName, type StagingTable } from './duckdb-staging.js';

/**
 * The DuckDB schema of gridpulse, created idempotently by `ready()`.
 *
 * Choices, and why:
 * - Times are BIGINT epoch milliseconds (`*_ms` columns), the unit of every API: no conversion on
 *   the way in or out and no time-zone question. `to_timestamp(time_ms / 1000)` gives a timestamp
 *   for ad-hoc SQL.
 * - Raw reading values are one JSON object per row (`metric_values`). Streams have different
 *   metric sets that config may change, and a column per metric would need ALTER TABLE on the
 *   write path; a JSON text is one cheap string per row to write, and the only raw query (one
 *   metric of one device over a time range) reads it with `metric_values->>'$."name"'`.
 *   NaN and Infinity serialize to JSON null.
 * - Raw readings have no primary key: they are the largest table and an index over them costs
 *   memory and write time. A batch whose offsets are all above the highest stored offset of their
 *   stream (a live source's always are) cannot hold a stored row and is appended as it is; any
 *   other batch is inserted once by an anti-join against the rows in its time range, which DuckDB
 *   prunes with its per-row-group min/max of `time_ms`.
 * - Aggregates are one row per (stream, key, window, start, metric) with the statistics as
 *   columns: series and status queries select one metric with a plain WHERE, and the primary key
 *   carries the revision-guarded upsert. `reading_count`, `energy_kwh` and `revision` repeat on the
 *   rows of one window.
 * - Alerts keep `last_seq`, the sequence number of the transition that produced the stored state,
 *   so a replayed older event never overwrites a newer state.
 * - Ops rows, like raw readings, have no primary key (there can be one per reading): insert-once
 *   is an anti-join on (stream, kind, key, time, offset, missed) within the batch's `at_ms` range,
 *   and events about readings newer than every stored one are appended without it.
 * - Ops rows carry `at_ms` (the reading's time, else the watermark at arrival) for range filters
 *   and retention; `site` is filled when the event knows it, otherwise queries take the device's
 *   site from `devices`.
 * - `devices` maps (stream, key) to the last known site, maintained from readings and aggregates.
 */
export const SCHEMA_VERSION = 2;

const OPS_TABLE = `CREATE TABLE IF NOT EXISTS ops (
    kind VARCHAR NOT NULL,
    stream VARCHAR NOT NULL,
    key VARCHAR,
    site VARCHAR,
    time_ms BIGINT,
    watermark_ms BIGINT,
    source_offset BIGINT,
    reason VARCHAR NOT NULL,
    field VARCHAR,
    expected VARCHAR,
    got VARCHAR,
    lag_ms BIGINT,
    missed INTEGER,
    at_ms BIGINT
  )`;

/**
 * Moves a file of an older schema version to `SCHEMA_VERSION`, in one transaction (run after
 * `SCHEMA_STATEMENTS`, which create only what is missing).
 *
 * - 1 → 2: `ops` loses its `id` column and primary key. At one ops event per reading (readings
 *   out of order by a little are the rule in a fleet) the key's index cost more than the rows;
 *   insert-once now works as for readings. The rows are copied over unchanged otherwise.
 */
export const SCHEMA_MIGRATIONS: ReadonlyArray<{ from: number; statements: readonly string[] }> = [
  {
    from: 1,
    statements: [
      OPS_TABLE.replace('CREATE TABLE IF NOT EXISTS ops (', 'CREATE TABLE ops_v2 ('),
      `INSERT INTO ops_v2 SELECT kind, stream, key, site, time_ms, watermark_ms, source_offset, reason, field, expected, got, lag_ms, missed, at_ms FROM ops`,
      `DROP TABLE ops`,
      `ALTER TABLE ops_v2 RENAME TO ops`,
    ],
  },
];

export const SCHEMA_STATEMENTS: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS gridpulse_schema (version INTEGER NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS readings (
    stream VARCHAR NOT NULL,
    key VARCHAR NOT NULL,
    site VARCHAR,
    time_ms BIGINT NOT NULL,
    source_offset BIGINT NOT NULL,
    metric_values JSON
  )`,
  `CREATE TABLE IF NOT EXISTS aggregates (
    stream VARCHAR NOT NULL,
    key VARCHAR NOT NULL,
    site VARCHAR,
    window_name VARCHAR NOT NULL,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL,
    revision INTEGER NOT NULL,
    reading_count INTEGER NOT NULL,
    energy_kwh DOUBLE,
    metric VARCHAR NOT NULL,
    stat_count DOUBLE,
    stat_min DOUBLE,
    stat_max DOUBLE,
    stat_avg DOUBLE,
    stat_sum DOUBLE,
    stat_stddev DOUBLE,
    stat_first DOUBLE,
    stat_last DOUBLE,
    PRIMARY KEY (stream, key, window_name, start_ms, metric)
  )`,
  `CREATE TABLE IF NOT EXISTS alerts (
    id VARCHAR PRIMARY KEY,
    stream VARCHAR NOT NULL,
    key VARCHAR NOT NULL,
    site VARCHAR,
    type VARCHAR NOT NULL,
    metric VARCHAR,
    severity VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    opened_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    resolved_at_ms BIGINT,
    score DOUBLE,
    peak_score DOUBLE,
    value DOUBLE,
    findings INTEGER NOT NULL,
    explain VARCHAR NOT NULL,
    last_seq INTEGER NOT NULL
  )`,
  `CREATE TABLE IF NOT EXISTS alert_transitions (
    id VARCHAR PRIMARY KEY,
    alert_id VARCHAR NOT NULL,
    seq INTEGER NOT NULL,
    kind VARCHAR NOT NULL,
    time_ms BIGINT NOT NULL,
    status VARCHAR NOT NULL,
    severity VARCHAR NOT NULL,
    score DOUBLE,
    explain VARCHAR NOT NULL
  )`,
  `CREATE INDEX IF NOT EXISTS alert_transitions_by_alert ON alert_transitions (alert_id)`,
  OPS_TABLE,
  `CREATE TABLE IF NOT EXISTS devices (
    stream VARCHAR NOT NULL,
    key VARCHAR NOT NULL,
    site VARCHAR,
    PRIMARY KEY (stream, key)
  )`,
];

export const STAGE_READINGS: StagingTable = {
  name: 'stage_readings',
  columns: [
    ['stream', 'label'],
    ['key', 'label'],
    ['site', 'label'],
    ['time_ms', 'double'],
    ['source_offset', 'double'],
    ['metric_values', 'text'],
  ],
};

export const STAGE_AGGREGATES: StagingTable = {
  name: 'stage_aggregates',
  columns: [
    ['stream', 'label'],
    ['key', 'label'],
    ['site', 'label'],
    ['window_name', 'label'],
    ['start_ms', 'double'],
    ['end_ms', 'double'],
    ['revision', 'integer'],
    ['reading_count', 'integer'],
    ['energy_kwh', 'double'],
    ['metric', 'label'],
    ['stat_count', 'double'],
    ['stat_min', 'double'],
    ['stat_max', 'double'],
    ['stat_avg', 'double'],
    ['stat_sum', 'double'],
    ['stat_stddev', 'double'],
    ['stat_first', 'double'],
    ['stat_last', 'double'],
  ],
};

export const STAGE_ALERTS: StagingTable = {
  name: 'stage_alerts',
  columns: [
    ['id', 'text'],
    ['stream', 'label'],
    ['key', 'label'],
    ['site', 'label'],
    ['type', 'label'],
    ['metric', 'label'],
    ['severity', 'label'],
    ['status', 'label'],
    ['opened_at_ms', 'double'],
    ['updated_at_ms', 'double'],
    ['resolved_at_ms', 'double'],
    ['score', 'double'],
    ['peak_score', 'double'],
    ['value', 'double'],
    ['findings', 'integer'],
    ['explain', 'text'],
    ['last_seq', 'integer'],
  ],
};

export const STAGE_TRANSITIONS: StagingTable = {
  name: 'stage_transitions',
  columns: [
    ['id', 'text'],
    ['alert_id', 'label'],
    ['seq', 'integer'],
    ['kind', 'label'],
    ['time_ms', 'double'],
    ['status', 'label'],
    ['severity', 'label'],
    ['score', 'double'],
    ['explain', 'text'],
  ],
};

export const STAGE_OPS: StagingTable = {
  name: 'stage_ops',
  columns: [
    ['kind', 'label'],
    ['stream', 'label'],
    ['key', 'label'],
    ['site', 'label'],
    ['time_ms', 'double'],
    ['watermark_ms', 'double'],
    ['source_offset', 'double'],
    ['reason', 'text'],
    ['field', 'text'],
    ['expected', 'text'],
    ['got', 'text'],
    ['lag_ms', 'double'],
    ['missed', 'integer'],
    ['at_ms', 'double'],
  ],
};

export const STAGING_TABLES: readonly StagingTable[] = [STAGE_READINGS, STAGE_AGGREGATES, STAGE_ALERTS, STAGE_TRANSITIONS, STAGE_OPS];

/** Keeps `devices` current from a staging table whose stream, key and site are label columns. */
export function upsertDevicesFrom(staging: StagingTable): string {
  const labels = labelsTableName(staging);
  return `INSERT INTO devices (stream, key, site)
    SELECT stream_label.label, key_label.label, max(site_label.label)
    FROM (SELECT DISTINCT stream, key, site FROM ${staging.name}) staged
    JOIN ${labels} stream_label ON stream_label.id = staged.stream
    JOIN ${labels} key_label ON key_label.id = staged.key
    LEFT JOIN ${labels} site_label ON site_label.id = staged.site
    GROUP BY stream_label.label, key_label.label
    ON CONFLICT (stream, key) DO UPDATE SET site = excluded.site
    WHERE excluded.site IS NOT NULL AND excluded.site IS DISTINCT FROM devices.site`;
}
