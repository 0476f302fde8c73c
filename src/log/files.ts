import { open, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GpError, type ErrorCode } from '../model/index.js';

/**
 * The code of a failure of the log's files: a directory that cannot be created or written, a
 * full disk, a file changed behind the log's back. External (retriable after the cause is
 * fixed).
 */
export const LOG_IO_FAILED: ErrorCode = 'GP_LOG_FAILED';

export function ioError(message: string, details: Record<string, unknown>, cause?: unknown): GpError {
  return new GpError(LOG_IO_FAILED, message, details, cause === undefined ? undefined : { cause });
}

/** Makes a created, renamed or removed directory entry durable (POSIX needs the directory itself fsynced). */
export async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

const LOCK_FILE = '.lock';
// Directories this process holds, so a second instance on the same directory is refused too.
const heldHere = new Set<string>();

/**
 * Takes the directory's lock file: two writers on one log would interleave records. A lock
 * left by a process that no longer runs (a crash, kill -9) is taken over.
 */
export async function lockDirectory(dir: string): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_FILE);
  if (heldHere.has(dir)) throw ioError(`log directory ${dir} is already open in this process; close the other instance first`, { dir });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: 'wx' });
      heldHere.add(dir);
      return async () => {
        heldHere.delete(dir);
        await unlink(path).catch(() => undefined);
      };
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw ioError(`cannot write in log directory ${dir}: ${(cause as Error).message}`, { dir }, cause);
      }
    }
    const holder = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
    if (Number.isSafeInteger(holder) && holder !== process.pid && processIsAlive(holder)) {
      throw ioError(`log directory ${dir} is in use by process ${holder} (lock file ${path}); stop it, or remove the file if that process is not gridpulse`, {
        dir,
        pid: holder,
      });
    }
    await unlink(path).catch(() => undefined);
  }
  throw ioError(`cannot take the lock file ${path}`, { dir });
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (cause) {
    return (cause as NodeJS.ErrnoException).code === 'EPERM';
  }
}
