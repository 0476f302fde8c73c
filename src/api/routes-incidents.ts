import type { FastifyInstance } from 'fastify';
import { DEFAULT_INCIDENT_POLICY, groupIncidents } from '../alerts/index.js';
import type { Alert } from '../model/index.js';
import type { AlertFilter } from '../stores/index.js';
import type { ApiContext } from './context.js';
import { invalidInput } from './errors.js';
import { checkStream, parseTime } from './query-values.js';
import { errors, IncidentsQuery, IncidentsResponse } from './schemas.js';

/** Alerts read per type for one incidents query: enough for a large site outage, bounded for the store. */
const ALERTS_PER_TYPE = 10_000;
const DAY_MS = 86_400_000;

/**
 * `GET /api/incidents`: device alerts grouped into site incidents with a root-cause hint
 * (`site outage`, `pipeline stall`, `device fault`), computed on request from the store's alerts
 * of the incident types (`alerts.incidents`) and the device count of each site
 * (`store.latestStatus`). `status=open` (default) lists incidents with an open alert;
 * `from`/`to` select alerts whose open interval overlaps the range (default: the last 24 h when
 * `status` is not open).
 */
export function registerIncidentRoutes(app: FastifyInstance, context: ApiContext): void {
  const { platform } = context;
  app.get<{ Querystring: { status?: 'open' | 'resolved' | 'all'; stream?: string; from?: string; to?: string } }>(
    '/api/incidents',
    {
      schema: {
        tags: ['portal'],
        summary: 'Site incidents: device alerts grouped by site, with a root-cause hint',
        description: 'A burst of silence/outage alerts at one site is one incident (site outage); all sites at once is a pipeline stall; a lone device is a device fault.',
        querystring: IncidentsQuery,
        response: { 200: IncidentsResponse, ...errors(400) },
      },
    },
    async (request) => {
      const q = request.query;
      checkStream(platform.streams, q.stream);
      const status = q.status ?? 'open';
      const policy = platform.incidentPolicy?.() ?? DEFAULT_INCIDENT_POLICY;
      const to = parseTime(q.to, 'to');
      const from = parseTime(q.from, 'from');
      if (from !== undefined && to !== undefined && from > to) throw invalidInput('from', `a time before to (${q.to})`, q.from);
      const alerts: Alert[] = [];
      for (const type of policy.types) {
        const filter: AlertFilter = { type, limit: ALERTS_PER_TYPE };
        if (q.stream !== undefined) filter.stream = q.stream;
        if (status === 'open' && from === undefined && to === undefined) {
          filter.status = ['open', 'acknowledged'];
        } else {
          filter.to = to ?? context.now();
          filter.from = from ?? filter.to - DAY_MS;
        }
        alerts.push(...(await platform.store.listAlerts(filter)));
      }
      const devices = await platform.store.latestStatus(q.stream === undefined ? {} : { stream: q.stream });
      const siteSizes = new Map<string, number>();
      for (const device of devices) if (device.site !== null) siteSizes.set(device.site, (siteSizes.get(device.site) ?? 0) + 1);
      const incidents = groupIncidents(alerts, { policy, siteSizes }).filter((incident) => status === 'all' || incident.status === status);
      return { incidents };
    },
  );
}
