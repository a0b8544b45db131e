// Who quantizes (the external tool or our own pass) and, when the tool does, the recipe's quant options in the
// builder's terms (int4_block_size, int4_accuracy_level, ...). Options the tool cannot express are errors, not
// silently dropped.
import type { QuantOptions } from '../recipes/schema.js';
import { ExternalToolError } from '../util/errors.js';
import type { ActivationPrecision, ExternalBuilderKind, ToolQuantizeMode } from '../vocabulary.js';

/** The recipe's quant options as the build plan carries them (accuracy_level filled in from the target). */
export type RecipeQuant = QuantOptions & { accuracy_level?: number };

/** The builder's int4 settings. */
export interface ToolQuant {
  /** int4_block_size. */
  blockSize: number;
  /** int4_accuracy_level 1–4; undefined leaves the builder's default (0 means unset in our recipes). */
  accuracyLevel?: number;
  /** int4_is_symmetric. */
  symmetric: boolean;
  /** int4_nodes_to_exclude: exact node names. */
  nodesToExclude: string[];
  /** int4_op_types_to_quantize: MatMul, plus Gather to quantize an untied embedding table. */
  opTypes: string[];
  /** shared_embeddings: the tied embedding table reads the lm_head's quantized weight (GatherBlockQuantized). */
  sharedEmbeddings: boolean;
  /** int4_algo_config when it must be set: the builder shares quantized embeddings only with rtn / k_quant. */
  algoConfig?: string;
  /** Whether the output must hold a quantized embedding (GatherBlockQuantized): checked after the build. */
  quantizedEmbeddings: boolean;
  /** The recipe's algorithm (rtn, or awq/gptq for Olive's quantize mode). */
  algo: QuantOptions['algo'];
}

export interface QuantDecision {
  /** True when the tool writes the quantized model; false when it writes floats (and our pass may quantize). */
  byTool: boolean;
  /** `-p` / ModelBuilder precision. */
  precision: 'int4' | ActivationPrecision;
  tool?: ToolQuant;
}

export interface DecideQuantInput {
  kind: ExternalBuilderKind;
  /** The plan's activation precision. */
  precision: ActivationPrecision;
  quant?: RecipeQuant;
  /** builder_options.quantize. */
  who: ToolQuantizeMode;
  /** Algorithms the chosen tool path implements (the builder itself: rtn only). */
  algos?: readonly QuantOptions['algo'][];
  /** The checkpoint's tie_word_embeddings (Phi-4-mini: true): decides how `embeddings` maps. */
  tiedEmbeddings?: boolean;
}

const GLOB_OR_REGEX = /[*?[\]{}]|^\/.*\/[a-z]*$/;

export function decideQuant(input: DecideQuantInput): QuantDecision {
  const { quant, kind } = input;
  const tool = kind === 'genai' ? 'the onnxruntime-genai builder' : 'Olive (ModelBuilder)';
  if (!quant || quant.scheme === 'none' || input.who === 'native') return { byTool: false, precision: input.precision };
  if (quant.scheme !== 'int4') {
    if (input.who === 'auto') return { byTool: false, precision: input.precision };
    throw unsupported(`${tool} quantizes to int4 only; the recipe asks for ${quant.scheme}`, 'set builder_options.quantize to auto or native: the tool then writes floats and our quantize pass makes the ' + quant.scheme + ' model');
  }
  const algos = input.algos ?? ['rtn'];
  if (!algos.includes(quant.algo)) {
    throw unsupported(
      `${tool} does not run ${quant.algo} here (it runs ${algos.join(', ')})`,
      kind === 'olive' && (quant.algo === 'awq' || quant.algo === 'gptq')
        ? 'set builder_options.mode: quantize (olive quantize + auto-opt), or builder_options.quantize: native'
        : 'set builder_options.quantize: native to let our quantize pass run ' + quant.algo + ' on the tool\'s float output',
    );
  }
  if (quant.overrides.length) {
    throw unsupported(`${tool} has no per-node overrides (quant.overrides: ${quant.overrides.map((o) => o.pattern).join(', ')})`, 'drop the overrides or set builder_options.quantize: native');
  }
  const patterns = quant.exclude.filter((p) => GLOB_OR_REGEX.test(p));
  if (patterns.length) {
    throw unsupported(`${tool} excludes nodes by exact name only (int4_nodes_to_exclude); quant.exclude has patterns: ${patterns.join(', ')}`, 'list exact node names such as /lm_head/MatMul, or set builder_options.quantize: native');
  }
  const acc = quant.accuracy_level;
  // embeddings: `tied` quantizes the table only when it is the lm_head's weight, via the builder's shared
  // embeddings (stored once); `all` also quantizes an untied table (Gather in the op types); `none` keeps it float.
  const tied = input.tiedEmbeddings === true;
  const share = tied && quant.embeddings !== 'none';
  const gather = !tied && quant.embeddings === 'all';
  return {
    byTool: true,
    precision: 'int4',
    tool: {
      blockSize: quant.block_size,
      accuracyLevel: acc === undefined || acc === 0 ? undefined : acc,
      symmetric: !quant.asym,
      nodesToExclude: [...quant.exclude],
      opTypes: gather ? ['MatMul', 'Gather'] : ['MatMul'],
      sharedEmbeddings: share,
      algoConfig: share ? 'rtn' : undefined,
      quantizedEmbeddings: share || gather,
      algo: quant.algo,
    },
  };
}

/** What the tool's output actually holds (from ingest). */
export interface FoundQuantization {
  matMulNBits: number;
  gatherBlockQuantized: number;
  blockSizes: number[];
  accuracyLevels: number[];
}

/**
 * Differences between what was asked and what the tool wrote, as sentences (empty when they agree). The block size
 * is not checked when the tool picked it itself (Olive's AWQ/GPTQ group size).
 */
export function quantizationMismatches(decision: QuantDecision, found: FoundQuantization | undefined, opts: { blockSizeChosenByTool?: boolean } = {}): string[] {
  const q = decision.tool;
  if (!q) return found && found.matMulNBits + found.gatherBlockQuantized > 0 ? [`floats were asked for, but the model holds ${found.matMulNBits} MatMulNBits and ${found.gatherBlockQuantized} GatherBlockQuantized nodes`] : [];
  if (!found || found.matMulNBits === 0) return ['int4 was asked for, but the model holds no MatMulNBits node'];
  const problems: string[] = [];
  if (!opts.blockSizeChosenByTool && (found.blockSizes.length !== 1 || found.blockSizes[0] !== q.blockSize)) {
    problems.push(`block_size ${q.blockSize} was asked for, the model has ${found.blockSizes.join(', ')}`);
  }
  if (q.accuracyLevel !== undefined && (found.accuracyLevels.length !== 1 || found.accuracyLevels[0] !== q.accuracyLevel)) {
    problems.push(`accuracy_level ${q.accuracyLevel} was asked for, the model has ${found.accuracyLevels.join(', ')}`);
  }
  if (q.quantizedEmbeddings !== found.gatherBlockQuantized > 0) {
    problems.push(q.quantizedEmbeddings ? 'a quantized embedding was asked for (quant.embeddings), the model has none' : 'a float embedding was asked for (quant.embeddings: none, or an untied table with tied), the model quantized it');
  }
  return problems;
}

export function unsupported(message: string, fix: string): ExternalToolError {
  const e = new ExternalToolError('EXTERNAL_OPTION_UNSUPPORTED', message, { where: 'recipe quant / builder_options', fix });
  // A recipe the tool cannot honour is an input problem, like any other recipe error.
  e.exitCode = 2;
  return e;
}
