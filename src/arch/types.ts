// The shape of an architecture family's spec, the builder's normalised decoder config and the build context.
import type { HfConfigJson } from '../checkpoint/hf-config.js';
import type { FloatDtype, GraphBuilder } from '../graph/builder.js';
import type { RotarySpec } from '../graph/rotary.js';
import type { WeightSource } from '../graph/weights.js';
import type { GraphLayout } from '../target/types.js';
import type { TensorRule, TensorTable } from './tensor-map.js';

/** onnxruntime-genai's model type for the family (`model.type` in genai_config.json). */
export type GenaiModelType = 'phi3' | 'phi';

/** What a builder needs from config.json, validated and defaulted once. */
export interface DecoderConfig {
  /** The HF architecture name (`architectures[0]`). */
  architecture: string;
  genaiType: GenaiModelType;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  kvHeads: number;
  headSize: number;
  vocabSize: number;
  /** max_position_embeddings: genai's context_length and the rotary cache length. */
  contextLength: number;
  normEps: number;
  rotary: RotarySpec;
  /** Keys before the query a token attends to (GroupQueryAttention local_window_size), -1 for none. */
  slidingWindow: number;
  tiedEmbeddings: boolean;
  tokens: { bos?: number; eos?: number | number[]; pad?: number };
}

export interface BuildContext {
  b: GraphBuilder;
  config: DecoderConfig;
  tensors: TensorTable;
  src: WeightSource;
  layout: GraphLayout;
  /** layout.activationDtype. */
  dtype: FloatDtype;
}

/** What every family's parsed config.json holds, whatever else its schema adds. */
export interface FamilyConfig {
  /** The HF architecture name (`architectures[0]`, or the family's name for a config that gives only model_type). */
  readonly architecture: string;
  /** config.json exactly as read (frozen), for fields the family's type does not model. */
  readonly raw: Readonly<Record<string, unknown>>;
  /** Key/value heads, defaulted to the query heads. */
  readonly num_key_value_heads: number;
  /** `head_dim`, or hidden_size / num_attention_heads. */
  readonly head_dim: number;
  /** With the family's default when config.json does not set it (transformers' PhiConfig 0.5, Phi3Config 1.0). */
  readonly partial_rotary_factor: number;
  /** Rotated dims per head: floor(head_dim × partial_rotary_factor). */
  readonly rotary_dim: number;
}

/**
 * One architecture family, owning everything about it: the config.json schema (parsed once, with transformers'
 * defaults), the builder's view of it (variants decided here: LongRoPE, tied embeddings, sliding window, partial
 * rotary), the tensor table (names, roles, shapes, how synth fills them) and the graph. Registered in
 * src/arch/index.ts; nothing outside the family's folder tests which family it is.
 */
export interface ArchSpec<C extends FamilyConfig = FamilyConfig> {
  /** HF `architectures[0]` values this spec builds; the first is the family's name. */
  readonly hfArchitectures: readonly string[];
  /** config.json `model_type` values that name this family when `architectures` is absent. */
  readonly modelTypes: readonly string[];
  readonly genaiType: GenaiModelType;
  /** HF name → role, with the shape the config implies and how a synthetic checkpoint fills the tensor. */
  readonly tensorMap: readonly TensorRule[];
  /**
   * The family's config.json schema: validates, fills transformers' defaults, derives head geometry. `architecture`
   * is the name the registry matched. Throws CheckpointError (CONFIG_INVALID) naming the field.
   */
  parseConfig(config: HfConfigJson, architecture: string): C;
  /** What the builder needs from the typed config; throws ArchitectureError for what it cannot honour. */
  decoder(config: C): DecoderConfig;
  /** Short labels of the variant a config selects (longrope, partial-rotary, tied-embeddings, ...), for reports. */
  variant(config: DecoderConfig): string[];
  /** Adds the whole decoder (inputs to logits) to ctx.b. */
  build(ctx: BuildContext): void;
}
