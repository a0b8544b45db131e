// ingestToolOutput on folders shaped by hand from a native build: where the model is looked for, which layouts are
// moved as they are and which are re-saved, and the model/config checks; plus the quant-mismatch check.
import { cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertCheckpoint } from '../../src/arch/convert.js';
import { ingestToolOutput } from '../../src/external/ingest.js';
import { decideQuant, quantizationMismatches } from '../../src/external/quant-mapping.js';
import { loadModel, saveModel } from '../../src/onnx/model-file.js';
import { QuantSchema } from '../../src/recipes/schema.js';
import { ExternalToolError } from '../../src/util/errors.js';
import { cleanTempDirs, decoderShape, maxAbsDiff, OrtDecoder, tempDir, tokenSequence } from '../helpers/build.js';
import { tinyPhi4MiniCheckpoint } from '../helpers/fake-python.js';

let ckpt: { dir: string; config: Record<string, unknown> };
let native: string;
beforeAll(async () => {
  ckpt = await tinyPhi4MiniCheckpoint();
  native = await tempDir('phi-forge-native-');
  await convertCheckpoint({ checkpointDir: ckpt.dir, outDir: native, precision: 'fp32', target: 'cpu' });
});
afterAll(cleanTempDirs);

/** A tool output folder holding a copy of the native build under `sub`. */
async function toolOutput(sub: string): Promise<string> {
  const root = await tempDir('phi-forge-tool-out-');
  await mkdir(join(root, sub), { recursive: true });
  await cp(native, join(root, sub), { recursive: true });
  return root;
}

async function ingestError(p: Promise<unknown>): Promise<ExternalToolError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ExternalToolError);
  return e as ExternalToolError;
}

async function logits(model: string): Promise<Float32Array[]> {
  const d = await OrtDecoder.open(model, decoderShape(ckpt.config));
  try {
    return await d.full(tokenSequence(4, 512, 11));
  } finally {
    await d.close();
  }
}

describe('ingestToolOutput', () => {
  it('finds a model nested two folders down (Olive: output/<pass>/model), skipping hidden caches, and ignores extras', async () => {
    const root = await toolOutput('builder/model');
    await mkdir(join(root, '.olive-cache', 'x'), { recursive: true });
    await writeFile(join(root, '.olive-cache', 'x', 'genai_config.json'), '{}');
    await writeFile(join(root, 'builder', 'model', 'footprints.json'), '{}');
    const out = await tempDir('phi-forge-stage-');
    const r = await ingestToolOutput({ toolOutputDir: root, outDir: out, tool: 'test tool', move: false });
    expect(r.foundIn).toBe(join(root, 'builder', 'model'));
    expect(r.resaved).toBe(false);
    expect((await readdir(out)).sort()).toEqual([...r.files].sort());
    expect(await readdir(join(root, 'builder', 'model'))).toContain('model.onnx'); // copied, not moved
  });

  it('a model with every tensor inline is re-saved with its weights in model.onnx.data', async () => {
    const root = await tempDir('phi-forge-tool-out-');
    const model = await loadModel(join(native, 'model.onnx'));
    await saveModel(model, join(root, 'model.onnx'), { externalData: false });
    await cp(join(native, 'genai_config.json'), join(root, 'genai_config.json'));
    const out = await tempDir('phi-forge-stage-');
    const r = await ingestToolOutput({ toolOutputDir: root, outDir: out, checkpointDir: ckpt.dir, tool: 'test tool' });
    expect(r.resaved).toBe(true);
    expect(r.tokenizerFrom).toBe('checkpoint');
    expect(r.files.slice(0, 3)).toEqual(['model.onnx', 'model.onnx.data', 'genai_config.json']);
    expect(maxAbsDiff(await logits(join(out, 'model.onnx')), await logits(join(native, 'model.onnx')))).toBe(0);
  });

  it('refuses a model whose KV cache does not match genai_config, listing each problem', async () => {
    const root = await toolOutput('.');
    const cfgPath = join(root, 'genai_config.json');
    const cfg = JSON.parse(await readFile(cfgPath, 'utf8')) as { model: { decoder: Record<string, unknown>; vocab_size: number } };
    cfg.model.decoder.num_hidden_layers = (cfg.model.decoder.num_hidden_layers as number) + 1;
    cfg.model.decoder.num_key_value_heads = 3;
    cfg.model.vocab_size = 1000;
    await writeFile(cfgPath, JSON.stringify(cfg));
    const e = await ingestError(ingestToolOutput({ toolOutputDir: root, outDir: await tempDir(), tool: 'test tool' }));
    expect(e.code).toBe('EXTERNAL_OUTPUT_BAD_MODEL');
    expect(e.message).toContain('logits has 512 columns; genai_config.json says vocab_size 1000');
    expect(e.message).toMatch(/past_key_values\.0\.key has \d+ kv heads; genai_config\.json says num_key_value_heads 3/);
    expect(e.message).toMatch(/inputs genai_config\.json names are missing from the graph: past_key_values\.\d+\.key, past_key_values\.\d+\.value/);
  });

  it('refuses a decoder file name that leaves the folder, and a missing decoder file', async () => {
    const root = await toolOutput('.');
    const cfgPath = join(root, 'genai_config.json');
    const cfg = JSON.parse(await readFile(cfgPath, 'utf8')) as { model: { decoder: Record<string, unknown> } };
    cfg.model.decoder.filename = '../elsewhere.onnx';
    await writeFile(cfgPath, JSON.stringify(cfg));
    expect((await ingestError(ingestToolOutput({ toolOutputDir: root, outDir: await tempDir(), tool: 't' }))).message).toContain(
      'model.decoder.filename "../elsewhere.onnx" must be a relative path inside the folder',
    );
    cfg.model.decoder.filename = 'decoder.onnx';
    await writeFile(cfgPath, JSON.stringify(cfg));
    expect((await ingestError(ingestToolOutput({ toolOutputDir: root, outDir: await tempDir(), tool: 't' }))).code).toBe('EXTERNAL_OUTPUT_NO_MODEL');
  });

  it('refuses a protobuf that does not decode', async () => {
    const root = await toolOutput('.');
    await writeFile(join(root, 'model.onnx'), Buffer.from('not a protobuf at all, clearly'));
    const e = await ingestError(ingestToolOutput({ toolOutputDir: root, outDir: await tempDir(), tool: 't' }));
    expect(e.code).toBe('EXTERNAL_OUTPUT_BAD_MODEL');
    expect(e.message).toContain('cannot be decoded');
  });

  it('refuses external data shorter than the tensors need', async () => {
    const root = await toolOutput('.');
    const data = await readFile(join(root, 'model.onnx.data'));
    await writeFile(join(root, 'model.onnx.data'), data.subarray(0, data.length - 1));
    const e = await ingestError(ingestToolOutput({ toolOutputDir: root, outDir: await tempDir(), tool: 't' }));
    expect(e.message).toMatch(/needs bytes \d+\.\.\d+ of model\.onnx\.data, which has \d+/);
    await rm(root, { recursive: true, force: true });
  });
});

describe('quantizationMismatches', () => {
  const decision = (q: Record<string, unknown>, tied = true) =>
    decideQuant({ kind: 'genai', precision: 'fp32', quant: { ...QuantSchema.parse({ scheme: 'int4', ...q }), accuracy_level: 4 }, who: 'auto', tiedEmbeddings: tied });
  const found = { matMulNBits: 10, gatherBlockQuantized: 1, blockSizes: [32], accuracyLevels: [4] };

  it('agrees when the model holds what was asked', () => {
    expect(quantizationMismatches(decision({}), found)).toEqual([]);
    expect(quantizationMismatches(decideQuant({ kind: 'genai', precision: 'fp32', who: 'auto' }), undefined)).toEqual([]);
  });

  it('names each difference', () => {
    expect(quantizationMismatches(decision({ block_size: 64 }), found)).toEqual(['block_size 64 was asked for, the model has 32']);
    expect(quantizationMismatches(decision({}), { ...found, accuracyLevels: [0, 4] })).toEqual(['accuracy_level 4 was asked for, the model has 0, 4']);
    expect(quantizationMismatches(decision({ embeddings: 'none' }), found)[0]).toContain('a float embedding was asked for');
    expect(quantizationMismatches(decision({}), undefined)).toEqual(['int4 was asked for, but the model holds no MatMulNBits node']);
    expect(quantizationMismatches(decideQuant({ kind: 'genai', precision: 'fp32', who: 'auto' }), found)[0]).toContain('floats were asked for');
    expect(quantizationMismatches(decision({ block_size: 128 }), found, { blockSizeChosenByTool: true })).toEqual([]);
  });
});
