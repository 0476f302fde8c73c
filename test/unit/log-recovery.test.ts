import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFileLog, type FileLogOptions, type Log, type LogRecord, type LogRecovery } from '../../src/log/index.js';

const FIRST_SEGMENT = '00000000000000000000.log';

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'gp-log-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function reopen(options: FileLogOptions): Promise<{ log: Log; recovery: LogRecovery['partitions'][number] }> {
  const log = createFileLog(options);
  const recovery = await log.ready();
  return { log, recovery: recovery.partitions[0] as LogRecovery['partitions'][number] };
}

async function readAll(log: Log, partition = 0): Promise<LogRecord[]> {
  const records: LogRecord[] = [];
  let offset = 0;
  for (;;) {
    const batch = await log.read(partition, offset, { maxRecords: 9 });
    if (batch.records.length === 0) return records;
    records.push(...batch.records);
    offset = batch.nextOffset;
  }
}

const text = (record: LogRecord): string => Buffer.from(record.value).toString('utf8');
const valueOf = (i: number): string => `{"meterId":"m-${i % 3}","seq":${i},"usageKw":${(i * 1.7).toFixed(1)}}`;

/**
 * A log of 20 records written in one batch and a 21st appended alone; returns where the 21st
 * starts and how long it is on disk.
 */
async function twentyOneRecords(dir: string): Promise<{ path: string; lastStart: number; lastLength: number }> {
  const log = createFileLog({ dir });
  await log.ready();
  await log.append(Array.from({ length: 20 }, (_, i) => ({ key: `m-${i % 3}`, value: valueOf(i) })));
  const path = join(dir, 'p-0', FIRST_SEGMENT);
  const lastStart = statSync(path).size;
  await log.append([{ key: 'm-2', value: valueOf(20) }]);
  const lastLength = statSync(path).size - lastStart;
  await log.close();
  return { path, lastStart, lastLength };
}

async function assertFirstTwentyIntactAndAppendsContinue(log: Log): Promise<void> {
  const records = await readAll(log);
  assert.deepEqual(records.map((r) => [r.offset, r.key, text(r)]), Array.from({ length: 20 }, (_, i) => [i, `m-${i % 3}`, valueOf(i)]));
  assert.equal(log.endOffset(0), 20);
  const { positions } = await log.append([{ value: 'after recovery' }]);
  assert.equal(positions[0]?.offset, 20);
  assert.equal(text((await log.read(0, 20)).records[0] as LogRecord), 'after recovery');
}

test('a torn last record is cut off and reported; earlier records survive and appends continue at its offset', async (t) => {
  const dir = tempDir(t);
  const { path, lastStart, lastLength } = await twentyOneRecords(dir);
  truncateSync(path, lastStart + lastLength - 10); // the crash came 10 bytes before the end of the write

  const { log, recovery } = await reopen({ dir });
  assert.equal(recovery.truncatedBytes, lastLength - 10);
  assert.match(recovery.reason ?? '', new RegExp(`^incomplete record \\(${lastLength - 10} of ${lastLength} bytes\\) at byte ${lastStart} of ${FIRST_SEGMENT}`));
  assert.equal(recovery.endOffset, 20);
  assert.equal(statSync(path).size, lastStart, 'the file is cut back to the last whole record');
  await assertFirstTwentyIntactAndAppendsContinue(log);
  await log.close();

  const { log: again, recovery: clean } = await reopen({ dir });
  assert.deepEqual([clean.truncatedBytes, clean.reason, clean.endOffset], [0, undefined, 21], 'the next start finds nothing to repair');
  await again.close();
});

test('garbage or zeros after the last record are cut off and reported', async (t) => {
  const cases: Array<[string, Buffer, RegExp]> = [
    ['random bytes', Buffer.from('f00dfacecafebabe0123456789abcdef5a5a5a5a5a', 'hex'), /^(invalid record length \d+|incomplete record .*|checksum mismatch) at byte \d+ of /],
    ['zeros (file grown, data never written)', Buffer.alloc(4096), /^invalid record length 0 at byte \d+ of /],
    ['a header with no body', Buffer.from([40, 0, 0, 0, 1, 2, 3, 4]), /^incomplete record \(8 of 48 bytes\) at byte \d+ of /],
  ];
  for (const [name, garbage, reason] of cases) {
    const dir = tempDir(t);
    const { path, lastStart, lastLength } = await twentyOneRecords(dir);
    truncateSync(path, lastStart); // keep 20 records
    appendFileSync(path, garbage);
    const { log, recovery } = await reopen({ dir });
    assert.equal(recovery.truncatedBytes, garbage.length, name);
    assert.match(recovery.reason ?? '', reason, name);
    assert.ok(lastLength > 0);
    await assertFirstTwentyIntactAndAppendsContinue(log);
    await log.close();
  }
});

test('a flipped bit in the last record fails its checksum: that record is cut and reported', async (t) => {
  const dir = tempDir(t);
  const { path, lastStart, lastLength } = await twentyOneRecords(dir);
  const bytes = readFileSync(path);
  const at = lastStart + lastLength - 5;
  bytes[at] = (bytes[at] as number) ^ 0x04;
  writeFileSync(path, bytes);

  const { log, recovery } = await reopen({ dir });
  assert.equal(recovery.truncatedBytes, lastLength);
  assert.match(recovery.reason ?? '', new RegExp(`^checksum mismatch at byte ${lastStart} of ${FIRST_SEGMENT}`));
  await assertFirstTwentyIntactAndAppendsContinue(log);
  await log.close();
});

test('corruption inside an older segment is reported; reads skip the rest of that segment and go on with the next', async (t) => {
  const dir = tempDir(t);
  const options = { dir, segmentBytes: 1024 };
  let log = createFileLog(options);
  await log.ready();
  for (let i = 0; i < 60; i += 6) await log.append(Array.from({ length: 6 }, (_, k) => ({ value: valueOf(i + k) })));
  await log.close();
  const names = readdirSync(join(dir, 'p-0')).sort();
  assert.ok(names.length >= 4, `${names.length} segments`);
  const [, second, third] = names as [string, string, string];
  const secondBase = Number(second.slice(0, 20));
  const thirdBase = Number(third.slice(0, 20));
  const path = join(dir, 'p-0', second);
  const bytes = readFileSync(path);
  const at = Math.floor(bytes.length / 2);
  bytes[at] = (bytes[at] as number) ^ 0xff;
  writeFileSync(path, bytes);

  const opened = await reopen(options);
  log = opened.log;
  const { recovery } = opened;
  assert.equal(recovery.truncatedBytes, 0, 'an older segment is not cut');
  assert.equal(statSync(path).size, bytes.length);
  assert.match(recovery.reason ?? '', new RegExp(`^checksum mismatch at byte \\d+ of ${second} \\(not the last segment`));
  assert.equal(recovery.unreadable?.length, 1);
  const lost = recovery.unreadable?.[0] as { fromOffset: number; toOffset: number };
  assert.ok(lost.fromOffset > secondBase && lost.fromOffset < thirdBase, `unreadable from ${lost.fromOffset}`);
  assert.equal(lost.toOffset, thirdBase);
  assert.equal(recovery.endOffset, 60);

  const records = await readAll(log);
  const expected = [...Array.from({ length: lost.fromOffset }, (_, i) => i), ...Array.from({ length: 60 - thirdBase }, (_, i) => thirdBase + i)];
  assert.deepEqual(records.map((r) => r.offset), expected);
  assert.deepEqual(records.map(text), expected.map(valueOf));
  assert.deepEqual((await log.read(0, lost.fromOffset, { maxRecords: 2 })).records.map((r) => r.offset), [thirdBase, thirdBase + 1]);
  assert.equal((await log.append([{ value: 'next' }])).positions[0]?.offset, 60);
  await log.close();
});

test('offsets a consumer committed past are never handed out again after a crash took their records', async (t) => {
  const dir = tempDir(t);
  let log = createFileLog({ dir, fsync: 'interval' });
  await log.ready();
  const path = join(dir, 'p-0', FIRST_SEGMENT);
  const sizes: number[] = [];
  for (let i = 0; i < 10; i++) {
    await log.append([{ value: valueOf(i) }]);
    sizes.push(statSync(path).size);
  }
  await log.commit('engine', 0, 10);
  await log.close();
  truncateSync(path, sizes[6]); // a machine crash lost records 7..9, but engine had processed them

  const opened = await reopen({ dir });
  log = opened.log;
  assert.equal(opened.recovery.endOffset, 10);
  assert.deepEqual(opened.recovery.unreadable?.map((u) => [u.fromOffset, u.toOffset]), [[7, 10]]);
  assert.match(opened.recovery.reason ?? '', /consumer engine had committed offset 10 but the partition ends at 7/);
  assert.equal((await log.append([{ value: 'new' }])).positions[0]?.offset, 10);
  assert.deepEqual((await readAll(log)).map((r) => r.offset), [0, 1, 2, 3, 4, 5, 6, 10]);
  await log.close();

  const { log: again, recovery } = await reopen({ dir });
  assert.deepEqual([recovery.endOffset, recovery.reason], [11, undefined]);
  await again.close();
});
