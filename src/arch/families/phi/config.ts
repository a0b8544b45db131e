// PhiForCausalLM's config.json: transformers' PhiConfig (defaults: partial rotary 0.5, gelu_new, LayerNorm eps),
// parsed once, and the builder's view of it, refusing what the native builder does not implement.
import { z } from 'zod';
import type { HfConfigJson } from '../../../checkpoint/hf-config.js';
import { ArchitectureError } from '../../../util/errors.js';
import {
  dropout,
  GenericRopeSchema,
  headGeometry,
  normaliseConfig,
  parseFields,
  posInt,
  tokenId,
  tokenIdOrList,
  tokenIds,
  type GenericRopeScaling,
} from '../../config-schema.js';
import type { DecoderConfig, FamilyConfig } from '../../types.js';

export const PHI_ARCHITECTURE = 'PhiForCausalLM';

const PhiSchema = z.object({
  vocab_size: posInt.default(51200),
  hidden_size: posInt.default(2048),
  intermediate_size: posInt.default(8192),
  num_hidden_layers: posInt.default(24),
  num_attention_heads: posInt.default(32),
  num_key_value_heads: posInt.nullish(),
  resid_pdrop: dropout.default(0),
  embd_pdrop: dropout.default(0),
  attention_dropout: dropout.default(0),
  hidden_act: z.string().min(1).default('gelu_new'),
  max_position_embeddings: posInt.default(2048),
  initializer_range: z.number().nonnegative().default(0.02),
  layer_norm_eps: z.number().positive().default(1e-5),
  use_cache: z.boolean().default(true),
  tie_word_embeddings: z.boolean().default(false),
  rope_theta: z.number().positive().default(10000),
  rope_scaling: GenericRopeSchema.nullable().default(null),
  partial_rotary_factor: z.number().gt(0).lte(1).default(0.5),
  qk_layernorm: z.boolean().default(false),
  bos_token_id: tokenId.nullable().default(1),
  eos_token_id: tokenIdOrList.nullable().default(2),
  pad_token_id: tokenId.nullable().default(null),
  torch_dtype: z.string().optional(),
});

/** Phi-1, Phi-1.5, Phi-2: config.json with transformers' defaults filled in. */
export type PhiConfig = Omit<z.output<typeof PhiSchema>, 'num_key_value_heads' | 'rope_scaling'> &
  FamilyConfig & { rope_scaling: GenericRopeScaling | null };

export function parsePhiConfig(config: HfConfigJson, architecture: string): PhiConfig {
  const c = parseFields(PhiSchema, normaliseConfig(config), config.file);
  // PhiConfig has no head_dim: heads are always hidden_size / num_attention_heads.
  const geometry = headGeometry({ ...c, head_dim: undefined }, config.file);
  return { ...c, ...geometry, architecture, raw: config.raw, rope_scaling: c.rope_scaling as GenericRopeScaling | null };
}

/** Activations that are all the tanh approximation of GELU. */
const TANH_GELUS = new Set(['gelu_new', 'gelu_fast', 'gelu_pytorch_tanh']);

export function phiDecoder(c: PhiConfig): DecoderConfig {
  const where = `${c.architecture} config.json`;
  const act = c.hidden_act;
  if (!TANH_GELUS.has(act)) throw new ArchitectureError('ARCH_ACTIVATION', `hidden_act '${act}' is not supported for ${c.architecture}`, { where, fix: "Phi-1/1.5/2 use 'gelu_new'" });
  if (c.qk_layernorm) throw new ArchitectureError('ARCH_QK_LAYERNORM', 'qk_layernorm is not supported by the native builder', { where });
  if (c.rope_scaling) throw new ArchitectureError('ARCH_ROPE_SCALING', 'rope_scaling is not supported for PhiForCausalLM', { where });
  const maxLength = c.max_position_embeddings;
  return {
    architecture: c.architecture,
    genaiType: 'phi',
    hiddenSize: c.hidden_size,
    intermediateSize: c.intermediate_size,
    numLayers: c.num_hidden_layers,
    numHeads: c.num_attention_heads,
    kvHeads: c.num_key_value_heads,
    headSize: c.head_dim,
    vocabSize: c.vocab_size,
    contextLength: maxLength,
    normEps: c.layer_norm_eps,
    rotary: { rotaryDim: c.rotary_dim, theta: c.rope_theta, maxLength },
    slidingWindow: -1,
    tiedEmbeddings: c.tie_word_embeddings,
    tokens: tokenIds(c),
  };
}

export function phiVariant(c: DecoderConfig): string[] {
  const v = ['parallel-attn-mlp', `partial-rotary ${c.rotary.rotaryDim}/${c.headSize}`];
  if (c.tiedEmbeddings) v.push('tied-embeddings');
  return v;
}
