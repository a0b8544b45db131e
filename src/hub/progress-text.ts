// One line of text for a hub download's progress, for a task tree's output (listr2 `task.output`).
import { formatBytes } from '../util/format.js';
import type { HubProgress } from './fetch-checkpoint.js';

export { formatBytes };

/** e.g. `model-00001-of-00002.safetensors 1.20 GB / 4.97 GB (3/9 files)`. */
export function formatHubProgress(p: HubProgress): string {
  const files = `(${p.filesDone}/${p.filesTotal} files)`;
  if (p.totalBytes === 0 || p.bytes >= p.totalBytes) return `${p.file} ${files}`;
  return `${p.file} ${formatBytes(p.bytes)} / ${formatBytes(p.totalBytes)} ${files}`;
}
