import { mkdir, open, readFile, rename, truncate, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { GpError } from '../../model/index.js';
import type { AlertEvent } from '../../model/index.js';
import { errorMessage, type TemplateName } from './channel.js';
import type { IncidentNotice } from './incident-grouper.js';

/**
 * A notification that was not delivered and will not be retried by itself: its attempts ran
 * out, the receiver refused it for good, its channel was disabled (410), or the worker closed
 * first. It keeps the whole alert event, so a manual redelivery sends the same body with the same
 * `webhook-id`.
 */
export interface DeadLetter {
  /** `${channel}:${transitionId}` — one entry per channel and transition. */
  readonly id: string;
  readonly channel: string;
  /** The notification id (the webhook-id): a transition id, or an incident notice id like `in_…:opened`. */
  readonly transitionId: string;
  /** The alert id; the incident id (`in_…`) for an incident notice. */
  readonly alertId: string;
  readonly template: TemplateName;
  /** The transition; for an incident notice, the event that routed it. */
  readonly event: AlertEvent;
  /** Set for a site incident notification: redelivered with the same incident body. */
  readonly incident?: IncidentNotice | undefined;
  /** Why it was given up, e.g. `gave up after 8 attempts: HTTP 503 from https://hooks.example.com`. */
  readonly reason: string;
  /** HTTP status of the last attempt, when there was one. */
  readonly status: number | undefined;
  /** Attempts made so far, manual redeliveries included. */
  readonly attempts: number;
  /** Wall-clock epoch ms of the first attempt and of the moment it was dead-lettered. */
  readonly firstAttemptAt: number;
  readonly deadLetteredAt: number;
}

export interface DeadLetterFilter {
  readonly channel?: string;
  /** At most this many, oldest first. */
  readonly limit?: number;
}

/**
 * Where dead letters are kept until an operator redelivers or discards them. Adding an entry
 * whose id is already there replaces it (a redelivery that failed again). The in-memory store is
 * for tests and `deadLetters: memory`; the file store keeps them across restarts.
 *
 * Deliberately left out: delivery itself — `DeliveryWorker.redeliver(id)` reads an entry, sends
 * it, and removes it on success.
 */
export interface DeadLetterStore {
  ready(): Promise<void>;
  add(entry: DeadLetter): Promise<void>;
  /** Oldest first (by when each entry was last added). */
  list(filter?: DeadLetterFilter): Promise<DeadLetter[]>;
  get(id: string): Promise<DeadLetter | undefined>;
  /** True when there was such an entry. */
  remove(id: string): Promise<boolean>;
  /** Number of entries. */
  size(): Promise<number>;
  close(): Promise<void>;
}

export function deadLetterId(channel: string, transitionId: string): string {
  return `${channel}:${transitionId}`;
}

/**
 * Dead letters in memory: gone when the process ends.
 *
 * @example
 * const deadLetters = createMemoryDeadLetterStore();
 */
export function createMemoryDeadLetterStore(): DeadLetterStore {
  const entries = new Map<string, DeadLetter>();
  return {
    ready: () => Promise.resolve(),
    add(entry) {
      entries.delete(entry.id);
      entries.set(entry.id, entry);
      return Promise.resolve();
    },
    list: (filter) => Promise.resolve(select([...entries.values()], filter)),
    get: (id) => Promise.resolve(entries.get(id)),
    remove: (id) => Promise.resolve(entries.delete(id)),
    size: () => Promise.resolve(entries.size),
    close: () => Promise.resolve(),
  };
}

export interface FileDeadLetterStoreOptions {
  /** The JSON-lines file, e.g. `<dataDir>/alerts/dead-letters.jsonl`; its directory is created. */
  readonly path: string;
  /** Rewrite the file once it holds this many lines more than live entries. Default 1000. */
  readonly compactAfter?: number;
}

type FileRecord = { op: 'add'; entry: DeadLetter } | { op: 'remove'; id: string };

/**
 * Dead letters in a JSON-lines file: each change is one appended line (`{"op":"add","entry":…}`
 * or `{"op":"remove","id":…}`) written and synced before the call returns, so an entry survives a
 * crash. On `ready()` the file is read back; a torn last line (a crash while writing) is
 * ignored. The file is rewritten (to a temporary file, then renamed) when most lines are stale.
 *
 * @example
 * const deadLetters = createFileDeadLetterStore({ path: join(config.dataDir, 'alerts', 'dead-letters.jsonl') });
 * await deadLetters.ready();
 */
export function createFileDeadLetterStore(options: FileDeadLetterStoreOptions): DeadLetterStore {
  const path = options.path;
  const compactAfter = options.compactAfter ?? 1000;
  const entries = new Map<string, DeadLetter>();
  let handle: FileHandle | undefined;
  let lines = 0;
  let opened: Promise<void> | undefined;
  let closed = false;
  // Writes go one after the other, in call order.
  let queue: Promise<unknown> = Promise.resolve();

  function failure(action: string, error: unknown): GpError {
    return new GpError('GP_STORE_FAILED', `dead letters: cannot ${action} ${path}: ${errorMessage(error)}`, { path }, { cause: error });
  }

  async function load(): Promise<void> {
    try {
      await mkdir(dirname(path), { recursive: true });
    } catch (error) {
      throw failure('create the directory of', error);
    }
    let text = '';
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw failure('read', error);
    }
    const rows = text.split('\n');
    // Bytes up to the end of the last whole record: a torn tail is cut off before appending.
    let goodBytes = 0;
    let tornTail = false;
    for (const [index, row] of rows.entries()) {
      const rowBytes = Buffer.byteLength(row) + (index < rows.length - 1 ? 1 : 0);
      if (row.trim() === '') {
        goodBytes += rowBytes;
        continue;
      }
      let record: FileRecord;
      try {
        record = JSON.parse(row) as FileRecord;
      } catch (error) {
        // Only the last line can be torn by a crash; anything else is damage someone must look at.
        if (rows.slice(index + 1).every((rest) => rest.trim() === '')) {
          tornTail = true;
          break;
        }
        throw new GpError('GP_STORE_FAILED', `dead letters: ${path} line ${index + 1}: expected a JSON record, got unreadable text`, { path, line: index + 1 }, { cause: error });
      }
      goodBytes += rowBytes;
      lines += 1;
      if (record.op === 'add') {
        entries.delete(record.entry.id);
        entries.set(record.entry.id, revive(record.entry));
      } else if (record.op === 'remove') {
        entries.delete(record.id);
      }
    }
    try {
      if (tornTail) await truncate(path, goodBytes);
      handle = await open(path, 'a');
      // A whole record whose newline was not written yet: end it, or the next record would join it.
      if (!tornTail && text !== '' && !text.endsWith('\n')) await handle.appendFile('\n');
    } catch (error) {
      throw failure('open', error);
    }
    if (lines - entries.size >= compactAfter) await compact();
  }

  async function compact(): Promise<void> {
    const temporary = join(dirname(path), `.${Date.now()}-${process.pid}.dead-letters.tmp`);
    try {
      const out = await open(temporary, 'w');
      try {
        await out.appendFile([...entries.values()].map((entry) => `${JSON.stringify({ op: 'add', entry })}\n`).join(''));
        await out.sync();
      } finally {
        await out.close();
      }
      await handle?.close();
      await rename(temporary, path);
      handle = await open(path, 'a');
      lines = entries.size;
    } catch (error) {
      throw failure('rewrite', error);
    }
  }

  async function append(record: FileRecord): Promise<void> {
    await ready();
    if (closed || handle === undefined) throw new GpError('GP_STORE_FAILED', `dead letters: ${path} is closed`, { path });
    const write = queue.then(async () => {
      try {
        await handle?.appendFile(`${JSON.stringify(record)}\n`);
        await handle?.datasync();
      } catch (error) {
        throw failure('write', error);
      }
      lines += 1;
      if (lines - entries.size >= compactAfter) await compact();
    });
    queue = write.catch(() => undefined);
    await write;
  }

  function ready(): Promise<void> {
    opened ??= load();
    return opened;
  }

  return {
    ready,
    async add(entry) {
      await ready();
      entries.delete(entry.id);
      entries.set(entry.id, entry);
      await append({ op: 'add', entry });
    },
    async list(filter) {
      await ready();
      return select([...entries.values()], filter);
    },
    async get(id) {
      await ready();
      return entries.get(id);
    },
    async remove(id) {
      await ready();
      if (!entries.delete(id)) return false;
      await append({ op: 'remove', id });
      return true;
    },
    async size() {
      await ready();
      return entries.size;
    },
    async close() {
      if (closed) return;
      closed = true;
      await queue;
      await handle?.close();
      handle = undefined;
    },
  };
}

/** JSON leaves out keys whose value is undefined; put them back so an entry read from the file equals the one written. */
function revive(entry: DeadLetter): DeadLetter {
  const alert = { ...entry.event.alert, site: entry.event.alert.site, metric: entry.event.alert.metric, resolvedAt: entry.event.alert.resolvedAt };
  return { ...entry, status: entry.status, event: { ...entry.event, alert } };
}

function select(entries: DeadLetter[], filter: DeadLetterFilter | undefined): DeadLetter[] {
  const matching = filter?.channel === undefined ? entries : entries.filter((entry) => entry.channel === filter.channel);
  return filter?.limit === undefined ? matching : matching.slice(0, Math.max(0, filter.limit));
}
