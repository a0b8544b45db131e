// Issue 15, through the real CLI in child processes: outputs never escape, never destroy an input or a user's folder,
// and bad paths end in one clear error line (no "internal error", no stack trace), with one JSON document on --json.
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertCheckpoint } from '../../src/arch/convert.js';
import { synthCheckpoint } from '../../src/arch/synth.js';
import { sharedFixture } from '../helpers/fixtures.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const STORIES = sharedFixture('stories260K/stories260K.bin');
let work: string;
let ckpt: string;
let model: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'phi-forge-out-safety-'));
  ckpt = join(work, 'ckpt');
  await synthCheckpoint({ preset: 'phi-4-mini', scale: 'tiny', outDir: ckpt });
  model = join(work, 'model');
  await convertCheckpoint({ checkpointDir: ckpt, outDir: model });
});
afterAll(async () => rm(work, { recursive: true, force: true }));

async function cli(args: string[], env: Record<string, string> = {}) {
  return execa('node', ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: ROOT,
    reject: false,
    timeout: 60_000,
    env: { CI: 'true', PHI_FORGE_ARTIFACTS: join(work, 'artifacts'), ...env },
  });
}

/** A refused command: the exit code, one `error:` line naming the problem, no internal error or stack trace. */
function expectCleanError(r: Awaited<ReturnType<typeof cli>>, exitCode: number, message: RegExp): void {
  expect(r.exitCode, r.stderr).toBe(exitCode);
  expect(r.stderr).toMatch(/^error: /);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
}

describe('outputs never destroy inputs or user folders', () => {
  it('convert-llama2c --force refuses an --out that holds the input; the input and its neighbours survive', async () => {
    if (!STORIES) return;
    const x = join(work, 'x');
    await mkdir(x);
    await copyFile(STORIES, join(x, 'stories260K.bin'));
    await writeFile(join(x, 'notes.txt'), 'mine');
    const r = await cli(['convert-llama2c', join(x, 'stories260K.bin'), '--out', x, '--force']);
    expectCleanError(r, 2, /holds the input/);
    expect((await readdir(x)).sort()).toEqual(['notes.txt', 'stories260K.bin']);
  });

  it('convert refuses a non-empty --out without --force, and with --force replaces it whole', async () => {
    const out = join(work, 'conv');
    await mkdir(out);
    await writeFile(join(out, 'model.onnx'), 'my own file');
    const r = await cli(['convert', ckpt, '--out', out]);
    expectCleanError(r, 2, /is not empty[\s\S]*--force/);
    expect(await readFile(join(out, 'model.onnx'), 'utf8')).toBe('my own file');
    const forced = await cli(['convert', ckpt, '--out', out, '--force', '--json']);
    expect(forced.exitCode, forced.stderr).toBe(0);
    expect(JSON.parse(forced.stdout).outDir).toBe(out);
    expect((await readdir(out)).sort()).toEqual(['genai_config.json', 'model.onnx', 'model.onnx.data']);
    expect((await readdir(work)).filter((f) => f.includes('.tmp-'))).toEqual([]);
    // and convert --out the checkpoint itself is refused even with --force
    const self = await cli(['convert', ckpt, '--out', ckpt, '--force']);
    expectCleanError(self, 2, /is the input/);
    expect(await stat(join(ckpt, 'config.json'))).toBeTruthy();
  });
});

describe('build never replaces a folder of the user\'s', () => {
  it('--out DIR/<model>-<target> holding user files is refused before any work; a previous package is replaced', async () => {
    const out = join(work, 'pkgs');
    const mine = join(out, 'tiny-phi-cpu');
    await mkdir(mine, { recursive: true });
    await writeFile(join(mine, 'thesis.tex'), 'years of work');
    const art = join(work, 'art-publish');
    const r = await cli(['build', 'tiny-phi', '--target', 'cpu', '--out', out, '--artifacts', art]);
    expectCleanError(r, 1, /will not replace .*tiny-phi-cpu: it is not a phi-forge package[\s\S]*--force/);
    expect(await readdir(mine)).toEqual(['thesis.tex']);
    expect(await stat(art).catch(() => undefined)).toBeUndefined(); // refused before the first stage
    // A package published before is ours to replace; files added to it make it the user's again.
    await rm(mine, { recursive: true });
    const first = await cli(['build', 'tiny-phi', '--target', 'cpu', '--out', out, '--artifacts', art]);
    expect(first.exitCode, first.stderr).toBe(0);
    const again = await cli(['build', 'tiny-phi', '--target', 'cpu', '--out', out, '--artifacts', art]);
    expect(again.exitCode, again.stderr).toBe(0);
    await writeFile(join(mine, 'notes.md'), 'mine');
    const added = await cli(['build', 'tiny-phi', '--target', 'cpu', '--out', out, '--artifacts', art]);
    expectCleanError(added, 1, /holds files that are not part of the package: notes\.md/);
    const forced = await cli(['build', 'tiny-phi', '--target', 'cpu', '--out', out, '--artifacts', art, '--force']);
    expect(forced.exitCode, forced.stderr).toBe(0);
    expect(await readdir(mine)).not.toContain('notes.md');
  });
});

describe('bad output places end in one clear error, leaving nothing behind', () => {
  it('a system place is refused at once (Node mkdir would spin forever under /proc)', async () => {
    const r = await cli(['synth', 'phi-4-mini', '--out', '/proc/self/phi-forge']);
    expectCleanError(r, 2, /inside \/proc, a system folder/);
  });

  it('a file where a folder is needed, and a folder where a file is needed', async () => {
    const file = join(work, 'a-file');
    await writeFile(file, 'x');
    const folder = join(work, 'a-folder');
    await mkdir(folder);
    const cases: [string[], RegExp][] = [
      [['convert', ckpt, '--out', file], /--out .*a-file exists and is not a folder/],
      [['build', 'tiny-phi', '--artifacts', file], /--artifacts .*a-file is a file, not a folder/],
      [['compare', 'tiny-phi', '--schemes', 'int4', '--report', file], /--report .*a-file is a file, not a folder/],
      [['quantize', join(model, 'model.onnx'), '--out', '/', '--scheme', 'int4'], /--out \/ is a folder; a file path is needed/],
      [['quantize', join(model, 'model.onnx'), '--out', folder, '--scheme', 'int4'], /a-folder is a folder; a file path is needed/],
      [['eval', model, '--tokens', file, '--save-reference', '/'], /--save-reference \/ is a folder/],
      [['eval', model, '--tokens', file, '--save-reference', join(model, 'model.onnx')], /is the input/],
      [['convert-llama2c', folder, '--out', join(work, 'l2c')], /is not a file/],
      [['synth', 'phi-4-mini', '--out', join(file, 'sub')], /is a file, so nothing can be created under it/],
    ];
    const results = await Promise.all(cases.map(([args]) => cli(args)));
    results.forEach((r, i) => expectCleanError(r, r.exitCode === 1 ? 1 : 2, cases[i][1]));
    // quantize wrote no stray data file beside the folder or at the root
    expect(await stat(`${folder}.data`).catch(() => undefined)).toBeUndefined();
    expect(await stat('/.data').catch(() => undefined)).toBeUndefined();
    expect(await readdir(folder)).toEqual([]);
  });

  it('--json prints exactly one JSON document on failure, with the error code', async () => {
    const file = join(work, 'json-file');
    await writeFile(file, 'x');
    const r = await cli(['build', 'tiny-phi', '--artifacts', file, '--json']);
    expect(r.exitCode).toBe(2);
    const doc = JSON.parse(r.stdout) as { ok: boolean; exitCode: number; error: { code: string; file: string } };
    expect(doc).toMatchObject({ ok: false, exitCode: 2, error: { code: 'OUT_NOT_DIR', file } });
  });
});
