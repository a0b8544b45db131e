import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../src/graph/builder.js';
import { linear, weightName } from '../../src/graph/linear.js';
import { skipRmsNorm } from '../../src/graph/norms.js';
import { OnnxError } from '../../src/util/errors.js';

describe('GraphBuilder', () => {
  it('names outputs <node>/output_<i> and imports the two opsets at IR 10', () => {
    const b = new GraphBuilder();
    expect(b.op('Split', '/model/x/Split', ['a'], { outputs: 2 })).toEqual(['/model/x/Split/output_0', '/model/x/Split/output_1']);
    expect(b.model.irVersion).toBe(10);
    expect(b.model.opsetImports).toEqual([
      { domain: '', version: 21 },
      { domain: 'com.microsoft', version: 1 },
    ]);
  });

  it('refuses a node name used twice', () => {
    const b = new GraphBuilder();
    b.op1('Relu', '/model/a/Relu', ['x']);
    expect(() => b.op1('Relu', '/model/a/Relu', ['y'])).toThrow(OnnxError);
  });

  it('makes each constant once, named as genai names it', () => {
    const b = new GraphBuilder();
    expect(b.int64([1])).toBe('/model/constants/INT64/[1]');
    expect(b.int64([1])).toBe('/model/constants/INT64/[1]');
    expect(b.int64(1)).toBe('/model/constants/INT64/1');
    expect(b.graph.nodes.map((n) => n.name)).toEqual(['/model/constant_nodes/INT64/[1]', '/model/constant_nodes/INT64/1']);
  });
});

describe('small builders', () => {
  it('linear: MatMul then bias Add, last output renamed', () => {
    const b = new GraphBuilder();
    const out = linear(b, '/lm_head', 'x', 'w', { bias: 'bb', output: 'logits' });
    expect(out).toBe('logits');
    expect(b.graph.nodes.map((n) => [n.name, n.inputs, n.outputs])).toEqual([
      ['/lm_head/MatMul', ['x', 'w'], ['/lm_head/MatMul/output_0']],
      ['/lm_head/Add', ['/lm_head/MatMul/output_0', 'bb'], ['logits']],
    ]);
    expect(weightName('/model/layers.0/attn/o_proj/MatMul', 'weight')).toBe('model.layers.0.attn.o_proj.MatMul.weight');
  });

  it('skipRmsNorm: output_0 and the residual as output 3; the last norm drops it', () => {
    const b = new GraphBuilder();
    const n = skipRmsNorm(b, '/model/layers.1/input_layernorm', 'x', 's', 'w', 1e-5);
    expect(n).toEqual({ output: '/model/layers.1/input_layernorm/output_0', residual: '/model/layers.1/input_layernorm/output_3' });
    const node = b.graph.nodes[0];
    expect([node.name, node.domain, node.outputs]).toEqual([
      '/model/layers.1/input_layernorm/SkipLayerNorm',
      'com.microsoft',
      ['/model/layers.1/input_layernorm/output_0', '', '', '/model/layers.1/input_layernorm/output_3'],
    ]);
    expect(skipRmsNorm(b, '/model/layers.2/final_norm_layernorm', 'x', 's', 'w', 1e-5, true)).toEqual({
      output: '/model/layers.2/final_norm_layernorm/output_0',
    });
  });
});
