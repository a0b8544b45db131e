// Passes as values: `definePass({ name, run })`, where run(model, options, ctx) → { model, modified, stats }, and the one
// runner that applies a list of them in order, reports progress and wraps failures in an error naming the pass.
import type { Model } from '../../onnx/ir.js';
import { QuantizationError, isPhiForgeError } from '../../util/errors.js';
import { inlineKernelRunner, type KernelRunner } from '../workers/kernel-pool.js';
import { memorySink, type TensorSink } from '../streaming/tensor-sink.js';

export interface PassProgress {
  pass: string;
  /** Items (weights) done and the total, when the pass knows them. */
  done: number;
  total: number;
  /** What was just finished, e.g. a node name. */
  item?: string;
}

/** Shared between the passes of one run. */
export interface PassContext {
  kernels: KernelRunner;
  /** Where quantized tensors are written (memory, or a spill file so the run never holds the quantized model). */
  sink: TensorSink;
  /** Aborts the run between pieces of work (Ctrl-C); passes check it through `ctx.signal?.throwIfAborted()`. */
  signal?: AbortSignal;
  progress(p: PassProgress): void;
  /**
   * Facts one pass leaves for a later one in the same run, by key. The MatMulNBits pass records which float weight
   * became which quantized tensors (`quantizedWeights`) so the embedding pass can reuse a tied lm_head's.
   */
  shared: Map<string, unknown>;
}

export interface PassResult<S> {
  model: Model;
  modified: boolean;
  stats: S;
}

export interface Pass<O, S> {
  /** Namespaced, e.g. `quant:matmul-nbits`. */
  readonly name: string;
  /** What the pass does, one line (for --help and reports). */
  readonly describe: string;
  run(model: Model, options: O, ctx: PassContext): Promise<PassResult<S>>;
}

export function definePass<O, S>(p: Pass<O, S>): Pass<O, S> {
  return Object.freeze(p);
}

/** A pass together with its options: one entry of a pass list. */
export interface PassStep<O = unknown, S = unknown> {
  pass: Pass<O, S>;
  options: O;
}

export function step<O, S>(pass: Pass<O, S>, options: O): PassStep<O, S> {
  return { pass, options };
}

export interface PassReport {
  pass: string;
  modified: boolean;
  stats: unknown;
  ms: number;
}

export interface RunPassesOptions {
  kernels?: KernelRunner;
  /** Default: in memory. */
  sink?: TensorSink;
  signal?: AbortSignal;
  onProgress?: (p: PassProgress) => void;
}

/** Applies passes in order; the model each returns is the input of the next. */
export async function runPasses(
  model: Model,
  steps: readonly PassStep[],
  o: RunPassesOptions = {},
): Promise<{ model: Model; modified: boolean; reports: PassReport[] }> {
  const ctx: PassContext = {
    kernels: o.kernels ?? inlineKernelRunner(),
    sink: o.sink ?? memorySink(),
    signal: o.signal,
    progress: o.onProgress ?? (() => {}),
    shared: new Map(),
  };
  const reports: PassReport[] = [];
  let current = model;
  for (const s of steps) {
    o.signal?.throwIfAborted();
    const t0 = performance.now();
    let r: PassResult<unknown>;
    try {
      r = await s.pass.run(current, s.options, ctx);
    } catch (e) {
      // An abort is not a failure of the pass: its reason (e.g. "interrupted by Ctrl-C") goes through unchanged.
      if (o.signal?.aborted && e === o.signal.reason) throw e;
      throw wrapPassError(s.pass.name, e);
    }
    current = r.model;
    reports.push({ pass: s.pass.name, modified: r.modified, stats: r.stats, ms: Math.round(performance.now() - t0) });
  }
  return { model: current, modified: reports.some((r) => r.modified), reports };
}

/** A QuantizationError naming the pass; our own errors keep their code and context. */
export function wrapPassError(pass: string, e: unknown): QuantizationError {
  const where = `pass ${pass}`;
  if (isPhiForgeError(e)) {
    // e.message already names the tensor or node; drop its fix line so it is not printed twice.
    const tail = e.fix ? `\n  fix: ${e.fix}` : '';
    const message = tail && e.message.endsWith(tail) ? e.message.slice(0, -tail.length) : e.message;
    return new QuantizationError(e.code, message, { where, fix: e.fix, cause: e });
  }
  const err = e instanceof Error ? e : new Error(String(e));
  return new QuantizationError('QUANT_PASS_FAILED', `failed: ${err.message}`, {
    where,
    fix: 'this is a bug in the pass: report it with the model that triggers it',
    cause: err,
  });
}
