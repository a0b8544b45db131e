// Teacher-forced scoring: runs token sequences through a decoder in sliding windows and yields, chunk by chunk, the
// logits of the scored positions with their log-sum-exp, argmax and negative log-likelihood of the actual next token.
import type { DecoderSession } from '../runtime/decoder-session.js';
import type { KvCache } from '../runtime/kv-cache.js';
import { EvalError } from '../util/errors.js';
import { perplexityOf } from './metrics.js';
import { RowKernel } from './row-kernel.js';
import { planWindows, scoredPositions, type WindowOptions } from './windows.js';

/** Token sequences as the scorer takes them; each must be ids of the model's vocabulary. */
export type TokenSequences = readonly (readonly number[] | Int32Array)[];

export interface ScoreOptions extends WindowOptions {
  /**
   * Most tokens per forward run. A window longer than this is fed in chunks through the KV cache, which keeps the
   * logits buffer at chunk × vocab floats instead of window × vocab (400 MB for a 512-token window at Phi-4's
   * 200k vocabulary). Default: as many tokens as fit 32 MiB of float32 logits, at least 16.
   */
  chunkTokens?: number;
  signal?: AbortSignal;
  /** The onnxruntime session computing per-row statistics (default: one made, and released, per call). */
  kernel?: RowKernel;
  /** Called after each chunk with the positions scored so far and in total. */
  onProgress?: (scored: number, total: number) => void;
}

/** The scored rows of one forward run. Arrays are only valid until the next batch is requested. */
export interface ScoreBatch {
  sequence: number;
  /** Position (in its sequence) of the token the first scored row predicts. */
  firstTarget: number;
  /** Number of scored rows. */
  rows: number;
  vocab: number;
  /** The run's logits [runRows, vocab]; scored row r is row `rowOffset + r`. */
  logits: Float32Array;
  rowOffset: number;
  /** The tokens predicted by the scored rows. */
  targets: Int32Array;
  /** Per scored row: log-sum-exp of the logits, the most likely token, and −log p(target) (float32 precision). */
  lse: Float64Array;
  argmax: Int32Array;
  nll: Float64Array;
}

export interface ScoreSummary {
  sequences: number;
  tokensScored: number;
  /** Tokens run through the model (window overlap counts again). */
  tokensForwarded: number;
  sumNll: number;
  meanNll: number;
  ppl: number;
  seconds: number;
}

const CHUNK_LOGIT_FLOATS = 8 * 1024 * 1024;

/** Every sequence as Int32Array (copied only when given as a plain array). */
export function toInt32Sequences(sequences: TokenSequences): Int32Array[] {
  return sequences.map((s) => (s instanceof Int32Array ? s : Int32Array.from(s)));
}

/** Positions the scorer will score over `sequences` (every position after the first of each). */
export function countScoredPositions(sequences: TokenSequences): number {
  let n = 0;
  for (const s of sequences) n += scoredPositions(s.length);
  return n;
}

export function defaultChunkTokens(vocab: number | undefined, maxLength: number): number {
  const byMemory = Math.max(16, Math.floor(CHUNK_LOGIT_FLOATS / Math.max(1, vocab ?? 32064)));
  return Math.min(maxLength, byMemory);
}

/**
 * Scores `sequences` window by window (see planWindows). A window feeds tokens [begin, end − 1): the last token is
 * only a target, so its own logits are never computed.
 */
export async function* scoreBatches(
  session: DecoderSession,
  sequences: TokenSequences,
  opts: ScoreOptions,
): AsyncGenerator<ScoreBatch, void, undefined> {
  const seqs = toInt32Sequences(sequences);
  const total = countScoredPositions(seqs);
  const context = session.layout.contextLength;
  if (context !== undefined && opts.maxLength > context) {
    throw new EvalError('WINDOW_EXCEEDS_CONTEXT', `--max-length ${opts.maxLength} exceeds the model's context length ${context}`, {
      where: session.layout.modelPath,
      fix: `pass --max-length ${context} or less`,
    });
  }
  const chunk = opts.chunkTokens ?? defaultChunkTokens(session.layout.vocabSize, opts.maxLength);
  if (!Number.isInteger(chunk) || chunk < 1) throw new EvalError('CHUNK_TOKENS', `chunkTokens must be a positive integer, got ${chunk}`);
  let scored = 0;
  const kernel = opts.kernel ?? (await RowKernel.create());
  try {
    for (let s = 0; s < seqs.length; s++) {
      const seq = seqs[s];
      for (const w of planWindows(seq.length, opts)) {
        let cache: KvCache | undefined;
        const feedEnd = w.end - 1;
        for (let a = w.begin; a < feedEnd; a += chunk) {
          if (opts.signal?.aborted) throw opts.signal.reason ?? new EvalError('ABORTED', 'evaluation was cancelled');
          const b = Math.min(a + chunk, feedEnd);
          const out = await session.forward(seq.subarray(a, b), cache ?? session.newCache());
          cache = out.cache;
          // Input position p predicts the token at p + 1; scored targets are [scoreFrom, end).
          const firstInput = Math.max(a, w.scoreFrom - 1);
          if (firstInput >= b) continue;
          const rows = b - firstInput;
          const rowOffset = firstInput - a;
          const vocab = out.vocabSize;
          const targets = seq.subarray(firstInput + 1, b + 1);
          // The window's last token is a target only (never fed), so the session has not range-checked it.
          for (let r = 0; r < rows; r++) {
            if (targets[r] >= vocab) {
              throw new EvalError('TOKEN_OUT_OF_RANGE', `sequence ${s}, token ${firstInput + 1 + r} is ${targets[r]}, outside the vocabulary 0..${vocab - 1}`, {
                where: session.layout.modelPath,
                fix: 'use token ids of this model\'s tokenizer',
              });
            }
          }
          const { lse, argmax, nll } = await kernel.run(out.logits, vocab, rowOffset, rows, targets);
          scored += rows;
          yield { sequence: s, firstTarget: firstInput + 1, rows, vocab, logits: out.logits, rowOffset, targets, lse, argmax, nll };
          opts.onProgress?.(scored, total);
        }
      }
    }
  } finally {
    if (!opts.kernel) await kernel.release();
  }
}

/** Mean NLL and perplexity of `sequences` (every position after the first of each sequence, windows as opts). */
export async function scoreSequences(session: DecoderSession, sequences: TokenSequences, opts: ScoreOptions): Promise<ScoreSummary> {
  const t0 = performance.now();
  let sumNll = 0;
  let count = 0;
  for await (const b of scoreBatches(session, sequences, opts)) {
    for (let r = 0; r < b.rows; r++) sumNll += b.nll[r];
    count += b.rows;
  }
  return summarize(sequences, opts, sumNll, count, (performance.now() - t0) / 1000);
}

/** Tokens a scoring pass runs through the model (each window feeds end − 1 − begin tokens). */
export function countForwardedTokens(sequences: TokenSequences, opts: WindowOptions): number {
  let n = 0;
  for (const s of sequences) for (const w of planWindows(s.length, opts)) n += w.end - 1 - w.begin;
  return n;
}

export function summarize(
  sequences: TokenSequences,
  opts: WindowOptions,
  sumNll: number,
  count: number,
  seconds: number,
): ScoreSummary {
  const { meanNll, ppl } = perplexityOf(sumNll, count);
  return {
    sequences: sequences.length,
    tokensScored: count,
    tokensForwarded: countForwardedTokens(sequences, opts),
    sumNll,
    meanNll,
    ppl,
    seconds,
  };
}
