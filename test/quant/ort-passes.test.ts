// Pass outputs run in onnxruntime-node: a tied-embedding model (GatherBlockQuantized reading the lm_head's MatMulNBits
// weight through a Reshape), an untied asymmetric table with a partial last block, and a foreign opset-13 model with
// com.microsoft ops, each compared with a reference built from the quantized initializers by the test's own reader.
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { encodeModel } from '../../src/onnx/codec.js';
import { DataType } from '../../src/onnx/dtype.js';
import { Graph, Model, attr, tensorType } from '../../src/onnx/ir.js';
import { Tensor } from '../../src/onnx/tensor.js';
import { runPasses, step } from '../../src/quant/passes/pass.js';
import { gatherBlockQuantizedPass } from '../../src/quant/passes/gather-block-quantized.js';
import { matmulNBitsPass } from '../../src/quant/passes/matmul-nbits.js';
import { gemm, maxAbs, maxAbsDiff, randomMatrix, refDequantize } from '../helpers/quant.js';

type Ort = typeof import('onnxruntime-node');
const ort = createRequire(import.meta.url)('onnxruntime-node') as Ort;

async function run(model: Model, feeds: Record<string, import('onnxruntime-node').Tensor>): Promise<Record<string, Float32Array>> {
  const s = await ort.InferenceSession.create(encodeModel(model));
  try {
    const r = await s.run(feeds);
    return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.data as Float32Array]));
  } finally {
    await s.release();
  }
}

const ids = (v: number[]) => new ort.Tensor('int64', BigInt64Array.from(v.map(BigInt)), [1, v.length]);

/** Float64 [K, N] from a MatMulNBits / GatherBlockQuantized initializer set. */
async function dequant(g: Graph, base: string, o: { K: number; N: number; bits: number; blockSize: number; rowBytes: number }) {
  const zp = g.initializer(`${base}.qzeros`);
  return refDequantize({
    ...o,
    b: await g.initializer(`${base}.qweight`)!.bytes(),
    scales: await g.initializer(`${base}.scales`)!.float32(),
    zp: zp ? await zp.bytes() : undefined,
  });
}

describe('quantized models run in onnxruntime', () => {
  it('tied embeddings: GatherBlockQuantized over the reshaped lm_head weight gives the dequantized rows', async () => {
    const V = 48;
    const H = 64;
    const e = randomMatrix(11, V, H, 0.5);
    const g = new Graph('main');
    g.inputs.push({ name: 'input_ids', type: tensorType(DataType.INT64, [1, 'seq']) });
    g.outputs.push({ name: 'x', type: tensorType(DataType.FLOAT) }, { name: 'logits', type: tensorType(DataType.FLOAT) });
    g.addInitializer(Tensor.fromFloat32('model.embed_tokens.weight', [V, H], e));
    g.addNode({ opType: 'Gather', name: '/model/embed_tokens/Gather', inputs: ['model.embed_tokens.weight', 'input_ids'], outputs: ['x'] });
    g.addNode({ opType: 'Transpose', name: '/lm_head/Transpose', inputs: ['model.embed_tokens.weight'], outputs: ['Wt'], attributes: [attr.ints('perm', [1, 0])] });
    g.addNode({ opType: 'MatMul', name: '/lm_head/MatMul', inputs: ['x', 'Wt'], outputs: ['logits'] });
    const model = new Model(g);
    const tokens = [3, 0, 47, 12, 3];
    const float = await run(model, { input_ids: ids(tokens) });

    for (const [scheme, asym, bits] of [['int4', false, 4], ['int4', true, 4], ['int8', false, 8], ['ternary', false, 2]] as const) {
      const q = new Model(cloneGraph(g));
      const r = await runPasses(q, [step(matmulNBitsPass, { scheme, blockSize: 32, asym, accuracyLevel: 0 }), step(gatherBlockQuantizedPass, {})]);
      const qg = r.model.graph;
      expect(qg.nodes.map((n) => n.opType)).toEqual(['Reshape', 'GatherBlockQuantized', 'MatMulNBits']);
      const out = await run(r.model, { input_ids: ids(tokens) });
      // Reference from the shared initializers: rows of the [H, V] dequantized weight's transpose.
      const w = await dequant(qg, 'model.embed_tokens.weight', { K: H, N: V, bits, blockSize: 32, rowBytes: (H * bits) / 8 });
      const x = new Float64Array(tokens.length * H);
      tokens.forEach((t, i) => {
        for (let k = 0; k < H; k++) x[i * H + k] = w[k * V + t];
      });
      expect(maxAbsDiff(out.x, x)).toBeLessThan(1e-6);
      const logits = gemm(out.x, w, tokens.length, H, V);
      expect(maxAbsDiff(out.logits, logits)).toBeLessThan(1e-4 * (1 + maxAbs(logits)));
      // And it is still the model: close to the float one (within the format's error).
      expect(maxAbsDiff(out.x, float.x)).toBeLessThan((bits === 2 ? 0.8 : 0.15) * maxAbs(float.x));
    }
  });

  it("phi-forge's tie (Gather on axis 1 of the [H, V] lm_head weight, then Transpose) fuses into one GatherBlockQuantized", async () => {
    const V = 40;
    const H = 64;
    const w = randomMatrix(17, H, V, 0.5);
    const g = new Graph('main');
    g.inputs.push({ name: 'input_ids', type: tensorType(DataType.INT64, [1, 'seq']) });
    g.outputs.push({ name: 'x', type: tensorType(DataType.FLOAT) }, { name: 'logits', type: tensorType(DataType.FLOAT) });
    g.addInitializer(Tensor.fromFloat32('lm_head.MatMul.weight', [H, V], w));
    g.addNode({ opType: 'Gather', name: '/model/embed_tokens/Gather', inputs: ['lm_head.MatMul.weight', 'input_ids'], outputs: ['gt'], attributes: [attr.int('axis', 1)] });
    g.addNode({ opType: 'Transpose', name: '/model/embed_tokens/Transpose', inputs: ['gt'], outputs: ['x'], attributes: [attr.ints('perm', [1, 2, 0])] });
    g.addNode({ opType: 'MatMul', name: '/lm_head/MatMul', inputs: ['x', 'lm_head.MatMul.weight'], outputs: ['logits'] });
    const tokens = [39, 1, 20];
    const float = await run(new Model(cloneGraph(g)), { input_ids: ids(tokens) });
    const r = await runPasses(new Model(g), [step(matmulNBitsPass, { blockSize: 32, accuracyLevel: 0 }), step(gatherBlockQuantizedPass, {})]);
    expect(r.model.graph.nodes.map((n) => n.opType)).toEqual(['Reshape', 'GatherBlockQuantized', 'MatMulNBits']);
    const out = await run(r.model, { input_ids: ids(tokens) });
    const wd = await dequant(r.model.graph, 'lm_head.MatMul.weight', { K: H, N: V, bits: 4, blockSize: 32, rowBytes: 32 });
    const x = new Float64Array(tokens.length * H);
    tokens.forEach((t, i) => {
      for (let k = 0; k < H; k++) x[i * H + k] = wd[k * V + t];
    });
    expect(maxAbsDiff(out.x, x)).toBeLessThan(1e-6);
    expect(maxAbsDiff(out.x, float.x)).toBeLessThan(0.15 * maxAbs(float.x));
  });

  it('an untied asymmetric table whose rows end in a partial block', async () => {
    const V = 30;
    const H = 40;
    const g = new Graph('main');
    g.inputs.push({ name: 'input_ids', type: tensorType(DataType.INT64, [1, 'seq']) });
    g.outputs.push({ name: 'x', type: tensorType(DataType.FLOAT) });
    g.addInitializer(Tensor.fromFloat32('E', [V, H], randomMatrix(12, V, H)));
    g.addNode({ opType: 'Gather', name: '/emb/Gather', inputs: ['E', 'input_ids'], outputs: ['x'] });
    const r = await runPasses(new Model(g, [{ domain: '', version: 17 }]), [step(gatherBlockQuantizedPass, { blockSize: 16, asym: true, bits: 4 })]);
    const tokens = [29, 0, 7];
    const out = await run(r.model, { input_ids: ids(tokens) });
    const w = await dequant(r.model.graph, 'E', { K: H, N: V, bits: 4, blockSize: 16, rowBytes: 20 });
    const x = new Float64Array(tokens.length * H);
    tokens.forEach((t, i) => {
      for (let k = 0; k < H; k++) x[i * H + k] = w[k * V + t];
    });
    expect(maxAbsDiff(out.x, x)).toBeLessThan(1e-6);
  });

  it('8-bit tables and an 8-bit lm_head (bits 8, one code per byte)', async () => {
    const V = 40;
    const H = 32;
    const g = new Graph('main');
    g.inputs.push({ name: 'input_ids', type: tensorType(DataType.INT64, [1, 'seq']) });
    g.outputs.push({ name: 'x', type: tensorType(DataType.FLOAT) });
    g.addInitializer(Tensor.fromFloat32('E', [V, H], randomMatrix(13, V, H)));
    g.addNode({ opType: 'Gather', name: '/emb/Gather', inputs: ['E', 'input_ids'], outputs: ['x'] });
    const r = await runPasses(new Model(g), [step(gatherBlockQuantizedPass, { blockSize: 16, bits: 8 })]);
    const out = await run(r.model, { input_ids: ids([5, 39]) });
    const w = await dequant(r.model.graph, 'E', { K: H, N: V, bits: 8, blockSize: 16, rowBytes: 32 });
    const x = new Float64Array(2 * H);
    [5, 39].forEach((t, i) => {
      for (let k = 0; k < H; k++) x[i * H + k] = w[k * V + t];
    });
    expect(maxAbsDiff(out.x, x)).toBeLessThan(1e-6);
  });

  it('a foreign opset-13 model with com.microsoft ops still runs, close to its float outputs', async () => {
    const K = 64;
    const g = new Graph('torch_jit');
    g.inputs.push({ name: 'x', type: tensorType(DataType.FLOAT, [1, 4, K]) }, { name: 'skip', type: tensorType(DataType.FLOAT, [1, 4, K]) });
    g.outputs.push({ name: 'z', type: tensorType(DataType.FLOAT) });
    g.addInitializer(Tensor.fromFloat32('gamma', [K], new Float32Array(K).fill(1)));
    g.addInitializer(Tensor.fromFloat32('onnx::MatMul_7', [K, K], randomMatrix(14, K, K, 0.2)));
    g.addNode({ opType: 'SkipSimplifiedLayerNormalization', domain: 'com.microsoft', name: 'SkipLayerNorm_0', inputs: ['x', 'skip', 'gamma'], outputs: ['h'], attributes: [attr.float('epsilon', 1e-5)] });
    g.addNode({ opType: 'MatMul', name: 'MatMul_3', inputs: ['h', 'onnx::MatMul_7'], outputs: ['y'] });
    g.addNode({ opType: 'FusedMatMul', domain: 'com.microsoft', name: 'FusedMatMul_4', inputs: ['y', 'h'], outputs: ['z'], attributes: [attr.int('transB', 1)] });
    const m = new Model(g, [{ domain: '', version: 13 }, { domain: 'com.microsoft', version: 1 }]);
    m.irVersion = 7;
    const feeds = () => ({
      x: new ort.Tensor('float32', randomMatrix(15, 4, K, 1), [1, 4, K]),
      skip: new ort.Tensor('float32', randomMatrix(16, 4, K, 1), [1, 4, K]),
    });
    const before = await run(m, feeds());
    const q = new Model(cloneGraph(g), m.opsetImports.map((o) => ({ ...o })));
    q.irVersion = 7;
    const r = await runPasses(q, [step(matmulNBitsPass, { blockSize: 32, accuracyLevel: 4 })]);
    expect(r.modified).toBe(true);
    const after = await run(r.model, feeds());
    expect(maxAbsDiff(after.z, before.z)).toBeLessThan(0.1 * maxAbs(before.z));
    expect(maxAbsDiff(after.z, before.z)).toBeGreaterThan(0);
  });
});

/** A shallow structural copy (nodes and initializer list), enough for passes that replace rather than mutate. */
function cloneGraph(g: Graph): Graph {
  const c = new Graph(g.name);
  c.inputs = g.inputs.map((v) => ({ ...v }));
  c.outputs = g.outputs.map((v) => ({ ...v }));
  c.initializers = [...g.initializers];
  c.nodes = g.nodes.map((n) => Object.assign(Object.create(Object.getPrototypeOf(n)), n, { inputs: [...n.inputs], outputs: [...n.outputs], attributes: [...n.attributes] }));
  return c;
}
