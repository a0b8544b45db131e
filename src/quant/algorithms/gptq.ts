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

/** Rows handled together by the factorizations below: each earlier row is read once per tile, not once per row. */
const TILE = 32;

/** Σ a[x+p]·a[y+p] for p < n, in four independent sums (one running sum would wait on every add). */
function dot(a: Float64Array, x: number, y: number, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let p = 0;
  for (; p + 3 < n; p += 4) {
    s0 += a[x + p] * a[y + p];
    s1 += a[x + p + 1] * a[y + p + 1];
    s2 += a[x + p + 2] * a[y + p + 2];
    s3 += a[x + p + 3] * a[y + p + 3];
  }
  for (; p < n; p++) s0 += a[x + p] * a[y + p];
  return s0 + s1 + (s2 + s3);
}

/**
 * In-place lower Cholesky factor of a K×K symmetric matrix (upper part zeroed); false when it is not positive
 * definite. Row-oriented (Cholesky–Crout), TILE rows at a time: every inner loop is a dot product of two contiguous
 * row prefixes, and each finished row streams through the cache once per tile (a K = 8192 matrix is 512 MB).
 */
function cholesky(a: Float64Array, K: number): boolean {
  for (let i0 = 0; i0 < K; i0 += TILE) {
    const i1 = Math.min(K, i0 + TILE);
    for (let j = 0; j < i1; j++) {
      const rj = j * K;
      // Row j is final here: rows before the tile were finished earlier; a row of the tile at its own step (i = j first).
      for (let i = Math.max(i0, j); i < i1; i++) {
        const ri = i * K;
        const s = a[ri + j] - dot(a, ri, rj, j);
        if (i > j) a[ri + j] = s / a[rj + j];
        else if (s > 0) a[ri + i] = Math.sqrt(s);
        else return false;
      }
    }
  }
  for (let i = 0; i < K; i++) a.fill(0, i * K + i + 1, (i + 1) * K);
  return true;
}

/**
 * L⁻¹ of a lower-triangular L: row i = (e_i − Σ_{p<i} L[i,p]·row p of L⁻¹) / L[i,i], accumulated TILE rows at a time
 * so each finished row p is read once per tile (contiguous updates).
 */
function lowerInverse(l: Float64Array, K: number): Float64Array {
  const x = new Float64Array(K * K);
  for (let i0 = 0; i0 < K; i0 += TILE) {
    const i1 = Math.min(K, i0 + TILE);
    for (let p = 0; p < i1; p++) {
      const rp = p * K;
      if (p >= i0) {
        // Row p of the tile has had every update from rows before it: scale it, set its diagonal.
        const d = 1 / l[rp + p];
        for (let c = 0; c < p; c++) x[rp + c] *= d;
        x[rp + p] = d;
      }
      for (let i = Math.max(i0, p + 1); i < i1; i++) {
        const ri = i * K;
        const lip = l[ri + p];
        if (lip === 0) continue;
        for (let c = 0; c <= p; c++) x[ri + c] -= lip * x[rp + c];
      }
    }
  }
  return x;
}

/**
 * The upper factor U of H⁻¹ = Uᵀ·U, given H; undefined when H is not positive definite. With J the reversal
 * permutation and L̃ = chol(J·H·J): H⁻¹ = J·L̃⁻ᵀ·L̃⁻¹·J = Uᵀ·U for U = J·L̃⁻¹·J, which is upper triangular with a
 * positive diagonal — one Cholesky and one triangular inverse (K³/3 multiply-adds over contiguous rows) instead of
 * forming H⁻¹ and factoring it again.
 */
export function inverseHessianFactor(h: Float64Array, K: number): Float64Array | undefined {
  const last = K * K - 1;
  const a = new Float64Array(K * K);
  for (let i = 0; i <= last; i++) a[i] = h[last - i]; // J·H·J: element (i, j) ← (K−1−i, K−1−j)
  if (!cholesky(a, K)) return undefined;
  const x = lowerInverse(a, K);
  const u = new Float64Array(K * K);
  for (let i = 0; i <= last; i++) u[i] = x[last - i];
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
      // TILE rows of W at a time, so each row of U is read once per tile rather than once per row of W (same order
      // of subtractions per element as row by row).
      for (let n0 = 0; n0 < N; n0 += TILE) {
        const n1 = Math.min(N, n0 + TILE);
        for (let j = i1; j < i2; j++) {
          const urow = j * K;
          for (let n = n0; n < n1; n++) {
            const err = E[n * B + (j - i1)];
            if (err === 0) continue;
            const wrow = n * K;
            for (let k = i2; k < K; k++) W[wrow + k] -= err * U[urow + k];
          }
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
