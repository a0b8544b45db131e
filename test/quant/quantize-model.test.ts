// quantizeModel: the pass order (MatMul weights, then embeddings), embeddings only when tied by default, and
// run-level warnings for exclude patterns that matched no node in any pass.
import { describe, expect, it } from 'vitest';
import { DataType } from '../../src/onnx/dtype.js';
import { Graph, Model, attr, tensorType } from '../../src/onnx/ir.js';
import { Tensor } from '../../src/onnx/tensor.js';
import type { GatherBlockQuantizedStats } from '../../src/quant/passes/gather-block-quantized.js';
import { quantizationPasses, quantizeModel, wantsCalibration } from '../../src/quant/quantize-model.js';
import { randomMatrix } from '../helpers/quant.js';

/** The phi-forge / onnxruntime-genai layout: lm_head weight [H, V], tied embedding = Gather(Transpose(it)). */
function lm(tied: boolean): Model {
  const V = 40;
  const H = 32;
  const g = new Graph('main');
  g.inputs.push({ name: 'input_ids', type: tensorType(DataType.INT64, [1, 's']) });
  g.outputs.push({ name: 'logits', type: tensorType(DataType.FLOAT) });
  g.addInitializer(Tensor.fromFloat32('lm_head.MatMul.weight', [H, V], randomMatrix(1, H, V)));
  if (tied) {
    g.addNode({ opType: 'Transpose', name: '/model/embed_tokens/Transpose', inputs: ['lm_head.MatMul.weight'], outputs: ['t'], attributes: [attr.ints('perm', [1, 0])] });
    g.addNode({ opType: 'Gather', name: '/model/embed_tokens/Gather', inputs: ['t', 'input_ids'], outputs: ['x'] });
  } else {
    g.addInitializer(Tensor.fromFloat32('model.embed_tokens.weight', [V, H], randomMatrix(2, V, H)));
    g.addNode({ opType: 'Gather', name: '/model/embed_tokens/Gather', inputs: ['model.embed_tokens.weight', 'input_ids'], outputs: ['x'] });
  }
  g.addNode({ opType: 'MatMul', name: '/lm_head/MatMul', inputs: ['x', 'lm_head.MatMul.weight'], outputs: ['logits'] });
  return new Model(g);
}

describe('quantizeModel', () => {
  it('lists MatMulNBits then GatherBlockQuantized, or only the first with embeddings: none', () => {
    expect(quantizationPasses({}).map((s) => s.pass.name)).toEqual(['quant:matmul-nbits', 'quant:gather-block-quantized']);
    expect(quantizationPasses({ embeddings: 'none' }).map((s) => s.pass.name)).toEqual(['quant:matmul-nbits']);
  });

  it('plans mixed precision first and scales for AWQ (base algorithm or an override) before MatMulNBits', () => {
    const names = (o: Parameters<typeof quantizationPasses>[0]) => quantizationPasses(o).map((s) => s.pass.name);
    expect(names({ algo: 'awq', mixed: { budgetBits: 6 } })).toEqual([
      'quant:mixed-precision',
      'quant:awq-scale',
      'quant:matmul-nbits',
      'quant:gather-block-quantized',
    ]);
    expect(names({ overrides: [{ pattern: '*mlp*', algo: 'awq' }], embeddings: 'none' })).toEqual(['quant:awq-scale', 'quant:matmul-nbits']);
  });

  it('says when calibration data is needed: GPTQ or AWQ anywhere, or mixed precision', () => {
    expect(wantsCalibration({ algo: 'rtn' })).toBe(false);
    expect(wantsCalibration({ algo: 'hqq', overrides: [{ pattern: '*', scheme: 'int8' }] })).toBe(false);
    expect(wantsCalibration({ algo: 'awq' })).toBe(true);
    expect(wantsCalibration({ algo: 'gptq' })).toBe(true);
    expect(wantsCalibration({ algo: 'rtn', overrides: [{ pattern: '*mlp*', algo: 'awq' }] })).toBe(true);
    expect(wantsCalibration({ mixed: { budgetBits: 6 } })).toBe(true);
  });

  it('HQQ with a tied lm_head: the table cannot share float zero points, so it is quantized on its own with RTN', async () => {
    const r = await quantizeModel(lm(true), { scheme: 'int4', algo: 'hqq', blockSize: 16, threads: 0 });
    const st = r.reports[1].stats as GatherBlockQuantizedStats;
    expect(r.reports[1].modified).toBe(true);
    expect(st.converted[0].tiedTo).toBeUndefined();
    expect(st.converted[0].untied).toBe('the lm_head lm_head.MatMul.weight.qweight cannot be shared (its zero points are floats): quantized on its own with RTN');
    expect(st.converted[0].bits).toBe(4);
    expect(r.model.graph.nodes.map((n) => n.opType)).toEqual(['GatherBlockQuantized', 'MatMulNBits']);
    // No float table is left: the lm_head's HQQ tensors plus the table's own int4 RTN codes and scales (no zero points).
    const g = r.model.graph;
    expect(g.initializers.filter((t) => t.dataType === DataType.FLOAT).map((t) => t.name)).toEqual([
      'lm_head.MatMul.weight.scales',
      'lm_head.MatMul.weight.qzeros',
      'lm_head.MatMul.weight.scales.2',
    ]);
    const table = g.initializer(g.nodes[0].inputs[0])!;
    expect(table.dims).toEqual([40, 16]); // 40 rows of 32 values at 4 bits
    expect(g.nodes[0].inputs.length).toBe(3);
  });

  it('by default converts an embedding only when it is tied to the quantized lm_head', async () => {
    const untied = await quantizeModel(lm(false), { scheme: 'int4', blockSize: 16, threads: 0 });
    expect(untied.reports[1].modified).toBe(false);
    expect((untied.reports[1].stats as GatherBlockQuantizedStats).skipped[0].reason).toContain('only tied tables are converted');
    const all = await quantizeModel(lm(false), { scheme: 'int4', blockSize: 16, threads: 0, embeddings: 'all' });
    expect(all.reports[1].modified).toBe(true);
    const tied = await quantizeModel(lm(true), { scheme: 'int4', blockSize: 16, threads: 0 });
    expect(tied.model.graph.nodes.map((n) => n.opType)).toEqual(['Reshape', 'GatherBlockQuantized', 'MatMulNBits']);
    expect(tied.model.graph.initializers.map((t) => t.name).sort()).toEqual([
      '/model/embed_tokens/Reshape/shape',
      'lm_head.MatMul.weight.qweight',
      'lm_head.MatMul.weight.scales',
    ]);
  });

  it('warns once about exclude patterns that matched no node in any pass', async () => {
    const r = await quantizeModel(lm(false), { scheme: 'int4', blockSize: 16, threads: 0, embeddings: 'all', exclude: ['*embed_tokens*', 'nothing'] });
    expect(r.warnings).toEqual(['exclude pattern nothing matched no node']);
    expect(r.reports.flatMap((p) => (p.stats as { warnings: string[] }).warnings)).toEqual([]);
    expect(r.reports[1].modified).toBe(false);
  });
});
