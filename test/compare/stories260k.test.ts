// The stories260K comparison (a real trained model, small and fast): every scheme of the issue through compare on
// test/recipes/stories260k.json, checked against counts from the llama2.c header, and its report rendered in Chromium.
// The markdown table is printed for the closing note of the issue.
import { readFile } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compare, type CompareReport } from '../../pipelines/compare.js';
import { markdownTable } from '../../src/compare/report-md.js';
import { sharedFixture } from '../helpers/runtime.js';
import { chromiumPath } from './chromium.js';
import { expectCleanPage, renderReport } from './chromium-checks.js';

const RECIPE = fileURLToPath(new URL('../recipes/stories260k.json', import.meta.url));
const SCHEMES = ['int4-rtn', 'int4-hqq', 'int4-gptq', 'int4-awq', 'int8', 'ternary', 'fp32'];
// Throws under CI=true when the fixture is missing; on a developer machine without it the tests are skipped.
const bin = sharedFixture('stories260K/stories260K.bin');
let work: string;
let report: CompareReport;

beforeAll(async () => {
  if (!bin) return;
  work = await mkdtemp(join(tmpdir(), 'phi-forge-compare-stories-'));
  report = await compare({
    spec: RECIPE,
    schemes: SCHEMES,
    artifacts: join(work, 'artifacts'),
    report: join(work, 'report'),
    quiet: true,
    speed: { runs: 3, warmup: 1 },
  });
  process.stdout.write(`\nstories260K comparison:\n\n${markdownTable(report)}\n\n`);
}, 300_000);
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const row = (name: string) => report.rows.find((r) => r.scheme === name)!;

describe.runIf(bin)('compare stories260K', () => {
  it('builds every scheme the quantizer has; the baseline reproduces the reference', () => {
    expect(report.rows.map((r) => r.scheme)).toEqual(SCHEMES);
    for (const s of ['int4-rtn', 'int4-hqq', 'int8', 'ternary', 'fp32']) expect(row(s).ok, `${s}: ${row(s).failure?.message}`).toBe(true);
    // GPTQ needs calibration data from the quantize stage: either it builds or the row says why it did not.
    const gptq = row('int4-gptq');
    expect(gptq.ok || (gptq.failure?.message ?? '').length > 0).toBe(true);
    expect(report.data).toBe('8 sequences of 64 tokens sampled from the unquantized model (seed 0)');
    const base = row('fp32').metrics!;
    expect(base.top1_agreement).toBe(1);
    expect(base.kl_mean!).toBeLessThan(1e-6);
    expect(base.tokens_scored).toBe(8 * 63);
  });

  it('bits per weight over the weights the llama2.c header implies (tied classifier counted once)', async () => {
    const buf = await readFile(bin!);
    const [dim, hidden, layers, heads, kvHeads, vocab] = Array.from(new Int32Array(buf.buffer, buf.byteOffset, 7));
    const kvDim = (kvHeads * dim) / heads;
    const perLayer = 2 * dim * dim + 2 * kvDim * dim + 3 * hidden * dim;
    const weights = layers * perLayer + Math.abs(vocab) * dim;
    expect(row('fp32')).toMatchObject({ weights, bits_per_weight: 32 });
    expect(row('int8').weights).toBe(weights);
    expect(row('int4-rtn').weights).toBe(weights);
    // hidden 172 is not a multiple of 32: the padded last block of each w2 column is storage without weights.
    expect(row('int4-rtn').bits_per_weight!).toBeGreaterThan(5);
    expect(row('int8').bits_per_weight!).toBeGreaterThan(9);
    expect(row('ternary').bits_per_weight!).toBeLessThan(row('int4-rtn').bits_per_weight!);
    expect(row('int8').metrics!.kl_mean!).toBeLessThan(row('int4-rtn').metrics!.kl_mean!);
  });

  it('quality loss is in the range an independent reference gives for this model', () => {
    // A numpy llama2.c forward of stories260K (matching reference.json to 2e-5) with the weights fake-quantized the
    // way onnxruntime's default quantizer does (symmetric, blocks of 32 along K, embedding too), scored on 8 other
    // sampled sequences of 64 tokens, gave KL mean 0.0245 (int8) and 2.50 (int4), Δppl +2.2% and +1124%: this small
    // model is that sensitive. The bounds leave room for the other samples and int8 activations (accuracy_level 4),
    // and catch a quantizer that does nothing or destroys the model.
    expect(row('int8').metrics!.kl_mean!).toBeGreaterThan(0.005);
    expect(row('int8').metrics!.kl_mean!).toBeLessThan(0.1);
    expect(row('int4-rtn').metrics!.kl_mean!).toBeGreaterThan(1);
    expect(row('int4-rtn').metrics!.kl_mean!).toBeLessThan(5);
  });

  it.runIf(chromiumPath())('its report.html renders with both plots, every row and no console error', async () => {
    const { visit, page } = await renderReport(await readFile(report.files.html, 'utf8'), join(work, 'render.html'));
    expectCleanPage(visit);
    expect(page.plots['plot-quality'].points).toEqual(report.rows.filter((r) => r.ok).map((r) => r.scheme));
    expect(page.plots['plot-quality'].pareto.length).toBeGreaterThan(0);
    expect(page.rows.map((r) => r.scheme)).toEqual(SCHEMES);
  }, 60_000);
});
