// The output error of a quantized weight on calibration activations, ||X·(Q − W)ᵀ||², shared by AWQ's scale search
// and the mixed-precision sensitivity measure. Activations come as a Gram matrix G = Σ x xᵀ / T (K×K: each output
// row costs K² to score) or as T sampled rows (each output row costs T·K); rows become G when K ≤ T and are sketched
// down to 128 random combinations when K > T. Large weights are scored on an evenly spaced subset of their output
// rows, scaled up to all N.
import { toRows, type WeightMatrix } from '../formats/block.js';
import type { QuantScheme } from '../../vocabulary.js';
import type { CodecOptions } from '../formats/codec.js';
import { codecFor } from '../formats/index.js';
import type { TernaryOptions } from '../formats/ternary.js';
import { Rng } from '../../util/random.js';

/** Activations of a MatMul input: G = Σ x xᵀ / T, or T rows of K values. */
export type ActivationSample = { kind: 'gram'; g: Float64Array } | { kind: 'rows'; x: Float32Array; rows: number };

/** A weight's RTN quantizer: the codec of `scheme` with these options (what the MatMulNBits pass applies). */
export interface RowQuantizer extends CodecOptions, Pick<TernaryOptions, 'scope'> {
  scheme: QuantScheme;
}

/**
 * The cheaper form for K inputs: sampled rows become their Gram matrix when K ≤ T (each output row then costs K²);
 * otherwise more than `sketch` rows are compressed to `sketch` random ±1 combinations s_j = Σ_t ε_jt·x_t / √T
 * (E[(s_j·δ)²] = mean_t (x_t·δ)², so the mean over sketch rows estimates the same error; every candidate a search
 * compares sees the same sketch).
 */
export function prepareActivations(a: ActivationSample, K: number, sketch = 128): ActivationSample {
  if (a.kind === 'gram') return a;
  if (K > a.rows) return a.rows > sketch ? sketchRows(a.x, a.rows, K, sketch) : a;
  const { x, rows: T } = a;
  const g = new Float64Array(K * K);
  for (let t = 0; t < T; t++) {
    const o = t * K;
    for (let i = 0; i < K; i++) {
      const xi = x[o + i];
      if (xi === 0) continue;
      const gi = i * K;
      for (let j = i; j < K; j++) g[gi + j] += xi * x[o + j];
    }
  }
  const inv = T > 0 ? 1 / T : 0;
  for (let i = 0; i < K; i++) {
    for (let j = i; j < K; j++) {
      const v = g[i * K + j] * inv;
      g[i * K + j] = v;
      g[j * K + i] = v;
    }
  }
  return { kind: 'gram', g };
}

function sketchRows(x: Float32Array, T: number, K: number, r: number): ActivationSample {
  const rng = new Rng(0x5ce7c4, T * 31 + K);
  const out = new Float32Array(r * K);
  const acc = new Float64Array(K);
  const norm = 1 / Math.sqrt(T);
  for (let j = 0; j < r; j++) {
    acc.fill(0);
    for (let t = 0; t < T; t++) {
      const sign = rng.nextU32() & 1 ? norm : -norm;
      const o = t * K;
      for (let k = 0; k < K; k++) acc[k] += sign * x[o + k];
    }
    for (let k = 0; k < K; k++) out[j * K + k] = acc[k];
  }
  return { kind: 'rows', x: out, rows: r };
}

/**
 * How many output rows to score per weight: what about 2^22 multiply-adds per evaluation buys (K²/2 per row with a
 * Gram matrix, r·K with r activation rows), between 64 and 256; `max` overrides it.
 */
export function rowsToScore(a: ActivationSample | undefined, K: number, max?: number): number {
  if (max !== undefined) return max;
  const perRow = !a ? K : a.kind === 'gram' ? (K * K) / 2 : a.rows * K;
  return Math.min(256, Math.max(64, Math.floor(2 ** 22 / perRow)));
}

/** Evenly spaced output rows to score: all of them when N ≤ max. */
export function scoredRows(N: number, max: number): Int32Array {
  const m = Math.min(N, Math.max(1, Math.floor(max)));
  return Int32Array.from({ length: m }, (_, i) => Math.floor((i * N) / m));
}

/** The chosen rows of a weight as [rows, K] float64 (K contiguous). */
export function takeRows(w: WeightMatrix, rows: Int32Array): Float64Array {
  const { K } = w;
  const all = toRows(w);
  const out = new Float64Array(rows.length * K);
  for (let r = 0; r < rows.length; r++) {
    const src = rows[r] * K;
    for (let k = 0; k < K; k++) out[r * K + k] = all[src + k];
  }
  return out;
}

/**
 * Σ over the given rows δ of E_x[(x·δ)²] (the mean over calibration rows of the squared output difference); with no
 * activations, Σ δ² (the weight error, as if inputs were white).
 */
export function quadraticError(delta: Float64Array, K: number, a: ActivationSample | undefined): number {
  const rows = delta.length / K;
  let e = 0;
  if (!a) {
    for (let i = 0; i < delta.length; i++) e += delta[i] * delta[i];
    return e;
  }
  if (a.kind === 'gram') {
    // δᵀGδ = Σ_i δ_i (G_ii δ_i + 2 Σ_{j>i} G_ij δ_j): G is symmetric, half the products.
    const g = a.g;
    for (let r = 0; r < rows; r++) {
      const o = r * K;
      for (let i = 0; i < K; i++) {
        const di = delta[o + i];
        if (di === 0) continue;
        const gi = i * K;
        let s = 0;
        for (let j = i + 1; j < K; j++) s += g[gi + j] * delta[o + j];
        e += di * (g[gi + i] * di + 2 * s);
      }
    }
    return e;
  }
  const { x, rows: T } = a;
  for (let r = 0; r < rows; r++) {
    const o = r * K;
    for (let t = 0; t < T; t++) {
      const xo = t * K;
      let d = 0;
      for (let k = 0; k < K; k++) d += x[xo + k] * delta[o + k];
      e += d * d;
    }
  }
  return T > 0 ? e / T : 0;
}

/** Quantizes [rows, K] float64 values with the RTN codec and returns the dequantized values (float32, [rows, K]). */
export function roundTrip(values: Float64Array | Float32Array, K: number, q: RowQuantizer): Float32Array {
  const data = values instanceof Float32Array ? values : Float32Array.from(values);
  const codec = codecFor(q.scheme);
  const p = codec.quantize({ data, K, N: data.length / K, layout: 'nk' }, q);
  return codec.dequantize(p);
}
