import { GpError, SEVERITIES, severityForScore } from '../model/index.js';
import type {
  Alert,
  AlertEmitter,
  AlertPolicy,
  AlertStatus,
  AlertTransition,
  Finding,
  FindingHandler,
  Severity,
  TransitionKind,
} from '../model/index.js';
import { describeJson } from '../engine/index.js';
import { alertId, transitionId } from './alert-ids.js';

export interface AlertManagerOptions {
  policy: AlertPolicy;
  /** Receives every alert event, synchronously, in the order they happen. */
  emit: AlertEmitter;
}

/** The alert manager of one partition: a `FindingHandler` plus inspection and checkpointing. */
export interface AlertManager extends FindingHandler {
  /** Copies of the alerts open now (status open or acknowledged), oldest first. */
  openAlerts(): Alert[];
  /** A copy of the alert with this id while the manager holds it (open, acknowledged, or resolved and within its cooldown), else undefined. */
  findAlert(id: string): Alert | undefined;
  /**
   * An operator acknowledges an open alert at `at` (event time; in live use the wall clock):
   * its status becomes `acknowledged`, it stays active (updates, escalations and resolves go on
   * as before, keeping that status) and an `acknowledge` transition carrying `by` and `note` is
   * emitted. Acknowledging an acknowledged alert again changes nothing and emits nothing.
   * Returns a copy of the alert, or undefined when this manager has no open or acknowledged
   * alert with that id.
   */
  acknowledge(alertId: string, at: number, by?: string, note?: string): Alert | undefined;
  /**
   * An operator resolves an open or acknowledged alert at `at`: it closes with a `resolve`
   * transition carrying `by` and `note`. If the condition still holds afterwards, the usual
   * rules apply: an active finding within `cooldownMs` reopens it, a later one opens a new alert.
   * Returns a copy of the resolved alert, or undefined when this manager has no open or
   * acknowledged alert with that id.
   */
  resolve(alertId: string, at: number, by?: string, note?: string): Alert | undefined;
  /** The whole state as plain JSON (safe for `JSON.stringify`), for a checkpoint. */
  snapshot(): unknown;
  /** Replace the state with one taken by `snapshot()`; the manager then continues exactly as the one that took it. */
  restore(state: unknown): void;
}

/**
 * Where one (stream, key, type) stands:
 * - `pending`: active findings seen, but not yet for `minDurationMs`; `alert` is a draft without an id.
 * - `open`: an alert is open.
 * - `resolved`: the alert resolved and is kept until its cooldown passes, so that it can reopen.
 */
type Phase = 'pending' | 'open' | 'resolved';

interface Track {
  phase: Phase;
  alert: Alert;
  /** Event time of the newest active finding; absence is measured from here. */
  lastActiveAt: number;
  /** The condition holds until an inactive finding (Finding.holds): never resolved by absence. */
  holds: boolean;
  /** Score carried by the last open/update/escalate/reopen event; an update needs a rise over it. */
  lastEmittedScore: number;
  nextSeq: number;
}

/** Who performed an operator action, carried into its transition. */
interface OperatorAction {
  by: string;
  note?: string;
}

/** An update event needs the score to rise at least this much over the last emitted one. */
const SCORE_STEP = 0.1;
// 0.6 - 0.5 is 0.09999999999999998 in binary floating point; a rise of "0.1" must still count.
const SCORE_TOLERANCE = 1e-9;
const SNAPSHOT_VERSION = 1;

/**
 * Create the alert manager of one partition. It turns the partition's findings, seen in
 * event-time order, into alert events; it does no I/O and reads no clock, so the same findings
 * and watermarks always give the same events, with the same ids.
 *
 * Rules (all times are event time, milliseconds):
 * - **One open alert per (stream, key, type).** An active finding (`active: true`) with no open
 *   alert opens one at the finding's time. With `policy.minDurationMs > 0` the condition must
 *   first hold that long — active findings with no gap longer than `resolveAfterMs` between
 *   them — and the alert opens at the finding that completes the duration: `openedAt` is the
 *   first finding's time, the `open` transition's time is the completing finding's time. A
 *   condition that clears or lapses sooner opens nothing.
 * - **Updates without storms.** Further active findings fold into the open alert (findings
 *   count, latest score/value/explain/metric, `peakScore`, `updatedAt`) silently. An event is
 *   emitted only when the severity rises (`escalate`; severity never falls while open) or the
 *   score rises by at least 0.1 over the score of the last emitted event (`update`).
 * - **Resolve when cleared.** An inactive finding (`active: false`) resolves the open alert of
 *   its (stream, key, type) at the finding's time; it also discards a pending condition.
 * - **Resolve on absence.** `onWatermark(wm)` resolves open alerts whose last active finding is
 *   older than `wm − resolveAfterMs`, with `resolvedAt = lastActiveFinding + resolveAfterMs` —
 *   except alerts whose findings say the condition `holds` until cleared (a silent device is
 *   silent until it reports again): those resolve only on an inactive finding.
 *   An active finding that arrives after such a gap resolves the alert at that same time first,
 *   so the result does not depend on when watermarks arrive.
 * - **Cooldown against flapping.** An active finding no later than `resolvedAt + cooldownMs`
 *   reopens the same alert (same id, `reopen` transition, severity from the new finding; no
 *   `minDurationMs` wait, the condition has qualified already). Later, a new alert with a new id.
 * - **Ids.** Alert id from (stream, key, type, openedAt) — see `alertId`; transition id
 *   `${alertId}:${seq}`, seq 0, 1, 2, ... over the alert's whole life, reopens included.
 * - **Events are snapshots.** Each `AlertEvent` holds a copy of the alert as it stood and the
 *   transition with the status, severity, score and explain of that moment. Resolves due at one
 *   watermark are emitted in order of `resolvedAt`, then stream, key, type.
 * - **Bounded memory.** A resolved alert is forgotten once the watermark passes
 *   `resolvedAt + cooldownMs`; a pending condition once its findings are absent past `resolveAfterMs`.
 * - **Operator actions.** `acknowledge(id, at, by, note)` marks an open alert `acknowledged`
 *   (still active: later updates, escalations and resolves keep that status until it resolves);
 *   `resolve(id, at, by, note)` closes it as resolved by an operator, after which the cooldown
 *   rule above decides between a reopen and a new alert. Both emit a transition with `by` and
 *   `note`, at `max(at, alert.updatedAt)`; operator actions do not count as emitted scores.
 * - **Checkpoints.** `snapshot()` returns plain JSON; `restore()` on a fresh manager resumes
 *   with exactly the output an uninterrupted run would have had.
 *
 * Findings older than the alert's latest change count at that change's time, so transition times
 * never go backwards. A score outside [0, 1] is clamped, a missing score counts as 0, and an
 * unknown severity is taken from the score (`severityForScore`).
 *
 * @example
 * const events: AlertEvent[] = [];
 * const alerts = createAlertManager({ policy: schema.alerts, emit: (e) => events.push(e) });
 * alerts.onFinding(finding);      // events[0].transition.kind === 'open'
 * alerts.onWatermark(watermark);  // may emit 'resolve' events
 * const checkpoint = JSON.stringify(alerts.snapshot());
 */
export function createAlertManager(options: AlertManagerOptions): AlertManager {
  const policy = checkPolicy(options.policy);
  const emit = options.emit;
  let tracks = new Map<string, Track>();

  function send(track: Track, kind: TransitionKind, time: number, explain: string, operator?: OperatorAction): void {
    const alert = track.alert;
    const seq = track.nextSeq++;
    const transition: AlertTransition = {
      id: transitionId(alert.id, seq),
      alertId: alert.id,
      seq,
      kind,
      time,
      status: alert.status,
      severity: alert.severity,
      score: alert.score,
      explain,
    };
    if (operator) {
      transition.by = operator.by;
      if (operator.note !== undefined) transition.note = operator.note;
    } else if (kind !== 'resolve') {
      track.lastEmittedScore = alert.score;
    }
    emit({ alert: { ...alert }, transition });
  }

  function resolve(track: Track, time: number, explain: string, operator?: OperatorAction): void {
    const alert = track.alert;
    track.phase = 'resolved';
    alert.status = 'resolved';
    alert.resolvedAt = time;
    alert.updatedAt = time;
    send(track, 'resolve', time, explain, operator);
  }

  /** The open (or acknowledged) alert with this id. */
  function openTrack(id: string): Track | undefined {
    if (id === '') return undefined;
    for (const track of tracks.values()) if (track.phase === 'open' && track.alert.id === id) return track;
    return undefined;
  }

  function operatorAction(action: 'acknowledge' | 'resolve', at: number, by: string | undefined, note: string | undefined): OperatorAction {
    if (typeof at !== 'number' || !Number.isFinite(at)) {
      throw new GpError('GP_INPUT_INVALID', `${action}: at: expected epoch milliseconds, got ${describeJson(at)}`, { field: 'at', expected: 'epoch milliseconds', got: describeJson(at) });
    }
    for (const [field, value] of [['by', by], ['note', note]] as const) {
      if (value !== undefined && typeof value !== 'string') {
        throw new GpError('GP_INPUT_INVALID', `${action}: ${field}: expected text, got ${describeJson(value)}`, { field, expected: 'text', got: describeJson(value) });
      }
    }
    return note === undefined ? { by: by ?? 'operator' } : { by: by ?? 'operator', note };
  }

  function operatorExplain(verb: string, operator: OperatorAction): string {
    return `${verb} by ${operator.by}${operator.note ? `: ${operator.note}` : ''}`;
  }

  function absenceExplain(track: Track): string {
    return `resolved: no active ${track.alert.type} finding for ${policy.resolveAfterMs} ms after ${isoTime(track.lastActiveAt)}`;
  }

  /** Fold an active finding's evidence into the alert (or the pending draft). */
  function fold(track: Track, finding: Finding, score: number): void {
    const alert = track.alert;
    alert.findings += 1;
    alert.score = score;
    alert.peakScore = Math.max(alert.peakScore, score);
    alert.value = finding.value;
    alert.explain = finding.explain;
    alert.metric = finding.metric;
    if (finding.site !== undefined) alert.site = finding.site;
    alert.updatedAt = Math.max(alert.updatedAt, finding.time);
    track.lastActiveAt = Math.max(track.lastActiveAt, finding.time);
    if (finding.holds === true) track.holds = true;
  }

  function start(identity: string, finding: Finding, score: number, severity: Severity): Track {
    const alert: Alert = {
      id: '',
      stream: finding.stream,
      key: finding.key,
      site: finding.site,
      type: finding.type,
      metric: finding.metric,
      severity,
      status: 'open',
      openedAt: finding.time,
      updatedAt: finding.time,
      resolvedAt: undefined,
      score,
      peakScore: score,
      value: finding.value,
      findings: 1,
      explain: finding.explain,
    };
    const track: Track = { phase: 'pending', alert, lastActiveAt: finding.time, holds: finding.holds === true, lastEmittedScore: score, nextSeq: 0 };
    tracks.set(identity, track);
    return track;
  }

  function open(track: Track, time: number, explain: string): void {
    const alert = track.alert;
    track.phase = 'open';
    alert.id = alertId(alert.stream, alert.key, alert.type, alert.openedAt);
    alert.status = 'open';
    send(track, 'open', time, explain);
  }

  function onActive(identity: string, track: Track | undefined, finding: Finding, score: number, severity: Severity): void {
    if (track === undefined) {
      const started = start(identity, finding, score, severity);
      if (policy.minDurationMs <= 0) open(started, finding.time, finding.explain);
      return;
    }
    const alert = track.alert;
    const at = Math.max(finding.time, alert.updatedAt);
    switch (track.phase) {
      case 'pending': {
        fold(track, finding, score);
        if (severityRank(severity) > severityRank(alert.severity)) alert.severity = severity;
        const held = track.lastActiveAt - alert.openedAt;
        if (held >= policy.minDurationMs) {
          open(track, at, `${alert.explain} (condition held ${held} ms, minDurationMs ${policy.minDurationMs})`);
        }
        return;
      }
      case 'open': {
        fold(track, finding, score);
        if (severityRank(severity) > severityRank(alert.severity)) {
          alert.severity = severity;
          send(track, 'escalate', at, alert.explain);
        } else if (alert.score - track.lastEmittedScore >= SCORE_STEP - SCORE_TOLERANCE) {
          send(track, 'update', at, alert.explain);
        }
        return;
      }
      case 'resolved': {
        fold(track, finding, score);
        track.phase = 'open';
        alert.status = 'open';
        alert.resolvedAt = undefined;
        alert.severity = severity;
        send(track, 'reopen', at, alert.explain);
        return;
      }
    }
  }

  return {
    onFinding(finding: Finding): void {
      if (!Number.isFinite(finding.time)) {
        throw new GpError('GP_INTERNAL', `finding.time: expected epoch milliseconds, got ${String(finding.time)} (detector ${finding.detector}, type ${finding.type})`, {
          field: 'time',
          detector: finding.detector,
        });
      }
      const identity = trackIdentity(finding.stream, finding.key, finding.type);
      let track = tracks.get(identity);
      // Catch up on what the passing of event time has already decided, so that the outcome
      // is the same whether or not a watermark came in between.
      if (track?.phase === 'open' && !track.holds && finding.time - track.lastActiveAt > policy.resolveAfterMs) {
        resolve(track, track.lastActiveAt + policy.resolveAfterMs, absenceExplain(track));
      }
      if (track?.phase === 'resolved' && finding.time - (track.alert.resolvedAt ?? track.alert.updatedAt) > policy.cooldownMs) {
        tracks.delete(identity);
        track = undefined;
      } else if (track?.phase === 'pending' && finding.time - track.lastActiveAt > policy.resolveAfterMs) {
        tracks.delete(identity);
        track = undefined;
      }

      if (!finding.active) {
        if (track?.phase === 'open') resolve(track, Math.max(finding.time, track.alert.updatedAt), finding.explain);
        else if (track?.phase === 'pending') tracks.delete(identity);
        return;
      }
      const score = Number.isFinite(finding.score) ? Math.min(1, Math.max(0, finding.score)) : 0;
      const severity = SEVERITIES.includes(finding.severity) ? finding.severity : severityForScore(score);
      onActive(identity, track, finding, score, severity);
    },

    onWatermark(watermark: number): void {
      if (Number.isNaN(watermark)) return;
      const horizon = watermark - policy.resolveAfterMs;
      const due: Track[] = [];
      for (const track of tracks.values()) {
        if (track.phase === 'open' && !track.holds && track.lastActiveAt < horizon) due.push(track);
      }
      due.sort(compareForResolve);
      for (const track of due) resolve(track, track.lastActiveAt + policy.resolveAfterMs, absenceExplain(track));
      for (const [identity, track] of tracks) {
        const forgotten =
          (track.phase === 'resolved' && watermark > (track.alert.resolvedAt ?? track.alert.updatedAt) + policy.cooldownMs) ||
          (track.phase === 'pending' && track.lastActiveAt < horizon);
        if (forgotten) tracks.delete(identity);
      }
    },

    openCount(): number {
      let count = 0;
      for (const track of tracks.values()) if (track.phase === 'open') count += 1;
      return count;
    },

    openAlerts(): Alert[] {
      const open: Alert[] = [];
      for (const track of tracks.values()) if (track.phase === 'open') open.push({ ...track.alert });
      return open.sort((a, b) => a.openedAt - b.openedAt || compareText(a.id, b.id));
    },

    findAlert(id: string): Alert | undefined {
      if (id === '') return undefined; // pending drafts have no id yet
      for (const track of tracks.values()) if (track.phase !== 'pending' && track.alert.id === id) return { ...track.alert };
      return undefined;
    },

    acknowledge(id: string, at: number, by?: string, note?: string): Alert | undefined {
      const operator = operatorAction('acknowledge', at, by, note);
      const track = openTrack(id);
      if (track === undefined) return undefined;
      const alert = track.alert;
      if (alert.status === 'acknowledged') return { ...alert };
      // Transition times never go backwards, whatever clock the operator's time comes from.
      const time = Math.max(at, alert.updatedAt);
      alert.status = 'acknowledged';
      alert.updatedAt = time;
      send(track, 'acknowledge', time, operatorExplain('acknowledged', operator), operator);
      return { ...alert };
    },

    resolve(id: string, at: number, by?: string, note?: string): Alert | undefined {
      const operator = operatorAction('resolve', at, by, note);
      const track = openTrack(id);
      if (track === undefined) return undefined;
      resolve(track, Math.max(at, track.alert.updatedAt), operatorExplain('resolved', operator), operator);
      return { ...track.alert };
    },

    snapshot(): unknown {
      const saved: TrackJson[] = [];
      for (const track of tracks.values()) saved.push(trackToJson(track));
      const state: AlertManagerState = { version: SNAPSHOT_VERSION, tracks: saved };
      return state;
    },

    restore(state: unknown): void {
      // Build the whole state first: a bad checkpoint leaves the manager as it was.
      tracks = readState(state);
    },
  };
}

function checkPolicy(policy: AlertPolicy): AlertPolicy {
  for (const field of ['resolveAfterMs', 'minDurationMs', 'cooldownMs'] as const) {
    const value: unknown = (policy as unknown as Record<string, unknown> | undefined)?.[field];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new GpError('GP_CONFIG_INVALID', `alerts.${field}: expected a duration in milliseconds ≥ 0, got ${describeJson(value)}`, {
        field: `alerts.${field}`,
        expected: 'duration in milliseconds ≥ 0',
        got: describeJson(value),
      });
    }
  }
  return { resolveAfterMs: policy.resolveAfterMs, minDurationMs: policy.minDurationMs, cooldownMs: policy.cooldownMs };
}

function trackIdentity(stream: string, key: string, type: string): string {
  return JSON.stringify([stream, key, type]);
}

function severityRank(severity: Severity): number {
  return SEVERITIES.indexOf(severity);
}

/** Code-unit order, not locale order: the same on every machine. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareForResolve(a: Track, b: Track): number {
  return (
    a.lastActiveAt - b.lastActiveAt ||
    compareText(a.alert.stream, b.alert.stream) ||
    compareText(a.alert.key, b.alert.key) ||
    compareText(a.alert.type, b.alert.type)
  );
}

const MAX_DATE_MS = 8.64e15;

function isoTime(time: number): string {
  return Number.isFinite(time) && Math.abs(time) <= MAX_DATE_MS ? new Date(time).toISOString() : String(time);
}

// ---- checkpoint format -------------------------------------------------------------------

/** JSON has no NaN or ±Infinity; a reading's value may be either, so those travel as strings. */
type JsonNumber = number | 'NaN' | 'Infinity' | '-Infinity';

interface AlertJson {
  id: string;
  stream: string;
  key: string;
  site: string | null;
  type: string;
  metric: string | null;
  severity: Severity;
  status: AlertStatus;
  openedAt: number;
  updatedAt: number;
  resolvedAt: number | null;
  score: number;
  peakScore: number;
  value: JsonNumber;
  findings: number;
  explain: string;
}

interface TrackJson {
  phase: Phase;
  lastActiveAt: number;
  holds?: boolean;
  lastEmittedScore: number;
  nextSeq: number;
  alert: AlertJson;
}

interface AlertManagerState {
  version: number;
  tracks: TrackJson[];
}

function encodeNumber(value: number): JsonNumber {
  if (Number.isFinite(value)) return value;
  return Number.isNaN(value) ? 'NaN' : value > 0 ? 'Infinity' : '-Infinity';
}

function trackToJson(track: Track): TrackJson {
  const a = track.alert;
  return {
    phase: track.phase,
    lastActiveAt: track.lastActiveAt,
    ...(track.holds ? { holds: true } : {}),
    lastEmittedScore: track.lastEmittedScore,
    nextSeq: track.nextSeq,
    alert: {
      id: a.id,
      stream: a.stream,
      key: a.key,
      site: a.site ?? null,
      type: a.type,
      metric: a.metric ?? null,
      severity: a.severity,
      status: a.status,
      openedAt: a.openedAt,
      updatedAt: a.updatedAt,
      resolvedAt: a.resolvedAt ?? null,
      score: a.score,
      peakScore: a.peakScore,
      value: encodeNumber(a.value),
      findings: a.findings,
      explain: a.explain,
    },
  };
}

function invalidState(path: string, expected: string, got: unknown): GpError {
  return new GpError('GP_INPUT_INVALID', `alert manager checkpoint ${path}: expected ${expected}, got ${describeJson(got)}`, {
    field: path,
    expected,
    got: describeJson(got),
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function readRecord(value: unknown, path: string): Record<string, unknown> {
  if (!isRecord(value)) throw invalidState(path, 'an object', value);
  return value;
}

function readNumber(record: Record<string, unknown>, field: string, path: string): number {
  const value = record[field];
  if (typeof value !== 'number' || !Number.isFinite(value)) throw invalidState(`${path}/${field}`, 'a finite number', value);
  return value;
}

function readString(record: Record<string, unknown>, field: string, path: string): string {
  const value = record[field];
  if (typeof value !== 'string') throw invalidState(`${path}/${field}`, 'a string', value);
  return value;
}

function readOptionalString(record: Record<string, unknown>, field: string, path: string): string | undefined {
  const value = record[field];
  if (value === null || value === undefined) return undefined;
  if (typeof value !== 'string') throw invalidState(`${path}/${field}`, 'a string or null', value);
  return value;
}

function readChoice<T extends string>(record: Record<string, unknown>, field: string, path: string, choices: readonly T[]): T {
  const value = record[field];
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
    throw invalidState(`${path}/${field}`, `one of ${choices.join(', ')}`, value);
  }
  return value as T;
}

function readJsonNumber(record: Record<string, unknown>, field: string, path: string): number {
  const value = record[field];
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (value === 'NaN') return Number.NaN;
  if (value === 'Infinity') return Number.POSITIVE_INFINITY;
  if (value === '-Infinity') return Number.NEGATIVE_INFINITY;
  throw invalidState(`${path}/${field}`, 'a finite number, "NaN", "Infinity" or "-Infinity"', value);
}

const PHASES: readonly Phase[] = ['pending', 'open', 'resolved'];
const STATUSES: readonly AlertStatus[] = ['open', 'acknowledged', 'resolved'];

function readState(state: unknown): Map<string, Track> {
  const root = readRecord(state, '/');
  if (root.version !== SNAPSHOT_VERSION) throw invalidState('/version', String(SNAPSHOT_VERSION), root.version);
  if (!Array.isArray(root.tracks)) throw invalidState('/tracks', 'an array', root.tracks);
  const tracks = new Map<string, Track>();
  (root.tracks as unknown[]).forEach((entry, index) => {
    const path = `/tracks/${index}`;
    const saved = readRecord(entry, path);
    const alertPath = `${path}/alert`;
    const a = readRecord(saved.alert, alertPath);
    const resolvedAt = a.resolvedAt === null || a.resolvedAt === undefined ? undefined : readNumber(a, 'resolvedAt', alertPath);
    const alert: Alert = {
      id: readString(a, 'id', alertPath),
      stream: readString(a, 'stream', alertPath),
      key: readString(a, 'key', alertPath),
      site: readOptionalString(a, 'site', alertPath),
      type: readString(a, 'type', alertPath),
      metric: readOptionalString(a, 'metric', alertPath),
      severity: readChoice(a, 'severity', alertPath, SEVERITIES),
      status: readChoice(a, 'status', alertPath, STATUSES),
      openedAt: readNumber(a, 'openedAt', alertPath),
      updatedAt: readNumber(a, 'updatedAt', alertPath),
      resolvedAt,
      score: readNumber(a, 'score', alertPath),
      peakScore: readNumber(a, 'peakScore', alertPath),
      value: readJsonNumber(a, 'value', alertPath),
      findings: readNumber(a, 'findings', alertPath),
      explain: readString(a, 'explain', alertPath),
    };
    const track: Track = {
      phase: readChoice(saved, 'phase', path, PHASES),
      alert,
      lastActiveAt: readNumber(saved, 'lastActiveAt', path),
      holds: saved.holds === true,
      lastEmittedScore: readNumber(saved, 'lastEmittedScore', path),
      nextSeq: readNumber(saved, 'nextSeq', path),
    };
    const identity = trackIdentity(alert.stream, alert.key, alert.type);
    if (tracks.has(identity)) throw invalidState(`${path}/alert`, 'one entry per (stream, key, type)', `${alert.stream}/${alert.key}/${alert.type} twice`);
    tracks.set(identity, track);
  });
  return tracks;
}
