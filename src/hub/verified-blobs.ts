// Checks a cached blob against the digest its name states before it is used, remembering files already checked
// in this process (same path, size, inode and mtime) so one build does not hash the same gigabytes twice.
import { rm, stat } from 'node:fs/promises';
import { digestKind, fileDigest } from './digest.js';

const checked = new Set<string>();

export type BlobCheck = 'ok' | 'corrupt' | 'missing' | 'unverifiable';

/**
 * 'ok' when the blob's bytes hash to its name (and match `expectedSize` when given), 'corrupt' when not,
 * 'missing' when there is no such file, 'unverifiable' when the name is not a sha256 or git sha1.
 */
export async function checkBlob(path: string, etag: string, expectedSize?: number): Promise<BlobCheck> {
  let st;
  try {
    st = await stat(path);
  } catch {
    return 'missing';
  }
  if (!st.isFile()) return 'missing';
  if (expectedSize !== undefined && st.size !== expectedSize) return 'corrupt';
  const kind = digestKind(etag);
  if (!kind) return 'unverifiable';
  const key = `${path}|${st.size}|${st.ino}|${st.mtimeMs}`;
  if (checked.has(key)) return 'ok';
  if ((await fileDigest(path, kind, st.size)) !== etag) return 'corrupt';
  checked.add(key);
  return 'ok';
}

/** Records a blob this process has just written and verified while downloading it. */
export async function markBlobVerified(path: string): Promise<void> {
  const st = await stat(path);
  checked.add(`${path}|${st.size}|${st.ino}|${st.mtimeMs}`);
}

/** Removes a blob that failed its check, so it is fetched again instead of used. */
export async function discardBlob(path: string): Promise<void> {
  await rm(path, { force: true });
}
