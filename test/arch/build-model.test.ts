import { describe, expect, it } from 'vitest';
import { rotaryPlacement } from '../../src/arch/blocks.js';
import { buildModel } from '../../src/arch/build-model.js';
import { parseHfConfig } from '../../src/checkpoint/hf-config.js';
import { planTensors } from '../../src/arch/synth.js';
import type { WeightSource } from '../../src/graph/weights.js';
import { DataType } from '../../src/onnx/dtype.js';
import { getTarget } from '../../src/target/index.js';
import { graphLayout } from '../../src/target/layout.js';
import { ArchitectureError } from '../../src/util/errors.js';

const none: WeightSource = { info: () => undefined, readRows: async () => new Uint8Array(0) };
const base = {
  architectures: ['Phi3ForCausalLM'],
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 1,
  num_attention_heads: 4,
  vocab_size: 512,
  max_position_embeddings: 64,
};

/** Shapes of every tensor the config implies (fp32); building reads shapes only, so no bytes are needed. */
function shapesOf(config: Record<string, unknown>): { names: string[]; source: WeightSource } {
  const plan = new Map(planTensors(config).map((t) => [t.name, t.shape]));
  return {
    names: [...plan.keys()],
    source: {
      info: (name) => (plan.has(name) ? { dataType: DataType.FLOAT, dims: plan.get(name)! } : undefined),
      readRows: () => Promise.reject(new Error('building must not read weights')),
    },
  };
}

const build = (config: Record<string, unknown>, target = 'cpu') =>
  buildModel({ config: parseHfConfig(config, 'config.json'), tensorNames: [], source: none, layout: graphLayout(getTarget(target), 'fp32') });

const buildWithShapes = (config: Record<string, unknown>, target = 'cpu') => {
  const { names, source } = shapesOf(config);
  return buildModel({ config: parseHfConfig(config, 'config.json'), tensorNames: names, source, layout: graphLayout(getTarget(target), 'fp32') });
};

describe('buildModel checks what attention can run before reading anything', () => {
  it('refuses a head size that is not a multiple of 8 (GroupQueryAttention runs none)', () => {
    const cfg = { ...base, hidden_size: 48 }; // head 12
    expect(() => build(cfg)).toThrow(ArchitectureError);
    expect(() => build(cfg)).toThrow(/head size 12 is not a multiple of 8/);
    expect(() => build(cfg, 'dml')).toThrow(/head size 12/);
  });

  it('refuses an odd rotary dim', () => {
    expect(() => build({ ...base, partial_rotary_factor: 0.3125 })).toThrow(/rotary dim 5 .* must be even/); // 16 × 0.3125
  });

  it('refuses rope scalings it does not implement', () => {
    // One schema per family (transformers' Phi3Config): only LongRoPE, whose older names "su"/"yarn" need its factor lists.
    expect(() => build({ ...base, rope_scaling: { rope_type: 'linear', factor: 4 } })).toThrow(/type "linear" is not supported by Phi3ForCausalLM \(only "longrope"\)/);
    expect(() => build({ ...base, rope_scaling: { rope_type: 'yarn', factor: 4 } })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', where: 'rope_scaling.short_factor' }));
    const phi = { ...base, architectures: ['PhiForCausalLM'], rope_scaling: { rope_type: 'linear', factor: 2 } };
    expect(() => build(phi)).toThrow(expect.objectContaining({ code: 'ARCH_ROPE_SCALING' }));
    expect(() => build(phi)).toThrow(ArchitectureError);
  });
});

describe('where q and k are rotated', () => {
  it('inside GroupQueryAttention when head size and rotary dim are multiples of 16, else in RotaryEmbedding nodes', () => {
    const c = (headSize: number, rotaryDim: number) => buildWithShapes({ ...base, hidden_size: 4 * headSize, partial_rotary_factor: rotaryDim / headSize }).decoder;
    expect(rotaryPlacement(c(64, 48), getTarget('cpu'))).toBe('attention');
    expect(rotaryPlacement(c(16, 16), getTarget('cuda'))).toBe('attention');
    expect(rotaryPlacement(c(16, 12), getTarget('cpu'))).toBe('nodes');
    expect(rotaryPlacement(c(8, 8), getTarget('mobile'))).toBe('nodes');
    expect(rotaryPlacement(c(64, 48), getTarget('dml'))).toBe('nodes');
  });

  it('head size 8 on cpu: separate q/k/v, RotaryEmbedding on q and k, GroupQueryAttention do_rotary=0, no position_ids input', () => {
    const { model } = buildWithShapes({ ...base, num_attention_heads: 8, num_key_value_heads: 4 });
    const g = model.graph;
    expect(g.inputs.map((i) => i.name)).not.toContain('position_ids');
    const node = (name: string) => g.nodes.find((n) => n.name === name)!;
    const gqa = node('/model/layers.0/attn/GroupQueryAttention');
    expect(gqa.attribute('do_rotary')?.value).toBe(0);
    expect(gqa.inputs.slice(0, 3)).toEqual([
      '/model/layers.0/attn/q_rotary/RotaryEmbedding/output_0',
      '/model/layers.0/attn/k_rotary/RotaryEmbedding/output_0',
      '/model/layers.0/attn/v_proj/MatMul/output_0',
    ]);
    const q = node('/model/layers.0/attn/q_rotary/RotaryEmbedding');
    expect(q.domain).toBe('com.microsoft');
    expect(q.inputs).toEqual(['/model/layers.0/attn/q_proj/MatMul/output_0', '/model/pos_ids_from_mask/Add/output_0', 'cos_cache', 'sin_cache']);
    expect(q.attribute('interleaved')?.value).toBe(0);
    expect(g.initializer('cos_cache')!.dims).toEqual([64, 4]);
    expect(g.nodes.some((n) => n.name.includes('qkv_proj'))).toBe(false);
  });
});
