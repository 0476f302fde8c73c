import { createHash } from 'node:crypto';

/**
 * The id of an alert: `al_` and the first 16 hex digits of a SHA-1 over (stream, key, type,
 * openedAt). Derived only from event data, so a replay or a resumed partition gives every alert
 * the same id again and downstream writes stay idempotent.
 *
 * @example
 * alertId('power', 'm-1', 'spike', 1763900000000); // 'al_' + 16 hex digits, the same on every run
 */
export function alertId(stream: string, key: string, type: string, openedAt: number): string {
  // A JSON array keeps the parts apart: ('a:b', 'c') and ('a', 'b:c') must not collide.
  const identity = JSON.stringify([stream, key, type, openedAt]);
  return `al_${createHash('sha1').update(identity).digest('hex').slice(0, 16)}`;
}

/**
 * The id of one step in an alert's life: the alert id and the step's sequence number
 * (0 for the open, then 1, 2, ...).
 *
 * @example
 * transitionId('al_0123456789abcdef', 2); // 'al_0123456789abcdef:2'
 */
export function transitionId(alertIdentifier: string, seq: number): string {
  return `${alertIdentifier}:${seq}`;
}
