/**
 * The records that flow through gridpulse. Readings come in; aggregates, findings, alerts with
 * their transitions, ops events and audit snapshots come out. All times are epoch milliseconds
 * in event time unless a field says otherwise.
 */

/** How a reading's event time relates to the watermark when it arrived. */
export type Lateness = 'ON_TIME' | 'LATE' | 'TOO_LATE';

/**
 * One decoded reading. The engine reuses Reading objects on its hot path: a consumer that keeps
 * one beyond the call it was given in must copy it (`copyReading`).
 */
export interface Reading {
  stream: string;
  key: string;
  site: string | undefined;
  /** Event time, epoch ms. */
  time: number;
  /** One value per metric of the stream schema, NaN where the reading has none. */
  values: Float64Array;
  /** The reading's own id (from the stream's idField), if any. */
  id: string | undefined;
  /** Position in the source (line number of a file, offset in a log). */
  offset: number;
  /**
   * Backfill: the reading was forwarded late, after an outage between the device and the platform
   * (an edge agent's spool), so it is not live. It is aggregated like any other, reported on ops as
   * late data, and findings from it open no alerts. Carried in the record as `BACKFILL_FIELD`.
   * Omitted means false.
   */
  backfill?: boolean;
}

/**
 * The reserved field that marks a record as backfill (`"_backfill": true`). The HTTP ingest adds it
 * to every reading of a request sent with `X-Gridpulse-Backfill: true` (the edge agent does so for
 * readings that waited in its spool); it travels through the log with the reading, and the decoder
 * turns it into `Reading.backfill`.
 *
 * @example
 * { "meterId": "m-1", "timestamp": 1763900000000, "usageKw": 12.3, "_backfill": true }
 */
export const BACKFILL_FIELD = '_backfill';

export function copyReading(r: Reading): Reading {
  const copy: Reading = { stream: r.stream, key: r.key, site: r.site, time: r.time, values: r.values.slice(), id: r.id, offset: r.offset };
  if (r.backfill === true) copy.backfill = true;
  return copy;
}

/** Statistics kept per metric in a window, in this order inside `Aggregate.stats`. */
export const STAT_NAMES = ['count', 'min', 'max', 'avg', 'sum', 'stddev', 'first', 'last'] as const;
export type StatName = (typeof STAT_NAMES)[number];
export const STATS_PER_METRIC = STAT_NAMES.length;

/**
 * The result of one window for one device. `stats` is metric-major:
 * `stats[m * STATS_PER_METRIC + s]` is statistic `STAT_NAMES[s]` of metric `metrics[m]`.
 * A metric with no value in the window has count 0 and NaN elsewhere.
 * Identity (for upserts): (stream, key, window, start); `revision` grows with each amendment.
 */
export interface Aggregate {
  stream: string;
  key: string;
  site: string | undefined;
  /** Window spec name, e.g. `1m`, `5m`, `15m`, `1m/15s`. */
  window: string;
  start: number;
  end: number;
  /** 0 for the first emission; 1, 2, ... for amendments caused by LATE readings. */
  revision: number;
  /** Readings in the window. */
  count: number;
  /** Metric names, in schema order (shared, do not mutate). */
  metrics: readonly string[];
  /** A plain array in the engine's output (cheaper to allocate than a typed array); any indexable numbers are accepted. */
  stats: ArrayLike<number>;
  /** Energy in kWh over the window (sum of interval energy, or power integrated over time), or null if the stream has no power metric. */
  energyKwh: number | null;
}

/** Plain-JSON form of an aggregate, as written to files, stores and APIs. */
export interface AggregateJson {
  stream: string;
  key: string;
  site: string | null;
  window: string;
  start: number;
  end: number;
  revision: number;
  count: number;
  energyKwh: number | null;
  metrics: Record<string, Record<StatName, number | null>>;
}

export function statOf(a: Aggregate, metricIndex: number, stat: StatName): number {
  return a.stats[metricIndex * STATS_PER_METRIC + STAT_NAMES.indexOf(stat)] ?? Number.NaN;
}

export function aggregateToJson(a: Aggregate): AggregateJson {
  const metrics: AggregateJson['metrics'] = {};
  a.metrics.forEach((name, m) => {
    const entry = {} as Record<StatName, number | null>;
    STAT_NAMES.forEach((stat, s) => {
      const v = a.stats[m * STATS_PER_METRIC + s] ?? Number.NaN;
      entry[stat] = Number.isFinite(v) ? v : null;
    });
    metrics[name] = entry;
  });
  return {
    stream: a.stream,
    key: a.key,
    site: a.site ?? null,
    window: a.window,
    start: a.start,
    end: a.end,
    revision: a.revision,
    count: a.count,
    energyKwh: a.energyKwh,
    metrics,
  };
}

/** The reverse of `aggregateToJson` (null statistics become NaN, as the engine has them). */
export function aggregateFromJson(json: AggregateJson): Aggregate {
  const metrics = Object.keys(json.metrics);
  const stats: number[] = [];
  for (const name of metrics) for (const stat of STAT_NAMES) stats.push(json.metrics[name]![stat] ?? Number.NaN);
  return {
    stream: json.stream,
    key: json.key,
    site: json.site ?? undefined,
    window: json.window,
    start: json.start,
    end: json.end,
    revision: json.revision,
    count: json.count,
    metrics,
    stats,
    energyKwh: json.energyKwh,
  };
}

export type Severity = 'info' | 'warning' | 'critical';
export const SEVERITIES: readonly Severity[] = ['info', 'warning', 'critical'];

/**
 * What a detector says about one device at one moment. `active: true` means the condition
 * holds; `active: false` means a condition the detector had reported has cleared (for example a
 * silent device reported again).
 */
export interface Finding {
  stream: string;
  key: string;
  site: string | undefined;
  /** Alert type: spike, drop, outage, sustained_high, silence, zscore, iqr, seasonal, out_of_range, physics, or a rule's name. */
  type: string;
  /** Detector that produced it (registry name). */
  detector: string;
  metric: string | undefined;
  /** Event time of the evidence. */
  time: number;
  /** Strength in [0, 1]. */
  score: number;
  severity: Severity;
  value: number;
  baseline: number | undefined;
  threshold: number | undefined;
  /** Human-readable evidence: value, baseline, threshold, window. */
  explain: string;
  active: boolean;
  /**
   * The condition holds until the detector reports it cleared (`active: false`), however long
   * between findings: a silent device stays silent until it reports. Such alerts are not
   * resolved by absence of findings. Omitted means false.
   */
  holds?: boolean;
  /**
   * Raised while the engine processed a backfill reading (see `Reading.backfill`): evidence from
   * the past, forwarded after an outage. Such a finding is recorded but opens no alert (a clearing
   * one, `active: false`, still reaches the alert manager). Omitted means false.
   */
  backfill?: boolean;
  /**
   * The finding re-evaluates a window that a LATE reading amended (an aggregate with revision ≥ 1):
   * the alert manager answers it with a `correct` transition — an open alert whose condition no
   * longer holds is closed as corrected, a condition that now holds opens (or reopens) an alert
   * whose transition says it came from a correction. Omitted means false.
   */
  correction?: boolean;
  /**
   * The device's reporting interval (ms, declared or learned) when the finding was raised. The
   * alert manager waits at least ABSENCE_INTERVALS of them before resolving on absence (and keeps
   * the cooldown as long): a device reporting every 30 minutes cannot show its condition again
   * sooner. Omitted when not known yet.
   */
  intervalMs?: number;
}

export type AlertStatus = 'open' | 'acknowledged' | 'resolved';

export interface Alert {
  /** Deterministic: derived from stream, key, type and the event time it opened. */
  id: string;
  stream: string;
  key: string;
  site: string | undefined;
  type: string;
  metric: string | undefined;
  severity: Severity;
  status: AlertStatus;
  openedAt: number;
  updatedAt: number;
  resolvedAt: number | undefined;
  /** Latest and highest score seen. */
  score: number;
  peakScore: number;
  value: number;
  /** Findings folded into this alert. */
  findings: number;
  explain: string;
  /** Present (true) while the alert's latest transition fell in a maintenance window: it is recorded, not delivered. */
  muted?: boolean;
  /** Present (true) while the alert is flapping: it is held open and its flips are not notified one by one. */
  flapping?: boolean;
  /** Who the alert is assigned to (`assign`), if anyone. */
  assignee?: string;
  /** Present (true) once a late reading changed the evidence of this alert (a `correct` transition). */
  corrected?: boolean;
}

/**
 * - `open`, `update`, `escalate`, `resolve`, `reopen`: the condition's own life.
 * - `acknowledge`, `assign`: operator actions (`resolve` may be one too, with `by`).
 * - `flapping`: the alert came back too often within the flapping window; it is now held open
 *   and its further flips are not notified until it has stayed clear for the quiet period.
 * - `correct`: a late reading amended a closed window so that the alert no longer holds (status
 *   resolved) or now holds (status open).
 */
export type TransitionKind = 'open' | 'update' | 'escalate' | 'resolve' | 'reopen' | 'acknowledge' | 'assign' | 'flapping' | 'correct';

/** Every transition kind, in the order of `TransitionKind`. */
export const TRANSITION_KINDS: readonly TransitionKind[] = ['open', 'update', 'escalate', 'resolve', 'reopen', 'acknowledge', 'assign', 'flapping', 'correct'];

/** One step in an alert's life. `id` is deterministic: alert id + sequence number. */
export interface AlertTransition {
  id: string;
  alertId: string;
  seq: number;
  kind: TransitionKind;
  time: number;
  status: AlertStatus;
  severity: Severity;
  score: number;
  explain: string;
  /** Operator actions (acknowledge, and resolve by an operator) only: who acted ('operator' when not named). */
  by?: string;
  /** Operator actions only: the operator's note, when given. */
  note?: string;
  /** `assign` only: who the alert is now assigned to. */
  assignee?: string;
  /**
   * Present (true) when the transition happened inside a maintenance window that covers the
   * alert's device or site: stored like any other, never delivered to channels.
   */
  muted?: boolean;
}

/** What the alert manager emits: the alert as it now stands and the step that got it there. */
export interface AlertEvent {
  alert: Alert;
  transition: AlertTransition;
}

export type OpsKind = 'invalid' | 'duplicate' | 'out_of_order' | 'late' | 'too_late' | 'gap' | 'clock_skew' | 'evicted';

/** A data-quality or pipeline event. Nothing the engine rejects or drops goes unrecorded. */
export interface OpsEvent {
  kind: OpsKind;
  stream: string;
  key: string | undefined;
  /** Event time of the reading concerned, if known. */
  time: number | undefined;
  /** Watermark when the reading arrived. */
  watermark: number | undefined;
  /** Position in the source (line number or log offset). */
  offset: number | undefined;
  reason: string;
  /** For invalid input: the field, what was expected, what was got. */
  field: string | undefined;
  expected: string | undefined;
  got: string | undefined;
  /** How far behind the newest event time the reading arrived, for out_of_order/late/too_late. */
  lagMs: number | undefined;
  /** For gap: intervals missed so far. */
  missed: number | undefined;
}

export function opsEvent(kind: OpsKind, stream: string, reason: string, extra: Partial<OpsEvent> = {}): OpsEvent {
  return {
    kind,
    stream,
    key: undefined,
    time: undefined,
    watermark: undefined,
    offset: undefined,
    field: undefined,
    expected: undefined,
    got: undefined,
    lagMs: undefined,
    missed: undefined,
    ...extra,
    reason,
  };
}

/** A periodic snapshot of engine statistics per partition (the `audit` side output). */
export interface AuditSnapshot {
  stream: string;
  partition: number;
  watermark: number;
  maxEventTime: number;
  keys: number;
  readings: number;
  late: number;
  tooLate: number;
  windowsFired: number;
  windowsAmended: number;
  /** Window data its devices hold (readings, or panes for devices that report several times per pane): what closed windows can still be amended from. */
  openWindows: number;
  timers: number;
}

/** Per-reading overall anomaly score (the `--scores-out` output). */
export interface ReadingScore {
  stream: string;
  key: string;
  time: number;
  /** Overall score: the maximum of the per-detector scores for this reading. */
  score: number;
  values: Float64Array;
}

/** Kafka's rule for topic names (org.apache.kafka.common.internals.Topic: letters, digits, `._-`, at most 249); `.` and `..` are refused besides. */
export const KAFKA_TOPIC_PATTERN = /^[A-Za-z0-9._-]{1,249}$/;
