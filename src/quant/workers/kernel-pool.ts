// Runs quantization kernels and analyses (AWQ search, sensitivity) on a piscina worker pool (workers load TypeScript
// through tsx), or inline when asked for zero threads. Input bytes the caller owns are transferred to the worker,
// quantized results are transferred back.
import { availableParallelism } from 'node:os';
import { QuantizationError } from '../../util/errors.js';
import { runAnalysisSafe, type AnalysisJob, type AnalysisOutcome, type OutcomeOf } from './analysis-kernel.js';
import { isKernelFailure, runKernelSafe, type KernelFailure, type KernelResult, type KernelTask } from './kernel.js';

export interface KernelRunner {
  /** How many kernels can usefully run at once. */
  readonly concurrency: number;
  /**
   * `transfer`: the caller gives up task.bytes (its buffer is moved to the worker, not copied). task.hessian is
   * always given up.
   */
  run(task: KernelTask, opts?: { transfer?: boolean }): Promise<KernelResult>;
  /** An analysis (AWQ scale search, sensitivity); `transfer` lists buffers the caller gives up. */
  analyze<J extends AnalysisJob>(job: J, opts?: { transfer?: readonly ArrayBufferView[] }): Promise<OutcomeOf<J>>;
  close(): Promise<void>;
}

export interface KernelRunnerOptions {
  /** Worker threads; 0 runs kernels inline on the calling thread. Default: min(cores, 4). */
  threads?: number;
}

function unwrap<R extends object>(r: R | KernelFailure): R {
  if (!isKernelFailure(r)) return r;
  const { code, message, where, fix } = r.error;
  throw new QuantizationError(code, message, { where, fix });
}

export function inlineKernelRunner(): KernelRunner {
  return {
    concurrency: 1,
    run: async (task) => unwrap(runKernelSafe(task)),
    analyze: async <J extends AnalysisJob>(job: J) => unwrap(runAnalysisSafe(job)) as OutcomeOf<J>,
    close: async () => {},
  };
}

export async function createKernelRunner(o: KernelRunnerOptions = {}): Promise<KernelRunner> {
  const threads = o.threads ?? Math.min(availableParallelism(), 4);
  if (threads <= 0) return inlineKernelRunner();
  const { Piscina } = await import('piscina');
  const pool = new Piscina({
    filename: new URL('./worker.ts', import.meta.url).href,
    // The named export; piscina loads it through tsx's require hook (its ESM fallback has no TypeScript loader).
    name: 'quantizeInWorker',
    minThreads: 1,
    maxThreads: threads,
    // Workers run the TypeScript sources, like the main process does.
    execArgv: ['--import', 'tsx'],
    idleTimeout: 5_000,
  });
  // Only whole buffers can move; a view into a bigger one (e.g. a decoded model) is copied instead.
  const whole = (a: ArrayBufferView) => a.byteOffset === 0 && a.byteLength === a.buffer.byteLength;
  const movable = (arrays: readonly (ArrayBufferView | undefined)[]) => [
    ...new Set(arrays.filter((a): a is ArrayBufferView => a !== undefined && whole(a)).map((a) => a.buffer as ArrayBuffer)),
  ];
  return {
    concurrency: threads,
    run: async (task, opts = {}) => {
      const transferList = movable([opts.transfer ? task.bytes : undefined, task.hessian]);
      const r = (await pool.run(task, { transferList })) as KernelResult | KernelFailure;
      return unwrap(r);
    },
    analyze: async <J extends AnalysisJob>(job: J, opts: { transfer?: readonly ArrayBufferView[] } = {}) => {
      const r = (await pool.run(job, { name: 'analyzeInWorker', transferList: movable(opts.transfer ?? []) })) as AnalysisOutcome | KernelFailure;
      return unwrap(r) as OutcomeOf<J>;
    },
    close: () => pool.destroy(),
  };
}
