// Issue 15: a checkpoint that disagrees with its config.json (vocab, widths, heads, layers, norm lengths, rotary dims,
// dtypes, transposed weights) is refused by convert before any graph is built or file written, with every problem
// named: tensor, file, expected vs actual shape and the config key implying it. Real files, real onnxruntime.
import { existsSync } from 'node:fs';
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { convertCheckpoint } from '../../src/arch/convert.js';
import { parseArchConfig } from '../../src/arch/index.js';
import { findTensorIssues } from '../../src/arch/tensor-check.js';
import { KNOWN_CONFIG_NAMES } from '../../src/checkpoint/known-configs.js';
import { parseHfConfig } from '../../src/checkpoint/hf-config.js';
import { writeSafetensors, writeShardedSafetensors, type TensorToWrite } from '../../src/checkpoint/safetensors-writer.js';
import { planTensors, synthConfig, synthTensor, type SynthDtype } from '../../src/arch/synth.js';
import type { RawConfig } from '../../src/arch/synth-presets.js';
import { main } from '../../src/cli/main.js';
import type { WeightSource } from '../../src/graph/weights.js';
import { DataType } from '../../src/onnx/dtype.js';
import { CheckpointError } from '../../src/util/errors.js';
import { cleanTempDirs, decoderShape, OrtDecoder, tempDir, tinyCheckpoint, tokenSequence } from '../helpers/build.js';

afterAll(cleanTempDirs);

interface Edit {
  /** Edits config.json after the weights were written from the preset's config. */
  config?: (c: RawConfig) => void;
  /** Replaces the weights (the preset's tensors, fp32 unless `dtype`). */
  tensors?: (t: TensorToWrite[]) => TensorToWrite[];
  dtype?: SynthDtype;
  /** Writes shards of at most this many bytes (with an index) instead of one model.safetensors. */
  maxShardBytes?: number;
}

/** A tiny checkpoint of `preset` with its weights and/or config.json edited. */
async function checkpoint(preset: string, edit: Edit = {}): Promise<{ dir: string; config: RawConfig }> {
  const { dir, config } = await tinyCheckpoint(preset, 3);
  if (edit.tensors || edit.dtype || edit.maxShardBytes) {
    const tensors = (edit.tensors ?? ((t) => t))(planTensors(config).map((p) => synthTensor(p, 3, edit.dtype ?? 'F32')));
    if (edit.maxShardBytes) {
      await rm(join(dir, 'model.safetensors'));
      await writeShardedSafetensors(dir, tensors, { maxShardBytes: edit.maxShardBytes });
    } else {
      await writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
    }
  }
  const edited = structuredClone(config);
  if (edit.config) {
    edit.config(edited);
    await writeFile(join(dir, 'config.json'), JSON.stringify(edited, null, 2));
  }
  return { dir, config: edited };
}

/** Replaces tensor `name` by one of another dtype/shape (zero bytes: only the header matters). */
function replace(name: string, dtype: TensorToWrite['dtype'], shape: number[]) {
  return (ts: TensorToWrite[]): TensorToWrite[] =>
    ts.map((t) => {
      if (t.name !== name) return t;
      const size = { F64: 8, F32: 4, I32: 4, F16: 2, BF16: 2 }[dtype as string] ?? 1;
      return { name, dtype, shape, data: () => new Uint8Array(size * shape.reduce((a, b) => a * b, 1)) };
    });
}

/** Float32 rotary inverse frequencies for every layer, as older exports saved them. */
function withInvFreq(layers: number, n: number) {
  return (ts: TensorToWrite[]): TensorToWrite[] => [
    ...ts,
    ...Array.from({ length: layers }, (_, l) => ({
      name: `model.layers.${l}.self_attn.rotary_emb.inv_freq`,
      dtype: 'F32' as const,
      shape: [n],
      data: () => new Uint8Array(Float32Array.from({ length: n }, (_, i) => 1 / 10000 ** ((2 * i) / (2 * n))).buffer),
    })),
  ];
}

/** convertCheckpoint must fail with a CheckpointError before writing anything: the output folder never appears. */
async function refused(dir: string): Promise<CheckpointError> {
  const out = join(await tempDir('phi-forge-refused-'), 'model');
  const err = await convertCheckpoint({ checkpointDir: dir, outDir: out }).catch((e: unknown) => e);
  expect(existsSync(out), 'nothing may be written').toBe(false);
  expect(err).toBeInstanceOf(CheckpointError);
  return err as CheckpointError;
}

/** Lines of the error that name a problem (the indented ones before `fix:`). */
const problems = (e: Error) =>
  e.message
    .split('\n')
    .filter((l) => l.startsWith('    '))
    .map((l) => l.trim());

describe('config values the graph depends on are checked against the weights (Phi3ForCausalLM)', () => {
  it('vocab_size disagreeing with the embedding and lm_head rows', async () => {
    const { dir } = await checkpoint('phi-3-mini-4k', { config: (c) => (c.vocab_size = 1024) });
    const e = await refused(dir);
    expect(e.code).toBe('CHECKPOINT_SHAPE_MISMATCH');
    expect(e.file).toBe(join(dir, 'model.safetensors'));
    expect(e.message).toContain(join(dir, 'model.safetensors'));
    expect(problems(e)).toEqual([
      'model.embed_tokens.weight: vocab_size 1024 in config.json implies [1024, 64]; the checkpoint has [512, 64]: fix vocab_size (the weights say 512) or the checkpoint',
      'lm_head.weight: vocab_size 1024 in config.json implies [1024, 64]; the checkpoint has [512, 64]: fix vocab_size (the weights say 512) or the checkpoint',
    ]);
    expect(e.message).toMatch(/\n {2}fix: config.json must describe these weights/);
  });

  it('vocab_size defaulted by the config parser (32064) when config.json does not set it', async () => {
    const { dir } = await checkpoint('phi-3-mini-4k', { config: (c) => delete c.vocab_size });
    const e = await refused(dir);
    expect(problems(e)[0]).toBe(
      'model.embed_tokens.weight: vocab_size 32064 (not set in config.json: the default) in config.json implies [32064, 64]; the checkpoint has [512, 64]: fix vocab_size (the weights say 512) or the checkpoint',
    );
  });

  it('hidden_size against every weight: all problems counted, a dozen listed', async () => {
    const { dir } = await checkpoint('phi-3-mini-4k', { config: (c) => (c.hidden_size = 128) });
    const e = await refused(dir);
    // 2 layers × 6 tensors + embedding, final norm and lm_head.
    expect(e.message).toContain('(15 problems)');
    expect(problems(e)).toHaveLength(13);
    expect(problems(e)[12]).toBe('… and 3 more');
    expect(problems(e)).toContain(
      'model.layers.0.input_layernorm.weight: hidden_size 128 in config.json implies [128]; the checkpoint has [64]: fix hidden_size (the weights say 64) or the checkpoint',
    );
    // head_dim follows hidden_size here, and the message says so.
    expect(e.message).toContain(
      'model.layers.0.self_attn.qkv_proj.weight: (num_attention_heads 4 + 2 × num_key_value_heads 4) × head_dim 32 (hidden_size / num_attention_heads) = 384 and hidden_size 128 in config.json imply [384, 128]; the checkpoint has [192, 64]',
    );
  });

  it('intermediate_size against gate_up_proj and down_proj', async () => {
    const { dir } = await checkpoint('phi-3-mini-4k', { config: (c) => (c.intermediate_size = 96) });
    const e = await refused(dir);
    expect(problems(e)).toEqual([
      'model.layers.0.mlp.gate_up_proj.weight: 2 × intermediate_size 96 = 192 in config.json implies [192, 64]; the checkpoint has [256, 64]: fix intermediate_size or the checkpoint',
      'model.layers.0.mlp.down_proj.weight: intermediate_size 96 in config.json implies [64, 96]; the checkpoint has [64, 128]: fix intermediate_size (the weights say 128) or the checkpoint',
      'model.layers.1.mlp.gate_up_proj.weight: 2 × intermediate_size 96 = 192 in config.json implies [192, 64]; the checkpoint has [256, 64]: fix intermediate_size or the checkpoint',
      'model.layers.1.mlp.down_proj.weight: intermediate_size 96 in config.json implies [64, 96]; the checkpoint has [64, 128]: fix intermediate_size (the weights say 128) or the checkpoint',
    ]);
  });

  it('num heads × head_dim against the qkv rows (q + 2·kv, GQA)', async () => {
    const { dir } = await checkpoint('phi-4-mini', { config: (c) => (c.num_key_value_heads = 3) });
    const e = await refused(dir);
    expect(problems(e)).toEqual([
      'model.layers.0.self_attn.qkv_proj.weight: (num_attention_heads 6 + 2 × num_key_value_heads 3) × head_dim 64 (hidden_size / num_attention_heads) = 768 in config.json implies [768, 384]; the checkpoint has [640, 384]: fix num_attention_heads, num_key_value_heads, head_dim or the checkpoint',
      'model.layers.1.self_attn.qkv_proj.weight: (num_attention_heads 6 + 2 × num_key_value_heads 3) × head_dim 64 (hidden_size / num_attention_heads) = 768 in config.json implies [768, 384]; the checkpoint has [640, 384]: fix num_attention_heads, num_key_value_heads, head_dim or the checkpoint',
    ]);
  });

  it('num_hidden_layers larger than the layers present', async () => {
    const { dir } = await checkpoint('phi-3-mini-4k', { config: (c) => (c.num_hidden_layers = 3) });
    const e = await refused(dir);
    expect(e.code).toBe('CHECKPOINT_SHAPE_MISMATCH');
    expect(problems(e)).toEqual([
      'layer 2: no tensors in the checkpoint, but num_hidden_layers 3 in config.json implies layers 0..2: set num_hidden_layers to 2 (the checkpoint holds layers 0..1)',
    ]);
  });

  it('num_hidden_layers smaller than the layers present', async () => {
    const { dir } = await checkpoint('phi-3-mini-4k', { config: (c) => (c.num_hidden_layers = 1) });
    const e = await refused(dir);
    expect(e.code).toBe('CHECKPOINT_SHAPE_MISMATCH');
    expect(problems(e)).toEqual([
      'model.layers.1.input_layernorm.weight and 5 more tensors of layer 1: num_hidden_layers 1 in config.json implies layers 0..0: set num_hidden_layers to 2 (the checkpoint holds layers 0..1)',
    ]);
  });

  it('a layer with some tensors missing names each missing tensor', async () => {
    const { dir } = await checkpoint('phi-3-mini-4k', {
      tensors: (ts) => ts.filter((t) => t.name !== 'model.layers.1.post_attention_layernorm.weight'),
    });
    const e = await refused(dir);
    expect(e.code).toBe('CHECKPOINT_TENSOR_MISSING');
    expect(problems(e)).toEqual(['model.layers.1.post_attention_layernorm.weight: not in the checkpoint (Phi3ForCausalLM role post_attn_norm)']);
  });

  it('a tied checkpoint that still carries lm_head.weight: the copy must agree too', async () => {
    const { dir } = await checkpoint('phi-4-mini', {
      tensors: (ts) => [...ts, { name: 'lm_head.weight', dtype: 'F32', shape: [500, 384], data: () => new Uint8Array(4 * 500 * 384) }],
    });
    const e = await refused(dir);
    expect(problems(e)).toEqual([
      'lm_head.weight: vocab_size 512 in config.json implies [512, 384]; the checkpoint has [500, 384]: fix vocab_size (the weights say 500) or the checkpoint',
    ]);
  });
});

describe('mis-shaped and unreadable tensors are caught in one place, before any graph is built', () => {
  it('a norm of the wrong length', async () => {
    const { dir } = await checkpoint('phi-3-mini-4k', { tensors: replace('model.norm.weight', 'F32', [63]) });
    const e = await refused(dir);
    expect(e.code).toBe('CHECKPOINT_SHAPE_MISMATCH');
    expect(problems(e)).toEqual([
      'model.norm.weight: hidden_size 64 in config.json implies [64]; the checkpoint has [63]: fix hidden_size (the weights say 63) or the checkpoint',
    ]);
  });

  it('a dtype the builder cannot read as float (int32, float64)', async () => {
    const { dir } = await checkpoint('phi-3-mini-4k', {
      tensors: (ts) => replace('model.layers.0.self_attn.o_proj.weight', 'F64', [64, 64])(replace('model.layers.1.input_layernorm.weight', 'I32', [64])(ts)),
    });
    const e = await refused(dir);
    expect(e.code).toBe('CHECKPOINT_DTYPE');
    expect(problems(e)).toEqual([
      'model.layers.0.self_attn.o_proj.weight: dtype F64; the builder reads F32, F16 or BF16 weights',
      'model.layers.1.input_layernorm.weight: dtype I32; the builder reads F32, F16 or BF16 weights',
    ]);
    expect(e.message).toContain('fix: quantized or integer weights are not read by the native builder');
  });

  it('a transposed embedding ([H, V] instead of [V, H])', async () => {
    const { dir } = await checkpoint('phi-3-mini-4k', { tensors: replace('model.embed_tokens.weight', 'F32', [64, 512]) });
    const e = await refused(dir);
    expect(problems(e)).toEqual([
      'model.embed_tokens.weight: vocab_size 512 and hidden_size 64 in config.json imply [512, 64]; the checkpoint has [64, 512], its transpose: store the tensor as [512, 64] ([out, in], as transformers does)',
    ]);
  });

  it('every problem at once, each shard named in a sharded checkpoint', async () => {
    const { dir } = await checkpoint('phi-3-mini-4k', {
      maxShardBytes: 200_000,
      config: (c) => (c.intermediate_size = 96),
      tensors: (ts) =>
        replace('model.layers.1.input_layernorm.weight', 'I32', [64])(
          replace('model.norm.weight', 'F32', [65])(replace('model.embed_tokens.weight', 'F32', [64, 512])(ts)),
        ),
    });
    expect((await readdir(dir)).filter((f) => f.endsWith('.safetensors')).length).toBeGreaterThan(1);
    const e = await refused(dir);
    expect(e.code).toBe('CHECKPOINT_SHAPE_MISMATCH');
    expect(e.file).toBeUndefined();
    const lines = problems(e);
    expect(lines).toHaveLength(7);
    expect(lines.every((l) => /^model-\d{5}-of-\d{5}\.safetensors: /.test(l))).toBe(true);
    for (const what of [
      'model.embed_tokens.weight: vocab_size 512 and hidden_size 64 in config.json imply [512, 64]; the checkpoint has [64, 512], its transpose',
      'model.layers.1.input_layernorm.weight: dtype I32',
      'model.norm.weight: hidden_size 64 in config.json implies [64]; the checkpoint has [65]',
      'model.layers.1.mlp.down_proj.weight: intermediate_size 96 in config.json implies [64, 96]',
    ]) {
      expect(e.message).toContain(what);
    }
    expect(e.message).toContain('fix: config.json must describe these weights');
    expect(e.message).toContain('convert from an F32, F16 or BF16 checkpoint');
  });
});

describe('PhiForCausalLM (phi-2): biases, LayerNorm biases and partial rotary', () => {
  it('vocab_size against the embedding, lm_head and its bias', async () => {
    const { dir } = await checkpoint('phi-2', { config: (c) => (c.vocab_size = 1000) });
    const e = await refused(dir);
    expect(problems(e)).toEqual([
      'model.embed_tokens.weight: vocab_size 1000 in config.json implies [1000, 320]; the checkpoint has [512, 320]: fix vocab_size (the weights say 512) or the checkpoint',
      'lm_head.weight: vocab_size 1000 in config.json implies [1000, 320]; the checkpoint has [512, 320]: fix vocab_size (the weights say 512) or the checkpoint',
      'lm_head.bias: vocab_size 1000 in config.json implies [1000]; the checkpoint has [512]: fix vocab_size (the weights say 512) or the checkpoint',
    ]);
  });

  it('a LayerNorm bias and a q_proj bias of the wrong length', async () => {
    const { dir } = await checkpoint('phi-2', {
      tensors: (ts) => replace('model.layers.1.input_layernorm.bias', 'F32', [319])(replace('model.layers.0.self_attn.q_proj.bias', 'F32', [160])(ts)),
    });
    const e = await refused(dir);
    expect(problems(e)).toEqual([
      'model.layers.0.self_attn.q_proj.bias: num_attention_heads 4 × head_dim 80 (hidden_size / num_attention_heads) = 320 in config.json implies [320]; the checkpoint has [160]: fix num_attention_heads, head_dim or the checkpoint',
      'model.layers.1.input_layernorm.bias: hidden_size 320 in config.json implies [320]; the checkpoint has [319]: fix hidden_size (the weights say 319) or the checkpoint',
    ]);
  });

  it('partial_rotary_factor against saved rotary inverse frequencies', async () => {
    // phi-2: head 80 × 0.4 = 32 rotated dims, 16 frequencies; config.json claims 0.5 (20).
    const { dir } = await checkpoint('phi-2', { tensors: withInvFreq(2, 16), config: (c) => (c.partial_rotary_factor = 0.5) });
    const e = await refused(dir);
    expect(problems(e)[0]).toBe(
      'model.layers.0.self_attn.rotary_emb.inv_freq: head_dim 80 (hidden_size / num_attention_heads) × partial_rotary_factor 0.5 / 2 = 20 in config.json implies [20]; the checkpoint has [16]: fix head_dim, partial_rotary_factor or the checkpoint',
    );
  });

  it('a missing fc2 bias is named', async () => {
    const { dir } = await checkpoint('phi-2', { tensors: (ts) => ts.filter((t) => t.name !== 'model.layers.0.mlp.fc2.bias') });
    const e = await refused(dir);
    expect(e.code).toBe('CHECKPOINT_TENSOR_MISSING');
    expect(problems(e)).toEqual(['model.layers.0.mlp.fc2.bias: not in the checkpoint (PhiForCausalLM role mlp.fc2.bias)']);
  });
});

describe('consistent checkpoints still convert and run', () => {
  it.each(KNOWN_CONFIG_NAMES.flatMap((n) => [[n, 'full'], [n, 'tiny']] as const))(
    '%s (%s): the architecture tables agree with the tensors transformers saves, from headers only',
    (preset, scale) => {
      const raw = synthConfig(preset, scale);
      const { spec, config } = parseArchConfig(parseHfConfig(raw, 'config.json'));
      const plan = new Map(planTensors(raw).map((t) => [t.name, t.shape]));
      const source: WeightSource = {
        info: (name) => (plan.has(name) ? { dataType: DataType.BFLOAT16, dims: plan.get(name)! } : undefined),
        readRows: () => Promise.reject(new Error('the check must read headers only')),
      };
      const decoder = spec.decoder(config);
      expect(findTensorIssues({ arch: decoder.architecture, rules: spec.tensorMap, config: decoder, names: [...plan.keys()], source, raw })).toEqual([]);
    },
  );

  it.each([
    ['phi-3-mini-4k', 'BF16'],
    ['phi-2', 'BF16'],
    ['phi-4-mini', 'F32'],
  ] as const)('%s in %s (with an F16 norm and matching inv_freq for phi-2) runs in onnxruntime', async (preset, dtype) => {
    const norm = preset === 'phi-2' ? 'model.final_layernorm.weight' : 'model.norm.weight';
    const H = preset === 'phi-2' ? 320 : preset === 'phi-4-mini' ? 384 : 64;
    const ones = () => new Uint8Array(new Uint16Array(H).fill(0x3c00).buffer);
    const { dir, config } = await checkpoint(preset, {
      dtype,
      tensors: (ts) => {
        const out = ts.map((t) => (t.name === norm ? { name: norm, dtype: 'F16' as const, shape: [H], data: ones } : t));
        return preset === 'phi-2' ? withInvFreq(2, 16)(out) : out;
      },
    });
    const out = await tempDir();
    await convertCheckpoint({ checkpointDir: dir, outDir: out });
    const d = await OrtDecoder.open(join(out, 'model.onnx'), decoderShape(config));
    try {
      const logits = await d.full(tokenSequence(9, 512, 5));
      expect(logits).toHaveLength(9);
      expect(logits.every((row) => row.length === 512 && row.every(Number.isFinite))).toBe(true);
    } finally {
      await d.close();
    }
  });
});

describe('pnpm pipeline convert', () => {
  async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((stdout += String(s)), true));
    const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((stderr += String(s)), true));
    const before = process.exitCode;
    try {
      return { code: await main(argv), stdout, stderr };
    } finally {
      o.mockRestore();
      e.mockRestore();
      process.exitCode = before;
    }
  }

  it('exits 1 naming the file, the tensors, expected vs actual shape and the config key; writes nothing', async () => {
    const { dir } = await checkpoint('phi-2', { config: (c) => (c.vocab_size = 1024) });
    const out = join(await tempDir(), 'model');
    const r = await cli(['convert', dir, '--out', out]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`error: ${join(dir, 'model.safetensors')}: the PhiForCausalLM checkpoint does not match its config.json (3 problems):`);
    expect(r.stderr).toContain('model.embed_tokens.weight: vocab_size 1024 in config.json implies [1024, 320]; the checkpoint has [512, 320]: fix vocab_size');
    expect(r.stderr).toContain('fix: config.json must describe these weights');
    expect(existsSync(out)).toBe(false);
    expect(JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')).vocab_size).toBe(1024);
  });
});
