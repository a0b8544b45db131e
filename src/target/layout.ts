// Graph layouts: what a built graph depends on of where it runs (attention form, activation dtype). Stages before
// the package stage are keyed by the layout, not the target, so targets with equal layouts share one graph; and a
// target asked for a precision its execution provider cannot run is refused here, before any stage.
import { DataType } from '../onnx/dtype.js';
import { activationTypeProblem, type FloatTypeName } from './ops.js';
import type { ActivationDtype, GraphLayout, TargetSpec } from './types.js';

export type { GraphLayout } from './types.js';

/** Activation precision as recipes and the CLI name it. */
export type ActivationPrecision = 'fp32' | 'fp16';

export const PRECISION_DTYPE: Readonly<Record<ActivationPrecision, ActivationDtype>> = { fp32: DataType.FLOAT, fp16: DataType.FLOAT16 };

export function precisionOf(dtype: ActivationDtype): ActivationPrecision {
  return dtype === DataType.FLOAT16 ? 'fp16' : 'fp32';
}

/** The layout of `target`'s graphs at `precision` (default: the target's own). */
export function graphLayout(target: GraphLayout, precision?: ActivationPrecision): GraphLayout {
  return { graph: target.graph, activationDtype: precision ? PRECISION_DTYPE[precision] : target.activationDtype };
}

/** A short stable name of a layout, e.g. `gqa-packed-fp16` (stage keys and messages). */
export function layoutId(layout: GraphLayout): string {
  return `${layout.graph}-${precisionOf(layout.activationDtype)}`;
}

/**
 * com.microsoft ops every graph of a layout holds whatever the family or quantization: those the precision must have
 * kernels for. (Family ops — FastGelu, the norms — and quantized ones are checked on the package by ep-check.)
 */
const LAYOUT_OPS: Readonly<Record<GraphLayout['graph'], readonly string[]>> = {
  'gqa-packed': ['GroupQueryAttention'],
  dml: ['GroupQueryAttention', 'RotaryEmbedding'],
};

/**
 * Why `target`'s execution provider cannot run graphs of `layout`, or undefined when it can. cpu at fp16 can: the
 * CPU EP has float16 kernels for GroupQueryAttention, MatMulNBits, GatherBlockQuantized and the norms, and runs the
 * rest (FastGelu) in float between inserted Casts. cuda at fp32 cannot: GroupQueryAttention has no float32 CUDA kernel.
 */
export function layoutProblem(target: Pick<TargetSpec, 'id' | 'executionProvider'>, layout: GraphLayout): string | undefined {
  const activation: FloatTypeName = layout.activationDtype === DataType.FLOAT16 ? 'float16' : 'float';
  for (const op of LAYOUT_OPS[layout.graph]) {
    const problem = activationTypeProblem(target.executionProvider, 'com.microsoft', op, activation);
    if (problem) return `com.microsoft.${op}, which every ${layoutId(layout)} graph holds, ${problem}`;
  }
  return undefined;
}
