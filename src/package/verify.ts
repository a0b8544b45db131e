// Package verification: every file re-hashed against manifest.json (problems named by file), genai_config.json
// parsed, and a short greedy generation from BOS on onnxruntime's CPU EP to prove the package loads and runs.
// A model package (onnxruntime's multi-variant layout) is checked structurally, then each variant as a package.
import { providerProblem } from '../genai/providers.js';
import { readGenaiConfig } from '../genai/read.js';
import { getTarget, isTargetId, targetForExecutionProvider } from '../target/index.js';
import { isPhiForgeError } from '../util/errors.js';
import { checkFiles, readManifest, type FileProblem, type PackageManifest } from './manifest.js';
import { isModelPackage, readModelPackage } from './model-package.js';

export interface VerifyOptions {
  /** Run the short generation (default true). */
  generate?: boolean;
  /** Tokens to generate from BOS (default 4). */
  maxNewTokens?: number;
}

export type GenerationCheck =
  | { status: 'ok'; promptTokens: number[]; tokens: number[] }
  | { status: 'skipped'; reason: string }
  | { status: 'failed'; error: string };

export interface PackageVerification {
  kind: 'package';
  dir: string;
  ok: boolean;
  model?: string;
  target?: string;
  /** Problems reading manifest.json itself (then nothing else is checked). */
  manifestError?: string;
  files: { checked: number; bytes: number; problems: FileProblem[] };
  genaiConfig: { ok: boolean; error?: string };
  generation: GenerationCheck;
}

export interface ModelPackageVerification {
  kind: 'model-package';
  dir: string;
  ok: boolean;
  /** Layout problems (manifest.json, component.json, variants' providers). */
  problems: string[];
  variants: { component: string; name: string; ep?: string; result: PackageVerification }[];
}

export type Verification = PackageVerification | ModelPackageVerification;

/** Verifies a package folder or a model-package folder. Never throws for a bad package: the report says what is wrong. */
export async function verify(dir: string, opts: VerifyOptions = {}): Promise<Verification> {
  return (await isModelPackage(dir)) ? verifyModelPackage(dir, opts) : verifyPackage(dir, opts);
}

export async function verifyPackage(dir: string, opts: VerifyOptions = {}): Promise<PackageVerification> {
  const report: PackageVerification = {
    kind: 'package',
    dir,
    ok: false,
    files: { checked: 0, bytes: 0, problems: [] },
    genaiConfig: { ok: false },
    generation: { status: 'skipped', reason: 'not reached' },
  };
  let manifest: PackageManifest;
  try {
    manifest = await readManifest(dir);
  } catch (e) {
    report.manifestError = messageOf(e);
    report.generation = { status: 'skipped', reason: 'no valid manifest.json' };
    return report;
  }
  report.model = manifest.model;
  report.target = manifest.target;
  report.files = {
    checked: manifest.files.length,
    bytes: manifest.files.reduce((n, f) => n + f.size, 0),
    problems: await checkFiles(dir, manifest),
  };

  try {
    const cfg = (await readGenaiConfig(dir)).decoder;
    if (!manifest.files.some((f) => f.path === cfg.modelFile)) {
      report.genaiConfig = { ok: false, error: `model.decoder.filename names ${cfg.modelFile}, which manifest.json does not list` };
    } else {
      report.genaiConfig = { ok: true };
    }
  } catch (e) {
    report.genaiConfig = { ok: false, error: messageOf(e) };
  }

  if (opts.generate === false) {
    report.generation = { status: 'skipped', reason: 'generation not requested' };
  } else if (report.files.problems.length) {
    report.generation = { status: 'skipped', reason: 'files do not match manifest.json' };
  } else if (!report.genaiConfig.ok) {
    report.generation = { status: 'skipped', reason: 'genai_config.json is not usable' };
  } else {
    report.generation = await tryGeneration(dir, manifest.target, opts.maxNewTokens ?? 4);
  }
  report.ok = report.files.problems.length === 0 && report.genaiConfig.ok && report.generation.status !== 'failed';
  return report;
}

export async function verifyModelPackage(dir: string, opts: VerifyOptions = {}): Promise<ModelPackageVerification> {
  const report: ModelPackageVerification = { kind: 'model-package', dir, ok: false, problems: [], variants: [] };
  let layout;
  try {
    layout = await readModelPackage(dir);
  } catch (e) {
    report.problems.push(messageOf(e));
    return report;
  }
  for (const c of layout.components) {
    if (c.variants.length === 0) report.problems.push(`component '${c.name}' has no variants`);
    for (const v of c.variants) {
      const result = await verifyPackage(v.dir, opts);
      report.variants.push({ component: c.name, name: v.name, ep: v.ep, result });
      const problem = await providerMismatch(v.dir, v.ep);
      if (problem) report.problems.push(`variant '${v.name}': ${problem}`);
      if (result.target && isTargetId(result.target) && v.ep && getTarget(result.target).executionProvider !== v.ep) {
        report.problems.push(`variant '${v.name}': declares ${v.ep} but holds a ${result.target} package`);
      }
    }
  }
  report.ok = report.problems.length === 0 && report.variants.length > 0 && report.variants.every((v) => v.result.ok);
  return report;
}

/**
 * Opens the package on the CPU EP and greedily generates a few tokens from BOS. A package for an accelerator
 * (cuda, dml) may use ops the CPU EP has no kernel for: then the run is skipped with the op named, not failed.
 */
async function tryGeneration(dir: string, target: string, maxNewTokens: number): Promise<GenerationCheck> {
  const { DecoderSession } = await import('../runtime/decoder-session.js');
  const { greedyGenerate } = await import('../runtime/greedy.js');
  const cpuTarget = isTargetId(target) && getTarget(target).executionProvider === 'CPUExecutionProvider';
  let session;
  try {
    session = await DecoderSession.open(dir);
  } catch (e) {
    const op = missingKernel(messageOf(e));
    if (op && !cpuTarget) {
      return { status: 'skipped', reason: `onnxruntime's CPU EP has no kernel for ${op}; a ${target} package runs on its own EP (structural checks only)` };
    }
    return { status: 'failed', error: messageOf(e) };
  }
  try {
    const bos = session.layout.bosTokenId ?? 0;
    const r = await greedyGenerate(session, [bos], { maxNewTokens, eosTokenIds: session.layout.eosTokenIds });
    if (r.tokens.length === 0) return { status: 'failed', error: 'the model generated no token' };
    return { status: 'ok', promptTokens: [bos], tokens: r.tokens };
  } catch (e) {
    return { status: 'failed', error: messageOf(e) };
  } finally {
    await session.release();
  }
}

/** The op named by onnxruntime's "no kernel" errors, e.g. `com.microsoft.BiasAdd(1)`. */
export function missingKernel(message: string): string | undefined {
  const m =
    /Failed to find kernel for ([\w.:]+\(\d+\))/.exec(message) ??
    /Could not find an implementation for ([\w.:]+\(\d+\))/.exec(message) ??
    /([\w.]+:[\w.]+)\(-?\d+\) is not a registered function\/op/.exec(message);
  return m?.[1];
}

/** The genai_config.json providers must be the variant's EP's (onnxruntime-genai takes providers from the config). */
async function providerMismatch(variantDir: string, ep: string | undefined): Promise<string | undefined> {
  const expected = ep === undefined ? undefined : targetForExecutionProvider(ep);
  if (!expected) return undefined;
  let problem: string | undefined;
  try {
    problem = providerProblem((await readGenaiConfig(variantDir)).config, expected);
  } catch {
    return undefined; // reported by the variant's own genai_config check
  }
  return problem && `declares ${ep}: ${problem}`;
}

function messageOf(e: unknown): string {
  if (isPhiForgeError(e)) return e.message;
  return e instanceof Error ? e.message : String(e);
}

/** The human report: one line per check, every file problem by name. */
export function formatVerification(v: Verification): string {
  const lines: string[] = [];
  if (v.kind === 'model-package') {
    lines.push(`${v.dir}: model package, ${v.variants.length} variant${v.variants.length === 1 ? '' : 's'}`);
    for (const p of v.problems) lines.push(`  ✖ ${p}`);
    for (const x of v.variants) {
      lines.push(`  variant ${x.component}/${x.name}${x.ep ? ` (${x.ep})` : ''}:`);
      lines.push(...packageLines(x.result).map((l) => `    ${l}`));
    }
  } else {
    lines.push(`${v.dir}${v.model ? `: ${v.model} for ${v.target}` : ''}`);
    lines.push(...packageLines(v).map((l) => `  ${l}`));
  }
  lines.push(v.ok ? 'verified: OK' : 'verification FAILED');
  return lines.join('\n') + '\n';
}

const PROBLEM_WORDS: Record<FileProblem['problem'], string> = {
  missing: 'missing',
  size: 'truncated or resized',
  sha256: 'modified',
  unlisted: 'not in manifest.json',
  'not-a-file': 'not a regular file inside the package',
};

function packageLines(v: PackageVerification): string[] {
  if (v.manifestError) return [`✖ manifest.json: ${v.manifestError}`];
  const out: string[] = [];
  if (v.files.problems.length === 0) {
    out.push(`✔ files: ${v.files.checked} match manifest.json (${v.files.bytes} bytes)`);
  } else {
    out.push(`✖ files: ${v.files.problems.length} of ${v.files.checked} do not match manifest.json`);
    for (const p of v.files.problems) out.push(`    ${p.path}: ${PROBLEM_WORDS[p.problem]} (${p.detail})`);
  }
  out.push(v.genaiConfig.ok ? '✔ genai_config.json: parses' : `✖ genai_config.json: ${v.genaiConfig.error}`);
  const g = v.generation;
  if (g.status === 'ok') out.push(`✔ generation: ${g.tokens.length} tokens from BOS on the CPU EP: ${g.tokens.join(' ')}`);
  else if (g.status === 'skipped') out.push(`- generation skipped: ${g.reason}`);
  else out.push(`✖ generation failed: ${g.error}`);
  return out;
}
