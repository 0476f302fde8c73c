import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { StreamSchema } from '../model/index.js';
import type { ApiContext } from './context.js';
import { notFound } from './errors.js';
import { finiteOrNull } from './json-safe.js';
import type { DeviceLiveFeatures, RecentReading } from './platform.js';
import { DeviceIdParams, MachineLogsQuery, MachineLogsResponse, MachineStatusResponse, SimulateParams, SimulateQuery, SimulationResponse, errors } from './schemas.js';

/**
 * Routes of the reference designs (smart-factory predictive maintenance, shared/reference):
 * `GET /api/machines/:id/logs` (the sensor_log rows), `GET /api/machines/:id/status` (the
 * feature cache: last value and 1-minute average per metric) and `POST /simulate/:machineId`.
 * `GET /api/alerts` is the portal's route.
 *
 * The status route answers from this process's memory first (newest, no round trip). A device not
 * known here is looked up in the shared Redis feature cache when the platform has one
 * (`platform.cachedFeatures`, from `features.redis`): that is where another gridpulse process whose
 * engine holds the device publishes it. Only then does the route fall back to the store's newest
 * aggregates. A Redis that cannot answer is logged and skipped, never a 5xx.
 */
export function registerCompatibilityRoutes(app: FastifyInstance, context: ApiContext): void {
  const { platform } = context;
  const schemaOf = (stream: string): StreamSchema | undefined => platform.streams.find((s) => s.name === stream);

  async function cachedFeatures(id: string, log: FastifyBaseLogger): Promise<DeviceLiveFeatures | undefined> {
    if (platform.cachedFeatures === undefined) return undefined;
    try {
      return await platform.cachedFeatures(id);
    } catch (error) {
      log.warn({ err: error }, 'feature cache lookup failed; answering from the store');
      return undefined;
    }
  }

  async function knownDevice(id: string): Promise<boolean> {
    if (platform.liveFeatures(id) !== undefined) return true;
    return (await platform.store.latestStatus({ keys: [id] })).length > 0;
  }

  app.get<{ Params: { id: string }; Querystring: { limit?: number } }>(
    '/api/machines/:id/logs',
    {
      schema: {
        tags: ['compatibility'],
        summary: 'Recent sensor log of a machine (reference shape: machine_id, timestamp, one field per metric), newest first',
        params: DeviceIdParams,
        querystring: MachineLogsQuery,
        response: { 200: MachineLogsResponse, ...errors(400, 404) },
      },
    },
    async (request) => {
      const { id } = request.params;
      const readings = await platform.recentReadings(id, request.query.limit ?? 100);
      if (readings.length === 0 && !(await knownDevice(id))) throw notFound('machine', 'id', id);
      return readings.slice().reverse().map((r) => sensorLogRow(r, schemaOf(r.stream)));
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/machines/:id/status',
    {
      schema: {
        tags: ['compatibility'],
        summary: 'Current state of a machine from the live feature cache (last_<metric>, <metric>_1m_avg)',
        params: DeviceIdParams,
        response: { 200: MachineStatusResponse, ...errors(404) },
      },
    },
    async (request) => {
      const { id } = request.params;
      const live = platform.liveFeatures(id) ?? (await cachedFeatures(id, request.log));
      const [stored] = await platform.store.latestStatus({ keys: [id] });
      if (live === undefined && stored === undefined) throw notFound('machine', 'id', id);
      const stream = live?.stream ?? stored?.stream ?? '';
      const features: Record<string, number | null> = {};
      const metrics = schemaOf(stream)?.metrics.map((m) => m.name) ?? Object.keys(live?.last ?? stored?.lastAvg ?? {});
      for (const metric of metrics) {
        features[`last_${metric}`] = finiteOrNull(live?.last[metric]);
        features[`${metric}_1m_avg`] = finiteOrNull(live?.avg1m[metric] ?? stored?.lastAvg[metric]);
      }
      const openAlerts = live?.openAlerts ?? stored?.openAlerts ?? 0;
      const lastSeen = live?.lastTime ?? stored?.lastSeen;
      return {
        machine_id: id,
        stream,
        status: openAlerts > 0 ? 'alert' : 'normal',
        last_seen: lastSeen === undefined ? null : new Date(lastSeen).toISOString(),
        features,
        open_alerts: openAlerts,
      };
    },
  );

  app.post<{ Params: { machineId: string }; Querystring: { profile?: 'normal' | 'overstrain' | 'heat_dissipation'; duration_sec?: number } }>(
    '/simulate/:machineId',
    {
      schema: {
        tags: ['compatibility'],
        summary: 'Start a simulated machine (or restart it with another profile) for duration_sec seconds',
        params: SimulateParams,
        querystring: SimulateQuery,
        response: { 200: SimulationResponse, ...errors(400) },
      },
    },
    (request) =>
      platform.startSimulation({
        machineId: request.params.machineId,
        profile: request.query.profile ?? 'normal',
        durationSec: request.query.duration_sec ?? 60,
      }),
  );
}

/** A reading as a row of the reference design's sensor_log: the stream's own field names. */
function sensorLogRow(reading: RecentReading, schema: StreamSchema | undefined): Record<string, unknown> {
  const row: Record<string, unknown> = {
    [schema?.keyField ?? 'machine_id']: reading.key,
    [schema?.timeField ?? 'timestamp']: new Date(reading.time).toISOString(),
  };
  const fieldOf = new Map(schema?.metrics.map((m) => [m.name, m.field === '' ? m.name : m.field]) ?? []);
  for (const [metric, value] of Object.entries(reading.values)) row[fieldOf.get(metric) ?? metric] = finiteOrNull(value);
  return row;
}
