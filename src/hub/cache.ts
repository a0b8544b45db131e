// The on-disk hub cache, laid out exactly like Python's huggingface_hub so both reuse each other's downloads:
//   <cache>/models--owner--name/blobs/<etag>                 file bytes, named by sha256 (LFS) or git sha1
//                              blobs/<etag>.incomplete      a download in progress (resumed from its size)
//                              snapshots/<commit>/<file>    relative symlink to ../../blobs/<etag>
//                              refs/<branch-or-tag>         the commit it pointed to (no newline)
//                              .no_exist/<commit>/<file>    empty: the file is known not to exist at that commit
//   <cache>/.locks/models--owner--name/<etag>.phi-forge.lock   held (pid inside) while one of our processes downloads
import { constants } from 'node:fs';
import { copyFile, lstat, mkdir, readFile, readlink, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { tempSibling, writeFileAtomic } from '../util/atomic-fs.js';
import { isCommitHash, repoFolderName } from './repo-id.js';

/** What the snapshot holds for one file. */
export interface SnapshotEntry {
  /** The path inside snapshots/<commit>/ (what callers open). */
  path: string;
  /** The blob name the entry links to, or undefined for a plain file (a copy, as on systems without symlinks). */
  blob?: string;
  size: number;
}

export class RepoCache {
  readonly repoDir: string;

  constructor(
    readonly cacheDir: string,
    readonly repo: string,
  ) {
    this.repoDir = join(cacheDir, repoFolderName(repo));
  }

  blobPath(etag: string): string {
    return join(this.repoDir, 'blobs', etag);
  }

  incompletePath(etag: string): string {
    return `${this.blobPath(etag)}.incomplete`;
  }

  /**
   * The lock our processes take while downloading a blob, beside Python's `.locks/<repo>/<etag>.lock` but not that
   * file: Python holds its locks with flock, which a pid lock file cannot share, so the two tools do not lock each
   * other out (each still verifies every blob it uses).
   */
  lockPath(etag: string): string {
    return join(this.cacheDir, '.locks', repoFolderName(this.repo), `${etag}.phi-forge.lock`);
  }

  snapshotDir(commit: string): string {
    return join(this.repoDir, 'snapshots', commit);
  }

  pointerPath(commit: string, file: string): string {
    return join(this.snapshotDir(commit), ...file.split('/'));
  }

  private refPath(revision: string): string {
    return join(this.repoDir, 'refs', ...revision.split('/'));
  }

  private noExistPath(commit: string, file: string): string {
    return join(this.repoDir, '.no_exist', commit, ...file.split('/'));
  }

  /** The commit a branch or tag pointed to when last resolved online; undefined when never resolved here. */
  async readRef(revision: string): Promise<string | undefined> {
    try {
      const text = (await readFile(this.refPath(revision), 'utf8')).trim();
      return isCommitHash(text) ? text : undefined;
    } catch {
      return undefined;
    }
  }

  /** Records `revision → commit` as Python does: only for branch/tag names, and only when it changed. */
  async writeRef(revision: string, commit: string): Promise<void> {
    if (revision === commit) return;
    if ((await this.readRef(revision)) === commit) return;
    await writeFileAtomic(this.refPath(revision), commit);
  }

  /** The snapshot's entry for `file` (following the link), or undefined when absent or dangling. */
  async snapshotEntry(commit: string, file: string): Promise<SnapshotEntry | undefined> {
    const path = this.pointerPath(commit, file);
    let size: number;
    try {
      const st = await stat(path);
      if (!st.isFile()) return undefined;
      size = st.size;
    } catch {
      return undefined;
    }
    const link = await lstat(path);
    if (!link.isSymbolicLink()) return { path, size };
    const target = resolve(dirname(path), await readlink(path));
    const blobsDir = join(this.repoDir, 'blobs') + sep;
    const blob = target.startsWith(blobsDir) ? target.slice(blobsDir.length) : undefined;
    return blob && !blob.includes(sep) ? { path, blob, size } : { path, size };
  }

  /** Points snapshots/<commit>/<file> at blobs/<etag> with a relative symlink (a copy where links are refused). */
  async linkSnapshot(commit: string, file: string, etag: string): Promise<string> {
    const pointer = this.pointerPath(commit, file);
    const blob = this.blobPath(etag);
    await mkdir(dirname(pointer), { recursive: true });
    // Made beside the final name and renamed over it, so a stale or dangling entry is replaced in one step.
    const tmp = tempSibling(pointer);
    try {
      await symlink(relative(dirname(pointer), blob), tmp);
    } catch (e) {
      if (!isSymlinkRefused(e)) throw e;
      await copyFile(blob, tmp, constants.COPYFILE_FICLONE);
    }
    try {
      await rename(tmp, pointer);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    return pointer;
  }

  async isKnownMissing(commit: string, file: string): Promise<boolean> {
    try {
      return (await stat(this.noExistPath(commit, file))).isFile();
    } catch {
      return false;
    }
  }

  /** Remembers that `file` does not exist at `commit` (Python's `.no_exist` marker: an empty file). */
  async markMissing(commit: string, file: string): Promise<void> {
    const path = this.noExistPath(commit, file);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, '');
  }
}

function isSymlinkRefused(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'EPERM' || code === 'EACCES' || code === 'ENOTSUP' || code === 'EOPNOTSUPP';
}
