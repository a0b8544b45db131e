// What each external builder needs from its Python environment (packages, oldest versions we drive) and the one
// pip command that installs what is missing.
import { getTarget, TARGETS, type TargetId } from '../target/index.js';
import type { ExternalBuilderKind } from '../vocabulary.js';
import type { PackageQuery, PythonProbe } from './python.js';

// The builder names live in the vocabulary; re-exported for the external modules that import them from here.
export type { ExternalBuilderKind };

export interface Requirement extends PackageQuery {
  /** Distribution to pip-install (may depend on the target: the CUDA and DirectML builds are separate wheels). */
  install: (target: TargetId | undefined) => string;
  /** Oldest version we drive, or undefined when any version does. */
  min?: string;
  /** Why it is needed, for the error message. */
  why: string;
}

/**
 * Oldest onnxruntime-genai we drive: the release line whose builder.py we checked the options against
 * (argparse `-m/-i/-o/-p/-e/-c --extra_options`; extra options int4_block_size, int4_accuracy_level,
 * int4_is_symmetric (true/false parsed), int4_op_types_to_quantize (`/`-separated), int4_nodes_to_exclude
 * (`,`-separated), int4_algo_config, shared_embeddings, exclude_embeds, exclude_lm_head; Phi3ForCausalLM with
 * partial_rotary_factor, i.e. Phi-4-mini). Olive's CLI also refuses --extra_options with onnxruntime-genai ≤ 0.9.0.
 */
export const MIN_GENAI_VERSION = '0.9.0';
/** Phi-4-mini's partial_rotary_factor reached transformers' Phi3 model in 4.49.0; the builder loads weights through it. */
export const MIN_TRANSFORMERS_VERSION = '4.49.0';
/**
 * Oldest Olive we drive: `auto-opt` with singular `--provider/--precision` taking olive.constants.Precision values,
 * `quantize --algorithm awq|gptq`, `run --config`, and the ModelBuilder pass options int4_block_size,
 * int4_accuracy_level, int4_is_symmetric, int4_op_types_to_quantize, int4_nodes_to_exclude, int4_algo_config,
 * extra_options (earlier releases spelled the CLI flags `--providers/--precisions`).
 */
export const MIN_OLIVE_VERSION = '0.9.0';

/** The onnxruntime-genai build for the target's execution provider (the CUDA and DirectML builds are separate wheels). */
const genaiWheel = (target: TargetId | undefined): string => (target ? getTarget(target).genaiPackage : 'onnxruntime-genai');

const GENAI_REQUIREMENTS: readonly Requirement[] = [
  {
    module: 'onnxruntime_genai',
    distributions: [...new Set(TARGETS.map((t) => t.genaiPackage))],
    how: 'import',
    install: genaiWheel,
    min: MIN_GENAI_VERSION,
    why: 'holds the model builder (onnxruntime_genai.models.builder)',
  },
  {
    module: 'transformers',
    distributions: ['transformers'],
    how: 'find',
    install: () => 'transformers',
    min: MIN_TRANSFORMERS_VERSION,
    why: 'loads the checkpoint for the builder',
  },
  { module: 'torch', distributions: ['torch'], how: 'find', install: () => 'torch', why: 'holds the weights while the builder runs' },
  { module: 'onnx', distributions: ['onnx'], how: 'find', install: () => 'onnx', why: 'writes the model' },
];

const OLIVE_REQUIREMENT: Requirement = {
  module: 'olive',
  distributions: ['olive-ai'],
  how: 'import',
  install: () => 'olive-ai',
  min: MIN_OLIVE_VERSION,
  why: 'is Olive itself',
};

/** The packages `kind` needs, in the order they are reported. Olive's ModelBuilder pass runs the genai builder. */
export function requirementsFor(kind: ExternalBuilderKind): readonly Requirement[] {
  return kind === 'olive' ? [OLIVE_REQUIREMENT, ...GENAI_REQUIREMENTS] : GENAI_REQUIREMENTS;
}

export interface RequirementProblem {
  requirement: Requirement;
  /** `missing`: cannot be imported; `outdated`: older than `min`. */
  kind: 'missing' | 'outdated';
  /** The import error, or the version found. */
  detail: string;
}

/** What is missing or too old in the probed environment. */
export function checkRequirements(probe: PythonProbe, kind: ExternalBuilderKind): RequirementProblem[] {
  const problems: RequirementProblem[] = [];
  for (const req of requirementsFor(kind)) {
    const status = probe.packages[req.module];
    if (!status || status.error !== undefined || status.version === undefined) {
      problems.push({ requirement: req, kind: 'missing', detail: status?.error ?? `No module named '${req.module}'` });
    } else if (req.min && status.version !== null && compareVersions(status.version, req.min) < 0) {
      problems.push({ requirement: req, kind: 'outdated', detail: status.version });
    }
  }
  return problems;
}

/** `"<python>" -m pip install --upgrade "a>=1" b`: one command for every problem. */
export function installCommand(python: string, problems: readonly RequirementProblem[], target: TargetId | undefined): string {
  const specs = problems.map(({ requirement: r }) => {
    const name = r.install(target);
    return r.min ? `"${name}>=${r.min}"` : name;
  });
  const upgrade = problems.some((p) => p.kind === 'outdated') ? ' --upgrade' : '';
  return `${shellQuote(python)} -m pip install${upgrade} ${specs.join(' ')}`;
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Compares two PEP 440-ish versions by their release numbers (`0.10.0` > `0.9.2`); a pre-release (`0.9.0rc1`,
 * `0.9.0.dev3`) sorts before its release, local labels (`2.6.0+cu124`) are ignored.
 */
export function compareVersions(a: string, b: string): number {
  const pa = parseVersion(a);
  const pb = parseVersion(b);
  const n = Math.max(pa.release.length, pb.release.length);
  for (let i = 0; i < n; i++) {
    const d = (pa.release[i] ?? 0) - (pb.release[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return Number(pa.pre) === Number(pb.pre) ? 0 : pa.pre ? -1 : 1;
}

function parseVersion(v: string): { release: number[]; pre: boolean } {
  const clean = v.trim().replace(/^v/i, '').split('+')[0];
  const m = /^(\d+(?:\.\d+)*)(.*)$/.exec(clean);
  if (!m) return { release: [0], pre: true };
  return { release: m[1].split('.').map(Number), pre: /^[-_.]?(a|b|c|rc|alpha|beta|pre|preview|dev)/i.test(m[2]) };
}
