// Names read from files we did not write (release.json, manifest.json, model-package manifests, recipes) that
// become paths: one rule for "a single file name" and one for "a relative path that stays inside its folder".
// A name that fails them could read or write outside the folder it is joined to (`../x`, `/etc/x`, `C:\x`), or
// inject a line into SHA256SUMS (control characters), so every caller checks here before calling path.join.
import { lstat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { PackageError, type ErrorContext, type PhiForgeError } from './errors.js';

/** Why `name` is not a single safe path segment, or undefined when it is one. */
export function segmentProblem(name: unknown): string | undefined {
  if (typeof name !== 'string') return `expected a string, got ${name === null ? 'null' : typeof name}`;
  if (name === '') return 'it is empty';
  if (name === '.' || name === '..') return `"${name}" names a folder, not a file in it`;
  if (name.includes('/') || name.includes('\\')) return 'it contains a path separator (/ or \\)';
  // C0 controls, DEL and C1 controls: NUL truncates paths in C APIs, a newline would forge a SHA256SUMS line.
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) return 'it contains a control character';
  // `C:` alone is a drive (relative to that drive's working folder on Windows), not a name.
  if (/^[A-Za-z]:/.test(name)) return 'it starts with a drive letter';
  return undefined;
}

/** True when `name` is one path segment that cannot leave the folder it is joined to. */
export function isSafeSegment(name: unknown): name is string {
  return segmentProblem(name) === undefined;
}

/**
 * Why `path` is not a safe '/'-separated relative path, or undefined when it is one: every segment must be a safe
 * segment, so no absolute path, no `..` or `.`, no empty segment (`a//b`, trailing `/`), no backslash.
 */
export function relativePathProblem(path: unknown): string | undefined {
  if (typeof path !== 'string') return `expected a string, got ${path === null ? 'null' : typeof path}`;
  if (path === '') return 'it is empty';
  if (path.startsWith('/')) return 'it is absolute';
  for (const seg of path.split('/')) {
    const p = segmentProblem(seg);
    if (p) return seg === '' ? 'it has an empty segment (// or a trailing /)' : `segment "${seg}": ${p}`;
  }
  return undefined;
}

/** True when `path` is a '/'-separated relative path whose every segment is a safe segment. */
export function isSafeRelativePath(path: unknown): path is string {
  return relativePathProblem(path) === undefined;
}

export interface NameContext {
  /** The file the name was read from (release.json, manifest.json, ...). */
  file: string;
  /** The field it was read from, e.g. `entries[0].archives[1].file`. */
  field: string;
  fix?: string;
}

type ErrorClass = new (code: string, message: string, ctx?: ErrorContext) => PhiForgeError;

/** Throws (a PackageError unless told otherwise) naming the file, the field and the value, unless `name` is a safe segment. */
export function assertSafeSegment(name: unknown, ctx: NameContext, Err: ErrorClass = PackageError): string {
  const problem = segmentProblem(name);
  if (problem) throw unsafe('UNSAFE_NAME', `must be a plain file name (${problem})`, name, ctx, Err);
  return name as string;
}

/** Throws (a PackageError unless told otherwise) naming the file, the field and the value, unless `path` is a safe relative path. */
export function assertSafeRelativePath(path: unknown, ctx: NameContext, Err: ErrorClass = PackageError): string {
  const problem = relativePathProblem(path);
  if (problem) throw unsafe('UNSAFE_PATH', `must be a relative path inside the folder (${problem})`, path, ctx, Err);
  return path as string;
}

function unsafe(code: string, rule: string, value: unknown, ctx: NameContext, Err: ErrorClass): PhiForgeError {
  // JSON.stringify shows control characters and quotes as escapes, so the message itself stays one clean line.
  return new Err(code, `${ctx.field} ${JSON.stringify(value)} ${rule}`, {
    file: ctx.file,
    fix: ctx.fix ?? 'the file was edited by hand or by someone else; use one written by phi-forge',
  });
}

/**
 * Why `<dir>/<rel>` (rel already a safe relative path) is not a regular file reached without symbolic links, or
 * undefined when it is one. A symlinked file or folder inside a package could point anywhere on the machine, so a
 * hash or a copy "of the package" would be one of that; `missing` tells an absent part from a wrong kind.
 */
export async function regularFileProblem(dir: string, rel: string): Promise<{ missing: boolean; detail: string } | undefined> {
  const segs = rel.split('/');
  let at = dir;
  for (let i = 0; i < segs.length; i++) {
    at = join(at, segs[i]);
    const shown = segs.slice(0, i + 1).join('/');
    const st = await lstat(at).catch(() => undefined);
    if (!st) return { missing: true, detail: `${shown} does not exist` };
    if (st.isSymbolicLink()) return { missing: false, detail: `${shown} is a symbolic link` };
    if (i < segs.length - 1 && !st.isDirectory()) return { missing: false, detail: `${shown} is not a folder` };
    if (i === segs.length - 1 && !st.isFile()) return { missing: false, detail: `${shown} is not a regular file` };
  }
  return undefined;
}

/** The first part of `<dir>/<rel>` (rel a safe relative path) that is a symbolic link, as a relative path, if any. */
export async function symlinkOnPath(dir: string, rel: string): Promise<string | undefined> {
  const segs = rel.split('/');
  let at = dir;
  for (let i = 0; i < segs.length; i++) {
    at = join(at, segs[i]);
    if ((await lstat(at).catch(() => undefined))?.isSymbolicLink()) return segs.slice(0, i + 1).join('/');
  }
  return undefined;
}

/** True when `path` is `folder` or lies below it (both absolute and normalised). */
export function isWithin(path: string, folder: string): boolean {
  if (path === folder) return true;
  return path.startsWith(folder.endsWith(sep) ? folder : folder + sep);
}
