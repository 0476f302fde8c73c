/**
 * The conformance suite of the Log interface (src/log/log.ts): the embedded file log and the Kafka
 * log must give these answers. Each test opens a log over fresh storage of its own (a directory, a
 * topic) with 4 partitions and checks what a caller of the interface sees: offsets, records, waits,
 * committed offsets, the lifecycle and the errors for bad input.
 *
 * @example
 * logConformance({ name: 'file', open: async (name) => { const dir = ...; return { log: createFileLog({ dir, partitions: 4 }), reopen: () => createFileLog({ dir, partitions: 4 }) }; } });
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GpError } from '../../src/model/index.js';
import { partitionOfKey, type AppendRecord, type Log, type LogRecord } from '../../src/log/index.js';

export interface LogBacking {
  /** A log over fresh, empty storage with `PARTITIONS` partitions, not yet readied. */
  log: Log;
  /** Another log over the same storage, for after `log` is closed; `consumers` are those whose commits it must know. */
  reopen: (options: { consumers: readonly string[] }) => Log;
}

export interface LogTarget {
  name: string;
  /** `name` is unique per test: the storage of one test never meets another's. */
  open: (name: string) => Promise<LogBacking>;
}

export const PARTITIONS = 4;

function isInvalid(field: string): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof GpError, `expected a GpError, got ${String(error)}`);
    assert.equal(error.code, 'GP_INPUT_INVALID', error.message);
    assert.ok(error.message.includes(field), `the message names ${field}: ${error.message}`);
    return true;
  };
}

function text(record: LogRecord | undefined): string {
  assert.ok(record !== undefined, 'a record is there');
  return Buffer.from(record.value).toString('utf8');
}

/** Every record of a partition from `offset` on, read page by page. */
export async function readAll(log: Log, partition: number, offset = 0, maxBytes?: number): Promise<{ records: LogRecord[]; pages: number }> {
  const records: LogRecord[] = [];
  let next = offset;
  let pages = 0;
  for (;;) {
    const batch = await log.read(partition, next, maxBytes === undefined ? {} : { maxBytes });
    if (batch.records.length === 0) return { records, pages };
    pages++;
    records.push(...batch.records);
    assert.equal(batch.nextOffset, (batch.records[batch.records.length - 1] as LogRecord).offset + 1, 'nextOffset follows the last record');
    next = batch.nextOffset;
  }
}

export function logConformance(target: LogTarget): void {
  describe(`Log conformance: ${target.name}`, () => {
    async function opened(name: string): Promise<LogBacking & { close: () => Promise<void> }> {
      const backing = await target.open(name);
      await backing.log.ready();
      return { ...backing, close: () => backing.log.close() };
    }

    test('append answers each record’s partition and offset in input order; offsets count up per partition from 0', async () => {
      const { log, close } = await opened('append-offsets');
      try {
        assert.equal(log.partitions, PARTITIONS);
        for (let partition = 0; partition < PARTITIONS; partition++) {
          assert.equal(log.startOffset(partition), 0);
          assert.equal(log.endOffset(partition), 0);
        }
        const keys = ['m-1', 'm-2', 'm-3', 'm-1', 'm-4', 'm-2', 'm-1'];
        const before = Date.now();
        const { positions, appendedAt } = await log.append(keys.map((key, index) => ({ key, value: `{"n":${index}}` })));
        assert.ok(appendedAt >= before - 1000 && appendedAt <= Date.now() + 1000, `appendedAt ${appendedAt} is the time of the append`);
        assert.equal(positions.length, keys.length);
        const seen = new Map<number, number>();
        positions.forEach((position, index) => {
          assert.equal(position.partition, partitionOfKey(keys[index] as string, PARTITIONS), `record ${index} goes to its key's partition`);
          const expected = seen.get(position.partition) ?? 0;
          assert.equal(position.offset, expected, `record ${index} gets the next offset of partition ${position.partition}`);
          seen.set(position.partition, expected + 1);
        });
        for (let partition = 0; partition < PARTITIONS; partition++) assert.equal(log.endOffset(partition), seen.get(partition) ?? 0);
        const second = await log.append([{ key: 'm-1', value: 'again' }]);
        const partitionOfM1 = partitionOfKey('m-1', PARTITIONS);
        assert.deepEqual(second.positions, [{ partition: partitionOfM1, offset: seen.get(partitionOfM1) }]);
        assert.deepEqual((await log.append([])).positions, [], 'an empty batch appends nothing');
        assert.equal(log.endOffset(partitionOfM1), (seen.get(partitionOfM1) ?? 0) + 1);
      } finally {
        await close();
      }
    });

    test('read gives the records of a partition from an offset, in order, with key, value and append time', async () => {
      const { log, close } = await opened('read-from-offset');
      try {
        const bytes = Uint8Array.from({ length: 256 }, (_, index) => index);
        const records: AppendRecord[] = Array.from({ length: 9 }, (_, index) => ({ key: `k-${index}`, partition: 2, value: `value ${index} ✓` }));
        records.push({ partition: 2, value: bytes });
        const { appendedAt } = await log.append(records);
        const from4 = await log.read(2, 4);
        assert.deepEqual(
          from4.records.map((record) => record.offset),
          [4, 5, 6, 7, 8, 9],
        );
        assert.equal(from4.nextOffset, 10);
        assert.equal(text(from4.records[0]), 'value 4 ✓');
        assert.equal(from4.records[0]?.key, 'k-4');
        assert.equal(from4.records[0]?.partition, 2);
        assert.equal(from4.records[0]?.timestamp, appendedAt);
        assert.equal(from4.records[5]?.key, undefined, 'a record appended without a key has none');
        assert.deepEqual(Buffer.from(from4.records[5]?.value ?? []), Buffer.from(bytes), 'bytes come back as they went in');
        const three = await log.read(2, 1, { maxRecords: 3 });
        assert.deepEqual(
          three.records.map((record) => text(record)),
          ['value 1 ✓', 'value 2 ✓', 'value 3 ✓'],
        );
        assert.equal(three.nextOffset, 4);
        assert.deepEqual(await log.read(2, 10), { records: [], nextOffset: 10 }, 'at the end: nothing, and the same offset to read from next');
        assert.deepEqual(await log.read(2, 50), { records: [], nextOffset: 50 }, 'past the end: nothing');
        assert.deepEqual(await log.read(1, 0), { records: [], nextOffset: 0 }, 'another partition is empty');
      } finally {
        await close();
      }
    });

    test('a record without key or partition goes to partition 0; an explicit partition wins over the key', async () => {
      const { log, close } = await opened('partition-choice');
      try {
        const key = 'meter-77';
        const other = (partitionOfKey(key, PARTITIONS) + 1) % PARTITIONS;
        const { positions } = await log.append([{ value: 'no key' }, { key, partition: other, value: 'explicit' }, { key, value: 'keyed' }]);
        assert.deepEqual(
          positions.map((position) => position.partition),
          [0, other, partitionOfKey(key, PARTITIONS)],
        );
        const [explicit] = (await log.read(other, 0)).records;
        assert.equal(explicit?.key, key);
        assert.equal(text(explicit), 'explicit');
      } finally {
        await close();
      }
    });

    test('keyed records land on partitionOfKey(key, partitions): every device on one partition only', async () => {
      const { log, close } = await opened('keyed-partitions');
      try {
        const keys = Array.from({ length: 200 }, (_, index) => `m-${index}`);
        await log.append(keys.map((key) => ({ key, value: key })));
        const partitionsOfKey = new Map<string, Set<number>>();
        let total = 0;
        for (let partition = 0; partition < PARTITIONS; partition++) {
          const { records } = await readAll(log, partition);
          total += records.length;
          for (const record of records) {
            const key = record.key as string;
            assert.equal(text(record), key);
            partitionsOfKey.set(key, (partitionsOfKey.get(key) ?? new Set()).add(partition));
          }
        }
        assert.equal(total, keys.length);
        for (const key of keys) assert.deepEqual([...(partitionsOfKey.get(key) ?? [])], [partitionOfKey(key, PARTITIONS)], key);
        const used = new Set(keys.map((key) => partitionOfKey(key, PARTITIONS)));
        assert.equal(used.size, PARTITIONS, '200 devices spread over every partition');
      } finally {
        await close();
      }
    });

    test('concurrent appends get distinct offsets, each batch in its own order, and read back as written', async () => {
      const { log, close } = await opened('concurrent-batches');
      try {
        const batches = Array.from({ length: 10 }, (_, batch) => Array.from({ length: 30 }, (_, index) => ({ key: `m-${index % 7}`, value: `b${batch}-r${index}` })));
        const results = await Promise.all(batches.map((records) => log.append(records)));
        const valueAt = new Map<string, string>();
        results.forEach((result, batch) => {
          const lastOfPartition = new Map<number, number>();
          result.positions.forEach((position, index) => {
            const where = `${position.partition}:${position.offset}`;
            assert.equal(valueAt.has(where), false, `offset ${where} is given once`);
            valueAt.set(where, `b${batch}-r${index}`);
            assert.ok(position.offset > (lastOfPartition.get(position.partition) ?? -1), 'a batch keeps its order within a partition');
            lastOfPartition.set(position.partition, position.offset);
          });
        });
        let total = 0;
        for (let partition = 0; partition < PARTITIONS; partition++) {
          const { records } = await readAll(log, partition);
          assert.equal(log.endOffset(partition), records.length);
          records.forEach((record, index) => {
            assert.equal(record.offset, index, 'no gaps');
            assert.equal(text(record), valueAt.get(`${partition}:${record.offset}`));
          });
          total += records.length;
        }
        assert.equal(total, 300);
      } finally {
        await close();
      }
    });

    test('a batch larger than a megabyte is kept whole and read back page by page within maxBytes', async () => {
      const { log, close } = await opened('large-batch');
      try {
        const records = Array.from({ length: 3000 }, (_, index) => ({ partition: 1, value: `${String(index).padStart(6, '0')}${'x'.repeat(500)}` }));
        const { positions } = await log.append(records);
        assert.deepEqual(
          positions.map((position) => position.offset),
          records.map((_, index) => index),
        );
        const { records: read, pages } = await readAll(log, 1, 0, 64 * 1024);
        assert.equal(read.length, 3000);
        assert.ok(pages >= 20, `64 KiB pages over 1.5 MB: ${pages} pages`);
        read.forEach((record, index) => assert.equal(text(record).slice(0, 6), String(index).padStart(6, '0')));
        const page = await log.read(1, 100, { maxBytes: 64 * 1024 });
        const pageBytes = page.records.reduce((sum, record) => sum + record.value.length, 0);
        assert.ok(pageBytes <= 64 * 1024 + 1024, `a page stays about maxBytes: ${pageBytes}`);
      } finally {
        await close();
      }
    });

    test('waitFor: true at once for a record that is there, woken by an append, false after its timeout', async () => {
      const { log, close } = await opened('wait-for');
      try {
        await log.append([{ partition: 3, value: 'first' }]);
        assert.equal(await log.waitFor(3, 0, 0), true);
        const started = Date.now();
        const waiting = log.waitFor(3, 1, 10_000);
        setTimeout(() => void log.append([{ partition: 3, value: 'second' }]), 200);
        assert.equal(await waiting, true);
        assert.ok(Date.now() - started < 5000, `woken by the append, not by the 10 s timeout (${Date.now() - started} ms)`);
        const quiet = Date.now();
        assert.equal(await log.waitFor(0, 0, 300), false);
        assert.ok(Date.now() - quiet >= 250, 'waited about its timeout');
      } finally {
        await close();
      }
    });

    test('consumer offsets: commit, read back per consumer and partition, kept after the log is reopened', async () => {
      const backing = await opened('consumer-offsets');
      const { log } = backing;
      let reopened: Log | undefined;
      try {
        await log.append(Array.from({ length: 5 }, (_, index) => ({ partition: 0, value: `r${index}` })));
        await log.append([{ partition: 1, value: 'one' }]);
        assert.equal(log.committed('engine', 0), undefined, 'never committed');
        await log.commit('engine', 0, 3);
        await log.commit('engine', 1, 1);
        await log.commit('audit.reader', 0, 5);
        assert.equal(log.committed('engine', 0), 3);
        assert.equal(log.committed('engine', 1), 1);
        assert.equal(log.committed('audit.reader', 0), 5);
        assert.equal(log.committed('audit.reader', 1), undefined);
        await log.commit('engine', 0, 4);
        assert.equal(log.committed('engine', 0), 4, 'the last commit counts');
        await backing.close();
        reopened = backing.reopen({ consumers: ['engine', 'audit.reader'] });
        const recovery = await reopened.ready();
        assert.deepEqual(
          recovery.partitions.map((partition) => [partition.partition, partition.startOffset, partition.endOffset, partition.truncatedBytes]),
          [
            [0, 0, 5, 0],
            [1, 0, 1, 0],
            [2, 0, 0, 0],
            [3, 0, 0, 0],
          ],
        );
        assert.equal(reopened.committed('engine', 0), 4);
        assert.equal(reopened.committed('engine', 1), 1);
        assert.equal(reopened.committed('audit.reader', 0), 5);
        const next = reopened.committed('engine', 0) as number;
        assert.deepEqual(
          (await reopened.read(0, next)).records.map((record) => text(record)),
          ['r4'],
          'a consumer resumes from its committed offset',
        );
      } finally {
        await backing.close();
        await reopened?.close();
      }
    });

    test('commit refuses an offset past the end and a bad consumer name', async () => {
      const { log, close } = await opened('commit-refusals');
      try {
        await log.append([{ partition: 2, value: 'a' }, { partition: 2, value: 'b' }]);
        await log.commit('engine', 2, 2);
        await assert.rejects(log.commit('engine', 2, 3), isInvalid('nextOffset'));
        await assert.rejects(log.commit('bad name!', 2, 1), isInvalid('consumer'));
        await assert.rejects(log.commit('engine', 7, 0), isInvalid('partition'));
        await assert.rejects(log.commit('engine', 2, -1), isInvalid('nextOffset'));
        assert.equal(log.committed('engine', 2), 2, 'refused commits change nothing');
      } finally {
        await close();
      }
    });

    test('close waits for appends in flight, ends pending waits, is idempotent; the log refuses use afterwards', async () => {
      const backing = await opened('close');
      const { log } = backing;
      const appending = log.append([{ partition: 1, value: 'in flight' }]);
      const waiting = log.waitFor(2, 0, 30_000);
      const started = Date.now();
      await Promise.all([log.close(), log.close()]);
      await log.close();
      assert.deepEqual((await appending).positions, [{ partition: 1, offset: 0 }], 'the append in flight completed');
      assert.equal(await waiting, false, 'a pending wait ends with false');
      assert.ok(Date.now() - started < 10_000, 'close does not wait for the 30 s wait');
      await assert.rejects(log.append([{ value: 'late' }]), (error: unknown) => error instanceof GpError && /closed/.test(error.message));
      await assert.rejects(log.read(1, 0), (error: unknown) => error instanceof GpError && /closed/.test(error.message));
      const reopened = backing.reopen({ consumers: [] });
      try {
        await reopened.ready();
        assert.deepEqual(
          (await reopened.read(1, 0)).records.map((record) => text(record)),
          ['in flight'],
          'what was acknowledged before close is there after reopening',
        );
      } finally {
        await reopened.close();
      }
    });

    test('bad input is refused with GP_INPUT_INVALID naming the field', async () => {
      const { log, close } = await opened('bad-input');
      try {
        await assert.rejects(log.append('x' as unknown as AppendRecord[]), isInvalid('records'));
        await assert.rejects(log.append([null as unknown as AppendRecord]), isInvalid('records[0]'));
        await assert.rejects(log.append([{ value: 'ok' }, { value: 5 as unknown as string }]), isInvalid('records[1].value'));
        await assert.rejects(log.append([{ key: 7 as unknown as string, value: 'v' }]), isInvalid('records[0].key'));
        await assert.rejects(log.append([{ partition: PARTITIONS, value: 'v' }]), isInvalid('records[0].partition'));
        await assert.rejects(log.append([{ partition: -1, value: 'v' }]), isInvalid('records[0].partition'));
        await assert.rejects(log.append([{ partition: 1.5, value: 'v' }]), isInvalid('records[0].partition'));
        for (let partition = 0; partition < PARTITIONS; partition++) assert.equal(log.endOffset(partition), 0, 'a refused batch appends nothing, not even its good records');
        await assert.rejects(log.read(-1, 0), isInvalid('partition'));
        await assert.rejects(log.read(PARTITIONS, 0), isInvalid('partition'));
        await assert.rejects(log.read(0, -1), isInvalid('offset'));
        await assert.rejects(log.read(0, 1.5), isInvalid('offset'));
        await assert.rejects(log.read(0, 0, { maxRecords: 0 }), isInvalid('maxRecords'));
        await assert.rejects(log.read(0, 0, { maxBytes: -5 }), isInvalid('maxBytes'));
        await assert.rejects(log.waitFor(0, 0, -1), isInvalid('timeoutMs'));
        await assert.rejects(log.waitFor(9, 0, 10), isInvalid('partition'));
        assert.throws(() => log.endOffset(PARTITIONS), isInvalid('partition'));
        assert.throws(() => log.committed('engine', -1), isInvalid('partition'));
      } finally {
        await close();
      }
    });
  });
}
