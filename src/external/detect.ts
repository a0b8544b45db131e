// detectExternalBuilder: before any work, is the external builder runnable here? One probe, one clear error with
// the install command when it is not.
import type { TargetId } from '../target/types.js';
import { ExternalToolError } from '../util/errors.js';
import { findOnPath, locatePython, probePython, siblingExecutable, type LocatedPython } from './python.js';
import { checkRequirements, installCommand, requirementsFor, type ExternalBuilderKind } from './requirements.js';

export interface ExternalToolInfo {
  kind: ExternalBuilderKind;
  python: LocatedPython;
  pythonVersion: string;
  /** Versions found, by module name (onnxruntime_genai, transformers, torch, onnx, olive). */
  versions: Record<string, string | null>;
  /** The `olive` command (kind `olive` only): next to the interpreter, else on PATH. */
  olive?: string;
}

export interface DetectOptions {
  /** The install hint names the CUDA / DirectML wheels for those targets. */
  target?: TargetId;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

/** Finds the interpreter, probes its packages, and throws one ExternalToolError naming everything that is missing. */
export async function detectExternalBuilder(kind: ExternalBuilderKind, python?: string, opts: DetectOptions = {}): Promise<ExternalToolInfo> {
  const env = opts.env ?? process.env;
  const located = await locatePython(python, env);
  const probe = await probePython(located, requirementsFor(kind), { env, signal: opts.signal });
  const problems = checkRequirements(probe, kind);
  const tool = kind === 'genai' ? 'the onnxruntime-genai model builder' : 'Olive';
  if (problems.length) {
    const lines = problems.map((p) =>
      p.kind === 'missing'
        ? `${p.requirement.install(opts.target)} is not installed (${p.detail}); it ${p.requirement.why}`
        : `${p.requirement.install(opts.target)} ${p.detail} is older than ${p.requirement.min}, the oldest version phi-forge drives`,
    );
    const outdatedOnly = problems.every((p) => p.kind === 'outdated');
    throw new ExternalToolError(
      outdatedOnly ? 'EXTERNAL_PACKAGE_OUTDATED' : 'EXTERNAL_PACKAGE_MISSING',
      `${tool} cannot run with ${located.path} (Python ${probe.pythonVersion}, from ${located.source}):\n  ${lines.join('\n  ')}`,
      { fix: `run: ${installCommand(located.path, problems, opts.target)}` },
    );
  }
  const versions: Record<string, string | null> = {};
  for (const [mod, st] of Object.entries(probe.packages)) versions[mod] = st.version ?? null;
  const info: ExternalToolInfo = { kind, python: located, pythonVersion: probe.pythonVersion, versions };
  if (kind === 'olive') {
    // The console script of the same environment first, so --python picks the Olive that goes with it.
    info.olive = (await siblingExecutable(located, 'olive')) ?? (await findOnPath('olive', env));
    if (!info.olive) {
      const olive = versions.olive ? `olive-ai ${versions.olive}` : 'olive-ai';
      throw new ExternalToolError('EXTERNAL_OLIVE_MISSING', `${olive} is installed for ${located.path}, but there is no \`olive\` command next to it or on PATH`, {
        fix: `add the environment's bin folder to PATH, or reinstall: ${located.path} -m pip install --force-reinstall "olive-ai"`,
      });
    }
  }
  return info;
}
