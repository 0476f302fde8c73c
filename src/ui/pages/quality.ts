/** Data quality: gaps, late, invalid, duplicate (and the other ops kinds) per site and per device. */
import { deviceLink } from '../alerts-view.js';
import { api } from '../api.js';
import type { OpsKind, QualityRow } from '../api-types.js';
import { newestEventTime, type PageContext, type PageFactory } from '../context.js';
import { field, h, replaceChildren, select } from '../dom.js';
import { formatCount, formatTime } from '../format.js';
import { errorBox } from '../notify.js';
import { emptyRow, pageHeader, panel } from '../widgets.js';

/** Always shown, in this order; other kinds appear when they have counts. */
const MAIN_KINDS: readonly OpsKind[] = ['gap', 'late', 'too_late', 'invalid', 'duplicate'];
const OTHER_KINDS: readonly OpsKind[] = ['out_of_order', 'clock_skew', 'evicted'];
const KIND_LABEL: Record<OpsKind, string> = {
  gap: 'gaps',
  late: 'late',
  too_late: 'too late',
  invalid: 'invalid',
  duplicate: 'duplicates',
  out_of_order: 'out of order',
  clock_skew: 'clock skew',
  evicted: 'evicted',
};
const RANGES: ReadonlyArray<readonly [string, string, number | undefined]> = [
  ['1h', 'last hour', 3_600_000],
  ['24h', 'last 24 h', 86_400_000],
  ['7d', 'last 7 days', 7 * 86_400_000],
  ['all', 'all time', undefined],
];
const REFRESH_MS = 10_000;
const MAX_ROWS = 300;

export const qualityPage: PageFactory = (context: PageContext) => {
  let destroyed = false;
  let stream = context.query.get('stream') ?? '';
  let rangeName = context.query.get('range') ?? '24h';
  if (!RANGES.some(([r]) => r === rangeName)) rangeName = '24h';
  const problems = h('div', { class: 'problems' });
  const updated = h('span', { class: 'muted small', testid: 'quality-updated' });
  const totals = h('div', { class: 'bars', testid: 'quality-totals' });
  const bySiteHost = h('div', { class: 'table-wrap' });
  const byDeviceHost = h('div', { class: 'table-wrap' });
  const streamSelect = h('select', { testid: 'filter-stream' }, h('option', { value: '', text: 'all streams' }));

  const persist = (): void => {
    const query = new URLSearchParams();
    if (stream) query.set('stream', stream);
    if (rangeName !== '24h') query.set('range', rangeName);
    context.setQuery(query);
  };

  const table = (testid: string, rows: QualityRow[], kinds: readonly OpsKind[], groupLabel: string, link: boolean): HTMLTableElement => {
    const sorted = [...rows].sort((a, b) => b.total - a.total);
    return h(
      'table',
      { class: 'table numeric', testid },
      h('thead', {}, h('tr', {}, h('th', { text: groupLabel }), h('th', { text: 'Stream' }), ...kinds.map((k) => h('th', { text: KIND_LABEL[k] })), h('th', { text: 'total' }))),
      h(
        'tbody',
        {},
        sorted.length === 0
          ? emptyRow(kinds.length + 3, 'No data-quality events in this range.')
          : sorted.slice(0, MAX_ROWS).map((row) =>
              h(
                'tr',
                { testid: 'quality-row', dataset: { group: row.group ?? '', stream: row.stream } },
                h('td', { dataset: { label: groupLabel } }, row.group === null ? h('span', { class: 'muted', text: '(none)' }) : link ? deviceLink(row.group) : row.group),
                h('td', { dataset: { label: 'Stream' }, text: row.stream }),
                ...kinds.map((k) => {
                  const n = row.counts[k] ?? 0;
                  return h('td', { class: n ? `has-count kind-${k}` : 'zero', dataset: { label: KIND_LABEL[k], kind: k }, text: formatCount(n) });
                }),
                h('td', { class: 'total', dataset: { label: 'total' }, text: formatCount(row.total) }),
              ),
            ),
      ),
    );
  };

  const load = async (): Promise<void> => {
    const range = RANGES.find(([r]) => r === rangeName)?.[2];
    // Ranges count back from the newest event time (the store keeps event time), so replayed history shows too.
    const to = newestEventTime(context.status()) + 60_000;
    const base = { ...(stream ? { stream } : {}), ...(range !== undefined ? { from: to - range, to } : {}) };
    const [bySite, byDevice] = await Promise.all([api.quality({ ...base, by: 'site' }), api.quality({ ...base, by: 'key' })]);
    if (destroyed) return;
    const sums = new Map<OpsKind, number>();
    for (const row of byDevice) for (const [kind, n] of Object.entries(row.counts)) sums.set(kind as OpsKind, (sums.get(kind as OpsKind) ?? 0) + (n ?? 0));
    const kinds = [...MAIN_KINDS, ...OTHER_KINDS.filter((k) => (sums.get(k) ?? 0) > 0)];
    const largest = Math.max(1, ...sums.values());
    replaceChildren(
      totals,
      kinds.map((kind) => {
        const n = sums.get(kind) ?? 0;
        return h(
          'div',
          { class: 'bar-row', testid: `quality-total-${kind}`, dataset: { count: String(n) } },
          h('span', { class: 'bar-label', text: KIND_LABEL[kind] }),
          h('span', { class: 'bar-track' }, h('span', { class: `bar kind-${kind}`, attrs: { style: `width: ${((n / largest) * 100).toFixed(1)}%` } })),
          h('span', { class: 'bar-value', text: formatCount(n) }),
        );
      }),
    );
    replaceChildren(bySiteHost, table('quality-by-site', bySite, kinds, 'Site', false));
    replaceChildren(byDeviceHost, table('quality-by-device', byDevice, kinds, 'Device', true));
    updated.textContent = `updated ${formatTime(Date.now())}`;
    replaceChildren(problems);
  };
  const refresh = (): void => {
    load().catch((error: unknown) => {
      if (!destroyed) replaceChildren(problems, errorBox(error, 'data quality'));
    });
  };

  streamSelect.addEventListener('change', () => {
    stream = streamSelect.value;
    persist();
    refresh();
  });
  context
    .streams()
    .then((streams) => {
      for (const s of streams) streamSelect.appendChild(h('option', { value: s.name, text: s.name }));
      streamSelect.value = stream;
    })
    .catch(() => undefined);

  const element = h(
    'div',
    {},
    pageHeader('Data quality', updated),
    problems,
    h(
      'div',
      { class: 'grid-2' },
      panel(
        'Filter',
        {},
        h(
          'div',
          { class: 'controls' },
          field('Stream', streamSelect),
          field(
            'Range',
            select('range', RANGES.map(([value, label]) => [value, label] as const), rangeName, (value) => {
              rangeName = value;
              persist();
              refresh();
            }),
          ),
        ),
        h('p', { class: 'muted small', text: 'Gaps: a device missed its expected interval. Late: arrived behind the watermark but within the allowed lateness (windows amended). Too late: beyond it (kept on the ops record, not aggregated). Invalid and duplicate readings are rejected with a reason.' }),
      ),
      panel('Totals by kind', {}, totals),
    ),
    panel('By site', { testid: 'quality-site-panel' }, bySiteHost),
    panel('By device', { testid: 'quality-device-panel' }, byDeviceHost),
  );

  refresh();
  const timer = window.setInterval(refresh, REFRESH_MS);
  return {
    element,
    destroy() {
      destroyed = true;
      window.clearInterval(timer);
    },
  };
};
