import { createHash } from 'node:crypto';
import { GpError } from '../model/index.js';
import type { Alert } from '../model/index.js';
import { describeJson } from '../engine/index.js';

/**
 * What most likely caused a group of alerts:
 * - `site outage`: many devices of one site went silent (or dropped) together — power or network at the site;
 * - `pipeline stall`: every known site went silent at once — the ingest stopped, not the devices;
 * - `device fault`: one device on its own.
 */
export type RootCauseHint = 'site outage' | 'pipeline stall' | 'device fault';

/**
 * How alerts are grouped: alerts of `types` opened within `windowMs` of the first of their burst
 * make a site incident when they concern at least `minDevices` devices of one site, or at least
 * `minShare` of the site's known devices (and at least 2).
 */
export interface IncidentPolicy {
  readonly minDevices: number;
  readonly minShare: number;
  readonly windowMs: number;
  /** Alert types that say a device went silent or dropped (default silence and outage). */
  readonly types: readonly string[];
}

export const DEFAULT_INCIDENT_POLICY: IncidentPolicy = { minDevices: 5, minShare: 0.5, windowMs: 120_000, types: ['silence', 'outage'] };

/** One incident: the device alerts it links and the hint at their common cause. */
export interface SiteIncident {
  /** `in_` and 16 hex digits from (hint, site, startedAt): the same on every run over the same alerts. */
  id: string;
  hint: RootCauseHint;
  /** The site; null for a pipeline stall (every site) and for a device without a site. */
  site: string | null;
  /** Sites whose devices are linked, sorted. */
  sites: string[];
  /** `open` while any linked alert is open or acknowledged. */
  status: 'open' | 'resolved';
  /** Earliest `openedAt` of the linked alerts. */
  startedAt: number;
  /** Latest `resolvedAt` once every linked alert resolved, else null. */
  endedAt: number | null;
  /** Distinct device keys, sorted. */
  devices: string[];
  /** Linked alert ids, in order of opening. */
  alertIds: string[];
  /** Devices known at the site (from `siteSizes`), or null when unknown or not one site. */
  siteDevices: number | null;
  explain: string;
}

export interface GroupIncidentsOptions {
  policy?: IncidentPolicy;
  /** Devices per site (e.g. counted from the store's device list): enables `minShare` and the pipeline-stall hint. */
  siteSizes?: ReadonlyMap<string, number>;
}

/**
 * Groups device alerts into incidents with a root-cause hint. Pure and deterministic: the same
 * alerts give the same incidents with the same ids, whatever their order.
 *
 * Alerts of `policy.types` are taken in order of `openedAt` and cut into bursts: a burst starts
 * at an alert and takes every alert opened no later than `windowMs` after it. In a burst:
 * - when `siteSizes` names at least two sites and every one of them qualifies (below), the whole
 *   burst is one `pipeline stall` incident (site null) — every site silent at once is the ingest;
 * - otherwise each site that qualifies — alerts of at least `minDevices` distinct devices, or of
 *   at least `minShare` of its known devices (and at least two) — is one `site outage` incident;
 * - every other device is its own `device fault` incident.
 * Alerts of other types are left out.
 *
 * @example
 * const incidents = groupIncidents(await store.listAlerts({ status: ['open', 'acknowledged'] }), { siteSizes });
 * incidents[0]; // { hint: 'site outage', site: 's-3', devices: [...50 meters], alertIds: [...], ... }
 */
export function groupIncidents(alerts: readonly Alert[], options: GroupIncidentsOptions = {}): SiteIncident[] {
  const policy = checkIncidentPolicy(options.policy ?? DEFAULT_INCIDENT_POLICY);
  const siteSizes = options.siteSizes ?? new Map<string, number>();
  const types = new Set(policy.types);
  const candidates = alerts
    .filter((alert) => types.has(alert.type))
    .sort((a, b) => a.openedAt - b.openedAt || compareText(a.id, b.id));
  const knownSites = [...siteSizes].filter(([, size]) => size > 0).map(([site]) => site);
  const incidents: SiteIncident[] = [];
  let index = 0;
  while (index < candidates.length) {
    const burstStart = candidates[index]!.openedAt;
    const burst: Alert[] = [];
    while (index < candidates.length && candidates[index]!.openedAt <= burstStart + policy.windowMs) burst.push(candidates[index++]!);
    incidents.push(...groupBurst(burst, policy, siteSizes, knownSites));
  }
  return incidents.sort((a, b) => a.startedAt - b.startedAt || compareText(a.id, b.id));
}

function groupBurst(burst: readonly Alert[], policy: IncidentPolicy, siteSizes: ReadonlyMap<string, number>, knownSites: readonly string[]): SiteIncident[] {
  const bySite = new Map<string, Alert[]>();
  const siteless: Alert[] = [];
  for (const alert of burst) {
    if (alert.site === undefined) siteless.push(alert);
    else bySite.set(alert.site, [...(bySite.get(alert.site) ?? []), alert]);
  }
  const qualifies = (site: string): boolean => {
    const devices = distinctKeys(bySite.get(site) ?? []).length;
    const size = siteSizes.get(site);
    if (devices >= policy.minDevices) return true;
    return size !== undefined && size > 0 && devices >= 2 && devices / size >= policy.minShare;
  };

  if (knownSites.length >= 2 && knownSites.every(qualifies)) {
    const sites = [...bySite.keys()].sort(compareText);
    const devices = distinctKeys(burst);
    return [
      incident('pipeline stall', null, sites, burst, null, `${devices.length} devices at all ${knownSites.length} known sites went silent within ${policy.windowMs} ms: the ingest pipeline most likely stopped, not the devices`),
    ];
  }

  const incidents: SiteIncident[] = [];
  const alone: Alert[] = [...siteless];
  for (const [site, alerts] of bySite) {
    if (!qualifies(site)) {
      alone.push(...alerts);
      continue;
    }
    const devices = distinctKeys(alerts).length;
    const size = siteSizes.get(site);
    const share = size === undefined || size <= 0 ? `${devices} devices` : `${devices} of its ${size} devices`;
    incidents.push(incident('site outage', site, [site], alerts, size ?? null, `${share} at site ${site} went silent or dropped within ${policy.windowMs} ms: most likely a site outage (power or network at the site)`));
  }
  const byDevice = new Map<string, Alert[]>();
  for (const alert of alone) {
    const device = JSON.stringify([alert.stream, alert.key]);
    byDevice.set(device, [...(byDevice.get(device) ?? []), alert]);
  }
  for (const alerts of byDevice.values()) {
    const first = alerts[0]!;
    const site = first.site ?? null;
    incidents.push(incident('device fault', site, site === null ? [] : [site], alerts, site === null ? null : (siteSizes.get(site) ?? null), `device ${first.key} alone: most likely a fault of the device or its link (${first.type})`));
  }
  return incidents;
}

function incident(hint: RootCauseHint, site: string | null, sites: string[], alerts: readonly Alert[], siteDevices: number | null, explain: string): SiteIncident {
  const ordered = [...alerts].sort((a, b) => a.openedAt - b.openedAt || compareText(a.id, b.id));
  const startedAt = ordered[0]!.openedAt;
  const open = ordered.some((alert) => alert.status !== 'resolved');
  const endedAt = open ? null : Math.max(...ordered.map((alert) => alert.resolvedAt ?? alert.updatedAt));
  // A device fault is one device: its key keeps two faults starting together apart.
  const identity = JSON.stringify([hint, site, startedAt, hint === 'device fault' ? [ordered[0]!.stream, ordered[0]!.key] : null]);
  return {
    id: `in_${createHash('sha1').update(identity).digest('hex').slice(0, 16)}`,
    hint,
    site,
    sites,
    status: open ? 'open' : 'resolved',
    startedAt,
    endedAt,
    devices: distinctKeys(ordered),
    alertIds: ordered.map((alert) => alert.id),
    siteDevices,
    explain,
  };
}

function distinctKeys(alerts: readonly Alert[]): string[] {
  return [...new Set(alerts.map((alert) => alert.key))].sort(compareText);
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function checkIncidentPolicy(policy: IncidentPolicy): IncidentPolicy {
  const fail = (field: string, expected: string, got: unknown): GpError =>
    new GpError('GP_CONFIG_INVALID', `alerts.incidents.${field}: expected ${expected}, got ${describeJson(got)}`, { field: `alerts.incidents.${field}`, expected, got: describeJson(got) });
  if (!Number.isInteger(policy.minDevices) || policy.minDevices < 2) throw fail('minDevices', 'a whole number ≥ 2', policy.minDevices);
  if (typeof policy.minShare !== 'number' || !(policy.minShare > 0 && policy.minShare <= 1)) throw fail('minShare', 'a number above 0 and at most 1', policy.minShare);
  if (typeof policy.windowMs !== 'number' || !Number.isFinite(policy.windowMs) || policy.windowMs < 0) throw fail('windowMs', 'a duration in milliseconds ≥ 0', policy.windowMs);
  if (!Array.isArray(policy.types)) throw fail('types', 'a list of alert types', policy.types);
  return policy;
}
