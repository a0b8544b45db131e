// What `compare` reports (its --json document and report.json): per scheme size, bits per weight, quality against
// the shared reference, speed, build time and gate verdicts, or why that scheme failed.
import type { GateVerdict } from '../eval/gates.js';
import type { Gates, TargetId } from '../recipes/schema.js';
import type { ValidationMetrics } from '../eval/metrics.js';
import type { SpeedResult } from './speed.js';

export interface CompareStage {
  stage: string;
  /** Reused from the cache in this comparison. */
  cached: boolean;
  /** How long the stage took when it actually ran (from its stage.json), cached or not. */
  seconds: number;
  /** The stage's folder in the cache: variants sharing a stage show the same folder. */
  dir: string;
}

export interface CompareRow {
  scheme: string;
  ok: boolean;
  /** Activation precision of the variant. */
  precision?: string;
  /** The variant's quantization as built ({scheme: 'none'} for the baseline). */
  quantization: unknown;
  /** Published package folder. */
  package?: string;
  /** All files of the package. */
  size_bytes?: number;
  /** model.onnx + model.onnx.data. */
  model_bytes?: number;
  weights?: number;
  bits_per_weight?: number;
  metrics?: ValidationMetrics;
  speed?: SpeedResult;
  /** Why speed was not measured, when the model built but did not run in onnxruntime-node. */
  speed_error?: string;
  /** Sum of the stages' run times: what building this variant from nothing costs. */
  build_seconds?: number;
  stages?: CompareStage[];
  /** The recipe's gates checked against this variant (absent when the recipe has none). Not enforced. */
  gates?: GateVerdict;
  /** The recipe's size budget checked against the package (absent when it has none). Not enforced. */
  size_budget?: { allowed_mb: number; ok: boolean };
  /** On the front of Δppl against bits per weight (both lower is better). */
  pareto?: boolean;
  failure?: { stage: string; code: string; message: string };
}

export interface CompareReport {
  model: string;
  recipe: string;
  source: string;
  target: TargetId;
  /** The validation data every variant was scored on (one reference for all). */
  data?: string;
  reference?: { ppl: number; tokens_scored: number };
  gates?: Gates;
  size_budget_mb?: number;
  /** How speed was measured (absent when it was not). */
  speed?: { runtime: string; prefill_tokens: number; decode_tokens: number; runs: number; warmup: number };
  rows: CompareRow[];
  report_dir: string;
  files: { markdown: string; html: string; json: string };
  seconds: number;
}
