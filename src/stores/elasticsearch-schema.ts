/**
 * The Elasticsearch layout of gridpulse: index names, index templates and their mapping. The
 * store (elasticsearch-store.ts) writes and reads through these names only.
 *
 * Choices, and why:
 * - Daily indices named by the UTC day of each document's event time, as in the grid-pulse
 *   reference design (section 5): for the `power` stream exactly `power-usage-raw-YYYY.MM.DD`
 *   (readings), `power-usage-agg-YYYY.MM.DD` (window aggregates) and `power-alerts-YYYY.MM.DD`
 *   (alerts, by the day they opened). Any other stream gets `<stream>-raw-…`, `<stream>-agg-…`
 *   and `<stream>-alerts-…` (the stream name lower-cased, characters an index name may not hold
 *   replaced by `_`). A whole old day is dropped by deleting its index.
 * - Each of those index families gets a composable index template (`PUT _index_template`, 7.8+)
 *   rather than a legacy `_template`: legacy templates are deprecated since 7.8, and when a
 *   composable template matches a new index, legacy templates are ignored, so a stray legacy
 *   template that matches `*` cannot change our mapping. Priority 200 keeps ours above the
 *   built-in `logs-*-*` / `metrics-*-*` templates (priority 100), which do not overlap anyway.
 * - Every template also adds its index to one alias per kind (`gridpulse-raw`, `gridpulse-agg`,
 *   `gridpulse-alerts`), so queries over all streams and retention search one name, and indices
 *   that merely look like ours (`nginx-raw-…`) are never read or deleted.
 * - What the reference does not name lives in indices of gridpulse's own: ops events in
 *   `gridpulse-ops-YYYY.MM.DD` (day of the event time, else of the watermark; events with neither
 *   in `gridpulse-ops-undated`, which retention never deletes), alert transitions in one index
 *   `gridpulse-alert-transitions` (few documents; they are deleted with their alert), and the last
 *   known site of each device in `gridpulse-devices` (Elasticsearch has no joins; the fleet and
 *   quality queries look sites up there). One template, `gridpulse-internal`, maps them.
 * - The mapping is the reference's (`timestamp` date, `meterId`/`siteId`/`alertType`/`alertLevel`
 *   keyword, `usageKw` scaled_float ×100, `explain` text) plus the fields every document of
 *   gridpulse carries (`stream`, `key`, `site` keyword, …). Dynamic numbers map to `double` (not
 *   the default `float`/`long`), so the statistics the fleet query sums in Elasticsearch are the
 *   exact values written; dynamic strings map to `keyword`.
 * - Documents keep the exact values in `_source` and the store reads them from there; the
 *   scaled_float `usageKw` (0.01 kW steps) is what Kibana aggregates on.
 */

export const DAY_MS = 86_400_000;

/** The three index families of a stream. */
export type IndexKind = 'raw' | 'agg' | 'alerts';
export const INDEX_KINDS: readonly IndexKind[] = ['raw', 'agg', 'alerts'];

/** One alias per kind, over every stream's daily indices of that kind. */
export const KIND_ALIASES: Readonly<Record<IndexKind, string>> = {
  raw: 'gridpulse-raw',
  agg: 'gridpulse-agg',
  alerts: 'gridpulse-alerts',
};

export const OPS_INDEX_PREFIX = 'gridpulse-ops-';
export const OPS_INDEX_PATTERN = `${OPS_INDEX_PREFIX}*`;
export const OPS_UNDATED_INDEX = `${OPS_INDEX_PREFIX}undated`;
export const TRANSITIONS_INDEX = 'gridpulse-alert-transitions';
export const DEVICES_INDEX = 'gridpulse-devices';
export const INTERNAL_TEMPLATE = 'gridpulse-internal';

/** Bumped when the mapping changes; recorded in each template's `_meta`. */
export const ELASTICSEARCH_SCHEMA_VERSION = 1;
const TEMPLATE_PRIORITY = 200;

/** How a stream names its device (and site) in documents, for Kibana users of the reference design. */
export interface KeyFields {
  key: string;
  site?: string;
}

/** The reference design's names for power meters, and the machine stream's own. */
export const DEFAULT_KEY_FIELDS: Readonly<Record<string, KeyFields>> = {
  power: { key: 'meterId', site: 'siteId' },
  machines: { key: 'machine_id' },
};

// The reference design's names for the power stream (section 5 of grid-pulse.md).
const POWER_BASES: Readonly<Record<IndexKind, string>> = {
  raw: 'power-usage-raw',
  agg: 'power-usage-agg',
  alerts: 'power-alerts',
};

/** An index name may not hold upper case, `\ / * ? " < > | , #`, spaces or `:`, nor start with `-_+.`. */
export function indexSafe(stream: string): string {
  const safe = stream.toLowerCase().replace(/[\\/*?"<>|,# :]/g, '_');
  return /^[-_+.]/.test(safe) ? `s${safe}` : safe;
}

/** `power-usage-raw`, `machines-agg`, …: the name of a stream's daily indices of one kind, without the day. */
export function indexBase(stream: string, kind: IndexKind): string {
  if (stream === 'power') return POWER_BASES[kind];
  const safe = indexSafe(stream);
  // `Power` or `power-usage` must not land in the power stream's indices (and template).
  return safe === 'power' || safe === 'power-usage' ? `stream-${safe}-${kind}` : `${safe}-${kind}`;
}

/** `YYYY.MM.DD` of the UTC day of `time` (epoch ms). */
export function dayStamp(time: number): string {
  return new Date(time).toISOString().slice(0, 10).replaceAll('-', '.');
}

/**
 * The daily index of a document.
 *
 * @example
 * dailyIndex('power', 'raw', Date.UTC(2025, 10, 7, 12)); // 'power-usage-raw-2025.11.07'
 */
export function dailyIndex(stream: string, kind: IndexKind, time: number): string {
  return `${indexBase(stream, kind)}-${dayStamp(time)}`;
}

export function opsIndex(at: number | null): string {
  return at === null ? OPS_UNDATED_INDEX : `${OPS_INDEX_PREFIX}${dayStamp(at)}`;
}

/** Start (epoch ms) of the day a daily index holds, from its name; undefined for any other index. */
export function indexDay(index: string): number | undefined {
  const match = /-(\d{4})\.(\d{2})\.(\d{2})$/.exec(index);
  if (match === null) return undefined;
  const day = Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3]));
  return Number.isFinite(day) && dayStamp(day) === `${match[1]}.${match[2]}.${match[3]}` ? day : undefined;
}

/** The template of one stream's index family. */
export function streamTemplateName(stream: string, kind: IndexKind): string {
  return `gridpulse-${indexBase(stream, kind)}`;
}

/**
 * The mapping of a stream's documents: the reference design's fields, the fields every gridpulse
 * document carries, and the stream's own key fields.
 */
export function streamMapping(keyFields: KeyFields | undefined): Record<string, unknown> {
  const keyword = { type: 'keyword' };
  const date = { type: 'date' };
  const properties: Record<string, unknown> = {
    // The reference design's mapping, as written there.
    timestamp: date,
    meterId: keyword,
    siteId: keyword,
    usageKw: { type: 'scaled_float', scaling_factor: 100 },
    alertType: keyword,
    alertLevel: keyword,
    explain: { type: 'text' },
    // Every gridpulse document.
    stream: keyword,
    key: keyword,
    site: keyword,
    // Readings.
    offset: { type: 'long' },
    // Aggregates: the window's statistics per metric under stats.<metric>.<stat>.
    window: keyword,
    end: date,
    revision: { type: 'long' },
    count: { type: 'long' },
    energyKwh: { type: 'double' },
    metrics: keyword,
    stats: { type: 'object', dynamic: true },
    // Alerts.
    id: keyword,
    metric: keyword,
    status: keyword,
    openedAt: date,
    updatedAt: date,
    resolvedAt: date,
    score: { type: 'double' },
    peakScore: { type: 'double' },
    value: { type: 'double' },
    findings: { type: 'long' },
    seq: { type: 'long' },
  };
  if (keyFields !== undefined) {
    properties[keyFields.key] ??= keyword;
    if (keyFields.site !== undefined) properties[keyFields.site] ??= keyword;
  }
  return { dynamic_templates: DYNAMIC_TEMPLATES, properties };
}

// Metric values and statistics arrive as dynamic fields; JSON numbers become double (exact sums),
// strings keyword.
const DYNAMIC_TEMPLATES = [
  { whole_numbers_as_double: { match_mapping_type: 'long', mapping: { type: 'double' } } },
  { fractions_as_double: { match_mapping_type: 'double', mapping: { type: 'double' } } },
  { strings_as_keyword: { match_mapping_type: 'string', mapping: { type: 'keyword', ignore_above: 1024 } } },
];

/** The mapping of ops events, alert transitions and devices (one template for the three). */
export function internalMapping(): Record<string, unknown> {
  const keyword = { type: 'keyword' };
  const date = { type: 'date' };
  return {
    dynamic_templates: DYNAMIC_TEMPLATES,
    properties: {
      timestamp: date,
      id: keyword,
      stream: keyword,
      key: keyword,
      site: keyword,
      kind: keyword,
      // Ops events.
      time: date,
      watermark: date,
      offset: { type: 'long' },
      reason: { type: 'text' },
      field: keyword,
      expected: keyword,
      got: keyword,
      lagMs: { type: 'long' },
      missed: { type: 'long' },
      // Alert transitions.
      alertId: keyword,
      seq: { type: 'long' },
      status: keyword,
      severity: keyword,
      score: { type: 'double' },
      explain: { type: 'text' },
      by: keyword,
      note: { type: 'text' },
    },
  };
}

export interface IndexTemplate {
  name: string;
  body: Record<string, unknown>;
}

/** `PUT _index_template/<name>` for one stream's index family (7.8+ composable template). */
export function streamTemplate(stream: string, kind: IndexKind, keyFields: KeyFields | undefined, shards: number): IndexTemplate {
  return {
    name: streamTemplateName(stream, kind),
    body: {
      index_patterns: [`${indexBase(stream, kind)}-*`],
      priority: TEMPLATE_PRIORITY,
      template: {
        settings: { number_of_shards: shards },
        mappings: streamMapping(keyFields),
        aliases: { [KIND_ALIASES[kind]]: {} },
      },
      _meta: { managed_by: 'gridpulse', schema_version: ELASTICSEARCH_SCHEMA_VERSION, stream, kind },
    },
  };
}

export function internalTemplate(shards: number): IndexTemplate {
  return {
    name: INTERNAL_TEMPLATE,
    body: {
      index_patterns: [OPS_INDEX_PATTERN, TRANSITIONS_INDEX, DEVICES_INDEX],
      priority: TEMPLATE_PRIORITY,
      template: { settings: { number_of_shards: shards }, mappings: internalMapping() },
      _meta: { managed_by: 'gridpulse', schema_version: ELASTICSEARCH_SCHEMA_VERSION },
    },
  };
}

/**
 * Fields of the stream documents themselves. A metric of that name could not sit beside them at
 * the top level of a reading, so the store refuses it (and keeps it out of an aggregate's top level).
 */
export const RESERVED_FIELDS: ReadonlySet<string> = new Set([
  'timestamp', 'stream', 'key', 'site', 'offset', 'window', 'end', 'revision', 'count', 'energyKwh', 'metrics', 'stats',
  'id', 'metric', 'status', 'openedAt', 'updatedAt', 'resolvedAt', 'score', 'peakScore', 'value', 'findings', 'seq',
  'alertType', 'alertLevel', 'explain', 'meterId', 'siteId',
]);
