// Greedy decoding over a DecoderSession: prefill the prompt once, then one token per step through the KV cache.
import { performance } from 'node:perf_hooks';
import { EvalError } from '../util/errors.js';
import type { DecoderSession } from './decoder-session.js';
import type { KvCache } from './kv-cache.js';

export interface GreedyOptions {
  maxNewTokens: number;
  /** Stop after emitting one of these (the stop token is kept in the output, as transformers does). */
  eosTokenIds?: readonly number[];
  /** Called with each new token as soon as it is chosen (may be async, e.g. to write to a stream). */
  onToken?: (id: number, index: number) => void | Promise<void>;
}

export type StopReason = 'eos' | 'max_new_tokens' | 'context_full';

export interface GreedyResult {
  /** The generated tokens (prompt excluded). */
  tokens: number[];
  stopReason: StopReason;
  /** Time of the prompt's forward pass (which also yields the first token). */
  prefillMs: number;
  /** Time of the remaining single-token steps. */
  decodeMs: number;
  cache: KvCache;
}

/** Index of the largest value of row `row` of a [rows, vocab] matrix; ties go to the lowest index. */
export function argmax(logits: Float32Array, vocab: number, row = 0): number {
  const base = row * vocab;
  let best = 0;
  let bestV = -Infinity;
  for (let i = 0; i < vocab; i++) {
    const v = logits[base + i];
    if (v > bestV) {
      bestV = v;
      best = i;
    } else if (Number.isNaN(v)) {
      throw new EvalError('LOGITS_NAN', `logit ${i} is NaN`, { fix: 'the model produced NaN: check its weights (fp16 overflow?)' });
    }
  }
  return best;
}

/** Greedy generation from `promptIds` (which must hold at least one token, e.g. BOS). */
export async function greedyGenerate(
  session: DecoderSession,
  promptIds: readonly number[],
  opts: GreedyOptions,
): Promise<GreedyResult> {
  if (promptIds.length === 0) {
    throw new EvalError('PROMPT_EMPTY', 'the prompt has no tokens', { fix: 'start the prompt with the BOS token' });
  }
  if (!Number.isInteger(opts.maxNewTokens) || opts.maxNewTokens < 0) {
    // NaN would never compare ≥ the count, and decoding would run until EOS or the context is full.
    throw new EvalError('MAX_NEW_TOKENS', `maxNewTokens must be a whole number ≥ 0, got ${opts.maxNewTokens}`);
  }
  const eos = new Set(opts.eosTokenIds ?? []);
  const context = session.layout.contextLength ?? Infinity;
  const tokens: number[] = [];
  if (opts.maxNewTokens <= 0) {
    return { tokens, stopReason: 'max_new_tokens', prefillMs: 0, decodeMs: 0, cache: session.newCache() };
  }

  const t0 = performance.now();
  let step = await session.forward(promptIds, undefined, { logits: 'last' });
  let next = argmax(step.logits, step.vocabSize);
  const prefillMs = performance.now() - t0;
  const cache = step.cache;

  const t1 = performance.now();
  let stopReason: StopReason;
  for (;;) {
    tokens.push(next);
    await opts.onToken?.(next, tokens.length - 1);
    if (eos.has(next)) {
      stopReason = 'eos';
      break;
    }
    if (tokens.length >= opts.maxNewTokens) {
      stopReason = 'max_new_tokens';
      break;
    }
    if (cache.length + 1 > context) {
      stopReason = 'context_full';
      break;
    }
    step = await session.forward([next], cache, { logits: 'last' });
    next = argmax(step.logits, step.vocabSize);
  }
  return { tokens, stopReason, prefillMs, decodeMs: performance.now() - t1, cache };
}
