// Phi3ForCausalLM: Phi-3/3.5 mini and medium (4k sliding window, 128k LongRoPE), Phi-4-mini (GQA, partial rotary,
// tied embeddings) and Phi-4. The family's spec: config schema, tensor table, variants and graph in one value.
import type { ArchSpec } from '../../types.js';
import { parsePhi3Config, PHI3_ARCHITECTURE, phi3Decoder, phi3Variant, type Phi3Config } from './config.js';
import { buildPhi3 } from './graph.js';
import { phi3Tensors } from './tensors.js';

export type { Phi3Config } from './config.js';

export const phi3Spec: ArchSpec<Phi3Config> = Object.freeze({
  hfArchitectures: [PHI3_ARCHITECTURE],
  modelTypes: ['phi3'],
  genaiType: 'phi3',
  tensorMap: phi3Tensors,
  parseConfig: parsePhi3Config,
  decoder: phi3Decoder,
  variant: phi3Variant,
  build: buildPhi3,
});
