// Checkpoint config + tensors → an IR model whose initializers are lazy (nothing read yet), for a target and dtype.
import { GraphBuilder, type FloatDtype } from '../graph/builder.js';
import type { WeightSource } from '../graph/weights.js';
import type { Model } from '../onnx/ir.js';
import type { Target } from '../target/types.js';
import { getArchitecture } from './index.js';
import { TensorTable } from './tensor-map.js';
import type { ArchSpec, DecoderConfig } from './types.js';

export interface BuildModelInput {
  /** The checkpoint's config (config.json parsed at the checkpoint boundary); routed by its architecture name. */
  config: { readonly architecture?: string };
  /** Every tensor name in the checkpoint (each must map to a role or be knowingly ignored). */
  tensorNames: Iterable<string>;
  source: WeightSource;
  target: Target;
  dtype: FloatDtype;
}

export interface BuiltModel {
  model: Model;
  decoder: DecoderConfig;
  spec: ArchSpec<never>;
  /** Variant labels (longrope, tied-embeddings, ...). */
  variant: string[];
}

export function buildModel(input: BuildModelInput): BuiltModel {
  const spec = getArchitecture(input.config.architecture);
  // The registry matched the name, so the config is this family's config type.
  const decoder = spec.parseConfig(input.config as never);
  const tensors = TensorTable.build(decoder.architecture, spec.tensorMap, input.tensorNames, decoder.numLayers);
  const b = new GraphBuilder();
  spec.build({ b, config: decoder, tensors, src: input.source, target: input.target, dtype: input.dtype });
  b.graph.topologicalSort();
  return { model: b.model, decoder, spec, variant: spec.variant(decoder) };
}
