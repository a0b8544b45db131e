import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runStage, stageKey, type StageDefinition } from '../../src/stages/runner.js';
import { StageError } from '../../src/util/errors.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'phi-forge-stage-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function writer(calls: string[], options: unknown = { a: 1 }): StageDefinition<{ n: number }> {
  return {
    name: 'convert',
    version: 1,
    model: 'tiny-phi',
    inputs: { source: 'abc' },
    options,
    run: async (ctx) => {
      calls.push(ctx.outDir);
      await writeFile(join(ctx.outDir, 'out.txt'), 'hello');
      return { n: 42 };
    },
  };
}

describe('runStage', () => {
  it('runs once, then reuses the finished folder', async () => {
    const calls: string[] = [];
    const first = await runStage(writer(calls), { root });
    expect(first.cached).toBe(false);
    expect(await readFile(join(first.dir, 'out.txt'), 'utf8')).toBe('hello');
    const record = JSON.parse(await readFile(join(first.dir, 'stage.json'), 'utf8'));
    expect(record.result).toEqual({ n: 42 });
    expect(record.inputs).toEqual({ source: 'abc' });
    const second = await runStage(writer(calls), { root });
    expect(second.cached).toBe(true);
    expect(second.dir).toBe(first.dir);
    expect(calls).toHaveLength(1);
    expect(first.dir).toBe(join(root, 'tiny-phi', 'convert', first.key));
  });

  it('refuses a model name that is not one safe path segment, before creating anything', async () => {
    for (const model of ['..', '.', 'a/b', '../x', '.hidden', '']) {
      const def = { ...writer([]), model };
      await expect(runStage(def, { root })).rejects.toMatchObject({ code: 'MODEL_NAME_INVALID' });
    }
    expect(await readdir(root)).toEqual([]);
  });

  it('changing an option or an input hash redoes the stage in a new folder', async () => {
    const calls: string[] = [];
    const a = await runStage(writer(calls, { a: 1 }), { root });
    const b = await runStage(writer(calls, { a: 2 }), { root });
    expect(b.cached).toBe(false);
    expect(b.dir).not.toBe(a.dir);
    // key order of options does not matter
    expect(stageKey({ name: 's', version: 1, inputs: {}, options: { x: 1, y: 2 } })).toBe(
      stageKey({ name: 's', version: 1, inputs: {}, options: { y: 2, x: 1 } }),
    );
    expect(stageKey({ name: 's', version: 1, inputs: { i: 'a' }, options: {} })).not.toBe(
      stageKey({ name: 's', version: 1, inputs: { i: 'b' }, options: {} }),
    );
  });

  it('a failing stage leaves no folder behind and names the stage', async () => {
    const def = writer([]);
    def.run = async (ctx) => {
      await writeFile(join(ctx.outDir, 'partial.bin'), 'x');
      throw new Error('boom');
    };
    await expect(runStage(def, { root })).rejects.toThrow(StageError);
    await expect(runStage(def, { root })).rejects.toThrow(/stage convert failed: boom/);
    const parent = join(root, 'tiny-phi', 'convert');
    expect(await readdir(parent)).toEqual([]);
  });

  it('removes debris of a killed run and ignores a folder without stage.json', async () => {
    const def = writer([]);
    const key = stageKey(def);
    const parent = join(root, 'tiny-phi', 'convert');
    // a temp folder of a dead process, and a final-looking folder without stage.json
    await mkdir(join(parent, `.${key}.tmp-999999-0badc0de`), { recursive: true });
    await mkdir(join(parent, key), { recursive: true });
    await writeFile(join(parent, key, 'out.txt'), 'half');
    const out = await runStage(def, { root });
    // the folder without stage.json is not taken as finished: the stage runs and replaces it
    expect(out.cached).toBe(false);
    expect(await readFile(join(out.dir, 'out.txt'), 'utf8')).toBe('hello');
    expect((await readdir(parent)).filter((n) => n.includes('999999'))).toEqual([]);
  });
});
