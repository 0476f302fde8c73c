// The DuckDB store's append path (new readings and ops events go straight into their tables) and
// its schema migration: what a user notices is that nothing is stored twice across restarts and
// replays, and that a file written by the previous version opens with its data intact.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { GpError, opsEvent, type OpsEvent } from '../../src/model/index.js';
import { createDuckDbStore, type ReadingRow } from '../../src/stores/index.js';

const T0 = Date.UTC(2025, 10, 7, 12, 0, 0);
const scratch = mkdtempSync(join(tmpdir(), 'gridpulse-duckdb-append-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
let files = 0;
function freshPath(): string {
  files += 1;
  const dir = join(scratch, `f-${files}`);
  mkdirSync(dir, { recursive: true });
  return join(dir, 'gridpulse.duckdb');
}

function readings(from: number, count: number): ReadingRow[] {
  return Array.from({ length: count }, (_, i) => ({
    stream: 'power',
    key: `m-${(from + i) % 7}`,
    site: 's-1',
    time: T0 + (from + i) * 1000,
    values: { usageKw: from + i },
    offset: from + i,
  }));
}

function outOfOrder(offset: number): OpsEvent {
  return opsEvent('out_of_order', 'power', 'arrived after a newer one', { key: `m-${offset % 7}`, time: T0 + offset * 1000, watermark: T0, offset, lagMs: 5 });
}

describe('DuckDB store: appending new rows', () => {
  test('a live run, a restart and a replay of the tail store every reading and ops event once', async () => {
    const path = freshPath();
    const first = createDuckDbStore({ path });
    await first.writeReadings(readings(0, 3000));
    await first.writeReadings(readings(3000, 3000));
    await first.writeOps(Array.from({ length: 500 }, (_, i) => outOfOrder(i)));
    await first.close();

    // After a crash the engine replays from its checkpoint: offsets the store already holds come
    // again, followed by new ones, in one batch.
    const second = createDuckDbStore({ path });
    try {
      await second.writeReadings(readings(5000, 2000));
      await second.writeOps([...Array.from({ length: 300 }, (_, i) => outOfOrder(400 + i)), opsEvent('gap', 'power', 'silent', { key: 'm-1', time: T0, missed: 2 })]);
      // The same batch twice in a row, and a batch holding one reading twice.
      await second.writeReadings(readings(7000, 10));
      await second.writeReadings(readings(7000, 10));
      await second.writeReadings([...readings(7010, 1), ...readings(7010, 1)]);
      await second.writeOps([opsEvent('gap', 'power', 'silent', { key: 'm-1', time: T0, missed: 2 })]);
      const counts = await second.counts();
      assert.equal(counts.readings, 7011);
      assert.equal(counts.ops, 701);
      const series = await second.querySeries({ key: 'm-3', metric: 'usageKw', from: T0, to: T0 + 7011 * 1000, resolution: 'raw' });
      assert.equal(series.points.length, 1002);
      assert.deepEqual(
        series.points.slice(0, 3).map((p) => p.avg),
        [3, 10, 17],
      );
    } finally {
      await second.close();
    }
  });

  test('readings of two streams interleaved in one batch are each appended once', async () => {
    const store = createDuckDbStore({ path: ':memory:' });
    try {
      const batch = readings(0, 10).map((row, i) => (i % 2 === 0 ? row : { ...row, stream: 'machines' }));
      await store.writeReadings(batch);
      await store.writeReadings(batch);
      assert.equal((await store.counts()).readings, 10);
    } finally {
      await store.close();
    }
  });

  test('a batch with one bad row writes nothing, and the next batch still goes in', async () => {
    const store = createDuckDbStore({ path: ':memory:' });
    try {
      await assert.rejects(store.writeReadings([...readings(0, 5), { ...readings(5, 1)[0]!, time: Number.NaN }]), GpError);
      await store.writeReadings(readings(0, 6));
      assert.equal((await store.counts()).readings, 6);
    } finally {
      await store.close();
    }
  });
});

/** A file as gridpulse wrote it with schema version 1 (ops had an id primary key). */
async function writeVersion1File(path: string): Promise<void> {
  const instance = await DuckDBInstance.create(path);
  const connection = await instance.connect();
  await connection.run(`CREATE TABLE gridpulse_schema (version INTEGER NOT NULL)`);
  await connection.run(`INSERT INTO gridpulse_schema VALUES (1)`);
  await connection.run(`CREATE TABLE ops (
    id VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, stream VARCHAR NOT NULL, key VARCHAR, site VARCHAR, time_ms BIGINT,
    watermark_ms BIGINT, source_offset BIGINT, reason VARCHAR NOT NULL, field VARCHAR, expected VARCHAR, got VARCHAR,
    lag_ms BIGINT, missed INTEGER, at_ms BIGINT)`);
  await connection.run(`INSERT INTO ops VALUES
    ('power|late|m-1|${T0}|7|', 'late', 'power', 'm-1', 's-1', ${T0}, ${T0}, 7, 'late', NULL, NULL, NULL, 5, NULL, ${T0}),
    ('power|gap|m-2|${T0}||3', 'gap', 'power', 'm-2', NULL, ${T0}, ${T0}, NULL, 'silent', NULL, NULL, NULL, NULL, 3, ${T0})`);
  connection.closeSync();
  instance.closeSync();
}

describe('DuckDB store: schema migration', () => {
  test('a version 1 file is migrated in place: its ops events stay, and writing them again adds nothing', async () => {
    const path = freshPath();
    await writeVersion1File(path);
    const store = createDuckDbStore({ path });
    try {
      const quality = await store.dataQuality({ by: 'key' });
      assert.deepEqual(
        quality.map((row) => [row.group, row.counts.late, row.counts.gap]),
        [
          ['m-1', 1, 0],
          ['m-2', 0, 1],
        ],
      );
      await store.writeOps([
        opsEvent('late', 'power', 'late', { key: 'm-1', time: T0, watermark: T0, offset: 7, lagMs: 5 }),
        opsEvent('gap', 'power', 'silent', { key: 'm-2', time: T0, watermark: T0, missed: 3 }),
      ]);
      assert.equal((await store.counts()).ops, 2);
    } finally {
      await store.close();
    }
    const instance = await DuckDBInstance.create(path);
    const connection = await instance.connect();
    const version = (await connection.runAndReadAll('SELECT max(version) FROM gridpulse_schema')).getRowsJS()[0]?.[0];
    const columns = (await connection.runAndReadAll(`SELECT column_name FROM duckdb_columns() WHERE table_name = 'ops'`)).getRows().map((row) => (typeof row[0] === 'string' ? row[0] : ''));
    connection.closeSync();
    instance.closeSync();
    assert.equal(version, 2);
    assert.ok(!columns.includes('id'), `ops still has an id column: ${columns.join(', ')}`);
  });

  test('a file of a newer schema version is refused with a message saying what to do', async () => {
    const path = freshPath();
    const instance = await DuckDBInstance.create(path);
    const connection = await instance.connect();
    await connection.run(`CREATE TABLE gridpulse_schema (version INTEGER NOT NULL)`);
    await connection.run(`INSERT INTO gridpulse_schema VALUES (99)`);
    connection.closeSync();
    instance.closeSync();
    const store = createDuckDbStore({ path });
    await assert.rejects(store.ready(), (error: unknown) => error instanceof GpError && /schema version 99/.test(error.message) && /upgrade gridpulse/.test(error.message));
    await store.close();
  });
});
