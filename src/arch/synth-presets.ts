// The `tiny` scale of a synthetic checkpoint: a real Phi config.json shrunk to 2 small layers (0.1–1.3 M parameters)
// while keeping its keys and its features (GQA ratio, partial rotary, LongRoPE factors, sliding window, tying).
import { parseHfConfig } from '../checkpoint/hf-config.js';
import { ArchitectureError } from '../util/errors.js';
import { parseArchConfig } from './index.js';

/** A config.json as parsed JSON, with exactly the keys transformers wrote. */
export type RawConfig = Record<string, unknown>;

/** Sizes every tiny checkpoint shares. */
export const TINY = {
  layers: 2,
  vocab: 512,
  intermediate: 128,
  /**
   * Head sizes are multiples of this, and so are rotary dims: onnxruntime's GroupQueryAttention needs head_size and
   * rotary_dim multiples of 16 (src/arch/blocks.ts rotaryPlacement), as every real Phi has; a tiny model must build too.
   */
  headDimMultiple: 16,
  /** Context of tiny models without LongRoPE. */
  maxPositions: 64,
  /**
   * LongRoPE models: a short original context and a 4× longer maximum, so a test crosses the short/long switch
   * with a prompt of a few dozen tokens.
   */
  longRopeOriginal: 32,
  longRopeMax: 128,
} as const;

/**
 * Shrinks a real config to the tiny scale. Every key of the real config is kept (and no key added); sizes shrink,
 * token ids are remapped into the tiny vocabulary, LongRoPE factor lists are resampled to the new rotary_dim/2.
 */
export function tinyConfig(real: RawConfig, preset: string): RawConfig {
  // The family's schema gives what config.json leaves to defaults (partial_rotary_factor: 0.5 for PhiConfig, 1.0 for
  // Phi3Config); the shrinking itself edits the real keys and adds none.
  const { config: parsed } = parseArchConfig(parseHfConfig(real, `preset ${preset}`));
  const out: RawConfig = structuredClone(real);
  const set = (key: string, value: unknown) => {
    if (key in real) out[key] = value;
  };

  // Heads: keep the query/KV ratio (24/8 → 6/2), with at least two KV heads when heads are grouped so a wrong
  // head-to-group mapping changes the output. (The schema checked that the ratio is whole.)
  const group = int(real, 'num_attention_heads', preset) / parsed.num_key_value_heads;
  const tinyKv = group === 1 ? 4 : 2;
  const tinyHeads = tinyKv * group;

  // Head size: the smallest multiple of 16 whose rotary part (head_dim × partial_rotary_factor) is exactly a
  // multiple of 16, so the rotary split is the real model's and the graph builder accepts it (0.75 → 64/48,
  // 0.4 → 80/32, 0.5 → 32/16, 1.0 → 16/16).
  const prf = parsed.partial_rotary_factor;
  const headDim = tinyHeadDim(prf, preset);
  const hidden = tinyHeads * headDim;

  out.hidden_size = hidden;
  out.num_attention_heads = tinyHeads;
  // null (phi-1) means "as many as the query heads" and stays null.
  if (typeof real.num_key_value_heads === 'number') out.num_key_value_heads = tinyKv;
  set('head_dim', headDim);
  out.num_hidden_layers = TINY.layers;
  out.intermediate_size = TINY.intermediate;
  out.vocab_size = TINY.vocab;

  // Context: LongRoPE models get original 32 / max 128; others a max of 64 with the real original/max ratio.
  const realMax = int(real, 'max_position_embeddings', preset);
  const scaling = (real.rope_scaling ?? null) as RawConfig | null;
  const longRope = scaling !== null && Array.isArray(scaling.long_factor);
  const tinyMax = longRope ? TINY.longRopeMax : TINY.maxPositions;
  out.max_position_embeddings = tinyMax;
  if (typeof real.original_max_position_embeddings === 'number') {
    const orig = real.original_max_position_embeddings;
    out.original_max_position_embeddings = longRope
      ? TINY.longRopeOriginal
      : orig === realMax
        ? tinyMax
        : Math.max(1, Math.round((orig * tinyMax) / realMax));
  }
  if (typeof real.sliding_window === 'number') out.sliding_window = tinyWindow(real.sliding_window, realMax, tinyMax);

  if (scaling !== null) {
    const rotHalf = Math.trunc(headDim * prf + 1e-9) / 2;
    const s: RawConfig = { ...scaling };
    for (const key of ['long_factor', 'short_factor']) {
      if (Array.isArray(scaling[key])) s[key] = resampleFactors(scaling[key] as number[], rotHalf);
    }
    if (typeof scaling.original_max_position_embeddings === 'number') s.original_max_position_embeddings = out.original_max_position_embeddings ?? TINY.longRopeOriginal;
    out.rope_scaling = s;
  }

  // Token ids: small ids (BOS 1, EOS 2) stay; ids near the top of the real vocabulary (special tokens added after
  // the base vocabulary) keep their distance from the top, so they stay distinct and inside the tiny vocabulary.
  const realVocab = int(real, 'vocab_size', preset);
  for (const key of ['bos_token_id', 'eos_token_id', 'pad_token_id']) {
    if (key in real) out[key] = mapTokenIds(real[key], realVocab);
  }

  // The tiny checkpoint is written in fp32; say so where the config records the dtype.
  set('torch_dtype', 'float32');
  set('dtype', 'float32');
  return out;
}

/** Maps a token id (or list of ids, or null) of the real vocabulary into the tiny one. */
export function mapTokenIds(value: unknown, realVocab: number, tinyVocab: number = TINY.vocab): unknown {
  if (Array.isArray(value)) return value.map((v) => mapTokenIds(v, realVocab, tinyVocab));
  if (typeof value !== 'number') return value;
  const half = tinyVocab / 2;
  if (value < half) return value;
  return tinyVocab - 1 - ((realVocab - 1 - value) % half);
}

/** Linear resampling of a factor list to `n` entries; keeps the first and last value and monotonicity. */
export function resampleFactors(values: readonly number[], n: number): number[] {
  if (values.length === 0) throw new RangeError('resampleFactors: empty factor list');
  if (values.length === n) return [...values];
  return Array.from({ length: n }, (_, i) => {
    if (n === 1 || values.length === 1) return values[0]!;
    const pos = (i * (values.length - 1)) / (n - 1);
    const lo = Math.floor(pos);
    const hi = Math.min(lo + 1, values.length - 1);
    const frac = pos - lo;
    return values[lo]! + (values[hi]! - values[lo]!) * frac;
  });
}

/**
 * A sliding window scaled with the context: a window shorter than the context stays shorter (2047 of 4096 →
 * 31 of 64, still one less than half), one at or past it stays at or past it.
 */
export function tinyWindow(window: number, realMax: number, tinyMax: number): number {
  const scaled = (window * tinyMax) / realMax;
  return Math.max(1, window < realMax ? Math.floor(scaled) : Math.round(scaled));
}

function tinyHeadDim(prf: number, preset: string): number {
  const m = TINY.headDimMultiple;
  for (let hd = m; hd <= 512; hd += m) {
    const rot = hd * prf;
    const whole = Math.round(rot);
    if (Math.abs(rot - whole) < 1e-9 && whole > 0 && whole % m === 0) return hd;
  }
  throw badConfig(preset, `no head size up to 512 gives a rotary dimension that is a multiple of ${m} for partial_rotary_factor ${prf}`);
}

function int(c: RawConfig, key: string, preset: string): number {
  const v = c[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw badConfig(preset, `${key} = ${JSON.stringify(v)} is not a positive integer`);
  return v;
}

function badConfig(preset: string, what: string): ArchitectureError {
  return new ArchitectureError('SYNTH_CONFIG', what, { where: `preset ${preset}`, fix: 'fix the preset config in src/checkpoint/known-configs.ts' });
}
