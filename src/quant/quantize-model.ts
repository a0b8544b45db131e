// Quantizing a whole model in memory: the pass list in its one order — the mixed-precision plan (which weights get
// the higher scheme), AWQ's float rescaling, then MatMul weights, then embeddings (which may reuse a tied lm_head's
// quantized weight) — and the worker pool around it.
import type { Model } from '../onnx/ir.js';
import type { CalibrationSource } from './calibration/calibration.js';
import { createKernelRunner } from './workers/kernel-pool.js';
import { isCalibratedAlgo, QUANT_DEFAULTS, type EmbeddingsMode, type QuantScheme, type SensitivityMeasure } from '../vocabulary.js';
import type { MethodOptions, Override } from './method.js';
import { runPasses, step, type PassProgress, type PassReport, type PassStep } from './passes/pass.js';
import { awqScalePass, type AwqScaleOptions } from './passes/awq-scale.js';
import { gatherBlockQuantizedPass } from './passes/gather-block-quantized.js';
import { matmulNBitsPass } from './passes/matmul-nbits.js';
import { mixedPrecisionPass } from './passes/mixed-precision.js';
import type { TensorSink } from './streaming/tensor-sink.js';

/** Mixed precision: the most sensitive weights move from the base scheme to `high` within a bits-per-weight budget. */
export interface MixedOptions {
  /** Average bits per quantized MatMul weight, scales and zero points included (int4 b32 with fp32 scales is 5.0). */
  budgetBits: number;
  /** Default int8. */
  high?: QuantScheme;
  /** How sensitivity is measured (see passes/mixed-precision.ts); default `kl` when calibration data allows. */
  sensitivity?: SensitivityMeasure;
}

export interface QuantizeOptions extends MethodOptions {
  /** Node-name patterns (glob or /regex/) left in float. */
  exclude?: readonly string[];
  /** Per-node methods by pattern, first match wins (e.g. lm_head at int8). */
  overrides?: readonly Override[];
  /**
   * Embedding tables → GatherBlockQuantized: `tied` (default) only when the table is the lm_head's weight, so it is
   * stored once; `all` every constant table; `none` leaves embeddings in float.
   */
  embeddings?: EmbeddingsMode;
  /** Calibration inputs, for GPTQ and AWQ (and mixed precision's sensitivity, which falls back to weight error). */
  calibration?: CalibrationSource;
  /** Plan per-weight schemes under a bits-per-weight budget (see MixedOptions). */
  mixed?: MixedOptions;
  /** AWQ search settings (defaults: 20 grid points per scale family, 512 sampled rows, clipping on). */
  awq?: Pick<AwqScaleOptions, 'clip' | 'grid' | 'sampleRows' | 'maxRows'>;
  /** Worker threads for the kernels (0: inline). */
  threads?: number;
  /** Float bytes per row band a weight is quantized in (default 64 MiB; see weight-rows.ts). */
  pieceBytes?: number;
  /** Stops the run between pieces of work; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * Where quantized tensors go; default in memory. quantizeModelFile spills them to a file beside the output so
   * memory holds only the weights in flight.
   */
  sink?: TensorSink;
  onProgress?: (p: PassProgress) => void;
}

/**
 * Whether quantizing with these options needs calibration data: GPTQ or AWQ as the base algorithm or in an override
 * (an error without it), or mixed precision (which measures sensitivity on it, and falls back to weight error).
 */
export function wantsCalibration(o: Pick<QuantizeOptions, 'algo' | 'overrides' | 'mixed'>): boolean {
  const algos = [o.algo, ...(o.overrides ?? []).map((x) => x.algo)];
  return o.mixed !== undefined || algos.some(isCalibratedAlgo);
}

/** The passes, in order, for these options. */
export function quantizationPasses(o: QuantizeOptions): PassStep[] {
  const method = {
    scheme: o.scheme,
    algo: o.algo,
    blockSize: o.blockSize,
    asym: o.asym,
    accuracyLevel: o.accuracyLevel,
    ternaryScope: o.ternaryScope,
    gptqDamp: o.gptqDamp,
    gptqActOrder: o.gptqActOrder,
  };
  const steps: PassStep[] = [];
  if (o.mixed) {
    steps.push(step(mixedPrecisionPass, { ...method, budgetBits: o.mixed.budgetBits, high: o.mixed.high, sensitivity: o.mixed.sensitivity, exclude: o.exclude, overrides: o.overrides, calibration: o.calibration }));
  }
  if (o.algo === 'awq' || (o.overrides ?? []).some((x) => x.algo === 'awq')) {
    steps.push(step(awqScalePass, { ...method, ...o.awq, exclude: o.exclude, overrides: o.overrides, calibration: o.calibration }));
  }
  steps.push(
    step(matmulNBitsPass, {
      ...method,
      calibration: o.calibration,
      exclude: o.exclude,
      warnUnusedExcludes: false,
      overrides: o.overrides,
      pieceBytes: o.pieceBytes,
    }),
  );
  const emb = o.embeddings ?? QUANT_DEFAULTS.embeddings;
  if (emb !== 'none') {
    steps.push(
      step(gatherBlockQuantizedPass, {
        bits: o.scheme === 'int8' ? 8 : 4,
        blockSize: o.blockSize,
        asym: o.asym,
        exclude: o.exclude,
        warnUnusedExcludes: false,
        only: emb,
        pieceBytes: o.pieceBytes,
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
    const r = await runPasses(model, quantizationPasses(o), { kernels, sink: o.sink, signal: o.signal, onProgress: o.onProgress });
    // Only the converting passes report unused patterns (the planning passes see the same nodes as MatMulNBits).
    const unusedSets = r.reports
      .map((x) => (x.stats as { unusedExcludes?: string[] }).unusedExcludes)
      .filter((u): u is string[] => u !== undefined)
      .map((u) => new Set(u));
    const warnings = (o.exclude ?? [])
      .filter((p) => unusedSets.every((s) => s.has(p)))
      .map((p) => `exclude pattern ${p} matched no node`);
    return { ...r, warnings };
  } finally {
    await kernels.close();
  }
}
