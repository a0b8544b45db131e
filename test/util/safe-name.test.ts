// The one rule for names read from JSON that become paths: a single segment, or a relative path that stays inside,
// and (on disk) a regular file reached without symbolic links.
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PackageError, RecipeError } from '../../src/util/errors.js';
import {
  assertSafeRelativePath,
  assertSafeSegment,
  isSafeRelativePath,
  isSafeSegment,
  regularFileProblem,
  symlinkOnPath,
} from '../../src/util/safe-name.js';

/** Names that must never be joined to a folder, as one segment or as any segment of a path. */
const UNSAFE_SEGMENTS = ['', '.', '..', 'a/b', '../x', '/abs', 'a\\b', '..\\x', 'C:', 'c:x', 'x\u0000y', 'x\ny', 'x\r', '\u007f', '\u0085'];

describe('isSafeSegment', () => {
  it('accepts plain file names, including dots inside, unicode and spaces', () => {
    for (const n of ['model.onnx', 'tiny-phi-cpu.tar.gz', '.hidden', '...', 'a..b', 'Phi 4 mini', 'modèle']) expect([n, isSafeSegment(n)]).toEqual([n, true]);
  });

  it('refuses empty, dot names, separators, drives and control characters', () => {
    for (const n of UNSAFE_SEGMENTS) expect([n, isSafeSegment(n)]).toEqual([n, false]);
    for (const n of [undefined, null, 3, {}, ['a']]) expect(isSafeSegment(n)).toBe(false);
  });

  it('throws a PackageError (or the class asked for) naming the file, the field and the value', () => {
    const ctx = { file: '/r/release.json', field: 'entries[0].archives[0].file' };
    expect(assertSafeSegment('ok.tar.gz', ctx)).toBe('ok.tar.gz');
    let err: unknown;
    try {
      assertSafeSegment('../payload.sh', ctx);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PackageError);
    expect(err).toMatchObject({ code: 'UNSAFE_NAME', file: '/r/release.json' });
    expect((err as Error).message).toMatch(/^\/r\/release\.json: entries\[0\]\.archives\[0\]\.file "\.\.\/payload\.sh" must be a plain file name/);
    expect((err as Error).message).toMatch(/fix: /);
    // A control character is shown escaped: the message stays one line.
    expect(() => assertSafeSegment('a\nb', ctx)).toThrow(/"a\\nb"/);
    expect(() => assertSafeSegment('..', ctx, RecipeError)).toThrow(RecipeError);
  });
});

describe('isSafeRelativePath', () => {
  it('accepts relative paths with sub-folders', () => {
    for (const p of ['model.onnx', 'sub/model.onnx.data', 'a/b/c.json']) expect([p, isSafeRelativePath(p)]).toEqual([p, true]);
  });

  it('refuses absolute paths, `..` anywhere, empty segments and any unsafe segment', () => {
    const bad = ['/etc/passwd', 'a/../b', 'a/./b', 'a//b', 'a/', './a', 'sub\\..\\x', 'C:/x', ...UNSAFE_SEGMENTS.filter((s) => !s.includes('/')).map((s) => `sub/${s}`)];
    for (const p of bad) expect([p, isSafeRelativePath(p)]).toEqual([p, false]);
    expect(() => assertSafeRelativePath('../x', { file: 'm.json', field: 'files[2].path' })).toThrow(
      expect.objectContaining({ code: 'UNSAFE_PATH', message: expect.stringMatching(/files\[2\]\.path "\.\.\/x" must be a relative path inside the folder/) }),
    );
  });
});

describe('regularFileProblem / symlinkOnPath', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'phi-forge-safe-name-'));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('accepts a regular file in a real folder, names a link, a missing part and a folder', async () => {
    const outside = join(dir, 'outside');
    const pkg = join(dir, 'pkg');
    await mkdir(join(pkg, 'sub'), { recursive: true });
    await mkdir(outside);
    await writeFile(join(outside, 'secret'), 's');
    await writeFile(join(pkg, 'sub', 'f'), 'f');
    await symlink(join(outside, 'secret'), join(pkg, 'link'));
    await symlink(outside, join(pkg, 'linkdir'));
    expect(await regularFileProblem(pkg, 'sub/f')).toBeUndefined();
    expect(await regularFileProblem(pkg, 'link')).toEqual({ missing: false, detail: 'link is a symbolic link' });
    expect(await regularFileProblem(pkg, 'linkdir/secret')).toEqual({ missing: false, detail: 'linkdir is a symbolic link' });
    expect(await regularFileProblem(pkg, 'sub')).toEqual({ missing: false, detail: 'sub is not a regular file' });
    expect(await regularFileProblem(pkg, 'sub/f/x')).toEqual({ missing: false, detail: 'sub/f is not a folder' });
    expect(await regularFileProblem(pkg, 'nope/f')).toEqual({ missing: true, detail: 'nope does not exist' });
    expect(await symlinkOnPath(pkg, 'linkdir/secret')).toBe('linkdir');
    expect(await symlinkOnPath(pkg, 'sub/f')).toBeUndefined();
  });
});
