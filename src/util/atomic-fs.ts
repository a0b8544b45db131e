// Atomic file and folder writes: write beside the target under a temporary name, fsync, rename into place,
// so a crash at any moment leaves either the old content or the new, never a half-written file that looks complete.
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

const WRITE_CHUNK = 1 << 30;

/**
 * A streamed file starts going to disk once this many bytes are written since the last flush, while writing goes on:
 * the kernel alone would hold it all in the page cache until commit's fsync (its background writeback starts at 10%
 * of RAM), which then waits for every byte at the end (~0.7 s per GB on the CI VM) instead of in the meantime.
 */
export const FLUSH_BYTES = 128 << 20;

/** A temporary sibling name for `path` (same folder, so rename stays on one filesystem). */
export function tempSibling(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** The pid of the process that made `name` with tempSibling(path), or undefined when `name` is not such a name. */
export function tempSiblingPid(path: string, name: string): number | undefined {
  const prefix = `.${basename(path)}.tmp-`;
  const m = name.startsWith(prefix) ? /^(\d+)-[0-9a-f]{8}$/.exec(name.slice(prefix.length)) : null;
  return m ? Number(m[1]) : undefined;
}

/** True for the temporary names tempSibling makes (used to clean leftovers of killed runs). */
export function isTempSibling(name: string): boolean {
  return /^\..*\.tmp-\d+-[0-9a-f]{8}$/.test(name);
}

export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempSibling(path);
  try {
    await writeFile(tmp, data);
    const fh = await open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * A file written in pieces (streamed) that appears at `path` only on commit(). abort() removes the partial file.
 * Use for big outputs such as external data files.
 */
export class AtomicFileWriter {
  readonly path: string;
  readonly tmpPath: string;
  private fh?: FileHandle;
  private position = 0;
  private unflushed = 0;
  /** The flush under way (at most one); its failure is reported by commit(). */
  private flushing?: Promise<unknown>;

  private constructor(
    path: string,
    private readonly flushBytes: number,
  ) {
    this.path = path;
    this.tmpPath = tempSibling(path);
  }

  /** `flushBytes`: written bytes after which the file starts going to disk (default FLUSH_BYTES). */
  static async create(path: string, opts: { flushBytes?: number } = {}): Promise<AtomicFileWriter> {
    const w = new AtomicFileWriter(path, opts.flushBytes ?? FLUSH_BYTES);
    await mkdir(dirname(path), { recursive: true });
    w.fh = await open(w.tmpPath, 'w');
    return w;
  }

  /** Bytes written so far (the offset the next write lands at). */
  get offset(): number {
    return this.position;
  }

  async write(data: Uint8Array): Promise<void> {
    let done = 0;
    while (done < data.byteLength) {
      // One fs write is limited to 2 GiB: large tensors go in pieces.
      const n = Math.min(data.byteLength - done, WRITE_CHUNK);
      const { bytesWritten } = await this.fh!.write(data, done, n, this.position);
      done += bytesWritten;
      this.position += bytesWritten;
    }
    this.unflushed += data.byteLength;
    if (this.unflushed >= this.flushBytes && !this.flushing) {
      this.unflushed = 0;
      const fh = this.fh!;
      const flush = fh.datasync().then(
        () => {
          if (this.flushing === flush) this.flushing = undefined;
        },
        (e: unknown) => e, // kept: commit() rethrows it
      );
      this.flushing = flush;
    }
  }

  /** Writes zero bytes until the offset is a multiple of `alignment`. */
  async pad(alignment: number): Promise<void> {
    const rem = this.position % alignment;
    if (rem) await this.write(new Uint8Array(alignment - rem));
  }

  async commit(): Promise<void> {
    const failed = await this.flushing;
    if (failed) throw failed;
    await this.fh!.sync();
    await this.fh!.close();
    this.fh = undefined;
    await rename(this.tmpPath, this.path);
  }

  async abort(): Promise<void> {
    await this.flushing; // never rejects: see write()
    this.flushing = undefined;
    if (this.fh) await this.fh.close().catch(() => undefined);
    this.fh = undefined;
    await rm(this.tmpPath, { force: true });
  }
}

/**
 * Runs `fill(tmpDir)` in a temporary sibling folder of `finalDir` and renames it to `finalDir` when it succeeds
 * (replacing an existing folder). On failure the temporary folder is removed and the error rethrown.
 */
export async function writeDirAtomic<T>(finalDir: string, fill: (tmpDir: string) => Promise<T>): Promise<T> {
  await mkdir(dirname(finalDir), { recursive: true });
  const tmp = tempSibling(finalDir);
  await mkdir(tmp, { recursive: true });
  try {
    const result = await fill(tmp);
    await rm(finalDir, { recursive: true, force: true });
    await rename(tmp, finalDir);
    return result;
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}
