import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createDuckDbStore } from '../../src/stores/index.js';

const ROOT = resolve(import.meta.dirname, '../..');
const METERS = 200;
const PER_METER = 500;
const STEP_MS = 10_000;
const BASE = Date.UTC(2026, 0, 5);
const BATCH = 500;

interface Up {
  child: ChildProcess;
  address: string;
  output: () => string;
  exited: Promise<number | null>;
}

function startUp(dataDir: string): Promise<Up> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'up', '--port', '0', '--data-dir', dataDir, '--no-simulator'], {
    cwd: ROOT,
    env: { ...process.env, NODE_NO_WARNINGS: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  return new Promise((done, fail) => {
    const onData = (chunk: Buffer): void => {
      text += chunk.toString();
      const match = /dashboard (http:\/\/[^/\s]+)\//.exec(text);
      if (match) done({ child, address: match[1]!, output: () => text, exited });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
    void exited.then((code) => fail(new Error(`gridpulse up exited (${String(code)}) before it was up:\n${text}`)));
  });
}

function reading(index: number): string {
  const meter = index % METERS;
  const step = Math.floor(index / METERS);
  return JSON.stringify({ meterId: `m-${meter}`, siteId: `s-${meter % 10}`, timestamp: BASE + step * STEP_MS, usageKw: 5 + (index % 7), voltage: 230, current: 22, pf: 0.95 });
}

async function post(address: string, lines: string[]): Promise<{ accepted: number; rejected: unknown[] }> {
  const response = await fetch(`${address}/v1/streams/power/readings`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson' },
    body: lines.join('\n'),
  });
  if (response.status !== 200) throw new Error(`HTTP ${response.status}: ${await response.text()}`);
  return (await response.json()) as { accepted: number; rejected: unknown[] };
}

async function waitIdle(address: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const status = (await (await fetch(`${address}/api/status`)).json()) as { log: { partitions: Array<{ lag: number }> }; store: { pendingWrites: number } };
    if (status.log.partitions.every((p) => p.lag === 0) && status.store.pendingWrites === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the platform did not catch up with the log within 60 s');
}

test('SIGKILL while 100,000 readings are posted: after restart every acknowledged reading is stored exactly once, and the torn tail is reported', { timeout: 300_000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'gp-durability-'));
  try {
    const total = METERS * PER_METER;
    const batches: string[][] = [];
    for (let i = 0; i < total; i += BATCH) batches.push(Array.from({ length: Math.min(BATCH, total - i) }, (_, j) => reading(i + j)));
    const acknowledged = new Set<number>();

    // First run: post with 4 requests in flight and kill -9 once about 40% is acknowledged.
    const first = await startUp(dataDir);
    let next = 0;
    let killed = false;
    const worker = async (): Promise<void> => {
      while (!killed && next < batches.length) {
        const b = next++;
        try {
          const result = await post(first.address, batches[b]!);
          assert.equal(result.accepted, batches[b]!.length);
          acknowledged.add(b);
          if (acknowledged.size >= batches.length * 0.4 && !killed) {
            killed = true;
            first.child.kill('SIGKILL');
          }
        } catch {
          // in flight when the process died: not acknowledged, the client sends it again below
        }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    await first.exited;
    assert.ok(killed, 'the process was killed while posting');
    const ackedBeforeKill = acknowledged.size;
    assert.ok(ackedBeforeKill > 0 && ackedBeforeKill < batches.length, `killed mid-way (${ackedBeforeKill} of ${batches.length} batches acknowledged)`);

    // A write torn by the crash: half a record at the end of the newest segment.
    const partitionDir = join(dataDir, 'log', 'p-0');
    const newest = readdirSync(partitionDir).filter((n) => n.endsWith('.log')).sort().at(-1)!;
    appendFileSync(join(partitionDir, newest), Buffer.from([0, 0, 1, 0, 0x7f, 0x13, 0x22]));

    // Second run: recovery is reported; the client resends everything not acknowledged.
    const second = await startUp(dataDir);
    assert.match(second.output(), /crash recovery: log partition 0: cut 7 bytes/);
    for (let b = 0; b < batches.length; b++) {
      if (acknowledged.has(b)) continue;
      const result = await post(second.address, batches[b]!);
      assert.equal(result.accepted, batches[b]!.length);
      acknowledged.add(b);
    }
    // One reading per meter an hour later moves the watermark past every window of the run.
    const closing = Array.from({ length: METERS }, (_, m) => JSON.stringify({ meterId: `m-${m}`, siteId: `s-${m % 10}`, timestamp: BASE + PER_METER * STEP_MS + 3_600_000, usageKw: 5 }));
    await post(second.address, closing);
    await waitIdle(second.address);
    second.child.kill('SIGTERM');
    assert.equal(await second.exited, 0, second.output());

    const store = createDuckDbStore({ path: join(dataDir, 'gridpulse.duckdb') });
    await store.ready();
    try {
      const counts = await store.counts();
      assert.equal(counts.readings, total + METERS, 'every reading stored once (acknowledged ones, resent ones deduplicated, plus the closing ones)');
      for (const meter of [0, 1, 57, 123, 199]) {
        const series = await store.querySeries({ stream: 'power', key: `m-${meter}`, metric: 'usageKw', from: BASE, to: BASE + PER_METER * STEP_MS - 1, resolution: '1m' });
        const counted = series.points.reduce((sum, p) => sum + p.count, 0);
        assert.equal(counted, PER_METER, `1-minute aggregates of m-${meter} count each of its ${PER_METER} readings once`);
      }
    } finally {
      await store.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
