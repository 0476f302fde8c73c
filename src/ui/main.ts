/**
 * The gridpulse dashboard: a single page with hash routes, one app-wide live connection
 * (alerts and status), and one page mounted at a time.
 */
import 'uplot/dist/uPlot.min.css';
import './styles.css';
import { api } from './api.js';
import type { PlatformStatus, StreamInfo } from './api-types.js';
import { RollingSeries } from './charts.js';
import { HISTORY_COLUMNS, historyRow, type Page, type PageContext, type PageFactory } from './context.js';
import { h, replaceChildren } from './dom.js';
import { formatNumber } from './format.js';
import { LiveConnection } from './live.js';
import { OpenAlerts } from './open-alerts.js';
import { alertsPage } from './pages/alerts.js';
import { devicePage } from './pages/device.js';
import { devicesPage } from './pages/devices.js';
import { modelsPage } from './pages/models.js';
import { overviewPage } from './pages/overview.js';
import { qualityPage } from './pages/quality.js';
import { systemPage } from './pages/system.js';

interface Route {
  name: string;
  pattern: RegExp;
  keys: string[];
  factory: PageFactory;
}

const ROUTES: Route[] = [
  { name: 'overview', pattern: /^\/?$/, keys: [], factory: overviewPage },
  { name: 'devices', pattern: /^\/devices\/?$/, keys: [], factory: devicesPage },
  { name: 'device', pattern: /^\/devices\/([^/]+)$/, keys: ['id'], factory: devicePage },
  { name: 'alerts', pattern: /^\/alerts\/?$/, keys: [], factory: alertsPage },
  { name: 'quality', pattern: /^\/quality\/?$/, keys: [], factory: qualityPage },
  { name: 'models', pattern: /^\/models\/?$/, keys: [], factory: modelsPage },
  { name: 'system', pattern: /^\/system\/?$/, keys: [], factory: systemPage },
];

const NAV: Array<[route: string, label: string, href: string]> = [
  ['overview', 'Overview', '#/'],
  ['devices', 'Devices', '#/devices'],
  ['alerts', 'Alerts', '#/alerts'],
  ['quality', 'Data quality', '#/quality'],
  ['models', 'Models', '#/models'],
  ['system', 'System', '#/system'],
];

/** About 30 minutes of status events at one every 2 s. */
const HISTORY_CAPACITY = 900;

const live = new LiveConnection(['alert', 'status']);
const openAlerts = new OpenAlerts(live);
const statusHistory = new RollingSeries(HISTORY_COLUMNS.length, HISTORY_CAPACITY);
let latestStatus: PlatformStatus | undefined;
let streamsPromise: Promise<StreamInfo[]> | undefined;

function acceptStatus(status: PlatformStatus): void {
  latestStatus = status;
  statusHistory.push(status.now, historyRow(status));
  rateBadge.textContent = `${formatNumber(status.ingestRate)}/s`;
}

live.on('status', acceptStatus);

const main = h('main', { class: 'page', testid: 'page', attrs: { id: 'main' } });
const navLinks = new Map<string, HTMLAnchorElement>();
const alertBadge = h('span', { class: 'nav-count', testid: 'nav-open-alerts' });
const rateBadge = h('span', { class: 'rate', testid: 'header-rate', title: 'readings accepted per second' });
const liveDot = h('span', { class: 'live-state', testid: 'live-state', title: 'live connection' });

const nav = h(
  'nav',
  { class: 'nav', testid: 'nav' },
  ...NAV.map(([route, label, href]) => {
    const link = h('a', { href, testid: `nav-${route}`, text: label });
    if (route === 'alerts') link.appendChild(alertBadge);
    navLinks.set(route, link);
    return link;
  }),
);

document.body.replaceChildren(
  h(
    'header',
    { class: 'topbar' },
    h('a', { class: 'brand', href: '#/', attrs: { 'aria-label': 'gridpulse overview' } }, h('span', { class: 'brand-mark', text: '⚡' }), 'gridpulse'),
    nav,
    h('div', { class: 'topbar-status' }, rateBadge, liveDot),
  ),
  main,
);

let previousState = live.state;
live.onState((state) => {
  liveDot.dataset.state = state;
  liveDot.textContent = state === 'open' ? 'live' : state;
  // Events sent while the connection was down are lost: catch up by loading everything again.
  if (previousState === 'reconnecting' && state === 'open') {
    void openAlerts.load();
    render(true);
  }
  previousState = state;
});

openAlerts.subscribe(() => {
  const open = openAlerts.list().filter((a) => a.status === 'open').length;
  alertBadge.textContent = open ? String(open) : '';
});

let current: Page | undefined;

function parseHash(): { path: string; query: URLSearchParams } {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path = '/', query = ''] = raw.split('?', 2);
  return { path, query: new URLSearchParams(query) };
}

function render(keepScroll = false): void {
  const { path, query } = parseHash();
  let route: Route | undefined;
  let params: Record<string, string> = {};
  for (const candidate of ROUTES) {
    const match = candidate.pattern.exec(path);
    if (match) {
      route = candidate;
      params = Object.fromEntries(candidate.keys.map((key, i) => [key, decodeURIComponent(match[i + 1] ?? '')]));
      break;
    }
  }
  current?.destroy();
  current = undefined;
  const active = route?.name === 'device' ? 'devices' : route?.name;
  for (const [name, link] of navLinks) link.classList.toggle('active', name === active);
  main.dataset.page = route?.name ?? 'not-found';
  if (!route) {
    replaceChildren(main, h('section', { class: 'panel' }, h('h1', { text: 'Page not found' }), h('p', {}, 'Nothing at ', h('code', { text: path }), '. ', h('a', { href: '#/', text: 'Go to the overview' }))));
    return;
  }
  const context: PageContext = {
    live,
    openAlerts,
    history: statusHistory,
    status: () => latestStatus,
    streams: () => (streamsPromise ??= api.streams().catch((error: unknown) => {
      streamsPromise = undefined;
      throw error;
    })),
    params,
    query,
    setQuery: (next) => {
      const text = next.toString();
      window.history.replaceState(null, '', `#${path}${text ? `?${text}` : ''}`);
    },
  };
  current = route.factory(context);
  replaceChildren(main, current.element);
  if (!keepScroll) window.scrollTo(0, 0);
}

window.addEventListener('hashchange', () => render());

void api
  .status()
  .then(acceptStatus)
  .catch(() => undefined);
void openAlerts.load();
render();
