/**
 * The PostgreSQL schema of gridpulse, as versioned migrations the store applies in `ready()`.
 *
 * Choices, and why (the DuckDB schema in duckdb-schema.ts explains the shared ones):
 * - Same tables and columns as DuckDB, so every query reads the same way; times are BIGINT epoch
 *   milliseconds, raw values one JSONB object per row.
 * - `readings`, `aggregates` and `ops` are partitioned by day on their time column (`time_ms`,
 *   `start_ms`, `at_ms`): a TimescaleDB hypertable (chunks of one day) for readings and aggregates
 *   when the extension is available, otherwise native declarative RANGE partitions named
 *   `<table>_d<yyyymmdd>`, created on demand for the days a batch writes. Retention drops whole
 *   old partitions; only the day that straddles the cutoff is trimmed row by row.
 * - A partitioned table's unique keys must contain its partition column: readings are unique on
 *   (stream, key, time_ms, source_offset), aggregates on (stream, key, window, start, metric), ops
 *   on (id, at_ms) with NULLS NOT DISTINCT; ops without any time (`at_ms` null) live in the
 *   default partition, which retention never drops (DuckDB keeps them too).
 * - `alerts` and `alert_transitions` are small and need row deletes (open alerts stay), so they
 *   are plain tables.
 * - Each migration runs in one transaction under an advisory lock and records its version in
 *   `schema_migrations`, so concurrent starters apply it once and a second run is a no-op.
 * - `alert_outbox` (version 3) is the transactional outbox: one row per alert transition, written
 *   in the same transaction as the transition, keyed by the transition id so a replay adds
 *   nothing. A relay (postgres-outbox.ts) publishes the rows either from the logical replication
 *   stream of the publication `outboxPublicationName(schema)` or by polling `delivered_at IS NULL`;
 *   `alert_outbox_slots` records since when each replication slot's stream covers the outbox.
 */

export type Partitioning = 'native' | 'timescaledb';

export interface Migration {
  version: number;
  name: string;
  statements(partitioning: Partitioning): string[];
}

export const DAY_MS = 86_400_000;

/** Tables partitioned by day, with their partition column. */
export const PARTITIONED_TABLES = { readings: 'time_ms', aggregates: 'start_ms', ops: 'at_ms' } as const;
export type PartitionedTable = keyof typeof PARTITIONED_TABLES;

/** The tables TimescaleDB turns into hypertables when it is available (ops stays native: its time may be null). */
const HYPERTABLES: readonly PartitionedTable[] = ['readings', 'aggregates'];

export const MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  partitioning TEXT NOT NULL,
  applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)`;

function partitionClause(table: PartitionedTable, partitioning: Partitioning): string {
  if (partitioning === 'timescaledb' && HYPERTABLES.includes(table)) return '';
  return ` PARTITION BY RANGE (${PARTITIONED_TABLES[table]})`;
}

/**
 * The publication the logical relay subscribes to, one per schema (publications are per database):
 * `gridpulse_outbox_<schema>`, cut to PostgreSQL's 63-byte identifier limit.
 */
export function outboxPublicationName(schema: string): string {
  return truncateIdentifier(`gridpulse_outbox_${schema}`);
}

/** PostgreSQL keeps the first 63 bytes of an identifier (NAMEDATALEN - 1), never splitting a character. */
function truncateIdentifier(name: string): string {
  let bytes = 0;
  let end = 0;
  for (const character of name) {
    bytes += Buffer.byteLength(character);
    if (bytes > 63) break;
    end += character.length;
  }
  return name.slice(0, end);
}

/**
 * Creates (or repoints) the schema's outbox publication, for inserts only: the relay's own
 * \`delivered_at\` updates must not come back to it through the stream. Only where
 * \`wal_level = logical\` (elsewhere a publication publishes nothing, and dropped test schemas would
 * leave empty ones behind); the logical relay runs this again when it starts, so a server switched
 * to logical later gets its publication then. A role without the CREATE privilege on the database is
 * not stopped by it (the polling relay needs no publication): it leaves a notice. A publication left
 * by an earlier, dropped copy of the schema is pointed at the new table. The name is cast to \`name\`,
 * which cuts it to 63 bytes the way \`outboxPublicationName\` does.
 */
export const ENSURE_OUTBOX_PUBLICATION = `DO $outbox$
DECLARE
  publication name := ('gridpulse_outbox_' || current_schema())::name;
BEGIN
  IF current_setting('wal_level') <> 'logical' THEN
    RETURN;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_publication WHERE pubname = publication) THEN
    EXECUTE format('ALTER PUBLICATION %I SET TABLE %I.alert_outbox', publication, current_schema());
  ELSE
    EXECUTE format('CREATE PUBLICATION %I FOR TABLE %I.alert_outbox WITH (publish = %L)', publication, current_schema(), 'insert');
  END IF;
EXCEPTION WHEN insufficient_privilege THEN
  RAISE NOTICE 'gridpulse: no publication for the alert outbox (%): the outbox relay will poll', SQLERRM;
END
$outbox$`;

export const POSTGRES_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'tables',
    statements: (partitioning) => [
      ...(partitioning === 'timescaledb' ? ['CREATE EXTENSION IF NOT EXISTS timescaledb'] : []),
      `CREATE TABLE readings (
        stream TEXT NOT NULL,
        key TEXT NOT NULL,
        site TEXT,
        time_ms BIGINT NOT NULL,
        source_offset BIGINT NOT NULL,
        metric_values JSONB,
        PRIMARY KEY (stream, key, time_ms, source_offset)
      )${partitionClause('readings', partitioning)}`,
      `CREATE TABLE aggregates (
        stream TEXT NOT NULL,
        key TEXT NOT NULL,
        site TEXT,
        window_name TEXT NOT NULL,
        start_ms BIGINT NOT NULL,
        end_ms BIGINT NOT NULL,
        revision INTEGER NOT NULL,
        reading_count INTEGER NOT NULL,
        energy_kwh DOUBLE PRECISION,
        metric TEXT NOT NULL,
        stat_count DOUBLE PRECISION,
        stat_min DOUBLE PRECISION,
        stat_max DOUBLE PRECISION,
        stat_avg DOUBLE PRECISION,
        stat_sum DOUBLE PRECISION,
        stat_stddev DOUBLE PRECISION,
        stat_first DOUBLE PRECISION,
        stat_last DOUBLE PRECISION,
        PRIMARY KEY (stream, key, window_name, start_ms, metric)
      )${partitionClause('aggregates', partitioning)}`,
      `CREATE TABLE alerts (
        id TEXT PRIMARY KEY,
        stream TEXT NOT NULL,
        key TEXT NOT NULL,
        site TEXT,
        type TEXT NOT NULL,
        metric TEXT,
        severity TEXT NOT NULL,
        status TEXT NOT NULL,
        opened_at_ms BIGINT NOT NULL,
        updated_at_ms BIGINT NOT NULL,
        resolved_at_ms BIGINT,
        score DOUBLE PRECISION,
        peak_score DOUBLE PRECISION,
        value DOUBLE PRECISION,
        findings INTEGER NOT NULL,
        explain TEXT NOT NULL,
        last_seq INTEGER NOT NULL
      )`,
      `CREATE TABLE alert_transitions (
        id TEXT PRIMARY KEY,
        alert_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL,
        time_ms BIGINT NOT NULL,
        status TEXT NOT NULL,
        severity TEXT NOT NULL,
        score DOUBLE PRECISION,
        explain TEXT NOT NULL
      )`,
      `CREATE TABLE ops (
        id TEXT NOT NULL,
        kind TEXT NOT NULL,
        stream TEXT NOT NULL,
        key TEXT,
        site TEXT,
        time_ms BIGINT,
        watermark_ms BIGINT,
        source_offset BIGINT,
        reason TEXT NOT NULL,
        field TEXT,
        expected TEXT,
        got TEXT,
        lag_ms BIGINT,
        missed INTEGER,
        at_ms BIGINT
      )${partitionClause('ops', partitioning)}`,
      `CREATE UNIQUE INDEX ops_identity ON ops (id, at_ms) NULLS NOT DISTINCT`,
      `CREATE TABLE ops_default PARTITION OF ops DEFAULT`,
      `CREATE TABLE devices (
        stream TEXT NOT NULL,
        key TEXT NOT NULL,
        site TEXT,
        PRIMARY KEY (stream, key)
      )`,
      ...(partitioning === 'timescaledb'
        ? HYPERTABLES.map(
            (table) => `SELECT create_hypertable('${table}', '${PARTITIONED_TABLES[table]}', chunk_time_interval => ${DAY_MS}::bigint)`,
          )
        : []),
    ],
  },
  {
    version: 2,
    name: 'indexes for the API queries',
    statements: () => [
      // Series by device and time (raw and per window), fleet series by window and metric.
      `CREATE INDEX readings_by_key_time ON readings (key, time_ms)`,
      `CREATE INDEX aggregates_by_key_time ON aggregates (key, window_name, metric, start_ms)`,
      `CREATE INDEX aggregates_by_window_time ON aggregates (window_name, metric, start_ms)`,
      // Alert lists by status and time, per device; transitions of one alert.
      `CREATE INDEX alerts_by_status_time ON alerts (status, opened_at_ms)`,
      `CREATE INDEX alerts_by_device ON alerts (stream, key)`,
      `CREATE INDEX alert_transitions_by_alert ON alert_transitions (alert_id, seq)`,
      // Data quality by kind and time.
      `CREATE INDEX ops_by_kind_time ON ops (kind, at_ms)`,
      `CREATE INDEX ops_by_stream_time ON ops (stream, at_ms)`,
    ],
  },
  {
    version: 3,
    name: 'alert outbox and its publication',
    statements: () => [
      `CREATE TABLE alert_outbox (
        id TEXT PRIMARY KEY,
        alert_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        payload JSONB NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        delivered_at TIMESTAMPTZ,
        attempts INTEGER NOT NULL DEFAULT 0
      )`,
      // The polling relay's scan: only undelivered rows, in the order it delivers them.
      `CREATE INDEX alert_outbox_pending ON alert_outbox (created_at, seq, id) WHERE delivered_at IS NULL`,
      `CREATE INDEX alert_outbox_by_alert ON alert_outbox (alert_id, seq) WHERE delivered_at IS NULL`,
      // Per replication slot: rows created before \`streams_from\` may have committed before the slot
      // existed, so they are not in its stream; the logical relay delivers those by polling.
      `CREATE TABLE alert_outbox_slots (
        slot TEXT PRIMARY KEY,
        streams_from TIMESTAMPTZ NOT NULL
      )`,
      ENSURE_OUTBOX_PUBLICATION,
    ],
  },
];


export const POSTGRES_SCHEMA_VERSION = Math.max(...POSTGRES_MIGRATIONS.map((migration) => migration.version));

/** Partition name of a table for the UTC day that starts at `dayStart` (epoch ms), e.g. `readings_d20251107`. */
export function partitionName(table: PartitionedTable, dayStart: number): string {
  const day = new Date(dayStart).toISOString().slice(0, 10).replaceAll('-', '');
  return `${table}_d${day}`;
}

/** The UTC day start (epoch ms) a partition name stands for, or undefined for other tables. */
export function partitionDay(table: PartitionedTable, name: string): number | undefined {
  const match = new RegExp(`^${table}_d(\\d{4})(\\d{2})(\\d{2})$`).exec(name);
  if (match === null) return undefined;
  return Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3]));
}

export function dayStart(time: number): number {
  return Math.floor(time / DAY_MS) * DAY_MS;
}

/** Quotes an SQL identifier. */
/**
 * Takes a `schema` query parameter off a `postgres://` URL (pg would pass it to the server as a
 * setting): the store, the outbox relay and `gridpulse process`'s checkpoints all keep their tables
 * in that schema.
 *
 * @example
 * splitSchema('postgres://db/x?schema=a&sslmode=require'); // { url: 'postgres://db/x?sslmode=require', schema: 'a' }
 */
export function splitSchema(url: string): { url: string; schema: string | undefined } {
  const question = url.indexOf('?');
  if (question < 0) return { url, schema: undefined };
  const params = new URLSearchParams(url.slice(question + 1));
  const schema = params.get('schema') ?? undefined;
  params.delete('schema');
  const rest = params.toString();
  return { url: url.slice(0, question) + (rest === '' ? '' : `?${rest}`), schema };
}

export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
