import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSpool } from '../../src/edge/index.js';
import { recordBytes } from '../../src/log/index.js';
import { GpError } from '../../src/model/index.js';

const CAP = 64 * 1024 * 1024;
const SEGMENT = 4 * 1024 * 1024;
const BATCH = 1000;

/** Fixed-size records, so the test can compute segment by segment what the spool must do. */
function record(index: number): { key: string; value: string } {
  const meter = `m-${String(index % 500).padStart(4, '0')}`;
  return { key: `power\t${meter}`, value: JSON.stringify({ meterId: meter, timestamp: 1_767_225_600_000 + index, usageKw: 12.5, voltage: 230.1, current: 54.3, pf: 0.97, n: String(index).padStart(9, '0') }) };
}
const RECORD_BYTES = recordBytes(record(0).key, record(0).value);
const PER_SEGMENT = Math.floor(SEGMENT / RECORD_BYTES);

function diskBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const info = statSync(path);
    total += info.isDirectory() ? diskBytes(path) : info.size;
  }
  return total;
}

test(`64 MB cap, drop-oldest: whole oldest segments go, the dropped count is exactly what the test computes, disk use stays under cap + one segment`, { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gp-edge-cap-'));
  try {
    const spool = createSpool({ dir, maxBytes: CAP, segmentBytes: SEGMENT, full: 'drop-oldest' });
    await spool.ready();
    const total = Math.ceil((1.6 * CAP) / RECORD_BYTES / BATCH) * BATCH;
    // The model: segments of PER_SEGMENT records; before each batch, drop oldest closed segments until it fits.
    const segments: number[] = [0];
    let expectedDropped = 0;
    let maxDisk = 0;
    for (let start = 0; start < total; start += BATCH) {
      const used = (): number => segments.reduce((a, b) => a + b, 0) * RECORD_BYTES;
      while (used() + BATCH * RECORD_BYTES > CAP) expectedDropped += segments.shift() as number;
      for (let i = 0; i < BATCH; i++) {
        if ((segments[segments.length - 1] as number) === PER_SEGMENT) segments.push(0);
        segments[segments.length - 1]! += 1;
      }
      await spool.append(Array.from({ length: BATCH }, (_, i) => record(start + i)));
      maxDisk = Math.max(maxDisk, diskBytes(dir));
      assert.ok(spool.stats().bytes <= CAP, `spool bytes ${spool.stats().bytes} within the cap`);
    }
    const stats = spool.stats();
    assert.ok(expectedDropped > 0);
    assert.equal(stats.droppedByPolicy, expectedDropped, 'dropped count');
    assert.equal(stats.startOffset, expectedDropped, 'the oldest readings went, and only they');
    assert.equal(stats.unsent, total - expectedDropped);
    assert.ok(maxDisk <= CAP + SEGMENT, `disk use ${maxDisk} never above cap + one segment (${CAP + SEGMENT})`);
    const first = await spool.read(0, 1);
    assert.equal(first.records[0]?.offset, expectedDropped);
    assert.equal(Buffer.from(first.records[0].value).toString(), record(expectedDropped).value, 'the first kept reading is the one after the dropped ones');
    await spool.close();
    // The count is kept across restarts.
    const again = createSpool({ dir, maxBytes: CAP, segmentBytes: SEGMENT, full: 'drop-oldest' });
    await again.ready();
    assert.equal(again.stats().droppedByPolicy, expectedDropped);
    await again.close();
    console.log(`drop-oldest: ${total} readings of ${RECORD_BYTES} bytes into a ${CAP}-byte cap: ${expectedDropped} dropped (${expectedDropped / PER_SEGMENT} segments of ${PER_SEGMENT}), max disk use ${maxDisk} bytes`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('64 MB cap, block: appends are refused (or wait) exactly at the cap, nothing is dropped, and space comes back when the platform has taken readings', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gp-edge-cap-'));
  try {
    const spool = createSpool({ dir, maxBytes: CAP, segmentBytes: SEGMENT, full: 'block' });
    await spool.ready();
    let appended = 0;
    let maxDisk = 0;
    const full = (error: unknown): boolean => error instanceof GpError && error.code === 'GP_UNAVAILABLE' && /spool full/.test(error.message);
    // Batches while they fit, then single readings: exactly floor(cap / record size) are admitted.
    for (;;) {
      try {
        await spool.append(Array.from({ length: BATCH }, (_, i) => record(appended + i)), { wait: false });
        appended += BATCH;
        maxDisk = Math.max(maxDisk, diskBytes(dir));
      } catch (error) {
        assert.ok(full(error), String(error));
        break;
      }
    }
    for (;;) {
      try {
        await spool.append([record(appended)], { wait: false });
        appended++;
      } catch (error) {
        assert.ok(full(error), String(error));
        break;
      }
    }
    maxDisk = Math.max(maxDisk, diskBytes(dir));
    assert.equal(appended, Math.floor(CAP / RECORD_BYTES), 'admitted up to the cap, not one more');
    assert.ok(maxDisk <= CAP + SEGMENT, `disk use ${maxDisk} within cap + one segment`);
    assert.equal(spool.stats().droppedByPolicy, 0);
    assert.equal(spool.stats().startOffset, 0, 'nothing dropped');

    // A collector that waits (MQTT, Modbus): blocked until the forwarder has delivered a segment.
    let resolved = false;
    const waiting = spool.append([record(appended)]).then(() => (resolved = true));
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(resolved, false, 'the append waits while the spool is full');
    assert.equal(spool.stats().blockedAppends, 1);
    await spool.commit(PER_SEGMENT + 10); // the platform acknowledged the first segment and a bit
    await waiting;
    assert.equal(resolved, true);
    assert.equal(spool.stats().startOffset, PER_SEGMENT, 'the delivered segment was deleted, nothing undelivered');
    await spool.close();
    console.log(`block: ${appended} readings admitted into ${CAP} bytes (${RECORD_BYTES} bytes each), max disk use ${maxDisk} bytes`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
