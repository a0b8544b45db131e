// Package folders for release/verify tests: fake packages (right layout and manifest, meaningless bytes), runnable
// ones (a tiny GroupQueryAttention decoder with its weights in model.onnx.data) and ones whose graph uses an op
// onnxruntime's CPU EP has no kernel for. Manifests come from the real buildManifest.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { buildManifest, MANIFEST_FILE, type ManifestInfo } from '../../src/package/manifest.js';
import { buildTinyDecoder, rng, type TinyDecoderOptions } from './runtime.js';

const { onnx } = onnxProto;

const made: string[] = [];

export async function tempDir(prefix = 'phi-forge-pkg-'): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  made.push(d);
  return d;
}

export async function cleanTempDirs(): Promise<void> {
  await Promise.all(made.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}

/** genai provider options per target, as the real package stage writes them. */
const PROVIDERS: Record<string, Record<string, Record<string, string>>[]> = {
  cpu: [],
  mobile: [],
  cuda: [{ cuda: { enable_cuda_graph: '0' } }],
  dml: [{ dml: {} }],
};

export interface PackageOptions {
  model?: string;
  target?: string;
  recipe?: string;
  /** Recorded in the manifest as the validation result (release reads metrics and gate verdicts from it). */
  validation?: unknown;
  seed?: number;
}

function info(o: PackageOptions): ManifestInfo {
  const target = o.target ?? 'cpu';
  return {
    model: o.model ?? 'tiny-test',
    recipe: o.recipe ?? o.model ?? 'tiny-test',
    target,
    source: { origin: 'synth:phi-4-mini:tiny:0', revision: 'abc123' },
    architecture: 'Phi3ForCausalLM',
    precision: target === 'cuda' || target === 'dml' ? 'fp16' : 'fp32',
    quantization: { scheme: 'int4', algo: 'rtn', block_size: 32 },
    validation: o.validation ?? {
      metrics: { ppl: 12.5, ppl_ref: 12.25, ppl_delta_pct: 2.04, kl_mean: 0.011 },
      gates: { passed: true, rows: [{ metric: 'ppl_delta_pct', kind: 'max', measured: 2.04, allowed: 25, ok: true }] },
    },
  };
}

/** Files shaped like a package (model.onnx, model.onnx.data, genai_config.json, tokenizer files) + manifest.json. */
export async function writeFakePackage(dir: string, o: PackageOptions = {}): Promise<string> {
  await mkdir(dir, { recursive: true });
  const rand = rng(o.seed ?? 7);
  const data = new Uint8Array(300_000);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor((rand() + 1) * 128) & 255;
  await writeFile(join(dir, 'model.onnx'), `not really onnx for ${o.target ?? 'cpu'}`);
  await writeFile(join(dir, 'model.onnx.data'), data);
  const genai = buildTinyDecoder().genaiConfig;
  (genai.model.decoder.session_options as { provider_options: unknown }).provider_options = PROVIDERS[o.target ?? 'cpu'] ?? [];
  await writeFile(join(dir, 'genai_config.json'), JSON.stringify(genai, null, 2));
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify({ version: '1.0', model: { type: 'BPE', vocab: { a: 0 } } }));
  await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify({ bos_token: '<s>' }));
  await writeManifest(dir, o);
  return dir;
}

/**
 * A package onnxruntime can run: the tiny decoder of ./runtime.ts with its weights moved to model.onnx.data
 * (external data, 64-byte aligned, as builders do), its genai_config.json and a manifest.
 */
export async function writeRunnablePackage(dir: string, o: PackageOptions & { decoder?: TinyDecoderOptions } = {}): Promise<string> {
  await mkdir(dir, { recursive: true });
  const target = o.target ?? 'cpu';
  const fp16 = target === 'cuda' || target === 'dml';
  const m = buildTinyDecoder({ dtype: fp16 ? 'float16' : 'float32', positionIds: target === 'dml', ...o.decoder });
  const model = onnx.ModelProto.decode(m.onnx);
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const t of model.graph!.initializer!) {
    const raw = t.rawData as Uint8Array | undefined;
    // Small int64 constants (ReduceSum axes, shapes) stay inline: onnxruntime's shape inference reads them at load.
    if (!raw || raw.length < 256 || t.dataType === onnx.TensorProto.DataType.INT64) continue;
    const pad = (64 - (offset % 64)) % 64;
    if (pad) chunks.push(new Uint8Array(pad));
    offset += pad;
    t.externalData = [
      { key: 'location', value: 'model.onnx.data' },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(raw.length) },
    ];
    t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    chunks.push(Uint8Array.from(raw));
    offset += raw.length;
    t.rawData = new Uint8Array(0);
  }
  await writeFile(join(dir, 'model.onnx'), onnx.ModelProto.encode(model).finish());
  await writeFile(join(dir, 'model.onnx.data'), Buffer.concat(chunks));
  const genai = m.genaiConfig;
  (genai.model.decoder.session_options as { provider_options: unknown }).provider_options = PROVIDERS[target] ?? [];
  await writeFile(join(dir, 'genai_config.json'), JSON.stringify(genai, null, 2));
  await writeManifest(dir, o);
  return dir;
}

/**
 * A package whose model.onnx is one com.microsoft BiasAdd node: onnxruntime knows the op's schema but its CPU EP
 * has no kernel for it ("Failed to find kernel for com.microsoft.BiasAdd(1)"), as with CUDA-only graphs.
 */
export async function writeCpuUnsupportedPackage(dir: string, o: PackageOptions = {}): Promise<string> {
  await mkdir(dir, { recursive: true });
  const vi = (name: string, dims: number[]) =>
    onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT16, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } });
  const graph = onnx.GraphProto.create({
    name: 'cuda-only',
    node: [onnx.NodeProto.create({ opType: 'BiasAdd', domain: 'com.microsoft', input: ['x', 'bias', 'skip'], output: ['y'], name: '/bias_add' })],
    input: [vi('x', [1, 2, 4]), vi('bias', [4]), vi('skip', [1, 2, 4])],
    output: [vi('y', [1, 2, 4])],
  });
  const model = onnx.ModelProto.create({
    irVersion: 10,
    opsetImport: [
      { domain: '', version: 21 },
      { domain: 'com.microsoft', version: 1 },
    ],
    graph,
  });
  await writeFile(join(dir, 'model.onnx'), onnx.ModelProto.encode(model).finish());
  const genai = buildTinyDecoder().genaiConfig;
  (genai.model.decoder.session_options as { provider_options: unknown }).provider_options = PROVIDERS[o.target ?? 'cuda'] ?? [];
  await writeFile(join(dir, 'genai_config.json'), JSON.stringify(genai, null, 2));
  await writeManifest(dir, { target: 'cuda', ...o });
  return dir;
}

/** (Re)writes manifest.json from the folder's current files. */
export async function writeManifest(dir: string, o: PackageOptions = {}): Promise<void> {
  const manifest = await buildManifest(dir, info(o));
  await writeFile(join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
}

/** Every file under dir as sorted relative path → sha256 of its bytes (to compare a copy or extraction with its source). */
export async function treeDigest(dir: string): Promise<Map<string, string>> {
  const { listFiles } = await import('../../src/package/manifest.js');
  const { sha256File } = await import('../../src/util/hash.js');
  const out = new Map<string, string>();
  for (const f of await listFiles(dir)) out.set(f, await sha256File(join(dir, f)));
  return out;
}
