import { GpError } from '../model/index.js';
import { createDuckDbStore } from './duckdb-store.js';
import { createClickHouseStore } from './clickhouse-store.js';
import { createElasticsearchStore } from './elasticsearch-store.js';
import { createFanOutStore } from './fanout-store.js';
import { createPostgresStore } from './postgres-store.js';
import type { RetentionPolicy, Store } from './store.js';

export interface StoreOptions {
  /** Retention used by `applyRetention` when a call gives none; missing fields take `DEFAULT_RETENTION`. */
  retention?: Partial<RetentionPolicy>;
}

/** The store URLs this build understands. */
export const SUPPORTED_STORE_URLS: readonly string[] = [
  'duckdb:<path>',
  'duckdb::memory:',
  'postgres://<user>@<host>:<port>/<database>',
  'clickhouse://[<user>:<password>@]<host>:8123/<database>',
  'elasticsearch://[<user>:<password>@]<host>:<port>',
  'elasticsearch+https://…',
];

// Known to gridpulse but not built into this package yet: named so the message can say so.
const NOT_BUILT_IN = ['timescaledb'];

/**
 * Creates a store from a URL. `duckdb:<path>` opens (or creates) a DuckDB file, creating its parent
 * directories; `duckdb::memory:` keeps everything in memory. `duckdb://<path>` is accepted too.
 * `postgres://` or `postgresql://` (libpq URL, `?schema=name` optional) opens the PostgreSQL store;
 * its client (`pg`) is loaded only when that store first connects. `elasticsearch://` (HTTP) or
 * `elasticsearch+https://` opens the Elasticsearch store (7.x API). `clickhouse://host:8123/database`
 * opens the ClickHouse store (HTTP interface; the database is created if missing).
 *
 * Several URLs separated by commas fan out: every write goes to each store, queries are answered
 * by the first (see `createFanOutStore`), e.g. `duckdb:./data/gp.duckdb,elasticsearch://localhost:9200`.
 *
 * @example
 * const store = createStore('duckdb:./data/gridpulse.duckdb', { retention: { readingsMs: 7 * 86_400_000 } });
 * await store.ready();
 */
export function createStore(url: string, options: StoreOptions = {}): Store {
  if (typeof url === 'string' && url.includes(',')) {
    const parts = url.split(',').map((part) => part.trim());
    const empty = parts.findIndex((part) => part === '');
    if (empty >= 0) {
      throw new GpError('GP_STORE_URL_INVALID', `store url ${JSON.stringify(redactUrl(url))}: expected store URLs separated by commas, got an empty one at position ${empty + 1}`, {
        field: 'url',
      });
    }
    return createFanOutStore(parts.map((part) => createStore(part, options)));
  }
  const supported = SUPPORTED_STORE_URLS.join(' or ');
  if (typeof url !== 'string' || url.trim() === '') {
    throw new GpError('GP_STORE_URL_INVALID', `store url: expected ${supported}, got ${JSON.stringify(url)}`, { field: 'url' });
  }
  const match = /^([a-z][a-z0-9+.-]*):(.*)$/i.exec(url.trim());
  const scheme = match?.[1]?.toLowerCase();
  if (match === null || scheme === undefined) {
    throw new GpError('GP_STORE_URL_INVALID', `store url: expected ${supported}, got ${JSON.stringify(url)} (no scheme)`, { field: 'url', url });
  }
  if (scheme === 'duckdb') {
    let path = match[2] ?? '';
    if (path.startsWith('//')) path = path.slice(2);
    if (path === '') {
      throw new GpError('GP_STORE_URL_INVALID', `store url: expected ${supported}, got ${JSON.stringify(url)} (no path after "duckdb:")`, {
        field: 'url',
        url,
      });
    }
    return createDuckDbStore(options.retention === undefined ? { path } : { path, retention: options.retention });
  }
  if (scheme === 'postgres' || scheme === 'postgresql') {
    if (!/^postgres(ql)?:\/\/./i.test(url.trim())) {
      throw new GpError('GP_STORE_URL_INVALID', `store url ${JSON.stringify(redactUrl(url))}: expected postgres://<user>@<host>:<port>/<database>`, {
        field: 'url',
        scheme,
      });
    }
    const trimmed = url.trim();
    return createPostgresStore(options.retention === undefined ? { url: trimmed } : { url: trimmed, retention: options.retention });
  }
  if (scheme === 'clickhouse') {
    const trimmed = url.trim();
    return createClickHouseStore(options.retention === undefined ? { url: trimmed } : { url: trimmed, retention: options.retention });
  }
  if (scheme === 'elasticsearch' || scheme === 'elasticsearch+https') {
    const trimmed = url.trim();
    return createElasticsearchStore(options.retention === undefined ? { url: trimmed } : { url: trimmed, retention: options.retention });
  }
  const why = NOT_BUILT_IN.includes(scheme) ? `the ${scheme} store is not part of this build` : `unknown store scheme "${scheme}"`;
  throw new GpError('GP_STORE_URL_INVALID', `store url ${JSON.stringify(redactUrl(url))}: ${why}; this build supports ${supported}`, {
    field: 'url',
    scheme,
  });
}

/**
 * A store URL with its password replaced by `***`: server URLs may carry one, and it never goes
 * into a message or a log.
 *
 * @example
 * redactUrl('postgres://gp:secret@db:5432/gp'); // 'postgres://gp:***@db:5432/gp'
 */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^/@:,]*):[^/@,]*@/g, '//$1:***@');
}
