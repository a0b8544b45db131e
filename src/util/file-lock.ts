// A lock between processes on one machine: a file created exclusively (O_EXCL) holding the owner's pid, removed on
// release. A lock whose owner process is gone (killed before it could release) is taken over. Used so two builds
// sharing a download cache never write the same partial file at once.
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface FileLockOptions {
  /** How often a waiting process looks again; default 200 ms. */
  pollMs?: number;
  signal?: AbortSignal;
  /** Called once when the lock is held by another live process and this one starts waiting. */
  onWait?: (ownerPid: number) => void;
}

/** Looks at a lock file without a pid before it counts as abandoned. */
const EMPTY_POLLS = 10;

/** Runs `task` while holding the lock at `path` (waiting for another process that holds it). */
export async function withFileLock<T>(path: string, task: () => Promise<T>, o: FileLockOptions = {}): Promise<T> {
  await mkdir(dirname(path), { recursive: true });
  const pollMs = o.pollMs ?? 200;
  let waiting = false;
  let emptyPolls = 0;
  for (;;) {
    o.signal?.throwIfAborted();
    if (await tryCreate(path)) break;
    const owner = await ownerOf(path);
    if (owner !== undefined && !isRunning(owner)) {
      // Left by a process that died holding it: take it over. Removing only if it still names that owner keeps two
      // takers from removing each other's fresh lock.
      if ((await ownerOf(path)) === owner) await rm(path, { force: true });
      continue;
    }
    // No pid yet: another process is between creating the file and writing its pid — or died right there, which
    // only a file that stays empty for a while (EMPTY_POLLS looks) can tell.
    emptyPolls = owner === undefined ? emptyPolls + 1 : 0;
    if (emptyPolls > EMPTY_POLLS) {
      await rm(path, { force: true });
      emptyPolls = 0;
      continue;
    }
    if (owner !== undefined && !waiting) {
      waiting = true;
      o.onWait?.(owner);
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
  try {
    return await task();
  } finally {
    await rm(path, { force: true });
  }
}

async function tryCreate(path: string): Promise<boolean> {
  try {
    const fh = await open(path, 'wx');
    try {
      await fh.writeFile(`${process.pid}\n`);
    } finally {
      await fh.close();
    }
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

/** The pid in a lock file; undefined when it is gone or does not hold one (yet). */
async function ownerOf(path: string): Promise<number | undefined> {
  const text = await readFile(path, 'utf8').catch(() => undefined);
  const pid = Number(text?.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** Whether a process with this id is running (signal 0 only checks; EPERM: it exists under another user). */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
