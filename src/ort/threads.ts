// How many onnxruntime intra-op threads a session may use: from 1 to a few per core of this machine.
import { availableParallelism } from 'node:os';
import { EvalError } from '../util/errors.js';

/**
 * More threads than cores only makes onnxruntime's spinning workers fight over the cores; a few per core leaves room
 * for hyper-threads and deliberate oversubscription, while `--threads 10000` (ten thousand OS threads, each with its
 * stack) is refused before a session is made.
 */
export const THREADS_PER_CORE = 4;

/** The most intra-op threads a session may ask for, and why (for messages). */
export function maxIntraOpThreads(): { value: number; why: string } {
  const cores = availableParallelism();
  return { value: cores * THREADS_PER_CORE, why: `${THREADS_PER_CORE} per core; this machine has ${cores}` };
}

/** Refuses a thread count far beyond the machine (10,000 would start 10,000 OS threads) before any session is made. */
export function checkThreads(n: number | undefined): void {
  if (n === undefined) return;
  const max = maxIntraOpThreads();
  if (!Number.isInteger(n) || n < 1 || n > max.value) {
    throw new EvalError('SESSION_THREADS', `intraOpNumThreads must be a whole number from 1 to ${max.value} (${max.why}), got ${n}`, {
      fix: 'ask for fewer threads, or leave the option out for one per core',
    });
  }
}
