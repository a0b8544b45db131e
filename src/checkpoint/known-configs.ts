// The config.json of each Phi model on the Hugging Face hub, as data (deep-frozen): what synthetic checkpoints are
// generated from and what config parsing is tested against. Model fields and token ids are the hub values, with every
// LongRoPE factor; bookkeeping keys (_name_or_path, auto_map, transformers_version) are left out.

const PHI35_LONG = [
  1.0800000429153442, 1.1100000143051147, 1.1399999856948853, 1.340000033378601, 1.5899999141693115,
  1.600000023841858, 1.6200000047683716, 2.620000123977661, 3.2300000190734863, 3.2300000190734863,
  4.789999961853027, 7.400000095367432, 7.700000286102295, 9.09000015258789, 12.199999809265137,
  17.670000076293945, 24.46000099182129, 28.57000160217285, 30.420001983642578, 30.840002059936523,
  32.590003967285156, 32.93000411987305, 42.320003509521484, 44.96000289916992, 50.340003967285156,
  50.45000457763672, 57.55000305175781, 57.93000411987305, 58.21000289916992, 60.1400032043457, 62.61000442504883,
  62.62000274658203, 62.71000289916992, 63.1400032043457, 63.1400032043457, 63.77000427246094, 63.93000411987305,
  63.96000289916992, 63.970001220703125, 64.02999877929688, 64.06999969482422, 64.08000183105469,
  64.12000274658203, 64.41000366210938, 64.4800033569336, 64.51000213623047, 64.52999877929688, 64.83999633789062,
];

const PHI35_SHORT = [
  1, 1.0199999809265137, 1.0299999713897705, 1.0299999713897705, 1.0499999523162842, 1.0499999523162842,
  1.0499999523162842, 1.0499999523162842, 1.0499999523162842, 1.0699999332427979, 1.0999999046325684,
  1.1099998950958252, 1.1599998474121094, 1.1599998474121094, 1.1699998378753662, 1.2899998426437378,
  1.339999794960022, 1.679999828338623, 1.7899998426437378, 1.8199998140335083, 1.8499997854232788,
  1.8799997568130493, 1.9099997282028198, 1.9399996995925903, 1.9899996519088745, 2.0199997425079346,
  2.0199997425079346, 2.0199997425079346, 2.0199997425079346, 2.0199997425079346, 2.0199997425079346,
  2.0299997329711914, 2.0299997329711914, 2.0299997329711914, 2.0299997329711914, 2.0299997329711914,
  2.0299997329711914, 2.0299997329711914, 2.0299997329711914, 2.0299997329711914, 2.0799996852874756,
  2.0899996757507324, 2.189999580383301, 2.2199995517730713, 2.5899994373321533, 2.729999542236328,
  2.749999523162842, 2.8399994373321533,
];

const MINI128K_LONG = [
  1.0700000524520874, 1.1200000047683716, 1.149999976158142, 1.4199999570846558, 1.5699999332427979,
  1.7999999523162842, 2.129999876022339, 2.129999876022339, 3.009999990463257, 5.910000324249268,
  6.950000286102295, 9.070000648498535, 9.930000305175781, 10.710000038146973, 11.130000114440918,
  14.609999656677246, 15.409998893737793, 19.809999465942383, 37.279998779296875, 38.279998779296875,
  38.599998474121094, 40.12000274658203, 46.20000457763672, 50.940006256103516, 53.66000747680664,
  54.9373893737793, 56.89738845825195, 57.28738784790039, 59.98738479614258, 60.86738586425781, 60.887386322021484,
  61.71739196777344, 62.91739273071289, 62.957393646240234, 63.41739273071289, 63.8173942565918, 63.83739471435547,
  63.897396087646484, 63.93739700317383, 64.06739807128906, 64.11434936523438, 64.12435150146484,
  64.15435028076172, 64.19435119628906, 64.24435424804688, 64.57435607910156, 64.69000244140625, 64.76000213623047,
];

const MINI128K_SHORT = [
  1.1, 1.1, 1.1, 1.3000000000000003, 1.3500000000000003, 1.3500000000000003, 1.4000000000000004,
  1.5500000000000005, 2.000000000000001, 2.000000000000001, 2.000000000000001, 2.000000000000001,
  2.000000000000001, 2.000000000000001, 2.000000000000001, 2.000000000000001, 2.000000000000001, 2.000000000000001,
  2.000000000000001, 2.000000000000001, 2.000000000000001, 2.000000000000001, 2.000000000000001, 2.000000000000001,
  2.000000000000001, 2.0500000000000007, 2.0500000000000007, 2.0500000000000007, 2.0500000000000007,
  2.0500000000000007, 2.0500000000000007, 2.1000000000000005, 2.1000000000000005, 2.1500000000000004, 2.25, 2.25,
  2.25, 2.25, 2.25, 2.3999999999999995, 2.4499999999999993, 2.499999999999999, 2.6999999999999984,
  2.6999999999999984, 2.7499999999999982, 2.799999999999998, 2.8999999999999977, 3.049999999999997,
];

const PHI4MINI_LONG = [
  1, 1.118320672, 1.250641126, 1.398617824, 1.564103225, 1.74916897, 1.956131817, 2.187582649, 2.446418898,
  2.735880826, 3.059592084, 3.421605075, 3.826451687, 4.279200023, 4.785517845, 5.351743533, 5.984965424,
  6.693110555, 7.485043894, 8.370679318, 9.36110372, 10.4687158, 11.70738129, 13.09260651, 14.64173252,
  16.37415215, 18.31155283, 20.47818807, 22.90118105, 25.61086418, 28.64115884, 32.03, 32.1, 32.13, 32.23, 32.6,
  32.61, 32.64, 32.66, 32.7, 32.71, 32.93, 32.97, 33.28, 33.49, 33.5, 44.16, 47.77,
];

const PHI3_MINI_BASE = {
  architectures: ['Phi3ForCausalLM'],
  attention_dropout: 0.0,
  bos_token_id: 1,
  embd_pdrop: 0.0,
  eos_token_id: 32000,
  hidden_act: 'silu',
  hidden_size: 3072,
  initializer_range: 0.02,
  intermediate_size: 8192,
  model_type: 'phi3',
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 32,
  original_max_position_embeddings: 4096,
  pad_token_id: 32000,
  resid_pdrop: 0.0,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  tie_word_embeddings: false,
  torch_dtype: 'bfloat16',
  use_cache: true,
  vocab_size: 32064,
} as const;

const PHI4_MINI = {
  architectures: ['Phi3ForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 199999,
  embd_pdrop: 0.0,
  eos_token_id: 199999,
  full_attn_mod: 1,
  hidden_act: 'silu',
  hidden_size: 3072,
  initializer_range: 0.02,
  intermediate_size: 8192,
  interpolate_factor: 1,
  lm_head_bias: false,
  max_position_embeddings: 131072,
  mlp_bias: false,
  model_type: 'phi3',
  num_attention_heads: 24,
  num_hidden_layers: 32,
  num_key_value_heads: 8,
  original_max_position_embeddings: 4096,
  pad_token_id: 199999,
  partial_rotary_factor: 0.75,
  resid_pdrop: 0.0,
  rms_norm_eps: 1e-5,
  rope_scaling: { long_factor: PHI4MINI_LONG, short_factor: new Array<number>(48).fill(1.0), type: 'longrope' },
  rope_theta: 10000.0,
  sliding_window: 262144,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  use_cache: true,
  vocab_size: 200064,
};

const PHI4 = {
  architectures: ['Phi3ForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 100257,
  embd_pdrop: 0.0,
  eos_token_id: 100265,
  hidden_act: 'silu',
  hidden_size: 5120,
  initializer_range: 0.02,
  intermediate_size: 17920,
  max_position_embeddings: 16384,
  model_type: 'phi3',
  num_attention_heads: 40,
  num_hidden_layers: 40,
  num_key_value_heads: 10,
  original_max_position_embeddings: 16384,
  pad_token_id: 100349,
  resid_pdrop: 0.0,
  rms_norm_eps: 1e-5,
  rope_scaling: null,
  rope_theta: 250000,
  sliding_window: null,
  tie_word_embeddings: false,
  torch_dtype: 'bfloat16',
  use_cache: true,
  vocab_size: 100352,
};

const PHI1_BASE = {
  architectures: ['PhiForCausalLM'],
  attention_dropout: 0.0,
  embd_pdrop: 0.0,
  hidden_act: 'gelu_new',
  hidden_size: 2048,
  initializer_range: 0.02,
  intermediate_size: 8192,
  layer_norm_eps: 1e-5,
  max_position_embeddings: 2048,
  model_type: 'phi',
  num_attention_heads: 32,
  num_hidden_layers: 24,
  partial_rotary_factor: 0.5,
  qk_layernorm: false,
  resid_pdrop: 0.0,
  rope_scaling: null,
  rope_theta: 10000.0,
  tie_word_embeddings: false,
  use_cache: true,
  vocab_size: 51200,
} as const;

const CONFIGS = {
  /** microsoft/Phi-3-mini-4k-instruct */
  'phi-3-mini-4k': { ...PHI3_MINI_BASE, max_position_embeddings: 4096, rope_scaling: null, sliding_window: 2047 },
  /** microsoft/Phi-3-mini-128k-instruct (the June 2024 update's LongRoPE factors) */
  'phi-3-mini-128k': {
    ...PHI3_MINI_BASE,
    max_position_embeddings: 131072,
    rope_scaling: { long_factor: MINI128K_LONG, short_factor: MINI128K_SHORT, type: 'longrope' },
    sliding_window: 262144,
  },
  /** microsoft/Phi-3.5-mini-instruct */
  'phi-3.5-mini': {
    ...PHI3_MINI_BASE,
    attention_bias: false,
    max_position_embeddings: 131072,
    rope_scaling: { long_factor: PHI35_LONG, short_factor: PHI35_SHORT, type: 'longrope' },
    sliding_window: 262144,
  },
  /** microsoft/Phi-3-medium-4k-instruct */
  'phi-3-medium-4k': {
    ...PHI3_MINI_BASE,
    hidden_size: 5120,
    intermediate_size: 17920,
    max_position_embeddings: 4096,
    num_attention_heads: 40,
    num_hidden_layers: 40,
    num_key_value_heads: 10,
    rope_scaling: null,
    sliding_window: 2047,
  },
  /** microsoft/Phi-4-mini-instruct */
  'phi-4-mini': PHI4_MINI,
  /** microsoft/Phi-4-mini-reasoning: a fine-tune of Phi-4-mini with its architecture; taken as Phi-4-mini's config. */
  'phi-4-mini-reasoning': PHI4_MINI,
  /** microsoft/phi-4 (token ids as its generation_config after the hub's tokenizer fix: eos <|im_end|>, pad <|dummy_85|>) */
  'phi-4': PHI4,
  /**
   * microsoft/Phi-4-reasoning: phi-4 with a 32k context. Context length from the model card; rope_theta 500000 as in
   * its vision sibling's text config. Its config.json was not available to check every field against.
   */
  'phi-4-reasoning': {
    ...PHI4,
    max_position_embeddings: 32768,
    original_max_position_embeddings: 32768,
    rope_theta: 500000,
  },
  /** microsoft/phi-2 */
  'phi-2': {
    ...PHI1_BASE,
    bos_token_id: 50256,
    eos_token_id: 50256,
    hidden_size: 2560,
    intermediate_size: 10240,
    num_hidden_layers: 32,
    num_key_value_heads: 32,
    partial_rotary_factor: 0.4,
    resid_pdrop: 0.1,
    torch_dtype: 'float16',
  },
  /** microsoft/phi-1_5 */
  'phi-1_5': { ...PHI1_BASE, bos_token_id: null, eos_token_id: null, num_key_value_heads: 32, torch_dtype: 'float16' },
  /** microsoft/phi-1 */
  'phi-1': { ...PHI1_BASE, bos_token_id: null, eos_token_id: null, num_key_value_heads: null, torch_dtype: 'float32' },
};

export type KnownConfigName = keyof typeof CONFIGS;

/** A config.json value: JSON only, deep-frozen. */
export type KnownConfig = Readonly<Record<string, unknown>>;

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v as object)) deepFreeze(x);
  }
  return v;
}

/** Preset name → the model's config.json (deep-frozen; structuredClone it to modify). */
export const KNOWN_CONFIGS: Readonly<Record<KnownConfigName, KnownConfig>> = deepFreeze(
  Object.fromEntries(Object.entries(CONFIGS).map(([k, v]) => [k, structuredClone(v)])) as unknown as Record<KnownConfigName, KnownConfig>,
);

/** Preset name → Hugging Face repository. */
export const KNOWN_CONFIG_HUB_IDS: Readonly<Record<KnownConfigName, string>> = Object.freeze({
  'phi-3-mini-4k': 'microsoft/Phi-3-mini-4k-instruct',
  'phi-3-mini-128k': 'microsoft/Phi-3-mini-128k-instruct',
  'phi-3.5-mini': 'microsoft/Phi-3.5-mini-instruct',
  'phi-3-medium-4k': 'microsoft/Phi-3-medium-4k-instruct',
  'phi-4-mini': 'microsoft/Phi-4-mini-instruct',
  'phi-4-mini-reasoning': 'microsoft/Phi-4-mini-reasoning',
  'phi-4': 'microsoft/phi-4',
  'phi-4-reasoning': 'microsoft/Phi-4-reasoning',
  'phi-2': 'microsoft/phi-2',
  'phi-1_5': 'microsoft/phi-1_5',
  'phi-1': 'microsoft/phi-1',
});

/**
 * generation_config.json of the presets whose hub file sets more than config.json does (end-of-turn ids).
 * Presets not listed have a generation config that repeats config.json's bos/eos ids.
 */
export const KNOWN_GENERATION_CONFIGS: Readonly<Partial<Record<KnownConfigName, KnownConfig>>> = deepFreeze({
  'phi-3-mini-4k': { _from_model_config: true, bos_token_id: 1, eos_token_id: [32000, 32001, 32007], pad_token_id: 32000 },
  'phi-3-mini-128k': { _from_model_config: true, bos_token_id: 1, eos_token_id: [32000, 32001, 32007], pad_token_id: 32000 },
  'phi-3.5-mini': { _from_model_config: true, bos_token_id: 1, eos_token_id: [32007, 32001, 32000], pad_token_id: 32000 },
  'phi-3-medium-4k': { _from_model_config: true, bos_token_id: 1, eos_token_id: [32000, 32001, 32007], pad_token_id: 32000 },
  'phi-4-mini': { _from_model_config: true, bos_token_id: 199999, eos_token_id: [200020, 199999], pad_token_id: 199999 },
  'phi-4-mini-reasoning': { _from_model_config: true, bos_token_id: 199999, eos_token_id: [200020, 199999], pad_token_id: 199999 },
  'phi-4': { _from_model_config: true, bos_token_id: 100257, eos_token_id: 100265, pad_token_id: 100349 },
  'phi-4-reasoning': { _from_model_config: true, bos_token_id: 100257, eos_token_id: 100265, pad_token_id: 100349 },
  'phi-2': { _from_model_config: true, bos_token_id: 50256, eos_token_id: 50256 },
});

/** Every preset name, in the order above. */
export const KNOWN_CONFIG_NAMES: readonly KnownConfigName[] = Object.freeze(Object.keys(CONFIGS) as KnownConfigName[]);

/** The frozen config.json of a preset. */
export function knownConfig(name: KnownConfigName): KnownConfig {
  return KNOWN_CONFIGS[name];
}

export function isKnownConfigName(s: string): s is KnownConfigName {
  return Object.prototype.hasOwnProperty.call(CONFIGS, s);
}
