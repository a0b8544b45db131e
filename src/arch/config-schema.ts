// Reading the config.json fields the builders share (token ids, rope scaling), with errors that name the field.
import { ArchitectureError } from '../util/errors.js';
import type { LongRope } from '../graph/rotary.js';
import { longRopeMscale } from '../graph/rotary.js';

/** The rope_scaling block of a Phi-3 style config.json (snake_case, as transformers writes it). */
export interface RopeScalingFields {
  readonly type?: string | null;
  readonly rope_type?: string | null;
  readonly short_factor?: readonly number[] | null;
  readonly long_factor?: readonly number[] | null;
  readonly short_mscale?: number | null;
  readonly long_mscale?: number | null;
  readonly attention_factor?: number | null;
  readonly original_max_position_embeddings?: number | null;
}

export function positiveInt(arch: string, field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw new ArchitectureError('ARCH_CONFIG', `config.${field} = ${JSON.stringify(v)} is not a positive integer`, {
      where: `${arch} config.json`,
      fix: `set ${field} in config.json`,
    });
  }
  return v;
}

/**
 * LongRoPE settings, or undefined for plain RoPE. Throws for scaling types the builder does not implement, so a
 * model is never built with the wrong positions.
 */
export function longRopeFrom(
  arch: string,
  scaling: RopeScalingFields | null | undefined,
  maxLength: number,
  originalLength: number | null | undefined,
  rotaryDim: number,
): LongRope | undefined {
  if (!scaling) return undefined;
  const type = scaling.rope_type ?? scaling.type ?? 'default';
  if (type === 'default') return undefined;
  if (type !== 'longrope' && type !== 'su') {
    throw new ArchitectureError('ARCH_ROPE_SCALING', `rope_scaling type '${type}' is not supported by the native builder`, {
      where: `${arch} config.json`,
      fix: "supported: none, 'longrope' ('su'); use the onnxruntime-genai builder for other scalings",
    });
  }
  const original = positiveInt(arch, 'original_max_position_embeddings', originalLength ?? scaling.original_max_position_embeddings);
  const half = rotaryDim / 2;
  const factors = (name: 'short_factor' | 'long_factor'): number[] => {
    const f = scaling[name];
    if (!f || f.length !== half || f.some((x) => typeof x !== 'number' || !(x > 0))) {
      throw new ArchitectureError('ARCH_ROPE_SCALING', `rope_scaling.${name} must hold ${half} positive numbers (rotary dim ${rotaryDim} / 2), it has ${f?.length ?? 0}`, {
        where: `${arch} config.json`,
      });
    }
    return [...f];
  };
  // transformers applies one attention factor to both caches: the configured one, else sqrt(1 + ln s / ln original).
  const computed = longRopeMscale(maxLength, original);
  const shared = scaling.attention_factor ?? undefined;
  const pick = (m: number | null | undefined) => shared ?? (m && m > 0 ? m : computed);
  return {
    originalLength: original,
    shortFactor: factors('short_factor'),
    longFactor: factors('long_factor'),
    shortMscale: pick(scaling.short_mscale),
    longMscale: pick(scaling.long_mscale),
  };
}

/** Token ids as config.json states them (generation_config.json may refine them later). */
export function tokenIds(c: { bos_token_id?: number | null; eos_token_id?: number | readonly number[] | null; pad_token_id?: number | null }) {
  return {
    bos: c.bos_token_id ?? undefined,
    eos: c.eos_token_id === null || c.eos_token_id === undefined ? undefined : typeof c.eos_token_id === 'number' ? c.eos_token_id : [...c.eos_token_id],
    pad: c.pad_token_id ?? undefined,
  };
}
