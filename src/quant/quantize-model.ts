// Quantizing a whole model in memory: the pass list in its one order (MatMul weights first, then embeddings, which
// may reuse a tied lm_head's quantized weight) and the worker pool around it.
import type { Model } from '../onnx/ir.js';
import type { CalibrationSource } from './calibration.js';
import { createKernelRunner } from './kernel-pool.js';
import type { MethodOptions, Override } from './method.js';
import { runPasses, step, type PassProgress, type PassReport, type PassStep } from './pass.js';
import { gatherBlockQuantizedPass } from './passes/gather-block-quantized.js';
import { matmulNBitsPass } from './passes/matmul-nbits.js';

export interface QuantizeOptions extends MethodOptions {
  /** Node-name patterns (glob or /regex/) left in float. */
  exclude?: readonly string[];
  /** Per-node methods by pattern, first match wins (e.g. lm_head at int8). */
  overrides?: readonly Override[];
  /**
   * Embedding tables → GatherBlockQuantized: `tied` (default) only when the table is the lm_head's weight, so it is
   * stored once; `all` every constant table; `none` leaves embeddings in float.
   */
  embeddings?: 'none' | 'tied' | 'all';
  /** Calibration inputs, for GPTQ. */
  calibration?: CalibrationSource;
  /** Worker threads for the kernels (0: inline). */
  threads?: number;
  onProgress?: (p: PassProgress) => void;
}

/** The passes, in order, for these options. */
export function quantizationPasses(o: QuantizeOptions): PassStep[] {
  const steps: PassStep[] = [
    step(matmulNBitsPass, {
      scheme: o.scheme,
      algo: o.algo,
      blockSize: o.blockSize,
      asym: o.asym,
      accuracyLevel: o.accuracyLevel,
      ternaryScope: o.ternaryScope,
      gptqDamp: o.gptqDamp,
      gptqActOrder: o.gptqActOrder,
      calibration: o.calibration,
      exclude: o.exclude,
      warnUnusedExcludes: false,
      overrides: o.overrides,
    }),
  ];
  const emb = o.embeddings ?? 'tied';
  if (emb !== 'none') {
    steps.push(
      step(gatherBlockQuantizedPass, {
        bits: o.scheme === 'int8' ? 8 : 4,
        blockSize: o.blockSize,
        asym: o.asym,
        exclude: o.exclude,
        warnUnusedExcludes: false,
        only: emb,
      }),
    );
  }
  return steps;
}

export interface QuantizeResult {
  model: Model;
  modified: boolean;
  reports: PassReport[];
  /** Run-level warnings, e.g. an exclude pattern that matched no node in any pass. */
  warnings: string[];
}

export async function quantizeModel(model: Model, o: QuantizeOptions): Promise<QuantizeResult> {
  const kernels = await createKernelRunner({ threads: o.threads });
  try {
    const r = await runPasses(model, quantizationPasses(o), { kernels, onProgress: o.onProgress });
    const unusedSets = r.reports.map((x) => new Set((x.stats as { unusedExcludes?: string[] }).unusedExcludes ?? []));
    const warnings = (o.exclude ?? [])
      .filter((p) => unusedSets.every((s) => s.has(p)))
      .map((p) => `exclude pattern ${p} matched no node`);
    return { ...r, warnings };
  } finally {
    await kernels.close();
  }
}
