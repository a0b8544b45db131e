// Independent reference computations for eval tests: log-softmax, KL and percentiles written plainly in float64,
// sharing no code with src/eval.
import { Rng } from '../../src/util/random.js';

/** −log softmax(row)[target] computed the textbook way (max-shifted, float64). */
export function nllOfRow(logits: Float32Array | readonly number[], vocab: number, row: number, target: number): number {
  const xs = Array.from({ length: vocab }, (_, i) => Number(logits[row * vocab + i]));
  const m = Math.max(...xs);
  const lse = m + Math.log(xs.reduce((a, x) => a + Math.exp(x - m), 0));
  return lse - xs[target];
}

/** log-softmax of one row as a plain array. */
export function logSoftmax(logits: Float32Array | readonly number[], vocab: number, row: number): number[] {
  const xs = Array.from({ length: vocab }, (_, i) => Number(logits[row * vocab + i]));
  const m = Math.max(...xs);
  const lse = m + Math.log(xs.reduce((a, x) => a + Math.exp(x - m), 0));
  return xs.map((x) => x - lse);
}

/** Σ p (log p − log q) from two log-prob arrays. */
export function klOfLogProbs(lp: readonly number[], lq: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < lp.length; i++) s += Math.exp(lp[i]) * (lp[i] - lq[i]);
  return s;
}

export function argmaxOf(xs: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
}

/** numpy's default ("linear") percentile of unsorted values. */
export function percentileLinear(values: readonly number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  const p = q * (s.length - 1);
  const lo = Math.floor(p);
  const hi = Math.min(lo + 1, s.length - 1);
  return s[lo] + (p - lo) * (s[hi] - s[lo]);
}

/** Seeded token ids starting with BOS (1). */
export function randomTokens(length: number, vocab: number, seed: number): number[] {
  const rng = new Rng(seed, 77);
  return Array.from({ length }, (_, i) => (i === 0 ? 1 : Math.floor(rng.uniform() * vocab)));
}
