// Round-to-nearest blockwise affine quantization to 2, 4 or 8 bits, bit for bit as onnxruntime's MLAS
// BlockwiseQuantizer (quantize_matmul_4bits / quantize_matmul_8bits, what its "default" MatMulNBits quantizer calls).
//
// Per block of block_size values along K, in fp32 arithmetic:
//   symmetric:  m = the signed value of largest magnitude (the negative one on a tie); scale = −m / 2^(bits−1);
//               zero point 2^(bits−1) (not stored)
//   asymmetric: lo = min(min, 0), hi = max(max, 0); scale = (hi − lo) / (2^bits − 1);
//               zp = roundf(−lo / scale) clamped to [0, 2^bits − 1] (0 when scale is 0)
//   code = clamp(roundf(w · (1/scale) + zp), 0, 2^bits − 1), with 1/scale taken as 0 when scale is 0
// The scale is rounded to the scale type (fp16 for fp16 models) before 1/scale is taken, as ORT does.
//
// The loops are plain top-level functions over typed arrays (what V8 optimizes best): one walks [N, K] data a row at
// a time, the other sweeps [K, N] data a row of K at a time so reads stay sequential.
import {
  blockGeometry,
  packZeroPoints,
  roundToFloat16,
  type PackedWeight,
  type QuantBits,
  type RowPadding,
  type ScaleType,
  type WeightMatrix,
} from './block.js';

export interface UniformOptions {
  blockSize: number;
  symmetric: boolean;
  scaleType?: ScaleType;
  padding?: RowPadding;
}

const FLT_MAX = 3.4028234663852886e38;
const fr = Math.fround;

/** Output of blockParams: [scale, zero point, 1/scale]. */
const P = new Float64Array(3);

/** ORT's range2scale / range2scalezp for one block's [mn, mx]; results in P. */
function blockParams(mn: number, mx: number, sym: boolean, mid: number, maxq: number, f16: boolean): void {
  let scale: number;
  let zp: number;
  if (sym) {
    const m = Math.abs(mx) > Math.abs(mn) ? mx : mn;
    scale = fr(-m / mid);
    zp = mid;
  } else {
    const lo = mn < 0 ? mn : 0;
    const hi = mx > 0 ? mx : 0;
    scale = fr(fr(hi - lo) / maxq);
    // −lo/scale ≥ 0; when scale is 0 the block is all zero and ORT's zero point is 0.
    const zf = scale !== 0 ? -fr(lo / scale) : 0;
    zp = zf > maxq ? maxq : Math.floor(zf + 0.5);
  }
  if (f16) scale = roundToFloat16(scale);
  P[0] = scale;
  P[1] = zp;
  P[2] = scale !== 0 ? fr(1 / scale) : 0;
}

/**
 * ORT's scale and zero point for a block whose values span [mn, mx]: `[scale, zero point, 1/scale]` (scale already
 * rounded to fp16 when `f16`). For algorithms that pick codes themselves on onnxruntime's grid (GPTQ).
 */
export function uniformParams(mn: number, mx: number, bits: QuantBits, symmetric: boolean, f16: boolean): [number, number, number] {
  blockParams(mn, mx, symmetric, 1 << (bits - 1), (1 << bits) - 1, f16);
  return [P[0], P[1], P[2]];
}

/** roundf(w·recip + zp) clamped to [0, maxq]; negatives clamp to 0, so truncating x + 0.5 is enough. */
function code(v: number, recip: number, zp: number, maxq: number): number {
  const q = (fr(fr(v * recip) + zp) + 0.5) | 0;
  return q < 0 ? 0 : q > maxq ? maxq : q;
}

/** The code of one value on ORT's grid (what GPTQ uses when it rounds a column). */
export const uniformCode = code;

/** [N, K] data: one row at a time, block by block. */
function quantizeNK(
  data: Float32Array,
  K: number,
  N: number,
  bits: number,
  bs: number,
  sym: boolean,
  f16: boolean,
  rowBytes: number,
  kBlocks: number,
  b: Uint8Array,
  scales: Float32Array,
  zps: Uint8Array,
): void {
  const maxq = (1 << bits) - 1;
  const mid = 1 << (bits - 1);
  const perByte = 8 / bits;
  for (let n = 0; n < N; n++) {
    const rowIn = n * K;
    const rowOut = n * rowBytes;
    for (let kb = 0; kb < kBlocks; kb++) {
      const k0 = kb * bs;
      const base = rowIn + k0;
      const end = base + Math.min(bs, K - k0);
      let mn = FLT_MAX;
      let mx = -FLT_MAX;
      for (let i = base; i < end; i++) {
        const v = data[i];
        if (v < mn) mn = v;
        if (v > mx) mx = v;
      }
      blockParams(mn, mx, sym, mid, maxq, f16);
      const j = n * kBlocks + kb;
      scales[j] = P[0];
      zps[j] = P[1];
      const zp = P[1];
      const recip = P[2];
      if (bits === 4) {
        let o = rowOut + (k0 >> 1);
        let i = base;
        for (; i + 1 < end; i += 2, o++) b[o] = code(data[i], recip, zp, 15) | (code(data[i + 1], recip, zp, 15) << 4);
        if (i < end) b[o] = code(data[i], recip, zp, 15);
      } else if (bits === 8) {
        for (let i = base, o = rowOut + k0; i < end; i++, o++) b[o] = code(data[i], recip, zp, 255);
      } else {
        for (let i = base, k = k0; i < end; i++, k++) {
          b[rowOut + Math.floor(k / perByte)] |= code(data[i], recip, zp, maxq) << ((k % perByte) * bits);
        }
      }
    }
  }
}

/** [K, N] data: for each block of K rows, sweep the rows (sequential reads) keeping per-column state. */
function quantizeKN(
  data: Float32Array,
  K: number,
  N: number,
  bits: number,
  bs: number,
  sym: boolean,
  f16: boolean,
  rowBytes: number,
  kBlocks: number,
  b: Uint8Array,
  scales: Float32Array,
  zps: Uint8Array,
): void {
  const maxq = (1 << bits) - 1;
  const mid = 1 << (bits - 1);
  const perByte = 8 / bits;
  const mn = new Float32Array(N);
  const mx = new Float32Array(N);
  const rc = new Float32Array(N);
  const zz = new Uint8Array(N);
  for (let kb = 0; kb < kBlocks; kb++) {
    const k0 = kb * bs;
    const kEnd = k0 + Math.min(bs, K - k0);
    mn.fill(FLT_MAX);
    mx.fill(-FLT_MAX);
    for (let k = k0; k < kEnd; k++) {
      const row = k * N;
      for (let n = 0; n < N; n++) {
        const v = data[row + n];
        if (v < mn[n]) mn[n] = v;
        if (v > mx[n]) mx[n] = v;
      }
    }
    for (let n = 0; n < N; n++) {
      blockParams(mn[n], mx[n], sym, mid, maxq, f16);
      const j = n * kBlocks + kb;
      scales[j] = P[0];
      zps[j] = P[1];
      zz[n] = P[1];
      rc[n] = P[2];
    }
    if (bits === 4) {
      for (let k = k0; k < kEnd; k += 2) {
        const r0 = k * N;
        const col = k >> 1;
        if (k + 1 < kEnd) {
          const r1 = r0 + N;
          for (let n = 0, o = col; n < N; n++, o += rowBytes) {
            b[o] = code(data[r0 + n], rc[n], zz[n], 15) | (code(data[r1 + n], rc[n], zz[n], 15) << 4);
          }
        } else {
          for (let n = 0, o = col; n < N; n++, o += rowBytes) b[o] = code(data[r0 + n], rc[n], zz[n], 15);
        }
      }
    } else {
      for (let k = k0; k < kEnd; k++) {
        const r0 = k * N;
        const col = Math.floor(k / perByte);
        const shift = (k % perByte) * bits;
        for (let n = 0, o = col; n < N; n++, o += rowBytes) b[o] |= code(data[r0 + n], rc[n], zz[n], maxq) << shift;
      }
    }
  }
}

export function quantizeUniform(w: WeightMatrix, bits: QuantBits, o: UniformOptions): PackedWeight {
  const { K, N, data } = w;
  const bs = o.blockSize;
  const scaleType = o.scaleType ?? 'float32';
  const padding = o.padding ?? 'block';
  const { kBlocks, rowBytes } = blockGeometry(K, bits, bs, padding);
  const b = new Uint8Array(N * rowBytes);
  const scales = new Float32Array(N * kBlocks);
  const zps = new Uint8Array(N * kBlocks);
  const f = w.layout === 'nk' ? quantizeNK : quantizeKN;
  f(data, K, N, bits, bs, o.symmetric, scaleType === 'float16', rowBytes, kBlocks, b, scales, zps);
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
    zeroPoints: o.symmetric ? undefined : { kind: 'packed', data: packZeroPoints(zps, N, kBlocks, bits) },
  };
}
