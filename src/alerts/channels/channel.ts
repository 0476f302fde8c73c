import type { AlertEvent } from '../../model/index.js';
import type { IncidentNotice } from './incident-grouper.js';

/** The body formats a route may pick: `generic` JSON (Standard Webhooks payload shape) or Slack-compatible `{ text, blocks }`. */
export type TemplateName = 'generic' | 'slack';

/**
 * One notification: one alert transition (or one incident notice), for one channel, rendered with
 * one template. `id` is the transition id (the notice id for an incident) — the idempotency key a
 * receiver deduplicates on; it is the same on every attempt and on a manual redelivery.
 */
export interface Notification {
  readonly id: string;
  /** The transition; for an incident notice, the first event that routed it (one of its linked alerts). */
  readonly event: AlertEvent;
  /** Set for a site incident notification (`incident.opened`, `incident.updated`, `incident.resolved`). */
  readonly incident?: IncidentNotice | undefined;
  readonly template: TemplateName;
  /** The rendered body (JSON text), the same on every attempt. */
  readonly body: string;
}

/** What one attempt needs to know besides the notification. */
export interface AttemptContext {
  /** 1 for the first attempt. */
  readonly attempt: number;
}

/**
 * The outcome of one attempt:
 * - `delivered`: the receiver took it (HTTP 2xx, MQTT PUBACK/PUBCOMP).
 * - `retry`: it may work later (5xx, 408, 429, timeout, connection refused or reset, broker offline);
 *   `retryAfterMs` when the receiver said how long to wait.
 * - `failed`: it will not work by trying again (other 4xx, a redirect, a refused target).
 * - `gone`: the receiver asked never to be called again (HTTP 410): the channel is disabled.
 * `status` is the HTTP status when there was one. `reason` never holds a secret or a full webhook URL.
 */
export type DeliveryResult =
  | { readonly outcome: 'delivered'; readonly status?: number }
  | { readonly outcome: 'retry'; readonly reason: string; readonly status?: number; readonly retryAfterMs?: number }
  | { readonly outcome: 'failed'; readonly reason: string; readonly status?: number }
  | { readonly outcome: 'gone'; readonly reason: string; readonly status?: number };

/** How the delivery worker retries a channel's notifications (see `retryDelay`). */
export interface RetryPolicy {
  /** Attempts in all, the first included. */
  readonly attempts: number;
  readonly baseDelayMs: number;
  /** Longest wait between two attempts; a `Retry-After` asking for more dead-letters the notification instead. */
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { attempts: 8, baseDelayMs: 1000, maxDelayMs: 300_000 };

/**
 * A place alert notifications are sent to: a webhook endpoint, an MQTT topic, … One attempt per
 * `deliver` call; retries, ordering, dead letters and metrics belong to the delivery worker, so
 * every channel gets them the same way.
 *
 * Deliberately left out: routing (the router decides which transitions reach a channel) and
 * rendering (the worker renders the body with the route's template). A channel owns its
 * connection: created by its factory, opened by `ready()` (or lazily by the first `deliver`),
 * released by `close()`, which is idempotent. `deliver` never throws for a delivery problem: it
 * returns a `DeliveryResult` (a throw is treated as `retry`).
 *
 * @example
 * const channel = createWebhookChannel({ name: 'ops', url: 'https://hooks.example.com/gp', secrets: [secret] });
 * const result = await channel.deliver(notification, { attempt: 1 });
 * if (result.outcome === 'delivered') console.log('ok');
 */
export interface Channel {
  /** Unique among the worker's channels; used in metrics, reports and dead-letter ids. */
  readonly name: string;
  readonly kind: string;
  /** The template used when a route names none. */
  readonly defaultTemplate: TemplateName;
  /** The channel's retry policy; the worker's default when absent. */
  readonly retry?: RetryPolicy;
  /** A description safe to log (no secrets, no webhook path). */
  readonly target: string;
  ready(): Promise<void>;
  deliver(notification: Notification, context: AttemptContext): Promise<DeliveryResult>;
  close(): Promise<void>;
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' && !error.message.includes(code) ? `${error.message} (${code})` : error.message;
  }
  return String(error);
}
