// greedyGenerate: KV-cache greedy decoding against greedy decoding by full recomputation, stop rules, argmax.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DecoderSession } from '../../src/runtime/decoder-session.js';
import { argmax, greedyGenerate } from '../../src/runtime/greedy.js';
import { referenceLogits, writeTinyDecoder, type TinyDecoder } from '../helpers/runtime.js';

let root: string;
let model: TinyDecoder;
let session: DecoderSession;
const PROMPT = [1, 5, 9];
/** Greedy tokens by recomputing the whole sequence each step (no cache), through raw onnxruntime. */
let expected: number[];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'phi-forge-greedy-'));
  model = await writeTinyDecoder(root, { seed: 1, contextLength: 24 });
  session = await DecoderSession.open(root);
  const seq = [...PROMPT];
  expected = [];
  for (let i = 0; i < 12; i++) {
    const logits = await referenceLogits(join(root, 'model.onnx'), model, seq);
    const row = logits.subarray((seq.length - 1) * 40);
    let best = 0;
    for (let v = 1; v < 40; v++) if (row[v] > row[best]) best = v;
    expected.push(best);
    seq.push(best);
  }
});
afterAll(async () => {
  await session.release();
  await rm(root, { recursive: true, force: true });
});

describe('greedyGenerate', () => {
  it('reproduces greedy decoding by full recomputation, streaming each token', async () => {
    const seen: [number, number][] = [];
    const r = await greedyGenerate(session, PROMPT, { maxNewTokens: 12, onToken: (id, i) => void seen.push([id, i]) });
    expect(new Set(expected).size).toBeGreaterThan(3); // a path that varies, so order mistakes would show
    expect(r.tokens).toEqual(expected);
    expect(r.stopReason).toBe('max_new_tokens');
    expect(seen).toEqual(expected.map((id, i) => [id, i]));
    // The last token is not fed back: the cache holds the prompt and all but the last new token.
    expect(r.cache.length).toBe(PROMPT.length + 11);
    expect(r.prefillMs).toBeGreaterThanOrEqual(0);
    expect(r.decodeMs).toBeGreaterThanOrEqual(0);
  });

  it('stops after an end token and keeps it', async () => {
    // Make the 3rd generated token (the first occurrence of its id) the end token.
    const stopAt = expected.findIndex((t) => t === expected[2]);
    const r = await greedyGenerate(session, PROMPT, { maxNewTokens: 12, eosTokenIds: [99, expected[2]] });
    expect(r.tokens).toEqual(expected.slice(0, stopAt + 1));
    expect(r.stopReason).toBe('eos');
  });

  it('stops when the context is full', async () => {
    // context 24: 3 prompt positions + 21 fed tokens fill it; the 22nd token is chosen but never fed.
    const r = await greedyGenerate(session, PROMPT, { maxNewTokens: 100 });
    expect(r.stopReason).toBe('context_full');
    expect(r.tokens).toHaveLength(22);
    expect(r.cache.length).toBe(24);
    expect(r.tokens.slice(0, 12)).toEqual(expected);
  });

  it('returns nothing for maxNewTokens 0 and refuses an empty prompt', async () => {
    await expect(greedyGenerate(session, PROMPT, { maxNewTokens: 0 })).resolves.toMatchObject({ tokens: [] });
    await expect(greedyGenerate(session, [], { maxNewTokens: 3 })).rejects.toMatchObject({ code: 'PROMPT_EMPTY' });
  });

  it('refuses a maxNewTokens that is not a whole number ≥ 0 (NaN would decode until the context is full)', async () => {
    for (const maxNewTokens of [Number.NaN, -1, 2.5]) {
      await expect(greedyGenerate(session, PROMPT, { maxNewTokens }), String(maxNewTokens)).rejects.toMatchObject({ code: 'MAX_NEW_TOKENS' });
    }
  });

  it('awaits an async onToken before the next step', async () => {
    const order: string[] = [];
    await greedyGenerate(session, PROMPT, {
      maxNewTokens: 3,
      onToken: async (id, i) => {
        order.push(`start ${i}`);
        await new Promise((r) => setTimeout(r, 1));
        order.push(`end ${i}`);
      },
    });
    expect(order).toEqual(['start 0', 'end 0', 'start 1', 'end 1', 'start 2', 'end 2']);
  });
});

describe('argmax', () => {
  it('picks the largest value of the requested row, the first one on ties', () => {
    const m = Float32Array.from([0, 3, 3, -1, /* row 1 */ -5, -2, -2, -9]);
    expect(argmax(m, 4, 0)).toBe(1);
    expect(argmax(m, 4, 1)).toBe(1);
    expect(argmax(Float32Array.from([-Infinity, -1e30]), 2)).toBe(1);
  });

  it('fails on NaN logits', () => {
    expect(() => argmax(Float32Array.from([0, NaN, 1]), 3)).toThrow(/NaN/);
  });
});
