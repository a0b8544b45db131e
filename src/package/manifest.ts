// Package manifest: what a package is (model, recipe, source revision, target, quantization, validation metrics,
// tool version) and the sha256 + size of every file in it, so `verify` can tell a tampered or truncated file by name.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { PackageError } from '../util/errors.js';
import { sha256File } from '../util/hash.js';
import { assertSafeRelativePath, assertSafeSegment, regularFileProblem, relativePathProblem } from '../util/safe-name.js';
import { TOOL_NAME, TOOL_VERSION } from '../util/version.js';

export const MANIFEST_FILE = 'manifest.json';
/** The manifest format versions this tool reads (a newer one may mean fields whose meaning we would miss). */
export const MANIFEST_FORMAT_VERSIONS: readonly number[] = [1];

export interface ManifestFile {
  path: string;
  size: number;
  sha256: string;
}

export interface PackageManifest {
  format: 'phi-forge-package';
  formatVersion: 1;
  model: string;
  recipe: string;
  target: string;
  source: { origin: string; revision: string };
  architecture: string;
  precision: string;
  quantization: unknown;
  validation: unknown;
  tool: { name: string; version: string };
  /** Every file of the package except manifest.json itself, sorted by path. */
  files: ManifestFile[];
}

export type ManifestInfo = Omit<PackageManifest, 'format' | 'formatVersion' | 'tool' | 'files'>;

/** Lists files under dir (recursively), as sorted '/'-separated relative paths. */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(relative(dir, p).split(sep).join('/'));
    }
  };
  await walk(dir);
  return out.sort();
}

/** Builds the manifest of a package folder by hashing every file in it (except an existing manifest). */
export async function buildManifest(dir: string, info: ManifestInfo): Promise<PackageManifest> {
  const files: ManifestFile[] = [];
  for (const path of await listFiles(dir)) {
    if (path === MANIFEST_FILE) continue;
    // A link would make the manifest vouch for bytes outside the package (and archives refuse links anyway).
    const kind = await regularFileProblem(dir, path);
    if (kind) throw new PackageError('PACKAGE_UNSAFE_FILE', `cannot list ${path} in the manifest: ${kind.detail}`, { file: dir, fix: 'replace the link with a copy of the file' });
    const full = join(dir, path);
    files.push({ path, size: (await stat(full)).size, sha256: await sha256File(full) });
  }
  return { format: 'phi-forge-package', formatVersion: 1, ...info, tool: { name: TOOL_NAME, version: TOOL_VERSION }, files };
}

export async function readManifest(dir: string): Promise<PackageManifest> {
  const file = join(dir, MANIFEST_FILE);
  let raw: string;
  try {
    raw = await readFile(file, 'utf8');
  } catch {
    throw new PackageError('PACKAGE_NO_MANIFEST', 'no manifest.json: this folder is not a phi-forge package', {
      file: dir,
      fix: 'pass the folder `pnpm pipeline build` wrote (it holds manifest.json)',
    });
  }
  let m: PackageManifest;
  try {
    m = JSON.parse(raw) as PackageManifest;
    if (m === null || typeof m !== 'object' || m.format !== 'phi-forge-package' || !Array.isArray(m.files)) throw new Error('not a package manifest');
  } catch (e) {
    throw new PackageError('PACKAGE_BAD_MANIFEST', `manifest.json is not valid (${(e as Error).message})`, {
      file,
      fix: 'rebuild the package',
    });
  }
  if (!MANIFEST_FORMAT_VERSIONS.includes(m.formatVersion)) {
    throw new PackageError(
      'PACKAGE_MANIFEST_VERSION',
      `formatVersion ${JSON.stringify(m.formatVersion)} is not one this tool reads (${MANIFEST_FORMAT_VERSIONS.join(', ')})`,
      { file, fix: 'verify it with the phi-forge version that wrote it (manifest.json "tool"), or rebuild the package' },
    );
  }
  // Release names archives and model packages `<model>-<target>`: both must be plain names, like file paths.
  for (const k of ['model', 'target'] as const) assertSafeSegment(m[k], { file, field: k, fix: 'rebuild the package' });
  checkFileEntries(m.files, file);
  return m;
}

/**
 * Every files[] entry: a path that stays inside the package, listed once, with a size and a sha256. A path listed
 * twice would be checked twice while the package can hold only one such file, so a manifest that says two things
 * about it is refused; names that differ only in case or Unicode form are one file on Windows and macOS.
 */
function checkFileEntries(files: unknown[], file: string): void {
  const seen = new Map<string, string>();
  files.forEach((f, i) => {
    const bad = (what: string) =>
      new PackageError('PACKAGE_BAD_MANIFEST', `files[${i}]: ${what}`, { file, fix: 'rebuild the package' });
    if (f === null || typeof f !== 'object') throw bad('expected an object with path, size and sha256');
    const { path, size, sha256 } = f as Record<string, unknown>;
    assertSafeRelativePath(path, { file, field: `files[${i}].path`, fix: 'rebuild the package' });
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw bad(`size ${JSON.stringify(size)} is not a byte count`);
    if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) throw bad(`sha256 ${JSON.stringify(sha256)} is not 64 lowercase hex digits`);
    const key = (path as string).normalize('NFC').toLowerCase();
    const first = seen.get(key);
    if (first !== undefined) {
      throw new PackageError(
        'PACKAGE_MANIFEST_DUPLICATE',
        first === path ? `files[${i}]: "${path}" is listed twice` : `files[${i}]: "${path}" and "${first}" name the same file on case-insensitive file systems`,
        { file, fix: 'rebuild the package (a manifest lists each file once)' },
      );
    }
    seen.set(key, path as string);
  });
}

/**
 * The files a copy of the package consists of: each manifest entry (checked to be a regular file inside `dir`,
 * reached without symbolic links) and manifest.json itself. Copying only these, never a folder listing, keeps
 * stray files and links out of published packages.
 */
export async function packageFilesToCopy(dir: string, manifest: PackageManifest): Promise<string[]> {
  for (const f of manifest.files) {
    const problem = relativePathProblem(f.path) ?? (await regularFileProblem(dir, f.path))?.detail;
    if (problem) {
      throw new PackageError('PACKAGE_UNSAFE_FILE', `manifest.json lists "${f.path}", which cannot be copied: ${problem}`, {
        file: dir,
        fix: 'a package holds only regular files: rebuild it',
      });
    }
  }
  return [...manifest.files.map((f) => f.path), MANIFEST_FILE];
}

export interface FileProblem {
  path: string;
  /** `not-a-file`: a symbolic link, a folder or a device where the manifest lists a file (its bytes would come from elsewhere). */
  problem: 'missing' | 'size' | 'sha256' | 'unlisted' | 'not-a-file';
  detail: string;
}

/** Re-hashes every file against the manifest; returns the problems (empty when the package is intact). */
export async function checkFiles(dir: string, manifest: PackageManifest): Promise<FileProblem[]> {
  const problems: FileProblem[] = [];
  const listed = new Set(manifest.files.map((f) => f.path));
  for (const f of manifest.files) {
    // readManifest refused unsafe paths; checked again because a caller may hand us a manifest it built itself.
    const unsafe = relativePathProblem(f.path);
    if (unsafe) {
      problems.push({ path: String(f.path), problem: 'not-a-file', detail: `not a path inside the package (${unsafe})` });
      continue;
    }
    const kind = await regularFileProblem(dir, f.path);
    if (kind) {
      problems.push(kind.missing ? { path: f.path, problem: 'missing', detail: 'file is missing' } : { path: f.path, problem: 'not-a-file', detail: kind.detail });
      continue;
    }
    const full = join(dir, f.path);
    const size = (await stat(full)).size;
    if (size !== f.size) {
      problems.push({ path: f.path, problem: 'size', detail: `${size} bytes, manifest says ${f.size} (truncated or replaced)` });
      continue;
    }
    const sha = await sha256File(full);
    if (sha !== f.sha256) problems.push({ path: f.path, problem: 'sha256', detail: `sha256 ${sha.slice(0, 12)}… differs from the manifest's ${f.sha256.slice(0, 12)}… (modified)` });
  }
  for (const path of await listFiles(dir)) {
    if (path !== MANIFEST_FILE && !listed.has(path)) problems.push({ path, problem: 'unlisted', detail: 'file is not in the manifest' });
  }
  return problems;
}
