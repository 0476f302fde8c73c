/**
 * The resolved, frozen description of one stream, built by `src/config` from the YAML file
 * (or the built-in defaults). Every duration here is in milliseconds; every metric has a
 * fixed index, which is its position in `Reading.values` and in `Aggregate.stats`.
 *
 * @example
 * const power = config.streams.power;
 * power.metrics[power.metricIndex.usageKw].field; // "usageKw"
 */
export interface StreamSchema {
  readonly name: string;
  /** Field holding the device id (meter, machine). */
  readonly keyField: string;
  /** Optional field holding the site (building, line) the device belongs to. */
  readonly siteField: string | undefined;
  /** Field holding the event time. */
  readonly timeField: string;
  /** How the time field is encoded; `auto` accepts epoch ms, epoch s and ISO-8601. */
  readonly timeFormat: TimeFormat;
  /** Optional field with a reading id used to recognise duplicates; otherwise (key, time) is the identity. */
  readonly idField: string | undefined;
  /** Metrics in index order. Derived metrics (kW from interval energy) come last. */
  readonly metrics: readonly MetricSpec[];
  /** Metric name → index into `metrics`. */
  readonly metricIndex: Readonly<Record<string, number>>;
  /** Index of the metric that is power in kW (integrated into window energy), or -1. */
  readonly powerMetricIndex: number;
  /** Index of the interval-energy metric (kWh per interval) whose sum is the window energy, or -1. */
  readonly energyMetricIndex: number;
  readonly lateness: LatenessPolicy;
  /** Declared reporting interval; undefined means it is learned per device. */
  readonly expectedIntervalMs: number | undefined;
  /** A device is silent once it misses `expected interval × (1 + gapGrace)`. */
  readonly gapGrace: number;
  readonly windows: readonly WindowSpec[];
  readonly detectors: readonly DetectorSpec[];
  readonly alerts: AlertPolicy;
  readonly state: StatePolicy;
}

export type TimeFormat = 'auto' | 'epoch-ms' | 'epoch-s' | 'iso';

export interface MetricSpec {
  /** Name used in outputs, queries and detector configs. */
  readonly name: string;
  /** Source field in the reading; empty for derived metrics. */
  readonly field: string;
  /** `gauge`: an instantaneous value. `interval-energy`: kWh consumed during the reporting interval. `derived-power`: kW computed from the interval-energy metric. */
  readonly kind: 'gauge' | 'interval-energy' | 'derived-power';
  /** Optional plausible range; values outside are reported by the out-of-range detector. */
  readonly min: number | undefined;
  readonly max: number | undefined;
  readonly unit: string | undefined;
}

export interface LatenessPolicy {
  /** Watermark = max event time − outOfOrder. Default 120 s. */
  readonly outOfOrderMs: number;
  /** Windows stay amendable this long after the watermark passes their end. Default 10 min. */
  readonly allowedLatenessMs: number;
  /** A reading more than this behind its own device's newest reading is reported on ops as out of order (even when ON_TIME). Default 0: any reading that arrives after a newer one of the same device. */
  readonly reportOutOfOrderOverMs: number;
  /** A reading further than this ahead of the newest event time seen (or of the wall clock, live) is rejected as clock skew. Default 1 day. */
  readonly maxFutureMs: number;
  /** A partition that has fallen this far behind the others in event time is idle and no longer holds the watermark back. Default 60 s. */
  readonly idleTimeoutMs: number;
}

export interface WindowSpec {
  /** Stable label used in outputs and queries: `1m`, `5m`, `15m`, `1m/15s`. */
  readonly name: string;
  readonly sizeMs: number;
  /** Equal to size for tumbling windows. The size must be a multiple of the slide. */
  readonly slideMs: number;
}

export interface DetectorSpec {
  /** Registry name: spike, drop, outage, sustained_high, silence, zscore, iqr, seasonal, out_of_range, physics, rule, model. */
  readonly type: string;
  /** Metrics it runs on; empty means every gauge/derived metric of the stream. */
  readonly metrics: readonly string[];
  /** Detector-specific parameters, already merged with the detector's defaults by the registry. */
  readonly params: Readonly<Record<string, unknown>>;
  /** Alert type override (e.g. `overstrain` for a rule); defaults to the detector type. */
  readonly alertType: string | undefined;
  readonly enabled: boolean;
}

export interface AlertPolicy {
  /**
   * An open alert resolves after its condition has been absent this long (event time). Default 5 min.
   * At least 2 of the device's reporting intervals (`Finding.intervalMs`) whatever this says.
   */
  readonly resolveAfterMs: number;
  /** A condition must hold this long before an alert opens (0 = at once). */
  readonly minDurationMs: number;
  /** A condition that comes back within this time of a resolve reopens the same alert instead of a new one. Default 10 min; at least 2 reporting intervals of the device. */
  readonly cooldownMs: number;
  /** Optional: flapping detection (absent: off). */
  readonly flapping?: FlappingPolicy;
  /** Optional: severity raised after an alert has been open, unacknowledged, this long (absent: never). Sorted by `afterMs`. */
  readonly escalation?: readonly EscalationStep[];
  /** Optional: maintenance windows; transitions inside one are recorded but marked `muted` and not delivered. */
  readonly maintenance?: readonly MaintenanceWindow[];
}

/**
 * An alert that resolves and comes back `flips` times within `windowMs` is flapping: a
 * `flapping` transition is sent instead of the reopen, the alert is held open (clears and
 * returns are not notified) and it resolves once its condition has stayed clear for `quietMs`.
 */
export interface FlappingPolicy {
  readonly flips: number;
  readonly windowMs: number;
  readonly quietMs: number;
}

/** An alert open (not acknowledged) for `afterMs` since it opened or reopened is raised to severity `to`. */
export interface EscalationStep {
  readonly afterMs: number;
  readonly to: 'info' | 'warning' | 'critical';
}

/**
 * A time range (event time, `from` inclusive, `to` exclusive) during which the alerts of the
 * listed devices (`keys`) or sites are muted. Neither listed: every device of the stream.
 */
export interface MaintenanceWindow {
  readonly keys?: readonly string[];
  readonly sites?: readonly string[];
  readonly from: number;
  readonly to: number;
  readonly reason: string;
}

export interface StatePolicy {
  /** Devices silent this long (event time) are evicted. Default 7 days. */
  readonly ttlMs: number;
  /** Most devices held per partition; the least recently seen is evicted beyond it. */
  readonly maxKeysPerPartition: number;
}
