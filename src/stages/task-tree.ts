// How pipelines show progress: a listr2 task tree on stderr (so stdout stays free for --json), with spinners on a
// terminal and plain line-by-line output when stderr is not a TTY or CI=true.
import { Listr, ListrLogger, ProcessOutput, PRESET_TIMER, type ListrTask } from 'listr2';
import { formatBytes } from '../util/format.js';
import type { StageProgress } from './runner.js';

export function isPlainOutput(): boolean {
  return !process.stderr.isTTY || process.env.CI === 'true' || process.env.CI === '1';
}

/** A task list with the renderer chosen for the output: spinners on a TTY, plain lines otherwise. */
export function taskList<Ctx>(tasks: ListrTask<Ctx>[], opts: { quiet?: boolean } = {}): Listr<Ctx> {
  const plain = isPlainOutput();
  // Both renderers write through this logger; its process output sends "stdout" to stderr too (listr2 reads the
  // process output from the logger only).
  const processOutput = new ProcessOutput(process.stderr, process.stderr);
  const logger = new ListrLogger({ useIcons: true, processOutput });
  // The renderer is picked by conditions, not by a renderer value chosen at run time: listr2 types a Listr by its one
  // primary renderer, so the conditions keep that type `default` (spinners) with `simple` as the fallback.
  return new Listr<Ctx>(tasks, {
    concurrent: false,
    exitOnError: true,
    // We handle SIGINT ourselves (abort signal → stages stop, children are killed, temp folders removed).
    registerSignalListeners: false,
    renderer: 'default',
    fallbackRenderer: 'simple',
    silentRendererCondition: opts.quiet === true,
    fallbackRendererCondition: plain,
    rendererOptions: { collapseSubtasks: false, timer: PRESET_TIMER, showErrorMessage: false, logger },
    fallbackRendererOptions: { timer: PRESET_TIMER, logger },
  });
}

/** One line describing a stage's progress, e.g. `1.20 GB / 7.70 GB (16%) model.layers.3...`. */
export function formatProgress(p: StageProgress): string {
  const fmt = p.unit === 'bytes' ? formatBytes : (n: number) => String(n);
  const unit = p.unit && p.unit !== 'bytes' ? ` ${p.unit}` : '';
  const amount = p.total ? `${fmt(p.done)} / ${fmt(p.total)}${unit} (${Math.floor((100 * p.done) / p.total)}%)` : `${fmt(p.done)}${unit}`;
  return p.message ? `${amount} ${p.message}` : amount;
}

/** Limits how often a progress callback fires (plain output would otherwise print thousands of lines). */
export function throttle<T>(fn: (v: T) => void, ms: number): (v: T) => void {
  let last = 0;
  return (v: T) => {
    const now = Date.now();
    if (now - last >= ms) {
      last = now;
      fn(v);
    }
  };
}
