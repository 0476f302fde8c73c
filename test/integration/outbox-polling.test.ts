// The transactional outbox relayed by polling, against the machine's PostgreSQL on 127.0.0.1:5432
// (scripts/servers.sh start postgres), which runs with wal_level=replica: `auto` must fall back to
// polling and still deliver every transition once, in order per alert, also with two relays at once.
// Each run creates its own database and drops it afterwards. Without the server every test fails
// with the message saying how to start it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GpError } from '../../src/model/index.js';
import { createOutboxRelay, createPostgresStore, type OutboxNotification, type Store } from '../../src/stores/index.js';
import {
  MACHINE,
  assertOrderPerAlert,
  createConsumer,
  createTestDatabase,
  dedup,
  duplicates,
  waitFor,
  writeTransitions,
  type TestDatabase,
} from '../helpers/outbox.js';

let database: Promise<TestDatabase> | undefined;
function testDatabase(): Promise<TestDatabase> {
  database ??= createTestDatabase(MACHINE);
  return database;
}
after(async () => {
  const db = await database?.catch(() => undefined);
  await db?.drop();
});

let schemas = 0;
async function freshStore(): Promise<{ db: TestDatabase; schema: string; store: Store }> {
  const db = await testDatabase();
  schemas += 1;
  const schema = `outbox_${schemas}`;
  const store = createPostgresStore({ url: db.url, schema });
  await store.ready();
  return { db, schema, store };
}

async function undelivered(db: TestDatabase, schema: string): Promise<number> {
  return (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.alert_outbox WHERE delivered_at IS NULL`))[0]?.n ?? -1;
}

describe('outbox relay, polling (127.0.0.1:5432, wal_level replica)', () => {
  before(async () => {
    const db = await testDatabase();
    const level = (await db.query<{ wal_level: string }>('SHOW wal_level'))[0]?.wal_level;
    assert.notEqual(level, 'logical', 'these tests are about a server without logical replication');
  });

  test('auto falls back to polling, says why, and delivers each transition exactly once in order per alert', async () => {
    const { db, schema, store } = await freshStore();
    const consumer = createConsumer();
    const relay = createOutboxRelay({ url: `${db.url}?schema=${schema}`, mode: 'auto', pollMs: 50, deliver: consumer.deliver });
    try {
      const started = await relay.start();
      assert.equal(started.mode, 'polling');
      assert.match(started.reason, /wal_level is replica \(logical replication needs wal_level = logical\)/);
      assert.equal(relay.stats().mode, 'polling');
      const expected = await writeTransitions(store, ['m-1/spike', 'm-2/spike', 'm-3/drop', 'm-4/silence'], 10);
      const rows = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.alert_outbox`);
      assert.deepEqual(rows, [{ n: 40 }], 'replayed writes add no outbox row');
      await waitFor(() => consumer.received.length >= 40, 15_000, '40 deliveries');
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(consumer.received.length, 40, 'nothing delivered twice');
      assert.deepEqual(new Set(consumer.ids()), new Set(expected));
      assertOrderPerAlert(consumer.ids());
      assert.ok(consumer.received.every((n) => n.lsn === undefined && n.attempt === 1));
      const first = consumer.received.find((n) => n.id === 'm-3/drop#2') as OutboxNotification;
      assert.equal(first.event.transition.seq, 2);
      assert.equal(first.event.alert.id, 'm-3/drop');
      assert.equal(await undelivered(db, schema), 0);
      // No publication is left behind on a server that cannot use one.
      const publications = await db.query(`SELECT pubname FROM pg_publication WHERE pubname = $1`, [`gridpulse_outbox_${schema}`]);
      assert.deepEqual(publications, []);
    } finally {
      await relay.stop();
      await store.close();
    }
  });

  test('two polling relays at once never deliver a row twice, and keep the order per alert', async () => {
    const { db, schema, store } = await freshStore();
    const log: { id: string; relay: string }[] = [];
    const inFlight = new Set<string>();
    let overlapping = 0;
    const slowDeliver = (relay: string) => async (notification: OutboxNotification): Promise<void> => {
      if (inFlight.has(notification.id)) overlapping += 1;
      inFlight.add(notification.id);
      await new Promise((resolve) => setTimeout(resolve, 2));
      inFlight.delete(notification.id);
      log.push({ id: notification.id, relay });
    };
    // Written before the relays start, so both find a backlog at once.
    const expected = await writeTransitions(store, ['m-1/spike', 'm-2/spike', 'm-3/spike', 'm-4/spike', 'm-5/drop', 'm-6/drop'], 12, 9);
    const a = createOutboxRelay({ url: db.url, schema, mode: 'polling', pollMs: 20, batchSize: 5, deliver: slowDeliver('a') });
    const b = createOutboxRelay({ url: db.url, schema, mode: 'polling', pollMs: 20, batchSize: 5, deliver: slowDeliver('b') });
    try {
      await Promise.all([a.start(), b.start()]);
      await waitFor(() => log.length >= expected.length, 30_000, `${expected.length} deliveries`);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const ids = log.map((entry) => entry.id);
      assert.deepEqual(duplicates(ids), new Map(), 'no row delivered twice');
      assert.equal(overlapping, 0, 'no row in two deliveries at the same time');
      assert.deepEqual(new Set(ids), new Set(expected));
      assertOrderPerAlert(ids);
      const byRelay = { a: log.filter((entry) => entry.relay === 'a').length, b: log.filter((entry) => entry.relay === 'b').length };
      assert.ok(byRelay.a > 0 && byRelay.b > 0, `both relays took part: ${JSON.stringify(byRelay)}`);
      assert.equal(a.stats().delivered + b.stats().delivered, expected.length);
      assert.equal(await undelivered(db, schema), 0);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
      await store.close();
    }
  });

  test('a failing delivery is retried before anything after it of the same alert; a stopped relay leaves it to the next', async () => {
    const { db, schema, store } = await freshStore();
    const firstRun: string[] = [];
    const errors: GpError[] = [];
    const stuck = createOutboxRelay({
      url: db.url,
      schema,
      mode: 'polling',
      pollMs: 20,
      retryMinMs: 20,
      retryMaxMs: 40,
      deliver: (notification) => {
        if (notification.id === 'm-1/spike#2') return Promise.reject(new Error('receiver down'));
        firstRun.push(notification.id);
        return Promise.resolve();
      },
      onError: (error) => errors.push(error),
    });
    await stuck.start();
    const expected = await writeTransitions(store, ['m-1/spike'], 4);
    await waitFor(() => stuck.stats().failedAttempts >= 3, 10_000, 'the failing row being retried');
    await stuck.stop();
    assert.deepEqual(firstRun, ['m-1/spike#1'], 'nothing after the failing row was delivered');
    assert.ok(errors.every((error) => error.code === 'GP_UNAVAILABLE' && /m-1\/spike#2/.test(error.message)));

    const consumer = createConsumer();
    const relay = createOutboxRelay({ url: db.url, schema, mode: 'auto', pollMs: 20, deliver: consumer.deliver });
    try {
      await relay.start();
      await waitFor(() => consumer.received.length >= 3, 10_000, 'the rest delivered');
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.deepEqual(dedup([...firstRun, ...consumer.ids()]), expected);
      assert.deepEqual(consumer.ids(), expected.slice(1));
    } finally {
      await relay.stop();
      await store.close();
    }
  });

  test('mode logical on this server is refused with what is missing', async () => {
    const { db, schema, store } = await freshStore();
    const relay = createOutboxRelay({ url: db.url, schema, mode: 'logical', deliver: () => Promise.resolve() });
    try {
      await assert.rejects(relay.start(), (error: unknown) => {
        assert.ok(error instanceof GpError);
        assert.equal(error.code, 'GP_CONFIG_INVALID');
        assert.match(error.message, /^mode: expected a server with wal_level = logical .* got wal_level is replica/);
        return true;
      });
      const slots = await db.query(`SELECT slot_name FROM pg_replication_slots WHERE database = current_database()`);
      assert.deepEqual(slots, [], 'no slot was created');
    } finally {
      await relay.stop();
      await store.close();
    }
  });

  test('a relay on a database without the outbox table fails saying which migration it needs, without the password', async () => {
    const db = await testDatabase();
    const relay = createOutboxRelay({ url: db.url.replace('postgres@', 'postgres:hunter2@'), schema: 'no_such_schema', deliver: () => Promise.resolve() });
    await assert.rejects(relay.start(), (error: unknown) => {
      assert.ok(error instanceof GpError);
      assert.equal(error.code, 'GP_STORE_FAILED');
      assert.match(error.message, /no table no_such_schema\.alert_outbox .* expected schema version 3 or later/);
      assert.doesNotMatch(error.message, /hunter2/);
      return true;
    });
    await relay.stop();
  });
});
