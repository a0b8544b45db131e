// genai_config.json: built from the decoder config, the target and generation_config.json, holding only keys
// onnxruntime-genai's parser (src/config.cpp) accepts — it rejects unknown keys — with a validator for that set.
import type { DecoderConfig } from '../arch/types.js';
import type { GenerationConfig } from '../checkpoint/generation-config.js';
import type { Target } from '../target/types.js';
import { CheckpointError, PackageError } from '../util/errors.js';

// ---------------------------------------------------------------------------------------------------------------
// The accepted key set (a subset of config.cpp's elements: the decoder-only LLM part)

/**
 * A node of the accepted-key tree: `true` a scalar or array leaf; an object its accepted children;
 * 'session_options' and 'provider_options' the two places the parser takes free-form keys.
 */
export type KeyNode = true | 'session_options' | 'provider_options' | { readonly [key: string]: KeyNode };

const DECODER_INPUTS: KeyNode = {
  input_ids: true,
  inputs_embeds: true,
  attention_mask: true,
  position_ids: true,
  past_key_names: true,
  past_value_names: true,
  past_names: true,
  cross_past_key_names: true,
  cross_past_value_names: true,
  past_sequence_length: true,
  current_sequence_length: true,
  total_sequence_length: true,
  encoder_hidden_states: true,
  encoder_attention_mask: true,
  rnn_states_prev: true,
};

const DECODER_OUTPUTS: KeyNode = {
  logits: true,
  present_key_names: true,
  present_value_names: true,
  present_names: true,
  output_cross_qk_names: true,
  rnn_states: true,
  hidden_states: true,
};

export const GENAI_CONFIG_KEYS: KeyNode = {
  model: {
    type: true,
    vocab_size: true,
    context_length: true,
    bos_token_id: true,
    eos_token_id: true,
    pad_token_id: true,
    decoder_start_token_id: true,
    sep_token_id: true,
    decoder: {
      filename: true,
      hidden_size: true,
      num_attention_heads: true,
      num_hidden_layers: true,
      num_key_value_heads: true,
      head_size: true,
      session_options: 'session_options',
      inputs: DECODER_INPUTS,
      outputs: DECODER_OUTPUTS,
      sliding_window: {
        window_size: true,
        pad_value: true,
        alignment: true,
        slide_key_value_cache: true,
        slide_inputs: true,
        layers: true,
      },
    },
  },
  search: {
    min_length: true,
    max_length: true,
    batch_size: true,
    num_beams: true,
    num_return_sequences: true,
    top_k: true,
    top_p: true,
    temperature: true,
    repetition_penalty: true,
    length_penalty: true,
    no_repeat_ngram_size: true,
    diversity_penalty: true,
    random_seed: true,
    do_sample: true,
    past_present_share_buffer: true,
    early_stopping: true,
  },
};

/** session_options keys with a type; any other key is a session config entry and must be a string. */
const SESSION_OPTION_TYPES: Readonly<Record<string, 'string' | 'number' | 'boolean'>> = {
  log_id: 'string',
  enable_profiling: 'string',
  intra_op_num_threads: 'number',
  inter_op_num_threads: 'number',
  log_severity_level: 'number',
  log_verbosity_level: 'number',
  enable_cpu_mem_arena: 'boolean',
  enable_mem_pattern: 'boolean',
  graph_optimization_level: 'string',
  custom_ops_library: 'string',
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Every problem onnxruntime-genai's parser would reject, as `path: what` lines (empty when the JSON is accepted). */
export function checkGenaiConfigKeys(json: unknown): string[] {
  const problems: string[] = [];
  const walk = (v: unknown, node: KeyNode, path: string) => {
    if (node === true) {
      if (isObject(v)) problems.push(`${path}: is an object, expected a value`);
      return;
    }
    if (node === 'session_options') {
      if (!isObject(v)) return void problems.push(`${path}: expected an object`);
      for (const [k, val] of Object.entries(v)) {
        if (k === 'provider_options') walk(val, 'provider_options', `${path}.${k}`);
        else if (typeof val !== (SESSION_OPTION_TYPES[k] ?? 'string')) problems.push(`${path}.${k}: expected a ${SESSION_OPTION_TYPES[k] ?? 'string'}`);
      }
      return;
    }
    if (node === 'provider_options') {
      if (!Array.isArray(v)) return void problems.push(`${path}: expected an array`);
      v.forEach((entry, i) => {
        if (!isObject(entry)) return void problems.push(`${path}[${i}]: expected an object`);
        for (const [provider, options] of Object.entries(entry)) {
          if (!isObject(options)) {
            problems.push(`${path}[${i}].${provider}: expected an object of string options`);
            continue;
          }
          for (const [k, val] of Object.entries(options)) {
            if (typeof val !== 'string') problems.push(`${path}[${i}].${provider}.${k}: provider option values must be strings`);
          }
        }
      });
      return;
    }
    if (!isObject(v)) return void problems.push(`${path || '(root)'}: expected an object`);
    for (const [k, val] of Object.entries(v)) {
      const child = node[k];
      const p = path ? `${path}.${k}` : k;
      if (child === undefined) problems.push(`${p}: unknown key (onnxruntime-genai rejects it)`);
      else walk(val, child, p);
    }
  };
  walk(json, GENAI_CONFIG_KEYS, '');
  return problems;
}

/** Throws a PackageError listing every key onnxruntime-genai would reject. */
export function assertGenaiConfigKeys(json: unknown, file = 'genai_config.json'): void {
  const problems = checkGenaiConfigKeys(json);
  if (problems.length) {
    throw new PackageError('GENAI_CONFIG_KEYS', `genai_config.json would be rejected by onnxruntime-genai:\n  ${problems.join('\n  ')}`, {
      file,
      fix: 'write only keys listed in GENAI_CONFIG_KEYS (src/package/genai-config.ts)',
    });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The config itself

export interface GenaiConfigInput {
  config: DecoderConfig;
  target: Target;
  generation?: GenerationConfig;
  /** The tokenizer's eos token id: the last resort when neither config names one (Phi-1/1.5 ship eos null). */
  tokenizerEos?: number;
  /** The decoder model file name inside the package. */
  filename?: string;
}

export interface GenaiConfig {
  model: {
    bos_token_id: number;
    context_length: number;
    decoder: {
      session_options: { log_id: string; provider_options: Record<string, Record<string, string>>[] };
      filename: string;
      head_size: number;
      hidden_size: number;
      inputs: Record<string, string>;
      outputs: Record<string, string>;
      num_attention_heads: number;
      num_hidden_layers: number;
      num_key_value_heads: number;
    };
    eos_token_id: number | number[];
    pad_token_id: number;
    type: string;
    vocab_size: number;
  };
  search: {
    diversity_penalty: number;
    do_sample: boolean;
    early_stopping: boolean;
    length_penalty: number;
    max_length: number;
    min_length: number;
    no_repeat_ngram_size: number;
    num_beams: number;
    num_return_sequences: number;
    past_present_share_buffer: boolean;
    repetition_penalty: number;
    temperature: number;
    top_k: number;
    top_p: number;
  };
}

/** transformers' defaults: a generation_config value equal to these does not override config.json. */
const SEARCH_DEFAULTS = { do_sample: false, temperature: 1.0, top_k: 50, top_p: 1.0 } as const;

/**
 * genai_config.json for a decoder built by the native builder, with the values onnxruntime-genai's own builder
 * writes: token ids from config.json refined by generation_config.json, search defaults from the latter, KV buffers
 * shared between past and present (GroupQueryAttention updates the cache in place).
 */
export function genaiConfig(input: GenaiConfigInput): GenaiConfig {
  const { config: c, target, generation: g = {} } = input;
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
  const inputs: Record<string, string> = { input_ids: 'input_ids', attention_mask: 'attention_mask' };
  if (target.graph === 'dml') inputs.position_ids = 'position_ids';
  inputs.past_key_names = 'past_key_values.%d.key';
  inputs.past_value_names = 'past_key_values.%d.value';
  return {
    model: {
      bos_token_id: bos,
      context_length: c.contextLength,
      decoder: {
        session_options: {
          log_id: 'onnxruntime-genai',
          provider_options: target.genaiProviderOptions.map((p) => structuredClone(p) as Record<string, Record<string, string>>),
        },
        filename: input.filename ?? 'model.onnx',
        head_size: c.headSize,
        hidden_size: c.hiddenSize,
        inputs,
        outputs: { logits: 'logits', present_key_names: 'present.%d.key', present_value_names: 'present.%d.value' },
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
}
