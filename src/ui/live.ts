/**
 * Live events from `GET /api/live` (Server-Sent Events). One `LiveConnection` per filter; the
 * browser's EventSource reconnects by itself after a dropped connection, and this class starts a
 * new one when the server refused the stream outright (EventSource gives up then).
 */
import type { LiveEventType, LiveEvents } from './api-types.js';

export type LiveState = 'connecting' | 'open' | 'reconnecting';

export interface LiveFilter {
  stream?: string | undefined;
  site?: string | undefined;
  key?: string | undefined;
}

type Handler<K extends LiveEventType> = (data: LiveEvents[K]) => void;

const RETRY_MS = 3000;

export class LiveConnection {
  private source: EventSource | undefined;
  private retryTimer: number | undefined;
  private closed = false;
  private readonly handlers = new Map<LiveEventType, Set<Handler<LiveEventType>>>();
  private readonly stateListeners = new Set<(state: LiveState) => void>();
  state: LiveState = 'connecting';
  /** Events received since the connection was made (all types). */
  received = 0;

  constructor(
    private readonly types: readonly LiveEventType[],
    private readonly filter: LiveFilter = {},
  ) {
    this.connect();
  }

  on<K extends LiveEventType>(type: K, handler: Handler<K>): () => void {
    let set = this.handlers.get(type);
    if (!set) {
      set = new Set();
      this.handlers.set(type, set);
    }
    set.add(handler as Handler<LiveEventType>);
    return () => set.delete(handler as Handler<LiveEventType>);
  }

  onState(listener: (state: LiveState) => void): () => void {
    this.stateListeners.add(listener);
    listener(this.state);
    return () => this.stateListeners.delete(listener);
  }

  close(): void {
    this.closed = true;
    window.clearTimeout(this.retryTimer);
    this.source?.close();
    this.source = undefined;
    this.handlers.clear();
    this.stateListeners.clear();
  }

  private url(): string {
    const params = new URLSearchParams({ types: this.types.join(',') });
    for (const name of ['stream', 'site', 'key'] as const) {
      const value = this.filter[name];
      if (value) params.set(name, value);
    }
    return `/api/live?${params.toString()}`;
  }

  private setState(state: LiveState): void {
    if (state === this.state) return;
    this.state = state;
    for (const listener of this.stateListeners) listener(state);
  }

  private connect(): void {
    const source = new EventSource(this.url());
    this.source = source;
    source.onopen = () => this.setState('open');
    source.onerror = () => {
      if (this.closed) return;
      this.setState('reconnecting');
      if (source.readyState === EventSource.CLOSED) {
        // The server answered with an error status: EventSource does not retry that by itself.
        this.retryTimer = window.setTimeout(() => {
          if (!this.closed) this.connect();
        }, RETRY_MS);
      }
    };
    for (const type of this.types) {
      source.addEventListener(type, (event) => {
        this.received++;
        let data: unknown;
        try {
          data = JSON.parse((event as MessageEvent<string>).data);
        } catch {
          return;
        }
        for (const handler of this.handlers.get(type) ?? []) handler(data as LiveEvents[typeof type]);
      });
    }
  }
}
