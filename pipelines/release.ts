// `release`: builds every recipe × target, refuses to ship when any target failed (a stage or a gate), then writes
// one reproducible archive per package (+ .zip, + onnxruntime model package) with SHA256SUMS and a release.json
// index read from the packages' manifests. Same packages in → byte-identical archives, release.json and SHA256SUMS
// out: nothing time- or machine-dependent goes into them (timings are in the returned report only).
import { constants } from 'node:fs';
import { copyFile, lstat, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { writeTarGz, writeZip, type ArchiveResult } from '../src/package/archive.js';
import { checkFiles, readManifest, type PackageManifest } from '../src/package/manifest.js';
import { MODEL_PACKAGE_SUFFIX, writeModelPackage } from '../src/package/model-package.js';
import { resolveBuildSpec } from '../src/pipeline/build-spec.js';
import type { TargetId } from '../src/recipes/schema.js';
import { tempSibling, writeFileAtomic } from '../src/util/atomic-fs.js';
import { GateError, isPhiForgeError, PackageError, type PhiForgeError } from '../src/util/errors.js';
import { sha256File, sha256Hex } from '../src/util/hash.js';
import { assertSafeSegment } from '../src/util/safe-name.js';
import { TOOL_NAME, TOOL_VERSION } from '../src/util/version.js';

export const RELEASE_INDEX = 'release.json';
export const RELEASE_SUMS = 'SHA256SUMS';

export interface ReleaseRequest {
  /** Recipe names or files (anything `build` accepts). */
  recipes: string[];
  /** Targets to release (default: each recipe's own). */
  targets?: TargetId[];
  /** Folder the archives, SHA256SUMS and release.json go to; packages are published under <out>/packages. */
  out: string;
  zip?: boolean;
  /** Also group each model's targets into one onnxruntime model package (<model>.ortpackage). */
  modelPackage?: boolean;
  artifacts?: string;
  hubToken?: string;
  quiet?: boolean;
  signal?: AbortSignal;
  /** Progress lines (one per build and archive); default: none. */
  log?: (line: string) => void;
}

export interface ReleaseArchive {
  file: string;
  format: 'tar.gz' | 'zip';
  bytes: number;
  sha256: string;
}

interface TargetInfo {
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

export interface ReleaseFailure {
  recipe: string;
  target: string;
  stage: string;
  code: string;
  message: string;
}

export interface ReleaseReport {
  ok: boolean;
  out: string;
  /** Present when the release was written. */
  index?: ReleaseIndex;
  failures: ReleaseFailure[];
  /** Per build: wall-clock seconds (here, never in release.json). */
  builds: { recipe: string; target: string; ok: boolean; seconds: number; package?: string }[];
  seconds: number;
}

export interface AssembleOptions {
  out: string;
  zip?: boolean;
  modelPackage?: boolean;
  /** Where model-package folders are assembled before archiving (default <out>/packages). */
  workDir?: string;
  log?: (line: string) => void;
}

export async function release(req: ReleaseRequest): Promise<ReleaseReport> {
  const t0 = performance.now();
  const out = resolve(req.out);
  const log = req.log ?? (() => undefined);
  // Loaded lazily: the build pipeline pulls in every stage, which the archive half of a release does not need.
  const { build } = await import('./build.js');
  const failures: ReleaseFailure[] = [];
  const builds: ReleaseReport['builds'] = [];
  const packages: { target: string; dir: string }[] = [];
  for (const recipe of req.recipes) {
    const spec = await resolveBuildSpec(recipe, { targets: req.targets });
    for (const { target } of spec.recipe.targets) {
      const t1 = performance.now();
      log(`build ${recipe} for ${target}`);
      try {
        const report = await build({
          spec: recipe,
          targets: [target],
          out: join(out, 'packages'),
          artifacts: req.artifacts,
          hubToken: req.hubToken,
          quiet: req.quiet,
          signal: req.signal,
        });
        const t = report.targets.find((x) => x.target === target);
        const seconds = +((performance.now() - t1) / 1000).toFixed(3);
        builds.push({ recipe, target, ok: !!t?.ok, seconds, package: t?.package });
        if (t?.ok && t.package) packages.push({ target, dir: t.package });
        else failures.push({ recipe, target, ...(t?.failure ?? { stage: 'build', code: 'NO_TARGET', message: `the build reported no ${target} target` }) });
      } catch (e) {
        if (req.signal?.aborted) throw e;
        const err = e as PhiForgeError;
        builds.push({ recipe, target, ok: false, seconds: +((performance.now() - t1) / 1000).toFixed(3) });
        failures.push({ recipe, target, stage: 'build', code: isPhiForgeError(e) ? err.code : 'INTERNAL', message: err.message ?? String(e) });
      }
    }
  }
  const seconds = () => +((performance.now() - t0) / 1000).toFixed(3);
  // A release ships every requested package or none: a partial release would look complete to its users.
  if (failures.length) return { ok: false, out, failures, builds, seconds: seconds() };
  const index = await assembleRelease(packages, { out, zip: req.zip, modelPackage: req.modelPackage, log });
  return { ok: true, out, index, failures, builds, seconds: seconds() };
}

/**
 * Archives finished package folders into `out`: `<model>-<target>.tar.gz` (+ .zip), optionally one
 * `<model>.ortpackage.tar.gz` per model, then release.json and SHA256SUMS. Every package is re-checked against
 * its manifest first, and one whose manifest records failed gates is refused.
 */
export async function assembleRelease(packages: readonly { target: string; dir: string }[], opts: AssembleOptions): Promise<ReleaseIndex> {
  const out = resolve(opts.out);
  const log = opts.log ?? (() => undefined);
  if (packages.length === 0) throw new PackageError('RELEASE_EMPTY', 'nothing to release: no packages', { fix: 'name at least one recipe and target' });
  const loaded: { dir: string; manifest: PackageManifest; name: string }[] = [];
  for (const p of packages) {
    const manifest = await checkedManifest(p.dir);
    if (manifest.target !== p.target) {
      throw new PackageError('RELEASE_TARGET_MISMATCH', `the package was built for ${manifest.target}, not ${p.target}`, { file: p.dir });
    }
    const name = `${manifest.model}-${manifest.target}`;
    if (loaded.some((l) => l.name === name)) {
      throw new PackageError('RELEASE_DUPLICATE', `two packages would both be released as ${name}`, { file: p.dir, fix: 'release each model and target once' });
    }
    loaded.push({ dir: p.dir, manifest, name });
  }

  await mkdir(out, { recursive: true });
  const entries: ReleaseEntry[] = [];
  for (const l of loaded) {
    log(`archive ${l.name}`);
    const m = l.manifest;
    entries.push({
      kind: 'package',
      name: l.name,
      model: m.model,
      recipe: m.recipe,
      source: { origin: m.source.origin, revision: m.source.revision },
      architecture: m.architecture,
      targets: [targetInfo(m)],
      files: m.files.length,
      packageBytes: packageBytes(m),
      archives: await archive(l.dir, out, l.name, opts.zip),
    });
  }

  if (opts.modelPackage) {
    const byModel = new Map<string, typeof loaded>();
    for (const l of loaded) byModel.set(l.manifest.model, [...(byModel.get(l.manifest.model) ?? []), l]);
    for (const [model, group] of byModel) {
      const name = `${model}${MODEL_PACKAGE_SUFFIX}`;
      log(`model package ${name}`);
      const dir = join(resolve(opts.workDir ?? join(out, 'packages')), name);
      const layout = await writeModelPackage(group.map((g) => ({ target: g.manifest.target, dir: g.dir })), dir);
      const ordered = layout.components[0].variants.map((v) => group.find((g) => g.manifest.target === v.name)!);
      const m = ordered[0].manifest;
      entries.push({
        kind: 'model-package',
        name,
        model,
        recipe: m.recipe,
        source: { origin: m.source.origin, revision: m.source.revision },
        architecture: m.architecture,
        targets: ordered.map((g) => targetInfo(g.manifest)),
        files: ordered.reduce((n, g) => n + g.manifest.files.length, 0),
        packageBytes: ordered.reduce((n, g) => n + packageBytes(g.manifest), 0),
        archives: await archive(dir, out, name, opts.zip),
      });
    }
  }
  entries.sort((a, b) => compareNames(a.name, b.name));
  const index: ReleaseIndex = { format: 'phi-forge-release', formatVersion: 1, tool: { name: TOOL_NAME, version: TOOL_VERSION }, entries };
  await writeIndexAndSums(out, index);
  return index;
}

/**
 * Combines releases made separately (e.g. one CI job per recipe × target) into `out`: every archive is checked
 * against the sha256 and size its release.json records, copied, and indexed again with one SHA256SUMS.
 */
export async function mergeReleases(dirs: readonly string[], outDir: string): Promise<ReleaseIndex> {
  const out = resolve(outDir);
  await mkdir(out, { recursive: true });
  const entries = new Map<string, ReleaseEntry>();
  // Archive file name → the release that brought it: two entries must not claim one file with different bytes.
  const claimed = new Map<string, { sha256: string; from: string }>();
  for (const d of dirs.map((x) => resolve(x))) {
    const index = await readReleaseIndex(d);
    for (const e of index.entries) {
      for (const a of e.archives) {
        // a.file is a plain name (readReleaseIndex checked it), so `file` is inside d and the copy inside out.
        const file = join(d, a.file);
        const prevClaim = claimed.get(a.file);
        if (prevClaim && prevClaim.sha256 !== a.sha256) {
          throw new PackageError('RELEASE_DUPLICATE', `${a.file} is in two releases with different contents (${prevClaim.from} and ${d})`, {
            file: join(d, RELEASE_INDEX),
            fix: 'merge releases of different recipes × targets only',
          });
        }
        const st = await lstat(file).catch(() => undefined);
        if (!st) throw new PackageError('RELEASE_ARCHIVE_MISSING', `${a.file} is listed in release.json but missing`, { file });
        // A link would let release.json point the merge at any file on the machine (its hash would still match).
        if (!st.isFile()) {
          throw new PackageError('RELEASE_ARCHIVE_NOT_FILE', `${a.file} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}; archives are read only as regular files`, {
            file,
            fix: 'download the release again (archives are plain files)',
          });
        }
        if (st.size !== a.bytes || (await sha256File(file)) !== a.sha256) {
          throw new PackageError('RELEASE_ARCHIVE_DAMAGED', `${a.file} does not match the sha256/size its release.json records`, {
            file,
            fix: 'download or rebuild that release again',
          });
        }
        if (d !== out && !prevClaim) await copyFileAtomic(file, join(out, a.file));
        claimed.set(a.file, { sha256: a.sha256, from: d });
      }
      const prev = entries.get(e.name);
      if (prev && JSON.stringify(prev.archives) !== JSON.stringify(e.archives)) {
        throw new PackageError('RELEASE_DUPLICATE', `${e.name} appears in two releases with different archives`, { file: d });
      }
      entries.set(e.name, e);
    }
  }
  if (entries.size === 0) throw new PackageError('RELEASE_EMPTY', 'the releases to merge hold no archives', { fix: 'pass folders written by `pnpm pipeline release`' });
  const index: ReleaseIndex = {
    format: 'phi-forge-release',
    formatVersion: 1,
    tool: { name: TOOL_NAME, version: TOOL_VERSION },
    entries: [...entries.values()].sort((a, b) => compareNames(a.name, b.name)),
  };
  await writeIndexAndSums(out, index);
  return index;
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

async function checkedManifest(dir: string): Promise<PackageManifest> {
  const manifest = await readManifest(dir);
  const problems = await checkFiles(dir, manifest);
  if (problems.length) {
    throw new PackageError('RELEASE_PACKAGE_DAMAGED', `the package does not match its manifest: ${problems.map((p) => `${p.path} (${p.problem})`).join(', ')}`, {
      file: dir,
      fix: 'rebuild it (`pnpm pipeline build`) and release again',
    });
  }
  const v = validationOf(manifest.validation);
  if (v?.gates && !v.gates.passed) {
    throw new GateError('RELEASE_GATE_FAILED', `the package's validation failed its gates; it cannot be released`, {
      file: dir,
      fix: "fix the quantization or relax the recipe's gates, then rebuild",
    });
  }
  return manifest;
}

async function archive(dir: string, out: string, name: string, zip: boolean | undefined): Promise<ReleaseArchive[]> {
  const done: [ArchiveResult, ReleaseArchive['format']][] = [[await writeTarGz(dir, join(out, `${name}.tar.gz`), { root: name }), 'tar.gz']];
  if (zip) done.push([await writeZip(dir, join(out, `${name}.zip`), { root: name }), 'zip']);
  return done.map(([r, format]) => ({ file: basename(r.file), format, bytes: r.bytes, sha256: r.sha256 }));
}

/** Copies under a temporary name and renames into place: a link already at `dest` is replaced, never written through. */
async function copyFileAtomic(src: string, dest: string): Promise<void> {
  const tmp = tempSibling(dest);
  try {
    await copyFile(src, tmp, constants.COPYFILE_EXCL);
    await rename(tmp, dest);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

async function writeIndexAndSums(out: string, index: ReleaseIndex): Promise<void> {
  const indexText = JSON.stringify(index, null, 2) + '\n';
  await writeFileAtomic(join(out, RELEASE_INDEX), indexText);
  const files = index.entries.flatMap((e) => e.archives.map((a) => ({ file: a.file, sha256: a.sha256 })));
  files.push({ file: RELEASE_INDEX, sha256: sha256Hex(indexText) });
  await writeFileAtomic(join(out, RELEASE_SUMS), formatSums(files));
}

function targetInfo(m: PackageManifest): TargetInfo {
  return { target: m.target, precision: m.precision, quantization: m.quantization, validation: validationOf(m.validation) };
}

/** The deterministic part of a manifest's validation record: metrics, their data and gate verdicts (no timings). */
function validationOf(v: unknown): ReleaseValidation | null {
  if (!v || typeof v !== 'object') return null;
  const r = v as { metrics?: unknown; data?: unknown; gates?: { passed?: unknown; rows?: unknown } };
  const gates = r.gates && typeof r.gates.passed === 'boolean' ? { passed: r.gates.passed, rows: r.gates.rows ?? [] } : null;
  return { metrics: r.metrics ?? null, data: typeof r.data === 'string' ? r.data : null, gates };
}

function packageBytes(m: PackageManifest): number {
  return m.files.reduce((n, f) => n + f.size, 0);
}

function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
