import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../src/graph/builder.js';
import { concatenatedRotaryCaches, longRopeMscale, rotaryCaches, selectedRotaryCaches } from '../../src/graph/rotary.js';
import { DataType } from '../../src/onnx/dtype.js';

describe('rotaryCaches', () => {
  it('holds cos/sin of position × theta^(-2i/dim), rotaryDim/2 columns', () => {
    const { cos, sin } = rotaryCaches({ length: 3, rotaryDim: 4, theta: 100 });
    expect(cos.length).toBe(6);
    // Hand-computed: inv_freq = [1, 100^(-1/2) = 0.1]; position 2 → angles [2, 0.2].
    expect(cos[4]).toBeCloseTo(Math.cos(2), 6);
    expect(sin[5]).toBeCloseTo(Math.sin(0.2), 6);
    expect(cos[0]).toBe(1);
    expect(sin[1]).toBe(0);
  });

  it('divides frequencies by the LongRoPE factors and scales by mscale', () => {
    const { cos, sin } = rotaryCaches({ length: 2, rotaryDim: 4, theta: 100, factors: [2, 4], mscale: 1.5 });
    // Position 1: angles [1/2, 0.1/4].
    expect(cos[2]).toBeCloseTo(1.5 * Math.cos(0.5), 6);
    expect(sin[3]).toBeCloseTo(1.5 * Math.sin(0.025), 6);
  });

  it('uses the LongRoPE magnitude scale Phi-3 128k ships with', () => {
    expect(longRopeMscale(131072, 4096)).toBeCloseTo(1.190238, 6);
    expect(longRopeMscale(4096, 4096)).toBe(1);
  });
});

describe('cache wiring', () => {
  const longRope = { originalLength: 4, shortFactor: [1, 1], longFactor: [2, 3], shortMscale: 1.1, longMscale: 1.1 };

  it('plain RoPE: cos_cache/sin_cache initializers [max, rot/2]', () => {
    const b = new GraphBuilder();
    const c = selectedRotaryCaches(b, { rotaryDim: 4, theta: 10000, maxLength: 8 }, DataType.FLOAT, 'len');
    expect(c).toEqual({ cos: 'cos_cache', sin: 'sin_cache' });
    expect(b.graph.initializer('cos_cache')!.dims).toEqual([8, 2]);
    expect(b.graph.nodes).toHaveLength(0);
  });

  it('LongRoPE: four initializers and an If on total length > original', async () => {
    const b = new GraphBuilder();
    selectedRotaryCaches(b, { rotaryDim: 4, theta: 10000, maxLength: 8, longRope }, DataType.FLOAT16, 'len');
    expect(b.graph.initializers.map((t) => [t.name, t.dims, t.dataType])).toEqual([
      ['cos_cache_large', [8, 2], DataType.FLOAT16],
      ['sin_cache_large', [8, 2], DataType.FLOAT16],
      ['cos_cache_small', [4, 2], DataType.FLOAT16],
      ['sin_cache_small', [4, 2], DataType.FLOAT16],
    ]);
    const greater = b.graph.nodes.find((n) => n.opType === 'Greater')!;
    expect(greater.name).toBe('/model/rotemb_caches_subgraph/Greater');
    expect(greater.inputs[0]).toBe('len');
    const iff = b.graph.nodes.find((n) => n.opType === 'If')!;
    expect(iff.outputs).toEqual(['cos_cache', 'sin_cache']);
    const then = iff.attribute('then_branch');
    expect(then?.type === 'graph' && [...then.value.outerScopeValues()].sort()).toEqual(['cos_cache_large', 'sin_cache_large']);
  });

  it('DirectML: one concatenated pair, short rows first', async () => {
    const b = new GraphBuilder();
    concatenatedRotaryCaches(b, { rotaryDim: 4, theta: 10000, maxLength: 8, longRope }, DataType.FLOAT);
    const cos = b.graph.initializer('cos_cache')!;
    expect(cos.dims).toEqual([12, 2]);
    const values = await cos.float32();
    const short = rotaryCaches({ length: 4, rotaryDim: 4, theta: 10000, factors: [1, 1], mscale: 1.1 });
    const long = rotaryCaches({ length: 8, rotaryDim: 4, theta: 10000, factors: [2, 3], mscale: 1.1 });
    expect([...values.subarray(0, 8)]).toEqual([...short.cos]);
    expect([...values.subarray(8)]).toEqual([...long.cos]);
  });
});
