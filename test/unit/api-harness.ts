// Test harness for the API tests: the real platform (embedded log + DuckDB in a temp dir, no
// simulator) behind the real app, driven with inject(). Not a test file itself.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { createApiApp, type ApiAppOptions } from '../../src/api/index.js';
import { createPlatform, type PlatformRuntime } from '../../src/cli/platform.js';
import { parseConfig, type GridpulseConfig, type ServerConfig, type TokenConfig } from '../../src/config/index.js';

/** 2025-01-01T00:00:00Z: readings in tests are in the past, so the clock-skew check never trips. */
export const T0 = Date.UTC(2025, 0, 1);
export const MINUTE = 60_000;

export interface Harness {
  readonly app: FastifyInstance;
  readonly platform: PlatformRuntime;
  readonly config: GridpulseConfig;
  readonly server: ServerConfig;
  close(): Promise<void>;
}

export interface HarnessOptions {
  auth?: { mode: 'open' | 'tokens'; tokens?: TokenConfig[] };
  limits?: Partial<ServerConfig['limits']>;
  api?: Partial<Omit<ApiAppOptions, 'platform' | 'server'>>;
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'gridpulse-api-'));
  const { config, issues } = parseConfig({ dataDir: dir, store: { url: `duckdb:${join(dir, 'gridpulse.duckdb')}` }, simulator: { enabled: false } });
  if (config === undefined) throw new Error(`test config invalid: ${JSON.stringify(issues)}`);
  const server: ServerConfig = {
    ...config.server,
    auth: { mode: options.auth?.mode ?? 'open', tokens: options.auth?.tokens ?? [] },
    limits: { ...config.server.limits, ...options.limits },
  };
  const platform = createPlatform({ config, simulator: false });
  await platform.start();
  const app = await createApiApp({ platform, server, ...options.api });
  return {
    app,
    platform,
    config,
    server,
    async close() {
      await app.close();
      await platform.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A power reading at `minute` minutes after T0. */
export function meterReading(meterId: string, minute: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { meterId, siteId: 's-1', timestamp: T0 + minute * MINUTE, usageKw: 4 + (minute % 3) * 0.1, voltage: 230, current: 18, pf: 0.95, ...extra };
}

export interface ErrorJson {
  error: { code: string; message: string; field?: string; expected?: string; got?: string };
}

/** The error object of a JSON error response (fails the test when the body is not one). */
export function errorOf(response: LightMyRequestResponse): ErrorJson['error'] {
  const type = String(response.headers['content-type']);
  if (!type.startsWith('application/json')) throw new Error(`expected a JSON error, got ${type}: ${response.body.slice(0, 200)}`);
  const body = response.json<ErrorJson>();
  if (typeof body.error?.code !== 'string' || !body.error.code.startsWith('GP_')) throw new Error(`expected { error: { code: GP_... } }, got ${response.body.slice(0, 200)}`);
  return body.error;
}

/**
 * Retries `probe` until it returns a value other than undefined (or throws no more), for state
 * that the platform reaches asynchronously (engine consumption, store writes). Fails after 15 s.
 */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + 15_000;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
      last = undefined;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Waits until the engine has consumed every accepted reading and the store holds them all. */
export async function settle(h: Harness): Promise<void> {
  await eventually('the engine and the store to catch up', async () => {
    await h.platform.drain();
    const status = h.platform.status();
    const lagging = status.log.partitions.some((p) => p.lag > 0) || status.totals.processed < status.totals.accepted || status.store.pendingWrites > 0;
    if (lagging) return undefined;
    const counts = await h.platform.store.counts();
    return counts.readings >= status.totals.processed ? true : undefined;
  });
}
