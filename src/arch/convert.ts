// convertCheckpoint: HF checkpoint folder → model.onnx + model.onnx.data + genai_config.json + tokenizer files,
// streaming weights one tensor at a time from the safetensors shards into the external data file.
import { mkdir } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { Checkpoint } from '../checkpoint/checkpoint.js';
import { copyTokenizerFiles } from '../checkpoint/tokenizer-files.js';
import { withProviders } from '../genai/providers.js';
import { GENAI_CONFIG_FILE } from '../genai/read.js';
import { assertGenaiConfigKeys } from '../genai/schema.js';
import { genaiConfig, writeGenaiConfig } from '../genai/write.js';
import { saveModel } from '../onnx/model-file.js';
import { getTarget, type GraphLayout, type TargetId } from '../target/index.js';
import { graphLayout, layoutId, precisionOf, type ActivationPrecision } from '../target/layout.js';
import { buildModel } from './build-model.js';
import { checkpointSource } from './checkpoint-source.js';
import type { DecoderConfig } from './types.js';

export type Precision = ActivationPrecision;

export interface ConvertProgress {
  /** Initializer being written. */
  tensor?: string;
  tensors?: number;
  totalTensors?: number;
  bytes?: number;
  totalBytes?: number;
}

/**
 * What the folder is built for: a target (its graph layout at `precision`, default the target's own, and its genai
 * provider options), or a bare graph layout — then genai_config.json selects no execution provider: the convert
 * stage builds per layout, and the package stage writes the target's providers.
 */
export type ConvertFor = { target?: TargetId; precision?: Precision; layout?: never } | { layout: GraphLayout; target?: never; precision?: never };

export type ConvertOptions = ConvertFor & {
  checkpointDir: string;
  outDir: string;
  onProgress?: (p: ConvertProgress) => void;
};

export interface ConvertResult {
  outDir: string;
  /** Written files, relative to outDir. */
  files: string[];
  architecture: string;
  variant: string[];
  decoder: DecoderConfig;
  /** The target whose providers genai_config.json selects; absent for a bare layout. */
  target?: TargetId;
  /** The graph layout, e.g. `gqa-packed-fp16`. */
  layout: string;
  precision: Precision;
  initializers: number;
}

/**
 * Converts a checkpoint folder. The graph is built first with lazy initializers (no weight read); saveModel then
 * asks for each initializer in turn, which reads its checkpoint rows, transposes/casts them and appends them to
 * model.onnx.data in chunks — peak memory is about the largest weight in its stored dtype plus a few 8 MiB chunks.
 */
export async function convertCheckpoint(opts: ConvertOptions): Promise<ConvertResult> {
  const target = opts.layout ? undefined : getTarget(opts.target ?? 'cpu');
  const layout = opts.layout ?? graphLayout(target!, opts.precision);
  const outDir = resolve(opts.outDir);
  const ckpt = await Checkpoint.open(opts.checkpointDir);
  try {
    const built = buildModel({
      config: ckpt.config,
      tensorNames: ckpt.tensorNames(),
      source: checkpointSource(ckpt),
      fileOf: (name) => (ckpt.has(name) ? ckpt.entry(name).file : undefined),
      layout,
    });
    // genai_config first: a checkpoint it cannot describe fails before gigabytes are written.
    const tokenizerFiles = await ckpt.tokenizerFiles();
    const layoutConfig = genaiConfig({
      config: built.decoder,
      layout,
      generation: ckpt.generationConfig,
      tokenizerEos: needsTokenizerEos(built.decoder, ckpt) ? await tokenizerEos(ckpt.dir, tokenizerFiles) : undefined,
    });
    const config = target ? withProviders(layoutConfig, target) : layoutConfig;
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

    await writeGenaiConfig(outDir, config);
    const tokenizer = await copyTokenizerFiles(tokenizerFiles, outDir);

    return {
      outDir,
      files: ['model.onnx', 'model.onnx.data', GENAI_CONFIG_FILE, ...tokenizer.map((f) => f.slice(outDir.length + 1))],
      architecture: built.decoder.architecture,
      variant: built.variant,
      decoder: built.decoder,
      target: target?.id,
      layout: layoutId(layout),
      precision: precisionOf(layout.activationDtype),
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
