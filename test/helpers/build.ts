// Test helper for the native builder: builds tiny synthetic checkpoints into ONNX folders and runs them in
// onnxruntime-node with an explicit KV cache (full forward, prefill + one-token steps), returning fp32 logits.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { parseArchConfig } from '../../src/arch/index.js';
import { parseHfConfig } from '../../src/checkpoint/hf-config.js';
import { writeSafetensors } from '../../src/checkpoint/safetensors-writer.js';
import { planTensors, synthConfig, synthGenerationConfig, synthTensor } from '../../src/arch/synth.js';
import { resampleFactors, type RawConfig } from '../../src/arch/synth-presets.js';
import { float16BitsToFloat32 } from '../../src/onnx/tensor.js';

/** Folders made by {@link tempDir}, removed by {@link cleanTempDirs}. */
const made: string[] = [];

export async function tempDir(prefix = 'phi-forge-build-'): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  made.push(d);
  return d;
}

export async function cleanTempDirs(): Promise<void> {
  await Promise.all(made.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}

export interface DecoderShape {
  layers: number;
  kvHeads: number;
  headSize: number;
  vocab: number;
}

type Kv = { key: ort.Tensor; value: ort.Tensor }[];

export interface StepResult {
  /** One Float32Array of `vocab` logits per input position. */
  logits: Float32Array[];
  present: Kv;
}

/** A decoder session with the genai graph contract, driven one call at a time. */
export class OrtDecoder {
  private constructor(
    readonly session: ort.InferenceSession,
    readonly shape: DecoderShape,
    readonly kvType: 'float32' | 'float16',
    readonly positionIds: boolean,
  ) {}

  static async open(modelPath: string, shape: DecoderShape): Promise<OrtDecoder> {
    const session = await ort.InferenceSession.create(modelPath, { graphOptimizationLevel: 'all' });
    const meta = session.inputMetadata.find((m) => m.name === 'past_key_values.0.key');
    const kvType = meta && meta.isTensor && meta.type === 'float16' ? 'float16' : 'float32';
    return new OrtDecoder(session, shape, kvType, session.inputNames.includes('position_ids'));
  }

  emptyKv(): Kv {
    const { layers, kvHeads, headSize } = this.shape;
    const empty = () =>
      this.kvType === 'float16'
        ? new ort.Tensor('float16', new Uint16Array(0), [1, kvHeads, 0, headSize])
        : new ort.Tensor('float32', new Float32Array(0), [1, kvHeads, 0, headSize]);
    return Array.from({ length: layers }, () => ({ key: empty(), value: empty() }));
  }

  /** Runs `ids` after `past` (batch 1); the attention mask covers past + new tokens. */
  async step(ids: readonly number[], past: Kv): Promise<StepResult> {
    const pastLen = past[0]?.key.dims[2] ?? 0;
    const total = pastLen + ids.length;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, (v) => BigInt(v)), [1, ids.length]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(total).fill(1n), [1, total]),
    };
    if (this.positionIds) {
      feeds.position_ids = new ort.Tensor('int64', BigInt64Array.from(ids, (_, i) => BigInt(pastLen + i)), [1, ids.length]);
    }
    past.forEach((kv, i) => {
      feeds[`past_key_values.${i}.key`] = kv.key;
      feeds[`past_key_values.${i}.value`] = kv.value;
    });
    const out = await this.session.run(feeds);
    const logits = out.logits;
    const V = this.shape.vocab;
    const flat =
      logits.type === 'float16' ? float16BitsToFloat32(logits.data as Uint16Array) : (logits.data as Float32Array);
    if (flat.length !== ids.length * V) throw new Error(`logits has ${flat.length} values, expected ${ids.length}×${V}`);
    return {
      logits: Array.from({ length: ids.length }, (_, t) => flat.slice(t * V, (t + 1) * V)),
      present: past.map((_, i) => ({ key: out[`present.${i}.key`], value: out[`present.${i}.value`] })),
    };
  }

  /** Logits of every position of one call over the whole sequence. */
  async full(ids: readonly number[]): Promise<Float32Array[]> {
    return (await this.step(ids, this.emptyKv())).logits;
  }

  /** Logits of every position from a prefill of `prefill` tokens, then one token per call through the KV cache. */
  async incremental(ids: readonly number[], prefill: number): Promise<Float32Array[]> {
    let r = await this.step(ids.slice(0, prefill), this.emptyKv());
    const logits = [...r.logits];
    for (let t = prefill; t < ids.length; t++) {
      r = await this.step([ids[t]], r.present);
      logits.push(...r.logits);
    }
    return logits;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

/** Largest |a − b| over all positions. */
export function maxAbsDiff(a: readonly Float32Array[], b: readonly Float32Array[]): number {
  if (a.length !== b.length) throw new Error(`${a.length} positions vs ${b.length}`);
  let m = 0;
  a.forEach((x, t) => {
    const y = b[t];
    if (x.length !== y.length) throw new Error(`position ${t}: ${x.length} logits vs ${y.length}`);
    for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  });
  return m;
}

/** Largest |x| over all positions (to express tolerances relative to the logits' scale). */
export function maxAbs(a: readonly Float32Array[]): number {
  let m = 0;
  for (const x of a) for (const v of x) m = Math.max(m, Math.abs(v));
  return m;
}

/** Deterministic token ids in [0, vocab) (a fixed LCG, so failures reproduce). */
export function tokenSequence(length: number, vocab: number, seed = 1): number[] {
  let s = seed >>> 0;
  return Array.from({ length }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % vocab;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Tiny checkpoints

/**
 * synth's tiny config for a preset with another head size (hidden_size = heads × headDim; LongRoPE factor lists
 * resampled to the new rotary_dim/2): small heads exercise the builder's rotary-outside-attention layout.
 */
export function withHeadDim(preset: string, headDim: number): RawConfig {
  const c = synthConfig(preset, 'tiny');
  const prf = parseArchConfig(parseHfConfig(c, 'config.json')).config.partial_rotary_factor;
  c.hidden_size = (c.num_attention_heads as number) * headDim;
  if ('head_dim' in c) c.head_dim = headDim;
  const scaling = c.rope_scaling as RawConfig | null | undefined;
  if (scaling) {
    for (const k of ['short_factor', 'long_factor']) {
      if (Array.isArray(scaling[k])) scaling[k] = resampleFactors(scaling[k] as number[], Math.trunc(headDim * prf + 1e-9) / 2);
    }
  }
  return c;
}

/**
 * Writes a tiny fp32 checkpoint of a synth preset (or of `config`, a variant of the preset's tiny config) into a new
 * temp folder; returns it. Phi-1/1.5 name no eos token anywhere but in their tokenizer, which tiny checkpoints lack:
 * unless `keepNoEos`, generation_config.json then gets the last vocabulary id as eos_token_id, as a tokenizer would.
 */
export async function tinyCheckpoint(
  preset: string,
  seed = 0,
  opts: { keepNoEos?: boolean; config?: RawConfig } = {},
): Promise<{ dir: string; config: RawConfig }> {
  const dir = await tempDir(`phi-forge-ckpt-${preset}-`);
  const config = opts.config ?? synthConfig(preset, 'tiny');
  const generation = synthGenerationConfig(preset, 'tiny');
  const none = (v: unknown) => v === undefined || v === null;
  if (!opts.keepNoEos && none(config.eos_token_id) && none(generation.eos_token_id)) generation.eos_token_id = (config.vocab_size as number) - 1;
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  await writeFile(join(dir, 'generation_config.json'), JSON.stringify(generation, null, 2));
  await writeSafetensors(join(dir, 'model.safetensors'), planTensors(config).map((t) => synthTensor(t, seed, 'F32')), { format: 'pt' });
  return { dir, config };
}

/** The shape OrtDecoder needs, from a raw config.json. */
export function decoderShape(config: RawConfig): DecoderShape {
  const heads = config.num_attention_heads as number;
  return {
    layers: config.num_hidden_layers as number,
    kvHeads: typeof config.num_key_value_heads === 'number' ? config.num_key_value_heads : heads,
    headSize: typeof config.head_dim === 'number' ? config.head_dim : (config.hidden_size as number) / heads,
    vocab: config.vocab_size as number,
  };
}
