/** Typed calls to the gridpulse HTTP API. Every failure becomes an `ApiError` with the server's code. */
import type {
  Alert,
  AlertTransition,
  ApiErrorBody,
  DeviceDetail,
  DeviceRow,
  FleetSeriesResult,
  ModelListing,
  PlatformStatus,
  QualityRow,
  RecentReading,
  Resolution,
  SeriesResult,
  ServingModel,
  StreamInfo,
  TrainableModel,
  TrainingJob,
} from './api-types.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

type Query = Record<string, string | number | readonly string[] | undefined>;

function withQuery(path: string, query: Query = {}): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined || value === '') continue;
    if (Array.isArray(value)) {
      if (value.length > 0) params.set(name, value.join(','));
    } else params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

async function request<T>(path: string, init?: RequestInit): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, { headers: { accept: 'application/json' }, ...init });
  } catch (error) {
    throw new ApiError(0, 'NETWORK', `cannot reach the platform (${(error as Error).message})`);
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (!response.ok) {
    const error = (body as ApiErrorBody | undefined)?.error;
    throw new ApiError(response.status, error?.code ?? `HTTP_${response.status}`, error?.message ?? `${response.status} ${response.statusText}`);
  }
  return body as T;
}

function post<T>(path: string, body: unknown): Promise<T> {
  return request<T>(path, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify(body) });
}

export interface SeriesParams {
  metric: string;
  from: number;
  to: number;
  resolution: Resolution;
  stream?: string;
}

export interface FleetSeriesParams {
  metric: string;
  from: number;
  to: number;
  resolution: Exclude<Resolution, 'raw'>;
  stream?: string;
  site?: string;
  maxPoints?: number;
}

export interface AlertQuery {
  status?: readonly string[];
  severity?: readonly string[];
  type?: string;
  site?: string;
  key?: string;
  stream?: string;
  from?: number;
  to?: number;
  limit?: number;
}

export const api = {
  streams: () => request<{ streams: StreamInfo[] }>('/api/streams').then((r) => r.streams),
  devices: (query: { stream?: string; site?: string } = {}) => request<{ devices: DeviceRow[] }>(withQuery('/api/devices', query)).then((r) => r.devices),
  device: (id: string) => request<DeviceDetail>(`/api/devices/${encodeURIComponent(id)}`),
  series: (id: string, params: SeriesParams) => request<SeriesResult>(withQuery(`/api/devices/${encodeURIComponent(id)}/series`, { ...params })),
  /** One metric over the whole fleet (or a site), per window: one request instead of one per device. */
  fleetSeries: (params: FleetSeriesParams) => request<FleetSeriesResult>(withQuery('/api/fleet/series', { ...params })),
  readings: (id: string, limit = 20) =>
    request<{ readings: RecentReading[] }>(withQuery(`/api/devices/${encodeURIComponent(id)}/readings`, { limit })).then((r) => r.readings),
  alerts: (query: AlertQuery = {}) => request<{ alerts: Alert[] }>(withQuery('/api/alerts', { ...query })).then((r) => r.alerts),
  alert: (id: string) => request<{ alert: Alert; transitions: AlertTransition[] }>(`/api/alerts/${encodeURIComponent(id)}`),
  acknowledge: (id: string, note?: string) =>
    post<{ alert: Alert }>(`/api/alerts/${encodeURIComponent(id)}/ack`, { by: 'dashboard', ...(note ? { note } : {}) }).then((r) => r.alert),
  resolve: (id: string, note?: string) =>
    post<{ alert: Alert }>(`/api/alerts/${encodeURIComponent(id)}/resolve`, { by: 'dashboard', ...(note ? { note } : {}) }).then((r) => r.alert),
  quality: (query: { stream?: string; from?: number; to?: number; by: 'key' | 'site' }) =>
    request<{ rows: QualityRow[] }>(withQuery('/api/quality', query)).then((r) => r.rows),
  status: () => request<PlatformStatus>('/api/status'),
  /** The model `/v1/infer` scores with; an `ApiError` with status 404 when there is none. */
  servingModel: () => request<ServingModel>('/v1/model'),
  /** Every model file of the platform's models directory, newest first, with its evaluation. */
  models: () => request<ModelListing>('/api/models'),
  trainingJobs: () => request<{ jobs: TrainingJob[] }>('/train-model').then((r) => r.jobs),
  /** Starts training in the background (202 with the job). */
  startTraining: (body: { stream?: string; model?: TrainableModel }) => post<TrainingJob>('/train-model', body),
};
