// Plain reference forward passes of Hugging Face Phi3ForCausalLM and PhiForCausalLM (full sequence, causal, no KV
// cache), written as loops over the weights with transformers' semantics, in float64: the yardstick ONNX graphs and
// checkpoint converters are tested against.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SafetensorsFile } from '../../src/checkpoint/safetensors.js';

/** An HF config.json as parsed JSON (snake_case keys, exactly as transformers writes them). */
export type RawHfConfig = Record<string, unknown>;

/** A model in memory: its config.json and every tensor as float32 (HF names, HF [out, in] layout). */
export interface ReferenceModel {
  config: RawHfConfig;
  tensors: Map<string, Float32Array>;
}

export interface ReferenceForwardOptions {
  /**
   * Which LongRoPE factors to use. 'auto' (default) does what transformers does for one full-sequence call:
   * long factors when the sequence length (max position id + 1) exceeds original_max_position_embeddings.
   */
  longRope?: 'auto' | 'short' | 'long';
  /** Overrides config.sliding_window (null: no window). */
  slidingWindow?: number | null;
}

/**
 * Reads config.json (as raw JSON, independent of our config parser) and every tensor of a checkpoint folder
 * (model.safetensors, or the shards listed in model.safetensors.index.json) as float32.
 */
export async function loadReferenceModel(dir: string): Promise<ReferenceModel> {
  const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as RawHfConfig;
  const indexPath = join(dir, 'model.safetensors.index.json');
  const files = existsSync(indexPath)
    ? [...new Set(Object.values((JSON.parse(await readFile(indexPath, 'utf8')) as { weight_map: Record<string, string> }).weight_map))]
    : ['model.safetensors'];
  const tensors = new Map<string, Float32Array>();
  for (const f of files) {
    const st = await SafetensorsFile.open(join(dir, f));
    try {
      for (const name of st.entries.keys()) tensors.set(name, await st.readFloat32(name));
    } finally {
      await st.close();
    }
  }
  return { config, tensors };
}

/** Phi3ForCausalLM logits for every position of `tokenIds` (one Float32Array of vocab_size per position). */
export async function phi3ReferenceForward(
  source: string | ReferenceModel,
  tokenIds: readonly number[],
  opts: ReferenceForwardOptions = {},
): Promise<Float32Array[]> {
  const model = typeof source === 'string' ? await loadReferenceModel(source) : source;
  return phi3Forward(model, tokenIds, opts);
}

/** PhiForCausalLM (Phi-1, Phi-1.5, Phi-2) logits for every position of `tokenIds`. */
export async function phiReferenceForward(
  source: string | ReferenceModel,
  tokenIds: readonly number[],
): Promise<Float32Array[]> {
  const model = typeof source === 'string' ? await loadReferenceModel(source) : source;
  return phiForward(model, tokenIds);
}

// ---------------------------------------------------------------------------------------------------------------
// Phi3ForCausalLM

/** Synchronous core of phi3ReferenceForward. */
export function phi3Forward(model: ReferenceModel, tokenIds: readonly number[], opts: ReferenceForwardOptions = {}): Float32Array[] {
  const c = model.config;
  const w = weightGetter(model);
  const H = int(c, 'hidden_size');
  const nLayers = int(c, 'num_hidden_layers');
  const nHeads = int(c, 'num_attention_heads');
  const nKv = optInt(c, 'num_key_value_heads') ?? nHeads;
  const hd = optInt(c, 'head_dim') ?? H / nHeads;
  const I = int(c, 'intermediate_size');
  const V = int(c, 'vocab_size');
  const eps = num(c, 'rms_norm_eps');
  const T = tokenIds.length;
  const window = opts.slidingWindow !== undefined ? opts.slidingWindow : ((c.sliding_window as number | null | undefined) ?? null);
  const rope = phi3Rope(c, hd, T, opts.longRope ?? 'auto');

  // Residual stream, one row per position.
  const emb = w('model.embed_tokens.weight', [V, H]);
  let x = tokenIds.map((id) => rowOf(emb, id, H, V));

  for (let l = 0; l < nLayers; l++) {
    const p = `model.layers.${l}`;
    const qkvW = w(`${p}.self_attn.qkv_proj.weight`, [(nHeads + 2 * nKv) * hd, H]);
    const oW = w(`${p}.self_attn.o_proj.weight`, [H, nHeads * hd]);
    const q: Float64Array[] = [];
    const k: Float64Array[] = [];
    const v: Float64Array[] = [];
    for (let t = 0; t < T; t++) {
      const xn = rmsNorm(x[t]!, w(`${p}.input_layernorm.weight`, [H]), eps);
      const qkv = linear(qkvW, (nHeads + 2 * nKv) * hd, H, xn);
      // Rows of qkv_proj: all q heads, then k heads, then v heads.
      q.push(rope.apply(qkv.slice(0, nHeads * hd), nHeads, t));
      k.push(rope.apply(qkv.slice(nHeads * hd, (nHeads + nKv) * hd), nKv, t));
      v.push(qkv.slice((nHeads + nKv) * hd));
    }
    const attn = attention(q, k, v, nHeads, nKv, hd, window);
    x = x.map((xt, t) => add(xt, linear(oW, H, nHeads * hd, attn[t]!)));

    const guW = w(`${p}.mlp.gate_up_proj.weight`, [2 * I, H]);
    const downW = w(`${p}.mlp.down_proj.weight`, [H, I]);
    x = x.map((xt) => {
      const xn = rmsNorm(xt, w(`${p}.post_attention_layernorm.weight`, [H]), eps);
      const gu = linear(guW, 2 * I, H, xn);
      // First I rows of gate_up_proj are the gate, the next I the up projection.
      const act = new Float64Array(I);
      for (let i = 0; i < I; i++) act[i] = silu(gu[i]!) * gu[I + i]!;
      return add(xt, linear(downW, H, I, act));
    });
  }

  const normW = w('model.norm.weight', [H]);
  const lmW = c.tie_word_embeddings === true ? emb : w('lm_head.weight', [V, H]);
  return x.map((xt) => toF32(linear(lmW, V, H, rmsNorm(xt, normW, eps))));
}

/** Rotary embedding of Phi-3 (rotate-half, partial rotary, LongRoPE short/long factors and attention factor). */
export function phi3Rope(c: RawHfConfig, headDim: number, seqLen: number, choice: 'auto' | 'short' | 'long') {
  const prf = (c.partial_rotary_factor as number | undefined) ?? 1.0;
  const rotDim = Math.trunc(headDim * prf + 1e-9);
  const theta = (c.rope_theta as number | undefined) ?? 10000;
  const scaling = (c.rope_scaling ?? null) as Record<string, unknown> | null;
  const half = rotDim / 2;
  let factors: number[] = new Array<number>(half).fill(1);
  let mscale = 1;
  if (scaling) {
    const type = (scaling.rope_type ?? scaling.type) as string;
    if (type !== 'longrope' && type !== 'su') throw new Error(`reference forward: rope_scaling type ${type} is not implemented`);
    const maxPos = int(c, 'max_position_embeddings');
    const orig = optInt(c, 'original_max_position_embeddings') ?? (scaling.original_max_position_embeddings as number);
    const useLong = choice === 'long' || (choice === 'auto' && seqLen > orig);
    factors = (useLong ? scaling.long_factor : scaling.short_factor) as number[];
    if (factors.length !== half) throw new Error(`reference forward: ${factors.length} rope factors for rotary dim ${rotDim}`);
    const factor = maxPos / orig;
    // transformers: attention_factor from the config if given, else sqrt(1 + ln(factor)/ln(original)) when factor > 1.
    mscale =
      (scaling.attention_factor as number | undefined) ??
      (factor > 1 ? Math.sqrt(1 + Math.log(factor) / Math.log(orig)) : 1);
  }
  const invFreq = Array.from({ length: half }, (_, i) => 1 / (factors[i]! * Math.pow(theta, (2 * i) / rotDim)));
  return {
    rotDim,
    invFreq,
    mscale,
    /** Rotates the first rotDim dims of each head of `vec` ([nHeads·headDim]) for position `pos`. */
    apply(vec: Float64Array, nHeads: number, pos: number): Float64Array {
      return rotateHalf(vec, nHeads, headDim, rotDim, invFreq, mscale, pos);
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// PhiForCausalLM (Phi-1, Phi-1.5, Phi-2)

/** Synchronous core of phiReferenceForward. */
export function phiForward(model: ReferenceModel, tokenIds: readonly number[]): Float32Array[] {
  const c = model.config;
  const w = weightGetter(model);
  const H = int(c, 'hidden_size');
  const nLayers = int(c, 'num_hidden_layers');
  const nHeads = int(c, 'num_attention_heads');
  const nKv = optInt(c, 'num_key_value_heads') ?? nHeads;
  const hd = H / nHeads;
  const I = int(c, 'intermediate_size');
  const V = int(c, 'vocab_size');
  const eps = num(c, 'layer_norm_eps');
  const T = tokenIds.length;
  if (c.qk_layernorm === true) throw new Error('reference forward: qk_layernorm is not implemented');
  if (c.rope_scaling) throw new Error('reference forward: rope_scaling on PhiForCausalLM is not implemented');
  const act = c.hidden_act as string;
  if (act !== 'gelu_new') throw new Error(`reference forward: hidden_act ${act} is not implemented`);
  const prf = (c.partial_rotary_factor as number | undefined) ?? 0.5;
  const rotDim = Math.trunc(hd * prf + 1e-9);
  const theta = (c.rope_theta as number | undefined) ?? 10000;
  const invFreq = Array.from({ length: rotDim / 2 }, (_, i) => 1 / Math.pow(theta, (2 * i) / rotDim));

  const emb = w('model.embed_tokens.weight', [V, H]);
  let x = tokenIds.map((id) => rowOf(emb, id, H, V));
  for (let l = 0; l < nLayers; l++) {
    const p = `model.layers.${l}`;
    const lnW = w(`${p}.input_layernorm.weight`, [H]);
    const lnB = w(`${p}.input_layernorm.bias`, [H]);
    const xn = x.map((xt) => layerNorm(xt, lnW, lnB, eps));
    const lin = (name: string, rows: number, cols: number, input: Float64Array) =>
      linear(w(`${p}.${name}.weight`, [rows, cols]), rows, cols, input, w(`${p}.${name}.bias`, [rows]));
    const q = xn.map((n, t) => rotateHalf(lin('self_attn.q_proj', nHeads * hd, H, n), nHeads, hd, rotDim, invFreq, 1, t));
    const k = xn.map((n, t) => rotateHalf(lin('self_attn.k_proj', nKv * hd, H, n), nKv, hd, rotDim, invFreq, 1, t));
    const v = xn.map((n) => lin('self_attn.v_proj', nKv * hd, H, n));
    const attn = attention(q, k, v, nHeads, nKv, hd, null);
    // Parallel block: attention and MLP both read the same normed input and are added to the residual together.
    x = x.map((xt, t) => {
      const a = lin('self_attn.dense', H, nHeads * hd, attn[t]!);
      const h1 = lin('mlp.fc1', I, H, xn[t]!).map(geluNew);
      const m = lin('mlp.fc2', H, I, h1);
      return add(add(xt, a), m);
    });
  }
  const fW = w('model.final_layernorm.weight', [H]);
  const fB = w('model.final_layernorm.bias', [H]);
  const lmW = c.tie_word_embeddings === true ? emb : w('lm_head.weight', [V, H]);
  const lmB = model.tensors.has('lm_head.bias') ? w('lm_head.bias', [V]) : undefined;
  return x.map((xt) => toF32(linear(lmW, V, H, layerNorm(xt, fW, fB, eps), lmB)));
}

// ---------------------------------------------------------------------------------------------------------------
// Building blocks (float64 math over float32 weights)

/**
 * Causal multi-head attention with grouped KV heads (query head h reads KV head floor(h / (nHeads/nKv)), as
 * transformers' repeat_kv does), scale 1/sqrt(headDim), and an optional sliding window: query t sees key s when
 * s <= t and t - s < window (transformers' sliding_window_overlay: kv_idx > q_idx - sliding_window).
 */
export function attention(
  q: Float64Array[],
  k: Float64Array[],
  v: Float64Array[],
  nHeads: number,
  nKv: number,
  hd: number,
  window: number | null,
): Float64Array[] {
  const group = nHeads / nKv;
  const scale = 1 / Math.sqrt(hd);
  return q.map((qt, t) => {
    const out = new Float64Array(nHeads * hd);
    for (let h = 0; h < nHeads; h++) {
      const g = Math.floor(h / group);
      const first = window === null ? 0 : Math.max(0, t - window + 1);
      const scores: number[] = [];
      for (let s = first; s <= t; s++) {
        let dot = 0;
        for (let d = 0; d < hd; d++) dot += qt[h * hd + d]! * k[s]![g * hd + d]!;
        scores.push(dot * scale);
      }
      const probs = softmax(scores);
      for (let s = first; s <= t; s++) {
        const pr = probs[s - first]!;
        for (let d = 0; d < hd; d++) out[h * hd + d] += pr * v[s]![g * hd + d]!;
      }
    }
    return out;
  });
}

/**
 * transformers' apply_rotary_pos_emb on the first rotDim dims of each head (rotate_half: dim i pairs with
 * i + rotDim/2); cos and sin carry the attention factor `mscale`; the remaining dims pass through.
 */
export function rotateHalf(
  vec: Float64Array,
  nHeads: number,
  hd: number,
  rotDim: number,
  invFreq: readonly number[],
  mscale: number,
  pos: number,
): Float64Array {
  const out = Float64Array.from(vec);
  const half = rotDim / 2;
  for (let h = 0; h < nHeads; h++) {
    const b = h * hd;
    for (let i = 0; i < half; i++) {
      const angle = pos * invFreq[i]!;
      const cos = Math.cos(angle) * mscale;
      const sin = Math.sin(angle) * mscale;
      const x1 = vec[b + i]!;
      const x2 = vec[b + half + i]!;
      out[b + i] = x1 * cos - x2 * sin;
      out[b + half + i] = x2 * cos + x1 * sin;
    }
  }
  return out;
}

/** y = W x (+ b), W stored [rows, cols] row-major (PyTorch nn.Linear layout). */
export function linear(W: Float32Array, rows: number, cols: number, x: Float64Array, bias?: Float32Array): Float64Array {
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let acc = bias ? bias[r]! : 0;
    const base = r * cols;
    for (let j = 0; j < cols; j++) acc += W[base + j]! * x[j]!;
    y[r] = acc;
  }
  return y;
}

export function rmsNorm(x: Float64Array, weight: Float32Array, eps: number): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => v * inv * weight[i]!);
}

export function layerNorm(x: Float64Array, weight: Float32Array, bias: Float32Array, eps: number): Float64Array {
  let mean = 0;
  for (const v of x) mean += v;
  mean /= x.length;
  let variance = 0;
  for (const v of x) variance += (v - mean) * (v - mean);
  variance /= x.length;
  const inv = 1 / Math.sqrt(variance + eps);
  return x.map((v, i) => (v - mean) * inv * weight[i]! + bias[i]!);
}

export function softmax(xs: readonly number[]): number[] {
  const m = Math.max(...xs);
  const e = xs.map((v) => Math.exp(v - m));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

/** transformers' gelu_new (the tanh approximation of GELU). */
export function geluNew(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
}

function add(a: Float64Array, b: Float64Array): Float64Array {
  return a.map((v, i) => v + b[i]!);
}

function rowOf(m: Float32Array, row: number, cols: number, rows: number): Float64Array {
  if (!Number.isInteger(row) || row < 0 || row >= rows) throw new Error(`reference forward: token id ${row} is outside the vocabulary (${rows})`);
  return Float64Array.from(m.subarray(row * cols, (row + 1) * cols));
}

function toF32(x: Float64Array): Float32Array {
  return Float32Array.from(x);
}

/** A tensor lookup that checks the element count against the shape the config implies. */
function weightGetter(model: ReferenceModel) {
  return (name: string, shape: number[]): Float32Array => {
    const t = model.tensors.get(name);
    if (!t) throw new Error(`reference forward: tensor ${name} is missing`);
    const n = shape.reduce((a, b) => a * b, 1);
    if (t.length !== n) throw new Error(`reference forward: tensor ${name} has ${t.length} elements, expected [${shape}] = ${n}`);
    return t;
  };
}

function int(c: RawHfConfig, key: string): number {
  const v = c[key];
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new Error(`reference forward: config.${key} = ${JSON.stringify(v)} is not an integer`);
  return v;
}

function optInt(c: RawHfConfig, key: string): number | undefined {
  return c[key] === undefined || c[key] === null ? undefined : int(c, key);
}

function num(c: RawHfConfig, key: string): number {
  const v = c[key];
  if (typeof v !== 'number') throw new Error(`reference forward: config.${key} = ${JSON.stringify(v)} is not a number`);
  return v;
}
