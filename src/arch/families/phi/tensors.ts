// PhiForCausalLM's tensor table: every tensor transformers saves, its role, the shape the config implies and its
// kind. Separate q/k/v and dense projections, fc1/fc2 MLP, LayerNorm, biases everywhere (lm_head's too).
import type { TensorRule } from '../../tensor-map.js';
import { DIMS } from '../../tensor-shapes.js';
import type { DecoderConfig } from '../../types.js';

const { vocab: V, hidden: H, intermediate: I, q, kv, rotaryHalf } = DIMS;
const untied = (c: DecoderConfig) => !c.tiedEmbeddings;
const never = () => false;
const always = () => true;

/** HF name → role, with the shape the config implies ([out, in] for linear weights), in the order transformers saves them. */
export const phiTensors: readonly TensorRule[] = [
  { hf: 'model.embed_tokens.weight', role: 'embed', shape: [V, H], init: 'embedding' },
  { hf: 'model.layers.{layer}.input_layernorm.weight', role: 'norm.weight', shape: [H], init: 'norm-weight' },
  { hf: 'model.layers.{layer}.input_layernorm.bias', role: 'norm.bias', shape: [H], init: 'norm-bias' },
  { hf: 'model.layers.{layer}.self_attn.q_proj.weight', role: 'attn.q', shape: [q, H], init: 'linear' },
  { hf: 'model.layers.{layer}.self_attn.q_proj.bias', role: 'attn.q.bias', shape: [q], init: 'bias' },
  { hf: 'model.layers.{layer}.self_attn.k_proj.weight', role: 'attn.k', shape: [kv, H], init: 'linear' },
  { hf: 'model.layers.{layer}.self_attn.k_proj.bias', role: 'attn.k.bias', shape: [kv], init: 'bias' },
  { hf: 'model.layers.{layer}.self_attn.v_proj.weight', role: 'attn.v', shape: [kv, H], init: 'linear' },
  { hf: 'model.layers.{layer}.self_attn.v_proj.bias', role: 'attn.v.bias', shape: [kv], init: 'bias' },
  { hf: 'model.layers.{layer}.self_attn.dense.weight', role: 'attn.o', shape: [H, q], init: 'linear' },
  { hf: 'model.layers.{layer}.self_attn.dense.bias', role: 'attn.o.bias', shape: [H], init: 'bias' },
  { hf: 'model.layers.{layer}.mlp.fc1.weight', role: 'mlp.fc1', shape: [I, H], init: 'linear' },
  { hf: 'model.layers.{layer}.mlp.fc1.bias', role: 'mlp.fc1.bias', shape: [I], init: 'bias' },
  { hf: 'model.layers.{layer}.mlp.fc2.weight', role: 'mlp.fc2', shape: [H, I], init: 'linear' },
  { hf: 'model.layers.{layer}.mlp.fc2.bias', role: 'mlp.fc2.bias', shape: [H], init: 'bias' },
  { hf: 'model.final_layernorm.weight', role: 'final_norm.weight', shape: [H], init: 'norm-weight' },
  { hf: 'model.final_layernorm.bias', role: 'final_norm.bias', shape: [H], init: 'norm-bias' },
  { hf: 'lm_head.weight', role: 'lm_head', shape: [V, H], required: untied, init: 'linear' },
  // PhiForCausalLM's lm_head is an nn.Linear with bias, tied or not: transformers saves it; the builder adds it
  // when present.
  { hf: 'lm_head.bias', role: 'lm_head.bias', shape: [V], required: never, saved: always, init: 'bias' },
  { hf: 'model.layers.{layer}.self_attn.rotary_emb.inv_freq', role: null, shape: [rotaryHalf] },
];
