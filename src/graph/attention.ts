// Attention builders: the attention-mask summary GroupQueryAttention reads, position ids derived from it,
// GroupQueryAttention itself, RotaryEmbedding.
import { attr } from '../onnx/ir.js';
import { DataType } from '../onnx/dtype.js';
import { MS_DOMAIN, type GraphBuilder } from './builder.js';

export interface MaskInfo {
  /** int32 [batch]: tokens seen so far minus one, per sequence. */
  seqlensK: string;
  /** int32 scalar: total sequence length (past + current). */
  totalSeqLen: string;
  /** The same total length as an int64 scalar (for the LongRoPE cache switch). */
  totalLengthInt64: string;
  /** int64 [batch]: tokens seen so far (past + current), per sequence: seqlens_k + 1. */
  tokensInt64: string;
}

/**
 * ```
 *            attention_mask
 *           /              \
 *  ReduceSum(axis 1)      Shape
 *        |                  |
 *      Sub(1)          Gather(idx 1) ──▶ total length (int64)
 *        |                  |
 *   Cast(int32)        Cast(int32)
 *        |                  |
 *    seqlens_k        total_seq_len
 * ```
 */
export function attentionMaskInfo(b: GraphBuilder, attentionMask: string): MaskInfo {
  const base = '/model/attn_mask_reformat/attn_mask_subgraph';
  const sum = b.op1('ReduceSum', `${base}/ReduceSum`, [attentionMask, b.int64([1])], { attrs: [attr.int('keepdims', 0)] });
  const sub = b.op1('Sub', `${base}/Sub`, [sum, b.int64([1])]);
  const seqlensK = b.op1('Cast', `${base}/Sub/Cast`, [sub], { attrs: [attr.int('to', DataType.INT32)] });
  const shape = b.op1('Shape', `${base}/Shape`, [attentionMask]);
  const total = b.op1('Gather', `${base}/Gather`, [shape, b.int64(1)], { attrs: [attr.int('axis', 0)] });
  const totalSeqLen = b.op1('Cast', `${base}/Gather/Cast`, [total], { attrs: [attr.int('to', DataType.INT32)] });
  return { seqlensK, totalSeqLen, totalLengthInt64: total, tokensInt64: sum };
}

/**
 * Position ids [batch, seq] for graphs without a `position_ids` input that rotate outside GroupQueryAttention:
 * each row continues from the tokens it has seen, as GroupQueryAttention's own rotary numbers them (a first prompt,
 * right-padded or not, starts at 0; a later step at seqlens_k + 1 − seq).
 * ```
 * input_ids ─ Shape ─ Gather(1) ─▶ seq
 * tokens seen [batch] ─ Sub(seq) ─ Max(0) ─ Unsqueeze(1) ─┐
 * Range(0, seq, 1) ───────────────────────────────────── Add ─▶ position ids [batch, seq]
 * ```
 */
export function positionIdsFromMask(b: GraphBuilder, inputIds: string, mask: MaskInfo): string {
  const base = '/model/pos_ids_from_mask';
  const shape = b.op1('Shape', `${base}/Shape`, [inputIds]);
  const seq = b.op1('Gather', `${base}/Gather`, [shape, b.int64(1)], { attrs: [attr.int('axis', 0)] });
  const past = b.op1('Sub', `${base}/Sub`, [mask.tokensInt64, seq]);
  const start = b.op1('Max', `${base}/Max`, [past, b.int64(0)]);
  const column = b.op1('Unsqueeze', `${base}/Unsqueeze`, [start, b.int64([1])]);
  const steps = b.op1('Range', `${base}/Range`, [b.int64(0), seq, b.int64(1)]);
  return b.op1('Add', `${base}/Add`, [column, steps]);
}

export interface GqaParams {
  numHeads: number;
  kvHeads: number;
  headSize: number;
  /** Keys a query sees before itself (config.sliding_window), or -1 for full causal attention. */
  localWindow: number;
  /** true: rotary runs inside the op from the cos/sin caches; false: q and k arrive already rotated. */
  doRotary: boolean;
}

export interface GqaInputs {
  /** Packed [q; k; v] projections, or q alone when `k` and `v` are given. */
  q: string;
  k?: string;
  v?: string;
  pastKey: string;
  pastValue: string;
  presentKey: string;
  presentValue: string;
  mask: MaskInfo;
  cos?: string;
  sin?: string;
}

/**
 * ```
 * qkv (or q, k, v) ─┐
 * past k, past v ───┤
 * seqlens_k ────────┼─ GroupQueryAttention ─▶ output_0, present k, present v
 * total_seq_len ────┤
 * cos, sin ─────────┘
 * ```
 * One com.microsoft node at `<base>/GroupQueryAttention`; scale = 1/sqrt(head_size), rotate-half (non-interleaved).
 */
export function groupQueryAttention(b: GraphBuilder, base: string, p: GqaParams, x: GqaInputs): string {
  const rot = p.doRotary;
  const [out] = b.op(
    'GroupQueryAttention',
    `${base}/GroupQueryAttention`,
    [x.q, x.k ?? '', x.v ?? '', x.pastKey, x.pastValue, x.mask.seqlensK, x.mask.totalSeqLen, rot ? x.cos! : '', rot ? x.sin! : ''],
    {
      domain: MS_DOMAIN,
      attrs: [
        attr.int('num_heads', p.numHeads),
        attr.int('kv_num_heads', p.kvHeads),
        attr.float('scale', 1 / Math.sqrt(p.headSize)),
        attr.int('local_window_size', p.localWindow),
        attr.int('do_rotary', rot ? 1 : 0),
        attr.int('rotary_interleaved', 0),
      ],
      outputs: [`${base}/GroupQueryAttention/output_0`, x.presentKey, x.presentValue],
    },
  );
  return out;
}

/**
 * x [batch, seq, heads·head_size] ─ RotaryEmbedding(position_ids, cos, sin) ─▶ same shape, rotate-half layout.
 * For partial rotary the op needs num_heads and rotary_embedding_dim to find each head's rotating part.
 */
export function rotaryEmbedding(
  b: GraphBuilder,
  name: string,
  x: string,
  positionIds: string,
  cos: string,
  sin: string,
  p: { numHeads: number; headSize: number; rotaryDim: number },
): string {
  const partial = p.rotaryDim !== p.headSize;
  return b.op1('RotaryEmbedding', name, [x, positionIds, cos, sin], {
    domain: MS_DOMAIN,
    attrs: [
      attr.int('interleaved', 0),
      attr.int('num_heads', partial ? p.numHeads : 0),
      attr.int('rotary_embedding_dim', partial ? p.rotaryDim : 0),
    ],
  });
}
