// The quantize stage: model folder → model folder with MatMulNBits / GatherBlockQuantized weights (src/quant), plus
// the converted folder's genai_config.json and tokenizer files. Weights stream from external data a band of rows at a
// time and quantized tensors spill to disk as they are made (quant/quantize-file.ts), so memory stays far below the model.
import { constants } from 'node:fs';
import { copyFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { CalibrationSource } from '../quant/calibration/calibration.js';
import type { QuantAlgo, QuantScheme } from '../vocabulary.js';
import type { StageDefinition, StageOutcome } from './runner.js';
import type { TargetPlan } from '../recipes/target-plan.js';
import type { ConvertResult } from './convert.js';

export interface QuantizeResult {
  /** Per pass: what was rewritten and bytes before/after (the passes' own stats). */
  passes: { pass: string; modified: boolean; stats: unknown }[];
  warnings: string[];
}

export function quantizeStage(input: {
  model: string;
  convert: StageOutcome<ConvertResult>;
  plan: TargetPlan;
  resolvePath: (p: string) => string;
}): StageDefinition<QuantizeResult> {
  const q = input.plan.quant!;
  const c = q.calibration;
  return {
    name: 'quantize',
    version: 1,
    model: input.model,
    inputs: { model: input.convert.key },
    // Calibration files are named by resolved path (their content is fixed for a build, like validation data).
    options: { ...q, calibration: c && { ...c, tokens: c.tokens && input.resolvePath(c.tokens), text: c.text && input.resolvePath(c.text) } },
    run: async (ctx) => {
      const { wantsCalibration } = await import('../quant/quantize-model.js');
      const { quantizeModelFile } = await import('../quant/quantize-file.js');
      const mixed = q.bits_budget === undefined ? undefined : { budgetBits: q.bits_budget, high: q.high_scheme, sensitivity: q.sensitivity };
      const overrides = q.overrides
        .filter((o) => o.scheme !== 'none')
        .map((o) => ({ pattern: o.pattern, scheme: o.scheme as QuantScheme, algo: o.algo as QuantAlgo | undefined, blockSize: o.block_size }));
      // GPTQ, AWQ and mixed precision's sensitivity need calibration activations.
      const calibration = wantsCalibration({ algo: q.algo as QuantAlgo, overrides, mixed })
        ? await calibrationFor(input.convert.dir, q, input.resolvePath, ctx.signal)
        : undefined;
      // An override to `none` keeps those nodes in float: the quantizer spells that as an exclude pattern.
      const keepFloat = q.overrides.filter((o) => o.scheme === 'none').map((o) => o.pattern);
      // The quantizer validates algorithm names itself (an algorithm it lacks is an error, never a silent fallback).
      const r = await quantizeModelFile(join(input.convert.dir, 'model.onnx'), join(ctx.outDir, 'model.onnx'), {
        scheme: q.scheme as QuantScheme,
        algo: q.algo as QuantAlgo,
        blockSize: q.block_size,
        asym: q.asym,
        accuracyLevel: q.accuracy_level,
        ternaryScope: q.ternary_granularity,
        exclude: [...q.exclude, ...keepFloat],
        overrides,
        mixed,
        embeddings: q.embeddings,
        calibration,
        signal: ctx.signal,
        onProgress: (p) => ctx.progress({ done: p.done, total: p.total, unit: 'tensors', message: p.item }),
        onSaveProgress: (p) => ctx.progress({ done: p.bytes, total: p.totalBytes, unit: 'bytes', message: 'writing model.onnx.data' }),
      });
      for (const f of await readdir(input.convert.dir)) {
        if (!f.startsWith('model.onnx') && f !== 'stage.json') await copyFile(join(input.convert.dir, f), join(ctx.outDir, f), constants.COPYFILE_FICLONE);
      }
      return { passes: r.reports.map(({ pass, modified, stats }) => ({ pass, modified, stats })), warnings: r.warnings };
    },
  };
}

/**
 * GPTQ's calibration token sequences: the recipe's tokens file or text file (tokenized with the model's tokenizer),
 * or — when none is given — sequences sampled (seeded) from the unquantized model itself, so GPTQ needs no dataset.
 */
async function calibrationFor(
  modelDir: string,
  q: NonNullable<TargetPlan['quant']>,
  resolvePath: (p: string) => string,
  signal?: AbortSignal,
): Promise<CalibrationSource> {
  const { tokenCalibration } = await import('../quant/calibration/calibration.js');
  const c = q.calibration ?? { samples: 16, sequence_length: 128 };
  if (c.tokens || c.text) {
    const { loadEvalInput } = await import('../eval/inputs.js');
    const loaded = await loadEvalInput(c.tokens ? { tokens: resolvePath(c.tokens) } : { text: resolvePath(c.text!), splitRows: true }, {
      tokenizerDir: modelDir,
    });
    const seqs = loaded.sequences.slice(0, c.samples).map((s) => Array.from(s.subarray(0, c.sequence_length)));
    return tokenCalibration(seqs, loaded.description);
  }
  const { DecoderSession } = await import('../runtime/decoder-session.js');
  const { sampleSequences } = await import('../eval/sample.js');
  const session = await DecoderSession.open(modelDir);
  try {
    // BOS and context length as the session read them from genai_config.json.
    const length = Math.min(c.sequence_length, session.layout.contextLength ?? c.sequence_length);
    const seqs = await sampleSequences(session, { sequences: c.samples, length, seed: 1, bos: session.layout.bosTokenId ?? 1, signal });
    return tokenCalibration(
      seqs.map((s) => Array.from(s)),
      `${c.samples} sequences of ${length} tokens sampled from the unquantized model (seed 1)`,
    );
  } finally {
    await session.release();
  }
}
