// PhiForCausalLM: Phi-1, Phi-1.5, Phi-2. The family's spec: config schema, tensor table, variants and graph in one value.
import type { ArchSpec } from '../../types.js';
import { parsePhiConfig, PHI_ARCHITECTURE, phiDecoder, phiVariant, type PhiConfig } from './config.js';
import { buildPhi } from './graph.js';
import { phiTensors } from './tensors.js';

export type { PhiConfig } from './config.js';

export const phiSpec: ArchSpec<PhiConfig> = Object.freeze({
  hfArchitectures: [PHI_ARCHITECTURE],
  modelTypes: ['phi'],
  genaiType: 'phi',
  tensorMap: phiTensors,
  parseConfig: parsePhiConfig,
  decoder: phiDecoder,
  variant: phiVariant,
  build: buildPhi,
});
