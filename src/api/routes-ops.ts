import type { FastifyInstance } from 'fastify';
import type { ApiContext } from './context.js';
import { ApiError } from './errors.js';
import { HealthResponse, ReadyResponse, errors } from './schemas.js';

/** `/metrics` (Prometheus text), `/healthz` (the process answers) and `/readyz` (the platform is ready). */
export function registerOpsRoutes(app: FastifyInstance, context: ApiContext): void {
  const { platform, metrics } = context;

  app.get(
    '/metrics',
    {
      schema: {
        tags: ['ops'],
        summary: 'Prometheus metrics',
        description: 'Readings in/accepted/rejected by reason, late by class, aggregates, alert events, findings by type, store write latency, log size and consumer lag, watermark delay per partition, state keys, SSE clients, HTTP request durations, Node.js process and event-loop metrics.',
        produces: ['text/plain'],
        response: { 200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } } },
      },
    },
    async (_request, reply) => {
      const text = await metrics.scrape();
      return reply.type(metrics.registry.contentType).send(text);
    },
  );

  app.get('/healthz', { schema: { tags: ['ops'], summary: 'Liveness: the process is up', response: { 200: HealthResponse } } }, () => ({
    status: 'ok',
    uptimeSeconds: process.uptime(),
  }));

  app.get(
    '/readyz',
    { schema: { tags: ['ops'], summary: 'Readiness: 200 once the platform takes readings and answers queries, 503 until then', response: { 200: ReadyResponse, ...errors(503) } } },
    () => {
      if (platform.isReady !== undefined && !platform.isReady()) {
        throw new ApiError(503, 'GP_UNAVAILABLE', 'the platform is starting (log recovery, store, engine); try again shortly', { headers: { 'retry-after': '1' } });
      }
      return { ready: true };
    },
  );
}
