import { GpError, SEVERITIES, severityForScore } from '../model/index.js';
import type {
  Alert,
  AlertEmitter,
  AlertPolicy,
  AlertStatus,
  AlertTransition,
  EscalationStep,
  Finding,
  FindingHandler,
  MaintenanceWindow,
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
  /**
   * An operator assigns an open or acknowledged alert to `assignee` at `at`: `alert.assignee` is
   * set and an `assign` transition carrying `assignee`, `by` and `note` is emitted. Assigning to
   * the current assignee again changes nothing and emits nothing. The status does not change.
   * Returns a copy of the alert, or undefined when this manager has no open or acknowledged
   * alert with that id; throws GP_INPUT_INVALID when `assignee` is not a non-empty text.
   */
  assign(alertId: string, at: number, assignee: string, by?: string, note?: string): Alert | undefined;
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
  /** The device's reporting interval as the newest finding that said one gave it (`Finding.intervalMs`), or 0. */
  intervalMs: number;
  /** The condition holds until an inactive finding (Finding.holds): never resolved by absence. */
  holds: boolean;
  /** Score carried by the last open/update/escalate/reopen event; an update needs a rise over it. */
  lastEmittedScore: number;
  nextSeq: number;
  /** Time of the latest open, reopen (or flapping) transition: the escalation clock starts here. */
  activeSince: number;
  /** Times of the alert's automatic resolves within the flapping window, oldest first (flapping policy only). */
  flips: number[];
  /** While flapping: when the condition cleared (the alert is held open meanwhile); undefined while it holds. */
  clearedAt: number | undefined;
  /** Set while the alert's latest transition was muted: the end of the maintenance window that muted it. */
  mutedUntil: number | undefined;
}

/** Who performed an operator action, carried into its transition. */
interface OperatorAction {
  by: string;
  note?: string;
  assignee?: string;
}

/** Something a track has coming at an event time (absence, end of maintenance, escalation, end of flapping). */
interface DueAction {
  time: number;
  /** Due only once event time is past `time` (absence); otherwise once it reaches it. */
  strict: boolean;
  run: () => void;
}

/** An update event needs the score to rise at least this much over the last emitted one. */
const SCORE_STEP = 0.1;
// 0.6 - 0.5 is 0.09999999999999998 in binary floating point; a rise of "0.1" must still count.
const SCORE_TOLERANCE = 1e-9;
const SNAPSHOT_VERSION = 1;
/**
 * Absence and cooldown span at least this many of the device's reporting intervals: a device that
 * reports every 30 minutes cannot show its condition again sooner than its next reading, so
 * `resolveAfter` (5 min) alone would resolve every alert of it between two readings and open a new
 * one at the next.
 */
export const ABSENCE_INTERVALS = 2;

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
 *   older than `wm − resolveAfterMs`, with `resolvedAt = lastActiveFinding + resolveAfterMs` (here
 *   and in the cooldown below, at least ABSENCE_INTERVALS × the device's reporting interval when
 *   its findings carry `intervalMs`: a slow device cannot show its condition sooner) —
 *   except alerts whose findings say the condition `holds` until cleared (a silent device is
 *   silent until it reports again): those resolve only on an inactive finding.
 *   An active finding that arrives after such a gap resolves the alert at that same time first,
 *   so the result does not depend on when watermarks arrive. (This is clear-on-absence.)
 * - **Cooldown against flapping.** An active finding no later than `resolvedAt + cooldownMs`
 *   reopens the same alert (same id, `reopen` transition, severity from the new finding; no
 *   `minDurationMs` wait, the condition has qualified already). Later, a new alert with a new id.
 * - **Flapping** (`policy.flapping`). When an alert comes back (reopens) after resolving
 *   `flips` times within `windowMs`, a `flapping` transition is sent instead of that reopen and
 *   the alert is marked `flapping`: it is held open, its clears (inactive findings, absence) and
 *   returns are not notified, and it resolves (one `resolve`) once its condition has stayed clear
 *   for `quietMs`, at the clear time + `quietMs`.
 * - **Escalation after a duration** (`policy.escalation`). An alert still `open` (not
 *   acknowledged, not held clear while flapping) `afterMs` after its open or reopen is raised to
 *   the step's severity with an `escalate` transition at that time, step by step.
 * - **Maintenance windows** (`policy.maintenance`). A transition whose time falls in a window
 *   covering the alert's device (`keys`) or site (`sites`), or the whole stream when the window
 *   lists neither, carries `muted: true` (so does its alert): it is stored like any other and the
 *   delivery router sends it nowhere. An alert still open when the window ends gets an `update`
 *   transition at the window's end, unmuted, so that it is not forgotten.
 * - **Corrections.** A finding marked `correction` (it re-evaluates a window a LATE reading
 *   amended) answers with a `correct` transition: inactive, it closes the open alert of its
 *   (stream, key, type) (status resolved, `corrected`); active, it opens — or reopens within the
 *   cooldown — an alert at once with a `correct` transition instead of `open`/`reopen`.
 * - **Ids.** Alert id from (stream, key, type, openedAt) — see `alertId`; transition id
 *   `${alertId}:${seq}`, seq 0, 1, 2, ... over the alert's whole life, reopens included.
 * - **Events are snapshots.** Each `AlertEvent` holds a copy of the alert as it stood and the
 *   transition with the status, severity, score and explain of that moment. Time-driven
 *   transitions due at one watermark are emitted in order of their time, then stream, key, type.
 * - **Bounded memory.** A resolved alert is forgotten once the watermark passes
 *   `resolvedAt + cooldownMs`; a pending condition once its findings are absent past `resolveAfterMs`.
 * - **Operator actions.** `acknowledge(id, at, by, note)` marks an open alert `acknowledged`
 *   (still active: later updates, escalations and resolves keep that status until it resolves);
 *   `resolve(id, at, by, note)` closes it as resolved by an operator, after which the cooldown
 *   rule above decides between a reopen and a new alert; `assign(id, at, assignee, by, note)`
 *   records who owns it. Each emits a transition with `by` and `note`, at
 *   `max(at, alert.updatedAt)`; operator actions do not count as emitted scores.
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
  const flapping = policy.flapping;
  const escalation = policy.escalation ?? [];
  const maintenance = policy.maintenance ?? [];
  const emit = options.emit;
  let tracks = new Map<string, Track>();

  function maintenanceAt(alert: Alert, time: number): MaintenanceWindow | undefined {
    for (const window of maintenance) {
      if (time < window.from || time >= window.to) continue;
      const listsKeys = window.keys !== undefined && window.keys.length > 0;
      const listsSites = window.sites !== undefined && window.sites.length > 0;
      if (!listsKeys && !listsSites) return window;
      if (listsKeys && window.keys.includes(alert.key)) return window;
      if (listsSites && alert.site !== undefined && window.sites.includes(alert.site)) return window;
    }
    return undefined;
  }

  function send(track: Track, kind: TransitionKind, time: number, explain: string, operator?: OperatorAction): void {
    const alert = track.alert;
    const seq = track.nextSeq++;
    const window = maintenanceAt(alert, time);
    if (window === undefined) {
      delete alert.muted;
      track.mutedUntil = undefined;
    } else {
      alert.muted = true;
      track.mutedUntil = alert.status === 'resolved' ? undefined : window.to;
    }
    const transition: AlertTransition = {
      id: transitionId(alert.id, seq),
      alertId: alert.id,
      seq,
      kind,
      time,
      status: alert.status,
      severity: alert.severity,
      score: alert.score,
      explain: window === undefined ? explain : `${explain} [muted: maintenance until ${isoTime(window.to)}${window.reason ? `: ${window.reason}` : ''}]`,
    };
    if (operator) {
      transition.by = operator.by;
      if (operator.note !== undefined) transition.note = operator.note;
      if (operator.assignee !== undefined) transition.assignee = operator.assignee;
    } else if (kind !== 'resolve') {
      track.lastEmittedScore = alert.score;
    }
    if (window !== undefined) transition.muted = true;
    emit({ alert: { ...alert }, transition });
  }

  function resolve(track: Track, time: number, explain: string, operator?: OperatorAction, kind: TransitionKind = 'resolve'): void {
    const alert = track.alert;
    track.phase = 'resolved';
    track.clearedAt = undefined;
    alert.status = 'resolved';
    alert.resolvedAt = time;
    alert.updatedAt = time;
    delete alert.flapping;
    if (flapping !== undefined && operator === undefined && kind === 'resolve') {
      track.flips.push(time);
      pruneFlips(track, time);
    }
    send(track, kind, time, explain, operator);
  }

  /** An automatic clear (inactive finding, absence): resolves, except a flapping alert, which is held open. */
  function clear(track: Track, time: number, explain: string): void {
    if (track.alert.flapping === true) {
      track.clearedAt ??= time;
      return;
    }
    resolve(track, time, explain);
  }

  function pruneFlips(track: Track, now: number): void {
    if (flapping === undefined) return;
    const horizon = now - flapping.windowMs;
    while (track.flips.length > 0 && track.flips[0]! < horizon) track.flips.shift();
  }

  /** The next escalation step that would raise this alert's severity, if any. */
  function nextEscalation(track: Track): EscalationStep | undefined {
    const rank = severityRank(track.alert.severity);
    return escalation.find((step) => severityRank(step.to) > rank);
  }

  /** What this track has coming next in event time, if anything. */
  function nextDue(track: Track): DueAction | undefined {
    if (track.phase !== 'open') return undefined;
    const alert = track.alert;
    let next: DueAction | undefined;
    const consider = (action: DueAction): void => {
      if (next === undefined || action.time < next.time) next = action;
    };
    if (alert.flapping === true) {
      if (track.clearedAt !== undefined) {
        const clearedAt = track.clearedAt;
        const quietMs = flapping?.quietMs ?? 0;
        consider({
          time: clearedAt + quietMs,
          strict: false,
          run: () => {
            resolve(track, Math.max(clearedAt + quietMs, alert.updatedAt), `stopped flapping: ${alert.type} clear for ${quietMs} ms since ${isoTime(clearedAt)}`);
            track.flips = [];
          },
        });
      } else if (!track.holds) {
        const at = track.lastActiveAt + resolveAfterOf(track);
        consider({ time: at, strict: true, run: () => clear(track, at, absenceExplain(track)) });
      }
    } else if (!track.holds) {
      const at = track.lastActiveAt + resolveAfterOf(track);
      consider({ time: at, strict: true, run: () => resolve(track, at, absenceExplain(track)) });
    }
    if (track.mutedUntil !== undefined) {
      const until = track.mutedUntil;
      consider({
        time: until,
        strict: false,
        run: () => {
          const time = Math.max(until, alert.updatedAt);
          alert.updatedAt = time;
          send(track, 'update', time, `maintenance ended, ${alert.type} still ${alert.status}: ${alert.explain}`);
        },
      });
    }
    const step = alert.status === 'open' && track.clearedAt === undefined ? nextEscalation(track) : undefined;
    if (step !== undefined) {
      const since = track.activeSince;
      consider({
        time: since + step.afterMs,
        strict: false,
        run: () => {
          const time = Math.max(since + step.afterMs, alert.updatedAt);
          alert.severity = step.to;
          alert.updatedAt = time;
          send(track, 'escalate', time, `escalated to ${step.to}: ${alert.type} open and unacknowledged for ${step.afterMs} ms since ${isoTime(since)}; ${alert.explain}`);
        },
      });
    }
    return next;
  }

  function isDue(action: DueAction, now: number): boolean {
    return action.strict ? action.time < now : action.time <= now;
  }

  /** Run what event time `now` has already decided for one track, in time order. */
  function catchUp(track: Track, now: number): void {
    for (let guard = 0; guard < 1000; guard++) {
      const action = nextDue(track);
      if (action === undefined || !isDue(action, now)) return;
      action.run();
    }
  }

  /** The open (or acknowledged) alert with this id. */
  function openTrack(id: string): Track | undefined {
    if (id === '') return undefined;
    for (const track of tracks.values()) if (track.phase === 'open' && track.alert.id === id) return track;
    return undefined;
  }

  function operatorAction(action: 'acknowledge' | 'resolve' | 'assign', at: number, by: string | undefined, note: string | undefined): OperatorAction {
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

  /** `resolveAfter`, or more for a device whose readings are further apart (see ABSENCE_INTERVALS). */
  function resolveAfterOf(track: Track): number {
    return Math.max(policy.resolveAfterMs, ABSENCE_INTERVALS * track.intervalMs);
  }

  function cooldownOf(track: Track): number {
    return Math.max(policy.cooldownMs, ABSENCE_INTERVALS * track.intervalMs);
  }

  function absenceExplain(track: Track): string {
    const span = resolveAfterOf(track);
    const why = span > policy.resolveAfterMs ? ` (${ABSENCE_INTERVALS} × the device's reporting interval of ${track.intervalMs} ms, more than resolveAfter ${policy.resolveAfterMs} ms)` : '';
    return `resolved: no active ${track.alert.type} finding for ${span} ms${why} after ${isoTime(track.lastActiveAt)}`;
  }

  /** A finding that says its device's reporting interval updates the track's. */
  function noteInterval(track: Track, finding: Finding): void {
    const interval = finding.intervalMs;
    if (typeof interval === 'number' && Number.isFinite(interval) && interval > 0) track.intervalMs = interval;
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
    noteInterval(track, finding);
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
    const track: Track = {
      phase: 'pending',
      alert,
      lastActiveAt: finding.time,
      intervalMs: 0,
      holds: finding.holds === true,
      lastEmittedScore: score,
      nextSeq: 0,
      activeSince: finding.time,
      flips: [],
      clearedAt: undefined,
      mutedUntil: undefined,
    };
    noteInterval(track, finding);
    tracks.set(identity, track);
    return track;
  }

  function open(track: Track, time: number, explain: string, kind: TransitionKind = 'open'): void {
    const alert = track.alert;
    track.phase = 'open';
    track.activeSince = time;
    alert.id = alertId(alert.stream, alert.key, alert.type, alert.openedAt);
    alert.status = 'open';
    send(track, kind, time, explain);
  }

  /** A resolved alert whose condition is back within the cooldown: reopen (or flapping, or correct). */
  function reopen(track: Track, finding: Finding, score: number, severity: Severity, at: number, correction: boolean): void {
    const alert = track.alert;
    fold(track, finding, score);
    track.phase = 'open';
    track.activeSince = at;
    alert.status = 'open';
    alert.resolvedAt = undefined;
    alert.severity = severity;
    if (correction) {
      alert.corrected = true;
      send(track, 'correct', at, `corrected: a late reading amended the evidence, ${alert.type} holds again: ${alert.explain}`);
      return;
    }
    if (flapping !== undefined) {
      pruneFlips(track, at);
      if (track.flips.length >= flapping.flips) {
        alert.flapping = true;
        send(
          track,
          'flapping',
          at,
          `flapping: ${alert.type} resolved and came back ${track.flips.length} times within ${flapping.windowMs} ms; held open until clear for ${flapping.quietMs} ms: ${alert.explain}`,
        );
        return;
      }
    }
    send(track, 'reopen', at, alert.explain);
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
        // A flapping alert whose condition is back: it was held open, so nothing is notified.
        track.clearedAt = undefined;
        if (severityRank(severity) > severityRank(alert.severity)) {
          alert.severity = severity;
          send(track, 'escalate', at, alert.explain);
        } else if (alert.score - track.lastEmittedScore >= SCORE_STEP - SCORE_TOLERANCE) {
          send(track, 'update', at, alert.explain);
        }
        return;
      }
      case 'resolved': {
        reopen(track, finding, score, severity, at, false);
        return;
      }
    }
  }

  /** A finding that re-evaluates a window amended by a LATE reading. */
  function onCorrection(identity: string, track: Track | undefined, finding: Finding, score: number, severity: Severity): void {
    if (!finding.active) {
      if (track?.phase === 'open') {
        track.alert.corrected = true;
        resolve(
          track,
          Math.max(finding.time, track.alert.updatedAt),
          `corrected: a late reading amended the evidence, ${track.alert.type} no longer holds: ${finding.explain}`,
          undefined,
          'correct',
        );
      } else if (track?.phase === 'pending') {
        tracks.delete(identity);
      }
      return;
    }
    const explain = `corrected: a late reading amended the evidence, ${finding.type} now holds: ${finding.explain}`;
    if (track === undefined) {
      const started = start(identity, finding, score, severity);
      started.alert.corrected = true;
      open(started, finding.time, explain, 'correct');
      return;
    }
    const at = Math.max(finding.time, track.alert.updatedAt);
    if (track.phase === 'pending') {
      fold(track, finding, score);
      if (severityRank(severity) > severityRank(track.alert.severity)) track.alert.severity = severity;
      track.alert.corrected = true;
      open(track, at, explain, 'correct');
    } else if (track.phase === 'resolved') {
      reopen(track, finding, score, severity, at, true);
    } else {
      onActive(identity, track, finding, score, severity);
    }
  }

  return {
    onFinding(finding: Finding): void {
      const identity = trackIdentity(finding.stream, finding.key, finding.type);
      let track = tracks.get(identity);
      // Catch up on what the passing of event time has already decided, so that the outcome
      // is the same whether or not a watermark came in between.
      if (track !== undefined) catchUp(track, finding.time);
      if (track?.phase === 'resolved' && finding.time - (track.alert.resolvedAt ?? track.alert.updatedAt) > cooldownOf(track)) {
        tracks.delete(identity);
        track = undefined;
      } else if (track?.phase === 'pending' && finding.time - track.lastActiveAt > resolveAfterOf(track)) {
        tracks.delete(identity);
        track = undefined;
      }

      const score = Number.isFinite(finding.score) ? Math.min(1, Math.max(0, finding.score)) : 0;
      const severity = SEVERITIES.includes(finding.severity) ? finding.severity : severityForScore(score);
      if (finding.correction === true) {
        onCorrection(identity, track, finding, score, severity);
        return;
      }
      if (!finding.active) {
        if (track?.phase === 'open') clear(track, Math.max(finding.time, track.alert.updatedAt), finding.explain);
        else if (track?.phase === 'pending') tracks.delete(identity);
        return;
      }
      onActive(identity, track, finding, score, severity);
    },

    onWatermark(watermark: number): void {
      if (Number.isNaN(watermark)) return;
      // Rounds: each track's earliest due action, all tracks in time order, until nothing is due.
      for (let round = 0; round < 1000; round++) {
        const due: Array<{ track: Track; action: DueAction }> = [];
        for (const track of tracks.values()) {
          const action = nextDue(track);
          if (action !== undefined && isDue(action, watermark)) due.push({ track, action });
        }
        if (due.length === 0) break;
        due.sort((a, b) => a.action.time - b.action.time || compareTracks(a.track, b.track));
        for (const { action } of due) action.run();
      }
      for (const [identity, track] of tracks) {
        const forgotten =
          (track.phase === 'resolved' && watermark > (track.alert.resolvedAt ?? track.alert.updatedAt) + cooldownOf(track)) ||
          (track.phase === 'pending' && track.lastActiveAt < watermark - resolveAfterOf(track));
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

    assign(id: string, at: number, assignee: string, by?: string, note?: string): Alert | undefined {
      const operator = operatorAction('assign', at, by, note);
      if (typeof assignee !== 'string' || assignee.trim() === '') {
        throw new GpError('GP_INPUT_INVALID', `assign: assignee: expected a non-empty text, got ${describeJson(assignee)}`, {
          field: 'assignee',
          expected: 'a non-empty text',
          got: describeJson(assignee),
        });
      }
      const track = openTrack(id);
      if (track === undefined) return undefined;
      const alert = track.alert;
      if (alert.assignee === assignee) return { ...alert };
      const time = Math.max(at, alert.updatedAt);
      alert.assignee = assignee;
      alert.updatedAt = time;
      send(track, 'assign', time, `${operatorExplain(`assigned to ${assignee}`, operator)}`, { ...operator, assignee });
      return { ...alert };
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

function policyError(field: string, expected: string, got: unknown): GpError {
  return new GpError('GP_CONFIG_INVALID', `alerts.${field}: expected ${expected}, got ${describeJson(got)}`, {
    field: `alerts.${field}`,
    expected,
    got: describeJson(got),
  });
}

function isDuration(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

function checkPolicy(policy: AlertPolicy): AlertPolicy {
  for (const field of ['resolveAfterMs', 'minDurationMs', 'cooldownMs'] as const) {
    const value: unknown = (policy as unknown as Record<string, unknown> | undefined)?.[field];
    if (!isDuration(value)) {
      throw new GpError('GP_CONFIG_INVALID', `alerts.${field}: expected a duration in milliseconds ≥ 0, got ${describeJson(value)}`, {
        field: `alerts.${field}`,
        expected: 'duration in milliseconds ≥ 0',
        got: describeJson(value),
      });
    }
  }
  const checked: { -readonly [K in keyof AlertPolicy]: AlertPolicy[K] } = {
    resolveAfterMs: policy.resolveAfterMs,
    minDurationMs: policy.minDurationMs,
    cooldownMs: policy.cooldownMs,
  };
  if (policy.flapping !== undefined) {
    const { flips, windowMs, quietMs } = policy.flapping;
    if (typeof flips !== 'number' || !Number.isInteger(flips) || flips < 1) throw policyError('flapping.flips', 'a whole number ≥ 1', flips);
    if (!isDuration(windowMs) || windowMs === 0) throw policyError('flapping.windowMs', 'a duration in milliseconds > 0', windowMs);
    if (!isDuration(quietMs)) throw policyError('flapping.quietMs', 'a duration in milliseconds ≥ 0', quietMs);
    checked.flapping = { flips, windowMs, quietMs };
  }
  if (policy.escalation !== undefined) {
    const steps = policy.escalation.map((step, index) => {
      if (!isDuration(step.afterMs)) throw policyError(`escalation[${index}].afterMs`, 'a duration in milliseconds ≥ 0', step.afterMs);
      if (!SEVERITIES.includes(step.to)) throw policyError(`escalation[${index}].to`, 'one of info, warning, critical', step.to);
      return { afterMs: step.afterMs, to: step.to };
    });
    checked.escalation = steps.sort((a, b) => a.afterMs - b.afterMs);
  }
  if (policy.maintenance !== undefined) {
    checked.maintenance = policy.maintenance.map((window, index) => {
      if (typeof window.from !== 'number' || !Number.isFinite(window.from)) throw policyError(`maintenance[${index}].from`, 'epoch milliseconds', window.from);
      if (typeof window.to !== 'number' || !Number.isFinite(window.to) || window.to <= window.from) {
        throw policyError(`maintenance[${index}].to`, `epoch milliseconds after from (${window.from})`, window.to);
      }
      return { ...window };
    });
  }
  return checked;
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

function compareTracks(a: Track, b: Track): number {
  return compareText(a.alert.stream, b.alert.stream) || compareText(a.alert.key, b.alert.key) || compareText(a.alert.type, b.alert.type);
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
  muted?: true;
  flapping?: true;
  assignee?: string;
  corrected?: true;
}

/** The lifecycle fields are written only when set, so a checkpoint without them reads as before. */
interface TrackJson {
  phase: Phase;
  lastActiveAt: number;
  intervalMs?: number;
  holds?: boolean;
  lastEmittedScore: number;
  nextSeq: number;
  activeSince?: number;
  flips?: number[];
  clearedAt?: number;
  mutedUntil?: number;
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
    ...(track.intervalMs > 0 ? { intervalMs: track.intervalMs } : {}),
    ...(track.holds ? { holds: true } : {}),
    lastEmittedScore: track.lastEmittedScore,
    nextSeq: track.nextSeq,
    ...(track.activeSince !== a.openedAt ? { activeSince: track.activeSince } : {}),
    ...(track.flips.length > 0 ? { flips: [...track.flips] } : {}),
    ...(track.clearedAt !== undefined ? { clearedAt: track.clearedAt } : {}),
    ...(track.mutedUntil !== undefined ? { mutedUntil: track.mutedUntil } : {}),
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
      ...(a.muted === true ? { muted: true as const } : {}),
      ...(a.flapping === true ? { flapping: true as const } : {}),
      ...(a.assignee !== undefined ? { assignee: a.assignee } : {}),
      ...(a.corrected === true ? { corrected: true as const } : {}),
    },
  };
}

function readOptionalNumber(record: Record<string, unknown>, field: string, path: string): number | undefined {
  return record[field] === undefined ? undefined : readNumber(record, field, path);
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
    if (a.muted === true) alert.muted = true;
    if (a.flapping === true) alert.flapping = true;
    if (a.corrected === true) alert.corrected = true;
    const assignee = readOptionalString(a, 'assignee', alertPath);
    if (assignee !== undefined) alert.assignee = assignee;
    const flips = saved.flips === undefined ? [] : saved.flips;
    if (!Array.isArray(flips) || !flips.every((time) => typeof time === 'number' && Number.isFinite(time))) {
      throw invalidState(`${path}/flips`, 'an array of finite numbers', flips);
    }
    const track: Track = {
      phase: readChoice(saved, 'phase', path, PHASES),
      alert,
      lastActiveAt: readNumber(saved, 'lastActiveAt', path),
      intervalMs: readOptionalNumber(saved, 'intervalMs', path) ?? 0,
      holds: saved.holds === true,
      lastEmittedScore: readNumber(saved, 'lastEmittedScore', path),
      nextSeq: readNumber(saved, 'nextSeq', path),
      activeSince: readOptionalNumber(saved, 'activeSince', path) ?? alert.openedAt,
      flips: [...(flips as number[])],
      clearedAt: readOptionalNumber(saved, 'clearedAt', path),
      mutedUntil: readOptionalNumber(saved, 'mutedUntil', path),
    };
    const identity = trackIdentity(alert.stream, alert.key, alert.type);
    if (tracks.has(identity)) throw invalidState(`${path}/alert`, 'one entry per (stream, key, type)', `${alert.stream}/${alert.key}/${alert.type} twice`);
    tracks.set(identity, track);
  });
  return tracks;
}
