// Checkpoint config + tensors → an IR model whose initializers are lazy (nothing read yet), for a graph layout.
import type { HfConfigJson } from '../checkpoint/hf-config.js';
import { GraphBuilder } from '../graph/builder.js';
import type { WeightSource } from '../graph/weights.js';
import type { Model } from '../onnx/ir.js';
import type { GraphLayout } from '../target/types.js';
import { checkAttentionShape } from './blocks.js';
import { parseArchConfig } from './index.js';
import { checkTensors } from './tensor-check.js';
import { TensorTable } from './tensor-map.js';
import type { ArchSpec, DecoderConfig } from './types.js';

export interface BuildModelInput {
  /** The checkpoint's config.json as read; its family (found by architecture name) parses it here, once. */
  config: HfConfigJson;
  /** Every tensor name in the checkpoint (each must map to a role or be knowingly ignored). */
  tensorNames: Iterable<string>;
  source: WeightSource;
  /** The file holding a tensor (a checkpoint shard), for error messages. */
  fileOf?: (name: string) => string | undefined;
  /** Attention form and activation (and float weight) dtype: all the graph depends on of where it runs. */
  layout: GraphLayout;
}

export interface BuiltModel {
  model: Model;
  decoder: DecoderConfig;
  spec: ArchSpec;
  /** Variant labels (longrope, tied-embeddings, ...). */
  variant: string[];
}

/**
 * Checks in order — the config alone (the family's schema and decoder view, attention), then the checkpoint against the config (every shape
 * and dtype, from the headers) — and only then builds, so a checkpoint that would give a wrong or unrunnable model
 * fails here, naming every problem, before anything is written.
 */
export function buildModel(input: BuildModelInput): BuiltModel {
  const { spec, config } = parseArchConfig(input.config);
  const decoder = spec.decoder(config);
  checkAttentionShape(decoder);
  const names = [...input.tensorNames];
  checkTensors({
    arch: decoder.architecture,
    rules: spec.tensorMap,
    config: decoder,
    names,
    source: input.source,
    fileOf: input.fileOf,
    raw: input.config.raw,
  });
  const tensors = TensorTable.build(decoder.architecture, spec.tensorMap, names, decoder.numLayers);
  const b = new GraphBuilder();
  spec.build({ b, config: decoder, tensors, src: input.source, layout: input.layout, dtype: input.layout.activationDtype });
  b.graph.topologicalSort();
  return { model: b.model, decoder, spec, variant: spec.variant(decoder) };
}
