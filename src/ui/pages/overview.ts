/**
 * Overview: fleet load now and over 24 h (sum of every meter's power metric), readings per
 * second, open alerts by severity, silent devices and the newest alerts, all kept live.
 */
import { alertTypeLabel, byOpenedDesc, deviceLink, severityBadge, SEVERITY_ORDER, statusBadge } from '../alerts-view.js';
import { api } from '../api.js';
import type { AggregateJson, Alert, PlatformStatus, StreamInfo } from '../api-types.js';
import { TimeChart } from '../charts.js';
import { newestEventTime, powerMetric, type PageContext, type PageFactory } from '../context.js';
import { h, replaceChildren, throttleFrame } from '../dom.js';
import { formatAgo, formatCount, formatNumber, formatTime } from '../format.js';
import { LiveConnection } from '../live.js';
import { errorBox } from '../notify.js';
import { pageHeader, panel, statCard } from '../widgets.js';

const DAY_MS = 86_400_000;
const NEWEST_ALERTS = 10;
/** A device whose newest 1-minute window is older than this (behind the fleet's newest) no longer counts in "load now". */
const STALE_MS = 5 * 60_000;
/**
 * Fleet load per window: the stored history (the API's fleet series, one request per power
 * stream) and, from then on, live aggregates per device.
 */
class FleetLoad {
  /** window start → stored fleet sum (kW) and the devices it covers */
  readonly history = new Map<number, { sum: number; devices: number }>();
  /** window start → device → average kW, from live aggregates */
  readonly buckets = new Map<number, Map<string, number>>();
  /** device → newest 1m window start and its average */
  readonly latest = new Map<string, { start: number; avg: number }>();

  constructor(readonly windowName: '1m' | '5m') {}

  addHistory(start: number, sum: number | null, devices: number): void {
    if (sum === null || !Number.isFinite(sum)) return;
    // Streams add up: each power stream's fleet series covers its own devices.
    const held = this.history.get(start);
    this.history.set(start, { sum: (held?.sum ?? 0) + sum, devices: (held?.devices ?? 0) + devices });
  }

  addBucket(start: number, device: string, avg: number | null): void {
    if (avg === null || !Number.isFinite(avg)) return;
    let bucket = this.buckets.get(start);
    if (!bucket) {
      bucket = new Map();
      this.buckets.set(start, bucket);
    }
    bucket.set(device, avg);
  }

  addLatest(start: number, device: string, avg: number | null): void {
    if (avg === null || !Number.isFinite(avg)) return;
    const previous = this.latest.get(device);
    if (!previous || previous.start <= start) this.latest.set(device, { start, avg });
  }

  /** Drops windows older than `from`. */
  trim(from: number): void {
    for (const start of this.buckets.keys()) if (start < from) this.buckets.delete(start);
    for (const start of this.history.keys()) if (start < from) this.history.delete(start);
  }

  series(): { times: number[]; values: number[] } {
    const times = [...new Set([...this.history.keys(), ...this.buckets.keys()])].sort((a, b) => a - b);
    const values = times.map((t) => {
      // A window closing while the history loaded is partly in each source: the one that covers
      // more devices is the more complete (live wins a tie, it carries later amendments).
      const stored = this.history.get(t);
      const live = this.buckets.get(t);
      if (stored && (!live || stored.devices > live.size)) return stored.sum;
      let sum = 0;
      for (const v of live?.values() ?? []) sum += v;
      return sum;
    });
    return { times, values };
  }

  now(): { kw: number; devices: number } {
    let newest = -Infinity;
    for (const { start } of this.latest.values()) newest = Math.max(newest, start);
    let kw = 0;
    let devices = 0;
    for (const { start, avg } of this.latest.values()) {
      if (start < newest - STALE_MS) continue;
      kw += avg;
      devices++;
    }
    return { kw, devices };
  }
}

export const overviewPage: PageFactory = (context: PageContext) => {
  const cleanups: Array<() => void> = [];
  const loadCard = statCard('Fleet load now', 'fleet-load-now', 'accent-1');
  const rateCard = statCard('Readings / s', 'readings-rate', 'accent-2');
  const alertsCard = statCard('Open alerts', 'open-alerts-total', 'accent-warn');
  const silentCard = statCard('Devices silent', 'devices-silent', 'accent-crit');
  const devicesCard = statCard('Devices', 'devices-total');
  const severityChips = h('div', { class: 'chips', testid: 'open-alerts-by-severity' });
  alertsCard.element.appendChild(severityChips);

  const fleetChart = new TimeChart({
    testid: 'chart-fleet-load',
    series: [{ label: 'fleet load', color: '--chart-1', unit: 'kW', fill: true, width: 2 }],
    zeroBased: true,
    height: 260,
    emptyText: 'Loading the fleet’s history…',
  });
  const rateChart = new TimeChart({
    testid: 'chart-readings-rate',
    series: [
      { label: 'accepted/s', color: '--chart-2', fill: true },
      { label: 'processed/s', color: '--chart-3', dash: [4, 3] },
    ],
    zeroBased: true,
    height: 200,
    emptyText: 'Collecting status events…',
  });
  cleanups.push(() => fleetChart.destroy(), () => rateChart.destroy());
  const fleetNote = h('span', { class: 'muted small', testid: 'fleet-note' });
  const newestList = h('ul', { class: 'alert-list', testid: 'newest-alerts' }, h('li', { class: 'muted', text: 'Loading…' }));
  const silentList = h('ul', { class: 'silent-list', testid: 'silent-list' });
  const problems = h('div', { class: 'problems' });

  const element = h(
    'div',
    { class: 'overview' },
    pageHeader('Overview', fleetNote),
    problems,
    h('div', { class: 'stats' }, loadCard.element, rateCard.element, alertsCard.element, silentCard.element, devicesCard.element),
    h(
      'div',
      { class: 'grid-2' },
      panel('Fleet load, last 24 h', { class: 'span-2-wide' }, fleetChart.element),
      panel('Readings per second', {}, rateChart.element),
    ),
    h(
      'div',
      { class: 'grid-2' },
      panel('Newest alerts', { class: 'span-2-wide', actions: [h('a', { href: '#/alerts', text: 'All alerts →', class: 'small' })] }, newestList),
      panel('Silent devices', {}, silentList),
    ),
  );

  // Readings per second, from the app-wide status history.
  const showStatus = (status: PlatformStatus | undefined): void => {
    if (status) rateCard.set(`${formatNumber(status.ingestRate)}`, `processed ${formatNumber(status.processRate)}/s · ${formatCount(status.totals.accepted)} accepted in total`);
    const { times, columns } = context.history;
    rateChart.setData(times, [columns[0] ?? [], columns[1] ?? []]);
  };
  showStatus(context.status());
  cleanups.push(context.live.on('status', showStatus));

  // Open alerts by severity and silent devices, from the shared open-alert set.
  const showOpenAlerts = (): void => {
    const open = context.openAlerts.list();
    if (!context.openAlerts.loaded) return;
    const unacknowledged = open.filter((a) => a.status === 'open').length;
    alertsCard.set(formatCount(open.length), `${formatCount(unacknowledged)} not acknowledged`);
    replaceChildren(
      severityChips,
      ...SEVERITY_ORDER.map((severity) =>
        h('a', { class: `chip sev-${severity}`, href: `#/alerts?severity=${severity}`, testid: `open-alerts-${severity}` }, `${severity} `, h('strong', { text: String(open.filter((a) => a.severity === severity).length) })),
      ),
    );
    const silent = new Map<string, Alert>();
    for (const alert of open) if (alert.type === 'silence' && !silent.has(alert.key)) silent.set(alert.key, alert);
    silentCard.set(formatCount(silent.size), silent.size ? 'with an open silence alert' : 'every device is reporting');
    const now = newestEventTime(context.status());
    replaceChildren(
      silentList,
      silent.size === 0
        ? h('li', { class: 'muted', text: 'None — every device reports on time.' })
        : [...silent.values()]
            .sort((a, b) => a.openedAt - b.openedAt)
            .slice(0, 50)
            .map((alert) => h('li', { testid: 'silent-device' }, deviceLink(alert.key), h('span', { class: 'muted small', text: ` silent since ${formatTime(alert.openedAt)} (${formatAgo(alert.openedAt, now)})` }))),
    );
    if (context.openAlerts.error) replaceChildren(problems, errorBox(context.openAlerts.error, 'open alerts'));
  };
  showOpenAlerts();
  cleanups.push(context.openAlerts.subscribe(showOpenAlerts));

  // Newest alerts (any status), live.
  let newest: Alert[] = [];
  const showNewest = (): void => {
    replaceChildren(
      newestList,
      newest.length === 0
        ? h('li', { class: 'muted', text: 'No alerts yet.' })
        : newest.map((alert) =>
            h(
              'li',
              { class: `alert-item status-${alert.status}`, testid: 'newest-alert', dataset: { alertId: alert.id } },
              h('span', { class: 'alert-time', text: formatTime(alert.openedAt) }),
              severityBadge(alert.severity),
              h('span', { class: 'alert-what' }, deviceLink(alert.key), ' ', h('span', { class: 'alert-type', text: alertTypeLabel(alert) })),
              statusBadge(alert),
              h('span', { class: 'alert-explain muted', text: alert.explain }),
            ),
          ),
    );
  };
  api
    .alerts({ limit: NEWEST_ALERTS })
    .then((alerts) => {
      const known = new Set(newest.map((a) => a.id));
      newest = [...newest, ...alerts.filter((a) => !known.has(a.id))].sort(byOpenedDesc).slice(0, NEWEST_ALERTS);
      showNewest();
    })
    .catch((error: unknown) => replaceChildren(newestList, h('li', {}, errorBox(error, 'alerts'))));
  cleanups.push(
    context.live.on('alert', ({ alert }) => {
      newest = [alert, ...newest.filter((a) => a.id !== alert.id)].sort(byOpenedDesc).slice(0, NEWEST_ALERTS);
      showNewest();
    }),
  );

  // Fleet load: the stored history in one request per power stream, then live 1m (and 5m) aggregates.
  let destroyed = false;
  const startFleet = async (): Promise<void> => {
    const streams = await context.streams();
    const powerStreams = streams.map((s): [StreamInfo, string | undefined] => [s, powerMetric(s)]).filter((p): p is [StreamInfo, string] => p[1] !== undefined);
    const allDevices = await api.devices();
    if (destroyed) return;
    const perStream = new Map<string, number>();
    for (const d of allDevices) perStream.set(d.stream, (perStream.get(d.stream) ?? 0) + 1);
    devicesCard.set(formatCount(allDevices.length), [...perStream].map(([s, n]) => `${formatCount(n)} ${s}`).join(' · ') || 'none reporting yet');
    if (powerStreams.length === 0) {
      loadCard.set('–', 'no stream has a metric in kW');
      fleetChart.setEmptyText('No stream has a metric in kW.');
      fleetNote.textContent = '';
      return;
    }
    const status = context.status() ?? (await api.status());
    const anchor = newestEventTime(status);
    // Recently started: minute detail; otherwise 5-minute windows keep 24 h of a large fleet light.
    const fleet = new FleetLoad(anchor - status.startedAt < 3 * 3_600_000 ? '1m' : '5m');
    let meters = 0;
    for (const [stream, metric] of powerStreams) {
      for (const device of allDevices) {
        if (device.stream !== stream.name) continue;
        meters++;
        const id = `${device.stream}/${device.key}`;
        if (device.live) fleet.addLatest(device.live.lastTime - 60_000, id, device.live.avg1m[metric] ?? null);
        else fleet.addLatest(device.lastSeen - 60_000, id, device.lastAvg[metric] ?? null);
      }
    }
    // Live windows alone would draw a partial day: the chart waits for the stored history.
    let historyLoaded = false;
    const redraw = throttleFrame(() => {
      if (destroyed) return;
      const { kw, devices } = fleet.now();
      loadCard.set(formatNumber(kw, 'kW'), `${formatCount(devices)} meters, newest 1-minute averages`);
      if (!historyLoaded) return;
      const { times, values } = fleet.series();
      fleetChart.setData(times, [values]);
    });
    redraw();

    // Live first, so no window closes unseen between the history request and the connection.
    for (const [stream, metric] of powerStreams) {
      const connection = new LiveConnection(['aggregate'], { stream: stream.name });
      cleanups.push(() => connection.close());
      connection.on('aggregate', (aggregate: AggregateJson) => {
        const avg = aggregate.metrics[metric]?.avg ?? null;
        const id = `${aggregate.stream}/${aggregate.key}`;
        if (aggregate.window === '1m') fleet.addLatest(aggregate.start, id, avg);
        if (aggregate.window === fleet.windowName) {
          fleet.addBucket(aggregate.start, id, avg);
          fleet.trim(aggregate.end - DAY_MS);
          redraw();
        } else if (aggregate.window === '1m') redraw();
      });
    }

    fleetNote.textContent = `loading the fleet’s history (${formatCount(meters)} meters)…`;
    let note = `${fleet.windowName} windows, ${formatCount(meters)} meters`;
    try {
      const histories = await Promise.all(
        powerStreams.map(([stream, metric]) => api.fleetSeries({ stream: stream.name, metric, from: anchor - DAY_MS, to: anchor, resolution: fleet.windowName })),
      );
      for (const history of histories) for (const point of history.points) fleet.addHistory(point.time, point.sum, point.devices);
    } catch (error) {
      if (destroyed) return;
      replaceChildren(problems, errorBox(error, 'fleet load history'));
      note = `${formatCount(meters)} meters: history unavailable, live windows only`;
    }
    if (destroyed) return;
    historyLoaded = true;
    fleetChart.setEmptyText('Waiting for the first closed 1-minute windows…');
    fleetNote.textContent = note;
    redraw();
  };
  startFleet().catch((error: unknown) => {
    if (!destroyed) replaceChildren(problems, errorBox(error, 'fleet load'));
  });

  return {
    element,
    destroy() {
      destroyed = true;
      for (const cleanup of cleanups) cleanup();
    },
  };
};
