// stories260K packages for eval tests: the llama2.c fixture through the real pipeline (convertLlama2c →
// convertCheckpoint fp32) and an int4 copy made by the quantize pass (genai_config.json copied alongside).
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { convertCheckpoint } from '../../src/arch/convert.js';
import { convertLlama2c } from '../../src/checkpoint/llama2c.js';
import { loadModel, saveModel } from '../../src/onnx/model-file.js';
import { quantizeModel } from '../../src/quant/quantize-model.js';
import { sharedFixture } from './runtime.js';

export const STORIES_BIN = sharedFixture('stories260K/stories260K.bin');
export const STORIES_REFERENCE = sharedFixture('stories260K/reference.json');

export interface StoriesReference {
  bos_token_id: number;
  greedy_tokens: number[];
  /** Full 512 logits at positions 0..7 of the greedy path (input at p: BOS for p = 0, else greedy_tokens[p − 1]). */
  logits: number[][];
}

/** Builds <root>/fp32 from the fixture; returns the model folder. */
export async function buildStoriesFp32(root: string): Promise<string> {
  const hf = join(root, 'hf');
  const out = join(root, 'fp32');
  await convertLlama2c({ file: STORIES_BIN!, outDir: hf });
  await convertCheckpoint({ checkpointDir: hf, outDir: out, precision: 'fp32' });
  return out;
}

/** Quantizes a model folder's model.onnx (int4 RTN, block 32, accuracy level 4 by default) into <outDir>. */
export async function quantizeFolder(
  inDir: string,
  outDir: string,
  o: { scheme?: 'int4' | 'int8'; blockSize?: number; accuracyLevel?: number } = {},
): Promise<string> {
  await mkdir(outDir, { recursive: true });
  const model = await loadModel(join(inDir, 'model.onnx'));
  const r = await quantizeModel(model, { scheme: o.scheme ?? 'int4', algo: 'rtn', blockSize: o.blockSize ?? 32, accuracyLevel: o.accuracyLevel ?? 4, threads: 0 });
  await saveModel(r.model, join(outDir, 'model.onnx'));
  await copyFile(join(inDir, 'genai_config.json'), join(outDir, 'genai_config.json'));
  return outDir;
}
