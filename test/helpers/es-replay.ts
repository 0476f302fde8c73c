/**
 * A replay of recorded Elasticsearch exchanges, for the Elasticsearch store's tests: no
 * Elasticsearch can run on this machine, so the store talks to this HTTP server (node:http on
 * 127.0.0.1, port 0), which answers with the responses recorded in test/fixtures/elasticsearch/
 * (shapes from the Elasticsearch 7.10 REST API documentation) and records what the store sent.
 *
 * A script is a list of exchanges answered in order: each request takes the first exchange not
 * yet used whose method, path and listed query parameters match (so requests the store sends in
 * parallel still find theirs). "Standing" exchanges (the `GET /` the client's product check sends)
 * answer any number of times. A request no exchange matches is answered 400 and listed in
 * `unexpected`; a request whose body differs from what the exchange expects is answered all the
 * same and listed in `mismatches`, so a test sees every difference at once in `assertDone()`.
 *
 * @example
 * const replay = await startReplay([fixture('index-template-put')], { standing: [fixture('info-7.10.2')] });
 * const store = createElasticsearchStore({ url: replay.url.replace('http:', 'elasticsearch:') });
 * await store.ready();
 * replay.assertDone();
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';

export interface Exchange {
  /** What the exchange shows, and the documentation page its shapes come from. */
  description?: string;
  source: string;
  request: {
    method: string;
    /** Path without the query string. */
    path: string;
    /** Query parameters that must be present with these values (others may be present too). */
    query?: Record<string, string>;
    /** The parts of a JSON body that matter (every listed key must be there with that value). */
    body?: unknown;
    /** For NDJSON bodies (`_bulk`): the lines, each compared like `body`; the count must match. */
    ndjson?: unknown[];
  };
  response: { status: number; headers?: Record<string, string>; body: unknown };
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: IncomingMessage['headers'];
  /** The JSON body, or for NDJSON the parsed lines; undefined when empty. */
  body: unknown;
  /** Which exchange answered (its index in the script, or 'standing' / 'unexpected'). */
  answeredBy: number | 'standing' | 'unexpected';
}

export interface Replay {
  /** `http://127.0.0.1:<port>` */
  url: string;
  requests: RecordedRequest[];
  /** Requests without the product check's `GET /`. */
  storeRequests(): RecordedRequest[];
  unexpected: string[];
  mismatches: string[];
  /** Fails unless every scripted exchange was used, nothing unexpected came and every body matched. */
  assertDone(): void;
  close(): Promise<void>;
}

const FIXTURES = new URL('../fixtures/elasticsearch/', import.meta.url);

/**
 * A recorded exchange from test/fixtures/elasticsearch/<name>.json, with parts replaced (for
 * example the index a path names).
 */
export function fixture(name: string, overrides: { path?: string; query?: Record<string, string>; requestBody?: unknown; ndjson?: unknown[]; responseBody?: unknown } = {}): Exchange {
  const exchange = JSON.parse(readFileSync(new URL(`${name}.json`, FIXTURES), 'utf8')) as Exchange;
  if (overrides.path !== undefined) exchange.request.path = overrides.path;
  if (overrides.query !== undefined) exchange.request.query = overrides.query;
  if (overrides.requestBody !== undefined) exchange.request.body = overrides.requestBody;
  if (overrides.ndjson !== undefined) exchange.request.ndjson = overrides.ndjson;
  if (overrides.responseBody !== undefined) exchange.response.body = overrides.responseBody;
  return exchange;
}

export async function startReplay(script: readonly Exchange[], options: { standing?: readonly Exchange[] } = {}): Promise<Replay> {
  const used = new Array<boolean>(script.length).fill(false);
  const requests: RecordedRequest[] = [];
  const unexpected: string[] = [];
  const mismatches: string[] = [];
  const standing = options.standing ?? [];

  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const url = new URL(request.url ?? '/', 'http://replay');
      const method = request.method ?? 'GET';
      const query = Object.fromEntries(url.searchParams);
      const text = Buffer.concat(chunks).toString('utf8');
      const body = parseBody(text, String(request.headers['content-type'] ?? ''));
      const matches = (exchange: Exchange): boolean =>
        exchange.request.method === method &&
        exchange.request.path === decodeURIComponent(url.pathname) &&
        Object.entries(exchange.request.query ?? {}).every(([name, value]) => query[name] === value);
      const index = script.findIndex((exchange, i) => !used[i] && matches(exchange));
      let exchange: Exchange | undefined;
      let answeredBy: RecordedRequest['answeredBy'];
      if (index >= 0) {
        used[index] = true;
        exchange = script[index];
        answeredBy = index;
      } else {
        exchange = standing.find(matches);
        answeredBy = exchange === undefined ? 'unexpected' : 'standing';
      }
      requests.push({ method, path: decodeURIComponent(url.pathname), query, headers: request.headers, body, answeredBy });
      if (exchange === undefined) {
        unexpected.push(`${method} ${url.pathname}${url.search} ${text.slice(0, 500)}`);
        send(response, 400, {}, { error: { type: 'replay_unexpected_request', reason: `no recorded exchange for ${method} ${url.pathname}` }, status: 400 });
        return;
      }
      const where = `${method} ${url.pathname} (exchange ${String(answeredBy)}: ${exchange.description ?? ''})`;
      if (exchange.request.ndjson !== undefined) {
        const lines = Array.isArray(body) ? body : [];
        if (lines.length !== exchange.request.ndjson.length) mismatches.push(`${where}: expected ${exchange.request.ndjson.length} NDJSON lines, got ${lines.length}: ${text}`);
        exchange.request.ndjson.forEach((expected, line) => {
          const problem = subsetProblem(expected, lines[line], `line ${line}`);
          if (problem !== undefined) mismatches.push(`${where}: ${problem}`);
        });
      } else if (exchange.request.body !== undefined) {
        const problem = subsetProblem(exchange.request.body, body, 'body');
        if (problem !== undefined) mismatches.push(`${where}: ${problem}`);
      }
      send(response, exchange.response.status, exchange.response.headers ?? {}, exchange.response.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    storeRequests: () => requests.filter((r) => !(r.method === 'GET' && r.path === '/')),
    unexpected,
    mismatches,
    assertDone() {
      const unused = script.map((exchange, i) => (used[i] ? undefined : `${exchange.request.method} ${exchange.request.path} (${exchange.description ?? ''})`)).filter((x) => x !== undefined);
      assert.deepEqual({ unused, unexpected, mismatches }, { unused: [], unexpected: [], mismatches: [] });
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error === undefined ? resolve() : reject(error)));
      }),
  };
}

function send(response: ServerResponse, status: number, headers: Record<string, string>, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', ...headers, 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

function parseBody(text: string, contentType: string): unknown {
  if (text === '') return undefined;
  if (contentType.includes('ndjson')) return text.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as unknown);
  return JSON.parse(text) as unknown;
}

/** Why `actual` does not contain `expected` (objects: listed keys; arrays: same length, element-wise), or undefined. */
export function subsetProblem(expected: unknown, actual: unknown, path: string): string | undefined {
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) return `${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`;
    for (let i = 0; i < expected.length; i++) {
      const problem = subsetProblem(expected[i], actual[i], `${path}[${i}]`);
      if (problem !== undefined) return problem;
    }
    return undefined;
  }
  if (typeof expected === 'object' && expected !== null) {
    if (typeof actual !== 'object' || actual === null || Array.isArray(actual)) return `${path}: expected an object, got ${JSON.stringify(actual)}`;
    for (const [key, value] of Object.entries(expected)) {
      const problem = subsetProblem(value, (actual as Record<string, unknown>)[key], `${path}.${key}`);
      if (problem !== undefined) return problem;
    }
    return undefined;
  }
  return Object.is(expected, actual) ? undefined : `${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`;
}
