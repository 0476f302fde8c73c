import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GpError } from '../../src/model/index.js';
import { createFileLog, partitionOfKey, type FileLogOptions, type Log, type LogRecord } from '../../src/log/index.js';

const T0 = Date.UTC(2025, 10, 7, 12, 0, 0);

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'gp-log-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A clock the test moves by hand. */
function manualClock(start = T0): { now: () => number; set: (time: number) => void } {
  let time = start;
  return { now: () => time, set: (next) => (time = next) };
}

async function openLog(options: FileLogOptions): Promise<Log> {
  const log = createFileLog(options);
  await log.ready();
  return log;
}

async function readAll(log: Log, partition: number, from = 0): Promise<LogRecord[]> {
  const records: LogRecord[] = [];
  let offset = from;
  for (;;) {
    const batch = await log.read(partition, offset, { maxRecords: 7 });
    if (batch.records.length === 0) return records;
    records.push(...batch.records);
    offset = batch.nextOffset;
  }
}

const text = (record: LogRecord): string => Buffer.from(record.value).toString('utf8');

function expectGpError(code: string, pattern: RegExp): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof GpError, `expected a GpError, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.match(error.message, pattern);
    return true;
  };
}

test('appended batches read back per partition in order, with keys, values, timestamps and contiguous offsets', async (t) => {
  const dir = tempDir(t);
  const clock = manualClock();
  const log = await openLog({ dir, partitions: 3, clock: clock.now });
  const first = await log.append([
    { partition: 0, key: 'm-1', value: '{"v":1}' },
    { partition: 2, key: 'm-2', value: '{"v":2}' },
    { partition: 0, value: new Uint8Array([0, 1, 2, 255]) },
  ]);
  assert.deepEqual(first.positions, [
    { partition: 0, offset: 0 },
    { partition: 2, offset: 0 },
    { partition: 0, offset: 1 },
  ]);
  assert.equal(first.appendedAt, T0);
  clock.set(T0 + 5000);
  const second = await log.append([
    { partition: 2, key: 'm-2', value: '{"v":3}' },
    { partition: 0, key: '', value: '' },
    { partition: 0, key: 'zähler-ü', value: '{"text":"grüße"}' },
  ]);
  assert.deepEqual(
    second.positions.map((p) => [p.partition, p.offset]),
    [
      [2, 1],
      [0, 2],
      [0, 3],
    ],
  );

  const p0 = await readAll(log, 0);
  assert.deepEqual(
    p0.map((r) => [r.partition, r.offset, r.key, r.timestamp]),
    [
      [0, 0, 'm-1', T0],
      [0, 1, undefined, T0],
      [0, 2, '', T0 + 5000],
      [0, 3, 'zähler-ü', T0 + 5000],
    ],
  );
  assert.equal(text(p0[0] as LogRecord), '{"v":1}');
  assert.deepEqual([...(p0[1] as LogRecord).value], [0, 1, 2, 255]);
  assert.equal(text(p0[2] as LogRecord), '');
  assert.equal(text(p0[3] as LogRecord), '{"text":"grüße"}');
  assert.deepEqual((await readAll(log, 2)).map((r) => [r.offset, text(r)]), [
    [0, '{"v":2}'],
    [1, '{"v":3}'],
  ]);
  assert.deepEqual(await readAll(log, 1), []);
  assert.deepEqual([0, 1, 2].map((p) => [log.startOffset(p), log.endOffset(p)]), [
    [0, 4],
    [0, 0],
    [0, 2],
  ]);
  const stats = log.stats();
  assert.equal(stats.appendedRecords, 6);
  assert.equal(stats.appendedBatches, 2);
  assert.deepEqual(
    stats.partitions.map((p) => p.endOffset),
    [4, 0, 2],
  );
  await log.close();
  await log.close(); // idempotent
});

test('a restart keeps every record, and offsets continue where they stopped', async (t) => {
  const dir = tempDir(t);
  let log = await openLog({ dir, partitions: 2 });
  for (let batch = 0; batch < 5; batch++) {
    await log.append(Array.from({ length: 40 }, (_, i) => ({ key: `m-${i % 7}`, value: `{"batch":${batch},"i":${i}}` })));
  }
  const before = [await readAll(log, 0), await readAll(log, 1)];
  await log.close();

  log = await openLog({ dir, partitions: 2 });
  const recovery = await log.ready();
  assert.deepEqual(
    recovery.partitions.map((p) => [p.endOffset, p.truncatedBytes, p.reason]),
    before.map((records) => [records.length, 0, undefined]),
  );
  const after = [await readAll(log, 0), await readAll(log, 1)];
  assert.deepEqual(after.map((records) => records.map((r) => [r.offset, r.key, r.timestamp, text(r)])), before.map((records) => records.map((r) => [r.offset, r.key, r.timestamp, text(r)])));
  for (const records of after) assert.deepEqual(records.map((r) => r.offset), records.map((_, i) => i));

  const more = await log.append([{ partition: 0, value: 'next-0' }, { partition: 1, value: 'next-1' }]);
  assert.deepEqual(more.positions, [
    { partition: 0, offset: (before[0] as LogRecord[]).length },
    { partition: 1, offset: (before[1] as LogRecord[]).length },
  ]);
  await log.close();
});

test('records of one key land on one partition, the one partitionOfKey gives (Kafka murmur2 partitioner)', async (t) => {
  // Kafka's UtilsTest.testMurmur2: murmur2("21") = -973932308, murmur2("foobar") = -790332482.
  assert.equal(partitionOfKey('21', 7), (-973932308 & 0x7fffffff) % 7);
  assert.equal(partitionOfKey('foobar', 12), (-790332482 & 0x7fffffff) % 12);
  assert.equal(partitionOfKey('anything', 1), 0);

  const log = await openLog({ dir: tempDir(t), partitions: 4 });
  const keys = Array.from({ length: 50 }, (_, i) => `meter-${i}`);
  const { positions } = await log.append(keys.map((key) => ({ key, value: key })));
  positions.forEach((position, i) => assert.equal(position.partition, partitionOfKey(keys[i] as string, 4)));
  assert.ok(new Set(positions.map((p) => p.partition)).size > 1, 'fifty keys spread over more than one partition');
  const { positions: again } = await log.append([{ key: 'meter-3', value: 'x' }]);
  assert.equal(again[0]?.partition, positions[3]?.partition);
  await log.close();
});

test('concurrent appends are committed together, each resolving with its own offsets in call order', async (t) => {
  const log = await openLog({ dir: tempDir(t) });
  const calls = Array.from({ length: 20 }, (_, call) => log.append(Array.from({ length: 10 }, (_, i) => ({ value: `${call}:${i}` }))));
  const results = await Promise.all(calls);
  results.forEach((result, call) => assert.deepEqual(result.positions.map((p) => p.offset), Array.from({ length: 10 }, (_, i) => call * 10 + i)));
  const records = await readAll(log, 0);
  assert.deepEqual(records.map(text), results.flatMap((_, call) => Array.from({ length: 10 }, (_, i) => `${call}:${i}`)));
  // One write + fsync for the first call, one for the 19 queued behind it: far fewer than 20.
  assert.ok(log.stats().fsyncs < 20, `fsyncs ${log.stats().fsyncs}`);
  await log.close();
});

test('read honours maxRecords and maxBytes and gives nothing past the end', async (t) => {
  const log = await openLog({ dir: tempDir(t) });
  await log.append(Array.from({ length: 30 }, (_, i) => ({ value: `record-${String(i).padStart(3, '0')}` })));
  const five = await log.read(0, 10, { maxRecords: 5 });
  assert.deepEqual(five.records.map((r) => r.offset), [10, 11, 12, 13, 14]);
  assert.equal(five.nextOffset, 15);
  const small = await log.read(0, 0, { maxBytes: 1 });
  assert.equal(small.records.length, 1, 'at least one record even when it is larger than maxBytes');
  const byBytes = await log.read(0, 0, { maxBytes: 200 });
  assert.ok(byBytes.records.length > 1 && byBytes.records.length < 30, `${byBytes.records.length} records`);
  const big = 'x'.repeat(100_000);
  await log.append([{ value: big }, { value: 'after big' }]);
  const one = await log.read(0, 30, { maxBytes: 1 });
  assert.deepEqual(one.records.map((r) => [r.offset, text(r).length]), [[30, 100_000]], 'a record larger than any read chunk');
  assert.equal(text((await log.read(0, 31)).records[0] as LogRecord), 'after big');
  assert.deepEqual((await log.read(0, 29, { maxRecords: 3 })).records.map((r) => text(r).length), [10, 100_000, 9]);
  const end = await log.read(0, 32);
  assert.deepEqual(end, { records: [], nextOffset: 32 });
  assert.deepEqual((await log.read(0, 500)).records, []);
  await assert.rejects(log.read(0, -1), expectGpError('GP_INPUT_INVALID', /offset: expected an offset/));
  await assert.rejects(log.read(0, 0, { maxRecords: 0 }), expectGpError('GP_INPUT_INVALID', /maxRecords/));
  await log.close();
});

test('waitFor resolves when a record arrives, at once when it is there, and false on timeout', async (t) => {
  const log = await openLog({ dir: tempDir(t), partitions: 2 });
  const waiting = log.waitFor(1, 0, 60_000);
  const other = log.waitFor(0, 0, 30);
  await log.append([{ partition: 1, value: 'hello' }]);
  assert.equal(await waiting, true);
  assert.equal(await other, false, 'partition 0 got nothing');
  assert.equal(await log.waitFor(1, 0, 0), true);
  assert.equal(await log.waitFor(1, 1, 10), false);
  const pending = log.waitFor(1, 5, 60_000);
  await log.close();
  assert.equal(await pending, false, 'close wakes waiters with false');
});

test('commit is durable across a restart; committed is undefined for a consumer that never committed', async (t) => {
  const dir = tempDir(t);
  let log = await openLog({ dir, partitions: 2 });
  await log.append(Array.from({ length: 10 }, (_, i) => ({ partition: i % 2, value: `${i}` })));
  await Promise.all([log.commit('engine', 0, 3), log.commit('engine', 1, 5), log.commit('engine', 0, 4), log.commit('archiver:v2', 0, 1)]);
  assert.equal(log.committed('engine', 0), 4);
  assert.equal(log.committed('engine', 1), 5);
  assert.equal(log.committed('nobody', 0), undefined);
  await assert.rejects(log.commit('engine', 0, 6), expectGpError('GP_INPUT_INVALID', /nextOffset: expected at most the end of partition 0 \(5\), got 6/));
  await assert.rejects(log.commit('../escape', 0, 1), expectGpError('GP_INPUT_INVALID', /consumer name/));
  await log.close();

  log = await openLog({ dir, partitions: 2 });
  assert.equal(log.committed('engine', 0), 4);
  assert.equal(log.committed('engine', 1), 5);
  assert.equal(log.committed('archiver:v2', 0), 1);
  assert.equal(log.committed('archiver:v2', 1), undefined);
  await log.close();
});

test('bad options, a directory that cannot be used, a missing partition and a closed log give clear errors', async (t) => {
  const dir = tempDir(t);
  const bad: Array<[Partial<FileLogOptions> & Record<string, unknown>, RegExp]> = [
    [{ dir: '' }, /log dir: expected a directory path, got ""/],
    [{ dir, partitions: 0 }, /log partitions: expected an integer 1\.\.1024, got 0/],
    [{ dir, fsync: 'always' as never }, /log fsync: expected "batch", "interval" or "none", got "always"/],
    [{ dir, segmentBytes: 10 }, /log segmentBytes: expected an integer 1024\.\./],
    [{ dir, fsyncIntervalMs: -5 }, /log fsyncIntervalMs/],
    [{ dir, retention: { maxBytes: -1 } }, /log retention\.maxBytes/],
    [{ dir, retention: { keepUncommittedOf: ['ok', ''] } }, /log retention\.keepUncommittedOf\[1\]/],
    [{ dir, segmentSize: 1024 }, /log segmentSize: expected one of the options dir, partitions/],
  ];
  for (const [options, pattern] of bad) assert.throws(() => createFileLog(options as FileLogOptions), expectGpError('GP_CONFIG_INVALID', pattern));

  const file = join(dir, 'not-a-directory');
  writeFileSync(file, 'x');
  await assert.rejects(createFileLog({ dir: join(file, 'log') }).ready(), expectGpError('GP_LOG_FAILED', /cannot create log directory .*not-a-directory\/log/));

  const log = await openLog({ dir: join(dir, 'log'), partitions: 2 });
  await assert.rejects(createFileLog({ dir: join(dir, 'log') }).ready(), expectGpError('GP_LOG_FAILED', /already open in this process/));
  await assert.rejects(log.read(2, 0), expectGpError('GP_INPUT_INVALID', /partition 2 does not exist \(the log has 2 partitions: 0\.\.1\)/));
  assert.throws(() => log.endOffset(-1), expectGpError('GP_INPUT_INVALID', /partition -1 does not exist/));
  await assert.rejects(log.append([{ partition: 3, value: 'x' }]), expectGpError('GP_INPUT_INVALID', /records\[0\]\.partition: partition 3 does not exist/));
  await assert.rejects(log.append([{ value: 42 as never }]), expectGpError('GP_INPUT_INVALID', /records\[0\]\.value: expected a string or bytes, got number/));
  await log.close();
  await assert.rejects(log.append([{ value: 'late' }]), expectGpError('GP_INTERNAL', /the log is closed/));
  assert.throws(() => log.endOffset(0), expectGpError('GP_INTERNAL', /closed/));

  await assert.rejects(createFileLog({ dir: join(dir, 'log'), partitions: 1 }).ready(), expectGpError('GP_CONFIG_INVALID', /has 2 partitions, the options say 1/));
  const grown = await openLog({ dir: join(dir, 'log'), partitions: 3 });
  assert.equal(grown.endOffset(2), 0);
  await grown.close();
  assert.deepEqual(readdirSync(join(dir, 'log')).filter((name) => name.startsWith('p-')).sort(), ['p-0', 'p-1', 'p-2']);
});

test('fsync policy: batch syncs before append resolves, interval on its timer, none only at close', async (t) => {
  const batch = await openLog({ dir: tempDir(t) });
  await batch.append([{ value: 'a' }]);
  assert.equal(batch.stats().fsyncs, 1);
  await batch.close();

  const none = await openLog({ dir: tempDir(t), fsync: 'none' });
  await none.append([{ value: 'a' }]);
  assert.equal(none.stats().fsyncs, 0);
  assert.equal(none.endOffset(0), 1, 'acknowledged records are readable at once');
  await none.close();
  assert.equal(none.stats().fsyncs, 1, 'close syncs what is pending');

  const interval = await openLog({ dir: tempDir(t), fsync: 'interval', fsyncIntervalMs: 5 });
  await interval.append([{ value: 'a' }]);
  assert.equal((await interval.read(0, 0)).records.length, 1);
  for (let waited = 0; interval.stats().fsyncs === 0 && waited < 10_000; waited += 5) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal(interval.stats().fsyncs, 1, 'the timer synced the written records');
  await interval.close();
});
