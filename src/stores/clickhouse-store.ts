import type { ClickHouseClient } from '@clickhouse/client';
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
  type StatusQuery,
  type Store,
  type SchemaReport,
} from './store.js';
import { LazyConnection } from './lazy-connection.js';
import { finite, ms, nullableNumber, nullableText, rowToAlert, text } from './row-values.js';
import {
  CLICKHOUSE_MIGRATIONS,
  CLICKHOUSE_SCHEMA_VERSION,
  DAY_MS,
  MIGRATIONS_TABLE,
  PARTITIONED_TABLES,
  olderThan,
  partitionDay,
  quoteIdentifier,
  sqlLiteral,
  supportsTtl,
  ttlStatements,
  type PartitionedTable,
} from './clickhouse-schema.js';
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

const ALERT_TIMES = { opened: 'opened_at_ms', updated: 'updated_at_ms', resolved: 'resolved_at_ms' };

export interface ClickHouseStoreOptions {
  /**
   * `clickhouse://[user[:password]@]host[:port]/database` (HTTP interface, port 8123 by default;
   * database `gridpulse` when the URL names none; it is created if missing).
   */
  url: string;
  /** Retention used by `applyRetention` when a call gives none; missing fields take `DEFAULT_RETENTION`. */
  retention?: Partial<RetentionPolicy>;
  /**
   * Also let ClickHouse expire readings, aggregates and ops events by table TTL (measured from the
   * wall clock at merge time), from `retention`. Needs ClickHouse 19.6 or later; on older servers
   * `ttl` reads `'unsupported'` after `ready()`. Default false.
   */
  ttl?: boolean;
  /** How long `applyRetention` waits for a row-delete mutation to finish (default 300 s). */
  mutationTimeoutMs?: number;
}

/** What became of the `ttl` option once the store is ready. */
export type ClickHouseTtlState = 'off' | 'on' | 'unsupported';

/**
 * A store in ClickHouse, for long history. See clickhouse-schema.ts for the tables, engines,
 * partitions and migrations; it runs on ClickHouse 18.16 (Debian's) and later.
 *
 * The store owns one `@clickhouse/client` (HTTP; loaded when the store first connects, so the
 * embedded default never needs it); `ready()` creates the database if missing and applies pending
 * migrations; `close()` is idempotent, waits for calls in flight and closes the client. Several
 * stores (processes) may write the same database at once: every write is an insert that the
 * ReplacingMergeTree tables fold by identity, and every query reads with `FINAL`.
 *
 * @example
 * const store = createClickHouseStore({ url: 'clickhouse://127.0.0.1:8123/telemetry' });
 * await store.ready();
 * await store.upsertAggregates(aggregates);
 * const points = await store.querySeries({ key: 'm-1', metric: 'usageKw', from, to, resolution: 'auto' });
 * await store.close();
 */
export function createClickHouseStore(
  options: ClickHouseStoreOptions,
): Store & { readonly database: string; readonly serverVersion: string | undefined; readonly ttl: ClickHouseTtlState | undefined } {
  return new ClickHouseStore(options);
}

type Row = Record<string, unknown>;
type JsonRow = Record<string, string | number | null | readonly (string | number | null)[]>;

const DEFAULT_DATABASE = 'gridpulse';
const DEFAULT_PORT = 8123;
const UINT32_MAX = 4_294_967_295;

// "Insert once" tables keep the row with the highest precedence: earlier writes rank higher, so a
// replay never replaces what was stored first. Microseconds since 1970 stay below 2^53 until 2255.
let lastWriteStamp = 0;
function nextPrecedence(): number {
  const stamp = Math.max(Date.now() * 1000, lastWriteStamp + 1);
  lastWriteStamp = stamp;
  return Number.MAX_SAFE_INTEGER - stamp;
}

interface ParsedUrl {
  origin: string;
  username: string | undefined;
  password: string | undefined;
  database: string;
}

function parseUrl(url: string): ParsedUrl {
  const expected = 'clickhouse://[user[:password]@]host[:port]/database';
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new GpError('GP_STORE_URL_INVALID', `url: expected ${expected}, got ${JSON.stringify(redact(url))}`, { field: 'url' });
  }
  if (parsed.protocol !== 'clickhouse:' || parsed.hostname === '') {
    throw new GpError('GP_STORE_URL_INVALID', `url: expected ${expected}, got ${JSON.stringify(redact(url))}`, { field: 'url' });
  }
  const path = decodeURIComponent(parsed.pathname.replace(/^\/+|\/+$/g, ''));
  const database = path === '' ? DEFAULT_DATABASE : path;
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(database)) {
    throw new GpError(
      'GP_STORE_URL_INVALID',
      `url: expected a database name of letters, digits and underscores (not starting with a digit), got ${JSON.stringify(database)}`,
      { field: 'url' },
    );
  }
  return {
    origin: `http://${parsed.hostname}:${parsed.port === '' ? DEFAULT_PORT : parsed.port}`,
    username: parsed.username === '' ? undefined : decodeURIComponent(parsed.username),
    password: parsed.password === '' ? undefined : decodeURIComponent(parsed.password),
    database,
  };
}

class ClickHouseStore implements Store {
  readonly kind = 'clickhouse';
  readonly database: string;
  serverVersion: string | undefined;
  private report: SchemaReport | undefined;
  ttl: ClickHouseTtlState | undefined;
  private readonly url: string;
  private readonly connection: ParsedUrl;
  private readonly retention: RetentionPolicy;
  private readonly useTtl: boolean;
  private readonly mutationTimeoutMs: number;
  private readonly client = new LazyConnection(() => this.connect());
  private closing: Promise<void> | undefined;
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(options: ClickHouseStoreOptions) {
    if (typeof options.url !== 'string' || options.url.trim() === '') {
      throw new GpError('GP_STORE_URL_INVALID', `url: expected a clickhouse:// URL, got ${JSON.stringify(options.url)}`, { field: 'url' });
    }
    this.url = options.url.trim();
    this.connection = parseUrl(this.url);
    this.database = this.connection.database;
    this.retention = mergeRetention(DEFAULT_RETENTION, options.retention, 'retention');
    this.useTtl = options.ttl ?? false;
    this.mutationTimeoutMs = options.mutationTimeoutMs ?? 300_000;
    if (!Number.isFinite(this.mutationTimeoutMs) || this.mutationTimeoutMs <= 0) {
      throw new GpError('GP_CONFIG_INVALID', `mutationTimeoutMs: expected a positive number of milliseconds, got ${String(options.mutationTimeoutMs)}`, {
        field: 'mutationTimeoutMs',
      });
    }
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
    const precedence = nextPrecedence();
    const values: JsonRow[] = [];
    for (const row of unique.values()) {
      const names = Object.keys(row.values);
      values.push({
        stream: row.stream,
        key: row.key,
        site: row.site ?? null,
        time_ms: Math.round(row.time),
        source_offset: Math.round(row.offset),
        metric_names: names,
        metric_values: names.map((name) => finite(row.values[name])),
        precedence,
      });
    }
    await this.run('write readings', async (client) => {
      await insert(client, 'readings', values);
      await insert(client, 'devices', deviceRows(unique.values()));
    });
  }

  async upsertAggregates(aggregates: readonly Aggregate[]): Promise<void> {
    if (aggregates.length === 0) return;
    // Reduced first with the rule the table applies: a higher or equal revision wins (the later one on a tie).
    const winners = new Map<string, Aggregate>();
    aggregates.forEach((aggregate, index) => {
      const field = `aggregates[${index}]`;
      requireText(aggregate.stream, `${field}.stream`);
      requireText(aggregate.key, `${field}.key`);
      requireText(aggregate.window, `${field}.window`);
      requireFinite(aggregate.start, `${field}.start`, 'epoch milliseconds');
      requireFinite(aggregate.end, `${field}.end`, 'epoch milliseconds');
      requireFinite(aggregate.revision, `${field}.revision`, 'a revision number');
      requireVersion(aggregate.revision, `${field}.revision`, 'a revision number');
      const identity = `${aggregate.stream}\u0000${aggregate.key}\u0000${aggregate.window}\u0000${aggregate.start}`;
      const held = winners.get(identity);
      if (held === undefined || aggregate.revision >= held.revision) winners.set(identity, aggregate);
    });
    const values: JsonRow[] = [];
    for (const aggregate of winners.values()) aggregateRows(aggregate, values);
    await this.run('upsert aggregates', async (client) => {
      await insert(client, 'aggregates', values);
      await insert(client, 'devices', deviceRows(winners.values()));
    });
  }

  async writeAlertEvents(events: readonly AlertEvent[]): Promise<void> {
    if (events.length === 0) return;
    const alerts = new Map<string, AlertEvent>();
    const transitions = new Map<string, AlertTransition>();
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
      requireVersion(transition.seq, `${field}.transition.seq`, 'a sequence number');
      requireFinite(transition.time, `${field}.transition.time`, 'epoch milliseconds');
      // The alert row keeps the state of its newest transition, so replays never move it back.
      const held = alerts.get(alert.id);
      if (held === undefined || transition.seq >= held.transition.seq) alerts.set(alert.id, event);
      if (!transitions.has(transition.id)) transitions.set(transition.id, transition);
    });
    const alertRows = [...alerts.values()].map(({ alert: a, transition }): JsonRow => ({
      id: a.id,
      stream: a.stream,
      key: a.key,
      site: a.site ?? null,
      type: a.type,
      metric: a.metric ?? null,
      severity: a.severity,
      status: a.status,
      opened_at_ms: ms(a.openedAt),
      updated_at_ms: ms(a.updatedAt),
      resolved_at_ms: ms(a.resolvedAt),
      score: finite(a.score),
      peak_score: finite(a.peakScore),
      value: finite(a.value),
      findings: Math.round(a.findings),
      explain: a.explain,
      last_seq: Math.round(transition.seq),
    }));
    const precedence = nextPrecedence();
    const transitionRows = [...transitions.values()].map((t): JsonRow => ({
      id: t.id,
      alert_id: t.alertId,
      seq: Math.round(t.seq),
      kind: t.kind,
      time_ms: ms(t.time),
      status: t.status,
      severity: t.severity,
      score: finite(t.score),
      explain: t.explain,
      precedence,
    }));
    await this.run('write alert events', async (client) => {
      // Transitions first: an alert row never points at a history that is not stored yet.
      await insert(client, 'alert_transitions', transitionRows);
      await insert(client, 'alerts', alertRows);
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
    const precedence = nextPrecedence();
    const values = [...unique].map(([id, e]): JsonRow => {
      // OpsEvent has no site today; a source that knows it may attach one.
      const site = (e as OpsEvent & { site?: unknown }).site;
      const at = ms(finite(e.time) ?? e.watermark);
      return {
        id,
        kind: e.kind,
        stream: e.stream,
        key: e.key ?? null,
        site: typeof site === 'string' ? site : null,
        time_ms: ms(e.time),
        watermark_ms: ms(e.watermark),
        source_offset: ms(e.offset),
        reason: e.reason,
        field: e.field ?? null,
        expected: e.expected ?? null,
        got: e.got ?? null,
        lag_ms: ms(e.lagMs),
        missed: ms(e.missed),
        has_time: at === null ? 0 : 1,
        at_ms: at ?? 0,
        precedence,
      };
    });
    await this.run('write ops events', (client) => insert(client, 'ops', values));
  }

  async applyRetention(now: number, retention?: Partial<RetentionPolicy>): Promise<RetentionResult> {
    requireFinite(now, 'now', 'epoch milliseconds');
    const policy = mergeRetention(this.retention, retention, 'retention');
    const cutoff = (retentionMs: number): number => Math.round(now - retentionMs);
    return this.run('apply retention', async (client) => {
      const readingsCutoff = cutoff(policy.readingsMs);
      const readings = await countOf(client, `SELECT count() AS n FROM readings FINAL WHERE ${olderThan('readings', readingsCutoff)}`);
      if (readings > 0) await this.trimTable(client, 'readings', readingsCutoff);
      // Aggregates are counted per window (stream, key, window, start), not per stored metric row.
      const aggregatesCutoff = cutoff(policy.aggregatesMs);
      const aggregates = await countOf(
        client,
        `SELECT count() AS n FROM (SELECT DISTINCT stream, key, window_name, start_ms FROM aggregates WHERE ${olderThan('aggregates', aggregatesCutoff)})`,
      );
      if (aggregates > 0) await this.trimTable(client, 'aggregates', aggregatesCutoff);
      // Only resolved alerts age out, measured from when they resolved; open and acknowledged stay.
      // Deleted by id, so that every stored version of such an alert goes, and none of an open one.
      const expired = await select(
        client,
        `SELECT id FROM alerts FINAL
         WHERE status = 'resolved' AND coalesce(resolved_at_ms, updated_at_ms, opened_at_ms) < ${sqlLiteral(cutoff(policy.alertsMs))}`,
      );
      const expiredIds = expired.map((row) => text(row['id']));
      for (let start = 0; start < expiredIds.length; start += 10_000) {
        const ids = sqlLiteral(expiredIds.slice(start, start + 10_000));
        await this.mutate(client, 'alert_transitions', `alert_id IN ${ids}`);
        await this.mutate(client, 'alerts', `id IN ${ids}`);
      }
      const opsCutoff = cutoff(policy.opsMs);
      const ops = await countOf(client, `SELECT count() AS n FROM ops FINAL WHERE ${olderThan('ops', opsCutoff)}`);
      if (ops > 0) await this.trimTable(client, 'ops', opsCutoff);
      return { readings, aggregates, alerts: expiredIds.length, ops };
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
    const key = sqlLiteral(query.key);
    const range = `BETWEEN ${sqlLiteral(Math.round(query.from))} AND ${sqlLiteral(Math.round(query.to))}`;
    const streamFilter = query.stream === undefined ? '' : `AND stream = ${sqlLiteral(query.stream)}`;
    let points: SeriesPoint[];
    if (resolution === 'raw') {
      // A metric the reading does not have reads as null (index 0 of an array is its default).
      const rows = await this.rows(
        'query series',
        `SELECT time_ms, metric_values[indexOf(metric_names, ${sqlLiteral(query.metric)})] AS value
         FROM readings FINAL
         WHERE key = ${key} ${streamFilter} AND time_ms ${range}
         ORDER BY time_ms, source_offset`,
      );
      points = rows.map((row) => {
        const value = nullableNumber(row['value']);
        return { time: Number(row['time_ms']), count: value === null ? 0 : 1, min: value, max: value, avg: value, last: value };
      });
    } else {
      const rows = await this.rows(
        'query series',
        `SELECT start_ms, stat_count, stat_min, stat_max, stat_avg, stat_last FROM aggregates FINAL
         WHERE window_name = ${sqlLiteral(resolution)} AND key = ${key} AND metric = ${sqlLiteral(query.metric)} ${streamFilter} AND start_ms ${range}
         ORDER BY start_ms, stream`,
      );
      points = rows.map((row) => ({
        time: Number(row['start_ms']),
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
    const streamFilter = query.stream === undefined ? '' : ` AND stream = ${sqlLiteral(query.stream)}`;
    let siteJoin = '';
    let siteFilter = '';
    if (query.site !== undefined) {
      // An aggregate may not know its site; the device's last known site stands in for it then.
      siteJoin = `ANY LEFT JOIN (${DEVICE_SITES}) USING (stream, key)`;
      siteFilter = `WHERE coalesce(site, device_site) = ${sqlLiteral(query.site)}`;
    }
    // sumKahan keeps the fleet sum independent of the order rows arrive in (DuckDB uses fsum).
    const rows = await this.rows(
      'query fleet series',
      `SELECT start_ms, count(stat_avg) AS devices, sumKahan(stat_avg) AS total, min(stat_avg) AS lowest, max(stat_avg) AS highest
       FROM (
         SELECT stream, key, site, start_ms, stat_avg FROM aggregates FINAL
         WHERE window_name = ${sqlLiteral(resolution)} AND metric = ${sqlLiteral(query.metric)}
           AND start_ms BETWEEN ${sqlLiteral(Math.round(query.from))} AND ${sqlLiteral(Math.round(query.to))}${streamFilter}
       ) ${siteJoin}
       ${siteFilter}
       GROUP BY start_ms
       ORDER BY start_ms`,
    );
    const points = rows.map((row): FleetSeriesPoint => {
      const devices = Number(row['devices']);
      const sum = devices === 0 ? null : nullableNumber(row['total']);
      return {
        time: Number(row['start_ms']),
        devices,
        sum,
        avg: sum === null ? null : sum / devices,
        min: nullableNumber(row['lowest']),
        max: nullableNumber(row['highest']),
      };
    });
    return { metric: query.metric, resolution, points };
  }

  async latestStatus(query: StatusQuery): Promise<DeviceStatus[]> {
    if (query.keys !== undefined && query.keys.length === 0) return [];
    let where = `window_name = '1m'`;
    if (query.stream !== undefined) where += ` AND stream = ${sqlLiteral(query.stream)}`;
    if (query.keys !== undefined) where += ` AND key IN ${sqlLiteral([...query.keys])}`;
    const siteFilter = query.site === undefined ? '' : ` AND site = ${sqlLiteral(query.site)}`;
    const [windows, alertCounts] = await Promise.all([
      this.rows(
        'latest status',
        `SELECT stream, key, site, end_ms, metric, stat_avg FROM aggregates FINAL
         WHERE ${where} AND (stream, key, start_ms) IN (
           SELECT stream, key, max(start_ms) FROM aggregates FINAL WHERE ${where}${siteFilter} GROUP BY stream, key
         )
         ORDER BY stream, key, metric`,
      ),
      this.rows(
        'latest status',
        `SELECT stream, key, count() AS open FROM alerts FINAL WHERE status IN ('open', 'acknowledged') GROUP BY stream, key`,
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
    for (const field of ['stream', 'key', 'site', 'type'] as const) {
      const value = filter[field];
      if (value !== undefined) filters.push(`${field} = ${sqlLiteral(value)}`);
    }
    const statuses = oneOrMany(filter.status, ALERT_STATUSES, 'status');
    if (statuses !== undefined) filters.push(statuses.length === 0 ? '0' : `status IN ${sqlLiteral(statuses)}`);
    const severities = oneOrMany(filter.severity, SEVERITIES, 'severity');
    if (severities !== undefined) filters.push(severities.length === 0 ? '0' : `severity IN ${sqlLiteral(severities)}`);
    if (filter.from !== undefined) {
      requireFinite(filter.from, 'from', 'epoch milliseconds');
      // Still open (no resolvedAt) means the interval reaches +infinity.
      filters.push(`(resolved_at_ms IS NULL OR resolved_at_ms >= ${sqlLiteral(Math.round(filter.from))})`);
    }
    if (filter.to !== undefined) {
      requireFinite(filter.to, 'to', 'epoch milliseconds');
      filters.push(`opened_at_ms <= ${sqlLiteral(Math.round(filter.to))}`);
    }
    const limit = filter.limit ?? DEFAULT_ALERT_LIMIT;
    if (!Number.isInteger(limit) || limit < 1) {
      throw new GpError('GP_INPUT_INVALID', `limit: expected a positive integer, got ${String(filter.limit)}`, { field: 'limit' });
    }
    const where = filters.length === 0 ? '' : `WHERE ${filters.join(' AND ')}`;
    const rows = await this.rows(
      'list alerts',
      `SELECT id, stream, key, site, type, metric, severity, status, opened_at_ms, updated_at_ms, resolved_at_ms,
              score, peak_score, value, findings, explain
       FROM alerts FINAL ${where} ORDER BY opened_at_ms DESC, id LIMIT ${sqlLiteral(limit)}`,
    );
    return rows.map((row) => rowToAlert(row, ALERT_TIMES));
  }

  async alertTransitions(alertId: string): Promise<AlertTransition[]> {
    requireText(alertId, 'alertId');
    const rows = await this.rows(
      'alert transitions',
      `SELECT id, alert_id, seq, kind, time_ms, status, severity, score, explain
       FROM alert_transitions FINAL WHERE alert_id = ${sqlLiteral(alertId)} ORDER BY seq, id`,
    );
    return rows.map((row) => ({
      id: text(row['id']),
      alertId: text(row['alert_id']),
      seq: Number(row['seq']),
      kind: text(row['kind']) as TransitionKind,
      time: Number(row['time_ms']),
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
    if (query.stream !== undefined) filters.push(`stream = ${sqlLiteral(query.stream)}`);
    if (query.from !== undefined) {
      requireFinite(query.from, 'from', 'epoch milliseconds');
      filters.push(`has_time = 1 AND at_ms >= ${sqlLiteral(Math.round(query.from))}`);
    }
    if (query.to !== undefined) {
      requireFinite(query.to, 'to', 'epoch milliseconds');
      filters.push(`has_time = 1 AND at_ms <= ${sqlLiteral(Math.round(query.to))}`);
    }
    const where = filters.length === 0 ? '' : `WHERE ${filters.join(' AND ')}`;
    const group = by === 'key' ? 'key' : 'coalesce(site, device_site)';
    const join = by === 'key' ? '' : `ANY LEFT JOIN (${DEVICE_SITES}) USING (stream, key)`;
    const kindCounts = OPS_KINDS.map((kind, index) => `countIf(kind = ${sqlLiteral(kind)}) AS k${index}`).join(', ');
    const rows = await this.rows(
      'data quality',
      `SELECT stream, ${group} AS grp, count() AS total, ${kindCounts}
       FROM (SELECT stream, key, site, kind FROM ops FINAL ${where}) ${join}
       GROUP BY stream, grp ORDER BY stream, grp`,
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
         (SELECT count() FROM readings FINAL) AS readings,
         (SELECT count() FROM (SELECT DISTINCT stream, key, window_name, start_ms FROM aggregates)) AS aggregates,
         (SELECT count() FROM alerts FINAL) AS alerts,
         (SELECT count() FROM alert_transitions FINAL) AS transitions,
         (SELECT count() FROM ops FINAL) AS ops`,
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

  private open(): Promise<ClickHouseClient> {
    return this.client.get();
  }

  private async connect(): Promise<ClickHouseClient> {
    let clickhouse: typeof import('@clickhouse/client');
    try {
      clickhouse = await import('@clickhouse/client');
    } catch (cause) {
      throw new GpError(
        'GP_STORE_FAILED',
        `the clickhouse store needs the "@clickhouse/client" package: npm install @clickhouse/client (${messageOf(cause)})`,
        {},
        { cause },
      );
    }
    const { origin, username, password } = this.connection;
    const settings = {
      url: origin,
      // The client's own log would print failed requests to stderr; the store reports them as GpErrors.
      log: { level: clickhouse.ClickHouseLogLevel.OFF },
      ...(username === undefined ? {} : { username }),
      ...(password === undefined ? {} : { password }),
    };
    // The database may not exist yet: it is created over a connection to the user's default one.
    const bootstrap = clickhouse.createClient(settings);
    let client: ClickHouseClient | undefined;
    try {
      const [version] = await select(bootstrap, 'SELECT version() AS version');
      this.serverVersion = text(version?.['version']);
      await bootstrap.command({ query: `CREATE DATABASE IF NOT EXISTS ${quoteIdentifier(this.database)}` });
      client = clickhouse.createClient({ ...settings, database: this.database });
      const migrated = await migrate(client, this.database);
      this.ttl = await this.applyTtl(client);
      this.report = {
        location: `ClickHouse database ${this.database} at ${redact(this.url)}`,
        before: migrated.before,
        after: CLICKHOUSE_SCHEMA_VERSION,
        applied: migrated.applied,
        notes: [
          `server ${this.serverVersion ?? 'unknown'}; readings, aggregates and ops are partitioned by day; table TTL ${this.ttl}`,
        ],
      };
      return client;
    } catch (cause) {
      await client?.close().catch(() => undefined);
      if (cause instanceof GpError) throw cause;
      throw new GpError(
        'GP_STORE_FAILED',
        `cannot open ClickHouse store at ${redact(this.url)} (database ${this.database}): ${messageOf(cause)}`,
        { url: redact(this.url), database: this.database },
        { cause },
      );
    } finally {
      await bootstrap.close().catch(() => undefined);
    }
  }

  /** Sets the TTL of the day-partitioned tables when asked to and the server has TTL; changes nothing when it is already set. */
  private async applyTtl(client: ClickHouseClient): Promise<ClickHouseTtlState> {
    if (!this.useTtl) return 'off';
    if (this.serverVersion === undefined || !supportsTtl(this.serverVersion)) return 'unsupported';
    const tables = await select(
      client,
      `SELECT name, engine_full FROM system.tables WHERE database = ${sqlLiteral(this.database)} AND name IN ${sqlLiteral(Object.keys(PARTITIONED_TABLES))}`,
    );
    const engines = new Map(tables.map((row) => [text(row['name']), text(row['engine_full'])]));
    for (const { table, seconds, statement } of ttlStatements(this.retention)) {
      if ((engines.get(table) ?? '').includes(`toIntervalSecond(${seconds})`)) continue;
      await client.command({ query: statement });
    }
    return 'on';
  }

  /** Runs `task` with the client; calls made while closing are refused, calls in flight finish first. */
  private run<T>(what: string, task: (client: ClickHouseClient) => Promise<T>): Promise<T> {
    if (this.closing !== undefined) return Promise.reject(closedError());
    const result = (async () => task(await this.open()))().catch((cause: unknown) => rethrow(what, cause));
    const settled = result.catch(() => undefined);
    this.inFlight.add(settled);
    void settled.then(() => this.inFlight.delete(settled));
    return result;
  }

  private rows(what: string, sql: string): Promise<Row[]> {
    return this.run(what, (client) => select(client, sql));
  }

  /**
   * Removes the rows of `table` older than `cutoff`: whole days before it by DROP PARTITION, then
   * the rest (the day the cutoff falls in) by a DELETE mutation, waited for, so that no later
   * query sees a removed row.
   */
  private async trimTable(client: ClickHouseClient, table: PartitionedTable, cutoff: number): Promise<void> {
    const partitions = await select(
      client,
      `SELECT DISTINCT partition FROM system.parts WHERE database = ${sqlLiteral(this.database)} AND table = ${sqlLiteral(table)} AND active`,
    );
    for (const row of partitions) {
      const partition = text(row['partition']);
      const day = partitionDay(partition);
      if (day === undefined || day + DAY_MS > cutoff) continue;
      await client.command({ query: `ALTER TABLE ${table} DROP PARTITION ${sqlLiteral(Number(partition))}` });
    }
    const left = await countOf(client, `SELECT count() AS n FROM ${table} WHERE ${olderThan(table, cutoff)}`);
    if (left > 0) await this.mutate(client, table, olderThan(table, cutoff));
  }

  /** `ALTER TABLE ... DELETE WHERE` and waits until ClickHouse has applied it (18.16 has no `mutations_sync`). */
  private async mutate(client: ClickHouseClient, table: string, condition: string): Promise<void> {
    await client.command({ query: `ALTER TABLE ${table} DELETE WHERE ${condition}` });
    const deadline = Date.now() + this.mutationTimeoutMs;
    for (let pause = 10; ; pause = Math.min(pause * 2, 250)) {
      const pending = await countOf(
        client,
        `SELECT count() AS n FROM system.mutations WHERE database = ${sqlLiteral(this.database)} AND table = ${sqlLiteral(table)} AND is_done = 0`,
      );
      if (pending === 0) return;
      if (Date.now() > deadline) {
        throw new GpError(
          'GP_STORE_FAILED',
          `ClickHouse store: deleting old rows of ${this.database}.${table} did not finish within ${this.mutationTimeoutMs} ms (see system.mutations)`,
          { database: this.database, table },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }

  private async shutdown(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
    const opening = this.client.current;
    if (opening === undefined) return;
    const client = await opening.catch(() => undefined);
    if (client === undefined) return;
    try {
      await client.close();
    } catch (cause) {
      throw new GpError('GP_STORE_FAILED', `closing ClickHouse store at ${redact(this.url)}: ${messageOf(cause)}`, { url: redact(this.url) }, { cause });
    }
  }
}

/** Each device's last known site, as a nullable column for a LEFT JOIN (a device without one reads as null). */
const DEVICE_SITES = 'SELECT stream, key, CAST(site AS Nullable(String)) AS device_site FROM devices FINAL';

// ---- migrations --------------------------------------------------------------------------

/**
 * Applies the pending migrations and records each in `schema_migrations`. Running it again (or
 * from a second store) is a no-op: every statement is `IF NOT EXISTS`.
 */
async function migrate(client: ClickHouseClient, database: string): Promise<{ before: number; applied: { version: number; name: string }[] }> {
  await client.command({ query: MIGRATIONS_TABLE });
  const applied = new Set((await select(client, 'SELECT DISTINCT version FROM schema_migrations')).map((row) => Number(row['version'])));
  const newest = Math.max(0, ...applied);
  if (newest > CLICKHOUSE_SCHEMA_VERSION) {
    throw new GpError(
      'GP_STORE_FAILED',
      `ClickHouse database ${database} has schema version ${newest}, newer than this build understands (${CLICKHOUSE_SCHEMA_VERSION}); upgrade gridpulse`,
      { database, version: newest },
    );
  }
  const done: { version: number; name: string }[] = [];
  for (const migration of CLICKHOUSE_MIGRATIONS) {
    if (applied.has(migration.version)) continue;
    for (const statement of migration.statements) await client.command({ query: statement });
    await insert(client, 'schema_migrations', [{ version: migration.version, name: migration.name }]);
    done.push({ version: migration.version, name: migration.name });
  }
  return { before: newest, applied: done };
}

// ---- helpers -----------------------------------------------------------------------------

async function select(client: ClickHouseClient, sql: string): Promise<Row[]> {
  const result = await client.query({ query: sql, format: 'JSONEachRow' });
  return result.json<Row>();
}

async function insert(client: ClickHouseClient, table: string, values: readonly JsonRow[]): Promise<void> {
  if (values.length === 0) return;
  await client.insert({ table, values: values as JsonRow[], format: 'JSONEachRow' });
}

async function countOf(client: ClickHouseClient, sql: string): Promise<number> {
  const [row] = await select(client, sql);
  return Number(row?.['n'] ?? 0);
}

/** The last known site per device in a batch: its (max) site, when it says one. */
function deviceRows(rows: Iterable<{ stream: string; key: string; site: string | undefined }>): JsonRow[] {
  const sites = new Map<string, { stream: string; key: string; site: string }>();
  for (const row of rows) {
    if (row.site === undefined || row.site === null) continue;
    const id = `${row.stream}\u0000${row.key}`;
    const held = sites.get(id);
    if (held === undefined || row.site > held.site) sites.set(id, { stream: row.stream, key: row.key, site: row.site });
  }
  return [...sites.values()];
}

/** Revisions and alert sequence numbers are the version of a ReplacingMergeTree: whole numbers from 0. */
function requireVersion(value: number, field: string, expected: string): void {
  const rounded = Math.round(value);
  if (rounded < 0 || rounded > UINT32_MAX) {
    throw new GpError('GP_INPUT_INVALID', `${field}: expected ${expected} from 0 to ${UINT32_MAX}, got ${String(value)}`, { field });
  }
}

function aggregateRows(a: Aggregate, out: JsonRow[]): void {
  // One object literal per row, all of one shape: spreading a shared head into each row made
  // this the slowest step of a bulk write.
  const row = (metric: string, stat: (s: number) => number | null): JsonRow => ({
    stream: a.stream,
    key: a.key,
    site: a.site ?? null,
    window_name: a.window,
    start_ms: Math.round(a.start),
    end_ms: Math.round(a.end),
    revision: Math.round(a.revision),
    reading_count: Math.round(a.count),
    energy_kwh: finite(a.energyKwh),
    metric,
    stat_count: stat(0) ?? 0,
    stat_min: stat(1),
    stat_max: stat(2),
    stat_avg: stat(3),
    stat_sum: stat(4),
    stat_stddev: stat(5),
    stat_first: stat(6),
    stat_last: stat(7),
  });
  if (a.metrics.length === 0) {
    out.push(row('', () => null));
    return;
  }
  for (let m = 0; m < a.metrics.length; m++) {
    const metric = a.metrics[m] as string;
    // A repeated metric name would be one identity twice; the first one is kept, as in PostgreSQL.
    if (a.metrics.indexOf(metric) !== m) continue;
    const base = m * STATS_PER_METRIC;
    out.push(row(metric, (s) => finite(a.stats[base + s])));
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
  return new GpError('GP_INTERNAL', 'the ClickHouse store is closed: create a new one to keep using the database');
}

function rethrow(what: string, cause: unknown): never {
  if (cause instanceof GpError) throw cause;
  throw new GpError('GP_STORE_FAILED', `ClickHouse store could not ${what}: ${messageOf(cause)}`, { operation: what }, { cause });
}
