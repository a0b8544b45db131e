// Sliding windows for perplexity of fixed-length models (the Hugging Face transformers convention): windows of at
// most maxLength tokens start every `stride` tokens; each scores only the tokens the previous window did not.
import { EvalError } from '../util/errors.js';

export interface WindowOptions {
  /** Most tokens one window holds (the model sees at most maxLength − 1 tokens of context). */
  maxLength: number;
  /**
   * Distance between window starts, 1..maxLength − 1. Windows must overlap by at least one token: a window's first
   * token has no context in it, so with disjoint windows (stride = maxLength, which the transformers guide allows)
   * the first token of every later window would go unscored.
   */
  stride: number;
}

/**
 * One forward window over tokens [begin, end) of a sequence. Tokens at positions [scoreFrom, end) are scored,
 * each predicted from the logits of the position before it, with context from `begin` on.
 */
export interface ScoreWindow {
  begin: number;
  end: number;
  scoreFrom: number;
}

/**
 * Plans the windows of one sequence of `length` tokens, as transformers' "Perplexity of fixed-length models":
 *
 *   for begin in range(0, L, stride): end = min(begin + max_length, L); score the last end − prev_end tokens;
 *   prev_end = end; stop once end == L.
 *
 * With stride < maxLength every position 1..L−1 is scored exactly once (position 0 has no context). The guide weights
 * each window's loss by its label count minus one; we count scored tokens exactly, so a text's mean NLL is the plain
 * mean over its scored positions.
 */
export function planWindows(length: number, opts: WindowOptions): ScoreWindow[] {
  checkWindowOptions(opts);
  const windows: ScoreWindow[] = [];
  if (length < 2) return windows;
  let prevEnd = 0;
  for (let begin = 0; begin < length; begin += opts.stride) {
    const end = Math.min(begin + opts.maxLength, length);
    windows.push({ begin, end, scoreFrom: Math.max(prevEnd, begin + 1) });
    prevEnd = end;
    if (end === length) break;
  }
  return windows;
}

export function checkWindowOptions(opts: WindowOptions): void {
  const { maxLength, stride } = opts;
  if (!Number.isInteger(maxLength) || maxLength < 2) {
    throw new EvalError('WINDOW_MAX_LENGTH', `--max-length must be an integer ≥ 2, got ${maxLength}`, {
      fix: 'pass --max-length N (at most the model\'s context length)',
    });
  }
  if (!Number.isInteger(stride) || stride < 1 || stride >= maxLength) {
    throw new EvalError('WINDOW_STRIDE', `--stride must be an integer in 1..${maxLength - 1} (below --max-length ${maxLength}), got ${stride}`, {
      fix: 'windows must overlap so every token after the first has context: use --stride < --max-length (e.g. half of it)',
    });
  }
}

/** Scored positions of a sequence of `length` tokens (every position after the first). */
export function scoredPositions(length: number): number {
  return Math.max(0, length - 1);
}
