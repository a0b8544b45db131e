// Test helpers for checkpoints: a hand-rolled safetensors byte builder (independent of our writer, so it can also
// build malformed files), typed-array byte views, tiny Phi-3 configs and tiny checkpoint folders in temp dirs.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeShardedSafetensors, type TensorToWrite } from '../../src/checkpoint/safetensors-writer.js';
export { sharedFixture as sharedFixturePath } from './fixtures.js';

/** A fresh temporary folder; remove it with removeTempDir. */
export function makeTempDir(prefix = 'phi-forge-ckpt-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export function removeTempDir(dir: string): Promise<void> {
  return rm(dir, { recursive: true, force: true });
}

/** Little-endian bytes of a typed array (a copy, so later edits of either side do not leak). */
export function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
}

export const f32 = (v: readonly number[]): Uint8Array => bytesOf(Float32Array.from(v));
export const f64 = (v: readonly number[]): Uint8Array => bytesOf(Float64Array.from(v));
export const u16 = (v: readonly number[]): Uint8Array => bytesOf(Uint16Array.from(v));
export const i64 = (v: readonly number[]): Uint8Array => bytesOf(BigInt64Array.from(v, (x) => BigInt(x)));

export interface RawEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

export interface BuildOptions {
  /** Written as the 8-byte header length instead of the real one (to fake corrupt files). */
  headerLength?: bigint;
  /** Header text used verbatim instead of JSON.stringify(header). */
  headerText?: string;
  /** Pad the header with spaces to a multiple of 8 (default true, like the reference writer). */
  pad?: boolean;
}

/** A safetensors file's bytes from a header object and the data region, exactly as given (no validation). */
export function buildSafetensorsBytes(header: Record<string, unknown>, data: Uint8Array, opts: BuildOptions = {}): Uint8Array {
  let json = new TextEncoder().encode(opts.headerText ?? JSON.stringify(header));
  if (opts.pad ?? true) {
    const padded = new Uint8Array(Math.ceil(json.byteLength / 8) * 8).fill(0x20);
    padded.set(json);
    json = padded;
  }
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, opts.headerLength ?? BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

export interface SimpleTensor {
  name: string;
  dtype: string;
  shape: number[];
  bytes: Uint8Array;
}

/** Header + data for tensors laid out back to back in the given order (a well-formed file when inputs agree). */
export function layoutSafetensors(tensors: readonly SimpleTensor[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let off = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.bytes.byteLength] };
    off += t.bytes.byteLength;
  }
  const data = new Uint8Array(off);
  off = 0;
  for (const t of tensors) {
    data.set(t.bytes, off);
    off += t.bytes.byteLength;
  }
  return buildSafetensorsBytes(header, data);
}

/** A small valid Phi-3 config.json (2 layers, GQA 4/2 heads of 8, vocab 32). */
export function tinyPhi3Config(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    architectures: ['Phi3ForCausalLM'],
    model_type: 'phi3',
    vocab_size: 32,
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 128,
    original_max_position_embeddings: 128,
    rms_norm_eps: 1e-5,
    rope_theta: 10000.0,
    rope_scaling: null,
    sliding_window: null,
    bos_token_id: 1,
    eos_token_id: 2,
    pad_token_id: 0,
    tie_word_embeddings: false,
    torch_dtype: 'float32',
    ...overrides,
  };
}

/** Float32 tensors with deterministic distinct values, as TensorToWrite (value i of tensor k is k + i/1000). */
export function rampTensors(specs: readonly { name: string; shape: number[] }[]): TensorToWrite[] {
  return specs.map((s, k) => {
    const n = s.shape.reduce((a, b) => a * b, 1);
    return {
      name: s.name,
      dtype: 'F32',
      shape: s.shape,
      data: () => f32(Array.from({ length: n }, (_, i) => k + i / 1000)),
    };
  });
}

export interface TinyCheckpointOptions {
  config?: Record<string, unknown>;
  generationConfig?: Record<string, unknown>;
  tensors: TensorToWrite[];
  /** Shard size limit; default large enough for one model.safetensors. */
  maxShardBytes?: number;
}

/** Writes config.json (+ generation_config.json) and the tensors into `dir`. Returns the weight files written. */
export async function writeTinyCheckpoint(dir: string, opts: TinyCheckpointOptions): Promise<string[]> {
  await writeFile(join(dir, 'config.json'), JSON.stringify(opts.config ?? tinyPhi3Config(), null, 2));
  if (opts.generationConfig) await writeFile(join(dir, 'generation_config.json'), JSON.stringify(opts.generationConfig, null, 2));
  const { files } = await writeShardedSafetensors(dir, opts.tensors, { maxShardBytes: opts.maxShardBytes ?? 1 << 30 });
  return files;
}

