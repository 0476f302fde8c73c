/** Short messages at the bottom of the screen (action results, errors). */
import { h } from './dom.js';

let host: HTMLElement | undefined;

export function notify(message: string, kind: 'info' | 'error' = 'info'): void {
  if (!host) {
    host = h('div', { class: 'toasts', testid: 'toasts', attrs: { 'aria-live': 'polite' } });
    document.body.appendChild(host);
  }
  const toast = h('div', { class: `toast toast-${kind}`, text: message, attrs: { role: kind === 'error' ? 'alert' : 'status' } });
  host.appendChild(toast);
  window.setTimeout(() => toast.remove(), kind === 'error' ? 8000 : 4000);
}

/** A message box inside a page for a failed load. */
export function errorBox(error: unknown, what: string): HTMLElement {
  const message = error instanceof Error ? error.message : String(error);
  return h('div', { class: 'error-box', testid: 'error', attrs: { role: 'alert' } }, h('strong', { text: `Could not load ${what}` }), ` — ${message}`);
}
