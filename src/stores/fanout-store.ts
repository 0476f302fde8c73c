import { GpError } from '../model/index.js';
import type { RetentionPolicy, RetentionResult, Store } from './store.js';

/**
 * Several stores as one: every write goes to all of them, every query is answered by the first
 * (the primary), so the API and dashboard read where the user chose and the others receive copies
 * (e.g. DuckDB for the platform, Elasticsearch for Kibana).
 *
 * A write resolves only when every store took it. When one fails, the call fails with an error
 * naming that store, and the caller's retry sends the batch to all stores again: the Store
 * contract's idempotence (upserts by id and revision) makes the repeat harmless where it had
 * already landed, so no store silently misses a batch. Retention runs on each store with the same
 * policy; its result is the primary's.
 *
 * @example
 * const store = createFanOutStore([createDuckDbStore({ path: './data/gp.duckdb' }), createElasticsearchStore({ url })]);
 * await store.ready();
 */
export function createFanOutStore(stores: readonly Store[]): Store {
  if (stores.length === 0) throw new GpError('GP_STORE_URL_INVALID', 'store: expected at least one store to fan out to, got none', { field: 'url' });
  const primary = stores[0]!;
  const kind = `fanout(${stores.map((s) => s.kind).join(',')})`;

  async function all<T>(what: string, call: (store: Store) => Promise<T>): Promise<T> {
    const results = await Promise.allSettled(stores.map(call));
    const failures: string[] = [];
    let firstCause: unknown;
    results.forEach((result, i) => {
      if (result.status === 'fulfilled') return;
      firstCause ??= result.reason;
      failures.push(`store ${i + 1} (${stores[i]!.kind}): ${result.reason instanceof Error ? result.reason.message : String(result.reason)}`);
    });
    if (failures.length > 0) {
      // Input errors (a bad row) keep their code and field so callers can set the row aside.
      const code = firstCause instanceof GpError && failures.length === 1 ? firstCause.code : 'GP_STORE_FAILED';
      const details = firstCause instanceof GpError && failures.length === 1 ? firstCause.details : {};
      throw new GpError(code, `${what}: ${failures.join('; ')}`, { ...details, stores: stores.length }, { cause: firstCause });
    }
    return (results[0] as PromiseFulfilledResult<T>).value;
  }

  return {
    kind,
    ready: () => all('ready', (s) => s.ready()),
    writeReadings: (rows) => all('writeReadings', (s) => s.writeReadings(rows)),
    upsertAggregates: (aggregates) => all('upsertAggregates', (s) => s.upsertAggregates(aggregates)),
    writeAlertEvents: (events) => all('writeAlertEvents', (s) => s.writeAlertEvents(events)),
    writeOps: (events) => all('writeOps', (s) => s.writeOps(events)),
    applyRetention: (now: number, retention?: Partial<RetentionPolicy>): Promise<RetentionResult> =>
      all('applyRetention', (s) => s.applyRetention(now, retention)),
    querySeries: (query) => primary.querySeries(query),
    queryFleetSeries: (query) => primary.queryFleetSeries(query),
    latestStatus: (query) => primary.latestStatus(query),
    listAlerts: (filter) => primary.listAlerts(filter),
    alertTransitions: (alertId) => primary.alertTransitions(alertId),
    dataQuality: (query) => primary.dataQuality(query),
    counts: () => primary.counts(),
    close: () => all('close', (s) => s.close()),
  };
}
