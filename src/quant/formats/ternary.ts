// Ternary (1.58-bit, BitNet b1.58 "absmean"): codes −1, 0, +1 stored as q+2 in 2 bits with the default zero point 2,
// so MatMulNBits bits=2 runs them directly. scale = mean|w| over the block (or the row), clamped to ≥ 1e-5 as BitNet
// does; q = clamp(round(w / scale), −1, 1) with torch's round-half-to-even. A block (or row) whose values already
// are {−a, 0, a} is stored exactly with scale a: dequantizing gives the weight back bit for bit.
import {
  blockGeometry,
  dequantizePacked,
  packCodes,
  roundHalfEven,
  roundScale,
  strides,
  type PackedWeight,
  type WeightMatrix,
} from './block.js';
import type { TernaryGranularity } from '../../vocabulary.js';
import type { Codec, CodecOptions } from './codec.js';

/** BitNet's floor on the absmean scale (keeps all-zero blocks finite). */
const ABSMEAN_EPS = 1e-5;

export interface TernaryOptions extends CodecOptions {
  /** One scale per block (default) or one per row, repeated in every block of the row. */
  scope?: TernaryGranularity;
}

/** The magnitude a when every value of the span is 0 or ±a (a = 0 for an all-zero span), else undefined. */
function ternaryMagnitude(data: Float32Array, start: number, step: number, len: number): number | undefined {
  let a = 0;
  for (let l = 0, i = start; l < len; l++, i += step) {
    const m = Math.abs(data[i]);
    if (m === 0) continue;
    if (a === 0) a = m;
    else if (m !== a) return undefined;
  }
  return a;
}

function absMean(data: Float32Array, start: number, step: number, len: number): number {
  let s = 0;
  for (let l = 0, i = start; l < len; l++, i += step) s += Math.abs(data[i]);
  return Math.max(s / len, ABSMEAN_EPS);
}

function quantizeTernary(w: WeightMatrix, o: TernaryOptions): PackedWeight {
  const { K, N, data } = w;
  const bs = o.blockSize;
  const scaleType = o.scaleType ?? 'float32';
  const padding = o.padding ?? 'block';
  const { kBlocks, rowBytes } = blockGeometry(K, 2, bs, padding);
  const { rowStride, colStride } = strides(w);
  const b = new Uint8Array(N * rowBytes);
  const scales = new Float32Array(N * kBlocks);
  let exactBlocks = 0;

  for (let n = 0; n < N; n++) {
    let rowScale: number | undefined;
    let rowExact = false;
    if (o.scope === 'row') {
      const a = ternaryMagnitude(data, n * rowStride, colStride, K);
      rowExact = a !== undefined;
      rowScale = roundScale(a ?? absMean(data, n * rowStride, colStride, K), scaleType);
    }
    for (let kb = 0; kb < kBlocks; kb++) {
      const k0 = kb * bs;
      const len = Math.min(bs, K - k0);
      const base = n * rowStride + k0 * colStride;
      let scale: number;
      let exact: boolean;
      if (rowScale !== undefined) {
        scale = rowScale;
        exact = rowExact;
      } else {
        const a = ternaryMagnitude(data, base, colStride, len);
        exact = a !== undefined;
        scale = roundScale(a ?? absMean(data, base, colStride, len), scaleType);
      }
      // An exact block in an fp16-scale model keeps a only if a is an fp16 value (it is, for fp16 weights).
      if (exact && scale !== 0 && !isExactAfterRounding(data, base, colStride, len, scale)) exact = false;
      if (exact) exactBlocks++;
      scales[n * kBlocks + kb] = scale;
      const row = n * rowBytes;
      for (let l = 0, i = base; l < len; l++, i += colStride) {
        let q = scale === 0 ? 0 : roundHalfEven(data[i] / scale);
        q = q < -1 ? -1 : q > 1 ? 1 : q;
        const k = k0 + l;
        b[row + (k >> 2)] |= (q + 2) << ((k & 3) * 2);
      }
    }
  }
  return {
    bits: 2,
    blockSize: bs,
    K,
    N,
    kBlocks,
    padding,
    rowBytes,
    b,
    scales,
    scaleType,
    report: { exactBlocks, totalBlocks: N * kBlocks },
  };
}

function isExactAfterRounding(data: Float32Array, start: number, step: number, len: number, scale: number): boolean {
  for (let l = 0, i = start; l < len; l++, i += step) {
    const v = data[i];
    if (v !== 0 && Math.abs(v) !== scale) return false;
  }
  return true;
}

type TernaryCodec = Codec & { quantize(w: WeightMatrix, o: TernaryOptions): PackedWeight };

export const ternary: TernaryCodec = Object.freeze<TernaryCodec>({
  name: 'ternary',
  bits: 2,
  asymmetric: false,
  quantize: quantizeTernary,
  pack: (p, o) => packCodes(p.codes, p.scales, undefined, { ...o, K: p.K, N: p.N, bits: 2, scaleType: o.scaleType ?? 'float32' }),
  dequantize: dequantizePacked,
});
