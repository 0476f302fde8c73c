/**
 * Token buckets keyed by principal, counting readings rather than requests: a bucket holds up to
 * `burst` readings and refills at `ratePerSecond`. A batch is taken whole or not at all.
 * (@fastify/rate-limit counts requests only, hence this small one.)
 */
export interface RateLimiter {
  /** Readings `principal` may send right now (without taking any). */
  available(principal: string): number;
  /**
   * Takes `count` readings from the principal's bucket. Returns 0 when taken, otherwise the
   * seconds to wait until they would be (for Retry-After); nothing is taken then.
   */
  take(principal: string, count: number): number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Buckets beyond this many are pruned of full ones (open mode keys buckets by client address). */
const PRUNE_ABOVE = 10_000;

export function createRateLimiter(options: { ratePerSecond: number; burst: number; now: () => number }): RateLimiter {
  const { ratePerSecond, burst, now } = options;
  const buckets = new Map<string, Bucket>();

  function bucket(principal: string): Bucket {
    const time = now();
    let b = buckets.get(principal);
    if (b === undefined) {
      if (buckets.size >= PRUNE_ABOVE) prune(time);
      b = { tokens: burst, at: time };
      buckets.set(principal, b);
      return b;
    }
    const elapsed = Math.max(0, time - b.at) / 1000;
    b.tokens = Math.min(burst, b.tokens + elapsed * ratePerSecond);
    b.at = time;
    return b;
  }

  function prune(time: number): void {
    for (const [principal, b] of buckets) {
      if (b.tokens + (Math.max(0, time - b.at) / 1000) * ratePerSecond >= burst) buckets.delete(principal);
    }
  }

  return {
    available(principal) {
      return Math.floor(bucket(principal).tokens);
    },
    take(principal, count) {
      const b = bucket(principal);
      if (count <= b.tokens) {
        b.tokens -= count;
        return 0;
      }
      return Math.max(1, Math.ceil((count - b.tokens) / ratePerSecond));
    },
  };
}
