// runExternalBuilder with the onnxruntime-genai builder, through a fake `python3` that records its argv and env and
// writes the builder's output layout with our own converter: the exact command per recipe, streaming, and an
// ingested folder identical to the native builder's (byte for byte when nothing was quantized; runnable in
// onnxruntime-node and close to fp32 when the tool quantized).
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertCheckpoint } from '../../src/arch/convert.js';
import { runExternalBuilder } from '../../src/external/index.js';
import { QuantSchema } from '../../src/recipes/schema.js';
import { loadModel, saveModel } from '../../src/onnx/model-file.js';
import { quantizeModel } from '../../src/quant/quantize-model.js';
import { cleanTempDirs, decoderShape, maxAbsDiff, OrtDecoder, tempDir, tokenSequence } from '../helpers/build.js';
import { installFakeTools, tinyPhi4MiniCheckpoint, type FakeRecord, type FakeTools } from '../helpers/fake-python.js';

let tools: FakeTools;
let ckpt: { dir: string; config: Record<string, unknown> };
let reference: string;
let referenceLogits: Float32Array[];
const ids = tokenSequence(6, 512, 7);

beforeAll(async () => {
  tools = await installFakeTools();
  ckpt = await tinyPhi4MiniCheckpoint();
  reference = await tempDir('phi-forge-native-');
  await convertCheckpoint({ checkpointDir: ckpt.dir, outDir: reference, precision: 'fp32', target: 'cpu' });
  referenceLogits = await logitsOf(join(reference, 'model.onnx'));
});
afterAll(async () => {
  await tools.cleanup();
  await cleanTempDirs();
});

/** Byte equality (Buffer.equals: toEqual on multi-MB buffers walks them element by element). */
async function sameBytes(a: string, b: string): Promise<boolean> {
  return (await readFile(a)).equals(await readFile(b));
}

async function logitsOf(model: string): Promise<Float32Array[]> {
  const dec = await OrtDecoder.open(model, decoderShape(ckpt.config));
  try {
    return await dec.full(ids);
  } finally {
    await dec.close();
  }
}

/** The records of the builder run (not the probe) since `from`. */
async function buildCalls(from: number): Promise<FakeRecord[]> {
  return (await tools.records()).slice(from).filter((r) => !r.probe);
}

const int4 = (q: Record<string, unknown> = {}, accuracy = 4) => ({ ...QuantSchema.parse({ scheme: 'int4', ...q }), accuracy_level: accuracy });

describe('genai builder, end to end through a fake python3', () => {
  it('fp32 CPU: exact command and environment, streamed output, and a folder byte-identical to the native build', async () => {
    const out = await tempDir('phi-forge-stage-');
    const from = (await tools.records()).length;
    const lines: string[] = [];
    const pcts: number[] = [];
    const r = await runExternalBuilder({
      kind: 'genai',
      checkpointDir: ckpt.dir,
      outDir: out,
      precision: 'fp32',
      target: 'cpu',
      env: tools.env({ FAKE_MARKER: 'passed-through', HF_HOME: '/hf' }),
      onOutput: (l) => lines.push(l),
      onProgress: (p) => pcts.push(p),
    });
    const work = join(out, '.external');
    expect(r.command).toEqual([tools.path('python3'), '-m', 'onnxruntime_genai.models.builder', '-i', ckpt.dir, '-o', join(work, 'output'), '-p', 'fp32', '-e', 'cpu', '-c', join(work, 'cache')]);
    expect(r.commands).toEqual([r.command]);
    const [call] = await buildCalls(from);
    expect(call.name).toBe('python3');
    expect(call.argv).toEqual(r.command.slice(1));
    expect(call.cwd).toBe(work);
    expect(call.env).toEqual({ PYTHONUNBUFFERED: '1', PYTHONIOENCODING: 'utf-8', HF_HOME: '/hf', FAKE_MARKER: 'passed-through' });

    expect(lines).toContain('Extra options: {}');
    expect(lines).toContain('Loading checkpoint shards:  50%|#####     | 1/2');
    expect(pcts).toEqual([0, 50, 100]);

    expect(r.files).toEqual(['model.onnx', 'model.onnx.data', 'genai_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']);
    expect((await readdir(out)).sort()).toEqual([...r.files, 'genai-builder.log'].sort()); // no .external, no config.json
    for (const f of r.files) expect(await sameBytes(join(out, f), join(reference, f)), f).toBe(true);
    expect(r.quantized).toBe(false);
    expect(r.ingest).toMatchObject({ resaved: false, logitsDtype: 'FLOAT', tokenizerFrom: 'tool' });
    expect(r.ingest.quantization).toBeUndefined();
    expect(r.tool).toEqual({ kind: 'genai', python: tools.path('python3'), pythonVersion: '3.11.7', versions: { onnxruntime_genai: '0.10.1', transformers: '4.51.3', torch: '2.6.0+cpu', onnx: '1.17.0' } });
    const log = await readFile(r.logFile, 'utf8');
    expect(r.logFile).toBe(join(out, 'genai-builder.log'));
    expect(log).toContain('Extra options: {}');
    expect(log).toContain('Saving GenAI config');
  });

  it('int4 CPU on the tied checkpoint: the tool quantizes (shared embeddings), and the model computes what our own int4 pass gives', async () => {
    const out = await tempDir('phi-forge-stage-');
    const from = (await tools.records()).length;
    const r = await runExternalBuilder({ kind: 'genai', checkpointDir: ckpt.dir, outDir: out, precision: 'fp32', target: 'cpu', quant: int4(), env: tools.env() });
    const [call] = await buildCalls(from);
    expect(call.argv.slice(call.argv.indexOf('-p'), call.argv.indexOf('-p') + 4)).toEqual(['-p', 'int4', '-e', 'cpu']);
    expect(call.argv.slice(call.argv.indexOf('--extra_options') + 1)).toEqual([
      'int4_block_size=32',
      'int4_accuracy_level=4',
      'int4_is_symmetric=true',
      'int4_op_types_to_quantize=MatMul',
      'shared_embeddings=true',
      'int4_algo_config=rtn',
    ]);
    expect(r.quantized).toBe(true);
    expect(r.ingest.quantization).toMatchObject({ blockSizes: [32], accuracyLevels: [4], bits: [4] });
    expect(r.ingest.quantization!.matMulNBits).toBeGreaterThan(0);
    expect(r.ingest.quantization!.gatherBlockQuantized).toBe(1);

    // The same quantization done natively, in this process, on the native fp32 build: identical logits.
    const native = await tempDir('phi-forge-native-int4-');
    const model = await loadModel(join(reference, 'model.onnx'));
    await quantizeModel(model, { scheme: 'int4', algo: 'rtn', blockSize: 32, accuracyLevel: 4, embeddings: 'tied', threads: 0 });
    await saveModel(model, join(native, 'model.onnx'), { externalData: 'model.onnx.data', sizeThreshold: 64 });
    const logits = await logitsOf(join(out, 'model.onnx'));
    expect(maxAbsDiff(logits, await logitsOf(join(native, 'model.onnx')))).toBe(0);
    expect(maxAbsDiff(logits, referenceLogits)).toBeGreaterThan(0); // really quantized
  });

  it('int4 CUDA fp16, block 64, asymmetric, float embeddings, exact excludes: mapped and honoured', async () => {
    const out = await tempDir('phi-forge-stage-');
    const from = (await tools.records()).length;
    const quant = int4({ block_size: 64, asym: true, embeddings: 'none', exclude: ['/lm_head/MatMul'] }, 0);
    const r = await runExternalBuilder({ kind: 'genai', checkpointDir: ckpt.dir, outDir: out, precision: 'fp16', target: 'cuda', quant, env: tools.env() });
    const [call] = await buildCalls(from);
    expect(call.argv).toEqual([
      '-m',
      'onnxruntime_genai.models.builder',
      '-i',
      ckpt.dir,
      '-o',
      join(out, '.external', 'output'),
      '-p',
      'int4',
      '-e',
      'cuda',
      '-c',
      join(out, '.external', 'cache'),
      '--extra_options',
      'int4_block_size=64',
      'int4_is_symmetric=false',
      'int4_op_types_to_quantize=MatMul',
      'int4_nodes_to_exclude=/lm_head/MatMul',
      'shared_embeddings=false',
    ]);
    expect(r.ingest).toMatchObject({ logitsDtype: 'FLOAT16', quantization: { blockSizes: [64], accuracyLevels: [0], gatherBlockQuantized: 0 } });
    const genai = JSON.parse(await readFile(join(out, 'genai_config.json'), 'utf8')) as { model: { decoder: { session_options: { provider_options: unknown } } } };
    expect(genai.model.decoder.session_options.provider_options).toEqual([{ cuda: expect.any(Object) }]);
  });

  it('int8 with quantize auto: the tool writes floats and leaves quantizing to our pass', async () => {
    const out = await tempDir('phi-forge-stage-');
    const from = (await tools.records()).length;
    const quant = { ...QuantSchema.parse({ scheme: 'int8' }), accuracy_level: 4 };
    const r = await runExternalBuilder({ kind: 'genai', checkpointDir: ckpt.dir, outDir: out, precision: 'fp32', target: 'cpu', quant, env: tools.env() });
    const [call] = await buildCalls(from);
    expect(call.argv).toContain('fp32');
    expect(call.argv).not.toContain('--extra_options');
    expect(r.quantized).toBe(false);
    expect(await sameBytes(join(out, 'model.onnx.data'), join(reference, 'model.onnx.data'))).toBe(true);
  });

  it('builder_options: hub name, explicit provider and cache, pass-through extras; keep_output keeps the raw folder', async () => {
    const out = await tempDir('phi-forge-stage-');
    const cache = await tempDir('phi-forge-hf-cache-');
    const from = (await tools.records()).length;
    await runExternalBuilder({
      kind: 'genai',
      checkpointDir: ckpt.dir,
      outDir: out,
      precision: 'fp32',
      target: 'mobile',
      options: { model_name: 'microsoft/Phi-4-mini-instruct', cache_dir: cache, extra_options: { num_hidden_layers: 2, filename: 'model.onnx' }, keep_output: true, mode: 'run' },
      env: tools.env(),
    });
    const [call] = await buildCalls(from);
    expect(call.argv.slice(2, 4)).toEqual(['-m', 'microsoft/Phi-4-mini-instruct']);
    expect(call.argv.slice(call.argv.indexOf('-e'), call.argv.indexOf('-e') + 4)).toEqual(['-e', 'cpu', '-c', cache]);
    expect(call.argv.slice(call.argv.indexOf('--extra_options') + 1)).toEqual(['num_hidden_layers=2', 'filename=model.onnx']);
    expect((await stat(join(out, '.external', 'output', 'config.json'))).isFile()).toBe(true);
  });
});
