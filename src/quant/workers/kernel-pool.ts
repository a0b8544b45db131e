// Runs quantization kernels and analyses (AWQ search, sensitivity) on a piscina worker pool (workers load TypeScript
// through tsx), or inline when asked for zero threads. Input bytes go to the worker by transfer, never by structured
// clone, and come back with the results to be reused by the next task (see `buffer`).
import { availableParallelism } from 'node:os';
import { QuantizationError } from '../../util/errors.js';
import { runAnalysisSafe, type AnalysisJob, type AnalysisOutcome, type OutcomeOf } from './analysis-kernel.js';
import type { WorkerReply } from './worker.js';
import { isKernelFailure, runKernelSafe, type KernelFailure, type KernelResult, type KernelTask } from './kernel.js';

export interface KernelRunner {
  /** How many kernels can usefully run at once. */
  readonly concurrency: number;
  /**
   * `transfer`: the caller gives up task.bytes (its buffer is moved to the worker, not copied). task.hessian is
   * always given up.
   */
  run(task: KernelTask, opts?: { transfer?: boolean }): Promise<KernelResult>;
  /**
   * An owned buffer of `byteLength` bytes to fill with a task's input and run with `transfer`: on a pool it is one a
   * worker sent back (already paged in) when one is free, so filling it costs a copy, not a page fault per 4 KiB.
   */
  buffer(byteLength: number): Uint8Array;
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
    buffer: (n) => new Uint8Array(n),
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
    // Every worker starts now and stays until close: each loads tsx and the sources (~1 s), which a worker started
    // on demand, or again after idling between passes, would spend while the others wait for it.
    minThreads: threads,
    maxThreads: threads,
    // Workers run the TypeScript sources, like the main process does.
    execArgv: ['--import', 'tsx'],
    idleTimeout: Number.POSITIVE_INFINITY,
  });
  // Only whole buffers can move; a view into a bigger one (e.g. a decoded model) is copied instead.
  const whole = (a: ArrayBufferView) => a.byteOffset === 0 && a.byteLength === a.buffer.byteLength;
  const movable = (arrays: readonly (ArrayBufferView | undefined)[]) => [
    ...new Set(arrays.filter((a): a is ArrayBufferView => a !== undefined && whole(a)).map((a) => a.buffer as ArrayBuffer)),
  ];
  const free = new FreeBuffers(threads + 1);
  return {
    concurrency: threads,
    run: async (task, opts = {}) => {
      // Input that cannot move (the caller keeps it, or it views a bigger buffer, which structured clone would copy
      // whole) is copied here into a reused buffer and moved: a warm copy is ~30× cheaper than the fresh pages a
      // clone in the worker would touch.
      const own = opts.transfer && (whole(task.bytes) || free.owns(task.bytes));
      const bytes = own ? task.bytes : copyInto(free.take(task.bytes.byteLength), task.bytes);
      const transferList = [...new Set([bytes.buffer as ArrayBuffer, ...movable([task.hessian])])];
      const r = (await pool.run({ ...task, bytes }, { transferList })) as WorkerReply | KernelFailure;
      const reply = unwrap<WorkerReply>(r);
      if (reply.input) free.give(reply.input);
      return reply.result;
    },
    buffer: (n) => free.take(n),
    analyze: async <J extends AnalysisJob>(job: J, opts: { transfer?: readonly ArrayBufferView[] } = {}) => {
      const r = (await pool.run(job, { name: 'analyzeInWorker', transferList: movable(opts.transfer ?? []) })) as AnalysisOutcome | KernelFailure;
      return unwrap(r) as OutcomeOf<J>;
    },
    close: () => pool.destroy(),
  };
}

function copyInto(to: Uint8Array, from: Uint8Array): Uint8Array {
  to.set(from);
  return to;
}

/**
 * Input buffers the workers sent back, handed out again as views of their first bytes. At most `keep` are held
 * (the tasks in flight plus one being filled); beyond that the smallest is dropped.
 */
class FreeBuffers {
  private readonly list: ArrayBuffer[] = [];
  private readonly mine = new WeakSet<ArrayBuffer>();
  constructor(private readonly keep: number) {}

  /** The smallest free buffer that fits, else a new one. */
  take(n: number): Uint8Array {
    let best = -1;
    for (let i = 0; i < this.list.length; i++) {
      const len = this.list[i].byteLength;
      if (len >= n && (best < 0 || len < this.list[best].byteLength)) best = i;
    }
    const buf = best >= 0 ? this.list.splice(best, 1)[0] : new ArrayBuffer(n);
    this.mine.add(buf);
    return new Uint8Array(buf, 0, n);
  }

  /** Whether `a` is a view handed out by take (it may be shorter than its buffer and still move whole). */
  owns(a: ArrayBufferView): boolean {
    return a.byteOffset === 0 && this.mine.has(a.buffer as ArrayBuffer);
  }

  give(buf: ArrayBuffer): void {
    this.list.push(buf);
    if (this.list.length > this.keep) {
      let smallest = 0;
      for (let i = 1; i < this.list.length; i++) if (this.list[i].byteLength < this.list[smallest].byteLength) smallest = i;
      this.list.splice(smallest, 1);
    }
  }
}
