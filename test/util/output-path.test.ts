// The one output-path check: these cases run in-process (only the check, never a write), so a regression can
// never delete the places it protects.
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkOutputFile, checkOutputFolder, checkWorkFolder } from '../../src/util/output-path.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'phi-forge-outpath-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

const code = (p: Promise<unknown>) => p.then(() => 'ok', (e: { code?: string }) => e.code);

describe('checkOutputFolder', () => {
  it('absent and empty folders are fine; a non-empty one needs force', async () => {
    expect(await checkOutputFolder(join(dir, 'new', 'deeper'), { flag: '--out' })).toBe(join(dir, 'new', 'deeper'));
    await mkdir(join(dir, 'empty'));
    expect(await code(checkOutputFolder(join(dir, 'empty'), { flag: '--out' }))).toBe('ok');
    await mkdir(join(dir, 'full'));
    await writeFile(join(dir, 'full', 'f'), 'x');
    expect(await code(checkOutputFolder(join(dir, 'full'), { flag: '--out' }))).toBe('OUT_NOT_EMPTY');
    expect(await code(checkOutputFolder(join(dir, 'full'), { flag: '--out', force: true }))).toBe('ok');
  });

  it('--force never replaces the root, the home folder, the working folder or a folder holding one of them', async () => {
    const home = join(dir, 'home');
    await mkdir(home);
    await writeFile(join(home, 'keep'), 'x');
    const saved = process.env.HOME;
    process.env.HOME = home; // os.homedir() reads HOME
    try {
      expect(await code(checkOutputFolder('/', { flag: '--out', force: true }))).toBe('OUT_PROTECTED');
      expect(await code(checkOutputFolder(home, { flag: '--out', force: true }))).toBe('OUT_PROTECTED');
      expect(await code(checkOutputFolder(process.cwd(), { flag: '--out', force: true }))).toBe('OUT_PROTECTED');
      expect(await code(checkOutputFolder(dirname(process.cwd()), { flag: '--out', force: true }))).toBe('OUT_PROTECTED');
      const err = await checkOutputFolder(home, { flag: '--out', force: true }).catch((e: Error) => e);
      expect(String(err)).toContain('the home folder');
    } finally {
      process.env.HOME = saved;
    }
  });

  it('never an input, a folder holding one, or a symlink to one', async () => {
    const src = join(dir, 'src');
    await mkdir(src);
    await writeFile(join(src, 'in.bin'), 'x');
    await symlink(src, join(dir, 'link-to-src'));
    for (const out of [src, join(dir, 'link-to-src'), dir]) {
      expect(await code(checkOutputFolder(out, { flag: '--out', force: true, inputs: [join(src, 'in.bin')] }))).toBe('OUT_HOLDS_INPUT');
    }
    // writing beside or below the input is fine
    expect(await code(checkOutputFolder(join(src, 'onnx'), { flag: '--out', inputs: [join(src, 'in.bin')] }))).toBe('ok');
  });

  it('system places, files in the way and dangling links are refused', async () => {
    expect(await code(checkOutputFolder('/proc/self', { flag: '--out' }))).toBe('OUT_SYSTEM_PLACE');
    expect(await code(checkOutputFolder('/sys/kernel/x', { flag: '--out' }))).toBe('OUT_SYSTEM_PLACE');
    expect(await code(checkOutputFolder('/dev/shm/x', { flag: '--out' }))).toBe('OUT_SYSTEM_PLACE');
    // a symlink into /proc is resolved, not trusted by name
    await symlink('/proc/self', join(dir, 'sneaky'));
    expect(await code(checkOutputFolder(join(dir, 'sneaky', 'x'), { flag: '--out' }))).toBe('OUT_SYSTEM_PLACE');
    await writeFile(join(dir, 'plain'), 'x');
    expect(await code(checkOutputFolder(join(dir, 'plain'), { flag: '--out' }))).toBe('OUT_NOT_DIR');
    expect(await code(checkOutputFolder(join(dir, 'plain', 'below'), { flag: '--out' }))).toBe('OUT_PARENT_NOT_DIR');
    await symlink(join(dir, 'nowhere'), join(dir, 'dangling'));
    expect(await code(checkOutputFolder(join(dir, 'dangling'), { flag: '--out' }))).toBe('OUT_UNRESOLVABLE');
  });
});

describe('checkOutputFile and checkWorkFolder', () => {
  it('a file output may not be a folder or an input; a work folder may not be a file', async () => {
    expect(await code(checkOutputFile('/', { flag: '--out' }))).toBe('OUT_IS_DIR');
    expect(await code(checkOutputFile(dir, { flag: '--out' }))).toBe('OUT_IS_DIR');
    await writeFile(join(dir, 'model.onnx'), 'x');
    expect(await code(checkOutputFile(join(dir, 'model.onnx'), { flag: '--out', inputs: [join(dir, 'model.onnx')] }))).toBe('OUT_IS_INPUT');
    expect(await code(checkOutputFile(join(dir, 'out.onnx'), { flag: '--out', inputs: [join(dir, 'model.onnx')] }))).toBe('ok');
    expect(await code(checkWorkFolder(join(dir, 'model.onnx'), '--artifacts'))).toBe('OUT_NOT_DIR');
    expect(await code(checkWorkFolder(dir, '--artifacts'))).toBe('ok');
  });
});
