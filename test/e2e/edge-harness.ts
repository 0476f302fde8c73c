// Shared parts of the edge agent's end-to-end tests: a real `gridpulse up`, a real `gridpulse edge`,
// a TCP proxy between them that can inject faults, and a device fleet posting to the agent.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';

export const ROOT = resolve(import.meta.dirname, '../..');

export interface Child {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function spawnCli(args: string[], ready: RegExp): Promise<Child & { match: RegExpExecArray }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], {
    cwd: ROOT,
    env: { ...process.env, NODE_NO_WARNINGS: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  return new Promise((done, fail) => {
    child.stdout.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const match = ready.exec(text);
      if (match) done({ child, output: () => text, exited, match });
    });
    child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
    void exited.then((code) => fail(new Error(`gridpulse ${args[0]} exited (${String(code)}) before it was ready:\n${text}`)));
  });
}

/** `gridpulse up --no-simulator --port 0` on a data directory, with the power stream deduplicating by `readingId`. */
export async function startPlatform(dataDir: string): Promise<Child & { address: string }> {
  mkdirSync(dataDir, { recursive: true });
  const config = join(dataDir, 'gridpulse.yaml');
  writeFileSync(config, 'streams:\n  power:\n    id: readingId\n');
  const up = await spawnCli(['up', '--config', config, '--port', '0', '--data-dir', dataDir, '--no-simulator'], /dashboard (http:\/\/[^/\s]+)\//);
  return { ...up, address: up.match[1] as string };
}

export async function stopChild(child: Child, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  child.child.kill(signal);
  return child.exited;
}

/** Waits until the platform has processed its whole log and written everything to its store. */
export async function waitPlatformIdle(address: string): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    const status = (await (await fetch(`${address}/api/status`)).json()) as { log: { partitions: Array<{ lag: number }> }; store: { pendingWrites: number } };
    if (status.log.partitions.every((p) => p.lag === 0) && status.store.pendingWrites === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the platform did not catch up with its log within 120 s');
}

export function edgeConfig(dir: string, options: { url: string; httpPort?: number; full?: string; maxBytes?: string; extra?: string }): string {
  const path = join(dir, 'edge.yaml');
  writeFileSync(
    path,
    [
      'agent:',
      '  name: test-edge',
      `  dataDir: ${join(dir, 'edge-data')}`,
      'spool:',
      `  maxBytes: ${options.maxBytes ?? '256MB'}`,
      '  segmentBytes: 4MB',
      `  full: ${options.full ?? 'block'}`,
      'forward:',
      `  url: ${options.url}`,
      '  timeout: 2s',
      '  backoffMin: 100ms',
      '  backoffMax: 2s',
      '  backfillAfter: 5s',
      'status:',
      '  port: 0',
      'collectors:',
      '  - type: http',
      `    port: ${options.httpPort ?? 0}`,
      '    stream: power',
      options.extra ?? '',
    ].join('\n'),
  );
  return path;
}

export async function startAgent(configPath: string): Promise<Child & { status: string; http: string }> {
  const agent = await spawnCli(['edge', '--config', configPath], /edge agent ready/);
  const text = agent.output();
  const status = /status (http:\/\/\S+)\/status/.exec(text)?.[1];
  const http = /collector http \(http\) (http:\/\/\S+)/.exec(text)?.[1];
  if (status === undefined || http === undefined) throw new Error(`agent output without addresses:\n${text}`);
  return { ...agent, status, http };
}

export interface AgentStatus {
  spool: { bytes: number; unsent: number; peakBytes: number; droppedByPolicy: number; oldestUnsentAgeSeconds: number };
  forwarder: { forwarded: number; backfilled: number; retries: number; rejectedByPlatform: number; throttled: number };
}

export async function agentStatus(status: string): Promise<AgentStatus> {
  return (await (await fetch(`${status}/status`)).json()) as AgentStatus;
}

export type ProxyMode = 'pass' | 'refuse' | 'hang' | 'reset' | 'drop-response';

/**
 * A TCP proxy in front of the platform. Modes: pass; refuse (connections closed at once, as
 * a stopped server's port); hang (accepted, never answered); reset (RST at once); drop-response
 * (the request reaches the platform, which stores it, and the connection is reset when the
 * answer comes back, so the agent never sees it).
 */
export class FaultProxy {
  mode: ProxyMode = 'pass';
  target: { host: string; port: number } | undefined;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;
  droppedResponses = 0;

  async start(): Promise<void> {
    const server = createServer((client) => this.accept(client));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    this.server = server;
    this.port = (server.address() as { port: number }).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  setTarget(address: string): void {
    const url = new URL(address);
    this.target = { host: url.hostname, port: Number(url.port) };
  }

  /** Ends every open connection (a mode change applies to the agent's kept-alive connections too). */
  cutAll(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  private accept(client: Socket): void {
    this.sockets.add(client);
    client.on('close', () => this.sockets.delete(client));
    client.on('error', () => undefined);
    const mode = this.mode;
    if (mode === 'refuse' || this.target === undefined) return void client.destroy();
    if (mode === 'reset') return void client.resetAndDestroy();
    if (mode === 'hang') return;
    const upstream = connect(this.target.port, this.target.host);
    this.sockets.add(upstream);
    upstream.on('close', () => {
      this.sockets.delete(upstream);
      client.destroy();
    });
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    client.pipe(upstream);
    if (mode === 'drop-response') {
      upstream.on('data', () => {
        this.droppedResponses++;
        client.resetAndDestroy();
        upstream.destroy();
      });
    } else upstream.pipe(client);
  }

  async close(): Promise<void> {
    this.cutAll();
    const server = this.server;
    if (server !== undefined) await new Promise<void>((r) => server.close(() => r()));
  }
}

/**
 * A fleet of `devices` meters posting to the agent's HTTP collector every `tickMs`, one reading
 * per device per tick (2,000 readings/s with 200 devices every 100 ms). It remembers which
 * readings the agent acknowledged (200: durable in the spool).
 */
export class Fleet {
  readonly acknowledged = new Set<string>();
  sent = 0;
  failedPosts = 0;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private lastTime = 0;
  target: string | undefined;
  constructor(
    readonly devices: number,
    readonly tickMs: number,
  ) {}

  start(target: string): void {
    this.target = target;
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => {
      if (this.inFlight !== undefined) return; // the agent is slower than the fleet: skip a tick rather than pile up
      this.inFlight = this.tick().finally(() => (this.inFlight = undefined));
    }, this.tickMs);
  }

  private async tick(): Promise<void> {
    const time = Math.max(Date.now(), this.lastTime + 1);
    this.lastTime = time;
    const lines: string[] = [];
    for (let d = 0; d < this.devices; d++) {
      lines.push(JSON.stringify({ meterId: `m-${d}`, siteId: `s-${d % 10}`, timestamp: time, usageKw: 5 + (d % 7) + (time % 13) / 10, voltage: 230, current: 22, pf: 0.95 }));
    }
    this.sent += lines.length;
    try {
      const response = await fetch(`${this.target ?? ''}/v1/streams/power/readings`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: lines.join('\n') });
      const body = (await response.json()) as { accepted?: number };
      if (response.status === 200 && body.accepted === lines.length) for (let d = 0; d < this.devices; d++) this.acknowledged.add(`m-${d}|${time}`);
      else this.failedPosts++;
    } catch {
      this.failedPosts++;
    }
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.inFlight;
  }
}

/** Every stored power reading as "key|time" with how many times it is stored. */
export async function storedReadings(dataDir: string): Promise<Map<string, number>> {
  const instance = await DuckDBInstance.create(join(dataDir, 'gridpulse.duckdb'));
  const connection = await instance.connect();
  try {
    const reader = await connection.runAndReadAll(`SELECT key, CAST(time_ms AS BIGINT) AS t, count(*) AS n FROM readings WHERE stream = 'power' GROUP BY key, time_ms`);
    const map = new Map<string, number>();
    for (const row of reader.getRows()) map.set(`${String(row[0])}|${String(row[1])}`, Number(row[2]));
    return map;
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** Polls until `check` is true; returns the ms it took. */
export async function waitUntil(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    if (await check()) return Date.now() - start;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
