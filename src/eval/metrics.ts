// Per-position statistics of next-token distributions: log-sum-exp and argmax of a logits row, KL divergence against
// a reference distribution (full, quantized-full or top-k), percentiles, and the summary llama.cpp's
// `perplexity --kl-divergence` prints (mean KL, 99th percentile, same-top-token rate, both perplexities).
import { EvalError } from '../util/errors.js';

/** log-sum-exp, max and argmax of row `row` of a row-major [rows, vocab] matrix (sums in float64). */
export interface RowStats {
  lse: number;
  max: number;
  argmax: number;
}

export function rowStats(logits: Float32Array, vocab: number, row: number): RowStats {
  const base = row * vocab;
  let max = -Infinity;
  let argmax = 0;
  for (let i = 0; i < vocab; i++) {
    const v = logits[base + i];
    // `v > max` is false for NaN, so a NaN row would silently pass: check it explicitly.
    if (v > max) {
      max = v;
      argmax = i;
    } else if (v !== v) {
      throw new EvalError('LOGITS_NAN', `logit ${i} of row ${row} is NaN`, {
        fix: 'the model produced NaN: check its weights (fp16 overflow? a broken quantization?)',
      });
    }
  }
  if (max === -Infinity || max === Infinity) {
    throw new EvalError('LOGITS_INFINITE', `row ${row} has no finite maximum logit (${max})`, {
      fix: 'the model produced infinities: check its weights and activation precision',
    });
  }
  let sum = 0;
  for (let i = 0; i < vocab; i++) sum += Math.exp(logits[base + i] - max);
  return { lse: max + Math.log(sum), max, argmax };
}

/**
 * KL(P_ref ‖ P_q) for one position from two full logits rows, exact up to float64 rounding (both rows are
 * normalized here in float64, whatever precision their producer's log-sum-exp had).
 */
export function klFromLogits(ref: Float32Array, refRow: number, q: Float32Array, qRow: number, vocab: number): number {
  const refLse = rowStats(ref, vocab, refRow).lse;
  const qLse = rowStats(q, vocab, qRow).lse;
  const rb = refRow * vocab;
  const qb = qRow * vocab;
  let kl = 0;
  for (let i = 0; i < vocab; i++) {
    const lp = ref[rb + i] - refLse;
    kl += Math.exp(lp) * (lp - (q[qb + i] - qLse));
  }
  // Rounding can leave a tiny negative value when both rows are identical; KL is never below 0.
  return kl > 0 ? kl : 0;
}

/**
 * KL(P_ref ‖ P_q) from a reference stored as log-probabilities over a subset of the vocabulary (`ids`, or all ids
 * 0..n-1 when `ids` is undefined; -Infinity entries are absent) plus an optional "rest" bucket holding the mass of
 * every id not listed (`logRest`, -Infinity when none).
 *
 * The stored reference is renormalized first, so rounding in storage never makes the result negative. With a rest
 * bucket this is the KL between the two distributions coarsened to {listed ids, rest}: a lower bound of the full KL
 * (data-processing inequality), equal to it when the rest holds no mass.
 */
export function klFromStored(
  refLogProbs: ArrayLike<number>,
  ids: ArrayLike<number> | undefined,
  logRest: number,
  q: Float32Array,
  qRow: number,
  vocab: number,
): number {
  const qb = qRow * vocab;
  const qLse = rowStats(q, vocab, qRow).lse;
  let z = 0;
  let acc = 0;
  let qListed = 0;
  const n = refLogProbs.length;
  for (let j = 0; j < n; j++) {
    const lp = refLogProbs[j];
    if (lp === -Infinity) continue;
    const id = ids === undefined ? j : ids[j];
    const lq = q[qb + id] - qLse;
    const p = Math.exp(lp);
    z += p;
    acc += p * (lp - lq);
    if (ids !== undefined) qListed += Math.exp(lq);
  }
  if (logRest !== -Infinity && ids !== undefined) {
    const pRest = Math.exp(logRest);
    // The quantized model's mass outside the listed ids; clamp so a model that puts (almost) all its mass on the
    // listed ids gives a large but finite divergence for the rest bucket.
    const qRest = Math.max(1 - qListed, Number.MIN_VALUE);
    z += pRest;
    acc += pRest * (logRest - Math.log(qRest));
  }
  if (!(z > 0)) {
    throw new EvalError('REFERENCE_EMPTY_ROW', 'a reference position holds no probability mass', {
      fix: 'the reference file is damaged: save it again with `eval --save-reference`',
    });
  }
  const kl = acc / z - Math.log(z);
  return kl > 0 ? kl : 0;
}

/**
 * The value at `fraction` (0..1) of sorted values, interpolating linearly between neighbours at fraction·(n−1)
 * (the definition llama.cpp's perplexity tool uses for its KL percentiles).
 */
export function percentile(sorted: ArrayLike<number>, fraction: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  if (fraction <= 0) return sorted[0];
  if (fraction >= 1) return sorted[n - 1];
  const p = fraction * (n - 1);
  const i = Math.floor(p);
  const f = p - i;
  return (1 - f) * sorted[i] + f * sorted[Math.min(i + 1, n - 1)];
}

/** Perplexity and mean NLL from a sum of negative log-likelihoods. */
export function perplexityOf(sumNll: number, count: number): { meanNll: number; ppl: number } {
  if (count === 0) return { meanNll: NaN, ppl: NaN };
  const meanNll = sumNll / count;
  return { meanNll, ppl: Math.exp(meanNll) };
}

/** What a comparison against the reference reports (the names of `eval --json` and of recipe gates). */
export interface ComparisonMetrics {
  ppl_ref: number;
  mean_nll_ref: number;
  /** 100 · (ppl − ppl_ref) / ppl_ref. */
  ppl_delta_pct: number;
  kl_mean: number;
  kl_median: number;
  kl_p99: number;
  kl_max: number;
  /** Fraction (0..1) of positions where both models' most likely token is the same. */
  top1_agreement: number;
  /** The same, in percent, as llama.cpp's "Same top p". */
  same_top_pct: number;
}

/** Collects per-position KL values, same-top counts and both models' NLL sums over a known number of positions. */
export class ComparisonAccumulator {
  private readonly kl: Float64Array;
  private count = 0;
  private sameTop = 0;
  private sumNll = 0;
  private sumNllRef = 0;

  constructor(positions: number) {
    this.kl = new Float64Array(positions);
  }

  add(kl: number, sameTop: boolean, nll: number, nllRef: number): void {
    if (this.count >= this.kl.length) {
      throw new EvalError('COMPARISON_OVERFLOW', `more than the ${this.kl.length} planned positions were compared`);
    }
    this.kl[this.count++] = kl;
    if (sameTop) this.sameTop++;
    this.sumNll += nll;
    this.sumNllRef += nllRef;
  }

  get positions(): number {
    return this.count;
  }

  summary(): ComparisonMetrics {
    const n = this.count;
    const sorted = this.kl.slice(0, n).sort();
    let sumKl = 0;
    for (let i = 0; i < n; i++) sumKl += sorted[i];
    const q = perplexityOf(this.sumNll, n);
    const r = perplexityOf(this.sumNllRef, n);
    const top1 = n === 0 ? NaN : this.sameTop / n;
    return {
      ppl_ref: r.ppl,
      mean_nll_ref: r.meanNll,
      ppl_delta_pct: (100 * (q.ppl - r.ppl)) / r.ppl,
      kl_mean: n === 0 ? NaN : sumKl / n,
      kl_median: percentile(sorted, 0.5),
      kl_p99: percentile(sorted, 0.99),
      kl_max: n === 0 ? NaN : sorted[n - 1],
      top1_agreement: top1,
      same_top_pct: 100 * top1,
    };
  }
}

/** What validation records for a model: perplexity, and against a reference Δppl, KL and top-1 (snake_case as in manifests). */
export interface ValidationMetrics {
  tokens_scored: number;
  ppl: number;
  mean_nll: number;
  ppl_ref?: number;
  ppl_delta_pct?: number;
  kl_mean?: number;
  kl_p99?: number;
  top1_agreement?: number;
}
