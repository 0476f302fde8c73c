import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEdgeConfig, parseSize } from '../../src/config/index.js';
import { createSpool, decodeRegister, retryAfterOf } from '../../src/edge/index.js';
import { createFileLog } from '../../src/log/index.js';
import { GpError } from '../../src/model/index.js';

const SEGMENT = 64 * 1024;

function line(index: number): { key: string; value: string } {
  return { key: `power\tm-${index % 5}`, value: JSON.stringify({ meterId: `m-${index % 5}`, timestamp: 1_767_225_600_000 + index, usageKw: index }) };
}

test('a corrupt byte inside a closed spool segment: the segment is copied to quarantine/, reported, and the readable readings are still there', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gp-edge-spool-'));
  try {
    const spool = createSpool({ dir, maxBytes: 16 * SEGMENT, segmentBytes: SEGMENT, full: 'block' });
    await spool.ready();
    for (let i = 0; i < 2000; i += 100) await spool.append(Array.from({ length: 100 }, (_, j) => line(i + j)));
    await spool.close();
    const partition = join(dir, 'p-0');
    const first = readdirSync(partition).filter((n) => n.endsWith('.log')).sort()[0]!;
    const bytes = readFileSync(join(partition, first));
    const middle = Math.floor(bytes.length / 2);
    bytes.writeUInt8(bytes.readUInt8(middle) ^ 0xff, middle);
    writeFileSync(join(partition, first), bytes);

    const reopened = createSpool({ dir, maxBytes: 16 * SEGMENT, segmentBytes: SEGMENT, full: 'block' });
    const recovery = await reopened.ready();
    assert.equal(recovery.quarantined.length, 1, JSON.stringify(recovery));
    const q = recovery.quarantined[0]!;
    assert.equal(q.file, first);
    assert.ok(existsSync(q.copy), 'the corrupt segment is kept aside for inspection');
    assert.match(q.reason, /checksum/);
    assert.ok(q.unreadableRecords > 0);
    assert.equal(reopened.stats().corruptRecords, q.unreadableRecords);
    // Every record before the corruption and every later segment is still read.
    let readable = 0;
    let offset = 0;
    for (;;) {
      const batch = await reopened.read(offset, 1000);
      if (batch.records.length === 0) break;
      readable += batch.records.length;
      offset = batch.nextOffset;
    }
    assert.equal(readable + q.unreadableRecords, 2000, 'each reading is either readable or counted as lost to corruption');
    await reopened.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the file log drops its oldest closed segment on demand, never the one being written', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gp-edge-log-'));
  try {
    const log = createFileLog({ dir, segmentBytes: 4096 });
    await log.ready();
    assert.deepEqual(await log.dropOldestSegment!(0), { segmentsRemoved: 0, bytesRemoved: 0, recordsRemoved: 0 });
    for (let i = 0; i < 200; i++) await log.append([{ value: `{"i":${i},"pad":"${'x'.repeat(40)}"}` }]);
    const before = log.stats();
    assert.ok(before.segments > 2);
    const report = await log.dropOldestSegment!(0);
    assert.equal(report.segmentsRemoved, 1);
    assert.equal(log.startOffset(0), report.recordsRemoved);
    assert.equal(log.stats().bytes, before.bytes - report.bytesRemoved);
    while ((await log.dropOldestSegment!(0)).segmentsRemoved > 0);
    assert.equal(log.stats().segments, 1, 'the open segment stays');
    const tail = await log.read(0, 0);
    assert.equal(tail.records.at(-1)?.offset, 199);
    await log.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('edge config: defaults, sizes, and errors that name the field', () => {
  const config = parseEdgeConfig({ forward: { url: 'http://127.0.0.1:8080/' }, collectors: [{ type: 'http' }, { type: 'http', port: 0 }] });
  assert.equal(config.spool.full, 'block');
  assert.equal(config.forward.url, 'http://127.0.0.1:8080');
  assert.deepEqual(
    config.collectors.map((c) => c.name),
    ['http', 'http-2'],
  );
  assert.equal(parseSize('64MB'), 64 * 1024 * 1024);
  assert.equal(parseSize('1GiB'), 1024 ** 3);
  assert.throws(
    () => parseEdgeConfig({ spool: { full: 'drop-newest' }, forward: { url: 'http://x' }, collectors: [{ type: 'http' }] }),
    (error: unknown) => error instanceof GpError && error.code === 'GP_CONFIG_INVALID' && /\/spool\/full: expected "block" or "drop-oldest", got "drop-newest"/.test(error.message),
  );
  assert.throws(
    () => parseEdgeConfig({ spool: { maxBytes: '10MB', segmentBytes: '8MB' }, forward: { url: 'http://x' }, collectors: [{ type: 'http' }] }),
    /\/spool\/maxBytes: expected at least 4 segments/,
  );
  assert.throws(() => parseEdgeConfig({ forward: { url: 'http://u:secret@x' }, collectors: [{ type: 'http' }] }), (error: unknown) => /no password/.test(String(error)) && !/secret/.test(String(error)));
  assert.throws(() => parseEdgeConfig({ forward: { url: 'http://x', tokenEnv: 'GP_NOPE' }, collectors: [{ type: 'stdin' }] }, { env: {} }), /\/forward\/tokenEnv: expected the environment variable GP_NOPE/);
});

test('Retry-After as seconds or a date; Modbus registers decoded by type, word order, scale and offset', () => {
  assert.equal(retryAfterOf('3', 0), 3000);
  assert.equal(retryAfterOf(new Date(10_000).toUTCString(), 4000), 6000);
  assert.equal(retryAfterOf(null, 0), undefined);
  assert.ok(Math.abs(decodeRegister({ metric: 'v', address: 0, scale: 0.1 }, [2301]) - 230.1) < 1e-9);
  assert.equal(decodeRegister({ metric: 't', address: 0, type: 'int16' }, [0xfffe]), -2);
  assert.equal(decodeRegister({ metric: 'e', address: 0, type: 'uint32' }, [0x0001, 0x0002]), 65538);
  assert.equal(decodeRegister({ metric: 'e', address: 0, type: 'uint32', wordOrder: 'little' }, [0x0002, 0x0001]), 65538);
  const buffer = Buffer.alloc(4);
  buffer.writeFloatBE(49.75);
  assert.equal(decodeRegister({ metric: 'f', address: 0, type: 'float32', offset: 0.25 }, [buffer.readUInt16BE(0), buffer.readUInt16BE(2)]), 50);
});
