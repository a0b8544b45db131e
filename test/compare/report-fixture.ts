// Test helper: a hand-made comparison (numbers in the range tiny models give) with an ok baseline, Pareto rows, a
// row failing its gates, a row without speed and a failed row whose message needs escaping in markdown and HTML.
import type { CompareReport, CompareRow } from '../../src/compare/compare-report.js';

const speed = (prefill: number, decode: number) => ({
  prefill_tokens_per_s: prefill,
  decode_tokens_per_s: decode,
  prefill_tokens: 64,
  decode_tokens: 32,
  runs: 3,
  warmup: 1,
  prefill_ms: [1, 1, 1],
  decode_ms: [1, 1, 1],
});

const metrics = (ppl: number, dppl: number, kl: number, top1: number) => ({
  tokens_scored: 504,
  ppl,
  mean_nll: Math.log(ppl),
  ppl_ref: 10,
  ppl_delta_pct: dppl,
  kl_mean: kl,
  kl_p99: kl * 3,
  top1_agreement: top1,
});

const gate = (dppl: number) => ({
  passed: dppl <= 25,
  rows: [{ metric: 'ppl_delta_pct' as const, kind: 'max' as const, measured: dppl, allowed: 25, ok: dppl <= 25 }],
});

export function fixtureRows(): CompareRow[] {
  return [
    { scheme: 'fp32', ok: true, quantization: { scheme: 'none' }, size_bytes: 5_180_000, bits_per_weight: 32, metrics: metrics(10, 0, 0, 1), speed: speed(25000, 1600), build_seconds: 1.7, gates: gate(0), pareto: true },
    { scheme: 'int8', ok: true, quantization: { scheme: 'int8' }, size_bytes: 1_510_000, bits_per_weight: 9, metrics: metrics(10.02, 0.2, 0.0005, 0.95), speed: speed(22000, 2300), build_seconds: 2.2, gates: gate(0.2), pareto: true },
    { scheme: 'int4-rtn', ok: true, quantization: { scheme: 'int4' }, size_bytes: 873_000, bits_per_weight: 5, metrics: metrics(11.05, 10.5, 0.07, 0.6), speed: speed(18000, 1700), build_seconds: 2.8, gates: gate(10.5), pareto: true },
    { scheme: 'int4-hqq', ok: true, quantization: { scheme: 'int4' }, size_bytes: 1_820_000, bits_per_weight: 9.47, metrics: metrics(10.3, 3, 0.04, 0.7), speed_error: 'kernel missing', build_seconds: 2.5, gates: gate(3), pareto: false },
    { scheme: 'ternary', ok: true, quantization: { scheme: 'ternary' }, size_bytes: 554_000, bits_per_weight: 3, metrics: metrics(82, 720, 0.9, 0.1), speed: speed(11000, 1900), build_seconds: 2, gates: gate(720), pareto: true },
    {
      scheme: 'int4-awq',
      ok: false,
      quantization: { scheme: 'int4', algo: 'awq' },
      failure: { stage: 'quantize', code: 'QUANT_ALGO_UNAVAILABLE', message: 'no awq | <script>alert(1)</script> here\nsecond line' },
    },
  ];
}

export function fixtureReport(rows = fixtureRows()): CompareReport {
  return {
    model: 'tiny-phi',
    recipe: 'recipes/tiny-phi.json',
    source: 'synth:phi-4-mini/tiny/seed0',
    target: 'cpu',
    data: '8 sequences of 64 tokens sampled from the unquantized model (seed 0)',
    reference: { ppl: 10, tokens_scored: 504 },
    gates: { ppl_delta_pct: 25 },
    speed: { runtime: 'onnxruntime-node 1.30.0 (CPU)', prefill_tokens: 64, decode_tokens: 32, runs: 3, warmup: 1 },
    rows,
    report_dir: '/tmp/x',
    files: { markdown: '/tmp/x/report.md', html: '/tmp/x/report.html', json: '/tmp/x/report.json' },
    seconds: 12,
  };
}
