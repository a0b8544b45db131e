// GPTQ (Frantar et al. 2022): quantize a weight one input column at a time and push each column's rounding error onto
// the columns not yet quantized, weighted by the inverse Hessian of the layer's inputs, H = Σ x xᵀ / n over
// calibration activations. That minimises ||X·Wᵀ − X·Qᵀ||² rather than ||W − Q||².
//
//   H += λ·mean(diag H)·I                     (damping, λ = 0.01)
//   U = chol(H⁻¹)ᵀ  (upper)                   (GPTQ's Cholesky reformulation)
//   for each lazy batch of B columns, for each column j in it:
//     q_j = round(w_j) on the block's grid;   e_j = (w_j − q_j) / U[j, j]
//     w_k −= e_j · U[j, k]  for the later columns of the batch
//   then the columns after the batch get the batch's errors at once: W[:, after] −= E · U[batch, after]
//
// The grid is onnxruntime's RTN grid per MatMulNBits block of K (symmetric or asymmetric), so the result packs into
// the same format. Without act-order a block's scale and zero point come from its (already error-corrected) values
// when its first column comes up, as GPTQ does; with act-order (columns in decreasing diag(H) order, so blocks are
// visited out of order) they are fixed up front from the original weights ("static groups"), which keeps the
// contiguous MatMulNBits blocks and needs no g_idx.
import { QuantizationError } from '../../util/errors.js';
import { blockGeometry, packCodes, toRows, type PackedWeight, type QuantBits, type RowPadding, type ScaleType, type WeightMatrix } from '../formats/block.js';
import { uniformCode, uniformParams } from '../formats/uniform.js';

export interface GptqOptions {
  bits: QuantBits;
  blockSize: number;
  symmetric: boolean;
  scaleType?: ScaleType;
  padding?: RowPadding;
  /** Damping as a fraction of the mean of diag(H). Default 0.01. */
  damp?: number;
  /** Quantize columns in decreasing diag(H) order. Default true. */
  actOrder?: boolean;
  /** Columns per lazy batch. Default 128. */
  lazyBatch?: number;
  /** Tensor name for error messages. */
  name?: string;
}

/** In-place lower Cholesky factor of a K×K symmetric matrix; false when it is not positive definite. */
function cholesky(a: Float64Array, K: number): boolean {
  for (let j = 0; j < K; j++) {
    let d = a[j * K + j];
    for (let p = 0; p < j; p++) d -= a[j * K + p] * a[j * K + p];
    if (!(d > 0)) return false;
    const ljj = Math.sqrt(d);
    a[j * K + j] = ljj;
    for (let i = j + 1; i < K; i++) {
      let s = a[i * K + j];
      for (let p = 0; p < j; p++) s -= a[i * K + p] * a[j * K + p];
      a[i * K + j] = s / ljj;
    }
    for (let i = 0; i < j; i++) a[i * K + j] = 0;
  }
  return true;
}

/** The upper factor U of H⁻¹ = Uᵀ·U, given H; undefined when H is not positive definite. */
function inverseHessianFactor(h: Float64Array, K: number): Float64Array | undefined {
  const l = h.slice();
  if (!cholesky(l, K)) return undefined;
  // Linv = L⁻¹ (lower), by forward substitution on the identity.
  const linv = new Float64Array(K * K);
  for (let c = 0; c < K; c++) {
    linv[c * K + c] = 1 / l[c * K + c];
    for (let i = c + 1; i < K; i++) {
      let s = 0;
      for (let p = c; p < i; p++) s -= l[i * K + p] * linv[p * K + c];
      linv[i * K + c] = s / l[i * K + i];
    }
  }
  // H⁻¹ = Linvᵀ · Linv.
  const hinv = new Float64Array(K * K);
  for (let i = 0; i < K; i++) {
    for (let j = i; j < K; j++) {
      let s = 0;
      for (let p = j; p < K; p++) s += linv[p * K + i] * linv[p * K + j];
      hinv[i * K + j] = s;
      hinv[j * K + i] = s;
    }
  }
  // U = chol(H⁻¹)ᵀ: the transpose of the lower factor.
  if (!cholesky(hinv, K)) return undefined;
  const u = new Float64Array(K * K);
  for (let i = 0; i < K; i++) for (let j = 0; j <= i; j++) u[j * K + i] = hinv[i * K + j];
  return u;
}

export function gptqQuantize(w: WeightMatrix, hessian: Float64Array, o: GptqOptions): PackedWeight {
  const { K, N } = w;
  if (hessian.length !== K * K) {
    throw new QuantizationError('QUANT_GPTQ_HESSIAN', `Hessian has ${hessian.length} values, expected ${K}×${K}`, { where: `tensor ${o.name ?? '?'}` });
  }
  const bits = o.bits;
  const bs = o.blockSize;
  const maxq = (1 << bits) - 1;
  const f16 = o.scaleType === 'float16';
  const { kBlocks } = blockGeometry(K, bits, bs, o.padding ?? 'block');
  const B = o.lazyBatch ?? 128;

  const w0 = toRows(w); // [N, K], natural column order
  const h = Float64Array.from(hessian);
  // Inputs that never fire: their weights cannot matter; zero them and make H invertible there.
  const dead: boolean[] = [];
  for (let i = 0; i < K; i++) {
    dead.push(h[i * K + i] === 0);
    if (dead[i]) h[i * K + i] = 1;
  }
  const perm = Array.from({ length: K }, (_, i) => i);
  if (o.actOrder ?? true) perm.sort((a, b) => h[b * K + b] - h[a * K + a] || a - b);

  // W and H in processing order.
  const W = new Float64Array(N * K);
  for (let n = 0; n < N; n++) for (let j = 0; j < K; j++) W[n * K + j] = dead[perm[j]] ? 0 : w0[n * K + perm[j]];
  const hp = new Float64Array(K * K);
  for (let a = 0; a < K; a++) for (let b = 0; b < K; b++) hp[a * K + b] = h[perm[a] * K + perm[b]];
  let meanDiag = 0;
  for (let i = 0; i < K; i++) meanDiag += hp[i * K + i];
  meanDiag /= K;

  let damp = o.damp ?? 0.01;
  let U: Float64Array | undefined;
  for (let tries = 0; tries < 6 && !U; tries++, damp *= 10) {
    const hd = hp.slice();
    for (let i = 0; i < K; i++) hd[i * K + i] += damp * meanDiag;
    U = inverseHessianFactor(hd, K);
  }
  if (!U) {
    throw new QuantizationError('QUANT_GPTQ_HESSIAN', 'the input Hessian is not positive definite even with heavy damping', {
      where: `tensor ${o.name ?? '?'}`,
      fix: 'use more (or more varied) calibration data, or --algo rtn for this node',
    });
  }

  const scales = new Float32Array(N * kBlocks);
  const zps = new Uint8Array(N * kBlocks);
  const recips = new Float64Array(N * kBlocks);
  const codes = new Uint8Array(N * K);
  const setParams = (n: number, g: number, src: ArrayLike<number>, pos: (k: number) => number) => {
    let mn = Infinity;
    let mx = -Infinity;
    for (let k = g * bs; k < Math.min(K, (g + 1) * bs); k++) {
      const v = Math.fround(src[n * K + pos(k)]);
      if (v < mn) mn = v;
      if (v > mx) mx = v;
    }
    const [scale, zp, recip] = uniformParams(mn, mx, bits, o.symmetric, f16);
    scales[n * kBlocks + g] = scale;
    zps[n * kBlocks + g] = zp;
    recips[n * kBlocks + g] = recip;
  };
  const staticGroups = perm.some((p, i) => p !== i);
  if (staticGroups) for (let n = 0; n < N; n++) for (let g = 0; g < kBlocks; g++) setParams(n, g, w0, (k) => k);

  const E = new Float64Array(N * B);
  for (let i1 = 0; i1 < K; i1 += B) {
    const i2 = Math.min(K, i1 + B);
    for (let j = i1; j < i2; j++) {
      const col = perm[j];
      const g = Math.floor(col / bs);
      // Natural order: the block's columns are positions g·bs.. in W as well.
      if (!staticGroups && col % bs === 0) for (let n = 0; n < N; n++) setParams(n, g, W, (k) => k);
      const d = U[j * K + j];
      for (let n = 0; n < N; n++) {
        const wv = W[n * K + j];
        const gi = n * kBlocks + g;
        const q = uniformCode(wv, recips[gi], zps[gi], maxq);
        codes[n * K + col] = q;
        const err = (wv - (q - zps[gi]) * scales[gi]) / d;
        E[n * B + (j - i1)] = err;
        for (let k = j + 1; k < i2; k++) W[n * K + k] -= err * U[j * K + k];
      }
    }
    if (i2 < K) {
      for (let n = 0; n < N; n++) {
        for (let j = i1; j < i2; j++) {
          const err = E[n * B + (j - i1)];
          if (err === 0) continue;
          const urow = j * K;
          for (let k = i2; k < K; k++) W[n * K + k] -= err * U[urow + k];
        }
      }
    }
  }
  return packCodes(codes, scales, o.symmetric ? undefined : zps, {
    K,
    N,
    bits,
    blockSize: bs,
    padding: o.padding,
    scaleType: o.scaleType ?? 'float32',
  });
}
