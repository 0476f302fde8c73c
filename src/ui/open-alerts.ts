/** The set of alerts that are not resolved, loaded once and kept current from live `alert` events. */
import { api } from './api.js';
import type { Alert } from './api-types.js';
import type { LiveConnection } from './live.js';

export class OpenAlerts {
  readonly byId = new Map<string, Alert>();
  loaded = false;
  private loading = false;
  error: unknown = undefined;
  private readonly listeners = new Set<() => void>();
  /** Ids changed by live events while a load was in flight: the live state is newer. */
  private readonly touchedDuringLoad = new Set<string>();

  constructor(live: LiveConnection) {
    live.on('alert', (event) => this.apply(event.alert));
  }

  /** Loads (or, after a reconnect, reloads) every alert that is not resolved. */
  async load(): Promise<void> {
    this.loading = true;
    this.touchedDuringLoad.clear();
    try {
      const alerts = await api.alerts({ status: ['open', 'acknowledged'], limit: 5000 });
      const touched = [...this.touchedDuringLoad].map((id) => [id, this.byId.get(id)] as const);
      this.byId.clear();
      for (const alert of alerts) if (!this.touchedDuringLoad.has(alert.id)) this.byId.set(alert.id, alert);
      for (const [id, alert] of touched) if (alert) this.byId.set(id, alert);
      this.error = undefined;
    } catch (error) {
      this.error = error;
    }
    this.loading = false;
    this.loaded = true;
    this.touchedDuringLoad.clear();
    this.changed();
  }

  apply(alert: Alert): void {
    if (this.loading) this.touchedDuringLoad.add(alert.id);
    if (alert.status === 'resolved') this.byId.delete(alert.id);
    else this.byId.set(alert.id, alert);
    this.changed();
  }

  list(): Alert[] {
    return [...this.byId.values()];
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }
}
