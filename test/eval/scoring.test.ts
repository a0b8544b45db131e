import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countScoredPositions, scoreBatches, scoreSequences } from '../../src/eval/scoring.js';
import { DecoderSession } from '../../src/runtime/decoder-session.js';
import { EvalError } from '../../src/util/errors.js';
import { writeTinyDecoder } from '../helpers/runtime.js';
import { nllOfRow, randomTokens } from '../helpers/eval-reference.js';

const VOCAB = 40;
let dir: string;
let session: DecoderSession;
let session16: DecoderSession;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'phi-forge-scoring-'));
  await writeTinyDecoder(join(dir, 'fp32'), { vocab: VOCAB, contextLength: 64, seed: 3 });
  await writeTinyDecoder(join(dir, 'fp16'), { vocab: VOCAB, contextLength: 64, seed: 3, dtype: 'float16' });
  session = await DecoderSession.open(join(dir, 'fp32'));
  session16 = await DecoderSession.open(join(dir, 'fp16'));
});
afterAll(async () => {
  await session?.release();
  await session16?.release();
  await rm(dir, { recursive: true, force: true });
});

/** NLL of every position 1..n−1 from one full forward of the whole sequence (no windows, no cache). */
async function directNlls(s: DecoderSession, seq: readonly number[]): Promise<number[]> {
  const out = await s.forward(seq);
  return seq.slice(1).map((t, p) => nllOfRow(out.logits, out.vocabSize, p, t));
}

describe('scoreSequences, one window per sequence', () => {
  it('gives the mean NLL over every position after the first, and ppl = exp(mean NLL)', async () => {
    const seqs = [randomTokens(20, VOCAB, 1), randomTokens(9, VOCAB, 2), randomTokens(33, VOCAB, 3)];
    const all: number[] = [];
    for (const s of seqs) all.push(...(await directNlls(session, s)));
    const mean = all.reduce((a, b) => a + b, 0) / all.length;
    const r = await scoreSequences(session, seqs, { maxLength: 64, stride: 32 });
    expect(r.tokensScored).toBe(19 + 8 + 32);
    expect(r.meanNll).toBeCloseTo(mean, 6);
    expect(r.ppl).toBeCloseTo(Math.exp(mean), 5);
    expect(r.sequences).toBe(3);
    // Each window feeds all but its last token.
    expect(r.tokensForwarded).toBe(19 + 8 + 32);
  });

  it('gives the same numbers when the window is fed in chunks through the KV cache', async () => {
    const seqs = [randomTokens(41, VOCAB, 4)];
    const whole = await scoreSequences(session, seqs, { maxLength: 64, stride: 32 });
    for (const chunkTokens of [1, 3, 16]) {
      const chunked = await scoreSequences(session, seqs, { maxLength: 64, stride: 32, chunkTokens });
      expect(chunked.tokensScored).toBe(whole.tokensScored);
      expect(chunked.meanNll).toBeCloseTo(whole.meanNll, 5);
    }
  });

  it('works on an fp16 model (logits converted to float32)', async () => {
    const seq = randomTokens(25, VOCAB, 5);
    const direct = await directNlls(session16, seq);
    const r = await scoreSequences(session16, [seq], { maxLength: 32, stride: 16 });
    expect(r.meanNll).toBeCloseTo(direct.reduce((a, b) => a + b, 0) / direct.length, 5);
  });
});

describe('sliding windows', () => {
  it('score each target with context from its window start only (transformers convention)', async () => {
    const seq = randomTokens(50, VOCAB, 6);
    const maxLength = 12;
    const stride = 5;
    // Independent: the transformers loop; each target t gets its own forward of tokens [begin, t).
    let sum = 0;
    let n = 0;
    let prevEnd = 0;
    for (let begin = 0; begin < seq.length; begin += stride) {
      const end = Math.min(begin + maxLength, seq.length);
      for (let t = Math.max(prevEnd, begin + 1); t < end; t++) {
        const out = await session.forward(seq.slice(begin, t), undefined, { logits: 'last' });
        sum += nllOfRow(out.logits, out.vocabSize, 0, seq[t]);
        n++;
      }
      prevEnd = end;
      if (end === seq.length) break;
    }
    expect(n).toBe(49);
    const r = await scoreSequences(session, [seq], { maxLength, stride });
    expect(r.tokensScored).toBe(49);
    expect(r.meanNll).toBeCloseTo(sum / n, 5);
    // Windows change the result (less context), so this test would notice windows being ignored.
    const one = await scoreSequences(session, [seq], { maxLength: 64, stride: 32 });
    expect(Math.abs(one.meanNll - r.meanNll)).toBeGreaterThan(1e-4);
  });

  it('yields batches covering every target once, in order, with per-row stats', async () => {
    const seqs = [randomTokens(30, VOCAB, 7), randomTokens(2, VOCAB, 8), randomTokens(1, VOCAB, 9)];
    const seen: string[] = [];
    for await (const b of scoreBatches(session, seqs, { maxLength: 10, stride: 4, chunkTokens: 4 })) {
      for (let r = 0; r < b.rows; r++) {
        seen.push(`${b.sequence}:${b.firstTarget + r}`);
        expect(b.targets[r]).toBe(seqs[b.sequence][b.firstTarget + r]);
        const row = b.rowOffset + r;
        expect(b.nll[r]).toBeCloseTo(nllOfRow(b.logits, b.vocab, row, b.targets[r]), 5);
        expect(b.lse[r]).toBeCloseTo(nllOfRow(b.logits, b.vocab, row, b.targets[r]) + b.logits[row * b.vocab + b.targets[r]], 5);
        let best = 0;
        for (let i = 1; i < b.vocab; i++) if (b.logits[row * b.vocab + i] > b.logits[row * b.vocab + best]) best = i;
        expect(b.argmax[r]).toBe(best);
      }
    }
    const want = [...Array.from({ length: 29 }, (_, i) => `0:${i + 1}`), '1:1'];
    expect(seen).toEqual(want);
    expect(countScoredPositions(seqs)).toBe(30);
  });
});

describe('errors', () => {
  it('refuses windows longer than the model context', async () => {
    await expect(scoreSequences(session, [randomTokens(10, VOCAB, 1)], { maxLength: 65, stride: 8 })).rejects.toMatchObject({
      code: 'WINDOW_EXCEEDS_CONTEXT',
    });
  });

  it('reports tokens outside the vocabulary', async () => {
    await expect(scoreSequences(session, [[1, 2, VOCAB]], { maxLength: 8, stride: 4 })).rejects.toMatchObject({ code: 'TOKEN_OUT_OF_RANGE', message: expect.stringMatching(/sequence 0, token 2/) });
    await expect(scoreSequences(session, [[1, VOCAB, 2]], { maxLength: 8, stride: 4 })).rejects.toBeInstanceOf(EvalError);
  });

  it('stops when aborted', async () => {
    const ac = new AbortController();
    ac.abort(new EvalError('ABORTED', 'stop'));
    await expect(scoreSequences(session, [randomTokens(10, VOCAB, 1)], { maxLength: 8, stride: 4, signal: ac.signal })).rejects.toThrow('stop');
  });
});
