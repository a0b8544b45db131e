// AWQ's weight clipping (llm-awq `auto_clip.py`), run after the scale search on the scaled weight W' = W·diag(s) and
// activations x/s: per output row n and block b, shrink the block's range to c·max|W'[n, b]| for the c in
// {1, 0.95, ..., 0.55} that minimises the block's own output error E_x[((x/s)_b · (Q(clamp(W'_nb)) − W'_nb))²].
// Clamping the float weight before round-to-nearest is exactly quantizing with the shrunk range, so the result is
// stored as ratios the caller applies to the float weight (a clamp) before the usual RTN.
//
// Blocks are scored independently (cross-block terms of the output error are ignored, as llm-awq does), so only the
// diagonal blocks of the Gram matrix of x/s are needed: bs² values per block whatever the activations' form. Large
// weights (an lm_head over a big vocabulary, full-size MLPs) use only the diagonal of each block, bs times cheaper.
import { blockGeometry, type QuantBits, type WeightMatrix } from '../formats/block.js';
import { uniformCode, uniformParams } from '../formats/uniform.js';
import { codecFor } from '../formats/index.js';
import { scoredRows, takeRows, type ActivationSample, type RowQuantizer } from './output-error.js';

export interface AwqClipOptions {
  /** Candidate ratios 1 − i/20 for i < steps. Default 10 (down to 0.55, llm-awq's max_shrink 0.5). */
  steps?: number;
  /**
   * Score blocks with the full bs×bs Gram block (true) or its diagonal only, Σ E[(x_i/s_i)²]·δ_i² (false: bs times
   * cheaper, ignores correlation inside a block). Default: full when N·K·bs ≤ 2^27 multiply-adds per candidate.
   */
  exact?: boolean;
}

/** The diagonal bs×bs blocks of E[(x/s)(x/s)ᵀ], one Float64Array per block of K. */
export function blockGrams(a: ActivationSample, s: Float32Array, K: number, bs: number): Float64Array[] {
  const kBlocks = Math.ceil(K / bs);
  const out: Float64Array[] = [];
  for (let b = 0; b < kBlocks; b++) {
    const k0 = b * bs;
    const len = Math.min(bs, K - k0);
    const g = new Float64Array(len * len);
    if (a.kind === 'gram') {
      for (let i = 0; i < len; i++) for (let j = 0; j < len; j++) g[i * len + j] = a.g[(k0 + i) * K + k0 + j] / (s[k0 + i] * s[k0 + j]);
    } else {
      const { x, rows } = a;
      const v = new Float64Array(len);
      for (let t = 0; t < rows; t++) {
        for (let i = 0; i < len; i++) v[i] = x[t * K + k0 + i] / s[k0 + i];
        for (let i = 0; i < len; i++) {
          if (v[i] === 0) continue;
          for (let j = 0; j < len; j++) g[i * len + j] += v[i] * v[j];
        }
      }
      if (rows > 0) for (let i = 0; i < g.length; i++) g[i] /= rows;
    }
    out.push(g);
  }
  return out;
}

/**
 * Clip ratios [N, k_blocks] for the scaled weight W·diag(s) under the RTN quantizer `q` (int4 or int8). A ratio of 1
 * means no clipping; the caller clamps block (n, b) of W·diag(s) to ±ratio·max|block| before quantizing.
 */
export function awqClip(w: WeightMatrix, s: Float32Array, q: RowQuantizer, grams: Float64Array[], o: AwqClipOptions = {}): Float32Array {
  const { K, N } = w;
  const bits = codecFor(q.scheme).bits as QuantBits;
  const bs = q.blockSize;
  const { kBlocks } = blockGeometry(K, bits, bs);
  const steps = o.steps ?? 10;
  const maxq = (1 << bits) - 1;
  const f16 = q.scaleType === 'float16';
  const ratios = new Float32Array(N * kBlocks).fill(1);
  const exact = o.exact ?? N * K * bs <= 2 ** 27;
  const rows = takeRows(w, scoredRows(N, N));
  const v = new Float64Array(bs);
  const d = new Float64Array(bs);
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < kBlocks; b++) {
      const k0 = b * bs;
      const len = Math.min(bs, K - k0);
      const g = grams[b];
      let m = 0;
      for (let i = 0; i < len; i++) {
        v[i] = Math.fround(rows[n * K + k0 + i] * s[k0 + i]);
        m = Math.max(m, Math.abs(v[i]));
      }
      if (m === 0) continue;
      let best = Infinity;
      for (let step = 0; step < steps; step++) {
        const c = 1 - step / 20;
        const hi = Math.fround(m * c);
        let mn = Infinity;
        let mx = -Infinity;
        for (let i = 0; i < len; i++) {
          const cv = Math.min(hi, Math.max(-hi, v[i]));
          if (cv < mn) mn = cv;
          if (cv > mx) mx = cv;
        }
        const [scale, zp, recip] = uniformParams(mn, mx, bits, q.symmetric, f16);
        for (let i = 0; i < len; i++) {
          const cv = Math.fround(Math.min(hi, Math.max(-hi, v[i])));
          d[i] = (uniformCode(cv, recip, zp, maxq) - zp) * scale - v[i];
        }
        let e = 0;
        if (exact) {
          for (let i = 0; i < len; i++) {
            if (d[i] === 0) continue;
            let t = 0;
            for (let j = 0; j < len; j++) t += g[i * len + j] * d[j];
            e += d[i] * t;
          }
        } else {
          for (let i = 0; i < len; i++) e += g[i * len + i] * d[i] * d[i];
        }
        // Strictly better only: ties keep the larger range (no clipping at all when nothing helps).
        if (e < best) {
          best = e;
          ratios[n * kBlocks + b] = c;
        }
      }
    }
  }
  return ratios;
}

/** Clamps each block (n, b) of a scaled weight, given as rows of K in `layout`, to ±ratio·max|block| in place. */
export function applyClip(data: Float32Array, w: { K: number; N: number; layout: 'kn' | 'nk' }, bs: number, ratios: Float32Array): void {
  const { K, N } = w;
  const kBlocks = Math.ceil(K / bs);
  const at = w.layout === 'nk' ? (n: number, k: number) => n * K + k : (n: number, k: number) => k * N + n;
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < kBlocks; b++) {
      const r = ratios[n * kBlocks + b];
      if (r >= 1) continue;
      const k1 = Math.min(K, (b + 1) * bs);
      let m = 0;
      for (let k = b * bs; k < k1; k++) m = Math.max(m, Math.abs(data[at(n, k)]));
      const hi = Math.fround(m * r);
      for (let k = b * bs; k < k1; k++) {
        const i = at(n, k);
        data[i] = Math.min(hi, Math.max(-hi, data[i]));
      }
    }
  }
}
