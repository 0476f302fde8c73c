import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { ReadableStream, ReadableStreamReadResult } from 'node:stream/web';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDuration } from '../../config/index.js';
import { formatRate, parseCount } from '../format.js';

export interface HttpBenchOptions {
  durationMs: number;
  meters: number;
  batch: number;
  concurrency: number;
  /** Offered load in readings/s over all connections; 0 = as fast as the server answers. */
  rate: number;
}

export interface HttpBenchResult {
  durationS: number;
  baseline: { rate: number; p50Ms: number; p99Ms: number };
  accepted: number;
  acceptedRate: number;
  ingestP50Ms: number;
  ingestP99Ms: number;
  processedRate: number;
  alertLatency: { samples: number; p50Ms: number | null; p99Ms: number | null; missed: number };
  engineLagAtEnd: number;
  serverPeakRssMb: number | null;
}

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'main.js');

/** The platform under test, in its own process: `gridpulse up` with no simulator on a free port. */
function startServer(dataDir: string): Promise<{ child: ChildProcess; address: string }> {
  // From dist/ the compiled CLI; from src/ (through tsx) the TypeScript one.
  const args = MAIN.includes('/src/') ? ['--import', 'tsx', MAIN.replace(/\.js$/, '.ts')] : [MAIN];
  const child = spawn(process.execPath, [...args, 'up', '--port', '0', '--data-dir', dataDir, '--no-simulator'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_NO_WARNINGS: '1' } });
  return waitForAddress(child, /dashboard (http:\/\/[^/\s]+)\//);
}

/** The baseline: a server that reads and parses the same bodies and answers, with no platform behind it. */
function startBaseline(): Promise<{ child: ChildProcess; address: string }> {
  const script = `
    const http = require('node:http');
    const server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const lines = Buffer.concat(chunks).toString('utf8').split('\\n');
        let n = 0;
        for (const line of lines) if (line) { JSON.parse(line); n++; }
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ accepted: n, rejected: [] }));
      });
    });
    server.listen(0, '127.0.0.1', () => console.log('baseline http://127.0.0.1:' + server.address().port + '/'));`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  return waitForAddress(child, /baseline (http:\/\/[^/\s]+)\//);
}

function waitForAddress(child: ChildProcess, pattern: RegExp): Promise<{ child: ChildProcess; address: string }> {
  let text = '';
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const match = pattern.exec(text);
      if (match) resolve({ child, address: match[1]! });
    });
    child.stderr!.on('data', (chunk: Buffer) => (text += chunk.toString()));
    child.on('exit', (code) => reject(new Error(`server exited (${String(code)}):\n${text}`)));
  });
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Posts NDJSON batches from `concurrency` workers for `durationMs`; meters report in turn with event time moving on. */
async function load(
  url: string,
  options: HttpBenchOptions,
  startEventTime: number,
): Promise<{ accepted: number; latencies: number[]; seconds: number }> {
  const latencies: number[] = [];
  let accepted = 0;
  const begin = performance.now();
  const deadline = begin + options.durationMs;
  // Each connection owns a share of the meters, so every meter's readings arrive in order (as from a
  // real device), and the values are physically consistent (kW = V·I·PF/1000).
  const perWorker = Math.max(1, Math.floor(options.meters / options.concurrency));
  const body = (worker: number, sequence: { n: number }): string => {
    const lines: string[] = [];
    for (let i = 0; i < options.batch; i++, sequence.n++) {
      const meter = (sequence.n % perWorker) * options.concurrency + worker;
      const round = Math.floor(sequence.n / perWorker);
      const time = startEventTime + round * 1000 + (meter % 1000);
      const kw = 2 + (meter % 50) + ((sequence.n * 7919) % 100) / 100;
      const current = (kw * 1000) / (230 * 0.95);
      lines.push(`{"meterId":"b-${meter}","siteId":"s-${meter % 500}","timestamp":${time},"usageKw":${kw.toFixed(2)},"voltage":230,"current":${current.toFixed(3)},"pf":0.95}`);
    }
    return lines.join('\n');
  };
  const worker = async (index: number): Promise<void> => {
    const sequence = { n: 0 };
    // Paced: each connection sends its share of the offered rate, one batch per slot.
    const slotMs = options.rate > 0 ? (options.batch * options.concurrency * 1000) / options.rate : 0;
    let slot = performance.now();
    while (performance.now() < deadline) {
      if (slotMs > 0) {
        slot += slotMs;
        const wait = slot - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      const text = body(index, sequence);
      const t0 = performance.now();
      const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: text });
      const result = (await response.json()) as { accepted?: number };
      latencies.push(performance.now() - t0);
      if (response.status === 200) accepted += result.accepted ?? 0;
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, (_, i) => worker(i)));
  return { accepted, latencies: latencies.sort((a, b) => a - b), seconds: (performance.now() - begin) / 1000 };
}

/** Alert latency probes: a meter with a steady level gets a spike; time from its POST to the alert on SSE. */
async function probeAlerts(address: string, until: number, startEventTime: number): Promise<{ latencies: number[]; missed: number }> {
  const latencies: number[] = [];
  let missed = 0;
  let probe = 0;
  while (performance.now() < until - 12_000) {
    const key = `probe-${probe++}`;
    const controller = new AbortController();
    const sse = await fetch(`${address}/api/live?types=alert&key=${key}`, { signal: controller.signal });
    const reader = (sse.body as ReadableStream<Uint8Array>).getReader();
    const seen = (async (): Promise<number | undefined> => {
      const decoder = new TextDecoder();
      let text = '';
      for (;;) {
        const chunk: ReadableStreamReadResult<Uint8Array> | undefined = await reader.read().catch(() => undefined);
        if (chunk === undefined || chunk.done) return undefined;
        text += decoder.decode(chunk.value);
        if (/event: alert/.test(text) && text.includes('"spike"')) return performance.now();
      }
    })();
    const steady = Array.from({ length: 40 }, (_, i) => `{"meterId":"${key}","siteId":"probe","timestamp":${startEventTime + i * 1000},"usageKw":${(10 + (i % 3) * 0.05).toFixed(2)}}`);
    await fetch(`${address}/v1/streams/power/readings`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: steady.join('\n') });
    const sentAt = performance.now();
    await fetch(`${address}/v1/streams/power/readings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"meterId":"${key}","siteId":"probe","timestamp":${startEventTime + 40_000},"usageKw":30}` });
    const timeout = new Promise<undefined>((r) => setTimeout(() => r(undefined), 10_000));
    const at = await Promise.race([seen, timeout]);
    controller.abort();
    if (at === undefined) missed++;
    else latencies.push(at - sentAt);
    await new Promise((r) => setTimeout(r, 1000));
  }
  return { latencies: latencies.sort((a, b) => a - b), missed };
}

export async function runHttpBench(options: HttpBenchOptions, log: (line: string) => void): Promise<HttpBenchResult> {
  const startEventTime = Date.now() - 3_600_000;
  log(`baseline: bare Node HTTP server that reads and JSON.parses the same NDJSON bodies, ${options.durationMs / 4000} s …`);
  const baselineServer = await startBaseline();
  const baseline = await load(`${baselineServer.address}/`, { ...options, durationMs: options.durationMs / 4 }, startEventTime);
  baselineServer.child.kill();

  const dataDir = mkdtempSync(join(tmpdir(), 'gridpulse-bench-http-'));
  log(`platform: gridpulse up (embedded log with fsync per batch, engine, DuckDB) in ${dataDir}, ${options.durationMs / 1000} s of load …`);
  const server = await startServer(dataDir);
  try {
    const until = performance.now() + options.durationMs;
    const [run, probes] = await Promise.all([
      load(`${server.address}/v1/streams/power/readings`, options, startEventTime),
      probeAlerts(server.address, until, startEventTime),
    ]);
    const status = (await (await fetch(`${server.address}/api/status`)).json()) as { processRate: number; totals: { processed: number }; log: { partitions: Array<{ lag: number }> } };
    const metrics = await (await fetch(`${server.address}/metrics`)).text();
    const rss = /^process_resident_memory_bytes (\d+)/m.exec(metrics);
    return {
      durationS: run.seconds,
      baseline: { rate: baseline.accepted / baseline.seconds, p50Ms: quantile(baseline.latencies, 0.5), p99Ms: quantile(baseline.latencies, 0.99) },
      accepted: run.accepted,
      acceptedRate: run.accepted / run.seconds,
      ingestP50Ms: quantile(run.latencies, 0.5),
      ingestP99Ms: quantile(run.latencies, 0.99),
      processedRate: status.totals.processed / run.seconds,
      alertLatency: {
        samples: probes.latencies.length,
        p50Ms: probes.latencies.length ? quantile(probes.latencies, 0.5) : null,
        p99Ms: probes.latencies.length ? quantile(probes.latencies, 0.99) : null,
        missed: probes.missed,
      },
      engineLagAtEnd: status.log.partitions.reduce((s, p) => s + p.lag, 0),
      serverPeakRssMb: rss ? Number(rss[1]) / 2 ** 20 : null,
    };
  } finally {
    server.child.kill('SIGTERM');
    await new Promise((r) => server.child.once('exit', r));
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export function formatHttpBench(r: HttpBenchResult, options: HttpBenchOptions): string {
  const ms = (v: number | null): string => (v === null || Number.isNaN(v) ? 'n/a' : `${v.toFixed(1)} ms`);
  return [
    `load             ${options.concurrency} connections posting NDJSON batches of ${options.batch} readings from ${options.meters.toLocaleString('en')} meters, ${r.durationS.toFixed(0)} s, ${options.rate > 0 ? `offered ${formatRate(options.rate)} readings/s` : 'as fast as answered'}`,
    `baseline         ${formatRate(r.baseline.rate)} readings/s  (bare Node HTTP + JSON.parse, same bodies; p50 ${ms(r.baseline.p50Ms)}, p99 ${ms(r.baseline.p99Ms)})`,
    `accepted         ${formatRate(r.acceptedRate)} readings/s durable in the log (${r.accepted.toLocaleString('en')} readings; ${((r.acceptedRate / r.baseline.rate) * 100).toFixed(0)}% of baseline; goal ≥ 50,000/s)`,
    `ingest latency   p50 ${ms(r.ingestP50Ms)}, p99 ${ms(r.ingestP99Ms)} per request (POST to 200 = durable)`,
    `engine           ${formatRate(r.processedRate)} readings/s processed during the run; ${r.engineLagAtEnd.toLocaleString('en')} readings behind at the end`,
    `alert latency    POST of a spike → alert on SSE: p50 ${ms(r.alertLatency.p50Ms)}, p99 ${ms(r.alertLatency.p99Ms)} over ${r.alertLatency.samples} probes (${r.alertLatency.missed} not seen within 10 s; goal p99 < 1 s)`,
    `server memory    ${r.serverPeakRssMb === null ? 'n/a' : `${r.serverPeakRssMb.toFixed(0)} MiB RSS at the end`}`,
  ].join('\n');
}

export function parseHttpBenchOptions(opts: { duration: string; meters: string; batch: string; concurrency: string; rate: string }): HttpBenchOptions {
  return {
    rate: opts.rate === '0' ? 0 : parseCount(opts.rate, '--rate'),
    durationMs: parseDuration(opts.duration),
    meters: parseCount(opts.meters, '--meters'),
    batch: parseCount(opts.batch, '--batch'),
    concurrency: parseCount(opts.concurrency, '--concurrency'),
  };
}
