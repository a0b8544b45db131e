// Rotary embedding caches (plain, partial, LongRoPE) and the graph pieces that pick or offset into them.
import { attr, Graph, Node, tensorType } from '../onnx/ir.js';
import { DataType } from '../onnx/dtype.js';
import type { FloatDtype, GraphBuilder } from './builder.js';
import { computedWeight } from './weights.js';

export interface LongRope {
  /** original_max_position_embeddings: the short cache's length and the switch point. */
  originalLength: number;
  /** Per-frequency divisors (rotaryDim/2 each) for short and long contexts. */
  shortFactor: readonly number[];
  longFactor: readonly number[];
  /** Magnitude scales applied to cos and sin of each cache. */
  shortMscale: number;
  longMscale: number;
}

export interface RotarySpec {
  /** Dimensions of each head that rotate (partial_rotary_factor × head_size); the rest pass through. */
  rotaryDim: number;
  theta: number;
  /** Cache length: max_position_embeddings. */
  maxLength: number;
  longRope?: LongRope;
}

export interface CacheSpec {
  length: number;
  rotaryDim: number;
  theta: number;
  /** inv_freq[i] = 1 / (factors[i] · theta^(2i/rotaryDim)); all ones when absent. */
  factors?: readonly number[];
  mscale?: number;
}

/**
 * cos/sin caches [length, rotaryDim/2] in the rotate-half layout GroupQueryAttention and RotaryEmbedding read.
 * Computed in float64 (then stored as float32) so caches of long contexts keep their precision.
 */
export function rotaryCaches(spec: CacheSpec): { cos: Float32Array; sin: Float32Array } {
  const half = spec.rotaryDim / 2;
  const invFreq = new Float64Array(half);
  for (let i = 0; i < half; i++) {
    invFreq[i] = 1 / ((spec.factors?.[i] ?? 1) * Math.pow(spec.theta, (2 * i) / spec.rotaryDim));
  }
  const m = spec.mscale ?? 1;
  const cos = new Float32Array(spec.length * half);
  const sin = new Float32Array(spec.length * half);
  for (let p = 0; p < spec.length; p++) {
    for (let i = 0; i < half; i++) {
      const a = p * invFreq[i];
      cos[p * half + i] = Math.cos(a) * m;
      sin[p * half + i] = Math.sin(a) * m;
    }
  }
  return { cos, sin };
}

/** LongRoPE's default magnitude scale: sqrt(1 + ln(max/original) / ln(original)), 1 when not extended. */
export function longRopeMscale(maxLength: number, originalLength: number): number {
  const s = maxLength / originalLength;
  return s <= 1 ? 1 : Math.sqrt(1 + Math.log(s) / Math.log(originalLength));
}

export interface CacheNames {
  cos: string;
  sin: string;
}

function addCache(b: GraphBuilder, names: CacheNames, spec: CacheSpec, dtype: FloatDtype): void {
  const { cos, sin } = rotaryCaches(spec);
  const dims = [spec.length, spec.rotaryDim / 2];
  b.initializer(computedWeight(names.cos, dims, cos, dtype));
  b.initializer(computedWeight(names.sin, dims, sin, dtype));
}

function shortSpec(r: RotarySpec, lr: LongRope): CacheSpec {
  return { length: lr.originalLength, rotaryDim: r.rotaryDim, theta: r.theta, factors: lr.shortFactor, mscale: lr.shortMscale };
}
function longSpec(r: RotarySpec, lr: LongRope): CacheSpec {
  return { length: r.maxLength, rotaryDim: r.rotaryDim, theta: r.theta, factors: lr.longFactor, mscale: lr.longMscale };
}

/**
 * The caches GroupQueryAttention reads. Plain RoPE: initializers `cos_cache`/`sin_cache`. LongRoPE:
 * ```
 * total_seq_len (int64) ─ Greater(original) ─ If ─▶ cos_cache, sin_cache
 *                                   then: cos_cache_large, sin_cache_large   (long_factor, length max)
 *                                   else: cos_cache_small, sin_cache_small   (short_factor, length original)
 * ```
 * The four caches are main-graph initializers (so they live in the external data file); the branches only pass them on.
 */
export function selectedRotaryCaches(b: GraphBuilder, r: RotarySpec, dtype: FloatDtype, totalLengthInt64: string): CacheNames {
  const lr = r.longRope;
  if (!lr) {
    const names = { cos: 'cos_cache', sin: 'sin_cache' };
    addCache(b, names, { length: r.maxLength, rotaryDim: r.rotaryDim, theta: r.theta }, dtype);
    return names;
  }
  addCache(b, { cos: 'cos_cache_large', sin: 'sin_cache_large' }, longSpec(r, lr), dtype);
  addCache(b, { cos: 'cos_cache_small', sin: 'sin_cache_small' }, shortSpec(r, lr), dtype);
  const base = '/model/rotemb_caches_subgraph';
  const greater = b.op1('Greater', `${base}/Greater`, [totalLengthInt64, b.int64(lr.originalLength)]);
  const branch = (graphName: string, cos: string, sin: string): Graph => {
    const g = new Graph(graphName);
    const outCos = `${base}/If/${graphName}/cos_cache`;
    const outSin = `${base}/If/${graphName}/sin_cache`;
    g.addNode(new Node({ opType: 'Identity', name: `${base}/If/${graphName}/cos/Identity`, inputs: [cos], outputs: [outCos] }));
    g.addNode(new Node({ opType: 'Identity', name: `${base}/If/${graphName}/sin/Identity`, inputs: [sin], outputs: [outSin] }));
    const shape = ['max_sequence_length', r.rotaryDim / 2];
    g.outputs.push({ name: outCos, type: tensorType(dtype, shape) }, { name: outSin, type: tensorType(dtype, shape) });
    return g;
  };
  b.op('If', `${base}/If`, [greater], {
    attrs: [
      attr.graph('then_branch', branch('large_rotemb_caches_graph', 'cos_cache_large', 'sin_cache_large')),
      attr.graph('else_branch', branch('small_rotemb_caches_graph', 'cos_cache_small', 'sin_cache_small')),
    ],
    outputs: ['cos_cache', 'sin_cache'],
  });
  return { cos: 'cos_cache', sin: 'sin_cache' };
}

/**
 * The caches for targets without `If` (DirectML): one pair holding the short cache then the long one, read through
 * position ids shifted by `original` when the sequence is long (see {@link offsetPositionIds}).
 */
export function concatenatedRotaryCaches(b: GraphBuilder, r: RotarySpec, dtype: FloatDtype): CacheNames {
  const names = { cos: 'cos_cache', sin: 'sin_cache' };
  const lr = r.longRope;
  if (!lr) {
    addCache(b, names, { length: r.maxLength, rotaryDim: r.rotaryDim, theta: r.theta }, dtype);
    return names;
  }
  const short = rotaryCaches(shortSpec(r, lr));
  const long = rotaryCaches(longSpec(r, lr));
  const join = (x: Float32Array, y: Float32Array) => {
    const out = new Float32Array(x.length + y.length);
    out.set(x);
    out.set(y, x.length);
    return out;
  };
  const dims = [lr.originalLength + r.maxLength, r.rotaryDim / 2];
  b.initializer(computedWeight(names.cos, dims, join(short.cos, long.cos), dtype));
  b.initializer(computedWeight(names.sin, dims, join(short.sin, long.sin), dtype));
  return names;
}

/**
 * Position ids into concatenated caches: unchanged while every position is below `original` (short cache rows),
 * shifted by `original` (into the long cache rows) once any position reaches it.
 * ```
 * position_ids ─ ReduceMax ─ GreaterOrEqual(original) ─ Cast(int64) ─ Mul(original) ─┐
 * position_ids ──────────────────────────────────────────────────────────────────── Add ─▶
 * ```
 */
export function offsetPositionIds(b: GraphBuilder, positionIds: string, originalLength: number): string {
  const base = '/model/pos_ids_reformat';
  const max = b.op1('ReduceMax', `${base}/ReduceMax`, [positionIds], { attrs: [attr.int('keepdims', 0)] });
  const ge = b.op1('GreaterOrEqual', `${base}/GreaterOrEqual`, [max, b.int64(originalLength)]);
  const cast = b.op1('Cast', `${base}/Cast`, [ge], { attrs: [attr.int('to', DataType.INT64)] });
  const mul = b.op1('Mul', `${base}/Mul`, [cast, b.int64(originalLength)]);
  return b.op1('Add', `${base}/Add_1`, [mul, positionIds]);
}
