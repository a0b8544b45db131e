// Synthetic Hugging Face checkpoints: a real Phi config (or its tiny version) with deterministic random weights,
// planned from the family's tensor table, produced tensor by tensor from (seed, tensor name), streamed into safetensors.
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { float32ToBfloat16Bits } from '../onnx/tensor.js';
import { writeDirAtomic } from '../util/atomic-fs.js';
import { UsageError } from '../util/errors.js';
import { Rng } from '../util/random.js';
import { isKnownConfigName, knownConfig, KNOWN_CONFIG_NAMES, KNOWN_GENERATION_CONFIGS, type KnownConfigName } from '../checkpoint/known-configs.js';
import { checkOutputFolder } from '../util/output-path.js';
import { writeShardedSafetensors, type TensorToWrite } from '../checkpoint/safetensors-writer.js';
import { CONFIG_FILE, parseHfConfig } from '../checkpoint/hf-config.js';
import { parseArchConfig } from './index.js';
import { mapTokenIds, tinyConfig, type RawConfig } from './synth-presets.js';
import { tensorName, type InitKind, type TensorRule } from './tensor-map.js';
import type { DecoderConfig } from './types.js';

export type SynthScale = 'tiny' | 'full';
export const SYNTH_SCALES: readonly SynthScale[] = ['tiny', 'full'];

/** How a tensor's values are drawn: by the kind of parameter its family's table says it is. */
export type { InitKind };

export interface PlannedTensor {
  name: string;
  shape: number[];
  init: InitKind;
  /** Input features of a linear layer (sets its scale); the hidden size for embeddings. */
  fanIn: number;
}

export type SynthDtype = 'F32' | 'BF16';

export interface SynthOptions {
  preset: string;
  scale: SynthScale;
  outDir: string;
  /** Any integer; the same seed gives byte-identical files. Default 0. */
  seed?: number;
  /** Replace a non-empty outDir (default false). */
  overwrite?: boolean;
  /** Largest shard of a `full` checkpoint, in bytes (default 5 GB, transformers' default max_shard_size). */
  maxShardBytes?: number;
}

export interface SynthResult {
  outDir: string;
  preset: string;
  scale: SynthScale;
  seed: number;
  architecture: string;
  dtype: SynthDtype;
  config: RawConfig;
  /** Written files, relative to outDir. */
  files: string[];
  tensors: number;
  parameters: number;
  /** Bytes of tensor data (without safetensors headers). */
  tensorBytes: number;
}

/** transformers writes shards of at most "5GB" = 5·10^9 bytes. */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;
const TRANSFORMERS_VERSION = '4.46.0';

/** The config.json a synthetic checkpoint of `preset` at `scale` carries. */
export function synthConfig(preset: string, scale: SynthScale): RawConfig {
  if (!isKnownConfigName(preset)) {
    throw new UsageError(`unknown synth preset "${preset}"`, { fix: `use one of: ${KNOWN_CONFIG_NAMES.join(', ')}` });
  }
  const real = structuredClone(knownConfig(preset)) as RawConfig;
  if (scale === 'tiny') return tinyConfig(real, preset);
  // Full-scale weights are written in bf16 whatever the hub's dtype (fp16 for phi-2): say what the files hold.
  if ('torch_dtype' in real) real.torch_dtype = 'bfloat16';
  return real;
}

/**
 * generation_config.json of the preset: the hub's (end-of-turn ids included) where known-configs has it, else the
 * one transformers derives from config.json; token ids remapped like the config's at the tiny scale.
 */
export function synthGenerationConfig(preset: string, scale: SynthScale): RawConfig {
  const config = synthConfig(preset, scale); // also rejects an unknown preset
  const name = preset as KnownConfigName;
  const known = KNOWN_GENERATION_CONFIGS[name];
  const g: RawConfig = known ? (structuredClone(known) as RawConfig) : { _from_model_config: true };
  if (!known) {
    for (const key of ['bos_token_id', 'eos_token_id', 'pad_token_id']) {
      if (config[key] !== undefined && config[key] !== null) g[key] = config[key];
    }
  } else if (scale === 'tiny') {
    const realVocab = knownConfig(name).vocab_size as number;
    for (const key of ['bos_token_id', 'eos_token_id', 'pad_token_id']) {
      if (key in g) g[key] = mapTokenIds(g[key], realVocab);
    }
  }
  g.transformers_version = TRANSFORMERS_VERSION;
  return g;
}

/**
 * Every tensor transformers saves for this config, with its exact name and [out, in] shape, in model order
 * (embedding, layers, final norm, head): the config is parsed by its family's schema and the family's tensor table
 * is read row by row. Nothing is allocated.
 */
export function planTensors(config: RawConfig): PlannedTensor[] {
  return planFor(config).plan;
}

function planFor(raw: RawConfig): { architecture: string; plan: PlannedTensor[] } {
  const { spec, config } = parseArchConfig(parseHfConfig(raw, CONFIG_FILE));
  return { architecture: config.architecture, plan: planFromTable(spec.tensorMap, spec.decoder(config)) };
}

/**
 * The table's saved tensors for a config: rows before the first per-layer row, then each layer's rows, then the
 * rest (the order transformers saves them in). A row without `init` is never saved (e.g. old rotary inv_freq).
 */
function planFromTable(rules: readonly TensorRule[], c: DecoderConfig): PlannedTensor[] {
  const saved = rules.filter((r) => r.init !== undefined && (r.saved ?? r.required ?? (() => true))(c));
  const perLayer = (r: TensorRule) => r.hf.includes('{layer}');
  const first = rules.findIndex(perLayer);
  const planned = (r: TensorRule, layer?: number): PlannedTensor => {
    const shape = (r.shape ?? []).map((d) => d.size(c));
    // Linear weights are [out, in]; an embedding's last dimension is the hidden size: both scale by it.
    return { name: tensorName(r, layer), shape, init: r.init!, fanIn: shape[shape.length - 1]! };
  };
  const out = saved.filter((r) => !perLayer(r) && rules.indexOf(r) < first).map((r) => planned(r));
  for (let l = 0; l < c.numLayers; l++) out.push(...saved.filter(perLayer).map((r) => planned(r, l)));
  out.push(...saved.filter((r) => !perLayer(r) && rules.indexOf(r) > first).map((r) => planned(r)));
  return out;
}

/** Elements and bytes of a plan stored in `dtype`. */
export function planSize(plan: readonly PlannedTensor[], dtype: SynthDtype): { parameters: number; bytes: number } {
  const parameters = plan.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
  return { parameters, bytes: parameters * (dtype === 'F32' ? 4 : 2) };
}

/**
 * Values of one tensor. Scales keep a forward pass sane at any size: linear weights N(0, 1/fan_in) so each
 * projection roughly preserves the activation scale (≈ 0.02 at Phi's real widths), the embedding N(0, 1/hidden)
 * so a tied lm_head gives logits of order 1, norm weights 1 ± 0.1, biases N(0, 0.05²).
 */
export function initParams(t: PlannedTensor): { mean: number; std: number } {
  switch (t.init) {
    case 'embedding':
    case 'linear':
      return { mean: 0, std: 1 / Math.sqrt(t.fanIn) };
    case 'norm-weight':
      return { mean: 1, std: 0.1 };
    case 'norm-bias':
    case 'bias':
      return { mean: 0, std: 0.05 };
  }
}

/** Elements generated per step when producing bf16, so a 600M-element embedding never exists in fp32. */
const CHUNK = 1 << 20;

/** A lazily produced tensor: values depend only on (seed, name), whatever order the writer asks in. */
export function synthTensor(t: PlannedTensor, seed: number, dtype: SynthDtype): TensorToWrite {
  return {
    name: t.name,
    dtype,
    shape: t.shape,
    data: () => synthTensorBytes(t, seed, dtype),
  };
}

export function synthTensorBytes(t: PlannedTensor, seed: number, dtype: SynthDtype): Uint8Array {
  const n = t.shape.reduce((a, b) => a * b, 1);
  const rng = Rng.forName(seed, t.name);
  const { mean, std } = initParams(t);
  if (dtype === 'F32') {
    const out = rng.fillNormal(new Float32Array(n), std, mean);
    return new Uint8Array(out.buffer);
  }
  const out = new Uint16Array(n);
  const chunk = new Float32Array(Math.min(CHUNK, n));
  for (let at = 0; at < n; at += chunk.length) {
    const len = Math.min(chunk.length, n - at);
    const part = len === chunk.length ? chunk : chunk.subarray(0, len);
    rng.fillNormal(part, std, mean);
    float32ToBfloat16Bits(part, out.subarray(at, at + len));
  }
  return new Uint8Array(out.buffer);
}

export async function synthCheckpoint(opts: SynthOptions): Promise<SynthResult> {
  if (!SYNTH_SCALES.includes(opts.scale)) {
    throw new UsageError(`unknown scale "${String(opts.scale)}"`, { fix: 'use --scale tiny or --scale full' });
  }
  const seed = opts.seed ?? 0;
  if (!Number.isSafeInteger(seed)) throw new UsageError(`seed ${seed} is not an integer`, { fix: 'pass --seed N with a whole number' });
  const config = synthConfig(opts.preset, opts.scale);
  const dtype: SynthDtype = opts.scale === 'tiny' ? 'F32' : 'BF16';
  const written = await writeSynthCheckpoint({
    config,
    generationConfig: synthGenerationConfig(opts.preset, opts.scale),
    outDir: opts.outDir,
    seed,
    dtype,
    // A tiny checkpoint is always one model.safetensors.
    maxShardBytes: opts.scale === 'tiny' ? Number.MAX_SAFE_INTEGER : (opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES),
    overwrite: opts.overwrite,
  });
  return { ...written, preset: opts.preset, scale: opts.scale, seed, dtype, config };
}

export interface WriteSynthOptions {
  config: RawConfig;
  generationConfig: RawConfig;
  outDir: string;
  seed: number;
  dtype: SynthDtype;
  maxShardBytes: number;
  overwrite?: boolean;
}

/**
 * Writes config.json, generation_config.json and the weights (model.safetensors, or shards plus
 * model.safetensors.index.json past maxShardBytes) into outDir, which appears only when complete.
 */
export async function writeSynthCheckpoint(
  opts: WriteSynthOptions,
): Promise<Pick<SynthResult, 'outDir' | 'architecture' | 'files' | 'tensors' | 'parameters' | 'tensorBytes'>> {
  const { architecture, plan } = planFor(opts.config);
  const tensors = plan.map((t) => synthTensor(t, opts.seed, opts.dtype));
  const outDir = resolve(opts.outDir);
  await checkOutputFolder(outDir, { flag: '--out', force: opts.overwrite });
  const files = await writeDirAtomic(outDir, async (tmp) => {
    await writeFile(join(tmp, 'config.json'), JSON.stringify(opts.config, null, 2) + '\n');
    await writeFile(join(tmp, 'generation_config.json'), JSON.stringify(opts.generationConfig, null, 2) + '\n');
    const { files: weights } = await writeShardedSafetensors(tmp, tensors, { maxShardBytes: opts.maxShardBytes, metadata: { format: 'pt' } });
    return ['config.json', 'generation_config.json', ...weights.map((f) => relativeTo(tmp, f))];
  });
  const { parameters, bytes } = planSize(plan, opts.dtype);
  return { outDir, architecture, files, tensors: plan.length, parameters, tensorBytes: bytes };
}

/** Shard paths may come back absolute or relative to the folder; report them relative. */
function relativeTo(dir: string, file: string): string {
  return file.startsWith(dir + '/') ? file.slice(dir.length + 1) : file;
}
