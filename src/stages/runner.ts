// The stage runner: a stage is a function from hashed inputs + options to an output folder under
// artifacts/<model>/<stage>/<key>/, written in a temporary folder and renamed into place when complete, with a
// stage.json recording what made it. A folder with a stage.json is a finished stage; anything else is debris of an
// interrupted run and is removed.
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assertModelName } from '../recipes/model-name.js';
import { StageError, isPhiForgeError } from '../util/errors.js';
import { canonicalJson, hashJson } from '../util/hash.js';
import { TOOL_VERSION } from '../util/version.js';

export const STAGE_FILE = 'stage.json';

export interface StageProgress {
  /** Units done and total, e.g. bytes or tensors. */
  done: number;
  total?: number;
  unit?: 'bytes' | 'tensors' | 'tokens' | 'files' | 'steps';
  message?: string;
}

export interface StageContext {
  /** The temporary folder the stage writes into; it becomes the stage's folder when run() resolves. */
  outDir: string;
  progress(p: StageProgress): void;
  signal?: AbortSignal;
}

export interface StageRecord<R = unknown> {
  stage: string;
  key: string;
  toolVersion: string;
  /** Hashes of the inputs (upstream stage keys, file content hashes) that determined the output. */
  inputs: Record<string, string>;
  options: unknown;
  result: R;
  startedAt: string;
  seconds: number;
}

export interface StageDefinition<R> {
  /** Stage name, e.g. `convert`; also the folder name. */
  name: string;
  /** Bump when the stage's code changes what it writes, so old caches are not reused. */
  version: number;
  /** Model folder name under the artifacts root. */
  model: string;
  inputs: Record<string, string>;
  options: unknown;
  /** Produces the output in ctx.outDir and returns a small JSON-able summary stored in stage.json. */
  run: (ctx: StageContext) => Promise<R>;
}

export interface StageOutcome<R> {
  dir: string;
  key: string;
  cached: boolean;
  record: StageRecord<R>;
}

/** The cache key of a stage: what it is, which version of it, and everything it depends on. */
export function stageKey(def: Pick<StageDefinition<unknown>, 'name' | 'version' | 'inputs' | 'options'>): string {
  return hashJson({ stage: def.name, version: def.version, inputs: def.inputs, options: def.options }).slice(0, 20);
}

export interface RunStageOptions {
  root: string;
  onProgress?: (p: StageProgress) => void;
  signal?: AbortSignal;
  /** Redo the stage even when a finished output exists. */
  force?: boolean;
}

/** Runs a stage unless its finished output already exists (cache hit). */
export async function runStage<R>(def: StageDefinition<R>, opts: RunStageOptions): Promise<StageOutcome<R>> {
  const key = stageKey(def);
  // The model name becomes a folder under the cache root: one safe segment, never '.', '..' or a path.
  assertModelName(def.model, `stage ${def.name}`);
  const parent = join(opts.root, def.model, def.name);
  const dir = join(parent, key);
  if (!opts.force) {
    const done = await readStageRecord<R>(dir);
    if (done) return { dir, key, cached: true, record: done };
  }
  await mkdir(parent, { recursive: true });
  await removeDebris(parent);
  const tmp = join(parent, `.${key}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(tmp, { recursive: true });
  const startedAt = new Date();
  const t0 = performance.now();
  try {
    opts.signal?.throwIfAborted();
    activeTempDirs.add(tmp);
    // Ctrl-C ends the stage at once, even while its work (which may not watch the signal) is still running: the
    // temporary folder is removed below and the process exits after reporting.
    const result = await raceAbort(def.run({ outDir: tmp, progress: (p) => opts.onProgress?.(p), signal: opts.signal }), opts.signal);
    const record: StageRecord<R> = {
      stage: def.name,
      key,
      toolVersion: TOOL_VERSION,
      inputs: def.inputs,
      options: def.options,
      result,
      startedAt: startedAt.toISOString(),
      seconds: +((performance.now() - t0) / 1000).toFixed(3),
    };
    // stage.json is written last: its presence is what marks the folder as complete.
    await writeFile(join(tmp, STAGE_FILE), JSON.stringify(record, null, 2) + '\n');
    // A folder without stage.json is not a finished stage (force, or debris copied in by hand): replace it.
    if (opts.force || !(await readStageRecord(dir))) await rm(dir, { recursive: true, force: true });
    activeTempDirs.delete(tmp);
    try {
      await rename(tmp, dir);
    } catch (e) {
      // Another run finished the same stage first: its output is equivalent, keep it.
      const other = await readStageRecord<R>(dir);
      if (!other) throw e;
      await rm(tmp, { recursive: true, force: true });
      return { dir, key, cached: true, record: other };
    }
    return { dir, key, cached: false, record };
  } catch (e) {
    activeTempDirs.delete(tmp);
    await rm(tmp, { recursive: true, force: true });
    if (opts.signal?.aborted) throw opts.signal.reason;
    if (isPhiForgeError(e)) throw e;
    throw new StageError('STAGE_FAILED', `stage ${def.name} failed: ${(e as Error)?.message ?? String(e)}`, {
      where: `stage ${def.name}`,
      cause: e,
    });
  }
}

/** Temporary folders of stages now running, removed synchronously if the process is forced to exit. */
const activeTempDirs = new Set<string>();

/** Removes the temporary folders of running stages (for a forced exit; normal paths remove their own). */
export function removeActiveTempDirs(): void {
  for (const d of activeTempDirs) rmSync(d, { recursive: true, force: true });
  activeTempDirs.clear();
}

function raceAbort<T>(work: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return work;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

export async function readStageRecord<R>(dir: string): Promise<StageRecord<R> | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, STAGE_FILE), 'utf8')) as StageRecord<R>;
  } catch {
    return undefined;
  }
}

/** Removes temporary folders of runs whose process is gone (killed mid-stage) and unfinished stage folders. */
async function removeDebris(parent: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(parent);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^\..+\.tmp-(\d+)-[0-9a-f]{8}$/.exec(name);
    if (m && !isAlive(Number(m[1]))) await rm(join(parent, name), { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** For logs: the canonical form of a stage's options (what changed between two builds). */
export function describeOptions(options: unknown): string {
  return canonicalJson(options);
}
