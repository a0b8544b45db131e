// Recipe → command line / config mapping for the genai builder and Olive, builder_options parsing, and the quant
// options each tool cannot express (errors, never silently dropped).
import { describe, expect, it } from 'vitest';
import { genaiBuilderInvocation } from '../../src/external/genai-builder.js';
import { deepMerge, olivePlan } from '../../src/external/olive.js';
import { parseBuilderOptions } from '../../src/external/options.js';
import type { RecipeQuant } from '../../src/external/quant-mapping.js';
import { QuantSchema } from '../../src/recipes/schema.js';
import { ExternalToolError, RecipeError } from '../../src/util/errors.js';

const quant = (q: Record<string, unknown>, accuracy?: number): RecipeQuant => ({ ...QuantSchema.parse(q), ...(accuracy === undefined ? {} : { accuracy_level: accuracy }) });

const paths = { checkpointDir: '/ckpt', outputDir: '/stage/.external/output', cacheDir: '/stage/.external/cache' };

function genai(precision: 'fp32' | 'fp16', target: 'cpu' | 'cuda' | 'dml' | 'mobile', q: RecipeQuant | undefined, options: Record<string, unknown> = {}, tiedEmbeddings = false) {
  return genaiBuilderInvocation({ ...paths, precision, target, quant: q, tiedEmbeddings, options: parseBuilderOptions('genai', options) });
}

describe('genai builder arguments', () => {
  it('fp32 CPU, unquantized', () => {
    const inv = genai('fp32', 'cpu', undefined);
    expect(inv.args).toEqual(['-m', 'onnxruntime_genai.models.builder', '-i', '/ckpt', '-o', '/stage/.external/output', '-p', 'fp32', '-e', 'cpu', '-c', '/stage/.external/cache']);
    expect(inv.quant.byTool).toBe(false);
  });

  it('int4 CPU: block size, accuracy level, symmetry, op types as extra options; an untied table stays float', () => {
    const inv = genai('fp32', 'cpu', quant({ scheme: 'int4' }, 4));
    expect(inv.args.slice(6)).toEqual([
      '-p',
      'int4',
      '-e',
      'cpu',
      '-c',
      '/stage/.external/cache',
      '--extra_options',
      'int4_block_size=32',
      'int4_accuracy_level=4',
      'int4_is_symmetric=true',
      'int4_op_types_to_quantize=MatMul',
      'shared_embeddings=false',
    ]);
    expect(inv.quant).toMatchObject({ byTool: true, precision: 'int4', tool: { quantizedEmbeddings: false } });
  });

  it('int4 on a tied checkpoint (Phi-4-mini): embeddings tied → shared_embeddings with the rtn algo; none → float', () => {
    const tied = genai('fp32', 'cpu', quant({ scheme: 'int4' }, 4), {}, true);
    expect(tied.extraOptions).toMatchObject({ int4_op_types_to_quantize: 'MatMul', shared_embeddings: 'true', int4_algo_config: 'rtn' });
    expect(tied.quant.tool?.quantizedEmbeddings).toBe(true);
    const none = genai('fp32', 'cpu', quant({ scheme: 'int4', embeddings: 'none' }, 4), {}, true);
    expect(none.extraOptions).toMatchObject({ shared_embeddings: 'false' });
    expect(none.extraOptions.int4_algo_config).toBeUndefined();
    expect(none.quant.tool?.quantizedEmbeddings).toBe(false);
  });

  it('int4 CUDA, asymmetric block 128, all embeddings of an untied model, exact excludes; accuracy level 0 stays unset', () => {
    const inv = genai('fp16', 'cuda', quant({ scheme: 'int4', block_size: 128, asym: true, embeddings: 'all', exclude: ['/lm_head/MatMul', '/model/layers.0/attn/qkv_proj/MatMul'] }, 0));
    expect(inv.args).toContain('cuda');
    expect(inv.args.slice(inv.args.indexOf('--extra_options') + 1)).toEqual([
      'int4_block_size=128',
      'int4_is_symmetric=false',
      'int4_op_types_to_quantize=MatMul/Gather',
      'int4_nodes_to_exclude=/lm_head/MatMul,/model/layers.0/attn/qkv_proj/MatMul',
      'shared_embeddings=false',
    ]);
  });

  it('mobile builds the CPU graph; dml fp16', () => {
    expect(genai('fp32', 'mobile', undefined).args.slice(8, 10)).toEqual(['-e', 'cpu']);
    expect(genai('fp16', 'dml', undefined).args.slice(6, 10)).toEqual(['-p', 'fp16', '-e', 'dml']);
  });

  it('builder_options: hub name, provider, cache, algo, shared embeddings and pass-through extras (which win)', () => {
    const inv = genai('fp32', 'cpu', quant({ scheme: 'int4' }, 4), {
      model_name: 'microsoft/Phi-4-mini-instruct',
      execution_provider: 'webgpu',
      cache_dir: '/hf-cache',
      algo_config: 'k_quant',
      shared_embeddings: true,
      extra_options: { int4_block_size: 64, num_hidden_layers: 2, exclude_embeds: false },
    });
    expect(inv.args.slice(0, 14)).toEqual(['-m', 'onnxruntime_genai.models.builder', '-m', 'microsoft/Phi-4-mini-instruct', '-i', '/ckpt', '-o', '/stage/.external/output', '-p', 'int4', '-e', 'webgpu', '-c', '/hf-cache']);
    expect(inv.extraOptions).toEqual({
      int4_block_size: '64',
      int4_accuracy_level: '4',
      int4_is_symmetric: 'true',
      int4_op_types_to_quantize: 'MatMul',
      int4_algo_config: 'k_quant',
      shared_embeddings: 'true',
      num_hidden_layers: '2',
      exclude_embeds: 'false',
    });
  });

  it('who quantizes: auto gives int8/ternary to our pass, native always, tool refuses what it cannot do', () => {
    expect(genai('fp32', 'cpu', quant({ scheme: 'int8' }, 4)).quant).toEqual({ byTool: false, precision: 'fp32' });
    expect(genai('fp16', 'cuda', quant({ scheme: 'ternary' })).args).toContain('fp16');
    expect(genai('fp32', 'cpu', quant({ scheme: 'int4' }, 4), { quantize: 'native' }).quant).toEqual({ byTool: false, precision: 'fp32' });
    const refuse = (q: RecipeQuant, o: Record<string, unknown> = {}) => {
      try {
        genai('fp32', 'cpu', q, o);
      } catch (e) {
        expect(e).toBeInstanceOf(ExternalToolError);
        expect((e as ExternalToolError).code).toBe('EXTERNAL_OPTION_UNSUPPORTED');
        expect((e as ExternalToolError).exitCode).toBe(2);
        return (e as ExternalToolError).message + '\n' + (e as ExternalToolError).fix;
      }
      throw new Error('expected a refusal');
    };
    expect(refuse(quant({ scheme: 'int8' }), { quantize: 'tool' })).toContain('int4 only');
    expect(refuse(quant({ scheme: 'int4', algo: 'gptq' }))).toContain('quantize: native');
    expect(refuse(quant({ scheme: 'int4', exclude: ['*lm_head*'] }))).toContain('exact name');
    expect(refuse(quant({ scheme: 'int4', exclude: ['/lm_head/'] }))).toContain('exact name');
    expect(refuse(quant({ scheme: 'int4', overrides: [{ pattern: '/lm_head/MatMul', scheme: 'int8' }] }))).toContain('overrides');
  });
});

describe('builder_options', () => {
  it('drops keys meant for the other builder, so --builder can switch a recipe', () => {
    expect(parseBuilderOptions('olive', { execution_provider: 'cuda', mode: 'auto-opt' }).mode).toBe('auto-opt');
    expect(parseBuilderOptions('genai', { mode: 'run', model_name: 'x/y' }).model_name).toBe('x/y');
  });

  it('rejects unknown keys and bad values with the field path', () => {
    const bad = (kind: 'genai' | 'olive', o: Record<string, unknown>) => {
      try {
        parseBuilderOptions(kind, o);
      } catch (e) {
        expect(e).toBeInstanceOf(RecipeError);
        return (e as RecipeError).message;
      }
      throw new Error('expected a RecipeError');
    };
    expect(bad('genai', { blocksize: 32 })).toContain('blocksize');
    expect(bad('olive', { mode: 'fast' })).toContain('builder_options.mode');
    expect(bad('genai', { extra_options: { filename: 'a=b' } })).toContain('builder_options.extra_options.filename');
    expect(bad('genai', { extra_options: { 'bad key': 1 } })).toContain('builder_options.extra_options');
  });
});

describe('olive', () => {
  const input = (target: 'cpu' | 'cuda' | 'dml' | 'mobile', precision: 'fp32' | 'fp16', q: RecipeQuant | undefined, options: Record<string, unknown> = {}, tiedEmbeddings = false) => ({
    checkpointDir: '/ckpt',
    outputDir: '/stage/.external/output',
    workDir: '/stage/.external',
    precision,
    target,
    quant: q,
    tiedEmbeddings,
    options: parseBuilderOptions('olive', options),
  });

  it('run: a ModelBuilder workflow carrying every quant option, and the run command', () => {
    const plan = olivePlan(input('cpu', 'fp32', quant({ scheme: 'int4', block_size: 64, asym: true, embeddings: 'all', exclude: ['/lm_head/MatMul'] }, 4), { algo_config: 'k_quant', extra_options: { num_hidden_layers: 2 } }));
    expect(plan.steps).toEqual([{ label: 'olive run', args: ['run', '--config', '/stage/.external/olive-config.json'] }]);
    expect(plan.configFile).toBe('/stage/.external/olive-config.json');
    expect(plan.config).toEqual({
      input_model: { type: 'HfModel', model_path: '/ckpt' },
      systems: { local_system: { type: 'LocalSystem', accelerators: [{ device: 'cpu', execution_providers: ['CPUExecutionProvider'] }] } },
      passes: {
        builder: {
          type: 'ModelBuilder',
          precision: 'int4',
          int4_block_size: 64,
          int4_accuracy_level: 4,
          int4_is_symmetric: false,
          int4_op_types_to_quantize: ['MatMul', 'Gather'],
          int4_nodes_to_exclude: ['/lm_head/MatMul'],
          int4_algo_config: 'k_quant',
          extra_options: { shared_embeddings: false, num_hidden_layers: 2 },
        },
      },
      host: 'local_system',
      target: 'local_system',
      output_dir: '/stage/.external/output',
      log_severity_level: 1,
    });
  });

  it('run: a tied checkpoint shares its quantized embedding through extra_options', () => {
    const plan = olivePlan(input('cpu', 'fp32', quant({ scheme: 'int4' }, 4), {}, true));
    expect((plan.config as { passes: { builder: unknown } }).passes.builder).toEqual({
      type: 'ModelBuilder',
      precision: 'int4',
      int4_block_size: 32,
      int4_accuracy_level: 4,
      int4_is_symmetric: true,
      int4_op_types_to_quantize: ['MatMul'],
      int4_algo_config: 'rtn',
      extra_options: { shared_embeddings: true },
    });
  });

  it('run: CUDA fp16 unquantized on the GPU provider; builder_options.config merges deeply', () => {
    const plan = olivePlan(input('cuda', 'fp16', undefined, { config: { passes: { builder: { search: { max_length: 512 } } }, log_severity_level: 3 }, extra_args: ['--tempdir', '/tmp/x'] }));
    const config = plan.config as { systems: unknown; passes: { builder: Record<string, unknown> }; log_severity_level: number };
    expect(config.systems).toEqual({ local_system: { type: 'LocalSystem', accelerators: [{ device: 'gpu', execution_providers: ['CUDAExecutionProvider'] }] } });
    expect(config.passes.builder).toEqual({ type: 'ModelBuilder', precision: 'fp16', search: { max_length: 512 } });
    expect(config.log_severity_level).toBe(3);
    expect(plan.steps[0].args).toEqual(['run', '--config', '/stage/.external/olive-config.json', '--tempdir', '/tmp/x']);
  });

  it('auto-opt: the model builder with the target provider and precision', () => {
    const plan = olivePlan(input('dml', 'fp16', quant({ scheme: 'int4' }, 0), { mode: 'auto-opt', log_level: 2 }));
    expect(plan.steps).toEqual([
      {
        label: 'olive auto-opt',
        args: ['auto-opt', '-m', '/ckpt', '-o', '/stage/.external/output', '--device', 'gpu', '--provider', 'DmlExecutionProvider', '--precision', 'int4', '--use_model_builder', '--log_level', '2'],
      },
    ]);
    expect(plan.config).toBeUndefined();
  });

  it('auto-opt refuses quant settings it cannot pass (they would silently not apply)', () => {
    expect(() => olivePlan(input('cpu', 'fp32', quant({ scheme: 'int4', block_size: 128 }, 4), { mode: 'auto-opt' }))).toThrow(/block_size 128/);
    expect(() => olivePlan(input('cpu', 'fp32', quant({ scheme: 'int4' }, 1), { mode: 'auto-opt' }))).toThrow(/accuracy_level 1/);
    expect(() => olivePlan(input('cpu', 'fp32', undefined, { mode: 'auto-opt', extra_options: { num_hidden_layers: 1 } }))).toThrow(/extra_options/);
    expect(() => olivePlan(input('cpu', 'fp32', quant({ scheme: 'int4', embeddings: 'all' }, 4), { mode: 'auto-opt' }))).toThrow(/embeddings: all/);
    expect(() => olivePlan(input('cpu', 'fp32', quant({ scheme: 'int4' }, 4), { mode: 'auto-opt' }, true))).not.toThrow();
  });

  it('quantize: olive quantize (awq/gptq) then auto-opt on its output', () => {
    const plan = olivePlan(input('cpu', 'fp32', quant({ scheme: 'int4', algo: 'awq', block_size: 128 }, 4), { mode: 'quantize', data_name: 'wikitext' }));
    expect(plan.steps.map((s) => s.args)).toEqual([
      ['quantize', '-m', '/ckpt', '-o', '/stage/.external/quantized', '--algorithm', 'awq', '--precision', 'int4', '-d', 'wikitext', '--log_level', '1'],
      ['auto-opt', '-m', '/stage/.external/quantized', '-o', '/stage/.external/output', '--device', 'cpu', '--provider', 'CPUExecutionProvider', '--precision', 'int4', '--use_model_builder', '--log_level', '1'],
    ]);
    expect(() => olivePlan(input('cpu', 'fp32', quant({ scheme: 'int4', algo: 'rtn' }, 4), { mode: 'quantize' }))).toThrow(/awq, gptq/);
    expect(() => olivePlan(input('cpu', 'fp32', undefined, { mode: 'quantize' }))).toThrow(/mode quantize/);
    expect(() => olivePlan(input('cpu', 'fp32', quant({ scheme: 'int4', algo: 'gptq' }, 4)))).toThrow(/mode: quantize/);
  });

  it('deepMerge merges objects and replaces arrays and scalars', () => {
    expect(deepMerge({ a: { b: 1, c: [1, 2] }, d: 1 }, { a: { c: [3], e: 2 }, d: { x: 1 } })).toEqual({ a: { b: 1, c: [3], e: 2 }, d: { x: 1 } });
  });
});
