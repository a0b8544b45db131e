// One target's build plan: the target object, activation precision and graph layout, quantization (with the target's
// defaults filled in), gates and size budget — decided once from the recipe, so stages never re-read recipe fields.
// A precision the target's execution provider cannot run is refused here, before any stage.
import { defaultQuant, type Gates, type QuantOptions, type Recipe, type RecipeTarget } from './schema.js';
import { getTarget, type GraphLayout, type Target } from '../target/index.js';
import { graphLayout, layoutProblem, precisionOf, type ActivationPrecision } from '../target/layout.js';
import { UsageError } from '../util/errors.js';

export interface TargetPlan {
  target: Target;
  precision: ActivationPrecision;
  /** What the graph is built as (attention form, activation dtype): the convert and quantize stages' key, not the target. */
  layout: GraphLayout;
  /** Absent when the target ships unquantized. accuracy_level is always set. */
  quant?: QuantOptions & { accuracy_level: number };
  gates?: Gates;
  sizeBudgetMb?: number;
  /** One line for the task tree, e.g. `fp32, int4 rtn b32 acc4`. */
  describe: string;
}

export function targetPlan(t: RecipeTarget, recipe: Recipe): TargetPlan {
  const target = getTarget(t.target);
  const precision = t.precision ?? precisionOf(target.activationDtype);
  const layout = graphLayout(target, precision);
  const problem = layoutProblem(target, layout);
  if (problem) {
    const runs = (['fp32', 'fp16'] as const).filter((p) => !layoutProblem(target, graphLayout(target, p)));
    throw new UsageError(`target ${target.id} cannot be built at ${precision}: ${problem}`, {
      code: 'TARGET_PRECISION_UNSUPPORTED',
      fix: `build ${target.id} at ${runs.join(' or ')} (--precision, or the recipe's precision for this target)`,
    });
  }
  const q = t.quant ?? defaultQuant();
  // Quantized embeddings are GatherBlockQuantized: only for targets whose execution provider has it (not DirectML).
  const embeddings = target.supportsOp('com.microsoft', 'GatherBlockQuantized') ? q.embeddings : 'none';
  const quant = q.scheme === 'none' ? undefined : { ...q, embeddings, accuracy_level: q.accuracy_level ?? target.quant.accuracyLevel };
  const gates = t.gates ?? recipe.gates;
  const describe = quant
    ? `${precision}, ${quant.scheme} ${quant.algo} b${quant.block_size}${quant.asym ? ' asym' : ''} acc${quant.accuracy_level}`
    : `${precision}, not quantized`;
  return { target, precision, layout, quant, gates, sizeBudgetMb: t.size_budget_mb, describe };
}
