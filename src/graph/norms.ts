// Norm builders: RMSNorm / LayerNorm and their com.microsoft Skip* fusions that also return the new residual.
import { attr } from '../onnx/ir.js';
import { MS_DOMAIN, type GraphBuilder } from './builder.js';

export interface NormOutputs {
  /** The normalised hidden state. */
  output: string;
  /** input + skip (the residual stream after this point); absent for the last norm, which does not need it. */
  residual?: string;
}

/** `/model/layers.0/input_layernorm` style base path → node and output names as onnxruntime-genai writes them. */
function names(base: string, skip: boolean) {
  return { node: `${base}/${skip ? 'Skip' : ''}LayerNorm`, out0: `${base}/output_0`, out3: `${base}/output_3` };
}

/** x → SimplifiedLayerNormalization(weight) (RMSNorm, computed in fp32 inside the kernel: stash_type 1). */
export function rmsNorm(b: GraphBuilder, base: string, x: string, weight: string, epsilon: number): NormOutputs {
  const n = names(base, false);
  b.op('SimplifiedLayerNormalization', n.node, [x, weight], {
    attrs: [attr.int('axis', -1), attr.float('epsilon', epsilon), attr.int('stash_type', 1)],
    outputs: [n.out0],
  });
  return { output: n.out0 };
}

/**
 * ```
 *   x ──┐
 *       Add ──────────────▶ output_3 (residual = x + skip)
 * skip ─┘ └─ RMSNorm(w) ──▶ output_0
 * ```
 * One com.microsoft SkipSimplifiedLayerNormalization; `last` drops output_3 (the final norm has no later residual).
 */
export function skipRmsNorm(
  b: GraphBuilder,
  base: string,
  x: string,
  skip: string,
  weight: string,
  epsilon: number,
  last = false,
): NormOutputs {
  const n = names(base, true);
  b.op('SkipSimplifiedLayerNormalization', n.node, [x, skip, weight], {
    domain: MS_DOMAIN,
    attrs: [attr.float('epsilon', epsilon)],
    outputs: last ? [n.out0] : [n.out0, '', '', n.out3],
  });
  return last ? { output: n.out0 } : { output: n.out0, residual: n.out3 };
}

/** x → LayerNormalization(weight, bias) over the last axis, fp32 statistics. */
export function layerNorm(b: GraphBuilder, base: string, x: string, weight: string, bias: string, epsilon: number): NormOutputs {
  const n = names(base, false);
  b.op('LayerNormalization', n.node, [x, weight, bias], {
    attrs: [attr.int('axis', -1), attr.float('epsilon', epsilon), attr.int('stash_type', 1)],
    outputs: [n.out0],
  });
  return { output: n.out0 };
}

/**
 * ```
 *   x ──┐
 *       Add ──────────────────▶ output_3 (residual)
 * skip ─┘ └─ LayerNorm(w, b) ─▶ output_0
 * ```
 * One com.microsoft SkipLayerNormalization.
 */
export function skipLayerNorm(
  b: GraphBuilder,
  base: string,
  x: string,
  skip: string,
  weight: string,
  bias: string,
  epsilon: number,
  last = false,
): NormOutputs {
  const n = names(base, true);
  b.op('SkipLayerNormalization', n.node, [x, skip, weight, bias], {
    domain: MS_DOMAIN,
    attrs: [attr.float('epsilon', epsilon)],
    outputs: last ? [n.out0] : [n.out0, '', '', n.out3],
  });
  return last ? { output: n.out0 } : { output: n.out0, residual: n.out3 };
}
