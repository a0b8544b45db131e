// The package stage: assembles what users ship for one target — model.onnx + model.onnx.data, genai_config.json
// selecting the target's execution provider (the model folder's is laid out per graph layout), tokenizer files and
// chat template, manifest.json with sha256 + size of every file — and enforces the size budget. publishPackage then
// copies the finished package to its stable location (atomic replace).
import { constants } from 'node:fs';
import { copyFile, mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { TOKENIZER_FILE_NAMES } from '../checkpoint/tokenizer-files.js';
import { withProviders } from '../genai/providers.js';
import { GENAI_CONFIG_FILE, readGenaiConfig } from '../genai/read.js';
import { writeGenaiConfig } from '../genai/write.js';
import { buildManifest, MANIFEST_FILE, packageFilesToCopy, readManifest } from '../package/manifest.js';
import type { GateVerdict } from '../eval/gates.js';
import type { Recipe } from '../recipes/schema.js';
import { writeDirAtomic } from '../util/atomic-fs.js';
import { PackageError } from '../util/errors.js';
import type { StageDefinition, StageOutcome } from './runner.js';
import type { TargetPlan } from '../recipes/target-plan.js';
import type { SourceResult } from './source.js';
import type { ValidateResult } from './validate.js';

export interface PackageResult {
  files: { path: string; size: number }[];
  bytes: number;
}

/** Files a model folder contributes to the package (weights, runtime config, tokenizer, chat template). */
const PACKAGE_FILES: ReadonlySet<string> = new Set(['model.onnx', 'model.onnx.data', GENAI_CONFIG_FILE, 'generation_config.json', ...TOKENIZER_FILE_NAMES]);

export function packageStage(input: {
  model: string;
  recipe: Recipe & { name: string };
  source: StageOutcome<SourceResult>;
  plan: TargetPlan;
  modelDir: string;
  modelKey: string;
  validation?: ValidateResult;
  /** Gate verdicts (the package stage only runs when they passed). */
  gates?: GateVerdict;
}): StageDefinition<PackageResult> {
  const { plan, source } = input;
  return {
    name: 'package',
    // 2: mobile packages are pre-optimised, every package is checked against its execution provider.
    // 3: every tokenizer file name of checkpoint/tokenizer-files (vocab.json, merges.txt, ... were left out).
    // 4: genai_config.json selects the plan's target's provider (the model folder's is per graph layout).
    version: 4,
    model: input.model,
    inputs: { model: input.modelKey, source: source.key },
    options: {
      recipe: input.recipe.name,
      target: plan.target.id,
      sizeBudgetMb: plan.sizeBudgetMb ?? null,
      validation: input.validation?.metrics ?? null,
      gates: input.gates ?? null,
    },
    run: async (ctx) => {
      const names = (await readdir(input.modelDir)).filter((n) => PACKAGE_FILES.has(n)).sort();
      for (const need of ['model.onnx', GENAI_CONFIG_FILE]) {
        if (!names.includes(need)) {
          throw new PackageError('PACKAGE_INCOMPLETE', `the model folder has no ${need}`, { file: input.modelDir });
        }
      }
      let done = 0;
      for (const n of names) {
        if (n === GENAI_CONFIG_FILE) await writeGenaiConfig(ctx.outDir, withProviders((await readGenaiConfig(input.modelDir)).config, plan.target));
        else await copyFile(join(input.modelDir, n), join(ctx.outDir, n), constants.COPYFILE_FICLONE);
        ctx.progress({ done: ++done, total: names.length, unit: 'files', message: n });
      }
      // Tokenizer files come with the model folder when the builder copied them; otherwise from the checkpoint.
      for (const n of (await readdir(source.dir)).filter((f) => PACKAGE_FILES.has(f) && !names.includes(f) && !f.startsWith('model.'))) {
        await copyFile(join(source.dir, n), join(ctx.outDir, n), constants.COPYFILE_FICLONE);
      }
      // Pre-optimised targets (mobile): optimised offline (ORT basic level) so devices load faster; the manifest hashes what ships.
      if (plan.target.preOptimized) {
        const { optimizeOffline } = await import('../package/optimize.js');
        ctx.progress({ done: 0, message: 'pre-optimising the graph (onnxruntime basic level)' });
        await optimizeOffline(ctx.outDir, ctx.outDir, { level: 'basic', target: plan.target });
      }
      // Every target: ops, dtypes and I/O its execution provider runs, and a forward where the CPU EP can run it.
      const { checkPackageForTarget } = await import('../package/ep-check.js');
      const check = await checkPackageForTarget(ctx.outDir, plan.target, { activationDtype: plan.layout.activationDtype });
      if (!check.ok) {
        throw new PackageError('PACKAGE_EP_CHECK', `the ${plan.target.id} package cannot run on ${check.executionProvider}:\n  - ${check.problems.join('\n  - ')}`, {
          where: `target ${plan.target.id}`,
          fix: 'build this target with ops and dtypes its execution provider supports (src/target/ops.ts lists them)',
        });
      }
      const manifest = await buildManifest(ctx.outDir, {
        model: input.model,
        recipe: input.recipe.name,
        target: plan.target.id,
        source: { origin: source.record.result.origin, revision: source.record.result.revision },
        architecture: source.record.result.architecture,
        precision: plan.precision,
        quantization: plan.quant ?? { scheme: 'none' },
        validation: input.validation ? { ...input.validation, gates: input.gates ?? null } : null,
      });
      const bytes = manifest.files.reduce((n, f) => n + f.size, 0);
      if (plan.sizeBudgetMb !== undefined && bytes > plan.sizeBudgetMb * 2 ** 20) {
        throw new PackageError(
          'PACKAGE_OVER_BUDGET',
          `package is ${(bytes / 2 ** 20).toFixed(1)} MiB, over the recipe's size_budget_mb of ${plan.sizeBudgetMb}`,
          { where: `target ${plan.target.id}`, fix: 'use a smaller quantization (ternary, int4 embeddings) or raise size_budget_mb' },
        );
      }
      await writeFile(join(ctx.outDir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
      return { files: manifest.files.map(({ path, size }) => ({ path, size })), bytes };
    },
  };
}

/**
 * Why publishing to `dest` would destroy something of the user's, or undefined when it is safe: `dest` is absent,
 * empty, or a package we published (manifest.json plus exactly the files it lists). Anything else — a folder of the
 * user's that happens to have the package's name, a package with files added to it — is replaced only with --force.
 */
export async function publishConflict(dest: string): Promise<string | undefined> {
  const st = await stat(dest).catch(() => undefined);
  if (!st) return undefined;
  if (!st.isDirectory()) return 'it is a file';
  const present = await filesBelow(dest);
  if (present.length === 0) return undefined;
  const manifest = await readManifest(dest).catch(() => undefined);
  if (!manifest) return `it is not a phi-forge package (no valid ${MANIFEST_FILE}) and holds ${present.length} file(s)`;
  const listed = new Set([...manifest.files.map((f) => f.path), MANIFEST_FILE]);
  const extra = present.filter((f) => !listed.has(f));
  return extra.length ? `it holds files that are not part of the package: ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', …' : ''}` : undefined;
}

/** Every non-folder entry below `dir`, as relative '/' paths. */
async function filesBelow(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await filesBelow(dir, rel)));
    else out.push(rel);
  }
  return out;
}

/** Refuses to publish over `dest` when {@link publishConflict} finds something of the user's there (unless forced). */
export async function checkPublishTarget(dest: string, force: boolean | undefined): Promise<void> {
  const conflict = force ? undefined : await publishConflict(dest);
  if (conflict) {
    throw new PackageError('OUT_HOLDS_USER_FILES', `will not replace ${dest}: ${conflict}`, {
      file: dest,
      fix: 'choose another --out, move those files away, or pass --force to replace the folder',
    });
  }
}

/**
 * Copies a finished package folder to <outRoot>/<name>, replacing what was there atomically — only a previous
 * package, unless `force` (see {@link publishConflict}).
 */
export async function publishPackage(pkgDir: string, outRoot: string, name: string, force?: boolean): Promise<string> {
  const dest = join(outRoot, name);
  await checkPublishTarget(dest, force);
  try {
    await mkdir(outRoot, { recursive: true });
  } catch (e) {
    throw new PackageError('OUT_UNWRITABLE', `cannot create the output folder (${(e as NodeJS.ErrnoException).code})`, {
      file: outRoot,
      fix: 'choose a writable --out folder',
    });
  }
  try {
    // Exactly the manifest's files and the manifest: not the stage's own stage.json (build metadata with times).
    const files = await packageFilesToCopy(pkgDir, await readManifest(pkgDir));
    await writeDirAtomic(dest, async (tmp) => {
      for (const f of files) {
        await mkdir(dirname(join(tmp, f)), { recursive: true });
        await copyFile(join(pkgDir, f), join(tmp, f), constants.COPYFILE_FICLONE);
      }
    });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
      throw new PackageError('OUT_UNWRITABLE', `cannot write the package (${code})`, { file: dest, fix: 'choose a writable --out folder' });
    }
    throw e;
  }
  await stat(join(dest, MANIFEST_FILE));
  return dest;
}
