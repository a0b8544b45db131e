// Piscina worker entry: runs one quantization kernel and moves the result buffers back (transferred, not copied).
import { move, transferableSymbol, valueSymbol } from 'piscina';
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
