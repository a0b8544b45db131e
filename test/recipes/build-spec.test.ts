import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveBuildSpec } from '../../src/recipes/build-spec.js';
import { targetPlan } from '../../src/recipes/target-plan.js';
import { RecipeError } from '../../src/util/errors.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'phi-forge-spec-'));
  await mkdir(join(dir, 'my-ckpt'));
  await writeFile(join(dir, 'my-ckpt', 'config.json'), '{}');
  await writeFile(join(dir, 'stories.bin'), 'x');
  await writeFile(join(dir, '...bin'), 'x');
  await mkdir(join(dir, 'my-ckpt', 'sub'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('build spec', () => {
  it('a shipped recipe name keeps its targets; --target picks and adds targets', async () => {
    const all = await resolveBuildSpec('tiny-phi');
    expect(all.recipe.targets.map((t) => t.target)).toEqual(['cpu', 'cuda', 'dml', 'mobile']);
    const some = await resolveBuildSpec('tiny-phi', { targets: ['mobile', 'cpu'] });
    expect(some.recipe.targets.map((t) => t.target)).toEqual(['mobile', 'cpu']);
    expect(some.recipe.targets[0].size_budget_mb).toBe(4);
  });

  it('a folder, a llama2.c file and a hub id become recipes', async () => {
    const folder = await resolveBuildSpec(join(dir, 'my-ckpt'));
    expect(folder.recipe.source).toEqual({ path: join(dir, 'my-ckpt') });
    expect(folder.recipe.name).toBe('my-ckpt');
    const bin = await resolveBuildSpec(join(dir, 'stories.bin'));
    expect(bin.recipe.source).toEqual({ llama2c: join(dir, 'stories.bin') });
    const hub = await resolveBuildSpec('microsoft/Phi-4-mini-instruct', { targets: ['cuda'] });
    expect(hub.recipe.source).toEqual({ hub: 'microsoft/Phi-4-mini-instruct', revision: 'main' });
    expect(hub.recipe.name).toBe('phi-4-mini-instruct');
    expect(hub.recipe.targets.map((t) => t.target)).toEqual(['cuda']);
  });

  it('model names are one safe path segment: never ".", ".." or a path, whatever the spec is called', async () => {
    // A folder named through '..' is named after the folder it resolves to.
    const up = await resolveBuildSpec(join(dir, 'my-ckpt', 'sub', '..'));
    expect(up.recipe.name).toBe('my-ckpt');
    // A llama2.c file whose name leaves nothing usable is refused, naming the file.
    const dots = await resolveBuildSpec(join(dir, '...bin')).catch((e) => e);
    expect(dots).toBeInstanceOf(RecipeError);
    expect(dots.code).toBe('MODEL_NAME_INVALID');
    expect(dots.message).toContain('...bin');
    // A recipe may not name its model '..', '.', a path or a hidden name.
    for (const name of ['..', '.', 'a/b', '.x']) {
      const file = join(dir, 'named.json');
      await writeFile(file, JSON.stringify({ name, source: { path: 'ck' }, targets: [{ target: 'cpu' }] }));
      const err = await resolveBuildSpec(file).catch((e) => e);
      expect(err, name).toBeInstanceOf(RecipeError);
      expect(err.message).toMatch(/name: a model name is one path segment/);
    }
  });

  it('a recipe lists each target once; --target given twice builds it once', async () => {
    const file = join(dir, 'twice.json');
    await writeFile(file, JSON.stringify({ source: { path: 'ck' }, targets: [{ target: 'cpu' }, { target: 'mobile' }, { target: 'cpu' }] }));
    const err = await resolveBuildSpec(file).catch((e) => e);
    expect(err).toBeInstanceOf(RecipeError);
    expect(err.message).toContain('targets[2].target: target "cpu" is already targets[0]');
    const spec = await resolveBuildSpec('tiny-phi', { targets: ['cpu', 'cpu'] });
    expect(spec.recipe.targets.map((t) => t.target)).toEqual(['cpu']);
  });

  it('--precision overrides quantization or turns it off', async () => {
    const fp = await resolveBuildSpec('tiny-phi', { precision: 'fp16', targets: ['cpu'] });
    const plan = targetPlan(fp.recipe.targets[0], fp.recipe);
    expect(plan.precision).toBe('fp16');
    expect(plan.quant).toBeUndefined();
    const tern = await resolveBuildSpec('tiny-phi', { precision: 'ternary', targets: ['cpu'] });
    expect(targetPlan(tern.recipe.targets[0], tern.recipe).quant?.scheme).toBe('ternary');
  });

  it('target defaults: int4 b32, accuracy level 4 on cpu/mobile, fp16 on cuda/dml', async () => {
    const hub = await resolveBuildSpec('microsoft/phi-2', { targets: ['cpu', 'cuda', 'dml', 'mobile'] });
    const plans = hub.recipe.targets.map((t) => targetPlan(t, hub.recipe));
    expect(plans.map((p) => [p.target.id, p.precision, p.quant?.scheme, p.quant?.block_size, p.quant?.accuracy_level])).toEqual([
      ['cpu', 'fp32', 'int4', 32, 4],
      ['cuda', 'fp16', 'int4', 32, 0],
      ['dml', 'fp16', 'int4', 32, 0],
      ['mobile', 'fp32', 'int4', 32, 4],
    ]);
  });

  it('anything else is a usage error naming the shipped recipes', async () => {
    const err = await resolveBuildSpec('./no/such/place').catch((e) => e);
    expect(err).toBeInstanceOf(RecipeError);
    expect(err.exitCode).toBe(2);
    expect(err.message).toMatch(/not a recipe, a checkpoint folder/);
    expect(err.message).toMatch(/tiny-phi/);
  });
});
