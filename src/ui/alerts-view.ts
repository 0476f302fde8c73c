/** Alert rendering shared by the overview, device and alerts pages: badges, rows, ack/resolve. */
import { api } from './api.js';
import type { Alert, Severity } from './api-types.js';
import { h } from './dom.js';
import { formatNumber, formatTime } from './format.js';
import { notify } from './notify.js';

export const SEVERITY_ORDER: readonly Severity[] = ['critical', 'warning', 'info'];

export function severityBadge(severity: Severity): HTMLElement {
  return h('span', { class: `badge sev-${severity}`, testid: 'alert-severity', text: severity });
}

export function statusBadge(alert: Alert): HTMLElement {
  return h('span', { class: `badge status-${alert.status}`, testid: 'alert-status', text: alert.status });
}

export function deviceLink(key: string): HTMLAnchorElement {
  return h('a', { href: `#/devices/${encodeURIComponent(key)}`, text: key, class: 'device-link' });
}

export function alertTypeLabel(alert: Alert): string {
  return alert.metric ? `${alert.type} · ${alert.metric}` : alert.type;
}

/** Acknowledge / resolve buttons that POST and hand the updated alert to `onChange`. */
export function alertActions(alert: Alert, onChange: (alert: Alert) => void): HTMLElement {
  const run = async (button: HTMLButtonElement, action: 'ack' | 'resolve'): Promise<void> => {
    button.disabled = true;
    button.classList.add('is-busy');
    try {
      const updated = action === 'ack' ? await api.acknowledge(alert.id) : await api.resolve(alert.id);
      onChange(updated);
      notify(`${action === 'ack' ? 'Acknowledged' : 'Resolved'} ${updated.type} on ${updated.key}`);
    } catch (error) {
      button.disabled = false;
      button.classList.remove('is-busy');
      notify(`Could not ${action === 'ack' ? 'acknowledge' : 'resolve'}: ${(error as Error).message}`, 'error');
    }
  };
  const buttons: HTMLElement[] = [];
  if (alert.status === 'open') {
    const ack = h('button', { class: 'button', testid: 'alert-ack', text: 'Acknowledge', type: 'button' });
    ack.addEventListener('click', () => void run(ack, 'ack'));
    buttons.push(ack);
  }
  if (alert.status !== 'resolved') {
    const resolve = h('button', { class: 'button button-quiet', testid: 'alert-resolve', text: 'Resolve', type: 'button' });
    resolve.addEventListener('click', () => void run(resolve, 'resolve'));
    buttons.push(resolve);
  }
  return h('div', { class: 'actions' }, ...buttons);
}

/** One table row of an alert; the table's CSS turns rows into cards on narrow screens. */
export function alertRow(alert: Alert, onChange: (alert: Alert) => void): HTMLTableRowElement {
  const cell = (label: string, ...content: Array<Node | string>): HTMLTableCellElement => h('td', { dataset: { label } }, ...content);
  return h(
    'tr',
    { testid: 'alert-row', class: `alert-row status-${alert.status}`, dataset: { alertId: alert.id, status: alert.status, severity: alert.severity, type: alert.type, updated: String(alert.updatedAt) } },
    cell('Opened', h('span', { title: new Date(alert.openedAt).toISOString(), text: formatTime(alert.openedAt) })),
    cell('Device', deviceLink(alert.key), alert.site ? h('span', { class: 'muted small', text: ` ${alert.site}` }) : ''),
    cell('Type', alertTypeLabel(alert)),
    cell('Severity', severityBadge(alert.severity)),
    cell('Status', statusBadge(alert)),
    cell('Score', formatNumber(alert.peakScore)),
    h('td', { class: 'explain', dataset: { label: 'Why' }, testid: 'alert-explain', text: alert.explain }),
    cell('', alertActions(alert, onChange)),
  );
}

export function alertTable(testid: string): { table: HTMLTableElement; body: HTMLTableSectionElement } {
  const body = h('tbody');
  const table = h(
    'table',
    { class: 'table alerts-table', testid },
    h('thead', {}, h('tr', {}, ...['Opened', 'Device', 'Type', 'Severity', 'Status', 'Score', 'Why', ''].map((t) => h('th', { text: t })))),
    body,
  );
  return { table, body };
}

/** Newest first. */
export function byOpenedDesc(a: Alert, b: Alert): number {
  return b.openedAt - a.openedAt || (a.id < b.id ? -1 : 1);
}
