// End to end on the embedded default (tiny-phi, builds in seconds): compare builds each scheme through the cached
// stages, scores all against one reference, measures size / bits / speed, writes the reports — and the CLI around it.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compare, type CompareReport } from '../../pipelines/compare.js';
import { chromiumPath } from './chromium.js';
import { expectCleanPage, renderReport } from './chromium-checks.js';
import { folderBytes, matrixWeights } from './helpers.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const SCHEMES = 'fp32,int4-rtn,int4-asym,int4-hqq,int4-awq,int8,ternary';
const speed = { runs: 2, warmup: 1, prefillTokens: 16, decodeTokens: 8 };
let work: string;
let art: string;
let report: CompareReport;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'phi-forge-compare-e2e-'));
  art = join(work, 'artifacts');
  report = await compare({ spec: 'tiny-phi', schemes: SCHEMES, artifacts: art, report: join(work, 'report'), quiet: true, speed });
}, 180_000);
afterAll(async () => rm(work, { recursive: true, force: true }));

const row = (name: string) => report.rows.find((r) => r.scheme === name)!;

describe('compare tiny-phi', () => {
  it('one row per scheme in order, every scheme built (the quantizer has every algorithm of the vocabulary)', () => {
    expect(report.rows.map((r) => r.scheme)).toEqual(SCHEMES.split(','));
    expect(report).toMatchObject({ model: 'tiny-phi', target: 'cpu', source: 'synth:phi-4-mini/tiny/seed0' });
    for (const r of report.rows) expect(r.ok, `${r.scheme}: ${r.failure?.message}`).toBe(true);
  });

  it('source, convert and reference are built once and shared; each scheme quantizes, validates and packages its own', () => {
    const ok = report.rows.filter((r) => r.ok);
    const dirOf = (r: (typeof ok)[number], stage: string) => r.stages!.find((s) => s.stage === stage)?.dir;
    for (const stage of ['source', 'convert', 'reference']) {
      expect(new Set(ok.map((r) => dirOf(r, stage))).size, stage).toBe(1);
      // Only the first variant ran it; the others found it in the cache.
      expect(ok.map((r) => r.stages!.find((s) => s.stage === stage)!.cached)).toEqual(ok.map((_, i) => i > 0));
    }
    const quantized = ok.filter((r) => r.scheme !== 'fp32');
    expect(new Set(quantized.map((r) => dirOf(r, 'quantize'))).size).toBe(quantized.length);
    expect(new Set(ok.map((r) => dirOf(r, 'validate'))).size).toBe(ok.length);
    expect(dirOf(row('fp32'), 'quantize')).toBeUndefined();
    // Build time counts every stage's own run time, also where the stage was cached in this comparison.
    for (const r of ok) {
      expect(r.build_seconds).toBeCloseTo(r.stages!.reduce((n, s) => n + s.seconds, 0), 6);
      expect(r.stages!.every((s) => s.seconds > 0)).toBe(true);
    }
  });

  it('every scheme is scored on the same reference; the baseline matches it exactly', () => {
    const ok = report.rows.filter((r) => r.ok);
    expect(new Set(ok.map((r) => r.metrics!.ppl_ref)).size).toBe(1);
    expect(new Set(ok.map((r) => r.metrics!.tokens_scored)).size).toBe(1);
    expect(report.reference).toEqual({ ppl: ok[0].metrics!.ppl_ref, tokens_scored: ok[0].metrics!.tokens_scored });
    expect(report.data).toBe('4 sequences of 32 tokens sampled from the unquantized model (seed 0)');
    const base = row('fp32').metrics!;
    expect(Math.abs(base.ppl_delta_pct!)).toBeLessThan(1e-3);
    expect(base.kl_mean!).toBeLessThan(1e-6);
    expect(base.top1_agreement).toBe(1);
    // Quantization moves the model away from the reference, more so with fewer bits.
    expect(row('int8').metrics!.kl_mean!).toBeLessThan(row('int4-rtn').metrics!.kl_mean!);
    expect(row('int4-rtn').metrics!.kl_mean!).toBeLessThan(row('ternary').metrics!.kl_mean!);
  });

  it('bits per weight: 32 for fp32 over every checkpoint matrix; 4 + 32/32 for int4, +4/32 with zero points; 8 + 1 for int8', async () => {
    const checkpoint = join(row('fp32').stages!.find((s) => s.stage === 'source')!.dir, 'model.safetensors');
    const weights = await matrixWeights(checkpoint);
    expect(row('fp32')).toMatchObject({ weights, bits_per_weight: 32 });
    // tiny-phi's dimensions are multiples of 32 and its embedding is tied to the lm_head: no padding, stored once.
    expect(row('int4-rtn')).toMatchObject({ weights, bits_per_weight: 5 });
    expect(row('int4-asym')).toMatchObject({ weights, bits_per_weight: 5.125 });
    expect(row('int8')).toMatchObject({ weights, bits_per_weight: 9 });
    expect(row('ternary').bits_per_weight!).toBeLessThan(5);
    expect(row('int4-hqq').bits_per_weight!).toBeGreaterThan(5);
  });

  it('publishes each variant under packages/<scheme>; sizes are the files on disk', async () => {
    for (const r of report.rows.filter((x) => x.ok)) {
      expect(r.package).toBe(join(work, 'report', 'packages', r.scheme, 'tiny-phi-cpu'));
      expect(existsSync(join(r.package!, 'model.onnx'))).toBe(true);
      // manifest.json lists the others; the size counts the files it lists.
      expect(r.size_bytes).toBe((await folderBytes(r.package!)) - (await readFile(join(r.package!, 'manifest.json'))).byteLength);
    }
    expect(row('ternary').size_bytes!).toBeLessThan(row('int4-rtn').size_bytes!);
    expect(row('int4-rtn').size_bytes!).toBeLessThan(row('int8').size_bytes!);
    expect(row('int8').size_bytes!).toBeLessThan(row('fp32').size_bytes!);
  });

  it("reports the recipe's gates without enforcing them: a failing variant still has its row and package", () => {
    expect(report.gates).toEqual({ ppl_delta_pct: 25, kl_mean: 0.5 });
    for (const r of report.rows.filter((x) => x.ok)) {
      expect(r.gates!.rows.map((g) => g.metric)).toEqual(['ppl_delta_pct', 'kl_mean']);
      for (const g of r.gates!.rows) {
        expect(g.measured).toBe(r.metrics![g.metric]);
        expect(g.ok).toBe(g.measured! <= g.allowed);
      }
    }
    expect(row('fp32').gates!.passed).toBe(true);
    // Ternary on a tiny random model is far off the reference.
    expect(row('ternary').gates!.passed).toBe(false);
    expect(existsSync(join(row('ternary').package!, 'model.onnx'))).toBe(true);
  });

  it('measures prefill and decode speed for every built scheme', () => {
    expect(report.speed).toMatchObject({ prefill_tokens: 16, decode_tokens: 8, runs: 2, warmup: 1 });
    expect(report.speed!.runtime).toMatch(/^onnxruntime-node 1\.\d+\.\d+ \(CPU\)$/);
    for (const r of report.rows.filter((x) => x.ok)) {
      expect(r.speed!.prefill_ms).toHaveLength(2);
      expect(r.speed!.prefill_tokens_per_s).toBeGreaterThan(0);
      expect(r.speed!.decode_tokens_per_s).toBeGreaterThan(0);
    }
  });

  it('marks the Pareto front of Δppl against bits: the fewest bits is on it, and no front row is beaten', () => {
    const ok = report.rows.filter((r) => r.ok);
    const fewest = ok.reduce((a, b) => (b.bits_per_weight! < a.bits_per_weight! ? b : a));
    expect(fewest.pareto).toBe(true);
    for (const r of ok.filter((x) => x.pareto)) {
      const beaten = ok.some(
        (o) =>
          o !== r &&
          o.bits_per_weight! <= r.bits_per_weight! &&
          o.metrics!.ppl_delta_pct! <= r.metrics!.ppl_delta_pct! &&
          (o.bits_per_weight! < r.bits_per_weight! || o.metrics!.ppl_delta_pct! < r.metrics!.ppl_delta_pct!),
      );
      expect(beaten, r.scheme).toBe(false);
    }
  });

  it('writes report.md, report.html and report.json into the report folder', async () => {
    const md = await readFile(report.files.markdown, 'utf8');
    for (const s of SCHEMES.split(',')) expect(md).toMatch(new RegExp(`^\\| ${s}( ★)? \\|`, 'm'));
    expect(JSON.parse(await readFile(report.files.json, 'utf8'))).toEqual(JSON.parse(JSON.stringify(report)));
    expect(await readFile(report.files.html, 'utf8')).toMatch(/^<!doctype html>/);
  });

  it.runIf(chromiumPath())('report.html renders in headless Chromium with both plots, every row and no console error', async () => {
    const { visit, page } = await renderReport(await readFile(report.files.html, 'utf8'), join(work, 'render.html'));
    expectCleanPage(visit);
    const ok = report.rows.filter((r) => r.ok).map((r) => r.scheme);
    expect(page.plots['plot-quality'].points).toEqual(ok);
    expect(page.plots['plot-quality'].pareto).toEqual(report.rows.filter((r) => r.pareto).map((r) => r.scheme));
    expect(page.plots['plot-quality'].outside).toEqual([]);
    expect(page.plots['plot-speed'].points).toEqual(ok);
    expect(page.plots['plot-speed'].pareto.length).toBeGreaterThan(0);
    expect(page.rows.map((r) => r.scheme)).toEqual(SCHEMES.split(','));
  }, 60_000);

  it('a second comparison reuses every stage and reproduces the quality numbers', async () => {
    const again = await compare({ spec: 'tiny-phi', schemes: 'fp32,int4-rtn,ternary', artifacts: art, report: join(work, 'again'), quiet: true, speed: false });
    for (const r of again.rows) {
      expect(r.stages!.every((s) => s.cached), r.scheme).toBe(true);
      expect(r.metrics).toEqual(row(r.scheme).metrics);
      expect(r.bits_per_weight).toBe(row(r.scheme).bits_per_weight);
      expect(r.speed).toBeUndefined();
    }
    expect(again.speed).toBeUndefined();
  }, 60_000);

  it('--data: a tokens file replaces the recipe data for every variant', async () => {
    const tokens = join(work, 'tokens.json');
    await writeFile(tokens, JSON.stringify([[1, 5, 9, 13, 17, 21, 25, 29, 33, 37], [1, 2, 3, 4, 5, 6]]));
    const r = await compare({ spec: 'tiny-phi', schemes: 'fp32,int8', data: tokens, artifacts: art, report: join(work, 'data'), quiet: true, speed: false });
    expect(r.data).toBe(`tokens ${tokens}`);
    // Mean NLL is over every position after the first of each sequence.
    expect(r.rows.map((x) => x.metrics!.tokens_scored)).toEqual([14, 14]);
    expect(r.rows[0].stages!.find((s) => s.stage === 'reference')!.cached).toBe(false);
    await expect(compare({ spec: 'tiny-phi', schemes: 'int8', data: join(work, 'nope.json'), artifacts: art, quiet: true })).rejects.toMatchObject({
      code: 'COMPARE_DATA_MISSING',
    });
  }, 60_000);
});

describe('pnpm pipeline compare (CLI)', () => {
  const cli = (args: string[]) => execa('pnpm', ['pipeline', 'compare', ...args], { cwd: ROOT, reject: false, env: { CI: 'true' } });

  it('--json prints one document; the human form prints the table and where the reports are', async () => {
    const r = await cli(['tiny-phi', '--schemes', 'int8,fp32', '--artifacts', art, '--report', join(work, 'cli'), '--runs', '1', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as CompareReport;
    expect(doc.rows.map((x) => [x.scheme, x.ok])).toEqual([['int8', true], ['fp32', true]]);
    expect(doc.speed?.runs).toBe(1);
    expect(r.stderr).toMatch(/compare \[1\/2\] int8/);

    const h = await cli(['tiny-phi', '--schemes', 'int8', '--artifacts', art, '--report', join(work, 'cli-h'), '--runs', '0']);
    expect(h.exitCode, h.stderr).toBe(0);
    expect(h.stdout).toMatch(/^\| scheme \| size \| bits\/weight \|/);
    expect(h.stdout).toMatch(/^\| int8 /m);
    expect(h.stdout).toContain(join(work, 'cli-h', 'report.html'));
  }, 120_000);

  it('fp16 on cpu: both rows built (the package selects no provider, as a cpu package must)', async () => {
    const r = await cli(['tiny-phi', '--schemes', 'fp32,fp16', '--artifacts', art, '--report', join(work, 'fp16'), '--runs', '0', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as CompareReport;
    expect(doc.rows.map((x) => [x.scheme, x.ok, x.failure?.message])).toEqual([['fp32', true, undefined], ['fp16', true, undefined]]);
  }, 120_000);

  it('bad scheme names are usage errors (exit 2); nothing built is exit 1', async () => {
    const bad = await cli(['tiny-phi', '--schemes', 'int4-rtn,int3', '--artifacts', art]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/scheme "int3": unknown scheme int3/);
    const none = await cli(['tiny-phi', '--schemes', 'ternary-gptq', '--artifacts', art, '--report', join(work, 'none'), '--runs', '0', '--json']);
    expect(none.exitCode).toBe(1);
    const doc = JSON.parse(none.stdout) as CompareReport;
    expect(doc.rows[0]).toMatchObject({ scheme: 'ternary-gptq', ok: false, failure: { stage: 'quantize' } });
  }, 120_000);
});
