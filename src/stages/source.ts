// The source stage: turns a recipe's source (synth preset, llama2.c file, local folder, hub id) into one checkpoint
// folder (config.json with the recipe's architecture overrides applied, weights, tokenizer files). Local and hub
// weights are linked, not copied; the stage is keyed by the content hashes of the files it reads.
import { link, readdir, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { TOKENIZER_FILE_NAMES } from '../checkpoint/tokenizer-files.js';
import { CheckpointError } from '../util/errors.js';
import type { FileHashMemo } from '../util/hash.js';
import type { Recipe } from '../recipes/schema.js';
import type { StageDefinition, StageProgress } from './runner.js';

export interface SourceResult {
  /** What the checkpoint is, for manifests: e.g. `hub:microsoft/Phi-4-mini-instruct@<commit>`. */
  origin: string;
  /** Resolved revision (hub commit) or content hash of a local source. */
  revision: string;
  architecture: string;
  files: string[];
}

export interface SourceStageInput {
  model: string;
  recipe: Recipe;
  /** Resolves a path written in the recipe. */
  resolvePath: (p: string) => string;
  memo: FileHashMemo;
  hubToken?: string;
  signal?: AbortSignal;
}

const VERSION = 1;

/** Files of a checkpoint folder the build reads: configs, weights, and the tokenizer files transformers reads. */
function isCheckpointFile(name: string): boolean {
  return (
    /^(config\.json|generation_config\.json|.*\.safetensors|model\.safetensors\.index\.json)$/.test(name) ||
    (TOKENIZER_FILE_NAMES as readonly string[]).includes(name)
  );
}

/** Builds the stage definition; for local sources this hashes the inputs first (memoized across runs). */
export async function sourceStage(input: SourceStageInput): Promise<StageDefinition<SourceResult>> {
  const { recipe } = input;
  const src = recipe.source;
  const tokenizer = recipe.tokenizer;
  const common = { architecture: recipe.architecture, tokenizer: tokenizer ?? null };
  // The recipe's own tokenizer files are inputs like the weights: checked now, and an edit to them redoes the stage.
  const tokenizerInputs = await recipeTokenizerInputs(input);

  if ('synth' in src) {
    return {
      name: 'source',
      version: VERSION,
      model: input.model,
      inputs: tokenizerInputs,
      options: { ...common, synth: src.synth },
      run: async (ctx) => {
        const { synthCheckpoint } = await import('../arch/synth.js');
        await synthCheckpoint({ ...src.synth, outDir: ctx.outDir });
        return finish(ctx.outDir, input, `synth:${src.synth.preset}/${src.synth.scale}/seed${src.synth.seed}`, 'synthetic');
      },
    };
  }

  if ('llama2c' in src) {
    const file = input.resolvePath(src.llama2c);
    const sha = await hashOrFail(input.memo, file);
    return {
      name: 'source',
      version: VERSION,
      model: input.model,
      inputs: { [basename(file)]: sha, ...tokenizerInputs },
      options: common,
      run: async (ctx) => {
        const { convertLlama2c } = await import('../checkpoint/llama2c.js');
        await convertLlama2c({ file, outDir: ctx.outDir });
        return finish(ctx.outDir, input, `llama2c:${basename(file)}`, `sha256:${sha}`);
      },
    };
  }

  if ('path' in src) {
    const dir = input.resolvePath(src.path);
    const files = await checkpointFiles(dir);
    const inputs: Record<string, string> = {};
    for (const f of files) inputs[f] = await hashOrFail(input.memo, join(dir, f));
    const revision = `sha256:${(await import('../util/hash.js')).hashJson(inputs)}`;
    return {
      name: 'source',
      version: VERSION,
      model: input.model,
      inputs: { ...inputs, ...tokenizerInputs },
      options: common,
      run: async (ctx) => {
        await linkFiles(dir, files, ctx.outDir);
        return finish(ctx.outDir, input, `path:${dir}`, revision);
      },
    };
  }

  // Hub: the download is cached in the shared hub cache (not in the stage); the stage key is the resolved commit.
  const { fetchCheckpoint } = await import('../hub/index.js');
  let fetched: Awaited<ReturnType<typeof fetchCheckpoint>> | undefined;
  const fetchOnce = async (onProgress?: (p: StageProgress) => void) =>
    (fetched ??= await fetchCheckpoint({
      repo: src.hub,
      revision: src.revision,
      token: input.hubToken,
      signal: input.signal,
      onProgress: onProgress && ((p) => onProgress({ done: p.bytes, total: p.totalBytes, unit: 'bytes', message: p.file })),
    }));
  const first = await fetchOnce();
  return {
    name: 'source',
    version: VERSION,
    model: input.model,
    inputs: { commit: first.commit, ...tokenizerInputs },
    options: { ...common, hub: src.hub },
    run: async (ctx) => {
      const got = await fetchOnce(ctx.progress);
      // The returned list, not the snapshot folder: a snapshot shared with Python tools may hold other files.
      await linkFiles(got.snapshotDir, got.files, ctx.outDir);
      return finish(ctx.outDir, input, `hub:${src.hub}@${got.commit}`, got.commit);
    },
  };
}

/** Content hashes of the tokenizer files a recipe's `tokenizer.path` names; a folder without a tokenizer is an error. */
async function recipeTokenizerInputs(input: SourceStageInput): Promise<Record<string, string>> {
  const tok = input.recipe.tokenizer;
  if (!tok || !('path' in tok)) return {};
  const dir = input.resolvePath(tok.path);
  const { findTokenizerFiles, hasUsableTokenizer } = await import('../checkpoint/tokenizer-files.js');
  const files = await findTokenizerFiles(dir);
  if (!hasUsableTokenizer(files)) {
    throw new CheckpointError(
      'TOKENIZER_MISSING',
      files.length ? "the recipe's tokenizer folder has no tokenizer.json or tokenizer.model" : "the recipe's tokenizer folder does not exist or holds no tokenizer files",
      { file: dir, fix: 'point tokenizer.path (relative to the recipe file) at a folder holding tokenizer.json, or remove it to use the checkpoint\'s' },
    );
  }
  const out: Record<string, string> = {};
  for (const f of files) out[`tokenizer/${basename(f)}`] = await hashOrFail(input.memo, f);
  return out;
}

async function hashOrFail(memo: FileHashMemo, file: string): Promise<string> {
  try {
    return await memo.hash(file);
  } catch (e) {
    throw new CheckpointError('SOURCE_MISSING', `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, {
      file,
      fix: 'check the source path in the recipe (relative paths are relative to the recipe file)',
    });
  }
}

async function checkpointFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    throw new CheckpointError('SOURCE_MISSING', `checkpoint folder does not exist`, {
      file: dir,
      fix: 'point the recipe source (or the build argument) at a Hugging Face checkpoint folder with config.json',
    });
  }
  if (!names.includes('config.json')) {
    throw new CheckpointError('SOURCE_NO_CONFIG', `no config.json in the checkpoint folder`, {
      file: dir,
      fix: 'a Hugging Face checkpoint folder holds config.json and *.safetensors files',
    });
  }
  return names.filter(isCheckpointFile).sort();
}

/** Hard-links (same filesystem) or symlinks the files into the stage folder: no multi-GB copies. */
async function linkFiles(from: string, files: string[], to: string): Promise<void> {
  for (const f of files) {
    // Hub snapshots hold relative symlinks into blobs/: link the real file, not the symlink.
    const real = await realpath(join(from, f));
    try {
      await link(real, join(to, f));
    } catch {
      await symlink(real, join(to, f));
    }
  }
}

/** Applies architecture overrides and tokenizer settings, and describes the checkpoint. */
async function finish(dir: string, input: SourceStageInput, origin: string, revision: string): Promise<SourceResult> {
  const configPath = join(dir, 'config.json');
  let config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
  const overrides: Record<string, unknown> = { ...input.recipe.architecture };
  const tok = input.recipe.tokenizer;
  if (tok && 'builtin' in tok) {
    const { writeTinyTokenizer, tinyTokenizerSpecialIds } = await import('../checkpoint/tiny-tokenizer.js');
    await writeTinyTokenizer(dir, Number(config.vocab_size));
    // The model's special ids must be the tokenizer's (a synthetic checkpoint's own ids are arbitrary).
    const ids = tinyTokenizerSpecialIds(Number(config.vocab_size));
    Object.assign(overrides, { bos_token_id: ids.bos, eos_token_id: ids.eos, pad_token_id: ids.pad }, input.recipe.architecture);
    // Generation stops at the end of text and at the end of a chat turn, as Phi-3's generation_config does.
    await replaceJson(join(dir, 'generation_config.json'), { bos_token_id: ids.bos, eos_token_id: [ids.eos, ids.end], pad_token_id: ids.pad });
  } else if (tok && 'path' in tok) {
    const { findTokenizerFiles, copyTokenizerFiles } = await import('../checkpoint/tokenizer-files.js');
    await copyTokenizerFiles(await findTokenizerFiles(input.resolvePath(tok.path)), dir);
  }
  if (Object.keys(overrides).length) config = await replaceJson(configPath, overrides);
  const arch = Array.isArray(config.architectures) ? String(config.architectures[0]) : '';
  return { origin, revision, architecture: arch, files: (await readdir(dir)).sort() };
}

/**
 * Rewrites a JSON file with some keys replaced (a missing file is created). The file is removed first: it may be a
 * link into the user's checkpoint or the hub cache, which must never be written through.
 */
async function replaceJson(file: string, values: Record<string, unknown>): Promise<Record<string, unknown>> {
  const old = JSON.parse(await readFile(file, 'utf8').catch(() => '{}')) as Record<string, unknown>;
  const next = { ...old, ...values };
  await rm(file, { force: true });
  await writeFile(file, JSON.stringify(next, null, 2) + '\n');
  return next;
}
