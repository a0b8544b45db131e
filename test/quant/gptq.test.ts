// GPTQ: equal to RTN when inputs are uncorrelated (H = I), much lower output error than RTN when they are
// correlated, with or without act-order; end to end through the pass with activations captured by onnxruntime.
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { decodeModel, encodeModel } from '../../src/onnx/codec.js';
import { DataType } from '../../src/onnx/dtype.js';
import { Graph, Model, tensorType } from '../../src/onnx/ir.js';
import { Tensor } from '../../src/onnx/tensor.js';
import { gptqQuantize, inverseHessianFactor } from '../../src/quant/algorithms/gptq.js';
import { dequantizePacked } from '../../src/quant/formats/block.js';
import { quantizeUniform } from '../../src/quant/formats/uniform.js';
import { captureHessians, tokenCalibration, type CalibrationSource, type Feeds } from '../../src/quant/calibration/calibration.js';
import { runPasses, step } from '../../src/quant/passes/pass.js';
import { matmulNBitsPass, type MatMulNBitsOptions, type MatMulNBitsStats } from '../../src/quant/passes/matmul-nbits.js';
import { QuantizationError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/random.js';
import { randomMatrix } from '../helpers/quant.js';
import { buildTinyDecoder } from '../helpers/runtime.js';

type Ort = typeof import('onnxruntime-node');
const ort = createRequire(import.meta.url)('onnxruntime-node') as Ort;

/**
 * S rows of K correlated features: independent sources with uneven scales through one fixed random mix (the same
 * for every seed, so calibration and held-out samples share a distribution).
 */
function correlated(seed: number, S: number, K: number): Float32Array {
  const m = new Rng(99, K);
  const mix = new Float64Array(K * K);
  for (let i = 0; i < K * K; i++) mix[i] = m.normal() / Math.sqrt(K) + (i % (K + 1) === 0 ? 1 : 0);
  const rng = new Rng(seed);
  const x = new Float32Array(S * K);
  const z = new Float64Array(K);
  for (let s = 0; s < S; s++) {
    for (let j = 0; j < K; j++) z[j] = rng.normal() * (1 + 3 * rng.uniform());
    for (let k = 0; k < K; k++) {
      let v = 0;
      for (let j = 0; j < K; j++) v += z[j] * mix[j * K + k];
      x[s * K + k] = v;
    }
  }
  return x;
}

function hessianOf(x: Float32Array, S: number, K: number): Float64Array {
  const h = new Float64Array(K * K);
  for (let s = 0; s < S; s++) for (let a = 0; a < K; a++) for (let b = 0; b < K; b++) h[a * K + b] += (x[s * K + a] * x[s * K + b]) / S;
  return h;
}

/** Mean squared output error of X·(Q − W)ᵀ for [N, K] weights. */
function outputError(x: Float32Array, S: number, K: number, N: number, w: Float32Array, q: Float32Array): number {
  let e = 0;
  for (let s = 0; s < S; s++) {
    for (let n = 0; n < N; n++) {
      let d = 0;
      for (let k = 0; k < K; k++) d += x[s * K + k] * (q[n * K + k] - w[n * K + k]);
      e += d * d;
    }
  }
  return e / (S * N);
}

describe('GPTQ algorithm', () => {
  it("the inverse Hessian's factor U is upper triangular, positive on the diagonal, and Uᵀ·U·H = I", () => {
    const K = 37;
    const rng = new Rng(11);
    // H = XᵀX/n + 0.1·I from correlated activations (positive definite).
    const n = 50;
    const x = Float64Array.from(rng.fillNormal(new Float32Array(n * K), 1));
    for (let r = 0; r < n; r++) for (let k = 1; k < K; k++) x[r * K + k] += 0.8 * x[r * K + k - 1];
    const h = new Float64Array(K * K);
    for (let i = 0; i < K; i++) {
      for (let j = 0; j < K; j++) {
        let s = i === j ? 0.1 : 0;
        for (let r = 0; r < n; r++) s += (x[r * K + i] * x[r * K + j]) / n;
        h[i * K + j] = s;
      }
    }
    const u = inverseHessianFactor(h, K)!;
    let worst = 0;
    for (let i = 0; i < K; i++) {
      expect(u[i * K + i]).toBeGreaterThan(0);
      for (let j = 0; j < i; j++) expect(u[i * K + j]).toBe(0);
      for (let j = 0; j < K; j++) {
        // (Uᵀ·U·H)[i, j], plain triple loop.
        let s = 0;
        for (let p = 0; p < K; p++) {
          let utu = 0;
          for (let q = 0; q < K; q++) utu += u[q * K + i] * u[q * K + p];
          s += utu * h[p * K + j];
        }
        worst = Math.max(worst, Math.abs(s - (i === j ? 1 : 0)));
      }
    }
    expect(worst).toBeLessThan(1e-9);
    // Not positive definite: no factor.
    const bad = h.slice();
    bad[5 * K + 5] = -1;
    expect(inverseHessianFactor(bad, K)).toBeUndefined();
  });

  it('with uncorrelated inputs (H = I) there is nothing to propagate: same bytes as RTN', () => {
    const K = 96;
    const N = 16;
    const w = randomMatrix(1, N, K);
    const eye = new Float64Array(K * K);
    for (let i = 0; i < K; i++) eye[i * K + i] = 1;
    for (const [bits, symmetric] of [[4, true], [4, false], [8, false]] as const) {
      const rtn = quantizeUniform({ data: w, K, N, layout: 'nk' }, bits, { blockSize: 32, symmetric });
      for (const actOrder of [false, true]) {
        const g = gptqQuantize({ data: w, K, N, layout: 'nk' }, eye, { bits, blockSize: 32, symmetric, actOrder });
        expect(g.b).toEqual(rtn.b);
        expect(g.scales).toEqual(rtn.scales);
        expect(g.zeroPoints).toEqual(rtn.zeroPoints);
      }
    }
  });

  it('with correlated inputs it cuts the output error well below RTN (act-order even more)', () => {
    const K = 128;
    const N = 32;
    const S = 400;
    const x = correlated(2, S, K);
    const h = hessianOf(x, S, K);
    const w = randomMatrix(3, N, K);
    for (const symmetric of [true, false]) {
      const rtn = outputError(x, S, K, N, w, dequantizePacked(quantizeUniform({ data: w, K, N, layout: 'nk' }, 4, { blockSize: 32, symmetric })));
      const plain = outputError(x, S, K, N, w, dequantizePacked(gptqQuantize({ data: w, K, N, layout: 'nk' }, h, { bits: 4, blockSize: 32, symmetric, actOrder: false })));
      const act = outputError(x, S, K, N, w, dequantizePacked(gptqQuantize({ data: w, K, N, layout: 'nk' }, h, { bits: 4, blockSize: 32, symmetric, actOrder: true, lazyBatch: 32 })));
      expect(plain).toBeLessThan(0.7 * rtn);
      expect(act).toBeLessThan(0.7 * rtn);
    }
  });

  it('the [K, N] layout gives the same result as [N, K]; dead inputs get zero weight', () => {
    const K = 64;
    const N = 8;
    const x = correlated(4, 200, K);
    for (let s = 0; s < 200; s++) x[s * K + 5] = 0; // input 5 never fires
    const h = hessianOf(x, 200, K);
    const wnk = randomMatrix(5, N, K);
    const wkn = new Float32Array(K * N);
    for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) wkn[k * N + n] = wnk[n * K + k];
    const a = gptqQuantize({ data: wnk, K, N, layout: 'nk' }, h, { bits: 4, blockSize: 32, symmetric: false });
    const b = gptqQuantize({ data: wkn, K, N, layout: 'kn' }, h, { bits: 4, blockSize: 32, symmetric: false });
    expect(b.b).toEqual(a.b);
    const d = dequantizePacked(a);
    for (let n = 0; n < N; n++) expect(Math.abs(d[n * K + 5])).toBeLessThanOrEqual(Math.abs(a.scales[n * 2]) * 0.5 + 1e-7);
  });
});

describe('GPTQ through the pass (activations captured with onnxruntime)', () => {
  const K = 64;
  const H = 96;
  const O = 32;
  const S = 64;

  /** x[1, S, K] ─ MatMul(W1) ─ Relu ─ MatMul(W2) ─▶ y */
  function mlp(): Model {
    const g = new Graph('mlp');
    g.inputs.push({ name: 'x', type: tensorType(DataType.FLOAT, [1, 'S', K]) });
    g.outputs.push({ name: 'y', type: tensorType(DataType.FLOAT, [1, 'S', O]) });
    g.addInitializer(Tensor.fromFloat32('W1', [K, H], randomMatrix(6, K, H, 0.1)));
    g.addInitializer(Tensor.fromFloat32('W2', [H, O], randomMatrix(7, H, O, 0.1)));
    g.addNode({ opType: 'MatMul', name: '/fc1/MatMul', inputs: ['x', 'W1'], outputs: ['h'] });
    g.addNode({ opType: 'Relu', name: '/act/Relu', inputs: ['h'], outputs: ['hr'] });
    g.addNode({ opType: 'MatMul', name: '/fc2/MatMul', inputs: ['hr', 'W2'], outputs: ['y'] });
    return new Model(g);
  }
  const batch = (seed: number): Feeds => ({ x: new ort.Tensor('float32', correlated(seed, S, K), [1, S, K]) });
  const calibration: CalibrationSource = { describe: 'synthetic', feeds: () => [10, 11, 12, 13].map(batch) };

  async function outputErrorVsFloat(model: Model): Promise<number> {
    const ref = await ort.InferenceSession.create(encodeModel(mlp()));
    const q = await ort.InferenceSession.create(encodeModel(model));
    let e = 0;
    for (const seed of [20, 21]) {
      const f = batch(seed);
      const a = (await ref.run(f)).y.data as Float32Array;
      const b = (await q.run(f)).y.data as Float32Array;
      for (let i = 0; i < a.length; i++) e += (a[i] - b[i]) ** 2;
    }
    await ref.release();
    await q.release();
    return e;
  }

  const quantize = async (o: MatMulNBitsOptions) => {
    const r = await runPasses(mlp(), [step(matmulNBitsPass, { blockSize: 32, accuracyLevel: 0, ...o })]);
    return { model: r.model, stats: r.reports[0].stats as MatMulNBitsStats };
  };

  it('captures the MatMul inputs (a graph input and an inner value) and their Hessians', async () => {
    const hs = await captureHessians(mlp(), [{ value: 'x', K, floatType: DataType.FLOAT }, { value: 'hr', K: H, floatType: DataType.FLOAT }], calibration);
    const hx = hs.get('x')!;
    expect(hx.rows).toBe(4 * S);
    // Independent reference for x: the same samples.
    const xs = [10, 11, 12, 13].map((s) => correlated(s, S, K));
    const all = new Float32Array(4 * S * K);
    xs.forEach((x, i) => all.set(x, i * S * K));
    const ref = hessianOf(all, 4 * S, K);
    for (let i = 0; i < K * K; i++) expect(hx.h[i]).toBeCloseTo(ref[i], 6);
    expect(hs.get('hr')!.h.length).toBe(H * H);
    expect(hs.get('hr')!.h[0]).toBeGreaterThan(0);
  });

  it('GPTQ beats RTN on held-out inputs, for one calibration group or many', async () => {
    const rtn = await outputErrorVsFloat((await quantize({ algo: 'rtn' })).model);
    const one = await quantize({ algo: 'gptq', calibration });
    expect(one.stats.converted.map((c) => c.algo)).toEqual(['gptq', 'gptq']);
    const eOne = await outputErrorVsFloat(one.model);
    expect(eOne).toBeLessThan(0.8 * rtn);
    // A tiny budget: each weight calibrated on its own, fc2 on the model with fc1 already quantized.
    const many = await quantize({ algo: 'gptq', calibration, hessianBudgetBytes: 1 });
    expect(await outputErrorVsFloat(many.model)).toBeLessThan(0.8 * rtn);
  });

  it('GPTQ without calibration data is a clear error', async () => {
    const err = await quantize({ algo: 'gptq' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QuantizationError);
    expect((err as QuantizationError).code).toBe('QUANT_NEEDS_CALIBRATION');
  });

  it('token calibration drives a decoder graph with an empty KV cache', async () => {
    const d = buildTinyDecoder({ hidden: 32, vocab: 40, layers: 1 });
    const model = decodeModel(d.onnx);
    const calib = tokenCalibration([[1, 5, 7, 9, 11, 2], [1, 30, 31, 4]], 'tokens');
    const r = await runPasses(model, [step(matmulNBitsPass, { blockSize: 16, algo: 'gptq', calibration: calib, accuracyLevel: 0 })]);
    const stats = r.reports[0].stats as MatMulNBitsStats;
    expect(stats.converted.length).toBeGreaterThan(2);
    expect(stats.converted.every((c) => c.algo === 'gptq')).toBe(true);
    const s = await ort.InferenceSession.create(encodeModel(r.model));
    const feeds = [...(calib.feeds(r.model, ort as never) as Iterable<Feeds>)][0];
    const out = await s.run(feeds);
    expect(out.logits.dims).toEqual([1, 6, 40]);
    await s.release();
  });
});
