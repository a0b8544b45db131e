// Prefill and decode speed of a built model in onnxruntime-node (CPU): warm-up runs, then N timed runs of one prompt
// followed by one-token steps through the KV cache; tokens per second from the median time.
import { DecoderSession } from '../runtime/decoder-session.js';
import { EvalError } from '../util/errors.js';

export interface SpeedOptions {
  /** Prompt length of the prefill (default 64; shortened to fit the context with the decode steps). */
  prefillTokens?: number;
  /** One-token steps after the prefill (default 32). */
  decodeTokens?: number;
  /** Timed runs; the median is reported (default 5). */
  runs?: number;
  /** Untimed runs first: session start-up, kernel selection and allocations do not count (default 1). */
  warmup?: number;
  /** Threads inside one operator (default: onnxruntime's choice). */
  intraOpNumThreads?: number;
  signal?: AbortSignal;
}

export interface SpeedResult {
  prefill_tokens_per_s: number;
  decode_tokens_per_s: number;
  prefill_tokens: number;
  decode_tokens: number;
  runs: number;
  warmup: number;
  /** Milliseconds of each timed run (prefill: the prompt; decode: all steps). */
  prefill_ms: number[];
  decode_ms: number[];
}

export async function measureSpeed(modelDir: string, opts: SpeedOptions = {}): Promise<SpeedResult> {
  const runs = opts.runs ?? 5;
  const warmup = opts.warmup ?? 1;
  let decodeTokens = opts.decodeTokens ?? 32;
  let prefillTokens = opts.prefillTokens ?? 64;
  for (const [k, v, min] of [['runs', runs, 1], ['warmup', warmup, 0], ['decodeTokens', decodeTokens, 1], ['prefillTokens', prefillTokens, 1]] as const) {
    if (!Number.isInteger(v) || v < min) throw new EvalError('SPEED_OPTIONS', `speed option ${k} must be an integer ≥ ${min}, got ${v}`);
  }
  const session = await DecoderSession.open(modelDir, opts.intraOpNumThreads === undefined ? {} : { intraOpNumThreads: opts.intraOpNumThreads });
  try {
    const ctx = session.layout.contextLength;
    if (ctx !== undefined && prefillTokens + decodeTokens > ctx) {
      // A short context: both parts shrink in proportion, so each still measures several tokens.
      if (ctx < 2) throw new EvalError('SPEED_CONTEXT', `the model's context length ${ctx} leaves no room for a prefill and a decode step`);
      const p = Math.max(1, Math.min(ctx - 1, Math.floor((ctx * prefillTokens) / (prefillTokens + decodeTokens))));
      prefillTokens = p;
      decodeTokens = ctx - p;
    }
    const vocab = session.layout.vocabSize ?? (await session.forward([0], undefined, { logits: 'last' })).vocabSize;
    // Fixed, spread-out ids: speed does not depend on which tokens run, and the same ids make runs comparable.
    const ids = Int32Array.from({ length: prefillTokens + decodeTokens }, (_, i) => (i * 7919 + 1) % vocab);
    const prompt = ids.subarray(0, prefillTokens);
    const once = async (): Promise<[number, number]> => {
      opts.signal?.throwIfAborted();
      const cache = session.newCache();
      const t0 = performance.now();
      await session.forward(prompt, cache, { logits: 'last' });
      const t1 = performance.now();
      for (let i = prefillTokens; i < ids.length; i++) await session.forward(ids.subarray(i, i + 1), cache, { logits: 'last' });
      return [t1 - t0, performance.now() - t1];
    };
    for (let i = 0; i < warmup; i++) await once();
    const prefillMs: number[] = [];
    const decodeMs: number[] = [];
    for (let i = 0; i < runs; i++) {
      const [p, d] = await once();
      prefillMs.push(p);
      decodeMs.push(d);
    }
    return {
      prefill_tokens_per_s: prefillTokens / (median(prefillMs) / 1000),
      decode_tokens_per_s: decodeTokens / (median(decodeMs) / 1000),
      prefill_tokens: prefillTokens,
      decode_tokens: decodeTokens,
      runs,
      warmup,
      prefill_ms: prefillMs.map(round4),
      decode_ms: decodeMs.map(round4),
    };
  } finally {
    await session.release();
  }
}

/** The middle value (mean of the two middle values for an even count); NaN for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function round4(v: number): number {
  return +v.toFixed(4);
}
