import { describe, expect, it } from 'vitest';
import { ComparisonAccumulator, klFromLogits, klFromStored, percentile, perplexityOf, rowStats } from '../../src/eval/metrics.js';
import { EvalError } from '../../src/util/errors.js';

/** Softmax by the textbook formula (no max shift), for small well-scaled rows. */
function probs(logits: number[]): number[] {
  const e = logits.map(Math.exp);
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
}

function klDirect(p: number[], q: number[]): number {
  return p.reduce((acc, pi, i) => (pi > 0 ? acc + pi * Math.log(pi / q[i]) : acc), 0);
}

describe('rowStats', () => {
  it('gives log-sum-exp, max and argmax of a row', () => {
    const m = Float32Array.from([0, 0, 0, 1, 2, 3, 5, 5, 4]);
    const s = rowStats(m, 3, 1);
    expect(s.lse).toBeCloseTo(Math.log(Math.E + Math.E ** 2 + Math.E ** 3), 12);
    expect(s.argmax).toBe(2);
    expect(s.max).toBe(3);
    // Ties go to the lowest index.
    expect(rowStats(m, 3, 2).argmax).toBe(0);
  });

  it('stays finite for large logits', () => {
    const s = rowStats(Float32Array.from([1000, 1000]), 2, 0);
    expect(s.lse).toBeCloseTo(1000 + Math.log(2), 9);
  });

  it('rejects NaN rows', () => {
    expect(() => rowStats(Float32Array.from([1, NaN, 0]), 3, 0)).toThrow(EvalError);
    expect(() => rowStats(Float32Array.from([NaN, 1]), 2, 0)).toThrow(/NaN/);
  });
});

describe('KL divergence', () => {
  const a = [0.5, -1, 2, 0.1, -0.3];
  const b = [0.4, -0.7, 1.6, 0.5, -0.2];
  const fa = Float32Array.from(a);
  const fb = Float32Array.from(b);
  const lseA = rowStats(fa, 5, 0).lse;
  const exact = klDirect(probs(Array.from(fa)), probs(Array.from(fb)));

  it('from two full logits rows equals Σ p log(p/q)', () => {
    expect(klFromLogits(fa, 0, fb, 0, 5)).toBeCloseTo(exact, 12);
    expect(klFromLogits(fa, 0, fa, 0, 5)).toBe(0);
    // Shifting logits does not change the distribution.
    const shifted = fb.map((x) => x + 7);
    expect(klFromLogits(fa, 0, shifted, 0, 5)).toBeCloseTo(exact, 6);
    // Rows anywhere in a matrix.
    const two = Float32Array.from([...fb, ...fa]);
    expect(klFromLogits(two, 1, two, 0, 5)).toBeCloseTo(exact, 12);
  });

  it('from stored full log-probs equals the same', () => {
    const lp = Float64Array.from(fa, (x) => x - lseA);
    expect(klFromStored(lp, undefined, -Infinity, fb, 0, 5)).toBeCloseTo(exact, 12);
  });

  it('renormalizes a stored distribution that does not sum to 1', () => {
    const lp = Float64Array.from(fa, (x) => x - lseA + 0.01);
    expect(klFromStored(lp, undefined, -Infinity, fb, 0, 5)).toBeCloseTo(exact, 12);
  });

  it('from top-k plus a rest bucket is the KL of the coarsened distributions, below the full KL', () => {
    const p = probs(Array.from(fa));
    const q = probs(Array.from(fb));
    const ids = [2, 0]; // the two most likely under p
    const pRest = 1 - p[2] - p[0];
    const qRest = 1 - q[2] - q[0];
    const coarse = klDirect([p[2], p[0], pRest], [q[2], q[0], qRest]);
    const lp = ids.map((i) => Math.log(p[i]));
    const got = klFromStored(lp, ids, Math.log(pRest), fb, 0, 5);
    expect(got).toBeCloseTo(coarse, 12);
    expect(got).toBeLessThanOrEqual(exact);
    // Holding every id, nothing is lost.
    const all = [0, 1, 2, 3, 4];
    expect(klFromStored(all.map((i) => Math.log(p[i])), all, -Infinity, fb, 0, 5)).toBeCloseTo(exact, 12);
  });

  it('skips ids stored as −Infinity (below the floor)', () => {
    const lp = [Math.log(0.5), -Infinity, Math.log(0.5)];
    const q = Float32Array.from([0, 5, 0]);
    const qp = probs([0, 5, 0]);
    expect(klFromStored(lp, undefined, -Infinity, q, 0, 3)).toBeCloseTo(klDirect([0.5, 0, 0.5], qp), 10);
  });
});

describe('percentile', () => {
  it('interpolates linearly at fraction·(n−1) like llama.cpp', () => {
    const v = [1, 2, 3, 4];
    expect(percentile(v, 0.5)).toBe(2.5);
    expect(percentile(v, 0.99)).toBeCloseTo(3.97, 12);
    expect(percentile(v, 0)).toBe(1);
    expect(percentile(v, 1)).toBe(4);
    expect(percentile([7], 0.99)).toBe(7);
    expect(percentile([], 0.5)).toBeNaN();
  });
});

describe('ComparisonAccumulator', () => {
  it('summarizes KL, top-1 and both perplexities', () => {
    const acc = new ComparisonAccumulator(4);
    const kls = [0.4, 0.1, 0.3, 0.2];
    const nll = [1, 2, 3, 2];
    const nllRef = [1, 1, 2, 2];
    kls.forEach((k, i) => acc.add(k, i !== 1, nll[i], nllRef[i]));
    const s = acc.summary();
    expect(s.kl_mean).toBeCloseTo(0.25, 12);
    expect(s.kl_median).toBeCloseTo(0.25, 12);
    expect(s.kl_max).toBe(0.4);
    expect(s.kl_p99).toBeCloseTo(0.3 + 0.97 * 0.1, 12);
    expect(s.top1_agreement).toBe(0.75);
    expect(s.same_top_pct).toBe(75);
    expect(s.ppl_ref).toBeCloseTo(Math.exp(1.5), 12);
    expect(s.ppl_delta_pct).toBeCloseTo(100 * (Math.exp(2) / Math.exp(1.5) - 1), 9);
    expect(() => acc.add(0, true, 0, 0)).toThrow(EvalError);
  });

  it('perplexityOf is exp of the mean NLL', () => {
    expect(perplexityOf(6, 3)).toEqual({ meanNll: 2, ppl: Math.exp(2) });
    expect(perplexityOf(0, 0).ppl).toBeNaN();
  });
});
