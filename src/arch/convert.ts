// convertCheckpoint: HF checkpoint folder → model.onnx + model.onnx.data + genai_config.json + tokenizer files,
// streaming weights one tensor at a time from the safetensors shards into the external data file.
import { mkdir } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { Checkpoint } from '../checkpoint/checkpoint.js';
import { copyTokenizerFiles } from '../checkpoint/tokenizer-files.js';
import type { FloatDtype } from '../graph/builder.js';
import { DataType } from '../onnx/dtype.js';
import { saveModel } from '../onnx/model-file.js';
import { assertGenaiConfigKeys, genaiConfig } from '../genai/write.js';
import { getTarget } from '../target/index.js';
import type { TargetId } from '../target/types.js';
import { writeFileAtomic } from '../util/atomic-fs.js';
import { buildModel } from './build-model.js';
import { checkpointSource } from './checkpoint-source.js';
import type { DecoderConfig } from './types.js';

export type Precision = 'fp32' | 'fp16';

export interface ConvertProgress {
  /** Initializer being written. */
  tensor?: string;
  tensors?: number;
  totalTensors?: number;
  bytes?: number;
  totalBytes?: number;
}

export interface ConvertOptions {
  checkpointDir: string;
  outDir: string;
  /** Activation and weight precision; defaults to the target's (fp32 for cpu/mobile, fp16 for cuda/dml). */
  precision?: Precision;
  target?: TargetId;
  onProgress?: (p: ConvertProgress) => void;
}

export interface ConvertResult {
  outDir: string;
  /** Written files, relative to outDir. */
  files: string[];
  architecture: string;
  variant: string[];
  decoder: DecoderConfig;
  target: TargetId;
  precision: Precision;
  initializers: number;
}

const PRECISION_DTYPE: Record<Precision, FloatDtype> = { fp32: DataType.FLOAT, fp16: DataType.FLOAT16 };

/**
 * Converts a checkpoint folder. The graph is built first with lazy initializers (no weight read); saveModel then
 * asks for each initializer in turn, which reads its checkpoint rows, transposes/casts them and appends them to
 * model.onnx.data in chunks — peak memory is about the largest weight in its stored dtype plus one 64 MiB chunk.
 */
export async function convertCheckpoint(opts: ConvertOptions): Promise<ConvertResult> {
  const target = getTarget(opts.target ?? 'cpu');
  const precision: Precision = opts.precision ?? (target.activationDtype === DataType.FLOAT16 ? 'fp16' : 'fp32');
  const outDir = resolve(opts.outDir);
  const ckpt = await Checkpoint.open(opts.checkpointDir);
  try {
    const built = buildModel({
      config: ckpt.config,
      tensorNames: ckpt.tensorNames(),
      source: checkpointSource(ckpt),
      fileOf: (name) => (ckpt.has(name) ? ckpt.entry(name).file : undefined),
      target,
      dtype: PRECISION_DTYPE[precision],
    });
    // genai_config first: a checkpoint it cannot describe fails before gigabytes are written.
    const tokenizerFiles = await ckpt.tokenizerFiles();
    const config = genaiConfig({
      config: built.decoder,
      target,
      generation: ckpt.generationConfig,
      tokenizerEos: needsTokenizerEos(built.decoder, ckpt) ? await tokenizerEos(ckpt.dir, tokenizerFiles) : undefined,
    });
    assertGenaiConfigKeys(config);
    await mkdir(outDir, { recursive: true });
    const initializers = built.model.graph.initializers.length;
    // Every initializer goes to model.onnx.data (the genai layout), however small; saveModel keeps the Constant
    // nodes' values inline. Chunked weights stream: peak memory is one weight's input plus one output chunk.
    await saveModel(built.model, join(outDir, 'model.onnx'), {
      externalData: 'model.onnx.data',
      sizeThreshold: 0,
      onProgress: (p) => opts.onProgress?.({ tensor: p.tensor, tensors: p.tensors, totalTensors: p.totalTensors, bytes: p.bytes, totalBytes: p.totalBytes }),
    });

    await writeFileAtomic(join(outDir, 'genai_config.json'), JSON.stringify(config, null, 4) + '\n');
    const tokenizer = await copyTokenizerFiles(tokenizerFiles, outDir);

    return {
      outDir,
      files: ['model.onnx', 'model.onnx.data', 'genai_config.json', ...tokenizer.map((f) => f.slice(outDir.length + 1))],
      architecture: built.decoder.architecture,
      variant: built.variant,
      decoder: built.decoder,
      target: target.id,
      precision,
      initializers,
    };
  } finally {
    await ckpt.close();
  }
}

function needsTokenizerEos(d: DecoderConfig, ckpt: Checkpoint): boolean {
  const g = ckpt.generationConfig?.eos_token_id;
  return d.tokens.eos === undefined && (g === undefined || g === null);
}

/** The eos id the tokenizer files declare (tokenizer_config.json's eos_token looked up in tokenizer.json). */
async function tokenizerEos(dir: string, files: readonly string[]): Promise<number | undefined> {
  if (!files.some((f) => basename(f) === 'tokenizer.json')) return undefined;
  const { loadTokenizer } = await import('../tokenizer/tokenizer.js');
  return (await loadTokenizer(dir)).eosTokenId;
}
