// End to end: tiny synthetic checkpoints → convertCheckpoint → onnxruntime-node, checked against the float64
// reference forward passes of transformers' Phi3ForCausalLM / PhiForCausalLM (test/helpers/reference-forward.ts).
import { existsSync } from 'node:fs';
import { readFile, writeFile, copyFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import onnxProto from 'onnx-proto';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { buildModel } from '../../src/arch/build-model.js';
import { checkpointSource } from '../../src/arch/checkpoint-source.js';
import { convertCheckpoint, type ConvertResult } from '../../src/arch/convert.js';
import { Checkpoint } from '../../src/checkpoint/checkpoint.js';
import { loadModel } from '../../src/onnx/model-file.js';
import { getTarget } from '../../src/target/index.js';
import { graphLayout } from '../../src/target/layout.js';
import { writeSafetensors } from '../../src/checkpoint/safetensors-writer.js';
import { planTensors, synthTensor } from '../../src/arch/synth.js';
import { checkGenaiConfigKeys } from '../../src/genai/schema.js';
import type { TargetId } from '../../src/target/types.js';
import { ArchitectureError, CheckpointError } from '../../src/util/errors.js';
import {
  cleanTempDirs,
  decoderShape,
  maxAbsDiff,
  OrtDecoder,
  tempDir,
  tinyCheckpoint,
  tokenSequence,
  withHeadDim,
} from '../helpers/build.js';
import { loadReferenceModel, phi3Forward, phiForward, type ReferenceModel } from '../helpers/reference-forward.js';

const { onnx } = onnxProto;
const FIXTURES = fileURLToPath(new URL('../../../shared/fixtures', import.meta.url));

afterAll(cleanTempDirs);

interface Built {
  ckpt: string;
  config: Record<string, unknown>;
  ref: ReferenceModel;
  result: ConvertResult;
  decoder: OrtDecoder;
}

const cache = new Map<string, Promise<Built>>();
const checkpoints = new Map<string, Promise<{ dir: string; config: Record<string, unknown>; ref: ReferenceModel }>>();

/** `preset` is a synth preset, or `preset@N`: its tiny config with head size N. */
function checkpoint(preset: string) {
  let p = checkpoints.get(preset);
  if (!p) {
    const [name, head] = preset.split('@');
    const config = head ? withHeadDim(name, Number(head)) : undefined;
    p = tinyCheckpoint(name, 7, { config }).then(async ({ dir, config }) => ({ dir, config, ref: await loadReferenceModel(dir) }));
    checkpoints.set(preset, p);
  }
  return p;
}

/** Converts a preset once per (target, precision) and opens it in onnxruntime. */
function built(preset: string, target: TargetId = 'cpu', precision: 'fp32' | 'fp16' = 'fp32'): Promise<Built> {
  const key = `${preset}/${target}/${precision}`;
  let p = cache.get(key);
  if (!p) {
    p = (async () => {
      const { dir, config, ref } = await checkpoint(preset);
      const out = await tempDir(`phi-forge-onnx-${preset.replace('@', '-h')}-`);
      const result = await convertCheckpoint({ checkpointDir: dir, outDir: out, target, precision });
      const decoder = await OrtDecoder.open(join(out, 'model.onnx'), decoderShape(config));
      return { ckpt: dir, config, ref, result, decoder };
    })();
    cache.set(key, p);
  }
  return p;
}

function reference(b: Built, ids: number[], longRope: 'auto' | 'short' | 'long' = 'auto'): Float32Array[] {
  const arch = (b.config.architectures as string[])[0];
  return arch === 'PhiForCausalLM' ? phiForward(b.ref, ids) : phi3Forward(b.ref, ids, { longRope });
}

const vocab = (b: Built) => b.config.vocab_size as number;

// Every tiny preset: which prompt lengths exercise its features.
//   plain: max 64; sliding window 31 of 64 → 50 tokens crosses it; LongRoPE: original 32 of 128 → 20 vs 48 tokens.
const PRESETS: { preset: string; short: number; long?: number }[] = [
  { preset: 'phi-3-mini-4k', short: 24, long: 50 },
  { preset: 'phi-3-mini-128k', short: 20, long: 48 },
  { preset: 'phi-3.5-mini', short: 20, long: 48 },
  { preset: 'phi-3-medium-4k', short: 24, long: 50 },
  { preset: 'phi-4-mini', short: 20, long: 48 },
  { preset: 'phi-4-mini-reasoning', short: 20, long: 48 },
  { preset: 'phi-4', short: 40 },
  { preset: 'phi-2', short: 40 },
  { preset: 'phi-1_5', short: 30 },
  { preset: 'phi-1', short: 30 },
];

describe.each(PRESETS)('$preset fp32 (cpu)', ({ preset, short }) => {
  it('matches the reference forward within 1e-4 on a short prompt', async () => {
    const b = await built(preset);
    const ids = tokenSequence(short, vocab(b), 11);
    expect(maxAbsDiff(await b.decoder.full(ids), reference(b, ids))).toBeLessThan(1e-4);
  });

  it('prefill + one token at a time through the KV cache equals one full forward', async () => {
    const b = await built(preset);
    const ids = tokenSequence(short, vocab(b), 12);
    const full = await b.decoder.full(ids);
    expect(maxAbsDiff(await b.decoder.incremental(ids, 5), full)).toBeLessThan(1e-4);
  });
});

const LONG = PRESETS.filter((p): p is { preset: string; short: number; long: number } => p.long !== undefined);

describe.each(LONG)('$preset fp32 (cpu), $long tokens', ({ preset, long }) => {
  it('matches the reference past the sliding window / LongRoPE switch', async () => {
    const b = await built(preset);
    const ids = tokenSequence(long, vocab(b), 13);
    const got = await b.decoder.full(ids);
    expect(maxAbsDiff(got, reference(b, ids))).toBeLessThan(1e-4);
    if (b.result.variant.includes('longrope')) {
      // The long caches were really used: the short-factor reference is far off.
      expect(maxAbsDiff(got, reference(b, ids, 'short'))).toBeGreaterThan(1e-2);
      // And decoding past a long prefill stays on the long caches.
      expect(maxAbsDiff(await b.decoder.incremental(ids, 40), got)).toBeLessThan(1e-4);
    }
  });
});

describe('fp16 (cuda layout, run on ORT CPU)', () => {
  it.each(['phi-3-mini-128k', 'phi-4-mini', 'phi-2'])('%s is close to the reference', async (preset) => {
    const b = await built(preset, 'cuda', 'fp16');
    expect(b.decoder.kvType).toBe('float16');
    const ids = tokenSequence(24, vocab(b), 21);
    const got = await b.decoder.full(ids);
    // Logits are of order 4; fp16 weights and activations keep them within a few hundredths.
    expect(maxAbsDiff(got, reference(b, ids))).toBeLessThan(0.05);
    expect(maxAbsDiff(await b.decoder.incremental(ids, 4), got)).toBeLessThan(0.02);
  });
});

describe('DirectML layout (fp32, run on ORT CPU)', () => {
  it.each([
    ['phi-4-mini', 48],
    ['phi-3-mini-4k', 50],
    ['phi-2', 30],
  ] as const)('%s matches the reference with position_ids and RotaryEmbedding', async (preset, n) => {
    const b = await built(preset, 'dml', 'fp32');
    expect(b.decoder.positionIds).toBe(true);
    const ids = tokenSequence(n, vocab(b), 31);
    const got = await b.decoder.full(ids);
    expect(maxAbsDiff(got, reference(b, ids))).toBeLessThan(1e-4);
    const shortIds = ids.slice(0, 20);
    expect(maxAbsDiff(await b.decoder.incremental(shortIds, 3), reference(b, shortIds))).toBeLessThan(1e-4);
  });

  it('has no If, separate q/k/v MatMuls and concatenated caches', async () => {
    const b = await built('phi-4-mini', 'dml', 'fp32');
    const m = decodeModel(await readFile(join(b.result.outDir, 'model.onnx')));
    const ops = m.graph!.node!.map((n) => n.opType);
    expect(ops).not.toContain('If');
    const names = new Set(m.graph!.node!.map((n) => n.name));
    for (const p of ['q_proj/MatMul', 'k_proj/MatMul', 'v_proj/MatMul', 'q_rotary/RotaryEmbedding', 'k_rotary/RotaryEmbedding']) {
      expect(names.has(`/model/layers.0/attn/${p}`)).toBe(true);
    }
    const cos = m.graph!.initializer!.find((t) => t.name === 'cos_cache')!;
    // original 32 + max 128 rows, rotary_dim/2 columns.
    expect(cos.dims!.map(Number)).toEqual([32 + 128, Number(b.result.decoder.rotary.rotaryDim) / 2]);
  });
});

// Heads GroupQueryAttention cannot rotate (head size or rotary dim not a multiple of 16): RotaryEmbedding nodes rotate
// q and k, position ids come from the attention mask. stories260K (test/e2e) has head size 8 too.
const SMALL_HEADS: { preset: string; what: string; short: number; long?: number }[] = [
  { preset: 'phi-4-mini@16', what: 'head 16, partial rotary 12, GQA, LongRoPE, tied', short: 20, long: 48 },
  { preset: 'phi-3-mini-4k@8', what: 'head 8, sliding window', short: 24, long: 50 },
  { preset: 'phi-2@32', what: 'head 32, partial rotary 12, biases', short: 30 },
];

describe.each(SMALL_HEADS)('small heads: $preset ($what), fp32 cpu', ({ preset, short, long }) => {
  it('rotates in RotaryEmbedding nodes before a GroupQueryAttention with do_rotary=0, without a position_ids input', async () => {
    const b = await built(preset);
    const m = decodeModel(await readFile(join(b.result.outDir, 'model.onnx')));
    expect(m.graph!.input!.map((i) => i.name)).not.toContain('position_ids');
    const node = (name: string) => m.graph!.node!.find((n) => n.name === name);
    const gqa = node('/model/layers.1/attn/GroupQueryAttention')!;
    expect(Number(gqa.attribute!.find((a) => a.name === 'do_rotary')!.i)).toBe(0);
    const qRot = node('/model/layers.1/attn/q_rotary/RotaryEmbedding')!;
    const kRot = node('/model/layers.1/attn/k_rotary/RotaryEmbedding')!;
    const v = `/model/layers.1/attn/v_proj/${b.config.model_type === 'phi' ? 'Add' : 'MatMul'}/output_0`;
    expect(gqa.input!.slice(0, 3)).toEqual([qRot.output![0], kRot.output![0], v]);
    expect(gqa.input!.slice(7)).toEqual(['', '']);
    expect(qRot.input![1]).toBe('/model/pos_ids_from_mask/Add/output_0');
    expect(qRot.input!.slice(2)).toEqual(['cos_cache', 'sin_cache']);
  });

  it('matches the reference forward within 1e-4, and through the KV cache', async () => {
    const b = await built(preset);
    const ids = tokenSequence(short, vocab(b), 41);
    const full = await b.decoder.full(ids);
    expect(maxAbsDiff(full, reference(b, ids))).toBeLessThan(1e-4);
    expect(maxAbsDiff(await b.decoder.incremental(ids, 5), full)).toBeLessThan(1e-4);
    if (long !== undefined) {
      const longIds = tokenSequence(long, vocab(b), 42);
      // A prefill past LongRoPE's original length, so every cached key was rotated with the long caches too.
      const got = await b.decoder.incremental(longIds, 40);
      expect(maxAbsDiff(got, reference(b, longIds))).toBeLessThan(1e-4);
      if (b.result.variant.includes('longrope')) expect(maxAbsDiff(got, reference(b, longIds, 'short'))).toBeGreaterThan(1e-2);
    }
  });
});

describe('small heads in other layouts', () => {
  it('fp16 (cuda layout) is close to the reference', async () => {
    const b = await built('phi-4-mini@16', 'cuda', 'fp16');
    const ids = tokenSequence(24, vocab(b), 43);
    const got = await b.decoder.full(ids);
    expect(maxAbsDiff(got, reference(b, ids))).toBeLessThan(0.05);
    expect(maxAbsDiff(await b.decoder.incremental(ids, 4), got)).toBeLessThan(0.02);
  });

  it('DirectML keeps its position_ids input', async () => {
    const b = await built('phi-3-mini-4k@8', 'dml', 'fp32');
    expect(b.decoder.positionIds).toBe(true);
    const ids = tokenSequence(40, vocab(b), 44);
    expect(maxAbsDiff(await b.decoder.incremental(ids, 3), reference(b, ids))).toBeLessThan(1e-4);
  });
});

function decodeModel(bytes: Uint8Array) {
  return onnx.ModelProto.decode(bytes);
}

describe('model structure (decoded with onnx-proto, an independent schema)', () => {
  it('has the genai graph contract: opsets, IR version, I/O, node names, external data', async () => {
    const b = await built('phi-4-mini');
    const m = decodeModel(await readFile(join(b.result.outDir, 'model.onnx')));
    expect(Number(m.irVersion)).toBe(10);
    expect(m.opsetImport!.map((o) => [o.domain ?? '', Number(o.version)])).toEqual([
      ['', 21],
      ['com.microsoft', 1],
    ]);
    const dims = (v: onnxProto.onnx.IValueInfoProto) => v.type!.tensorType!.shape!.dim!.map((d) => d.dimParam || Number(d.dimValue));
    const inputs = m.graph!.input!;
    expect(inputs.map((i) => i.name)).toEqual([
      'input_ids',
      'attention_mask',
      'past_key_values.0.key',
      'past_key_values.1.key',
      'past_key_values.0.value',
      'past_key_values.1.value',
    ]);
    const s = decoderShape(b.config);
    expect(dims(inputs[0])).toEqual(['batch_size', 'sequence_length']);
    expect(inputs[0].type!.tensorType!.elemType).toBe(7);
    expect(dims(inputs[1])).toEqual(['batch_size', 'total_sequence_length']);
    expect(dims(inputs[2])).toEqual(['batch_size', s.kvHeads, 'past_sequence_length', s.headSize]);
    const outputs = m.graph!.output!;
    expect(outputs.map((o) => o.name)).toEqual(['logits', 'present.0.key', 'present.1.key', 'present.0.value', 'present.1.value']);
    expect(dims(outputs[0])).toEqual(['batch_size', 'sequence_length', s.vocab]);
    expect(dims(outputs[1])).toEqual(['batch_size', s.kvHeads, 'total_sequence_length', s.headSize]);

    const node = (name: string) => m.graph!.node!.find((n) => n.name === name);
    const gqa = node('/model/layers.1/attn/GroupQueryAttention')!;
    expect(gqa.domain).toBe('com.microsoft');
    const attr = (n: typeof gqa, k: string) => n.attribute!.find((a) => a.name === k)!;
    expect(Number(attr(gqa, 'num_heads').i)).toBe(b.result.decoder.numHeads);
    expect(Number(attr(gqa, 'kv_num_heads').i)).toBe(s.kvHeads);
    expect(Number(attr(gqa, 'do_rotary').i)).toBe(1);
    expect(Number(attr(gqa, 'rotary_interleaved').i)).toBe(0);
    expect(Number(attr(gqa, 'local_window_size').i)).toBe(b.config.sliding_window);
    expect(attr(gqa, 'scale').f).toBeCloseTo(1 / Math.sqrt(s.headSize), 6);
    expect(gqa.input).toEqual([
      '/model/layers.1/attn/qkv_proj/MatMul/output_0',
      '',
      '',
      'past_key_values.1.key',
      'past_key_values.1.value',
      '/model/attn_mask_reformat/attn_mask_subgraph/Sub/Cast/output_0',
      '/model/attn_mask_reformat/attn_mask_subgraph/Gather/Cast/output_0',
      'cos_cache',
      'sin_cache',
    ]);
    expect(gqa.output).toEqual(['/model/layers.1/attn/GroupQueryAttention/output_0', 'present.1.key', 'present.1.value']);
    for (const n of [
      '/model/embed_tokens/Transpose',
      '/model/embed_tokens/Gather',
      '/model/layers.0/input_layernorm/LayerNorm',
      '/model/layers.1/input_layernorm/SkipLayerNorm',
      '/model/layers.0/post_attention_layernorm/SkipLayerNorm',
      '/model/layers.0/attn/o_proj/MatMul',
      '/model/layers.0/mlp/gate_proj/MatMul',
      '/model/layers.0/mlp/up_proj/MatMul',
      '/model/layers.0/mlp/down_proj/MatMul',
      '/model/layers.2/final_norm_layernorm/SkipLayerNorm',
      '/model/rotemb_caches_subgraph/If',
      '/lm_head/MatMul',
    ]) {
      expect(node(n), n).toBeDefined();
    }
    expect(node('/model/layers.0/input_layernorm/LayerNorm')!.opType).toBe('SimplifiedLayerNormalization');
    // Tied embeddings gather rows of the LM head's [hidden, vocab] weight along the vocab axis.
    const gather = node('/model/embed_tokens/Gather')!;
    expect(gather.input).toEqual(['lm_head.MatMul.weight', 'input_ids']);
    expect(Number(gather.attribute!.find((a) => a.name === 'axis')!.i)).toBe(1);
    expect(node('/lm_head/MatMul')!.output).toEqual(['logits']);

    // Every initializer lives in model.onnx.data; tied embeddings are one weight.
    const inits = m.graph!.initializer!;
    for (const t of inits) {
      expect(t.dataLocation, t.name!).toBe(1);
      expect(t.externalData!.find((e) => e.key === 'location')!.value).toBe('model.onnx.data');
    }
    expect(inits.filter((t) => t.name === 'lm_head.MatMul.weight')).toHaveLength(1);
    expect(inits.some((t) => t.name === 'model.embed_tokens.weight')).toBe(false);
    expect(existsSync(join(b.result.outDir, 'model.onnx.data'))).toBe(true);
  });

  it('Phi (parallel block) has LayerNorm, packed QKV bias, FastGelu and a residual Add', async () => {
    const b = await built('phi-2');
    const m = decodeModel(await readFile(join(b.result.outDir, 'model.onnx')));
    const byName = new Map(m.graph!.node!.map((n) => [n.name!, n]));
    expect(byName.get('/model/layers.0/input_layernorm/LayerNorm')!.opType).toBe('LayerNormalization');
    expect(byName.get('/model/layers.1/input_layernorm/SkipLayerNorm')!.opType).toBe('SkipLayerNormalization');
    expect(byName.get('/model/layers.0/attn/qkv_proj/Add')!.input).toContain('model.layers.0.attn.qkv_proj.Add.bias');
    expect(byName.get('/model/layers.0/mlp/act_fn/FastGelu')!.opType).toBe('FastGelu');
    expect(byName.get('/model/layers.0/mlp/act_fn/FastGelu')!.domain).toBe('com.microsoft');
    expect(byName.get('/model/layers.0/residual_add/Add')).toBeDefined();
    expect(byName.get('/lm_head/Add')!.output).toEqual(['logits']);
  });

  it('fp16 builds take and give fp16 (logits too, as onnxruntime-genai builds them)', async () => {
    const b = await built('phi-4-mini', 'cuda', 'fp16');
    const m = decodeModel(await readFile(join(b.result.outDir, 'model.onnx')));
    expect(m.graph!.output!.map((o) => o.type!.tensorType!.elemType)).toEqual([10, 10, 10, 10, 10]);
    expect(new Set(m.graph!.initializer!.map((t) => t.dataType))).toEqual(new Set([10]));
  });
});

describe('genai_config.json and package files', () => {
  it('holds only keys onnxruntime-genai accepts, with the model facts', async () => {
    const b = await built('phi-3-mini-128k');
    const g = JSON.parse(await readFile(join(b.result.outDir, 'genai_config.json'), 'utf8'));
    expect(checkGenaiConfigKeys(g)).toEqual([]);
    expect(g.model.type).toBe('phi3');
    expect(g.model.context_length).toBe(128);
    expect(g.model.decoder.num_hidden_layers).toBe(2);
    expect(g.search.past_present_share_buffer).toBe(true);
    const p2 = await built('phi-2');
    expect(JSON.parse(await readFile(join(p2.result.outDir, 'genai_config.json'), 'utf8')).model.type).toBe('phi');
  });

  it('copies the tokenizer files next to the model', async () => {
    const tok = join(FIXTURES, 'phi3-tokenizer');
    if (!existsSync(tok)) {
      if (process.env.CI === 'true') throw new Error(`fixture missing: ${tok}`);
      return;
    }
    const { dir } = await tinyCheckpoint('phi-3-mini-4k', 1);
    for (const f of await readdir(tok)) await copyFile(join(tok, f), join(dir, f));
    const out = await tempDir();
    const r = await convertCheckpoint({ checkpointDir: dir, outDir: out });
    expect(r.files).toEqual(expect.arrayContaining(['model.onnx', 'model.onnx.data', 'genai_config.json', 'tokenizer.json', 'tokenizer_config.json']));
    expect(await readFile(join(out, 'tokenizer.json'))).toEqual(await readFile(join(tok, 'tokenizer.json')));
  });
});

describe('typed errors', () => {
  it('an unsupported architecture names the supported ones', async () => {
    const { dir } = await tinyCheckpoint('phi-4', 1);
    const cfg = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    cfg.architectures = ['LlamaForCausalLM'];
    cfg.model_type = 'llama';
    await writeFile(join(dir, 'config.json'), JSON.stringify(cfg));
    const err = await convertCheckpoint({ checkpointDir: dir, outDir: await tempDir() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArchitectureError);
    expect((err as Error).message).toMatch(/LlamaForCausalLM.*not supported[\s\S]*Phi3ForCausalLM, PhiForCausalLM/);
  });

  it('an eos id only the tokenizer names is taken from it; none at all is an error', async () => {
    const { dir } = await tinyCheckpoint('phi-1', 1, { keepNoEos: true });
    const err = await convertCheckpoint({ checkpointDir: dir, outDir: await tempDir() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as CheckpointError).code).toBe('CHECKPOINT_NO_EOS');
    const tok = join(FIXTURES, 'phi3-tokenizer');
    if (!existsSync(tok)) {
      if (process.env.CI === 'true') throw new Error(`fixture missing: ${tok}`);
      return;
    }
    for (const f of await readdir(tok)) await copyFile(join(tok, f), join(dir, f));
    const out = await tempDir();
    await convertCheckpoint({ checkpointDir: dir, outDir: out });
    // The Phi-3 tokenizer's eos_token is <|endoftext|> = 32000.
    expect(JSON.parse(await readFile(join(out, 'genai_config.json'), 'utf8')).model.eos_token_id).toBe(32000);
  });

  async function rewrite(preset: string, edit: (names: ReturnType<typeof planTensors>) => ReturnType<typeof planTensors>) {
    const { dir, config } = await tinyCheckpoint(preset, 1);
    await writeSafetensors(join(dir, 'model.safetensors'), edit(planTensors(config)).map((t) => synthTensor(t, 1, 'F32')));
    return dir;
  }

  it('a missing tensor is a CheckpointError naming it', async () => {
    const dir = await rewrite('phi-3-mini-4k', (p) => p.filter((t) => t.name !== 'model.layers.1.mlp.down_proj.weight'));
    const err = await convertCheckpoint({ checkpointDir: dir, outDir: await tempDir() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as CheckpointError).code).toBe('CHECKPOINT_TENSOR_MISSING');
    expect((err as Error).message).toContain('model.layers.1.mlp.down_proj.weight');
  });

  it('a tensor the architecture does not know is an ArchitectureError naming it', async () => {
    const dir = await rewrite('phi-3-mini-4k', (p) => [...p, { name: 'model.layers.0.self_attn.q_norm.weight', shape: [16], init: 'norm-weight', fanIn: 16 }]);
    const err = await convertCheckpoint({ checkpointDir: dir, outDir: await tempDir() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArchitectureError);
    expect((err as ArchitectureError).code).toBe('ARCH_UNMAPPED_TENSOR');
    expect((err as Error).message).toContain('model.layers.0.self_attn.q_norm.weight');
  });
});

describe('pnpm pipeline convert', () => {
  it('builds a checkpoint folder and prints one JSON document with --json', async () => {
    const { parseCli } = await import('../../src/cli/main.js');
    const { dir } = await tinyCheckpoint('phi-4-mini', 2);
    const out = await tempDir();
    const chunks: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => {
      chunks.push(String(c));
      return true;
    });
    try {
      await parseCli(['convert', dir, '--out', out, '--target', 'cuda', '--json']).parseAsync();
    } finally {
      spy.mockRestore();
    }
    const doc = JSON.parse(chunks.join(''));
    expect(doc).toMatchObject({ architecture: 'Phi3ForCausalLM', target: 'cuda', precision: 'fp16', layers: 2 });
    expect(doc.variant).toContain('tied-embeddings');
    expect(existsSync(join(out, 'model.onnx.data'))).toBe(true);
  });
});

describe('saved weights', () => {
  // saveModel lends the weights reused buffers and reads rows into them; the bytes must be what each weight makes on
  // its own (fresh buffers, rows read as new arrays), and the same on every run.
  it.each([
    ['fp32', 'cpu'],
    ['fp16', 'cuda'],
  ] as const)('a bf16 checkpoint converted to %s: every initializer as the weight makes it alone, identical files twice', async (precision, target) => {
    const { dir, config } = await tinyCheckpoint('phi-4-mini', 3);
    await writeSafetensors(join(dir, 'model.safetensors'), planTensors(config).map((t) => synthTensor(t, 3, 'BF16')));
    const outs = [await tempDir(), await tempDir()];
    for (const out of outs) await convertCheckpoint({ checkpointDir: dir, outDir: out, target, precision });
    for (const f of ['model.onnx', 'model.onnx.data']) {
      expect(Buffer.compare(await readFile(join(outs[0], f)), await readFile(join(outs[1], f))), f).toBe(0);
    }
    const ckpt = await Checkpoint.open(dir);
    try {
      const { info, readRows } = checkpointSource(ckpt);
      const alone = buildModel({
        config: ckpt.config,
        tensorNames: ckpt.tensorNames(),
        source: { info, readRows },
        layout: graphLayout(getTarget(target), precision),
      }).model;
      const saved = await loadModel(join(outs[0], 'model.onnx'));
      expect(saved.graph.initializers.map((t) => t.name)).toEqual(alone.graph.initializers.map((t) => t.name));
      for (const t of alone.graph.initializers) {
        const got = Buffer.from(await saved.graph.initializer(t.name)!.bytes());
        expect(Buffer.compare(got, Buffer.from(await t.bytes())), t.name).toBe(0);
      }
    } finally {
      await ckpt.close();
    }
  });
});
