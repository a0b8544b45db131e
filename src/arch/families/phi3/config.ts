// Phi3ForCausalLM's config.json: transformers' Phi3Config (defaults, "su"/"yarn" → LongRoPE, checks), parsed once,
// and the builder's view of it — where the family's variants (LongRoPE, partial rotary, sliding window, tied
// embeddings, GQA) are decided.
import { z } from 'zod';
import type { HfConfigJson } from '../../../checkpoint/hf-config.js';
import { ArchitectureError } from '../../../util/errors.js';
import {
  checkLongRopeFactors,
  configError,
  dropout,
  headGeometry,
  LongRopeSchema,
  longRopeOf,
  normaliseConfig,
  parseFields,
  posInt,
  tokenId,
  tokenIdOrList,
  tokenIds,
  type LongRopeScaling,
} from '../../config-schema.js';
import type { DecoderConfig, FamilyConfig } from '../../types.js';

export const PHI3_ARCHITECTURE = 'Phi3ForCausalLM';

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
  eos_token_id: tokenIdOrList.nullable().default(32000),
  pad_token_id: tokenId.nullable().default(32000),
  sliding_window: posInt.nullable().default(null),
  torch_dtype: z.string().optional(),
});

/** Phi-3, Phi-3.5, Phi-4-mini, Phi-4: config.json with transformers' defaults filled in. */
export type Phi3Config = Omit<z.output<typeof Phi3Schema>, 'num_key_value_heads' | 'head_dim' | 'rope_scaling'> &
  FamilyConfig & { rope_scaling: LongRopeScaling | null };

export function parsePhi3Config(config: HfConfigJson, architecture: string): Phi3Config {
  const { file } = config;
  const input = normaliseConfig(config);
  const scaling = input.rope_scaling as Record<string, unknown> | null | undefined;
  if (scaling) {
    // transformers' Phi3Config reads the older names "su" and "yarn" as LongRoPE, and refuses any other type.
    let ropeType = scaling.rope_type;
    if (ropeType === 'su' || ropeType === 'yarn') ropeType = 'longrope';
    if (ropeType !== 'longrope') {
      throw configError(
        file,
        'rope_scaling',
        `type ${JSON.stringify(ropeType)} is not supported by Phi3ForCausalLM (only "longrope")`,
        'Phi-3 checkpoints use LongRoPE ("longrope", formerly "su") or no rope_scaling at all',
      );
    }
    input.rope_scaling = { ...scaling, rope_type: ropeType };
  }
  const c = parseFields(Phi3Schema, input, file);
  const geometry = headGeometry(c, file);
  checkLongRopeFactors(c.rope_scaling, geometry, c.partial_rotary_factor, file);
  return { ...c, ...geometry, rope_scaling: c.rope_scaling, architecture, raw: config.raw };
}

export function phi3Decoder(c: Phi3Config): DecoderConfig {
  const act = c.hidden_act;
  if (act !== 'silu' && act !== 'swish') {
    throw new ArchitectureError('ARCH_ACTIVATION', `hidden_act '${act}' is not supported for ${c.architecture}`, {
      where: `${c.architecture} config.json`,
      fix: "Phi-3 models use 'silu'",
    });
  }
  const maxLength = c.max_position_embeddings;
  return {
    architecture: c.architecture,
    genaiType: 'phi3',
    hiddenSize: c.hidden_size,
    intermediateSize: c.intermediate_size,
    numLayers: c.num_hidden_layers,
    numHeads: c.num_attention_heads,
    kvHeads: c.num_key_value_heads,
    headSize: c.head_dim,
    vocabSize: c.vocab_size,
    contextLength: maxLength,
    normEps: c.rms_norm_eps,
    rotary: {
      rotaryDim: c.rotary_dim,
      theta: c.rope_theta,
      maxLength,
      // LongRoPE when rope_scaling says so (Phi-3-mini-128k, Phi-3.5-mini, Phi-4-mini): short and long caches.
      longRope: longRopeOf(c.rope_scaling, maxLength, c.original_max_position_embeddings),
    },
    // onnxruntime 1.30's GroupQueryAttention attends to local_window_size keys (the query's own included), which is
    // transformers' sliding_window: the tests check it against the reference forward past the window.
    slidingWindow: c.sliding_window ?? -1,
    tiedEmbeddings: c.tie_word_embeddings,
    tokens: tokenIds(c),
  };
}

export function phi3Variant(c: DecoderConfig): string[] {
  const v: string[] = [];
  if (c.rotary.longRope) v.push('longrope');
  if (c.rotary.rotaryDim !== c.headSize) v.push(`partial-rotary ${c.rotary.rotaryDim}/${c.headSize}`);
  if (c.kvHeads !== c.numHeads) v.push(`gqa ${c.numHeads}/${c.kvHeads}`);
  if (c.tiedEmbeddings) v.push('tied-embeddings');
  if (c.slidingWindow > 0) v.push(`sliding-window ${c.slidingWindow}`);
  return v;
}
