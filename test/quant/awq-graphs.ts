// Small graphs for the AWQ and mixed-precision tests: a transformer-like block with real norm ops (so AWQ has
// something to fold into), activations with outlier channels, and helpers to run models in onnxruntime-node.
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeModel } from '../../src/onnx/codec.js';
import { DataType } from '../../src/onnx/dtype.js';
import { Graph, Model, attr, tensorType } from '../../src/onnx/ir.js';
import { saveModel } from '../../src/onnx/model-file.js';
import { Tensor } from '../../src/onnx/tensor.js';
import type { CalibrationSource, Feeds } from '../../src/quant/calibration/calibration.js';
import { Rng } from '../../src/util/random.js';
import { randomMatrix } from '../helpers/quant.js';

type Ort = typeof import('onnxruntime-node');
export const ort = createRequire(import.meta.url)('onnxruntime-node') as Ort;

export const K = 64;
export const H = 96;
export const V = 48;
export const S = 32;

/** Per-channel gains with a few large ones, like the norm weights of trained LLMs (outlier channels). */
export function outlierGains(seed: number, n: number, outliers: readonly number[], big = 12): Float32Array {
  const rng = new Rng(seed);
  const g = new Float32Array(n);
  for (let i = 0; i < n; i++) g[i] = 0.5 + rng.uniform();
  for (const o of outliers) g[o] = big;
  return g;
}

/**
 * ```
 *  x ─ SimplifiedLayerNormalization(γ1) ─ n1 ─┬─ MatMul(Wg) ─ g ─ Sigmoid·g ─┐
 *  │                                          └─ MatMul(Wu) ─ u ─────────── Mul ─ h ─ MatMul(Wd) ─ d
 *  └──────────────── SkipSimplifiedLayerNormalization(x, d, γ2) ─ n2 ─ MatMul(Wo) ─▶ y
 * ```
 */
export function normBlock(seed = 1): Model {
  const g = new Graph('block');
  g.inputs.push({ name: 'x', type: tensorType(DataType.FLOAT, [1, 'S', K]) });
  g.outputs.push({ name: 'y', type: tensorType(DataType.FLOAT, [1, 'S', V]) });
  g.addInitializer(Tensor.fromFloat32('gamma1', [K], outlierGains(seed, K, [3, 17, 40])));
  g.addInitializer(Tensor.fromFloat32('gamma2', [K], outlierGains(seed + 1, K, [9, 50])));
  g.addInitializer(Tensor.fromFloat32('Wg', [K, H], randomMatrix(seed + 2, K, H, 0.1)));
  g.addInitializer(Tensor.fromFloat32('Wu', [K, H], randomMatrix(seed + 3, K, H, 0.1)));
  g.addInitializer(Tensor.fromFloat32('Wd', [H, K], randomMatrix(seed + 4, H, K, 0.1)));
  g.addInitializer(Tensor.fromFloat32('Wo', [K, V], randomMatrix(seed + 5, K, V, 0.1)));
  g.addNode({ opType: 'SimplifiedLayerNormalization', name: '/layers.0/input_layernorm/LayerNorm', inputs: ['x', 'gamma1'], outputs: ['n1'], attributes: [attr.int('axis', -1), attr.float('epsilon', 1e-5), attr.int('stash_type', 1)] });
  g.addNode({ opType: 'MatMul', name: '/layers.0/mlp/gate_proj/MatMul', inputs: ['n1', 'Wg'], outputs: ['gt'] });
  g.addNode({ opType: 'MatMul', name: '/layers.0/mlp/up_proj/MatMul', inputs: ['n1', 'Wu'], outputs: ['up'] });
  g.addNode({ opType: 'Sigmoid', name: '/layers.0/mlp/act_fn/Sigmoid', inputs: ['gt'], outputs: ['sg'] });
  g.addNode({ opType: 'Mul', name: '/layers.0/mlp/act_fn/Mul', inputs: ['gt', 'sg'], outputs: ['act'] });
  g.addNode({ opType: 'Mul', name: '/layers.0/mlp/Mul', inputs: ['act', 'up'], outputs: ['h'] });
  g.addNode({ opType: 'MatMul', name: '/layers.0/mlp/down_proj/MatMul', inputs: ['h', 'Wd'], outputs: ['d'] });
  g.addNode({
    opType: 'SkipSimplifiedLayerNormalization',
    domain: 'com.microsoft',
    name: '/model/norm/SkipLayerNorm',
    inputs: ['x', 'd', 'gamma2'],
    outputs: ['n2'],
    attributes: [attr.float('epsilon', 1e-5)],
  });
  g.addNode({ opType: 'MatMul', name: '/lm_head/MatMul', inputs: ['n2', 'Wo'], outputs: ['y'] });
  return new Model(g, [
    { domain: '', version: 21 },
    { domain: 'com.microsoft', version: 1 },
  ]);
}

/** Activations [1, S, K]: unit normals with a few channels much larger on average (and a common offset). */
export function activations(seed: number): Float32Array {
  const rng = new Rng(seed);
  const x = new Float32Array(S * K);
  for (let s = 0; s < S; s++) for (let k = 0; k < K; k++) x[s * K + k] = rng.normal() * (k % 7 === 0 ? 4 : 1) + 0.3;
  return x;
}

export const feedsOf = (seed: number): Feeds => ({ x: new ort.Tensor('float32', activations(seed), [1, S, K]) });

export function calibration(seeds: readonly number[] = [101, 102, 103, 104]): CalibrationSource {
  return { describe: 'synthetic activations', feeds: () => seeds.map(feedsOf) };
}

/** Runs a model (lazy tensors included: it is written to a temp folder first) and returns its outputs. */
export async function runModel(model: Model, feeds: Feeds): Promise<Record<string, Float32Array>> {
  let dir: string | undefined;
  let session;
  if ([...model.allTensors()].some((t) => t.source.kind === 'lazy')) {
    dir = await mkdtemp(join(tmpdir(), 'phi-forge-awq-test-'));
    const saved = await saveModel(model, join(dir, 'model.onnx'));
    session = await ort.InferenceSession.create(saved.path);
  } else {
    session = await ort.InferenceSession.create(encodeModel(model));
  }
  try {
    const r = await session.run(feeds);
    return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.data as Float32Array]));
  } finally {
    await session.release();
    if (dir) await rm(dir, { recursive: true, force: true });
  }
}

/** Σ (a − b)² over every element. */
export function sqError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let e = 0;
  for (let i = 0; i < a.length; i++) e += (a[i] - b[i]) ** 2;
  return e;
}
