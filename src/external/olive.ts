// Olive from a build request: the `olive` command lines for each mode and, for `olive run --config`, the workflow
// config JSON with one ModelBuilder pass carrying the recipe's quant options.
import { join } from 'node:path';
import { getTarget, type TargetId } from '../target/index.js';
import type { OliveBuilderOptions } from './options.js';
import { decideQuant, unsupported, type QuantDecision, type RecipeQuant } from './quant-mapping.js';

/** Olive's accelerator for a target: its device and execution provider (the target's own). */
export function oliveAccelerator(target: TargetId): { device: string; provider: string } {
  const t = getTarget(target);
  return { device: t.device, provider: t.executionProvider };
}

/** The pass name in generated configs (a key of `passes`). */
export const OLIVE_PASS_NAME = 'builder';

export interface OliveBuildInput {
  checkpointDir: string;
  /** Olive's output folder (`-o` / output_dir); the model lands there or in a subfolder (e.g. `model/`). */
  outputDir: string;
  /** Scratch folder: the generated config, `quantize` mode's intermediate model. */
  workDir: string;
  precision: 'fp32' | 'fp16';
  target: TargetId;
  quant?: RecipeQuant;
  /** The checkpoint's tie_word_embeddings. */
  tiedEmbeddings?: boolean;
  options: OliveBuilderOptions;
}

export interface OliveStep {
  /** Arguments after the `olive` executable. */
  args: string[];
  /** For messages, e.g. `olive auto-opt`. */
  label: string;
}

export interface OlivePlan {
  steps: OliveStep[];
  quant: QuantDecision;
  /** `run` mode: the config to write to `configFile` before the step runs. */
  config?: Record<string, unknown>;
  configFile?: string;
}

export function olivePlan(input: OliveBuildInput): OlivePlan {
  const o = input.options;
  const acc = oliveAccelerator(input.target);
  const algos = o.mode === 'quantize' ? (['awq', 'gptq'] as const) : (['rtn'] as const);
  const quant = decideQuant({ kind: 'olive', precision: input.precision, quant: input.quant, who: o.quantize, algos: [...algos], tiedEmbeddings: input.tiedEmbeddings });
  const log = ['--log_level', String(o.log_level)];

  if (o.mode === 'run') {
    const configFile = join(input.workDir, 'olive-config.json');
    return {
      quant,
      config: oliveRunConfig(input, quant),
      configFile,
      steps: [{ label: 'olive run', args: ['run', '--config', configFile, ...o.extra_args] }],
    };
  }

  // auto-opt passes nothing but the precision to the ModelBuilder pass: every other quant setting must be the
  // builder's default, or the package would silently differ from the recipe.
  refuseNonDefaults(input, quant);
  const autoOpt = (source: string): OliveStep => ({
    label: 'olive auto-opt',
    args: ['auto-opt', '-m', source, '-o', input.outputDir, '--device', acc.device, '--provider', acc.provider, '--precision', quant.precision, '--use_model_builder', ...log, ...o.extra_args],
  });
  if (o.mode === 'auto-opt') return { quant, steps: [autoOpt(input.checkpointDir)] };

  // quantize: AWQ/GPTQ on the PyTorch checkpoint, then the model builder on Olive's quantized output folder.
  if (!quant.byTool || !quant.tool) {
    throw unsupported('builder_options.mode quantize needs an int4 quant scheme with algo awq or gptq that the tool runs', 'set quant.scheme int4 and quant.algo awq or gptq, or use mode run / auto-opt');
  }
  const quantized = join(input.workDir, 'quantized');
  const data = o.data_name ? ['-d', o.data_name] : [];
  return {
    quant,
    steps: [
      { label: 'olive quantize', args: ['quantize', '-m', input.checkpointDir, '-o', quantized, '--algorithm', quant.tool.algo, '--precision', 'int4', ...data, ...log, ...o.extra_args] },
      autoOpt(quantized),
    ],
  };
}

/** The `olive run` workflow: HfModel input, the local system with the target's provider, one ModelBuilder pass. */
export function oliveRunConfig(input: OliveBuildInput, quant: QuantDecision): Record<string, unknown> {
  const o = input.options;
  const acc = oliveAccelerator(input.target);
  const pass: Record<string, unknown> = { type: 'ModelBuilder', precision: quant.precision };
  const q = quant.tool;
  const extra: Record<string, unknown> = {};
  if (q) {
    pass.int4_block_size = q.blockSize;
    if (q.accuracyLevel !== undefined) pass.int4_accuracy_level = q.accuracyLevel;
    pass.int4_is_symmetric = q.symmetric;
    pass.int4_op_types_to_quantize = q.opTypes;
    if (q.nodesToExclude.length) pass.int4_nodes_to_exclude = q.nodesToExclude;
    if (q.algoConfig) pass.int4_algo_config = q.algoConfig;
    // The pass has no shared_embeddings parameter: it goes to the builder through extra_options.
    extra.shared_embeddings = q.sharedEmbeddings;
  }
  if (o.algo_config !== undefined) pass.int4_algo_config = o.algo_config;
  Object.assign(extra, o.extra_options);
  if (o.shared_embeddings !== undefined) extra.shared_embeddings = o.shared_embeddings;
  if (Object.keys(extra).length) pass.extra_options = extra;
  const config: Record<string, unknown> = {
    input_model: { type: 'HfModel', model_path: input.checkpointDir },
    systems: { local_system: { type: 'LocalSystem', accelerators: [{ device: acc.device, execution_providers: [acc.provider] }] } },
    passes: { [OLIVE_PASS_NAME]: pass },
    host: 'local_system',
    target: 'local_system',
    output_dir: input.outputDir,
    log_severity_level: o.log_level,
  };
  return o.config ? deepMerge(config, o.config) : config;
}

function refuseNonDefaults(input: OliveBuildInput, quant: QuantDecision): void {
  const o = input.options;
  const problems: string[] = [];
  const q = quant.tool;
  if (q) {
    const defaultAcc = oliveAccelerator(input.target).provider === 'CPUExecutionProvider' ? 4 : undefined;
    // In quantize mode the block size is the AWQ/GPTQ group size of Olive's quantizer; ingest reports what it was.
    if (o.mode === 'auto-opt' && q.blockSize !== 32) problems.push(`block_size ${q.blockSize} (the builder's default is 32)`);
    if (!q.symmetric) problems.push('asym (the builder quantizes symmetrically by default)');
    if (q.accuracyLevel !== defaultAcc) problems.push(`accuracy_level ${q.accuracyLevel ?? 0} (the builder's default here is ${defaultAcc ?? 0})`);
    if (q.nodesToExclude.length) problems.push('exclude');
    // Sharing a tied table is the builder's own default in newer releases; whether it happened is checked after
    // the build. An untied table quantized through Gather cannot be asked for.
    if (q.opTypes.includes('Gather')) problems.push('embeddings: all');
  }
  if (Object.keys(o.extra_options).length) problems.push('builder_options.extra_options');
  if (o.algo_config !== undefined) problems.push('builder_options.algo_config');
  if (o.shared_embeddings !== undefined) problems.push('builder_options.shared_embeddings');
  if (o.config !== undefined) problems.push('builder_options.config');
  if (problems.length) {
    throw unsupported(`olive ${o.mode === 'quantize' ? 'quantize + auto-opt' : 'auto-opt'} cannot pass ${problems.join(', ')} to the model builder`, 'use builder_options.mode: run (a generated ModelBuilder config carries every option), or drop these settings');
  }
}

/** Objects merge key by key; anything else (arrays included) in `over` replaces. */
export function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isPlainObject(b) && isPlainObject(v) ? deepMerge(b, v) : v;
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
