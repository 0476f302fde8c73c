import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DuckDBInstance, listValue, type DuckDBConnection, type DuckDBValue, type JS } from '@duckdb/node-api';
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
} from './store.js';
import {
  SCHEMA_MIGRATIONS,
  SCHEMA_STATEMENTS,
  SCHEMA_VERSION,
  STAGE_AGGREGATES,
  STAGE_ALERTS,
  STAGE_OPS,
  STAGE_READINGS,
  STAGE_TRANSITIONS,
  STAGING_TABLES,
  upsertDevicesFrom,
} from './duckdb-schema.js';
import { StagingArea, TableAppender, clearStagingSql, selectStaged, stagingTableDdl, type StagingCell, type StagingTable } from './duckdb-staging.js';
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

export interface DuckDbStoreOptions {
  /** A file path (parent directories are created) or `:memory:`. */
  path: string;
  /** Retention used by `applyRetention` when a call gives none; missing fields take `DEFAULT_RETENTION`. */
  retention?: Partial<RetentionPolicy>;
}

/**
 * The embedded default store: one DuckDB file (or memory), nothing to run beside it.
 * See duckdb-schema.ts for the tables and why they look the way they do.
 *
 * Writes go through one connection, one call at a time, each batch staged in bulk and moved into
 * place by a single idempotent INSERT; queries use a second connection, so they never wait behind
 * a large write. Any call made before `ready()` opens the store first.
 *
 * @example
 * const store = createDuckDbStore({ path: './data/gridpulse.duckdb', retention: { readingsMs: 7 * 86_400_000 } });
 * await store.ready();
 * await store.upsertAggregates(aggregates);
 * const status = await store.latestStatus({ site: 's-1' });
 * await store.close();
 */
export function createDuckDbStore(options: DuckDbStoreOptions): Store {
  return new DuckDbStore(options);
}

interface Handles {
  instance: DuckDBInstance;
  writer: DuckDBConnection;
  reader: DuckDBConnection;
  staging: Staging;
  /** Appends new raw readings straight into `readings` (see `readingsAreNew`). */
  readings: TableAppender;
  /** The highest source offset stored per stream: a reading above it cannot be stored yet. */
  maxOffsets: Map<string, number>;
  /** Appends new ops events straight into `ops`. */
  ops: TableAppender;
  /** The highest source offset of stored ops events per stream and kind (`stream\u0000kind`). */
  maxOpsOffsets: Map<string, number>;
}

interface Staging {
  area: StagingArea;
  /** Set when emptying the staging tables after a failure failed too. */
  dirty: boolean;
}

type Row = JS[];

const MEMORY_PATH = ':memory:';

type AddRow = (row: readonly StagingCell[]) => void;
type Fill = (add: AddRow) => void;
type StagedFills = ReadonlyArray<readonly [StagingTable, Fill]>;

/** `SET a = excluded.a, ...` for every column of a staging table but the identity ones. */
function updatesExcept(table: StagingTable, identity: readonly string[]): string {
  return table.columns
    .map(([name]) => name)
    .filter((name) => !identity.includes(name))
    .map((name) => `${name} = excluded.${name}`)
    .join(', ');
}
const AGGREGATE_UPDATES = updatesExcept(STAGE_AGGREGATES, ['stream', 'key', 'window_name', 'start_ms', 'metric']);
const ALERT_UPDATES = updatesExcept(STAGE_ALERTS, ['id']);

class DuckDbStore implements Store {
  readonly kind = 'duckdb';
  private readonly path: string;
  private readonly retention: RetentionPolicy;
  private opening: Promise<Handles> | undefined;
  private closing: Promise<void> | undefined;
  // Tails of the two call queues: each call starts when the previous one on its connection settled.
  private writeTail: Promise<unknown> = Promise.resolve();
  // Devices whose row in `devices` is current, by stream + key (this store is the file's only writer).
  private readonly knownDevices = new Map<string, { site: string | undefined }>();
  private readTail: Promise<unknown> = Promise.resolve();

  constructor(options: DuckDbStoreOptions) {
    if (typeof options.path !== 'string' || options.path.trim() === '') {
      throw new GpError('GP_CONFIG_INVALID', `store path: expected a file path or "${MEMORY_PATH}", got ${JSON.stringify(options.path)}`, {
        field: 'path',
      });
    }
    this.path = options.path;
    this.retention = mergeRetention(DEFAULT_RETENTION, options.retention, 'retention');
  }

  ready(): Promise<void> {
    if (this.closing !== undefined) return Promise.reject(closedError());
    return this.open().then(() => undefined);
  }

  // ---- writes ----------------------------------------------------------------------------

  async writeReadings(rows: readonly ReadingRow[]): Promise<void> {
    if (rows.length === 0) return;
    rows.forEach((row, index) => {
      requireText(row.stream, `readings[${index}].stream`);
      requireText(row.key, `readings[${index}].key`);
      requireFinite(row.time, `readings[${index}].time`, 'epoch milliseconds');
      requireFinite(row.offset, `readings[${index}].offset`, 'a source offset');
    });
    // Which path a batch takes depends on what the batches before it stored, so it is decided
    // in the write queue, when those have committed.
    await this.write('write readings', async (connection, staging, handles) => {
      if (this.readingsAreNew(rows, handles.maxOffsets)) await this.appendReadings(connection, staging, handles, rows);
      else await this.insertReadingsOnce(connection, staging, rows);
      for (const row of rows) {
        const held = handles.maxOffsets.get(row.stream);
        if (held === undefined || row.offset > held) handles.maxOffsets.set(row.stream, row.offset);
      }
    });
  }

  /**
   * Whether no row of the batch can already be stored, nor appear twice in it: each row's offset
   * is above every offset stored for its stream and above the rows of its stream before it in the
   * batch. The identity (stream, key, time, offset) then differs from every stored one by the
   * offset alone. A live source (the log) always writes such batches; a replay does not, and
   * takes the insert-once path.
   */
  private readingsAreNew(rows: readonly ReadingRow[], maxOffsets: ReadonlyMap<string, number>): boolean {
    let stream: string | undefined;
    let last = Number.NEGATIVE_INFINITY;
    const seen = new Map<string, number>();
    for (const row of rows) {
      if (row.stream !== stream) {
        if (stream !== undefined) seen.set(stream, last);
        stream = row.stream;
        last = seen.get(stream) ?? maxOffsets.get(stream) ?? Number.NEGATIVE_INFINITY;
      }
      if (!(row.offset > last)) return false;
      last = row.offset;
    }
    return true;
  }

  /** New rows (see `readingsAreNew`): appended straight into the table, no lookup of copies. */
  private async appendReadings(connection: DuckDBConnection, staging: Staging, handles: Handles, rows: readonly ReadingRow[]): Promise<void> {
    const devices = this.devicesUpsert(STAGE_READINGS, rows);
    await connection.run('BEGIN TRANSACTION');
    try {
      const appender = handles.readings;
      await appender.open();
      try {
        const [streams, keys, sites, times, offsets, values] = appender.columns as [string[], string[], (string | null)[], number[], number[], string[]];
        for (const row of rows) {
          const at = appender.row;
          streams[at] = row.stream;
          keys[at] = row.key;
          sites[at] = row.site ?? null;
          times[at] = row.time;
          offsets[at] = row.offset;
          values[at] = JSON.stringify(row.values);
          appender.next();
        }
        appender.finish();
      } catch (cause) {
        appender.discard();
        throw cause;
      }
      if (devices.statements.length > 0) {
        await cleanStaging(connection, staging);
        // Only rows of devices not yet known are staged, for the devices upsert.
        const writer = await staging.area.writer(STAGE_READINGS);
        try {
          for (const row of devices.rows) writer.add([row.stream, row.key, row.site, row.time, row.offset, null]);
          writer.finish();
        } catch (cause) {
          writer.abort();
          throw cause;
        }
        await connection.run([...devices.statements, ...clearStagingSql(STAGE_READINGS)].join(';\n'));
      }
      await connection.run('COMMIT');
      devices.remember();
    } catch (cause) {
      await connection.run('ROLLBACK').catch(() => undefined);
      await connection.run(clearStagingSql(STAGE_READINGS).join(';\n')).catch(() => {
        staging.dirty = true;
      });
      throw cause;
    }
  }

  /** Rows that may be stored already: staged, then inserted where no copy is in the table. */
  private async insertReadingsOnce(connection: DuckDBConnection, staging: Staging, rows: readonly ReadingRow[]): Promise<void> {
    const unique = new Map<string, ReadingRow>();
    let minTime = Number.POSITIVE_INFINITY;
    let maxTime = Number.NEGATIVE_INFINITY;
    for (const row of rows) {
      const id = readingRowId(row);
      // Insert-once: the first copy of a row in a batch is the one kept, as across batches.
      if (unique.has(id)) continue;
      unique.set(id, row);
      if (row.time < minTime) minTime = row.time;
      if (row.time > maxTime) maxTime = row.time;
    }
    const fill: Fill = (add) => {
      for (const row of unique.values()) add([row.stream, row.key, row.site, row.time, row.offset, JSON.stringify(row.values)]);
    };
    // The time range (integers this code formats, so inlined) lets DuckDB skip every row group
    // outside the batch when it looks for copies.
    const devices = this.devicesUpsert(STAGE_READINGS, unique.values());
    await this.stageAndRun(connection, staging, [[STAGE_READINGS, fill]], [
      `INSERT INTO readings (stream, key, site, time_ms, source_offset, metric_values)
       SELECT s.stream, s.key, s.site, s.time_ms, s.source_offset, CAST(s.metric_values AS JSON)
       FROM (${selectStaged(STAGE_READINGS, ['time_ms', 'source_offset'])}) s
       WHERE NOT EXISTS (
         SELECT 1 FROM readings r
         WHERE r.time_ms BETWEEN ${epochMs(minTime)} AND ${epochMs(maxTime)}
           AND r.stream = s.stream AND r.key = s.key AND r.time_ms = s.time_ms AND r.source_offset = s.source_offset)`,
      ...devices.statements,
    ], devices.remember);
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
    const fill: Fill = (add) => {
      for (const aggregate of winners.values()) addAggregateRows(aggregate, add);
    };
    const devices = this.devicesUpsert(STAGE_AGGREGATES, winners.values());
    await this.writeStaged('upsert aggregates', [[STAGE_AGGREGATES, fill]], [
      `INSERT INTO aggregates ${selectStaged(STAGE_AGGREGATES, ['start_ms', 'end_ms'])}
       ON CONFLICT (stream, key, window_name, start_ms, metric) DO UPDATE SET ${AGGREGATE_UPDATES}
       WHERE excluded.revision >= aggregates.revision`,
      ...devices.statements,
    ], devices.remember);
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
      requireFinite(transition.time, `${field}.transition.time`, 'epoch milliseconds');
      // The alert row keeps the state of its newest transition, so replays never move it back.
      const held = alerts.get(alert.id);
      if (held === undefined || transition.seq >= held.transition.seq) alerts.set(alert.id, event);
      if (!transitions.has(transition.id)) transitions.set(transition.id, transition);
    });
    const fillAlerts: Fill = (add) => {
      for (const { alert: a, transition } of alerts.values()) {
        add([
          a.id, a.stream, a.key, a.site, a.type, a.metric, a.severity, a.status, a.openedAt, a.updatedAt, a.resolvedAt,
          a.score, a.peakScore, a.value, a.findings, a.explain, transition.seq,
        ]);
      }
    };
    const fillTransitions: Fill = (add) => {
      for (const t of transitions.values()) add([t.id, t.alertId, t.seq, t.kind, t.time, t.status, t.severity, t.score, t.explain]);
    };
    const staged: StagedFills = [
      [STAGE_ALERTS, fillAlerts],
      [STAGE_TRANSITIONS, fillTransitions],
    ];
    await this.writeStaged('write alert events', staged, [
      `INSERT INTO alerts ${selectStaged(STAGE_ALERTS, ['opened_at_ms', 'updated_at_ms', 'resolved_at_ms'])}
       ON CONFLICT (id) DO UPDATE SET ${ALERT_UPDATES} WHERE excluded.last_seq >= alerts.last_seq`,
      `INSERT INTO alert_transitions ${selectStaged(STAGE_TRANSITIONS, ['time_ms'])} ON CONFLICT (id) DO NOTHING`,
    ]);
  }

  async writeOps(events: readonly OpsEvent[]): Promise<void> {
    if (events.length === 0) return;
    events.forEach((event, index) => {
      requireText(event.stream, `ops[${index}].stream`);
      if (!(OPS_KINDS as readonly string[]).includes(event.kind)) {
        throw new GpError('GP_INPUT_INVALID', `ops[${index}].kind: expected one of ${OPS_KINDS.join(', ')}, got ${JSON.stringify(event.kind)}`, {
          field: `ops[${index}].kind`,
        });
      }
    });
    await this.write('write ops events', async (connection, staging, handles) => {
      // Events about a reading (out of order, late, duplicate …) carry its offset: those above every
      // offset stored for their stream and kind are new and are appended; the rest (gaps, ingest
      // rejections, replays) are inserted where no copy is stored.
      const fresh: OpsEvent[] = [];
      const others: OpsEvent[] = [];
      const last = new Map<string, number>();
      for (const event of events) {
        const offset = event.offset;
        const id = `${event.stream}\u0000${event.kind}`;
        const above = last.get(id) ?? handles.maxOpsOffsets.get(id) ?? Number.NEGATIVE_INFINITY;
        if (offset !== undefined && Number.isFinite(offset) && offset > above) {
          last.set(id, offset);
          fresh.push(event);
        } else {
          others.push(event);
        }
      }
      if (fresh.length > 0) {
        const appender = handles.ops;
        await connection.run('BEGIN TRANSACTION');
        try {
          await appender.open();
          try {
            const columns = appender.columns;
            for (const e of fresh) {
              const at = appender.row;
              const cells = opsCells(e);
              for (let c = 0; c < cells.length; c++) {
                const value = cells[c];
                columns[c]![at] = value === undefined || (typeof value === 'number' && !Number.isFinite(value)) ? null : value;
              }
              appender.next();
            }
            appender.finish();
          } catch (cause) {
            appender.discard();
            throw cause;
          }
          await connection.run('COMMIT');
        } catch (cause) {
          await connection.run('ROLLBACK').catch(() => undefined);
          throw cause;
        }
        for (const [id, offset] of last) handles.maxOpsOffsets.set(id, offset);
      }
      if (others.length > 0) await this.insertOpsOnce(connection, staging, others);
    });
  }

  private async insertOpsOnce(connection: DuckDBConnection, staging: Staging, events: readonly OpsEvent[]): Promise<void> {
    const unique = new Map<string, OpsEvent>();
    let minAt = Number.POSITIVE_INFINITY;
    let maxAt = Number.NEGATIVE_INFINITY;
    for (const event of events) {
      const id = opsEventId(event);
      if (unique.has(id)) continue;
      unique.set(id, event);
      const at = atOf(event);
      // An event with no time bounds no range: the lookup then covers the whole table.
      minAt = at === undefined ? Number.NEGATIVE_INFINITY : Math.min(minAt, at);
      maxAt = at === undefined ? Number.POSITIVE_INFINITY : Math.max(maxAt, at);
    }
    const fill: Fill = (add) => {
      for (const e of unique.values()) add(opsCells(e));
    };
    const range = Number.isFinite(minAt) && Number.isFinite(maxAt) ? `o.at_ms BETWEEN ${epochMs(minAt)} AND ${epochMs(maxAt)} AND` : '';
    const bigints = ['time_ms', 'watermark_ms', 'source_offset', 'lag_ms', 'at_ms'];
    await this.stageAndRun(connection, staging, [[STAGE_OPS, fill]], [
      `INSERT INTO ops (${OPS_COLUMNS})
       SELECT ${OPS_COLUMNS} FROM (${selectStaged(STAGE_OPS, bigints)}) s
       WHERE NOT EXISTS (
         SELECT 1 FROM ops o
         WHERE ${range} o.stream = s.stream AND o.kind = s.kind AND o.key IS NOT DISTINCT FROM s.key
           AND o.time_ms IS NOT DISTINCT FROM s.time_ms AND o.source_offset IS NOT DISTINCT FROM s.source_offset
           AND o.missed IS NOT DISTINCT FROM s.missed)`,
    ]);
  }

  async applyRetention(now: number, retention?: Partial<RetentionPolicy>): Promise<RetentionResult> {
    requireFinite(now, 'now', 'epoch milliseconds');
    const policy = mergeRetention(this.retention, retention, 'retention');
    const cutoff = (ms: number): bigint => epochMs(now - ms);
    return this.write('apply retention', (connection) =>
      transaction(connection, async () => {
        const readings = await connection.run(`DELETE FROM readings WHERE time_ms < $cutoff`, { cutoff: cutoff(policy.readingsMs) });
        // Aggregates are counted per window (stream, key, window, start), not per stored metric row.
        const aggregateCutoff = cutoff(policy.aggregatesMs);
        const aggregates = toNumber(
          await scalar(
            connection,
            `SELECT count(*) FROM (SELECT DISTINCT stream, key, window_name, start_ms FROM aggregates WHERE start_ms < $cutoff)`,
            { cutoff: aggregateCutoff },
          ),
        );
        await connection.run(`DELETE FROM aggregates WHERE start_ms < $cutoff`, { cutoff: aggregateCutoff });
        // Only resolved alerts age out, measured from when they resolved: an alert that stayed open
        // for months and resolved yesterday is recent history. Open and acknowledged alerts stay.
        const expired = `status = 'resolved' AND coalesce(resolved_at_ms, updated_at_ms, opened_at_ms) < $cutoff`;
        const alertCutoff = { cutoff: cutoff(policy.alertsMs) };
        await connection.run(`DELETE FROM alert_transitions WHERE alert_id IN (SELECT id FROM alerts WHERE ${expired})`, alertCutoff);
        const alerts = await connection.run(`DELETE FROM alerts WHERE ${expired}`, alertCutoff);
        const ops = await connection.run(`DELETE FROM ops WHERE at_ms < $cutoff`, { cutoff: cutoff(policy.opsMs) });
        return { readings: readings.rowsChanged, aggregates, alerts: alerts.rowsChanged, ops: ops.rowsChanged };
      }),
    );
  }

  // ---- queries ---------------------------------------------------------------------------

  async querySeries(query: SeriesQuery): Promise<SeriesResult> {
    requireText(query.key, 'key');
    requireText(query.metric, 'metric');
    requireTimeRange(query.from, query.to);
    requireOneOf(query.resolution, RESOLUTIONS, 'resolution');
    const maxPoints = requireMaxPoints(query.maxPoints);
    const resolution = query.resolution === 'auto' ? pickResolution(query.from, query.to, maxPoints) : query.resolution;
    const params: Record<string, DuckDBValue> = { key: query.key, from: epochMs(query.from), to: epochMs(query.to) };
    let streamFilter = '';
    if (query.stream !== undefined) {
      streamFilter = 'AND stream = $stream';
      params['stream'] = query.stream;
    }
    let points: SeriesPoint[];
    if (resolution === 'raw') {
      params['path'] = jsonPath(query.metric);
      const rows = await this.read('query series', (connection) =>
        readRows(
          connection,
          `SELECT CAST(time_ms AS DOUBLE), TRY_CAST(metric_values ->> $path AS DOUBLE) FROM readings
           WHERE key = $key ${streamFilter} AND time_ms BETWEEN $from AND $to
           ORDER BY time_ms, source_offset`,
          params,
        ),
      );
      points = rows.map((row) => {
        const value = toNullableNumber(row[1]);
        return { time: toNumber(row[0]), count: value === null ? 0 : 1, min: value, max: value, avg: value, last: value };
      });
    } else {
      params['window'] = resolution;
      params['metric'] = query.metric;
      const rows = await this.read('query series', (connection) =>
        readRows(
          connection,
          `SELECT CAST(start_ms AS DOUBLE), stat_count, stat_min, stat_max, stat_avg, stat_last FROM aggregates
           WHERE window_name = $window AND key = $key AND metric = $metric ${streamFilter} AND start_ms BETWEEN $from AND $to
           ORDER BY start_ms, stream`,
          params,
        ),
      );
      points = rows.map((row) => ({
        time: toNumber(row[0]),
        count: toNullableNumber(row[1]) ?? 0,
        min: toNullableNumber(row[2]),
        max: toNullableNumber(row[3]),
        avg: toNullableNumber(row[4]),
        last: toNullableNumber(row[5]),
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
    const params: Record<string, DuckDBValue> = { window: resolution, metric: query.metric, from: epochMs(query.from), to: epochMs(query.to) };
    const filters: string[] = [];
    let siteJoin = '';
    if (query.stream !== undefined) {
      filters.push('a.stream = $stream');
      params['stream'] = query.stream;
    }
    if (query.site !== undefined) {
      // An aggregate may not know its site (a stream without a site field, an old revision);
      // the device's last known site stands in for it then.
      siteJoin = 'LEFT JOIN devices d ON d.stream = a.stream AND d.key = a.key';
      filters.push('coalesce(a.site, d.site) = $site');
      params['site'] = query.site;
    }
    const where = filters.map((filter) => ` AND ${filter}`).join('');
    // One row per device and window (the table's key keeps only the newest revision), so the
    // aggregates over a window start are over devices. fsum (Kahan) keeps the sum independent of
    // the order DuckDB's threads add the rows in.
    const rows = await this.read('query fleet series', (connection) =>
      readRows(
        connection,
        `SELECT CAST(a.start_ms AS DOUBLE), count(a.stat_avg), fsum(a.stat_avg), min(a.stat_avg), max(a.stat_avg)
         FROM aggregates a ${siteJoin}
         WHERE a.window_name = $window AND a.metric = $metric AND a.start_ms BETWEEN $from AND $to${where}
         GROUP BY a.start_ms
         ORDER BY a.start_ms`,
        params,
      ),
    );
    const points = rows.map((row): FleetSeriesPoint => {
      const devices = toNumber(row[1]);
      const sum = devices === 0 ? null : toNullableNumber(row[2]);
      return {
        time: toNumber(row[0]),
        devices,
        sum,
        avg: sum === null ? null : sum / devices,
        min: toNullableNumber(row[3]),
        max: toNullableNumber(row[4]),
      };
    });
    return { metric: query.metric, resolution, points };
  }

  async latestStatus(query: StatusQuery): Promise<DeviceStatus[]> {
    if (query.keys !== undefined && query.keys.length === 0) return [];
    const filters: string[] = [];
    const params: Record<string, DuckDBValue> = {};
    if (query.stream !== undefined) {
      filters.push('stream = $stream');
      params['stream'] = query.stream;
    }
    if (query.keys !== undefined) {
      filters.push('list_contains($keys, key)');
      params['keys'] = listValue([...query.keys]);
    }
    if (query.site !== undefined) {
      filters.push('site = $site');
      params['site'] = query.site;
    }
    const where = filters.map((filter) => ` AND ${filter}`).join('');
    const [windows, alertCounts] = await this.read('latest status', async (connection) => [
      await readRows(
        connection,
        `WITH newest AS (
           SELECT stream, key, max(start_ms) AS start_ms FROM aggregates WHERE window_name = '1m'${where} GROUP BY stream, key
         )
         SELECT a.stream, a.key, a.site, CAST(a.end_ms AS DOUBLE), a.metric, a.stat_avg
         FROM aggregates a JOIN newest n ON a.stream = n.stream AND a.key = n.key AND a.start_ms = n.start_ms
         WHERE a.window_name = '1m'
         ORDER BY a.stream, a.key, a.metric`,
        params,
      ),
      await readRows(
        connection,
        `SELECT stream, key, CAST(count(*) AS DOUBLE) FROM alerts WHERE status IN ('open', 'acknowledged') GROUP BY stream, key`,
      ),
    ]);
    const openAlerts = new Map(alertCounts.map((row) => [`${toText(row[0])}\u0000${toText(row[1])}`, toNumber(row[2])]));
    const devices = new Map<string, DeviceStatus>();
    for (const row of windows) {
      const stream = toText(row[0]);
      const key = toText(row[1]);
      const id = `${stream}\u0000${key}`;
      let device = devices.get(id);
      if (device === undefined) {
        device = { stream, key, site: toNullableText(row[2]), lastSeen: toNumber(row[3]), lastAvg: {}, openAlerts: openAlerts.get(id) ?? 0 };
        devices.set(id, device);
      }
      const metric = toText(row[4]);
      // An aggregate of a stream without metrics is stored under the empty name, to keep the window.
      if (metric !== '') device.lastAvg[metric] = toNullableNumber(row[5]);
    }
    return [...devices.values()];
  }

  async listAlerts(filter: AlertFilter): Promise<Alert[]> {
    const filters: string[] = [];
    const params: Record<string, DuckDBValue> = {};
    for (const field of ['stream', 'key', 'site', 'type'] as const) {
      const value = filter[field];
      if (value === undefined) continue;
      filters.push(`${field} = $${field}`);
      params[field] = value;
    }
    const statuses = oneOrMany(filter.status, ALERT_STATUSES, 'status');
    if (statuses !== undefined) {
      filters.push('list_contains($statuses, status)');
      params['statuses'] = listValue(statuses);
    }
    const severities = oneOrMany(filter.severity, SEVERITIES, 'severity');
    if (severities !== undefined) {
      filters.push('list_contains($severities, severity)');
      params['severities'] = listValue(severities);
    }
    if (filter.from !== undefined) {
      requireFinite(filter.from, 'from', 'epoch milliseconds');
      // Still open (no resolvedAt) means the interval reaches +infinity.
      filters.push('(resolved_at_ms IS NULL OR resolved_at_ms >= $from)');
      params['from'] = epochMs(filter.from);
    }
    if (filter.to !== undefined) {
      requireFinite(filter.to, 'to', 'epoch milliseconds');
      filters.push('opened_at_ms <= $to');
      params['to'] = epochMs(filter.to);
    }
    const limit = filter.limit ?? DEFAULT_ALERT_LIMIT;
    if (!Number.isInteger(limit) || limit < 1) {
      throw new GpError('GP_INPUT_INVALID', `limit: expected a positive integer, got ${String(filter.limit)}`, { field: 'limit' });
    }
    params['limit'] = limit;
    const where = filters.length === 0 ? '' : `WHERE ${filters.join(' AND ')}`;
    const rows = await this.read('list alerts', (connection) =>
      readRows(
        connection,
        `SELECT id, stream, key, site, type, metric, severity, status, CAST(opened_at_ms AS DOUBLE), CAST(updated_at_ms AS DOUBLE),
                CAST(resolved_at_ms AS DOUBLE), score, peak_score, value, findings, explain
         FROM alerts ${where} ORDER BY opened_at_ms DESC, id LIMIT $limit`,
        params,
      ),
    );
    return rows.map(rowToAlert);
  }

  async alertTransitions(alertId: string): Promise<AlertTransition[]> {
    requireText(alertId, 'alertId');
    const rows = await this.read('alert transitions', (connection) =>
      readRows(
        connection,
        `SELECT id, alert_id, seq, kind, CAST(time_ms AS DOUBLE), status, severity, score, explain
         FROM alert_transitions WHERE alert_id = $alertId ORDER BY seq`,
        { alertId },
      ),
    );
    return rows.map((row) => ({
      id: toText(row[0]),
      alertId: toText(row[1]),
      seq: toNumber(row[2]),
      kind: toText(row[3]) as TransitionKind,
      time: toNumber(row[4]),
      status: toText(row[5]) as AlertStatus,
      severity: toText(row[6]) as Severity,
      score: toNullableNumber(row[7]) ?? Number.NaN,
      explain: toText(row[8]),
    }));
  }

  async dataQuality(query: QualityQuery): Promise<QualityRow[]> {
    const by = query.by ?? 'key';
    if (by !== 'key' && by !== 'site') {
      throw new GpError('GP_INPUT_INVALID', `by: expected "key" or "site", got ${JSON.stringify(by)}`, { field: 'by' });
    }
    const filters: string[] = [];
    const params: Record<string, DuckDBValue> = {};
    if (query.stream !== undefined) {
      filters.push('o.stream = $stream');
      params['stream'] = query.stream;
    }
    if (query.from !== undefined) {
      requireFinite(query.from, 'from', 'epoch milliseconds');
      filters.push('o.at_ms >= $from');
      params['from'] = epochMs(query.from);
    }
    if (query.to !== undefined) {
      requireFinite(query.to, 'to', 'epoch milliseconds');
      filters.push('o.at_ms <= $to');
      params['to'] = epochMs(query.to);
    }
    const where = filters.length === 0 ? '' : `WHERE ${filters.join(' AND ')}`;
    const group = by === 'key' ? 'o.key' : 'coalesce(o.site, d.site)';
    const kindCounts = OPS_KINDS.map((kind) => `CAST(count(*) FILTER (WHERE o.kind = '${kind}') AS DOUBLE)`).join(', ');
    const rows = await this.read('data quality', (connection) =>
      readRows(
        connection,
        `SELECT o.stream, ${group} AS grp, CAST(count(*) AS DOUBLE), ${kindCounts}
         FROM ops o LEFT JOIN devices d ON d.stream = o.stream AND d.key = o.key
         ${where}
         GROUP BY o.stream, grp ORDER BY o.stream, grp NULLS LAST`,
        params,
      ),
    );
    return rows.map((row) => {
      const counts = {} as Record<OpsKind, number>;
      OPS_KINDS.forEach((kind, index) => {
        counts[kind] = toNumber(row[3 + index]);
      });
      return { stream: toText(row[0]), group: toNullableText(row[1]), counts, total: toNumber(row[2]) };
    });
  }

  async counts(): Promise<Record<'readings' | 'aggregates' | 'alerts' | 'transitions' | 'ops', number>> {
    const row = await this.read('counts', async (connection) => {
      const rows = await readRows(
        connection,
        `SELECT
           (SELECT CAST(count(*) AS DOUBLE) FROM readings),
           (SELECT CAST(count(*) AS DOUBLE) FROM (SELECT DISTINCT stream, key, window_name, start_ms FROM aggregates)),
           (SELECT CAST(count(*) AS DOUBLE) FROM alerts),
           (SELECT CAST(count(*) AS DOUBLE) FROM alert_transitions),
           (SELECT CAST(count(*) AS DOUBLE) FROM ops)`,
      );
      return rows[0] ?? [];
    });
    return {
      readings: toNumber(row[0]),
      aggregates: toNumber(row[1]),
      alerts: toNumber(row[2]),
      transitions: toNumber(row[3]),
      ops: toNumber(row[4]),
    };
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  // ---- plumbing --------------------------------------------------------------------------

  private open(): Promise<Handles> {
    if (this.opening === undefined) {
      const opening = this.connect();
      this.opening = opening;
      // A failed open may be retried by the next call (for example after a lock was released).
      opening.catch(() => {
        if (this.opening === opening) this.opening = undefined;
      });
    }
    return this.opening;
  }

  private async connect(): Promise<Handles> {
    let instance: DuckDBInstance;
    try {
      if (this.path !== MEMORY_PATH) mkdirSync(dirname(resolve(this.path)), { recursive: true });
      instance = await DuckDBInstance.create(this.path);
    } catch (cause) {
      throw new GpError('GP_STORE_FAILED', `cannot open DuckDB store at ${this.path}: ${messageOf(cause)}`, { path: this.path }, { cause });
    }
    try {
      const writer = await instance.connect();
      const reader = await instance.connect();
      for (const statement of SCHEMA_STATEMENTS) await writer.run(statement);
      const version = toNullableNumber(await scalar(writer, `SELECT max(version) FROM gridpulse_schema`));
      if (version === null) await writer.run(`INSERT INTO gridpulse_schema VALUES (${SCHEMA_VERSION})`);
      else if (version < SCHEMA_VERSION) await migrate(writer, this.path, version);
      else if (version > SCHEMA_VERSION) {
        throw new GpError(
          'GP_STORE_FAILED',
          `DuckDB store at ${this.path} has schema version ${version}, newer than this build understands (${SCHEMA_VERSION}); upgrade gridpulse`,
          { path: this.path, version },
        );
      }
      for (const table of STAGING_TABLES) {
        for (const statement of stagingTableDdl(table)) await writer.run(statement);
      }
      // One scan at open; from then on every committed batch keeps it current.
      const maxOffsets = new Map<string, number>();
      for (const row of await readRows(writer, `SELECT stream, CAST(max(source_offset) AS DOUBLE) FROM readings GROUP BY stream`)) {
        maxOffsets.set(toText(row[0]), toNumber(row[1]));
      }
      const maxOpsOffsets = new Map<string, number>();
      for (const row of await readRows(writer, `SELECT stream, kind, CAST(max(source_offset) AS DOUBLE) FROM ops WHERE source_offset IS NOT NULL GROUP BY stream, kind`)) {
        maxOpsOffsets.set(`${toText(row[0])}\u0000${toText(row[1])}`, toNumber(row[2]));
      }
      return {
        instance,
        writer,
        reader,
        staging: { area: new StagingArea(writer), dirty: false },
        readings: new TableAppender(writer, 'readings', ['text', 'text', 'text', 'double', 'double', 'text']),
        maxOffsets,
        ops: new TableAppender(writer, 'ops', STAGE_OPS.columns.map(([, type]) => (type === 'label' || type === 'text' ? 'text' : 'double'))),
        maxOpsOffsets,
      };
    } catch (cause) {
      instance.closeSync();
      if (cause instanceof GpError) throw cause;
      throw new GpError('GP_STORE_FAILED', `cannot prepare DuckDB store at ${this.path}: ${messageOf(cause)}`, { path: this.path }, { cause });
    }
  }

  private write<T>(what: string, task: (connection: DuckDBConnection, staging: Staging, handles: Handles) => Promise<T>): Promise<T> {
    if (this.closing !== undefined) return Promise.reject(closedError());
    const run = async (): Promise<T> => {
      const handles = await this.open();
      return task(handles.writer, handles.staging, handles);
    };
    const result = this.writeTail.then(run, run).catch((cause: unknown) => rethrow(what, cause));
    this.writeTail = result.catch(() => undefined);
    return result;
  }

  /**
   * Stages the batch, then runs `statements` in one transaction and empties the staging tables,
   * all in one round trip to DuckDB's worker pool: small batches are the common case.
   */
  private writeStaged(what: string, fills: StagedFills, statements: readonly string[], onSuccess?: () => void): Promise<void> {
    return this.write(what, (connection, staging) => this.stageAndRun(connection, staging, fills, statements, onSuccess));
  }

  /** `writeStaged` inside a write already queued. */
  private async stageAndRun(connection: DuckDBConnection, staging: Staging, fills: StagedFills, statements: readonly string[], onSuccess?: () => void): Promise<void> {
    const clear = fills.flatMap(([table]) => clearStagingSql(table));
    try {
      await cleanStaging(connection, staging);
      for (const [table, fill] of fills) {
        const writer = await staging.area.writer(table);
        try {
          fill((row) => writer.add(row));
          writer.finish();
        } catch (cause) {
          writer.abort();
          throw cause;
        }
      }
      await connection.run(['BEGIN TRANSACTION', ...statements, 'COMMIT', ...clear].join(';\n'));
      onSuccess?.();
    } catch (cause) {
      await connection.run('ROLLBACK').catch(() => undefined);
      await connection.run(clear.join(';\n')).catch(() => {
        staging.dirty = true;
      });
      throw cause;
    }
  }

  /**
   * The `devices` upsert for a batch, or nothing when every device in it is already known with
   * that site: an upsert costs DuckDB a few milliseconds even when it changes nothing.
   */
  private devicesUpsert<T extends { stream: string; key: string; site: string | undefined }>(
    staging: StagingTable,
    rows: Iterable<T>,
  ): { statements: string[]; rows: T[]; remember: () => void } {
    const changed: T[] = [];
    for (const row of rows) {
      const known = this.knownDevices.get(`${row.stream}\u0000${row.key}`);
      if (known === undefined || (row.site !== undefined && row.site !== known.site)) changed.push(row);
    }
    if (changed.length === 0) return { statements: [], rows: changed, remember: () => undefined };
    return {
      statements: [upsertDevicesFrom(staging)],
      rows: changed,
      // Called once the write succeeded, so the devices of a failed batch are upserted next time.
      remember: () => {
        for (const row of changed) {
          const id = `${row.stream}\u0000${row.key}`;
          this.knownDevices.set(id, { site: row.site ?? this.knownDevices.get(id)?.site });
        }
      },
    };
  }

  private read<T>(what: string, task: (connection: DuckDBConnection) => Promise<T>): Promise<T> {
    if (this.closing !== undefined) return Promise.reject(closedError());
    const run = async (): Promise<T> => task((await this.open()).reader);
    const result = this.readTail.then(run, run).catch((cause: unknown) => rethrow(what, cause));
    this.readTail = result.catch(() => undefined);
    return result;
  }

  private async shutdown(): Promise<void> {
    // Calls already queued run to completion; new ones were refused from the moment closing was set.
    await Promise.allSettled([this.writeTail, this.readTail]);
    const opening = this.opening;
    if (opening === undefined) return;
    const handles = await opening.catch(() => undefined);
    if (handles === undefined) return;
    try {
      handles.staging.area.close();
      handles.readings.discard();
      handles.ops.discard();
      // Fold the WAL into the file so the next opener (any process) starts from a clean file.
      if (this.path !== MEMORY_PATH) await handles.writer.run('CHECKPOINT');
    } catch (cause) {
      throw new GpError('GP_STORE_FAILED', `closing DuckDB store at ${this.path}: ${messageOf(cause)}`, { path: this.path }, { cause });
    } finally {
      handles.reader.closeSync();
      handles.writer.closeSync();
      handles.instance.closeSync();
    }
  }
}

// ---- helpers -----------------------------------------------------------------------------

const OPS_COLUMNS = STAGE_OPS.columns.map(([name]) => name).join(', ');

/** The time an ops event is filed under (`at_ms`): the reading's time, else the watermark at arrival. */
function atOf(e: OpsEvent): number | undefined {
  if (e.time !== undefined && Number.isFinite(e.time)) return e.time;
  return e.watermark !== undefined && Number.isFinite(e.watermark) ? e.watermark : undefined;
}

/** An ops event's cells in the column order of `ops` (and of its staging table). */
function opsCells(e: OpsEvent): StagingCell[] {
  // OpsEvent has no site today; a source that knows it may attach one.
  const site = (e as OpsEvent & { site?: unknown }).site;
  return [
    e.kind, e.stream, e.key, typeof site === 'string' ? site : null, e.time, e.watermark, e.offset,
    e.reason, e.field, e.expected, e.got, e.lagMs, e.missed, atOf(e),
  ];
}

/** Brings a file of schema `from` up to `SCHEMA_VERSION` in one transaction, or leaves it as it was. */
async function migrate(connection: DuckDBConnection, path: string, from: number): Promise<void> {
  const steps = SCHEMA_MIGRATIONS.filter((step) => step.from >= from && step.from < SCHEMA_VERSION).sort((a, b) => a.from - b.from);
  if (steps[0]?.from !== from) {
    throw new GpError(
      'GP_STORE_FAILED',
      `DuckDB store at ${path} has schema version ${from}, which this build cannot migrate to ${SCHEMA_VERSION}; export its data with an older gridpulse or start with a new file`,
      { path, version: from },
    );
  }
  try {
    await transaction(connection, async () => {
      for (const step of steps) for (const statement of step.statements) await connection.run(statement);
      await connection.run(`DELETE FROM gridpulse_schema`);
      await connection.run(`INSERT INTO gridpulse_schema VALUES (${SCHEMA_VERSION})`);
    });
  } catch (cause) {
    throw new GpError(
      'GP_STORE_FAILED',
      `DuckDB store at ${path}: migrating schema version ${from} to ${SCHEMA_VERSION} failed (${messageOf(cause)}); the file is unchanged. Free disk space or memory and start again, or move the file away to start with a new one`,
      { path, version: from },
      { cause },
    );
  }
}

/** A previous failure may have left rows in the staging tables: they must not join the next batch. */
async function cleanStaging(connection: DuckDBConnection, staging: Staging): Promise<void> {
  if (!staging.dirty) return;
  for (const table of STAGING_TABLES) await connection.run(clearStagingSql(table).join(';\n'));
  staging.dirty = false;
}

function addAggregateRows(a: Aggregate, add: AddRow): void {
  const head = [a.stream, a.key, a.site ?? null, a.window, a.start, a.end, a.revision, a.count, a.energyKwh];
  if (a.metrics.length === 0) {
    add([...head, '', 0, null, null, null, null, null, null, null]);
    return;
  }
  const seen = new Set<string>();
  for (let m = 0; m < a.metrics.length; m++) {
    const metric = a.metrics[m] as string;
    // A repeated metric name would make the upsert touch one row twice; the first one is kept.
    if (seen.has(metric)) continue;
    seen.add(metric);
    const base = m * STATS_PER_METRIC;
    const stats = a.stats;
    add([
      ...head,
      metric,
      stats[base] ?? 0,
      stats[base + 1],
      stats[base + 2],
      stats[base + 3],
      stats[base + 4],
      stats[base + 5],
      stats[base + 6],
      stats[base + 7],
    ]);
  }
}

async function transaction<T>(connection: DuckDBConnection, body: () => Promise<T>): Promise<T> {
  await connection.run('BEGIN TRANSACTION');
  try {
    const result = await body();
    await connection.run('COMMIT');
    return result;
  } catch (cause) {
    await connection.run('ROLLBACK').catch(() => undefined);
    throw cause;
  }
}

async function readRows(connection: DuckDBConnection, sql: string, params?: Record<string, DuckDBValue>): Promise<Row[]> {
  const reader = await connection.runAndReadAll(sql, params);
  return reader.getRowsJS();
}

async function scalar(connection: DuckDBConnection, sql: string, params?: Record<string, DuckDBValue>): Promise<JS> {
  const rows = await readRows(connection, sql, params);
  return rows[0]?.[0] ?? null;
}

function jsonPath(metric: string): string {
  // Quoted member access, so names with dots or brackets are read as one key.
  return `$.${JSON.stringify(metric)}`;
}

function rowToAlert(row: Row): Alert {
  return {
    id: toText(row[0]),
    stream: toText(row[1]),
    key: toText(row[2]),
    site: toNullableText(row[3]) ?? undefined,
    type: toText(row[4]),
    metric: toNullableText(row[5]) ?? undefined,
    severity: toText(row[6]) as Severity,
    status: toText(row[7]) as AlertStatus,
    openedAt: toNumber(row[8]),
    updatedAt: toNumber(row[9]),
    resolvedAt: toNullableNumber(row[10]) ?? undefined,
    score: toNullableNumber(row[11]) ?? Number.NaN,
    peakScore: toNullableNumber(row[12]) ?? Number.NaN,
    value: toNullableNumber(row[13]) ?? Number.NaN,
    findings: toNumber(row[14]),
    explain: toText(row[15]),
  };
}

function epochMs(value: number): bigint {
  return BigInt(Math.round(value));
}

function toNumber(value: JS | undefined): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  return Number.NaN;
}

function toNullableNumber(value: JS | undefined): number | null {
  if (value === null || value === undefined) return null;
  const number = toNumber(value);
  return Number.isFinite(number) ? number : null;
}

function toNullableText(value: JS | undefined): string | null {
  return value === null || value === undefined ? null : toText(value);
}

function toText(value: JS | undefined): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  return value === null || value === undefined ? '' : JSON.stringify(value);
}

function messageOf(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}

function closedError(): GpError {
  return new GpError('GP_INTERNAL', 'the DuckDB store is closed: create a new one to keep using the file');
}

function rethrow(what: string, cause: unknown): never {
  if (cause instanceof GpError) throw cause;
  throw new GpError('GP_STORE_FAILED', `DuckDB store could not ${what}: ${messageOf(cause)}`, { operation: what }, { cause });
}
