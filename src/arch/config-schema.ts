// Pieces the families' config.json schemas share: zod atoms, transformers' version normalisation, head geometry,
// LongRoPE, token ids, and one error format (CheckpointError CONFIG_INVALID naming the field and the file).
import { z } from 'zod';
import type { HfConfigJson } from '../checkpoint/hf-config.js';
import { longRopeMscale, type LongRope } from '../graph/rotary.js';
import { CheckpointError } from '../util/errors.js';

export const posInt = z.number().int().positive();
export const tokenId = z.number().int().nonnegative();
/** eos_token_id: one id or a non-empty list. */
export const tokenIdOrList = z.union([tokenId, z.array(tokenId).min(1)]);
export const dropout = z.number().min(0).max(1);

/** LongRoPE as transformers parses it ("su" and "yarn" are older names Phi-3 configs map to it). */
export interface LongRopeScaling {
  rope_type: 'longrope';
  short_factor: number[];
  long_factor: number[];
  /** Overrides the attention scale sqrt(1 + ln(max/original)/ln(original)) when present. */
  attention_factor?: number;
  factor?: number;
  original_max_position_embeddings?: number;
}

export const LongRopeSchema = z.object({
  rope_type: z.literal('longrope'),
  short_factor: z.array(z.number().positive()).min(1),
  long_factor: z.array(z.number().positive()).min(1),
  attention_factor: z.number().positive().optional(),
  factor: z.number().positive().optional(),
  original_max_position_embeddings: posInt.optional(),
});

/** rope_scaling of a family that does not model it (linear, dynamic, ...): kept for the family to accept or refuse. */
export interface GenericRopeScaling {
  rope_type: string;
  factor?: number;
  [key: string]: unknown;
}

export const GenericRopeSchema = z.looseObject({ rope_type: z.string().min(1), factor: z.number().positive().optional() });

/**
 * Brings transformers' version differences into one shape before a family's schema runs: `dtype` → torch_dtype;
 * rope_scaling.type → rope_type, and "default" (without factors) → no scaling; transformers 5 `rope_parameters`
 * (theta, partial factor and scaling in one object) → rope_theta / partial_rotary_factor / rope_scaling.
 */
export function normaliseConfig(config: HfConfigJson): Record<string, unknown> {
  const { raw, file } = config;
  const out: Record<string, unknown> = { ...raw };
  // transformers 5 writes `dtype` where 4.x wrote `torch_dtype`.
  if (out.torch_dtype === undefined && typeof raw.dtype === 'string') out.torch_dtype = raw.dtype;
  let scaling: unknown = raw.rope_scaling;
  const params = raw.rope_parameters;
  if (params !== undefined && params !== null) {
    if (typeof params !== 'object' || Array.isArray(params)) throw configError(file, 'rope_parameters', 'must be an object');
    const { rope_theta, partial_rotary_factor, ...rest } = params as Record<string, unknown>;
    if (rope_theta !== undefined && out.rope_theta === undefined) out.rope_theta = rope_theta;
    if (partial_rotary_factor !== undefined && out.partial_rotary_factor === undefined) out.partial_rotary_factor = partial_rotary_factor;
    if (scaling === undefined || scaling === null) scaling = Object.keys(rest).length > 0 ? rest : null;
  }
  if (scaling !== undefined && scaling !== null) {
    if (typeof scaling !== 'object' || Array.isArray(scaling)) throw configError(file, 'rope_scaling', 'must be an object or null');
    const { type, ...rest } = scaling as Record<string, unknown>;
    const ropeType = rest.rope_type ?? type;
    scaling = ropeType === 'default' && !('short_factor' in rest) && !('long_factor' in rest) ? null : { ...rest, rope_type: ropeType };
  }
  out.rope_scaling = scaling;
  return out;
}

/** Runs a family's zod schema; every bad field is listed in one CheckpointError. */
export function parseFields<S extends z.ZodType>(schema: S, input: unknown, file: string): z.output<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const issues = r.error.issues;
  const lines = issues.map((i) => `${formatPath(i.path)}: ${i.message}`);
  throw new CheckpointError('CONFIG_INVALID', `invalid config.json:\n  ${lines.join('\n  ')}`, {
    file,
    where: formatPath(issues[0].path),
    fix: 'fix the listed fields (compare with the config.json of the model on the Hugging Face hub)',
  });
}

/** A config.json field that is well-typed but impossible (heads that do not divide, a factor list of the wrong length). */
export function configError(file: string, where: string, message: string, fix?: string): CheckpointError {
  return new CheckpointError('CONFIG_INVALID', `${where} ${message}`, {
    file,
    where,
    fix: fix ?? 'compare with the config.json of the model on the Hugging Face hub',
  });
}

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('');
}

/** Head geometry as transformers derives it: kv heads default to the query heads, head_dim to hidden / heads. */
export interface HeadGeometry {
  num_key_value_heads: number;
  /** `head_dim` when config.json gives it, else hidden_size / num_attention_heads. */
  head_dim: number;
  /** Rotated dims per head: floor(head_dim × partial_rotary_factor). */
  rotary_dim: number;
}

export function headGeometry(
  c: {
    hidden_size: number;
    num_attention_heads: number;
    num_key_value_heads?: number | null;
    head_dim?: number | null;
    partial_rotary_factor: number;
  },
  file: string,
): HeadGeometry {
  const kv = c.num_key_value_heads ?? c.num_attention_heads;
  if (c.num_attention_heads % kv !== 0) {
    throw configError(
      file,
      'num_key_value_heads',
      `${c.num_attention_heads} attention heads are not a multiple of ${kv} key/value heads`,
      'grouped-query attention needs num_attention_heads to be a multiple of num_key_value_heads',
    );
  }
  let head_dim = c.head_dim ?? undefined;
  if (head_dim === undefined) {
    if (c.hidden_size % c.num_attention_heads !== 0) {
      throw configError(
        file,
        'hidden_size',
        `${c.hidden_size} is not divisible by num_attention_heads ${c.num_attention_heads}`,
        'set head_dim explicitly or fix hidden_size / num_attention_heads',
      );
    }
    head_dim = c.hidden_size / c.num_attention_heads;
  }
  const rotary_dim = Math.floor(head_dim * c.partial_rotary_factor);
  if (rotary_dim < 2) {
    throw configError(file, 'partial_rotary_factor', `rotates ${rotary_dim} dims of a ${head_dim}-dim head; at least 2 are needed`);
  }
  return { num_key_value_heads: kv, head_dim, rotary_dim };
}

/** LongRoPE's factor lists must have one entry per rotated frequency (rotary_dim / 2). */
export function checkLongRopeFactors(rs: LongRopeScaling | null, g: HeadGeometry, partialRotaryFactor: number, file: string): void {
  if (!rs) return;
  const want = Math.floor(g.rotary_dim / 2);
  for (const key of ['short_factor', 'long_factor'] as const) {
    if (rs[key].length !== want) {
      throw configError(
        file,
        `rope_scaling.${key}`,
        `has ${rs[key].length} entries; rotary_dim/2 = ${want} (head_dim ${g.head_dim} × partial_rotary_factor ${partialRotaryFactor} / 2)`,
        'the LongRoPE factor lists must have one entry per rotated frequency: fix the list or partial_rotary_factor',
      );
    }
  }
}

/**
 * The rotary caches' LongRoPE settings (undefined for plain RoPE). transformers applies one attention factor to
 * both caches: the configured one, else sqrt(1 + ln(max/original)/ln(original)).
 */
export function longRopeOf(scaling: LongRopeScaling | null, maxLength: number, originalLength: number): LongRope | undefined {
  if (!scaling) return undefined;
  const mscale = scaling.attention_factor ?? longRopeMscale(maxLength, originalLength);
  return {
    originalLength,
    shortFactor: [...scaling.short_factor],
    longFactor: [...scaling.long_factor],
    shortMscale: mscale,
    longMscale: mscale,
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
