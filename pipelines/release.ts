// `release`: builds every recipe × target, refuses to ship when any target failed (a stage or a gate), then writes
// one reproducible archive per package (+ .zip, + onnxruntime model package) with SHA256SUMS and a release.json
// index read from the packages' manifests. Same packages in → byte-identical archives, release.json and SHA256SUMS
// out: nothing time- or machine-dependent goes into them (timings are in the returned report only). The index
// format itself (release.json, SHA256SUMS) lives in src/package/release-index.ts.
import { constants } from 'node:fs';
import { copyFile, lstat, mkdir, rename, rm } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { writeTarGz, writeZip, type ArchiveResult } from '../src/package/archive.js';
import {
  compareNames,
  RELEASE_INDEX,
  readReleaseIndex,
  targetInfo,
  validationOf,
  writeIndexAndSums,
  type ReleaseArchive,
  type ReleaseEntry,
  type ReleaseIndex,
} from '../src/package/release-index.js';
import { checkFiles, readManifest, type PackageManifest } from '../src/package/manifest.js';
import { MODEL_PACKAGE_SUFFIX, writeModelPackage } from '../src/package/model-package.js';
import { resolveBuildSpec } from '../src/recipes/build-spec.js';
import type { TargetId } from '../src/recipes/schema.js';
import { tempSibling } from '../src/util/atomic-fs.js';
import { GateError, isPhiForgeError, PackageError, type PhiForgeError } from '../src/util/errors.js';
import { sha256File } from '../src/util/hash.js';
import { TOOL_NAME, TOOL_VERSION } from '../src/util/version.js';

export type { ReleaseArchive, ReleaseEntry, ReleaseIndex } from '../src/package/release-index.js';

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

function packageBytes(m: PackageManifest): number {
  return m.files.reduce((n, f) => n + f.size, 0);
}
