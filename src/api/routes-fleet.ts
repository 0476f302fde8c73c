import { Type, type TSchema } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { FleetResolution } from '../stores/index.js';
import type { ApiContext } from './context.js';
import { invalidInput } from './errors.js';
import { finiteOrNull } from './json-safe.js';
import { checkMetric, checkStream, parseTime } from './query-values.js';
import { TimeQuery, errors } from './schemas.js';

const DAY = 86_400_000;
const FLEET_RESOLUTIONS: readonly FleetResolution[] = ['1m', '5m', '15m', 'auto'];

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
const Name = (description: string) => Type.String({ minLength: 1, maxLength: 256, description });
const Time = Type.Number({ description: 'epoch milliseconds' });

export const FleetSeriesQuery = Type.Object({
  metric: Name('metric name'),
  from: Type.Optional(TimeQuery),
  to: Type.Optional(TimeQuery),
  // One JSON Schema enum (not a union of literals), so a bad value is reported with the whole list.
  resolution: Type.Optional(Type.Unsafe<FleetResolution>({ type: 'string', enum: [...FLEET_RESOLUTIONS], default: 'auto' })),
  stream: Type.Optional(Name('stream name')),
  site: Type.Optional(Name('site id: only the devices of this site')),
  maxPoints: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, description: 'for auto: the most points wanted (default 500)' })),
});

export const FleetSeriesResponse = Type.Object({
  metric: Type.String(),
  resolution: Type.String({ description: '1m, 5m or 15m (auto resolved)' }),
  from: Time,
  to: Time,
  points: Type.Array(
    Type.Object({
      time: Type.Number({ description: 'window start, epoch milliseconds' }),
      devices: Type.Integer({ description: 'devices with a value in this window' }),
      sum: Nullable(Type.Number({ description: 'sum of the device averages (fleet load for a power metric)' })),
      avg: Nullable(Type.Number({ description: 'mean of the device averages' })),
      min: Nullable(Type.Number({ description: 'lowest device average' })),
      max: Nullable(Type.Number({ description: 'highest device average' })),
    }),
  ),
});

interface FleetSeriesQueryString {
  metric: string;
  from?: string;
  to?: string;
  resolution?: FleetResolution;
  stream?: string;
  site?: string;
  maxPoints?: number;
}

/**
 * Fleet-wide series: one metric over every device (or one site's), per window, in one request —
 * what the dashboard's fleet-load chart needs instead of one series request per device.
 *
 * @example
 * // GET /api/fleet/series?stream=power&metric=usageKw&resolution=5m&from=2025-11-07T00:00Z&to=2025-11-08T00:00Z
 * // → { metric: 'usageKw', resolution: '5m', from, to, points: [{ time, devices: 200, sum: 812.4, avg: 4.06, min: 0.3, max: 11.9 }, ...] }
 */
export function registerFleetRoutes(app: FastifyInstance, context: ApiContext): void {
  const { platform } = context;
  const streams = platform.streams;

  app.get<{ Querystring: FleetSeriesQueryString }>(
    '/api/fleet/series',
    {
      schema: {
        tags: ['portal'],
        summary: 'One metric over the whole fleet (or a site): per window, the sum, mean, min and max of the device averages',
        description:
          'Each device counts with its window average (newest revision). For a power metric the sum is the fleet load. ' +
          'Defaults: to = now, from = to − 24 h, resolution auto (the finest of 1m, 5m, 15m that fits maxPoints).',
        querystring: FleetSeriesQuery,
        response: { 200: FleetSeriesResponse, ...errors(400) },
      },
    },
    async (request) => {
      const q = request.query;
      const stream = checkStream(streams, q.stream);
      checkMetric(streams, stream, q.metric);
      const to = parseTime(q.to, 'to') ?? context.now();
      const from = parseTime(q.from, 'from') ?? to - DAY;
      if (from > to) throw invalidInput('from', `a time at or before to (${to})`, from);
      const series = await platform.store.queryFleetSeries({
        metric: q.metric,
        from,
        to,
        resolution: q.resolution ?? 'auto',
        ...(q.stream === undefined ? {} : { stream: q.stream }),
        ...(q.site === undefined ? {} : { site: q.site }),
        ...(q.maxPoints === undefined ? {} : { maxPoints: q.maxPoints }),
      });
      return {
        metric: series.metric,
        resolution: series.resolution,
        from,
        to,
        points: series.points.map((p) => ({ time: p.time, devices: p.devices, sum: finiteOrNull(p.sum), avg: finiteOrNull(p.avg), min: finiteOrNull(p.min), max: finiteOrNull(p.max) })),
      };
    },
  );
}
