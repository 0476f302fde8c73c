import { GpError, SEVERITIES } from '../../model/index.js';
import type { Alert, AlertEvent, AlertTransition, Severity, TransitionKind } from '../../model/index.js';
import { groupIncidents, type IncidentPolicy, type RootCauseHint, type SiteIncident } from '../incidents.js';

/** The three notifications of an incident's life. */
export type IncidentNoticeKind = 'incident.opened' | 'incident.updated' | 'incident.resolved';

/**
 * The incident as one notification states it: the `SiteIncident` of `groupIncidents` (as delivery
 * knows it) with what a receiver wants at a glance. JSON-safe: it is kept in dead letters.
 */
export interface IncidentSummary extends SiteIncident {
  /** The highest severity among the linked alerts. */
  severity: Severity;
  streams: string[];
  types: string[];
  deviceCount: number;
  alertCount: number;
  /** Alert ids linked since the previous notification of this incident (all of them in `incident.opened`). */
  added: string[];
}

/**
 * One incident notification. `id` is the idempotency key receivers deduplicate on (the webhook-id):
 * `<incident id>:opened`, `<incident id>:updated:<linked alert count>`, `<incident id>:resolved` —
 * the same on every retry, redelivery and replay.
 */
export interface IncidentNotice {
  id: string;
  kind: IncidentNoticeKind;
  /** Event time (ms) the notice is about: the start when opened, the newest linked alert's start when updated, the end when resolved. */
  time: number;
  incident: IncidentSummary;
}

/**
 * What the grouper hands on: a device transition to deliver as it is, or an incident notification
 * with the events that route it (one per distinct stream, type, site and severity among the linked
 * alerts, with the kind `open`, `update` or `resolve`), so routes written for device alerts apply.
 */
export type GroupedOutput =
  | { readonly kind: 'alert'; readonly event: AlertEvent }
  | { readonly kind: 'incident'; readonly notice: IncidentNotice; readonly routeEvents: readonly AlertEvent[] };

export interface IncidentGrouperOptions {
  /** The grouping policy of `GET /api/incidents` (`alerts.incidents`): which types, how many devices, which window. */
  readonly policy: IncidentPolicy;
  /** Wall time an alert of the incident types is held before it is sent on its own or as part of an incident. */
  readonly groupWaitMs: number;
  /** Shortest wall time between two notifications of one incident (`incident.updated`). */
  readonly groupIntervalMs: number;
  /** How long (wall time) finished alerts and incidents are remembered, so a replayed transition pages nothing. Default max(10 min, groupInterval). */
  readonly retainMs?: number;
  /** Devices per site, when known: enables `minShare` and the pipeline-stall hint, as in `groupIncidents`. */
  readonly siteSizes?: () => ReadonlyMap<string, number>;
}

/** Counts for metrics and tests. */
export interface GroupingStats {
  /** Alerts held now, waiting for the group wait. */
  held: number;
  /** Incidents open now. */
  openIncidents: number;
  /** Device transitions absorbed into an incident instead of being sent. */
  absorbed: number;
  /** Incident notifications made. */
  notices: number;
}

/**
 * The grouping state as JSON (`snapshot()`/`restore()`): what a restart needs so that it neither
 * loses a held alert nor pages an incident again.
 */
export interface GroupingState {
  version: 1;
  /** Offers so far: ranks held transitions, so releases keep the order they were offered in. */
  offered: number;
  alerts: TrackedAlert[];
  incidents: TrackedIncident[];
}

interface TrackedAlert {
  alert: Alert;
  /** The newest transition seen, for routing the incident's notifications. */
  transition: AlertTransition;
  /** Event time the alert (re)started: its open, or the reopen that made it news again. */
  groupAt: number;
  state: 'pending' | 'released' | 'member';
  incidentId: string | null;
  /** Pending only: its transitions, in order, until it is released or linked; `order` is the offer's rank among all. */
  held: Array<{ order: number; event: AlertEvent }>;
  /** Wall time it started waiting (pending). */
  heldSince: number;
  /** Wall time it finished (resolved, or its incident resolved); null while active. */
  doneAt: number | null;
}

interface TrackedIncident {
  id: string;
  hint: RootCauseHint;
  site: string | null;
  sites: string[];
  startedAt: number;
  siteDevices: number | null;
  explain: string;
  /** Linked alert ids, in the order they were linked. */
  members: string[];
  /** Members already named in a notification. */
  announced: number;
  /** Wall time of the last notification. */
  lastNoticeAt: number;
  status: 'open' | 'resolved';
  doneAt: number | null;
}

/**
 * Holds alerts of the incident types and decides, after a group wait, whether they form a site
 * incident — the way Prometheus Alertmanager's group_wait / group_interval do, with the grouping
 * policy of `groupIncidents`. Pure bookkeeping: the caller gives the wall time, sends the outputs,
 * and calls `due` when `nextDueAt` comes (see the delivery worker).
 *
 * - An alert of `policy.types` (not muted) is held with every later transition of it.
 * - When the group wait of a held alert ends, `groupIncidents` runs over the held alerts, the
 *   active alerts already sent, and the alerts of open incidents. A site outage (or pipeline stall)
 *   with a due alert that links no open incident yet becomes an incident: one `incident.opened`,
 *   and its alerts' transitions are absorbed (never sent one by one). Alerts that fall into an open
 *   incident join it: at most one `incident.updated` per group interval. A held alert that is a
 *   device fault is released: its held transitions go out in order, and later ones pass straight on.
 * - When every linked alert resolved: one `incident.resolved`.
 * - Transitions already seen (sequence number not above the last one) are dropped: a replay after a
 *   restart pages nothing twice as long as the state was restored.
 *
 * @example
 * const grouper = createIncidentGrouper({ policy: DEFAULT_INCIDENT_POLICY, groupWaitMs: 30_000, groupIntervalMs: 300_000 });
 * grouper.offer(silenceEvent, Date.now()); // [] — held
 * grouper.due(Date.now() + 30_000);        // [{ kind: 'incident', notice: { id: 'in_…:opened', ... } }] for 50 meters of one site
 */
export interface IncidentGrouper {
  /** True for the transitions the grouper takes: alerts of the incident types (unless muted and unknown) and alerts it tracks. */
  handles(event: AlertEvent): boolean;
  /** Takes one transition; returns what must be sent now (a transition of a released alert, an `incident.resolved`). */
  offer(event: AlertEvent, now: number): GroupedOutput[];
  /** What became due by `now`. */
  due(now: number): GroupedOutput[];
  /** Wall time of the next decision, or undefined when nothing waits. */
  nextDueAt(): number | undefined;
  /** True while an alert is held or an incident update waits for its interval. */
  holding(): boolean;
  /** Decides everything now (shutdown without a state file: nothing must stay in memory only). */
  flushAll(now: number): GroupedOutput[];
  snapshot(): GroupingState;
  /** Replaces the state; held alerts wait a whole group wait again from `now`. Throws GP_CHECKPOINT_INVALID for an unreadable state. */
  restore(state: unknown, now: number): void;
  stats(): GroupingStats;
}

export function createIncidentGrouper(options: IncidentGrouperOptions): IncidentGrouper {
  const { policy, groupWaitMs, groupIntervalMs } = options;
  const retainMs = options.retainMs ?? Math.max(600_000, groupIntervalMs);
  const types = new Set(policy.types);
  let alerts = new Map<string, TrackedAlert>();
  let incidents = new Map<string, TrackedIncident>();
  let offered = 0;
  const counters = { absorbed: 0, notices: 0 };

  const isDue = (tracked: TrackedAlert, now: number): boolean => tracked.state === 'pending' && tracked.heldSince + groupWaitMs <= now;

  function hold(event: AlertEvent, now: number): void {
    const { alert, transition } = event;
    const groupAt = transition.kind === 'open' ? alert.openedAt : transition.time;
    alerts.set(alert.id, { alert, transition, groupAt, state: 'pending', incidentId: null, held: [{ order: offered, event }], heldSince: now, doneAt: null });
  }

  function release(tracked: TrackedAlert, now: number, released: Array<{ order: number; event: AlertEvent }>): void {
    released.push(...tracked.held);
    tracked.held = [];
    tracked.state = 'released';
    if (tracked.alert.status === 'resolved') tracked.doneAt = now;
  }

  function link(incident: TrackedIncident, id: string): void {
    const tracked = alerts.get(id);
    if (tracked === undefined || tracked.state === 'member') return;
    counters.absorbed += tracked.held.length;
    tracked.state = 'member';
    tracked.incidentId = incident.id;
    tracked.held = [];
    incident.members.push(id);
  }

  function members(incident: TrackedIncident): TrackedAlert[] {
    const found: TrackedAlert[] = [];
    for (const id of incident.members) {
      const tracked = alerts.get(id);
      if (tracked !== undefined) found.push(tracked);
    }
    return found;
  }

  function notice(incident: TrackedIncident, kind: IncidentNoticeKind, now: number): GroupedOutput {
    const linked = members(incident).sort((a, b) => a.groupAt - b.groupAt || compareText(a.alert.id, b.alert.id));
    const severity = linked.reduce<Severity>((top, t) => (SEVERITIES.indexOf(t.alert.severity) > SEVERITIES.indexOf(top) ? t.alert.severity : top), 'info');
    const added = incident.members.slice(incident.announced);
    const time = kind === 'incident.opened' ? incident.startedAt : kind === 'incident.resolved' ? (incidentEnd(linked) ?? incident.startedAt) : Math.max(...linked.map((t) => t.groupAt));
    const alertIds = linked.map((t) => t.alert.id);
    const summary: IncidentSummary = {
      id: incident.id,
      hint: incident.hint,
      site: incident.site,
      sites: incident.sites,
      status: kind === 'incident.resolved' ? 'resolved' : 'open',
      startedAt: incident.startedAt,
      endedAt: kind === 'incident.resolved' ? incidentEnd(linked) : null,
      severity,
      streams: distinct(linked.map((t) => t.alert.stream)),
      types: distinct(linked.map((t) => t.alert.type)),
      devices: distinct(linked.map((t) => t.alert.key)),
      deviceCount: new Set(linked.map((t) => t.alert.key)).size,
      alertIds,
      alertCount: alertIds.length,
      added,
      siteDevices: incident.siteDevices,
      explain: incident.explain,
    };
    const suffix = kind === 'incident.opened' ? 'opened' : kind === 'incident.resolved' ? 'resolved' : `updated:${alertIds.length}`;
    incident.announced = incident.members.length;
    incident.lastNoticeAt = now;
    counters.notices += 1;
    return { kind: 'incident', notice: { id: `${incident.id}:${suffix}`, kind, time, incident: summary }, routeEvents: routeEvents(linked, kind) };
  }

  function resolveIfDone(incident: TrackedIncident, now: number, outputs: GroupedOutput[]): void {
    if (incident.status !== 'open') return;
    const linked = members(incident);
    if (linked.length === 0 || linked.some((t) => t.alert.status !== 'resolved')) return;
    outputs.push(notice(incident, 'incident.resolved', now));
    incident.status = 'resolved';
    incident.doneAt = now;
    for (const tracked of linked) tracked.doneAt = now;
  }

  function evaluate(now: number, outputs: GroupedOutput[]): void {
    const candidates: Alert[] = [];
    for (const tracked of alerts.values()) {
      if (tracked.doneAt !== null) continue;
      if (tracked.state === 'released' && tracked.alert.status === 'resolved') continue;
      // Grouped by when the alert became news: its open, or the reopen that brought it back.
      candidates.push({ ...tracked.alert, openedAt: tracked.groupAt });
    }
    const siteSizes = options.siteSizes?.();
    const grouped = groupIncidents(candidates, { policy, ...(siteSizes === undefined ? {} : { siteSizes }) });
    const released: Array<{ order: number; event: AlertEvent }> = [];
    for (const result of grouped) {
      const tracked = result.alertIds.map((id) => alerts.get(id)).filter((t): t is TrackedAlert => t !== undefined);
      if (result.hint === 'device fault') {
        for (const t of tracked) if (isDue(t, now)) release(t, now, released);
        continue;
      }
      const joining = tracked.filter((t) => t.state !== 'member');
      const open = tracked.map((t) => (t.state === 'member' && t.incidentId !== null ? incidents.get(t.incidentId) : undefined)).find((i) => i?.status === 'open');
      if (open !== undefined) {
        for (const t of joining) link(open, t.alert.id);
        resolveIfDone(open, now, outputs);
        continue;
      }
      // A new incident waits for the group wait of at least one of its alerts (Alertmanager's group_wait).
      if (!joining.some((t) => isDue(t, now))) continue;
      const incident: TrackedIncident = {
        id: result.id,
        hint: result.hint,
        site: result.site,
        sites: result.sites,
        startedAt: result.startedAt,
        siteDevices: result.siteDevices,
        explain: result.explain,
        members: [],
        announced: 0,
        lastNoticeAt: now,
        status: 'open',
        doneAt: null,
      };
      incidents.set(incident.id, incident);
      for (const t of joining) link(incident, t.alert.id);
      outputs.push(notice(incident, 'incident.opened', now));
      resolveIfDone(incident, now, outputs);
    }
    // Device transitions go out in the order they were offered, across alerts too.
    for (const { event } of released.sort((a, b) => a.order - b.order)) outputs.push({ kind: 'alert', event });
  }

  function updates(now: number, outputs: GroupedOutput[], force: boolean): void {
    for (const incident of incidents.values()) {
      if (incident.status !== 'open' || incident.members.length <= incident.announced) continue;
      if (force || incident.lastNoticeAt + groupIntervalMs <= now) outputs.push(notice(incident, 'incident.updated', now));
    }
  }

  function prune(now: number): void {
    for (const [id, tracked] of alerts) if (tracked.doneAt !== null && tracked.doneAt + retainMs <= now) alerts.delete(id);
    for (const [id, incident] of incidents) if (incident.doneAt !== null && incident.doneAt + retainMs <= now) incidents.delete(id);
  }

  return {
    handles(event) {
      if (alerts.has(event.alert.id)) return true;
      return types.has(event.alert.type) && event.transition.muted !== true;
    },

    offer(event, now) {
      offered += 1;
      const { alert, transition } = event;
      const tracked = alerts.get(alert.id);
      if (tracked === undefined) {
        if (alert.status === 'resolved') return [{ kind: 'alert', event }];
        hold(event, now);
        return [];
      }
      // Seen already: a replay from a checkpoint, or an outbox row delivered again.
      if (transition.seq <= tracked.transition.seq) return [];
      tracked.alert = alert;
      tracked.transition = transition;
      if (tracked.doneAt !== null) {
        // Finished, and now active again (a reopen): news, grouped afresh.
        if (alert.status === 'resolved') return tracked.state === 'released' ? [{ kind: 'alert', event }] : [];
        hold(event, now);
        return [];
      }
      if (tracked.state === 'pending') {
        tracked.held.push({ order: offered, event });
        return [];
      }
      if (tracked.state === 'released') {
        if (alert.status === 'resolved') tracked.doneAt = now;
        return [{ kind: 'alert', event }];
      }
      counters.absorbed += 1;
      const incident = tracked.incidentId === null ? undefined : incidents.get(tracked.incidentId);
      const outputs: GroupedOutput[] = [];
      if (incident !== undefined) resolveIfDone(incident, now, outputs);
      return outputs;
    },

    due(now) {
      const outputs: GroupedOutput[] = [];
      if ([...alerts.values()].some((t) => isDue(t, now))) evaluate(now, outputs);
      updates(now, outputs, false);
      prune(now);
      return outputs;
    },

    nextDueAt() {
      let next: number | undefined;
      const consider = (at: number): void => {
        if (next === undefined || at < next) next = at;
      };
      for (const tracked of alerts.values()) if (tracked.state === 'pending') consider(tracked.heldSince + groupWaitMs);
      for (const incident of incidents.values()) {
        if (incident.status === 'open' && incident.members.length > incident.announced) consider(incident.lastNoticeAt + groupIntervalMs);
        if (incident.doneAt !== null) consider(incident.doneAt + retainMs);
      }
      return next;
    },

    holding() {
      for (const tracked of alerts.values()) if (tracked.state === 'pending') return true;
      for (const incident of incidents.values()) if (incident.status === 'open' && incident.members.length > incident.announced) return true;
      return false;
    },

    flushAll(now) {
      const outputs: GroupedOutput[] = [];
      for (const tracked of alerts.values()) if (tracked.state === 'pending') tracked.heldSince = Math.min(tracked.heldSince, now - groupWaitMs);
      evaluate(now, outputs);
      updates(now, outputs, true);
      return outputs;
    },

    snapshot() {
      return structuredClone({ version: 1 as const, offered, alerts: [...alerts.values()], incidents: [...incidents.values()] });
    },

    restore(state, now) {
      const checked = checkState(state);
      alerts = new Map(checked.alerts.map((t) => [t.alert.id, { ...t, heldSince: t.state === 'pending' ? now : t.heldSince }]));
      incidents = new Map(checked.incidents.map((i) => [i.id, i]));
      offered = checked.offered;
    },

    stats() {
      let held = 0;
      for (const tracked of alerts.values()) if (tracked.state === 'pending') held += 1;
      let openIncidents = 0;
      for (const incident of incidents.values()) if (incident.status === 'open') openIncidents += 1;
      return { held, openIncidents, ...counters };
    },
  };
}

const ROUTE_KIND: Record<IncidentNoticeKind, TransitionKind> = { 'incident.opened': 'open', 'incident.updated': 'update', 'incident.resolved': 'resolve' };

/** One event per distinct (stream, type, site, severity) of the linked alerts, so each route that would take one of them takes the notice. */
function routeEvents(linked: readonly TrackedAlert[], kind: IncidentNoticeKind): AlertEvent[] {
  const events = new Map<string, AlertEvent>();
  for (const tracked of linked) {
    const { alert, transition } = tracked;
    const identity = JSON.stringify([alert.stream, alert.type, alert.site ?? null, alert.severity]);
    if (events.has(identity)) continue;
    // An incident notice is news of its own: a member's maintenance mute does not silence it.
    const { muted: _muted, ...unmuted } = transition;
    events.set(identity, { alert, transition: { ...unmuted, kind: ROUTE_KIND[kind], severity: alert.severity } });
  }
  return [...events.values()];
}

function incidentEnd(linked: readonly TrackedAlert[]): number | null {
  if (linked.length === 0 || linked.some((t) => t.alert.status !== 'resolved')) return null;
  return Math.max(...linked.map((t) => t.alert.resolvedAt ?? t.alert.updatedAt));
}

function distinct(values: readonly string[]): string[] {
  return [...new Set(values)].sort(compareText);
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function checkState(state: unknown): GroupingState {
  const fail = (what: string): GpError => new GpError('GP_CHECKPOINT_INVALID', `incident grouping state: expected ${what}`, { expected: what });
  if (typeof state !== 'object' || state === null) throw fail('an object with version 1');
  const candidate = state as Partial<GroupingState>;
  if (candidate.version !== 1) throw fail(`version 1, got ${JSON.stringify(candidate.version)}`);
  if (!Array.isArray(candidate.alerts) || !Array.isArray(candidate.incidents) || typeof candidate.offered !== 'number') throw fail('lists of alerts and incidents and an offer count');
  for (const tracked of candidate.alerts) {
    if (typeof tracked?.alert?.id !== 'string' || typeof tracked.transition?.seq !== 'number' || !Array.isArray(tracked.held)) throw fail('tracked alerts with an alert, a transition and held events');
  }
  for (const incident of candidate.incidents) {
    if (typeof incident?.id !== 'string' || !Array.isArray(incident.members)) throw fail('incidents with an id and members');
  }
  return candidate as GroupingState;
}
