import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BACKFILL_FIELD } from '../model/index.js';
import { createAuthenticator, DEVICE_NOT_ALLOWED, OPEN_PRINCIPAL } from './auth.js';
import type { ApiContext } from './context.js';
import { ApiError, invalidInput, invalidInputDescribed } from './errors.js';
import { NDJSON_TYPES, readIngestBody, type IngestBody } from './ingest-body.js';
import type { IngestAuth, IngestRejection } from './platform.js';
import { createRateLimiter } from './rate-limit.js';
import { IngestHeaders, IngestResponse, ReadingsBody, StreamParams, errors } from './schemas.js';

interface Caller {
  auth: IngestAuth;
  /** Bucket key: the token's name, or the client address in open mode. */
  rateKey: string;
  stream: string;
  /** `X-Gridpulse-Backfill: true`: every reading of the request is marked backfill. */
  backfill: boolean;
}

/** The request header an edge agent sets on readings that waited in its spool (see `BACKFILL_FIELD`). */
export const BACKFILL_HEADER = 'x-gridpulse-backfill';

/**
 * `POST /v1/readings` and `POST /v1/streams/:stream/readings`. Everything that can be checked
 * from the headers (token, stream, rate, Content-Type, Content-Length) is checked before the
 * body is read; the body is then read with byte limits and parsed here, not by Fastify.
 */
export function registerIngestRoutes(app: FastifyInstance, context: ApiContext): void {
  const { platform, server, metrics } = context;
  const authenticator = createAuthenticator(server);
  const limiter = createRateLimiter({ ratePerSecond: server.limits.ratePerSecond, burst: server.limits.burst, now: context.now });
  const callers = new WeakMap<FastifyRequest, Caller>();
  const limits = { bodyBytes: server.limits.bodyBytes, decompressedBytes: context.maxDecompressedBytes, batchItems: server.limits.batchItems };

  function rateLimited(retryAfterSeconds: number, message: string): ApiError {
    metrics.rateLimited.inc();
    return new ApiError(429, 'GP_RATE_LIMITED', message, {
      expected: `at most ${server.limits.ratePerSecond} readings per second (burst ${server.limits.burst})`,
      headers: { 'retry-after': String(retryAfterSeconds) },
    });
  }

  app.register((scope, _options, done) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', async (request: FastifyRequest, payload: FastifyRequest['raw']) => readIngestBody(payload, request.headers, limits));

    // Everything the headers and the URL tell, checked before a byte of the body is read.
    const identify = (request: FastifyRequest): Caller => {
      const auth = authenticator.authenticate(request.headers.authorization);
      const named = (request.params as { stream?: string }).stream;
      const stream = named ?? platform.defaultStream;
      if (!platform.streams.some((s) => s.name === stream)) {
        throw new ApiError(404, 'GP_NOT_FOUND', `stream: expected one of ${platform.streams.map((s) => s.name).join(', ')}, got ${JSON.stringify(stream)}`, {
          field: 'stream',
          expected: `one of ${platform.streams.map((s) => s.name).join(', ')}`,
          got: JSON.stringify(stream),
        });
      }
      const rateKey = server.auth.mode === 'open' ? `${OPEN_PRINCIPAL}:${request.ip}` : auth.principal;
      if (limiter.available(rateKey) < 1) throw rateLimited(1, `rate limit: no readings left for ${describePrincipal(auth, rateKey)}; retry later`);
      return { auth, rateKey, stream, backfill: backfillOf(request.headers[BACKFILL_HEADER]) };
    };
    scope.addHook('onRequest', (request, _reply, done) => {
      try {
        callers.set(request, identify(request));
        done();
      } catch (error) {
        done(error as Error);
      }
    });

    const handler = async (request: FastifyRequest) => {
      const caller = callers.get(request);
      if (caller === undefined) throw new ApiError(500, 'GP_INTERNAL', 'ingest: the request was not authenticated');
      const body = request.body as IngestBody | undefined;
      if (body === undefined || body === null) throw invalidInputDescribed('body', 'readings as JSON or NDJSON', 'an empty body');
      if (body.count > server.limits.burst) {
        throw new ApiError(413, 'GP_PAYLOAD_TOO_LARGE', `body: ${body.count} readings is more than the rate limit's burst of ${server.limits.burst}`, {
          field: 'body',
          expected: `at most ${server.limits.burst} readings`,
          got: `${body.count} readings`,
        });
      }
      const wait = limiter.take(caller.rateKey, body.count);
      if (wait > 0) throw rateLimited(wait, `rate limit: ${body.count} readings exceed what ${describePrincipal(caller.auth, caller.rateKey)} may send now; retry after ${wait} s`);

      // Backfill: the marker goes into each reading, so it travels through the log to the engine.
      const items = caller.backfill ? body.items.map(markBackfill) : body.items;
      const result = items.length === 0 ? { accepted: 0, rejected: [] } : await platform.ingest(caller.stream, items, caller.auth);
      const positions = body.positions;
      const fromPlatform: IngestRejection[] = result.rejected.map((r) => ({ ...r, index: positions === undefined ? r.index : (positions[r.index] ?? r.index) }));
      const refusedForKey = fromPlatform.filter((r) => r.reason === DEVICE_NOT_ALLOWED).length;
      if (result.accepted === 0 && body.count > 0 && refusedForKey === body.count) {
        const first = fromPlatform[0];
        throw new ApiError(403, 'GP_AUTH_FORBIDDEN', `every reading was refused: ${DEVICE_NOT_ALLOWED} ("${caller.auth.principal}")`, {
          field: first?.field,
          expected: 'a device this token may write',
          got: first?.got,
        });
      }
      const rejected = body.invalid.length === 0 ? fromPlatform : [...body.invalid, ...fromPlatform].sort((a, b) => a.index - b.index);
      return { accepted: result.accepted, rejected: rejected.map(cleanRejection) };
    };

    const schema = (summary: string, withStream: boolean) => ({
      tags: ['ingest'],
      summary,
      description:
        'Body: one reading (JSON object), an array of readings, or NDJSON (Content-Type application/x-ndjson); Content-Encoding gzip allowed. ' +
        'Answers after the accepted readings are durable in the log, with the index and reason of each rejected one ' +
        '(for NDJSON the index is the line number − 1). Limits: body size (413, before the body is read whole), readings per request (413), ' +
        'readings per second per token (429 with Retry-After).',
      consumes: ['application/json', ...NDJSON_TYPES.slice(0, 1)],
      headers: IngestHeaders,
      ...(withStream ? { params: StreamParams } : {}),
      body: ReadingsBody,
      security: server.auth.mode === 'tokens' ? [{ bearer: [] }] : [],
      response: { 200: IngestResponse, ...errors(400, 401, 403, 404, 413, 415, 429) },
    });
    // The body is parsed and checked here (not by ajv); the schemas above are for the OpenAPI document.
    const acceptAll = () => (value: unknown) => ({ value });
    scope.post('/v1/readings', { schema: schema('Send readings to the default stream', false), validatorCompiler: acceptAll }, handler);
    scope.post('/v1/streams/:stream/readings', { schema: schema('Send readings to a stream', true), validatorCompiler: acceptAll }, handler);
    done();
  });
}

/** `true` or `false` (any case); absent is false; anything else is refused before the body is read. */
function backfillOf(header: string | string[] | undefined): boolean {
  if (header === undefined) return false;
  const value = Array.isArray(header) ? header.join(',') : header;
  const word = value.trim().toLowerCase();
  if (word === 'true') return true;
  if (word === 'false') return false;
  throw invalidInput('X-Gridpulse-Backfill', 'true or false', value);
}

/** A reading object with the backfill marker set; anything else is left for the decoder to reject. */
function markBackfill(item: unknown): unknown {
  return item !== null && typeof item === 'object' && !Array.isArray(item) ? { ...(item as Record<string, unknown>), [BACKFILL_FIELD]: true } : item;
}

function describePrincipal(auth: IngestAuth, rateKey: string): string {
  return auth.principal === OPEN_PRINCIPAL ? `client ${rateKey.slice(OPEN_PRINCIPAL.length + 1)}` : `token "${auth.principal}"`;
}

function cleanRejection(r: IngestRejection): IngestRejection {
  const out: IngestRejection = { index: r.index, reason: r.reason };
  if (r.field !== undefined) out.field = r.field;
  if (r.expected !== undefined) out.expected = r.expected;
  if (r.got !== undefined) out.got = r.got;
  return out;
}
