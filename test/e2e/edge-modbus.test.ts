import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ModbusRTU from 'modbus-serial';
import { parseEdgeConfig } from '../../src/config/index.js';
import { createEdgeAgent, createSpool } from '../../src/edge/index.js';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

test('Modbus TCP: holding and input registers polled from a loopback server become readings with scaled, typed metrics', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gp-edge-modbus-'));
  const port = await freePort();
  // The device: voltage ×10 in holding 0, a signed temperature in holding 1, energy as uint32 in holding 2-3, power factor ×1000 in input 0.
  const holding = [2301, 0xfff6, 0x0001, 0x86a0];
  let energyStep = 0;
  const server = new ModbusRTU.ServerTCP(
    {
      getHoldingRegister: (address: number) => (address === 3 ? (holding[3]! + energyStep++) & 0xffff : (holding[address] ?? 0)),
      getInputRegister: (address: number) => (address === 0 ? 970 : 0),
    },
    { host: '127.0.0.1', port, unitID: 7 },
  );
  try {
    await new Promise<void>((resolve) => server.on('initialized', () => resolve()));
    const dataDir = join(dir, 'edge');
    const deadPort = await freePort();
    const config = parseEdgeConfig({
      agent: { dataDir },
      spool: { maxBytes: '4MB', segmentBytes: '256KB' },
      forward: { url: `http://127.0.0.1:${deadPort}`, backoffMax: '200ms' }, // the link is down: readings stay in the spool
      status: { port: 0 },
      collectors: [
        {
          type: 'modbus',
          host: '127.0.0.1',
          port,
          unitId: 7,
          device: 'plc-1',
          stream: 'power',
          interval: '100ms',
          registers: [
            { metric: 'voltage', address: 0, scale: 0.1 },
            { metric: 'temperature', address: 1, type: 'int16' },
            { metric: 'energyWh', address: 2, type: 'uint32' },
            { metric: 'pf', address: 0, kind: 'input', scale: 0.001 },
          ],
        },
      ],
    });
    const agent = createEdgeAgent({ config });
    await agent.start();
    await new Promise((r) => setTimeout(r, 1200));
    await agent.stop();
    const collected = agent.status().collectors[0]!;
    assert.equal(collected.errors, 0, collected.lastError);
    assert.ok(collected.collected >= 5, `about 10 polls a second (got ${collected.collected} in 1.2 s)`);

    const spool = createSpool({ dir: join(dataDir, 'spool'), maxBytes: 4 * 1024 * 1024, segmentBytes: 256 * 1024, full: 'block' });
    await spool.ready();
    const batch = await spool.read(0, 1000);
    await spool.close();
    assert.equal(batch.records.length, collected.collected);
    const readings = batch.records.map((r) => JSON.parse(Buffer.from(r.value).toString()) as Record<string, number | string>);
    const first = readings[0]!;
    assert.equal(first.meterId, 'plc-1');
    assert.ok(Math.abs((first.voltage as number) - 230.1) < 1e-9);
    assert.equal(first.temperature, -10);
    assert.ok(Math.abs((first.pf as number) - 0.97) < 1e-9);
    assert.ok((first.energyWh as number) >= 0x186a0);
    assert.equal(typeof first.readingId, 'string');
    assert.equal(new Set(readings.map((r) => r.readingId)).size, readings.length, 'each poll has its own id');
    assert.ok(readings.every((r, i) => i === 0 || (r.timestamp as number) >= (readings[i - 1]!.timestamp as number)), 'in poll order');
    assert.equal(batch.records[0]!.key, 'power\tplc-1');
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  }
});
