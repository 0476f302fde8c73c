import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { GpError } from '../model/index.js';
import { fsyncDirectory, ioError } from './files.js';

/** Consumer names become file names: letters, digits and `._:@-`, not starting with a dot, at most 200 characters. */
export const CONSUMER_NAME_PATTERN = /^[A-Za-z0-9_:@-][A-Za-z0-9._:@-]{0,199}$/;

export function checkConsumerName(consumer: unknown, field: string): string {
  if (typeof consumer !== 'string' || !CONSUMER_NAME_PATTERN.test(consumer)) {
    throw new GpError(
      'GP_INPUT_INVALID',
      `${field}: expected a consumer name of letters, digits and ._:@- (not starting with ".", at most 200 characters), got ${JSON.stringify(consumer) ?? String(consumer)}`,
      { field },
    );
  }
  return consumer;
}

interface ConsumerState {
  durable: Map<number, number>;
  /** Offsets committed but not yet written, and the callers waiting for them. */
  pending: Map<number, number>;
  waiting: Array<{ resolve: () => void; reject: (error: unknown) => void }>;
  writing: boolean;
}

/**
 * Committed consumer offsets: one small JSON file per consumer in `dir`, replaced atomically
 * (write a temporary file, fsync, rename, fsync the directory). Commits of one consumer that
 * arrive while its file is being written are coalesced into the next write.
 */
export class ConsumerOffsets {
  private readonly consumers = new Map<string, ConsumerState>();
  private readonly writes = new Set<Promise<void>>();

  constructor(private readonly dir: string) {}

  async load(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    for (const name of await readdir(this.dir)) {
      const path = join(this.dir, name);
      // A temporary file is a write that never got renamed: the previous file is still valid.
      if (name.endsWith('.tmp')) {
        await unlink(path);
        continue;
      }
      if (!name.endsWith('.json')) continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(await readFile(path, 'utf8'));
      } catch (cause) {
        throw ioError(`consumer offsets file ${path} is unreadable: ${messageOf(cause)}`, { path }, cause);
      }
      const consumer = name.slice(0, -'.json'.length);
      const offsets = (parsed as { offsets?: unknown } | null)?.offsets;
      if (typeof offsets !== 'object' || offsets === null) throw ioError(`consumer offsets file ${path} has no "offsets" object`, { path });
      const durable = new Map<number, number>();
      for (const [partition, next] of Object.entries(offsets)) {
        if (!/^\d+$/.test(partition) || !Number.isSafeInteger(next) || (next as number) < 0) {
          throw ioError(`consumer offsets file ${path}: partition ${JSON.stringify(partition)} has offset ${JSON.stringify(next)}`, { path });
        }
        durable.set(Number(partition), next as number);
      }
      this.consumers.set(consumer, { durable, pending: new Map(), waiting: [], writing: false });
    }
  }

  get(consumer: string, partition: number): number | undefined {
    return this.consumers.get(consumer)?.durable.get(partition);
  }

  /** The highest committed offset of any consumer for `partition`, with the consumer's name. */
  highest(partition: number): { consumer: string; next: number } | undefined {
    let best: { consumer: string; next: number } | undefined;
    for (const [consumer, state] of this.consumers) {
      const next = state.durable.get(partition);
      if (next !== undefined && (best === undefined || next > best.next)) best = { consumer, next };
    }
    return best;
  }

  commit(consumer: string, partition: number, next: number): Promise<void> {
    let state = this.consumers.get(consumer);
    if (state === undefined) {
      state = { durable: new Map(), pending: new Map(), waiting: [], writing: false };
      this.consumers.set(consumer, state);
    }
    state.pending.set(partition, next);
    const done = new Promise<void>((resolve, reject) => state.waiting.push({ resolve, reject }));
    if (!state.writing) this.track(this.drain(consumer, state));
    return done;
  }

  /** Resolves when no write is in progress. */
  async settled(): Promise<void> {
    while (this.writes.size > 0) await Promise.all(this.writes);
  }

  private track(write: Promise<void>): void {
    this.writes.add(write);
    void write.finally(() => this.writes.delete(write));
  }

  private async drain(consumer: string, state: ConsumerState): Promise<void> {
    state.writing = true;
    while (state.pending.size > 0) {
      const next = new Map(state.durable);
      for (const [partition, offset] of state.pending) next.set(partition, offset);
      const waiting = state.waiting;
      state.pending = new Map();
      state.waiting = [];
      try {
        await this.writeFile(consumer, next);
        state.durable = next;
        for (const waiter of waiting) waiter.resolve();
      } catch (cause) {
        const error = ioError(`cannot store the offsets of consumer ${consumer} in ${this.dir}: ${messageOf(cause)}`, { consumer }, cause);
        for (const waiter of waiting) waiter.reject(error);
      }
    }
    state.writing = false;
  }

  private async writeFile(consumer: string, offsets: Map<number, number>): Promise<void> {
    const path = join(this.dir, `${consumer}.json`);
    const temporary = `${path}.tmp`;
    const sorted = [...offsets].sort((a, b) => a[0] - b[0]);
    const text = `${JSON.stringify({ consumer, offsets: Object.fromEntries(sorted) })}\n`;
    const handle = await open(temporary, 'w');
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
    await fsyncDirectory(this.dir);
  }
}

export function messageOf(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}
