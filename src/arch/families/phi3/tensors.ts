// Phi3ForCausalLM's tensor table: every tensor transformers saves, its role, the shape the config implies and its
// kind. q, k and v are packed into qkv_proj, gate and up into gate_up_proj; no biases.
import type { TensorRule } from '../../tensor-map.js';
import { derived, DIMS } from '../../tensor-shapes.js';
import type { DecoderConfig } from '../../types.js';

const { vocab: V, hidden: H, intermediate: I, q, rotaryHalf } = DIMS;

/** Packed gate and up projections (gate_up_proj: first I rows gate, next I up). */
const gateUp = derived(['intermediate_size'], (c) => 2 * c.intermediateSize, (l) => `2 × ${l.intermediate_size}`);
/** Packed q, k and v (qkv_proj: q rows, then k, then v). */
const qkv = derived(
  ['num_attention_heads', 'num_key_value_heads', 'head_dim'],
  (c) => (c.numHeads + 2 * c.kvHeads) * c.headSize,
  (l) => `(${l.num_attention_heads} + 2 × ${l.num_key_value_heads}) × ${l.head_dim}`,
);

const untied = (c: DecoderConfig) => !c.tiedEmbeddings;

/** HF name → role, with the shape the config implies ([out, in] for linear weights), in the order transformers saves them. */
export const phi3Tensors: readonly TensorRule[] = [
  { hf: 'model.embed_tokens.weight', role: 'embed', shape: [V, H], init: 'embedding' },
  { hf: 'model.layers.{layer}.input_layernorm.weight', role: 'input_norm', shape: [H], init: 'norm-weight' },
  { hf: 'model.layers.{layer}.self_attn.qkv_proj.weight', role: 'attn.qkv', shape: [qkv, H], init: 'linear' },
  { hf: 'model.layers.{layer}.self_attn.o_proj.weight', role: 'attn.o', shape: [H, q], init: 'linear' },
  { hf: 'model.layers.{layer}.post_attention_layernorm.weight', role: 'post_attn_norm', shape: [H], init: 'norm-weight' },
  { hf: 'model.layers.{layer}.mlp.gate_up_proj.weight', role: 'mlp.gate_up', shape: [gateUp, H], init: 'linear' },
  { hf: 'model.layers.{layer}.mlp.down_proj.weight', role: 'mlp.down', shape: [H, I], init: 'linear' },
  { hf: 'model.norm.weight', role: 'final_norm', shape: [H], init: 'norm-weight' },
  // Tied: the embedding is the LM head too; a checkpoint may still carry the copy, which must then agree.
  { hf: 'lm_head.weight', role: 'lm_head', shape: [V, H], required: untied, init: 'linear' },
  // Older exports saved the rotary inverse frequencies; the builder computes its own caches, but their length
  // still tells a wrong partial_rotary_factor / head_dim.
  { hf: 'model.layers.{layer}.self_attn.rotary_emb.inv_freq', role: null, shape: [rotaryHalf] },
];
