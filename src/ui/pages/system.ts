/**
 * System: ingest and processing rates over time, log lag and watermarks per partition, state
 * keys, store writes, last checkpoint and the crash-recovery report; one update per status event.
 */
import type { PlatformStatus } from '../api-types.js';
import { TimeChart } from '../charts.js';
import type { PageContext, PageFactory } from '../context.js';
import { h, replaceChildren } from '../dom.js';
import { formatAgo, formatBytes, formatCount, formatDuration, formatNumber, formatTime } from '../format.js';
import { emptyRow, keyValues, pageHeader, panel } from '../widgets.js';

function countList(testid: string, counts: Record<string, number>): HTMLElement {
  const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  return entries.length ? keyValues(testid, entries.map(([k, n]) => [k, formatCount(n)] as const)) : h('p', { class: 'muted small', testid, text: 'none' });
}

export const systemPage: PageFactory = (context: PageContext) => {
  const throughput = new TimeChart({
    testid: 'chart-throughput',
    series: [
      { label: 'accepted/s', color: '--chart-2', fill: true },
      { label: 'processed/s', color: '--chart-3', dash: [4, 3] },
    ],
    zeroBased: true,
    height: 220,
    emptyText: 'Collecting status events (one every 2 s)…',
  });
  const lagChart = new TimeChart({
    testid: 'chart-log-lag',
    series: [{ label: 'log lag', color: '--chart-4', unit: 'records', fill: true }],
    zeroBased: true,
    height: 160,
    emptyText: 'Collecting status events…',
  });
  const delayChart = new TimeChart({
    testid: 'chart-watermark-delay',
    series: [{ label: 'watermark delay', color: '--chart-5', unit: 's', fill: true }],
    zeroBased: true,
    height: 160,
    emptyText: 'Collecting status events…',
  });
  const summary = h('div', { class: 'stats-host' });
  const logTableBody = h('tbody');
  const engineTableBody = h('tbody');
  const totalsHost = h('div', { class: 'grid-3' });
  const recovery = h('div', { testid: 'system-recovery' });
  const waiting = h('p', { class: 'muted', text: 'Waiting for the first status…' });

  const element = h(
    'div',
    {},
    pageHeader('System', waiting),
    summary,
    h('div', { class: 'grid-2' }, panel('Throughput (readings per second)', { class: 'span-2-wide' }, throughput.element), panel('Recovery at start', {}, recovery)),
    h('div', { class: 'grid-2 even' }, panel('Log consumer lag', {}, lagChart.element), panel('Watermark delay (wall clock − watermark)', {}, delayChart.element)),
    panel(
      'Log partitions',
      {},
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'table numeric', testid: 'log-partitions' },
          h('thead', {}, h('tr', {}, ...['Partition', 'Start offset', 'End offset', 'Consumed', 'Lag'].map((t) => h('th', { text: t })))),
          logTableBody,
        ),
      ),
    ),
    panel(
      'Engine partitions',
      {},
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'table numeric', testid: 'engine-partitions' },
          h('thead', {}, h('tr', {}, ...['Stream', 'Partition', 'Watermark', 'Newest event', 'Delay', 'State keys'].map((t) => h('th', { text: t })))),
          engineTableBody,
        ),
      ),
    ),
    totalsHost,
  );

  const stat = (label: string, testid: string, value: string, detail = ''): HTMLElement =>
    h('div', { class: 'stat' }, h('div', { class: 'stat-label', text: label }), h('div', { class: 'stat-value', testid, text: value }), h('div', { class: 'stat-sub', text: detail }));

  const show = (status: PlatformStatus | undefined): void => {
    const { times, columns } = context.history;
    throughput.setData(times, [columns[0] ?? [], columns[1] ?? []]);
    lagChart.setData(times, [columns[2] ?? []]);
    delayChart.setData(times, [(columns[3] ?? []).map((ms) => (ms === null || !Number.isFinite(ms) ? null : ms / 1000))]);
    if (!status) return;
    waiting.textContent = `up ${formatDuration(status.now - status.startedAt)} · updated ${formatTime(status.now)}`;
    const lag = status.log.partitions.reduce((sum, p) => sum + p.lag, 0);
    replaceChildren(
      summary,
      h(
        'div',
        { class: 'stats' },
        stat('Ingest', 'system-ingest-rate', `${formatNumber(status.ingestRate)}/s`, `processed ${formatNumber(status.processRate)}/s`),
        stat('Log', 'system-log-size', formatBytes(status.log.bytes), `${formatCount(status.log.segments)} segments · lag ${formatCount(lag)}`),
        stat('State keys', 'system-state-keys', formatCount(status.engine.stateKeys), `${status.engine.partitions.length} engine partitions`),
        stat('Store pending writes', 'system-pending-writes', formatCount(status.store.pendingWrites), `${status.store.kind} · ${formatCount(status.store.writes)} writes${status.store.lastWriteMs !== null ? ` · last took ${formatNumber(status.store.lastWriteMs)} ms` : ''}`),
        stat('Last checkpoint', 'system-last-checkpoint', status.lastCheckpointAt ? formatAgo(status.lastCheckpointAt, status.now) : 'none yet', status.lastCheckpointAt ? formatTime(status.lastCheckpointAt) : ''),
        stat('Live clients', 'system-live-clients', formatCount(status.liveClients), status.simulator.running ? `simulator: ${status.simulator.meters} meters, ${status.simulator.machines} machines` : 'simulator off'),
      ),
    );
    replaceChildren(
      recovery,
      status.recovery
        ? h('p', { class: 'recovery-report warn', text: status.recovery })
        : h('p', { class: 'muted', text: 'The log was clean at start: nothing to recover.' }),
    );
    replaceChildren(
      logTableBody,
      status.log.partitions.length
        ? status.log.partitions.map((p) =>
            h(
              'tr',
              { testid: 'log-partition', dataset: { partition: String(p.partition) } },
              ...[p.partition, p.startOffset, p.endOffset, p.consumedOffset].map((v) => h('td', { text: formatCount(v) })),
              h('td', { class: p.lag > 0 ? 'has-count' : 'zero', text: formatCount(p.lag) }),
            ),
          )
        : emptyRow(5, 'No log partitions.'),
    );
    replaceChildren(
      engineTableBody,
      status.engine.partitions.length
        ? status.engine.partitions.map((p) =>
            h(
              'tr',
              { testid: 'engine-partition' },
              h('td', { text: p.stream }),
              h('td', { text: String(p.partition) }),
              h('td', { text: formatTime(p.watermark, status.now) }),
              h('td', { text: formatTime(p.maxEventTime, status.now) }),
              h('td', { text: formatDuration(p.watermarkDelayMs) }),
              h('td', { text: formatCount(p.keys) }),
            ),
          )
        : emptyRow(6, 'No engine partitions.'),
    );
    const t = status.totals;
    replaceChildren(
      totalsHost,
      panel(
        'Readings',
        {},
        keyValues('system-totals', [
          ['received', formatCount(t.received)],
          ['accepted', formatCount(t.accepted)],
          ['rejected', formatCount(t.rejected)],
          ['processed', formatCount(t.processed)],
          ['late', formatCount(t.late)],
          ['too late', formatCount(t.tooLate)],
          ['aggregates', formatCount(t.aggregates)],
          ['alert events', formatCount(t.alertEvents)],
        ]),
      ),
      panel('Rejected by reason', {}, countList('system-rejected', t.rejectedByReason)),
      panel('Findings by type', {}, countList('system-findings', t.findingsByType)),
      panel('Ops events by kind', {}, countList('system-ops', t.opsByKind)),
    );
  };

  show(context.status());
  const off = context.live.on('status', show);
  return {
    element,
    destroy() {
      off();
      throughput.destroy();
      lagChart.destroy();
      delayChart.destroy();
    },
  };
};
