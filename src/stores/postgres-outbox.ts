import type { Client, ClientConfig, QueryResultRow } from 'pg';
import type { LogicalReplicationService, Pgoutput } from 'pg-logical-replication';
import { GpError, type Alert, type AlertEvent, type AlertTransition } from '../model/index.js';
import { ENSURE_OUTBOX_PUBLICATION, outboxPublicationName, quoteIdentifier, splitSchema } from './postgres-schema.js';

/**
 * The relay of the transactional outbox: `writeAlertEvents` of the PostgreSQL store commits each
 * alert transition together with a row of `alert_outbox` (postgres-schema.ts, version 3); the relay
 * hands every such row to the caller's `deliver` and only then counts it as published.
 *
 * Two ways to read the outbox:
 * - `logical`: change data capture. A logical replication slot (plugin `pgoutput`, publication
 *   `gridpulse_outbox_<schema>`) streams the committed inserts in commit order. The relay confirms a
 *   transaction's end LSN to the server only after every row of it was delivered (and marked
 *   `delivered_at`); a delivery that fails is retried, with backoff, before anything after it. When
 *   idle it still confirms the server's position every `heartbeatMs` (standby status with a reply
 *   request, then the keepalive's LSN), so the slot never holds WAL for writes that are not ours.
 *   Needs `wal_level = logical` and a role with REPLICATION.
 * - `polling`: `SELECT ... WHERE delivered_at IS NULL ORDER BY created_at, seq FOR UPDATE SKIP LOCKED
 *   LIMIT batchSize`, deliver, mark, commit; every `pollMs` when there was nothing. The row locks are
 *   held during delivery, so two relays never deliver one row at the same time, and a row is only taken
 *   when no earlier transition of its alert is undelivered, so the order per alert holds across relays.
 * - `auto` (default): logical when `SHOW wal_level` says logical and the role may replicate, else
 *   polling; `start()` answers which and why.
 *
 * Guarantee: at least once, in order per alert, with a stable id (the transition id, `alertId:seq`)
 * the consumer deduplicates on. A relay killed after `deliver` resolved and before it marked the row
 * delivers that row again on restart: in logical mode at most that one row (rows already marked are
 * skipped, however far back the slot restarts); in polling mode at most the rows of its batch
 * (`batchSize`, default 1). Rows
 * committed before the slot existed (written while polling, or before the relay first ran) are not
 * in the stream: a polling pass over them (created before `alert_outbox_slots.streams_from`) runs
 * each time the stream (re)starts. A slot keeps WAL while no relay reads it: drop it
 * (`SELECT pg_drop_replication_slot('gridpulse_outbox_public')`) when going back to polling for good.
 *
 * The relay owns its two connections (one for queries, one for replication); `deliver` owns the
 * delivery (channels, retries of its own, dead letters). Stopping waits for a `deliver` call in flight
 * and abandons a retry wait; a stopped relay does not start again (create another).
 *
 * @example
 * const relay = createOutboxRelay({
 *   url: 'postgres://postgres@127.0.0.1:5433/gridpulse',
 *   schema: 'public',
 *   deliver: async (notification) => { await channels.send(notification.event, { id: notification.id }); },
 *   onError: (error) => log.warn(error.toJSON()),
 * });
 * const { mode, reason } = await relay.start(); // 'logical', 'wal_level is logical and role postgres may replicate'
 * // ... later
 * await relay.stop();
 */
export function createOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  return new PostgresOutboxRelay(options);
}

export type OutboxRelayMode = 'logical' | 'polling';

/** One outbox row, handed to `deliver`. */
export interface OutboxNotification {
  /** The transition id (`alertId:seq`): the same on every delivery of this row — the key to deduplicate on. */
  readonly id: string;
  readonly alertId: string;
  readonly seq: number;
  /** The alert as it stood at this transition, and the transition. */
  readonly event: AlertEvent;
  /** When the transition was committed to the outbox (epoch ms, server clock). */
  readonly createdAt: number;
  /** 1 on this relay's first attempt at the row, then 2, 3, ... after failures. */
  readonly attempt: number;
  /** The LSN of the insert in the replication stream (logical mode), undefined when polled. */
  readonly lsn: string | undefined;
}

export interface OutboxRelayOptions {
  /** A `postgres://` URL of the database the store writes (`?schema=name` picks the schema, as for the store). */
  url: string;
  /** The schema of the store's tables; default the URL's `schema` parameter, else `public`. */
  schema?: string;
  /**
   * The replication slot (logical mode): lowercase letters, digits, underscores; default
   * `gridpulse_outbox_<database>_<schema>` (slot names are unique per cluster), cut to 63 characters.
   */
  slot?: string;
  /** Publishes one row; resolve when it was accepted, throw to have it retried (nothing after it is delivered first). */
  deliver: (notification: OutboxNotification) => Promise<void>;
  /** `auto` (default) picks logical when the server and role allow it, else polling. */
  mode?: OutboxRelayMode | 'auto';
  /** Logical mode: how often the relay reports its position to the server when nothing else does (default 10 000 ms). */
  heartbeatMs?: number;
  /** Polling mode: the wait after a poll that found nothing (default 1 000 ms). */
  pollMs?: number;
  /**
   * Polling mode: most rows locked, delivered and marked per transaction (default 1). A relay killed
   * mid-batch delivers the batch's rows again after restart, so 1 gives at most one row again (as in
   * logical mode); more gives throughput (fewer commits) for more possible repeats.
   */
  batchSize?: number;
  /** First wait before retrying a failed delivery (default 100 ms); it doubles up to `retryMaxMs`. */
  retryMinMs?: number;
  /** Longest wait between retries of a delivery, and between reconnects to the server (default 30 000 ms). */
  retryMaxMs?: number;
  /** Every failed delivery attempt and every lost connection, as a GpError (the relay itself retries). */
  onError?: (error: GpError) => void;
}

export interface OutboxRelayStats {
  /** The mode in use; undefined before `start()`. */
  mode: OutboxRelayMode | undefined;
  /** Why that mode (what `auto` found, or that it was asked for). */
  reason: string;
  running: boolean;
  slot: string | undefined;
  publication: string | undefined;
  /** Rows handed to `deliver` successfully by this relay. */
  delivered: number;
  /** Rows seen in the stream that were already delivered (by an earlier run or another relay). */
  skipped: number;
  /** Failed `deliver` calls (each one retried). */
  failedAttempts: number;
  /** Connections lost or refused, each followed by a reconnect. */
  reconnects: number;
  /** Logical mode: the last LSN confirmed to the server (what the slot's confirmed_flush_lsn becomes). */
  confirmedLsn: string | undefined;
  /** Logical mode: when a position was last confirmed (epoch ms). */
  lastConfirmedAt: number | undefined;
}

export interface OutboxRelay {
  /** Connects, picks the mode, creates the slot (logical) and begins relaying; resolves once relaying runs. */
  start(): Promise<{ mode: OutboxRelayMode; reason: string }>;
  /** Stops relaying; waits for a `deliver` in flight; idempotent. */
  stop(): Promise<void>;
  stats(): OutboxRelayStats;
}

// ---- implementation ----------------------------------------------------------------------

const DEFAULT_HEARTBEAT_MS = 10_000;
const DEFAULT_POLL_MS = 1_000;
const DEFAULT_BATCH_SIZE = 1;
const DEFAULT_RETRY_MIN_MS = 100;
const DEFAULT_RETRY_MAX_MS = 30_000;
// The replication stream is paused while this many messages wait, and resumed below the low mark.
const QUEUE_HIGH_WATER = 2_000;
const QUEUE_LOW_WATER = 200;
const OUTBOX_TABLE = 'alert_outbox';
const DUPLICATE_OBJECT = '42710';
// How long a streamed row may take to become visible to the relay's queries (see deliverStreamed).
const VISIBILITY_WAIT_MS = 5_000;
const VISIBILITY_POLL_MS = 5;

/** Thrown inside the relay when `stop()` interrupts a wait; never reaches the caller. */
class Stopped extends Error {}

interface OutboxRow {
  id: string;
  alertId: string;
  seq: number;
  payload: unknown;
  createdAt: number;
  lsn: string | undefined;
}

type StreamItem =
  | { readonly kind: 'message'; readonly lsn: string; readonly message: Pgoutput.Message }
  | { readonly kind: 'keepalive'; readonly lsn: string };

class PostgresOutboxRelay implements OutboxRelay {
  private readonly url: string;
  private readonly schema: string;
  private readonly slot: string;
  private readonly publication: string;
  private readonly deliverRow: (notification: OutboxNotification) => Promise<void>;
  private readonly requestedMode: OutboxRelayMode | 'auto';
  private readonly heartbeatMs: number;
  private readonly pollMs: number;
  private readonly batchSize: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly onError: (error: GpError) => void;

  private mode: OutboxRelayMode | undefined;
  private reason = 'not started';
  private starting: Promise<{ mode: OutboxRelayMode; reason: string }> | undefined;
  private stopping: Promise<void> | undefined;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private client: Client | undefined;
  private service: LogicalReplicationService | undefined;
  private confirmed = 0n;
  // Rows created up to then may predate the slot: the catch-up pass delivers them (see prepareSlot).
  private catchUpUntil: Date | undefined;
  private counters = { delivered: 0, skipped: 0, failedAttempts: 0, reconnects: 0 };
  private lastConfirmedAt: number | undefined;

  constructor(options: OutboxRelayOptions) {
    if (typeof options.url !== 'string' || !/^postgres(ql)?:\/\//i.test(options.url)) {
      throw new GpError('GP_CONFIG_INVALID', `outbox relay url: expected postgres://user@host:port/database, got ${JSON.stringify(redact(String(options.url)))}`, {
        field: 'url',
      });
    }
    const { url, schema } = splitSchema(options.url);
    this.url = url;
    this.schema = options.schema ?? schema ?? 'public';
    if (this.schema === '' || this.schema.length > 63) {
      throw new GpError('GP_CONFIG_INVALID', `schema: expected a PostgreSQL schema name (1 to 63 characters), got ${JSON.stringify(this.schema)}`, {
        field: 'schema',
      });
    }
    this.slot = options.slot ?? defaultSlotName(databaseOf(this.url), this.schema);
    if (!/^[a-z0-9_]{1,63}$/.test(this.slot)) {
      throw new GpError('GP_CONFIG_INVALID', `slot: expected a replication slot name of 1 to 63 lowercase letters, digits or underscores, got ${JSON.stringify(this.slot)}`, {
        field: 'slot',
      });
    }
    this.publication = outboxPublicationName(this.schema);
    if (typeof options.deliver !== 'function') {
      throw new GpError('GP_CONFIG_INVALID', `deliver: expected a function (notification) => Promise<void>, got ${typeof options.deliver}`, { field: 'deliver' });
    }
    this.deliverRow = options.deliver;
    this.requestedMode = options.mode ?? 'auto';
    if (!['logical', 'polling', 'auto'].includes(this.requestedMode)) {
      throw new GpError('GP_CONFIG_INVALID', `mode: expected logical, polling or auto, got ${JSON.stringify(this.requestedMode)}`, { field: 'mode' });
    }
    this.heartbeatMs = positiveInteger(options.heartbeatMs, DEFAULT_HEARTBEAT_MS, 'heartbeatMs');
    this.pollMs = positiveInteger(options.pollMs, DEFAULT_POLL_MS, 'pollMs');
    this.batchSize = positiveInteger(options.batchSize, DEFAULT_BATCH_SIZE, 'batchSize');
    this.retryMinMs = positiveInteger(options.retryMinMs, DEFAULT_RETRY_MIN_MS, 'retryMinMs');
    this.retryMaxMs = positiveInteger(options.retryMaxMs, DEFAULT_RETRY_MAX_MS, 'retryMaxMs');
    this.onError = options.onError ?? (() => undefined);
  }

  start(): Promise<{ mode: OutboxRelayMode; reason: string }> {
    if (this.stopping !== undefined) return Promise.reject(stoppedError());
    this.starting ??= this.begin();
    return this.starting;
  }

  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  stats(): OutboxRelayStats {
    return {
      mode: this.mode,
      reason: this.reason,
      running: this.loop !== undefined && this.stopping === undefined,
      slot: this.mode === 'logical' ? this.slot : undefined,
      publication: this.mode === 'logical' ? this.publication : undefined,
      ...this.counters,
      confirmedLsn: this.mode === 'logical' && this.confirmed > 0n ? formatLsn(this.confirmed) : undefined,
      lastConfirmedAt: this.lastConfirmedAt,
    };
  }

  // ---- start and stop --------------------------------------------------------------------

  private async begin(): Promise<{ mode: OutboxRelayMode; reason: string }> {
    try {
      const client = await this.connect();
      const table = await client.query<QueryResultRow>(`SELECT to_regclass($1) IS NOT NULL AS present`, [`${quoteIdentifier(this.schema)}.${OUTBOX_TABLE}`]);
      if (table.rows[0]?.['present'] !== true) {
        throw new GpError(
          'GP_STORE_FAILED',
          `outbox relay: no table ${this.schema}.${OUTBOX_TABLE} at ${redact(this.url)}: expected schema version 3 or later (run gridpulse migrate, or start the PostgreSQL store once)`,
          { schema: this.schema, url: redact(this.url) },
        );
      }
      let choice = await this.chooseMode(client);
      if (choice.mode === 'logical' && !(await this.preparePublication(client))) {
        const missing = `publication ${this.publication} for ${this.schema}.${OUTBOX_TABLE} is missing and the role may not create it (CREATE on the database)`;
        if (this.requestedMode === 'logical') {
          throw new GpError('GP_STORE_FAILED', `outbox relay: ${missing}: expected it for mode logical`, { publication: this.publication });
        }
        choice = { mode: 'polling', reason: `${missing}: polling` };
      }
      this.mode = choice.mode;
      this.reason = choice.reason;
      if (choice.mode === 'logical') await this.prepareSlot(client);
      if (this.stopping !== undefined) throw stoppedError();
      this.loop = (choice.mode === 'logical' ? this.runLogical() : this.runPolling()).catch((cause: unknown) => {
        if (!(cause instanceof Stopped)) this.report(asGpError(cause, 'outbox relay stopped on an unexpected error'));
      });
      return choice;
    } catch (cause) {
      await this.closeClient();
      if (cause instanceof Stopped) throw stoppedError();
      throw asGpError(cause, `outbox relay could not start at ${redact(this.url)} (schema ${this.schema})`);
    }
  }

  private async shutdown(): Promise<void> {
    this.abort.abort();
    await this.starting?.catch(() => undefined);
    await this.loop;
    await this.endStream();
    await this.closeClient();
  }

  /** Which mode, and why: what was asked, and what the server allows. */
  private async chooseMode(client: Client): Promise<{ mode: OutboxRelayMode; reason: string }> {
    if (this.requestedMode === 'polling') return { mode: 'polling', reason: 'polling was asked for' };
    const level = String((await client.query<QueryResultRow>('SHOW wal_level')).rows[0]?.['wal_level'] ?? '');
    const role = await client.query<QueryResultRow>(`SELECT current_user AS name, rolreplication OR rolsuper AS replicates FROM pg_roles WHERE rolname = current_user`);
    const roleName = String(role.rows[0]?.['name'] ?? '?');
    const replicates = role.rows[0]?.['replicates'] === true;
    if (level === 'logical' && replicates) {
      return { mode: 'logical', reason: `wal_level is logical and role ${roleName} may replicate` };
    }
    const missing =
      level !== 'logical'
        ? `wal_level is ${level || 'unknown'} (logical replication needs wal_level = logical)`
        : `role ${roleName} lacks the REPLICATION attribute`;
    if (this.requestedMode === 'logical') {
      throw new GpError('GP_CONFIG_INVALID', `mode: expected a server with wal_level = logical and a role that may replicate for mode logical, got ${missing}`, {
        field: 'mode',
        walLevel: level,
        role: roleName,
      });
    }
    return { mode: 'polling', reason: `${missing}: polling` };
  }

  /** Creates the publication again (the server may have become logical after the migration); false when it cannot be had. */
  private async preparePublication(client: Client): Promise<boolean> {
    await client.query<QueryResultRow>(ENSURE_OUTBOX_PUBLICATION);
    const publication = await client.query<QueryResultRow>('SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2 AND tablename = $3', [
      this.publication,
      this.schema,
      OUTBOX_TABLE,
    ]);
    return (publication.rowCount ?? 0) > 0;
  }

  /** The slot (created when missing), its confirmed position, and which rows predate it. */
  private async prepareSlot(client: Client): Promise<void> {
    let slot = await this.slotRow(client);
    let created = false;
    if (slot === undefined) {
      try {
        await client.query<QueryResultRow>(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [this.slot]);
        created = true;
      } catch (cause) {
        // Another relay created it meanwhile: use it.
        if ((cause as { code?: unknown }).code !== DUPLICATE_OBJECT) throw cause;
      }
      slot = await this.slotRow(client);
    }
    const database = String((await client.query<QueryResultRow>('SELECT current_database() AS name')).rows[0]?.['name']);
    if (slot === undefined || slot['plugin'] !== 'pgoutput' || slot['database'] !== database) {
      throw new GpError(
        'GP_CONFIG_INVALID',
        `slot: expected ${this.slot} to be a logical slot of plugin pgoutput in database ${database}, got ${slot === undefined ? 'no slot' : `plugin ${String(slot['plugin'])} in database ${String(slot['database'])}`}`,
        { field: 'slot', slot: this.slot },
      );
    }
    this.confirmed = parseLsn(String(slot['confirmed_flush_lsn'] ?? '0/0'));
    // Every transaction that commits after the slot was created is in its stream; one that committed
    // before was created (its created_at) before now. So after creating the slot, the rows to catch up
    // by polling are those created until now, and that stays true for every later start. A slot found
    // without a record (created by hand, or by a relay that died before recording) gets "until now" too.
    const known = await client.query<QueryResultRow>('SELECT streams_from FROM alert_outbox_slots WHERE slot = $1', [this.slot]);
    const recorded: unknown = known.rows[0]?.['streams_from'];
    if (!created && recorded instanceof Date) {
      this.catchUpUntil = recorded;
    } else {
      const now = await client.query<QueryResultRow>('SELECT clock_timestamp() AS now');
      this.catchUpUntil = now.rows[0]?.['now'] as Date;
      await client.query<QueryResultRow>(
        'INSERT INTO alert_outbox_slots (slot, streams_from) VALUES ($1, $2) ON CONFLICT (slot) DO UPDATE SET streams_from = excluded.streams_from',
        [this.slot, this.catchUpUntil],
      );
    }
  }

  private async slotRow(client: Client): Promise<QueryResultRow | undefined> {
    const result = await client.query<QueryResultRow>('SELECT plugin, database, confirmed_flush_lsn::text AS confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = $1', [this.slot]);
    return result.rows[0];
  }

  // ---- polling ---------------------------------------------------------------------------

  private async runPolling(): Promise<void> {
    let failures = 0;
    while (!this.abort.signal.aborted) {
      try {
        const delivered = await this.pollOnce();
        failures = 0;
        if (delivered === 0) await sleep(this.pollMs, this.abort.signal);
      } catch (cause) {
        if (cause instanceof Stopped) return;
        failures += 1;
        await this.lostConnection(cause, failures);
      }
    }
  }

  /**
   * One batch: lock up to `limit` undelivered rows that no other relay holds and that are the oldest
   * undelivered transition of their alert, deliver them in order, mark them, commit. Returns how many
   * rows it delivered (0: nothing to do now). `createdUntil`: only rows created by then.
   *
   * Only the head of each alert is taken: a later transition waits while an earlier one is undelivered,
   * whether another relay holds it or it is still to come in this relay's next batch, so the order per
   * alert holds however many relays poll. The locks are held until the marks commit, so no two relays
   * deliver one row at the same time; a relay that dies before committing leaves its batch undelivered
   * (delivered again later, same ids).
   */
  private async pollOnce(createdUntil?: Date, limit = this.batchSize): Promise<number> {
    const client = await this.connect();
    await client.query<QueryResultRow>('BEGIN');
    try {
      const locked = await client.query<QueryResultRow>(
        `SELECT id, alert_id, seq, payload, (extract(epoch FROM created_at) * 1000)::float8 AS created_ms
         FROM alert_outbox head
         WHERE delivered_at IS NULL AND ($2::timestamptz IS NULL OR created_at <= $2::timestamptz)
           AND NOT EXISTS (SELECT 1 FROM alert_outbox earlier
                           WHERE earlier.alert_id = head.alert_id AND earlier.seq < head.seq AND earlier.delivered_at IS NULL)
         ORDER BY created_at, seq, id
         FOR UPDATE SKIP LOCKED LIMIT $1`,
        [limit, createdUntil ?? null],
      );
      for (const row of locked.rows) {
        const outboxRow: OutboxRow = {
          id: String(row['id']),
          alertId: String(row['alert_id']),
          seq: Number(row['seq']),
          payload: row['payload'],
          createdAt: Number(row['created_ms']),
          lsn: undefined,
        };
        const attempts = await this.deliverWithRetries(outboxRow);
        await client.query<QueryResultRow>('UPDATE alert_outbox SET delivered_at = now(), attempts = attempts + $2 WHERE id = $1', [outboxRow.id, attempts]);
        this.counters.delivered += 1;
      }
      await client.query<QueryResultRow>('COMMIT');
      return locked.rows.length;
    } catch (cause) {
      await client.query<QueryResultRow>('ROLLBACK').catch(() => undefined);
      throw cause;
    }
  }

  // ---- logical ---------------------------------------------------------------------------

  private async runLogical(): Promise<void> {
    let failures = 0;
    while (!this.abort.signal.aborted) {
      try {
        // Rows committed before the slot existed are not in its stream: deliver those first (usually
        // none are left), one per transaction, so that a crash redelivers at most the row in flight,
        // as in the stream. Rows the stream brings again are skipped.
        while ((await this.pollOnce(this.catchUpUntil, 1)) > 0) if (this.abort.signal.aborted) return;
        await this.stream(() => {
          failures = 0;
        });
      } catch (cause) {
        await this.endStream();
        if (cause instanceof Stopped) return;
        failures += 1;
        await this.lostConnection(cause, failures);
      }
    }
  }

  /**
   * One replication session: START_REPLICATION from the slot's confirmed position (the server's
   * choice, never a position only received), then one worker that takes the stream's messages and
   * keepalives in the order they arrived. Resolves when stopped, rejects when the session fails.
   */
  private async stream(onStarted: () => void): Promise<void> {
    const { LogicalReplicationService, PgoutputPlugin } = await loadReplication();
    // Acknowledgement is ours alone: the library's automatic one confirms what was received, not
    // what was delivered, and its timer confirms its last received LSN.
    const service = new LogicalReplicationService(this.replicationConfig(), {
      acknowledge: { auto: false, timeoutSeconds: 0 },
      flowControl: { enabled: false },
    });
    this.service = service;
    const queue: StreamItem[] = [];
    let wake: (() => void) | undefined;
    let failure: unknown;
    let paused = false;
    let busy = false;
    let inTransaction = false;
    const notify = (): void => {
      const resolve = wake;
      wake = undefined;
      resolve?.();
    };
    const fail = (cause: unknown): void => {
      failure ??= cause;
      notify();
    };
    const socket = (): { pause?: () => void; resume?: () => void } | undefined =>
      // The library keeps pg's connection private; pausing its socket is how a slow `deliver` holds
      // the server back instead of filling memory (the library's own flow control does the same).
      (service as unknown as { _connection?: { stream?: { pause?: () => void; resume?: () => void } } })._connection?.stream;
    service.on('data', (lsn: string, message: Pgoutput.Message) => {
      queue.push({ kind: 'message', lsn, message });
      if (!paused && queue.length >= QUEUE_HIGH_WATER) {
        paused = true;
        socket()?.pause?.();
      }
      notify();
    });
    service.on('heartbeat', (lsn: string, _timestamp: number, shouldRespond: boolean) => {
      if (shouldRespond) this.sendStatus(service, false);
      queue.push({ kind: 'keepalive', lsn });
      notify();
    });
    service.on('error', fail);
    service.on('start', onStarted);
    const plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: [this.publication] });
    // A fresh service starts from 0/0, which the server reads as "from the slot's confirmed_flush_lsn".
    service.subscribe(plugin, this.slot).then(
      () => fail(new Error('the replication stream ended')),
      fail,
    );
    const heartbeat = setInterval(() => {
      // Idle: ask the server for a keepalive, whose LSN the worker then confirms. Busy (a delivery
      // being retried): still report the confirmed position, so the server does not time us out.
      this.sendStatus(service, queue.length === 0 && !busy);
    }, this.heartbeatMs);
    heartbeat.unref();
    const onAbort = (): void => notify();
    this.abort.signal.addEventListener('abort', onAbort);
    try {
      for (;;) {
        if (this.abort.signal.aborted) throw new Stopped();
        if (failure !== undefined) throw failure instanceof Error ? failure : new Error(messageOf(failure));
        const item = queue.shift();
        if (item === undefined) {
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          continue;
        }
        if (paused && queue.length <= QUEUE_LOW_WATER) {
          paused = false;
          socket()?.resume?.();
        }
        if (item.kind === 'keepalive') {
          // Everything the server sent before this keepalive has been handled (the queue is in
          // arrival order), so outside a transaction its position is safe to confirm.
          if (!inTransaction && parseLsn(item.lsn) > this.confirmed) this.confirm(service, parseLsn(item.lsn));
          continue;
        }
        const message = item.message;
        if (message.tag === 'begin') {
          inTransaction = true;
        } else if (message.tag === 'insert') {
          if (message.relation.schema !== this.schema || message.relation.name !== OUTBOX_TABLE) continue;
          busy = true;
          try {
            await this.deliverStreamed(rowFromTuple(message.new, item.lsn));
          } finally {
            busy = false;
          }
        } else if (message.tag === 'commit') {
          inTransaction = false;
          // The transaction's end: every row of it is delivered. A restart begins after it.
          this.confirm(service, parseLsn(message.commitEndLsn ?? item.lsn));
        }
      }
    } finally {
      clearInterval(heartbeat);
      this.abort.signal.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Delivers one streamed row unless it is already delivered; holds its row lock meanwhile, so a
   * polling relay (or a second slot) on the same outbox cannot deliver it at the same time.
   */
  private async deliverStreamed(row: OutboxRow): Promise<void> {
    const client = await this.connect();
    // The server decodes a transaction once its commit record is flushed, which is a moment BEFORE the
    // transaction becomes visible to other sessions: a row just streamed may not be visible yet. It is
    // looked for again (a new snapshot each time) rather than taken for gone.
    const visibleBy = Date.now() + VISIBILITY_WAIT_MS;
    for (;;) {
      await client.query<QueryResultRow>('BEGIN');
      try {
        const held = await client.query<QueryResultRow>('SELECT delivered_at IS NOT NULL AS delivered FROM alert_outbox WHERE id = $1 FOR UPDATE', [row.id]);
        if (held.rows[0] === undefined && Date.now() < visibleBy) {
          await client.query<QueryResultRow>('ROLLBACK');
          await sleep(VISIBILITY_POLL_MS, this.abort.signal);
          continue;
        }
        if (held.rows[0] === undefined) {
          // Still not there (deleted by hand, or a commit that stays invisible that long): the stream
          // says it was committed, so it is delivered all the same (at least once), just not marked.
          await this.deliverWithRetries(row);
          this.counters.delivered += 1;
        } else if (held.rows[0]['delivered'] === true) {
          this.counters.skipped += 1;
        } else {
          const attempts = await this.deliverWithRetries(row);
          await client.query<QueryResultRow>('UPDATE alert_outbox SET delivered_at = now(), attempts = attempts + $2 WHERE id = $1', [row.id, attempts]);
          this.counters.delivered += 1;
        }
        await client.query<QueryResultRow>('COMMIT');
        return;
      } catch (cause) {
        await client.query<QueryResultRow>('ROLLBACK').catch(() => undefined);
        throw cause;
      }
    }
  }

  /** Confirms `lsn` as flushed: the server may recycle WAL before it and restarts the slot after it. */
  private confirm(service: LogicalReplicationService, lsn: bigint): void {
    if (lsn <= this.confirmed) return;
    this.confirmed = lsn;
    this.sendStatus(service, false);
  }

  private sendStatus(service: LogicalReplicationService, requestReply: boolean): void {
    if (this.confirmed === 0n || service.isStop()) return;
    // The library reports (its argument + 1) as written, flushed and applied; the position to
    // report is exactly the confirmed one, so it gets one less.
    void service.acknowledge(formatLsn(this.confirmed - 1n), requestReply).then(
      (sent) => {
        if (sent) this.lastConfirmedAt = Date.now();
      },
      () => undefined,
    );
  }

  private replicationConfig(): ClientConfig {
    return { connectionString: this.url, application_name: `gridpulse outbox relay ${this.slot}` };
  }

  private async endStream(): Promise<void> {
    const service = this.service;
    this.service = undefined;
    if (service === undefined) return;
    const client = (service as unknown as { _client?: { on(event: 'error', listener: () => void): unknown } | null })._client;
    await service.destroy().catch(() => undefined);
    // Stopping, the library removes every listener of its pg client; a socket error arriving after
    // that (a server going down) would otherwise be an unhandled 'error' event that ends the process.
    client?.on('error', () => undefined);
  }

  // ---- delivery and errors ---------------------------------------------------------------

  /** Calls `deliver` until it resolves; returns the number of attempts. Throws Stopped when stopped between attempts. */
  private async deliverWithRetries(row: OutboxRow): Promise<number> {
    const event = eventFromPayload(row.payload, row.id);
    for (let attempt = 1; ; attempt++) {
      if (this.abort.signal.aborted) throw new Stopped();
      try {
        await this.deliverRow({ id: row.id, alertId: row.alertId, seq: row.seq, event, createdAt: row.createdAt, attempt, lsn: row.lsn });
        return attempt;
      } catch (cause) {
        this.counters.failedAttempts += 1;
        const delay = Math.min(this.retryMaxMs, this.retryMinMs * 2 ** Math.min(attempt - 1, 20));
        this.report(
          new GpError(
            'GP_UNAVAILABLE',
            `outbox relay: delivering ${row.id} failed (attempt ${attempt}), retrying in ${delay} ms; nothing after it is delivered first: ${messageOf(cause)}`,
            { id: row.id, attempt, retryInMs: delay },
            { cause },
          ),
        );
        await sleep(delay, this.abort.signal);
      }
    }
  }

  /** A connection failed: report it, forget the connections, wait (backoff), and let the loop reconnect. */
  private async lostConnection(cause: unknown, failures: number): Promise<void> {
    this.counters.reconnects += 1;
    const delay = Math.min(this.retryMaxMs, this.retryMinMs * 2 ** Math.min(failures - 1, 20));
    this.report(asGpError(cause, `outbox relay lost PostgreSQL at ${redact(this.url)} (${this.mode ?? 'starting'}), reconnecting in ${delay} ms`));
    await this.closeClient();
    try {
      await sleep(delay, this.abort.signal);
    } catch {
      // stopped while waiting: the loop ends
    }
  }

  private report(error: GpError): void {
    try {
      this.onError(error);
    } catch {
      // A throwing error handler must not stop the relay.
    }
  }

  private async connect(): Promise<Client> {
    if (this.client !== undefined) return this.client;
    const pg = await loadPg();
    const client = new pg.Client({
      connectionString: this.url,
      application_name: 'gridpulse outbox relay',
      // synchronous_commit off: marking a row delivered need not wait for the disk. Should the server
      // crash before it flushed a mark, the row is only delivered again (same id), never lost.
      options: `-c search_path=${quoteIdentifier(this.schema)} -c synchronous_commit=off`,
    });
    // A lost server must not crash the process; the next query reports it.
    client.on('error', () => undefined);
    try {
      await client.connect();
    } catch (cause) {
      await client.end().catch(() => undefined);
      throw new GpError('GP_STORE_FAILED', `outbox relay cannot connect to PostgreSQL at ${redact(this.url)}: ${messageOf(cause)}`, { url: redact(this.url) }, { cause });
    }
    this.client = client;
    return client;
  }

  private async closeClient(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }
}

// ---- rows and payloads -------------------------------------------------------------------

function rowFromTuple(tuple: Record<string, unknown>, lsn: string): OutboxRow {
  const created = tuple['created_at'];
  return {
    id: String(tuple['id']),
    alertId: String(tuple['alert_id']),
    seq: Number(tuple['seq']),
    payload: tuple['payload'],
    createdAt: created instanceof Date ? created.getTime() : Date.parse(String(created)),
    lsn,
  };
}

/** The payload as the store wrote it ({ alert, transition }); JSON's nulls for NaN become NaN again. */
function eventFromPayload(payload: unknown, id: string): AlertEvent {
  const value = typeof payload === 'string' ? (JSON.parse(payload) as unknown) : payload;
  const alert = (value as { alert?: unknown } | null)?.alert as Record<string, unknown> | undefined;
  const transition = (value as { transition?: unknown } | null)?.transition as Record<string, unknown> | undefined;
  if (typeof alert?.['id'] !== 'string' || typeof transition?.['id'] !== 'string') {
    throw new GpError('GP_INTERNAL', `alert_outbox row ${id}: payload expected { alert, transition } with ids, got ${JSON.stringify(value)?.slice(0, 200)}`, { id });
  }
  const number = (v: unknown): number => (typeof v === 'number' ? v : Number.NaN);
  return {
    alert: { ...alert, score: number(alert['score']), peakScore: number(alert['peakScore']), value: number(alert['value']) } as unknown as Alert,
    transition: { ...transition, score: number(transition['score']) } as unknown as AlertTransition,
  };
}

// ---- small helpers -----------------------------------------------------------------------

/** An LSN `X/Y` (two 32-bit hex halves) as one number. */
function parseLsn(lsn: string): bigint {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn);
  if (match === null) throw new GpError('GP_INTERNAL', `expected an LSN like 0/16B3748, got ${JSON.stringify(lsn)}`);
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** Slots are named per cluster, so the default names the database as well as the schema. */
function defaultSlotName(database: string, schema: string): string {
  return `gridpulse_outbox_${database}_${schema}`.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 63);
}

/** The database a URL names (its path), or `postgres` when it names none. */
function databaseOf(url: string): string {
  try {
    return decodeURIComponent(new URL(url).pathname.slice(1)) || 'postgres';
  } catch {
    return 'postgres';
  }
}

function positiveInteger(value: number | undefined, fallback: number, field: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new GpError('GP_CONFIG_INVALID', `${field}: expected a positive integer, got ${String(value)}`, { field });
  }
  return value;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new Stopped());
      return;
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new Stopped());
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

async function loadPg(): Promise<(typeof import('pg'))['default']> {
  try {
    return (await import('pg')).default;
  } catch (cause) {
    throw new GpError('GP_STORE_FAILED', `the outbox relay needs the "pg" package: npm install pg (${messageOf(cause)})`, {}, { cause });
  }
}

async function loadReplication(): Promise<typeof import('pg-logical-replication')> {
  try {
    return await import('pg-logical-replication');
  } catch (cause) {
    throw new GpError('GP_STORE_FAILED', `the logical outbox relay needs the "pg-logical-replication" package: npm install pg-logical-replication (${messageOf(cause)})`, {}, { cause });
  }
}


/** Server URLs may carry a password; it never goes into a message or a log. */
function redact(url: string): string {
  return url.replace(/\/\/([^/@:]*):[^/@]*@/, '//$1:***@');
}

function messageOf(cause: unknown): string {
  if (cause instanceof AggregateError && cause.errors.length > 0) return cause.errors.map(messageOf).join('; ');
  return cause instanceof Error ? cause.message : String(cause);
}

function asGpError(cause: unknown, context: string): GpError {
  if (cause instanceof GpError) return cause;
  return new GpError('GP_STORE_FAILED', `${context}: ${messageOf(cause)}`, {}, { cause });
}

function stoppedError(): GpError {
  return new GpError('GP_INTERNAL', 'the outbox relay is stopped: create a new one to relay again');
}
