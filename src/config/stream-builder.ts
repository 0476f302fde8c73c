import {
  GpError,
  type AlertPolicy,
  type DetectorSpec,
  type EscalationStep,
  type MaintenanceWindow,
  type LatenessPolicy,
  type MetricSpec,
  type StatePolicy,
  type StreamSchema,
  type TimeFormat,
  type WindowSpec,
} from '../model/index.js';
import { defaultDetectors, STREAM_DEFAULTS } from './defaults.js';
import { DURATION_EXPECTED, DurationReader, formatDuration } from './duration.js';
import { closest, describeValue, formatIssues, pointer, schemaIssues, type ConfigIssue } from './issues.js';
import { StreamInputSchema, type DetectorInput, type MetricOptions, type StreamInput, type WindowInput } from './schema.js';

/** Checks a detector spec against the detector registry (types, params); returns its issues. */
export type DetectorValidator = (spec: DetectorSpec, schema: StreamSchema, path: string) => ConfigIssue[];

const STREAM_NAME = /^[A-Za-z0-9_-]+$/;
// Metric names appear in rule expressions (`avg(torque_nm, 1m) > 65`), so they must be identifiers;
// a source column with another name is mapped with the metric's `field`.
const METRIC_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Builds a frozen StreamSchema from a partial stream object, filling every default, the same way
 * the config file's streams are built. It does not merge with the built-in stream of the same
 * name. When no detectors are given, the stream gets spike, drop, outage, sustained_high,
 * seasonal, zscore and iqr on its power metric (or on every metric when it has none), plus
 * out_of_range and silence. Throws GpError('GP_CONFIG_INVALID', …, { issues }) on bad input.
 *
 * @example
 * const meters = createStreamSchema('lcl', {
 *   key: 'meter_id',
 *   time: 'timestamp_utc',
 *   metrics: { kwh_per_halfhour: { kind: 'interval-energy' } },
 *   expectedInterval: '30m',
 * });
 * meters.metrics.map((metric) => metric.name); // ['kwh_per_halfhour', 'kwh_per_halfhour_kw']
 * meters.powerMetricIndex; // 1
 */
export function createStreamSchema(name: string, input: StreamInput, path = `/streams/${name}`): StreamSchema {
  const issues = schemaIssues(StreamInputSchema, input, path);
  const schema = issues.length === 0 ? buildStream(name, mergeStreamInput(STREAM_DEFAULTS, input), path, issues) : undefined;
  if (schema === undefined || issues.length > 0) {
    throw new GpError('GP_CONFIG_INVALID', `invalid stream "${name}":\n${formatIssues(issues)}`, { issues });
  }
  return schema;
}

/**
 * Merges a stream over a base: mappings (time, metrics given as a mapping, lateness, alerts,
 * state) merge key by key, lists (windows, detectors, metrics given as a list) replace, and
 * `null` for site or id removes it. Neither argument is changed.
 */
export function mergeStreamInput(base: StreamInput, override: StreamInput): StreamInput {
  const merged = copyPlain(base) as Record<string, unknown>;
  for (const [key, value] of Object.entries(copyPlain(override) as Record<string, unknown>)) {
    if (value === undefined) continue;
    const previous = merged[key];
    if (key === 'time') {
      merged.time = { ...asTimeObject(previous), ...asTimeObject(value) };
    } else if (key === 'metrics' && isMapping(value)) {
      const metrics: Record<string, MetricOptions | null> = isMapping(previous)
        ? { ...(previous as Record<string, MetricOptions | null>) }
        : Array.isArray(previous)
          ? Object.fromEntries((previous as string[]).map((name) => [name, {}]))
          : {};
      for (const [name, options] of Object.entries(value as Record<string, MetricOptions | null>)) {
        metrics[name] = { ...(metrics[name] ?? {}), ...(options ?? {}) };
      }
      merged.metrics = metrics;
    } else if ((key === 'lateness' || key === 'alerts' || key === 'state') && isMapping(previous) && isMapping(value)) {
      merged[key] = { ...previous, ...value };
    } else {
      merged[key] = value;
    }
  }
  return merged;
}

function asTimeObject(time: unknown): Record<string, unknown> {
  if (typeof time === 'string') return { field: time };
  return isMapping(time) ? time : {};
}

export function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Copies the arrays and plain objects of a value, keeping anything else (functions, class
 * instances) by reference; unlike structuredClone it never throws on what a caller passed in.
 */
export function copyPlain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(copyPlain);
  if (isMapping(value) && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([key, child]) => [key, copyPlain(child)]));
  }
  return value;
}

export interface BuildStreamOptions {
  /** Whether `input.detectors` came from the built-in stream rather than the user (changes the hints in messages). */
  readonly builtInDetectors?: boolean;
  readonly validateDetector?: DetectorValidator | undefined;
  /** The metrics were dropped for a schema error already reported: skip the checks that depend on them. */
  readonly metricsUnchecked?: boolean;
  /** Top-level `alerts.maintenance` windows (already checked); those naming this stream, or no stream, become its policy's. */
  readonly maintenance?: readonly (MaintenanceWindow & { readonly streams: readonly string[] | undefined })[];
}

/**
 * Semantic checks and defaults for one structurally valid, merged stream. Adds its problems to
 * `issues` and returns undefined when there were any.
 */
export function buildStream(
  name: string,
  input: StreamInput,
  path: string,
  issues: ConfigIssue[],
  options: BuildStreamOptions = {},
): StreamSchema | undefined {
  const issueCountBefore = issues.length;
  const report = (at: string, message: string): void => {
    issues.push({ path: at, message });
  };
  const durations = new DurationReader(issues);

  if (!STREAM_NAME.test(name) || name === '__proto__') {
    report(path, `expected a stream name of letters, digits, _ and -, got ${describeValue(name)}`);
  }
  if (input.key === undefined) {
    report(pointer(path, 'key'), 'expected the name of the field holding the device id, got nothing (a new stream needs a key)');
  }
  const time = typeof input.time === 'string' ? { field: input.time } : (input.time ?? {});
  const timeFormat: TimeFormat = time.format ?? 'auto';

  const metricsUnchecked = options.metricsUnchecked === true;
  const metrics = buildMetrics(input.metrics, pointer(path, 'metrics'), metricsUnchecked ? () => undefined : report);
  const metricIndex: Record<string, number> = {};
  metrics.specs.forEach((metric, index) => {
    metricIndex[metric.name] = index;
  });
  const powerMetric = metrics.specs[metrics.powerIndex];

  let expectedIntervalMs: number | undefined;
  if (input.expectedInterval !== undefined && input.expectedInterval !== 'learn') {
    expectedIntervalMs = durations.read(input.expectedInterval, pointer(path, 'expectedInterval'), {
      positive: true,
      expected: `"learn" or ${DURATION_EXPECTED}`,
    });
  }

  const latenessInput = input.lateness ?? {};
  const latenessPath = pointer(path, 'lateness');
  const lateness: LatenessPolicy = {
    outOfOrderMs: durations.read(latenessInput.outOfOrder, pointer(latenessPath, 'outOfOrder')),
    allowedLatenessMs: durations.read(latenessInput.allowed, pointer(latenessPath, 'allowed')),
    reportOutOfOrderOverMs: durations.read(latenessInput.reportOutOfOrderOver, pointer(latenessPath, 'reportOutOfOrderOver')),
    maxFutureMs: durations.read(latenessInput.maxFuture, pointer(latenessPath, 'maxFuture'), { positive: true }),
    idleTimeoutMs: durations.read(latenessInput.idleTimeout, pointer(latenessPath, 'idleTimeout'), { positive: true }),
  };

  const windows = buildWindows(input.windows ?? [], pointer(path, 'windows'), durations, report);

  const detectors = buildDetectors(
    input.detectors ?? defaultDetectors(powerMetric?.name),
    pointer(path, 'detectors'),
    {
      name,
      metricIndex: metricsUnchecked ? undefined : metricIndex,
      userWritten: input.detectors !== undefined && options.builtInDetectors !== true,
    },
    report,
  );

  const alertsInput = input.alerts ?? {};
  const alertsPath = pointer(path, 'alerts');
  const alerts: { -readonly [K in keyof AlertPolicy]: AlertPolicy[K] } = {
    resolveAfterMs: durations.read(alertsInput.resolveAfter, pointer(alertsPath, 'resolveAfter')),
    minDurationMs: durations.read(alertsInput.minDuration, pointer(alertsPath, 'minDuration')),
    cooldownMs: durations.read(alertsInput.cooldown, pointer(alertsPath, 'cooldown')),
  };
  // The lifecycle features are off unless configured: the policy then has no key for them.
  if (alertsInput.flapping !== undefined) {
    const flappingPath = pointer(alertsPath, 'flapping');
    const windowMs = durations.read(alertsInput.flapping.window, pointer(flappingPath, 'window'), { positive: true });
    alerts.flapping = {
      flips: alertsInput.flapping.flips,
      windowMs,
      // Held open until clear for as long as the cooldown that let it reopen, unless said otherwise.
      quietMs: alertsInput.flapping.quiet === undefined ? alerts.cooldownMs : durations.read(alertsInput.flapping.quiet, pointer(flappingPath, 'quiet')),
    };
  }
  if (alertsInput.escalation !== undefined) {
    const steps: EscalationStep[] = alertsInput.escalation.map((step, index) => ({
      afterMs: durations.read(step.after, pointer(alertsPath, 'escalation', index, 'after'), { positive: true }),
      to: step.to,
    }));
    alerts.escalation = steps.sort((a, b) => a.afterMs - b.afterMs);
  }
  const maintenance = (options.maintenance ?? [])
    .filter((window) => window.streams === undefined || window.streams.includes(name))
    .map(({ streams: _streams, ...window }) => window);
  if (maintenance.length > 0) alerts.maintenance = maintenance;

  const stateInput = input.state ?? {};
  const state: StatePolicy = {
    ttlMs: durations.read(stateInput.ttl, pointer(path, 'state', 'ttl'), { positive: true }),
    maxKeysPerPartition: stateInput.maxKeysPerPartition ?? STREAM_DEFAULTS.state.maxKeysPerPartition,
  };

  if (issues.length > issueCountBefore) return undefined;

  const schema: StreamSchema = {
    name,
    keyField: input.key ?? '',
    siteField: input.site ?? undefined,
    timeField: time.field ?? STREAM_DEFAULTS.time.field,
    timeFormat,
    idField: input.id ?? undefined,
    metrics: metrics.specs,
    metricIndex,
    powerMetricIndex: metrics.powerIndex,
    energyMetricIndex: metrics.energyIndex,
    lateness,
    expectedIntervalMs,
    gapGrace: input.gapGrace ?? STREAM_DEFAULTS.gapGrace,
    windows,
    detectors,
    alerts,
    state,
  };
  deepFreeze(schema);
  if (options.validateDetector !== undefined) {
    const validate = options.validateDetector;
    schema.detectors.forEach((spec, index) => {
      issues.push(...validate(spec, schema, pointer(path, 'detectors', index)));
    });
    if (issues.length > issueCountBefore) return undefined;
  }
  return schema;
}

type Report = (path: string, message: string) => void;

/** Reads durations, reporting bad ones; a value that is not text or a number was already reported by the schema check. */
interface BuiltMetrics {
  readonly specs: MetricSpec[];
  readonly powerIndex: number;
  readonly energyIndex: number;
}

function buildMetrics(input: StreamInput['metrics'], path: string, report: Report): BuiltMetrics {
  // Each metric with the path it was written at, so that messages point into the user's file.
  const entries: { name: string; options: MetricOptions; at: string }[] = Array.isArray(input)
    ? input.map((name, index) => ({ name, options: {}, at: pointer(path, index) }))
    : Object.entries(input ?? {}).map(([name, options]) => ({ name, options: options ?? {}, at: pointer(path, name) }));

  if (entries.length === 0) report(path, 'expected at least one metric, got none');

  const specs: MetricSpec[] = [];
  const seen = new Set<string>();
  let powerIndex = -1;
  let energyIndex = -1;
  for (const { name, options, at } of entries) {
    if (!METRIC_NAME.test(name) || name === '__proto__') {
      report(at, `expected a metric name of letters, digits and _ that does not start with a digit, got ${describeValue(name)} (map another column name with "field")`);
    }
    if (seen.has(name)) report(at, `expected each metric once, got ${describeValue(name)} again`);
    seen.add(name);
    if (options.min !== undefined && options.max !== undefined && options.min > options.max) {
      report(pointer(at, 'max'), `expected max ≥ min (${options.min}), got ${options.max}`);
    }
    const kind = options.kind ?? 'gauge';
    if (options.power === true) {
      if (kind === 'interval-energy') {
        report(pointer(at, 'power'), 'expected power: true only on a kW metric, got it on an interval-energy metric (its derived kW metric is the power metric)');
      } else if (powerIndex >= 0) {
        report(pointer(at, 'power'), `expected one metric with power: true, got a second one (${specs[powerIndex]?.name ?? ''} is already the power metric)`);
      } else {
        powerIndex = specs.length;
      }
    }
    if (kind === 'interval-energy') {
      if (energyIndex >= 0) {
        report(pointer(at, 'kind'), `expected one interval-energy metric, got a second one (${specs[energyIndex]?.name ?? ''} is already one)`);
      } else {
        energyIndex = specs.length;
      }
    }
    specs.push({ name, field: options.field ?? name, kind, min: options.min, max: options.max, unit: options.unit });
  }

  const energy = specs[energyIndex];
  if (energy !== undefined) {
    const derivedName = `${energy.name}_kw`;
    const energyEntry = entries[energyIndex];
    if (seen.has(derivedName)) {
      report(energyEntry?.at ?? path, `expected no metric named "${derivedName}" (the derived kW metric of "${energy.name}"), got one`);
    }
    if (powerIndex >= 0) {
      report(
        pointer(entries[powerIndex]?.at ?? path, 'power'),
        `expected no power: true metric beside interval-energy metric "${energy.name}" (its derived "${derivedName}" is the power metric), got one`,
      );
    }
    specs.push({ name: derivedName, field: '', kind: 'derived-power', min: undefined, max: undefined, unit: 'kW' });
    powerIndex = specs.length - 1;
  }
  return { specs, powerIndex, energyIndex };
}

function buildWindows(input: readonly WindowInput[], path: string, durations: DurationReader, report: Report): WindowSpec[] {
  const windows: WindowSpec[] = [];
  const names = new Set<string>();
  input.forEach((window, index) => {
    const at = pointer(path, index);
    let sizeMs: number;
    let slideMs: number;
    if (typeof window === 'string') {
      const [size = '', slide, ...rest] = window.split('/');
      if (rest.length > 0) {
        report(at, `expected a window like "5m" or "1m/15s", got ${describeValue(window)}`);
        return;
      }
      sizeMs = durations.read(size, at, { positive: true });
      slideMs = slide === undefined ? sizeMs : durations.read(slide, at, { positive: true });
    } else {
      sizeMs = durations.read(window.size, pointer(at, 'size'), { positive: true });
      slideMs = window.slide === undefined ? sizeMs : durations.read(window.slide, pointer(at, 'slide'), { positive: true });
    }
    if (Number.isNaN(sizeMs) || Number.isNaN(slideMs)) return;
    if (sizeMs % slideMs !== 0) {
      report(at, `expected a window size that is a whole multiple of its slide, got size ${formatDuration(sizeMs)} and slide ${formatDuration(slideMs)}`);
      return;
    }
    const name = sizeMs === slideMs ? formatDuration(sizeMs) : `${formatDuration(sizeMs)}/${formatDuration(slideMs)}`;
    if (names.has(name)) {
      report(at, `expected each window once, got "${name}" again`);
      return;
    }
    names.add(name);
    windows.push({ name, sizeMs, slideMs });
  });
  return windows;
}

function buildDetectors(
  input: readonly DetectorInput[],
  path: string,
  // metricIndex is undefined when the metrics could not be read, so references cannot be checked.
  stream: { name: string; metricIndex: Readonly<Record<string, number>> | undefined; userWritten: boolean },
  report: Report,
): DetectorSpec[] {
  const metricIndex = stream.metricIndex;
  const known = Object.keys(metricIndex ?? {});
  const names = new Set<string>();
  // Built-in detectors naming metrics the user's metric list dropped are reported once, at the list.
  const unknownInDefaults = new Set<string>();
  const specs = input.map((detector, index) => {
    const at = pointer(path, index);
    const metrics = detector.metrics ?? [];
    metrics.forEach((metric, metricPosition) => {
      if (metricIndex === undefined || Object.hasOwn(metricIndex, metric)) return;
      if (!stream.userWritten) {
        unknownInDefaults.add(metric);
        return;
      }
      const suggestion = closest(metric, known);
      report(
        pointer(at, 'metrics', metricPosition),
        `expected a metric of stream "${stream.name}" (${known.join(', ')}), got ${describeValue(metric)}` +
          (suggestion === undefined ? '' : ` (did you mean "${suggestion}"?)`),
      );
    });
    if (detector.name !== undefined) {
      if (names.has(detector.name)) report(pointer(at, 'name'), `expected a name no other detector of this stream uses, got "${detector.name}" again`);
      names.add(detector.name);
    }
    let params: Record<string, unknown> = {};
    try {
      params = structuredClone(detector.params ?? {});
    } catch {
      report(pointer(at, 'params'), 'expected plain data (numbers, text, lists, mappings), got something that cannot be copied');
    }
    return { type: detector.type, metrics: [...metrics], params, alertType: detector.name, enabled: detector.enabled ?? true };
  });
  if (unknownInDefaults.size > 0) {
    report(
      path,
      `expected detectors that use only metrics of stream "${stream.name}" (${known.join(', ')}), ` +
        `got the default detectors, which use ${[...unknownInDefaults].map((metric) => `"${metric}"`).join(', ')}; list this stream's detectors`,
    );
  }
  return specs;
}

/** Freezes an object graph of plain data (objects and arrays). */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
