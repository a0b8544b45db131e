// Checks of numeric command-line flags: a whole number within bounds, or a UsageError naming the flag and the bound.
import { UsageError } from '../util/errors.js';

export interface WholeNumberBounds {
  min: number;
  /** Largest accepted value, and why (shown in the message). */
  max?: { value: number; why: string };
}

/**
 * Throws a UsageError unless `value` (as yargs parsed it; undefined when the flag is absent) is a whole number within
 * `bounds`. yargs turns text such as `abc` into NaN: that is reported as "not a number", not as "got NaN".
 */
export function checkWholeNumber(flag: string, value: number | undefined, bounds: WholeNumberBounds): void {
  if (value === undefined) return;
  const wanted = `a whole number ≥ ${bounds.min}${bounds.max ? ` and ≤ ${bounds.max.value}` : ''}`;
  if (Number.isNaN(value)) throw new UsageError(`${flag} must be ${wanted}; the value given is not a number`);
  if (!Number.isInteger(value) || value < bounds.min) throw new UsageError(`${flag} must be ${wanted}, got ${value}`);
  if (bounds.max && value > bounds.max.value) {
    throw new UsageError(`${flag} must be at most ${bounds.max.value} (${bounds.max.why}), got ${value}`);
  }
}
