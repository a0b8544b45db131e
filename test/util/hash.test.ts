import { execFileSync } from 'node:child_process';
import { mkdtemp, open, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileHashMemo, sha256Hex } from '../../src/util/hash.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'phi-forge-hash-'));
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('FileHashMemo', () => {
  it('hashes once, and again after an in-place edit whose size and mtime were restored (touch -r)', async () => {
    const file = join(dir, 'model.bin');
    const memoFile = join(dir, 'memo.json');
    await writeFile(file, 'aaaaaaaa');
    const memo = await FileHashMemo.open(memoFile);
    expect(await memo.hash(file)).toBe(sha256Hex('aaaaaaaa'));
    await memo.save();

    const before = await stat(file);
    const ref = join(dir, 'times');
    await writeFile(ref, '');
    execFileSync('touch', ['-r', file, ref]); // keep the file's times (nanoseconds) aside, as an editor's backup would
    await sleep(20);
    // Same size, same inode, mtime put back: only ctime tells the content changed.
    const fh = await open(file, 'r+');
    await fh.write('b', 3);
    await fh.close();
    execFileSync('touch', ['-r', ref, file]);
    const after = await stat(file);
    expect([after.size, after.mtimeMs, after.ino]).toEqual([before.size, before.mtimeMs, before.ino]);

    const reopened = await FileHashMemo.open(memoFile);
    expect(await reopened.hash(file)).toBe(sha256Hex('aaabaaaa'));
  });

  it('an entry written without ctime (older memo files) is hashed again, not trusted', async () => {
    const file = join(dir, 'w.bin');
    const memoFile = join(dir, 'memo.json');
    await writeFile(file, 'real content');
    const st = await stat(file);
    await writeFile(memoFile, JSON.stringify({ [file]: { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, sha256: 'stale' } }));
    const memo = await FileHashMemo.open(memoFile);
    expect(await memo.hash(file)).toBe(sha256Hex('real content'));
  });
});
