import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGenerationConfig, readGenerationConfig, eosTokenIds } from '../../src/checkpoint/generation-config.js';
import { parseArchConfig } from '../../src/arch/index.js';
import { phiSpec, type PhiConfig } from '../../src/arch/families/phi/index.js';
import { phi3Spec, type Phi3Config } from '../../src/arch/families/phi3/index.js';
import { parseHfConfig, parseHfConfigText, readHfConfig } from '../../src/checkpoint/hf-config.js';
import {
  KNOWN_CONFIGS,
  KNOWN_CONFIG_HUB_IDS,
  KNOWN_CONFIG_NAMES,
  KNOWN_GENERATION_CONFIGS,
  knownConfig,
} from '../../src/checkpoint/known-configs.js';
import { ArchitectureError, CheckpointError } from '../../src/util/errors.js';
import { makeTempDir, removeTempDir, tinyPhi3Config } from '../helpers/checkpoint.js';

const F = 'config.json';
// config.json read generically, then parsed by the schema of the family the registry finds for it.
const parse = (json: unknown) => parseArchConfig(parseHfConfig(json, F));
const phi3 = (json: Record<string, unknown>): Phi3Config => {
  const { spec, config } = parse(json);
  if (spec !== phi3Spec) throw new Error(`expected phi3, got ${spec.genaiType}`);
  return config as Phi3Config;
};
const phi = (json: Record<string, unknown>): PhiConfig => {
  const { spec, config } = parse(json);
  if (spec !== phiSpec) throw new Error(`expected phi, got ${spec.genaiType}`);
  return config as PhiConfig;
};
const error = (json: unknown): CheckpointError => {
  try {
    parse(json);
  } catch (e) {
    expect(e).toBeInstanceOf(CheckpointError);
    expect((e as CheckpointError).file).toBe(F);
    return e as CheckpointError;
  }
  throw new Error('expected a CheckpointError');
};

describe('known configs (hub values)', () => {
  it('has every preset, with a hub id, deep-frozen', () => {
    expect([...KNOWN_CONFIG_NAMES].sort()).toEqual(
      [
        'phi-3-mini-4k',
        'phi-3-mini-128k',
        'phi-3.5-mini',
        'phi-3-medium-4k',
        'phi-4-mini',
        'phi-4-mini-reasoning',
        'phi-4',
        'phi-4-reasoning',
        'phi-2',
        'phi-1_5',
        'phi-1',
      ].sort(),
    );
    for (const name of KNOWN_CONFIG_NAMES) {
      expect(KNOWN_CONFIG_HUB_IDS[name]).toMatch(/^microsoft\//);
      expect(Object.isFrozen(knownConfig(name))).toBe(true);
    }
    const rs = KNOWN_CONFIGS['phi-4-mini'].rope_scaling as { long_factor: number[] };
    expect(Object.isFrozen(rs.long_factor)).toBe(true);
    expect(() => (rs.long_factor as number[]).push(1)).toThrow();
  });

  it('every preset parses, as the family its architecture names', () => {
    for (const name of KNOWN_CONFIG_NAMES) {
      const { spec } = parseArchConfig(parseHfConfig(knownConfig(name), name));
      expect(spec).toBe(name.startsWith('phi-1') || name === 'phi-2' ? phiSpec : phi3Spec);
    }
  });

  it('Phi-4-mini: GQA 24/8, head 128, rotary 96 (partial 0.75), 48 LongRoPE factors each, tied, vocab 200064', () => {
    const c = phi3(knownConfig('phi-4-mini') as Record<string, unknown>);
    expect([c.num_attention_heads, c.num_key_value_heads, c.head_dim, c.rotary_dim]).toEqual([24, 8, 128, 96]);
    expect(c.rope_scaling?.rope_type).toBe('longrope');
    expect(c.rope_scaling?.short_factor).toEqual(new Array(48).fill(1));
    expect(c.rope_scaling?.long_factor.length).toBe(48);
    expect(c.rope_scaling?.long_factor[47]).toBe(47.77);
    expect([c.tie_word_embeddings, c.vocab_size, c.max_position_embeddings, c.original_max_position_embeddings]).toEqual([
      true, 200064, 131072, 4096,
    ]);
  });

  it('Phi-3-mini-4k: 32/32 heads of 96, sliding window 2047, no rope scaling; Phi-3.5-mini: LongRoPE 128k', () => {
    const m = phi3(knownConfig('phi-3-mini-4k') as Record<string, unknown>);
    expect([m.num_attention_heads, m.num_key_value_heads, m.head_dim, m.rotary_dim, m.sliding_window]).toEqual([32, 32, 96, 96, 2047]);
    expect(m.rope_scaling).toBeNull();
    expect(m.vocab_size).toBe(32064);
    const p = phi3(knownConfig('phi-3.5-mini') as Record<string, unknown>);
    expect(p.max_position_embeddings / p.original_max_position_embeddings).toBe(32);
    expect(p.rope_scaling?.short_factor[0]).toBe(1);
    expect(p.rope_scaling?.long_factor[0]).toBe(1.0800000429153442);
    const medium = phi3(knownConfig('phi-3-medium-4k') as Record<string, unknown>);
    expect([medium.num_attention_heads, medium.num_key_value_heads, medium.head_dim]).toEqual([40, 10, 128]);
  });

  it('phi-2: 32 heads of 80, rotary 32 (partial 0.4), gelu_new, layer norm; phi-1 fills null kv heads', () => {
    const c = phi(knownConfig('phi-2') as Record<string, unknown>);
    expect([c.head_dim, c.rotary_dim, c.num_key_value_heads, c.hidden_act, c.layer_norm_eps]).toEqual([80, 32, 32, 'gelu_new', 1e-5]);
    const one = phi(knownConfig('phi-1') as Record<string, unknown>);
    expect([one.num_key_value_heads, one.head_dim, one.rotary_dim, one.bos_token_id]).toEqual([32, 64, 32, null]);
  });

  it('generation configs parse', () => {
    for (const [name, g] of Object.entries(KNOWN_GENERATION_CONFIGS)) {
      const parsed = parseGenerationConfig(g, name);
      expect(eosTokenIds(parsed.eos_token_id).length).toBeGreaterThan(0);
    }
  });
});

describe('transformers defaults and normalisation', () => {
  it('fills Phi3Config defaults from a config that only names the architecture', () => {
    const c = phi3({ architectures: ['Phi3ForCausalLM'] });
    expect(c).toMatchObject({
      vocab_size: 32064,
      hidden_size: 3072,
      intermediate_size: 8192,
      num_hidden_layers: 32,
      num_attention_heads: 32,
      num_key_value_heads: 32,
      head_dim: 96,
      rotary_dim: 96,
      hidden_act: 'silu',
      max_position_embeddings: 4096,
      original_max_position_embeddings: 4096,
      rms_norm_eps: 1e-5,
      rope_theta: 10000,
      rope_scaling: null,
      partial_rotary_factor: 1,
      sliding_window: null,
      tie_word_embeddings: false,
      bos_token_id: 1,
      eos_token_id: 32000,
      pad_token_id: 32000,
      resid_pdrop: 0,
      architecture: 'Phi3ForCausalLM',
    });
  });

  it('fills PhiConfig defaults (partial rotary 0.5, gelu_new, eos 2)', () => {
    const c = phi({ model_type: 'phi' });
    expect(c).toMatchObject({
      architecture: 'PhiForCausalLM',
      vocab_size: 51200,
      hidden_size: 2048,
      num_hidden_layers: 24,
      partial_rotary_factor: 0.5,
      hidden_act: 'gelu_new',
      layer_norm_eps: 1e-5,
      qk_layernorm: false,
      bos_token_id: 1,
      eos_token_id: 2,
      pad_token_id: null,
      rotary_dim: 32,
    });
  });

  it('keeps explicit nulls and lists for token ids, and the raw JSON frozen', () => {
    const c = phi3(tinyPhi3Config({ bos_token_id: null, eos_token_id: [2, 7], pad_token_id: null, extra_key: { a: 1 } }));
    expect([c.bos_token_id, c.eos_token_id, c.pad_token_id]).toEqual([null, [2, 7], null]);
    expect(c.raw.extra_key).toEqual({ a: 1 });
    expect(Object.isFrozen(c.raw.extra_key)).toBe(true);
  });

  it('maps the old "su" and "yarn" rope types to longrope, and "type" to rope_type', () => {
    const factors = (n: number) => new Array(n).fill(1.5);
    for (const type of ['su', 'yarn', 'longrope']) {
      const c = phi3(tinyPhi3Config({ rope_scaling: { type, short_factor: factors(4), long_factor: factors(4) } }));
      expect(c.rope_scaling).toEqual({ rope_type: 'longrope', short_factor: factors(4), long_factor: factors(4) });
    }
    expect(phi3(tinyPhi3Config({ rope_scaling: { rope_type: 'default' } })).rope_scaling).toBeNull();
  });

  it('reads transformers 5 rope_parameters (theta, partial factor and scaling in one object)', () => {
    const json = tinyPhi3Config({ rope_theta: undefined, rope_scaling: undefined });
    json.rope_parameters = { rope_theta: 250000, partial_rotary_factor: 0.5, rope_type: 'longrope', short_factor: [1, 1], long_factor: [2, 3] };
    const c = phi3(json);
    expect([c.rope_theta, c.partial_rotary_factor, c.rotary_dim]).toEqual([250000, 0.5, 4]);
    expect(c.rope_scaling).toEqual({ rope_type: 'longrope', short_factor: [1, 1], long_factor: [2, 3] });
    expect(phi3(tinyPhi3Config({ torch_dtype: undefined, dtype: 'bfloat16' })).torch_dtype).toBe('bfloat16');
  });

  it('uses an explicit head_dim (head_dim × heads need not equal hidden_size)', () => {
    const c = phi3(tinyPhi3Config({ head_dim: 16, hidden_size: 40 }));
    expect([c.head_dim, c.rotary_dim]).toEqual([16, 16]);
  });

  it('reads any architecture; the registry refuses one no family parses, listing the supported ones', () => {
    const json = parseHfConfig({ architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 'anything' }, F);
    expect(json).toMatchObject({ file: F, architecture: 'LlamaForCausalLM', modelType: 'llama' });
    expect(() => parseArchConfig(json)).toThrow(ArchitectureError);
    expect(() => parseArchConfig(json)).toThrow(expect.objectContaining({ code: 'ARCH_UNSUPPORTED', file: F }));
    expect(() => parseArchConfig(json)).toThrow(/LlamaForCausalLM is not supported[\s\S]*Phi3ForCausalLM, PhiForCausalLM/);
    expect(parseHfConfig({}, F)).toMatchObject({ architecture: undefined, modelType: undefined });
    expect(() => parse({})).toThrow(/none: config.json has no architectures/);
  });
});

describe('invalid configs are CheckpointErrors naming the field', () => {
  it('LongRoPE factor lists must have rotary_dim/2 entries', () => {
    const e = error(tinyPhi3Config({ rope_scaling: { type: 'longrope', short_factor: [1, 1, 1, 1], long_factor: [1, 2, 3] } }));
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.where).toBe('rope_scaling.long_factor');
    expect(e.message).toMatch(/3 entries; rotary_dim\/2 = 4/);
    // Phi-4-mini with partial_rotary_factor dropped: 64 factors would be needed, 48 are given
    const pm = structuredClone(knownConfig('phi-4-mini')) as Record<string, unknown>;
    delete pm.partial_rotary_factor;
    expect(error(pm).where).toBe('rope_scaling.short_factor');
  });

  it('rope types Phi-3 does not have', () => {
    const e = error(tinyPhi3Config({ rope_scaling: { type: 'linear', factor: 2 } }));
    expect(e.where).toBe('rope_scaling');
    expect(e.message).toMatch(/only "longrope"/);
  });

  it('heads that do not divide', () => {
    expect(error(tinyPhi3Config({ num_key_value_heads: 3 })).where).toBe('num_key_value_heads');
    expect(error(tinyPhi3Config({ hidden_size: 30 })).where).toBe('hidden_size');
  });

  it('wrong types and ranges, with every bad field listed', () => {
    const e = error(tinyPhi3Config({ hidden_size: '32', num_hidden_layers: -1, partial_rotary_factor: 1.5, eos_token_id: 'x' }));
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.message).toMatch(/hidden_size/);
    expect(e.message).toMatch(/num_hidden_layers/);
    expect(e.message).toMatch(/partial_rotary_factor/);
    expect(e.message).toMatch(/eos_token_id/);
    expect(e.fix).toBeTruthy();
  });

  it('not an object; architectures not a list of names', () => {
    expect(error([1, 2]).code).toBe('CONFIG_INVALID');
    expect(error(null).code).toBe('CONFIG_INVALID');
    expect(error({ architectures: 'Phi3ForCausalLM' }).where).toBe('architectures');
  });

  it('bad JSON text', () => {
    expect(() => parseHfConfigText('{"vocab_size": 3', F)).toThrow(expect.objectContaining({ code: 'CONFIG_JSON', file: F }));
  });
});

describe('reading from a folder', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await makeTempDir('phi-forge-config-');
  });
  afterAll(async () => {
    await removeTempDir(dir);
  });

  it('config.json missing, then present; generation_config.json optional, typed, validated', async () => {
    await expect(readHfConfig(dir)).rejects.toMatchObject({ code: 'CONFIG_MISSING', file: join(dir, 'config.json') });
    await writeFile(join(dir, 'config.json'), JSON.stringify(tinyPhi3Config()));
    expect((await readHfConfig(dir)).architecture).toBe('Phi3ForCausalLM');
    expect(await readGenerationConfig(dir)).toBeUndefined();
    await writeFile(join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: [2, 5], do_sample: true, top_p: 0.9, foo: 1 }));
    const g = await readGenerationConfig(dir);
    expect(g).toMatchObject({ eos_token_id: [2, 5], do_sample: true, top_p: 0.9, foo: 1 });
    expect(eosTokenIds(g?.eos_token_id, 7)).toEqual([2, 5]);
    expect(eosTokenIds(undefined, 7)).toEqual([7]);
    await writeFile(join(dir, 'generation_config.json'), JSON.stringify({ top_p: 3 }));
    await expect(readGenerationConfig(dir)).rejects.toMatchObject({ code: 'GENERATION_CONFIG_INVALID', where: 'top_p' });
    await writeFile(join(dir, 'generation_config.json'), '{');
    await expect(readGenerationConfig(dir)).rejects.toMatchObject({ code: 'GENERATION_CONFIG_JSON' });
  });
});
