// The transactional outbox relayed by change data capture, against the test cluster with
// wal_level=logical on 127.0.0.1:5433 (scripts/servers.sh start postgres-logical): each test writes
// alert transitions through the PostgreSQL store and reads what a relay on a replication slot
// delivered. Each run creates its own database (and slots) and drops them afterwards. Without that
// server every test fails with the message saying how to start it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GpError } from '../../src/model/index.js';
import { createOutboxRelay, createPostgresStore, type OutboxNotification, type OutboxRelay, type Store } from '../../src/stores/index.js';
import {
  LOGICAL,
  assertOrderPerAlert,
  createConsumer,
  createTestDatabase,
  dedup,
  duplicates,
  transitionEvent,
  waitFor,
  writeTransitions,
  type TestDatabase,
} from '../helpers/outbox.js';

let database: Promise<TestDatabase> | undefined;
function testDatabase(): Promise<TestDatabase> {
  database ??= createTestDatabase(LOGICAL, { logical: true });
  return database;
}
after(async () => {
  const db = await database?.catch(() => undefined);
  await db?.drop();
});

let schemas = 0;
/** A store in a schema of its own (so each test has its own outbox, publication and slot). */
async function freshStore(): Promise<{ db: TestDatabase; schema: string; store: Store }> {
  const db = await testDatabase();
  schemas += 1;
  const schema = `outbox_${schemas}`;
  const store = createPostgresStore({ url: db.url, schema });
  await store.ready();
  return { db, schema, store };
}

async function slotOf(db: TestDatabase, slot: string): Promise<{ confirmed: string; retainedBytes: number; active: boolean } | undefined> {
  const rows = await db.query<{ confirmed: string; retained: string; active: boolean }>(
    `SELECT confirmed_flush_lsn::text AS confirmed, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::text AS retained, active
     FROM pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  const row = rows[0];
  return row === undefined ? undefined : { confirmed: row.confirmed, retainedBytes: Number(row.retained), active: row.active };
}

/** LSN `X/Y` as a number, to compare positions. */
function lsn(text: string): bigint {
  const [high, low] = text.split('/');
  return (BigInt(`0x${high}`) << 32n) + BigInt(`0x${low}`);
}

describe('outbox relay, logical replication (127.0.0.1:5433)', () => {
  before(async () => {
    await testDatabase();
  });

  test('each committed transition is delivered exactly once, in commit order, and its LSN confirmed', async () => {
    const { db, schema, store } = await freshStore();
    const consumer = createConsumer();
    const relay = createOutboxRelay({ url: db.url, schema, mode: 'auto', heartbeatMs: 200, deliver: consumer.deliver });
    try {
      const started = await relay.start();
      assert.equal(started.mode, 'logical');
      assert.match(started.reason, /wal_level is logical/);
      const expected = await writeTransitions(store, ['m-1/spike', 'm-2/spike', 'm-3/drop', 'm-4/silence'], 10);
      assert.equal(expected.length, 40);
      // The replays wrote no second outbox row: one per transition.
      const rows = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.alert_outbox`);
      assert.deepEqual(rows, [{ n: 40 }]);

      await waitFor(() => consumer.received.length >= 40, 15_000, '40 deliveries');
      await new Promise((resolve) => setTimeout(resolve, 300)); // nothing more arrives
      assert.deepEqual(consumer.ids(), expected, 'every transition once, in the order it was committed');
      assert.ok(consumer.received.every((n) => n.attempt === 1 && n.lsn !== undefined));
      const first = consumer.received[0] as OutboxNotification;
      assert.equal(first.id, 'm-1/spike#1');
      assert.equal(first.event.transition.id, first.id);
      assert.equal(first.event.alert.id, 'm-1/spike');
      assert.equal(first.event.alert.value, 21);
      assert.ok(Number.isNaN(first.event.alert.peakScore), 'NaN survives the JSON payload');

      await waitFor(async () => (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.alert_outbox WHERE delivered_at IS NULL`))[0]?.n === 0, 5_000, 'every row marked delivered');
      const stats = relay.stats();
      assert.equal(stats.delivered, 40);
      assert.equal(stats.slot, `gridpulse_outbox_${db.name}_${schema}`.slice(0, 63), 'the default slot names database and schema');
      const slot = await slotOf(db, stats.slot ?? '');
      assert.ok(slot?.active, 'the relay streams from its slot');
      // Everything delivered is confirmed: the slot restarts after the last outbox insert. (The
      // heartbeat keeps moving both past other WAL, so they are compared with it, not each other.)
      const lastInsert = lsn((consumer.received.at(-1) as OutboxNotification).lsn ?? '0/0');
      assert.ok(lsn(stats.confirmedLsn ?? '0/0') > lastInsert, `relay confirmed ${stats.confirmedLsn}, past the last insert`);
      await waitFor(async () => lsn((await slotOf(db, stats.slot ?? ''))?.confirmed ?? '0/0') > lastInsert, 5_000, 'the slot to confirm past the last insert');
    } finally {
      await relay.stop();
      await store.close();
      await db.dropSlots();
    }
  });

  test('a deliver that fails twice is retried: delivered once, in order, nothing after it first', async () => {
    const { db, schema, store } = await freshStore();
    const delivered: string[] = [];
    const calls: string[] = [];
    const errors: GpError[] = [];
    let failuresLeft = 2;
    const relay = createOutboxRelay({
      url: db.url,
      schema,
      mode: 'logical',
      retryMinMs: 50,
      deliver: (notification) => {
        calls.push(`${notification.id}:${notification.attempt}`);
        if (notification.id === 'm-2/spike#2' && failuresLeft > 0) {
          failuresLeft -= 1;
          return Promise.reject(new Error('receiver answered 503'));
        }
        delivered.push(notification.id);
        return Promise.resolve();
      },
      onError: (error) => errors.push(error),
    });
    try {
      await relay.start();
      const expected = await writeTransitions(store, ['m-1/spike', 'm-2/spike', 'm-3/spike'], 4);
      await waitFor(() => delivered.length >= expected.length, 15_000, `${expected.length} deliveries`);
      assert.deepEqual(delivered, expected, 'delivered once each, in commit order');
      const at = calls.indexOf('m-2/spike#2:1');
      assert.deepEqual(calls.slice(at, at + 4), ['m-2/spike#2:1', 'm-2/spike#2:2', 'm-2/spike#2:3', calls[at + 3]]);
      assert.equal(calls.length, expected.length + 2, 'only the failed row was tried again');
      assert.equal(errors.length, 2);
      assert.ok(errors.every((error) => error.code === 'GP_UNAVAILABLE' && error.message.includes('m-2/spike#2') && error.message.includes('receiver answered 503')));
      assert.equal(relay.stats().failedAttempts, 2);
      await waitFor(
        async () => (await db.query<{ attempts: number }>(`SELECT attempts FROM ${schema}.alert_outbox WHERE id = 'm-2/spike#2' AND delivered_at IS NOT NULL`))[0]?.attempts === 3,
        5_000,
        'the row marked delivered after 3 attempts',
      );
    } finally {
      await relay.stop();
      await store.close();
      await db.dropSlots();
    }
  });

  test('stopped while a delivery keeps failing: nothing is confirmed past it, and the next relay delivers it and what follows', async () => {
    const { db, schema, store } = await freshStore();
    const firstRun: string[] = [];
    const stuck = createOutboxRelay({
      url: db.url,
      schema,
      mode: 'logical',
      retryMinMs: 20,
      retryMaxMs: 50,
      deliver: (notification) => {
        if (notification.id === 'm-1/spike#3') return Promise.reject(new Error('receiver down'));
        firstRun.push(notification.id);
        return Promise.resolve();
      },
    });
    await stuck.start();
    const expected = await writeTransitions(store, ['m-1/spike', 'm-2/spike'], 5, 3);
    const blocked = expected.indexOf('m-1/spike#3');
    await waitFor(() => stuck.stats().failedAttempts >= 3, 10_000, 'the stuck row being retried');
    await stuck.stop();
    assert.deepEqual(firstRun, expected.slice(0, blocked), 'nothing after the failing row was delivered before it');

    const secondRun = createConsumer();
    const relay = createOutboxRelay({ url: db.url, schema, mode: 'logical', deliver: secondRun.deliver });
    try {
      await relay.start();
      await waitFor(() => secondRun.received.length >= expected.length - blocked, 15_000, 'the rest delivered');
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.deepEqual(secondRun.ids(), expected.slice(blocked), 'the failing row first, then the rest; nothing delivered twice');
      assert.ok(relay.stats().skipped >= 1, 'rows the slot brought back that were already delivered were skipped');
    } finally {
      await relay.stop();
      await store.close();
      await db.dropSlots();
    }
  });

  test('a relay SIGKILLed mid-delivery, three times: nothing lost, only the row in flight again, same id', async () => {
    const { db, schema, store } = await freshStore();
    const folder = mkdtempSync(join(tmpdir(), 'gp-outbox-'));
    const consumerFile = join(folder, 'received.txt');
    const child = fileURLToPath(new URL('./outbox-relay-child.ts', import.meta.url));
    const alerts = ['m-1/spike', 'm-2/spike', 'm-3/drop'];
    const expected: string[] = [];
    const inFlight: string[] = [];
    let relay: OutboxRelay | undefined;
    try {
      for (const [round, hangAt] of [5, 9, 4].entries()) {
        // More transitions commit while no relay runs (the first round: before any relay existed).
        const events = alerts.flatMap((alert) => [1, 2, 3, 4].map((step) => transitionEvent(alert, round * 4 + step)));
        for (let at = 0; at < events.length; at += 3) await store.writeAlertEvents(events.slice(at, at + 3));
        expected.push(...events.map((event) => event.transition.id));

        const process_ = spawn(process.execPath, ['--import', 'tsx', child, db.url, schema, consumerFile, String(hangAt)], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let output = '';
        let errors = '';
        process_.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
        process_.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
        const exited = new Promise<NodeJS.Signals | null>((resolve) => process_.on('exit', (_code, signal) => resolve(signal)));
        await waitFor(() => /HANG /.test(output) || process_.exitCode !== null, 30_000, `round ${round}: the child relay hanging in deliver (${errors})`);
        const hung = /HANG (\S+)/.exec(output)?.[1];
        assert.ok(hung !== undefined, `round ${round}: the child hangs mid-delivery: ${output} ${errors}`);
        assert.match(output, /STARTED logical/);
        inFlight.push(hung);
        process_.kill('SIGKILL');
        assert.equal(await exited, 'SIGKILL');
      }

      // The last relay runs in this process, to the end.
      const consumer = createConsumer();
      relay = createOutboxRelay({ url: db.url, schema, mode: 'logical', retryMinMs: 50, deliver: consumer.deliver });
      await relay.start();
      const fromChildren = (): string[] =>
        readFileSync(consumerFile, 'utf8')
          .split('\n')
          .filter((line) => line !== '')
          .map((line) => line.split(' ')[0] as string);
      await waitFor(() => dedup([...fromChildren(), ...consumer.ids()]).length >= expected.length, 30_000, 'every transition delivered');
      await new Promise((resolve) => setTimeout(resolve, 300));
      const all = [...fromChildren(), ...consumer.ids()];

      assert.deepEqual(new Set(dedup(all)), new Set(expected), 'every committed transition was published');
      assert.equal(dedup(all).length, expected.length);
      // The only rows delivered twice are the three in flight when a relay died, each exactly twice,
      // under the same id: the receiver's dedup by id leaves no duplicate.
      assert.deepEqual(duplicates(all), new Map(inFlight.map((id) => [id, 2])));
      // In the raw stream too: a redelivered row comes again before anything later of its alert.
      assertOrderPerAlert(all, { repeats: true });
      assertOrderPerAlert(dedup(all));
      await waitFor(
        async () => (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.alert_outbox WHERE delivered_at IS NULL`))[0]?.n === 0,
        5_000,
        'every row marked delivered',
      );
    } finally {
      await relay?.stop();
      await store.close();
      await db.dropSlots();
      rmSync(folder, { recursive: true, force: true });
    }
  });

  test('idle for longer than the heartbeat: the slot confirms past WAL written elsewhere, so it holds none of it', async () => {
    const { db, schema, store } = await freshStore();
    const consumer = createConsumer();
    const relay = createOutboxRelay({ url: db.url, schema, mode: 'logical', heartbeatMs: 200, deliver: consumer.deliver });
    try {
      await relay.start();
      const slot = relay.stats().slot!;
      await store.writeAlertEvents([transitionEvent('m-1/spike', 1)]);
      await waitFor(() => consumer.received.length === 1, 10_000, 'one delivery');
      const afterDelivery = (await slotOf(db, slot))!;

      // WAL the outbox has nothing to do with: 2 MB of another table, then a checkpoint (it logs the
      // running transactions, which lets the slot's restart_lsn move too).
      await db.query(`CREATE TABLE ${schema}.unrelated (id int, filler text)`);
      await db.query(`INSERT INTO ${schema}.unrelated SELECT g, repeat('x', 200) FROM generate_series(1, 10000) g`);
      await db.query('CHECKPOINT');
      const written = (await db.query<{ at: string }>('SELECT pg_current_wal_lsn()::text AS at'))[0]!.at;
      assert.ok(lsn(written) - lsn(afterDelivery.confirmed) > 1_000_000n, 'the unrelated writes made WAL');

      // Nothing is written to the outbox meanwhile; the heartbeat alone moves the slot.
      await waitFor(async () => lsn((await slotOf(db, slot))!.confirmed) >= lsn(written), 5_000, `confirmed_flush_lsn to reach ${written}`);
      await waitFor(async () => (await slotOf(db, slot))!.retainedBytes < 1_000_000, 10_000, 'the slot to release the unrelated WAL (restart_lsn)');
      assert.equal(consumer.received.length, 1, 'the heartbeat delivered nothing');
      assert.ok(relay.stats().lastConfirmedAt !== undefined);
    } finally {
      await relay.stop();
      await store.close();
      await db.dropSlots();
    }
  });

  test('mode logical on a slot that another relay streams waits (hot standby) and takes over when that one stops', async () => {
    const { db, schema, store } = await freshStore();
    const first = createConsumer();
    const second = createConsumer();
    const errors: string[] = [];
    const active = createOutboxRelay({ url: db.url, schema, mode: 'logical', deliver: first.deliver });
    const standby = createOutboxRelay({ url: db.url, schema, mode: 'logical', retryMinMs: 50, retryMaxMs: 200, deliver: second.deliver, onError: (error) => errors.push(error.message) });
    try {
      await active.start();
      await waitFor(async () => (await slotOf(db, active.stats().slot!))?.active === true, 5_000, 'the first relay streaming');
      await standby.start();
      await store.writeAlertEvents([transitionEvent('m-1/spike', 1), transitionEvent('m-1/spike', 2)]);
      await waitFor(() => first.received.length === 2, 10_000, 'the first relay delivering');
      await waitFor(() => errors.some((message) => /is active for PID/.test(message)), 5_000, 'the standby refused by the active slot');
      await active.stop();
      await store.writeAlertEvents([transitionEvent('m-1/spike', 3)]);
      await waitFor(() => second.received.length === 1, 10_000, 'the standby delivering after the takeover');
      assert.deepEqual([...first.ids(), ...second.ids()], ['m-1/spike#1', 'm-1/spike#2', 'm-1/spike#3']);
    } finally {
      await active.stop();
      await standby.stop();
      await store.close();
      await db.dropSlots();
    }
  });
});
