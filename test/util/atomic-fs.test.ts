// AtomicFileWriter: streamed writes appear only on commit, whole and in order, also while early flushes run.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AtomicFileWriter } from '../../src/util/atomic-fs.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'phi-forge-atomic-fs-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const piece = (k: number, n: number) => Uint8Array.from({ length: n }, (_, i) => (k * 31 + i) & 0xff);

describe('AtomicFileWriter', () => {
  it('writes pieces in order, flushing to disk on the way, and appears only on commit', async () => {
    const path = join(root, 'a.data');
    const w = await AtomicFileWriter.create(path, { flushBytes: 1000 }); // a flush every few pieces
    const pieces = Array.from({ length: 20 }, (_, k) => piece(k, 300 + k));
    for (const p of pieces) await w.write(p);
    expect(existsSync(path)).toBe(false);
    expect(w.offset).toBe(pieces.reduce((n, p) => n + p.byteLength, 0));
    await w.commit();
    expect(Buffer.compare(await readFile(path), Buffer.concat(pieces))).toBe(0);
    expect((await readdir(root)).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('abort during a flush removes the partial file', async () => {
    const path = join(root, 'b.data');
    const w = await AtomicFileWriter.create(path, { flushBytes: 10 });
    await w.write(piece(1, 100)); // starts a flush, not awaited
    await w.abort();
    expect(existsSync(path)).toBe(false);
    expect((await readdir(root)).filter((f) => f.startsWith('.b.data'))).toEqual([]);
  });
});
