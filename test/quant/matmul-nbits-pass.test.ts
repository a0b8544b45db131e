// The MatMulNBits pass on tiny graphs: modified, untouched, empty and invalid models, transposed and shared weights,
// exclude patterns, per-node overrides, fp16, subgraphs, and a foreign opset-13 model with com.microsoft ops.
import { describe, expect, it } from 'vitest';
import { DataType } from '../../src/onnx/dtype.js';
import { Graph, Model, Node, attr, tensorType } from '../../src/onnx/ir.js';
import { Tensor, float32ToBfloat16Bits, viewBytes } from '../../src/onnx/tensor.js';
import { int4 } from '../../src/quant/formats/int4.js';
import { matmulNBitsPass, type MatMulNBitsOptions, type MatMulNBitsStats } from '../../src/quant/passes/matmul-nbits.js';
import { runPasses, step } from '../../src/quant/passes/pass.js';
import { QuantizationError } from '../../src/util/errors.js';
import { floatTensor, matmulModel, randomMatrix } from '../helpers/quant.js';

async function run(model: Model, options: MatMulNBitsOptions = {}) {
  const r = await runPasses(model, [step(matmulNBitsPass, options)]);
  return { model: r.model, modified: r.modified, stats: r.reports[0].stats as MatMulNBitsStats };
}

const attrs = (n: Node) => Object.fromEntries(n.attributes.map((a) => [a.name, a.type === 'int' ? Number(a.value) : a.type]));

describe('MatMulNBits pass: modified', () => {
  it('replaces a MatMul with constant B, keeps its output, removes the float weight', async () => {
    const K = 64;
    const N = 24;
    const w = randomMatrix(1, K, N);
    const { model, modified, stats } = await run(matmulModel({ K, N, w }), { scheme: 'int4', blockSize: 32, accuracyLevel: 4 });
    expect(modified).toBe(true);
    const g = model.graph;
    expect(g.nodes).toHaveLength(1);
    const n = g.nodes[0];
    expect(n.opType).toBe('MatMulNBits');
    expect(n.domain).toBe('com.microsoft');
    expect(n.name).toBe('/model/layers.0/mlp/down_proj/MatMulNBits');
    expect(n.inputs).toEqual(['A', 'W.qweight', 'W.scales']);
    expect(n.outputs).toEqual(['Y']);
    expect(attrs(n)).toEqual({ K: 64, N: 24, bits: 4, block_size: 32, accuracy_level: 4 });
    expect(g.initializer('W')).toBeUndefined();
    const b = g.initializer('W.qweight')!;
    expect([b.dataType, b.dims]).toEqual([DataType.UINT8, [24, 2, 16]]);
    const s = g.initializer('W.scales')!;
    expect([s.dataType, s.dims]).toEqual([DataType.FLOAT, [24, 2]]);
    expect(model.opsetVersion('com.microsoft')).toBe(1);
    // Same bytes as the codec on the same weight.
    const ref = int4.quantize({ data: w, K, N, layout: 'kn' }, { blockSize: 32, symmetric: true });
    expect(await b.bytes()).toEqual(ref.b);
    expect(stats.converted).toHaveLength(1);
    expect(stats.converted[0]).toMatchObject({ weight: 'W', K, N, bits: 4, blockSize: 32, symmetric: true });
    expect(stats.bytesBefore).toBe(K * N * 4);
    expect(stats.bytesAfter).toBe(24 * 32 + 24 * 2 * 4);
    expect(stats.bytesRemoved).toBe(K * N * 4);
  });

  it('reports progress per weight through the runner', async () => {
    const events: unknown[] = [];
    const K = 32;
    const r = await runPasses(matmulModel({ K, N: 4, w: randomMatrix(1, K, 4) }), [step(matmulNBitsPass, { blockSize: 16 })], {
      onProgress: (p) => events.push(p),
    });
    expect(events).toEqual([{ pass: 'quant:matmul-nbits', done: 1, total: 1, item: 'W' }]);
    expect(r.reports[0]).toMatchObject({ pass: 'quant:matmul-nbits', modified: true });
  });

  it('asymmetric adds packed zero points; int8 and ternary set bits', async () => {
    const K = 96;
    const N = 8;
    const asym = await run(matmulModel({ K, N, w: randomMatrix(2, K, N) }), { asym: true, blockSize: 32 });
    const zp = asym.model.graph.initializer('W.qzeros')!;
    expect([zp.dataType, zp.dims]).toEqual([DataType.UINT8, [8, 2]]); // 3 blocks → 2 bytes per row
    expect(asym.model.graph.nodes[0].inputs[3]).toBe('W.qzeros');
    const i8 = await run(matmulModel({ K, N, w: randomMatrix(2, K, N) }), { scheme: 'int8', blockSize: 16 });
    expect(attrs(i8.model.graph.nodes[0]).bits).toBe(8);
    expect(i8.model.graph.initializer('W.qweight')!.dims).toEqual([8, 6, 16]);
    const t = await run(matmulModel({ K, N, w: randomMatrix(2, K, N) }), { scheme: 'ternary', blockSize: 64 });
    expect(attrs(t.model.graph.nodes[0]).bits).toBe(2);
    expect(t.model.graph.initializer('W.qweight')!.dims).toEqual([8, 2, 16]);
    expect(t.model.graph.nodes[0].inputs).toHaveLength(3);
  });

  it('HQQ stores float zero points [N, k_blocks]', async () => {
    const { model, stats } = await run(matmulModel({ K: 64, N: 4, w: randomMatrix(3, 64, 4) }), { algo: 'hqq', blockSize: 32 });
    const zp = model.graph.initializer('W.qzeros')!;
    expect([zp.dataType, zp.dims]).toEqual([DataType.FLOAT, [4, 2]]);
    expect(stats.converted[0].algo).toBe('hqq');
  });

  it('fp16 weights get fp16 scales', async () => {
    const { model } = await run(matmulModel({ K: 32, N: 4, w: randomMatrix(4, 32, 4), kind: 'float16' }), { blockSize: 16 });
    expect(model.graph.initializer('W.scales')!.dataType).toBe(DataType.FLOAT16);
  });

  it('B = Transpose(W[N, K]) is quantized from W rows; the Transpose and W go away', async () => {
    const K = 64;
    const N = 16;
    const wt = randomMatrix(5, N, K); // [N, K]
    const g = new Graph('main');
    g.inputs.push({ name: 'A', type: tensorType(DataType.FLOAT, [1, K]) });
    g.outputs.push({ name: 'Y', type: tensorType(DataType.FLOAT, [1, N]) });
    g.addInitializer(Tensor.fromFloat32('lm_head.weight', [N, K], wt));
    g.addNode({ opType: 'Transpose', name: '/lm_head/Transpose', inputs: ['lm_head.weight'], outputs: ['Wkn'], attributes: [attr.ints('perm', [1, 0])] });
    g.addNode({ opType: 'Identity', name: '/lm_head/Identity', inputs: ['Wkn'], outputs: ['Wkn2'] });
    g.addNode({ opType: 'MatMul', name: '/lm_head/MatMul', inputs: ['A', 'Wkn2'], outputs: ['Y'] });
    const { model } = await run(new Model(g), { blockSize: 32 });
    expect(model.graph.nodes.map((n) => n.opType)).toEqual(['MatMulNBits']);
    expect(model.graph.initializers.map((t) => t.name)).toEqual(['lm_head.weight.qweight', 'lm_head.weight.scales']);
    const ref = int4.quantize({ data: wt, K, N, layout: 'nk' }, { blockSize: 32, symmetric: true });
    expect(await model.graph.initializer('lm_head.weight.qweight')!.bytes()).toEqual(ref.b);
  });

  it('B = Cast(W fp16 or bf16 → FLOAT): quantized from the stored weight with FLOAT scales; the Cast goes away', async () => {
    const K = 32;
    const N = 8;
    const w = randomMatrix(8, K, N);
    for (const kind of ['float16', 'bfloat16'] as const) {
      const g = new Graph('main');
      g.inputs.push({ name: 'A', type: tensorType(DataType.FLOAT, [1, K]) });
      g.outputs.push({ name: 'Y', type: tensorType(DataType.FLOAT, [1, N]) });
      const stored =
        kind === 'float16'
          ? floatTensor('W16', [K, N], w, 'float16')
          : Tensor.fromBytes('W16', DataType.BFLOAT16, [K, N], viewBytes(float32ToBfloat16Bits(w)));
      g.addInitializer(stored);
      g.addNode({ opType: 'Cast', name: '/w/Cast', inputs: ['W16'], outputs: ['W32'], attributes: [attr.int('to', DataType.FLOAT)] });
      g.addNode({ opType: 'MatMul', name: '/m/MatMul', inputs: ['A', 'W32'], outputs: ['Y'] });
      const { model } = await run(new Model(g), { blockSize: 16 });
      expect(model.graph.nodes.map((n) => n.opType)).toEqual(['MatMulNBits']);
      expect(model.graph.initializer('W16.scales')!.dataType).toBe(DataType.FLOAT);
      expect(model.graph.initializer('W16')).toBeUndefined();
    }
    // A bf16 weight used as bf16 is left alone.
    const g = new Graph('main');
    g.inputs.push({ name: 'A', type: tensorType(DataType.BFLOAT16, [1, K]) });
    g.addInitializer(Tensor.fromBytes('Wb', DataType.BFLOAT16, [K, N], new Uint8Array(K * N * 2)));
    g.addNode({ opType: 'MatMul', name: '/b/MatMul', inputs: ['A', 'Wb'], outputs: ['Y'] });
    const { modified, stats } = await run(new Model(g));
    expect(modified).toBe(false);
    expect(stats.skipped[0].reason).toBe('weight Wb is BFLOAT16; only FLOAT and FLOAT16 are quantized');
  });

  it('a weight shared by two MatMuls is quantized once; a weight read elsewhere stays', async () => {
    const K = 32;
    const N = 8;
    const g = new Graph('main');
    g.inputs.push({ name: 'A', type: tensorType(DataType.FLOAT, [1, K]) });
    g.addInitializer(Tensor.fromFloat32('W', [K, N], randomMatrix(6, K, N)));
    g.addInitializer(Tensor.fromFloat32('V', [K, N], randomMatrix(7, K, N)));
    g.addNode({ opType: 'MatMul', name: '/a/MatMul', inputs: ['A', 'W'], outputs: ['y1'] });
    g.addNode({ opType: 'MatMul', name: '/b/MatMul', inputs: ['A', 'W'], outputs: ['y2'] });
    g.addNode({ opType: 'MatMul', name: '/c/MatMul', inputs: ['A', 'V'], outputs: ['y3'] });
    g.addNode({ opType: 'Identity', name: '/v/Identity', inputs: ['V'], outputs: ['v_out'] });
    g.outputs.push(...['y1', 'y2', 'y3', 'v_out'].map((name) => ({ name, type: tensorType(DataType.FLOAT) })));
    const { model, stats } = await run(new Model(g), { blockSize: 16 });
    const names = model.graph.initializers.map((t) => t.name).sort();
    expect(names).toEqual(['V', 'V.qweight', 'V.scales', 'W.qweight', 'W.scales']);
    const [a, b] = model.graph.nodes;
    expect(a.inputs.slice(1)).toEqual(b.inputs.slice(1));
    expect(stats.weightsQuantized).toBe(2);
    expect(stats.bytesRemoved).toBe(K * N * 4);
  });

  it('quantizes MatMuls inside If branches', async () => {
    const K = 32;
    const N = 4;
    const branch = (seed: number) => {
      const b = new Graph(`branch${seed}`);
      b.addInitializer(Tensor.fromFloat32('Wb', [K, N], randomMatrix(seed, K, N)));
      b.addNode({ opType: 'MatMul', name: '/branch/MatMul', inputs: ['A', 'Wb'], outputs: [`yb`] });
      b.outputs.push({ name: 'yb', type: tensorType(DataType.FLOAT) });
      return b;
    };
    const g = new Graph('main');
    g.inputs.push({ name: 'A', type: tensorType(DataType.FLOAT, [1, K]) }, { name: 'c', type: tensorType(DataType.BOOL, []) });
    g.addNode({ opType: 'If', name: '/If', inputs: ['c'], outputs: ['Y'], attributes: [attr.graph('then_branch', branch(1)), attr.graph('else_branch', branch(2))] });
    g.outputs.push({ name: 'Y', type: tensorType(DataType.FLOAT) });
    const { stats } = await run(new Model(g), { blockSize: 16 });
    expect(stats.converted.map((c) => c.node)).toEqual(['/branch/MatMul', '/branch/MatMul']);
    const thenB = g.nodes[0].attribute('then_branch') as { value: Graph };
    expect(thenB.value.nodes[0].opType).toBe('MatMulNBits');
    expect(thenB.value.initializer('Wb')).toBeUndefined();
  });
});

describe('MatMulNBits pass: options', () => {
  function twoLayerModel() {
    const K = 32;
    const g = new Graph('main');
    g.inputs.push({ name: 'A', type: tensorType(DataType.FLOAT, [1, K]) });
    for (const p of ['/model/layers.0/mlp/up_proj', '/model/layers.0/mlp/down_proj', '/lm_head']) {
      const w = `${p.slice(1).replaceAll('/', '.')}.MatMul.weight`;
      g.addInitializer(Tensor.fromFloat32(w, [K, K], randomMatrix(p.length, K, K)));
      g.addNode({ opType: 'MatMul', name: `${p}/MatMul`, inputs: ['A', w], outputs: [`${p}/MatMul/output_0`] });
      g.outputs.push({ name: `${p}/MatMul/output_0`, type: tensorType(DataType.FLOAT) });
    }
    return new Model(g);
  }

  it('exclude patterns (glob and /regex/) leave nodes in float; a pattern matching nothing is a warning', async () => {
    const { model, stats } = await run(twoLayerModel(), { blockSize: 16, exclude: ['*lm_head*', '/up_proj/', 'nothing*'] });
    expect(model.graph.nodes.map((n) => n.opType)).toEqual(['MatMul', 'MatMulNBits', 'MatMul']);
    expect(stats.skipped).toEqual(
      expect.arrayContaining([
        { node: '/lm_head/MatMul', reason: 'excluded by pattern *lm_head*' },
        { node: '/model/layers.0/mlp/up_proj/MatMul', reason: 'excluded by pattern /up_proj/' },
      ]),
    );
    expect(stats.warnings).toEqual(['exclude pattern nothing* matched no MatMul']);
  });

  it('everything excluded: unmodified, and the stats say why', async () => {
    const { modified, stats } = await run(twoLayerModel(), { exclude: ['*'] });
    expect(modified).toBe(false);
    expect(stats.reason).toBe('every MatMul with a constant weight was excluded');
  });

  it('per-node overrides: lm_head at int8 with its own block size', async () => {
    const { model, stats } = await run(twoLayerModel(), {
      blockSize: 16,
      overrides: [{ pattern: '/lm_head/MatMul', scheme: 'int8', blockSize: 32, accuracyLevel: 0 }, { pattern: 'unused', scheme: 'int8' }],
    });
    const lm = model.graph.nodes[2];
    expect(lm.name).toBe('/lm_head/MatMulNBits');
    expect(attrs(lm)).toEqual({ K: 32, N: 32, bits: 8, block_size: 32, accuracy_level: 0 });
    expect(attrs(model.graph.nodes[0]).bits).toBe(4);
    expect(stats.warnings).toEqual(['override pattern unused matched no MatMul']);
  });
});

describe('MatMulNBits pass: untouched, empty, invalid', () => {
  it('empty model: unmodified', async () => {
    const m = new Model(new Graph('main'));
    const { modified, stats, model } = await run(m);
    expect(modified).toBe(false);
    expect(stats.reason).toBe('the model has no MatMul nodes');
    expect(model.opsetVersion('com.microsoft')).toBeUndefined();
  });

  it('MatMuls without constant 2-D float weights are left alone, each with a reason', async () => {
    const g = new Graph('main');
    g.inputs.push({ name: 'A', type: tensorType(DataType.FLOAT, [2, 4]) }, { name: 'B', type: tensorType(DataType.FLOAT, [4, 4]) });
    g.addInitializer(Tensor.fromFloat32('W3', [2, 4, 4], new Float32Array(32)));
    g.addInitializer(Tensor.fromInt32('Wi', [4, 4], new Int32Array(16)));
    g.addInitializer(Tensor.fromFloat32('Wx', [4, 4], new Float32Array(16)));
    g.inputs.push({ name: 'Wx', type: tensorType(DataType.FLOAT, [4, 4]) });
    g.addNode({ opType: 'Relu', name: '/relu', inputs: ['B'], outputs: ['Br'] });
    g.addNode({ opType: 'MatMul', name: '/dyn/MatMul', inputs: ['A', 'B'], outputs: ['y1'] });
    g.addNode({ opType: 'MatMul', name: '/computed/MatMul', inputs: ['A', 'Br'], outputs: ['y2'] });
    g.addNode({ opType: 'MatMul', name: '/rank3/MatMul', inputs: ['A', 'W3'], outputs: ['y3'] });
    g.addNode({ opType: 'MatMul', name: '/int/MatMul', inputs: ['A', 'Wi'], outputs: ['y4'] });
    g.addNode({ opType: 'MatMul', name: '/overridable/MatMul', inputs: ['A', 'Wx'], outputs: ['y5'] });
    const { modified, stats } = await run(new Model(g));
    expect(modified).toBe(false);
    expect(stats.reason).toBe('no MatMul has a constant 2-D float weight');
    expect(stats.skipped).toEqual([
      { node: '/dyn/MatMul', reason: 'weight B is a graph input, not a constant' },
      { node: '/computed/MatMul', reason: 'weight Br is computed at run time (by node /relu (Relu))' },
      { node: '/rank3/MatMul', reason: 'weight W3 has rank 3, not 2' },
      { node: '/int/MatMul', reason: 'weight Wi is INT32; only FLOAT and FLOAT16 are quantized' },
      { node: '/overridable/MatMul', reason: 'weight Wx is also a graph input, so it can be overridden at run time' },
    ]);
  });

  it('an opset-13 model from another tool: only its MatMul changes, com.microsoft ops stay', async () => {
    const K = 32;
    const g = new Graph('torch_jit');
    g.inputs.push({ name: 'x', type: tensorType(DataType.FLOAT, [1, 4, K]) }, { name: 'skip', type: tensorType(DataType.FLOAT, [1, 4, K]) });
    g.addInitializer(Tensor.fromFloat32('gamma', [K], new Float32Array(K).fill(1)));
    g.addInitializer(Tensor.fromFloat32('onnx::MatMul_7', [K, K], randomMatrix(9, K, K)));
    g.addNode({ opType: 'SkipSimplifiedLayerNormalization', domain: 'com.microsoft', name: 'SkipLayerNorm_0', inputs: ['x', 'skip', 'gamma'], outputs: ['h'], attributes: [attr.float('epsilon', 1e-5)] });
    g.addNode({ opType: 'MatMul', name: 'MatMul_3', inputs: ['h', 'onnx::MatMul_7'], outputs: ['y'] });
    g.addNode({ opType: 'FusedMatMul', domain: 'com.microsoft', name: 'FusedMatMul_4', inputs: ['y', 'h'], outputs: ['z'], attributes: [attr.int('transB', 1)] });
    g.outputs.push({ name: 'z', type: tensorType(DataType.FLOAT) });
    const m = new Model(g, [{ domain: '', version: 13 }, { domain: 'com.microsoft', version: 1 }]);
    m.irVersion = 7;
    const { model, stats } = await run(m, { blockSize: 16 });
    expect(model.graph.nodes.map((n) => `${n.domain}:${n.opType}:${n.name}`)).toEqual([
      'com.microsoft:SkipSimplifiedLayerNormalization:SkipLayerNorm_0',
      'com.microsoft:MatMulNBits:MatMul_3/MatMulNBits',
      'com.microsoft:FusedMatMul:FusedMatMul_4',
    ]);
    expect(model.opsetImports).toEqual([{ domain: '', version: 13 }, { domain: 'com.microsoft', version: 1 }]);
    expect(stats.converted[0].weight).toBe('onnx::MatMul_7');
  });

  it('a non-finite weight is an error naming the tensor and the pass', async () => {
    const w = randomMatrix(10, 32, 4);
    w[37] = Number.POSITIVE_INFINITY;
    const err = await run(matmulModel({ K: 32, N: 4, w })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QuantizationError);
    expect((err as QuantizationError).code).toBe('QUANT_NON_FINITE');
    expect((err as QuantizationError).message).toContain('pass quant:matmul-nbits');
    expect((err as QuantizationError).message).toContain('tensor W');
    expect((err as QuantizationError).message).toContain('Infinity at [9, 1]');
  });

  it('bad options are an error before any work', async () => {
    const err = await run(matmulModel({ K: 32, N: 4, w: randomMatrix(1, 32, 4) }), { blockSize: 48 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QuantizationError);
    expect((err as QuantizationError).code).toBe('QUANT_OPTIONS');
    expect((err as QuantizationError).message).toContain('block size 48');
  });

  it('a weight that is a Constant node is quantized and the Constant removed', async () => {
    const K = 32;
    const N = 4;
    const g = new Graph('main');
    g.inputs.push({ name: 'A', type: tensorType(DataType.FLOAT, [1, K]) });
    g.addNode({ opType: 'Constant', name: '/c', inputs: [], outputs: ['Wc'], attributes: [attr.tensor('value', floatTensor('', [K, N], randomMatrix(2, K, N)))] });
    g.addNode({ opType: 'MatMul', name: '/m/MatMul', inputs: ['A', 'Wc'], outputs: ['Y'] });
    g.outputs.push({ name: 'Y', type: tensorType(DataType.FLOAT) });
    const { model } = await run(new Model(g), { blockSize: 16 });
    expect(model.graph.nodes.map((n) => n.opType)).toEqual(['MatMulNBits']);
    expect(model.graph.nodes[0].inputs).toEqual(['A', 'Wc.qweight', 'Wc.scales']);
  });
});
