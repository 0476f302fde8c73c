import type { AlertEvent, Severity, TransitionKind } from '../../model/index.js';
import type { TemplateName } from './channel.js';
import type { IncidentNotice, IncidentNoticeKind, IncidentSummary } from './incident-grouper.js';

/**
 * The generic body: the payload shape Standard Webhooks recommends (`type`, `timestamp`, `data`),
 * plus `id` (the transition id, also sent as `webhook-id`). Fields without a value are `null`.
 *
 * @example
 * { "id": "al_0123456789abcdef:0", "type": "alert.open", "timestamp": "2025-11-23T12:13:20.000Z",
 *   "data": { "alert": { "id": "al_0123456789abcdef", "stream": "power", ... }, "transition": { "kind": "open", ... } } }
 */
export interface GenericAlertBody {
  id: string;
  type: `alert.${TransitionKind}`;
  timestamp: string;
  data: { alert: Record<string, unknown>; transition: Record<string, unknown> };
}

/** A Slack incoming-webhook message: `text` (the notification's fallback) and Block Kit `blocks`. */
export interface SlackAlertBody {
  text: string;
  blocks: Array<Record<string, unknown>>;
}

/**
 * Renders an alert event as the body of a notification. Deterministic: the same event gives the
 * same text, so a redelivery sends the same bytes.
 *
 * @example
 * renderNotification(event, 'slack'); // '{"text":"[CRITICAL] spike opened on power/m-1 ...","blocks":[...]}'
 */
export function renderNotification(event: AlertEvent, template: TemplateName): string {
  return JSON.stringify(template === 'slack' ? slackBody(event) : genericBody(event));
}

export function genericBody(event: AlertEvent): GenericAlertBody {
  const { alert, transition } = event;
  return {
    id: transition.id,
    type: `alert.${transition.kind}`,
    timestamp: isoTime(transition.time),
    data: {
      alert: {
        id: alert.id,
        stream: alert.stream,
        key: alert.key,
        site: alert.site ?? null,
        type: alert.type,
        metric: alert.metric ?? null,
        severity: alert.severity,
        status: alert.status,
        openedAt: alert.openedAt,
        updatedAt: alert.updatedAt,
        resolvedAt: alert.resolvedAt ?? null,
        score: alert.score,
        peakScore: alert.peakScore,
        value: alert.value,
        findings: alert.findings,
        explain: alert.explain,
      },
      transition: {
        id: transition.id,
        alertId: transition.alertId,
        seq: transition.seq,
        kind: transition.kind,
        time: transition.time,
        status: transition.status,
        severity: transition.severity,
        score: transition.score,
        explain: transition.explain,
        by: transition.by ?? null,
        note: transition.note ?? null,
      },
    },
  };
}

const KIND_VERB: Record<TransitionKind, string> = {
  open: 'opened',
  update: 'updated',
  escalate: 'escalated',
  resolve: 'resolved',
  reopen: 'reopened',
  acknowledge: 'acknowledged',
  assign: 'assigned',
  flapping: 'flapping',
  correct: 'corrected',
};
const SEVERITY_ICON: Record<Severity, string> = { info: ':large_blue_circle:', warning: ':large_orange_circle:', critical: ':red_circle:' };
// Slack refuses a section whose text is longer than 3000 characters.
const SLACK_TEXT_LIMIT = 2900;

export function slackBody(event: AlertEvent): SlackAlertBody {
  const { alert, transition } = event;
  const where = `${alert.stream}/${alert.key}${alert.site === undefined ? '' : ` (site ${alert.site})`}`;
  const headline = `[${transition.severity.toUpperCase()}] ${alert.type} ${KIND_VERB[transition.kind]} on ${where}`;
  const explain = clip(transition.explain, SLACK_TEXT_LIMIT);
  const fields = [
    ['Stream', alert.stream],
    ['Device', alert.key],
    ['Site', alert.site ?? '—'],
    ['Severity', transition.severity],
    ['Score', transition.score.toFixed(2)],
    ['Status', transition.status],
  ].map(([name, value]) => ({ type: 'mrkdwn', text: `*${name}*\n${slackEscape(value ?? '')}` }));
  const actor = transition.by === undefined ? '' : ` · by ${slackEscape(transition.by)}${transition.note === undefined ? '' : `: ${slackEscape(clip(transition.note, 500))}`}`;
  return {
    text: clip(`${headline}: ${transition.explain}`, SLACK_TEXT_LIMIT),
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `${SEVERITY_ICON[transition.severity]} *${slackEscape(headline)}*\n${slackEscape(explain)}` } },
      { type: 'section', fields },
      { type: 'context', elements: [{ type: 'mrkdwn', text: `alert ${alert.id} · transition ${transition.id} · ${isoTime(transition.time)}${actor}` }] },
    ],
  };
}

/** Slack's mrkdwn treats &, < and > as control characters. */
function slackEscape(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

function clip(text: string, limit: number): string {
  return text.length <= limit ? text : `${text.slice(0, limit - 1)}…`;
}

/**
 * The generic body of an incident notification: `id` (also the webhook-id), `type`
 * (`incident.opened`, `incident.updated`, `incident.resolved`), `timestamp` and the incident.
 *
 * @example
 * { "id": "in_0123456789abcdef:opened", "type": "incident.opened", "timestamp": "2026-01-05T09:05:00.000Z",
 *   "data": { "incident": { "id": "in_0123456789abcdef", "hint": "site outage", "site": "s-1", "deviceCount": 50, "alertIds": [...], ... } } }
 */
export interface GenericIncidentBody {
  id: string;
  type: IncidentNoticeKind;
  timestamp: string;
  data: { incident: IncidentSummary };
}

/**
 * Renders an incident notification; deterministic like `renderNotification`.
 *
 * @example
 * renderIncidentNotice(notice, 'slack'); // '{"text":"[CRITICAL] site outage at s-1: 50 devices, incident opened ...","blocks":[...]}'
 */
export function renderIncidentNotice(notice: IncidentNotice, template: TemplateName): string {
  return JSON.stringify(template === 'slack' ? slackIncidentBody(notice) : genericIncidentBody(notice));
}

export function genericIncidentBody(notice: IncidentNotice): GenericIncidentBody {
  return { id: notice.id, type: notice.kind, timestamp: isoTime(notice.time), data: { incident: notice.incident } };
}

const INCIDENT_VERB: Record<IncidentNoticeKind, string> = { 'incident.opened': 'incident opened', 'incident.updated': 'incident updated', 'incident.resolved': 'incident resolved' };

export function slackIncidentBody(notice: IncidentNotice): SlackAlertBody {
  const { incident } = notice;
  const where = incident.site === null ? `${incident.sites.length} sites` : `site ${incident.site}`;
  const headline = `[${incident.severity.toUpperCase()}] ${incident.hint} at ${where}: ${incident.deviceCount} device${incident.deviceCount === 1 ? '' : 's'}, ${INCIDENT_VERB[notice.kind]}`;
  const shown = incident.devices.slice(0, 20).join(', ') + (incident.devices.length > 20 ? `, … (${incident.devices.length - 20} more)` : '');
  const fields = [
    ['Site', incident.site ?? incident.sites.join(', ')],
    ['Hint', incident.hint],
    ['Devices', String(incident.deviceCount)],
    ['Alerts', String(incident.alertCount)],
    ['Types', incident.types.join(', ')],
    ['Status', incident.status],
  ].map(([name, value]) => ({ type: 'mrkdwn', text: `*${name}*\n${slackEscape(value ?? '')}` }));
  return {
    text: clip(`${headline}: ${incident.explain}`, SLACK_TEXT_LIMIT),
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `${SEVERITY_ICON[incident.severity]} *${slackEscape(headline)}*\n${slackEscape(clip(incident.explain, SLACK_TEXT_LIMIT))}` } },
      { type: 'section', fields },
      { type: 'context', elements: [{ type: 'mrkdwn', text: slackEscape(clip(`devices: ${shown}`, SLACK_TEXT_LIMIT)) }] },
      { type: 'context', elements: [{ type: 'mrkdwn', text: `incident ${incident.id} · notification ${notice.id} · ${isoTime(notice.time)}` }] },
    ],
  };
}

function isoTime(ms: number): string {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? String(ms) : date.toISOString();
}
