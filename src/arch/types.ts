// Types shared by the architecture specs: the normalised decoder config, the spec shape and the build context.
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

/** One architecture family: data (names, tensor table) plus the small functions that read config and build. */
export interface ArchSpec<C = unknown> {
  /** HF `architectures[0]` values this spec builds. */
  readonly hfArchitectures: readonly string[];
  readonly genaiType: GenaiModelType;
  readonly tensorMap: readonly TensorRule[];
  /** Validates and normalises the family's config; throws ArchitectureError for what the builder cannot honour. */
  parseConfig(config: C): DecoderConfig;
  /** Short labels of the variant a config selects (longrope, partial-rotary, tied-embeddings, ...), for reports. */
  variant(config: DecoderConfig): string[];
  /** Adds the whole decoder (inputs to logits) to ctx.b. */
  build(ctx: BuildContext): void;
}
