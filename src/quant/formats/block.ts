// Blockwise layout shared by every quantization format: the MatMulNBits / GatherBlockQuantized byte layout, bit
// packing (low bits first), zero-point packing, fp32 emulation helpers and a format-independent dequantizer.
import { float16BitsToFloat32, float32ToFloat16Bits } from '../../onnx/tensor.js';
import { simdKernels } from './uniform-simd.js';

/** Bits per stored code; MatMulNBits runs 2, 4 and 8 on CPU. */
export type QuantBits = 2 | 4 | 8;

/**
 * How the float weight is laid out in memory. `kn` is ONNX MatMul's B input ([K, N], N contiguous); `nk` is
 * PyTorch's Linear layout and an embedding table ([N, K], K contiguous). Blocks always run along K.
 */
export type WeightLayout = 'kn' | 'nk';

/** A float weight seen as N rows of K values (the rows being quantized), whatever its memory layout. */
export interface WeightMatrix {
  data: Float32Array;
  K: number;
  N: number;
  layout: WeightLayout;
}

/**
 * `block`: every row is ceil(K / block_size) whole blocks (MatMulNBits B: [N, k_blocks, blob]);
 * `none`: codes run on without block padding (GatherBlockQuantized data: [N, ceil(K·bits/8)]).
 */
export type RowPadding = 'block' | 'none';

/** Scales are computed in fp32; `float16` rounds each to fp16 before codes are computed from it (as ORT does). */
export type ScaleType = 'float32' | 'float16';

/** Zero points: packed codes (`bits` each, low bits first, [N, ceil(k_blocks·bits/8)]) or floats ([N, k_blocks]). */
export type ZeroPoints = { kind: 'packed'; data: Uint8Array } | { kind: 'float'; data: Float32Array };

/** A quantized weight in MatMulNBits layout. A missing zero point means 2^(bits−1). */
export interface PackedWeight {
  bits: QuantBits;
  blockSize: number;
  K: number;
  N: number;
  kBlocks: number;
  padding: RowPadding;
  /** Bytes per row of `b`. */
  rowBytes: number;
  /** [N, rowBytes] codes, low bits first. */
  b: Uint8Array;
  /** [N, k_blocks], already rounded to `scaleType`. */
  scales: Float32Array;
  scaleType: ScaleType;
  zeroPoints?: ZeroPoints;
  /** What the quantizer noticed (e.g. ternary blocks stored exactly). */
  report?: QuantReport;
}

export interface QuantReport {
  /** Blocks whose values were reproduced exactly (ternary weights that were already ternary). */
  exactBlocks?: number;
  totalBlocks?: number;
}

export interface BlockGeometry {
  kBlocks: number;
  blobSize: number;
  rowBytes: number;
}

export function blockGeometry(K: number, bits: QuantBits, blockSize: number, padding: RowPadding = 'block'): BlockGeometry {
  const kBlocks = Math.ceil(K / blockSize);
  const blobSize = (blockSize * bits) / 8;
  const rowBytes = padding === 'block' ? kBlocks * blobSize : Math.ceil((K * bits) / 8);
  return { kBlocks, blobSize, rowBytes };
}

/** Bytes per row of packed zero points: ceil(k_blocks·bits/8). */
export function zeroPointRowBytes(kBlocks: number, bits: QuantBits): number {
  return Math.ceil((kBlocks * bits) / 8);
}

/** Element (n, k) of a weight matrix is data[n·rowStride + k·colStride]. */
export function strides(w: WeightMatrix): { rowStride: number; colStride: number } {
  return w.layout === 'nk' ? { rowStride: w.K, colStride: 1 } : { rowStride: 1, colStride: w.N };
}

// ---------------------------------------------------------------------------------------------------------------
// Rounding, as C's roundf / rintf on float32 values

/** roundf: half away from zero. */
export function roundHalfAway(x: number): number {
  return x < 0 ? -Math.floor(-x + 0.5) : Math.floor(x + 0.5);
}

/** rint / torch.round: half to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  // Math.round takes ties up; a tie that landed on an odd number goes back down.
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const F32_SCRATCH = new Float32Array(1);
const F16_SCRATCH = new Uint16Array(1);

/** Rounds an fp32 value to the nearest fp16 value (ties to even), returned as a number. */
export function roundToFloat16(x: number): number {
  F32_SCRATCH[0] = x;
  float32ToFloat16Bits(F32_SCRATCH, F16_SCRATCH);
  return float16BitsToFloat32(F16_SCRATCH, F32_SCRATCH)[0];
}

export function roundScale(x: number, t: ScaleType): number {
  return t === 'float16' ? roundToFloat16(x) : Math.fround(x);
}

// ---------------------------------------------------------------------------------------------------------------
// Bit packing

/** Writes `code` (already in range) at element `k` of the row starting at byte `rowOffset`. */
export function putCode(out: Uint8Array, rowOffset: number, k: number, code: number, bits: QuantBits): void {
  if (bits === 8) {
    out[rowOffset + k] = code;
    return;
  }
  const perByte = 8 / bits;
  const i = rowOffset + Math.floor(k / perByte);
  const shift = (k % perByte) * bits;
  out[i] = (out[i] & ~(((1 << bits) - 1) << shift)) | (code << shift);
}

export function getCode(src: Uint8Array, rowOffset: number, k: number, bits: QuantBits): number {
  if (bits === 8) return src[rowOffset + k];
  const perByte = 8 / bits;
  return (src[rowOffset + Math.floor(k / perByte)] >> ((k % perByte) * bits)) & ((1 << bits) - 1);
}

/**
 * Packs per-block zero point codes [N, k_blocks] into [N, ceil(k_blocks·bits/8)], low bits first. Unused slots at
 * the end of a row hold 2^(bits−1), which is what onnxruntime's quantizer leaves there. Whole bytes are built at
 * once (no call per code): RTN runs this once per block of every weight.
 */
export function packZeroPoints(zp: Uint8Array, N: number, kBlocks: number, bits: QuantBits): Uint8Array {
  if (bits === 8) return zp.slice(0, N * kBlocks);
  const mid = 1 << (bits - 1);
  const out = new Uint8Array(N * zeroPointRowBytes(kBlocks, bits));
  let o = 0;
  for (let n = 0; n < N; n++) {
    let j = n * kBlocks;
    const end = j + kBlocks;
    if (bits === 4) {
      for (; j + 1 < end; j += 2) out[o++] = zp[j] | (zp[j + 1] << 4);
      if (j < end) out[o++] = zp[j] | (mid << 4);
    } else {
      for (; j + 3 < end; j += 4) out[o++] = zp[j] | (zp[j + 1] << 2) | (zp[j + 2] << 4) | (zp[j + 3] << 6);
      if (j < end) {
        let v = 0;
        for (let s = 0; s < 4; s++, j++) v |= (j < end ? zp[j] : mid) << (2 * s);
        out[o++] = v;
      }
    }
  }
  return out;
}

/** Unpacks zero points to [N, k_blocks] floats (the default 2^(bits−1) when absent). */
export function zeroPointsAsFloat(p: PackedWeight): Float32Array {
  const out = new Float32Array(p.N * p.kBlocks);
  const z = p.zeroPoints;
  if (!z) return out.fill(1 << (p.bits - 1));
  if (z.kind === 'float') {
    out.set(z.data);
    return out;
  }
  const rowBytes = zeroPointRowBytes(p.kBlocks, p.bits);
  for (let n = 0; n < p.N; n++) {
    for (let j = 0; j < p.kBlocks; j++) out[n * p.kBlocks + j] = getCode(z.data, n * rowBytes, j, p.bits);
  }
  return out;
}

/**
 * Packs codes given as [N, K] (one byte each, K contiguous) with per-block scales and zero points into a
 * PackedWeight. Positions past K in a padded last block stay 0, as onnxruntime's quantizer leaves them (the kernels
 * never read them).
 */
export function packCodes(
  codes: Uint8Array,
  scales: Float32Array,
  zeroPoints: Uint8Array | Float32Array | undefined,
  o: { K: number; N: number; bits: QuantBits; blockSize: number; padding?: RowPadding; scaleType: ScaleType },
): PackedWeight {
  const padding = o.padding ?? 'block';
  const g = blockGeometry(o.K, o.bits, o.blockSize, padding);
  const b = new Uint8Array(o.N * g.rowBytes);
  for (let n = 0; n < o.N; n++) {
    for (let k = 0; k < o.K; k++) putCode(b, n * g.rowBytes, k, codes[n * o.K + k], o.bits);
  }
  let zp: ZeroPoints | undefined;
  if (zeroPoints instanceof Float32Array) zp = { kind: 'float', data: zeroPoints };
  else if (zeroPoints) zp = { kind: 'packed', data: packZeroPoints(zeroPoints, o.N, g.kBlocks, o.bits) };
  return {
    bits: o.bits,
    blockSize: o.blockSize,
    K: o.K,
    N: o.N,
    kBlocks: g.kBlocks,
    padding,
    rowBytes: g.rowBytes,
    b,
    scales,
    scaleType: o.scaleType,
    zeroPoints: zp,
  };
}

/** Dequantizes any PackedWeight to float32 [N, K] (K contiguous): w = (code − zero_point) · scale. */
export function dequantizePacked(p: PackedWeight): Float32Array {
  const out = new Float32Array(p.N * p.K);
  const zp = zeroPointsAsFloat(p);
  for (let n = 0; n < p.N; n++) {
    const row = n * p.rowBytes;
    for (let k = 0; k < p.K; k++) {
      const j = n * p.kBlocks + Math.floor(k / p.blockSize);
      out[n * p.K + k] = (getCode(p.b, row, k, p.bits) - zp[j]) * p.scales[j];
    }
  }
  return out;
}

/** Copies a weight into [N, K] row-major order (a cache-blocked transpose for `kn`, a view for `nk`). */
export function toRows(w: WeightMatrix): Float32Array {
  if (w.layout === 'nk') return w.data;
  const { K, N, data } = w;
  const out = new Float32Array(K * N);
  const T = 64;
  for (let k0 = 0; k0 < K; k0 += T) {
    const k1 = Math.min(K, k0 + T);
    for (let n0 = 0; n0 < N; n0 += T) {
      const n1 = Math.min(N, n0 + T);
      for (let k = k0; k < k1; k++) {
        const src = k * N;
        for (let n = n0; n < n1; n++) out[n * K + k] = data[src + n];
      }
    }
  }
  return out;
}

/** The first non-finite value of a weight, or undefined: (row n, column k) in the rows-of-K view. */
export function findNonFinite(data: Float32Array): number | undefined {
  // Every weight passes through here before it is quantized: with WebAssembly SIMD the scan runs four values at a
  // time over chunks copied into the kernels' memory (~6× faster than the JS loop, which cost more than RTN itself).
  const simd = simdKernels();
  let from = 0;
  if (simd) {
    const chunk = NON_FINITE_CHUNK;
    const mem = simd.reserve(chunk * 4).f32;
    for (; from + 4 <= data.length; from += chunk) {
      const n = Math.min(chunk, data.length - from) & ~3;
      mem.set(data.subarray(from, from + n), 0);
      const i = simd.nonFinite(0, n);
      if (i >= 0) return from + i;
      if (n < chunk) {
        from += n;
        break;
      }
    }
  }
  for (let i = from; i < data.length; i++) {
    const v = data[i];
    // v - v is NaN exactly for NaN and ±Infinity; faster than Number.isFinite in a hot loop.
    if (v - v !== 0) return i;
  }
  return undefined;
}

/** Floats scanned per copy into the kernels' memory (1 MiB). */
const NON_FINITE_CHUNK = 1 << 18;
