// Package manifest: what a package is (model, recipe, source revision, target, quantization, validation metrics,
// tool version) and the sha256 + size of every file in it, so `verify` can tell a tampered or truncated file by name.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { PackageError } from '../util/errors.js';
import { sha256File } from '../util/hash.js';
import { TOOL_NAME, TOOL_VERSION } from '../util/version.js';

export const MANIFEST_FILE = 'manifest.json';

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
  try {
    const m = JSON.parse(raw) as PackageManifest;
    if (m.format !== 'phi-forge-package' || !Array.isArray(m.files)) throw new Error('not a package manifest');
    return m;
  } catch (e) {
    throw new PackageError('PACKAGE_BAD_MANIFEST', `manifest.json is not valid (${(e as Error).message})`, {
      file,
      fix: 'rebuild the package',
    });
  }
}

export interface FileProblem {
  path: string;
  problem: 'missing' | 'size' | 'sha256' | 'unlisted';
  detail: string;
}

/** Re-hashes every file against the manifest; returns the problems (empty when the package is intact). */
export async function checkFiles(dir: string, manifest: PackageManifest): Promise<FileProblem[]> {
  const problems: FileProblem[] = [];
  const listed = new Set(manifest.files.map((f) => f.path));
  for (const f of manifest.files) {
    const full = join(dir, f.path);
    let size: number;
    try {
      size = (await stat(full)).size;
    } catch {
      problems.push({ path: f.path, problem: 'missing', detail: 'file is missing' });
      continue;
    }
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
