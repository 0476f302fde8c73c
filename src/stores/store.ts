import type { Aggregate, Alert, AlertEvent, AlertStatus, AlertTransition, OpsEvent, OpsKind, Severity } from '../model/index.js';

/**
 * Where gridpulse keeps what it computes: raw readings (optional), window aggregates, alerts with
 * their transitions, and ops events; and the queries the API and CLI need.
 *
 * Lifecycle: create → `ready()` → writes and queries → `close()`. `close()` is idempotent and
 * flushes pending writes. The store owns its connections; no connection or transaction type
 * crosses this interface.
 *
 * Idempotence (so a replay or a crash-restart never duplicates anything):
 * - aggregates upsert on (stream, key, window, start); a higher or equal revision replaces;
 * - alerts upsert on id; transitions insert once per transition id;
 * - ops events and raw readings insert once per their `id` (see `opsEventId`, `readingRowId`).
 *
 * Deliberately left out: alert delivery, schema migrations of server stores (their own command),
 * and transactions spanning calls.
 *
 * @example
 * const store = createDuckDbStore({ path: './data/gridpulse.duckdb' });
 * await store.ready();
 * await store.upsertAggregates(batch);
 * const points = await store.querySeries({ key: 'm-1', metric: 'usageKw', from, to, resolution: 'auto' });
 * await store.close();
 */
export interface Store {
  readonly kind: string;
  ready(): Promise<void>;
  writeReadings(rows: readonly ReadingRow[]): Promise<void>;
  upsertAggregates(aggregates: readonly Aggregate[]): Promise<void>;
  writeAlertEvents(events: readonly AlertEvent[]): Promise<void>;
  writeOps(events: readonly OpsEvent[]): Promise<void>;
  /** Deletes rows older than each table's retention, measured back from `now` (event time, epoch ms). */
  applyRetention(now: number, retention?: Partial<RetentionPolicy>): Promise<RetentionResult>;

  querySeries(query: SeriesQuery): Promise<SeriesResult>;
  /**
   * One metric over the whole fleet (or one site): per window start, the device averages combined
   * (their sum is the fleet load of a power metric). Answers in one query what would otherwise be
   * one `querySeries` per device.
   */
  queryFleetSeries(query: FleetSeriesQuery): Promise<FleetSeriesResult>;
  latestStatus(query: StatusQuery): Promise<DeviceStatus[]>;
  listAlerts(filter: AlertFilter): Promise<Alert[]>;
  alertTransitions(alertId: string): Promise<AlertTransition[]>;
  dataQuality(query: QualityQuery): Promise<QualityRow[]>;
  /**
   * Optional (stores with versioned schema migrations): `ready()`, then what it found and applied.
   * `gridpulse migrate` prints it.
   */
  schemaReport?(): Promise<SchemaReport>;
  /** Row counts per table, for summaries and tests. */
  counts(): Promise<Record<'readings' | 'aggregates' | 'alerts' | 'transitions' | 'ops', number>>;
  close(): Promise<void>;
}

/** A store's schema version before and after `ready()`, and the migrations it applied. */
export interface SchemaReport {
  /** Where the schema lives, e.g. `PostgreSQL schema public` (no password). */
  location: string;
  /** Version found (0: none, a new database). */
  before: number;
  /** Version after `ready()`: this build's newest. */
  after: number;
  applied: { version: number; name: string }[];
  /** Anything else worth saying, e.g. how tables are partitioned. */
  notes: string[];
}

/** A raw reading as stored: metric values by name (null where absent). */
export interface ReadingRow {
  stream: string;
  key: string;
  site: string | undefined;
  time: number;
  values: Record<string, number | null>;
  /** Source position; with (stream, key, time) it identifies the row. */
  offset: number;
}

export interface RetentionPolicy {
  readingsMs: number;
  aggregatesMs: number;
  alertsMs: number;
  opsMs: number;
}

/** Defaults from the reference designs: raw 14 days, aggregates 90 days, alerts 90 days, ops 30 days. */
export const DEFAULT_RETENTION: RetentionPolicy = {
  readingsMs: 14 * 86_400_000,
  aggregatesMs: 90 * 86_400_000,
  alertsMs: 90 * 86_400_000,
  opsMs: 30 * 86_400_000,
};

export interface RetentionResult {
  readings: number;
  aggregates: number;
  alerts: number;
  ops: number;
}

export type Resolution = 'raw' | '1m' | '5m' | '15m' | 'auto';

export interface SeriesQuery {
  stream?: string;
  key: string;
  metric: string;
  from: number;
  to: number;
  resolution: Resolution;
  /** For `auto`: the most points wanted (default 500); the finest resolution that fits is chosen. */
  maxPoints?: number;
}

export interface SeriesPoint {
  /** Window start (or the reading's time for raw). */
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
  /** The resolution actually used (never `auto`). */
  resolution: Exclude<Resolution, 'auto'>;
  points: SeriesPoint[];
}

/** Window resolutions only: raw readings are irregular per device and cannot be summed per time. */
export type FleetResolution = Exclude<Resolution, 'raw'>;

/**
 * @example
 * const fleet = await store.queryFleetSeries({ stream: 'power', metric: 'usageKw', from: now - 86_400_000, to: now, resolution: '5m' });
 * const loadKw = fleet.points.map((p) => p.sum);
 */
export interface FleetSeriesQuery {
  /** Absent: devices of every stream that has the metric. */
  stream?: string;
  metric: string;
  /** Window starts from `from` to `to`, both inclusive (epoch ms). */
  from: number;
  to: number;
  resolution: FleetResolution;
  /** For `auto`: the most points wanted (default 500); the finest window that fits is chosen. */
  maxPoints?: number;
  /** Only devices of this site (the aggregate's site, else the device's last known one). */
  site?: string;
}

/**
 * One window start over the fleet. Each device counts with its window average of the metric (the
 * newest revision of its aggregate); devices without a value for the metric in that window do
 * not count, and a window where none has one has `devices` 0 and null statistics.
 */
export interface FleetSeriesPoint {
  /** Window start. */
  time: number;
  /** Devices with a value in this window. */
  devices: number;
  /** Sum of the device averages (for a power metric: the fleet load). */
  sum: number | null;
  /** Mean of the device averages. */
  avg: number | null;
  /** Lowest and highest device average. */
  min: number | null;
  max: number | null;
}

export interface FleetSeriesResult {
  metric: string;
  /** The resolution actually used (never `auto`). */
  resolution: Exclude<FleetResolution, 'auto'>;
  /** In time order. */
  points: FleetSeriesPoint[];
}

export interface StatusQuery {
  stream?: string;
  keys?: readonly string[];
  site?: string;
}

export interface DeviceStatus {
  stream: string;
  key: string;
  site: string | null;
  /** End of the newest 1m window seen for the device. */
  lastSeen: number;
  /** Average of each metric over the newest 1m window. */
  lastAvg: Record<string, number | null>;
  openAlerts: number;
}

export interface AlertFilter {
  stream?: string;
  key?: string;
  site?: string;
  type?: string;
  status?: AlertStatus | readonly AlertStatus[];
  severity?: Severity | readonly Severity[];
  /** Alerts whose open interval overlaps [from, to]. */
  from?: number;
  to?: number;
  limit?: number;
}

export interface QualityQuery {
  stream?: string;
  from?: number;
  to?: number;
  /** Group by device (default) or by site. */
  by?: 'key' | 'site';
}

export interface QualityRow {
  stream: string;
  /** Device id or site id, depending on `by`. */
  group: string | null;
  counts: Record<OpsKind, number>;
  total: number;
}

/** Deterministic id of an ops event, so the same event written twice is stored once. */
export function opsEventId(e: OpsEvent): string {
  return `${e.stream}|${e.kind}|${e.key ?? ''}|${e.time ?? ''}|${e.offset ?? ''}|${e.missed ?? ''}`;
}
