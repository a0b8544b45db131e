// Human-readable numbers for progress lines and summaries.

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB'];

/** Bytes in decimal units with three significant digits, as the hub's web pages show sizes (7.67 GB). */
export function formatBytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1000 && u < UNITS.length - 1) {
    v /= 1000;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toPrecision(3)} ${UNITS[u]}`;
}

/** Indents every line of a block of text by n spaces. */
export function indent(s: string, n: number): string {
  return s
    .split('\n')
    .map((l) => ' '.repeat(n) + l)
    .join('\n');
}
