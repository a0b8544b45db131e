// Hub names: telling a repo id from a local path or recipe name, and checking ids, revisions and file names
// before they become parts of URLs or cache paths.
import { HubError, UsageError } from '../util/errors.js';

/** One part of `owner/name`: hub rules (letters, digits, `-_.`; no leading/trailing `-`/`.`; no `--` or `..`). */
const PART = /^(?![-.])(?!.*(--|\.\.))[A-Za-z0-9._-]{1,96}(?<![-.])$/;

/** File endings that mark a local file (recipe, checkpoint) rather than a repo whose name ends like that. */
const LOCAL_FILE_ENDING = /\.(json|ya?ml|bin|safetensors|onnx|gguf|pt|pth)$/i;

export interface HubRef {
  repo: string;
  /** From an `owner/name@revision` form; undefined when no `@` was given. */
  revision?: string;
}

/**
 * Splits `owner/name` or `owner/name@revision`. Returns undefined when `s` does not have the shape of a hub id
 * (a path such as `./x`, `/abs`, `~/x`, `a/b/c`, `a\b`, a recipe name without a slash, or a file like `x/y.json`).
 */
export function parseHubId(s: string): HubRef | undefined {
  const at = s.indexOf('@');
  const repo = at < 0 ? s : s.slice(0, at);
  const revision = at < 0 ? undefined : s.slice(at + 1);
  if (revision !== undefined && !isSafeRevision(revision)) return undefined;
  const parts = repo.split('/');
  if (parts.length !== 2 || !parts.every((p) => PART.test(p))) return undefined;
  if (LOCAL_FILE_ENDING.test(repo)) return undefined;
  return revision === undefined ? { repo } : { repo, revision };
}

/**
 * True when `s` looks like a hub model id (`microsoft/Phi-4-mini-instruct`, optionally `@revision`) rather than
 * a local path or a recipe name. Shape only: a caller that also accepts local folders checks those exist first.
 */
export function isHubId(s: string): boolean {
  return parseHubId(s) !== undefined;
}

/** Throws a usage error unless `repo` is `owner/name`. */
export function assertRepoId(repo: string): void {
  const parts = repo.split('/');
  if (parts.length !== 2 || !parts.every((p) => PART.test(p))) {
    throw new UsageError(`'${repo}' is not a Hugging Face model id`, {
      fix: 'use the form owner/name, e.g. microsoft/Phi-4-mini-instruct',
    });
  }
}

/** The cache folder name Python uses for a model repo: `models--owner--name`. */
export function repoFolderName(repo: string): string {
  return ['models', ...repo.split('/')].join('--');
}

/** A commit hash as the hub and Python's cache use it: 40 lowercase hex digits. */
export function isCommitHash(s: string): boolean {
  return /^[0-9a-f]{40}$/.test(s);
}

/** Git ref names that are safe as a path under refs/ (no `..`, no absolute path, no backslash, no empty part). */
function isSafeRevision(rev: string): boolean {
  return (
    rev.length > 0 &&
    rev.length <= 255 &&
    !rev.includes('\\') &&
    !/[\0-\x1f\x7f~^:?*[]/.test(rev) &&
    rev.split('/').every((p) => p !== '' && p !== '.' && p !== '..')
  );
}

export function assertRevision(rev: string, repo: string): void {
  if (!isSafeRevision(rev)) {
    throw new UsageError(`'${rev}' is not a valid revision of ${repo}`, {
      fix: 'use a branch name, a tag or a full 40-character commit hash',
    });
  }
}

/** A file name inside a repo (from the hub or from an index file) that stays inside the snapshot folder. */
export function assertRepoFilePath(path: string, repo: string, from: string): void {
  const ok =
    path.length > 0 &&
    !path.startsWith('/') &&
    !path.includes('\\') &&
    !path.includes('\0') &&
    path.split('/').every((p) => p !== '' && p !== '.' && p !== '..');
  if (!ok) {
    throw new HubError('HUB_BAD_PATH', `unsafe file name '${path}' in ${repo}`, {
      where: from,
      fix: 'the repository (or its safetensors index) names a file outside the repo; refuse to use it',
    });
  }
}
