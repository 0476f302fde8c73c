import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFileLog, type FileLogOptions, type Log, type LogRecord } from '../../src/log/index.js';

const T0 = Date.UTC(2025, 10, 7, 12, 0, 0);
const HOUR = 3_600_000;
const SEGMENT_BYTES = 1024;

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'gp-log-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function openLog(options: FileLogOptions): Promise<Log> {
  const log = createFileLog(options);
  await log.ready();
  return log;
}

/** About 100 bytes on disk each, so a 1 KiB segment holds a handful. */
const valueOf = (i: number): string => `record-${String(i).padStart(5, '0')}-`.padEnd(70, '.');

async function appendNumbered(log: Log, from: number, count: number, batchSize = 13): Promise<void> {
  for (let i = from; i < from + count; i += batchSize) {
    const size = Math.min(batchSize, from + count - i);
    await log.append(Array.from({ length: size }, (_, k) => ({ key: 'm-1', value: valueOf(i + k) })));
  }
}

async function readAll(log: Log, partition: number, from = 0, maxRecords = 7): Promise<LogRecord[]> {
  const records: LogRecord[] = [];
  let offset = from;
  for (;;) {
    const batch = await log.read(partition, offset, { maxRecords });
    if (batch.records.length === 0) return records;
    records.push(...batch.records);
    offset = batch.nextOffset;
  }
}

const text = (record: LogRecord): string => Buffer.from(record.value).toString('utf8');

/** Base offsets of the segment files of partition 0, from their names. */
function segmentBases(dir: string): number[] {
  return readdirSync(join(dir, 'p-0'))
    .filter((name) => /^\d{20}\.log$/.test(name))
    .sort()
    .map((name) => Number(name.slice(0, 20)));
}

function segmentSizes(dir: string): number[] {
  return readdirSync(join(dir, 'p-0'))
    .filter((name) => /^\d{20}\.log$/.test(name))
    .sort()
    .map((name) => statSync(join(dir, 'p-0', name)).size);
}

test('segments roll at segmentBytes, are named by their first offset, and reads cross their boundaries', async (t) => {
  const dir = tempDir(t);
  const log = await openLog({ dir, segmentBytes: SEGMENT_BYTES });
  await appendNumbered(log, 0, 100);
  const bases = segmentBases(dir);
  assert.ok(bases.length >= 8, `${bases.length} segments`);
  assert.equal(bases[0], 0);
  for (const size of segmentSizes(dir)) assert.ok(size <= SEGMENT_BYTES, `segment of ${size} bytes`);
  for (const base of bases) assert.equal((await log.read(0, base, { maxRecords: 1 })).records[0]?.offset, base, `first record of segment ${base}`);

  const across = await log.read(0, (bases[1] as number) - 2, { maxRecords: 3 * (bases[1] as number) });
  assert.deepEqual(
    across.records.map((r) => r.offset),
    Array.from({ length: 3 * (bases[1] as number) }, (_, i) => (bases[1] as number) - 2 + i),
  );
  for (const batchSize of [1, 7, 100, 1000]) {
    const records = await readAll(log, 0, 0, batchSize);
    assert.deepEqual(records.map(text), Array.from({ length: 100 }, (_, i) => valueOf(i)), `reading ${batchSize} at a time`);
  }
  await log.close();

  // The same after a restart, when the index is rebuilt from the files.
  const reopened = await openLog({ dir, segmentBytes: SEGMENT_BYTES });
  assert.deepEqual((await readAll(reopened, 0, 33)).map(text), Array.from({ length: 67 }, (_, i) => valueOf(33 + i)));
  await reopened.close();
});

test('size retention removes only whole old segments; startOffset moves and offsets are never renumbered', async (t) => {
  const dir = tempDir(t);
  const options = { dir, segmentBytes: SEGMENT_BYTES, retention: { maxBytes: 3000 } };
  let log = await openLog(options);
  await appendNumbered(log, 0, 100);
  const basesBefore = segmentBases(dir);
  const sizesBefore = segmentSizes(dir);

  const report = await log.applyRetention();
  const basesAfter = segmentBases(dir);
  const removed = basesBefore.length - basesAfter.length;
  assert.ok(removed > 0, 'something was removed');
  assert.deepEqual(basesAfter, basesBefore.slice(removed), 'the oldest segments went, whole');
  assert.deepEqual(report, {
    segmentsRemoved: removed,
    bytesRemoved: sizesBefore.slice(0, removed).reduce((a, b) => a + b, 0),
    recordsRemoved: basesAfter[0],
  });
  const bytes = log.stats().partitions[0]?.bytes as number;
  assert.ok(bytes <= 3000, `${bytes} bytes left`);
  assert.ok(bytes + (sizesBefore[removed - 1] as number) > 3000, 'no more was removed than needed');
  assert.equal(log.startOffset(0), basesAfter[0]);
  assert.equal(log.endOffset(0), 100);
  const kept = await readAll(log, 0, 0);
  assert.equal(kept[0]?.offset, basesAfter[0], 'a read from 0 begins at the log start');
  assert.deepEqual(kept.map((r) => [r.offset, text(r)]), kept.map((_, i) => [(basesAfter[0] as number) + i, valueOf((basesAfter[0] as number) + i)]));
  assert.deepEqual(await log.applyRetention(), { segmentsRemoved: 0, bytesRemoved: 0, recordsRemoved: 0 }, 'a second run finds nothing more');
  await log.close();

  log = await openLog(options);
  assert.equal(log.startOffset(0), basesAfter[0]);
  assert.equal((await log.append([{ value: valueOf(100) }])).positions[0]?.offset, 100);
  assert.equal(text((await log.read(0, 90, { maxRecords: 1 })).records[0] as LogRecord), valueOf(90));
  await log.close();
});

test('age retention removes closed segments whose newest record is older than maxAgeMs, never the active one', async (t) => {
  const dir = tempDir(t);
  let now = T0;
  const log = await openLog({ dir, segmentBytes: SEGMENT_BYTES, retention: { maxAgeMs: 4 * HOUR }, clock: () => now });
  for (let hour = 0; hour < 10; hour++) {
    now = T0 + hour * HOUR;
    await appendNumbered(log, hour * 10, 10, 10);
  }
  const all = await readAll(log, 0);
  now = T0 + 10 * HOUR;
  const cutoff = now - 4 * HOUR;
  const report = await log.applyRetention();
  assert.ok(report.segmentsRemoved > 0);
  const start = log.startOffset(0);
  assert.ok(segmentBases(dir).includes(start), 'the log starts at a segment boundary');
  assert.ok((all[start - 1] as LogRecord).timestamp < cutoff, 'what went was old');
  const kept = await readAll(log, 0);
  assert.deepEqual(kept.map((r) => r.offset), all.slice(start).map((r) => r.offset));
  for (const record of all) if (record.timestamp >= cutoff) assert.ok(record.offset >= start, `recent record ${record.offset} kept`);

  now = T0 + 1000 * HOUR;
  await log.applyRetention();
  const active = segmentBases(dir);
  assert.equal(active.length, 1, 'only the active segment is left');
  assert.equal(log.startOffset(0), active[0]);
  assert.equal(log.endOffset(0), 100);
  assert.deepEqual((await readAll(log, 0)).map((r) => r.offset), all.slice(active[0]).map((r) => r.offset));
  await log.close();
});

test('keepUncommittedOf keeps every segment a listed consumer has not committed past', async (t) => {
  const dir = tempDir(t);
  const log = await openLog({ dir, segmentBytes: SEGMENT_BYTES, retention: { maxBytes: 0, keepUncommittedOf: ['engine', 'archive'] } });
  await appendNumbered(log, 0, 100);
  const bases = segmentBases(dir);
  assert.equal((await log.applyRetention()).segmentsRemoved, 0, 'nobody committed: everything is still needed');
  await log.commit('engine', 0, 100);
  assert.equal((await log.applyRetention()).segmentsRemoved, 0, 'archive never committed');
  await log.commit('other', 0, 100); // not listed: does not matter
  await log.commit('archive', 0, 30);
  await log.applyRetention();
  const start = log.startOffset(0);
  assert.ok(start > 0 && start <= 30, `start ${start}`);
  assert.equal(segmentBases(dir)[0], start);
  assert.deepEqual((await readAll(log, 0, 30)).map((r) => r.offset), Array.from({ length: 70 }, (_, i) => 30 + i), 'archive can still read all it has not committed');

  await log.commit('archive', 0, 100);
  await log.applyRetention();
  assert.deepEqual(segmentBases(dir), bases.slice(-1));
  await log.close();
});
