// Analyses the data-aware passes hand to workers, next to the quantization kernel: AWQ's scale search for a group of
// weights sharing one input, and one weight's sensitivity to the low and high schemes of mixed precision. Pure and
// synchronous like kernel.ts (weights as raw bytes, activations as typed arrays; failures come back as data).
import { toRows, type WeightLayout } from '../formats/block.js';
import { awqSearch, type AwqSearchResult } from '../algorithms/awq.js';
import { awqClip, blockGrams } from '../algorithms/awq-clip.js';
import { roundTrip, type ActivationSample, type RowQuantizer } from '../algorithms/output-error.js';
import { layerSensitivity, type SensitivityResult } from '../algorithms/sensitivity.js';
import { decodeWeight, toFailure, type KernelFailure } from './kernel.js';

/** A weight as stored: raw little-endian bytes (FLOAT, FLOAT16, BFLOAT16 or DOUBLE), seen as N rows of K. */
export interface WeightInput {
  tensor: string;
  bytes: Uint8Array;
  dataType: number;
  K: number;
  N: number;
  layout: WeightLayout;
}

export interface AwqSearchJob {
  kind: 'awq-search';
  /** The shared input, for messages. */
  input: string;
  /** `clip`: also search AWQ's per-block clip ratios for this weight. */
  weights: (WeightInput & { quant: RowQuantizer; clip?: boolean })[];
  activations: ActivationSample;
  /** [K] mean |x| per channel. */
  absMean: Float64Array;
  grid?: number;
  maxRows?: number;
}

export interface AwqSearchOutcome extends AwqSearchResult {
  kind: 'awq-search';
  /** Per weight (in job order): clip ratios [N, k_blocks] for W·diag(s), when asked for. */
  clips: (Float32Array | undefined)[];
}

export interface SensitivityJob {
  kind: 'sensitivity';
  weight: WeightInput;
  /** Absent: score the weight error (no calibration data). */
  activations?: ActivationSample;
  low: RowQuantizer;
  high: RowQuantizer;
  maxRows?: number;
}

export interface SensitivityOutcome extends SensitivityResult {
  kind: 'sensitivity';
}

/** The rounding error Q(W) − W of a weight under an RTN quantizer, laid out as MatMul's B ([K, N]). */
export interface QuantDeltaJob {
  kind: 'quant-delta';
  weight: WeightInput;
  quant: RowQuantizer;
}

export interface QuantDeltaOutcome {
  kind: 'quant-delta';
  /** [K, N] float32. */
  delta: Float32Array;
}

export type AnalysisJob = AwqSearchJob | SensitivityJob | QuantDeltaJob;
export type AnalysisOutcome = AwqSearchOutcome | SensitivityOutcome | QuantDeltaOutcome;
/** The outcome type of a job type. */
export type OutcomeOf<J extends AnalysisJob> = J extends AwqSearchJob ? AwqSearchOutcome : J extends SensitivityJob ? SensitivityOutcome : QuantDeltaOutcome;

export function runAnalysis(job: AnalysisJob): AnalysisOutcome {
  if (job.kind === 'awq-search') {
    const targets = job.weights.map((w) => ({ w: decodeWeight(w), quant: w.quant, name: w.tensor }));
    const r = awqSearch(targets, job.activations, job.absMean, { grid: job.grid, maxRows: job.maxRows });
    const grams = new Map<number, Float64Array[]>();
    const clips = job.weights.map((w, i) => {
      if (!w.clip) return undefined;
      const bs = w.quant.blockSize;
      if (!grams.has(bs)) grams.set(bs, blockGrams(job.activations, r.scales, w.K, bs));
      return awqClip(targets[i].w, r.scales, w.quant, grams.get(bs)!);
    });
    return { kind: 'awq-search', ...r, clips };
  }
  if (job.kind === 'quant-delta') {
    const w = decodeWeight(job.weight);
    const { K, N } = w;
    const rows = toRows(w);
    const d = roundTrip(rows, K, job.quant);
    const delta = new Float32Array(K * N);
    for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) delta[k * N + n] = d[n * K + k] - rows[n * K + k];
    return { kind: 'quant-delta', delta };
  }
  const r = layerSensitivity(decodeWeight(job.weight), job.activations, job.low, job.high, job.maxRows);
  return { kind: 'sensitivity', ...r };
}

/** What the worker sends back: the outcome, or the failure as data. */
export function runAnalysisSafe(job: AnalysisJob): AnalysisOutcome | KernelFailure {
  try {
    return runAnalysis(job);
  } catch (e) {
    const name = job.kind === 'awq-search' ? job.weights.map((w) => w.tensor).join(', ') : job.weight.tensor;
    return toFailure(e, name);
  }
}
