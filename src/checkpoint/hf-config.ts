// config.json of a Hugging Face checkpoint, parsed once into typed objects (zod 4) with the defaults and checks
// transformers applies (Phi3Config, PhiConfig); any other architecture parses as GenericConfig for the builder to refuse.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { CheckpointError } from '../util/errors.js';

export const CONFIG_FILE = 'config.json';

const posInt = z.number().int().positive();
const tokenId = z.number().int().nonnegative();
const dropout = z.number().min(0).max(1);

/** LongRoPE ("su" and "yarn" are older names transformers maps to it for Phi-3). */
export interface LongRopeScaling {
  rope_type: 'longrope';
  short_factor: number[];
  long_factor: number[];
  /** Overrides the attention scale sqrt(1 + ln(max/original)/ln(original)) when present. */
  attention_factor?: number;
  factor?: number;
  original_max_position_embeddings?: number;
}

const LongRopeSchema = z.object({
  rope_type: z.literal('longrope'),
  short_factor: z.array(z.number().positive()).min(1),
  long_factor: z.array(z.number().positive()).min(1),
  attention_factor: z.number().positive().optional(),
  factor: z.number().positive().optional(),
  original_max_position_embeddings: posInt.optional(),
});

/** rope_scaling of other families (linear, dynamic, ...): kept for the builder to accept or refuse. */
export interface GenericRopeScaling {
  rope_type: string;
  factor?: number;
  [key: string]: unknown;
}

const GenericRopeSchema = z.looseObject({ rope_type: z.string().min(1), factor: z.number().positive().optional() });

const Phi3Schema = z.object({
  vocab_size: posInt.default(32064),
  hidden_size: posInt.default(3072),
  intermediate_size: posInt.default(8192),
  num_hidden_layers: posInt.default(32),
  num_attention_heads: posInt.default(32),
  num_key_value_heads: posInt.nullish(),
  head_dim: posInt.nullish(),
  resid_pdrop: dropout.default(0),
  embd_pdrop: dropout.default(0),
  attention_dropout: dropout.default(0),
  hidden_act: z.string().min(1).default('silu'),
  max_position_embeddings: posInt.default(4096),
  original_max_position_embeddings: posInt.default(4096),
  initializer_range: z.number().nonnegative().default(0.02),
  rms_norm_eps: z.number().positive().default(1e-5),
  use_cache: z.boolean().default(true),
  tie_word_embeddings: z.boolean().default(false),
  rope_theta: z.number().positive().default(10000),
  rope_scaling: LongRopeSchema.nullable().default(null),
  partial_rotary_factor: z.number().gt(0).lte(1).default(1),
  bos_token_id: tokenId.nullable().default(1),
  eos_token_id: z.union([tokenId, z.array(tokenId).min(1)]).nullable().default(32000),
  pad_token_id: tokenId.nullable().default(32000),
  sliding_window: posInt.nullable().default(null),
  torch_dtype: z.string().optional(),
});

const PhiSchema = z.object({
  vocab_size: posInt.default(51200),
  hidden_size: posInt.default(2048),
  intermediate_size: posInt.default(8192),
  num_hidden_layers: posInt.default(24),
  num_attention_heads: posInt.default(32),
  num_key_value_heads: posInt.nullish(),
  resid_pdrop: dropout.default(0),
  embd_pdrop: dropout.default(0),
  attention_dropout: dropout.default(0),
  hidden_act: z.string().min(1).default('gelu_new'),
  max_position_embeddings: posInt.default(2048),
  initializer_range: z.number().nonnegative().default(0.02),
  layer_norm_eps: z.number().positive().default(1e-5),
  use_cache: z.boolean().default(true),
  tie_word_embeddings: z.boolean().default(false),
  rope_theta: z.number().positive().default(10000),
  rope_scaling: GenericRopeSchema.nullable().default(null),
  partial_rotary_factor: z.number().gt(0).lte(1).default(0.5),
  qk_layernorm: z.boolean().default(false),
  bos_token_id: tokenId.nullable().default(1),
  eos_token_id: z.union([tokenId, z.array(tokenId).min(1)]).nullable().default(2),
  pad_token_id: tokenId.nullable().default(null),
  torch_dtype: z.string().optional(),
});

interface CommonDerived {
  /** The HF architecture name the config was classified by (`architectures[0]`, or implied by model_type). */
  architecture: string;
  /** config.json exactly as read (frozen), for fields this type does not model. */
  raw: Readonly<Record<string, unknown>>;
  num_key_value_heads: number;
  /** `head_dim` when config.json gives it, else hidden_size / num_attention_heads. */
  head_dim: number;
  /** Rotated dims per head: floor(head_dim × partial_rotary_factor). */
  rotary_dim: number;
}

/** Phi-3, Phi-3.5, Phi-4-mini, Phi-4 (Phi3ForCausalLM). */
export type Phi3Config = Omit<z.output<typeof Phi3Schema>, 'num_key_value_heads' | 'head_dim' | 'rope_scaling'> &
  CommonDerived & { arch: 'phi3'; rope_scaling: LongRopeScaling | null };

/** Phi-1, Phi-1.5, Phi-2 (PhiForCausalLM). */
export type PhiConfig = Omit<z.output<typeof PhiSchema>, 'num_key_value_heads' | 'rope_scaling'> &
  CommonDerived & { arch: 'phi'; rope_scaling: GenericRopeScaling | null };

/** Any other architecture: only what identifies it; the builder reports it as unsupported. */
export interface GenericConfig {
  arch: 'generic';
  architecture: string | undefined;
  model_type: string | undefined;
  raw: Readonly<Record<string, unknown>>;
}

export type HfConfig = Phi3Config | PhiConfig | GenericConfig;

/** HF architecture names parsed as Phi3Config / PhiConfig. */
export const PHI3_ARCHITECTURES = ['Phi3ForCausalLM'] as const;
export const PHI_ARCHITECTURES = ['PhiForCausalLM'] as const;

/**
 * Validates a parsed config.json and fills in transformers' defaults. `file` names the file in error messages.
 * Dispatch: architectures[0] (Phi3ForCausalLM → phi3, PhiForCausalLM → phi), else model_type, else generic.
 */
export function parseHfConfig(json: unknown, file: string): HfConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new CheckpointError('CONFIG_INVALID', 'config.json is not a JSON object', {
      file,
      fix: 'a Hugging Face config.json is an object like {"architectures": ["Phi3ForCausalLM"], ...}',
    });
  }
  const raw = json as Record<string, unknown>;
  const archs = raw.architectures;
  if (archs !== undefined && archs !== null && (!Array.isArray(archs) || !archs.every((a) => typeof a === 'string'))) {
    throw new CheckpointError('CONFIG_INVALID', `architectures must be a list of names, got ${JSON.stringify(archs)}`, {
      file,
      where: 'architectures',
      fix: 'set "architectures": ["Phi3ForCausalLM"] (or the model class it was saved from)',
    });
  }
  const modelType = typeof raw.model_type === 'string' ? raw.model_type : undefined;
  const first = Array.isArray(archs) && archs.length > 0 ? (archs[0] as string) : undefined;
  const frozen = deepFreeze(structuredClone(raw));
  const architecture =
    first ?? (modelType === 'phi3' ? PHI3_ARCHITECTURES[0] : modelType === 'phi' ? PHI_ARCHITECTURES[0] : undefined);
  if (architecture === PHI3_ARCHITECTURES[0]) return parsePhi3(raw, frozen, architecture, file);
  if (architecture === PHI_ARCHITECTURES[0]) return parsePhi(raw, frozen, architecture, file);
  return { arch: 'generic', architecture, model_type: modelType, raw: frozen };
}

function parsePhi3(raw: Record<string, unknown>, frozen: Readonly<Record<string, unknown>>, architecture: string, file: string): Phi3Config {
  const input = normalise(raw, file, true);
  const c = check(Phi3Schema, input, file);
  const derived = deriveHeads(c, file);
  const rotary_dim = Math.floor(derived.head_dim * c.partial_rotary_factor);
  if (rotary_dim < 2) {
    throw invalid(file, 'partial_rotary_factor', `rotates ${rotary_dim} dims of a ${derived.head_dim}-dim head; at least 2 are needed`);
  }
  const rs = c.rope_scaling;
  if (rs) {
    const want = Math.floor(rotary_dim / 2);
    for (const key of ['short_factor', 'long_factor'] as const) {
      if (rs[key].length !== want) {
        throw invalid(
          file,
          `rope_scaling.${key}`,
          `has ${rs[key].length} entries; rotary_dim/2 = ${want} (head_dim ${derived.head_dim} × partial_rotary_factor ${c.partial_rotary_factor} / 2)`,
          'the LongRoPE factor lists must have one entry per rotated frequency: fix the list or partial_rotary_factor',
        );
      }
    }
  }
  return { ...c, ...derived, rotary_dim, rope_scaling: rs, arch: 'phi3', architecture, raw: frozen };
}

function parsePhi(raw: Record<string, unknown>, frozen: Readonly<Record<string, unknown>>, architecture: string, file: string): PhiConfig {
  const input = normalise(raw, file, false);
  const c = check(PhiSchema, input, file);
  const derived = deriveHeads({ ...c, head_dim: undefined }, file);
  const rotary_dim = Math.floor(derived.head_dim * c.partial_rotary_factor);
  if (rotary_dim < 2) {
    throw invalid(file, 'partial_rotary_factor', `rotates ${rotary_dim} dims of a ${derived.head_dim}-dim head; at least 2 are needed`);
  }
  return { ...c, ...derived, rotary_dim, arch: 'phi', architecture, raw: frozen, rope_scaling: c.rope_scaling as GenericRopeScaling | null };
}

function deriveHeads(
  c: { hidden_size: number; num_attention_heads: number; num_key_value_heads?: number | null; head_dim?: number | null },
  file: string,
): { num_key_value_heads: number; head_dim: number } {
  const kv = c.num_key_value_heads ?? c.num_attention_heads;
  if (c.num_attention_heads % kv !== 0) {
    throw invalid(
      file,
      'num_key_value_heads',
      `${c.num_attention_heads} attention heads are not a multiple of ${kv} key/value heads`,
      'grouped-query attention needs num_attention_heads to be a multiple of num_key_value_heads',
    );
  }
  let head_dim = c.head_dim ?? undefined;
  if (head_dim === undefined) {
    if (c.hidden_size % c.num_attention_heads !== 0) {
      throw invalid(
        file,
        'hidden_size',
        `${c.hidden_size} is not divisible by num_attention_heads ${c.num_attention_heads}`,
        'set head_dim explicitly or fix hidden_size / num_attention_heads',
      );
    }
    head_dim = c.hidden_size / c.num_attention_heads;
  }
  return { num_key_value_heads: kv, head_dim };
}

/**
 * Brings version differences into one shape before validation: `dtype` → torch_dtype; rope_scaling.type →
 * rope_type; for Phi-3 "su"/"yarn" → "longrope" (transformers' backward compatibility) and "default" → no scaling;
 * transformers 5 `rope_parameters` (theta, partial factor and scaling in one object) → rope_theta /
 * partial_rotary_factor / rope_scaling.
 */
function normalise(raw: Record<string, unknown>, file: string, phi3: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = { ...raw };
  // transformers 5 writes `dtype` where 4.x wrote `torch_dtype`.
  if (out.torch_dtype === undefined && typeof raw.dtype === 'string') out.torch_dtype = raw.dtype;
  let scaling: unknown = raw.rope_scaling;
  const params = raw.rope_parameters;
  if (params !== undefined && params !== null) {
    if (typeof params !== 'object' || Array.isArray(params)) throw invalid(file, 'rope_parameters', 'must be an object');
    const { rope_theta, partial_rotary_factor, ...rest } = params as Record<string, unknown>;
    if (rope_theta !== undefined && out.rope_theta === undefined) out.rope_theta = rope_theta;
    if (partial_rotary_factor !== undefined && out.partial_rotary_factor === undefined) out.partial_rotary_factor = partial_rotary_factor;
    if (scaling === undefined || scaling === null) scaling = Object.keys(rest).length > 0 ? rest : null;
  }
  if (scaling !== undefined && scaling !== null) {
    if (typeof scaling !== 'object' || Array.isArray(scaling)) throw invalid(file, 'rope_scaling', 'must be an object or null');
    const { type, ...rest } = scaling as Record<string, unknown>;
    let ropeType = rest.rope_type ?? type;
    if (phi3 && (ropeType === 'su' || ropeType === 'yarn')) ropeType = 'longrope';
    if (ropeType === 'default' && !('short_factor' in rest) && !('long_factor' in rest)) {
      scaling = null;
    } else {
      if (phi3 && ropeType !== 'longrope') {
        throw invalid(
          file,
          'rope_scaling',
          `type ${JSON.stringify(ropeType)} is not supported by Phi3ForCausalLM (only "longrope")`,
          'Phi-3 checkpoints use LongRoPE ("longrope", formerly "su") or no rope_scaling at all',
        );
      }
      scaling = { ...rest, rope_type: ropeType };
    }
  }
  out.rope_scaling = scaling;
  return out;
}

function check<S extends z.ZodType>(schema: S, input: unknown, file: string): z.output<S> {
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

function invalid(file: string, where: string, message: string, fix?: string): CheckpointError {
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

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v as object)) deepFreeze(x);
  }
  return v;
}

/** Parses config.json text (a JSON syntax error is a CheckpointError naming the file). */
export function parseHfConfigText(text: string, file: string): HfConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError('CONFIG_JSON', `not valid JSON (${(e as Error).message})`, {
      file,
      fix: 'fix the syntax error, or download config.json again',
    });
  }
  return parseHfConfig(json, file);
}

/** Reads and parses `<dir>/config.json`. */
export async function readHfConfig(dir: string): Promise<HfConfig> {
  const file = join(dir, CONFIG_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CheckpointError(
      code === 'ENOENT' ? 'CONFIG_MISSING' : 'CONFIG_UNREADABLE',
      code === 'ENOENT' ? 'no config.json in the checkpoint folder' : `cannot read config.json (${code ?? (e as Error).message})`,
      { file, fix: 'a Hugging Face checkpoint folder holds config.json next to its *.safetensors files', cause: e },
    );
  }
  return parseHfConfigText(text, file);
}
