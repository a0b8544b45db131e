// quantizeUniform (WebAssembly SIMD kernels, scalar fallback) against a plain per-value reference of onnxruntime's
// RTN arithmetic, byte for byte: ties, fp16 scale ties, zero and NaN-and-zero blocks, subnormals, huge values,
// infinities, one-sign blocks, short last blocks, both layouts and paddings, shapes spanning several staging chunks.
import { describe, expect, it } from 'vitest';
import {
  blockGeometry,
  packZeroPoints,
  putCode,
  roundToFloat16,
  type PackedWeight,
  type QuantBits,
  type RowPadding,
  type ScaleType,
  type WeightLayout,
} from '../../src/quant/formats/block.js';
import { simdKernels } from '../../src/quant/formats/uniform-simd.js';
import { quantizeUniform } from '../../src/quant/formats/uniform.js';
import { Rng } from '../../src/util/random.js';

const fr = Math.fround;
const FLT_MAX = 3.4028234663852886e38;

interface Case {
  bits: QuantBits;
  blockSize: number;
  symmetric: boolean;
  scaleType: ScaleType;
  padding: RowPadding;
  layout: WeightLayout;
}

/**
 * onnxruntime's BlockwiseQuantizer one value at a time in doubles with fround at each fp32 step: min/max from
 * ±FLT_MAX (NaN never wins, the first of equal values stays), then range2scale(zp), then roundf(w/scale + zp).
 */
function reference(rows: Float32Array, K: number, N: number, c: Case): PackedWeight {
  const { bits, blockSize: bs, symmetric } = c;
  const { kBlocks, rowBytes } = blockGeometry(K, bits, bs, c.padding);
  const maxq = 2 ** bits - 1;
  const mid = 2 ** (bits - 1);
  const b = new Uint8Array(N * rowBytes);
  const scales = new Float32Array(N * kBlocks);
  const zps = new Uint8Array(N * kBlocks);
  for (let n = 0; n < N; n++) {
    for (let kb = 0; kb < kBlocks; kb++) {
      const k0 = kb * bs;
      const k1 = Math.min(K, k0 + bs);
      let mn = FLT_MAX;
      let mx = -FLT_MAX;
      for (let k = k0; k < k1; k++) {
        const v = rows[n * K + k];
        if (v < mn) mn = v;
        if (v > mx) mx = v;
      }
      let scale: number;
      let zp: number;
      if (symmetric) {
        scale = fr(-(Math.abs(mx) > Math.abs(mn) ? mx : mn) / mid);
        zp = mid;
      } else {
        const lo = mn < 0 ? mn : 0;
        const hi = mx > 0 ? mx : 0;
        scale = fr(fr(hi - lo) / maxq);
        const zf = scale === 0 ? 0 : -fr(lo / scale);
        zp = zf > maxq ? maxq : Math.floor(zf + 0.5);
      }
      if (c.scaleType === 'float16') scale = roundToFloat16(scale);
      const recip = scale === 0 ? 0 : fr(1 / scale);
      scales[n * kBlocks + kb] = scale;
      zps[n * kBlocks + kb] = zp;
      for (let k = k0; k < k1; k++) {
        const x = fr(fr(rows[n * K + k] * recip) + zp) + 0.5;
        // (int) of NaN or ±Inf is INT_MIN on x86, which the clamp takes to 0.
        const q = Number.isFinite(x) ? Math.trunc(x) : 0;
        putCode(b, n * rowBytes, k, q < 0 ? 0 : q > maxq ? maxq : q, bits);
      }
    }
  }
  return {
    bits,
    blockSize: bs,
    K,
    N,
    kBlocks,
    padding: c.padding,
    rowBytes,
    b,
    scales,
    scaleType: c.scaleType,
    zeroPoints: symmetric ? undefined : { kind: 'packed', data: packZeroPoints(zps, N, kBlocks, bits) },
  };
}

/** [N, K] values → the weight's memory layout. */
function lay(rows: Float32Array, K: number, N: number, layout: WeightLayout): Float32Array {
  if (layout === 'nk') return rows;
  const out = new Float32Array(K * N);
  for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) out[k * N + n] = rows[n * K + k];
  return out;
}

/** An fp16 midpoint, normal or subnormal: rounding it to fp16 is a tie. */
function f16Tie(rng: Rng): number {
  if (rng.uniform() < 0.2) return (Math.floor(rng.uniform() * 1024) + 0.5) * 2 ** -24;
  return (1024 + Math.floor(rng.uniform() * 1024) + 0.5) * 2 ** (Math.floor(rng.uniform() * 30) - 24);
}

/** Fills one block's values. */
type BlockGen = (out: Float32Array, rng: Rng, c: Case) => void;
const gens: Record<string, BlockGen> = {
  normal: (o, r) => o.forEach((_, i) => (o[i] = r.normal() * 0.02)),
  // Halves of small integers with a ±2^(bits−1) extreme: w/scale + zp lands on .5 ties.
  ties: (o, r, c) => {
    o.forEach((_, i) => (o[i] = (Math.floor(r.uniform() * 2 ** (c.bits + 1)) - 2 ** c.bits) / 2));
    o[0] = -(2 ** (c.bits - 1));
  },
  f16ScaleTie: (o, r, c) => {
    const t = f16Tie(r);
    const ext = c.symmetric ? -t * 2 ** (c.bits - 1) : t * (2 ** c.bits - 1);
    o.forEach((_, i) => (o[i] = i === 0 ? ext : ext * r.uniform() * 0.999));
  },
  zeros: (o, r) => o.forEach((_, i) => (o[i] = r.uniform() < 0.5 ? -0 : 0)),
  nanZeros: (o, r) => o.forEach((_, i) => (o[i] = r.uniform() < 0.3 ? NaN : r.uniform() < 0.5 ? -0 : 0)),
  subnormal: (o, r) => o.forEach((_, i) => (o[i] = r.normal() * 10 ** -(38 + Math.floor(r.uniform() * 8)))),
  huge: (o, r) => o.forEach((_, i) => (o[i] = (r.uniform() < 0.5 ? -1 : 1) * 3.4e38 * r.uniform())),
  positive: (o, r) => o.forEach((_, i) => (o[i] = Math.abs(r.normal()) + 0.1)),
  negative: (o, r) => o.forEach((_, i) => (o[i] = -Math.abs(r.normal()) - 0.1)),
  allEqual: (o, r) => o.fill(r.normal()),
  nonFinite: (o, r) => o.forEach((_, i) => (o[i] = r.uniform() < 0.1 ? [NaN, Infinity, -Infinity][i % 3] : r.normal())),
};

function fill(K: number, N: number, c: Case, rng: Rng, names: string[]): Float32Array {
  const rows = new Float32Array(K * N);
  for (let n = 0; n < N; n++) {
    for (let k0 = 0; k0 < K; k0 += c.blockSize) {
      const block = rows.subarray(n * K + k0, n * K + Math.min(K, k0 + c.blockSize));
      gens[names[Math.floor(rng.uniform() * names.length)]](block, rng, c);
    }
  }
  return rows;
}

function expectSame(got: PackedWeight, want: PackedWeight): void {
  expect([got.kBlocks, got.rowBytes, got.scaleType, got.padding]).toEqual([want.kBlocks, want.rowBytes, want.scaleType, want.padding]);
  expect(Buffer.from(got.b).equals(Buffer.from(want.b))).toBe(true);
  // Compare scale bits: −0 and NaN payloads count.
  expect(Buffer.from(got.scales.buffer).equals(Buffer.from(want.scales.buffer))).toBe(true);
  expect(got.zeroPoints?.kind).toBe(want.zeroPoints?.kind);
  if (want.zeroPoints) expect(Buffer.from(got.zeroPoints!.data.buffer).equals(Buffer.from(want.zeroPoints.data.buffer))).toBe(true);
}

function allCases(blockSize: number): Case[] {
  const out: Case[] = [];
  for (const bits of [2, 4, 8] as const)
    for (const symmetric of [true, false])
      for (const scaleType of ['float32', 'float16'] as const)
        for (const padding of ['block', 'none'] as const)
          for (const layout of ['nk', 'kn'] as const) out.push({ bits, blockSize, symmetric, scaleType, padding, layout });
  return out;
}

describe('quantizeUniform matches the per-value reference byte for byte', () => {
  it('runs the WebAssembly SIMD kernels here (otherwise only the scalar path would be checked)', () => {
    expect(simdKernels()).toBeDefined();
  });

  for (const name of Object.keys(gens)) {
    it(`${name} blocks, every bit width, scale type, padding and layout`, () => {
      const rng = Rng.forName(7, name);
      for (const c of allCases(32)) {
        // A short last block (K mod 32 = 13) and a K of whole blocks.
        for (const K of [3 * 32 + 13, 64]) {
          const N = 11;
          const rows = fill(K, N, c, rng, [name]);
          expectSame(quantizeUniform({ data: lay(rows, K, N, c.layout), K, N, layout: c.layout }, c.bits, c), reference(rows, K, N, c));
        }
      }
    });
  }

  it('mixed blocks over several staging chunks ([N, K]) and column strips ([K, N]), block sizes 16 to 256', () => {
    const rng = Rng.forName(8, 'big');
    const names = Object.keys(gens);
    const shapes: [number, number, number, (c: Case, i: number) => boolean][] = [
      // [N, K]: 2^18 staged floats hold 87 rows of 3000, so two chunks; the last block is 24 long.
      [3000, 90, 32, (c, i) => c.layout === 'nk' && i % 4 === 0],
      // [K, N]: a strip is at most 1 MiB of output rows (here 52 rows at 8 bits) and 2^17 floats per tile (512 columns).
      [20000, 56, 128, (c) => c.layout === 'kn' && c.bits === 8 && c.padding === (c.symmetric ? 'block' : 'none')],
      [512, 1100, 256, (c, i) => c.layout === 'kn' && i % 4 === 1],
      [1040, 24, 16, (c, i) => i % 4 === 2],
    ];
    for (const [K, N, blockSize, pick] of shapes) {
      for (const c of allCases(blockSize).filter(pick)) {
        const rows = fill(K, N, c, rng, names);
        expectSame(quantizeUniform({ data: lay(rows, K, N, c.layout), K, N, layout: c.layout }, c.bits, c), reference(rows, K, N, c));
      }
    }
  });

  it('the scalar path (a block size the kernels do not take, a K shorter than a block) too', () => {
    const rng = Rng.forName(9, 'scalar');
    for (const [K, blockSize] of [
      [100, 24],
      [10, 16],
    ] as const) {
      for (const c of allCases(blockSize)) {
        const rows = fill(K, 5, c, rng, Object.keys(gens));
        expectSame(quantizeUniform({ data: lay(rows, K, 5, c.layout), K, N: 5, layout: c.layout }, c.bits, c), reference(rows, K, 5, c));
      }
    }
  });
});
