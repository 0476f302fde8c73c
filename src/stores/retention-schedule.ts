import { GpError } from '../model/index.js';
import type { RetentionPolicy, RetentionResult, Store } from './store.js';

export interface RetentionScheduleOptions {
  store: Store;
  /** Epoch ms "now" that retention measures back from (the wall clock in production, a fake one in tests). */
  clock: () => number;
  /** How often retention runs (default one hour). */
  intervalMs?: number;
  /** Told after each run that removed something, and of each failure (the schedule keeps going). */
  onRun?: (result: RetentionResult, now: number) => void;
  onError?: (error: unknown) => void;
}

/**
 * Runs `store.applyRetention(clock())` at most once per interval. `tick()` is what a timer calls:
 * it runs retention when the interval has passed since the last run (the first tick always runs),
 * never two at once, and reports a failure without stopping the schedule. Time comes only from
 * `clock`, so a test can move a fake clock by days and watch partitions go.
 *
 * @example
 * const retention = createRetentionSchedule({ store, clock: Date.now });
 * setInterval(() => void retention.tick(), 60_000).unref();
 */
export interface RetentionSchedule {
  /** Runs retention when it is due; resolves with its result, or undefined when it was not due (or failed). */
  tick(): Promise<RetentionResult | undefined>;
  /** When the last run started (epoch ms by `clock`), or undefined before the first. */
  readonly lastRunAt: number | undefined;
}

export function createRetentionSchedule(options: RetentionScheduleOptions): RetentionSchedule {
  const intervalMs = options.intervalMs ?? 3_600_000;
  if (!Number.isFinite(intervalMs) || intervalMs <= 0) {
    throw new GpError('GP_CONFIG_INVALID', `retention interval: expected a positive number of milliseconds, got ${String(options.intervalMs)}`, {
      field: 'intervalMs',
    });
  }
  let lastRunAt: number | undefined;
  let running: Promise<RetentionResult | undefined> | undefined;
  return {
    get lastRunAt() {
      return lastRunAt;
    },
    tick() {
      if (running !== undefined) return running.then(() => undefined);
      const now = options.clock();
      if (lastRunAt !== undefined && now - lastRunAt < intervalMs) return Promise.resolve(undefined);
      lastRunAt = now;
      running = options.store
        .applyRetention(now)
        .then(
          (result) => {
            if (result.readings + result.aggregates + result.alerts + result.ops > 0) options.onRun?.(result, now);
            return result;
          },
          (error: unknown) => {
            options.onError?.(error);
            return undefined;
          },
        )
        .finally(() => (running = undefined));
      return running;
    },
  };
}

/**
 * The console line of a retention run that removed something: how much of what, older than when.
 *
 * @example
 * describeRetention({ readings: 82788, aggregates: 0, alerts: 0, ops: 0 }, Date.now(), policy);
 * // "store retention (store.retention, measured from the wall clock) removed 82,788 readings before 2026-11-18T…"
 */
export function describeRetention(result: RetentionResult, now: number, retention: RetentionPolicy): string {
  const cutoff = (ms: number): string => new Date(now - ms).toISOString();
  const parts: string[] = [];
  if (result.readings > 0) parts.push(`${result.readings.toLocaleString('en')} readings before ${cutoff(retention.readingsMs)}`);
  if (result.aggregates > 0) parts.push(`${result.aggregates.toLocaleString('en')} aggregate rows before ${cutoff(retention.aggregatesMs)}`);
  if (result.alerts > 0) parts.push(`${result.alerts.toLocaleString('en')} resolved alerts before ${cutoff(retention.alertsMs)}`);
  if (result.ops > 0) parts.push(`${result.ops.toLocaleString('en')} ops events before ${cutoff(retention.opsMs)}`);
  return `store retention (store.retention, measured from the wall clock) removed ${parts.join(', ')}`;
}
