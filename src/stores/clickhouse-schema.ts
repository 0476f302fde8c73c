/**
 * The ClickHouse schema of gridpulse, as versioned migrations the store applies in `ready()`, and
 * the one function that turns values into SQL literals.
 *
 * Choices, and why (the DuckDB schema in duckdb-schema.ts explains the columns they share):
 * - It must run on the ClickHouse in Debian (18.16: no DateTime64, no TTL, no query parameters,
 *   no `mutations_sync`) and on current releases, so times are Int64 epoch milliseconds, values
 *   are plain literals (see `sqlLiteral`), and row deletes wait for their mutation by polling.
 * - Every table is a MergeTree ordered by its identity, (stream, key, time...) first, so that a
 *   ReplacingMergeTree folds the rows a replay writes twice into one. Queries read with `FINAL`,
 *   which folds them at read time too, so answers are right before any merge has run.
 * - Aggregates keep the highest `revision` (ReplacingMergeTree(revision); on a tie the later
 *   write, as the Store contract says); alerts keep the highest `last_seq`. Readings, ops events
 *   and transitions are "insert once": their `precedence` column falls with each write, so the
 *   first write of an identity is the one kept.
 * - `readings`, `aggregates` and `ops` are partitioned by UTC day of their time column
 *   (`toYYYYMMDD`, partition ids like `20251107`); retention drops whole old days and deletes rows
 *   only in the day the cutoff falls in. Ops events without any time go to partition `0`, which
 *   retention never drops (they cannot be aged). Times before 1970 count as 1970-01-01 and times after
 *   2099 as 2099-12-31 (DateTime ends in 2106), so that a partition never holds times later than
 *   its day, except `20991231`, which retention never drops whole.
 * - `alerts` and `alert_transitions` are small and need row deletes by id (open alerts stay), so
 *   they are not partitioned.
 * - Migrations are `CREATE ... IF NOT EXISTS`, recorded in `schema_migrations` once done. ClickHouse
 *   has no locks: two stores starting at once may both run a migration, which is harmless, and
 *   `schema_migrations` folds their records into one per version.
 * - TTL (ClickHouse 19.6 and later) is an option, off by default: it deletes by the wall clock at
 *   merge time, whereas `applyRetention` measures from an event time the caller gives.
 */

export interface ClickHouseMigration {
  version: number;
  name: string;
  statements: readonly string[];
}

export const DAY_MS = 86_400_000;

/** Tables partitioned by day, with their time column. */
export const PARTITIONED_TABLES = { readings: 'time_ms', aggregates: 'start_ms', ops: 'at_ms' } as const;
export type PartitionedTable = keyof typeof PARTITIONED_TABLES;

/** The condition that selects the rows of `table` older than `cutoff` (ops events without a time never are). */
export function olderThan(table: PartitionedTable, cutoff: number): string {
  const condition = `${PARTITIONED_TABLES[table]} < ${sqlLiteral(cutoff)}`;
  return table === 'ops' ? `has_time = 1 AND ${condition}` : condition;
}

/** Partition of ops events that have no time: never dropped by retention. */
export const UNTIMED_PARTITION = '0';
/** Partition of 2099-12-31 and every later time: trimmed row by row, never dropped whole. */
export const LAST_PARTITION = '20991231';

/**
 * The UTC day (YYYYMMDD) of an epoch-milliseconds column, as ClickHouse 18.16 and later compute it;
 * seconds are clamped to 1970-01-01 .. 2099-12-31, as DateTime would wrap around outside its range.
 */
function utcDay(column: string): string {
  return `toYYYYMMDD(toDateTime(least(greatest(intDiv(${column}, 1000), toInt64(0)), toInt64(4102444799)), 'UTC'))`;
}

export const MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version UInt32,
  name String,
  applied_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree() ORDER BY version`;

export const CLICKHOUSE_MIGRATIONS: readonly ClickHouseMigration[] = [
  {
    version: 1,
    name: 'tables',
    statements: [
      `CREATE TABLE IF NOT EXISTS readings (
        stream String,
        key String,
        site Nullable(String),
        time_ms Int64,
        source_offset Int64,
        metric_names Array(String),
        metric_values Array(Nullable(Float64)),
        precedence UInt64
      ) ENGINE = ReplacingMergeTree(precedence)
      PARTITION BY ${utcDay('time_ms')}
      ORDER BY (stream, key, time_ms, source_offset)`,
      `CREATE TABLE IF NOT EXISTS aggregates (
        stream String,
        key String,
        site Nullable(String),
        window_name String,
        start_ms Int64,
        end_ms Int64,
        revision UInt32,
        reading_count Int64,
        energy_kwh Nullable(Float64),
        metric String,
        stat_count Nullable(Float64),
        stat_min Nullable(Float64),
        stat_max Nullable(Float64),
        stat_avg Nullable(Float64),
        stat_sum Nullable(Float64),
        stat_stddev Nullable(Float64),
        stat_first Nullable(Float64),
        stat_last Nullable(Float64)
      ) ENGINE = ReplacingMergeTree(revision)
      PARTITION BY ${utcDay('start_ms')}
      ORDER BY (stream, key, window_name, start_ms, metric)`,
      `CREATE TABLE IF NOT EXISTS alerts (
        id String,
        stream String,
        key String,
        site Nullable(String),
        type String,
        metric Nullable(String),
        severity String,
        status String,
        opened_at_ms Int64,
        updated_at_ms Int64,
        resolved_at_ms Nullable(Int64),
        score Nullable(Float64),
        peak_score Nullable(Float64),
        value Nullable(Float64),
        findings Int64,
        explain String,
        last_seq UInt32
      ) ENGINE = ReplacingMergeTree(last_seq)
      ORDER BY id`,
      `CREATE TABLE IF NOT EXISTS alert_transitions (
        id String,
        alert_id String,
        seq Int64,
        kind String,
        time_ms Int64,
        status String,
        severity String,
        score Nullable(Float64),
        explain String,
        precedence UInt64
      ) ENGINE = ReplacingMergeTree(precedence)
      ORDER BY (alert_id, id)`,
      // `at_ms` is the event's time, else its watermark; `has_time` 0 when it has neither (then
      // `at_ms` is 0). Not Nullable: 18.16 fails every comparison on a partition column whose
      // min/max in some part is NULL ("Cannot compare long with DB::Null").
      `CREATE TABLE IF NOT EXISTS ops (
        id String,
        kind String,
        stream String,
        key Nullable(String),
        site Nullable(String),
        time_ms Nullable(Int64),
        watermark_ms Nullable(Int64),
        source_offset Nullable(Int64),
        reason String,
        field Nullable(String),
        expected Nullable(String),
        got Nullable(String),
        lag_ms Nullable(Int64),
        missed Nullable(Int64),
        has_time UInt8,
        at_ms Int64,
        precedence UInt64
      ) ENGINE = ReplacingMergeTree(precedence)
      PARTITION BY if(has_time = 0, 0, ${utcDay('at_ms')})
      ORDER BY (stream, ifNull(key, ''), has_time, at_ms, id)`,
      // The last known site of each device (a later write replaces it).
      `CREATE TABLE IF NOT EXISTS devices (
        stream String,
        key String,
        site String
      ) ENGINE = ReplacingMergeTree()
      ORDER BY (stream, key)`,
    ],
  },
];

export const CLICKHOUSE_SCHEMA_VERSION = Math.max(...CLICKHOUSE_MIGRATIONS.map((migration) => migration.version));

/** Table TTL came with ClickHouse 19.6. */
export function supportsTtl(version: string): boolean {
  const [major = 0, minor = 0] = version.split('.').map((part) => Number.parseInt(part, 10));
  return major > 19 || (major === 19 && minor >= 6);
}

/**
 * `ALTER TABLE ... MODIFY TTL` for the day-partitioned tables, from retention in milliseconds
 * (whole seconds). Ops events without a time never expire.
 */
export function ttlStatements(retention: { readingsMs: number; aggregatesMs: number; opsMs: number }): { table: PartitionedTable; seconds: number; statement: string }[] {
  const seconds = (ms: number): number => Math.max(1, Math.ceil(ms / 1000));
  const entries: [PartitionedTable, string, number][] = [
    ['readings', 'time_ms', seconds(retention.readingsMs)],
    ['aggregates', 'start_ms', seconds(retention.aggregatesMs)],
    // 4102444800000 is 2100-01-01: the far future, still inside DateTime's range.
    ['ops', 'if(has_time = 1, at_ms, toInt64(4102444800000))', seconds(retention.opsMs)],
  ];
  return entries.map(([table, column, ttlSeconds]) => ({
    table,
    seconds: ttlSeconds,
    statement: `ALTER TABLE ${table} MODIFY TTL toDateTime(intDiv(${column}, 1000), 'UTC') + toIntervalSecond(${ttlSeconds})`,
  }));
}

/** The UTC day start (epoch ms) of a `toYYYYMMDD` partition id, or undefined for ids that are not a droppable day. */
export function partitionDay(partition: string): number | undefined {
  if (partition === UNTIMED_PARTITION || partition === LAST_PARTITION) return undefined;
  const match = /^(\d{4})(\d{2})(\d{2})$/.exec(partition);
  if (match === null) return undefined;
  return Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3]));
}

/** The partition id (`YYYYMMDD`) of a UTC day, e.g. `20251107`. */
export function partitionOf(time: number): string {
  return new Date(Math.floor(time / DAY_MS) * DAY_MS).toISOString().slice(0, 10).replaceAll('-', '');
}

/** Quotes an identifier (database or table name) with backquotes. */
export function quoteIdentifier(name: string): string {
  return `\`${name.replaceAll('\\', '\\\\').replaceAll('`', '\\`')}\``;
}

export type SqlValue = string | number | null | readonly (string | number | null)[];

/**
 * The one way a value enters a ClickHouse statement: ClickHouse 18.16 has no query parameters, so
 * values are written as literals. Strings are quoted with every backslash and quote escaped (and
 * NUL written as `\0`); numbers must be finite; arrays become tuples for `IN (...)`.
 *
 * @example
 * `SELECT * FROM alerts WHERE id = ${sqlLiteral("it's")}` // ... WHERE id = 'it\'s'
 */
export function sqlLiteral(value: SqlValue): string {
  if (value === null) return 'NULL';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`sqlLiteral: expected a finite number, got ${String(value)}`);
    return Object.is(value, -0) ? '0' : String(value);
  }
  if (typeof value === 'string') {
    return `'${value.replace(/[\\'\0]/g, (character) => (character === '\0' ? '\\0' : `\\${character}`))}'`;
  }
  // A list is for `IN (...)`, where `(x)` with one item is read as the list of that item.
  if (value.length === 0) throw new TypeError('sqlLiteral: expected a non-empty list');
  return `(${value.map((item) => sqlLiteral(item)).join(', ')})`;
}
