import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import fastifyStatic from '@fastify/static';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { ServerConfig } from '../config/index.js';
import type { ApiContext } from './context.js';
import { ApiError, errorBody, invalidInput, toApiError } from './errors.js';
import { createApiMetrics } from './metrics.js';
import type { Platform } from './platform.js';
import { registerCompatibilityRoutes } from './routes-compat.js';
import { registerDeliveryRoutes } from './routes-delivery.js';
import { registerFleetRoutes } from './routes-fleet.js';
import { registerIncidentRoutes } from './routes-incidents.js';
import { registerIngestRoutes } from './routes-ingest.js';
import { registerLiveRoutes } from './routes-live.js';
import { registerMlRoutes } from './routes-ml.js';
import { registerOpsRoutes } from './routes-ops.js';
import { registerPortalRoutes } from './routes-portal.js';

export interface ApiAppOptions {
  platform: Platform;
  server: ServerConfig;
  /** The built dashboard (Vite's output, e.g. dist/ui). Served at / when it holds an index.html. */
  uiDir?: string | undefined;
  /** Fastify's logger option (false, true or pino options). Default false. */
  logger?: FastifyServerOptions['logger'] | undefined;
  /** Wall clock in epoch ms, for rate limits and default time ranges. Default `Date.now`. */
  now?: (() => number) | undefined;
  /** Largest ingest body after gunzip (the guard against gzip bombs). Default 10 × `server.limits.bodyBytes`. */
  maxDecompressedBytes?: number | undefined;
  /** Interval of the `status` event on /api/live. Default 2000 ms. */
  liveStatusIntervalMs?: number | undefined;
  /** Interval of the heartbeat comment on /api/live. Default 15000 ms. */
  liveHeartbeatMs?: number | undefined;
  /** Version shown in the OpenAPI document. */
  version?: string | undefined;
}

/** Paths that always answer JSON (never the dashboard's index.html). */
const API_PREFIXES = ['/api/', '/v1/', '/docs', '/metrics', '/healthz', '/readyz', '/simulate/'];

/**
 * Builds the HTTP app: ingest (`/v1/...`), the portal (`/api/...`), live SSE, compatibility
 * routes, `/metrics`, `/healthz`, `/readyz`, the OpenAPI document at `/docs` and the dashboard at
 * `/`. The app never listens itself: the caller does (`gridpulse up`), or tests use `inject()`.
 * Errors are JSON `{ error: { code, message, field?, expected?, got? } }` with a stable GP_ code.
 *
 * @example
 * const app = await createApiApp({ platform, server: config.server, uiDir: 'dist/ui' });
 * await app.listen({ host: config.server.host, port: config.server.port });
 * // tests: const response = await app.inject({ method: 'GET', url: '/api/streams' });
 */
export async function createApiApp(options: ApiAppOptions): Promise<FastifyInstance> {
  const { platform, server } = options;
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: 64 * 1024,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 256 },
    // verbose: validation errors carry the value that failed, for `got`.
    ajv: { customOptions: { verbose: true } },
  });
  const metrics = createApiMetrics(platform);
  const context: ApiContext = {
    platform,
    server,
    metrics,
    now: options.now ?? Date.now,
    maxDecompressedBytes: options.maxDecompressedBytes ?? 10 * server.limits.bodyBytes,
    liveStatusIntervalMs: options.liveStatusIntervalMs ?? 2000,
    liveHeartbeatMs: options.liveHeartbeatMs ?? 15_000,
  };

  app.setErrorHandler((error, request, reply) => {
    const apiError = toApiError(error);
    if (apiError.statusCode >= 500) request.log.error({ err: error }, 'request failed');
    for (const [name, value] of Object.entries(apiError.details.headers ?? {})) void reply.header(name, value);
    return reply.status(apiError.statusCode).send(errorBody(apiError));
  });

  // ajv would coerce "0x10", "1e3" or "Infinity" into numbers: integer query values must be plain digits.
  app.addHook('preValidation', (request, _reply, done) => {
    const schema = request.routeOptions.schema?.querystring as { properties?: Record<string, IntegerSchema> } | undefined;
    done(checkIntegers(schema?.properties, request.query));
  });

  app.addHook('onResponse', (request, reply, done) => {
    metrics.requestDuration.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status_code: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
    done();
  });

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'gridpulse API',
        description: 'Ingest readings, query devices, series, alerts and data quality, follow live updates. Errors: `{ error: { code, message, field?, expected?, got? } }`.',
        version: options.version ?? 'dev',
      },
      tags: [
        { name: 'ingest', description: 'Readings in (HTTP)' },
        { name: 'portal', description: 'Devices, series, alerts, data quality, status, live updates' },
        { name: 'compatibility', description: 'Routes of the reference designs' },
        { name: 'ops', description: 'Metrics, health, readiness' },
        { name: 'ml', description: 'Model serving (/v1/infer) and training (/train-model)' },
      ],
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'a device token (server.auth.tokens)' } } },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  registerIngestRoutes(app, context);
  registerDeliveryRoutes(app, context);
  registerPortalRoutes(app, context);
  registerFleetRoutes(app, context);
  registerLiveRoutes(app, context);
  registerCompatibilityRoutes(app, context);
  registerOpsRoutes(app, context);
  registerMlRoutes(app, context);
  registerIncidentRoutes(app, context);

  const uiDir = options.uiDir === undefined ? undefined : resolve(options.uiDir);
  const hasUi = uiDir !== undefined && existsSync(join(uiDir, 'index.html'));
  if (hasUi) {
    await app.register(fastifyStatic, { root: uiDir, prefix: '/', index: ['index.html'] });
  } else {
    app.get('/', { schema: { hide: true } }, (_request, reply) =>
      reply
        .type('text/html; charset=utf-8')
        .send(
          '<!doctype html><meta charset="utf-8"><title>gridpulse</title><h1>gridpulse</h1>' +
            `<p>The dashboard is not built${uiDir === undefined ? '' : ` (no index.html in ${escapeHtml(uiDir)})`}. ` +
            'Build it with <code>npx vite build --config src/ui/vite.config.ts</code> (output: dist/ui), then restart.</p>' +
            '<p>The API works without it: <a href="/docs">/docs</a> (OpenAPI), <a href="/api/status">/api/status</a>, <a href="/metrics">/metrics</a>.</p>',
        ),
    );
  }

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '/';
    const isApi = API_PREFIXES.some((prefix) => path.startsWith(prefix) || `${path}/` === prefix);
    const isFile = /\.[A-Za-z0-9]+$/.test(path);
    if (hasUi && (request.method === 'GET' || request.method === 'HEAD') && !isApi && !isFile) {
      // Client-side routes of the single-page app get its index.html (a missing asset stays a 404).
      return reply.sendFile('index.html');
    }
    const error = new ApiError(404, 'GP_NOT_FOUND', `no route ${request.method} ${path}`, { field: 'url', got: `${request.method} ${path}` });
    return reply.status(404).send(errorBody(error));
  });

  return app;
}

function checkIntegers(properties: Record<string, IntegerSchema> | undefined, query: unknown): ApiError | undefined {
  if (properties === undefined || query === null || typeof query !== 'object') return undefined;
  for (const [name, value] of Object.entries(query as Record<string, unknown>)) {
    const property = properties[name];
    if (property?.type !== 'integer') continue;
    for (const item of Array.isArray(value) ? value : [value]) {
      if (typeof item === 'string' && !/^-?\d{1,15}$/.test(item)) return invalidInput(name, integerExpected(property), item);
    }
  }
  return undefined;
}

interface IntegerSchema {
  type?: unknown;
  minimum?: number;
  maximum?: number;
}

function integerExpected(schema: IntegerSchema): string {
  if (schema.minimum !== undefined && schema.maximum !== undefined) return `an integer from ${schema.minimum} to ${schema.maximum}`;
  if (schema.minimum !== undefined) return `an integer of at least ${schema.minimum}`;
  return 'an integer';
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
