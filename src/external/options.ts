// The recipe's `builder_options` for the external builders, parsed once at the boundary (zod): one shape per
// builder, keys meant for the other builder ignored (so `--builder` can switch a recipe between them).
import { z } from 'zod';
import { RecipeError } from '../util/errors.js';
import { TOOL_QUANTIZE_MODES, type ExternalBuilderKind } from '../vocabulary.js';

/** onnxruntime-genai `--extra_options KEY=VALUE` values (and Olive ModelBuilder `extra_options`). */
const ExtraOptionsSchema = z.record(
  z.string().regex(/^[A-Za-z_][\w.]*$/, 'expected an option name like int4_algo_config'),
  // The builder splits KEY=VALUE at every '=' and keeps the second piece: a value with '=' would arrive cut.
  z.union([z.string().refine((v) => !v.includes('='), { error: 'values cannot contain "=" (the builder would cut them there)' }), z.number(), z.boolean()]),
);

const common = {
  /**
   * Who quantizes when the target has a quant scheme: `tool` (the builder's own int4 RTN quantizer), `native` (the
   * tool writes fp32/fp16 and our quantize pass runs on it), `auto` (tool for int4, native for int8/ternary).
   */
  quantize: z.enum(TOOL_QUANTIZE_MODES).default('auto'),
  /** Keep the tool's raw output folder (`.external/` in the stage folder) for inspection. */
  keep_output: z.boolean().default(false),
  /** Extra options passed through as they are (they win over the ones mapped from the recipe). */
  extra_options: ExtraOptionsSchema.default({}),
  /** int4_algo_config (`default`, `rtn`, `k_quant`, ...); default: the builder's own default. */
  algo_config: z.string().min(1).optional(),
  /** shared_embeddings: embedding and lm_head share one (quantized) weight; builders default to the config's tie. */
  shared_embeddings: z.boolean().optional(),
};

export const GenaiBuilderOptionsSchema = z.strictObject({
  ...common,
  /** `-e`; default from the target (cpu, cuda, dml; mobile builds for cpu). */
  execution_provider: z.enum(['cpu', 'cuda', 'dml', 'webgpu']).optional(),
  /** `-m`: the hub name, passed along with `-i` (the builder then names it in genai_config/metadata). */
  model_name: z.string().min(1).optional(),
  /** `-c`: the builder's cache folder (Hugging Face downloads and temporary files); default a folder in the stage. */
  cache_dir: z.string().min(1).optional(),
});

export const OliveBuilderOptionsSchema = z.strictObject({
  ...common,
  /**
   * `run`: `olive run --config` with a generated ModelBuilder workflow (every quant option mapped);
   * `auto-opt`: `olive auto-opt --use_model_builder` (builder defaults only: block 32, symmetric, rtn);
   * `quantize`: `olive quantize --algorithm awq|gptq` on the checkpoint, then `auto-opt` on its output.
   */
  mode: z.enum(['run', 'auto-opt', 'quantize']).default('run'),
  /** Merged (deeply) over the generated `olive run` config, e.g. `{ "passes": { "builder": { "search": {...} } } }`. */
  config: z.record(z.string(), z.unknown()).optional(),
  /** Appended to each `olive` command line. */
  extra_args: z.array(z.string()).default([]),
  /** `quantize` mode: calibration dataset (`-d`, a Hugging Face dataset name). */
  data_name: z.string().min(1).optional(),
  /** Olive `--log_level` / log_severity_level: 0 debug … 4 critical. Default 1 (info: progress lines). */
  log_level: z.number().int().min(0).max(4).default(1),
});

export type GenaiBuilderOptions = z.output<typeof GenaiBuilderOptionsSchema>;
export type OliveBuilderOptions = z.output<typeof OliveBuilderOptionsSchema>;
export type BuilderOptionsFor<K extends ExternalBuilderKind> = K extends 'genai' ? GenaiBuilderOptions : OliveBuilderOptions;

const SCHEMAS = { genai: GenaiBuilderOptionsSchema, olive: OliveBuilderOptionsSchema } as const;

/** Parses the recipe's builder_options for `kind`; keys that only the other builder knows are dropped. */
export function parseBuilderOptions<K extends ExternalBuilderKind>(kind: K, raw: Record<string, unknown> | undefined): BuilderOptionsFor<K> {
  const mine = SCHEMAS[kind];
  const other = SCHEMAS[kind === 'genai' ? 'olive' : 'genai'];
  const input: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw ?? {})) {
    if (k in mine.shape || !(k in other.shape)) input[k] = v;
  }
  const r = mine.safeParse(input);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `builder_options${i.path.length ? '.' + i.path.join('.') : ''}: ${i.message}`);
    throw new RecipeError('RECIPE_BUILDER_OPTIONS', `builder_options do not fit the ${kind} builder:\n  ${lines.join('\n  ')}`, {
      where: 'builder_options',
      fix: `keys the ${kind} builder takes: ${Object.keys(mine.shape).join(', ')}`,
    });
  }
  return r.data as BuilderOptionsFor<K>;
}
