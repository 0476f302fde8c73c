/**
 * Alerts: filter by status, type, severity, site (and device), acknowledge and resolve in place;
 * rows follow live alert events without a reload.
 */
import { alertRow, alertTable, byOpenedDesc } from '../alerts-view.js';
import { api } from '../api.js';
import type { Alert, AlertStatus, Severity } from '../api-types.js';
import type { PageContext, PageFactory } from '../context.js';
import { field, h, replaceChildren, select } from '../dom.js';
import { formatCount, formatNumber, formatTime } from '../format.js';
import { errorBox } from '../notify.js';
import { emptyRow, pageHeader, panel } from '../widgets.js';

const STATUSES: readonly AlertStatus[] = ['open', 'acknowledged', 'resolved'];
const LIMIT = 500;

/** The alert's transitions (open, updates, acknowledge, resolve), in a row under it. */
function detailsRow(alert: Alert): HTMLTableRowElement {
  const body = h('div', { class: 'transitions', testid: 'alert-transitions', text: 'Loading history…' });
  api
    .alert(alert.id)
    .then(({ transitions }) =>
      replaceChildren(
        body,
        h(
          'ol',
          { class: 'timeline' },
          ...transitions.map((t) =>
            h(
              'li',
              { dataset: { kind: t.kind } },
              h('span', { class: 'alert-time', text: formatTime(t.time) }),
              h('strong', { text: t.kind }),
              ` → ${t.status} · ${t.severity} · score ${formatNumber(t.score)}`,
              t.by ? ` · by ${t.by}` : '',
              t.note ? ` · “${t.note}”` : '',
              h('div', { class: 'muted small', text: t.explain }),
            ),
          ),
        ),
      ),
    )
    .catch((error: unknown) => replaceChildren(body, errorBox(error, 'alert history')));
  return h('tr', { class: 'details-row' }, h('td', { attrs: { colspan: '8' } }, body));
}

export const alertsPage: PageFactory = (context: PageContext) => {
  const cleanups: Array<() => void> = [];
  let destroyed = false;
  const statusParam = context.query.get('status');
  const statuses = new Set<AlertStatus>(statusParam === null ? ['open', 'acknowledged'] : (statusParam.split(',').filter((s) => STATUSES.includes(s as AlertStatus)) as AlertStatus[]));
  let severity = (context.query.get('severity') ?? '') as Severity | '';
  let type = context.query.get('type') ?? '';
  let site = context.query.get('site') ?? '';
  let key = context.query.get('key') ?? '';
  const rows = new Map<string, { alert: Alert; row: HTMLTableRowElement }>();
  let generation = 0;

  const problems = h('div', { class: 'problems' });
  const count = h('span', { class: 'muted', testid: 'alerts-count' });
  const { table, body } = alertTable('alerts-table');
  const typeSelect = h('select', { testid: 'filter-type' }, h('option', { value: '', text: 'any type' }));
  const siteInput = h('input', { type: 'search', placeholder: 'any site', value: site, testid: 'filter-site', attrs: { list: 'alert-sites' } });
  const siteList = h('datalist', { attrs: { id: 'alert-sites' } });
  const keyChip = h('span', { class: 'key-filter', testid: 'filter-key' });

  const persist = (): void => {
    const query = new URLSearchParams();
    const statusText = STATUSES.filter((s) => statuses.has(s)).join(',');
    if (statusText !== 'open,acknowledged') query.set('status', statusText);
    if (severity) query.set('severity', severity);
    if (type) query.set('type', type);
    if (site) query.set('site', site);
    if (key) query.set('key', key);
    context.setQuery(query);
  };

  const matches = (alert: Alert): boolean =>
    (statuses.size === 0 || statuses.has(alert.status)) && (!severity || alert.severity === severity) && (!type || alert.type === type) && (!site || alert.site === site) && (!key || alert.key === key);

  /** A row that shows the alert's history when clicked (outside its links and buttons). */
  const makeRow = (alert: Alert): HTMLTableRowElement => {
    const row = alertRow(alert, onChange);
    row.classList.add('expandable');
    row.title = 'Click for the alert history';
    row.addEventListener('click', (event) => {
      if ((event.target as Element).closest('a, button')) return;
      const next = row.nextElementSibling;
      if (next?.classList.contains('details-row')) next.remove();
      else row.after(detailsRow(alert));
    });
    return row;
  };

  const onChange = (updated: Alert): void => {
    context.openAlerts.apply(updated);
    upsert(updated);
  };

  const upsert = (alert: Alert): void => {
    const existing = rows.get(alert.id);
    if (existing) {
      const row = makeRow(alert);
      const details = existing.row.nextElementSibling;
      if (details?.classList.contains('details-row')) details.remove();
      existing.row.replaceWith(row);
      rows.set(alert.id, { alert, row });
      row.classList.add('flash');
      return;
    }
    if (!matches(alert)) return;
    const row = makeRow(alert);
    row.classList.add('flash');
    body.querySelector('.empty-row')?.remove();
    body.prepend(row);
    rows.set(alert.id, { alert, row });
    updateCount();
  };

  const updateCount = (): void => {
    count.textContent = `${formatCount(rows.size)} alert${rows.size === 1 ? '' : 's'}${rows.size >= LIMIT ? ` (newest ${LIMIT})` : ''}`;
  };

  const addTypes = (types: Iterable<string>): void => {
    const known = new Set([...typeSelect.options].map((o) => o.value));
    for (const t of types) if (t && !known.has(t)) {
      typeSelect.appendChild(h('option', { value: t, text: t }));
      known.add(t);
    }
    typeSelect.value = type;
  };

  const load = async (): Promise<void> => {
    const mine = ++generation;
    replaceChildren(problems);
    const alerts = await api.alerts({
      status: STATUSES.filter((s) => statuses.has(s)),
      ...(severity ? { severity: [severity] } : {}),
      ...(type ? { type } : {}),
      ...(site ? { site } : {}),
      ...(key ? { key } : {}),
      limit: LIMIT,
    });
    if (destroyed || mine !== generation) return;
    rows.clear();
    const sorted = [...alerts].sort(byOpenedDesc);
    const rendered = sorted.map((alert) => {
      const row = makeRow(alert);
      rows.set(alert.id, { alert, row });
      return row;
    });
    replaceChildren(body, rendered.length ? rendered : emptyRow(8, 'No alert matches the filter.'));
    addTypes(alerts.map((a) => a.type));
    const sites = new Set([...siteList.options].map((o) => o.value));
    for (const a of alerts) if (a.site && !sites.has(a.site)) {
      siteList.appendChild(h('option', { value: a.site }));
      sites.add(a.site);
    }
    updateCount();
  };
  const reload = (): void => {
    persist();
    load().catch((error: unknown) => {
      if (!destroyed) replaceChildren(problems, errorBox(error, 'alerts'));
    });
  };

  const statusBoxes = STATUSES.map((status) => {
    const box = h('input', { type: 'checkbox', testid: `filter-status-${status}` });
    box.checked = statuses.has(status);
    box.addEventListener('change', () => {
      if (box.checked) statuses.add(status);
      else statuses.delete(status);
      reload();
    });
    return h('label', { class: 'check' }, box, status);
  });
  typeSelect.addEventListener('change', () => {
    type = typeSelect.value;
    reload();
  });
  siteInput.addEventListener('change', () => {
    site = siteInput.value.trim();
    reload();
  });
  const renderKeyChip = (): void => {
    replaceChildren(
      keyChip,
      key
        ? h(
            'span',
            { class: 'chip' },
            `device ${key} `,
            h('button', {
              class: 'chip-close',
              type: 'button',
              text: '×',
              title: 'all devices',
              on: {
                click: () => {
                  key = '';
                  renderKeyChip();
                  reload();
                },
              },
            }),
          )
        : '',
    );
  };
  renderKeyChip();

  const element = h(
    'div',
    {},
    pageHeader('Alerts', count),
    problems,
    panel(
      'Filter',
      {},
      h(
        'div',
        { class: 'controls' },
        h('fieldset', { class: 'field checks' }, h('legend', { class: 'field-label', text: 'Status' }), ...statusBoxes),
        field('Type', typeSelect),
        field(
          'Severity',
          select(
            'filter-severity',
            [
              ['', 'any severity'],
              ['critical', 'critical'],
              ['warning', 'warning'],
              ['info', 'info'],
            ],
            severity,
            (value) => {
              severity = value as Severity | '';
              reload();
            },
          ),
        ),
        field('Site', siteInput),
        siteList,
        keyChip,
      ),
    ),
    panel('Alerts', {}, h('div', { class: 'table-wrap' }, table)),
  );

  cleanups.push(context.live.on('alert', ({ alert }) => upsert(alert)));
  context
    .streams()
    .then((streams) => addTypes(streams.flatMap((s) => s.detectors).filter((d) => d !== 'rule')))
    .catch(() => undefined);
  reload();

  return {
    element,
    destroy() {
      destroyed = true;
      for (const cleanup of cleanups) cleanup();
    },
  };
};
