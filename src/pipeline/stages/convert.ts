// The convert stage: checkpoint folder → model folder (model.onnx + model.onnx.data + genai_config.json + tokenizer)
// with the native builder. Keyed by the graph layout and precision, not the target: cpu and mobile share one build;
// per-target genai_config provider options are written by the package stage.
import type { StageDefinition, StageOutcome } from '../stage.js';
import type { TargetPlan } from '../target-plan.js';
import type { SourceResult } from './source.js';

export interface ConvertResult {
  files: string[];
}

export function convertStage(input: { model: string; source: StageOutcome<SourceResult>; plan: TargetPlan }): StageDefinition<ConvertResult> {
  const { plan } = input;
  // The target whose graph is built: the first target with this layout (they differ only in provider options).
  const graphTarget = plan.target.graph === 'dml' ? 'dml' : plan.precision === 'fp16' ? 'cuda' : 'cpu';
  return {
    name: 'convert',
    version: 1,
    model: input.model,
    inputs: { source: input.source.key },
    options: { precision: plan.precision, graph: plan.target.graph, graphTarget },
    run: async (ctx) => {
      const { convertCheckpoint } = await import('../../arch/convert.js');
      const { readdir } = await import('node:fs/promises');
      await convertCheckpoint({
        checkpointDir: input.source.dir,
        outDir: ctx.outDir,
        precision: plan.precision,
        target: graphTarget,
        onProgress: (p: { bytes?: number; totalBytes?: number; tensors?: number; totalTensors?: number; tensor?: string }) =>
          ctx.progress(
            p.totalBytes
              ? { done: p.bytes ?? 0, total: p.totalBytes, unit: 'bytes', message: p.tensor }
              : { done: p.tensors ?? 0, total: p.totalTensors, unit: 'tensors', message: p.tensor },
          ),
      });
      return { files: (await readdir(ctx.outDir)).sort() };
    },
  };
}
