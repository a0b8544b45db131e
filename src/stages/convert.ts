// The convert stage: checkpoint folder → model folder (model.onnx + model.onnx.data + genai_config.json + tokenizer),
// with the native builder or an external one (onnxruntime-genai builder, Olive). Native builds are keyed by the graph
// layout (attention form, activation dtype), not the target: cpu and mobile share one build, and so do cpu-fp16 and
// cuda; their genai_config.json selects no provider, the package stage writes the target's. External builds are keyed
// by everything the tool's output depends on, the target and the tool's versions included.
import { readdir } from 'node:fs/promises';
import type { ExternalToolInfo } from '../external/index.js';
import type { Recipe } from '../recipes/schema.js';
import { layoutId } from '../target/layout.js';
import type { StageDefinition, StageOutcome } from './runner.js';
import type { TargetPlan } from '../recipes/target-plan.js';
import type { SourceResult } from './source.js';

export interface ConvertResult {
  files: string[];
  builder: 'native' | 'genai' | 'olive';
  /** True when the builder already quantized the weights (external tools doing int4): no quantize stage follows. */
  quantized: boolean;
  /** External builds: the command lines run. */
  commands?: string[][];
}

export interface ConvertStageInput {
  model: string;
  source: StageOutcome<SourceResult>;
  plan: TargetPlan;
  recipe: Recipe;
  /** The detected external tool (when recipe.builder is not native). */
  tool?: ExternalToolInfo;
  python?: string;
}

export function convertStage(input: ConvertStageInput): StageDefinition<ConvertResult> {
  const { plan } = input;
  if (input.recipe.builder !== 'native') return externalConvertStage(input);
  return {
    name: 'convert',
    // 2: keyed by the graph layout alone; genai_config.json selects no provider (the package stage writes them).
    version: 2,
    model: input.model,
    inputs: { source: input.source.key },
    options: { layout: layoutId(plan.layout) },
    run: async (ctx) => {
      const { convertCheckpoint } = await import('../arch/convert.js');
      await convertCheckpoint({
        checkpointDir: input.source.dir,
        outDir: ctx.outDir,
        layout: plan.layout,
        onProgress: (p: { bytes?: number; totalBytes?: number; tensors?: number; totalTensors?: number; tensor?: string }) =>
          ctx.progress(
            p.totalBytes
              ? { done: p.bytes ?? 0, total: p.totalBytes, unit: 'bytes', message: p.tensor }
              : { done: p.tensors ?? 0, total: p.totalTensors, unit: 'tensors', message: p.tensor },
          ),
      });
      return { files: (await readdir(ctx.outDir)).sort(), builder: 'native', quantized: false };
    },
  };
}

function externalConvertStage(input: ConvertStageInput): StageDefinition<ConvertResult> {
  const { plan, recipe } = input;
  const kind = recipe.builder as 'genai' | 'olive';
  return {
    name: 'convert',
    version: 1,
    model: input.model,
    inputs: { source: input.source.key },
    options: {
      builder: kind,
      builderOptions: recipe.builder_options,
      precision: plan.precision,
      target: plan.target.id,
      quant: plan.quant ?? null,
      tool: input.tool?.versions ?? null,
    },
    run: async (ctx) => {
      const { runExternalBuilder } = await import('../external/index.js');
      let last = '';
      const r = await runExternalBuilder({
        kind,
        checkpointDir: input.source.dir,
        outDir: ctx.outDir,
        precision: plan.precision,
        target: plan.target.id,
        quant: plan.quant,
        options: recipe.builder_options,
        python: input.python,
        signal: ctx.signal,
        onOutput: (line) => {
          last = line;
          ctx.progress({ done: 0, message: line });
        },
        onProgress: (pct) => ctx.progress({ done: pct, total: 100, unit: 'steps', message: last }),
      });
      return { files: r.files.slice().sort(), builder: kind, quantized: r.quantized, commands: r.commands };
    },
  };
}
