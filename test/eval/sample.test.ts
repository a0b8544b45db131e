import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleSequences } from '../../src/eval/sample.js';
import { DecoderSession } from '../../src/runtime/decoder-session.js';
import { greedyGenerate } from '../../src/runtime/greedy.js';
import { Rng } from '../../src/util/random.js';
import { writeTinyDecoder } from '../helpers/runtime.js';
import { logSoftmax } from '../helpers/eval-reference.js';

const VOCAB = 40;
let dir: string;
let session: DecoderSession;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'phi-forge-sample-'));
  await writeTinyDecoder(dir, { vocab: VOCAB, contextLength: 64, seed: 5 });
  session = await DecoderSession.open(dir);
});
afterAll(async () => {
  await session?.release();
  await rm(dir, { recursive: true, force: true });
});

describe('sampleSequences', () => {
  it('is reproducible per seed and differs across seeds', async () => {
    const a = await sampleSequences(session, { sequences: 3, length: 20, seed: 7, bos: 1 });
    const b = await sampleSequences(session, { sequences: 3, length: 20, seed: 7, bos: 1 });
    const c = await sampleSequences(session, { sequences: 3, length: 20, seed: 8, bos: 1 });
    expect(a.map((s) => Array.from(s))).toEqual(b.map((s) => Array.from(s)));
    expect(a.map((s) => Array.from(s))).not.toEqual(c.map((s) => Array.from(s)));
    for (const s of a) {
      expect(s).toHaveLength(20);
      expect(s[0]).toBe(1);
      for (const t of s) expect(t >= 0 && t < VOCAB).toBe(true);
    }
    // Sequences of one call are different streams.
    expect(Array.from(a[0])).not.toEqual(Array.from(a[1]));
  });

  it('draws each token by inverse CDF of the model\'s distribution at that prefix (replayed without the KV cache)', async () => {
    const seed = 21;
    const seqs = await sampleSequences(session, { sequences: 2, length: 24, seed, bos: 1 });
    for (let s = 0; s < seqs.length; s++) {
      const seq = Array.from(seqs[s]);
      const rng = new Rng(seed, s);
      const out = await session.forward(seq.slice(0, -1));
      for (let p = 0; p + 1 < seq.length; p++) {
        const probs = logSoftmax(out.logits, VOCAB, p).map(Math.exp);
        const u = rng.uniform();
        const tok = seq[p + 1];
        const below = probs.slice(0, tok).reduce((a, b) => a + b, 0);
        expect(below).toBeLessThanOrEqual(u + 1e-5);
        expect(below + probs[tok]).toBeGreaterThanOrEqual(u - 1e-5);
      }
    }
  });

  it('at a very low temperature follows greedy decoding', async () => {
    const [s] = await sampleSequences(session, { sequences: 1, length: 12, seed: 3, bos: 1, temperature: 1e-4 });
    const g = await greedyGenerate(session, [1], { maxNewTokens: 11 });
    expect(Array.from(s.subarray(1))).toEqual(g.tokens);
  });

  it('refuses sequences longer than the context and bad options', async () => {
    await expect(sampleSequences(session, { sequences: 1, length: 65, seed: 0, bos: 1 })).rejects.toMatchObject({ code: 'SAMPLE_TOO_LONG' });
    await expect(sampleSequences(session, { sequences: 0, length: 8, seed: 0, bos: 1 })).rejects.toMatchObject({ code: 'SAMPLE_SEQUENCES' });
    await expect(sampleSequences(session, { sequences: 1, length: 1, seed: 0, bos: 1 })).rejects.toMatchObject({ code: 'SAMPLE_LENGTH' });
  });
});
