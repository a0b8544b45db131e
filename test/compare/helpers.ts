// Test helpers for compare: the weight count of a checkpoint read straight from its safetensors header (independent
// of the ONNX graph), and a file's size on disk summed over a folder.
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** Elements of every 2-D tensor of a safetensors file: the linear and embedding weights of a decoder checkpoint. */
export async function matrixWeights(file: string): Promise<number> {
  const fh = await open(file, 'r');
  try {
    const len = Buffer.alloc(8);
    await fh.read(len, 0, 8, 0);
    const n = Number(len.readBigUInt64LE(0));
    const head = Buffer.alloc(n);
    await fh.read(head, 0, n, 8);
    const entries = JSON.parse(head.toString('utf8')) as Record<string, { shape?: number[] }>;
    let total = 0;
    for (const [name, e] of Object.entries(entries)) if (name !== '__metadata__' && e.shape?.length === 2) total += e.shape[0] * e.shape[1];
    return total;
  } finally {
    await fh.close();
  }
}

/** Bytes of all files under a folder. */
export async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    total += e.isDirectory() ? await folderBytes(p) : (await stat(p)).size;
  }
  return total;
}
