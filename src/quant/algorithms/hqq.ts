// HQQ (half-quadratic quantization, Badri & Shaji 2023; mobiusml/hqq `optimize_weights_proximal`): data-free
// asymmetric quantization that keeps each group's min/max scale and moves its zero point to minimise the l_p error
// (p < 1, robust to outliers) by alternating a proximal shrinkage step on the error and a closed-form zero update:
//
//   s = (2^b − 1) / (max − min)          (HQQ works with the inverse scale)       z = round(−min · s)
//   repeat (β starts at 10, ×κ = 1.01 per step, at most 20 steps):
//     q  = clamp(round(w·s + z), 0, 2^b − 1)        w_r = (q − z) / s
//     e  = shrink_p(w − w_r, β) = sign(x)·relu(|x| − |x|^(p−1) / β)                 (p = 0.7)
//     z  = mean(q − (w − e)·s)
//   stop when the mean |w − w_r| stops improving.
//
// Differences from the reference, both on purpose: each group stops on its own (the reference stops all groups at
// the first global increase) and keeps the zero point of its best step (the reference returns the one after the
// step that made things worse). So a group is never worse, in mean |error|, than its starting point, which is
// onnxruntime's asymmetric RTN grid. Zero points come out as floats (MatMulNBits' unpacked zero-point format):
// rounding them back to integer codes lands on the RTN zero point again (measured on real weights), so HQQ's gain
// needs the float form.
import {
  blockGeometry,
  roundHalfEven,
  roundScale,
  strides,
  type PackedWeight,
  type QuantBits,
  type RowPadding,
  type ScaleType,
  type WeightMatrix,
} from '../formats/block.js';

export interface HqqOptions {
  bits?: QuantBits;
  blockSize: number;
  scaleType?: ScaleType;
  padding?: RowPadding;
  lpNorm?: number;
  beta?: number;
  kappa?: number;
  iters?: number;
}

export function hqqQuantize(w: WeightMatrix, o: HqqOptions): PackedWeight {
  const bits = o.bits ?? 4;
  const { K, N, data } = w;
  const bs = o.blockSize;
  const scaleType = o.scaleType ?? 'float32';
  const padding = o.padding ?? 'block';
  const p = o.lpNorm ?? 0.7;
  const beta0 = o.beta ?? 10;
  const kappa = o.kappa ?? 1.01;
  const iters = o.iters ?? 20;
  const maxq = (1 << bits) - 1;
  const { kBlocks, rowBytes } = blockGeometry(K, bits, bs, padding);
  const { rowStride, colStride } = strides(w);
  const b = new Uint8Array(N * rowBytes);
  const scales = new Float32Array(N * kBlocks);
  const zpFloat = new Float32Array(N * kBlocks);
  const g = new Float64Array(bs);

  for (let n = 0; n < N; n++) {
    for (let kb = 0; kb < kBlocks; kb++) {
      const k0 = kb * bs;
      const len = Math.min(bs, K - k0);
      let mn = Infinity;
      let mx = -Infinity;
      for (let l = 0, i = n * rowStride + k0 * colStride; l < len; l++, i += colStride) {
        const v = data[i];
        g[l] = v;
        if (v < mn) mn = v;
        if (v > mx) mx = v;
      }
      // The stored scale is 1/s rounded to the scale type; optimise against exactly what will be stored.
      const range = mx - mn;
      const stored = roundScale(range > 0 ? range / maxq : 1, scaleType);
      const s = 1 / stored;
      let z = roundHalfEven(-mn * s);
      let bestZ = z;
      let best = Infinity;
      let beta = beta0;
      for (let it = 0; it < iters; it++) {
        let err = 0;
        let zsum = 0;
        for (let l = 0; l < len; l++) {
          const x = g[l];
          let q = roundHalfEven(x * s + z);
          q = q < 0 ? 0 : q > maxq ? maxq : q;
          const d = x - (q - z) / s;
          err += Math.abs(d);
          const ad = Math.abs(d);
          const shrunk = ad - Math.pow(ad + 1e-8, p - 1) / beta;
          const e = shrunk > 0 ? (d < 0 ? -shrunk : shrunk) : 0;
          zsum += q - (x - e) * s;
        }
        err /= len;
        if (err < best) {
          best = err;
          bestZ = z;
        } else break;
        z = zsum / len;
        beta *= kappa;
      }
      // Float zero points are stored in the scale type (the model's activation type), like the scales.
      const zFinal = roundScale(bestZ, scaleType);
      scales[n * kBlocks + kb] = stored;
      zpFloat[n * kBlocks + kb] = zFinal;
      const row = n * rowBytes;
      const perByte = 8 / bits;
      for (let l = 0; l < len; l++) {
        let q = roundHalfEven(g[l] * s + zFinal);
        q = q < 0 ? 0 : q > maxq ? maxq : q;
        const k = k0 + l;
        b[row + Math.floor(k / perByte)] |= q << ((k % perByte) * bits);
      }
    }
  }
  return {
    bits,
    blockSize: bs,
    K,
    N,
    kBlocks,
    padding,
    rowBytes,
    b,
    scales,
    scaleType,
    zeroPoints: { kind: 'float', data: zpFloat },
  };
}
