// Validation data when a recipe gives none: token sequences sampled from the (unquantized) model itself with a
// seeded generator, so the same recipe always validates on the same tokens.
import type { DecoderSession } from '../runtime/decoder-session.js';
import { EvalError } from '../util/errors.js';
import { Rng } from '../util/random.js';

export interface SampleOptions {
  /** How many sequences. */
  sequences: number;
  /** Tokens per sequence, BOS included (≥ 2). */
  length: number;
  seed: number;
  /** First token of every sequence. */
  bos: number;
  /** Softmax temperature (default 1: the model's own distribution). */
  temperature?: number;
  signal?: AbortSignal;
}

/**
 * Samples `sequences` sequences of `length` tokens: BOS, then each next token drawn from softmax(logits / T) by
 * inverse CDF with one uniform draw of `new Rng(seed, s)` per token (stream s = sequence index). Runs one token
 * per step through the KV cache.
 */
export async function sampleSequences(session: DecoderSession, opts: SampleOptions): Promise<Int32Array[]> {
  const { sequences, length, seed, bos } = opts;
  const temperature = opts.temperature ?? 1;
  if (!Number.isInteger(sequences) || sequences < 1) throw new EvalError('SAMPLE_SEQUENCES', `sequences must be a positive integer, got ${sequences}`);
  if (!Number.isInteger(length) || length < 2) throw new EvalError('SAMPLE_LENGTH', `length must be an integer ≥ 2, got ${length}`);
  if (!(temperature > 0)) throw new EvalError('SAMPLE_TEMPERATURE', `temperature must be > 0, got ${temperature}`);
  const context = session.layout.contextLength;
  if (context !== undefined && length > context) {
    throw new EvalError('SAMPLE_TOO_LONG', `sampled sequences of ${length} tokens exceed the model's context length ${context}`, {
      where: session.layout.modelPath,
      fix: `set validation.data.sample.length to ${context} or less`,
    });
  }
  const out: Int32Array[] = [];
  for (let s = 0; s < sequences; s++) {
    const rng = new Rng(seed, s);
    const seq = new Int32Array(length);
    seq[0] = bos;
    let step = await session.forward([bos], undefined, { logits: 'last' });
    for (let i = 1; i < length; i++) {
      if (opts.signal?.aborted) throw opts.signal.reason ?? new EvalError('ABORTED', 'sampling was cancelled');
      const next = drawToken(step.logits, step.vocabSize, temperature, rng.uniform());
      seq[i] = next;
      if (i + 1 < length) step = await session.forward([next], step.cache, { logits: 'last' });
    }
    out.push(seq);
  }
  return out;
}

/** The token whose cumulative probability interval under softmax(logits / T) holds u ∈ [0, 1). */
export function drawToken(logits: Float32Array, vocab: number, temperature: number, u: number): number {
  let max = -Infinity;
  for (let i = 0; i < vocab; i++) if (logits[i] > max) max = logits[i];
  if (!Number.isFinite(max)) throw new EvalError('LOGITS_INFINITE', `cannot sample: the largest logit is ${max}`);
  const inv = 1 / temperature;
  let z = 0;
  for (let i = 0; i < vocab; i++) z += Math.exp((logits[i] - max) * inv);
  const target = u * z;
  let cum = 0;
  let last = 0;
  for (let i = 0; i < vocab; i++) {
    const w = Math.exp((logits[i] - max) * inv);
    if (w === 0) continue;
    cum += w;
    last = i;
    if (cum > target) return i;
  }
  // Rounding can leave target a hair above the final sum: the last token with any weight.
  return last;
}
