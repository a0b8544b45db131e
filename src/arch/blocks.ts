// Decoder pieces every family shares, per graph layout: graph I/O and mask summary, embeddings, attention, LM head.
// Family-neutral: they read only the roles `embed` and `lm_head` (which every family's tensor table names) and the
// weights a family's graph hands them.
import { attr } from '../onnx/ir.js';
import { attentionMaskInfo, groupQueryAttention, positionIdsFromMask, rotaryEmbedding, type MaskInfo } from '../graph/attention.js';
import { declareDecoderIo, type DecoderIo } from '../graph/io.js';
import { linear, weightName } from '../graph/linear.js';
import { concatenatedRotaryCaches, offsetPositionIds, selectedRotaryCaches, type CacheNames } from '../graph/rotary.js';
import { linearWeight, plainWeight, type RowSlice } from '../graph/weights.js';
import { ArchitectureError } from '../util/errors.js';
import type { GraphLayout } from '../target/types.js';
import type { BuildContext, DecoderConfig } from './types.js';

export interface Prologue {
  io: DecoderIo;
  mask: MaskInfo;
  caches: CacheNames;
  /** Where q and k are rotated (see {@link rotaryPlacement}). */
  rotary: RotaryPlacement;
  /** Position ids the RotaryEmbedding nodes read (rotary in nodes only): the input (DirectML) or computed from the mask. */
  positionIds?: string;
}

/**
 * - `attention`: GroupQueryAttention rotates q and k itself from the cos/sin caches (do_rotary=1), packed QKV.
 * - `nodes`: com.microsoft RotaryEmbedding nodes rotate q and k before a GroupQueryAttention with do_rotary=0.
 */
export type RotaryPlacement = 'attention' | 'nodes';

/**
 * onnxruntime's GroupQueryAttention rotates in place only for head_size and rotary_dim multiples of 16 (every real
 * Phi); small heads (stories260K: 8) and DirectML, which runs no rotary inside attention, rotate in nodes.
 */
export function rotaryPlacement(c: DecoderConfig, layout: Pick<GraphLayout, 'graph'>): RotaryPlacement {
  if (layout.graph === 'dml') return 'nodes';
  return c.headSize % 16 === 0 && c.rotary.rotaryDim % 16 === 0 ? 'attention' : 'nodes';
}

/** Checks what no attention layout can run, with a clear message; buildModel calls it before checking tensors. */
export function checkAttentionShape(c: DecoderConfig): void {
  const where = `${c.architecture} config`;
  if (c.numHeads % c.kvHeads !== 0) {
    throw new ArchitectureError('ARCH_HEADS', `num_attention_heads ${c.numHeads} is not a multiple of num_key_value_heads ${c.kvHeads}`, { where });
  }
  if (c.headSize % 8 !== 0) {
    throw new ArchitectureError('ARCH_HEAD_SIZE', `head size ${c.headSize} is not a multiple of 8, which GroupQueryAttention requires`, {
      where,
      fix: 'use a checkpoint whose hidden_size / num_attention_heads (or head_dim) is a multiple of 8',
    });
  }
  const r = c.rotary.rotaryDim;
  if (r <= 0 || r % 2 !== 0 || r > c.headSize) {
    throw new ArchitectureError('ARCH_ROTARY_DIM', `rotary dim ${r} (partial_rotary_factor × head size ${c.headSize}) must be even, positive and at most the head size`, {
      where,
      fix: 'rotary embeddings rotate pairs of dimensions within a head: check partial_rotary_factor and head_dim in config.json',
    });
  }
}

/** Graph I/O, the attention-mask summary, the rotary caches and (for rotary in nodes) position ids, laid out for the graph layout. */
export function prologue(ctx: BuildContext): Prologue {
  const { b, config: c, layout, dtype } = ctx;
  const dml = layout.graph === 'dml';
  const rotary = rotaryPlacement(c, layout);
  const io = declareDecoderIo(b, {
    layers: c.numLayers,
    kvHeads: c.kvHeads,
    headSize: c.headSize,
    vocabSize: c.vocabSize,
    dtype,
    logitsDtype: dtype,
    positionIds: dml,
  });
  const mask = attentionMaskInfo(b, io.attentionMask);
  if (!dml) {
    const caches = selectedRotaryCaches(b, c.rotary, dtype, mask.totalLengthInt64);
    const positionIds = rotary === 'nodes' ? positionIdsFromMask(b, io.inputIds, mask) : undefined;
    return { io, mask, caches, rotary, positionIds };
  }
  const caches = concatenatedRotaryCaches(b, c.rotary, dtype);
  const lr = c.rotary.longRope;
  const positionIds = lr ? offsetPositionIds(b, io.positionIds!, lr.originalLength) : io.positionIds!;
  return { io, mask, caches, rotary, positionIds };
}

/**
 * Token embeddings. Untied: Gather from `model.embed_tokens.weight`. Tied (Phi-4-mini): one weight, stored as the
 * LM head's `lm_head.MatMul.weight` [hidden, vocab] as onnxruntime-genai does (so a quantizer can share the LM head's
 * quantized weight with the embedding), gathered along its vocab axis:
 * ```
 * lm_head.MatMul.weight [H, V] ─ Gather(input_ids, axis 1) ─▶ [H, batch, seq] ─ Transpose(1, 2, 0) ─▶ [batch, seq, H]
 * ```
 * (Transposing the weight first, as genai does, costs a full [V, H] transpose per run: onnxruntime will not
 * constant-fold outputs over 1 GiB, and Phi-4-mini's is 1.2 GB in fp16.)
 */
export function embedding(ctx: BuildContext, inputIds: string): string {
  const { b, config: c, tensors, src, dtype } = ctx;
  const embed = tensors.get('embed');
  if (c.tiedEmbeddings) {
    const w = b.initializer(linearWeight(src, 'lm_head.MatMul.weight', [{ tensor: embed }], dtype));
    const g = b.op1('Gather', '/model/embed_tokens/Gather', [w, inputIds], { attrs: [attr.int('axis', 1)] });
    return b.op1('Transpose', '/model/embed_tokens/Transpose', [g], { attrs: [attr.ints('perm', [1, 2, 0])] });
  }
  const w = b.initializer(plainWeight(src, 'model.embed_tokens.weight', [{ tensor: embed }], dtype));
  return b.op1('Gather', '/model/embed_tokens/Gather', [w, inputIds]);
}

/** x → `/lm_head/MatMul` (+ `/lm_head/Add` when the family passes a bias) → `logits`. */
export function lmHead(ctx: BuildContext, x: string, io: DecoderIo, biasSource?: RowSlice[]): void {
  const { b, config: c, tensors, src, dtype } = ctx;
  if (!c.tiedEmbeddings) b.initializer(linearWeight(src, 'lm_head.MatMul.weight', [{ tensor: tensors.get('lm_head') }], dtype));
  const bias = biasSource ? b.initializer(plainWeight(src, weightName('/lm_head/Add', 'bias'), biasSource, dtype)) : undefined;
  linear(b, '/lm_head', x, 'lm_head.MatMul.weight', { bias, output: io.logits });
}

/** Where a layer's q, k and v projection weights (and biases) come from in the checkpoint. */
export interface QkvSource {
  q: RowSlice[];
  k: RowSlice[];
  v: RowSlice[];
  qBias?: RowSlice[];
  kBias?: RowSlice[];
  vBias?: RowSlice[];
}

/** Adjacent row ranges of one tensor merge into one slice, so a packed tensor is read once. */
function merge(parts: readonly RowSlice[]): RowSlice[] {
  const out: RowSlice[] = [];
  for (const p of parts) {
    const last = out[out.length - 1];
    if (last && last.tensor === p.tensor && last.rows && p.rows && last.rows[1] === p.rows[0]) {
      out[out.length - 1] = { tensor: p.tensor, rows: [last.rows[0], p.rows[1]] };
    } else out.push(p);
  }
  return out;
}

/**
 * Self-attention of layer `i` with its output projection. Rotary in attention:
 * ```
 * x ─ qkv_proj (MatMul[, Add]) ─ GroupQueryAttention(rotary inside) ─ o_proj ─▶
 * ```
 * Rotary in nodes (DirectML; small heads):
 * ```
 * x ─ q_proj ─ q_rotary/RotaryEmbedding ─┐
 * x ─ k_proj ─ k_rotary/RotaryEmbedding ─┼─ GroupQueryAttention ─ o_proj ─▶
 * x ─ v_proj ────────────────────────────┘
 * ```
 */
export function attentionBlock(
  ctx: BuildContext,
  pro: Prologue,
  i: number,
  x: string,
  qkv: QkvSource,
  out: { weight: RowSlice[]; bias?: RowSlice[] },
): string {
  const { b, config: c, src, dtype } = ctx;
  const base = `/model/layers.${i}/attn`;
  const proj = (name: string, w: RowSlice[], bias?: RowSlice[]): string => {
    const path = `${base}/${name}`;
    const wn = b.initializer(linearWeight(src, weightName(`${path}/MatMul`, 'weight'), merge(w), dtype));
    const bn = bias ? b.initializer(plainWeight(src, weightName(`${path}/Add`, 'bias'), merge(bias), dtype)) : undefined;
    return linear(b, path, x, wn, { bias: bn });
  };
  const gqa = {
    numHeads: c.numHeads,
    kvHeads: c.kvHeads,
    headSize: c.headSize,
    localWindow: c.slidingWindow,
  };
  const kv = {
    pastKey: pro.io.pastKey(i),
    pastValue: pro.io.pastValue(i),
    presentKey: pro.io.presentKey(i),
    presentValue: pro.io.presentValue(i),
    mask: pro.mask,
  };
  let attnOut: string;
  if (pro.rotary === 'attention') {
    const bias = qkv.qBias ? [...qkv.qBias, ...qkv.kBias!, ...qkv.vBias!] : undefined;
    const packed = proj('qkv_proj', [...qkv.q, ...qkv.k, ...qkv.v], bias);
    attnOut = groupQueryAttention(b, base, { ...gqa, doRotary: true }, { q: packed, ...kv, cos: pro.caches.cos, sin: pro.caches.sin });
  } else {
    const q = proj('q_proj', qkv.q, qkv.qBias);
    const k = proj('k_proj', qkv.k, qkv.kBias);
    const v = proj('v_proj', qkv.v, qkv.vBias);
    const rot = (name: string, t: string, heads: number) =>
      rotaryEmbedding(b, `${base}/${name}/RotaryEmbedding`, t, pro.positionIds!, pro.caches.cos, pro.caches.sin, {
        numHeads: heads,
        headSize: c.headSize,
        rotaryDim: c.rotary.rotaryDim,
      });
    attnOut = groupQueryAttention(b, base, { ...gqa, doRotary: false }, { q: rot('q_rotary', q, c.numHeads), k: rot('k_rotary', k, c.kvHeads), v, ...kv });
  }
  const ow = b.initializer(linearWeight(src, weightName(`${base}/o_proj/MatMul`, 'weight'), out.weight, dtype));
  const ob = out.bias ? b.initializer(plainWeight(src, weightName(`${base}/o_proj/Add`, 'bias'), out.bias, dtype)) : undefined;
  return linear(b, `${base}/o_proj`, attnOut, ow, { bias: ob });
}
