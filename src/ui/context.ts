/** What every page gets from the app shell: the shared live connection, the latest status, cached streams. */
import type { PlatformStatus, StreamInfo } from './api-types.js';
import type { RollingSeries } from './charts.js';
import type { LiveConnection } from './live.js';
import type { OpenAlerts } from './open-alerts.js';

export interface PageContext {
  /** App-wide connection carrying `alert` and `status` events (pages open their own for aggregates). */
  live: LiveConnection;
  /** Alerts not yet resolved, kept current from live events. */
  openAlerts: OpenAlerts;
  /** The newest status received (from `/api/status` at start, then every `status` event). */
  status(): PlatformStatus | undefined;
  /**
   * Status history since the dashboard was opened, one row per status event: ingest rate,
   * process rate, total log lag, largest watermark delay (ms), pending store writes.
   */
  history: RollingSeries;
  streams(): Promise<StreamInfo[]>;
  /** Route parameters, e.g. `id` of `#/devices/:id`. */
  params: Readonly<Record<string, string>>;
  /** The query part of the hash (`#/alerts?status=open`). */
  query: URLSearchParams;
  /** Rewrites the hash's query without re-rendering the page (filters that should survive a reload). */
  setQuery(query: URLSearchParams): void;
}

export interface Page {
  element: HTMLElement;
  destroy(): void;
}

export type PageFactory = (context: PageContext) => Page;

export const HISTORY_COLUMNS = ['ingestRate', 'processRate', 'logLag', 'watermarkDelayMs', 'pendingWrites'] as const;

export function historyRow(status: PlatformStatus): number[] {
  const lag = status.log.partitions.reduce((sum, p) => sum + p.lag, 0);
  const delays = status.engine.partitions.map((p) => p.watermarkDelayMs).filter((d): d is number => d !== null && Number.isFinite(d));
  return [status.ingestRate, status.processRate, lag, delays.length ? Math.max(...delays) : Number.NaN, status.store.pendingWrites];
}

/** The power metric of a stream: the first metric measured in kW, if any. */
export function powerMetric(stream: StreamInfo): string | undefined {
  return stream.metrics.find((m) => (m.unit ?? '').toLowerCase() === 'kw')?.name;
}

/** Newest event time the engine has seen (falls back to the wall clock). */
export function newestEventTime(status: PlatformStatus | undefined): number {
  const times = (status?.engine.partitions ?? []).map((p) => p.maxEventTime).filter((t): t is number => t !== null);
  return times.length ? Math.max(...times) : Date.now();
}
