// Piscina worker entries: one quantization kernel (its result buffers moved back, not copied), or one analysis
// (AWQ scale search, sensitivity), whose small results are cloned.
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { runAnalysisSafe, type AnalysisJob } from './analysis-kernel.js';
import { isKernelFailure, resultBuffers, runKernelSafe, type KernelTask } from './kernel.js';

export function quantizeInWorker(task: KernelTask): unknown {
  const r = runKernelSafe(task);
  if (isKernelFailure(r)) return r;
  return move({
    get [transferableSymbol]() {
      return resultBuffers(r);
    },
    get [valueSymbol]() {
      return r;
    },
  });
}

export function analyzeInWorker(job: AnalysisJob): unknown {
  return runAnalysisSafe(job);
}
