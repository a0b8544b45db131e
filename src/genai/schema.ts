// genai_config.json as onnxruntime-genai's parser (src/config.cpp) accepts it, as one zod schema: the decoder-only LLM
// part of its element tree, every key typed as the parser reads it. The parser rejects unknown keys, so the strict
// form of the schema is the key check; the lenient form reads configs that carry keys of newer runtimes.
import { z } from 'zod';
import { GenaiConfigError } from '../util/errors.js';

/**
 * The schema with objects strict (unknown keys are issues) or stripping (unknown keys dropped). Both have the same
 * output type; see {@link GenaiConfig}.
 */
function genaiSchema(strict: boolean) {
  // Casting the strict form to the stripping type is sound: it only refuses more, its output has the same keys.
  const obj = <S extends z.core.$ZodLooseShape>(shape: S) => (strict ? z.strictObject(shape) : z.object(shape)) as unknown as z.ZodObject<S>;
  // config.cpp reads ints through SafeDoubleToInt: a JSON number that is an integer.
  const int = z.number().int();
  const str = z.string();
  const bool = z.boolean();
  const num = z.number();

  const providerOptions = z.array(
    z.record(z.string(), z.record(z.string(), z.string({ error: 'provider option values must be strings' }), { error: 'expected an object of string options' }), {
      error: 'expected an object',
    }),
    { error: 'expected an array' },
  );
  const sessionShape = {
    log_id: str.optional(),
    enable_profiling: str.optional(),
    intra_op_num_threads: int.optional(),
    inter_op_num_threads: int.optional(),
    log_severity_level: int.optional(),
    log_verbosity_level: int.optional(),
    enable_cpu_mem_arena: bool.optional(),
    enable_mem_pattern: bool.optional(),
    graph_optimization_level: z.enum(['ORT_DISABLE_ALL', 'ORT_ENABLE_BASIC', 'ORT_ENABLE_EXTENDED', 'ORT_ENABLE_ALL']).optional(),
    custom_ops_library: str.optional(),
    provider_options: providerOptions.optional(),
  };
  // Any other key is a session config entry (AddConfigEntry) and must be a string; typed as the known keys only.
  const sessionOptions = z.object(sessionShape).catchall(z.string({ error: 'expected a string' })) as unknown as z.ZodObject<typeof sessionShape>;

  const decoderInputs = obj({
    input_ids: str.optional(),
    inputs_embeds: str.optional(),
    attention_mask: str.optional(),
    position_ids: str.optional(),
    past_key_names: str.optional(),
    past_value_names: str.optional(),
    past_names: str.optional(),
    cross_past_key_names: str.optional(),
    cross_past_value_names: str.optional(),
    past_sequence_length: str.optional(),
    current_sequence_length: str.optional(),
    total_sequence_length: str.optional(),
    encoder_hidden_states: str.optional(),
    encoder_attention_mask: str.optional(),
    rnn_states_prev: str.optional(),
  });
  const decoderOutputs = obj({
    logits: str.optional(),
    present_key_names: str.optional(),
    present_value_names: str.optional(),
    present_names: str.optional(),
    output_cross_qk_names: str.optional(),
    rnn_states: str.optional(),
    hidden_states: str.optional(),
  });
  const slidingWindow = obj({
    window_size: int.optional(),
    pad_value: int.optional(),
    alignment: str.optional(),
    slide_key_value_cache: bool.optional(),
    slide_inputs: bool.optional(),
    layers: z.array(int).optional(),
  });
  const decoder = obj({
    filename: str.optional(),
    hidden_size: int.optional(),
    num_attention_heads: int.optional(),
    num_hidden_layers: int.optional(),
    num_key_value_heads: int.optional(),
    head_size: int.optional(),
    session_options: sessionOptions.optional(),
    inputs: decoderInputs.optional(),
    outputs: decoderOutputs.optional(),
    sliding_window: slidingWindow.optional(),
  });
  const model = obj({
    type: str.optional(),
    vocab_size: int.optional(),
    context_length: int.positive().optional(),
    bos_token_id: int.optional(),
    // The one id that may be a list (Phi-3 stops on several).
    eos_token_id: z.union([int, z.array(int)], { error: 'expected an integer or a list of integers' }).optional(),
    pad_token_id: int.optional(),
    decoder_start_token_id: int.optional(),
    sep_token_id: int.optional(),
    decoder: decoder.optional(),
  });
  const search = obj({
    min_length: int.optional(),
    max_length: int.optional(),
    batch_size: int.optional(),
    num_beams: int.optional(),
    num_return_sequences: int.optional(),
    top_k: int.optional(),
    top_p: num.optional(),
    temperature: num.optional(),
    repetition_penalty: num.optional(),
    length_penalty: num.optional(),
    no_repeat_ngram_size: int.optional(),
    diversity_penalty: num.optional(),
    random_seed: int.optional(),
    do_sample: bool.optional(),
    past_present_share_buffer: bool.optional(),
    early_stopping: bool.optional(),
  });
  return obj({ model: model.optional(), search: search.optional() });
}

/** Unknown keys are issues: exactly what onnxruntime-genai's parser accepts. */
export const GENAI_CONFIG_SCHEMA = genaiSchema(true);
/** Unknown keys are dropped (a newer runtime's keys do not stop us reading the ones we use); known keys are typed. */
export const GENAI_CONFIG_READ_SCHEMA = genaiSchema(false);

/** A genai_config.json: every key optional, as the parser has a default for each. */
export type GenaiConfig = z.output<typeof GENAI_CONFIG_SCHEMA>;
export type GenaiDecoderJson = NonNullable<NonNullable<GenaiConfig['model']>['decoder']>;

/** `model.decoder.inputs[0].x` from a zod issue path. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(root)';
}

/** Every problem onnxruntime-genai's parser would reject, as `path: what` lines (empty when the JSON is accepted). */
export function checkGenaiConfigKeys(json: unknown): string[] {
  const r = GENAI_CONFIG_SCHEMA.safeParse(json);
  if (r.success) return [];
  return r.error.issues.flatMap((i) =>
    i.code === 'unrecognized_keys'
      ? i.keys.map((k) => `${fieldPath([...i.path, k])}: unknown key (onnxruntime-genai rejects it)`)
      : [`${fieldPath(i.path)}: ${issueText(i)}`],
  );
}

/** A zod issue in our words (zod's own say `Invalid input: expected number, received string`). */
export function issueText(i: z.core.$ZodIssue): string {
  if (i.code === 'invalid_type') {
    // Custom messages (provider options) are kept; zod's default ones are shortened.
    const article: Record<string, string> = { object: 'an object', array: 'an array', int: 'an integer' };
    return i.message.startsWith('Invalid input') ? `expected ${article[i.expected] ?? `a ${i.expected}`}` : i.message;
  }
  return i.message;
}

/** Throws a GenaiConfigError listing every key onnxruntime-genai would reject. */
export function assertGenaiConfigKeys(json: unknown, file = 'genai_config.json'): void {
  const problems = checkGenaiConfigKeys(json);
  if (problems.length) {
    throw new GenaiConfigError('GENAI_CONFIG_KEYS', `genai_config.json would be rejected by onnxruntime-genai:\n  ${problems.join('\n  ')}`, {
      file,
      fix: 'write only keys of the schema in src/genai/schema.ts (the parser of onnxruntime-genai rejects others)',
    });
  }
}
