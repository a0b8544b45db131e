// AWQ: the scale formulas by hand, the search never worse than RTN and much better on outlier-channel activations,
// clipping, and the pass — the rescaled float graph computes what the original did (onnxruntime, 1e-5), norms absorb
// 1/s, other producers get a Mul, a tied lm_head keeps its tie, a shared weight is copied — and end to end AWQ beats
// RTN in output error on held-out inputs.
import { describe, expect, it } from 'vitest';
import { DataType } from '../../src/onnx/dtype.js';
import { Graph, Model, attr, tensorType } from '../../src/onnx/ir.js';
import { Tensor } from '../../src/onnx/tensor.js';
import { awqDuoScales, awqScales, awqSearch } from '../../src/quant/algorithms/awq.js';
import { applyClip, awqClip, blockGrams } from '../../src/quant/algorithms/awq-clip.js';
import { runPasses, step } from '../../src/quant/passes/pass.js';
import { awqScalePass, type AwqScaleOptions, type AwqScaleStats } from '../../src/quant/passes/awq-scale.js';
import type { GatherBlockQuantizedStats } from '../../src/quant/passes/gather-block-quantized.js';
import type { MatMulNBitsStats } from '../../src/quant/passes/matmul-nbits.js';
import { quantizeModel } from '../../src/quant/quantize-model.js';
import { QuantizationError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/random.js';
import { maxAbs, maxAbsDiff, randomMatrix } from '../helpers/quant.js';
import { K, S, V, activations, calibration, feedsOf, normBlock, ort, outlierGains, runModel, sqError } from './awq-graphs.js';

/** T rows of k values: unit normals times per-channel gains. */
function rowsWithGains(seed: number, T: number, gains: Float32Array): Float32Array {
  const rng = new Rng(seed);
  const k = gains.length;
  const x = new Float32Array(T * k);
  for (let t = 0; t < T; t++) for (let i = 0; i < k; i++) x[t * k + i] = rng.normal() * gains[i];
  return x;
}

function absMeanOf(x: Float32Array, k: number): Float64Array {
  const m = new Float64Array(k);
  for (let i = 0; i < x.length; i++) m[i % k] += Math.abs(x[i]) / (x.length / k);
  return m;
}

/** Σ over held-out rows of (x·(Q − W)ᵀ)² for an effective weight Q [N, k] (rows of k). */
function heldOutError(x: Float32Array, k: number, w: Float32Array, q: ArrayLike<number>): number {
  const T = x.length / k;
  const N = w.length / k;
  let e = 0;
  for (let t = 0; t < T; t++) {
    for (let n = 0; n < N; n++) {
      let d = 0;
      for (let i = 0; i < k; i++) d += x[t * k + i] * (q[n * k + i] - w[n * k + i]);
      e += d * d;
    }
  }
  return e;
}

/** Q(W·diag(s))·diag(s)⁻¹ with the int4 RTN codec, rows of k. */
async function effectiveWeight(w: Float32Array, k: number, s: Float32Array, symmetric: boolean, blockSize = 32): Promise<Float32Array> {
  const { roundTrip } = await import('../../src/quant/algorithms/output-error.js');
  const scaled = Float32Array.from(w, (v, i) => v * s[i % k]);
  const d = roundTrip(scaled, k, { scheme: 'int4', blockSize, symmetric });
  return Float32Array.from(d, (v, i) => v / s[i % k]);
}

describe('AWQ scales', () => {
  it('a^α floored at 1e-4, normalised by sqrt(max·min) (hand-computed)', () => {
    expect([...awqScales([1, 4, 16], 0.5)]).toEqual([0.5, 1, 2]); // [1, 2, 4] / sqrt(4·1)
    expect([...awqScales([1, 4, 16], 0)]).toEqual([1, 1, 1]);
    // A dead channel: 0^0.5 = 0 → 1e-4; then / sqrt(2·1e-4).
    const s = awqScales([0, 4], 0.5);
    expect(s[0]).toBeCloseTo(1e-4 / Math.sqrt(2e-4), 7);
    expect(s[1]).toBeCloseTo(2 / Math.sqrt(2e-4), 3);
  });

  it("AutoAWQ's duo form a^α / (w^(1−α) + 1e-4) (hand-computed)", () => {
    // α = 0.5: [1/(0.25^0.5 + 1e-4), 4/(1 + 1e-4)] = [1/0.5001, 4/1.0001], then / sqrt(max·min).
    const raw = [1 / 0.5001, 2 / 1.0001];
    const n = Math.sqrt(raw[0] * raw[1]);
    const s = awqDuoScales([1, 4], [0.25, 1], 0.5);
    expect(s[0]).toBeCloseTo(raw[0] / n, 6);
    expect(s[1]).toBeCloseTo(raw[1] / n, 6);
  });
});

describe('AWQ search', () => {
  const k = 64;
  const N = 48;
  const w = randomMatrix(5, N, k, 0.1);
  const target = (symmetric: boolean) => [{ w: { data: w, K: k, N, layout: 'nk' as const }, quant: { scheme: 'int4' as const, blockSize: 32, symmetric } }];

  it('candidate 0 is plain RTN and nothing chosen scores worse; equal channels leave the llm-awq family flat', () => {
    const x = rowsWithGains(1, 256, new Float32Array(k).fill(1));
    const flat = awqSearch(target(true), { kind: 'rows', x, rows: 256 }, new Float64Array(k).fill(0.8));
    for (let i = 1; i < 20; i++) expect(flat.losses[i]).toBe(flat.losses[0]); // s = 1 for every α
    expect(Math.min(...flat.losses)).toBe(flat.losses[flat.family === 'x' ? Math.round(flat.alpha * 20) : 20 + Math.round(flat.alpha * 20)]);
    expect(flat.losses.length).toBe(40);
  });

  it('on outlier-channel activations it cuts the output error well below RTN, on held-out rows too', async () => {
    const gains = outlierGains(3, k, [2, 11, 30, 47], 15);
    const x = rowsWithGains(7, 512, gains);
    const held = rowsWithGains(8, 256, gains);
    for (const symmetric of [true, false]) {
      const r = awqSearch(target(symmetric), { kind: 'rows', x, rows: 512 }, absMeanOf(x, k));
      expect(r.alpha).toBeGreaterThan(0);
      expect(Math.min(...r.losses)).toBeLessThan(0.7 * r.losses[0]);
      const rtn = heldOutError(held, k, w, await effectiveWeight(w, k, new Float32Array(k).fill(1), symmetric));
      const awq = heldOutError(held, k, w, await effectiveWeight(w, k, r.scales, symmetric));
      expect(awq).toBeLessThan(0.7 * rtn);
    }
  });

  it('the Gram form and the sampled-rows form give the same losses (the search scores E[(x·δ)²] either way)', () => {
    const x = rowsWithGains(9, 128, outlierGains(4, k, [5], 10));
    const g = new Float64Array(k * k);
    for (let t = 0; t < 128; t++) for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) g[a * k + b] += (x[t * k + a] * x[t * k + b]) / 128;
    const viaRows = awqSearch(target(true), { kind: 'rows', x, rows: 128 }, absMeanOf(x, k));
    const viaGram = awqSearch(target(true), { kind: 'gram', g }, absMeanOf(x, k));
    for (let i = 0; i < 40; i++) expect(viaGram.losses[i]).toBeCloseTo(viaRows.losses[i], 8);
  });

  it('weights whose K differs from the activation are refused', () => {
    expect(() => awqSearch(target(true), { kind: 'rows', x: new Float32Array(32), rows: 1 }, new Float64Array(32))).toThrow(QuantizationError);
  });
});

describe('AWQ clipping', () => {
  it('picks ratios in {1, 0.95, ..., 0.55}, never a larger block error than no clipping, and applyClip clamps to them', async () => {
    const k = 64;
    const N = 16;
    // Heavy-tailed rows: one large value per block makes shrinking the range pay off for the others.
    const w = randomMatrix(11, N, k, 0.05);
    for (let n = 0; n < N; n++) for (let b = 0; b < 2; b++) w[n * k + b * 32 + ((n * 7 + b) % 32)] = 0.6;
    const s = new Float32Array(k).fill(1);
    const x = rowsWithGains(12, 256, new Float32Array(k).fill(1));
    const grams = blockGrams({ kind: 'rows', x, rows: 256 }, s, k, 32);
    const q = { scheme: 'int4' as const, blockSize: 32, symmetric: true };
    const ratios = awqClip({ data: w, K: k, N, layout: 'nk' }, s, q, grams);
    expect(ratios.length).toBe(N * 2);
    for (const r of ratios) expect([1, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55].some((c) => Math.abs(c - r) < 1e-6)).toBe(true);
    expect([...ratios].some((r) => r < 1)).toBe(true);
    const clipped = Float32Array.from(w);
    applyClip(clipped, { K: k, N, layout: 'nk' }, 32, ratios);
    // Each block's own output error E_x[(x_b·δ_b)²] on the same rows: never larger with the chosen ratios.
    const { roundTrip } = await import('../../src/quant/algorithms/output-error.js');
    const qPlain = roundTrip(w, k, q);
    const qClip = roundTrip(clipped, k, q);
    let better = 0;
    for (let n = 0; n < N; n++) {
      for (let b = 0; b < 2; b++) {
        let ePlain = 0;
        let eClip = 0;
        for (let t = 0; t < 256; t++) {
          let dp = 0;
          let dc = 0;
          for (let i = b * 32; i < b * 32 + 32; i++) {
            dp += x[t * k + i] * (qPlain[n * k + i] - w[n * k + i]);
            dc += x[t * k + i] * (qClip[n * k + i] - w[n * k + i]);
          }
          ePlain += dp * dp;
          eClip += dc * dc;
        }
        expect(eClip).toBeLessThanOrEqual(ePlain * (1 + 1e-9));
        if (eClip < 0.9 * ePlain) better++;
      }
    }
    expect(better).toBeGreaterThan(0);
    for (let n = 0; n < N; n++) {
      for (let b = 0; b < 2; b++) {
        let m = 0;
        for (let i = b * 32; i < b * 32 + 32; i++) m = Math.max(m, Math.abs(w[n * k + i]));
        for (let i = b * 32; i < b * 32 + 32; i++) expect(Math.abs(clipped[n * k + i])).toBeLessThanOrEqual(Math.fround(m * ratios[n * 2 + b]) + 1e-9);
      }
    }
  });
});

describe('AWQ pass (onnxruntime)', () => {
  const awq = async (model: Model, o: Partial<AwqScaleOptions> = {}) => {
    const r = await runPasses(model, [step(awqScalePass, { algo: 'awq', calibration: calibration(), ...o })]);
    return { model: r.model, modified: r.reports[0].modified, stats: r.reports[0].stats as AwqScaleStats };
  };

  it('the rescaled float graph computes the same outputs (1e-5); norms absorb 1/s, the gated MLP input gets a Mul', async () => {
    const before = await runModel(normBlock(), feedsOf(7));
    const { model, stats } = await awq(normBlock(), { clip: false });
    expect(stats.groups.map((g) => [g.input, g.fold.kind, g.nodes.length])).toEqual([
      ['n1', 'norm', 2],
      ['h', 'mul', 1],
      ['n2', 'norm', 1],
    ]);
    expect(stats.groups[0].fold).toMatchObject({ node: '/layers.0/input_layernorm/LayerNorm', weight: 'gamma1' });
    expect(stats.groups[1].fold).toMatchObject({ node: '/layers.0/mlp/down_proj/awq_scale/Mul', why: 'h comes from Mul, not a norm' });
    expect(stats).toMatchObject({ normsFolded: 2, mulsInserted: 1, calibrationRows: 4 * S });
    expect(stats.groups.every((g) => g.alpha > 0 && g.loss < g.lossRtn)).toBe(true);
    // γ1 / s: the stored norm weight changed; the weights became lazy diag(s)·W.
    const g1 = await model.graph.initializer('gamma1')!.float32();
    expect(maxAbsDiff(g1, await normBlock().graph.initializer('gamma1')!.float32())).toBeGreaterThan(0.01);
    expect(model.graph.initializer('Wg')!.source.kind).toBe('lazy');
    const mul = model.graph.nodes.find((n) => n.name === '/layers.0/mlp/down_proj/awq_scale/Mul')!;
    expect(mul.inputs[0]).toBe('h');
    expect(model.graph.nodes.find((n) => n.name === '/layers.0/mlp/down_proj/MatMul')!.inputs[0]).toBe(mul.outputs[0]);
    const after = await runModel(model, feedsOf(7));
    expect(maxAbsDiff(after.y, before.y)).toBeLessThan(1e-5 * Math.max(1, maxAbs(before.y)));
  });

  it('end to end AWQ (with and without clipping) beats RTN in output error on held-out inputs', async () => {
    const err = async (o: Parameters<typeof quantizeModel>[1]) => {
      const q = await quantizeModel(normBlock(), { threads: 0, accuracyLevel: 0, calibration: calibration(), ...o });
      let e = 0;
      for (const seed of [7, 8, 9]) e += sqError((await runModel(normBlock(), feedsOf(seed))).y, (await runModel(q.model, feedsOf(seed))).y);
      return { e, q };
    };
    const rtn = await err({ algo: 'rtn' });
    const full = await err({ algo: 'awq' });
    const noClip = await err({ algo: 'awq', awq: { clip: false } });
    expect(full.q.reports.map((r) => r.pass)).toEqual(['quant:awq-scale', 'quant:matmul-nbits', 'quant:gather-block-quantized']);
    expect((full.q.reports[1].stats as MatMulNBitsStats).converted.every((c) => c.algo === 'awq')).toBe(true);
    expect(full.e).toBeLessThan(0.8 * rtn.e);
    expect(noClip.e).toBeLessThan(0.8 * rtn.e);
    const asym = await err({ algo: 'awq', asym: true });
    expect(asym.e).toBeLessThan(rtn.e);
  });

  it('a tied lm_head keeps its tie: the embedding lookup gets a Mul(1/s), GatherBlockQuantized still reads the lm_head', async () => {
    // ids ─ Gather(W[K, V], axis 1) ─ Transpose ─ x ─ SimplifiedLayerNormalization(γ) ─ MatMul(W) ─▶ logits (+ x out)
    const g = new Graph('tied');
    g.inputs.push({ name: 'input_ids', type: tensorType(DataType.INT64, [1, 'S']) });
    g.outputs.push({ name: 'logits', type: tensorType(DataType.FLOAT, [1, 'S', V]) });
    g.addInitializer(Tensor.fromFloat32('lm_head.MatMul.weight', [K, V], randomMatrix(21, K, V, 0.5)));
    g.addInitializer(Tensor.fromFloat32('gamma', [K], outlierGains(22, K, [4, 33])));
    g.addNode({ opType: 'Gather', name: '/model/embed_tokens/Gather', inputs: ['lm_head.MatMul.weight', 'input_ids'], outputs: ['gt'], attributes: [attr.int('axis', 1)] });
    g.addNode({ opType: 'Transpose', name: '/model/embed_tokens/Transpose', inputs: ['gt'], outputs: ['x'], attributes: [attr.ints('perm', [1, 2, 0])] });
    g.addNode({ opType: 'SimplifiedLayerNormalization', name: '/model/norm/LayerNorm', inputs: ['x', 'gamma'], outputs: ['n'], attributes: [attr.float('epsilon', 1e-5)] });
    g.addNode({ opType: 'MatMul', name: '/lm_head/MatMul', inputs: ['n', 'lm_head.MatMul.weight'], outputs: ['logits'] });
    const tied = () => {
      const c = new Graph(g.name);
      Object.assign(c, { inputs: [...g.inputs], outputs: [...g.outputs], initializers: [...g.initializers] });
      c.nodes = g.nodes.map((n) => Object.assign(Object.create(Object.getPrototypeOf(n)), n, { inputs: [...n.inputs], outputs: [...n.outputs] }));
      return new Model(c);
    };
    const ids = (seed: number) => {
      const r = new Rng(seed);
      return BigInt64Array.from({ length: 24 }, () => BigInt(Math.floor(r.uniform() * V)));
    };
    const feeds = (seed: number) => ({ input_ids: new ort.Tensor('int64', ids(seed), [1, 24]) });
    const calib = { describe: 'ids', feeds: () => [31, 32, 33, 34].map(feeds) };
    const before = await runModel(tied(), feeds(5));

    // Clipping off: clamped weights are meant to change the float model.
    const r = await runPasses(tied(), [step(awqScalePass, { algo: 'awq', calibration: calib, clip: false })]);
    const st = r.reports[0].stats as AwqScaleStats;
    expect(st.groups[0]).toMatchObject({ input: 'n', fold: { kind: 'norm' }, compensated: ['/model/embed_tokens/Gather'] });
    const comp = r.model.graph.nodes.find((n) => n.name === '/model/embed_tokens/awq_scale/Mul')!;
    expect(comp.inputs[0]).toBe('x');
    expect(r.model.graph.nodes.find((n) => n.opType === 'SimplifiedLayerNormalization')!.inputs[0]).toBe(comp.outputs[0]);
    const after = await runModel(r.model, feeds(5));
    expect(maxAbsDiff(after.logits, before.logits)).toBeLessThan(1e-5 * Math.max(1, maxAbs(before.logits)));

    const q = await quantizeModel(tied(), { algo: 'awq', calibration: calib, threads: 0 });
    expect(q.model.graph.nodes.map((n) => n.opType)).toEqual(['Reshape', 'GatherBlockQuantized', 'Mul', 'SimplifiedLayerNormalization', 'MatMulNBits']);
    expect((q.reports[2].stats as GatherBlockQuantizedStats).converted[0].tiedTo).toBe('lm_head.MatMul.weight.qweight');
    const out = await runModel(q.model, feeds(5));
    expect(maxAbsDiff(out.logits, before.logits)).toBeLessThan(0.25 * maxAbs(before.logits));
  });

  it('a weight also read by another MatMul is scaled into a copy; a norm output read by another op gets a Mul', async () => {
    // n1 also feeds an Identity output, and Wo is also read by a second MatMul of another input.
    const m = normBlock();
    const g = m.graph;
    g.outputs.push({ name: 'n1copy', type: tensorType(DataType.FLOAT) }, { name: 'z', type: tensorType(DataType.FLOAT) });
    g.addNode({ opType: 'Identity', name: '/probe/Identity', inputs: ['n1'], outputs: ['n1copy'] });
    g.addNode({ opType: 'MatMul', name: '/other/MatMul', inputs: ['x', 'Wo'], outputs: ['z'] });
    const before = await runModel(m, feedsOf(3));
    const { model, stats } = await awq(m, { exclude: ['/other/*'], clip: false });
    const n1 = stats.groups.find((x) => x.input === 'n1')!;
    expect(n1.fold).toMatchObject({ kind: 'mul', why: 'n1 is also read by /probe/Identity' });
    const lm = stats.groups.find((x) => x.input === 'n2')!;
    expect(lm.copies).toEqual(['Wo.awq']);
    expect(model.graph.nodes.find((n) => n.name === '/other/MatMul')!.inputs[1]).toBe('Wo');
    const after = await runModel(model, feedsOf(3));
    for (const o of ['y', 'n1copy', 'z']) expect(maxAbsDiff(after[o], before[o])).toBeLessThan(1e-5 * Math.max(1, maxAbs(before[o])));
  });

  it('untouched without AWQ nodes; without calibration, or with ternary, a clear error', async () => {
    const none = await awq(normBlock(), { algo: 'rtn' });
    expect(none.modified).toBe(false);
    expect(none.stats.reason).toBe('no MatMul of the main graph is quantized with AWQ');
    const nocal = await awq(normBlock(), { calibration: undefined }).catch((e: unknown) => e);
    expect((nocal as QuantizationError).code).toBe('QUANT_NEEDS_CALIBRATION');
    const tern = await awq(normBlock(), { scheme: 'ternary' }).catch((e: unknown) => e);
    expect((tern as QuantizationError).code).toBe('QUANT_OPTIONS');
    expect((tern as QuantizationError).message).toContain('AWQ has no ternary variant');
  });

  it('activations captured for the search: mean |x| and the Gram matrix over every calibration row', async () => {
    const { captureActivations } = await import('../../src/quant/calibration/calibration.js');
    const m = normBlock();
    const stats = await captureActivations(m, [{ value: 'x', K, floatType: DataType.FLOAT, absMean: true, sampleRows: 50 }], calibration());
    const a = stats.get('x')!;
    const xs = [101, 102, 103, 104].map(activations);
    const ref = new Float64Array(K);
    for (const x of xs) for (let i = 0; i < x.length; i++) ref[i % K] += Math.abs(x[i]) / (4 * S);
    expect(a.rows).toBe(4 * S);
    for (let k = 0; k < K; k++) expect(a.absMean![k]).toBeCloseTo(ref[k], 5);
    // The sample: 50 distinct rows, each one of the calibration rows.
    expect(a.sampleCount).toBe(50);
    const all = new Set(xs.flatMap((x) => Array.from({ length: S }, (_, s) => x.subarray(s * K, s * K + 4).join(','))));
    for (let r = 0; r < 50; r++) expect(all.has(a.sample!.subarray(r * K, r * K + 4).join(','))).toBe(true);
  });
});
