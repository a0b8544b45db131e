// synth: tiny checkpoints of every preset (real keys and features, transformers' tensor names and shapes),
// determinism, the bf16 sharded path, the full-size plan, and the reference forwards run on synthesized models.
import { readFile, readdir, mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseArchConfig } from '../../src/arch/index.js';
import { matchTensors } from '../../src/arch/tensor-map.js';
import { parseHfConfig } from '../../src/checkpoint/hf-config.js';
import { Checkpoint } from '../../src/checkpoint/checkpoint.js';
import { KNOWN_CONFIG_NAMES, KNOWN_GENERATION_CONFIGS, knownConfig } from '../../src/checkpoint/known-configs.js';
import { planShards } from '../../src/checkpoint/safetensors-writer.js';
import { mapTokenIds, resampleFactors, tinyWindow } from '../../src/arch/synth-presets.js';
import {
  planSize,
  planTensors,
  synthCheckpoint,
  synthConfig,
  synthTensor,
  writeSynthCheckpoint,
} from '../../src/arch/synth.js';
import { main } from '../../src/cli/main.js';
import { float32ToBfloat16Bits } from '../../src/onnx/tensor.js';
import { UsageError } from '../../src/util/errors.js';
import { inverseNormalCdf, Rng } from '../../src/util/random.js';
import {
  geluNew,
  layerNorm,
  loadReferenceModel,
  phi3Forward,
  phi3Rope,
  phiForward,
  type ReferenceModel,
} from '../helpers/reference-forward.js';

type Json = Record<string, unknown>;

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'phi-forge-synth-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Tensor names and shapes transformers' Phi3ForCausalLM / PhiForCausalLM hold for a config (written from the HF modules). */
function expectedShapes(c: Json): Record<string, number[]> {
  const H = c.hidden_size as number;
  const nh = c.num_attention_heads as number;
  const nkv = (c.num_key_value_heads as number | null) ?? nh;
  const hd = H / nh;
  const I = c.intermediate_size as number;
  const V = c.vocab_size as number;
  const out: Record<string, number[]> = { 'model.embed_tokens.weight': [V, H] };
  for (let l = 0; l < (c.num_hidden_layers as number); l++) {
    const p = `model.layers.${l}`;
    if (c.model_type === 'phi3') {
      Object.assign(out, {
        [`${p}.input_layernorm.weight`]: [H],
        [`${p}.post_attention_layernorm.weight`]: [H],
        [`${p}.self_attn.qkv_proj.weight`]: [nh * hd + 2 * nkv * hd, H],
        [`${p}.self_attn.o_proj.weight`]: [H, nh * hd],
        [`${p}.mlp.gate_up_proj.weight`]: [2 * I, H],
        [`${p}.mlp.down_proj.weight`]: [H, I],
      });
    } else {
      Object.assign(out, {
        [`${p}.input_layernorm.weight`]: [H],
        [`${p}.input_layernorm.bias`]: [H],
        [`${p}.self_attn.q_proj.weight`]: [nh * hd, H],
        [`${p}.self_attn.q_proj.bias`]: [nh * hd],
        [`${p}.self_attn.k_proj.weight`]: [nkv * hd, H],
        [`${p}.self_attn.k_proj.bias`]: [nkv * hd],
        [`${p}.self_attn.v_proj.weight`]: [nkv * hd, H],
        [`${p}.self_attn.v_proj.bias`]: [nkv * hd],
        [`${p}.self_attn.dense.weight`]: [H, nh * hd],
        [`${p}.self_attn.dense.bias`]: [H],
        [`${p}.mlp.fc1.weight`]: [I, H],
        [`${p}.mlp.fc1.bias`]: [I],
        [`${p}.mlp.fc2.weight`]: [H, I],
        [`${p}.mlp.fc2.bias`]: [H],
      });
    }
  }
  if (c.model_type === 'phi3') {
    out['model.norm.weight'] = [H];
  } else {
    out['model.final_layernorm.weight'] = [H];
    out['model.final_layernorm.bias'] = [H];
    out['lm_head.bias'] = [V];
  }
  if (c.tie_word_embeddings !== true) out['lm_head.weight'] = [V, H];
  return out;
}

function tokenIds(v: unknown): number[] {
  return (Array.isArray(v) ? v : [v]).filter((x): x is number => typeof x === 'number');
}

function isNonDecreasing(xs: readonly number[]): boolean {
  return xs.every((x, i) => i === 0 || x >= xs[i - 1]!);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

async function filesOf(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const f of (await readdir(dir)).sort()) out.set(f, await readFile(join(dir, f)));
  return out;
}

describe.each(KNOWN_CONFIG_NAMES.map((p) => [p]))('synth %s --scale tiny', (preset) => {
  const real = knownConfig(preset) as Json;
  let dir: string;
  let config: Json;

  beforeAll(async () => {
    dir = join(tmp, `tiny-${preset}`);
    await synthCheckpoint({ preset, scale: 'tiny', outDir: dir, seed: 1 });
    config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Json;
  });

  it('writes config.json, generation_config.json and one fp32 model.safetensors', async () => {
    expect((await readdir(dir)).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors']);
    const ckpt = await Checkpoint.open(dir);
    expect(parseArchConfig(ckpt.config).spec.genaiType).toBe(real.model_type === 'phi3' ? 'phi3' : 'phi');
    expect(new Set(ckpt.tensorNames().map((n) => ckpt.entry(n).dtype))).toEqual(new Set(['F32']));
    await ckpt.close();
  });

  it('keeps exactly the real config keys, architecture and model type', () => {
    expect(Object.keys(config).sort()).toEqual(Object.keys(real).sort());
    expect(config.architectures).toEqual(real.architectures);
    expect(config.model_type).toBe(real.model_type);
  });

  it('is small: 2 layers, vocabulary 512, hidden 64–384, intermediate 128', () => {
    expect(config.num_hidden_layers).toBe(2);
    expect(config.vocab_size).toBe(512);
    expect(config.intermediate_size).toBe(128);
    expect(config.hidden_size as number).toBeGreaterThanOrEqual(64);
    expect(config.hidden_size as number).toBeLessThanOrEqual(384);
  });

  it('has head size and rotary dim multiples of 16, as onnxruntime GroupQueryAttention needs', async () => {
    const ckpt = await Checkpoint.open(dir);
    const c = parseArchConfig(ckpt.config).config;
    expect(c.head_dim % 16).toBe(0);
    expect(c.rotary_dim % 16).toBe(0);
    await ckpt.close();
  });

  it('keeps the features: GQA ratio, partial rotary, tying, window, LongRoPE', () => {
    const ratio = (c: Json) => (c.num_attention_heads as number) / ((c.num_key_value_heads as number | null) ?? (c.num_attention_heads as number));
    expect(ratio(config)).toBe(ratio(real));
    if (ratio(real) > 1) expect(config.num_key_value_heads as number).toBeGreaterThanOrEqual(2);
    expect(config.partial_rotary_factor).toBe(real.partial_rotary_factor);
    expect(config.tie_word_embeddings).toBe(real.tie_word_embeddings);
    const hd = (config.hidden_size as number) / (config.num_attention_heads as number);
    const prf = (config.partial_rotary_factor as number | undefined) ?? (real.model_type === 'phi' ? 0.5 : 1);
    const rotDim = Math.trunc(hd * prf);
    expect(rotDim % 2).toBe(0);
    expect(hd * prf).toBe(rotDim);

    const realMax = real.max_position_embeddings as number;
    if (typeof real.sliding_window === 'number') {
      expect(typeof config.sliding_window).toBe('number');
      expect((config.sliding_window as number) < (config.max_position_embeddings as number)).toBe(real.sliding_window < realMax);
    } else {
      expect(config.sliding_window ?? null).toBe(real.sliding_window ?? null);
    }

    const rs = real.rope_scaling as Json | null;
    if (rs) {
      const ts = config.rope_scaling as Json;
      expect(ts.type).toBe(rs.type);
      expect(config.original_max_position_embeddings).toBe(32);
      expect(config.max_position_embeddings).toBe(128);
      for (const key of ['long_factor', 'short_factor']) {
        const r = rs[key] as number[];
        const t = ts[key] as number[];
        expect(t).toHaveLength(rotDim / 2);
        expect(t[0]).toBe(r[0]);
        expect(t[t.length - 1]).toBe(r[r.length - 1]);
        if (isNonDecreasing(r)) expect(isNonDecreasing(t)).toBe(true);
      }
    } else {
      expect(config.rope_scaling ?? null).toBeNull();
      expect(config.max_position_embeddings).toBe(64);
      if ('original_max_position_embeddings' in real) expect(config.original_max_position_embeddings).toBe(64);
    }
  });

  it('maps every token id (config and generation config) into the vocabulary, keeping distinct ids distinct', async () => {
    const gen = JSON.parse(await readFile(join(dir, 'generation_config.json'), 'utf8')) as Json;
    const realGen = (KNOWN_GENERATION_CONFIGS[preset] ?? real) as Json;
    for (const [tiny, src] of [
      [config, real],
      [gen, realGen],
    ] as const) {
      for (const key of ['bos_token_id', 'eos_token_id', 'pad_token_id']) {
        if (src[key] === undefined || src[key] === null) continue;
        const before = tokenIds(src[key]);
        const after = tokenIds(tiny[key]);
        expect(after).toHaveLength(before.length);
        for (const id of after) expect(id).toBeLessThan(512);
        expect(new Set(after).size).toBe(new Set(before).size);
      }
    }
  });

  it('holds transformers\' tensor names and shapes for the config', async () => {
    const ckpt = await Checkpoint.open(dir);
    const shapes = Object.fromEntries(ckpt.tensorNames().map((n) => [n, ckpt.entry(n).shape]));
    expect(shapes).toEqual(expectedShapes(config));
    await ckpt.close();
  });
});

describe('synth weights', () => {
  it('are byte-identical for the same seed and differ for another', async () => {
    const a = join(tmp, 'det-a');
    const b = join(tmp, 'det-b');
    const c = join(tmp, 'det-c');
    await synthCheckpoint({ preset: 'phi-4-mini', scale: 'tiny', outDir: a, seed: 5 });
    await synthCheckpoint({ preset: 'phi-4-mini', scale: 'tiny', outDir: b, seed: 5 });
    await synthCheckpoint({ preset: 'phi-4-mini', scale: 'tiny', outDir: c, seed: 6 });
    const fa = await filesOf(a);
    const fb = await filesOf(b);
    const fc = await filesOf(c);
    expect([...fa.keys()]).toEqual([...fb.keys()]);
    for (const [name, bytes] of fa) expect(bytes.equals(fb.get(name)!), name).toBe(true);
    expect(fa.get('config.json')!.equals(fc.get('config.json')!)).toBe(true);
    expect(fa.get('model.safetensors')!.equals(fc.get('model.safetensors')!)).toBe(false);
  });

  it('have the intended scales: linear N(0, 1/fan_in), norms 1 ± 0.1, biases ≈ 0.05', async () => {
    const dir = join(tmp, 'stats');
    await synthCheckpoint({ preset: 'phi-2', scale: 'tiny', outDir: dir, seed: 2 });
    const m = await loadReferenceModel(dir);
    const stats = (a: Float32Array) => {
      const mean = a.reduce((s, v) => s + v, 0) / a.length;
      const std = Math.sqrt(a.reduce((s, v) => s + (v - mean) ** 2, 0) / a.length);
      return { mean, std };
    };
    const fc1 = stats(m.tensors.get('model.layers.0.mlp.fc1.weight')!); // [128, 320]
    expect(Math.abs(fc1.mean)).toBeLessThan(0.01);
    expect(fc1.std).toBeCloseTo(1 / Math.sqrt(320), 2);
    const fc2 = stats(m.tensors.get('model.layers.1.mlp.fc2.weight')!); // [320, 128]
    expect(fc2.std).toBeCloseTo(1 / Math.sqrt(128), 2);
    const ln = stats(m.tensors.get('model.layers.1.input_layernorm.weight')!);
    expect(ln.mean).toBeGreaterThan(0.95);
    expect(ln.mean).toBeLessThan(1.05);
    expect(ln.std).toBeGreaterThan(0.05);
    expect(ln.std).toBeLessThan(0.15);
    const bias = stats(m.tensors.get('lm_head.bias')!);
    expect(bias.std).toBeGreaterThan(0.04);
    expect(bias.std).toBeLessThan(0.06);
  });

  it('bf16 sharded output: shards + index, readable, equal to the fp32 values rounded to bf16', async () => {
    const config = synthConfig('phi-3-mini-4k', 'tiny');
    const f32Dir = join(tmp, 'bf16-ref');
    const bfDir = join(tmp, 'bf16');
    await writeSynthCheckpoint({ config, generationConfig: {}, outDir: f32Dir, seed: 9, dtype: 'F32', maxShardBytes: 1e12 });
    const r = await writeSynthCheckpoint({ config, generationConfig: {}, outDir: bfDir, seed: 9, dtype: 'BF16', maxShardBytes: 100_000 });
    expect(r.files).toContain('model.safetensors.index.json');
    expect(r.files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)).length).toBeGreaterThan(1);
    const index = JSON.parse(await readFile(join(bfDir, 'model.safetensors.index.json'), 'utf8'));
    expect(index.metadata.total_size).toBe(r.tensorBytes);
    const bf = await Checkpoint.open(bfDir);
    const ref = await loadReferenceModel(f32Dir);
    expect(bf.tensorNames().sort()).toEqual([...ref.tensors.keys()].sort());
    for (const name of bf.tensorNames()) {
      expect(bf.entry(name).dtype).toBe('BF16');
      const raw = await bf.readRaw(name);
      const bits = new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2);
      expect(Buffer.from(bits.buffer, bits.byteOffset, bits.byteLength).equals(Buffer.from(float32ToBfloat16Bits(ref.tensors.get(name)!).buffer)), name).toBe(true);
    }
    await bf.close();
  });
});

describe('synth plans from the family spec', () => {
  it('every planned tensor is a row of its family\'s table, with that row\'s shape and kind, in table order per layer', () => {
    for (const preset of KNOWN_CONFIG_NAMES) {
      const raw = synthConfig(preset, 'tiny');
      const { spec, config } = parseArchConfig(parseHfConfig(raw, 'config.json'));
      const decoder = spec.decoder(config);
      const matched = matchTensors(config.architecture, spec.tensorMap, planTensors(raw).map((t) => t.name));
      for (const [i, t] of planTensors(raw).entries()) {
        const { rule } = matched[i]!;
        expect(t.shape, t.name).toEqual(rule.shape!.map((d) => d.size(decoder)));
        expect(t.init, t.name).toBe(rule.init);
        expect(rule.role, t.name).not.toBeNull();
      }
      const layer0 = matched.filter((m) => m.layer === 0).map((m) => spec.tensorMap.indexOf(m.rule));
      expect(layer0).toEqual([...layer0].sort((a, b) => a - b));
    }
  });

  it('a config that names only model_type plans as its family; one no family parses is refused, listing the supported ones', () => {
    const { architectures: _a, ...byType } = synthConfig('phi-2', 'tiny');
    expect(planTensors(byType)).toEqual(planTensors(synthConfig('phi-2', 'tiny')));
    const llama = { ...synthConfig('phi-2', 'tiny'), architectures: ['LlamaForCausalLM'] };
    expect(() => planTensors(llama)).toThrow(expect.objectContaining({ code: 'ARCH_UNSUPPORTED' }));
    expect(() => planTensors(llama)).toThrow(/LlamaForCausalLM is not supported[\s\S]*Phi3ForCausalLM, PhiForCausalLM/);
  });

  it('config.json values the family schema refuses are refused with the field named', () => {
    const bad = { ...synthConfig('phi-4-mini', 'tiny'), num_key_value_heads: 5 };
    expect(() => planTensors(bad)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', where: 'num_key_value_heads' }));
  });
});

describe('synth --scale full plan (nothing written)', () => {
  it('phi-4-mini: 3,836,021,760 parameters, 7.67 GB in bf16, two 5 GB shards, tied embeddings', () => {
    const config = synthConfig('phi-4-mini', 'full');
    const plan = planTensors(config);
    const names = plan.map((t) => t.name);
    expect(names).not.toContain('lm_head.weight');
    expect(plan.find((t) => t.name === 'model.embed_tokens.weight')!.shape).toEqual([200064, 3072]);
    expect(plan.find((t) => t.name === 'model.layers.31.self_attn.qkv_proj.weight')!.shape).toEqual([3072 + 2 * 1024, 3072]);
    expect(plan.find((t) => t.name === 'model.layers.0.mlp.gate_up_proj.weight')!.shape).toEqual([16384, 3072]);
    // Hand count: embed 200064·3072 + 32 · (5120·3072 + 3072² + 16384·3072 + 3072·8192 + 2·3072) + 3072.
    const { parameters, bytes } = planSize(plan, 'BF16');
    expect(parameters).toBe(3_836_021_760);
    expect(bytes).toBe(7_672_043_520);
    const shards = planShards(plan.map((t) => synthTensor(t, 0, 'BF16')), 5_000_000_000);
    expect(shards).toHaveLength(2);
    expect(config.torch_dtype).toBe('bfloat16');
    expect(Object.keys(config).sort()).toEqual(Object.keys(knownConfig('phi-4-mini')).sort());
  });

  it('phi-4: 14,659,507,200 parameters with an untied lm_head', () => {
    const plan = planTensors(synthConfig('phi-4', 'full'));
    expect(plan.map((t) => t.name)).toContain('lm_head.weight');
    expect(planSize(plan, 'BF16').parameters).toBe(14_659_507_200);
  });

  it('phi-2: 2,779,683,840 parameters with biases everywhere', () => {
    const plan = planTensors(synthConfig('phi-2', 'full'));
    expect(planSize(plan, 'BF16').parameters).toBe(2_779_683_840);
    expect(plan.filter((t) => t.name.endsWith('.bias'))).toHaveLength(32 * 7 + 2); // per layer: ln, q, k, v, dense, fc1, fc2; final ln; lm_head
  });
});

describe('synth inputs and CLI', () => {
  it('an unknown preset is a usage error listing the presets', async () => {
    const err = await synthCheckpoint({ preset: 'phi-9', scale: 'tiny', outDir: join(tmp, 'x') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toContain('phi-4-mini');
  });

  it('refuses a non-empty output folder unless overwrite is set', async () => {
    const dir = join(tmp, 'busy');
    await mkdir(dir);
    await writeFile(join(dir, 'keep.txt'), 'mine');
    await expect(synthCheckpoint({ preset: 'phi-1', scale: 'tiny', outDir: dir })).rejects.toMatchObject({ code: 'OUT_NOT_EMPTY' });
    expect(await readFile(join(dir, 'keep.txt'), 'utf8')).toBe('mine');
    await synthCheckpoint({ preset: 'phi-1', scale: 'tiny', outDir: dir, overwrite: true });
    expect(existsSync(join(dir, 'keep.txt'))).toBe(false);
  });

  it('`pnpm pipeline synth` writes the checkpoint and prints --json', async () => {
    const dir = join(tmp, 'cli');
    const chunks: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
      chunks.push(String(s));
      return true;
    });
    let code: number;
    try {
      code = await main(['synth', 'phi-3.5-mini', '--scale', 'tiny', '--out', dir, '--seed', '3', '--json']);
    } finally {
      spy.mockRestore();
    }
    expect(code).toBe(0);
    const doc = JSON.parse(chunks.join(''));
    expect(doc).toMatchObject({ preset: 'phi-3.5-mini', scale: 'tiny', seed: 3, dtype: 'F32', architecture: 'Phi3ForCausalLM' });
    const direct = join(tmp, 'cli-direct');
    await synthCheckpoint({ preset: 'phi-3.5-mini', scale: 'tiny', outDir: direct, seed: 3 });
    expect((await readFile(join(dir, 'model.safetensors'))).equals(await readFile(join(direct, 'model.safetensors')))).toBe(true);
  });
});

describe('synth-presets helpers', () => {
  it('resampleFactors keeps the ends and interpolates linearly', () => {
    expect(resampleFactors([1, 3, 5, 7], 7)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(resampleFactors([1, 2, 4], 2)).toEqual([1, 4]);
  });

  it('tinyWindow keeps a window below or above the context where it was', () => {
    expect(tinyWindow(2047, 4096, 64)).toBe(31);
    expect(tinyWindow(262144, 131072, 128)).toBe(256);
  });

  it('mapTokenIds keeps small ids and the distance of special ids from the top', () => {
    expect(mapTokenIds(1, 32064)).toBe(1);
    expect(mapTokenIds([32000, 32001, 32007], 32064)).toEqual([448, 449, 455]);
    expect(mapTokenIds(null, 32064)).toBeNull();
  });
});

describe('Rng', () => {
  it('is deterministic per (seed, name) and independent across names and seeds', () => {
    const draw = (r: Rng) => Array.from({ length: 8 }, () => r.nextU32());
    expect(draw(Rng.forName(1, 'a'))).toEqual(draw(Rng.forName(1, 'a')));
    expect(draw(Rng.forName(1, 'a'))).not.toEqual(draw(Rng.forName(1, 'b')));
    expect(draw(Rng.forName(1, 'a'))).not.toEqual(draw(Rng.forName(2, 'a')));
    expect(draw(new Rng(1))).not.toEqual(draw(new Rng(1 + 2 ** 32)));
  });

  it('normal() has mean 0, variance 1 and normal quantiles', () => {
    const r = new Rng(42);
    const n = 200_000;
    const xs = new Float64Array(n);
    for (let i = 0; i < n; i++) xs[i] = r.normal();
    const mean = xs.reduce((s, v) => s + v, 0) / n;
    const variance = xs.reduce((s, v) => s + (v - mean) ** 2, 0) / n;
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(Math.abs(variance - 1)).toBeLessThan(0.015);
    const within1 = xs.filter((v) => Math.abs(v) < 1).length / n;
    expect(within1).toBeCloseTo(0.6827, 2);
    const beyond196 = xs.filter((v) => Math.abs(v) > 1.959964).length / n;
    expect(beyond196).toBeCloseTo(0.05, 2);
  });

  it('inverseNormalCdf matches known quantiles', () => {
    expect(inverseNormalCdf(0.5)).toBeCloseTo(0, 9);
    expect(inverseNormalCdf(0.975)).toBeCloseTo(1.959963985, 7);
    expect(inverseNormalCdf(0.001)).toBeCloseTo(-3.090232306, 7);
    expect(inverseNormalCdf(0.3)).toBeCloseTo(-0.524400513, 7);
  });
});

describe('reference forwards on synthesized models', () => {
  let phi4mini: ReferenceModel;
  let phi3mini: ReferenceModel;
  let phi2: ReferenceModel;
  const ids = (n: number, salt = 0) => Array.from({ length: n }, (_, i) => (i * 37 + 11 + salt * 101) % 500);

  beforeAll(async () => {
    const load = async (preset: string) => {
      const dir = join(tmp, `ref-${preset}`);
      await synthCheckpoint({ preset, scale: 'tiny', outDir: dir, seed: 11 });
      return loadReferenceModel(dir);
    };
    phi4mini = await load('phi-4-mini');
    phi3mini = await load('phi-3-mini-4k');
    phi2 = await load('phi-2');
  });

  it('gives non-trivial logits (order-1 spread, position-dependent)', () => {
    const logits = phi3Forward(phi4mini, ids(6));
    const spread = (a: Float32Array) => Math.max(...a) - Math.min(...a);
    for (const row of logits) expect(spread(row)).toBeGreaterThan(1);
    expect(maxAbsDiff(logits[0]!, logits[5]!)).toBeGreaterThan(0.1);
  });

  it.each([
    ['phi-4-mini (Phi3)', () => phi3Forward(phi4mini, ids(12)), (t: number[]) => phi3Forward(phi4mini, t)],
    ['phi-2 (Phi)', () => phiForward(phi2, ids(12)), (t: number[]) => phiForward(phi2, t)],
  ])('%s is causal: changing tokens after p leaves logits up to p unchanged', (_name, base, run) => {
    const a = base();
    const changed = ids(12);
    for (let i = 7; i < 12; i++) changed[i] = (changed[i]! + 200) % 512;
    const b = run(changed);
    for (let p = 0; p < 7; p++) expect(maxAbsDiff(a[p]!, b[p]!)).toBe(0);
    for (let p = 7; p < 12; p++) expect(maxAbsDiff(a[p]!, b[p]!)).toBeGreaterThan(1e-3);
  });

  it('Phi-3 LongRoPE: long factors exactly when the length passes original_max_position_embeddings (32)', () => {
    const t32 = ids(32);
    const t33 = ids(33);
    const short32 = phi3Forward(phi4mini, t32);
    const auto33 = phi3Forward(phi4mini, t33);
    const short33 = phi3Forward(phi4mini, t33, { longRope: 'short' });
    const long32 = phi3Forward(phi4mini, t32, { longRope: 'long' });
    // 33 tokens use the long factors. Position 0 does not move (angle 0, and the attention factor is the same for
    // both factor sets), later positions do.
    expect(maxAbsDiff(auto33[0]!, short33[0]!)).toBeLessThan(1e-9);
    expect(maxAbsDiff(auto33[20]!, short33[20]!)).toBeGreaterThan(1e-3);
    // Forced short at 33 reproduces the 32-token run on the shared prefix; forced long at 32 the 33-token run.
    for (let p = 0; p < 32; p++) {
      expect(maxAbsDiff(short33[p]!, short32[p]!)).toBeLessThan(1e-9);
      expect(maxAbsDiff(long32[p]!, auto33[p]!)).toBeLessThan(1e-9);
    }
  });

  it('Phi-3 LongRoPE constants: attention factor 1.190238 for 131072/4096, inv_freq = 1/(factor·θ^(2i/d))', () => {
    const real = knownConfig('phi-4-mini') as Json;
    const long = phi3Rope(real, 128, 5000, 'auto');
    expect(long.rotDim).toBe(96);
    expect(long.mscale).toBeCloseTo(1.1902380714, 9);
    const lf = (real.rope_scaling as Json).long_factor as number[];
    expect(long.invFreq[10]).toBeCloseTo(1 / (lf[10]! * Math.pow(10000, 20 / 96)), 15);
    const short = phi3Rope(real, 128, 4096, 'auto');
    expect(short.invFreq[10]).toBeCloseTo(1 / Math.pow(10000, 20 / 96), 15);
    const tiny = phi3Rope(phi4mini.config, 64, 10, 'auto');
    expect(tiny.mscale).toBeCloseTo(Math.sqrt(1 + Math.log(4) / Math.log(32)), 12);
    const plain = phi3Rope(phi3mini.config, 16, 10, 'auto');
    expect(plain.mscale).toBe(1);
  });

  it('Phi-3 sliding window: a one-layer model at position p ignores tokens at or before p − window', () => {
    const window = phi3mini.config.sliding_window as number;
    expect(window).toBe(31);
    const oneLayer: ReferenceModel = { config: { ...phi3mini.config, num_hidden_layers: 1 }, tensors: phi3mini.tensors };
    const base = ids(45);
    const changed = [...base];
    for (let i = 0; i < 5; i++) changed[i] = (changed[i]! + 123) % 512;
    const a = phi3Forward(oneLayer, base);
    const b = phi3Forward(oneLayer, changed);
    // Position 44 sees keys 14..44 (44 − s < 31): untouched by tokens 0..4. Position 35 sees 5..35: also untouched.
    expect(maxAbsDiff(a[44]!, b[44]!)).toBe(0);
    expect(maxAbsDiff(a[35]!, b[35]!)).toBe(0);
    // Position 34 sees 4..34, which includes changed token 4.
    expect(maxAbsDiff(a[34]!, b[34]!)).toBeGreaterThan(1e-4);
    // Without the window every position sees them.
    const c = phi3Forward(oneLayer, changed, { slidingWindow: null });
    const d = phi3Forward(oneLayer, base, { slidingWindow: null });
    expect(maxAbsDiff(c[44]!, d[44]!)).toBeGreaterThan(1e-4);
  });

  it('Phi pieces match hand-computed values: gelu_new and LayerNorm', () => {
    expect(geluNew(1)).toBeCloseTo(0.8411919906, 9);
    expect(geluNew(-0.5)).toBeCloseTo(-0.1542859902, 9);
    const y = layerNorm(Float64Array.from([1, 2, 3, 4]), new Float32Array([1, 1, 2, 1]), new Float32Array([0, 0, 0, 1]), 0);
    const s = Math.sqrt(1.25);
    expect(Array.from(y)).toEqual([-1.5 / s, -0.5 / s, (2 * 0.5) / s, 1.5 / s + 1].map((v) => expect.closeTo(v, 12)));
  });

  it('Phi: lm_head.bias is added to every position (removing it shifts logits by exactly the bias)', () => {
    const t = ids(3);
    const a = phiForward(phi2, t);
    const tensors = new Map(phi2.tensors);
    const bias = phi2.tensors.get('lm_head.bias')!;
    tensors.set('lm_head.bias', new Float32Array(bias.length));
    const b = phiForward({ config: phi2.config, tensors }, t);
    for (let p = 0; p < 3; p++) {
      for (let i = 0; i < 512; i += 51) expect(a[p]![i]! - b[p]![i]!).toBeCloseTo(bias[i]!, 5);
    }
  });
});
