// Tensor dimensions as the typed config implies them, for the families' tensor tables: each dimension knows its
// size and which config.json keys it comes from, so a mismatch can name the key to fix.
import type { DecoderConfig } from './types.js';

/** config.json keys a weight's dimensions come from. */
export type ShapeKey =
  | 'vocab_size'
  | 'hidden_size'
  | 'intermediate_size'
  | 'num_attention_heads'
  | 'num_key_value_heads'
  | 'head_dim'
  | 'partial_rotary_factor';

/** Each key as a message shows it, with its value: `vocab_size 1024`, `head_dim 8 (hidden_size / num_attention_heads)`. */
export type KeyLabels = Readonly<Record<ShapeKey, string>>;

/** One dimension of an expected shape. */
export interface Dim {
  size(c: DecoderConfig): number;
  /** The keys to fix when this dimension disagrees with the checkpoint. */
  readonly keys: readonly ShapeKey[];
  /** True when the size is one key's value as is (so the checkpoint's size is what that key should say). */
  readonly direct: boolean;
  /** How the config gives the size, with the keys' values: `2 × intermediate_size 64 = 128`. */
  explain(c: DecoderConfig, labels: KeyLabels): string;
}

/** A dimension that is one config key's value. */
export function direct(key: ShapeKey, size: (c: DecoderConfig) => number): Dim {
  return { size, keys: [key], direct: true, explain: (_c, l) => l[key] };
}

/** A dimension computed from config keys; `formula` shows how, with the keys' values. */
export function derived(keys: readonly ShapeKey[], size: (c: DecoderConfig) => number, formula: (l: KeyLabels) => string): Dim {
  return { size, keys, direct: false, explain: (c, l) => `${formula(l)} = ${size(c)}` };
}

/** The dimensions decoder weights share ([out, in] as transformers stores linear weights); families add packed ones. */
export const DIMS = Object.freeze({
  vocab: direct('vocab_size', (c) => c.vocabSize),
  hidden: direct('hidden_size', (c) => c.hiddenSize),
  intermediate: direct('intermediate_size', (c) => c.intermediateSize),
  /** All query heads. */
  q: derived(['num_attention_heads', 'head_dim'], (c) => c.numHeads * c.headSize, (l) => `${l.num_attention_heads} × ${l.head_dim}`),
  /** All key (or value) heads. */
  kv: derived(['num_key_value_heads', 'head_dim'], (c) => c.kvHeads * c.headSize, (l) => `${l.num_key_value_heads} × ${l.head_dim}`),
  /** Rotary inverse frequencies: one per rotated pair. */
  rotaryHalf: derived(['head_dim', 'partial_rotary_factor'], (c) => c.rotary.rotaryDim / 2, (l) => `${l.head_dim} × ${l.partial_rotary_factor} / 2`),
});

/**
 * How each key reads in a message. `raw` is config.json as read: a key it does not set shows as a default, and
 * head_dim / num_key_value_heads / partial_rotary_factor that the parser derived say where they came from.
 */
export function keyLabels(c: DecoderConfig, raw?: Readonly<Record<string, unknown>>): KeyLabels {
  const given = (key: string): unknown => {
    if (raw === undefined) return undefined;
    const v = raw[key];
    if (v !== undefined && v !== null) return v;
    // transformers 5 moves partial_rotary_factor into rope_parameters.
    const params = raw.rope_parameters;
    return typeof params === 'object' && params !== null ? (params as Record<string, unknown>)[key] : undefined;
  };
  const label = (key: ShapeKey, value: number, otherwise: string): string =>
    raw === undefined || given(key) === value ? `${key} ${value}` : `${key} ${value} (${otherwise})`;
  const factor = c.rotary.rotaryDim / c.headSize;
  const factorGiven = given('partial_rotary_factor');
  return {
    vocab_size: label('vocab_size', c.vocabSize, 'not set in config.json: the default'),
    hidden_size: label('hidden_size', c.hiddenSize, 'not set in config.json: the default'),
    intermediate_size: label('intermediate_size', c.intermediateSize, 'not set in config.json: the default'),
    num_attention_heads: label('num_attention_heads', c.numHeads, 'not set in config.json: the default'),
    num_key_value_heads: label('num_key_value_heads', c.kvHeads, 'not set: = num_attention_heads'),
    head_dim: label('head_dim', c.headSize, 'hidden_size / num_attention_heads'),
    partial_rotary_factor:
      typeof factorGiven === 'number'
        ? `partial_rotary_factor ${factorGiven}`
        : `partial_rotary_factor ${Number(factor.toFixed(4))}${raw === undefined ? '' : ' (not set in config.json: the default)'}`,
  };
}
