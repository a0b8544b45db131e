// DecoderSession: the KV-cache path against one-shot onnxruntime runs of tiny genai-layout decoders.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DecoderSession } from '../../src/runtime/decoder-session.js';
import { maxIntraOpThreads } from '../../src/ort/threads.js';
import { EvalError, GenaiConfigError, OnnxError } from '../../src/util/errors.js';
import { maxAbsDiff, referenceLogits, writeTinyDecoder, type TinyDecoder, type TinyDecoderOptions } from '../helpers/runtime.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'phi-forge-runtime-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const PROMPT = [1, 7, 22, 3, 39, 15, 8];

const variants: [string, TinyDecoderOptions, number][] = [
  ['fp32, rotary inside GroupQueryAttention', {}, 1e-5],
  ['fp32, DirectML-style position_ids + RotaryEmbedding', { positionIds: true }, 1e-5],
  // fp16 runs round differently in one shot and step by step; logits are O(1), so 2e-2 is a few fp16 ulps.
  ['fp16, rotary inside GroupQueryAttention', { dtype: 'float16' }, 2e-2],
  ['fp16, position_ids', { dtype: 'float16', positionIds: true }, 2e-2],
];

describe.each(variants)('DecoderSession on a tiny decoder (%s)', (name, options, tol) => {
  let dir: string;
  let model: TinyDecoder;
  let session: DecoderSession;
  let reference: Float32Array;
  beforeAll(async () => {
    dir = join(root, name.replace(/\W+/g, '-'));
    model = await writeTinyDecoder(dir, { seed: 7, ...options });
    session = await DecoderSession.open(dir);
    reference = await referenceLogits(join(dir, 'model.onnx'), model, PROMPT);
  });
  afterAll(async () => {
    await session.release();
  });

  it('reads the layout from genai_config.json and dtypes from the session', () => {
    const L = session.layout;
    expect(L.numLayers).toBe(2);
    expect(L.numKvHeads).toBe(2);
    expect(L.headSize).toBe(16);
    expect(L.kvType).toBe(options.dtype ?? 'float32');
    expect(L.logitsType).toBe(options.dtype ?? 'float32');
    expect(L.names.positionIds).toBe(options.positionIds ? 'position_ids' : undefined);
    expect(L.names.pastValues[1]).toBe('past_key_values.1.value');
    expect(L.eosTokenIds).toEqual([2, 3]);
  });

  it('prefill of the whole prompt matches a one-shot run', async () => {
    const r = await session.forward(PROMPT);
    expect(r.logits).toBeInstanceOf(Float32Array);
    expect([r.rows, r.vocabSize]).toEqual([PROMPT.length, 40]);
    expect(maxAbsDiff(r.logits, reference)).toBeLessThan(tol);
    expect(r.cache.length).toBe(PROMPT.length);
    expect(r.cache.keys[0]!.dims).toEqual([1, 2, PROMPT.length, 16]);
  });

  it('chunked and token-by-token runs through the cache give the one-shot logits', async () => {
    const cache = session.newCache();
    const rows: Float32Array[] = [];
    for (const chunk of [PROMPT.slice(0, 3), PROMPT.slice(3, 4), PROMPT.slice(4, 6), PROMPT.slice(6)]) {
      const r = await session.forward(chunk, cache);
      expect(r.cache).toBe(cache);
      rows.push(Float32Array.from(r.logits));
    }
    const joined = new Float32Array(reference.length);
    let o = 0;
    for (const r of rows) {
      joined.set(r, o);
      o += r.length;
    }
    expect(o).toBe(reference.length);
    expect(maxAbsDiff(joined, reference)).toBeLessThan(tol);
    expect(cache.length).toBe(PROMPT.length);
  });

  it("logits: 'last' is the last row of 'all'", async () => {
    const all = await session.forward(PROMPT);
    const last = await session.forward(PROMPT, undefined, { logits: 'last' });
    expect(last.rows).toBe(1);
    expect(Array.from(last.logits)).toEqual(Array.from(all.logits.subarray((PROMPT.length - 1) * 40)));
  });

  it('a forked cache continues independently of the original', async () => {
    const prefix = await session.forward(PROMPT.slice(0, 4));
    const fork = prefix.cache.fork();
    const a = await session.forward([30, 31], prefix.cache);
    const b = await session.forward(PROMPT.slice(4, 6), fork);
    expect(fork.length).toBe(6);
    expect(prefix.cache.length).toBe(6);
    const refA = await referenceLogits(join(dir, 'model.onnx'), model, [...PROMPT.slice(0, 4), 30, 31]);
    expect(maxAbsDiff(a.logits, refA.subarray(4 * 40))).toBeLessThan(tol);
    expect(maxAbsDiff(b.logits, reference.subarray(4 * 40, 6 * 40))).toBeLessThan(tol);
  });

  it('accepts BigInt64Array ids', async () => {
    const r = await session.forward(BigInt64Array.from(PROMPT, (v) => BigInt(v)));
    expect(maxAbsDiff(r.logits, reference)).toBeLessThan(tol);
  });
});

describe('DecoderSession errors and edge cases', () => {
  let dir: string;
  let session: DecoderSession;
  beforeAll(async () => {
    dir = join(root, 'edge');
    await writeTinyDecoder(dir, { contextLength: 8 });
    session = await DecoderSession.open(dir, { graphOptimizationLevel: 'basic', intraOpNumThreads: 1 });
  });
  afterAll(async () => {
    await session.release();
  });

  it('rejects a token outside the vocabulary before running', async () => {
    await expect(session.forward([1, 40])).rejects.toMatchObject({ code: 'TOKEN_OUT_OF_RANGE' });
    await expect(session.forward([-1])).rejects.toBeInstanceOf(EvalError);
  });

  it('rejects an empty input and runs past the context length', async () => {
    await expect(session.forward([])).rejects.toMatchObject({ code: 'FORWARD_EMPTY' });
    const r = await session.forward([1, 2, 3, 4, 5, 6]);
    await expect(session.forward([7, 8, 9], r.cache)).rejects.toMatchObject({ code: 'CONTEXT_OVERFLOW' });
    // The failed call left the cache untouched.
    expect(r.cache.length).toBe(6);
    await expect(session.forward([7, 8], r.cache)).resolves.toMatchObject({ rows: 2 });
  });

  it('refuses a cache made by another session', async () => {
    const other = await DecoderSession.open(dir);
    try {
      await expect(session.forward([1], other.newCache())).rejects.toMatchObject({ code: 'KV_CACHE_FOREIGN' });
    } finally {
      await other.release();
    }
  });

  it('refuses a thread count that is not 1..4 per core before making a session', async () => {
    const max = maxIntraOpThreads();
    expect(max.value).toBe(availableParallelism() * 4);
    for (const n of [10_000, max.value + 1, 0, 1.5, Number.NaN]) {
      const err = await DecoderSession.open(dir, { intraOpNumThreads: n }).catch((e: unknown) => e);
      expect(err, String(n)).toBeInstanceOf(EvalError);
      expect(err).toMatchObject({ code: 'SESSION_THREADS' });
      expect(String((err as Error).message)).toContain(`from 1 to ${max.value} (4 per core; this machine has ${availableParallelism()})`);
    }
    const ok = await DecoderSession.open(dir, { intraOpNumThreads: 2 });
    await ok.release();
  });

  it('cannot run after release', async () => {
    const s = await DecoderSession.open(dir);
    await s.release();
    await expect(s.forward([1])).rejects.toMatchObject({ code: 'SESSION_RELEASED' });
  });

  it('names the folder when it does not exist or has no genai_config.json', async () => {
    const missing = join(root, 'nope');
    await expect(DecoderSession.open(missing)).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND' });
    await expect(DecoderSession.open(missing)).rejects.toThrow(missing);
    const bare = join(root, 'bare');
    await writeTinyDecoder(bare);
    await rm(join(bare, 'genai_config.json'));
    const err = await DecoderSession.open(bare).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GenaiConfigError);
    expect(err).toMatchObject({ code: 'GENAI_CONFIG_MISSING' });
    expect(String((err as Error).message)).toContain(join(bare, 'genai_config.json'));
  });

  it('opens a bare model.onnx by reading the layout from its I/O names', async () => {
    const bare = join(root, 'bare2');
    const m = await writeTinyDecoder(bare, { seed: 3 });
    await rm(join(bare, 'genai_config.json'));
    const s = await DecoderSession.open(join(bare, 'model.onnx'));
    try {
      expect(s.layout).toMatchObject({ numLayers: 2, numKvHeads: 2, headSize: 16, vocabSize: 40 });
      const r = await s.forward(PROMPT);
      expect(maxAbsDiff(r.logits, await referenceLogits(join(bare, 'model.onnx'), m, PROMPT))).toBeLessThan(1e-5);
    } finally {
      await s.release();
    }
  });

  it('uses the I/O names genai_config.json gives', async () => {
    const custom = join(root, 'custom-names');
    const names = { pastKeyName: 'past.%d.k', pastValueName: 'past.%d.v', presentKeyName: 'kv_out.%d.k', presentValueName: 'kv_out.%d.v' };
    const m = await writeTinyDecoder(custom, names);
    const s = await DecoderSession.open(custom);
    try {
      const cache = s.newCache();
      await s.forward(PROMPT.slice(0, 5), cache);
      const r = await s.forward(PROMPT.slice(5), cache);
      const ref = await referenceLogits(join(custom, 'model.onnx'), m, PROMPT);
      expect(maxAbsDiff(r.logits, ref.subarray(5 * 40))).toBeLessThan(1e-5);
    } finally {
      await s.release();
    }
  });

  it('says which names are missing when genai_config.json does not match the graph', async () => {
    const wrong = join(root, 'wrong-names');
    const m = await writeTinyDecoder(wrong);
    m.genaiConfig.model.decoder.inputs = { ...(m.genaiConfig.model.decoder.inputs as object), past_key_names: 'past.%d.key' };
    await writeFile(join(wrong, 'genai_config.json'), JSON.stringify(m.genaiConfig));
    const err = (await DecoderSession.open(wrong).catch((e: unknown) => e)) as OnnxError;
    expect(err.code).toBe('DECODER_IO_MISMATCH');
    expect(err.message).toContain('past.0.key');
    expect(err.message).toContain('past_key_values.0.key');
  });

  it('rejects a genai_config.json without the decoder sizes', async () => {
    const broken = join(root, 'broken-config');
    await writeTinyDecoder(broken);
    await writeFile(join(broken, 'genai_config.json'), JSON.stringify({ model: { decoder: { filename: 'model.onnx' } } }));
    await expect(DecoderSession.open(broken)).rejects.toMatchObject({ code: 'GENAI_CONFIG_INVALID' });
  });
});
