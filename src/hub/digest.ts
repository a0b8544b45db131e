// Content digests the hub names files by: sha256 for LFS files, the git blob sha1 ("blob <size>\0" + bytes)
// for files stored in git. Python's cache names each blob by that digest, so a blob's name says how to check it.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';

export type DigestKind = 'sha256' | 'git-sha1';

/** Which digest a blob name (a normalized ETag) is, or undefined when it is neither (nothing to check against). */
export function digestKind(etag: string): DigestKind | undefined {
  if (/^[0-9a-f]{64}$/.test(etag)) return 'sha256';
  if (/^[0-9a-f]{40}$/.test(etag)) return 'git-sha1';
  return undefined;
}

/** An ETag header as a cache name, like Python's `_normalize_etag`: drop a weak `W/` prefix and the quotes. */
export function normalizeEtag(etag: string | null | undefined): string | undefined {
  if (!etag) return undefined;
  return etag.replace(/^W\//, '').replace(/^"|"$/g, '') || undefined;
}

/** An incremental digest of one file's bytes; the git form needs the total size up front. */
export class ContentDigest {
  private readonly hash: Hash;

  constructor(
    readonly kind: DigestKind,
    totalSize: number,
  ) {
    this.hash = createHash(kind === 'sha256' ? 'sha256' : 'sha1');
    if (kind === 'git-sha1') this.hash.update(`blob ${totalSize}\0`);
  }

  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
  }

  hex(): string {
    return this.hash.digest('hex');
  }
}

/** Feeds the first `length` bytes of a file (all of it when undefined) into `digest`. */
export async function digestFile(path: string, digest: ContentDigest, length?: number): Promise<void> {
  if (length === 0) return;
  const stream = createReadStream(path, {
    highWaterMark: 1 << 20,
    ...(length === undefined ? {} : { end: length - 1 }),
  });
  for await (const chunk of stream) digest.update(chunk as Buffer);
}

/** The digest of a whole file in the given form. */
export async function fileDigest(path: string, kind: DigestKind, size: number): Promise<string> {
  const d = new ContentDigest(kind, size);
  await digestFile(path, d);
  return d.hex();
}
