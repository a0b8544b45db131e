// What a build reports: per target the package, its files, quantization, validation metrics, gate verdicts and
// stage timings (the --json document of `build`).
import type { GateVerdict } from '../eval/gates.js';
import type { TargetId } from '../recipes/schema.js';
import type { SourceResult } from './source.js';
import type { ValidateResult } from './validate.js';

export interface StageTiming {
  stage: string;
  cached: boolean;
  seconds: number;
  dir: string;
}

export interface TargetReport {
  target: TargetId;
  ok: boolean;
  /** Where the package was published (absent when a stage or a gate failed). */
  package?: string;
  files?: { path: string; size: number }[];
  precision: string;
  quantization: unknown;
  validation?: ValidateResult;
  /** Gate verdicts (measured vs allowed per gate) when the target has gates. */
  gates?: GateVerdict;
  failure?: { stage: string; code: string; message: string };
  stages: StageTiming[];
}

export interface BuildReport {
  model: string;
  recipe: string;
  source: SourceResult;
  targets: TargetReport[];
  seconds: number;
  stagesRun: number;
  stagesCached: number;
}
