// The quantize stage: model folder → model folder with MatMulNBits / GatherBlockQuantized weights (src/quant), plus
// the converted folder's genai_config.json and tokenizer files. Weights stream from external data one at a time.
import { constants } from 'node:fs';
import { copyFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { SchemeName } from '../../quant/formats/codec.js';
import type { AlgoName } from '../../quant/kernel.js';
import type { StageDefinition, StageOutcome } from '../stage.js';
import type { TargetPlan } from '../target-plan.js';
import type { ConvertResult } from './convert.js';

export interface QuantizeResult {
  /** Per pass: what was rewritten and bytes before/after (the passes' own stats). */
  passes: { pass: string; modified: boolean; stats: unknown }[];
  warnings: string[];
}

export function quantizeStage(input: { model: string; convert: StageOutcome<ConvertResult>; plan: TargetPlan }): StageDefinition<QuantizeResult> {
  const q = input.plan.quant!;
  return {
    name: 'quantize',
    version: 1,
    model: input.model,
    inputs: { model: input.convert.key },
    options: q,
    run: async (ctx) => {
      const { loadModel, saveModel } = await import('../../onnx/model-file.js');
      const { quantizeModel } = await import('../../quant/quantize-model.js');
      const model = await loadModel(join(input.convert.dir, 'model.onnx'));
      // An override to `none` keeps those nodes in float: the quantizer spells that as an exclude pattern.
      const keepFloat = q.overrides.filter((o) => o.scheme === 'none').map((o) => o.pattern);
      // The quantizer validates algorithm names itself (an algorithm it lacks is an error, never a silent fallback).
      const r = await quantizeModel(model, {
        scheme: q.scheme as SchemeName,
        algo: q.algo as AlgoName,
        blockSize: q.block_size,
        asym: q.asym,
        accuracyLevel: q.accuracy_level,
        ternaryScope: q.ternary_granularity,
        exclude: [...q.exclude, ...keepFloat],
        overrides: q.overrides
          .filter((o) => o.scheme !== 'none')
          .map((o) => ({ pattern: o.pattern, scheme: o.scheme as SchemeName, algo: o.algo as AlgoName | undefined, blockSize: o.block_size })),
        embeddings: q.embeddings,
        onProgress: (p) => ctx.progress({ done: p.done, total: p.total, unit: 'tensors', message: p.item }),
      });
      await saveModel(r.model, join(ctx.outDir, 'model.onnx'), {
        onProgress: (p) => ctx.progress({ done: p.bytes, total: p.totalBytes, unit: 'bytes', message: 'writing model.onnx.data' }),
      });
      for (const f of await readdir(input.convert.dir)) {
        if (!f.startsWith('model.onnx') && f !== 'stage.json') await copyFile(join(input.convert.dir, f), join(ctx.outDir, f), constants.COPYFILE_FICLONE);
      }
      return { passes: r.reports.map(({ pass, modified, stats }) => ({ pass, modified, stats })), warnings: r.warnings };
    },
  };
}
