// convert-llama2c: the real stories260K checkpoint converted to Phi-3, checked against llama2.c's own outputs through
// two independent forward passes (run.c-style over the original file, HF-style over the converted safetensors).
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { convertLlama2c, interleavedToHalfRows } from '../../src/checkpoint/llama2c.js';
import { SafetensorsFile } from '../../src/checkpoint/safetensors.js';
import { main } from '../../src/cli/main.js';
import { CheckpointError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/random.js';
import { loadReferenceModel, phi3Forward, type ReferenceModel } from '../helpers/reference-forward.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const fixtureDir = resolve(repoRoot, '../shared/fixtures/stories260K');
const BIN = join(fixtureDir, 'stories260K.bin');
const REF = join(fixtureDir, 'reference.json');
const haveFixtures = existsSync(BIN) && existsSync(REF);
// Without the fixtures the suite is skipped on a developer machine, and fails (reading the missing files) on CI.
const withFixtures = haveFixtures || process.env.CI === 'true' ? describe : describe.skip;

interface Reference {
  bos_token_id: number;
  greedy_tokens: number[];
  logits: number[][];
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'phi-forge-llama2c-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------------------------
// A plain port of llama2.c's run.c forward (legacy format, interleaved RoPE, KV cache, one token at a time),
// reading the original file with its own offsets: the independent reference for the converter.

interface Llama2cModel {
  dim: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  seqLen: number;
  w: Float32Array;
  off: Record<'emb' | 'rmsAtt' | 'wq' | 'wk' | 'wv' | 'wo' | 'rmsFfn' | 'w1' | 'w2' | 'w3' | 'rmsFinal' | 'wcls', number>;
}

function loadLlama2c(bytes: Uint8Array): Llama2cModel {
  const aligned = new Uint8Array(bytes); // copy: guarantees a 4-byte aligned buffer
  const h = new Int32Array(aligned.buffer, 0, 7);
  const [dim, hidden, layers, heads, kvHeads, vocabRaw, seqLen] = Array.from(h) as number[];
  const vocab = Math.abs(vocabRaw!);
  const w = new Float32Array(aligned.buffer, 28);
  const headSize = dim! / heads!;
  const kvDim = (dim! * kvHeads!) / heads!;
  // memory_map_weights in run.c, in its order.
  let p = 0;
  const o = {} as Llama2cModel['off'];
  o.emb = p;
  p += vocab * dim!;
  o.rmsAtt = p;
  p += layers! * dim!;
  o.wq = p;
  p += layers! * dim! * dim!;
  o.wk = p;
  p += layers! * dim! * kvDim;
  o.wv = p;
  p += layers! * dim! * kvDim;
  o.wo = p;
  p += layers! * dim! * dim!;
  o.rmsFfn = p;
  p += layers! * dim!;
  o.w1 = p;
  p += layers! * dim! * hidden!;
  o.w2 = p;
  p += layers! * hidden! * dim!;
  o.w3 = p;
  p += layers! * dim! * hidden!;
  o.rmsFinal = p;
  p += dim!;
  p += seqLen! * headSize; // freq_cis_real + freq_cis_imag, seq_len * head_size / 2 each
  o.wcls = vocabRaw! > 0 ? o.emb : p;
  return { dim: dim!, hidden: hidden!, layers: layers!, heads: heads!, kvHeads: kvHeads!, vocab, seqLen: seqLen!, w, off: o };
}

function runcForward(m: Llama2cModel, tokens: number[]): Float32Array[] {
  const { dim, hidden, heads, w, off } = m;
  const headSize = dim / heads;
  const kvDim = (dim * m.kvHeads) / heads;
  const kvMul = heads / m.kvHeads;
  const keyCache = new Float32Array(m.layers * m.seqLen * kvDim);
  const valueCache = new Float32Array(m.layers * m.seqLen * kvDim);
  const rmsnorm = (out: Float32Array, x: Float32Array, wOff: number) => {
    let ss = 0;
    for (let j = 0; j < dim; j++) ss += x[j]! * x[j]!;
    ss = 1 / Math.sqrt(ss / dim + 1e-5);
    for (let j = 0; j < dim; j++) out[j] = w[wOff + j]! * (ss * x[j]!);
  };
  // W (d,n) @ x (n,) -> out (d,)
  const matmul = (out: Float32Array, x: Float32Array, wOff: number, n: number, d: number) => {
    for (let i = 0; i < d; i++) {
      let val = 0;
      for (let j = 0; j < n; j++) val += w[wOff + i * n + j]! * x[j]!;
      out[i] = val;
    }
  };
  const logitsOut: Float32Array[] = [];
  for (let pos = 0; pos < tokens.length; pos++) {
    const x = Float32Array.from(w.subarray(off.emb + tokens[pos]! * dim, off.emb + (tokens[pos]! + 1) * dim));
    const xb = new Float32Array(dim);
    const xb2 = new Float32Array(dim);
    const q = new Float32Array(dim);
    const k = new Float32Array(kvDim);
    const v = new Float32Array(kvDim);
    const hb = new Float32Array(hidden);
    const hb2 = new Float32Array(hidden);
    for (let l = 0; l < m.layers; l++) {
      rmsnorm(xb, x, off.rmsAtt + l * dim);
      matmul(q, xb, off.wq + l * dim * dim, dim, dim);
      matmul(k, xb, off.wk + l * dim * kvDim, dim, kvDim);
      matmul(v, xb, off.wv + l * dim * kvDim, dim, kvDim);
      // RoPE: rotate interleaved pairs (i, i+1) of q (and of k while i < kv_dim).
      for (let i = 0; i < dim; i += 2) {
        const headDim = i % headSize;
        const freq = 1 / Math.pow(10000, headDim / headSize);
        const val = pos * freq;
        const fcr = Math.cos(val);
        const fci = Math.sin(val);
        const rotn = i < kvDim ? 2 : 1;
        for (let r = 0; r < rotn; r++) {
          const vec = r === 0 ? q : k;
          const v0 = vec[i]!;
          const v1 = vec[i + 1]!;
          vec[i] = v0 * fcr - v1 * fci;
          vec[i + 1] = v0 * fci + v1 * fcr;
        }
      }
      const loff = l * m.seqLen * kvDim;
      keyCache.set(k, loff + pos * kvDim);
      valueCache.set(v, loff + pos * kvDim);
      xb.fill(0);
      for (let h = 0; h < heads; h++) {
        const att = new Float32Array(pos + 1);
        for (let t = 0; t <= pos; t++) {
          let score = 0;
          const kOff = loff + t * kvDim + Math.floor(h / kvMul) * headSize;
          for (let i = 0; i < headSize; i++) score += q[h * headSize + i]! * keyCache[kOff + i]!;
          att[t] = score / Math.sqrt(headSize);
        }
        const max = Math.max(...att);
        let sum = 0;
        for (let t = 0; t <= pos; t++) sum += att[t] = Math.exp(att[t]! - max);
        for (let t = 0; t <= pos; t++) att[t] = att[t]! / sum;
        for (let t = 0; t <= pos; t++) {
          const vOff = loff + t * kvDim + Math.floor(h / kvMul) * headSize;
          for (let i = 0; i < headSize; i++) xb[h * headSize + i] = xb[h * headSize + i]! + att[t]! * valueCache[vOff + i]!;
        }
      }
      matmul(xb2, xb, off.wo + l * dim * dim, dim, dim);
      for (let i = 0; i < dim; i++) x[i] = x[i]! + xb2[i]!;
      rmsnorm(xb, x, off.rmsFfn + l * dim);
      matmul(hb, xb, off.w1 + l * dim * hidden, dim, hidden);
      matmul(hb2, xb, off.w3 + l * dim * hidden, dim, hidden);
      for (let i = 0; i < hidden; i++) hb[i] = (hb[i]! / (1 + Math.exp(-hb[i]!))) * hb2[i]!;
      matmul(xb, hb, off.w2 + l * dim * hidden, hidden, dim);
      for (let i = 0; i < dim; i++) x[i] = x[i]! + xb[i]!;
    }
    rmsnorm(x, x, off.rmsFinal);
    const logits = new Float32Array(m.vocab);
    matmul(logits, x, off.wcls, dim, m.vocab);
    logitsOut.push(logits);
  }
  return logitsOut;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[best]!) best = i;
  return best;
}

// ---------------------------------------------------------------------------------------------------------------

describe('interleavedToHalfRows', () => {
  it('moves row 2i+j of each head to row j·half+i (hand-computed, 2 heads of 4)', () => {
    const w = Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(Array.from(interleavedToHalfRows(w, 2, 4, 1))).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
  });

  it('moves whole rows (3 columns) and keeps every value', () => {
    const w = Float32Array.from({ length: 6 * 3 }, (_, i) => i);
    const out = interleavedToHalfRows(w, 1, 6, 3);
    // head size 6: HF rows [0, 2, 4, 1, 3, 5] of the llama2.c rows.
    expect(Array.from(out)).toEqual([0, 1, 2, 6, 7, 8, 12, 13, 14, 3, 4, 5, 9, 10, 11, 15, 16, 17]);
  });

  it('rejects a size that does not match heads × head size × columns', () => {
    expect(() => interleavedToHalfRows(new Float32Array(10), 2, 4, 1)).toThrow(RangeError);
  });
});

withFixtures('convert-llama2c on stories260K', () => {
  let ref: Reference;
  let original: Llama2cModel;
  let outDir: string;
  let converted: ReferenceModel;
  let inputs: number[];

  beforeAll(async () => {
    ref = JSON.parse(readFileSync(REF, 'utf8')) as Reference;
    original = loadLlama2c(readFileSync(BIN));
    inputs = [ref.bos_token_id, ...ref.greedy_tokens.slice(0, 7)];
    outDir = join(tmp, 'stories260K');
    await convertLlama2c({ file: BIN, outDir });
    converted = await loadReferenceModel(outDir);
  });

  it('writes a Phi3ForCausalLM config from the header', async () => {
    const config = JSON.parse(await readFile(join(outDir, 'config.json'), 'utf8'));
    expect(config).toMatchObject({
      architectures: ['Phi3ForCausalLM'],
      model_type: 'phi3',
      hidden_size: 64,
      intermediate_size: 172,
      num_hidden_layers: 5,
      num_attention_heads: 8,
      num_key_value_heads: 4,
      vocab_size: 512,
      max_position_embeddings: 512,
      original_max_position_embeddings: 512,
      rms_norm_eps: 1e-5,
      rope_theta: 10000,
      rope_scaling: null,
      partial_rotary_factor: 1,
      sliding_window: null,
      tie_word_embeddings: true,
      bos_token_id: 1,
      eos_token_id: 2,
      hidden_act: 'silu',
    });
    const gen = JSON.parse(await readFile(join(outDir, 'generation_config.json'), 'utf8'));
    expect(gen).toMatchObject({ bos_token_id: 1, eos_token_id: 2 });
  });

  it('writes every tensor with the transformers name and shape, fp32, no lm_head when tied', async () => {
    const st = await SafetensorsFile.open(join(outDir, 'model.safetensors'));
    const shapes = Object.fromEntries([...st.entries.values()].map((e) => [e.name, e.shape]));
    const expected: Record<string, number[]> = { 'model.embed_tokens.weight': [512, 64], 'model.norm.weight': [64] };
    for (let l = 0; l < 5; l++) {
      const p = `model.layers.${l}`;
      expected[`${p}.input_layernorm.weight`] = [64];
      expected[`${p}.post_attention_layernorm.weight`] = [64];
      expected[`${p}.self_attn.qkv_proj.weight`] = [64 + 2 * 32, 64];
      expected[`${p}.self_attn.o_proj.weight`] = [64, 64];
      expected[`${p}.mlp.gate_up_proj.weight`] = [2 * 172, 64];
      expected[`${p}.mlp.down_proj.weight`] = [64, 172];
    }
    expect(shapes).toEqual(expected);
    expect(new Set([...st.entries.values()].map((e) => e.dtype))).toEqual(new Set(['F32']));
    // Unpermuted tensors are copied bit for bit: v rows of qkv, w3 half of gate_up, w2.
    const qkv = await st.readFloat32('model.layers.2.self_attn.qkv_proj.weight');
    const o = original.off;
    const wv2 = original.w.subarray(o.wv + 2 * 64 * 32, o.wv + 3 * 64 * 32);
    expect(Array.from(qkv.subarray(96 * 64))).toEqual(Array.from(wv2));
    const gateUp = await st.readFloat32('model.layers.1.mlp.gate_up_proj.weight');
    expect(Array.from(gateUp.subarray(172 * 64))).toEqual(Array.from(original.w.subarray(o.w3 + 172 * 64, o.w3 + 2 * 172 * 64)));
    await st.close();
  });

  it('the run.c-style forward over the original file reproduces llama2.c logits (proves the reference)', () => {
    const logits = runcForward(original, inputs);
    for (let p = 0; p < 8; p++) expect(maxAbsDiff(logits[p]!, ref.logits[p]!)).toBeLessThan(1e-4);
  });

  it('an HF-style forward (rotate-half) over the converted checkpoint gives the same logits (proves the permutation)', () => {
    const logits = phi3Forward(converted, inputs);
    for (let p = 0; p < 8; p++) expect(maxAbsDiff(logits[p]!, ref.logits[p]!)).toBeLessThan(1e-4);
  });

  it('without the row permutation the HF-style forward is wrong (the check can fail)', () => {
    const tensors = new Map(converted.tensors);
    const o = original.off;
    for (let l = 0; l < 5; l++) {
      const name = `model.layers.${l}.self_attn.qkv_proj.weight`;
      const raw = new Float32Array(128 * 64);
      raw.set(original.w.subarray(o.wq + l * 64 * 64, o.wq + (l + 1) * 64 * 64), 0);
      raw.set(original.w.subarray(o.wk + l * 64 * 32, o.wk + (l + 1) * 64 * 32), 64 * 64);
      raw.set(original.w.subarray(o.wv + l * 64 * 32, o.wv + (l + 1) * 64 * 32), 96 * 64);
      tensors.set(name, raw);
    }
    const logits = phi3Forward({ config: converted.config, tensors }, inputs);
    expect(maxAbsDiff(logits[7]!, ref.logits[7]!)).toBeGreaterThan(1e-2);
  });

  it('teacher-forced over the whole greedy path, the converted model picks llama2.c greedy tokens', () => {
    const path = [ref.bos_token_id, ...ref.greedy_tokens.slice(0, -1)];
    const logits = phi3Forward(converted, path);
    expect(logits.map(argmax)).toEqual(ref.greedy_tokens);
  });

  it('an unshared classifier (negative vocab_size, wcls after the RoPE tables) becomes lm_head.weight', async () => {
    const bytes = new Uint8Array(readFileSync(BIN));
    const wcls = new Rng(7).fillNormal(new Float32Array(512 * 64), 0.125);
    const file = new Uint8Array(bytes.byteLength + wcls.byteLength);
    file.set(bytes);
    file.set(new Uint8Array(wcls.buffer), bytes.byteLength);
    new DataView(file.buffer).setInt32(5 * 4, -512, true);
    const bin = join(tmp, 'unshared.bin');
    await writeFile(bin, file);
    const dir = join(tmp, 'unshared');
    const r = await convertLlama2c({ file: bin, outDir: dir });
    expect(r.header.sharedClassifier).toBe(false);
    expect(r.config.tie_word_embeddings).toBe(false);
    const model = await loadReferenceModel(dir);
    expect(Array.from(model.tensors.get('lm_head.weight')!)).toEqual(Array.from(wcls));
    const hf = phi3Forward(model, inputs);
    const rc = runcForward(loadLlama2c(file), inputs);
    for (let p = 0; p < 8; p++) expect(maxAbsDiff(hf[p]!, rc[p]!)).toBeLessThan(1e-4);
    // The new classifier changes the logits: the comparison is not against the tied model by accident.
    expect(maxAbsDiff(hf[0]!, ref.logits[0]!)).toBeGreaterThan(1e-2);
  });

  it('a truncated file is a CheckpointError naming the file, expected and actual size', async () => {
    const bytes = readFileSync(BIN);
    const bad = join(tmp, 'truncated.bin');
    await writeFile(bad, bytes.subarray(0, bytes.byteLength - 4));
    const err = await convertLlama2c({ file: bad, outDir: join(tmp, 'never') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as CheckpointError).code).toBe('LLAMA2C_SIZE');
    expect((err as Error).message).toContain(bad);
    expect((err as Error).message).toContain(String(bytes.byteLength));
    expect((err as Error).message).toContain(String(bytes.byteLength - 4));
    expect(existsSync(join(tmp, 'never'))).toBe(false);
  });

  it('trailing bytes are refused too', async () => {
    const bytes = readFileSync(BIN);
    const bad = join(tmp, 'long.bin');
    await writeFile(bad, Buffer.concat([bytes, Buffer.alloc(8)]));
    await expect(convertLlama2c({ file: bad, outDir: join(tmp, 'never2') })).rejects.toMatchObject({ code: 'LLAMA2C_SIZE' });
  });

  it('refuses a non-empty output folder unless overwrite is set', async () => {
    const dir = join(tmp, 'busy');
    await convertLlama2c({ file: BIN, outDir: dir });
    await expect(convertLlama2c({ file: BIN, outDir: dir })).rejects.toMatchObject({ code: 'OUT_NOT_EMPTY' });
    await expect(convertLlama2c({ file: BIN, outDir: dir, overwrite: true })).resolves.toMatchObject({ tensors: 32 });
  });

  it('runs from the CLI with --json', async () => {
    const dir = join(tmp, 'cli');
    const chunks: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
      chunks.push(String(s));
      return true;
    });
    let code: number;
    try {
      code = await main(['convert-llama2c', BIN, '--out', dir, '--json']);
    } finally {
      spy.mockRestore();
    }
    expect(code).toBe(0);
    const doc = JSON.parse(chunks.join(''));
    expect(doc).toMatchObject({ tensors: 32, parameters: 260032, header: { dim: 64, nLayers: 5 } });
    expect(existsSync(join(dir, 'model.safetensors'))).toBe(true);
  });
});

describe('convert-llama2c input errors', () => {
  it('names a versioned export (magic ak42) and says how to re-export', async () => {
    const file = join(tmp, 'v2.bin');
    const head = new Uint8Array(256);
    const dv = new DataView(head.buffer);
    dv.setUint32(0, 0x616b3432, true);
    dv.setInt32(4, 2, true);
    await writeFile(file, head);
    const err = await convertLlama2c({ file, outDir: join(tmp, 'v2') }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'LLAMA2C_VERSIONED' });
    expect((err as Error).message).toContain('--version 0');
  });

  it('rejects a header with impossible sizes', async () => {
    const file = join(tmp, 'bad-header.bin');
    await writeFile(file, new Uint8Array(new Int32Array([64, 172, 5, 7, 4, 512, 512]).buffer));
    await expect(convertLlama2c({ file, outDir: join(tmp, 'bh') })).rejects.toMatchObject({ code: 'LLAMA2C_BAD_HEADER' });
  });

  it('a missing file is a CheckpointError', async () => {
    await expect(convertLlama2c({ file: join(tmp, 'nope.bin'), outDir: join(tmp, 'x') })).rejects.toMatchObject({ code: 'LLAMA2C_OPEN' });
  });

  it('a file shorter than the header is a CheckpointError', async () => {
    const file = join(tmp, 'short.bin');
    await writeFile(file, new Uint8Array(10));
    await expect(convertLlama2c({ file, outDir: join(tmp, 'y') })).rejects.toMatchObject({ code: 'LLAMA2C_TRUNCATED' });
  });
});
