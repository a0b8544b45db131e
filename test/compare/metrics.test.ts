// Bits per weight from the graph, against byte counts worked out by hand from the MatMulNBits / GatherBlockQuantized
// layouts (B [N, k_blocks, block·bits/8] uint8, fp32 scales [N·k_blocks], zero points [N, ceil(k_blocks·bits/8)]).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { modelWeightStats, weightStats } from '../../src/compare/metrics.js';
import { DataType } from '../../src/onnx/dtype.js';
import { Graph, Model, attr, tensorType } from '../../src/onnx/ir.js';
import { saveModel } from '../../src/onnx/model-file.js';
import { Tensor } from '../../src/onnx/tensor.js';
import { quantizeModel, type QuantizeOptions } from '../../src/quant/quantize-model.js';
import { matmulModel, randomMatrix } from '../helpers/quant.js';

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function quantized(model: Model, o: QuantizeOptions): Promise<Model> {
  return (await quantizeModel(model, { threads: 0, ...o })).model;
}

/** ids ─ Gather(E [V, H]) ─ Mul(norm) ─ MatMul(Transpose(E)) ─ logits: a tied embedding, plus a norm weight. */
function tiedModel(V: number, H: number): Model {
  const g = new Graph('main');
  g.inputs.push({ name: 'input_ids', type: tensorType(DataType.INT64, ['b', 's']) });
  g.outputs.push({ name: 'logits', type: tensorType(DataType.FLOAT, ['b', 's', V]) });
  g.addInitializer(Tensor.fromFloat32('embed.weight', [V, H], randomMatrix(3, V, H)));
  g.addInitializer(Tensor.fromFloat32('norm.weight', [H], new Float32Array(H).fill(1)));
  g.addNode({ opType: 'Gather', name: '/model/embed_tokens/Gather', inputs: ['embed.weight', 'input_ids'], outputs: ['x'] });
  g.addNode({ opType: 'Mul', name: '/model/norm/Mul', inputs: ['x', 'norm.weight'], outputs: ['xn'] });
  g.addNode({ opType: 'Transpose', name: '/lm_head/Transpose', inputs: ['embed.weight'], outputs: ['wt'], attributes: [attr.ints('perm', [1, 0])] });
  g.addNode({ opType: 'MatMul', name: '/lm_head/MatMul', inputs: ['xn', 'wt'], outputs: ['logits'] });
  // Not weights: a shape lookup (Gather of an int64 vector).
  g.addNode({ opType: 'Shape', name: '/shape', inputs: ['input_ids'], outputs: ['shape'] });
  g.addInitializer(Tensor.fromInt64('one', [], [1]));
  g.addNode({ opType: 'Gather', name: '/shape/Gather', inputs: ['shape', 'one'], outputs: ['seq'] });
  g.outputs.push({ name: 'seq', type: tensorType(DataType.INT64, []) });
  return new Model(g, [{ domain: '', version: 21 }]);
}

describe('weightStats', () => {
  const K = 64;
  const N = 32;
  const w = randomMatrix(1, K, N);

  it('float weights: 32 and 16 bits', () => {
    expect(weightStats(matmulModel({ K, N, w }))).toEqual({ weights: K * N, bytes: K * N * 4, bitsPerWeight: 32, matrices: 1, quantizedMatrices: 0 });
    expect(weightStats(matmulModel({ K, N, w, kind: 'float16' })).bitsPerWeight).toBe(16);
  });

  it('MatMulNBits int4 / int8 / ternary, symmetric and asymmetric, match the hand count', async () => {
    // K=64, block 32 → 2 blocks per column; scales 32·2·4 = 256 bytes.
    const cases: [QuantizeOptions, number][] = [
      [{ scheme: 'int4' }, 32 * 2 * 16 + 256], // codes 16 bytes per block → 5 bits
      [{ scheme: 'int4', asym: true }, 32 * 2 * 16 + 256 + 32 * 1], // + zero points [32, ceil(2·4/8)]
      [{ scheme: 'int8' }, 32 * 2 * 32 + 256], // 9 bits
      [{ scheme: 'ternary' }, 32 * 2 * 8 + 256], // 2-bit codes, no zero points (fixed 2) → 3 bits
      [{ scheme: 'int4', blockSize: 64 }, 32 * 1 * 32 + 128], // one block of 64 → 4.5 bits
    ];
    for (const [o, bytes] of cases) {
      const s = weightStats(await quantized(matmulModel({ K, N, w }), o));
      expect(s, JSON.stringify(o)).toMatchObject({ weights: K * N, bytes, matrices: 1, quantizedMatrices: 1 });
      expect(s.bitsPerWeight).toBeCloseTo((bytes * 8) / (K * N), 12);
    }
  });

  it('padding of a last partial block is storage, not weights', async () => {
    // K=48 with blocks of 32: 2 blocks per column, the second half empty; 48·32 real weights.
    const s = weightStats(await quantized(matmulModel({ K: 48, N, w: randomMatrix(2, 48, N) }), { scheme: 'int4' }));
    expect(s.weights).toBe(48 * N);
    expect(s.bytes).toBe(32 * 2 * 16 + 256);
  });

  it('a tied embedding counts once, float or quantized; norms and shape gathers are not weights', async () => {
    const V = 64;
    const H = 32;
    expect(weightStats(tiedModel(V, H))).toMatchObject({ weights: V * H, bytes: V * H * 4, bitsPerWeight: 32, matrices: 1 });
    const q = await quantized(tiedModel(V, H), { scheme: 'int4', embeddings: 'tied' });
    const ops = q.graph.nodes.map((n) => n.opType);
    expect(ops).toContain('GatherBlockQuantized');
    expect(ops).toContain('MatMulNBits');
    // The embedding reads the lm_head's codes and scales: one matrix of V·H weights at 4 + 32/32 bits.
    expect(weightStats(q)).toMatchObject({ weights: V * H, bytes: V * 1 * 16 + V * 4, bitsPerWeight: 5, matrices: 1, quantizedMatrices: 1 });
  });

  it('an untied quantized embedding is its own matrix (GatherBlockQuantized data, scales)', async () => {
    const V = 64;
    const H = 32;
    // embeddings 'all' with the lm_head left in float: the table is quantized on its own, the lm_head stays fp32.
    const q = await quantized(tiedModel(V, H), { scheme: 'int4', embeddings: 'all', exclude: ['/lm_head/*'] });
    expect(q.graph.nodes.map((n) => n.opType)).toContain('GatherBlockQuantized');
    const s = weightStats(q);
    expect(s).toMatchObject({ weights: 2 * V * H, matrices: 2, quantizedMatrices: 1 });
    expect(s.bytes).toBe(V * H * 4 + (V * 16 + V * 4));
  });

  it('no weights: NaN bits per weight', () => {
    const g = new Graph('main');
    g.inputs.push({ name: 'a', type: tensorType(DataType.FLOAT, [2]) });
    g.outputs.push({ name: 'b', type: tensorType(DataType.FLOAT, [2]) });
    g.addNode({ opType: 'Relu', inputs: ['a'], outputs: ['b'] });
    const s = weightStats(new Model(g));
    expect(s.weights).toBe(0);
    expect(s.bitsPerWeight).toBeNaN();
  });

  it('reads a saved model with external data without reading the data', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'phi-forge-compare-metrics-'));
    dirs.push(dir);
    await saveModel(await quantized(matmulModel({ K, N, w }), { scheme: 'int8' }), join(dir, 'model.onnx'), { sizeThreshold: 16 });
    const s = await modelWeightStats(dir);
    expect(s.bytes).toBe(32 * 2 * 32 + 256);
    expect(s.bitsPerWeight).toBe(9);
  });
});
