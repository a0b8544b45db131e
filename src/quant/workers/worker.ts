// Piscina worker entries: one quantization kernel (its result buffers, and its input buffer for the pool to reuse,
// moved back, not copied), or one analysis (AWQ scale search, sensitivity), whose small results are cloned.
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { runAnalysisSafe, type AnalysisJob } from './analysis-kernel.js';
import { isKernelFailure, resultBuffers, runKernelSafe, type KernelResult, type KernelTask } from './kernel.js';

/** What quantizeInWorker sends back on success: the result, and the task's input buffer when it can be reused. */
export interface WorkerReply {
  result: KernelResult;
  input?: ArrayBuffer;
}

export function quantizeInWorker(task: KernelTask): unknown {
  const r = runKernelSafe(task);
  if (isKernelFailure(r)) return r;
  const out = resultBuffers(r);
  // Fresh memory costs a page fault per 4 KiB on first touch (on this machine ~3 ms per MB, 30× a warm copy), so
  // the input goes back to the pool's free list instead of being dropped here, unless a result still views it.
  const buf = task.bytes.buffer as ArrayBuffer;
  const input = buf.byteLength > 0 && !out.includes(buf) ? buf : undefined;
  const reply: WorkerReply = { result: r, input };
  return move({
    get [transferableSymbol]() {
      return input ? [...out, input] : out;
    },
    get [valueSymbol]() {
      return reply;
    },
  });
}

export function analyzeInWorker(job: AnalysisJob): unknown {
  return runAnalysisSafe(job);
}
