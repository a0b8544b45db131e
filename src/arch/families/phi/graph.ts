// PhiForCausalLM: Phi-1, Phi-1.5, Phi-2. LayerNorm with bias, attention and MLP in parallel off one norm, partial
// rotary, gelu_new, biases everywhere; q/k/v are packed into one MatMul (weights and biases) for GroupQueryAttention.
import { geluMlp } from '../../../graph/mlp.js';
import { layerNorm, skipLayerNorm } from '../../../graph/norms.js';
import { linearWeight, plainWeight } from '../../../graph/weights.js';
import { weightName } from '../../../graph/linear.js';
import { ArchitectureError } from '../../../util/errors.js';
import { attentionBlock, embedding, lmHead, prologue } from '../../blocks.js';
import { positiveInt, tokenIds } from '../../config-schema.js';
import type { TensorRule } from '../../tensor-map.js';
import { DIMS } from '../../tensor-shapes.js';
import type { ArchSpec, BuildContext, DecoderConfig } from '../../types.js';

const ARCH = 'PhiForCausalLM';

/** The config.json fields this builder reads (snake_case, as transformers writes them). */
export interface PhiConfigFields {
  readonly architecture?: string;
  /** floor(head size × partial_rotary_factor), when the config parser derived it. */
  readonly rotary_dim?: number;
  readonly hidden_size: number;
  readonly intermediate_size: number;
  readonly num_hidden_layers: number;
  readonly num_attention_heads: number;
  readonly num_key_value_heads?: number | null;
  readonly vocab_size: number;
  readonly max_position_embeddings: number;
  readonly layer_norm_eps?: number | null;
  readonly rope_theta?: number | null;
  readonly partial_rotary_factor?: number | null;
  readonly rope_scaling?: unknown;
  readonly qk_layernorm?: boolean | null;
  readonly tie_word_embeddings?: boolean | null;
  readonly hidden_act?: string | null;
  readonly bos_token_id?: number | null;
  readonly eos_token_id?: number | readonly number[] | null;
  readonly pad_token_id?: number | null;
}

/** Activations that are all the tanh approximation of GELU. */
const TANH_GELUS = new Set(['gelu_new', 'gelu_fast', 'gelu_pytorch_tanh']);

function parseConfig(c: PhiConfigFields): DecoderConfig {
  const where = `${ARCH} config.json`;
  const hidden = positiveInt(ARCH, 'hidden_size', c.hidden_size);
  const heads = positiveInt(ARCH, 'num_attention_heads', c.num_attention_heads);
  const headSize = hidden / heads;
  if (!Number.isInteger(headSize)) throw new ArchitectureError('ARCH_CONFIG', `hidden_size ${hidden} is not divisible by num_attention_heads ${heads}`, { where });
  const act = c.hidden_act ?? 'gelu_new';
  if (!TANH_GELUS.has(act)) throw new ArchitectureError('ARCH_ACTIVATION', `hidden_act '${act}' is not supported for ${ARCH}`, { where, fix: "Phi-1/1.5/2 use 'gelu_new'" });
  if (c.qk_layernorm) throw new ArchitectureError('ARCH_QK_LAYERNORM', 'qk_layernorm is not supported by the native builder', { where });
  if (c.rope_scaling) throw new ArchitectureError('ARCH_ROPE_SCALING', 'rope_scaling is not supported for PhiForCausalLM', { where });
  const maxLength = positiveInt(ARCH, 'max_position_embeddings', c.max_position_embeddings);
  return {
    architecture: ARCH,
    genaiType: 'phi',
    hiddenSize: hidden,
    intermediateSize: positiveInt(ARCH, 'intermediate_size', c.intermediate_size),
    numLayers: positiveInt(ARCH, 'num_hidden_layers', c.num_hidden_layers),
    numHeads: heads,
    kvHeads: c.num_key_value_heads ? positiveInt(ARCH, 'num_key_value_heads', c.num_key_value_heads) : heads,
    headSize,
    vocabSize: positiveInt(ARCH, 'vocab_size', c.vocab_size),
    contextLength: maxLength,
    normEps: c.layer_norm_eps ?? 1e-5,
    rotary: { rotaryDim: c.rotary_dim ?? Math.trunc(headSize * (c.partial_rotary_factor ?? 0.5) + 1e-9), theta: c.rope_theta ?? 10000, maxLength },
    slidingWindow: -1,
    tiedEmbeddings: c.tie_word_embeddings === true,
    tokens: tokenIds(c),
  };
}

const { vocab: V, hidden: H, intermediate: I, q, kv, rotaryHalf } = DIMS;
const untied = (c: DecoderConfig) => !c.tiedEmbeddings;
// PhiForCausalLM's lm_head is an nn.Linear with bias, tied or not; the builder adds it when present.
const optional = () => false;

/** HF name → role, with the shape the config implies ([out, in] for linear weights). */
const tensorMap: readonly TensorRule[] = [
  { hf: 'model.embed_tokens.weight', role: 'embed', shape: [V, H] },
  { hf: 'model.layers.{layer}.input_layernorm.weight', role: 'norm.weight', shape: [H] },
  { hf: 'model.layers.{layer}.input_layernorm.bias', role: 'norm.bias', shape: [H] },
  { hf: 'model.layers.{layer}.self_attn.q_proj.weight', role: 'attn.q', shape: [q, H] },
  { hf: 'model.layers.{layer}.self_attn.q_proj.bias', role: 'attn.q.bias', shape: [q] },
  { hf: 'model.layers.{layer}.self_attn.k_proj.weight', role: 'attn.k', shape: [kv, H] },
  { hf: 'model.layers.{layer}.self_attn.k_proj.bias', role: 'attn.k.bias', shape: [kv] },
  { hf: 'model.layers.{layer}.self_attn.v_proj.weight', role: 'attn.v', shape: [kv, H] },
  { hf: 'model.layers.{layer}.self_attn.v_proj.bias', role: 'attn.v.bias', shape: [kv] },
  { hf: 'model.layers.{layer}.self_attn.dense.weight', role: 'attn.o', shape: [H, q] },
  { hf: 'model.layers.{layer}.self_attn.dense.bias', role: 'attn.o.bias', shape: [H] },
  { hf: 'model.layers.{layer}.mlp.fc1.weight', role: 'mlp.fc1', shape: [I, H] },
  { hf: 'model.layers.{layer}.mlp.fc1.bias', role: 'mlp.fc1.bias', shape: [I] },
  { hf: 'model.layers.{layer}.mlp.fc2.weight', role: 'mlp.fc2', shape: [H, I] },
  { hf: 'model.layers.{layer}.mlp.fc2.bias', role: 'mlp.fc2.bias', shape: [H] },
  { hf: 'model.final_layernorm.weight', role: 'final_norm.weight', shape: [H] },
  { hf: 'model.final_layernorm.bias', role: 'final_norm.bias', shape: [H] },
  { hf: 'lm_head.weight', role: 'lm_head', shape: [V, H], required: untied },
  { hf: 'lm_head.bias', role: 'lm_head.bias', shape: [V], required: optional },
  { hf: 'model.layers.{layer}.self_attn.rotary_emb.inv_freq', role: null, shape: [rotaryHalf] },
];

function build(ctx: BuildContext): void {
  const { b, config: c, tensors: t, src, dtype } = ctx;
  const pro = prologue(ctx);
  const vec = (name: string, role: string, layer?: number) => b.initializer(plainWeight(src, name, [{ tensor: t.get(role, layer) }], dtype));
  const mat = (path: string, role: string, layer: number) => b.initializer(linearWeight(src, weightName(`${path}/MatMul`, 'weight'), [{ tensor: t.get(role, layer) }], dtype));

  // Layer i normalises root + skip, where skip is the previous layer's attention + MLP sum: the residual stream.
  let root = embedding(ctx, pro.io.inputIds);
  let skip: string | undefined;
  for (let i = 0; i < c.numLayers; i++) {
    const base = `/model/layers.${i}/input_layernorm`;
    const w = vec(`model.layers.${i}.input_layernorm.weight`, 'norm.weight', i);
    const bias = vec(`model.layers.${i}.input_layernorm.bias`, 'norm.bias', i);
    const n = skip === undefined ? layerNorm(b, base, root, w, bias, c.normEps) : skipLayerNorm(b, base, root, skip, w, bias, c.normEps);
    root = n.residual ?? root;

    const s = (role: string) => [{ tensor: t.get(role, i) }];
    const attn = attentionBlock(
      ctx,
      pro,
      i,
      n.output,
      { q: s('attn.q'), k: s('attn.k'), v: s('attn.v'), qBias: s('attn.q.bias'), kBias: s('attn.k.bias'), vBias: s('attn.v.bias') },
      { weight: s('attn.o'), bias: s('attn.o.bias') },
    );
    const mlpBase = `/model/layers.${i}/mlp`;
    const mlp = geluMlp(b, mlpBase, n.output, {
      fc1: mat(`${mlpBase}/fc1`, 'mlp.fc1', i),
      fc1Bias: vec(weightName(`${mlpBase}/fc1/Add`, 'bias'), 'mlp.fc1.bias', i),
      fc2: mat(`${mlpBase}/fc2`, 'mlp.fc2', i),
      fc2Bias: vec(weightName(`${mlpBase}/fc2/Add`, 'bias'), 'mlp.fc2.bias', i),
    });
    skip = b.op1('Add', `/model/layers.${i}/residual_add/Add`, [attn, mlp]);
  }
  const fin = skipLayerNorm(
    b,
    `/model/layers.${c.numLayers}/final_norm_layernorm`,
    root,
    skip!,
    vec(`model.layers.${c.numLayers}.final_norm_layernorm.weight`, 'final_norm.weight'),
    vec(`model.layers.${c.numLayers}.final_norm_layernorm.bias`, 'final_norm.bias'),
    c.normEps,
    true,
  );
  lmHead(ctx, fin.output, pro.io);
}

function variant(c: DecoderConfig): string[] {
  const v = ['parallel-attn-mlp', `partial-rotary ${c.rotary.rotaryDim}/${c.headSize}`];
  if (c.tiedEmbeddings) v.push('tied-embeddings');
  return v;
}

export const phiSpec: ArchSpec<PhiConfigFields> = Object.freeze({
  hfArchitectures: [ARCH],
  genaiType: 'phi',
  tensorMap,
  parseConfig,
  variant,
  build,
});

