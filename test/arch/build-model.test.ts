import { describe, expect, it } from 'vitest';
import { buildModel } from '../../src/arch/build-model.js';
import type { WeightSource } from '../../src/graph/weights.js';
import { DataType } from '../../src/onnx/dtype.js';
import { getTarget } from '../../src/target/index.js';
import { ArchitectureError } from '../../src/util/errors.js';

const none: WeightSource = { info: () => undefined, readRows: async () => new Uint8Array(0) };
const base = {
  architecture: 'Phi3ForCausalLM',
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 1,
  num_attention_heads: 4,
  vocab_size: 512,
  max_position_embeddings: 64,
};

const build = (config: Record<string, unknown>, target = 'cpu') =>
  buildModel({ config, tensorNames: [], source: none, target: getTarget(target), dtype: DataType.FLOAT });

describe('buildModel checks what GroupQueryAttention can run before reading anything', () => {
  it('refuses a head size that is not a multiple of 16', () => {
    expect(() => build({ ...base, num_attention_heads: 8 })).toThrow(ArchitectureError);
    expect(() => build({ ...base, num_attention_heads: 8 })).toThrow(/head size 8 is not a multiple of 16/);
  });

  it('refuses a rotary dim GroupQueryAttention cannot rotate in place, but not on DirectML which rotates outside', () => {
    const cfg = { ...base, partial_rotary_factor: 0.75 }; // 16 × 0.75 = 12
    expect(() => build(cfg)).toThrow(/rotary dim 12/);
    // On DirectML the check passes and the build goes on to read weights (none here).
    expect(() => build(cfg, 'dml')).toThrow(/model\.embed_tokens\.weight/);
  });

  it('refuses rope scalings it does not implement', () => {
    expect(() => build({ ...base, rope_scaling: { rope_type: 'yarn', factor: 4 } })).toThrow(/rope_scaling type 'yarn'/);
  });
});
