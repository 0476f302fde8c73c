/** All devices with their newest 1-minute averages and open alerts; filter by stream, site and name. */
import { deviceLink } from '../alerts-view.js';
import { api } from '../api.js';
import type { DeviceRow, StreamInfo } from '../api-types.js';
import type { PageContext, PageFactory } from '../context.js';
import { field, h, replaceChildren, select } from '../dom.js';
import { formatAgo, formatCount, formatNumber } from '../format.js';
import { LiveConnection } from '../live.js';
import { errorBox } from '../notify.js';
import { emptyRow, pageHeader, panel } from '../widgets.js';

const MAX_ROWS = 500;
const RENDER_EVERY_MS = 2000;
const collator = new Intl.Collator('en', { numeric: true });

type SortKey = 'key' | 'alerts' | 'seen';

export const devicesPage: PageFactory = (context: PageContext) => {
  const cleanups: Array<() => void> = [];
  let destroyed = false;
  let streamFilter = context.query.get('stream') ?? '';
  let siteFilter = context.query.get('site') ?? '';
  let search = context.query.get('q') ?? '';
  let sort: SortKey = (context.query.get('sort') as SortKey | null) ?? 'key';
  let streams: StreamInfo[] = [];
  let devices = new Map<string, DeviceRow>();
  let connection: LiveConnection | undefined;

  const problems = h('div', { class: 'problems' });
  const count = h('span', { class: 'muted', testid: 'devices-count' });
  const body = h('tbody');
  const table = h(
    'table',
    { class: 'table devices-table', testid: 'devices-table' },
    h('thead', {}, h('tr', {}, ...['Device', 'Stream', 'Site', 'Last seen', 'Newest 1-min averages', 'Open alerts'].map((t) => h('th', { text: t })))),
    body,
  );
  const streamSelect = h('select', { testid: 'filter-stream' }, h('option', { value: '', text: 'all streams' }));
  const siteSelect = h('select', { testid: 'filter-site' }, h('option', { value: '', text: 'all sites' }));
  const searchInput = h('input', { type: 'search', placeholder: 'device id contains…', value: search, testid: 'filter-search' });

  const persist = (): void => {
    const query = new URLSearchParams();
    if (streamFilter) query.set('stream', streamFilter);
    if (siteFilter) query.set('site', siteFilter);
    if (search) query.set('q', search);
    if (sort !== 'key') query.set('sort', sort);
    context.setQuery(query);
  };

  const element = h(
    'div',
    {},
    pageHeader('Devices', count),
    problems,
    panel(
      'Filter',
      {},
      h(
        'div',
        { class: 'controls' },
        field('Stream', streamSelect),
        field('Site', siteSelect),
        field('Device', searchInput),
        field(
          'Sort by',
          select(
            'sort',
            [
              ['key', 'device id'],
              ['alerts', 'open alerts'],
              ['seen', 'last seen'],
            ],
            sort,
            (value) => {
              sort = value as SortKey;
              persist();
              render();
            },
          ),
        ),
      ),
    ),
    panel('Devices', {}, h('div', { class: 'table-wrap' }, table)),
  );

  const unitOf = (stream: string, metric: string): string | null | undefined => streams.find((s) => s.name === stream)?.metrics.find((m) => m.name === metric)?.unit;

  const render = (): void => {
    const needle = search.trim().toLowerCase();
    const rows = [...devices.values()].filter((d) => (!siteFilter || d.site === siteFilter) && (!needle || d.key.toLowerCase().includes(needle)));
    rows.sort((a, b) => {
      if (sort === 'alerts') return b.openAlerts - a.openAlerts || collator.compare(a.key, b.key);
      if (sort === 'seen') return b.lastSeen - a.lastSeen || collator.compare(a.key, b.key);
      return collator.compare(a.key, b.key);
    });
    count.textContent = `${formatCount(rows.length)} device${rows.length === 1 ? '' : 's'}${rows.length > MAX_ROWS ? `, showing ${MAX_ROWS}` : ''}`;
    const now = Date.now();
    replaceChildren(
      body,
      rows.length === 0
        ? emptyRow(6, devices.size === 0 ? 'No devices have reported yet.' : 'No device matches the filter.')
        : rows.slice(0, MAX_ROWS).map((d) => {
            const averages = d.live?.avg1m ?? d.lastAvg;
            return h(
              'tr',
              { testid: 'device-row', dataset: { key: d.key, stream: d.stream } },
              h('td', { dataset: { label: 'Device' } }, deviceLink(d.key)),
              h('td', { dataset: { label: 'Stream' }, text: d.stream }),
              h('td', { dataset: { label: 'Site' }, text: d.site ?? '–' }),
              h('td', { dataset: { label: 'Last seen' }, text: formatAgo(d.live?.lastTime ?? d.lastSeen, now) }),
              h(
                'td',
                { class: 'metrics-cell', dataset: { label: 'Averages' } },
                ...Object.entries(averages).map(([metric, value]) => h('span', { class: 'metric-pill' }, h('span', { class: 'muted', text: `${metric} ` }), formatNumber(value, unitOf(d.stream, metric)))),
              ),
              h('td', { dataset: { label: 'Open alerts' } }, d.openAlerts ? h('a', { class: 'chip sev-warning', href: `#/alerts?key=${encodeURIComponent(d.key)}`, text: String(d.openAlerts) }) : '0'),
            );
          }),
    );
  };

  let renderTimer: number | undefined;
  const scheduleRender = (): void => {
    if (renderTimer !== undefined) return;
    renderTimer = window.setTimeout(() => {
      renderTimer = undefined;
      if (!destroyed) render();
    }, RENDER_EVERY_MS);
  };
  cleanups.push(() => window.clearTimeout(renderTimer));

  const fillSites = (): void => {
    const sites = [...new Set([...devices.values()].map((d) => d.site).filter((s): s is string => !!s))].sort(collator.compare);
    replaceChildren(siteSelect, h('option', { value: '', text: 'all sites' }), ...sites.map((s) => h('option', { value: s, text: s })));
    siteSelect.value = sites.includes(siteFilter) ? siteFilter : '';
  };

  const load = async (): Promise<void> => {
    const list = await api.devices(streamFilter ? { stream: streamFilter } : {});
    if (destroyed) return;
    devices = new Map(list.map((d) => [`${d.stream}/${d.key}`, d]));
    // Streams in the store that this platform does not run (files replayed with a detected layout) can be filtered on too.
    for (const name of new Set(list.map((d) => d.stream))) {
      if (![...streamSelect.options].some((o) => o.value === name)) streamSelect.appendChild(h('option', { value: name, text: `${name} (stored history)` }));
    }
    fillSites();
    render();
    connection?.close();
    connection = undefined;
    // Such a stream has no live feed (the server refuses its name there).
    if (streamFilter !== '' && !streams.some((s) => s.name === streamFilter)) return;
    connection = new LiveConnection(['aggregate'], { stream: streamFilter || undefined });
    connection.on('aggregate', (aggregate) => {
      if (aggregate.window !== '1m') return;
      const id = `${aggregate.stream}/${aggregate.key}`;
      const averages = Object.fromEntries(Object.entries(aggregate.metrics).map(([metric, stats]) => [metric, stats.avg]));
      const existing = devices.get(id);
      if (existing && existing.lastSeen > aggregate.end) return;
      devices.set(id, {
        stream: aggregate.stream,
        key: aggregate.key,
        site: aggregate.site,
        lastSeen: aggregate.end,
        lastAvg: averages,
        openAlerts: existing?.openAlerts ?? 0,
        live: existing?.live ? { ...existing.live, avg1m: averages, lastTime: Math.max(existing.live.lastTime, aggregate.end) } : null,
      });
      if (!existing) fillSites();
      scheduleRender();
    });
  };
  cleanups.push(() => connection?.close());

  // Open-alert counts follow alert events.
  cleanups.push(
    context.openAlerts.subscribe(() => {
      const counts = new Map<string, number>();
      for (const alert of context.openAlerts.list()) counts.set(`${alert.stream}/${alert.key}`, (counts.get(`${alert.stream}/${alert.key}`) ?? 0) + 1);
      for (const [id, device] of devices) device.openAlerts = counts.get(id) ?? 0;
      scheduleRender();
    }),
  );

  streamSelect.addEventListener('change', () => {
    streamFilter = streamSelect.value;
    persist();
    load().catch((error: unknown) => replaceChildren(problems, errorBox(error, 'devices')));
  });
  siteSelect.addEventListener('change', () => {
    siteFilter = siteSelect.value;
    persist();
    render();
  });
  searchInput.addEventListener('input', () => {
    search = searchInput.value;
    persist();
    render();
  });

  context
    .streams()
    .then((list) => {
      streams = list;
      for (const s of list) streamSelect.appendChild(h('option', { value: s.name, text: s.name }));
      streamSelect.value = streamFilter;
      return load();
    })
    .catch((error: unknown) => {
      if (!destroyed) replaceChildren(problems, errorBox(error, 'devices'));
    });

  return {
    element,
    destroy() {
      destroyed = true;
      for (const cleanup of cleanups) cleanup();
    },
  };
};
