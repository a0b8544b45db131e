// Writing genai_config.json: the config of a natively built decoder (model facts, generation_config.json's token ids
// and sampling defaults, the graph layout's inputs), with provider options set separately from a target, checked
// against the keys onnxruntime-genai's parser accepts before it is written.
import { join } from 'node:path';
import type { GraphLayout } from '../target/layout.js';
import { writeFileAtomic } from '../util/atomic-fs.js';
import { CheckpointError } from '../util/errors.js';
import { GENAI_IO_DEFAULTS } from './io-names.js';
import { GENAI_CONFIG_FILE } from './read.js';
import type { ProviderOptions } from '../target/types.js';
import { assertGenaiConfigKeys, type GenaiConfig } from './schema.js';

/** The model facts genai_config.json states (an arch DecoderConfig is one). */
export interface GenaiModelFacts {
  /** onnxruntime-genai's model type: `phi3`, `phi`. */
  genaiType: string;
  contextLength: number;
  headSize: number;
  hiddenSize: number;
  numHeads: number;
  numLayers: number;
  kvHeads: number;
  vocabSize: number;
  tokens: { bos?: number; eos?: number | number[]; pad?: number };
}

/** generation_config.json's fields the token ids and search defaults draw on (checkpoint's GenerationConfig is one). */
export interface GenerationFacts {
  bos_token_id?: number | null;
  eos_token_id?: number | number[] | null;
  pad_token_id?: number | null;
  do_sample?: boolean | null;
  temperature?: number | null;
  top_k?: number | null;
  top_p?: number | null;
}

export interface GenaiConfigInput {
  config: GenaiModelFacts;
  /** The graph's attention layout: a `dml` graph takes position_ids. */
  layout: Pick<GraphLayout, 'graph'>;
  generation?: GenerationFacts;
  /** The tokenizer's eos token id: the last resort when neither config names one (Phi-1/1.5 ship eos null). */
  tokenizerEos?: number;
  /** The decoder model file name inside the package. */
  filename?: string;
}

/** transformers' defaults: a generation_config value equal to these does not override config.json. */
const SEARCH_DEFAULTS = { do_sample: false, temperature: 1.0, top_k: 50, top_p: 1.0 } as const;

/**
 * genai_config.json for a decoder built by the native builder, with the values onnxruntime-genai's own builder
 * writes: token ids from config.json refined by generation_config.json, search defaults from the latter, KV buffers
 * shared between past and present (GroupQueryAttention updates the cache in place). It selects no execution provider
 * (the CPU EP): providers.ts's withProviders sets a target's.
 */
export function genaiConfig(input: GenaiConfigInput) {
  const { config: c, generation: g = {} } = input;
  const pick = <T>(genValue: T | null | undefined, fallback: T, dflt?: T): T =>
    genValue !== null && genValue !== undefined && genValue !== dflt ? genValue : fallback;
  const eos = pick<number | number[] | undefined>(g.eos_token_id, c.tokens.eos) ?? input.tokenizerEos;
  if (eos === undefined) {
    throw new CheckpointError('CHECKPOINT_NO_EOS', 'no eos_token_id in config.json, generation_config.json or the tokenizer files', {
      where: 'config.json eos_token_id',
      fix: 'add eos_token_id to generation_config.json (or ship tokenizer.json with an eos_token): generation cannot stop without it',
    });
  }
  const bos = pick(g.bos_token_id, c.tokens.bos) ?? 1;
  const pad = pick(g.pad_token_id, c.tokens.pad) ?? (Array.isArray(eos) ? eos[0] : eos);
  const io = GENAI_IO_DEFAULTS;
  const inputs: Record<string, string> = { input_ids: io.inputs.input_ids, attention_mask: io.inputs.attention_mask };
  if (input.layout.graph === 'dml') inputs.position_ids = io.inputs.position_ids;
  inputs.past_key_names = io.inputs.past_key_names;
  inputs.past_value_names = io.inputs.past_value_names;
  const config = {
    model: {
      bos_token_id: bos,
      context_length: c.contextLength,
      decoder: {
        session_options: { log_id: 'onnxruntime-genai', provider_options: [] as ProviderOptions[] },
        filename: input.filename ?? 'model.onnx',
        head_size: c.headSize,
        hidden_size: c.hiddenSize,
        inputs,
        outputs: { ...io.outputs } as Record<string, string>,
        num_attention_heads: c.numHeads,
        num_hidden_layers: c.numLayers,
        num_key_value_heads: c.kvHeads,
      },
      eos_token_id: eos,
      pad_token_id: pad,
      type: c.genaiType,
      vocab_size: c.vocabSize,
    },
    search: {
      diversity_penalty: 0,
      do_sample: pick(g.do_sample, SEARCH_DEFAULTS.do_sample, SEARCH_DEFAULTS.do_sample),
      early_stopping: true,
      length_penalty: 1,
      max_length: c.contextLength,
      min_length: 0,
      no_repeat_ngram_size: 0,
      num_beams: 1,
      num_return_sequences: 1,
      past_present_share_buffer: true,
      repetition_penalty: 1,
      temperature: pick(g.temperature, SEARCH_DEFAULTS.temperature, SEARCH_DEFAULTS.temperature),
      top_k: pick(g.top_k, SEARCH_DEFAULTS.top_k, SEARCH_DEFAULTS.top_k),
      top_p: pick(g.top_p, SEARCH_DEFAULTS.top_p, SEARCH_DEFAULTS.top_p),
    },
  };
  return config satisfies GenaiConfig;
}

/** What genaiConfig writes: a GenaiConfig with every field it sets present. */
export type NativeGenaiConfig = ReturnType<typeof genaiConfig>;

/** Writes `<dir>/genai_config.json` (atomically), refusing keys onnxruntime-genai's parser would reject. */
export async function writeGenaiConfig(dir: string, config: GenaiConfig): Promise<string> {
  const file = join(dir, GENAI_CONFIG_FILE);
  assertGenaiConfigKeys(config, file);
  await writeFileAtomic(file, JSON.stringify(config, null, 4) + '\n');
  return file;
}
