// Where `gridpulse process` keeps the engine checkpoints of the Kafka partitions it owns: one
// checkpoint = a partition's keyed state (timers, windows, detectors, alert managers) and the offset
// of the next record to read, written together. Files in the data directory for a single process;
// a PostgreSQL table when several processes share the partitions (any of them may restore any).
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { GpError } from '../model/index.js';
import { openPgTables, type PgPool } from './pg-tables.js';

/** One stored checkpoint of one partition; `state` is the text as written (parsed by the caller). */
export interface StoredCheckpoint {
  topic: string;
  partition: number;
  /** Grows by one per checkpoint of the partition: the newest is the highest. */
  version: number;
  /** The next record to read: everything before it is in `state` and in the sinks. */
  offset: number;
  state: string;
  createdAt: number;
  /** The partition was read to the end of a bounded run and its windows closed (`save(…, { finished: true })`). */
  finished: boolean;
}

/** A partition that some checkpoint of the group marks finished. */
export interface FinishedPartition {
  topic: string;
  partition: number;
}

/**
 * The checkpoints of one consumer group. `versions` lists a partition's checkpoints newest first,
 * so a caller that finds the newest corrupt (it does not parse, or the engine refuses it) falls
 * back to the one before. `save` writes atomically: a reader sees the whole checkpoint or none.
 * The store keeps the newest `keep` (default 3) checkpoints per partition. `shared`: every member
 * of the group reads and writes the same checkpoints (PostgreSQL); files are one process's own.
 *
 * Lifecycle: create → `ready()` → use → `close()` (idempotent).
 *
 * @example
 * const checkpoints = createCheckpointStore({ url: 'postgres://db/gridpulse', dataDir: './data', group: 'engine' });
 * await checkpoints.ready();
 * const version = await checkpoints.save('power-usage-raw', 0, 1200, JSON.stringify(state));
 * for await (const checkpoint of checkpoints.versions('power-usage-raw', 0)) { ... }
 */
export interface CheckpointStore {
  readonly kind: 'files' | 'postgres';
  readonly shared: boolean;
  /** Where the checkpoints are, for messages (no password). */
  readonly where: string;
  ready(): Promise<void>;
  save(topic: string, partition: number, offset: number, state: string, options?: { finished?: boolean }): Promise<number>;
  /** The partition's checkpoints, newest first; each read only when the caller asks for it. */
  versions(topic: string, partition: number): AsyncGenerator<StoredCheckpoint | { version: number; unreadable: string }>;
  /**
   * The partitions of `topics` with a kept checkpoint marked finished (without reading the states):
   * in a bounded run, a member is done when every partition is, whoever finished it.
   */
  finishedPartitions(topics: readonly string[]): Promise<FinishedPartition[]>;
  close(): Promise<void>;
}

export interface CheckpointStoreOptions {
  /** The engine store's URL: a postgres:// URL puts the checkpoints in that database, anything else in files. */
  url: string;
  dataDir: string;
  group: string;
  keep?: number | undefined;
  clock?: (() => number) | undefined;
}

export function createCheckpointStore(options: CheckpointStoreOptions): CheckpointStore {
  const keep = options.keep ?? 3;
  const clock = options.clock ?? Date.now;
  if (/^postgres(ql)?:\/\//i.test(options.url.trim()) && !options.url.includes(',')) return new PostgresCheckpoints(options.url.trim(), options.group, keep, clock);
  return new FileCheckpoints(join(options.dataDir, 'checkpoints', 'kafka', safeName(options.group)), keep, clock);
}

function safeName(text: string): string {
  return text.replace(/[^A-Za-z0-9._-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

// ---- files -----------------------------------------------------------------------------------

const FILE_PATTERN = /^checkpoint-(\d{12})\.json$/;

class FileCheckpoints implements CheckpointStore {
  readonly kind = 'files' as const;
  readonly shared = false;
  readonly where: string;

  constructor(
    private readonly dir: string,
    private readonly keep: number,
    private readonly clock: () => number,
  ) {
    this.where = `files in ${dir}`;
  }

  async ready(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
  }

  private partitionDir(topic: string, partition: number): string {
    return join(this.dir, `${safeName(topic)}-${partition}`);
  }

  private async names(dir: string): Promise<string[]> {
    try {
      return (await readdir(dir)).filter((name) => FILE_PATTERN.test(name)).sort();
    } catch {
      return [];
    }
  }

  async save(topic: string, partition: number, offset: number, state: string, options: { finished?: boolean } = {}): Promise<number> {
    const dir = this.partitionDir(topic, partition);
    await mkdir(dir, { recursive: true });
    const names = await this.names(dir);
    const last = names.at(-1);
    const version = last === undefined ? 1 : Number(FILE_PATTERN.exec(last)![1]) + 1;
    const name = `checkpoint-${String(version).padStart(12, '0')}.json`;
    const tmp = join(dir, `${name}.tmp`);
    const file = await open(tmp, 'w');
    try {
      // The header line is small and read first; the state follows as it was given.
      await file.writeFile(`${JSON.stringify({ topic, partition, version, offset, createdAt: this.clock(), finished: options.finished === true })}\n${state}`);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, join(dir, name));
    const directory = await open(dir, 'r');
    try {
      await directory.sync();
    } finally {
      await directory.close();
    }
    for (const old of [...names, name].slice(0, -this.keep)) await rm(join(dir, old), { force: true });
    return version;
  }

  async *versions(topic: string, partition: number): AsyncGenerator<StoredCheckpoint | { version: number; unreadable: string }> {
    const dir = this.partitionDir(topic, partition);
    const names = (await this.names(dir)).reverse();
    for (const name of names) {
      const version = Number(FILE_PATTERN.exec(name)![1]);
      try {
        const text = await readFile(join(dir, name), 'utf8');
        const newline = text.indexOf('\n');
        if (newline < 0) throw new Error('no header line');
        const header = JSON.parse(text.slice(0, newline)) as Partial<StoredCheckpoint>;
        if (header.topic !== topic || header.partition !== partition || header.version !== version || !Number.isSafeInteger(header.offset)) {
          throw new Error(`header ${text.slice(0, Math.min(newline, 200))} does not describe version ${version} of ${topic}/${partition}`);
        }
        yield { topic, partition, version, offset: header.offset!, state: text.slice(newline + 1), createdAt: Number(header.createdAt), finished: header.finished === true };
      } catch (error) {
        yield { version, unreadable: `${join(dir, name)}: ${(error as Error).message}` };
      }
    }
  }

  async finishedPartitions(topics: readonly string[]): Promise<FinishedPartition[]> {
    const found: FinishedPartition[] = [];
    let entries: string[];
    try {
      entries = await readdir(this.dir);
    } catch {
      return found;
    }
    for (const topic of topics) {
      const prefix = `${safeName(topic)}-`;
      for (const entry of entries) {
        if (!entry.startsWith(prefix) || !/^\d+$/.test(entry.slice(prefix.length))) continue;
        const partition = Number(entry.slice(prefix.length));
        for (const name of await this.names(join(this.dir, entry))) {
          if ((await this.header(join(this.dir, entry, name)))?.finished === true) {
            found.push({ topic, partition });
            break;
          }
        }
      }
    }
    return found;
  }

  /** The header line of a checkpoint file (its first line), or undefined when it cannot be read. */
  private async header(path: string): Promise<Partial<StoredCheckpoint> | undefined> {
    try {
      const file = await open(path, 'r');
      try {
        const { buffer, bytesRead } = await file.read(Buffer.alloc(4096), 0, 4096, 0);
        const text = buffer.subarray(0, bytesRead).toString('utf8');
        const newline = text.indexOf('\n');
        return newline < 0 ? undefined : (JSON.parse(text.slice(0, newline)) as Partial<StoredCheckpoint>);
      } finally {
        await file.close();
      }
    } catch {
      return undefined;
    }
  }

  async close(): Promise<void> {
    // Nothing is held open between calls.
  }
}

// ---- PostgreSQL ------------------------------------------------------------------------------

const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS engine_checkpoints (
  "group" TEXT NOT NULL,
  topic TEXT NOT NULL,
  "partition" INTEGER NOT NULL,
  version BIGINT NOT NULL,
  "offset" BIGINT NOT NULL,
  state TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL,
  finished BOOLEAN NOT NULL DEFAULT false,
  PRIMARY KEY ("group", topic, "partition", version)
)`;

const ADD_FINISHED = `ALTER TABLE engine_checkpoints ADD COLUMN IF NOT EXISTS finished BOOLEAN NOT NULL DEFAULT false`;

class PostgresCheckpoints implements CheckpointStore {
  readonly kind = 'postgres' as const;
  readonly shared = true;
  readonly where: string;
  private pool: PgPool | undefined;
  private opening: Promise<void> | undefined;

  constructor(
    private readonly url: string,
    private readonly group: string,
    private readonly keep: number,
    private readonly clock: () => number,
  ) {
    this.where = `table engine_checkpoints of ${url.replace(/\/\/[^@/]*@/, '//***@')}`;
  }

  ready(): Promise<void> {
    this.opening ??= (async () => {
      let pool: PgPool;
      try {
        // The table goes to the store's schema (`?schema=` of the URL), beside the store's own
        // tables; a table made by an earlier version gets the finished column.
        pool = await openPgTables(this.url, [CREATE_TABLE, ADD_FINISHED]);
      } catch (cause) {
        throw new GpError('GP_UNAVAILABLE', `checkpoint store: cannot create engine_checkpoints in ${this.where}: ${(cause as Error).message}`, {}, { cause });
      }
      this.pool = pool;
    })();
    return this.opening;
  }

  private connected(): PgPool {
    if (this.pool === undefined) throw new GpError('GP_INTERNAL', 'checkpoint store: await ready() first');
    return this.pool;
  }

  async save(topic: string, partition: number, offset: number, state: string, options: { finished?: boolean } = {}): Promise<number> {
    const pool = this.connected();
    // The version is the partition's newest plus one, in the same statement; two writers racing on
    // one version meet the primary key, and the loser takes the next.
    for (let attempt = 0; ; attempt++) {
      try {
        const { rows } = await pool.query(
          `INSERT INTO engine_checkpoints ("group", topic, "partition", version, "offset", state, created_at, finished)
           SELECT $1, $2, $3, COALESCE(MAX(version), 0) + 1, $4, $5, to_timestamp($6::double precision / 1000), $7
           FROM engine_checkpoints WHERE "group" = $1 AND topic = $2 AND "partition" = $3
           RETURNING version`,
          [this.group, topic, partition, offset, state, this.clock(), options.finished === true],
        );
        const version = Number(rows[0]!.version);
        // Finished marks stay (one per partition and bounded run): stale writes of former owners
        // after the finishing one must not push the group's end-of-run evidence out.
        await pool.query(`DELETE FROM engine_checkpoints WHERE "group" = $1 AND topic = $2 AND "partition" = $3 AND version <= $4 AND NOT finished`, [this.group, topic, partition, version - this.keep]);
        return version;
      } catch (error) {
        if ((error as { code?: string }).code === '23505' && attempt < 5) continue;
        throw new GpError('GP_UNAVAILABLE', `checkpoint store: cannot write the checkpoint of ${topic}/${partition} to ${this.where}: ${(error as Error).message}`, {}, { cause: error });
      }
    }
  }

  async *versions(topic: string, partition: number): AsyncGenerator<StoredCheckpoint | { version: number; unreadable: string }> {
    const pool = this.connected();
    const { rows } = await pool.query(`SELECT version FROM engine_checkpoints WHERE "group" = $1 AND topic = $2 AND "partition" = $3 ORDER BY version DESC`, [this.group, topic, partition]);
    for (const { version } of rows) {
      const { rows: found } = await pool.query(
        `SELECT "offset", state, (extract(epoch from created_at) * 1000)::double precision AS created, finished FROM engine_checkpoints WHERE "group" = $1 AND topic = $2 AND "partition" = $3 AND version = $4`,
        [this.group, topic, partition, version],
      );
      const row = found[0];
      if (row === undefined) {
        yield { version: Number(version), unreadable: `version ${String(version)} was removed meanwhile` };
        continue;
      }
      yield { topic, partition, version: Number(version), offset: Number(row.offset), state: String(row.state), createdAt: Number(row.created), finished: row.finished === true };
    }
  }

  async finishedPartitions(topics: readonly string[]): Promise<FinishedPartition[]> {
    const { rows } = await this.connected().query(`SELECT DISTINCT topic, "partition" FROM engine_checkpoints WHERE "group" = $1 AND topic = ANY($2::text[]) AND finished`, [this.group, [...topics]]);
    return rows.map((row) => ({ topic: String(row.topic), partition: Number(row.partition) }));
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.end();
  }
}
