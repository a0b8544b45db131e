// Recipe schema (zod 4): where a model comes from, how it is built, and per target how it is quantized, validated
// and gated. Field names are snake_case as written in recipe files; the parsed value is the type downstream code uses.
import { z } from 'zod';
import { TARGET_IDS, type TargetId } from '../target/index.js';
import {
  ACCURACY_LEVEL_RULE,
  ACCURACY_LEVELS,
  ACTIVATION_PRECISIONS,
  BUILDERS,
  EMBEDDINGS_MODES,
  HIGH_SCHEMES,
  isAccuracyLevel,
  isBlockSize,
  QUANT_ALGOS,
  QUANT_DEFAULTS,
  RECIPE_SCHEMES,
  SENSITIVITY_MEASURES,
  TERNARY_GRANULARITIES,
} from '../vocabulary.js';
import { MODEL_NAME_PATTERN, MODEL_NAME_RULE } from './model-name.js';

export { TARGET_IDS, type TargetId };

// Names and rules come from the vocabulary (src/vocabulary.ts), so recipes, the CLI and compare accept the same ones.
const powerOfTwoBlock = z.number().refine(isBlockSize, {
  error: (iss) => `expected a power of two ≥ 16 and ≤ 256, got ${JSON.stringify(iss.input)}`,
});

export const QuantSchemeSchema = z.enum(RECIPE_SCHEMES);
export const QuantAlgoSchema = z.enum(QUANT_ALGOS);

/** Per-node override: nodes whose name matches `pattern` (glob or /regex/) get another scheme, or none. */
const QuantOverrideSchema = z.strictObject({
  pattern: z.string().min(1),
  scheme: QuantSchemeSchema,
  algo: QuantAlgoSchema.optional(),
  block_size: powerOfTwoBlock.optional(),
});

export const QuantSchema = z.strictObject({
  scheme: QuantSchemeSchema,
  algo: QuantAlgoSchema.default(QUANT_DEFAULTS.algo),
  block_size: powerOfTwoBlock.default(QUANT_DEFAULTS.blockSize),
  asym: z.boolean().default(QUANT_DEFAULTS.asym),
  /** MatMulNBits accuracy_level; defaults per target (4 on cpu and mobile). */
  accuracy_level: z
    .number()
    .refine(isAccuracyLevel, { error: (iss) => `expected ${ACCURACY_LEVELS.join(', ')} (${ACCURACY_LEVEL_RULE}), got ${JSON.stringify(iss.input)}` })
    .optional(),
  exclude: z.array(z.string().min(1)).default([]),
  overrides: z.array(QuantOverrideSchema).default([]),
  /**
   * Token embedding → GatherBlockQuantized: `tied` (default) only when it is the lm_head's weight (then stored once),
   * `all` whenever it is a constant table, `none` never.
   */
  embeddings: z.enum(EMBEDDINGS_MODES).default(QUANT_DEFAULTS.embeddings),
  /**
   * Mixed precision: keep the most sensitive MatMuls at `high_scheme` until the average bits per weight (codes,
   * scales and zero points) reaches this budget, e.g. 6 with int4 (5.0 bits at block 32) as the base.
   */
  bits_budget: z.number().positive().optional(),
  high_scheme: z.enum(HIGH_SCHEMES).default(QUANT_DEFAULTS.highScheme),
  /** How layer sensitivity is measured: the model's KL with only that layer quantized, or the layer's output error. */
  sensitivity: z.enum(SENSITIVITY_MEASURES).optional(),
  /** Ternary: absmean scale per block (default) or per output row. */
  ternary_granularity: z.enum(TERNARY_GRANULARITIES).default(QUANT_DEFAULTS.ternaryGranularity),
  /** Calibration data for gptq/awq: a tokens JSON or a text file (relative to the recipe). Sampled from the model when absent. */
  calibration: z
    .strictObject({
      tokens: z.string().optional(),
      text: z.string().optional(),
      samples: z.number().int().positive().max(4096).default(16),
      sequence_length: z.number().int().positive().max(32768).default(128),
    })
    .optional(),
});

export const GatesSchema = z.strictObject({
  /** Largest allowed perplexity increase over the unquantized model, in percent. */
  ppl_delta_pct: z.number().nonnegative().optional(),
  kl_mean: z.number().nonnegative().optional(),
  kl_p99: z.number().nonnegative().optional(),
  /** Smallest allowed top-1 agreement with the unquantized model, as a fraction 0..1. */
  top1_agreement: z.number().min(0).max(1).optional(),
});

export const TargetSchema = z.strictObject({
  target: z.enum(TARGET_IDS as [TargetId, ...TargetId[]]),
  /** Activation precision; defaults per target (fp32 for cpu/mobile, fp16 for cuda/dml). */
  precision: z.enum(ACTIVATION_PRECISIONS).optional(),
  quant: QuantSchema.optional(),
  gates: GatesSchema.optional(),
  /** Package size budget in MiB (mobile): the build fails when the package is larger. */
  size_budget_mb: z.number().positive().optional(),
});

const SynthSourceSchema = z.strictObject({
  preset: z.string().min(1),
  scale: z.enum(['tiny', 'full']).default('tiny'),
  seed: z.number().int().nonnegative().default(0),
});

export const SourceSchema = z.union([
  z.strictObject({ hub: z.string().regex(/^[\w.-]+\/[\w.-]+$/, 'expected a hub id like microsoft/Phi-4-mini-instruct'), revision: z.string().default('main') }),
  z.strictObject({ path: z.string().min(1) }),
  z.strictObject({ llama2c: z.string().min(1) }),
  z.strictObject({ synth: SynthSourceSchema }),
]);

export const ValidationSchema = z.strictObject({
  /** Token sequences (tokens JSON), a text/JSONL/parquet file, or sequences sampled from the unquantized model. */
  data: z.union([
    z.strictObject({ tokens: z.string() }),
    z.strictObject({ text: z.string(), column: z.string().optional() }),
    z.strictObject({
      sample: z.strictObject({
        // Bounded: each sequence is generated token by token from the float model before validation can start.
        sequences: z.number().int().positive().max(4096).default(8),
        length: z.number().int().min(2).max(32768).default(64),
        seed: z.number().int().nonnegative().default(0),
      }),
    }),
  ]),
  max_length: z.number().int().min(2).default(512),
  stride: z.number().int().positive().optional(),
});

export const RecipeSchema = z.strictObject({
  /** Defaults to the recipe file's name. */
  name: z.string().max(128).regex(MODEL_NAME_PATTERN, `a model name is one path segment: ${MODEL_NAME_RULE}`).optional(),
  description: z.string().optional(),
  source: SourceSchema,
  /** Tokenizer files when the source has none: a folder, or `builtin: tiny` (the embedded default's). */
  tokenizer: z.union([z.strictObject({ path: z.string() }), z.strictObject({ builtin: z.literal('tiny') })]).optional(),
  /** Overrides of config.json values applied before building (e.g. `{"sliding_window": null}`). */
  architecture: z.record(z.string(), z.unknown()).default({}),
  builder: z.enum(BUILDERS).default('native'),
  builder_options: z.record(z.string(), z.unknown()).default({}),
  // One entry per target: two of the same name would be built into one folder, the second over the first.
  targets: z
    .array(TargetSchema)
    .min(1)
    .superRefine((ts, ctx) => {
      ts.forEach((t, i) => {
        const first = ts.findIndex((u) => u.target === t.target);
        if (first !== i) ctx.addIssue({ code: 'custom', path: [i, 'target'], message: `target "${t.target}" is already targets[${first}]; give each target once` });
      });
    }),
  validation: ValidationSchema.optional(),
  /** Gates applied to every target that has none of its own. */
  gates: GatesSchema.optional(),
});

export type Recipe = z.output<typeof RecipeSchema>;
export type RecipeTarget = z.output<typeof TargetSchema>;
export type QuantOptions = z.output<typeof QuantSchema>;
export type Gates = z.output<typeof GatesSchema>;
export type RecipeSource = z.output<typeof SourceSchema>;

/** The quantization a target gets when its recipe entry says nothing: the schema's own defaults (vocabulary QUANT_DEFAULTS). */
export function defaultQuant(): QuantOptions {
  return QuantSchema.parse({ scheme: QUANT_DEFAULTS.scheme });
}
