import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { ApiContext } from './context.js';
import { ApiError } from './errors.js';
import type { Platform } from './platform.js';
import { AlertSchema, errors } from './schemas.js';

const DeadLetterSchema = Type.Object({
  id: Type.String({ description: '`<channel>:<transition id>`' }),
  channel: Type.String(),
  transitionId: Type.String({ description: 'the webhook-id receivers saw (an incident notice id like `in_…:opened` for a site incident)' }),
  alertId: Type.String({ description: 'the alert id; the incident id for a site incident notice' }),
  reason: Type.String({ description: 'why delivery was given up' }),
  status: Type.Union([Type.Integer(), Type.Null()], { description: 'HTTP status of the last attempt' }),
  attempts: Type.Integer(),
  firstAttemptAt: Type.Number(),
  deadLetteredAt: Type.Number(),
  alert: AlertSchema,
  transition: Type.Object({ id: Type.String(), kind: Type.String(), seq: Type.Integer(), time: Type.Number() }, { additionalProperties: true }),
  incident: Type.Optional(
    Type.Object(
      { id: Type.String(), kind: Type.String({ description: 'incident.opened, incident.updated or incident.resolved' }), time: Type.Number(), incident: Type.Object({}, { additionalProperties: true }) },
      { description: 'set for a site incident notice: `alert` and `transition` are then those of one linked alert', additionalProperties: true },
    ),
  ),
});
const DeadLettersResponse = Type.Object({ deadLetters: Type.Array(DeadLetterSchema) });
const DeadLettersQuery = Type.Object(
  { channel: Type.Optional(Type.String({ minLength: 1 })), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })) },
  { additionalProperties: false },
);
const DeadLetterParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 512 }) });
const RedeliveryResponse = Type.Object({
  id: Type.String(),
  channel: Type.String(),
  delivered: Type.Boolean(),
  outcome: Type.Optional(Type.String()),
  reason: Type.Optional(Type.String()),
});
const DeliveryMetricsResponse = Type.Object({
  channels: Type.Record(Type.String(), Type.Record(Type.String(), Type.Union([Type.Number(), Type.Boolean()]))),
});

type Delivery = Required<Pick<Platform, 'deadLetters' | 'redeliverDeadLetter' | 'discardDeadLetter' | 'deliveryMetrics'>>;

/**
 * Alert delivery for operators: `GET /api/alerts/dead-letters` (notifications given up on, oldest
 * first), `POST /api/alerts/dead-letters/:id/redeliver` (one attempt now, same webhook-id and body;
 * removed from the list when it is delivered), `DELETE /api/alerts/dead-letters/:id`, and
 * `GET /api/alerts/delivery` (counters per channel). 404 when no channel is configured.
 */
export function registerDeliveryRoutes(app: FastifyInstance, context: ApiContext): void {
  const { platform } = context;
  const delivery = (): Delivery => {
    if (platform.deadLetters === undefined || platform.redeliverDeadLetter === undefined || platform.discardDeadLetter === undefined || platform.deliveryMetrics === undefined) {
      throw new ApiError(404, 'GP_NOT_FOUND', 'alert delivery is not configured (alerts.delivery.channels is empty)');
    }
    return platform as Delivery;
  };

  app.get<{ Querystring: { channel?: string; limit?: number } }>(
    '/api/alerts/dead-letters',
    { schema: { tags: ['portal'], summary: 'Alert notifications given up on (dead letters), oldest first', querystring: DeadLettersQuery, response: { 200: DeadLettersResponse, ...errors(400, 404) } } },
    async (request) => {
      const list = await delivery().deadLetters({ channel: request.query.channel, limit: request.query.limit });
      return {
        deadLetters: list.map((d) => ({
          id: d.id,
          channel: d.channel,
          transitionId: d.transitionId,
          alertId: d.alertId,
          reason: d.reason,
          status: d.status ?? null,
          attempts: d.attempts,
          firstAttemptAt: d.firstAttemptAt,
          deadLetteredAt: d.deadLetteredAt,
          alert: d.event.alert,
          transition: d.event.transition,
          ...(d.incident === undefined ? {} : { incident: d.incident }),
        })),
      };
    },
  );

  app.post<{ Params: { id: string } }>(
    '/api/alerts/dead-letters/:id/redeliver',
    { schema: { tags: ['portal'], summary: 'Send a dead letter again (one attempt, same webhook-id and body)', params: DeadLetterParams, response: { 200: RedeliveryResponse, ...errors(404, 409) } } },
    async (request) => {
      const result = await delivery().redeliverDeadLetter(request.params.id);
      return result.delivered ? { id: result.id, channel: result.channel, delivered: true } : { id: result.id, channel: result.channel, delivered: false, outcome: result.outcome, reason: result.reason };
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/api/alerts/dead-letters/:id',
    { schema: { tags: ['portal'], summary: 'Drop a dead letter for good', params: DeadLetterParams, response: { 204: Type.Null(), ...errors(404) } } },
    async (request, reply) => {
      if (!(await delivery().discardDeadLetter(request.params.id))) throw new ApiError(404, 'GP_NOT_FOUND', `dead letter not found: ${JSON.stringify(request.params.id)}`, { field: 'id', got: request.params.id });
      return reply.code(204).send();
    },
  );

  app.get(
    '/api/alerts/delivery',
    { schema: { tags: ['portal'], summary: 'Alert delivery counters per channel', response: { 200: DeliveryMetricsResponse, ...errors(404) } } },
    async () => ({ channels: (await delivery().deliveryMetrics()) as unknown as Record<string, Record<string, number | boolean>> }),
  );
}
