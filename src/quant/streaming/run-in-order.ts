// Runs async work with bounded concurrency and hands results over strictly in input order, so whatever a caller
// builds from them (initializer order, node order) is the same however the workers interleave; and cuts work lists
// into consecutive groups that fit a memory budget.

/**
 * Starts `work(items[i])` for at most `concurrency` items at once and calls `commit(item, result)` in input order
 * (awaiting it when it is async; the next item's work is already started, so workers stay busy during a commit).
 * On the first failure (of work or commit) it stops starting new work, waits for what is running, and rethrows.
 */
export async function runInOrder<T, R>(
  items: readonly T[],
  concurrency: number,
  work: (item: T) => Promise<R>,
  commit: (item: T, result: R) => void | Promise<void>,
): Promise<void> {
  const width = Math.max(1, Math.floor(concurrency));
  const running: Promise<R>[] = [];
  let next = 0;
  const start = () => {
    const p = work(items[next++]);
    // Keep an early rejection from surfacing as unhandled while an earlier item is awaited.
    p.catch(() => {});
    running.push(p);
  };
  while (next < items.length && running.length < width) start();
  for (let i = 0; i < items.length; i++) {
    try {
      const r = await running.shift()!;
      if (next < items.length) start();
      await commit(items[i], r);
    } catch (e) {
      await Promise.allSettled(running);
      throw e;
    }
  }
}

/** Consecutive items whose sizes fit the budget (at least one item per group). */
export function* chunkByBytes<T>(items: readonly T[], size: (t: T) => number, budget: number): Iterable<T[]> {
  let chunk: T[] = [];
  let bytes = 0;
  for (const t of items) {
    const b = size(t);
    if (chunk.length && bytes + b > budget) {
      yield chunk;
      chunk = [];
      bytes = 0;
    }
    chunk.push(t);
    bytes += b;
  }
  if (chunk.length) yield chunk;
}
