import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluateModel, referenceFromPath, resolveWindows } from '../../src/eval/evaluate.js';
import { DecoderSession } from '../../src/runtime/decoder-session.js';
import { writeTinyDecoder } from '../helpers/runtime.js';
import { argmaxOf, klOfLogProbs, logSoftmax, percentileLinear, randomTokens } from '../helpers/eval-reference.js';

const VOCAB = 40;
let dir: string;
let refDir: string;
let fp16Dir: string;
let otherDir: string;
const seqs = [randomTokens(30, VOCAB, 11), randomTokens(17, VOCAB, 12), randomTokens(45, VOCAB, 13)];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'phi-forge-evaluate-'));
  refDir = join(dir, 'ref');
  fp16Dir = join(dir, 'fp16');
  otherDir = join(dir, 'other');
  await writeTinyDecoder(refDir, { vocab: VOCAB, contextLength: 64, seed: 3 });
  // The same weights rounded to fp16: a slightly different model, as a quantized one is.
  await writeTinyDecoder(fp16Dir, { vocab: VOCAB, contextLength: 64, seed: 3, dtype: 'float16' });
  // Unrelated weights: large KL, partial top-1 agreement.
  await writeTinyDecoder(otherDir, { vocab: VOCAB, contextLength: 64, seed: 4 });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Direct {
  kl: number[];
  sameTop: boolean[];
  nll: number[];
  nllRef: number[];
}

/** Per-position KL / top-1 / NLL from both models' full logits, one forward of each whole sequence. */
async function direct(refPath: string, qPath: string): Promise<Direct> {
  const r = await DecoderSession.open(refPath);
  const q = await DecoderSession.open(qPath);
  const d: Direct = { kl: [], sameTop: [], nll: [], nllRef: [] };
  try {
    for (const s of seqs) {
      const lr = await r.forward(s);
      const lq = await q.forward(s);
      for (let p = 0; p + 1 < s.length; p++) {
        const a = logSoftmax(lr.logits, VOCAB, p);
        const b = logSoftmax(lq.logits, VOCAB, p);
        d.kl.push(klOfLogProbs(a, b));
        d.sameTop.push(argmaxOf(a) === argmaxOf(b));
        d.nll.push(-b[s[p + 1]]);
        d.nllRef.push(-a[s[p + 1]]);
      }
    }
  } finally {
    await r.release();
    await q.release();
  }
  return d;
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('comparison with the reference model run alongside', () => {
  for (const [name, qDir] of [
    ['fp16 copy', () => fp16Dir],
    ['unrelated model', () => otherDir],
  ] as const) {
    it(`matches KL, top-1 and perplexities computed from both full logits (${name})`, async () => {
      const d = await direct(refDir, qDir());
      const rep = await evaluateModel(qDir(), seqs, { reference: { modelDir: refDir }, maxLength: 64, stride: 32 });
      expect(rep.tokens_scored).toBe(29 + 16 + 44);
      expect(rep.reference).toEqual({ kind: 'model', path: refDir });
      expect(rep.kl_mean).toBeCloseTo(mean(d.kl), 7);
      expect(rep.kl_p99).toBeCloseTo(percentileLinear(d.kl, 0.99), 7);
      expect(rep.kl_median).toBeCloseTo(percentileLinear(d.kl, 0.5), 7);
      expect(rep.kl_max).toBeCloseTo(Math.max(...d.kl), 7);
      expect(rep.top1_agreement).toBe(d.sameTop.filter(Boolean).length / d.sameTop.length);
      expect(rep.same_top_pct).toBeCloseTo(100 * rep.top1_agreement!, 12);
      const ppl = Math.exp(mean(d.nll));
      const pplRef = Math.exp(mean(d.nllRef));
      expect(rep.ppl).toBeCloseTo(ppl, 5);
      expect(rep.ppl_ref).toBeCloseTo(pplRef, 5);
      expect(rep.ppl_delta_pct).toBeCloseTo((100 * (ppl - pplRef)) / pplRef, 4);
      if (name === 'unrelated model') {
        expect(rep.kl_mean).toBeGreaterThan(0.05);
        expect(rep.top1_agreement).toBeLessThan(0.9);
      } else {
        expect(rep.kl_mean).toBeLessThan(1e-3);
      }
    });
  }
});

describe('saved reference files', () => {
  it('compare a model later as the live reference does (full-u16: KL within 2e-4, exact top-1)', async () => {
    const file = join(dir, 'ref-full.bin');
    const saved = await evaluateModel(refDir, seqs, { saveReference: { file }, maxLength: 16, stride: 8 });
    expect(saved.saved_reference).toMatchObject({ file, encoding: 'full-u16', positions: 89 });
    const live = await evaluateModel(otherDir, seqs, { reference: { modelDir: refDir }, maxLength: 16, stride: 8 });
    // Windows come from the file when not given.
    const fromFile = await evaluateModel(otherDir, seqs, { reference: await referenceFromPath(file) });
    expect(fromFile.max_length).toBe(16);
    expect(fromFile.stride).toBe(8);
    expect(fromFile.reference).toMatchObject({ kind: 'file', encoding: 'full-u16' });
    expect(fromFile.top1_agreement).toBe(live.top1_agreement);
    expect(Math.abs(fromFile.kl_mean! - live.kl_mean!)).toBeLessThan(2e-4);
    expect(Math.abs(fromFile.kl_p99! - live.kl_p99!)).toBeLessThan(5e-4);
    expect(fromFile.ppl_ref).toBeCloseTo(live.ppl_ref!, 4);
    expect(fromFile.ppl).toBe(live.ppl);
    // The reference's own perplexity is what the reference model scored.
    expect(fromFile.ppl_ref).toBeCloseTo(saved.ppl, 4);
  });

  it('give KL ≈ 0, full agreement and no perplexity change for the reference model itself', async () => {
    const file = join(dir, 'ref-self.bin');
    await evaluateModel(refDir, seqs, { saveReference: { file }, maxLength: 32, stride: 16 });
    const rep = await evaluateModel(refDir, seqs, { reference: { file } });
    expect(rep.kl_mean).toBeLessThan(1e-7);
    expect(rep.top1_agreement).toBe(1);
    expect(Math.abs(rep.ppl_delta_pct!)).toBeLessThan(1e-4);
  });

  it('top-k: KL is a lower bound of the exact KL, close to it with k large enough', async () => {
    const file8 = join(dir, 'ref-top8.bin');
    const file40 = join(dir, 'ref-top40.bin');
    await evaluateModel(refDir, seqs, { saveReference: { file: file8, encoding: 'top-k', topK: 8 }, maxLength: 64, stride: 32 });
    await evaluateModel(refDir, seqs, { saveReference: { file: file40, encoding: 'top-k', topK: 40 }, maxLength: 64, stride: 32 });
    const d = await direct(refDir, otherDir);
    const r8 = await evaluateModel(otherDir, seqs, { reference: { file: file8 } });
    const r40 = await evaluateModel(otherDir, seqs, { reference: { file: file40 } });
    expect(r8.reference).toMatchObject({ encoding: 'top-k', top_k: 8 });
    expect(r8.kl_mean!).toBeLessThanOrEqual(mean(d.kl) + 1e-6);
    expect(r8.kl_mean!).toBeGreaterThan(0.5 * mean(d.kl));
    expect(r40.kl_mean).toBeCloseTo(mean(d.kl), 5);
    expect(r8.top1_agreement).toBe(d.sameTop.filter(Boolean).length / d.sameTop.length);
  });

  it('refuse other tokens and other windows with a clear EvalError', async () => {
    const file = join(dir, 'ref-mismatch.bin');
    await evaluateModel(refDir, seqs, { saveReference: { file }, maxLength: 16, stride: 8 });
    const other = [seqs[0], seqs[1], randomTokens(45, VOCAB, 99)];
    await expect(evaluateModel(fp16Dir, other, { reference: { file } })).rejects.toMatchObject({
      code: 'REFERENCE_TOKENS_MISMATCH',
      message: expect.stringContaining('save a new reference'),
    });
    await expect(evaluateModel(fp16Dir, seqs, { reference: { file }, maxLength: 32, stride: 8 })).rejects.toMatchObject({
      code: 'REFERENCE_WINDOWS_MISMATCH',
    });
  });
});

describe('defaults and inputs', () => {
  it('resolves windows: given, else the reference file\'s, else context length and half of it', () => {
    expect(resolveWindows({}, 512)).toEqual({ maxLength: 512, stride: 256 });
    expect(resolveWindows({}, 131072)).toEqual({ maxLength: 4096, stride: 2048 });
    expect(resolveWindows({}, 512, { maxLength: 64, stride: 16 })).toEqual({ maxLength: 64, stride: 16 });
    expect(resolveWindows({ maxLength: 100 }, 512, { maxLength: 64, stride: 16 })).toEqual({ maxLength: 100, stride: 50 });
    expect(resolveWindows({ stride: 10 }, 512)).toEqual({ maxLength: 512, stride: 10 });
    expect(() => resolveWindows({ maxLength: 8, stride: 8 }, 512)).toThrow(/stride/);
  });

  it('tells a reference folder from a reference file', async () => {
    expect(await referenceFromPath(refDir)).toEqual({ modelDir: refDir });
    expect(await referenceFromPath(join(dir, 'x.bin'))).toEqual({ file: join(dir, 'x.bin') });
  });

  it('refuses input with nothing to score', async () => {
    await expect(evaluateModel(refDir, [[1]])).rejects.toMatchObject({ code: 'NOTHING_TO_SCORE' });
  });
});
