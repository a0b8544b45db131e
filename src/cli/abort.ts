// Ctrl-C handling for long commands: the first SIGINT aborts the work through an AbortSignal (the running stage
// stops, its temporary folder is removed, child processes are killed); a second one, a second or more later, exits
// at once. One Ctrl-C in a terminal reaches us more than once (directly, and relayed by pnpm/tsx), hence the window.
import { removeActiveTempDirs } from '../stages/runner.js';
import { StageError } from '../util/errors.js';

const RELAY_WINDOW_MS = 1000;

export async function withAbortOnSigint<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let firstAt = 0;
  const onSigint = () => {
    if (!firstAt) {
      firstAt = Date.now();
      process.stderr.write('\ninterrupted: stopping (press Ctrl-C again to exit at once)\n');
      const reason = new StageError('INTERRUPTED', 'interrupted by Ctrl-C; finished stages are kept and the next run resumes');
      reason.exitCode = 130;
      controller.abort(reason);
    } else if (Date.now() - firstAt > RELAY_WINDOW_MS) {
      removeActiveTempDirs();
      process.exit(130);
    }
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  try {
    const result = await work(controller.signal);
    // Work that reports failures instead of throwing (build targets) still ends as an interruption.
    if (controller.signal.aborted) throw controller.signal.reason;
    return result;
  } catch (e) {
    if (controller.signal.aborted) throw controller.signal.reason;
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
}
