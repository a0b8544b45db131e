// Output folders given on the command line: refuse to write into a non-empty one unless asked to replace it.
import { readdir, stat } from 'node:fs/promises';
import { UsageError } from './errors.js';

export async function refuseNonEmpty(dir: string, overwrite: boolean): Promise<void> {
  if (overwrite) return;
  const st = await stat(dir).catch(() => undefined);
  if (!st) return;
  if (!st.isDirectory()) {
    throw new UsageError('the output path exists and is not a folder', { code: 'OUT_NOT_DIR', file: dir, fix: 'choose another --out' });
  }
  if ((await readdir(dir)).length > 0) {
    throw new UsageError('the output folder is not empty', {
      code: 'OUT_NOT_EMPTY',
      file: dir,
      fix: 'choose an empty or new --out folder, or pass --force to replace it',
    });
  }
}
