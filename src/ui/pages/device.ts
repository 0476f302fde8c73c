/**
 * One device: a chart per metric at a selectable resolution and range, with its alerts drawn as
 * shaded bands and listed with their explanations; live values and charts follow the device's
 * live aggregates.
 */
import { alertRow, alertTable, byOpenedDesc } from '../alerts-view.js';
import { api } from '../api.js';
import type { AggregateJson, Alert, DeviceDetail, PlatformStatus, Resolution, SeriesPoint, SeriesResult, StreamInfo } from '../api-types.js';
import { TimeChart, type ChartMarker } from '../charts.js';
import { newestEventTime, type PageContext, type PageFactory } from '../context.js';
import { field, h, replaceChildren, select, throttleFrame } from '../dom.js';
import { formatAgo, formatNumber, formatTime } from '../format.js';
import { LiveConnection } from '../live.js';
import { errorBox } from '../notify.js';
import { emptyRow, pageHeader, panel } from '../widgets.js';

const RESOLUTIONS: ReadonlyArray<readonly [Resolution, string]> = [
  ['auto', 'auto'],
  ['raw', 'raw readings'],
  ['1m', '1 minute'],
  ['5m', '5 minutes'],
  ['15m', '15 minutes'],
];

const RANGES: ReadonlyArray<readonly [string, string, number]> = [
  ['15m', 'last 15 min', 15 * 60_000],
  ['1h', 'last hour', 3_600_000],
  ['6h', 'last 6 h', 6 * 3_600_000],
  ['24h', 'last 24 h', 86_400_000],
  ['7d', 'last 7 days', 7 * 86_400_000],
];

/** Room after the newest data, so a live point does not land on the chart's edge. */
const RANGE_MARGIN_MS = 30_000;
const SEVERITY_COLOR = { critical: '--sev-critical', warning: '--sev-warning', info: '--sev-info' } as const;

interface MetricView {
  name: string;
  unit: string | null | undefined;
  chart: TimeChart | undefined;
  host: HTMLElement;
  resolutionLabel: HTMLElement;
  points: SeriesPoint[];
  resolution: Exclude<Resolution, 'auto'> | undefined;
  /** An incremental raw fetch is in flight. */
  fetching: boolean;
}

function upsertPoint(points: SeriesPoint[], point: SeriesPoint): void {
  const last = points[points.length - 1];
  if (!last || last.time < point.time) {
    points.push(point);
    return;
  }
  let low = 0;
  let high = points.length - 1;
  while (low <= high) {
    const mid = (low + high) >> 1;
    const time = points[mid]?.time ?? 0;
    if (time === point.time) {
      points[mid] = point;
      return;
    }
    if (time < point.time) low = mid + 1;
    else high = mid - 1;
  }
  points.splice(low, 0, point);
}

export const devicePage: PageFactory = (context: PageContext) => {
  const id = context.params.id ?? '';
  const cleanups: Array<() => void> = [];
  let destroyed = false;
  let resolution = (context.query.get('resolution') ?? 'auto') as Resolution;
  if (!RESOLUTIONS.some(([r]) => r === resolution)) resolution = 'auto';
  let rangeName = context.query.get('range') ?? '1h';
  if (!RANGES.some(([r]) => r === rangeName)) rangeName = '1h';
  let range: [number, number] = [0, 0];
  let detail: DeviceDetail | undefined;
  /** Status fetched at start when the app has none yet (the page was opened directly). */
  let statusAtStart: PlatformStatus | undefined;
  let stream: StreamInfo | undefined;
  const alerts = new Map<string, Alert>();
  const views: MetricView[] = [];
  let loadGeneration = 0;

  const problems = h('div', { class: 'problems' });
  const subtitle = h('span', { class: 'muted', testid: 'device-subtitle' });
  const lastSeen = h('span', { testid: 'device-last-seen' });
  const liveState = h('span', { class: 'live-state small', testid: 'device-live-state' });
  const liveValues = h('div', { class: 'stats metric-stats', testid: 'live-values' });
  const chartsHost = h('div', { class: 'metric-charts', testid: 'device-charts' });
  const { table: alertsTableEl, body: alertsBody } = alertTable('device-alerts');
  const readingsBody = h('tbody');
  const readingsHead = h('thead');
  const readingsTable = h('table', { class: 'table compact mono', testid: 'recent-readings' }, readingsHead, readingsBody);

  const persist = (): void => {
    const query = new URLSearchParams();
    if (resolution !== 'auto') query.set('resolution', resolution);
    if (rangeName !== '1h') query.set('range', rangeName);
    context.setQuery(query);
  };
  const controls = h(
    'div',
    { class: 'controls' },
    field(
      'Resolution',
      select('resolution', RESOLUTIONS, resolution, (value) => {
        resolution = value as Resolution;
        persist();
        void loadSeries();
      }),
    ),
    field(
      'Range',
      select('range', RANGES.map(([value, label]) => [value, label] as const), rangeName, (value) => {
        rangeName = value;
        persist();
        void loadSeries();
      }),
    ),
  );

  const element = h(
    'div',
    { class: 'device' },
    pageHeader(id, subtitle, liveState, h('span', { class: 'muted small' }, 'newest reading ', lastSeen)),
    problems,
    liveValues,
    h('div', { class: 'toolbar' }, controls, h('p', { class: 'muted small', text: 'Shaded bands are alerts, from open to resolve. Drag across a chart to zoom, double-click to reset.' })),
    chartsHost,
    panel('Alerts of this device', { testid: 'device-alerts-panel' }, h('div', { class: 'table-wrap' }, alertsTableEl)),
    panel('Recent raw readings', {}, h('div', { class: 'table-wrap' }, readingsTable)),
  );

  const markers = (metric: string) => (): ChartMarker[] =>
    [...alerts.values()]
      .filter((a) => a.metric === undefined || a.metric === null || a.metric === metric)
      .map((a) => ({ from: a.openedAt, to: a.resolvedAt ?? undefined, color: SEVERITY_COLOR[a.severity] }));

  const rangeMs = (): number => RANGES.find(([r]) => r === rangeName)?.[2] ?? 3_600_000;

  /**
   * The range ends at the present in event time: the engine's newest event time, or the device's if
   * newer. A device the engine does not hold (history replayed from a file, a device gone for longer
   * than the state TTL) has no present: its range ends at its own newest data.
   */
  const newestTime = (): number => {
    const stored = detail?.device.lastSeen;
    if (detail !== undefined && detail.live === null && stored !== undefined && stored > 0) return stored + RANGE_MARGIN_MS;
    const lastTime = detail?.live?.lastTime ?? stored ?? 0;
    return Math.max(lastTime, newestEventTime(context.status() ?? statusAtStart)) + RANGE_MARGIN_MS;
  };

  const showAlerts = (): void => {
    const list = [...alerts.values()].sort(byOpenedDesc);
    const onChange = (updated: Alert): void => {
      alerts.set(updated.id, updated);
      context.openAlerts.apply(updated);
      showAlerts();
    };
    replaceChildren(alertsBody, list.length ? list.map((a) => alertRow(a, onChange)) : emptyRow(8, 'No alerts in this range.'));
    for (const view of views) view.chart?.redraw();
  };

  const renderLive = (): void => {
    const live = detail?.live;
    const lastTime = live?.lastTime ?? detail?.device.lastSeen;
    lastSeen.textContent = lastTime ? `${formatTime(lastTime)} (${formatAgo(lastTime)})` : '–';
    const metrics = stream?.metrics ?? Object.keys(live?.last ?? detail?.device.lastAvg ?? {}).map((name) => ({ name, unit: undefined }));
    replaceChildren(
      liveValues,
      metrics.map((metric) =>
        h(
          'div',
          { class: 'stat', dataset: { metric: metric.name } },
          h('div', { class: 'stat-label', text: metric.name }),
          h('div', { class: 'stat-value', testid: 'live-last', title: 'last value', text: formatNumber(live?.last[metric.name] ?? null, metric.unit) }),
          h('div', { class: 'stat-sub' }, '1-min avg ', h('span', { testid: 'live-avg1m', text: formatNumber(live?.avg1m[metric.name] ?? detail?.device.lastAvg[metric.name] ?? null, metric.unit) })),
        ),
      ),
    );
  };

  const drawView = (view: MetricView): void => {
    if (!view.chart) return;
    const times = view.points.map((p) => p.time);
    if (view.resolution === 'raw') view.chart.setData(times, [view.points.map((p) => p.avg ?? p.last)]);
    else view.chart.setData(times, [view.points.map((p) => p.avg), view.points.map((p) => p.max), view.points.map((p) => p.min)]);
    view.resolutionLabel.textContent = view.resolution ? `${view.resolution === 'raw' ? 'raw readings' : `${view.resolution} windows`} · ${view.points.length} points` : '';
  };
  const redrawAll = throttleFrame(() => views.forEach(drawView));

  const makeChart = (view: MetricView): void => {
    view.chart?.destroy();
    const series =
      view.resolution === 'raw'
        ? [{ label: view.name, color: '--chart-1', unit: view.unit }]
        : [
            { label: `${view.name} avg`, color: '--chart-1', unit: view.unit, width: 1.75 },
            { label: 'max', color: '--chart-1', unit: view.unit, faint: true },
            { label: 'min', color: '--chart-1', unit: view.unit, faint: true },
          ];
    view.chart = new TimeChart({
      testid: `chart-metric-${view.name}`,
      series,
      ...(view.resolution === 'raw' ? {} : { band: [1, 2] as [number, number] }),
      xRange: () => range,
      markers: markers(view.name),
      syncKey: `device-${id}`,
      height: 200,
    });
    view.chart.element.dataset.resolution = view.resolution ?? '';
    replaceChildren(view.host, view.chart.element);
  };

  async function loadSeries(): Promise<void> {
    const generation = ++loadGeneration;
    const to = newestTime();
    range = [to - rangeMs(), to];
    for (const view of views) view.resolutionLabel.textContent = 'loading…';
    const results = await Promise.allSettled(
      views.map((view) => api.series(id, { metric: view.name, from: range[0], to: range[1], resolution, ...(stream ? { stream: stream.name } : {}) })),
    );
    if (destroyed || generation !== loadGeneration) return;
    alerts.clear();
    for (const alert of detail?.openAlerts ?? []) alerts.set(alert.id, alert);
    results.forEach((result, i) => {
      const view = views[i];
      if (!view) return;
      if (result.status === 'rejected') {
        replaceChildren(view.host, errorBox(result.reason, `${view.name} series`));
        view.chart = undefined;
        return;
      }
      const series: SeriesResult = result.value;
      for (const alert of series.alerts ?? []) alerts.set(alert.id, alert);
      view.resolution = series.resolution;
      view.points = series.points;
      makeChart(view);
      drawView(view);
    });
    showAlerts();
  }

  /** Live data past the range's end moves the range along. */
  const extendRange = (time: number): void => {
    if (time > range[1]) range = [time + RANGE_MARGIN_MS - rangeMs(), time + RANGE_MARGIN_MS];
  };

  /** Raw view: fetch the readings newer than the newest point shown. */
  const fetchNewRaw = async (view: MetricView, until: number): Promise<void> => {
    const last = view.points[view.points.length - 1]?.time ?? range[0];
    if (view.fetching || until <= last) return;
    view.fetching = true;
    try {
      const series = await api.series(id, { metric: view.name, from: last + 1, to: until, resolution: 'raw', ...(stream ? { stream: stream.name } : {}) });
      if (destroyed || view.resolution !== 'raw') return;
      for (const point of series.points) if (point.time > last) view.points.push(point);
      extendRange(until);
      redrawAll();
    } catch {
      // The next aggregate retries.
    } finally {
      view.fetching = false;
    }
  };

  const onAggregate = (aggregate: AggregateJson): void => {
    if (aggregate.key !== id) return;
    if (aggregate.window === '1m' && detail) {
      const averages: Record<string, number | null> = {};
      const lasts: Record<string, number | null> = {};
      for (const [name, stats] of Object.entries(aggregate.metrics)) {
        averages[name] = stats.avg;
        lasts[name] = stats.last;
      }
      if (!detail.live || detail.live.lastTime <= aggregate.end) {
        detail.live = {
          stream: aggregate.stream,
          key: aggregate.key,
          site: aggregate.site,
          lastTime: Math.max(detail.live?.lastTime ?? 0, aggregate.end),
          last: { ...(detail.live?.last ?? {}), ...lasts },
          avg1m: averages,
          openAlerts: detail.live?.openAlerts ?? 0,
        };
        renderLive();
      }
    }
    for (const view of views) {
      if (view.resolution === aggregate.window) {
        const stats = aggregate.metrics[view.name];
        if (!stats) continue;
        upsertPoint(view.points, { time: aggregate.start, count: stats.count ?? 0, min: stats.min, max: stats.max, avg: stats.avg, last: stats.last });
        extendRange(aggregate.end);
        redrawAll();
      } else if (view.resolution === 'raw' && aggregate.window === '1m') void fetchNewRaw(view, aggregate.end);
    }
    if (aggregate.window === '1m') void loadReadings();
  };

  const loadReadings = async (): Promise<void> => {
    try {
      const readings = await api.readings(id, 10);
      if (destroyed) return;
      const names = stream?.metrics.map((m) => m.name) ?? Object.keys(readings[0]?.values ?? {});
      replaceChildren(readingsHead, h('tr', {}, h('th', { text: 'Event time' }), h('th', { text: 'Received' }), ...names.map((n) => h('th', { text: n }))));
      replaceChildren(
        readingsBody,
        readings.length
          ? [...readings].reverse().map((r) => h('tr', {}, h('td', { text: formatTime(r.time) }), h('td', { text: formatTime(r.receivedAt) }), ...names.map((n) => h('td', { text: formatNumber(r.values[n] ?? null) }))))
          : emptyRow(names.length + 2, 'No readings in the log.'),
      );
    } catch (error) {
      replaceChildren(readingsBody, h('tr', {}, h('td', {}, errorBox(error, 'readings'))));
    }
  };

  const start = async (): Promise<void> => {
    const [device, streams, status] = await Promise.all([api.device(id), context.streams(), context.status() ?? api.status()]);
    statusAtStart = status;
    if (destroyed) return;
    detail = device;
    stream = streams.find((s) => s.name === device.device.stream);
    subtitle.textContent = [device.device.stream, device.device.site ? `site ${device.device.site}` : ''].filter(Boolean).join(' · ');
    for (const alert of device.openAlerts) alerts.set(alert.id, alert);
    const metrics = stream?.metrics ?? Object.keys(device.device.lastAvg).map((name) => ({ name, unit: undefined }));
    for (const metric of metrics) {
      const host = h('div', { class: 'chart-host' });
      const resolutionLabel = h('span', { class: 'muted small', testid: 'chart-resolution' });
      views.push({ name: metric.name, unit: metric.unit, chart: undefined, host, resolutionLabel, points: [], resolution: undefined, fetching: false });
      chartsHost.appendChild(panel(metric.unit ? `${metric.name} (${metric.unit})` : metric.name, { testid: `metric-panel-${metric.name}`, actions: [resolutionLabel] }, host));
    }
    renderLive();
    if (stream === undefined) {
      // A stream this platform does not run (a file replayed with a detected layout): stored
      // history only; the live feed would refuse the stream name and reconnect for ever.
      liveState.dataset.state = 'history';
      liveState.textContent = 'stored history';
      liveState.title = `stream ${device.device.stream} is in the store but not in this platform's config: no live data`;
    } else {
      const connection = new LiveConnection(['aggregate', 'alert'], { key: id, stream: device.device.stream });
      cleanups.push(() => connection.close());
      connection.onState((state) => {
        liveState.dataset.state = state;
        liveState.textContent = state === 'open' ? 'live' : state;
      });
      connection.on('aggregate', onAggregate);
      connection.on('alert', ({ alert }) => {
        if (alert.key !== id) return;
        alerts.set(alert.id, alert);
        showAlerts();
      });
    }
    await Promise.all([loadSeries(), loadReadings()]);
  };
  start().catch((error: unknown) => {
    if (destroyed) return;
    replaceChildren(problems, errorBox(error, `device ${id}`), h('p', {}, h('a', { href: '#/devices', text: '← All devices' })));
  });

  // Relative times ("12 s ago") drift; refresh them.
  const ticker = window.setInterval(renderLive, 5000);
  cleanups.push(() => window.clearInterval(ticker));

  return {
    element,
    destroy() {
      destroyed = true;
      for (const cleanup of cleanups) cleanup();
      for (const view of views) view.chart?.destroy();
    },
  };
};
