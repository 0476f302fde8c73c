import type { FastifyInstance } from 'fastify';
import { SEVERITIES, type Alert, type AlertStatus } from '../model/index.js';
import type { AlertFilter, DeviceStatus, Resolution } from '../stores/index.js';
import type { ApiContext } from './context.js';
import { ApiError, invalidInput, notFound } from './errors.js';
import { finiteOrNull, safeAlert, safeNumberMap, safeTransition } from './json-safe.js';
import type { DeviceLiveFeatures, ForwardedActionRequest, Platform } from './platform.js';
import { checkDeviceMetric, checkStoredStream, checkStream, parseList, parseTime } from './query-values.js';
import {
  AlertActionBody,
  AlertAssignBody,
  AlertActionResponse,
  AlertDetailResponse,
  AlertIdParams,
  AlertsQuery,
  AlertsResponse,
  DeviceIdParams,
  DeviceResponse,
  DevicesQuery,
  DevicesResponse,
  QualityQuery,
  QualityResponse,
  ReadingsQuery,
  ReadingsResponse,
  SeriesQuery,
  SeriesResponse,
  StatusResponse,
  StreamsResponse,
  errors,
} from './schemas.js';

const ALERT_STATUSES: readonly AlertStatus[] = ['open', 'acknowledged', 'resolved'];
const DAY = 86_400_000;
/** Alerts fetched to find one by id when the platform has no `getAlert`. */
const ALERT_SCAN_LIMIT = 10_000;

/** The portal: streams, devices, series, readings, alerts (with ack and resolve), data quality, status. */
export function registerPortalRoutes(app: FastifyInstance, context: ApiContext): void {
  const { platform } = context;
  const streams = platform.streams;

  app.get('/api/streams', { schema: { tags: ['portal'], summary: 'Configured streams: fields, metrics, windows, detectors', response: { 200: StreamsResponse } } }, () => ({
    streams: streams.map((s) => ({
      name: s.name,
      keyField: s.keyField,
      siteField: s.siteField ?? null,
      timeField: s.timeField,
      metrics: s.metrics.map((m) => ({ name: m.name, unit: m.unit ?? null, min: m.min ?? null, max: m.max ?? null })),
      windows: s.windows.map((w) => w.name),
      detectors: [...new Set(s.detectors.filter((d) => d.enabled).map((d) => d.type))],
    })),
  }));

  app.get<{ Querystring: { stream?: string; site?: string } }>(
    '/api/devices',
    { schema: { tags: ['portal'], summary: 'Devices with their latest status and live features', querystring: DevicesQuery, response: { 200: DevicesResponse, ...errors(400) } } },
    async (request) => {
      const { stream, site } = request.query;
      const statuses = await platform.store.latestStatus({ ...(stream === undefined ? {} : { stream }), ...(site === undefined ? {} : { site }) });
      // A stream the config does not declare is fine when the store holds devices of it (a replayed file).
      if (stream !== undefined && statuses.length === 0) await checkStoredStream(streams, platform.store, stream);
      return { devices: statuses.map((status) => ({ ...safeStatus(status), live: liveOf(platform, status.key, status.stream) })) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/devices/:id',
    { schema: { tags: ['portal'], summary: 'One device: status, live features and open alerts', params: DeviceIdParams, response: { 200: DeviceResponse, ...errors(404) } } },
    async (request) => {
      const { id } = request.params;
      const [stored] = await platform.store.latestStatus({ keys: [id] });
      const live = liveOf(platform, id, stored?.stream);
      const device = stored !== undefined ? safeStatus(stored) : live !== null ? statusFromLive(live) : undefined;
      if (device === undefined) throw notFound('device', 'id', id);
      const openAlerts = await platform.store.listAlerts({ key: id, stream: device.stream, status: ['open', 'acknowledged'], limit: 1000 });
      return { device, live, openAlerts: openAlerts.map(safeAlert) };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { metric: string; from?: string; to?: string; resolution?: Resolution; stream?: string; maxPoints?: number } }>(
    '/api/devices/:id/series',
    {
      schema: {
        tags: ['portal'],
        summary: 'Time series of one metric of a device, with the alerts overlapping the range (for markers)',
        description: 'Defaults: to = now, from = to − 24 h, resolution auto (the finest of raw, 1m, 5m, 15m that fits maxPoints).',
        params: DeviceIdParams,
        querystring: SeriesQuery,
        response: { 200: SeriesResponse, ...errors(400) },
      },
    },
    async (request) => {
      const { id } = request.params;
      const q = request.query;
      await checkDeviceMetric(streams, platform.store, id, q.stream, q.metric);
      const to = parseTime(q.to, 'to') ?? context.now();
      const from = parseTime(q.from, 'from') ?? to - DAY;
      if (from > to) throw new ApiError(400, 'GP_INPUT_INVALID', `from: expected a time at or before to (${to}), got ${from}`, { field: 'from', expected: `at most ${to}`, got: String(from) });
      const streamFilter = q.stream === undefined ? {} : { stream: q.stream };
      const [series, alerts] = await Promise.all([
        platform.store.querySeries({ key: id, metric: q.metric, from, to, resolution: q.resolution ?? 'auto', ...streamFilter, ...(q.maxPoints === undefined ? {} : { maxPoints: q.maxPoints }) }),
        platform.store.listAlerts({ key: id, from, to, limit: 1000, ...streamFilter }),
      ]);
      return {
        key: series.key,
        metric: series.metric,
        resolution: series.resolution,
        from,
        to,
        points: series.points.map((p) => ({ time: p.time, count: p.count, min: finiteOrNull(p.min), max: finiteOrNull(p.max), avg: finiteOrNull(p.avg), last: finiteOrNull(p.last) })),
        alerts: alerts.map(safeAlert),
      };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { limit?: number } }>(
    '/api/devices/:id/readings',
    { schema: { tags: ['portal'], summary: 'Most recent raw readings of a device from the log (newest last)', params: DeviceIdParams, querystring: ReadingsQuery, response: { 200: ReadingsResponse, ...errors(400) } } },
    async (request) => {
      const readings = await platform.recentReadings(request.params.id, request.query.limit ?? 100);
      return { readings: readings.map((r) => ({ ...r, values: safeNumberMap(r.values) })) };
    },
  );

  app.get<{ Querystring: { status?: string | string[]; severity?: string | string[]; type?: string; site?: string; key?: string; stream?: string; from?: string; to?: string; limit?: number } }>(
    '/api/alerts',
    {
      schema: {
        tags: ['portal', 'compatibility'],
        summary: 'Alerts, newest first, with filters',
        description: 'status and severity may repeat or be comma-separated; from/to select alerts whose open interval overlaps the range. Also the reference designs\' GET /api/alerts.',
        querystring: AlertsQuery,
        response: { 200: AlertsResponse, ...errors(400) },
      },
    },
    async (request) => {
      const q = request.query;
      checkStream(streams, q.stream);
      const filter: AlertFilter = { limit: q.limit ?? 100 };
      const status = parseList(q.status, 'status', ALERT_STATUSES);
      const severity = parseList(q.severity, 'severity', SEVERITIES);
      const from = parseTime(q.from, 'from');
      const to = parseTime(q.to, 'to');
      if (status !== undefined) filter.status = status;
      if (severity !== undefined) filter.severity = severity;
      if (from !== undefined) filter.from = from;
      if (to !== undefined) filter.to = to;
      for (const field of ['type', 'site', 'key', 'stream'] as const) {
        const value = q[field];
        if (value !== undefined) filter[field] = value;
      }
      return { alerts: (await platform.store.listAlerts(filter)).map(safeAlert) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/alerts/:id',
    { schema: { tags: ['portal'], summary: 'One alert and its transitions', params: AlertIdParams, response: { 200: AlertDetailResponse, ...errors(404) } } },
    async (request) => {
      const { id } = request.params;
      // The alert and its transitions are two reads a write can land between: the transitions are
      // read before and after the alert, and the answer is given when both reads agree (the store's
      // transitions only grow), so the alert's status and its newest transition match.
      let transitions = await platform.store.alertTransitions(id);
      for (let attempt = 0; ; attempt++) {
        const alert = await findAlert(platform, id);
        if (alert === undefined) throw notFound('alert', 'id', id);
        const after = await platform.store.alertTransitions(id);
        if ((after.length === transitions.length && after.at(-1)?.id === transitions.at(-1)?.id) || attempt === 4) {
          return { alert: safeAlert(alert), transitions: after.map(safeTransition) };
        }
        transitions = after;
      }
    },
  );

  const action = (name: 'ack' | 'resolve') =>
    app.post<{ Params: { id: string }; Body: { by?: string; note?: string } }>(
      `/api/alerts/:id/${name}`,
      {
        schema: {
          tags: ['portal'],
          summary: name === 'ack' ? 'Acknowledge an open alert' : 'Resolve an open or acknowledged alert',
          params: AlertIdParams,
          body: AlertActionBody,
          response: { 200: AlertActionResponse, ...errors(400, 404, 409, 415, 503) },
        },
        // An action needs no body: a missing one is an empty object, not a validation error.
        preValidation: (request, _reply, done) => {
          if (request.body === undefined || request.body === null) request.body = {};
          done();
        },
      },
      async (request) => {
        const { id } = request.params;
        const { by, note } = request.body;
        const alert = name === 'ack' ? await platform.acknowledgeAlert(id, by, note) : await platform.resolveAlert(id, by, note);
        if (alert !== undefined) return { alert: safeAlert(alert) };
        const allowed: readonly AlertStatus[] = name === 'ack' ? ['open'] : ['open', 'acknowledged'];
        const existing = await findAlert(platform, id);
        if (existing === undefined) throw notFound('alert', 'id', id);
        const forwarded = await forwardIfHeldElsewhere(platform, existing, allowed, { action: name === 'ack' ? 'acknowledge' : 'resolve', id, by, note });
        if (forwarded !== undefined) return { alert: safeAlert(forwarded) };
        throw new ApiError(409, 'GP_CONFLICT', `alert ${id} is ${existing.status}: it cannot be ${name === 'ack' ? 'acknowledged' : 'resolved'}`, {
          field: 'status',
          expected: allowed.join(' or '),
          got: existing.status,
        });
      },
    );
  action('ack');
  action('resolve');

  app.post<{ Params: { id: string }; Body: { assignee: string; by?: string; note?: string } }>(
    '/api/alerts/:id/assign',
    {
      schema: {
        tags: ['portal'],
        summary: 'Assign an open or acknowledged alert to someone',
        description: 'Emits an `assign` transition carrying the assignee; assigning to the current assignee again changes nothing.',
        params: AlertIdParams,
        body: AlertAssignBody,
        response: { 200: AlertActionResponse, ...errors(400, 404, 409, 415, 501, 503) },
      },
    },
    async (request) => {
      const { id } = request.params;
      const { assignee, by, note } = request.body;
      if (platform.assignAlert === undefined) throw new ApiError(501, 'GP_UNAVAILABLE', 'assigning alerts is not available on this platform');
      if (assignee.trim() === '') throw invalidInput('assignee', 'a non-empty name', assignee);
      const alert = await platform.assignAlert(id, assignee, by, note);
      if (alert !== undefined) return { alert: safeAlert(alert) };
      const existing = await findAlert(platform, id);
      if (existing === undefined) throw notFound('alert', 'id', id);
      const forwarded = await forwardIfHeldElsewhere(platform, existing, ['open', 'acknowledged'], { action: 'assign', id, by, note, assignee });
      if (forwarded !== undefined) return { alert: safeAlert(forwarded) };
      throw new ApiError(409, 'GP_CONFLICT', `alert ${id} is ${existing.status}: it cannot be assigned`, { field: 'status', expected: 'open or acknowledged', got: existing.status });
    },
  );

  app.get<{ Querystring: { stream?: string; from?: string; to?: string; by?: 'key' | 'site' } }>(
    '/api/quality',
    { schema: { tags: ['portal'], summary: 'Data quality: ops events (gaps, late, invalid, duplicates...) per device or site', querystring: QualityQuery, response: { 200: QualityResponse, ...errors(400) } } },
    async (request) => {
      const q = request.query;
      checkStream(streams, q.stream);
      const from = parseTime(q.from, 'from');
      const to = parseTime(q.to, 'to');
      const rows = await platform.store.dataQuality({
        by: q.by ?? 'key',
        ...(q.stream === undefined ? {} : { stream: q.stream }),
        ...(from === undefined ? {} : { from }),
        ...(to === undefined ? {} : { to }),
      });
      return { rows };
    },
  );

  app.get('/api/status', { schema: { tags: ['portal', 'ops'], summary: 'Platform status: throughput, log, watermarks and lag per partition, state size', response: { 200: StatusResponse } } }, () =>
    platform.status(),
  );
}

/**
 * An action on an alert the store shows in a status that allows it, but that this platform's engine
 * did not hold: handed to the engine process that holds it (a `gridpulse process` member), when the
 * platform can. Returns the alert after the action; undefined when the platform cannot forward or
 * the status does not allow the action (the caller answers 409); throws 409 when the holder refused
 * it and 503 when no process took it in time or it is still being applied.
 */
async function forwardIfHeldElsewhere(platform: Platform, existing: Alert, allowed: readonly AlertStatus[], request: ForwardedActionRequest): Promise<Alert | undefined> {
  if (platform.forwardAlertAction === undefined || !allowed.includes(existing.status)) return undefined;
  const result = await platform.forwardAlertAction(request);
  switch (result.outcome) {
    case 'applied':
      return result.alert;
    case 'refused':
      throw new ApiError(409, 'GP_CONFLICT', `alert ${request.id} is ${result.status ?? 'not in a status that allows it'}: it cannot be ${PAST[request.action]}`, {
        field: 'status',
        expected: allowed.join(' or '),
        got: result.status ?? 'unknown',
      });
    case 'unclaimed':
      throw new ApiError(
        503,
        'GP_UNAVAILABLE',
        `alert ${request.id} is not held by this platform's engine, and no engine process (gridpulse process on this store) took the ${request.action} within ${Math.round(result.waitedMs / 1000)} s; nothing was changed — is a member of the group that owns the device running?`,
      );
    case 'pending':
      throw new ApiError(503, 'GP_UNAVAILABLE', `the ${request.action} of alert ${request.id} was taken by engine process ${result.claimedBy} but not finished within ${Math.round(result.waitedMs / 1000)} s; it will be applied when that process (or the next owner of its partition) gets to it`);
  }
}

const PAST = { acknowledge: 'acknowledged', resolve: 'resolved', assign: 'assigned' } as const;

/** An alert by id: from the platform when it can look one up, else through its transitions and the store. */
export async function findAlert(platform: Platform, id: string): Promise<Alert | undefined> {
  if (platform.getAlert !== undefined) return platform.getAlert(id);
  const transitions = await platform.store.alertTransitions(id);
  const opened = transitions[0];
  if (opened === undefined) return undefined;
  // The open transition lies inside the alert's open interval, so the alert overlaps its time.
  const candidates = await platform.store.listAlerts({ from: opened.time, to: opened.time, limit: ALERT_SCAN_LIMIT });
  return candidates.find((a) => a.id === id);
}

function liveOf(platform: Platform, key: string, stream: string | undefined): DeviceLiveFeatures | null {
  const live = platform.liveFeatures(key);
  if (live === undefined || (stream !== undefined && live.stream !== stream)) return null;
  return { ...live, last: safeNumberMap(live.last), avg1m: safeNumberMap(live.avg1m) };
}

function safeStatus(status: DeviceStatus): DeviceStatus {
  return { ...status, lastAvg: safeNumberMap(status.lastAvg) };
}

/** A device the store has no closed 1-minute window for yet, described from its live features. */
function statusFromLive(live: DeviceLiveFeatures): DeviceStatus {
  return { stream: live.stream, key: live.key, site: live.site ?? null, lastSeen: live.lastTime, lastAvg: live.avg1m, openAlerts: live.openAlerts };
}
