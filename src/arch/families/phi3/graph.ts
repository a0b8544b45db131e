// Phi3ForCausalLM: Phi-3/3.5 mini and medium (4k sliding window, 128k LongRoPE), Phi-4-mini (GQA, partial rotary,
// tied embeddings) and Phi-4. RMSNorm, packed qkv_proj and gate_up_proj, SiLU-gated MLP, no biases.
import { rmsNorm, skipRmsNorm } from '../../../graph/norms.js';
import { siluGatedMlp } from '../../../graph/mlp.js';
import { linearWeight, plainWeight } from '../../../graph/weights.js';
import { weightName } from '../../../graph/linear.js';
import { ArchitectureError } from '../../../util/errors.js';
import { attentionBlock, embedding, lmHead, prologue } from '../../blocks.js';
import { longRopeFrom, positiveInt, tokenIds, type RopeScalingFields } from '../../config-schema.js';
import type { TensorRule } from '../../tensor-map.js';
import { DIMS } from '../../tensor-shapes.js';
import type { ArchSpec, BuildContext, DecoderConfig } from '../../types.js';

const ARCH = 'Phi3ForCausalLM';

/** The config.json fields this builder reads (snake_case, as transformers writes them). */
export interface Phi3ConfigFields {
  readonly architecture?: string;
  /** floor(head size × partial_rotary_factor), when the config parser derived it. */
  readonly rotary_dim?: number;
  readonly hidden_size: number;
  readonly intermediate_size: number;
  readonly num_hidden_layers: number;
  readonly num_attention_heads: number;
  readonly num_key_value_heads?: number | null;
  readonly head_dim?: number | null;
  readonly vocab_size: number;
  readonly max_position_embeddings: number;
  readonly original_max_position_embeddings?: number | null;
  readonly rms_norm_eps?: number | null;
  readonly rope_theta?: number | null;
  readonly partial_rotary_factor?: number | null;
  readonly rope_scaling?: RopeScalingFields | null;
  readonly sliding_window?: number | null;
  readonly tie_word_embeddings?: boolean | null;
  readonly hidden_act?: string | null;
  readonly bos_token_id?: number | null;
  readonly eos_token_id?: number | readonly number[] | null;
  readonly pad_token_id?: number | null;
}

function parseConfig(c: Phi3ConfigFields): DecoderConfig {
  const hidden = positiveInt(ARCH, 'hidden_size', c.hidden_size);
  const heads = positiveInt(ARCH, 'num_attention_heads', c.num_attention_heads);
  const headSize = c.head_dim ? positiveInt(ARCH, 'head_dim', c.head_dim) : hidden / heads;
  if (!Number.isInteger(headSize)) {
    throw new ArchitectureError('ARCH_CONFIG', `hidden_size ${hidden} is not divisible by num_attention_heads ${heads}`, { where: `${ARCH} config.json` });
  }
  const act = c.hidden_act ?? 'silu';
  if (act !== 'silu' && act !== 'swish') {
    throw new ArchitectureError('ARCH_ACTIVATION', `hidden_act '${act}' is not supported for ${ARCH}`, { where: `${ARCH} config.json`, fix: "Phi-3 models use 'silu'" });
  }
  const maxLength = positiveInt(ARCH, 'max_position_embeddings', c.max_position_embeddings);
  // transformers truncates head_dim × partial_rotary_factor to an int.
  const rotaryDim = c.rotary_dim ?? Math.trunc(headSize * (c.partial_rotary_factor ?? 1) + 1e-9);
  return {
    architecture: ARCH,
    genaiType: 'phi3',
    hiddenSize: hidden,
    intermediateSize: positiveInt(ARCH, 'intermediate_size', c.intermediate_size),
    numLayers: positiveInt(ARCH, 'num_hidden_layers', c.num_hidden_layers),
    numHeads: heads,
    kvHeads: c.num_key_value_heads ? positiveInt(ARCH, 'num_key_value_heads', c.num_key_value_heads) : heads,
    headSize,
    vocabSize: positiveInt(ARCH, 'vocab_size', c.vocab_size),
    contextLength: maxLength,
    normEps: c.rms_norm_eps ?? 1e-5,
    rotary: {
      rotaryDim,
      theta: c.rope_theta ?? 10000,
      maxLength,
      longRope: longRopeFrom(ARCH, c.rope_scaling, maxLength, c.original_max_position_embeddings, rotaryDim),
    },
    // onnxruntime 1.30's GroupQueryAttention attends to local_window_size keys (the query's own included), which is
    // transformers' sliding_window: the tests check it against the reference forward past the window.
    slidingWindow: c.sliding_window ?? -1,
    tiedEmbeddings: c.tie_word_embeddings === true,
    tokens: tokenIds(c),
  };
}

const { vocab: V, hidden: H, intermediate: I, gateUp, q, qkv, rotaryHalf } = DIMS;
const untied = (c: DecoderConfig) => !c.tiedEmbeddings;

/** HF name → role, with the shape the config implies ([out, in] for linear weights). */
const tensorMap: readonly TensorRule[] = [
  { hf: 'model.embed_tokens.weight', role: 'embed', shape: [V, H] },
  { hf: 'model.layers.{layer}.input_layernorm.weight', role: 'input_norm', shape: [H] },
  { hf: 'model.layers.{layer}.self_attn.qkv_proj.weight', role: 'attn.qkv', shape: [qkv, H] },
  { hf: 'model.layers.{layer}.self_attn.o_proj.weight', role: 'attn.o', shape: [H, q] },
  { hf: 'model.layers.{layer}.post_attention_layernorm.weight', role: 'post_attn_norm', shape: [H] },
  { hf: 'model.layers.{layer}.mlp.gate_up_proj.weight', role: 'mlp.gate_up', shape: [gateUp, H] },
  { hf: 'model.layers.{layer}.mlp.down_proj.weight', role: 'mlp.down', shape: [H, I] },
  { hf: 'model.norm.weight', role: 'final_norm', shape: [H] },
  // Tied: the embedding is the LM head too; a checkpoint may still carry the copy, which must then agree.
  { hf: 'lm_head.weight', role: 'lm_head', shape: [V, H], required: untied },
  // Older exports saved the rotary inverse frequencies; the builder computes its own caches, but their length
  // still tells a wrong partial_rotary_factor / head_dim.
  { hf: 'model.layers.{layer}.self_attn.rotary_emb.inv_freq', role: null, shape: [rotaryHalf] },
];

function build(ctx: BuildContext): void {
  const { b, config: c, tensors: t, src, dtype } = ctx;
  const pro = prologue(ctx);
  const q = c.numHeads * c.headSize;
  const kv = c.kvHeads * c.headSize;
  const I = c.intermediateSize;
  const norm = (i: number, role: string, location: string) =>
    b.initializer(plainWeight(src, `model.layers.${i}.${location}.weight`, [{ tensor: t.get(role, i) }], dtype));

  const x0 = embedding(ctx, pro.io.inputIds);
  let residual = x0;
  let skip: string | undefined;
  for (let i = 0; i < c.numLayers; i++) {
    const inW = norm(i, 'input_norm', 'input_layernorm');
    const inBase = `/model/layers.${i}/input_layernorm`;
    const n1 = skip === undefined ? rmsNorm(b, inBase, residual, inW, c.normEps) : skipRmsNorm(b, inBase, residual, skip, inW, c.normEps);
    residual = n1.residual ?? residual;

    const qkv = t.get('attn.qkv', i);
    const attn = attentionBlock(
      ctx,
      pro,
      i,
      n1.output,
      { q: [{ tensor: qkv, rows: [0, q] }], k: [{ tensor: qkv, rows: [q, q + kv] }], v: [{ tensor: qkv, rows: [q + kv, q + 2 * kv] }] },
      { weight: [{ tensor: t.get('attn.o', i) }] },
    );

    const postW = norm(i, 'post_attn_norm', 'post_attention_layernorm');
    const n2 = skipRmsNorm(b, `/model/layers.${i}/post_attention_layernorm`, residual, attn, postW, c.normEps);
    residual = n2.residual!;

    const base = `/model/layers.${i}/mlp`;
    const gu = t.get('mlp.gate_up', i);
    const w = (name: string, rows?: [number, number]) =>
      b.initializer(linearWeight(src, weightName(`${base}/${name}/MatMul`, 'weight'), [{ tensor: name === 'down_proj' ? t.get('mlp.down', i) : gu, rows }], dtype));
    skip = siluGatedMlp(b, base, n2.output, { gate: w('gate_proj', [0, I]), up: w('up_proj', [I, 2 * I]), down: w('down_proj') });
  }
  const last = `/model/layers.${c.numLayers}/final_norm_layernorm`;
  const fW = b.initializer(plainWeight(src, `model.layers.${c.numLayers}.final_norm_layernorm.weight`, [{ tensor: t.get('final_norm') }], dtype));
  const fin = skipRmsNorm(b, last, residual, skip!, fW, c.normEps, true);
  lmHead(ctx, fin.output, pro.io);
}

function variant(c: DecoderConfig): string[] {
  const v: string[] = [];
  if (c.rotary.longRope) v.push('longrope');
  if (c.rotary.rotaryDim !== c.headSize) v.push(`partial-rotary ${c.rotary.rotaryDim}/${c.headSize}`);
  if (c.kvHeads !== c.numHeads) v.push(`gqa ${c.numHeads}/${c.kvHeads}`);
  if (c.tiedEmbeddings) v.push('tied-embeddings');
  if (c.slidingWindow > 0) v.push(`sliding-window ${c.slidingWindow}`);
  return v;
}

export const phi3Spec: ArchSpec<Phi3ConfigFields> = Object.freeze({
  hfArchitectures: [ARCH],
  genaiType: 'phi3',
  tensorMap,
  parseConfig,
  variant,
  build,
});
