// The release index format: release.json (what a release holds, read from the packages' manifests) and
// SHA256SUMS, their reading (untrusted: a merge reads releases downloaded from CI) and their writing.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-fs.js';
import { PackageError } from '../util/errors.js';
import { sha256Hex } from '../util/hash.js';
import { assertSafeSegment } from '../util/safe-name.js';
import type { PackageManifest } from './manifest.js';

export const RELEASE_INDEX = 'release.json';
export const RELEASE_SUMS = 'SHA256SUMS';

export interface ReleaseArchive {
  file: string;
  format: 'tar.gz' | 'zip';
  bytes: number;
  sha256: string;
}

/** One target an archive holds, as release.json records it. */
export interface TargetInfo {
  target: string;
  precision: string;
  quantization: unknown;
  validation: ReleaseValidation | null;
}

export interface ReleaseValidation {
  metrics: unknown;
  /** What the metrics were measured on (e.g. "4 sequences of 32 tokens sampled from the unquantized model"). */
  data: string | null;
  /** Gate verdicts, when the manifest records them (the build refuses to package a target whose gates fail). */
  gates: { passed: boolean; rows: unknown } | null;
}

export interface ReleaseEntry {
  kind: 'package' | 'model-package';
  /** Archive base name: `<model>-<target>` or `<model>.ortpackage`. */
  name: string;
  model: string;
  recipe: string;
  source: { origin: string; revision: string };
  architecture: string;
  /** One entry per target the archive holds (one for a package, several for a model package). */
  targets: TargetInfo[];
  /** Files (and their bytes) the packages' manifest.json files list: model, data, config, tokenizer. */
  files: number;
  packageBytes: number;
  archives: ReleaseArchive[];
}

export interface ReleaseIndex {
  format: 'phi-forge-release';
  formatVersion: 1;
  tool: { name: string; version: string };
  /** Sorted by name. */
  entries: ReleaseEntry[];
}

/** The release.json format versions this tool reads. */
export const RELEASE_FORMAT_VERSIONS: readonly number[] = [1];

/**
 * Reads `<dir>/release.json`. Whatever it says is untrusted (a merge reads releases downloaded from CI): every
 * name that becomes a path, entry names and archive file names, must be a plain file name, and each archive's
 * format, size and sha256 well-formed, before anything is joined to a folder.
 */
export async function readReleaseIndex(dir: string): Promise<ReleaseIndex> {
  const file = join(dir, RELEASE_INDEX);
  let index: ReleaseIndex;
  try {
    index = JSON.parse(await readFile(file, 'utf8')) as ReleaseIndex;
  } catch (e) {
    throw new PackageError('RELEASE_NO_INDEX', `cannot read release.json (${(e as Error).message})`, { file, fix: 'pass a folder written by `pnpm pipeline release`' });
  }
  if (index === null || typeof index !== 'object' || index.format !== 'phi-forge-release' || !Array.isArray(index.entries)) {
    throw new PackageError('RELEASE_BAD_INDEX', 'release.json is not a phi-forge release index', { file });
  }
  if (!RELEASE_FORMAT_VERSIONS.includes(index.formatVersion)) {
    throw new PackageError('RELEASE_INDEX_VERSION', `formatVersion ${JSON.stringify(index.formatVersion)} is not one this tool reads (${RELEASE_FORMAT_VERSIONS.join(', ')})`, {
      file,
      fix: 'merge it with the phi-forge version that wrote it (release.json "tool")',
    });
  }
  const fix = 'use the release.json `pnpm pipeline release` wrote, unedited';
  const bad = (where: string, what: string) => new PackageError('RELEASE_BAD_INDEX', `${where}: ${what}`, { file, fix });
  index.entries.forEach((e, i) => {
    if (e === null || typeof e !== 'object' || !Array.isArray(e.archives)) throw bad(`entries[${i}]`, 'expected an object with name and archives[]');
    assertSafeSegment(e.name, { file, field: `entries[${i}].name`, fix });
    e.archives.forEach((a, j) => {
      const where = `entries[${i}].archives[${j}]`;
      if (a === null || typeof a !== 'object') throw bad(where, 'expected an object with file, format, bytes and sha256');
      assertSafeSegment(a.file, { file, field: `${where}.file`, fix });
      if (a.format !== 'tar.gz' && a.format !== 'zip') throw bad(`${where}.format`, `${JSON.stringify(a.format)} is not tar.gz or zip`);
      // The extension keeps an archive from being named release.json or SHA256SUMS, which the merge writes itself.
      if (!a.file.endsWith(`.${a.format}`)) throw bad(`${where}.file`, `${JSON.stringify(a.file)} does not end with .${a.format}`);
      if (typeof a.bytes !== 'number' || !Number.isSafeInteger(a.bytes) || a.bytes < 0) throw bad(`${where}.bytes`, `${JSON.stringify(a.bytes)} is not a byte count`);
      if (typeof a.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(a.sha256)) throw bad(`${where}.sha256`, `${JSON.stringify(a.sha256)} is not 64 lowercase hex digits`);
    });
  });
  return index;
}

/** The SHA256SUMS text (`sha256sum -c` format): one `<hex>  <file>` line per file, sorted by file name. */
export function formatSums(files: readonly { file: string; sha256: string }[]): string {
  return [...files]
    .sort((a, b) => compareNames(a.file, b.file))
    .map((f) => `${f.sha256}  ${f.file}\n`)
    .join('');
}

/** Writes release.json and SHA256SUMS (which lists the archives and release.json itself) into `out`. */
export async function writeIndexAndSums(out: string, index: ReleaseIndex): Promise<void> {
  const indexText = JSON.stringify(index, null, 2) + '\n';
  await writeFileAtomic(join(out, RELEASE_INDEX), indexText);
  const files = index.entries.flatMap((e) => e.archives.map((a) => ({ file: a.file, sha256: a.sha256 })));
  files.push({ file: RELEASE_INDEX, sha256: sha256Hex(indexText) });
  await writeFileAtomic(join(out, RELEASE_SUMS), formatSums(files));
}

export function targetInfo(m: PackageManifest): TargetInfo {
  return { target: m.target, precision: m.precision, quantization: m.quantization, validation: validationOf(m.validation) };
}

/** The deterministic part of a manifest's validation record: metrics, their data and gate verdicts (no timings). */
export function validationOf(v: unknown): ReleaseValidation | null {
  if (!v || typeof v !== 'object') return null;
  const r = v as { metrics?: unknown; data?: unknown; gates?: { passed?: unknown; rows?: unknown } };
  const gates = r.gates && typeof r.gates.passed === 'boolean' ? { passed: r.gates.passed, rows: r.gates.rows ?? [] } : null;
  return { metrics: r.metrics ?? null, data: typeof r.data === 'string' ? r.data : null, gates };
}

/** Byte order of UTF-8 names: the same on every machine and locale. */
export function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
