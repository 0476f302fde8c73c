import type { Client, ClientOptions } from '@elastic/elasticsearch';
import {
  GpError,
  SEVERITIES,
  STATS_PER_METRIC,
  STAT_NAMES,
  type Aggregate,
  type Alert,
  type AlertEvent,
  type AlertStatus,
  type AlertTransition,
  type OpsEvent,
  type OpsKind,
  type Severity,
  type TransitionKind,
} from '../model/index.js';
import {
  DEFAULT_RETENTION,
  opsEventId,
  type AlertFilter,
  type DeviceStatus,
  type FleetSeriesPoint,
  type FleetSeriesQuery,
  type FleetSeriesResult,
  type QualityQuery,
  type QualityRow,
  type ReadingRow,
  type RetentionPolicy,
  type RetentionResult,
  type SeriesPoint,
  type SeriesQuery,
  type SeriesResult,
  type StatusQuery,
  type Store,
} from './store.js';
import { LazyConnection } from './lazy-connection.js';
import {
  DAY_MS,
  DEFAULT_KEY_FIELDS,
  DEVICES_INDEX,
  INDEX_KINDS,
  KIND_ALIASES,
  OPS_INDEX_PATTERN,
  RESERVED_FIELDS,
  TRANSITIONS_INDEX,
  dailyIndex,
  indexBase,
  indexDay,
  internalTemplate,
  opsIndex,
  streamTemplate,
  type IndexKind,
  type IndexTemplate,
  type KeyFields,
} from './elasticsearch-schema.js';
import {
  ALERT_STATUSES,
  DEFAULT_ALERT_LIMIT,
  FLEET_RESOLUTIONS,
  RESOLUTIONS,
  mergeRetention,
  oneOrMany,
  pickResolution,
  requireFinite,
  requireMaxPoints,
  requireOneOf,
  requireText,
  requireTimeRange,
} from './query-checks.js';
import { OPS_KINDS, readingRowId } from './row-identity.js';

export interface ElasticsearchStoreOptions {
  /**
   * `elasticsearch://[user:password@]host[:port][/path]` (HTTP) or `elasticsearch+https://…`
   * (HTTPS); port 9200 when absent. `http://` and `https://` are accepted as they are.
   */
  url: string;
  /** Retention used by `applyRetention` when a call gives none; missing fields take `DEFAULT_RETENTION`. */
  retention?: Partial<RetentionPolicy>;
  /**
   * Per stream, the document fields that repeat the device key and site under the stream's own
   * names (default: power → `meterId`/`siteId` as in the reference design, machines → `machine_id`).
   */
  keyFields?: Record<string, KeyFields>;
  /**
   * The bulk `refresh` parameter (default `wait_for`: a write returns once its documents are
   * searchable, as the Store contract expects of a write followed by a query). `false` trades
   * that for throughput: documents then appear within the index refresh interval (1 s by default).
   */
  refresh?: 'wait_for' | boolean;
  /** Retries of 429 and 5xx answers and lost connections (default 5 attempts, 200 ms doubling up to 5 s). */
  retry?: { attempts?: number; baseDelayMs?: number; maxDelayMs?: number };
  /** Per request (default 30 s). */
  requestTimeoutMs?: number;
  /** Primary shards of each new index (default 1: daily indices are small). */
  shards?: number;
}

/**
 * A store in Elasticsearch 7.x (tested against 7.10's REST API), for teams that watch their
 * telemetry in Kibana. See elasticsearch-schema.ts for the indices, templates and mapping.
 *
 * The store owns one client of `@elastic/elasticsearch` 7 (loaded when the store first connects,
 * so the embedded default never needs it); `ready()` installs the index templates; `close()` is
 * idempotent, waits for calls in flight and closes the client. Writes are `_bulk` requests with
 * deterministic `_id`s, so several stores may write the same cluster and a replay duplicates
 * nothing: readings, ops events and transitions are `create` (a copy is a harmless version
 * conflict), aggregates and alerts `index` with `version_type: external_gte` and the revision (or
 * transition seq) as version, so an older revision never replaces a newer one. Answers of 429 and
 * 5xx (the whole request or single bulk items) are retried with backoff; an item refused for good
 * fails the call with a GpError that names it (the other items of the batch are written).
 *
 * @example
 * const store = createElasticsearchStore({ url: 'elasticsearch://elastic:secret@localhost:9200' });
 * await store.ready();
 * await store.upsertAggregates(aggregates);
 * const points = await store.querySeries({ key: 'm-1', metric: 'usageKw', from, to, resolution: 'auto' });
 * await store.close();
 */
export function createElasticsearchStore(options: ElasticsearchStoreOptions): Store {
  return new ElasticsearchStore(options);
}

type Json = Record<string, unknown>;
type Method = 'GET' | 'PUT' | 'POST' | 'DELETE';

interface Request {
  method: Method;
  path: string;
  querystring?: Record<string, string | number | boolean>;
  body?: Json;
  bulkBody?: Json[];
}

/** One document operation of a bulk request, with the caller's name for it (for errors). */
interface BulkItem {
  action: 'create' | 'index' | 'update';
  meta: Json;
  source: Json;
  /** `readings[3]`, `events[0].alert`, … */
  label: string;
}

interface ItemFailure {
  item: BulkItem;
  status: number;
  type: string;
  reason: string;
}

const PAGE_SIZE = 1000;
// Elasticsearch's index.max_result_window: the most hits one search may return.
const MAX_HITS_PER_PAGE = 10_000;
// A `terms` query holds at most 65,536 terms by default; batches stay well below.
const TERMS_CHUNK = 10_000;
// Index names per DELETE request: the request line stays below Elasticsearch's 4 kB limit.
const DELETE_CHUNK = 50;
const RETRIED_STATUSES = new Set([429, 500, 502, 503, 504]);
// Client errors that mean the request did not get an answer: worth another attempt.
const RETRIED_CLIENT_ERRORS = new Set(['ConnectionError', 'TimeoutError', 'NoLivingConnectionsError']);
const SEARCH_OPTIONS = { ignore_unavailable: true, allow_no_indices: true } as const;
const CLOSED_ERROR = 'the Elasticsearch store is closed: create a new one to keep using the cluster';

class ElasticsearchStore implements Store {
  readonly kind = 'elasticsearch';
  private readonly node: string;
  private readonly redactedUrl: string;
  private readonly auth: { username: string; password: string } | undefined;
  private readonly retention: RetentionPolicy;
  private readonly keyFields: Record<string, KeyFields>;
  private readonly refresh: 'wait_for' | 'true' | 'false';
  private readonly attempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly requestTimeoutMs: number;
  private readonly shards: number;
  private readonly client = new LazyConnection(() => this.connect());
  private closing: Promise<void> | undefined;
  private readonly inFlight = new Set<Promise<unknown>>();
  // Templates installed by this store (by name), so each is sent once per process.
  private readonly templates = new Set<string>();
  // Devices whose document is current, by stream + key, with the site it holds.
  private readonly knownDevices = new Map<string, string | undefined>();

  constructor(options: ElasticsearchStoreOptions) {
    const parsed = parseUrl(options.url);
    this.node = parsed.node;
    this.redactedUrl = parsed.redacted;
    this.auth = parsed.auth;
    this.retention = mergeRetention(DEFAULT_RETENTION, options.retention, 'retention');
    this.keyFields = { ...DEFAULT_KEY_FIELDS, ...options.keyFields };
    for (const [stream, fields] of Object.entries(this.keyFields)) {
      for (const [name, value] of Object.entries(fields)) {
        if (typeof value !== 'string' || value === '' || (RESERVED_FIELDS.has(value) && !['meterId', 'siteId'].includes(value))) {
          throw new GpError('GP_CONFIG_INVALID', `keyFields.${stream}.${name}: expected a field name other than the store's own fields, got ${JSON.stringify(value)}`, {
            field: `keyFields.${stream}.${name}`,
          });
        }
      }
    }
    const refresh = options.refresh ?? 'wait_for';
    if (refresh !== 'wait_for' && typeof refresh !== 'boolean') {
      throw new GpError('GP_CONFIG_INVALID', `refresh: expected "wait_for", true or false, got ${JSON.stringify(refresh)}`, { field: 'refresh' });
    }
    this.refresh = refresh === 'wait_for' ? 'wait_for' : refresh ? 'true' : 'false';
    this.attempts = positiveInteger(options.retry?.attempts ?? 5, 'retry.attempts');
    this.baseDelayMs = nonNegative(options.retry?.baseDelayMs ?? 200, 'retry.baseDelayMs');
    this.maxDelayMs = nonNegative(options.retry?.maxDelayMs ?? 5000, 'retry.maxDelayMs');
    this.requestTimeoutMs = positiveInteger(options.requestTimeoutMs ?? 30_000, 'requestTimeoutMs');
    this.shards = positiveInteger(options.shards ?? 1, 'shards');
  }

  ready(): Promise<void> {
    if (this.closing !== undefined) return Promise.reject(closedError());
    return this.open().then(() => undefined);
  }

  // ---- writes ----------------------------------------------------------------------------

  async writeReadings(rows: readonly ReadingRow[]): Promise<void> {
    if (rows.length === 0) return;
    const items: BulkItem[] = [];
    const seen = new Set<string>();
    const streams = new Set<string>();
    rows.forEach((row, index) => {
      const field = `readings[${index}]`;
      requireText(row.stream, `${field}.stream`);
      requireText(row.key, `${field}.key`);
      requireFinite(row.time, `${field}.time`, 'epoch milliseconds');
      requireFinite(row.offset, `${field}.offset`, 'a source offset');
      const keyFields = this.keyFields[row.stream];
      for (const metric of Object.keys(row.values)) {
        if (RESERVED_FIELDS.has(metric) || metric === keyFields?.key || metric === keyFields?.site) {
          throw new GpError('GP_INPUT_INVALID', `${field}.values.${metric}: expected a metric name other than a document field of the Elasticsearch store, got ${JSON.stringify(metric)}`, {
            field: `${field}.values.${metric}`,
          });
        }
      }
      const id = readingRowId(row);
      // Insert-once: the first copy of a row in a batch is the one kept, as across batches.
      if (seen.has(id)) return;
      seen.add(id);
      streams.add(row.stream);
      const source: Json = {};
      for (const [metric, value] of Object.entries(row.values)) source[metric] = finite(value);
      Object.assign(source, {
        stream: row.stream,
        key: row.key,
        site: row.site ?? null,
        timestamp: Math.round(row.time),
        offset: Math.round(row.offset),
      }, this.keyFieldValues(row.stream, row.key, row.site));
      items.push({ action: 'create', meta: { _index: dailyIndex(row.stream, 'raw', row.time), _id: id }, source, label: field });
    });
    await this.run('write readings', async (client) => {
      await this.ensureTemplates(client, [...streams], 'raw');
      const devices = this.deviceItems(rows);
      await this.bulk(client, 'write readings', [...items, ...devices.items]);
      devices.remember();
    });
  }

  async upsertAggregates(aggregates: readonly Aggregate[]): Promise<void> {
    if (aggregates.length === 0) return;
    // A higher or equal revision wins, in the batch as in the index (the later one on a tie).
    const winners = new Map<string, { aggregate: Aggregate; index: number }>();
    aggregates.forEach((aggregate, index) => {
      const field = `aggregates[${index}]`;
      requireText(aggregate.stream, `${field}.stream`);
      requireText(aggregate.key, `${field}.key`);
      requireText(aggregate.window, `${field}.window`);
      requireFinite(aggregate.start, `${field}.start`, 'epoch milliseconds');
      requireFinite(aggregate.end, `${field}.end`, 'epoch milliseconds');
      requireFinite(aggregate.revision, `${field}.revision`, 'a revision number');
      if (aggregate.revision < 0) {
        throw new GpError('GP_INPUT_INVALID', `${field}.revision: expected a revision number >= 0, got ${aggregate.revision}`, { field: `${field}.revision` });
      }
      const id = aggregateId(aggregate);
      const held = winners.get(id);
      if (held === undefined || aggregate.revision >= held.aggregate.revision) winners.set(id, { aggregate, index });
    });
    const items: BulkItem[] = [];
    const streams = new Set<string>();
    for (const [id, { aggregate, index }] of winners) {
      streams.add(aggregate.stream);
      items.push({
        action: 'index',
        meta: {
          _index: dailyIndex(aggregate.stream, 'agg', aggregate.start),
          _id: id,
          version: Math.round(aggregate.revision),
          version_type: 'external_gte',
        },
        source: this.aggregateSource(aggregate),
        label: `aggregates[${index}]`,
      });
    }
    await this.run('upsert aggregates', async (client) => {
      await this.ensureTemplates(client, [...streams], 'agg');
      const devices = this.deviceItems([...winners.values()].map((winner) => winner.aggregate));
      await this.bulk(client, 'upsert aggregates', [...items, ...devices.items]);
      devices.remember();
    });
  }

  async writeAlertEvents(events: readonly AlertEvent[]): Promise<void> {
    if (events.length === 0) return;
    const alerts = new Map<string, { event: AlertEvent; index: number }>();
    const transitions = new Map<string, { event: AlertEvent; index: number }>();
    events.forEach((event, index) => {
      const { alert, transition } = event;
      const field = `events[${index}]`;
      requireText(alert.id, `${field}.alert.id`);
      requireText(alert.stream, `${field}.alert.stream`);
      requireText(alert.key, `${field}.alert.key`);
      requireFinite(alert.openedAt, `${field}.alert.openedAt`, 'epoch milliseconds');
      requireFinite(alert.updatedAt, `${field}.alert.updatedAt`, 'epoch milliseconds');
      requireText(transition.id, `${field}.transition.id`);
      requireFinite(transition.seq, `${field}.transition.seq`, 'a sequence number');
      requireFinite(transition.time, `${field}.transition.time`, 'epoch milliseconds');
      if (transition.seq < 0) {
        throw new GpError('GP_INPUT_INVALID', `${field}.transition.seq: expected a sequence number >= 0, got ${transition.seq}`, { field: `${field}.transition.seq` });
      }
      // The alert document keeps the state of its newest transition, so replays never move it back.
      const held = alerts.get(alert.id);
      if (held === undefined || transition.seq >= held.event.transition.seq) alerts.set(alert.id, { event, index });
      if (!transitions.has(transition.id)) transitions.set(transition.id, { event, index });
    });
    const items: BulkItem[] = [];
    const streams = new Set<string>();
    for (const { event, index } of alerts.values()) {
      const { alert: a, transition } = event;
      streams.add(a.stream);
      items.push({
        action: 'index',
        meta: { _index: dailyIndex(a.stream, 'alerts', a.openedAt), _id: a.id, version: Math.round(transition.seq), version_type: 'external_gte' },
        source: {
          id: a.id,
          stream: a.stream,
          key: a.key,
          site: a.site ?? null,
          ...this.keyFieldValues(a.stream, a.key, a.site),
          alertType: a.type,
          alertLevel: a.severity,
          metric: a.metric ?? null,
          status: a.status,
          timestamp: ms(a.openedAt),
          openedAt: ms(a.openedAt),
          updatedAt: ms(a.updatedAt),
          resolvedAt: ms(a.resolvedAt),
          score: finite(a.score),
          peakScore: finite(a.peakScore),
          value: finite(a.value),
          findings: Math.round(a.findings),
          explain: a.explain,
          seq: Math.round(transition.seq),
        },
        label: `events[${index}].alert`,
      });
    }
    for (const { event, index } of transitions.values()) {
      const { alert, transition: t } = event;
      const source: Json = {
        id: t.id,
        alertId: t.alertId,
        stream: alert.stream,
        key: alert.key,
        seq: Math.round(t.seq),
        kind: t.kind,
        timestamp: ms(t.time),
        time: ms(t.time),
        status: t.status,
        severity: t.severity,
        score: finite(t.score),
        explain: t.explain,
      };
      if (t.by !== undefined) source['by'] = t.by;
      if (t.note !== undefined) source['note'] = t.note;
      items.push({ action: 'create', meta: { _index: TRANSITIONS_INDEX, _id: t.id }, source, label: `events[${index}].transition` });
    }
    await this.run('write alert events', async (client) => {
      await this.ensureTemplates(client, [...streams], 'alerts');
      await this.bulk(client, 'write alert events', items);
    });
  }

  async writeOps(events: readonly OpsEvent[]): Promise<void> {
    if (events.length === 0) return;
    const items: BulkItem[] = [];
    const seen = new Set<string>();
    events.forEach((event, index) => {
      requireText(event.stream, `ops[${index}].stream`);
      if (!(OPS_KINDS as readonly string[]).includes(event.kind)) {
        throw new GpError('GP_INPUT_INVALID', `ops[${index}].kind: expected one of ${OPS_KINDS.join(', ')}, got ${JSON.stringify(event.kind)}`, {
          field: `ops[${index}].kind`,
        });
      }
      const id = opsEventId(event);
      if (seen.has(id)) return;
      seen.add(id);
      // OpsEvent has no site today; a source that knows it may attach one.
      const site = (event as OpsEvent & { site?: unknown }).site;
      const at = ms(finite(event.time) ?? event.watermark);
      items.push({
        action: 'create',
        meta: { _index: opsIndex(at), _id: id },
        source: {
          id,
          kind: event.kind,
          stream: event.stream,
          key: event.key ?? null,
          site: typeof site === 'string' ? site : null,
          timestamp: at,
          time: ms(event.time),
          watermark: ms(event.watermark),
          offset: ms(event.offset),
          reason: event.reason,
          field: event.field ?? null,
          expected: event.expected ?? null,
          got: event.got ?? null,
          lagMs: ms(event.lagMs),
          missed: ms(event.missed),
        },
        label: `ops[${index}]`,
      });
    });
    await this.run('write ops events', (client) => this.bulk(client, 'write ops events', items));
  }

  async applyRetention(now: number, retention?: Partial<RetentionPolicy>): Promise<RetentionResult> {
    requireFinite(now, 'now', 'epoch milliseconds');
    const policy = mergeRetention(this.retention, retention, 'retention');
    const cutoff = (retentionMs: number): number => Math.round(now - retentionMs);
    return this.run('apply retention', async (client) => {
      const readings = await this.dropOlder(client, KIND_ALIASES.raw, cutoff(policy.readingsMs));
      const aggregates = await this.dropOlder(client, KIND_ALIASES.agg, cutoff(policy.aggregatesMs));
      const alerts = await this.dropResolvedAlerts(client, cutoff(policy.alertsMs));
      const ops = await this.dropOlder(client, OPS_INDEX_PATTERN, cutoff(policy.opsMs));
      return { readings, aggregates, alerts, ops };
    });
  }

  // ---- queries ---------------------------------------------------------------------------

  async querySeries(query: SeriesQuery): Promise<SeriesResult> {
    requireText(query.key, 'key');
    requireText(query.metric, 'metric');
    requireTimeRange(query.from, query.to);
    requireOneOf(query.resolution, RESOLUTIONS, 'resolution');
    const maxPoints = requireMaxPoints(query.maxPoints);
    const resolution = query.resolution === 'auto' ? pickResolution(query.from, query.to, maxPoints) : query.resolution;
    const filters: Json[] = [term('key', query.key), timeRange('timestamp', query.from, query.to)];
    if (query.stream !== undefined) filters.push(term('stream', query.stream));
    let points: SeriesPoint[];
    if (resolution === 'raw') {
      const hits = await this.run('query series', (client) =>
        this.searchAll(client, this.kindTarget('raw', query.stream), { bool: { filter: filters } }, [
          sortBy('timestamp', 'asc', 'date'),
          sortBy('offset', 'asc', 'long'),
          sortBy('stream', 'asc', 'keyword'),
        ]),
      );
      points = hits.map((hit) => {
        const value = numberOrNull(hit.source[query.metric]);
        return { time: numberOf(hit.source['timestamp']), count: value === null ? 0 : 1, min: value, max: value, avg: value, last: value };
      });
    } else {
      filters.push(term('window', resolution), { exists: { field: statField(query.metric, 'count') } });
      const hits = await this.run('query series', (client) =>
        this.searchAll(client, this.kindTarget('agg', query.stream), { bool: { filter: filters } }, [
          sortBy('timestamp', 'asc', 'date'),
          sortBy('stream', 'asc', 'keyword'),
        ]),
      );
      points = hits.map((hit) => {
        const stats = statsOf(hit.source, query.metric);
        return {
          time: numberOf(hit.source['timestamp']),
          count: numberOrNull(stats['count']) ?? 0,
          min: numberOrNull(stats['min']),
          max: numberOrNull(stats['max']),
          avg: numberOrNull(stats['avg']),
          last: numberOrNull(stats['last']),
        };
      });
    }
    return { key: query.key, metric: query.metric, resolution, points };
  }

  async queryFleetSeries(query: FleetSeriesQuery): Promise<FleetSeriesResult> {
    if (query.stream !== undefined) requireText(query.stream, 'stream');
    requireText(query.metric, 'metric');
    requireTimeRange(query.from, query.to);
    requireOneOf(query.resolution, FLEET_RESOLUTIONS, 'resolution');
    if (query.site !== undefined) requireText(query.site, 'site');
    const maxPoints = requireMaxPoints(query.maxPoints);
    const resolution = query.resolution === 'auto' ? pickResolution(query.from, query.to, maxPoints) : query.resolution;
    const avgField = statField(query.metric, 'avg');
    return this.run('query fleet series', async (client) => {
      const filters: Json[] = [
        term('window', resolution),
        timeRange('timestamp', query.from, query.to),
        { exists: { field: statField(query.metric, 'count') } },
      ];
      if (query.stream !== undefined) filters.push(term('stream', query.stream));
      if (query.site !== undefined) {
        // An aggregate may not know its site; the device's last known site stands in for it then.
        const keysOfSite = await this.deviceKeysOfSite(client, query.site, query.stream);
        const should: Json[] = [term('site', query.site)];
        for (const [stream, keys] of keysOfSite) {
          for (const chunk of chunks(keys, TERMS_CHUNK)) {
            should.push({ bool: { filter: [term('stream', stream), { terms: { key: chunk } }], must_not: [{ exists: { field: 'site' } }] } });
          }
        }
        filters.push({ bool: { should, minimum_should_match: 1 } });
      }
      // Tumbling windows start on multiples of their length since the epoch, as date_histogram
      // buckets do: one bucket per window start, one document per device and window (the newest
      // revision), so the metrics below are over devices.
      const buckets = await this.compositeAll(client, this.kindTarget('agg', query.stream), { bool: { filter: filters } }, [
        { time: { date_histogram: { field: 'timestamp', fixed_interval: resolution, order: 'asc' } } },
      ], {
        devices: { value_count: { field: avgField } },
        sum: { sum: { field: avgField } },
        min: { min: { field: avgField } },
        max: { max: { field: avgField } },
      });
      const points = buckets.map((bucket): FleetSeriesPoint => {
        const devices = numberOrNull(aggValue(bucket, 'devices')) ?? 0;
        const sum = devices === 0 ? null : numberOrNull(aggValue(bucket, 'sum'));
        return {
          time: numberOf(objectOf(bucket['key'])['time']),
          devices,
          sum,
          avg: sum === null ? null : sum / devices,
          min: devices === 0 ? null : numberOrNull(aggValue(bucket, 'min')),
          max: devices === 0 ? null : numberOrNull(aggValue(bucket, 'max')),
        };
      });
      return { metric: query.metric, resolution, points };
    });
  }

  async latestStatus(query: StatusQuery): Promise<DeviceStatus[]> {
    if (query.keys !== undefined && query.keys.length === 0) return [];
    const filters: Json[] = [term('window', '1m')];
    if (query.stream !== undefined) filters.push(term('stream', query.stream));
    if (query.keys !== undefined) filters.push({ terms: { key: [...query.keys] } });
    if (query.site !== undefined) filters.push(term('site', query.site));
    const sources = [{ stream: { terms: { field: 'stream' } } }, { key: { terms: { field: 'key' } } }];
    return this.run('latest status', async (client) => {
      const windows = await this.compositeAll(client, KIND_ALIASES.agg, { bool: { filter: filters } }, sources, {
        newest: { top_hits: { size: 1, sort: [sortBy('timestamp', 'desc', 'date')], _source: { includes: ['stream', 'key', 'site', 'end', 'metrics', 'stats'] } } },
      });
      const open = await this.compositeAll(client, KIND_ALIASES.alerts, { bool: { filter: [{ terms: { status: ['open', 'acknowledged'] } }] } }, sources, {});
      const openAlerts = new Map(open.map((bucket) => {
        const key = objectOf(bucket['key']);
        return [`${textOf(key['stream'])}\u0000${textOf(key['key'])}`, numberOf(bucket['doc_count'])];
      }));
      const devices: DeviceStatus[] = [];
      for (const bucket of windows) {
        const hits = arrayOf(objectOf(objectOf(objectOf(bucket['newest'])['hits']))['hits']);
        const source = objectOf(objectOf(hits[0])['_source']);
        const stream = textOf(source['stream']);
        const key = textOf(source['key']);
        const lastAvg: Record<string, number | null> = {};
        const stats = objectOf(source['stats']);
        for (const metric of arrayOf(source['metrics'])) {
          const name = textOf(metric);
          if (name !== '') lastAvg[name] = numberOrNull(objectOf(stats[name])['avg']);
        }
        devices.push({
          stream,
          key,
          site: textOrNull(source['site']),
          lastSeen: numberOf(source['end']),
          lastAvg,
          openAlerts: openAlerts.get(`${stream}\u0000${key}`) ?? 0,
        });
      }
      return devices.sort((a, b) => compareText(a.stream, b.stream) || compareText(a.key, b.key));
    });
  }

  async listAlerts(filter: AlertFilter): Promise<Alert[]> {
    const filters: Json[] = [];
    if (filter.stream !== undefined) filters.push(term('stream', filter.stream));
    if (filter.key !== undefined) filters.push(term('key', filter.key));
    if (filter.site !== undefined) filters.push(term('site', filter.site));
    if (filter.type !== undefined) filters.push(term('alertType', filter.type));
    const statuses = oneOrMany(filter.status, ALERT_STATUSES, 'status');
    if (statuses !== undefined) filters.push({ terms: { status: statuses } });
    const severities = oneOrMany(filter.severity, SEVERITIES, 'severity');
    if (severities !== undefined) filters.push({ terms: { alertLevel: severities } });
    if (filter.from !== undefined) {
      requireFinite(filter.from, 'from', 'epoch milliseconds');
      // Still open (no resolvedAt) means the interval reaches +infinity.
      filters.push({
        bool: {
          should: [{ bool: { must_not: [{ exists: { field: 'resolvedAt' } }] } }, { range: { resolvedAt: { gte: Math.round(filter.from), format: 'epoch_millis' } } }],
          minimum_should_match: 1,
        },
      });
    }
    if (filter.to !== undefined) {
      requireFinite(filter.to, 'to', 'epoch milliseconds');
      filters.push({ range: { openedAt: { lte: Math.round(filter.to), format: 'epoch_millis' } } });
    }
    const limit = filter.limit ?? DEFAULT_ALERT_LIMIT;
    if (!Number.isInteger(limit) || limit < 1) {
      throw new GpError('GP_INPUT_INVALID', `limit: expected a positive integer, got ${String(filter.limit)}`, { field: 'limit' });
    }
    const hits = await this.run('list alerts', (client) =>
      this.searchAll(client, KIND_ALIASES.alerts, { bool: { filter: filters } }, [sortBy('openedAt', 'desc', 'date'), sortBy('id', 'asc', 'keyword')], limit),
    );
    return hits.map((hit) => sourceToAlert(hit.source));
  }

  async alertTransitions(alertId: string): Promise<AlertTransition[]> {
    requireText(alertId, 'alertId');
    const hits = await this.run('alert transitions', (client) =>
      this.searchAll(client, TRANSITIONS_INDEX, { bool: { filter: [term('alertId', alertId)] } }, [sortBy('seq', 'asc', 'long'), sortBy('id', 'asc', 'keyword')]),
    );
    return hits.map(({ source }) => {
      const transition: AlertTransition = {
        id: textOf(source['id']),
        alertId: textOf(source['alertId']),
        seq: numberOf(source['seq']),
        kind: textOf(source['kind']) as TransitionKind,
        time: numberOf(source['time']),
        status: textOf(source['status']) as AlertStatus,
        severity: textOf(source['severity']) as Severity,
        score: numberOrNull(source['score']) ?? Number.NaN,
        explain: textOf(source['explain']),
      };
      if (typeof source['by'] === 'string') transition.by = source['by'];
      if (typeof source['note'] === 'string') transition.note = source['note'];
      return transition;
    });
  }

  async dataQuality(query: QualityQuery): Promise<QualityRow[]> {
    const by = query.by ?? 'key';
    if (by !== 'key' && by !== 'site') {
      throw new GpError('GP_INPUT_INVALID', `by: expected "key" or "site", got ${JSON.stringify(by)}`, { field: 'by' });
    }
    const filters: Json[] = [];
    if (query.stream !== undefined) filters.push(term('stream', query.stream));
    if (query.from !== undefined) requireFinite(query.from, 'from', 'epoch milliseconds');
    if (query.to !== undefined) requireFinite(query.to, 'to', 'epoch milliseconds');
    if (query.from !== undefined || query.to !== undefined) {
      const range: Json = { format: 'epoch_millis' };
      if (query.from !== undefined) range['gte'] = Math.round(query.from);
      if (query.to !== undefined) range['lte'] = Math.round(query.to);
      filters.push({ range: { timestamp: range } });
    }
    return this.run('data quality', async (client) => {
      const buckets = await this.compositeAll(client, OPS_INDEX_PATTERN, { bool: { filter: filters } }, [
        { stream: { terms: { field: 'stream' } } },
        { key: { terms: { field: 'key', missing_bucket: true } } },
        { site: { terms: { field: 'site', missing_bucket: true } } },
        { kind: { terms: { field: 'kind' } } },
      ], {});
      let deviceSites = new Map<string, string>();
      if (by === 'site') {
        const unknown = buckets.map((bucket) => objectOf(bucket['key'])).filter((key) => key['site'] === null && typeof key['key'] === 'string');
        deviceSites = await this.deviceSites(client, unknown.map((key) => [textOf(key['stream']), textOf(key['key'])]));
      }
      const rows = new Map<string, QualityRow>();
      for (const bucket of buckets) {
        const key = objectOf(bucket['key']);
        const stream = textOf(key['stream']);
        const device = textOrNull(key['key']);
        const group = by === 'key' ? device : (textOrNull(key['site']) ?? (device === null ? null : (deviceSites.get(`${stream}\u0000${device}`) ?? null)));
        const id = `${stream}\u0000${group ?? '\u0001null'}`;
        let row = rows.get(id);
        if (row === undefined) {
          row = { stream, group, counts: Object.fromEntries(OPS_KINDS.map((kind) => [kind, 0])) as Record<OpsKind, number>, total: 0 };
          rows.set(id, row);
        }
        const kind = textOf(key['kind']) as OpsKind;
        const count = numberOf(bucket['doc_count']);
        if (kind in row.counts) row.counts[kind] += count;
        row.total += count;
      }
      return [...rows.values()].sort(
        (a, b) => compareText(a.stream, b.stream) || (a.group === null ? (b.group === null ? 0 : 1) : b.group === null ? -1 : compareText(a.group, b.group)),
      );
    });
  }

  async counts(): Promise<Record<'readings' | 'aggregates' | 'alerts' | 'transitions' | 'ops', number>> {
    return this.run('counts', async (client) => ({
      readings: await this.count(client, KIND_ALIASES.raw),
      // One document per window (stream, key, window, start).
      aggregates: await this.count(client, KIND_ALIASES.agg),
      alerts: await this.count(client, KIND_ALIASES.alerts),
      transitions: await this.count(client, TRANSITIONS_INDEX),
      ops: await this.count(client, OPS_INDEX_PATTERN),
    }));
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  // ---- documents -------------------------------------------------------------------------

  private keyFieldValues(stream: string, key: string, site: string | undefined): Json {
    const fields = this.keyFields[stream];
    if (fields === undefined) return {};
    const values: Json = { [fields.key]: key };
    if (fields.site !== undefined) values[fields.site] = site ?? null;
    return values;
  }

  private aggregateSource(a: Aggregate): Json {
    const stats: Json = {};
    const source: Json = {};
    const metrics: string[] = [];
    const keyFields = this.keyFields[a.stream];
    for (let m = 0; m < a.metrics.length; m++) {
      const metric = a.metrics[m] as string;
      // A repeated metric name keeps its first statistics, as the SQL stores do.
      if (metric === '' || metric in stats) continue;
      metrics.push(metric);
      const values: Json = {};
      STAT_NAMES.forEach((name, s) => {
        values[name] = finite(a.stats[m * STATS_PER_METRIC + s]);
      });
      values['count'] ??= 0;
      stats[metric] = values;
      // The window average at the top level too, under the metric's name, as Kibana users of the
      // reference design chart `usageKw` from both the raw and the agg indices.
      if (!RESERVED_FIELDS.has(metric) && metric !== keyFields?.key && metric !== keyFields?.site) source[metric] = values['avg'];
    }
    return Object.assign(source, {
      stream: a.stream,
      key: a.key,
      site: a.site ?? null,
      ...this.keyFieldValues(a.stream, a.key, a.site),
      window: a.window,
      timestamp: Math.round(a.start),
      end: Math.round(a.end),
      revision: Math.round(a.revision),
      count: Math.round(a.count),
      energyKwh: finite(a.energyKwh),
      metrics,
      stats,
    });
  }

  /**
   * Upserts of `gridpulse-devices` for the devices of a batch whose site is new to this store, and
   * a callback that remembers them once the batch is written. A batch's site replaces the stored
   * one only when it names one.
   */
  private deviceItems(rows: Iterable<{ stream: string; key: string; site: string | undefined }>): { items: BulkItem[]; remember: () => void } {
    const changed = new Map<string, { stream: string; key: string; site: string | undefined }>();
    for (const row of rows) {
      const id = `${row.stream}|${row.key}`;
      const known = this.knownDevices.get(id);
      const pending = changed.get(id);
      if (pending !== undefined) {
        if (row.site !== undefined && (pending.site === undefined || row.site > pending.site)) pending.site = row.site;
        continue;
      }
      if (!this.knownDevices.has(id) || (row.site !== undefined && row.site !== known)) changed.set(id, { stream: row.stream, key: row.key, site: row.site });
    }
    const items = [...changed].map(([id, device]): BulkItem => {
      const doc: Json = { stream: device.stream, key: device.key };
      if (device.site !== undefined) doc['site'] = device.site;
      return { action: 'update', meta: { _index: DEVICES_INDEX, _id: id, retry_on_conflict: 3 }, source: { doc, doc_as_upsert: true }, label: `device ${device.stream}/${device.key}` };
    });
    return {
      items,
      remember: () => {
        for (const [id, device] of changed) this.knownDevices.set(id, device.site ?? this.knownDevices.get(id));
      },
    };
  }

  // ---- Elasticsearch requests ------------------------------------------------------------

  /** The index pattern of one stream's indices of a kind, or the kind's alias over every stream. */
  private kindTarget(kind: IndexKind, stream: string | undefined): string {
    return stream === undefined ? KIND_ALIASES[kind] : `${indexBase(stream, kind)}-*`;
  }

  private async ensureTemplates(client: Client, streams: readonly string[], kind: IndexKind): Promise<void> {
    for (const stream of streams) {
      await this.putTemplate(client, streamTemplate(stream, kind, this.keyFields[stream], this.shards));
    }
  }

  private async putTemplate(client: Client, template: IndexTemplate): Promise<void> {
    if (this.templates.has(template.name)) return;
    try {
      await this.request(client, `install index template ${template.name}`, { method: 'PUT', path: `/_index_template/${template.name}`, body: template.body });
    } catch (cause) {
      const status = cause instanceof GpError ? cause.details['status'] : undefined;
      if (status === 400 || status === 404 || status === 405) {
        throw new GpError(
          'GP_STORE_FAILED',
          `Elasticsearch at ${this.redactedUrl} refused index template ${template.name}: the store needs Elasticsearch 7.8 or newer (composable index templates); ${messageOf(cause)}`,
          { url: this.redactedUrl, template: template.name },
          { cause },
        );
      }
      throw cause;
    }
    this.templates.add(template.name);
  }

  /**
   * Sends `items` in one `_bulk` request, then again only the items answered with 429 or 5xx,
   * with backoff. A 409 version conflict of a `create` (the document exists) or of an external
   * version (a newer revision is stored) is the idempotence working, not an error.
   */
  private async bulk(client: Client, what: string, items: readonly BulkItem[]): Promise<void> {
    if (items.length === 0) return;
    const failures: ItemFailure[] = [];
    let pending = items;
    let lastRetried: ItemFailure[] = [];
    for (let attempt = 1; pending.length > 0; attempt++) {
      if (attempt > 1) await sleep(this.backoff(attempt - 1));
      const body = objectOf(
        await this.request(client, what, {
          method: 'POST',
          path: '/_bulk',
          querystring: { refresh: this.refresh },
          bulkBody: pending.flatMap((item) => [{ [item.action]: item.meta }, item.source]),
        }),
      );
      const answers = arrayOf(body['items']);
      if (answers.length !== pending.length) {
        throw new GpError('GP_STORE_FAILED', `Elasticsearch store could not ${what}: the bulk answer has ${answers.length} items for ${pending.length} sent`, { operation: what });
      }
      if (body['errors'] !== true) return this.throwFailures(what, failures);
      const retry: BulkItem[] = [];
      lastRetried = [];
      answers.forEach((answer, index) => {
        const item = pending[index] as BulkItem;
        const result = objectOf(Object.values(objectOf(answer))[0]);
        const status = numberOrNull(result['status']) ?? 0;
        if (status >= 200 && status < 300) return;
        const error = objectOf(result['error']);
        const failure: ItemFailure = { item, status, type: textOf(error['type']), reason: textOf(error['reason']) };
        if (status === 409 && failure.type === 'version_conflict_engine_exception' && item.action !== 'update') return;
        if (RETRIED_STATUSES.has(status) || (status === 409 && item.action === 'update')) {
          retry.push(item);
          lastRetried.push(failure);
        } else failures.push(failure);
      });
      if (retry.length > 0 && attempt >= this.attempts) {
        throw itemError(what, 'GP_STORE_FAILED', [...lastRetried, ...failures], `still refused after ${this.attempts} attempts`);
      }
      pending = retry;
    }
    this.throwFailures(what, failures);
  }

  private throwFailures(what: string, failures: readonly ItemFailure[]): void {
    if (failures.length === 0) return;
    // 400: the document itself does not fit (a mapping conflict, a field that does not parse):
    // bad input that no retry can fix. Anything else (403 read-only index, 404 …) is the cluster's.
    const code = failures.every((failure) => failure.status === 400) ? 'GP_INPUT_INVALID' : 'GP_STORE_FAILED';
    throw itemError(what, code, failures, 'refused');
  }

  /** Every hit of a search, in `sort` order (search_after pages), up to `limit`. */
  private async searchAll(client: Client, target: string, query: Json, sort: Json[], limit = Number.POSITIVE_INFINITY): Promise<{ id: string; source: Json }[]> {
    const hits: { id: string; source: Json }[] = [];
    let after: unknown[] | undefined;
    while (hits.length < limit) {
      const size = Math.min(limit - hits.length, MAX_HITS_PER_PAGE);
      const body: Json = { size, query, sort, track_total_hits: false };
      if (after !== undefined) body['search_after'] = after;
      const page = arrayOf(objectOf(objectOf(await this.search(client, target, body))['hits'])['hits']);
      for (const hit of page) {
        const object = objectOf(hit);
        hits.push({ id: textOf(object['_id']), source: objectOf(object['_source']) });
      }
      if (page.length < size) break;
      after = arrayOf(objectOf(page.at(-1))['sort']);
    }
    return hits;
  }

  /** Every bucket of a composite aggregation (pages of `PAGE_SIZE`, following `after_key`). */
  private async compositeAll(client: Client, target: string, query: Json, sources: Json[], aggs: Json): Promise<Json[]> {
    const buckets: Json[] = [];
    let after: unknown;
    for (;;) {
      const composite: Json = { size: PAGE_SIZE, sources };
      if (after !== undefined) composite['after'] = after;
      const body: Json = { size: 0, query, aggs: { groups: Object.keys(aggs).length === 0 ? { composite } : { composite, aggs } } };
      const groups = objectOf(objectOf(objectOf(await this.search(client, target, body))['aggregations'])['groups']);
      const page = arrayOf(groups['buckets']).map(objectOf);
      buckets.push(...page);
      after = groups['after_key'];
      if (page.length < PAGE_SIZE || after === undefined) return buckets;
    }
  }

  private search(client: Client, target: string, body: Json): Promise<unknown> {
    return this.request(client, 'search', { method: 'POST', path: `/${target}/_search`, querystring: { ...SEARCH_OPTIONS }, body });
  }

  private async count(client: Client, target: string): Promise<number> {
    const body = await this.request(client, 'count', { method: 'POST', path: `/${target}/_count`, querystring: { ...SEARCH_OPTIONS } });
    return numberOrNull(objectOf(body)['count']) ?? 0;
  }

  /** Keys of the devices whose last known site is `site`, per stream (from `gridpulse-devices`). */
  private async deviceKeysOfSite(client: Client, site: string, stream: string | undefined): Promise<Map<string, string[]>> {
    const filters: Json[] = [term('site', site)];
    if (stream !== undefined) filters.push(term('stream', stream));
    const hits = await this.searchAll(client, DEVICES_INDEX, { bool: { filter: filters } }, [sortBy('stream', 'asc', 'keyword'), sortBy('key', 'asc', 'keyword')]);
    const keys = new Map<string, string[]>();
    for (const { source } of hits) {
      const streamName = textOf(source['stream']);
      keys.set(streamName, [...(keys.get(streamName) ?? []), textOf(source['key'])]);
    }
    return keys;
  }

  /** The last known site of each (stream, key) that has one. */
  private async deviceSites(client: Client, devices: readonly [string, string][]): Promise<Map<string, string>> {
    const sites = new Map<string, string>();
    const keys = [...new Set(devices.map(([, key]) => key))];
    for (const chunk of chunks(keys, TERMS_CHUNK)) {
      const hits = await this.searchAll(client, DEVICES_INDEX, { bool: { filter: [{ terms: { key: chunk } }, { exists: { field: 'site' } }] } }, [
        sortBy('stream', 'asc', 'keyword'),
        sortBy('key', 'asc', 'keyword'),
      ]);
      for (const { source } of hits) sites.set(`${textOf(source['stream'])}\u0000${textOf(source['key'])}`, textOf(source['site']));
    }
    return sites;
  }

  /**
   * Deletes what `target` (an alias or pattern of daily indices) holds from before `cutoff`:
   * whole indices whose day ends at or before it, and, by query, the older documents of the day it
   * falls in. Returns how many documents went.
   */
  private async dropOlder(client: Client, target: string, cutoff: number): Promise<number> {
    const indices = await this.catIndices(client, target);
    let deleted = 0;
    const whole: string[] = [];
    const straddling: string[] = [];
    for (const { index, docs } of indices) {
      const day = indexDay(index);
      if (day === undefined) continue;
      if (day + DAY_MS <= cutoff) {
        whole.push(index);
        deleted += docs;
      } else if (day < cutoff) straddling.push(index);
    }
    if (straddling.length > 0) {
      deleted += await this.deleteByQuery(client, straddling.join(','), { range: { timestamp: { lt: cutoff, format: 'epoch_millis' } } });
    }
    await this.deleteIndices(client, whole);
    return deleted;
  }

  /**
   * Deletes resolved alerts whose resolution (else last update) is older than `cutoff`, with their
   * transitions; open and acknowledged alerts stay whatever their age. Then deletes the daily
   * alert indices from before the cutoff that are left empty.
   */
  private async dropResolvedAlerts(client: Client, cutoff: number): Promise<number> {
    const expired: Json = {
      bool: {
        filter: [term('status', 'resolved')],
        should: [
          { range: { resolvedAt: { lt: cutoff, format: 'epoch_millis' } } },
          { bool: { must_not: [{ exists: { field: 'resolvedAt' } }], filter: [{ range: { updatedAt: { lt: cutoff, format: 'epoch_millis' } } }] } },
        ],
        minimum_should_match: 1,
      },
    };
    const ids = (await this.searchAll(client, KIND_ALIASES.alerts, expired, [sortBy('id', 'asc', 'keyword')])).map((hit) => textOf(hit.source['id']));
    let deleted = 0;
    for (const chunk of chunks(ids, TERMS_CHUNK)) {
      // Both conditions again: an alert reopened since the search stays.
      deleted += await this.deleteByQuery(client, KIND_ALIASES.alerts, { bool: { filter: [expired, { terms: { id: chunk } }] } });
      await this.deleteByQuery(client, TRANSITIONS_INDEX, { terms: { alertId: chunk } });
    }
    const empty = (await this.catIndices(client, KIND_ALIASES.alerts))
      .filter(({ index, docs }) => {
        const day = indexDay(index);
        return docs === 0 && day !== undefined && day + DAY_MS <= cutoff;
      })
      .map(({ index }) => index);
    await this.deleteIndices(client, empty);
    return deleted;
  }

  /** `DELETE /a,b,…`, a few dozen names at a time (the request line has a length limit). */
  private async deleteIndices(client: Client, indices: readonly string[]): Promise<void> {
    for (const chunk of chunks(indices, DELETE_CHUNK)) {
      // ignore_unavailable: an index another store's retention deleted meanwhile is no error.
      await this.request(client, 'delete old indices', { method: 'DELETE', path: `/${chunk.join(',')}`, querystring: { ignore_unavailable: true } });
    }
  }

  private async catIndices(client: Client, target: string): Promise<{ index: string; docs: number }[]> {
    const body = await this.request(
      client,
      'list indices',
      { method: 'GET', path: `/_cat/indices/${target}`, querystring: { format: 'json', h: 'index,docs.count', expand_wildcards: 'open' } },
      [404],
    );
    return arrayOf(body).map((row) => {
      const object = objectOf(row);
      return { index: textOf(object['index']), docs: numberOrNull(Number(object['docs.count'])) ?? 0 };
    });
  }

  private async deleteByQuery(client: Client, target: string, query: Json): Promise<number> {
    const body = objectOf(
      await this.request(client, 'delete by query', {
        method: 'POST',
        path: `/${target}/_delete_by_query`,
        // conflicts=proceed: a document changed meanwhile is left for the next run, not an abort.
        querystring: { ...SEARCH_OPTIONS, conflicts: 'proceed', refresh: true },
        body: { query },
      }),
    );
    const failures = arrayOf(body['failures']);
    if (failures.length > 0) {
      const first = objectOf(objectOf(failures[0])['cause']);
      throw new GpError('GP_STORE_FAILED', `Elasticsearch store could not delete from ${target}: ${failures.length} failures, the first ${textOf(first['type'])}: ${textOf(first['reason'])}`, {
        operation: 'delete by query',
        index: target,
      });
    }
    return numberOrNull(body['deleted']) ?? 0;
  }

  /**
   * One request through the client, again after a 429, a 5xx or a lost connection (with
   * exponential backoff and jitter). Other errors become a GpError at once.
   */
  private async request(client: Client, what: string, request: Request, ignore: number[] = []): Promise<unknown> {
    for (let attempt = 1; ; attempt++) {
      try {
        const params: { method: string; path: string; querystring?: Record<string, string | number | boolean>; body?: Json; bulkBody?: Json[] } = {
          method: request.method,
          path: request.path,
        };
        if (request.querystring !== undefined) params.querystring = request.querystring;
        if (request.body !== undefined) params.body = request.body;
        if (request.bulkBody !== undefined) params.bulkBody = request.bulkBody;
        const response = await client.transport.request<unknown>(params, { ignore, maxRetries: 0 });
        if (response.statusCode !== null && ignore.includes(response.statusCode)) return [];
        return response.body;
      } catch (cause) {
        const name = cause instanceof Error ? cause.name : '';
        const status = statusOf(cause);
        const retriable = (status !== undefined && RETRIED_STATUSES.has(status)) || RETRIED_CLIENT_ERRORS.has(name);
        if (retriable && attempt < this.attempts) {
          await sleep(this.backoff(attempt));
          continue;
        }
        throw this.requestError(what, cause, status, attempt);
      }
    }
  }

  private requestError(what: string, cause: unknown, status: number | undefined, attempts: number): GpError {
    const name = cause instanceof Error ? cause.name : '';
    if (name === 'ProductNotSupportedError') {
      return new GpError(
        'GP_STORE_FAILED',
        `the server at ${this.redactedUrl} is not a supported Elasticsearch (the client's product check failed): expected Elasticsearch 7.x`,
        { url: this.redactedUrl, operation: what },
        { cause },
      );
    }
    // Elasticsearch's error shape is {error: {type, reason}, status}; a path it has no handler for
    // (an older release) answers {error: "no handler found for uri …", status}.
    const error = status === undefined ? undefined : objectOf((cause as { body?: unknown }).body)['error'];
    const reason =
      status === undefined ? messageOf(cause) : typeof error === 'string' ? `${status}: ${error}` : `${status} ${textOf(objectOf(error)['type'])}: ${textOf(objectOf(error)['reason'])}`;
    const tries = attempts > 1 ? ` (after ${attempts} attempts)` : '';
    return new GpError(
      'GP_STORE_FAILED',
      `Elasticsearch store at ${this.redactedUrl} could not ${what}: ${reason}${tries}`,
      status === undefined ? { url: this.redactedUrl, operation: what } : { url: this.redactedUrl, operation: what, status },
      { cause },
    );
  }

  private backoff(attempt: number): number {
    const ceiling = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
    // Half fixed, half random: writers that were refused together do not come back together.
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  // ---- lifecycle -------------------------------------------------------------------------

  /** Runs `task` with the client; calls made while closing are refused, calls in flight finish first. */
  private run<T>(what: string, task: (client: Client) => Promise<T>): Promise<T> {
    if (this.closing !== undefined) return Promise.reject(closedError());
    const result = (async () => task(await this.open()))().catch((cause: unknown) => {
      if (cause instanceof GpError) throw cause;
      throw new GpError('GP_STORE_FAILED', `Elasticsearch store could not ${what}: ${messageOf(cause)}`, { operation: what }, { cause });
    });
    const settled = result.catch(() => undefined);
    this.inFlight.add(settled);
    void settled.then(() => this.inFlight.delete(settled));
    return result;
  }

  private open(): Promise<Client> {
    return this.client.get();
  }

  private async connect(): Promise<Client> {
    let ClientClass: typeof Client;
    try {
      ClientClass = (await import('@elastic/elasticsearch')).Client;
    } catch (cause) {
      throw new GpError('GP_STORE_FAILED', `the elasticsearch store needs the "@elastic/elasticsearch" package (version 7): npm install @elastic/elasticsearch@7 (${messageOf(cause)})`, {}, { cause });
    }
    const options: ClientOptions = {
      node: this.node,
      // This store retries itself (429 included, which the client never retries), item by item for bulk.
      maxRetries: 0,
      requestTimeout: this.requestTimeoutMs,
      // One node: no pings to bring it back, the next request simply tries it again.
      resurrectStrategy: 'none',
    };
    if (this.auth !== undefined) options.auth = this.auth;
    const client = new ClientClass(options);
    try {
      // The first request makes the client check that the server is Elasticsearch (GET /).
      for (const kind of INDEX_KINDS) await this.putTemplate(client, streamTemplate('power', kind, this.keyFields['power'], this.shards));
      await this.putTemplate(client, internalTemplate(this.shards));
      // Other streams' templates are installed before their first write (streamTemplate).
      return client;
    } catch (cause) {
      this.templates.clear();
      await client.close().catch(() => undefined);
      if (cause instanceof GpError) throw cause;
      throw new GpError('GP_STORE_FAILED', `cannot open Elasticsearch store at ${this.redactedUrl}: ${messageOf(cause)}`, { url: this.redactedUrl }, { cause });
    }
  }

  private async shutdown(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
    const opening = this.client.current;
    if (opening === undefined) return;
    const client = await opening.catch(() => undefined);
    if (client === undefined) return;
    try {
      await client.close();
    } catch (cause) {
      throw new GpError('GP_STORE_FAILED', `closing Elasticsearch store at ${this.redactedUrl}: ${messageOf(cause)}`, { url: this.redactedUrl }, { cause });
    }
  }
}

// ---- helpers -----------------------------------------------------------------------------

/** The aggregate's `_id`: its identity (stream, key, window, start). */
export function aggregateId(a: Pick<Aggregate, 'stream' | 'key' | 'window' | 'start'>): string {
  return `${a.stream}|${a.key}|${a.window}|${Math.round(a.start)}`;
}

function parseUrl(url: unknown): { node: string; redacted: string; auth: { username: string; password: string } | undefined } {
  const expected = 'elasticsearch://[user:password@]host[:port] or elasticsearch+https://…';
  if (typeof url !== 'string' || url.trim() === '') {
    throw new GpError('GP_CONFIG_INVALID', `store url: expected ${expected}, got ${JSON.stringify(url)}`, { field: 'url' });
  }
  const match = /^(elasticsearch(?:\+(https?))?|https?):\/\/(.+)$/i.exec(url.trim());
  let parsed: URL | undefined;
  if (match !== null) {
    const scheme = (match[1] ?? '').toLowerCase();
    const protocol = scheme === 'https' || match[2]?.toLowerCase() === 'https' ? 'https' : 'http';
    try {
      parsed = new URL(`${protocol}://${match[3] ?? ''}`);
    } catch {
      parsed = undefined;
    }
  }
  if (parsed === undefined || parsed.hostname === '') {
    throw new GpError('GP_CONFIG_INVALID', `store url: expected ${expected}, got ${JSON.stringify(redact(url))}`, { field: 'url' });
  }
  const auth = parsed.username === '' ? undefined : { username: decodeURIComponent(parsed.username), password: decodeURIComponent(parsed.password) };
  parsed.username = '';
  parsed.password = '';
  if (parsed.port === '' && !/:\d+$/.test(parsed.host)) parsed.port = '9200';
  const node = parsed.toString().replace(/\/$/, '');
  return { node, redacted: auth === undefined ? node : node.replace('://', `://${auth.username}:***@`), auth };
}

/** Server URLs may carry a password; it never goes into a message or a log. */
function redact(url: string): string {
  return url.replace(/\/\/([^/@:]*):[^/@]*@/, '//$1:***@');
}

function itemError(what: string, code: 'GP_INPUT_INVALID' | 'GP_STORE_FAILED', failures: readonly ItemFailure[], verb: string): GpError {
  const [first] = failures;
  if (first === undefined) return new GpError('GP_INTERNAL', `Elasticsearch store could not ${what}: no failure to report`);
  const more = failures.length > 1 ? ` (and ${failures.length - 1} more: ${failures.slice(1, 4).map((f) => f.item.label).join(', ')}${failures.length > 4 ? ', …' : ''})` : '';
  return new GpError(
    code,
    `${first.item.label}: Elasticsearch ${verb} the document (index ${textOf(first.item.meta['_index'])}, _id ${JSON.stringify(first.item.meta['_id'])}) while trying to ${what}: ${first.status} ${first.type}: ${first.reason}${more}; the other documents of the batch were written`,
    {
      field: first.item.label,
      operation: what,
      index: first.item.meta['_index'],
      id: first.item.meta['_id'],
      status: first.status,
      type: first.type,
      failures: failures.map((f) => ({ item: f.item.label, id: f.item.meta['_id'], status: f.status, type: f.type })),
    },
  );
}

function term(field: string, value: unknown): Json {
  return { term: { [field]: value } };
}

function timeRange(field: string, from: number, to: number): Json {
  return { range: { [field]: { gte: Math.round(from), lte: Math.round(to), format: 'epoch_millis' } } };
}

/** A sort clause that does not fail on an index where the field was never mapped. */
function sortBy(field: string, order: 'asc' | 'desc', unmappedType: string): Json {
  return { [field]: { order, unmapped_type: unmappedType } };
}

function statField(metric: string, stat: string): string {
  return `stats.${metric}.${stat}`;
}

function statsOf(source: Json, metric: string): Json {
  return objectOf(objectOf(source['stats'])[metric]);
}

function aggValue(bucket: Json, name: string): unknown {
  return objectOf(bucket[name])['value'];
}

function sourceToAlert(source: Json): Alert {
  return {
    id: textOf(source['id']),
    stream: textOf(source['stream']),
    key: textOf(source['key']),
    site: textOrNull(source['site']) ?? undefined,
    type: textOf(source['alertType']),
    metric: textOrNull(source['metric']) ?? undefined,
    severity: textOf(source['alertLevel']) as Severity,
    status: textOf(source['status']) as AlertStatus,
    openedAt: numberOf(source['openedAt']),
    updatedAt: numberOf(source['updatedAt']),
    resolvedAt: numberOrNull(source['resolvedAt']) ?? undefined,
    score: numberOrNull(source['score']) ?? Number.NaN,
    peakScore: numberOrNull(source['peakScore']) ?? Number.NaN,
    value: numberOrNull(source['value']) ?? Number.NaN,
    findings: numberOf(source['findings']),
    explain: textOf(source['explain']),
  };
}

function statusOf(cause: unknown): number | undefined {
  if (!(cause instanceof Error) || cause.name !== 'ResponseError') return undefined;
  const status = (cause as { statusCode?: unknown }).statusCode;
  return typeof status === 'number' ? status : undefined;
}

function* chunks<T>(values: readonly T[], size: number): Generator<T[]> {
  for (let start = 0; start < values.length; start += size) yield values.slice(start, start + size);
}

function sleep(delayMs: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, delayMs));
}

/** NaN and Infinity are stored as null, as in the SQL stores. */
function finite(value: number | null | undefined): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

function ms(value: number | null | undefined): number | null {
  const number = finite(value);
  return number === null ? null : Math.round(number);
}

function objectOf(value: unknown): Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : {};
}

function arrayOf(value: unknown): unknown[] {
  return Array.isArray(value) ? (value as unknown[]) : [];
}

function numberOf(value: unknown): number {
  return typeof value === 'number' ? value : typeof value === 'string' && value !== '' ? Number(value) : Number.NaN;
}

function numberOrNull(value: unknown): number | null {
  if (value === null || value === undefined) return null;
  const number = numberOf(value);
  return Number.isFinite(number) ? number : null;
}

function textOf(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return value === null || value === undefined ? '' : JSON.stringify(value);
}

function textOrNull(value: unknown): string | null {
  return value === null || value === undefined ? null : textOf(value);
}

/** Code-unit order, as keyword fields sort (and as the SQL stores' COLLATE "C"). */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function positiveInteger(value: number, field: string): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new GpError('GP_CONFIG_INVALID', `${field}: expected a positive integer, got ${String(value)}`, { field });
  }
  return value;
}

function nonNegative(value: number, field: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new GpError('GP_CONFIG_INVALID', `${field}: expected a number of milliseconds >= 0, got ${String(value)}`, { field });
  }
  return value;
}

function messageOf(cause: unknown): string {
  if (cause instanceof AggregateError && cause.errors.length > 0) return cause.errors.map(messageOf).join('; ');
  return cause instanceof Error ? cause.message : String(cause);
}

function closedError(): GpError {
  return new GpError('GP_INTERNAL', CLOSED_ERROR);
}
