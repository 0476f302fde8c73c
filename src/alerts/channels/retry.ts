import type { RetryPolicy } from './channel.js';

/** The wait before the next attempt, or why there is none. */
export type RetryDecision = { readonly retry: true; readonly delayMs: number } | { readonly retry: false; readonly reason: string };

/**
 * Exponential backoff with full jitter: after failed attempt `n` (1-based) the wait is drawn
 * uniformly from [0, min(maxDelay, baseDelay·2^(n−1))). A `Retry-After` from the receiver is a
 * floor: the wait is never shorter than it asked. A `Retry-After` longer than `maxDelayMs`, or
 * no attempts left, ends the retries (the notification is then dead-lettered).
 *
 * @example
 * retryDelay({ attempts: 5, baseDelayMs: 1000, maxDelayMs: 60_000 }, 3, Math.random); // { retry: true, delayMs: in [0, 4000) }
 * retryDelay(policy, 1, Math.random, 30_000); // { retry: true, delayMs: 30_000 } — at least what Retry-After asked
 */
export function retryDelay(policy: RetryPolicy, failedAttempt: number, random: () => number, retryAfterMs?: number): RetryDecision {
  if (failedAttempt >= policy.attempts) return { retry: false, reason: `gave up after ${failedAttempt} attempt${failedAttempt === 1 ? '' : 's'}` };
  if (retryAfterMs !== undefined && retryAfterMs > policy.maxDelayMs) {
    return { retry: false, reason: `the receiver asked to wait ${Math.ceil(retryAfterMs / 1000)} s (Retry-After), longer than the retry policy's maximum delay of ${Math.ceil(policy.maxDelayMs / 1000)} s` };
  }
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(failedAttempt - 1, 52));
  const draw = Math.min(Math.max(random(), 0), 1 - Number.EPSILON);
  const jittered = Math.floor(draw * ceiling);
  return { retry: true, delayMs: Math.max(jittered, retryAfterMs ?? 0) };
}

/**
 * The wait a `Retry-After` header asks for, in milliseconds: delay-seconds (`120`) or an
 * HTTP-date (`Wed, 21 Oct 2015 07:28:00 GMT`, relative to `nowMs`; a date in the past is 0).
 * Undefined when the header is absent or unreadable.
 *
 * @example
 * parseRetryAfter('7', Date.now()); // 7000
 */
export function parseRetryAfter(header: string | undefined, nowMs: number): number | undefined {
  if (header === undefined) return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) {
    const seconds = Number(text);
    return Number.isSafeInteger(seconds) ? seconds * 1000 : undefined;
  }
  // RFC 9110 allows IMF-fixdate and two obsolete date forms; Date.parse reads all three.
  if (!/[a-z]/i.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}
