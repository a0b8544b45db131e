// Formats against hand-computed values: onnxruntime's RTN rounding (ties, zero blocks, padding, fp16 scales),
// bit packing low bits first, zero-point packing, ternary absmean and exact ternary blocks.
import { describe, expect, it } from 'vitest';
import { blockGeometry, dequantizePacked, packZeroPoints, roundHalfEven, toRows } from '../../src/quant/formats/block.js';
import { int4 } from '../../src/quant/formats/int4.js';
import { int8 } from '../../src/quant/formats/int8.js';
import { ternary } from '../../src/quant/formats/ternary.js';
import { quantizeUniform } from '../../src/quant/formats/uniform.js';
import { randomMatrix, refDequantize } from '../helpers/quant.js';

/** A single column (N = 1) as a [K, 1] MatMul weight. */
const col = (values: number[]) => ({ data: Float32Array.from(values), K: values.length, N: 1, layout: 'kn' as const });

/** Codes of row 0, unpacked by hand: low nibble first. */
function nibbles(b: Uint8Array, count: number): number[] {
  const out: number[] = [];
  for (let k = 0; k < count; k++) out.push(k % 2 === 0 ? b[k >> 1] & 15 : b[k >> 1] >> 4);
  return out;
}

const f32bits = (x: number) => new Uint32Array(Float32Array.of(x).buffer)[0];

describe('int4 symmetric (onnxruntime default quantizer)', () => {
  it('scale = extreme / −8, codes round half away from zero', () => {
    // Extreme −1 → scale 1/8 (exact), 1/scale = 8. w·8 + 8:
    //   0.0625 → 8.5 → 9 (half away; half-to-even would give 8); 0.3125 → 10.5 → 11; −0.0625 → 7.5 → 8;
    //   0.1875 → 9.5 → 10; 0.875 → 15; −1 → 0; 0 → 8; 2 is not there. The rest of the block is 0.
    const w = [0.0625, 0.3125, -0.0625, 0.1875, 0.875, -1, 0, 0.5, 0, 0, 0, 0, 0, 0, 0, 0];
    const p = int4.quantize(col(w), { blockSize: 16, symmetric: true });
    expect(p.scales[0]).toBe(0.125);
    expect(nibbles(p.b, 16)).toEqual([9, 11, 8, 10, 15, 0, 8, 12, 8, 8, 8, 8, 8, 8, 8, 8]);
    expect(p.zeroPoints).toBeUndefined();
    expect(p.b.length).toBe(8);
    expect(p.b[0]).toBe(9 | (11 << 4));
  });

  it('a positive extreme gives a negative scale; a ±tie picks the negative extreme', () => {
    const pos = int4.quantize(col([1, 0.5, -0.25, ...new Array(13).fill(0)]), { blockSize: 16, symmetric: true });
    // m = 1 → scale −0.125, 1/scale = −8: 1 → 0, 0.5 → 4, −0.25 → 10.
    expect(pos.scales[0]).toBe(-0.125);
    expect(nibbles(pos.b, 3)).toEqual([0, 4, 10]);
    const tie = int4.quantize(col([1, -1, ...new Array(14).fill(0)]), { blockSize: 16, symmetric: true });
    // |1| = |−1|: the negative one → scale +0.125; 1 → 16 → clamped to 15; −1 → 0.
    expect(tie.scales[0]).toBe(0.125);
    expect(nibbles(tie.b, 2)).toEqual([15, 0]);
  });

  it('an all-zero block gets scale −0 and code 8', () => {
    const p = int4.quantize(col(new Array(16).fill(0)), { blockSize: 16, symmetric: true });
    expect(f32bits(p.scales[0])).toBe(0x80000000);
    expect([...p.b]).toEqual(new Array(8).fill(0x88));
  });

  it('K not a multiple of the block: the last block is padded, padding codes are 0', () => {
    const w = Array.from({ length: 20 }, (_, i) => (i === 17 ? -1 : i === 18 ? 0.5 : 0));
    const p = int4.quantize(col(w), { blockSize: 16, symmetric: true });
    const g = blockGeometry(20, 4, 16);
    expect(g).toEqual({ kBlocks: 2, blobSize: 8, rowBytes: 16 });
    expect(p.b.length).toBe(16);
    expect(p.scales[1]).toBe(0.125);
    // Block 1 holds k = 16..19: 0 → 8, −1 → 0, 0.5 → 12, 0 → 8; then 12 padding codes of 0.
    expect(nibbles(p.b.subarray(8), 16)).toEqual([8, 0, 12, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('fp16 scales: codes are computed from the fp16-rounded scale', () => {
    // m = −0.3 → scale 0.0375 in fp32; fp16 holds 1229/1024 · 2^−5 = 0.037506103515625.
    // 0.093753 / 0.037506103515625 = 2.49968 → 2 + 8 = 10 (fp32 scale would give 2.50008 → 11).
    const w = [-0.3, 0.093753, ...new Array(14).fill(0)];
    const p16 = int4.quantize(col(w), { blockSize: 16, symmetric: true, scaleType: 'float16' });
    expect(p16.scales[0]).toBe(0.037506103515625);
    expect(nibbles(p16.b, 2)).toEqual([0, 10]);
    const p32 = int4.quantize(col(w), { blockSize: 16, symmetric: true });
    expect(p32.scales[0]).toBe(Math.fround(0.0375));
    expect(nibbles(p32.b, 2)).toEqual([0, 11]);
  });

  it('blocks run along K for each output column of a [K, N] weight', () => {
    // Column 0 is 0..15 · (−1/15)…; column 1 is all zero. Same result as quantizing the transposed [N, K] rows.
    const K = 32;
    const N = 3;
    const data = randomMatrix(7, K, N, 1);
    const kn = int4.quantize({ data, K, N, layout: 'kn' }, { blockSize: 16, symmetric: true });
    const nk = int4.quantize({ data: toRows({ data, K, N, layout: 'kn' }), K, N, layout: 'nk' }, { blockSize: 16, symmetric: true });
    expect(kn.b).toEqual(nk.b);
    expect(kn.scales).toEqual(nk.scales);
    expect(kn.b.length).toBe(N * 2 * 8);
  });
});

describe('int4 asymmetric', () => {
  it('scale = (max(mx,0) − min(mn,0)) / 15, zp = round(−min / scale)', () => {
    // lo = −0.5, hi = 7 → scale 0.5, zp = 1, 1/scale = 2: 7 → 15, −0.5 → 0, 0.25 → 1.5 → 2, 0.75 → 2.5 → 3 (half away).
    const w = [7, -0.5, 0.25, 0.75, ...new Array(12).fill(0)];
    const p = int4.quantize(col(w), { blockSize: 16, symmetric: false });
    expect(p.scales[0]).toBe(0.5);
    expect(nibbles(p.b, 5)).toEqual([15, 0, 2, 3, 1]);
    expect(p.zeroPoints).toEqual({ kind: 'packed', data: Uint8Array.of(1 | (8 << 4)) });
  });

  it('all-positive blocks get zp 0; an all-zero block gets scale 0, zp 0 and code 0', () => {
    const w = [0.5, 3.75, 1, ...new Array(13).fill(0.5), ...new Array(16).fill(0)];
    const p = int4.quantize(col(w), { blockSize: 16, symmetric: false });
    // Block 0: lo = 0, hi = 3.75 → scale 0.25, zp 0: 0.5 → 2, 3.75 → 15, 1 → 4.
    expect([...p.scales]).toEqual([0.25, 0]);
    expect(nibbles(p.b, 3)).toEqual([2, 15, 4]);
    expect([...p.b.subarray(8)]).toEqual(new Array(8).fill(0));
    // Two zero points 0 and 0 in one byte.
    expect(p.zeroPoints).toEqual({ kind: 'packed', data: Uint8Array.of(0) });
  });
});

describe('int8 and 2-bit', () => {
  it('int8 symmetric: scale = extreme / −128, one code per byte', () => {
    // −1 → scale 1/128: 0.5 → 192, 1/256 → 128.5 → 129, −1 → 0, 0 → 128.
    const p = int8.quantize(col([0.5, 1 / 256, -1, 0, ...new Array(12).fill(0)]), { blockSize: 16, symmetric: true });
    expect(p.scales[0]).toBe(1 / 128);
    expect([...p.b.subarray(0, 4)]).toEqual([192, 129, 0, 128]);
  });

  it('int8 asymmetric: scale = range / 255', () => {
    // lo = −1, hi = 1.55 → scale = fround(2.55 / 255) ≈ 0.01, zp = round(1 / 0.01) = 100.
    const p = int8.quantize(col([-1, 1.55, 0, ...new Array(13).fill(0)]), { blockSize: 16, symmetric: false });
    expect(p.scales[0]).toBe(Math.fround(Math.fround(1.55 - -1) / 255));
    expect(p.zeroPoints?.data).toEqual(Uint8Array.of(100));
    expect(p.b[2]).toBe(100);
    expect(p.b[0]).toBe(0);
    expect(p.b[1]).toBe(255);
  });

  it('2-bit asymmetric packs four codes per byte, low bits first', () => {
    // lo = −1, hi = 2 → scale 1, zp 1: −1 → 0, 0 → 1, 1 → 2, 2 → 3.
    const p = quantizeUniform(col([-1, 0, 1, 2, ...new Array(12).fill(0)]), 2, { blockSize: 16, symmetric: false });
    expect(p.scales[0]).toBe(1);
    expect(p.b[0]).toBe(0 | (1 << 2) | (2 << 4) | (3 << 6));
    expect(p.b.length).toBe(4);
  });

  it('zero points pack like B, unused slots hold 2^(bits−1)', () => {
    // 3 blocks at 4 bits: [1, 2, 3] → bytes 0x21, 0x83 (high nibble of the last byte = 8).
    expect([...packZeroPoints(Uint8Array.of(1, 2, 3), 1, 3, 4)]).toEqual([0x21, 0x83]);
    // 2 rows × 3 blocks at 2 bits: one byte per row, slot 3 = 2.
    expect([...packZeroPoints(Uint8Array.of(0, 1, 3, 3, 2, 1), 2, 3, 2)]).toEqual([0 | (1 << 2) | (3 << 4) | (2 << 6), 3 | (2 << 2) | (1 << 4) | (2 << 6)]);
  });
});

describe('ternary (BitNet b1.58 absmean)', () => {
  it('scale = mean|w| over the block, q = round(w / scale) clamped to ±1, stored q + 2', () => {
    // mean|w| of [0.6, −0.2, 0.1, −1.1, 0×12] = 2/16 = 0.125: 4.8 → 1, −1.6 → −1 (clamped from −2), 0.8 → 1, −8.8 → −1.
    const w = [0.6, -0.2, 0.1, -1.1, ...new Array(12).fill(0)];
    const p = ternary.quantize(col(w), { blockSize: 16, symmetric: true });
    expect(p.scales[0]).toBe(Math.fround(0.125));
    expect(p.b[0]).toBe(3 | (1 << 2) | (3 << 4) | (1 << 6));
    expect(p.b[1]).toBe(0xaa); // four zeros → code 2 each
    expect(p.zeroPoints).toBeUndefined();
    expect(p.report).toEqual({ exactBlocks: 0, totalBlocks: 1 });
  });

  it('rounds half to even like torch.round: w = ±0.5·scale → 0', () => {
    // [0.25, 0.75, 1 ×7, 0 ×7]: mean|w| = 8/16 = 0.5. 0.25/0.5 = 0.5 → 0 (half away would give 1) → code 2;
    // 0.75/0.5 = 1.5 → 2 → clamped to 1 → code 3.
    const w = [0.25, 0.75, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
    const p = ternary.quantize(col(w), { blockSize: 16, symmetric: true });
    expect(p.scales[0]).toBe(0.5);
    expect(p.b[0] & 3).toBe(2);
    expect((p.b[0] >> 2) & 3).toBe(3);
    expect(roundHalfEven(0.5)).toBe(0);
    expect(roundHalfEven(1.5)).toBe(2);
    expect(roundHalfEven(-0.5)).toBe(-0);
    expect(roundHalfEven(-2.5)).toBe(-2);
    expect(roundHalfEven(2.4999)).toBe(2);
  });

  it('already-ternary blocks {−a, 0, a} are stored exactly (lossless)', () => {
    const K = 64;
    const N = 4;
    const rows = new Float32Array(N * K);
    for (let i = 0; i < rows.length; i++) rows[i] = [0, 0.75, -0.75][(i * 7) % 3] * (1 + Math.floor(i / 32));
    const p = ternary.quantize({ data: rows, K, N, layout: 'nk' }, { blockSize: 32, symmetric: true });
    expect(p.report).toEqual({ exactBlocks: 8, totalBlocks: 8 });
    expect(dequantizePacked(p)).toEqual(rows);
    // absmean would not have been exact: mean|w| = (2/3)·a ≠ a.
    expect(p.scales[0]).toBe(0.75);
  });

  it('row scope: one absmean per row, repeated in every block', () => {
    const K = 64;
    const w = randomMatrix(3, 2, K, 1);
    const p = ternary.quantize({ data: w, K, N: 2, layout: 'nk' }, { blockSize: 16, symmetric: true, scope: 'row' });
    let s = 0;
    for (let k = 0; k < K; k++) s += Math.abs(w[k]);
    expect(p.scales[0]).toBeCloseTo(s / K, 6);
    expect(new Set(p.scales.subarray(0, 4)).size).toBe(1);
  });
});

describe('dequantize agrees with an independent reading of the bytes', () => {
  for (const [name, bits, sym] of [
    ['int4 sym', 4, true],
    ['int4 asym', 4, false],
    ['int8 asym', 8, false],
    ['2-bit asym', 2, false],
  ] as const) {
    it(name, () => {
      const K = 80;
      const N = 6;
      const data = randomMatrix(11, K, N);
      const p = quantizeUniform({ data, K, N, layout: 'kn' }, bits, { blockSize: 32, symmetric: sym });
      const ref = refDequantize({ b: p.b, scales: p.scales, zp: p.zeroPoints?.data, K, N, bits, blockSize: 32, rowBytes: p.rowBytes });
      const ours = dequantizePacked(p); // [N, K]
      for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) expect(ours[n * K + k]).toBeCloseTo(ref[k * N + n], 6);
      // And quantization error is bounded by half a step (plus range clamping for sym's positive side).
      for (let n = 0; n < N; n++) {
        for (let k = 0; k < K; k++) {
          const s = Math.abs(p.scales[n * p.kBlocks + Math.floor(k / 32)]);
          expect(Math.abs(ref[k * N + n] - data[k * N + n])).toBeLessThanOrEqual(s * (sym ? 1 : 0.5) + 1e-7);
        }
      }
    });
  }
});
