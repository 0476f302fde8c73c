/** Small layout pieces shared by pages: panels, stat cards, key/value lists, page headers. */
import { h, type Child } from './dom.js';

export function pageHeader(title: string, ...extra: Child[]): HTMLElement {
  return h('div', { class: 'page-header' }, h('h1', { text: title }), h('div', { class: 'page-header-extra' }, ...extra));
}

export function panel(title: string, options: { testid?: string; class?: string; actions?: Child[] } = {}, ...children: Child[]): HTMLElement {
  return h(
    'section',
    { class: `panel ${options.class ?? ''}`.trim(), ...(options.testid ? { testid: options.testid } : {}) },
    h('header', { class: 'panel-header' }, h('h2', { text: title }), h('div', { class: 'panel-actions' }, ...(options.actions ?? []))),
    ...children,
  );
}

export interface StatCard {
  element: HTMLElement;
  set(value: string, sub?: string): void;
}

/** A big number with a label and a line of detail; `testid` goes on the value. */
export function statCard(label: string, testid: string, accent = ''): StatCard {
  const value = h('div', { class: 'stat-value', testid, text: '…' });
  const sub = h('div', { class: 'stat-sub' });
  const element = h('div', { class: `stat ${accent}`.trim() }, h('div', { class: 'stat-label', text: label }), value, sub);
  return {
    element,
    set(text, detail) {
      value.textContent = text;
      if (detail !== undefined) sub.textContent = detail;
    },
  };
}

/** A definition list of label → value rows. */
export function keyValues(testid: string, rows: ReadonlyArray<readonly [string, Child]>): HTMLElement {
  return h('dl', { class: 'kv', testid }, ...rows.map(([key, value]) => [h('dt', { text: key }), h('dd', {}, value)]).flat());
}

export function emptyRow(columns: number, text: string): HTMLTableRowElement {
  return h('tr', { class: 'empty-row' }, h('td', { text, attrs: { colspan: String(columns) } }));
}
