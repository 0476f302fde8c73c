import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFileLog, type Log, type LogRecord } from '../../src/log/index.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const PARTITIONS = 2;

/**
 * The child: three concurrent writers append batches of 1–37 records (so appends are
 * group-committed and segments of 16 KiB roll often) and print one line per acknowledged
 * record — "partition offset key value" — only after `append` resolved.
 */
const CHILD = `
import { createFileLog } from ${JSON.stringify(join(ROOT, 'src/log/index.ts'))};
const log = createFileLog({ dir: process.env.GP_LOG_DIR, partitions: ${PARTITIONS}, segmentBytes: 16384 });
await log.ready();
let sequence = 0;
async function writer(w) {
  for (;;) {
    const records = [];
    const size = 1 + (sequence % 37);
    for (let k = 0; k < size; k++) {
      const n = sequence++;
      records.push({ key: 'm-' + (n % 5), value: JSON.stringify({ id: process.env.GP_RUN + '-' + w + '-' + n, pad: 'x'.repeat(n % 200) }) });
    }
    const { positions } = await log.append(records);
    process.stdout.write(positions.map((p, i) => p.partition + ' ' + p.offset + ' ' + records[i].key + ' ' + records[i].value + '\\n').join(''));
  }
}
await Promise.all([writer(0), writer(1), writer(2)]);
`;

interface Acknowledged {
  partition: number;
  offset: number;
  key: string;
  value: string;
}

/** Runs the child until it has acknowledged at least `count` records, then kills it with SIGKILL. */
function runAndKill(dir: string, run: number, count: number): Promise<Acknowledged[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], {
      cwd: ROOT,
      env: { ...process.env, GP_LOG_DIR: dir, GP_RUN: String(run), NODE_NO_WARNINGS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let lines = 0;
    let killed = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the writer acknowledged only ${lines} records in 60 s; stderr:\n${stderr}`));
    }, 60_000);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      lines = stdout.split('\n').length - 1;
      if (!killed && lines >= count) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL') {
        reject(new Error(`the writer exited by itself (code ${code}); stderr:\n${stderr}`));
        return;
      }
      // Only whole lines: the last one may have been cut by the kill.
      const complete = stdout.slice(0, stdout.lastIndexOf('\n') + 1);
      resolve(
        complete
          .split('\n')
          .filter((line) => line !== '')
          .map((line) => {
            const [partition, offset, key, value] = line.split(' ') as [string, string, string, string];
            return { partition: Number(partition), offset: Number(offset), key, value };
          }),
      );
    });
  });
}

async function readPartition(log: Log, partition: number): Promise<LogRecord[]> {
  const records: LogRecord[] = [];
  let offset = 0;
  for (;;) {
    const batch = await log.read(partition, offset, { maxRecords: 5000 });
    if (batch.records.length === 0) return records;
    records.push(...batch.records);
    offset = batch.nextOffset;
  }
}

test('after kill -9 mid-append, every acknowledged record is in the log, intact, and appends go on', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gp-log-crash-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const acknowledged: Acknowledged[] = [];
  const targets = [400, 1500, 250, 3000];
  for (const [run, target] of targets.entries()) {
    acknowledged.push(...(await runAndKill(dir, run, target)));

    const log = createFileLog({ dir, partitions: PARTITIONS });
    const recovery = await log.ready();
    const byPartition = await Promise.all(Array.from({ length: PARTITIONS }, (_, p) => readPartition(log, p)));
    for (const [partition, records] of byPartition.entries()) {
      assert.deepEqual(
        records.map((r) => r.offset),
        records.map((_, i) => i),
        `partition ${partition}: offsets 0..${records.length - 1} without gaps after run ${run}`,
      );
      assert.equal(recovery.partitions[partition]?.endOffset, records.length);
      assert.equal(recovery.partitions[partition]?.unreadable, undefined, recovery.partitions[partition]?.reason);
    }
    for (const ack of acknowledged) {
      const record = byPartition[ack.partition]?.[ack.offset];
      assert.ok(record !== undefined, `acknowledged record ${ack.partition}/${ack.offset} is missing after run ${run} (${JSON.stringify(recovery)})`);
      assert.equal(record.key, ack.key);
      assert.equal(Buffer.from(record.value).toString('utf8'), ack.value, `record ${ack.partition}/${ack.offset}`);
    }
    const stored = byPartition.reduce((sum, records) => sum + records.length, 0);
    assert.ok(stored >= acknowledged.length, `${stored} records stored, ${acknowledged.length} acknowledged`);
    await log.close();
  }
});
