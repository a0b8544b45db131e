// The option vocabulary: every name and rule that recipes, the command line, compare's scheme names, the external
// builders and the quantizer share (schemes, algorithms, builders, precisions, block sizes, the default quantization).
// It imports nothing, so any layer may use it; each list is `as const` so that yargs `choices` and zod enums made from
// it give the literal unions below. Target ids are not here: they belong to the target objects (src/target).

/** Whether `s` is one of `list`'s names (narrowing a string from the command line or a file to the list's union). */
export function isOneOf<T extends string>(list: readonly T[], s: string | undefined): s is T {
  return (list as readonly (string | undefined)[]).includes(s);
}

/** Weight formats (one codec each in quant/formats): MatMulNBits with 4, 8 or 2 (ternary) bits. */
export const QUANT_SCHEMES = ['int4', 'int8', 'ternary'] as const;
export type QuantScheme = (typeof QUANT_SCHEMES)[number];

/** A recipe's `quant.scheme`: a weight format, or `none` (the target ships unquantized). */
export const RECIPE_SCHEMES = ['none', ...QUANT_SCHEMES] as const;
export type RecipeScheme = (typeof RECIPE_SCHEMES)[number];

/**
 * Quantization algorithms: rtn (round to nearest, onnxruntime's own), hqq (data-free zero-point optimisation), gptq
 * (error feedback from calibration activations), awq (activation-aware input scaling, then rtn).
 */
export const QUANT_ALGOS = ['rtn', 'hqq', 'gptq', 'awq'] as const;
export type QuantAlgo = (typeof QUANT_ALGOS)[number];

/** Algorithms that need calibration activations. */
export const CALIBRATED_ALGOS = ['gptq', 'awq'] as const satisfies readonly QuantAlgo[];

export function isCalibratedAlgo(algo: QuantAlgo | undefined): boolean {
  return isOneOf(CALIBRATED_ALGOS, algo);
}

/** The scheme mixed precision moves the most sensitive weights to. */
export const HIGH_SCHEMES = ['int8'] as const satisfies readonly QuantScheme[];
export type HighScheme = (typeof HIGH_SCHEMES)[number];

/**
 * Token embedding → GatherBlockQuantized: `tied` only when the table is the lm_head's weight (then stored once),
 * `all` whenever it is a constant table, `none` never.
 */
export const EMBEDDINGS_MODES = ['none', 'tied', 'all'] as const;
export type EmbeddingsMode = (typeof EMBEDDINGS_MODES)[number];

/** Ternary absmean scale: one per block, or one per output row. */
export const TERNARY_GRANULARITIES = ['block', 'row'] as const;
export type TernaryGranularity = (typeof TERNARY_GRANULARITIES)[number];

/** How mixed precision measures a layer's sensitivity: the model's KL with only that layer quantized, or its output error. */
export const SENSITIVITY_MEASURES = ['kl', 'output-error'] as const;
export type SensitivityMeasure = (typeof SENSITIVITY_MEASURES)[number];

/** Activation (and unquantized weight) precisions of a built graph. */
export const ACTIVATION_PRECISIONS = ['fp32', 'fp16'] as const;
export type ActivationPrecision = (typeof ACTIVATION_PRECISIONS)[number];

export function isActivationPrecision(p: string | undefined): p is ActivationPrecision {
  return isOneOf(ACTIVATION_PRECISIONS, p);
}

/** `build --precision`: unquantized with these activations (fp32, fp16), or this weight format for every target. */
export const PRECISIONS = [...ACTIVATION_PRECISIONS, ...QUANT_SCHEMES] as const;
export type Precision = (typeof PRECISIONS)[number];

/** Who builds the float graph: our own TypeScript builder, the onnxruntime-genai builder, or Olive (ModelBuilder). */
export const BUILDERS = ['native', 'genai', 'olive'] as const;
export type Builder = (typeof BUILDERS)[number];
/** The builders that run as Python tools. */
export type ExternalBuilderKind = Exclude<Builder, 'native'>;

/**
 * builder_options.quantize, who quantizes with an external builder: `tool` (its own int4 RTN), `native` (the tool
 * writes floats and our quantize pass runs), `auto` (tool for int4, native for int8/ternary).
 */
export const TOOL_QUANTIZE_MODES = ['auto', 'tool', 'native'] as const;
export type ToolQuantizeMode = (typeof TOOL_QUANTIZE_MODES)[number];

/** Values per block along K that MatMulNBits takes: a power of two, 16..256. */
export const BLOCK_SIZES = [16, 32, 64, 128, 256] as const;
export type BlockSize = (typeof BLOCK_SIZES)[number];
export const BLOCK_SIZE_RULE = 'a power of two in 16..256';
/** The sizes as a sentence: `16, 32, 64, 128 or 256`. */
export const BLOCK_SIZE_LIST = `${BLOCK_SIZES.slice(0, -1).join(', ')} or ${BLOCK_SIZES[BLOCK_SIZES.length - 1]}`;

/** Not a type guard on purpose: recipe and option types keep `number` (a block size is a number, checked by value). */
export function isBlockSize(n: number): boolean {
  return (BLOCK_SIZES as readonly unknown[]).includes(n);
}

/** MatMulNBits accuracy_level: 0 unset, 1 fp32, 2 fp16, 3 bf16, 4 int8 activations (what CPU kernels need to be fast). */
export const ACCURACY_LEVELS = [0, 1, 2, 3, 4] as const;
export type AccuracyLevel = (typeof ACCURACY_LEVELS)[number];
export const ACCURACY_LEVEL_RULE = '0 unset, 1 fp32, 2 fp16, 3 bf16, 4 int8 activations (CPU)';

export function isAccuracyLevel(n: number): boolean {
  return (ACCURACY_LEVELS as readonly unknown[]).includes(n);
}

/**
 * The quantization used where nothing says otherwise (a recipe target without `quant`, a field a recipe or the
 * `quantize` command leaves out, a compare scheme name without suffixes): int4 RTN, block 32, symmetric (DESIGN.md,
 * issue 8). accuracyLevel applies where no target chooses one (the `quantize` command, library calls); a build takes
 * its target's.
 */
export const QUANT_DEFAULTS = Object.freeze({
  scheme: 'int4',
  algo: 'rtn',
  blockSize: 32,
  asym: false,
  accuracyLevel: 4,
  embeddings: 'tied',
  highScheme: 'int8',
  ternaryGranularity: 'block',
} as const satisfies {
  scheme: QuantScheme;
  algo: QuantAlgo;
  blockSize: BlockSize;
  asym: boolean;
  accuracyLevel: AccuracyLevel;
  embeddings: EmbeddingsMode;
  highScheme: HighScheme;
  ternaryGranularity: TernaryGranularity;
});
