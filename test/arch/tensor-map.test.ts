import { describe, expect, it } from 'vitest';
import { getArchitecture, supportedArchitectures } from '../../src/arch/index.js';
import { phi3Spec } from '../../src/arch/families/phi3/index.js';
import { TensorTable } from '../../src/arch/tensor-map.js';
import { ArchitectureError, CheckpointError } from '../../src/util/errors.js';

const rules = [
  { hf: 'model.embed_tokens.weight', role: 'embed' },
  { hf: 'model.layers.{layer}.mlp.down_proj.weight', role: 'mlp.down' },
  { hf: 'model.layers.{layer}.self_attn.rotary_emb.inv_freq', role: null },
] as const;

describe('TensorTable', () => {
  it('maps names to roles per layer and ignores null roles', () => {
    const t = TensorTable.build('TestArch', rules, ['model.embed_tokens.weight', 'model.layers.1.mlp.down_proj.weight', 'model.layers.0.self_attn.rotary_emb.inv_freq'], 2);
    expect(t.get('embed')).toBe('model.embed_tokens.weight');
    expect(t.get('mlp.down', 1)).toBe('model.layers.1.mlp.down_proj.weight');
    expect(t.has('mlp.down', 0)).toBe(false);
  });

  it('a tensor mapping to nothing is an error naming it and the architecture', () => {
    const e = (() => {
      try {
        TensorTable.build('TestArch', rules, ['model.layers.0.mlp.experts.3.weight'], 2);
      } catch (err) {
        return err as ArchitectureError;
      }
    })();
    expect(e).toBeInstanceOf(ArchitectureError);
    expect(e!.code).toBe('ARCH_UNMAPPED_TENSOR');
    expect(e!.message).toContain('model.layers.0.mlp.experts.3.weight');
    expect(e!.message).toContain('TestArch');
  });

  it('a layer past num_hidden_layers is an error', () => {
    expect(() => TensorTable.build('TestArch', rules, ['model.layers.2.mlp.down_proj.weight'], 2)).toThrow(/layer 2.*2 layers/);
  });

  it('a missing role names the expected tensor', () => {
    const t = TensorTable.build('TestArch', rules, [], 2);
    expect(() => t.get('mlp.down', 1)).toThrow(CheckpointError);
    expect(() => t.get('mlp.down', 1)).toThrow(/model\.layers\.1\.mlp\.down_proj\.weight/);
  });

  it('template dots are literal, not regex wildcards', () => {
    expect(() => TensorTable.build('TestArch', rules, ['modelXembed_tokensXweight'], 2)).toThrow(ArchitectureError);
  });
});

describe('architecture registry', () => {
  it('routes by HF architecture name', () => {
    expect(getArchitecture('Phi3ForCausalLM')).toBe(phi3Spec);
    expect(supportedArchitectures()).toEqual(['Phi3ForCausalLM', 'PhiForCausalLM']);
  });

  it('an unknown architecture lists the supported ones', () => {
    expect(() => getArchitecture('LlamaForCausalLM')).toThrow(/LlamaForCausalLM.*\n.*Phi3ForCausalLM, PhiForCausalLM/);
    expect(() => getArchitecture(undefined)).toThrow(ArchitectureError);
  });
});
