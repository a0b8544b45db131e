// Linear layer builder: MatMul against an [in, out] weight, then an optional bias Add.
import type { GraphBuilder } from './builder.js';

export interface LinearOptions {
  /** Bias initializer name; adds `<base>/Add`. */
  bias?: string;
  /** Name of the last op's output instead of `<node>/output_0` (e.g. `logits`). */
  output?: string;
}

/**
 * ```
 * x ─ MatMul(W[in,out]) ─ [Add(bias)] ─▶
 * ```
 * `base` is the layer path, e.g. `/model/layers.0/attn/o_proj`; nodes are `<base>/MatMul` and `<base>/Add`.
 * Returns the output value name.
 */
export function linear(b: GraphBuilder, base: string, x: string, weight: string, opts: LinearOptions = {}): string {
  const mm = b.op1('MatMul', `${base}/MatMul`, [x, weight], opts.bias ? {} : { output: opts.output });
  if (!opts.bias) return mm;
  return b.op1('Add', `${base}/Add`, [mm, opts.bias], { output: opts.output });
}

/** The initializer name onnxruntime-genai gives a node's weight: `/model/layers.0/attn/o_proj/MatMul` → `model.layers.0.attn.o_proj.MatMul.weight`. */
export function weightName(nodePath: string, suffix: 'weight' | 'bias'): string {
  return `${nodePath.slice(1).replaceAll('/', '.')}.${suffix}`;
}
