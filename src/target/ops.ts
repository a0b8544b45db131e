// Which com.microsoft contrib ops each execution provider runs (for the ops our graphs and passes emit).
import type { TargetId } from './types.js';

/** Contrib ops emitted by the builder and the quantization passes. */
export const CONTRIB_OPS = [
  'GroupQueryAttention',
  'RotaryEmbedding',
  'SkipSimplifiedLayerNormalization',
  'SkipLayerNormalization',
  'MatMulNBits',
  'GatherBlockQuantized',
  'FastGelu',
] as const;

const MS = 'com.microsoft';

/** Contrib ops each target runs; standard ONNX ops run everywhere except where listed in `unsupportedOnnx`. */
export const OP_SUPPORT: Record<TargetId, { contrib: ReadonlySet<string>; unsupportedOnnx: ReadonlySet<string> }> = {
  cpu: { contrib: new Set(CONTRIB_OPS), unsupportedOnnx: new Set() },
  mobile: { contrib: new Set(CONTRIB_OPS), unsupportedOnnx: new Set() },
  cuda: { contrib: new Set(CONTRIB_OPS), unsupportedOnnx: new Set() },
  // DirectML: no control flow in the captured graph, and no quantized gather.
  dml: {
    contrib: new Set(CONTRIB_OPS.filter((o) => o !== 'GatherBlockQuantized')),
    unsupportedOnnx: new Set(['If', 'Loop', 'Scan']),
  },
};

export function supportsOpOn(id: TargetId, domain: string, opType: string): boolean {
  const s = OP_SUPPORT[id];
  if (domain === '' || domain === 'ai.onnx') return !s.unsupportedOnnx.has(opType);
  if (domain === MS) return s.contrib.has(opType);
  return false;
}
