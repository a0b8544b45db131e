// The onnxruntime-genai model builder's command line from a build request: `python -m
// onnxruntime_genai.models.builder -i <checkpoint> -o <out> -p <precision> -e <ep> -c <cache> --extra_options k=v ...`.
import { getTarget, type TargetId } from '../target/index.js';
import type { GenaiBuilderOptions } from './options.js';
import { decideQuant, type QuantDecision, type RecipeQuant } from './quant-mapping.js';

export const GENAI_BUILDER_MODULE = 'onnxruntime_genai.models.builder';

export interface GenaiBuildInput {
  checkpointDir: string;
  /** `-o`: where the builder writes (model.onnx, model.onnx.data, genai_config.json, tokenizer files at top level). */
  outputDir: string;
  /** `-c`, unless builder_options.cache_dir is set. */
  cacheDir: string;
  precision: 'fp32' | 'fp16';
  target: TargetId;
  quant?: RecipeQuant;
  /** The checkpoint's tie_word_embeddings. */
  tiedEmbeddings?: boolean;
  options: GenaiBuilderOptions;
}

export interface GenaiInvocation {
  /** Arguments after the interpreter. */
  args: string[];
  quant: QuantDecision;
  /** The extra options as passed (after booleans became `true`/`false`). */
  extraOptions: Record<string, string>;
}

/**
 * The builder's arguments. Booleans are written as `true`/`false` (the builder's check_extra_options parses
 * those); list options use the builder's separators (`/` for op types, `,` for node names).
 */
export function genaiBuilderInvocation(input: GenaiBuildInput): GenaiInvocation {
  const o = input.options;
  const quant = decideQuant({ kind: 'genai', precision: input.precision, quant: input.quant, who: o.quantize, tiedEmbeddings: input.tiedEmbeddings });
  const extra: Record<string, string> = {};
  const q = quant.tool;
  if (q) {
    extra.int4_block_size = String(q.blockSize);
    if (q.accuracyLevel !== undefined) extra.int4_accuracy_level = String(q.accuracyLevel);
    extra.int4_is_symmetric = String(q.symmetric);
    extra.int4_op_types_to_quantize = q.opTypes.join('/');
    if (q.nodesToExclude.length) extra.int4_nodes_to_exclude = q.nodesToExclude.join(',');
    // Explicit either way: newer builders turn sharing on by themselves for tied checkpoints.
    extra.shared_embeddings = String(q.sharedEmbeddings);
    if (q.algoConfig) extra.int4_algo_config = q.algoConfig;
  }
  if (o.algo_config !== undefined) extra.int4_algo_config = o.algo_config;
  if (o.shared_embeddings !== undefined) extra.shared_embeddings = String(o.shared_embeddings);
  for (const [k, v] of Object.entries(o.extra_options)) extra[k] = String(v);

  const args = ['-m', GENAI_BUILDER_MODULE];
  // `-m` of the builder is the hub name; the checkpoint itself always comes from the local folder (-i).
  if (o.model_name) args.push('-m', o.model_name);
  args.push('-i', input.checkpointDir, '-o', input.outputDir, '-p', quant.precision, '-e', o.execution_provider ?? getTarget(input.target).genaiBuilderEp, '-c', o.cache_dir ?? input.cacheDir);
  const pairs = Object.entries(extra).map(([k, v]) => `${k}=${v}`);
  if (pairs.length) args.push('--extra_options', ...pairs);
  return { args, quant, extraOptions: extra };
}
