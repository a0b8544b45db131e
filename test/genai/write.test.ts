import { describe, expect, it } from 'vitest';
import { parseArchConfig } from '../../src/arch/index.js';
import { parseHfConfig } from '../../src/checkpoint/hf-config.js';
import { withProviders } from '../../src/genai/providers.js';
import { checkGenaiConfigKeys } from '../../src/genai/schema.js';
import { genaiConfig } from '../../src/genai/write.js';
import { getTarget } from '../../src/target/index.js';

/** The builder's view of a config.json object, parsed by its family's schema. */
function decoderOf(raw: Record<string, unknown>) {
  const { spec, config } = parseArchConfig(parseHfConfig(raw, 'config.json'));
  return spec.decoder(config);
}

// Phi-3-mini-4k-instruct's config.json fields the builder reads.
const phi3Mini = {
  architectures: ['Phi3ForCausalLM'],
  hidden_size: 3072,
  intermediate_size: 8192,
  num_hidden_layers: 32,
  num_attention_heads: 32,
  num_key_value_heads: 32,
  vocab_size: 32064,
  max_position_embeddings: 4096,
  original_max_position_embeddings: 4096,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  rope_scaling: null,
  sliding_window: 2047,
  tie_word_embeddings: false,
  bos_token_id: 1,
  eos_token_id: 32000,
  pad_token_id: 32000,
};

describe('genaiConfig', () => {
  const decoder = decoderOf(phi3Mini);

  it('writes the decoder shape, I/O names and type phi3 for CPU', () => {
    const g = genaiConfig({ config: decoder, layout: getTarget('cpu') });
    expect(g.model.type).toBe('phi3');
    expect(g.model.context_length).toBe(4096);
    expect(g.model.decoder).toMatchObject({
      filename: 'model.onnx',
      head_size: 96,
      hidden_size: 3072,
      num_attention_heads: 32,
      num_hidden_layers: 32,
      num_key_value_heads: 32,
      inputs: {
        input_ids: 'input_ids',
        attention_mask: 'attention_mask',
        past_key_names: 'past_key_values.%d.key',
        past_value_names: 'past_key_values.%d.value',
      },
      outputs: { logits: 'logits', present_key_names: 'present.%d.key', present_value_names: 'present.%d.value' },
      session_options: { log_id: 'onnxruntime-genai', provider_options: [] },
    });
    expect(g.model.decoder.inputs.position_ids).toBeUndefined();
    expect(g.search.past_present_share_buffer).toBe(true);
    expect(g.search.max_length).toBe(4096);
    expect(checkGenaiConfigKeys(g)).toEqual([]);
  });

  it('lists provider options as strings per target; DirectML adds position_ids', () => {
    const forTarget = (id: string) => withProviders(genaiConfig({ config: decoder, layout: getTarget(id) }), getTarget(id));
    const cuda = forTarget('cuda');
    expect(cuda.model.decoder.session_options.provider_options).toEqual([{ cuda: { enable_cuda_graph: '0', enable_skip_layer_norm_strict_mode: '1' } }]);
    const dml = forTarget('dml');
    expect(dml.model.decoder.session_options.provider_options).toEqual([{ dml: {} }]);
    expect(dml.model.decoder.inputs.position_ids).toBe('position_ids');
    expect(checkGenaiConfigKeys(cuda)).toEqual([]);
    expect(checkGenaiConfigKeys(dml)).toEqual([]);
  });

  it('takes token ids and sampling defaults from generation_config.json when they differ from the defaults', () => {
    const g = genaiConfig({
      config: decoder,
      layout: getTarget('cpu'),
      generation: { eos_token_id: [32000, 32001, 32007], do_sample: true, temperature: 0.7, top_k: 50, top_p: null },
    });
    expect(g.model.eos_token_id).toEqual([32000, 32001, 32007]);
    expect(g.model.pad_token_id).toBe(32000);
    expect(g.search).toMatchObject({ do_sample: true, temperature: 0.7, top_k: 50, top_p: 1 });
  });

  it('type phi for PhiForCausalLM; pad falls back to the first eos id', () => {
    const phi2 = decoderOf({
      architectures: ['PhiForCausalLM'],
      hidden_size: 2560,
      intermediate_size: 10240,
      num_hidden_layers: 32,
      num_attention_heads: 32,
      vocab_size: 51200,
      max_position_embeddings: 2048,
      partial_rotary_factor: 0.4,
      bos_token_id: 50256,
      eos_token_id: 50256,
      pad_token_id: null,
    });
    const g = genaiConfig({ config: phi2, layout: getTarget('cpu') });
    expect(g.model.type).toBe('phi');
    expect(g.model.pad_token_id).toBe(50256);
    expect(g.model.decoder.head_size).toBe(80);
  });
});

describe('checkGenaiConfigKeys', () => {
  const ok = withProviders(genaiConfig({ config: decoderOf(phi3Mini), layout: getTarget('cuda') }), getTarget('cuda'));

  it('reports unknown keys with their path', () => {
    const bad = structuredClone(ok) as unknown as Record<string, Record<string, unknown>>;
    bad.model.rope_theta = 10000;
    (bad.model.decoder as Record<string, unknown>).kv_cache_dtype = 'fp16';
    bad.extra = {};
    const problems = checkGenaiConfigKeys(bad);
    expect(problems).toContain('model.rope_theta: unknown key (onnxruntime-genai rejects it)');
    expect(problems).toContain('model.decoder.kv_cache_dtype: unknown key (onnxruntime-genai rejects it)');
    expect(problems).toContain('extra: unknown key (onnxruntime-genai rejects it)');
    expect(problems).toHaveLength(3);
  });

  it('requires string provider option values; session options accept free-form string entries', () => {
    const bad = structuredClone(ok);
    (bad.model.decoder.session_options.provider_options[0].cuda as Record<string, unknown>).enable_cuda_graph = 0;
    (bad.model.decoder.session_options as Record<string, unknown>)['session.intra_op.allow_spinning'] = '0';
    expect(checkGenaiConfigKeys(bad)).toEqual([
      'model.decoder.session_options.provider_options[0].cuda.enable_cuda_graph: provider option values must be strings',
    ]);
  });
});
