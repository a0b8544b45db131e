// One target's build plan: the target object, activation precision, quantization (with the target's defaults filled
// in), gates and size budget — decided once from the recipe, so stages never re-read recipe fields.
import { DataType } from '../onnx/dtype.js';
import { defaultQuant, type Gates, type QuantOptions, type Recipe, type RecipeTarget } from '../recipes/schema.js';
import { getTarget, type Target } from '../target/index.js';

export interface TargetPlan {
  target: Target;
  precision: 'fp32' | 'fp16';
  /** Absent when the target ships unquantized. accuracy_level is always set. */
  quant?: QuantOptions & { accuracy_level: number };
  gates?: Gates;
  sizeBudgetMb?: number;
  /** One line for the task tree, e.g. `fp32, int4 rtn b32 acc4`. */
  describe: string;
}

export function targetPlan(t: RecipeTarget, recipe: Recipe): TargetPlan {
  const target = getTarget(t.target);
  const precision = t.precision ?? (target.activationDtype === DataType.FLOAT16 ? 'fp16' : 'fp32');
  const q = t.quant ?? defaultQuant();
  // Quantized embeddings are GatherBlockQuantized: only for targets whose execution provider has it (not DirectML).
  const embeddings = target.supportsOp('com.microsoft', 'GatherBlockQuantized') ? q.embeddings : 'none';
  const quant = q.scheme === 'none' ? undefined : { ...q, embeddings, accuracy_level: q.accuracy_level ?? target.quant.accuracyLevel };
  const gates = t.gates ?? recipe.gates;
  const describe = quant
    ? `${precision}, ${quant.scheme} ${quant.algo} b${quant.block_size}${quant.asym ? ' asym' : ''} acc${quant.accuracy_level}`
    : `${precision}, not quantized`;
  return { target, precision, quant, gates, sizeBudgetMb: t.size_budget_mb, describe };
}
