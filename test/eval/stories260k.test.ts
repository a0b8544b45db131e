// eval on the real stories260K model: teacher-forced NLL against llama2.c's own logits, and an int4 package's KL /
// top-1 / perplexity change against a direct computation from both models' full logits.
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluateModel } from '../../src/eval/evaluate.js';
import { sampleSequences } from '../../src/eval/sample.js';
import { DecoderSession } from '../../src/runtime/decoder-session.js';
import { argmaxOf, klOfLogProbs, logSoftmax, nllOfRow, percentileLinear } from '../helpers/eval-reference.js';
import { buildStoriesFp32, quantizeFolder, STORIES_BIN, STORIES_REFERENCE, type StoriesReference } from '../helpers/stories.js';

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe.skipIf(!STORIES_BIN || !STORIES_REFERENCE)('stories260K', () => {
  let root: string;
  let fp32: string;
  let int4: string;
  let ref: StoriesReference;
  let seqs: Int32Array[];

  beforeAll(async () => {
    ref = JSON.parse(await readFile(STORIES_REFERENCE!, 'utf8')) as StoriesReference;
    root = await mkdtemp(join(tmpdir(), 'phi-forge-eval-stories-'));
    fp32 = await buildStoriesFp32(root);
    int4 = await quantizeFolder(fp32, join(root, 'int4'));
    const s = await DecoderSession.open(fp32);
    try {
      // Validation data as a recipe without data gets it: sampled from the fp32 model.
      seqs = await sampleSequences(s, { sequences: 4, length: 96, seed: 1, bos: 1 });
    } finally {
      await s.release();
    }
    seqs.push(Int32Array.from([1, ...ref.greedy_tokens]));
  });
  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('fp32: eval of [BOS, greedy 0..7] equals the mean NLL from llama2.c\'s reference logits (1e-4)', async () => {
    const tokens = [1, ...ref.greedy_tokens.slice(0, 8)];
    // Independent: log-softmax of llama2.c's logits at positions 0..7, NLL of the next greedy token.
    const nlls = ref.logits.map((row, p) => nllOfRow(row, 512, 0, ref.greedy_tokens[p]));
    const expected = mean(nlls);
    const rep = await evaluateModel(fp32, [tokens]);
    expect(rep.tokens_scored).toBe(8);
    expect(Math.abs(rep.mean_nll - expected)).toBeLessThan(1e-4);
    expect(Math.abs(rep.ppl - Math.exp(expected)) / Math.exp(expected)).toBeLessThan(1e-4);
  });

  it('int4 package: KL, top-1 and perplexities equal a direct computation from both models\' full logits', async () => {
    const r = await DecoderSession.open(fp32);
    const q = await DecoderSession.open(int4);
    const kl: number[] = [];
    const same: boolean[] = [];
    const nll: number[] = [];
    const nllRef: number[] = [];
    try {
      for (const s of seqs) {
        const a = await r.forward(s);
        const b = await q.forward(s);
        for (let p = 0; p + 1 < s.length; p++) {
          const lp = logSoftmax(a.logits, 512, p);
          const lq = logSoftmax(b.logits, 512, p);
          kl.push(klOfLogProbs(lp, lq));
          same.push(argmaxOf(lp) === argmaxOf(lq));
          nll.push(-lq[s[p + 1]]);
          nllRef.push(-lp[s[p + 1]]);
        }
      }
    } finally {
      await r.release();
      await q.release();
    }
    const rep = await evaluateModel(int4, seqs, { reference: { modelDir: fp32 } });
    expect(rep.tokens_scored).toBe(kl.length);
    expect(rep.kl_mean!).toBeGreaterThan(1e-4); // int4 really changed the model
    expect(Math.abs(rep.kl_mean! - mean(kl)) / mean(kl)).toBeLessThan(1e-3);
    expect(Math.abs(rep.kl_p99! - percentileLinear(kl, 0.99)) / percentileLinear(kl, 0.99)).toBeLessThan(1e-3);
    expect(rep.top1_agreement).toBeCloseTo(same.filter(Boolean).length / same.length, 2);
    const ppl = Math.exp(mean(nll));
    const pplRef = Math.exp(mean(nllRef));
    expect(rep.ppl_ref!).toBeCloseTo(pplRef, 3);
    expect(rep.ppl_delta_pct!).toBeCloseTo((100 * (ppl - pplRef)) / pplRef, 2);

    // The same through a saved reference file (what a build does): full-u16 records, KL within 2e-4.
    const file = join(root, 'fp32.ref');
    await evaluateModel(fp32, seqs, { saveReference: { file } });
    expect((await stat(file)).size).toBeGreaterThan(kl.length * 1024);
    const fromFile = await evaluateModel(int4, seqs, { reference: { file } });
    expect(fromFile.reference).toMatchObject({ kind: 'file', encoding: 'full-u16' });
    expect(Math.abs(fromFile.kl_mean! - mean(kl))).toBeLessThan(2e-4);
    expect(fromFile.top1_agreement).toBe(rep.top1_agreement);
    expect(fromFile.ppl_delta_pct!).toBeCloseTo(rep.ppl_delta_pct!, 2);
  });
});
