// The GatherBlockQuantized pass: embedding tables alone, tied to an lm_head quantized earlier in the same run (both
// tied layouts), ties that cannot be shared, and the untouched / empty / excluded cases.
import { describe, expect, it } from 'vitest';
import { DataType } from '../../src/onnx/dtype.js';
import { Graph, Model, attr, tensorType } from '../../src/onnx/ir.js';
import { Tensor } from '../../src/onnx/tensor.js';
import { int4 } from '../../src/quant/formats/int4.js';
import { runPasses, step } from '../../src/quant/passes/pass.js';
import {
  gatherBlockQuantizedPass,
  type GatherBlockQuantizedOptions,
  type GatherBlockQuantizedStats,
} from '../../src/quant/passes/gather-block-quantized.js';
import { matmulNBitsPass, type MatMulNBitsOptions } from '../../src/quant/passes/matmul-nbits.js';
import { QuantizationError } from '../../src/util/errors.js';
import { randomMatrix } from '../helpers/quant.js';

const V = 48;
const H = 64;

/** input_ids ─ Gather(E) ─ ... ─ MatMul(Transpose(E)) ─ logits (Phi-4-mini style tie), or untied with its own lm_head. */
function lmModel(o: { tied: 'E' | 'W' | 'G' | false; hidden?: number }): Model {
  const h = o.hidden ?? H;
  const g = new Graph('main');
  g.inputs.push({ name: 'input_ids', type: tensorType(DataType.INT64, ['b', 's']) });
  g.outputs.push({ name: 'logits', type: tensorType(DataType.FLOAT, ['b', 's', V]) });
  const e = randomMatrix(1, V, h);
  if (o.tied === 'G') {
    // phi-forge's tie (src/arch/blocks.ts): gather columns of the [H, V] lm_head weight, then move H last.
    const w = new Float32Array(h * V);
    for (let v = 0; v < V; v++) for (let k = 0; k < h; k++) w[k * V + v] = e[v * h + k];
    g.addInitializer(Tensor.fromFloat32('lm_head.MatMul.weight', [h, V], w));
    g.addNode({ opType: 'Gather', name: '/model/embed_tokens/Gather', inputs: ['lm_head.MatMul.weight', 'input_ids'], outputs: ['g'], attributes: [attr.int('axis', 1)] });
    g.addNode({ opType: 'Transpose', name: '/model/embed_tokens/Transpose', inputs: ['g'], outputs: ['x'], attributes: [attr.ints('perm', [1, 2, 0])] });
    g.addNode({ opType: 'MatMul', name: '/lm_head/MatMul', inputs: ['x', 'lm_head.MatMul.weight'], outputs: ['logits'] });
  } else if (o.tied === 'W') {
    // onnxruntime-genai's float tie: the lm_head weight [H, V] is the initializer; the embedding gathers its transpose.
    const w = new Float32Array(h * V);
    for (let v = 0; v < V; v++) for (let k = 0; k < h; k++) w[k * V + v] = e[v * h + k];
    g.addInitializer(Tensor.fromFloat32('lm_head.MatMul.weight', [h, V], w));
    g.addNode({ opType: 'Transpose', name: '/model/embed_tokens/Transpose', inputs: ['lm_head.MatMul.weight'], outputs: ['Et'], attributes: [attr.ints('perm', [1, 0])] });
    g.addNode({ opType: 'Gather', name: '/model/embed_tokens/Gather', inputs: ['Et', 'input_ids'], outputs: ['x'] });
    g.addNode({ opType: 'MatMul', name: '/lm_head/MatMul', inputs: ['x', 'lm_head.MatMul.weight'], outputs: ['logits'] });
  } else {
    g.addInitializer(Tensor.fromFloat32('model.embed_tokens.weight', [V, h], e));
    g.addNode({ opType: 'Gather', name: '/model/embed_tokens/Gather', inputs: ['model.embed_tokens.weight', 'input_ids'], outputs: ['x'] });
    if (o.tied === 'E') {
      g.addNode({ opType: 'Transpose', name: '/lm_head/Transpose', inputs: ['model.embed_tokens.weight'], outputs: ['Wt'], attributes: [attr.ints('perm', [1, 0])] });
      g.addNode({ opType: 'MatMul', name: '/lm_head/MatMul', inputs: ['x', 'Wt'], outputs: ['logits'] });
    } else {
      g.addInitializer(Tensor.fromFloat32('lm_head.MatMul.weight', [h, V], randomMatrix(2, h, V)));
      g.addNode({ opType: 'MatMul', name: '/lm_head/MatMul', inputs: ['x', 'lm_head.MatMul.weight'], outputs: ['logits'] });
    }
  }
  return new Model(g);
}

async function both(model: Model, mm: MatMulNBitsOptions, gather: GatherBlockQuantizedOptions = {}) {
  const r = await runPasses(model, [step(matmulNBitsPass, mm), step(gatherBlockQuantizedPass, gather)]);
  return { model: r.model, stats: r.reports[1].stats as GatherBlockQuantizedStats, modified: r.reports[1].modified };
}

describe('GatherBlockQuantized pass', () => {
  it('untied embedding: its own uint8 [V, H/2] data and [V, H/block] scales', async () => {
    const r = await runPasses(lmModel({ tied: false }), [step(gatherBlockQuantizedPass, { blockSize: 32 })]);
    const g = r.model.graph;
    const n = g.nodes[0];
    expect(n.opType).toBe('GatherBlockQuantized');
    expect(n.domain).toBe('com.microsoft');
    expect(n.name).toBe('/model/embed_tokens/GatherBlockQuantized');
    expect(n.inputs).toEqual(['model.embed_tokens.weight.qweight', 'input_ids', 'model.embed_tokens.weight.scales']);
    expect(Object.fromEntries(n.attributes.map((a) => [a.name, Number(a.value)]))).toEqual({ bits: 4, block_size: 32, gather_axis: 0, quantize_axis: 1 });
    const data = g.initializer('model.embed_tokens.weight.qweight')!;
    expect([data.dataType, data.dims]).toEqual([DataType.UINT8, [V, H / 2]]);
    expect(g.initializer('model.embed_tokens.weight.scales')!.dims).toEqual([V, 2]);
    expect(g.initializer('model.embed_tokens.weight')).toBeUndefined();
    // The lm_head MatMul was not touched by this pass.
    expect(g.nodes[1].opType).toBe('MatMul');
    const ref = int4.quantize({ data: randomMatrix(1, V, H), K: H, N: V, layout: 'nk' }, { blockSize: 32, symmetric: true });
    expect(await data.bytes()).toEqual(ref.b);
  });

  it('two Gathers of one table read one quantized copy', async () => {
    const m = lmModel({ tied: false });
    m.graph.addNode({ opType: 'Gather', name: '/second/Gather', inputs: ['model.embed_tokens.weight', 'input_ids'], outputs: ['x2'] });
    m.graph.outputs.push({ name: 'x2', type: tensorType(DataType.FLOAT) });
    const r = await runPasses(m, [step(gatherBlockQuantizedPass, { blockSize: 32 })]);
    const g = r.model.graph;
    const gbq = g.nodes.filter((n) => n.opType === 'GatherBlockQuantized');
    expect(gbq).toHaveLength(2);
    expect(gbq[0].inputs).toEqual(gbq[1].inputs);
    expect(g.initializers.map((t) => t.name).filter((n) => n.startsWith('model.embed_tokens'))).toEqual([
      'model.embed_tokens.weight.qweight',
      'model.embed_tokens.weight.scales',
    ]);
  });

  it('a row length that is not a multiple of the block needs no padding in GatherBlockQuantized', async () => {
    const r = await runPasses(lmModel({ tied: false, hidden: 40 }), [step(gatherBlockQuantizedPass, { blockSize: 16, asym: true })]);
    const g = r.model.graph;
    expect(g.initializer('model.embed_tokens.weight.qweight')!.dims).toEqual([V, 20]);
    expect(g.initializer('model.embed_tokens.weight.scales')!.dims).toEqual([V, 3]);
    expect(g.initializer('model.embed_tokens.weight.qzeros')!.dims).toEqual([V, 2]);
  });

  const ties = {
    E: 'Gather(E) + MatMul(Transpose(E))',
    W: 'Gather(Transpose(W)) + MatMul(W)',
    G: 'Gather(W, axis 1) ─ Transpose(1, 2, 0) + MatMul(W)',
  } as const;
  for (const [tied, label] of Object.entries(ties) as ['E' | 'W' | 'G', string][]) {
    it(`tied (${label}): reads the lm_head tensors`, async () => {
      const { model, stats } = await both(lmModel({ tied }), { blockSize: 32, asym: true, accuracyLevel: 4 });
      const g = model.graph;
      const base = tied === 'E' ? 'model.embed_tokens.weight' : 'lm_head.MatMul.weight';
      expect(g.nodes.map((n) => `${n.opType}:${n.name}`)).toEqual([
        'Reshape:/model/embed_tokens/Reshape',
        'GatherBlockQuantized:/model/embed_tokens/GatherBlockQuantized',
        'MatMulNBits:/lm_head/MatMulNBits',
      ]);
      const [reshape, gbq, mnb] = g.nodes;
      expect(reshape.inputs).toEqual([`${base}.qweight`, '/model/embed_tokens/Reshape/shape']);
      expect([...(await g.initializer('/model/embed_tokens/Reshape/shape')!.bytes())]).toEqual([...new Uint8Array(BigInt64Array.of(48n, 32n).buffer)]);
      expect(gbq.inputs).toEqual(['/model/embed_tokens/Reshape/output_0', 'input_ids', `${base}.scales`, `${base}.qzeros`]);
      // The embedding's output value is kept (the fused Transpose's, for the axis-1 pattern).
      expect(gbq.outputs).toEqual(['x']);
      expect(mnb.inputs[0]).toBe('x');
      expect(mnb.inputs.slice(1)).toEqual([`${base}.qweight`, `${base}.scales`, `${base}.qzeros`]);
      // One copy of the weight: the float table is gone, no second quantized copy.
      expect(g.initializers.map((t) => t.name).sort()).toEqual(['/model/embed_tokens/Reshape/shape', `${base}.qweight`, `${base}.qzeros`, `${base}.scales`].sort());
      expect(stats.converted[0]).toMatchObject({ tiedTo: `${base}.qweight`, rows: V, cols: H, bits: 4, blockSize: 32 });
      expect(stats.bytesRemoved).toBe(V * H * 4);
    });
  }

  it('a tie with float (HQQ) zero points or a padded last block is quantized separately, with a warning', async () => {
    const hqq = await both(lmModel({ tied: 'E' }), { blockSize: 32, algo: 'hqq' });
    expect(hqq.stats.converted[0].tiedTo).toBeUndefined();
    expect(hqq.stats.warnings[0]).toContain('its zero points are floats');
    expect(hqq.model.graph.initializer('model.embed_tokens.weight.qweight.2')).toBeDefined();
    const padded = await both(lmModel({ tied: 'E', hidden: 48 }), { blockSize: 32 });
    expect(padded.stats.warnings[0]).toContain('row length 48 is not a multiple of block size 32');
  });

  it('invalid: a non-finite table or a bad block size is a QuantizationError naming the pass', async () => {
    const m = lmModel({ tied: false });
    const t = m.graph.initializer('model.embed_tokens.weight')!;
    const data = new Float32Array((await t.bytes()).slice().buffer);
    data[5 * H + 3] = Number.NaN;
    m.graph.replaceInitializer(Tensor.fromFloat32(t.name, t.dims, data));
    const err = await runPasses(m, [step(gatherBlockQuantizedPass, {})]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QuantizationError);
    expect((err as QuantizationError).message).toContain('pass quant:gather-block-quantized: tensor model.embed_tokens.weight');
    expect((err as QuantizationError).message).toContain('NaN at [5, 3]');
    const bad = await runPasses(lmModel({ tied: false }), [step(gatherBlockQuantizedPass, { blockSize: 8 })]).catch((e: unknown) => e);
    expect((bad as QuantizationError).code).toBe('QUANT_OPTIONS');
  });

  it('empty and untouched models are left alone with a reason; excluded Gathers are skipped', async () => {
    const empty = await runPasses(new Model(new Graph('g')), [step(gatherBlockQuantizedPass, {})]);
    expect(empty.modified).toBe(false);
    expect((empty.reports[0].stats as GatherBlockQuantizedStats).reason).toBe('no Gather reads rows of a constant 2-D float table');

    const g = new Graph('main');
    g.inputs.push({ name: 'table', type: tensorType(DataType.FLOAT, [4, 32]) }, { name: 'i', type: tensorType(DataType.INT64, [2]) });
    g.addInitializer(Tensor.fromFloat32('T', [4, 32], new Float32Array(128)));
    g.addNode({ opType: 'Gather', name: 'dyn', inputs: ['table', 'i'], outputs: ['a'] });
    g.addNode({ opType: 'Gather', name: 'axis1', inputs: ['T', 'i'], outputs: ['b'], attributes: [attr.int('axis', 1)] });
    const untouched = await runPasses(new Model(g), [step(gatherBlockQuantizedPass, {})]);
    expect(untouched.modified).toBe(false);
    expect((untouched.reports[0].stats as GatherBlockQuantizedStats).skipped).toEqual([
      { node: 'dyn', reason: 'weight table is a graph input, not a constant' },
      { node: 'axis1', reason: 'Gather on axis 1 whose result is not only moved back by a Transpose' },
    ]);

    const ex = await runPasses(lmModel({ tied: false }), [step(gatherBlockQuantizedPass, { exclude: ['*embed*'] })]);
    expect(ex.modified).toBe(false);
  });
});
