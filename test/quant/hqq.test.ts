// HQQ against round-to-nearest on real trained weights (stories260K): lower reconstruction error in mean |error|
// (what HQQ's l_p objective targets) on every tensor, and lower mean squared error overall.
import { describe, expect, it } from 'vitest';
import { hqqQuantize } from '../../src/quant/algorithms/hqq.js';
import { dequantizePacked, type PackedWeight } from '../../src/quant/formats/block.js';
import { int4 } from '../../src/quant/formats/int4.js';
import { fixture, loadStories260K, randomMatrix } from '../helpers/quant.js';

function errors(p: PackedWeight, w: Float32Array): { l1: number; mse: number } {
  const d = dequantizePacked(p);
  let a = 0;
  let s = 0;
  for (let i = 0; i < d.length; i++) {
    const e = d[i] - w[i];
    a += Math.abs(e);
    s += e * e;
  }
  return { l1: a / d.length, mse: s / d.length };
}

const path = fixture('stories260K/stories260K.bin');

describe.skipIf(!path)('HQQ on stories260K', () => {
  const weights = path ? loadStories260K(path) : [];

  for (const bs of [32, 64]) {
    it(`beats RTN int4 (sym and asym) at block ${bs}`, () => {
      let mseH = 0;
      let mseA = 0;
      let mseS = 0;
      for (const w of weights) {
        const m = { data: w.data, K: w.cols, N: w.rows, layout: 'nk' as const };
        const h = errors(hqqQuantize(m, { blockSize: bs }), w.data);
        const a = errors(int4.quantize(m, { blockSize: bs, symmetric: false }), w.data);
        const s = errors(int4.quantize(m, { blockSize: bs, symmetric: true }), w.data);
        expect(h.l1, w.name).toBeLessThan(a.l1);
        expect(h.l1, w.name).toBeLessThan(s.l1);
        mseH += h.mse;
        mseA += a.mse;
        mseS += s.mse;
      }
      expect(weights.length).toBe(36);
      expect(mseH).toBeLessThan(mseA * 0.95);
      expect(mseH).toBeLessThan(mseS * 0.9);
    });
  }
});

describe('HQQ output format', () => {
  it('keeps each block min/max scale, stores float zero points, codes within 4 bits', () => {
    const K = 96; // three blocks of 32, the last one full
    const N = 5;
    const data = randomMatrix(21, N, K);
    const p = hqqQuantize({ data, K, N, layout: 'nk' }, { blockSize: 32 });
    expect(p.zeroPoints?.kind).toBe('float');
    for (let n = 0; n < N; n++) {
      for (let kb = 0; kb < 3; kb++) {
        let mn = Infinity;
        let mx = -Infinity;
        for (let k = kb * 32; k < kb * 32 + 32; k++) {
          mn = Math.min(mn, data[n * K + k]);
          mx = Math.max(mx, data[n * K + k]);
        }
        expect(p.scales[n * 3 + kb]).toBe(Math.fround((mx - mn) / 15));
      }
    }
  });

  it('fp16 models get fp16-representable scales and zero points', () => {
    const data = randomMatrix(5, 4, 64);
    const p = hqqQuantize({ data, K: 64, N: 4, layout: 'nk' }, { blockSize: 32, scaleType: 'float16' });
    const f16 = (x: number) => {
      const a = new Float32Array([x]);
      return a[0] === x && Number.isFinite(x);
    };
    const isHalf = (x: number) => {
      if (x === 0) return true;
      const e = Math.floor(Math.log2(Math.abs(x)));
      const q = Math.abs(x) / 2 ** (e - 10);
      return f16(x) && Math.abs(q - Math.round(q)) < 1e-9;
    };
    expect([...p.scales].every(isHalf)).toBe(true);
    expect([...(p.zeroPoints!.data as Float32Array)].every(isHalf)).toBe(true);
  });
});
