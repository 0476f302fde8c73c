import type { Pool, PoolClient, QueryResultRow } from 'pg';
import {
  GpError,
  SEVERITIES,
  STATS_PER_METRIC,
  type Aggregate,
  type Alert,
  type AlertEvent,
  type AlertStatus,
  type AlertTransition,
  type OpsEvent,
  type OpsKind,
  type Severity,
  type TransitionKind,
} from '../model/index.js';
import {
  DEFAULT_RETENTION,
  opsEventId,
  type AlertFilter,
  type DeviceStatus,
  type FleetSeriesPoint,
  type FleetSeriesQuery,
  type FleetSeriesResult,
  type QualityQuery,
  type QualityRow,
  type ReadingRow,
  type RetentionPolicy,
  type RetentionResult,
  type SeriesPoint,
  type SeriesQuery,
  type SeriesResult,
  type SchemaReport,
  type StatusQuery,
  type Store,
} from './store.js';
import { LazyConnection } from './lazy-connection.js';
import { finite, ms, nullableNumber, nullableText, rowToAlert, text } from './row-values.js';
import {
  MIGRATIONS_TABLE,
  POSTGRES_MIGRATIONS,
  POSTGRES_SCHEMA_VERSION,
  DAY_MS,
  dayStart,
  partitionDay,
  partitionName,
  quoteIdentifier,
  splitSchema,
  type PartitionedTable,
  type Partitioning,
} from './postgres-schema.js';
import {
  ALERT_STATUSES,
  DEFAULT_ALERT_LIMIT,
  FLEET_RESOLUTIONS,
  RESOLUTIONS,
  mergeRetention,
  oneOrMany,
  pickResolution,
  requireFinite,
  requireMaxPoints,
  requireOneOf,
  requireText,
  requireTimeRange,
} from './query-checks.js';
import { OPS_KINDS, readingRowId } from './row-identity.js';

const ALERT_TIMES = { opened: 'opened', updated: 'updated', resolved: 'resolved' };

export interface PostgresStoreOptions {
  /** A `postgres://` or `postgresql://` connection URL (libpq style; `?schema=name` picks the schema). */
  url: string;
  /** The schema that holds gridpulse's tables (created if missing); default `public`, or the URL's `schema` parameter. */
  schema?: string;
  /** Retention used by `applyRetention` when a call gives none; missing fields take `DEFAULT_RETENTION`. */
  retention?: Partial<RetentionPolicy>;
  /** Most pooled connections (default 4). */
  maxConnections?: number;
}

/**
 * A store in PostgreSQL (with TimescaleDB hypertables when the extension is available), for teams
 * that keep telemetry where Grafana and their other tools can reach it. See postgres-schema.ts for
 * the tables, partitioning and migrations.
 *
 * The store owns a `pg` Pool (loaded when the store first connects, so the embedded default never
 * needs `pg`); `ready()` connects and applies pending migrations; `close()` is idempotent, waits
 * for calls in flight and ends the pool. Several stores (processes) may write the same database at
 * once: every write is one idempotent statement per table.
 *
 * @example
 * const store = createPostgresStore({ url: 'postgres://gridpulse@localhost/telemetry' });
 * await store.ready();
 * await store.upsertAggregates(aggregates);
 * const points = await store.querySeries({ key: 'm-1', metric: 'usageKw', from, to, resolution: 'auto' });
 * await store.close();
 */
export function createPostgresStore(options: PostgresStoreOptions): Store & { readonly partitioning: Partitioning | undefined } {
  return new PostgresStore(options);
}

// PostgreSQL's SQLSTATE for "no partition of relation found for row" (a partition another store dropped).
const NO_PARTITION_FOR_ROW = '23514';
// Two stores upserting the same rows in different orders may deadlock; PostgreSQL aborts one of them.
const RETRIED_STATES = new Set(['40P01', '40001']);
const MAX_ATTEMPTS = 4;

type Cell = string | number | null;
/** Column name and its SQL array type, for `unnest` bulk inserts. */
type Column = readonly [string, 'text' | 'bigint' | 'integer' | 'float8' | 'jsonb'];

const READING_COLUMNS: readonly Column[] = [
  ['stream', 'text'], ['key', 'text'], ['site', 'text'], ['time_ms', 'bigint'], ['source_offset', 'bigint'], ['metric_values', 'jsonb'],
];
const AGGREGATE_COLUMNS: readonly Column[] = [
  ['stream', 'text'], ['key', 'text'], ['site', 'text'], ['window_name', 'text'], ['start_ms', 'bigint'], ['end_ms', 'bigint'],
  ['revision', 'integer'], ['reading_count', 'integer'], ['energy_kwh', 'float8'], ['metric', 'text'], ['stat_count', 'float8'],
  ['stat_min', 'float8'], ['stat_max', 'float8'], ['stat_avg', 'float8'], ['stat_sum', 'float8'], ['stat_stddev', 'float8'],
  ['stat_first', 'float8'], ['stat_last', 'float8'],
];
const ALERT_COLUMNS: readonly Column[] = [
  ['id', 'text'], ['stream', 'text'], ['key', 'text'], ['site', 'text'], ['type', 'text'], ['metric', 'text'], ['severity', 'text'],
  ['status', 'text'], ['opened_at_ms', 'bigint'], ['updated_at_ms', 'bigint'], ['resolved_at_ms', 'bigint'], ['score', 'float8'],
  ['peak_score', 'float8'], ['value', 'float8'], ['findings', 'integer'], ['explain', 'text'], ['last_seq', 'integer'],
];
const TRANSITION_COLUMNS: readonly Column[] = [
  ['id', 'text'], ['alert_id', 'text'], ['seq', 'integer'], ['kind', 'text'], ['time_ms', 'bigint'], ['status', 'text'],
  ['severity', 'text'], ['score', 'float8'], ['explain', 'text'],
];
const OPS_COLUMNS: readonly Column[] = [
  ['id', 'text'], ['kind', 'text'], ['stream', 'text'], ['key', 'text'], ['site', 'text'], ['time_ms', 'bigint'], ['watermark_ms', 'bigint'],
  ['source_offset', 'bigint'], ['reason', 'text'], ['field', 'text'], ['expected', 'text'], ['got', 'text'], ['lag_ms', 'bigint'],
  ['missed', 'integer'], ['at_ms', 'bigint'],
];

/**
 * `INSERT INTO table (columns) SELECT * FROM unnest($1::type[], ...)`: one parameter per column
 * whatever the batch size, so a batch is one statement and one round trip.
 */
function bulkInsert(table: string, columns: readonly Column[], tail: string): string {
  const names = columns.map(([name]) => name).join(', ');
  const arrays = columns.map(([, type], index) => `$${index + 1}::${type}[]`).join(', ');
  return `INSERT INTO ${table} (${names}) SELECT * FROM unnest(${arrays}) ${tail}`;
}

function updatesExcept(columns: readonly Column[], identity: readonly string[]): string {
  return columns
    .map(([name]) => name)
    .filter((name) => !identity.includes(name))
    .map((name) => `${name} = excluded.${name}`)
    .join(', ');
}

const INSERT_READINGS = bulkInsert('readings', READING_COLUMNS, 'ON CONFLICT (stream, key, time_ms, source_offset) DO NOTHING');
const UPSERT_AGGREGATES = bulkInsert(
  'aggregates',
  AGGREGATE_COLUMNS,
  `ON CONFLICT (stream, key, window_name, start_ms, metric) DO UPDATE SET ${updatesExcept(AGGREGATE_COLUMNS, ['stream', 'key', 'window_name', 'start_ms', 'metric'])}
   WHERE excluded.revision >= aggregates.revision`,
);
const UPSERT_ALERTS = bulkInsert(
  'alerts',
  ALERT_COLUMNS,
  `ON CONFLICT (id) DO UPDATE SET ${updatesExcept(ALERT_COLUMNS, ['id'])} WHERE excluded.last_seq >= alerts.last_seq`,
);
const INSERT_TRANSITIONS = bulkInsert('alert_transitions', TRANSITION_COLUMNS, 'ON CONFLICT (id) DO NOTHING');
// The transactional outbox (postgres-outbox.ts relays it): one row per transition, keyed by the
// transition id so a replayed transition adds none; inserted in the batch's order, which is the
// order a logical relay reads them back in.
const INSERT_OUTBOX = `INSERT INTO alert_outbox (id, alert_id, seq, payload)
  SELECT id, alert_id, seq, payload FROM unnest($1::text[], $2::text[], $3::integer[], $4::jsonb[]) WITH ORDINALITY AS batch(id, alert_id, seq, payload, position)
  ORDER BY position
  ON CONFLICT (id) DO NOTHING`;
const INSERT_OPS = bulkInsert('ops', OPS_COLUMNS, 'ON CONFLICT (id, at_ms) DO NOTHING');
// The last known site per device: a batch's (max) site replaces it when it says one.
const UPSERT_DEVICES = `INSERT INTO devices (stream, key, site)
  SELECT stream, key, max(site) FROM unnest($1::text[], $2::text[], $3::text[]) AS batch(stream, key, site)
  GROUP BY stream, key ORDER BY stream, key
  ON CONFLICT (stream, key) DO UPDATE SET site = excluded.site
  WHERE excluded.site IS NOT NULL AND excluded.site IS DISTINCT FROM devices.site`;

/** Columns of rows, for `unnest`: one array per column. */
function columnsOf(rows: readonly Cell[][], width: number): Cell[][] {
  const columns: Cell[][] = Array.from({ length: width }, () => new Array<Cell>(rows.length));
  rows.forEach((row, r) => {
    for (let c = 0; c < width; c++) (columns[c] as Cell[])[r] = row[c] ?? null;
  });
  return columns;
}

class PostgresStore implements Store {
  readonly kind = 'postgres';
  partitioning: Partitioning | undefined;
  private report: SchemaReport | undefined;
  private readonly url: string;
  private readonly schema: string;
  private readonly maxConnections: number;
  private readonly retention: RetentionPolicy;
  private readonly client = new LazyConnection(() => this.connect());
  private closing: Promise<void> | undefined;
  private readonly inFlight = new Set<Promise<unknown>>();
  // Day partitions known to exist, by name; forgotten when retention drops them or a write misses one.
  private readonly knownPartitions = new Set<string>();

  constructor(options: PostgresStoreOptions) {
    if (typeof options.url !== 'string' || !/^postgres(ql)?:\/\//i.test(options.url)) {
      throw new GpError('GP_CONFIG_INVALID', `store url: expected postgres://user@host:port/database, got ${JSON.stringify(redact(String(options.url)))}`, {
        field: 'url',
      });
    }
    const { url, schema } = splitSchema(options.url);
    this.url = url;
    this.schema = options.schema ?? schema ?? 'public';
    if (this.schema === '' || this.schema.length > 63) {
      throw new GpError('GP_CONFIG_INVALID', `schema: expected a PostgreSQL schema name (1 to 63 characters), got ${JSON.stringify(this.schema)}`, {
        field: 'schema',
      });
    }
    this.maxConnections = options.maxConnections ?? 4;
    if (!Number.isInteger(this.maxConnections) || this.maxConnections < 1) {
      throw new GpError('GP_CONFIG_INVALID', `maxConnections: expected a positive integer, got ${String(options.maxConnections)}`, {
        field: 'maxConnections',
      });
    }
    this.retention = mergeRetention(DEFAULT_RETENTION, options.retention, 'retention');
  }

  ready(): Promise<void> {
    if (this.closing !== undefined) return Promise.reject(closedError());
    return this.open().then(() => undefined);
  }

  async schemaReport(): Promise<SchemaReport> {
    await this.ready();
    return this.report!;
  }

  // ---- writes ----------------------------------------------------------------------------

  async writeReadings(rows: readonly ReadingRow[]): Promise<void> {
    if (rows.length === 0) return;
    const unique = new Map<string, ReadingRow>();
    rows.forEach((row, index) => {
      requireText(row.stream, `readings[${index}].stream`);
      requireText(row.key, `readings[${index}].key`);
      requireFinite(row.time, `readings[${index}].time`, 'epoch milliseconds');
      requireFinite(row.offset, `readings[${index}].offset`, 'a source offset');
      const id = readingRowId(row);
      if (!unique.has(id)) unique.set(id, row);
    });
    const cells = [...unique.values()].map((row): Cell[] => [
      row.stream, row.key, row.site ?? null, Math.round(row.time), Math.round(row.offset), JSON.stringify(row.values),
    ]);
    await this.writePartitioned('write readings', 'readings', [...unique.values()].map((row) => row.time), async (client) => {
      await client.query(INSERT_READINGS, columnsOf(cells, READING_COLUMNS.length));
      await upsertDevices(client, unique.values());
    });
  }

  async upsertAggregates(aggregates: readonly Aggregate[]): Promise<void> {
    if (aggregates.length === 0) return;
    // ON CONFLICT cannot touch one row twice in a statement, so the batch is reduced first with
    // the rule the table applies: a higher or equal revision wins (the later one on a tie).
    const winners = new Map<string, Aggregate>();
    aggregates.forEach((aggregate, index) => {
      const field = `aggregates[${index}]`;
      requireText(aggregate.stream, `${field}.stream`);
      requireText(aggregate.key, `${field}.key`);
      requireText(aggregate.window, `${field}.window`);
      requireFinite(aggregate.start, `${field}.start`, 'epoch milliseconds');
      requireFinite(aggregate.end, `${field}.end`, 'epoch milliseconds');
      requireFinite(aggregate.revision, `${field}.revision`, 'a revision number');
      const identity = `${aggregate.stream}\u0000${aggregate.key}\u0000${aggregate.window}\u0000${aggregate.start}`;
      const held = winners.get(identity);
      if (held === undefined || aggregate.revision >= held.revision) winners.set(identity, aggregate);
    });
    const cells: Cell[][] = [];
    for (const aggregate of winners.values()) aggregateRows(aggregate, cells);
    await this.writePartitioned('upsert aggregates', 'aggregates', [...winners.values()].map((a) => a.start), async (client) => {
      await client.query(UPSERT_AGGREGATES, columnsOf(cells, AGGREGATE_COLUMNS.length));
      await upsertDevices(client, winners.values());
    });
  }

  async writeAlertEvents(events: readonly AlertEvent[]): Promise<void> {
    if (events.length === 0) return;
    const alerts = new Map<string, AlertEvent>();
    const transitions = new Map<string, AlertTransition>();
    // The alert as it stood at each transition, for the outbox payload.
    const outbox = new Map<string, AlertEvent>();
    events.forEach((event, index) => {
      const { alert, transition } = event;
      const field = `events[${index}]`;
      requireText(alert.id, `${field}.alert.id`);
      requireText(alert.stream, `${field}.alert.stream`);
      requireText(alert.key, `${field}.alert.key`);
      requireFinite(alert.openedAt, `${field}.alert.openedAt`, 'epoch milliseconds');
      requireFinite(alert.updatedAt, `${field}.alert.updatedAt`, 'epoch milliseconds');
      requireText(transition.id, `${field}.transition.id`);
      requireFinite(transition.seq, `${field}.transition.seq`, 'a sequence number');
      requireFinite(transition.time, `${field}.transition.time`, 'epoch milliseconds');
      // The alert row keeps the state of its newest transition, so replays never move it back.
      const held = alerts.get(alert.id);
      if (held === undefined || transition.seq >= held.transition.seq) alerts.set(alert.id, event);
      if (!transitions.has(transition.id)) {
        transitions.set(transition.id, transition);
        outbox.set(transition.id, event);
      }
    });
    const alertCells = [...alerts.values()].map(({ alert: a, transition }): Cell[] => [
      a.id, a.stream, a.key, a.site ?? null, a.type, a.metric ?? null, a.severity, a.status, ms(a.openedAt), ms(a.updatedAt),
      ms(a.resolvedAt), finite(a.score), finite(a.peakScore), finite(a.value), Math.round(a.findings), a.explain, Math.round(transition.seq),
    ]);
    const transitionCells = [...transitions.values()].map((t): Cell[] => [
      t.id, t.alertId, Math.round(t.seq), t.kind, ms(t.time), t.status, t.severity, finite(t.score), t.explain,
    ]);
    const outboxRows = [...outbox.values()];
    const outboxColumns = [
      outboxRows.map(({ transition }) => transition.id),
      outboxRows.map(({ transition }) => transition.alertId),
      outboxRows.map(({ transition }) => Math.round(transition.seq)),
      outboxRows.map((event) => JSON.stringify({ alert: event.alert, transition: event.transition })),
    ];
    // One transaction: a transition is never committed without its outbox row, nor the reverse.
    await this.transaction('write alert events', async (client) => {
      await client.query(UPSERT_ALERTS, columnsOf(alertCells, ALERT_COLUMNS.length));
      await client.query(INSERT_TRANSITIONS, columnsOf(transitionCells, TRANSITION_COLUMNS.length));
      await client.query(INSERT_OUTBOX, outboxColumns);
    });
  }

  async writeOps(events: readonly OpsEvent[]): Promise<void> {
    if (events.length === 0) return;
    const unique = new Map<string, OpsEvent>();
    events.forEach((event, index) => {
      requireText(event.stream, `ops[${index}].stream`);
      if (!(OPS_KINDS as readonly string[]).includes(event.kind)) {
        throw new GpError('GP_INPUT_INVALID', `ops[${index}].kind: expected one of ${OPS_KINDS.join(', ')}, got ${JSON.stringify(event.kind)}`, {
          field: `ops[${index}].kind`,
        });
      }
      const id = opsEventId(event);
      if (!unique.has(id)) unique.set(id, event);
    });
    const times: number[] = [];
    const cells = [...unique].map(([id, e]): Cell[] => {
      // OpsEvent has no site today; a source that knows it may attach one.
      const site = (e as OpsEvent & { site?: unknown }).site;
      const at = ms(finite(e.time) ?? e.watermark);
      if (at !== null) times.push(at);
      return [
        id, e.kind, e.stream, e.key ?? null, typeof site === 'string' ? site : null, ms(e.time), ms(e.watermark), ms(e.offset),
        e.reason, e.field ?? null, e.expected ?? null, e.got ?? null, ms(e.lagMs), ms(e.missed), at,
      ];
    });
    await this.writePartitioned('write ops events', 'ops', times, async (client) => {
      await client.query(INSERT_OPS, columnsOf(cells, OPS_COLUMNS.length));
    });
  }

  async applyRetention(now: number, retention?: Partial<RetentionPolicy>): Promise<RetentionResult> {
    requireFinite(now, 'now', 'epoch milliseconds');
    const policy = mergeRetention(this.retention, retention, 'retention');
    const cutoff = (retentionMs: number): number => Math.round(now - retentionMs);
    return this.transaction('apply retention', async (client) => {
      // One retention at a time per schema, and never beside a partition being created.
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`gridpulse partitions ${this.schema}`]);
      const readingsCutoff = cutoff(policy.readingsMs);
      const readings = await countOf(client, 'SELECT count(*)::float8 FROM readings WHERE time_ms < $1', [readingsCutoff]);
      await this.dropPartitions(client, 'readings', readingsCutoff);
      await client.query('DELETE FROM readings WHERE time_ms < $1', [readingsCutoff]);
      // Aggregates are counted per window (stream, key, window, start), not per stored metric row.
      const aggregatesCutoff = cutoff(policy.aggregatesMs);
      const aggregates = await countOf(
        client,
        'SELECT count(*)::float8 FROM (SELECT DISTINCT stream, key, window_name, start_ms FROM aggregates WHERE start_ms < $1) w',
        [aggregatesCutoff],
      );
      await this.dropPartitions(client, 'aggregates', aggregatesCutoff);
      await client.query('DELETE FROM aggregates WHERE start_ms < $1', [aggregatesCutoff]);
      // Only resolved alerts age out, measured from when they resolved; open and acknowledged stay.
      const expired = `status = 'resolved' AND coalesce(resolved_at_ms, updated_at_ms, opened_at_ms) < $1`;
      const alertsCutoff = [cutoff(policy.alertsMs)];
      await client.query(`DELETE FROM alert_transitions WHERE alert_id IN (SELECT id FROM alerts WHERE ${expired})`, alertsCutoff);
      const alerts = (await client.query(`DELETE FROM alerts WHERE ${expired}`, alertsCutoff)).rowCount ?? 0;
      const opsCutoff = cutoff(policy.opsMs);
      const ops = await countOf(client, 'SELECT count(*)::float8 FROM ops WHERE at_ms < $1', [opsCutoff]);
      await this.dropPartitions(client, 'ops', opsCutoff);
      await client.query('DELETE FROM ops WHERE at_ms < $1', [opsCutoff]);
      return { readings, aggregates, alerts, ops };
    });
  }

  // ---- queries ---------------------------------------------------------------------------

  async querySeries(query: SeriesQuery): Promise<SeriesResult> {
    requireText(query.key, 'key');
    requireText(query.metric, 'metric');
    requireTimeRange(query.from, query.to);
    requireOneOf(query.resolution, RESOLUTIONS, 'resolution');
    const maxPoints = requireMaxPoints(query.maxPoints);
    const resolution = query.resolution === 'auto' ? pickResolution(query.from, query.to, maxPoints) : query.resolution;
    const params: unknown[] = [query.key, Math.round(query.from), Math.round(query.to), query.metric];
    let streamFilter = '';
    if (query.stream !== undefined) {
      params.push(query.stream);
      streamFilter = `AND stream = $${params.length}`;
    }
    let points: SeriesPoint[];
    if (resolution === 'raw') {
      // A value that is not a JSON number reads as null, as DuckDB's TRY_CAST does.
      const rows = await this.rows(
        'query series',
        `SELECT time_ms::float8 AS time,
                CASE WHEN jsonb_typeof(metric_values -> $4::text) = 'number' THEN (metric_values ->> $4::text)::float8 END AS value
         FROM readings
         WHERE key = $1 ${streamFilter} AND time_ms BETWEEN $2 AND $3
         ORDER BY time_ms, source_offset`,
        params,
      );
      points = rows.map((row) => {
        const value = nullableNumber(row['value']);
        return { time: Number(row['time']), count: value === null ? 0 : 1, min: value, max: value, avg: value, last: value };
      });
    } else {
      params.push(resolution);
      const rows = await this.rows(
        'query series',
        `SELECT start_ms::float8 AS time, stat_count, stat_min, stat_max, stat_avg, stat_last FROM aggregates
         WHERE window_name = $${params.length} AND key = $1 AND metric = $4 ${streamFilter} AND start_ms BETWEEN $2 AND $3
         ORDER BY start_ms, stream COLLATE "C"`,
        params,
      );
      points = rows.map((row) => ({
        time: Number(row['time']),
        count: nullableNumber(row['stat_count']) ?? 0,
        min: nullableNumber(row['stat_min']),
        max: nullableNumber(row['stat_max']),
        avg: nullableNumber(row['stat_avg']),
        last: nullableNumber(row['stat_last']),
      }));
    }
    return { key: query.key, metric: query.metric, resolution, points };
  }

  async queryFleetSeries(query: FleetSeriesQuery): Promise<FleetSeriesResult> {
    if (query.stream !== undefined) requireText(query.stream, 'stream');
    requireText(query.metric, 'metric');
    requireTimeRange(query.from, query.to);
    requireOneOf(query.resolution, FLEET_RESOLUTIONS, 'resolution');
    if (query.site !== undefined) requireText(query.site, 'site');
    const maxPoints = requireMaxPoints(query.maxPoints);
    const resolution = query.resolution === 'auto' ? pickResolution(query.from, query.to, maxPoints) : query.resolution;
    const params: unknown[] = [resolution, query.metric, Math.round(query.from), Math.round(query.to)];
    let filters = '';
    let siteJoin = '';
    if (query.stream !== undefined) {
      params.push(query.stream);
      filters += ` AND a.stream = $${params.length}`;
    }
    if (query.site !== undefined) {
      // An aggregate may not know its site; the device's last known site stands in for it then.
      siteJoin = 'LEFT JOIN devices d ON d.stream = a.stream AND d.key = a.key';
      params.push(query.site);
      filters += ` AND coalesce(a.site, d.site) = $${params.length}`;
    }
    const rows = await this.rows(
      'query fleet series',
      `SELECT a.start_ms::float8 AS time, count(a.stat_avg)::float8 AS devices, sum(a.stat_avg) AS sum,
              min(a.stat_avg) AS min, max(a.stat_avg) AS max
       FROM aggregates a ${siteJoin}
       WHERE a.window_name = $1 AND a.metric = $2 AND a.start_ms BETWEEN $3 AND $4${filters}
       GROUP BY a.start_ms
       ORDER BY a.start_ms`,
      params,
    );
    const points = rows.map((row): FleetSeriesPoint => {
      const devices = Number(row['devices']);
      const sum = devices === 0 ? null : nullableNumber(row['sum']);
      return {
        time: Number(row['time']),
        devices,
        sum,
        avg: sum === null ? null : sum / devices,
        min: nullableNumber(row['min']),
        max: nullableNumber(row['max']),
      };
    });
    return { metric: query.metric, resolution, points };
  }

  async latestStatus(query: StatusQuery): Promise<DeviceStatus[]> {
    if (query.keys !== undefined && query.keys.length === 0) return [];
    const params: unknown[] = [];
    let where = '';
    if (query.stream !== undefined) {
      params.push(query.stream);
      where += ` AND stream = $${params.length}`;
    }
    if (query.keys !== undefined) {
      params.push([...query.keys]);
      where += ` AND key = ANY($${params.length}::text[])`;
    }
    if (query.site !== undefined) {
      params.push(query.site);
      where += ` AND site = $${params.length}`;
    }
    const [windows, alertCounts] = await Promise.all([
      this.rows(
        'latest status',
        `WITH newest AS (
           SELECT stream, key, max(start_ms) AS start_ms FROM aggregates WHERE window_name = '1m'${where} GROUP BY stream, key
         )
         SELECT a.stream, a.key, a.site, a.end_ms::float8 AS end_ms, a.metric, a.stat_avg
         FROM aggregates a JOIN newest n ON a.stream = n.stream AND a.key = n.key AND a.start_ms = n.start_ms
         WHERE a.window_name = '1m'
         ORDER BY a.stream COLLATE "C", a.key COLLATE "C", a.metric COLLATE "C"`,
        params,
      ),
      this.rows(
        'latest status',
        `SELECT stream, key, count(*)::float8 AS open FROM alerts WHERE status IN ('open', 'acknowledged') GROUP BY stream, key`,
        [],
      ),
    ]);
    const openAlerts = new Map(alertCounts.map((row) => [`${text(row['stream'])}\u0000${text(row['key'])}`, Number(row['open'])]));
    const devices = new Map<string, DeviceStatus>();
    for (const row of windows) {
      const stream = text(row['stream']);
      const key = text(row['key']);
      const id = `${stream}\u0000${key}`;
      let device = devices.get(id);
      if (device === undefined) {
        device = { stream, key, site: nullableText(row['site']), lastSeen: Number(row['end_ms']), lastAvg: {}, openAlerts: openAlerts.get(id) ?? 0 };
        devices.set(id, device);
      }
      const metric = text(row['metric']);
      // An aggregate of a stream without metrics is stored under the empty name, to keep the window.
      if (metric !== '') device.lastAvg[metric] = nullableNumber(row['stat_avg']);
    }
    return [...devices.values()];
  }

  async listAlerts(filter: AlertFilter): Promise<Alert[]> {
    const filters: string[] = [];
    const params: unknown[] = [];
    const add = (sql: (placeholder: string) => string, value: unknown): void => {
      params.push(value);
      filters.push(sql(`$${params.length}`));
    };
    for (const field of ['stream', 'key', 'site', 'type'] as const) {
      const value = filter[field];
      if (value !== undefined) add((p) => `${field} = ${p}`, value);
    }
    const statuses = oneOrMany(filter.status, ALERT_STATUSES, 'status');
    if (statuses !== undefined) add((p) => `status = ANY(${p}::text[])`, statuses);
    const severities = oneOrMany(filter.severity, SEVERITIES, 'severity');
    if (severities !== undefined) add((p) => `severity = ANY(${p}::text[])`, severities);
    if (filter.from !== undefined) {
      requireFinite(filter.from, 'from', 'epoch milliseconds');
      // Still open (no resolvedAt) means the interval reaches +infinity.
      add((p) => `(resolved_at_ms IS NULL OR resolved_at_ms >= ${p})`, Math.round(filter.from));
    }
    if (filter.to !== undefined) {
      requireFinite(filter.to, 'to', 'epoch milliseconds');
      add((p) => `opened_at_ms <= ${p}`, Math.round(filter.to));
    }
    const limit = filter.limit ?? DEFAULT_ALERT_LIMIT;
    if (!Number.isInteger(limit) || limit < 1) {
      throw new GpError('GP_INPUT_INVALID', `limit: expected a positive integer, got ${String(filter.limit)}`, { field: 'limit' });
    }
    params.push(limit);
    const where = filters.length === 0 ? '' : `WHERE ${filters.join(' AND ')}`;
    const rows = await this.rows(
      'list alerts',
      `SELECT id, stream, key, site, type, metric, severity, status, opened_at_ms::float8 AS opened, updated_at_ms::float8 AS updated,
              resolved_at_ms::float8 AS resolved, score, peak_score, value, findings, explain
       FROM alerts ${where} ORDER BY opened_at_ms DESC, id COLLATE "C" LIMIT $${params.length}`,
      params,
    );
    return rows.map((row) => rowToAlert(row, ALERT_TIMES));
  }

  async alertTransitions(alertId: string): Promise<AlertTransition[]> {
    requireText(alertId, 'alertId');
    const rows = await this.rows(
      'alert transitions',
      `SELECT id, alert_id, seq, kind, time_ms::float8 AS time, status, severity, score, explain
       FROM alert_transitions WHERE alert_id = $1 ORDER BY seq`,
      [alertId],
    );
    return rows.map((row) => ({
      id: text(row['id']),
      alertId: text(row['alert_id']),
      seq: Number(row['seq']),
      kind: text(row['kind']) as TransitionKind,
      time: Number(row['time']),
      status: text(row['status']) as AlertStatus,
      severity: text(row['severity']) as Severity,
      score: nullableNumber(row['score']) ?? Number.NaN,
      explain: text(row['explain']),
    }));
  }

  async dataQuality(query: QualityQuery): Promise<QualityRow[]> {
    const by = query.by ?? 'key';
    if (by !== 'key' && by !== 'site') {
      throw new GpError('GP_INPUT_INVALID', `by: expected "key" or "site", got ${JSON.stringify(by)}`, { field: 'by' });
    }
    const filters: string[] = [];
    const params: unknown[] = [];
    if (query.stream !== undefined) {
      params.push(query.stream);
      filters.push(`o.stream = $${params.length}`);
    }
    if (query.from !== undefined) {
      requireFinite(query.from, 'from', 'epoch milliseconds');
      params.push(Math.round(query.from));
      filters.push(`o.at_ms >= $${params.length}`);
    }
    if (query.to !== undefined) {
      requireFinite(query.to, 'to', 'epoch milliseconds');
      params.push(Math.round(query.to));
      filters.push(`o.at_ms <= $${params.length}`);
    }
    const where = filters.length === 0 ? '' : `WHERE ${filters.join(' AND ')}`;
    const group = by === 'key' ? 'o.key' : 'coalesce(o.site, d.site)';
    const kindCounts = OPS_KINDS.map((kind, index) => `count(*) FILTER (WHERE o.kind = '${kind}')::float8 AS k${index}`).join(', ');
    const rows = await this.rows(
      'data quality',
      `SELECT o.stream, ${group} AS grp, count(*)::float8 AS total, ${kindCounts}
       FROM ops o LEFT JOIN devices d ON d.stream = o.stream AND d.key = o.key
       ${where}
       GROUP BY o.stream, ${group} ORDER BY o.stream COLLATE "C", ${group} COLLATE "C" NULLS LAST`,
      params,
    );
    return rows.map((row) => {
      const counts = {} as Record<OpsKind, number>;
      OPS_KINDS.forEach((kind, index) => {
        counts[kind] = Number(row[`k${index}`]);
      });
      return { stream: text(row['stream']), group: nullableText(row['grp']), counts, total: Number(row['total']) };
    });
  }

  async counts(): Promise<Record<'readings' | 'aggregates' | 'alerts' | 'transitions' | 'ops', number>> {
    const rows = await this.rows(
      'counts',
      `SELECT
         (SELECT count(*) FROM readings)::float8 AS readings,
         (SELECT count(*) FROM (SELECT DISTINCT stream, key, window_name, start_ms FROM aggregates) w)::float8 AS aggregates,
         (SELECT count(*) FROM alerts)::float8 AS alerts,
         (SELECT count(*) FROM alert_transitions)::float8 AS transitions,
         (SELECT count(*) FROM ops)::float8 AS ops`,
      [],
    );
    const row = rows[0] ?? {};
    return {
      readings: Number(row['readings']),
      aggregates: Number(row['aggregates']),
      alerts: Number(row['alerts']),
      transitions: Number(row['transitions']),
      ops: Number(row['ops']),
    };
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  // ---- plumbing --------------------------------------------------------------------------

  private open(): Promise<Pool> {
    return this.client.get();
  }

  private async connect(): Promise<Pool> {
    let pg: (typeof import('pg'))['default'];
    try {
      pg = (await import('pg')).default;
    } catch (cause) {
      throw new GpError('GP_STORE_FAILED', `the postgres store needs the "pg" package: npm install pg (${messageOf(cause)})`, {}, { cause });
    }
    const pool = new pg.Pool({
      connectionString: this.url,
      max: this.maxConnections,
      // Unqualified names in every statement resolve to the store's schema.
      options: `-c search_path=${quoteIdentifier(this.schema)}`,
    });
    // An idle client that loses its server must not crash the process; the next query reports it.
    pool.on('error', () => undefined);
    try {
      const client = guarded(await pool.connect());
      try {
        const migrated = await migrate(client, this.schema);
        this.partitioning = migrated.partitioning;
        this.report = {
          location: `PostgreSQL schema ${this.schema} at ${redact(this.url)}`,
          before: migrated.before,
          after: POSTGRES_SCHEMA_VERSION,
          applied: migrated.applied,
          notes: [
            migrated.partitioning === 'timescaledb'
              ? 'readings and aggregates are TimescaleDB hypertables (1-day chunks); ops is partitioned by day'
              : 'readings, aggregates and ops are partitioned by day (native declarative partitioning)',
          ],
        };
      } finally {
        client.release();
      }
      return pool;
    } catch (cause) {
      await pool.end().catch(() => undefined);
      if (cause instanceof GpError) throw cause;
      throw new GpError(
        'GP_STORE_FAILED',
        `cannot open PostgreSQL store at ${redact(this.url)} (schema ${this.schema}): ${messageOf(cause)}`,
        { url: redact(this.url), schema: this.schema },
        { cause },
      );
    }
  }

  /** Runs `task` on a pooled client; calls made while closing are refused, calls in flight finish first. */
  private run<T>(what: string, task: (client: PoolClient) => Promise<T>): Promise<T> {
    if (this.closing !== undefined) return Promise.reject(closedError());
    const result = (async () => {
      const pool = await this.open();
      const client = guarded(await pool.connect());
      try {
        return await task(client);
      } finally {
        client.release();
      }
    })().catch((cause: unknown) => rethrow(what, cause));
    const settled = result.catch(() => undefined);
    this.inFlight.add(settled);
    void settled.then(() => this.inFlight.delete(settled));
    return result;
  }

  private async rows(what: string, sql: string, params: unknown[]): Promise<QueryResultRow[]> {
    return this.run(what, async (client) => (await client.query<QueryResultRow>(sql, params)).rows);
  }

  /** Runs `body` in a transaction, again when PostgreSQL aborted it for a deadlock. */
  private transaction<T>(what: string, body: (client: PoolClient) => Promise<T>): Promise<T> {
    return this.run(what, async (client) => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await inTransaction(client, () => body(client));
        } catch (cause) {
          if (attempt >= MAX_ATTEMPTS || !RETRIED_STATES.has(String((cause as { code?: unknown }).code))) throw cause;
        }
      }
    });
  }

  /**
   * Makes sure the day partitions for `times` exist, then runs `body` in a transaction. A
   * partition dropped meanwhile by another store's retention is created again and the batch retried.
   */
  private async writePartitioned(what: string, table: PartitionedTable, times: readonly number[], body: (client: PoolClient) => Promise<void>): Promise<void> {
    await this.run(what, async (client) => {
      for (let attempt = 1; ; attempt++) {
        await this.ensurePartitions(client, table, times);
        try {
          await inTransaction(client, () => body(client));
          return;
        } catch (cause) {
          const state = (cause as { code?: unknown }).code;
          if (attempt >= MAX_ATTEMPTS || (state !== NO_PARTITION_FOR_ROW && !RETRIED_STATES.has(String(state)))) throw cause;
          if (state === NO_PARTITION_FOR_ROW) {
            for (const name of [...this.knownPartitions]) if (name.startsWith(`${table}_d`)) this.knownPartitions.delete(name);
          }
        }
      }
    });
  }

  private async ensurePartitions(client: PoolClient, table: PartitionedTable, times: readonly number[]): Promise<void> {
    if (this.partitioning === 'timescaledb' && table !== 'ops') return;
    const missing = new Map<string, number>();
    for (const time of times) {
      const day = dayStart(time);
      const name = partitionName(table, day);
      if (!this.knownPartitions.has(name)) missing.set(name, day);
    }
    if (missing.size === 0) return;
    // Its own short transaction, under the schema's partition lock, so two writers creating the
    // same day never collide and no insert holds the parent table's lock.
    await inTransaction(client, async () => {
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`gridpulse partitions ${this.schema}`]);
      for (const [name, day] of missing) {
        await client.query(
          `CREATE TABLE IF NOT EXISTS ${quoteIdentifier(name)} PARTITION OF ${table} FOR VALUES FROM (${day}) TO (${day + DAY_MS})`,
        );
      }
    });
    for (const name of missing.keys()) this.knownPartitions.add(name);
  }

  /** Drops the partitions (or TimescaleDB chunks) of `table` that lie wholly before `cutoff`. */
  private async dropPartitions(client: PoolClient, table: PartitionedTable, cutoff: number): Promise<void> {
    if (this.partitioning === 'timescaledb' && table !== 'ops') {
      await client.query(`SELECT drop_chunks($1::regclass, older_than => $2::bigint)`, [table, cutoff]);
      return;
    }
    const children = await client.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_inherits i
       JOIN pg_class c ON c.oid = i.inhrelid
       JOIN pg_class p ON p.oid = i.inhparent
       JOIN pg_namespace n ON n.oid = p.relnamespace
       WHERE p.relname = $1 AND n.nspname = $2`,
      [table, this.schema],
    );
    for (const { name } of children.rows) {
      const day = partitionDay(table, name);
      if (day === undefined || day + DAY_MS > cutoff) continue;
      await client.query(`DROP TABLE ${quoteIdentifier(name)}`);
      this.knownPartitions.delete(name);
    }
  }

  private async shutdown(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
    const opening = this.client.current;
    if (opening === undefined) return;
    const pool = await opening.catch(() => undefined);
    if (pool === undefined) return;
    try {
      await pool.end();
    } catch (cause) {
      throw new GpError('GP_STORE_FAILED', `closing PostgreSQL store at ${redact(this.url)}: ${messageOf(cause)}`, { url: redact(this.url) }, { cause });
    }
  }
}

// ---- migrations --------------------------------------------------------------------------

/**
 * Applies the pending migrations, each in its own transaction under the schema's migration lock,
 * and returns how the tables are partitioned, the version found and what was applied. Running it
 * again (or from a second store) is a no-op.
 */
async function migrate(
  client: PoolClient,
  schema: string,
): Promise<{ partitioning: Partitioning; before: number; applied: { version: number; name: string }[] }> {
  await inTransaction(client, async () => {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`gridpulse migrations ${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(schema)}`);
    await client.query(MIGRATIONS_TABLE);
  });
  const found = await client.query<{ version: number; partitioning: string }>('SELECT version, partitioning FROM schema_migrations ORDER BY version');
  const newest = found.rows.at(-1)?.version ?? 0;
  if (newest > POSTGRES_SCHEMA_VERSION) {
    throw new GpError(
      'GP_STORE_FAILED',
      `PostgreSQL schema ${schema} has schema version ${newest}, newer than this build understands (${POSTGRES_SCHEMA_VERSION}); upgrade gridpulse`,
      { schema, version: newest },
    );
  }
  // Chosen once, by the first migration; later migrations follow it.
  let partitioning = found.rows[0]?.partitioning as Partitioning | undefined;
  if (partitioning === undefined) {
    const timescale = await client.query(`SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'`);
    partitioning = (timescale.rowCount ?? 0) > 0 ? 'timescaledb' : 'native';
  }
  const applied: { version: number; name: string }[] = [];
  for (const migration of POSTGRES_MIGRATIONS) {
    await inTransaction(client, async () => {
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`gridpulse migrations ${schema}`]);
      // Checked under the lock: another store may have applied it meanwhile.
      const done = await client.query('SELECT 1 FROM schema_migrations WHERE version = $1', [migration.version]);
      if ((done.rowCount ?? 0) > 0) return;
      applied.push({ version: migration.version, name: migration.name });
      for (const statement of migration.statements(partitioning)) await client.query(statement);
      await client.query('INSERT INTO schema_migrations (version, name, partitioning) VALUES ($1, $2, $3)', [
        migration.version,
        migration.name,
        partitioning,
      ]);
    });
  }
  return { partitioning, before: newest, applied };
}

// ---- helpers -----------------------------------------------------------------------------

// A pooled client whose server goes away (a restart) emits 'error'; without a listener that event
// would end the process. The failure is reported by the next query on it instead.
const guardedClients = new WeakSet<PoolClient>();
function guarded(client: PoolClient): PoolClient {
  if (!guardedClients.has(client)) {
    guardedClients.add(client);
    client.on('error', () => undefined);
  }
  return client;
}

async function inTransaction<T>(client: PoolClient, body: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    const result = await body();
    await client.query('COMMIT');
    return result;
  } catch (cause) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw cause;
  }
}

async function upsertDevices(client: PoolClient, rows: Iterable<{ stream: string; key: string; site: string | undefined }>): Promise<void> {
  const streams: string[] = [];
  const keys: string[] = [];
  const sites: (string | null)[] = [];
  for (const row of rows) {
    streams.push(row.stream);
    keys.push(row.key);
    sites.push(row.site ?? null);
  }
  await client.query(UPSERT_DEVICES, [streams, keys, sites]);
}

async function countOf(client: PoolClient, sql: string, params: unknown[]): Promise<number> {
  const result = await client.query<{ count: number }>(sql, params);
  return Number(result.rows[0]?.count ?? 0);
}

function aggregateRows(a: Aggregate, out: Cell[][]): void {
  const head: Cell[] = [a.stream, a.key, a.site ?? null, a.window, Math.round(a.start), Math.round(a.end), Math.round(a.revision), Math.round(a.count), finite(a.energyKwh)];
  if (a.metrics.length === 0) {
    out.push([...head, '', 0, null, null, null, null, null, null, null]);
    return;
  }
  const seen = new Set<string>();
  for (let m = 0; m < a.metrics.length; m++) {
    const metric = a.metrics[m] as string;
    // A repeated metric name would make the upsert touch one row twice; the first one is kept.
    if (seen.has(metric)) continue;
    seen.add(metric);
    const base = m * STATS_PER_METRIC;
    const stat = (s: number): number | null => finite(a.stats[base + s]);
    out.push([...head, metric, stat(0) ?? 0, stat(1), stat(2), stat(3), stat(4), stat(5), stat(6), stat(7)]);
  }
}



/** Server URLs may carry a password; it never goes into a message or a log. */
function redact(url: string): string {
  return url.replace(/\/\/([^/@:]*):[^/@]*@/, '//$1:***@');
}

function messageOf(cause: unknown): string {
  if (cause instanceof AggregateError && cause.errors.length > 0) return cause.errors.map(messageOf).join('; ');
  return cause instanceof Error ? cause.message : String(cause);
}

function closedError(): GpError {
  return new GpError('GP_INTERNAL', 'the PostgreSQL store is closed: create a new one to keep using the database');
}

function rethrow(what: string, cause: unknown): never {
  if (cause instanceof GpError) throw cause;
  throw new GpError('GP_STORE_FAILED', `PostgreSQL store could not ${what}: ${messageOf(cause)}`, { operation: what }, { cause });
}
