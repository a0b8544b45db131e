// Content hashing: sha256 of files (streamed) and of JSON values in a canonical form (sorted keys), for cache keys
// and manifests.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { mkdir } from 'node:fs/promises';

/** JSON with object keys sorted at every level, so equal values always serialize to equal strings. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object' && !(v instanceof Uint8Array)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = sortKeys(x);
    }
    return out;
  }
  return v;
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function hashJson(value: unknown): string {
  return sha256Hex(canonicalJson(value));
}

/** sha256 of a file's content, streamed (works for files of any size). */
export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

interface MemoEntry {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  sha256: string;
}

/**
 * sha256 of files, remembered across runs in a small JSON file keyed by (path, size, mtime, ctime, inode) so multi-GB
 * checkpoints are hashed once, not on every build. A changed file (any of those differ) is hashed again. ctime is
 * what makes this sound: `touch -r` (or any tool that restores mtime after an in-place edit) cannot set it back, and
 * every write changes it. An entry from an older memo without ctime is never trusted.
 */
export class FileHashMemo {
  private entries: Record<string, MemoEntry> = {};
  private dirty = false;
  private constructor(private readonly file: string) {}

  static async open(file: string): Promise<FileHashMemo> {
    const m = new FileHashMemo(file);
    try {
      m.entries = JSON.parse(await readFile(file, 'utf8')) as Record<string, MemoEntry>;
    } catch {
      m.entries = {};
    }
    return m;
  }

  async hash(path: string): Promise<string> {
    const st = await stat(path);
    const e = this.entries[path];
    if (e && e.size === st.size && e.mtimeMs === st.mtimeMs && e.ctimeMs === st.ctimeMs && e.ino === st.ino) return e.sha256;
    const sha256 = await sha256File(path);
    // The stat taken before hashing: a write during the hash changes ctime, so the next call hashes again.
    this.entries[path] = { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, sha256 };
    this.dirty = true;
    return sha256;
  }

  async save(): Promise<void> {
    if (!this.dirty) return;
    await mkdir(dirname(this.file), { recursive: true });
    // Plain write: a torn memo file only costs a re-hash (a parse failure reads as an empty memo).
    await writeFile(this.file, JSON.stringify(this.entries));
    this.dirty = false;
  }
}
