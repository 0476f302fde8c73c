// Operator actions (acknowledge, resolve, assign) for alerts held by another process. In a Kafka
// deployment the alerts live in the alert managers of `gridpulse process` members, one per owned
// partition, while `gridpulse up --store postgres://…` serves the API and dashboard from the shared
// store. An action the platform's own engine cannot apply is queued in the table `alert_actions`
// of that database; the member whose engine holds the alert claims it, applies it, checkpoints the
// partition (operator actions are not in the input log) and marks it done; the API waits for that.
import { hostname } from 'node:os';
import type { ForwardedActionRequest, ForwardedAlertAction } from '../api/index.js';
import { GpError, type Alert, type AlertStatus } from '../model/index.js';
import { openPgTables, type PgPool } from './pg-tables.js';

export type QueuedActionKind = 'acknowledge' | 'resolve' | 'assign';

/** An operator action as the API received it. */
export interface QueuedAction {
  alertId: string;
  action: QueuedActionKind;
  by: string | undefined;
  note: string | undefined;
  /** For `assign`. */
  assignee?: string | undefined;
}

/** What became of a queued action. */
export type ActionOutcome = 'applied' | 'refused' | 'cancelled';

export interface StoredAction extends QueuedAction {
  id: number;
  requestedAt: number;
  /** The member that took it (`host:pid`), while or after it applies it. */
  claimedBy: string | undefined;
  claimedAt: number | undefined;
  /** Undefined while pending. */
  outcome: ActionOutcome | undefined;
  doneAt: number | undefined;
  /** The alert's status after the action was applied or refused. */
  statusAfter: AlertStatus | undefined;
  /** The alert after the action, as the member that applied it had it. */
  alert: Alert | undefined;
  message: string | undefined;
}

/**
 * The queue of operator actions of one PostgreSQL store (the table goes to the store's schema,
 * `?schema=` of the URL, beside the store's tables and the engine checkpoints).
 *
 * Lifecycle of an action: `enqueue` (pending) → a member that holds the alert `claim`s it (a claim
 * is a lease: one whose member died is taken again after `leaseMs`) → `complete` (applied or
 * refused). The requester `cancel`s an action nobody claimed in time; a claimed action cannot be
 * cancelled (it may be applied already), so the requester waits for its outcome.
 *
 * @example
 * const queue = createAlertActionQueue('postgres://db/gridpulse');
 * await queue.ready();
 * const id = await queue.enqueue({ alertId, action: 'acknowledge', by: 'ana', note: undefined });
 */
export interface AlertActionQueue {
  /** Who this process is in `claimedBy` (`host:pid`). */
  readonly member: string;
  ready(): Promise<void>;
  enqueue(action: QueuedAction): Promise<number>;
  /** Pending actions nobody holds a live claim on, oldest first. */
  claimable(limit: number): Promise<StoredAction[]>;
  /** Takes the action for this process; false when another process has it or it is done. */
  claim(id: number): Promise<boolean>;
  /** Records the outcome of an action this process claimed; false when it is not its claim any more. */
  complete(id: number, outcome: 'applied' | 'refused', statusAfter: AlertStatus | undefined, details?: { alert?: Alert | undefined; message?: string | undefined }): Promise<boolean>;
  /** Cancels an action nobody claimed; false when it was claimed or is done. */
  cancel(id: number): Promise<boolean>;
  get(id: number): Promise<StoredAction | undefined>;
  /** Deletes actions done more than `olderThanMs` ago. */
  prune(olderThanMs: number): Promise<number>;
  close(): Promise<void>;
}

/** True for a URL whose store can hold the queue (one PostgreSQL store, not a fan-out). */
export function canQueueAlertActions(storeUrl: string): boolean {
  return /^postgres(ql)?:\/\//i.test(storeUrl.trim()) && !storeUrl.includes(',');
}

export function createAlertActionQueue(storeUrl: string, options: { leaseMs?: number; member?: string } = {}): AlertActionQueue {
  if (!canQueueAlertActions(storeUrl)) throw new GpError('GP_INTERNAL', 'alert actions are queued in a PostgreSQL store only');
  return new PostgresActionQueue(storeUrl.trim(), options.leaseMs ?? 30_000, options.member ?? `${hostname()}:${process.pid}`);
}

const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS alert_actions (
  id BIGSERIAL PRIMARY KEY,
  alert_id TEXT NOT NULL,
  action TEXT NOT NULL CHECK (action IN ('acknowledge', 'resolve', 'assign')),
  actor TEXT,
  note TEXT,
  assignee TEXT,
  requested_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  claimed_by TEXT,
  claimed_at TIMESTAMPTZ,
  outcome TEXT CHECK (outcome IN ('applied', 'refused', 'cancelled')),
  done_at TIMESTAMPTZ,
  status_after TEXT,
  alert TEXT,
  message TEXT
)`;
const CREATE_INDEX = `CREATE INDEX IF NOT EXISTS alert_actions_pending ON alert_actions (id) WHERE done_at IS NULL`;
const COLUMNS = `id, alert_id, action, actor, note, assignee, claimed_by, outcome, status_after, alert, message,
  (extract(epoch from requested_at) * 1000)::double precision AS requested,
  (extract(epoch from claimed_at) * 1000)::double precision AS claimed,
  (extract(epoch from done_at) * 1000)::double precision AS done`;

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function time(value: unknown): number | undefined {
  return value === null || value === undefined ? undefined : Number(value);
}

function fromRow(row: Record<string, unknown>): StoredAction {
  return {
    id: Number(row.id),
    alertId: text(row.alert_id) ?? '',
    action: text(row.action) as QueuedActionKind,
    by: text(row.actor),
    note: text(row.note),
    assignee: text(row.assignee),
    requestedAt: Number(row.requested),
    claimedBy: text(row.claimed_by),
    claimedAt: time(row.claimed),
    outcome: text(row.outcome) as ActionOutcome | undefined,
    doneAt: time(row.done),
    statusAfter: text(row.status_after) as AlertStatus | undefined,
    alert: typeof row.alert === 'string' ? (JSON.parse(row.alert) as Alert) : undefined,
    message: text(row.message),
  };
}

class PostgresActionQueue implements AlertActionQueue {
  private pool: PgPool | undefined;
  private opening: Promise<void> | undefined;
  private readonly where: string;

  constructor(
    private readonly url: string,
    private readonly leaseMs: number,
    readonly member: string,
  ) {
    this.where = `table alert_actions of ${url.replace(/\/\/[^@/]*@/, '//***@')}`;
  }

  ready(): Promise<void> {
    this.opening ??= (async () => {
      let pool: PgPool;
      try {
        pool = await openPgTables(this.url, [CREATE_TABLE, CREATE_INDEX]);
      } catch (cause) {
        this.opening = undefined;
        throw new GpError('GP_UNAVAILABLE', `alert actions: cannot create the ${this.where}: ${(cause as Error).message}`, {}, { cause });
      }
      this.pool = pool;
    })();
    return this.opening;
  }

  private async run(what: string, sql: string, values: unknown[]): Promise<{ rows: Array<Record<string, unknown>>; rowCount: number | null }> {
    if (this.pool === undefined) throw new GpError('GP_INTERNAL', 'alert actions: await ready() first');
    try {
      return await this.pool.query(sql, values);
    } catch (cause) {
      throw new GpError('GP_UNAVAILABLE', `alert actions: cannot ${what} in the ${this.where}: ${(cause as Error).message}`, {}, { cause });
    }
  }

  async enqueue(action: QueuedAction): Promise<number> {
    const { rows } = await this.run('queue an action', `INSERT INTO alert_actions (alert_id, action, actor, note, assignee) VALUES ($1, $2, $3, $4, $5) RETURNING id`, [
      action.alertId,
      action.action,
      action.by ?? null,
      action.note ?? null,
      action.assignee ?? null,
    ]);
    return Number(rows[0]!.id);
  }

  async claimable(limit: number): Promise<StoredAction[]> {
    const { rows } = await this.run(
      'read pending actions',
      `SELECT ${COLUMNS} FROM alert_actions WHERE done_at IS NULL AND (claimed_at IS NULL OR claimed_at < now() - $1 * interval '1 millisecond') ORDER BY id LIMIT $2`,
      [this.leaseMs, limit],
    );
    return rows.map(fromRow);
  }

  async claim(id: number): Promise<boolean> {
    const { rowCount } = await this.run(
      'claim an action',
      `UPDATE alert_actions SET claimed_by = $2, claimed_at = now() WHERE id = $1 AND done_at IS NULL AND (claimed_at IS NULL OR claimed_at < now() - $3 * interval '1 millisecond')`,
      [id, this.member, this.leaseMs],
    );
    return rowCount === 1;
  }

  async complete(id: number, outcome: 'applied' | 'refused', statusAfter: AlertStatus | undefined, details: { alert?: Alert | undefined; message?: string | undefined } = {}): Promise<boolean> {
    const { rowCount } = await this.run(
      'record an outcome',
      `UPDATE alert_actions SET outcome = $3, status_after = $4, alert = $5, message = $6, done_at = now() WHERE id = $1 AND claimed_by = $2 AND done_at IS NULL`,
      [id, this.member, outcome, statusAfter ?? null, details.alert === undefined ? null : JSON.stringify(details.alert), details.message ?? null],
    );
    return rowCount === 1;
  }

  async cancel(id: number): Promise<boolean> {
    const { rowCount } = await this.run('cancel an action', `UPDATE alert_actions SET outcome = 'cancelled', done_at = now() WHERE id = $1 AND done_at IS NULL AND claimed_at IS NULL`, [id]);
    return rowCount === 1;
  }

  async get(id: number): Promise<StoredAction | undefined> {
    const { rows } = await this.run('read an action', `SELECT ${COLUMNS} FROM alert_actions WHERE id = $1`, [id]);
    return rows[0] === undefined ? undefined : fromRow(rows[0]);
  }

  async prune(olderThanMs: number): Promise<number> {
    const { rowCount } = await this.run('prune done actions', `DELETE FROM alert_actions WHERE done_at < now() - $1 * interval '1 millisecond'`, [olderThanMs]);
    return rowCount ?? 0;
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    this.opening = undefined;
    await pool?.end();
  }
}

/** How long `forwardAlertAction` waits: for a process to claim the action, and in all. */
export interface ForwardWaits {
  claimWaitMs: number;
  totalWaitMs: number;
  pollMs: number;
}

export const DEFAULT_FORWARD_WAITS: ForwardWaits = { claimWaitMs: 10_000, totalWaitMs: 60_000, pollMs: 200 };

/**
 * Queues an action and waits for its outcome: applied or refused by the process holding the alert;
 * withdrawn (nothing changed) when no process claimed it within `claimWaitMs`; still pending after
 * `totalWaitMs` once claimed (it cannot be withdrawn then: it may be applied already).
 */
export async function forwardAlertAction(queue: AlertActionQueue, request: ForwardedActionRequest, waits: ForwardWaits = DEFAULT_FORWARD_WAITS): Promise<ForwardedAlertAction> {
  await queue.ready();
  const id = await queue.enqueue({ alertId: request.id, action: request.action, by: request.by, note: request.note, assignee: request.assignee });
  const started = Date.now();
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, waits.pollMs));
    const row = await queue.get(id);
    const waitedMs = Date.now() - started;
    if (row?.outcome === 'applied' && row.alert !== undefined) return { outcome: 'applied', alert: row.alert };
    if (row?.outcome === 'refused') return { outcome: 'refused', status: row.statusAfter, message: row.message };
    if (row === undefined || row.outcome !== undefined) return { outcome: 'unclaimed', waitedMs };
    if (row.claimedBy === undefined && waitedMs >= waits.claimWaitMs && (await queue.cancel(id))) return { outcome: 'unclaimed', waitedMs };
    if (row.claimedBy !== undefined && waitedMs >= waits.totalWaitMs) return { outcome: 'pending', claimedBy: row.claimedBy, waitedMs };
  }
}
