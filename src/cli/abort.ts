// Ctrl-C handling for long commands: the first SIGINT aborts the work through an AbortSignal (stages stop, child
// processes are killed, temporary folders removed); a second one exits at once.
import { StageError } from '../util/errors.js';

export async function withAbortOnSigint<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts === 1) {
      process.stderr.write('\ninterrupted: stopping (press Ctrl-C again to exit at once)\n');
      controller.abort(new StageError('INTERRUPTED', 'interrupted by Ctrl-C; finished stages are kept and the next run resumes'));
    } else {
      process.exit(130);
    }
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  try {
    return await work(controller.signal);
  } catch (e) {
    if (controller.signal.aborted) {
      process.exitCode = 130;
      throw controller.signal.reason;
    }
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
}
