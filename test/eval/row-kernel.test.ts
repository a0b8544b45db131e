import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RowKernel } from '../../src/eval/row-kernel.js';
import { Rng } from '../../src/util/random.js';
import { argmaxOf, logSoftmax } from '../helpers/eval-reference.js';

let kernel: RowKernel;
beforeAll(async () => {
  kernel = await RowKernel.create();
});
afterAll(async () => {
  await kernel?.release();
});

describe('RowKernel (onnxruntime row statistics)', () => {
  it('matches float64 log-sum-exp, argmax and target NLL, for rows taken from the middle of a matrix', async () => {
    const V = 301;
    const rows = 9;
    const rng = new Rng(4);
    const m = new Float32Array(20 * V).map(() => 6 * rng.normal());
    const targets = Int32Array.from({ length: rows }, (_, r) => (r * 53) % V);
    const out = await kernel.run(m, V, 5, rows, targets);
    for (let r = 0; r < rows; r++) {
      const lp = logSoftmax(m, V, 5 + r);
      const lse = m[(5 + r) * V] - lp[0];
      expect(out.lse[r]).toBeCloseTo(lse, 5);
      expect(out.nll[r]).toBeCloseTo(-lp[targets[r]], 5);
      expect(out.argmax[r]).toBe(argmaxOf(Array.from(m.subarray((5 + r) * V, (6 + r) * V))));
    }
  });

  it('takes the first index on ties and rejects NaN rows', async () => {
    const tie = Float32Array.from([1, 3, 3, 0]);
    expect((await kernel.run(tie, 4, 0, 1, Int32Array.from([0]))).argmax[0]).toBe(1);
    await expect(kernel.run(Float32Array.from([1, NaN, 0, 0]), 4, 0, 1, Int32Array.from([0]))).rejects.toMatchObject({ code: 'LOGITS_NAN' });
  });
});
