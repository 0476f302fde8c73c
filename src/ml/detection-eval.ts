/**
 * Scores detections against labelled anomalies (the simulator's labels file): recall,
 * precision, F1 and detection delay per anomaly type, with the detections that are explained
 * by a neighbouring anomaly of another type counted apart rather than hidden or held against
 * the detector.
 *
 * Which detections count for which label type:
 * - spike, drop, outage, sustained_high, overstrain, heat_dissipation, power_failure,
 *   tool_wear → alerts of that type;
 * - gap → alerts of type `silence` (or `gap`), and ops events `gap`;
 * - late → ops `out_of_order`, `late`, `too_late`;
 * - duplicate → ops `duplicate`;
 * - malformed → ops `invalid`, and `clock_skew` (a timestamp years ahead is rejected as skew).
 *
 * Matching: a label that lists `offsets` (late, duplicate, malformed) matches an ops event
 * whose `offset` is one of them, exactly. Any other label matches a detection on the same
 * stream and key whose onset (an alert's openedAt or reopen time, an ops event's time) lies in
 * [start − lead, end + tolerance] (lead 2 min, tolerance 15 min by default). One alert id is one
 * detection, however many transitions it had; each ops event is one detection. Detection delay
 * is measured for time-window matches only: a line-based label is found when its line is read.
 */
import { type AlertEvent, GpError, type OpsEvent, type OpsKind } from '../model/index.js';

export const LABEL_TYPES = [
  'spike',
  'drop',
  'outage',
  'sustained_high',
  'gap',
  'late',
  'duplicate',
  'malformed',
  'overstrain',
  'heat_dissipation',
  'power_failure',
  'tool_wear',
] as const;
export type LabelType = (typeof LABEL_TYPES)[number];

/** Alert types that count as detections of a label type. */
export const ALERT_TYPE_TO_LABEL: Readonly<Record<string, LabelType>> = Object.freeze({
  spike: 'spike',
  drop: 'drop',
  outage: 'outage',
  sustained_high: 'sustained_high',
  silence: 'gap',
  gap: 'gap',
  overstrain: 'overstrain',
  heat_dissipation: 'heat_dissipation',
  power_failure: 'power_failure',
  tool_wear: 'tool_wear',
});

/** Ops kinds that count as detections of a label type (`evicted` counts for none). */
export const OPS_KIND_TO_LABEL: Readonly<Partial<Record<OpsKind, LabelType>>> = Object.freeze({
  gap: 'gap',
  out_of_order: 'late',
  late: 'late',
  too_late: 'late',
  duplicate: 'duplicate',
  invalid: 'malformed',
  clock_skew: 'malformed',
});

const OPS_KINDS: readonly OpsKind[] = ['invalid', 'duplicate', 'out_of_order', 'late', 'too_late', 'gap', 'clock_skew', 'evicted'];

/** One labelled anomaly (the fields of the simulator's labels the evaluator uses). */
export interface EvalLabel {
  id: string;
  type: LabelType;
  stream: string;
  key: string;
  start: number;
  end: number;
  magnitude?: number;
  offsets?: number[];
  variant?: string;
}

export interface EvalLabelSet {
  version: 1;
  anomalies: EvalLabel[];
}

/** A line of `replay --alerts-out` (AlertEvent) or `--ops-out` (OpsEvent). */
export type DetectionRecord = AlertEvent | OpsEvent;

export interface EvalOptions {
  /** How long after a label's end a detection still counts, ms. Default 15 min. */
  toleranceMs?: number;
  /** How long before a label's start a detection already counts, ms. Default 2 min. */
  leadMs?: number;
}

export const DEFAULT_EVAL_TOLERANCE_MS = 15 * 60_000;
export const DEFAULT_EVAL_LEAD_MS = 2 * 60_000;

export interface EvalTypeResult {
  type: LabelType;
  labels: number;
  /** Labels with at least one matching detection. */
  matchedLabels: number;
  /** Detections of the mapped kinds (alert ids, ops events). */
  detections: number;
  /** Detections that match a label of this type. */
  truePositives: number;
  /** Detections that match no label at all. */
  falsePositives: number;
  /** Detections that match no label of this type but one of another type on the same device (a drop alert during an outage). */
  explained: number;
  /** Explained detections by the label type that explains them. */
  explainedBy: Partial<Record<LabelType, number>>;
  /** matchedLabels / labels; null without labels. */
  recall: number | null;
  /** truePositives / (detections − explained); null without such detections. */
  precision: number | null;
  f1: number | null;
  /** First matching detection − label start, seconds, over matched labels; not measured for line-based labels (null). */
  delayMedianSeconds: number | null;
  delayP95Seconds: number | null;
  /** Ids of the labels no detection matched. */
  missed: string[];
}

/** Detections of types with no label mapping (zscore, iqr, seasonal, physics, evicted ...). */
export interface OtherDetectorResult {
  source: 'alert' | 'ops';
  type: string;
  detections: number;
  /** How many of them overlap some label (same rules as matching, any label type). */
  overlappingLabels: number;
}

export interface EvalReport {
  toleranceMs: number;
  leadMs: number;
  labels: number;
  alerts: number;
  opsEvents: number;
  types: EvalTypeResult[];
  /** Sums over the types; recall and precision computed from the sums (micro average). */
  total: Omit<EvalTypeResult, 'type' | 'explainedBy' | 'delayMedianSeconds' | 'delayP95Seconds' | 'missed'>;
  otherDetectors: OtherDetectorResult[];
}

// ---------------------------------------------------------------------------------------------
// Input validation

function labelsInvalid(path: string, expected: string, got: unknown): GpError {
  const shown = got === undefined ? 'nothing' : JSON.stringify(got);
  return new GpError('GP_LABELS_INVALID', `${path}: expected ${expected}, got ${shown}`, { field: path, expected, got: shown });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Checks a parsed labels file and returns it typed. Every problem names the field by its JSON
 * pointer.
 *
 * @example
 * parseLabelSet(JSON.parse(text));
 * parseLabelSet({ version: 1, anomalies: [{ id: 'a-1', type: 'spike' }] });
 * // throws GpError GP_LABELS_INVALID "/anomalies/0/stream: expected a non-empty string, got nothing"
 */
export function parseLabelSet(value: unknown): EvalLabelSet {
  if (!isRecord(value)) throw labelsInvalid('/', 'a JSON object with "version" and "anomalies"', value);
  if (value.version !== 1) throw labelsInvalid('/version', '1', value.version);
  if (!Array.isArray(value.anomalies)) throw labelsInvalid('/anomalies', 'an array of labels', value.anomalies);
  const anomalies = value.anomalies.map((item: unknown, index) => parseLabel(item, `/anomalies/${index}`));
  return { version: 1, anomalies };
}

function parseLabel(item: unknown, path: string): EvalLabel {
  if (!isRecord(item)) throw labelsInvalid(path, 'a label object', item);
  const text = (field: string): string => {
    const got = item[field];
    if (typeof got !== 'string' || got === '') throw labelsInvalid(`${path}/${field}`, 'a non-empty string', got);
    return got;
  };
  const time = (field: string): number => {
    const got = item[field];
    if (typeof got !== 'number' || !Number.isFinite(got)) throw labelsInvalid(`${path}/${field}`, 'epoch milliseconds (a number)', got);
    return got;
  };
  const id = text('id');
  const type = text('type');
  if (!(LABEL_TYPES as readonly string[]).includes(type)) throw labelsInvalid(`${path}/type`, `one of ${LABEL_TYPES.join(', ')}`, type);
  const label: EvalLabel = { id, type: type as LabelType, stream: text('stream'), key: text('key'), start: time('start'), end: time('end') };
  if (label.end < label.start) throw labelsInvalid(`${path}/end`, `a time at or after start (${label.start})`, label.end);
  if (item.magnitude !== undefined) {
    if (typeof item.magnitude !== 'number' || !Number.isFinite(item.magnitude)) throw labelsInvalid(`${path}/magnitude`, 'a number', item.magnitude);
    label.magnitude = item.magnitude;
  }
  if (item.offsets !== undefined) {
    const offsets = item.offsets;
    if (!Array.isArray(offsets)) throw labelsInvalid(`${path}/offsets`, 'an array of 1-based line numbers', offsets);
    offsets.forEach((offset: unknown, i) => {
      if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 1) {
        throw labelsInvalid(`${path}/offsets/${i}`, 'a 1-based line number', offset);
      }
    });
    label.offsets = offsets as number[];
  }
  if (item.variant !== undefined) label.variant = text('variant');
  return label;
}

function recordInvalid(where: string, expected: string, got: unknown): GpError {
  const shown = got === undefined ? 'nothing' : JSON.stringify(got);
  return new GpError('GP_INPUT_INVALID', `${where}: expected ${expected}, got ${shown}`, { field: where, expected, got: shown });
}

const optionalNumber = (value: unknown): number | undefined => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);

/**
 * Recognises one parsed results line by its fields: `{alert, transition}` is an AlertEvent,
 * an object with an ops `kind` is an OpsEvent. Only the fields the evaluator reads are checked.
 *
 * @example
 * parseDetectionRecord(JSON.parse(line), 'alerts.ndjson:12');
 */
export function parseDetectionRecord(value: unknown, where: string): DetectionRecord {
  if (!isRecord(value)) throw recordInvalid(where, 'an AlertEvent or OpsEvent JSON object', value);
  if ('alert' in value || 'transition' in value) {
    const { alert, transition } = value;
    if (!isRecord(alert)) throw recordInvalid(`${where}: alert`, 'an object', alert);
    if (!isRecord(transition)) throw recordInvalid(`${where}: transition`, 'an object', transition);
    for (const field of ['id', 'stream', 'key', 'type']) {
      if (typeof alert[field] !== 'string') throw recordInvalid(`${where}: alert.${field}`, 'a string', alert[field]);
    }
    if (optionalNumber(alert.openedAt) === undefined) throw recordInvalid(`${where}: alert.openedAt`, 'epoch milliseconds', alert.openedAt);
    if (typeof transition.kind !== 'string') throw recordInvalid(`${where}: transition.kind`, 'a transition kind', transition.kind);
    return value as unknown as AlertEvent;
  }
  if (typeof value.kind === 'string') {
    if (!(OPS_KINDS as readonly string[]).includes(value.kind)) throw recordInvalid(`${where}: kind`, `one of ${OPS_KINDS.join(', ')}`, value.kind);
    if (typeof value.stream !== 'string') throw recordInvalid(`${where}: stream`, 'a string', value.stream);
    const key = typeof value.key === 'string' ? value.key : undefined;
    return {
      ...(value as unknown as OpsEvent),
      key,
      time: optionalNumber(value.time),
      offset: optionalNumber(value.offset),
    };
  }
  throw recordInvalid(where, 'an AlertEvent ({"alert","transition"}) or an OpsEvent ({"kind",...})', value);
}

// ---------------------------------------------------------------------------------------------
// Evaluation

interface Detection {
  source: 'alert' | 'ops';
  /** Alert type or ops kind. */
  type: string;
  stream: string;
  key: string | undefined;
  /** Alert: openedAt and reopen times; ops: its event time (if known). */
  onsets: number[];
  offset: number | undefined;
}

const deviceKey = (stream: string, key: string): string => `${stream}\u0000${key}`;

class LabelIndex {
  private readonly byDevice = new Map<string, EvalLabel[]>();
  private readonly byOffset = new Map<number, EvalLabel[]>();

  constructor(
    labels: readonly EvalLabel[],
    private readonly leadMs: number,
    private readonly toleranceMs: number,
  ) {
    for (const label of labels) {
      push(this.byDevice, deviceKey(label.stream, label.key), label);
      for (const offset of label.offsets ?? []) push(this.byOffset, offset, label);
    }
  }

  /**
   * Labels the detection matches, each with the time of the match (undefined when the
   * detection carries no time). Offset labels match by line only; other labels by device and
   * time window.
   */
  matches(detection: Detection): Array<{ label: EvalLabel; time: number | undefined }> {
    const found: Array<{ label: EvalLabel; time: number | undefined }> = [];
    if (detection.offset !== undefined) {
      // A line is flagged when it is read: the delay is not a property of the detector here (and
      // the event time of a corrupt line can be years off), so none is measured.
      for (const label of this.byOffset.get(detection.offset) ?? []) found.push({ label, time: undefined });
    }
    if (detection.key === undefined) return found;
    for (const label of this.byDevice.get(deviceKey(detection.stream, detection.key)) ?? []) {
      // A detection that carries a line number is judged by its line against line-based labels.
      if (label.offsets !== undefined && label.offsets.length > 0 && detection.offset !== undefined) continue;
      let first: number | undefined;
      for (const onset of detection.onsets) {
        if (onset >= label.start - this.leadMs && onset <= label.end + this.toleranceMs && (first === undefined || onset < first)) first = onset;
      }
      if (first !== undefined) found.push({ label, time: first });
    }
    return found;
  }
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

function collectDetections(records: Iterable<DetectionRecord>): { detections: Detection[]; alerts: number; opsEvents: number } {
  const alerts = new Map<string, Detection>();
  const detections: Detection[] = [];
  let opsEvents = 0;
  for (const record of records) {
    if ('alert' in record) {
      const { alert, transition } = record;
      let detection = alerts.get(alert.id);
      if (detection === undefined) {
        detection = { source: 'alert', type: alert.type, stream: alert.stream, key: alert.key, onsets: [alert.openedAt], offset: undefined };
        alerts.set(alert.id, detection);
        detections.push(detection);
      } else if (alert.openedAt < (detection.onsets[0] ?? Number.POSITIVE_INFINITY)) {
        detection.onsets[0] = alert.openedAt;
      }
      // A reopened alert is the same alert id, but a new onset of its condition.
      if (transition.kind === 'reopen' && Number.isFinite(transition.time)) detection.onsets.push(transition.time);
    } else {
      opsEvents += 1;
      detections.push({
        source: 'ops',
        type: record.kind,
        stream: record.stream,
        key: record.key ?? undefined,
        onsets: typeof record.time === 'number' ? [record.time] : [],
        offset: typeof record.offset === 'number' ? record.offset : undefined,
      });
    }
  }
  return { detections, alerts: alerts.size, opsEvents };
}

function mappedType(detection: Detection): LabelType | undefined {
  return detection.source === 'alert' ? ALERT_TYPE_TO_LABEL[detection.type] : OPS_KIND_TO_LABEL[detection.type as OpsKind];
}

/** Linear-interpolation quantile of sorted values (the usual "type 7"). */
function quantile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const position = (sorted.length - 1) * q;
  const below = Math.floor(position);
  const low = sorted[below] ?? 0;
  const high = sorted[Math.min(below + 1, sorted.length - 1)] ?? low;
  return low + (high - low) * (position - below);
}

const ratio = (part: number, whole: number): number | null => (whole > 0 ? part / whole : null);

function f1Of(precision: number | null, recall: number | null): number | null {
  if (precision === null || recall === null) return null;
  return precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
}

/**
 * Scores detections (alert events and ops events, in any order) against labels.
 *
 * @example
 * const report = evaluateDetections(parseLabelSet(labelsJson), [...alertEvents, ...opsEvents], { toleranceMs: 900_000 });
 * report.types.find((row) => row.type === 'spike')?.recall;
 */
export function evaluateDetections(labels: EvalLabelSet, records: Iterable<DetectionRecord>, options: EvalOptions = {}): EvalReport {
  const labelSet = parseLabelSet(labels);
  const toleranceMs = options.toleranceMs ?? DEFAULT_EVAL_TOLERANCE_MS;
  const leadMs = options.leadMs ?? DEFAULT_EVAL_LEAD_MS;
  for (const [name, value] of [['toleranceMs', toleranceMs], ['leadMs', leadMs]] as const) {
    if (!Number.isFinite(value) || value < 0) throw new GpError('GP_INPUT_INVALID', `${name}: expected a non-negative number of milliseconds, got ${value}`, { field: name });
  }
  const index = new LabelIndex(labelSet.anomalies, leadMs, toleranceMs);
  const { detections, alerts, opsEvents } = collectDetections(records);

  const rows = new Map<LabelType, EvalTypeResult>();
  const row = (type: LabelType): EvalTypeResult => {
    let existing = rows.get(type);
    if (existing === undefined) {
      existing = {
        type,
        labels: 0,
        matchedLabels: 0,
        detections: 0,
        truePositives: 0,
        falsePositives: 0,
        explained: 0,
        explainedBy: {},
        recall: null,
        precision: null,
        f1: null,
        delayMedianSeconds: null,
        delayP95Seconds: null,
        missed: [],
      };
      rows.set(type, existing);
    }
    return existing;
  };
  for (const label of labelSet.anomalies) row(label.type).labels += 1;

  // Earliest matching detection time per label id (null: matched by a detection without a time).
  const firstDetection = new Map<string, number | null>();
  const others = new Map<string, OtherDetectorResult>();

  for (const detection of detections) {
    const matches = index.matches(detection);
    const type = mappedType(detection);
    if (type === undefined) {
      const name = `${detection.source}\u0000${detection.type}`;
      let other = others.get(name);
      if (other === undefined) {
        other = { source: detection.source, type: detection.type, detections: 0, overlappingLabels: 0 };
        others.set(name, other);
      }
      other.detections += 1;
      if (matches.length > 0) other.overlappingLabels += 1;
      continue;
    }
    const result = row(type);
    result.detections += 1;
    const own = matches.filter((match) => match.label.type === type);
    if (own.length > 0) {
      result.truePositives += 1;
      for (const { label, time } of own) {
        const previous = firstDetection.get(label.id);
        if (previous === undefined || (time !== undefined && (previous === null || time < previous))) firstDetection.set(label.id, time ?? null);
      }
    } else if (matches.length > 0) {
      result.explained += 1;
      // Credited to the earliest-starting label that explains it, so the breakdown sums up.
      const explainer = matches.reduce((best, match) => (match.label.start < best.label.start ? match : best));
      result.explainedBy[explainer.label.type] = (result.explainedBy[explainer.label.type] ?? 0) + 1;
    } else {
      result.falsePositives += 1;
    }
  }

  const delays = new Map<LabelType, number[]>();
  for (const label of labelSet.anomalies) {
    const result = row(label.type);
    if (!firstDetection.has(label.id)) {
      result.missed.push(label.id);
      continue;
    }
    result.matchedLabels += 1;
    const time = firstDetection.get(label.id);
    if (typeof time === 'number') push(delays, label.type, (time - label.start) / 1000);
  }

  const types = LABEL_TYPES.filter((type) => rows.has(type)).map((type) => {
    const result = row(type);
    result.recall = ratio(result.matchedLabels, result.labels);
    result.precision = ratio(result.truePositives, result.detections - result.explained);
    result.f1 = f1Of(result.precision, result.recall);
    const sorted = (delays.get(type) ?? []).sort((a, b) => a - b);
    result.delayMedianSeconds = quantile(sorted, 0.5);
    result.delayP95Seconds = quantile(sorted, 0.95);
    return result;
  });

  const sum = (field: 'labels' | 'matchedLabels' | 'detections' | 'truePositives' | 'falsePositives' | 'explained'): number =>
    types.reduce((total, result) => total + result[field], 0);
  const totalRecall = ratio(sum('matchedLabels'), sum('labels'));
  const totalPrecision = ratio(sum('truePositives'), sum('detections') - sum('explained'));
  return {
    toleranceMs,
    leadMs,
    labels: labelSet.anomalies.length,
    alerts,
    opsEvents,
    types,
    total: {
      labels: sum('labels'),
      matchedLabels: sum('matchedLabels'),
      detections: sum('detections'),
      truePositives: sum('truePositives'),
      falsePositives: sum('falsePositives'),
      explained: sum('explained'),
      recall: totalRecall,
      precision: totalPrecision,
      f1: f1Of(totalPrecision, totalRecall),
    },
    otherDetectors: [...others.values()].sort((a, b) => (a.source === b.source ? (a.type < b.type ? -1 : 1) : a.source === 'alert' ? -1 : 1)),
  };
}

// ---------------------------------------------------------------------------------------------
// Text report

const fixed = (value: number | null, digits: number): string => (value === null ? '—' : value.toFixed(digits));

/**
 * The report as a text table, one row per anomaly type, then the explained detections and
 * the detectors without a label mapping.
 *
 * @example
 * process.stdout.write(formatEvalReport(evaluateDetections(labels, records)));
 */
export function formatEvalReport(report: EvalReport): string {
  const header = ['type', 'labels', 'detections', 'TP', 'FP', 'explained', 'recall', 'precision', 'F1', 'delay p50 s', 'delay p95 s'];
  const body: string[][] = report.types.map((row) => [
    row.type,
    String(row.labels),
    String(row.detections),
    String(row.truePositives),
    String(row.falsePositives),
    String(row.explained),
    fixed(row.recall, 3),
    fixed(row.precision, 3),
    fixed(row.f1, 3),
    fixed(row.delayMedianSeconds, 1),
    fixed(row.delayP95Seconds, 1),
  ]);
  const total = report.total;
  body.push([
    'all',
    String(total.labels),
    String(total.detections),
    String(total.truePositives),
    String(total.falsePositives),
    String(total.explained),
    fixed(total.recall, 3),
    fixed(total.precision, 3),
    fixed(total.f1, 3),
    '',
    '',
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...body.map((cells) => (cells[column] ?? '').length)));
  const format = (cells: string[]): string =>
    cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join('  ').trimEnd();
  const lines = [
    `${report.labels} labels; ${report.alerts} alerts, ${report.opsEvents} ops events; a detection counts from ${report.leadMs / 1000} s before a label's start to ${report.toleranceMs / 1000} s after its end.`,
    '',
    format(header),
    format(header.map((_, column) => '-'.repeat(widths[column] ?? 0))),
    ...body.slice(0, -1).map(format),
    format(header.map((_, column) => '-'.repeat(widths[column] ?? 0))),
    format(body[body.length - 1] ?? []),
  ];
  const explained = report.types.filter((row) => row.explained > 0);
  if (explained.length > 0) {
    lines.push('', 'explained (detections during an anomaly of another type, left out of precision):');
    for (const row of explained) {
      const parts = Object.entries(row.explainedBy).map(([type, count]) => `${type} ${count}`);
      lines.push(`  ${row.type}: ${parts.join(', ')}`);
    }
  }
  if (report.otherDetectors.length > 0) {
    lines.push('', 'other detectors (no label mapping):');
    for (const other of report.otherDetectors) {
      lines.push(`  ${other.source === 'alert' ? 'alert' : 'ops'} ${other.type}: ${other.detections} detections, ${other.overlappingLabels} overlapping a label`);
    }
  }
  return `${lines.join('\n')}\n`;
}
