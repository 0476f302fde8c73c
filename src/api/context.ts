import type { ServerConfig } from '../config/index.js';
import type { ApiMetrics } from './metrics.js';
import type { Platform } from './platform.js';

/** What every route module of the app is given. */
export interface ApiContext {
  readonly platform: Platform;
  readonly server: ServerConfig;
  readonly metrics: ApiMetrics;
  /** Wall clock, epoch ms (rate limits, default time ranges). */
  readonly now: () => number;
  /** Gunzipped-size limit of an ingest body. */
  readonly maxDecompressedBytes: number;
  readonly liveStatusIntervalMs: number;
  readonly liveHeartbeatMs: number;
}
