// AWQ (activation-aware weight quantization, Lin et al. 2023; mit-han-lab/llm-awq `auto_scale.py`, AutoAWQ's
// `_search_best_scale`): scale each input channel k of the weights that read one activation by s_k before rounding,
// and the activation by 1/s_k, so channels that carry large activations get a finer grid. Per group of weights
// sharing an input:
//
//   a_k = mean |x_k| over calibration rows
//   w_k = mean over output rows of |W[n, k]| / max |W[n, block of k]|          (AutoAWQ's "duo scaling")
//   candidates, for α in 0, 1/20, ..., 19/20:
//     s_k = max(a_k^α, 1e-4)                        (llm-awq)
//     s_k = max(a_k^α / (w_k^(1−α) + 1e-4), 1e-4)   (AutoAWQ's default)
//   each normalised s ← s / sqrt(max(s)·min(s));
//   loss(s) = Σ_weights ||X · (Q(W·diag(s))·diag(s)⁻¹ − W)ᵀ||²        (Q: the weight's own RTN quantizer)
//   keep the s with the smallest loss (the first candidate is s = 1: plain RTN, so AWQ never scores worse)
//
// The loss is the layer-output error (llm-awq scores a whole block's output for q/k/v and gate/up; the sum of the
// linear outputs needs no model code, as onnxruntime-style graph rewriting wants). The caller multiplies the weights'
// input rows by s and folds 1/s into whatever produces the activation.
import { QuantizationError } from '../../util/errors.js';
import type { WeightMatrix } from '../formats/block.js';
import { prepareActivations, quadraticError, roundTrip, rowsToScore, scoredRows, takeRows, type ActivationSample, type RowQuantizer } from './output-error.js';

/** One weight of a group and the RTN quantizer it will get. */
export interface AwqTarget {
  w: WeightMatrix;
  quant: RowQuantizer;
  /** For messages. */
  name?: string;
}

export interface AwqSearchOptions {
  /** Grid points for α in [0, 1), per family. Default 20. */
  grid?: number;
  /** Output rows scored per weight (evenly spaced; the loss is scaled to all rows). Default: 64..256 by cost. */
  maxRows?: number;
}

/** `x`: s = a^α (llm-awq); `x/w`: s = a^α / w^(1−α) (AutoAWQ's duo scaling). */
export type AwqFamily = 'x' | 'x/w';

export interface AwqSearchResult {
  /** [K] the chosen s (multiply weight input rows by it, divide the activation by it). */
  scales: Float32Array;
  alpha: number;
  family: AwqFamily;
  /** Loss of every candidate: the `x` family for α = 0, 1/grid, ..., then the `x/w` family; losses[0] is plain RTN. */
  losses: Float64Array;
}

/** Normalises s by sqrt(max·min) in place and returns it as float32. */
function normalised(s: Float64Array): Float32Array {
  let mx = 0;
  let mn = Infinity;
  for (const v of s) {
    if (v > mx) mx = v;
    if (v < mn) mn = v;
  }
  const norm = 1 / Math.sqrt(mx * mn);
  return Float32Array.from(s, (v) => v * norm);
}

/** llm-awq's scale for exponent α from the per-channel mean |x|: a^α floored at 1e-4, normalised by sqrt(max·min). */
export function awqScales(absMean: ArrayLike<number>, alpha: number): Float32Array {
  return normalised(Float64Array.from({ length: absMean.length }, (_, k) => Math.max(Math.pow(absMean[k], alpha), 1e-4)));
}

/** AutoAWQ's duo scale: a^α / (w^(1−α) + 1e-4) floored at 1e-4, normalised by sqrt(max·min). */
export function awqDuoScales(absMean: ArrayLike<number>, wMean: ArrayLike<number>, alpha: number): Float32Array {
  return normalised(
    Float64Array.from({ length: absMean.length }, (_, k) => Math.max(Math.pow(absMean[k], alpha) / (Math.pow(wMean[k], 1 - alpha) + 1e-4), 1e-4)),
  );
}

/** Per input channel: the mean over every output row of the group of |W[n, k]| relative to its block's max |W|. */
export function weightMeans(targets: readonly AwqTarget[]): Float64Array {
  const K = targets[0].w.K;
  const m = new Float64Array(K);
  let rows = 0;
  for (const t of targets) {
    const all = scoredRows(t.w.N, t.w.N);
    const w = takeRows(t.w, all);
    const bs = t.quant.blockSize;
    for (let r = 0; r < all.length; r++) {
      const o = r * K;
      for (let b = 0; b < K; b += bs) {
        const end = Math.min(K, b + bs);
        let mx = 0;
        for (let k = b; k < end; k++) mx = Math.max(mx, Math.abs(w[o + k]));
        for (let k = b; k < end; k++) m[k] += Math.abs(w[o + k]) / (mx + 1e-6);
      }
    }
    rows += all.length;
  }
  for (let k = 0; k < K; k++) m[k] /= rows;
  return m;
}

export function awqSearch(targets: readonly AwqTarget[], activations: ActivationSample, absMean: ArrayLike<number>, o: AwqSearchOptions = {}): AwqSearchResult {
  const K = absMean.length;
  for (const t of targets) {
    if (t.w.K !== K) {
      throw new QuantizationError('QUANT_AWQ_SHAPE', `weight has K = ${t.w.K} inputs but its activation has ${K} channels`, { where: `tensor ${t.name ?? '?'}` });
    }
    if (t.quant.scheme === 'ternary') {
      throw new QuantizationError('QUANT_ALGO_SCHEME', 'AWQ has no ternary variant', { where: `tensor ${t.name ?? '?'}`, fix: 'use --algo rtn with --scheme ternary' });
    }
  }
  const grid = o.grid ?? 20;
  const acts = prepareActivations(activations, K);
  const prepared = targets.map((t) => {
    const rows = scoredRows(t.w.N, rowsToScore(acts, K, o.maxRows));
    return { t, w0: takeRows(t.w, rows), weight: t.w.N / rows.length };
  });
  const wMean = weightMeans(targets);
  const lossOf = (s: Float32Array) => {
    let loss = 0;
    for (const p of prepared) {
      const { w0 } = p;
      const scaled = new Float32Array(w0.length);
      for (let r = 0; r < w0.length; r += K) for (let k = 0; k < K; k++) scaled[r + k] = w0[r + k] * s[k];
      const d = roundTrip(scaled, K, p.t.quant);
      const delta = new Float64Array(w0.length);
      for (let r = 0; r < w0.length; r += K) for (let k = 0; k < K; k++) delta[r + k] = d[r + k] / s[k] - w0[r + k];
      loss += p.weight * quadraticError(delta, K, acts);
    }
    return loss;
  };
  const losses = new Float64Array(2 * grid);
  let best = 0;
  let bestScales: Float32Array = new Float32Array(K);
  for (let i = 0; i < 2 * grid; i++) {
    const alpha = (i % grid) / grid;
    const s = i < grid ? awqScales(absMean, alpha) : awqDuoScales(absMean, wMean, alpha);
    losses[i] = lossOf(s);
    if (i === 0 || losses[i] < losses[best]) {
      best = i;
      bestScales = s;
    }
  }
  return { scales: bestScales, alpha: (best % grid) / grid, family: best < grid ? 'x' : 'x/w', losses };
}
