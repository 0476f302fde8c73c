// The finished marks of `gridpulse process` checkpoints (how a bounded run of several members knows
// the whole group is done): `save(…, { finished: true })` marks a partition finished for every
// member reading the same checkpoints, in files and in PostgreSQL, and a PostgreSQL table made by an
// earlier version (no finished column) gets the column. Needs scripts/servers.sh start postgres.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCheckpointStore, type CheckpointStore } from '../../src/cli/checkpoint-store.js';
import { pgAdmin, PG_SERVER } from '../helpers/servers.js';
import { query } from '../helpers/kafka-processes.js';

const database = `gp_cpfinished_${process.pid}_${Date.now()}`;
const dir = mkdtempSync(join(tmpdir(), 'gp-cpfinished-'));
after(async () => {
  await pgAdmin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

async function marks(store: CheckpointStore): Promise<string[]> {
  return (await store.finishedPartitions(['power-usage-raw', 'machines-raw'])).map((found) => `${found.topic}/${found.partition}`).sort();
}

for (const kind of ['files', 'postgres'] as const) {
  test(`${kind}: a partition is finished once any kept checkpoint of it says so, and versions() reports the mark`, async () => {
    let url = 'duckdb:ignored';
    if (kind === 'postgres') {
      await pgAdmin(`CREATE DATABASE ${database}`);
      url = `${PG_SERVER}/${database}`;
    }
    const open = (): CheckpointStore => createCheckpointStore({ url, dataDir: join(dir, kind), group: 'engine' });
    const first = open();
    const second = open();
    try {
      await first.ready();
      await second.ready();
      assert.equal(first.kind, kind);
      assert.equal(first.shared, kind === 'postgres', 'only PostgreSQL checkpoints are shared by the members of a group');
      assert.deepEqual(await marks(first), [], 'nothing finished yet');
      await first.save('power-usage-raw', 0, 100, '{"s":1}');
      await first.save('power-usage-raw', 1, 300, '{"s":2}', { finished: true });
      await first.save('machines-raw', 2, 50, '{"s":3}', { finished: true });
      await first.save('other-topic', 0, 9, '{"s":4}', { finished: true });
      assert.deepEqual(await marks(first), ['machines-raw/2', 'power-usage-raw/1'], 'the finished partitions of the topics asked for');
      // A late checkpoint of an old owner after the finishing one does not undo it: the records up
      // to the end were processed and stored when the finished one was written.
      await first.save('power-usage-raw', 1, 200, '{"s":5}');
      assert.deepEqual(await marks(first), ['machines-raw/2', 'power-usage-raw/1']);
      const seen: Array<[number, boolean]> = [];
      for await (const found of first.versions('power-usage-raw', 1)) if (!('unreadable' in found)) seen.push([found.offset, found.finished]);
      assert.deepEqual(seen, [[200, false], [300, true]], 'versions() carries each checkpoint mark, newest first');
      if (kind === 'postgres') {
        // Shared checkpoints keep a finished mark however many stale writes follow it (the newest 3 are kept otherwise).
        for (let i = 0; i < 4; i++) await second.save('power-usage-raw', 1, 210 + i, '{"stale":true}');
        assert.deepEqual(await marks(first), ['machines-raw/2', 'power-usage-raw/1']);
      }
      // Another member of the group (another store object on the same place) sees the marks.
      assert.deepEqual(await marks(second), ['machines-raw/2', 'power-usage-raw/1']);
    } finally {
      await first.close();
      await second.close();
    }
  });
}

test('postgres: an engine_checkpoints table of an earlier version (no finished column) gets the column; its checkpoints count as not finished', async () => {
  const name = `${database}_old`;
  await pgAdmin(`CREATE DATABASE ${name}`);
  const url = `${PG_SERVER}/${name}`;
  try {
    await query(
      url,
      `CREATE TABLE engine_checkpoints ("group" TEXT NOT NULL, topic TEXT NOT NULL, "partition" INTEGER NOT NULL, version BIGINT NOT NULL, "offset" BIGINT NOT NULL, state TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL, PRIMARY KEY ("group", topic, "partition", version));
       INSERT INTO engine_checkpoints VALUES ('engine', 'power-usage-raw', 0, 1, 10, '{"finished":true}', now())`,
    );
    const store = createCheckpointStore({ url, dataDir: dir, group: 'engine' });
    try {
      await store.ready();
      assert.deepEqual(await marks(store), []);
      await store.save('power-usage-raw', 0, 20, '{}', { finished: true });
      assert.deepEqual(await marks(store), ['power-usage-raw/0']);
    } finally {
      await store.close();
    }
  } finally {
    await pgAdmin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
  }
});
