// Shared by the outbox relay tests (test/integration/outbox-*.test.ts): a database of their own on a
// real PostgreSQL, alert events with real transition ids, and a consumer that records deliveries.
// Not a test file itself.
import assert from 'node:assert/strict';
import pg from 'pg';
import type { AlertEvent } from '../../src/model/index.js';
import type { OutboxNotification, Store } from '../../src/stores/index.js';

/** The cluster with wal_level=logical that scripts/servers.sh starts for change data capture. */
export const LOGICAL = { server: 'postgres://postgres@127.0.0.1:5433', name: 'postgres-logical', port: 5433 } as const;
/** The machine's own server (wal_level replica). */
export const MACHINE = { server: 'postgres://postgres@127.0.0.1:5432', name: 'postgres', port: 5432 } as const;
/** A PostgreSQL server: its URL without a database, the scripts/servers.sh name that starts it, its port. */
export interface PostgresTarget {
  readonly server: string;
  readonly name: string;
  readonly port: number;
}

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  query<T extends pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Drops the replication slots of this database, ending whoever still streams them (slots are few per cluster). */
  dropSlots(): Promise<void>;
  /** Drops the slots, then the database. */
  drop(): Promise<void>;
}

/**
 * Creates a database of its own on `target`. Fails, saying how to start the server, when the server
 * does not answer (or, with `logical`, when it is not running with wal_level=logical).
 */
export async function createTestDatabase(target: PostgresTarget, options: { logical?: boolean } = {}): Promise<TestDatabase> {
  const start = `scripts/servers.sh start ${target.name}`;
  const admin = async <T>(body: (client: pg.Client) => Promise<T>, database = 'postgres'): Promise<T> => {
    const client = new pg.Client({ connectionString: `${target.server}/${database}` });
    client.on('error', () => undefined);
    try {
      await client.connect();
    } catch (cause) {
      throw new Error(`PostgreSQL not reachable on 127.0.0.1:${target.port} — start it with ${start}`, { cause });
    }
    try {
      return await body(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  };
  const name = `gp_outbox_${process.pid}_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;
  await admin(async (client) => {
    if (options.logical === true) {
      const level = String((await client.query<{ wal_level: string }>('SHOW wal_level')).rows[0]?.wal_level);
      if (level !== 'logical') {
        throw new Error(`PostgreSQL on 127.0.0.1:${target.port} runs with wal_level=${level}, expected logical — start the test cluster with ${start}`);
      }
    }
    await client.query(`CREATE DATABASE ${name}`);
  });
  const dropSlots = (): Promise<void> =>
    admin(async (client) => {
      for (let attempt = 0; attempt < 50; attempt++) {
        const slots = await client.query<{ slot_name: string; active_pid: number | null }>(
          'SELECT slot_name, active_pid FROM pg_replication_slots WHERE database = $1',
          [name],
        );
        if (slots.rows.length === 0) return;
        for (const slot of slots.rows) {
          if (slot.active_pid !== null) await client.query('SELECT pg_terminate_backend($1)', [slot.active_pid]);
          else await client.query('SELECT pg_drop_replication_slot($1)', [slot.slot_name]).catch(() => undefined);
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    });
  return {
    name,
    url: `${target.server}/${name}`,
    query: <T extends pg.QueryResultRow>(sql: string, params: unknown[] = []) => admin(async (client) => (await client.query<T>(sql, params)).rows, name),
    dropSlots,
    drop: async () => {
      await dropSlots();
      await admin(async (client) => {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      });
    },
  };
}

/** The event of transition `seq` of alert `alertId`, with the id the alert manager gives it (`alertId#seq`). */
export function transitionEvent(alertId: string, seq: number): AlertEvent {
  return {
    alert: {
      id: alertId,
      stream: 'power',
      key: alertId.split('/')[0] ?? 'm-1',
      site: 's-1',
      type: 'spike',
      metric: 'usageKw',
      severity: seq > 2 ? 'critical' : 'warning',
      status: 'open',
      openedAt: 1_763_900_000_000,
      updatedAt: 1_763_900_000_000 + seq * 1000,
      resolvedAt: undefined,
      score: 0.5 + seq / 100,
      peakScore: Number.NaN,
      value: 20 + seq,
      findings: seq,
      explain: `usageKw ${20 + seq} kW`,
    },
    transition: {
      id: `${alertId}#${seq}`,
      alertId,
      seq,
      kind: seq === 1 ? 'open' : 'update',
      time: 1_763_900_000_000 + seq * 1000,
      status: 'open',
      severity: seq > 2 ? 'critical' : 'warning',
      score: 0.5 + seq / 100,
      explain: `usageKw ${20 + seq} kW`,
    },
  };
}

/**
 * Writes `alerts` alerts × `perAlert` transitions through the store in several transactions of
 * mixed sizes, the alerts interleaved, and replays an earlier batch after each new one (as an
 * engine restarted from a checkpoint would). Returns the transition ids in commit order.
 */
export async function writeTransitions(store: Store, alerts: readonly string[], perAlert: number, batch = 7): Promise<string[]> {
  const events: AlertEvent[] = [];
  for (let seq = 1; seq <= perAlert; seq++) for (const alert of alerts) events.push(transitionEvent(alert, seq));
  const batches: AlertEvent[][] = [];
  for (let at = 0, size = 1; at < events.length; at += size, size = (size % batch) + 1) batches.push(events.slice(at, at + size));
  for (const [index, slice] of batches.entries()) {
    await store.writeAlertEvents(slice);
    const earlier = batches[Math.floor(index / 2)];
    if (earlier !== undefined) await store.writeAlertEvents(earlier);
  }
  return events.map((event) => event.transition.id);
}

/** Records what a relay delivered, as a receiver would see it. */
export function createConsumer() {
  const received: OutboxNotification[] = [];
  return {
    received,
    deliver: (notification: OutboxNotification): Promise<void> => {
      received.push(notification);
      return Promise.resolve();
    },
    ids: () => received.map((notification) => notification.id),
  };
}

/** Each id once, in the order first seen: what a consumer that deduplicates by id keeps. */
export function dedup(ids: readonly string[]): string[] {
  return [...new Set(ids)];
}

/** How often each id was delivered more than once. */
export function duplicates(ids: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  return new Map([...counts].filter(([, count]) => count > 1));
}

/**
 * Asserts every alert's transitions arrive in seq order (ids `alert#seq`). With `repeats`, the same
 * transition may come again right after itself (a redelivery after a crash), but never an older one.
 */
export function assertOrderPerAlert(ids: readonly string[], options: { repeats?: boolean } = {}): void {
  const last = new Map<string, number>();
  for (const id of ids) {
    const hash = id.lastIndexOf('#');
    const alert = id.slice(0, hash);
    const seq = Number(id.slice(hash + 1));
    const before = last.get(alert) ?? 0;
    const inOrder = options.repeats === true ? seq >= before : seq > before;
    assert.ok(inOrder, `${id} arrived after ${alert}#${before}: the order per alert is broken`);
    last.set(alert, seq);
  }
}

export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
