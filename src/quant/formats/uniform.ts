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
// Two implementations of that arithmetic. quantizeBlock is plain JS, each fp32 step a Math.fround; it does all the
// work where WebAssembly SIMD is missing or the block size is not a multiple of 16, and otherwise only the blocks the
// kernels leave to it (see below) and the short last block of a row. Everything else goes through the kernels of
// uniform-simd.ts, which do the same fp32 operations natively, four values at a time: about 5× faster, even with
// the data copied in and out of their memory.
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
import { simdKernels, type SimdKernels } from './uniform-simd.js';

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

/**
 * One block: the `len` contiguous values src[i0 ..] get their scale and zero point (at index j) and their codes,
 * packed low bits first from byte `o` of `b` (which starts zeroed; a block starts on a byte boundary since the block
 * size is a multiple of 8). The code loops repeat `code` with the bit width as a constant so each is a straight loop.
 */
function quantizeBlock(
  src: Float32Array,
  i0: number,
  len: number,
  bits: number,
  sym: boolean,
  f16: boolean,
  b: Uint8Array,
  o: number,
  scales: Float32Array,
  zps: Uint8Array,
  j: number,
): void {
  const end = i0 + len;
  let mn = FLT_MAX;
  let mx = -FLT_MAX;
  for (let i = i0; i < end; i++) {
    const v = src[i];
    if (v < mn) mn = v;
    if (v > mx) mx = v;
  }
  const maxq = (1 << bits) - 1;
  blockParams(mn, mx, sym, 1 << (bits - 1), maxq, f16);
  const zp = P[1];
  const recip = P[2];
  scales[j] = P[0];
  zps[j] = zp;
  let i = i0;
  if (bits === 4) {
    for (; i + 1 < end; i += 2) {
      let q0 = (fr(fr(src[i] * recip) + zp) + 0.5) | 0;
      let q1 = (fr(fr(src[i + 1] * recip) + zp) + 0.5) | 0;
      q0 = q0 < 0 ? 0 : q0 > 15 ? 15 : q0;
      q1 = q1 < 0 ? 0 : q1 > 15 ? 15 : q1;
      b[o++] = q0 | (q1 << 4);
    }
    if (i < end) b[o] = code(src[i], recip, zp, 15);
  } else if (bits === 8) {
    for (; i < end; i++) {
      const q = (fr(fr(src[i] * recip) + zp) + 0.5) | 0;
      b[o++] = q < 0 ? 0 : q > 255 ? 255 : q;
    }
  } else {
    // 2 bits: four codes a byte, the last byte of a short block partly filled.
    for (let s = 0; i < end; i++) {
      b[o] |= code(src[i], recip, zp, maxq) << s;
      s += bits;
      if (s === 8) {
        s = 0;
        o++;
      }
    }
  }
}

/** [N, K] data: every block is already contiguous. */
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
  const blob = (bs * bits) >> 3;
  for (let n = 0; n < N; n++) {
    for (let kb = 0; kb < kBlocks; kb++) {
      const k0 = kb * bs;
      quantizeBlock(data, n * K + k0, Math.min(bs, K - k0), bits, sym, f16, b, n * rowBytes + kb * blob, scales, zps, n * kBlocks + kb);
    }
  }
}

/** Columns per tile in quantizeKN: a tile of one block (≤ 256 rows) stays within 32 KiB, inside L1. */
const TILE_FLOATS = 8192;

/**
 * [K, N] data: a block of rows at a time, copied a tile of columns at a time into a small [columns, block] buffer so
 * each column's block is contiguous; then quantizeBlock writes each output row's bytes contiguously. Quantizing
 * straight from [K, N] would write each code byte N·rowBytes apart, one cache line per byte.
 */
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
  const blob = (bs * bits) >> 3;
  const T = Math.max(1, Math.floor(TILE_FLOATS / bs));
  const tile = new Float32Array(T * bs);
  for (let kb = 0; kb < kBlocks; kb++) {
    const k0 = kb * bs;
    const len = Math.min(bs, K - k0);
    for (let n0 = 0; n0 < N; n0 += T) {
      const cols = Math.min(T, N - n0);
      for (let r = 0; r < len; r++) {
        const row = (k0 + r) * N + n0;
        for (let c = 0, t = r; c < cols; c++, t += bs) tile[t] = data[row + c];
      }
      for (let c = 0; c < cols; c++) {
        const n = n0 + c;
        quantizeBlock(tile, c * bs, len, bits, sym, f16, b, n * rowBytes + kb * blob, scales, zps, n * kBlocks + kb);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The same with the WebAssembly SIMD kernels (uniform-simd.ts: min/max, blockParams' arithmetic, codes).
// Data goes through a small staging area in the kernels' memory a chunk at a time, laid out so that the chunk's
// output rows, scales and zero points are contiguous in the final arrays and come back with one copy each. Blocks the
// kernels cannot do exactly (a non-finite value or 1/scale, the sign of an all-zero symmetric block's scale) and the
// short last block of a row are redone by quantizeBlock, writing into the staging area before it is copied back.

/**
 * Staging budgets. [N, K]: floats per chunk of rows. [K, N]: floats per block of rows of a column strip, and output
 * bytes per strip; strips are wide because copying short row pieces (a call each) costs more than the copy.
 */
const STAGE_FLOATS = 1 << 18;
const STAGE_STRIP_FLOATS = 1 << 17;
const STAGE_OUT_BYTES = 1 << 20;

const align16 = (x: number) => (x + 15) & ~15;

/**
 * Byte offsets of the staging areas: `blocks` blocks of `bs` floats, their per-block values (with room for the three
 * blocks params computes past the end), `scales` staged scales and zero points, `rows` output rows.
 */
function stageLayout(blocks: number, bs: number, scales: number, rows: number, rowBytes: number) {
  const IN = 0;
  const MN = align16(IN + blocks * bs * 4);
  const perBlock = align16((blocks + 4) * 4);
  const MX = MN + perBlock;
  const RECIP = MX + perBlock;
  const ZP = RECIP + perBlock;
  const REDO = ZP + perBlock;
  const SCALES = REDO + perBlock;
  const ZPS = align16(SCALES + (scales + 4) * 4);
  const OUT = align16(ZPS + scales + 4);
  return { IN, MN, MX, RECIP, ZP, REDO, SCALES, ZPS, OUT, end: OUT + rows * rowBytes };
}

/** [N, K] data with the kernels: chunks of whole rows, their full blocks staged back to back. */
function quantizeNKSimd(
  simd: SimdKernels,
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
  const blob = (bs * bits) >> 3;
  const kFull = Math.floor(K / bs);
  const tail = K - kFull * bs;
  const fullBytes = kFull * blob;
  const R = Math.max(1, Math.min(N, Math.floor(STAGE_FLOATS / K)));
  const L = stageLayout(R * kFull, bs, R * kFull, R, rowBytes);
  const { f32, u8, i32 } = simd.reserve(L.end);
  const sc = f32.subarray(L.SCALES >> 2);
  const zp = u8.subarray(L.ZPS);
  for (let n0 = 0; n0 < N; n0 += R) {
    const rows = Math.min(R, N - n0);
    const count = rows * kFull;
    if (tail === 0) f32.set(data.subarray(n0 * K, (n0 + rows) * K), L.IN >> 2);
    else for (let r = 0; r < rows; r++) f32.set(data.subarray((n0 + r) * K, (n0 + r) * K + kFull * bs), (L.IN >> 2) + r * kFull * bs);
    simd.minmax(L.IN, count, bs, L.MN, L.MX);
    const redo = simd.params(L.MN, L.MX, count, L.RECIP, L.ZP, L.SCALES, L.ZPS, 1, sym, f16, bits, L.REDO);
    simd.codes(bits, L.IN, rows, kFull, bs, L.RECIP, L.ZP, L.OUT, rowBytes);
    for (let t = 0; t < redo; t++) {
      const i = i32[(L.REDO >> 2) + t];
      const r = Math.floor(i / kFull);
      const o = L.OUT + r * rowBytes + (i - r * kFull) * blob;
      u8.fill(0, o, o + blob);
      quantizeBlock(f32, (L.IN >> 2) + i * bs, bs, bits, sym, f16, u8, o, sc, zp, i);
    }
    for (let r = 0; r < rows && rowBytes > fullBytes; r++) {
      const o = L.OUT + r * rowBytes;
      u8.fill(0, o + fullBytes, o + rowBytes);
      if (tail > 0) quantizeBlock(data, (n0 + r) * K + kFull * bs, tail, bits, sym, f16, u8, o + fullBytes, scales, zps, (n0 + r) * kBlocks + kFull);
    }
    b.set(u8.subarray(L.OUT, L.OUT + rows * rowBytes), n0 * rowBytes);
    if (kFull === kBlocks) {
      scales.set(sc.subarray(0, count), n0 * kBlocks);
      zps.set(zp.subarray(0, count), n0 * kBlocks);
    } else {
      for (let r = 0; r < rows; r++) {
        scales.set(sc.subarray(r * kFull, (r + 1) * kFull), (n0 + r) * kBlocks);
        zps.set(zp.subarray(r * kFull, (r + 1) * kFull), (n0 + r) * kBlocks);
      }
    }
  }
}

/**
 * [K, N] data with the kernels: a strip of columns at a time, all of K, so the strip's output rows are contiguous.
 * Each block of rows is staged as a [bs, columns] tile, quantized by the column kernels.
 */
function quantizeKNSimd(
  simd: SimdKernels,
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
  const blob = (bs * bits) >> 3;
  const kFull = Math.floor(K / bs);
  const tail = K - kFull * bs;
  const fullBytes = kFull * blob;
  // Columns per strip: a multiple of 4 (the column kernels' lanes).
  const T = Math.max(4, Math.min(Math.floor(STAGE_STRIP_FLOATS / bs), Math.floor(STAGE_OUT_BYTES / rowBytes), (N + 3) & ~3) & ~3);
  const L = stageLayout(T, bs, T * kBlocks, T, rowBytes);
  const { f32, u8, i32 } = simd.reserve(L.end);
  const sc = f32.subarray(L.SCALES >> 2);
  const zp = u8.subarray(L.ZPS);
  const column = new Float32Array(bs);
  for (let n0 = 0; n0 < N; n0 += T) {
    const cols = Math.min(T, N - n0);
    const cols4 = (cols + 3) & ~3;
    for (let kb = 0; kb < kFull; kb++) {
      for (let r = 0, s = kb * bs * N + n0; r < bs; r++, s += N) f32.set(data.subarray(s, s + cols), (L.IN >> 2) + r * cols4);
      simd.minmaxCols(L.IN, bs, cols4, L.MN, L.MX);
      const redo = simd.params(L.MN, L.MX, cols, L.RECIP, L.ZP, L.SCALES + 4 * kb, L.ZPS + kb, kBlocks, sym, f16, bits, L.REDO);
      simd.codesCols(bits, L.IN, bs, cols4, L.RECIP, L.ZP, L.OUT + kb * blob, rowBytes);
      for (let t = 0; t < redo; t++) {
        const c = i32[(L.REDO >> 2) + t];
        for (let r = 0; r < bs; r++) column[r] = f32[(L.IN >> 2) + r * cols4 + c];
        const o = L.OUT + c * rowBytes + kb * blob;
        u8.fill(0, o, o + blob);
        quantizeBlock(column, 0, bs, bits, sym, f16, u8, o, sc, zp, c * kBlocks + kb);
      }
    }
    for (let c = 0; c < cols && rowBytes > fullBytes; c++) {
      const o = L.OUT + c * rowBytes;
      u8.fill(0, o + fullBytes, o + rowBytes);
      if (tail > 0) {
        for (let r = 0, s = kFull * bs * N + n0 + c; r < tail; r++, s += N) column[r] = data[s];
        quantizeBlock(column, 0, tail, bits, sym, f16, u8, o + fullBytes, sc, zp, c * kBlocks + kFull);
      }
    }
    b.set(u8.subarray(L.OUT, L.OUT + cols * rowBytes), n0 * rowBytes);
    scales.set(sc.subarray(0, cols * kBlocks), n0 * kBlocks);
    zps.set(zp.subarray(0, cols * kBlocks), n0 * kBlocks);
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
  const f16 = scaleType === 'float16';
  // The kernels take whole blocks of 16 values; a weight with no whole block has nothing for them.
  const simd = bs % 16 === 0 && K >= bs ? simdKernels() : undefined;
  if (simd) {
    const f = w.layout === 'nk' ? quantizeNKSimd : quantizeKNSimd;
    f(simd, data, K, N, bits, bs, o.symmetric, f16, rowBytes, kBlocks, b, scales, zps);
  } else {
    const f = w.layout === 'nk' ? quantizeNK : quantizeKN;
    f(data, K, N, bits, bs, o.symmetric, f16, rowBytes, kBlocks, b, scales, zps);
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
    zeroPoints: o.symmetric ? undefined : { kind: 'packed', data: packZeroPoints(zps, N, kBlocks, bits) },
  };
}
