import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listRecipes, loadRecipe, loadRecipeFile, parseRecipe } from '../../src/recipes/load.js';
import { RecipeError } from '../../src/util/errors.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'phi-forge-recipes-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const minimal = { source: { hub: 'microsoft/Phi-4-mini-instruct' }, targets: [{ target: 'cpu' }] };

describe('shipped recipes', () => {
  it('all parse, and include every required model', async () => {
    const names = await listRecipes();
    for (const n of [
      'phi-3-mini-4k-instruct',
      'phi-3-mini-128k-instruct',
      'phi-3.5-mini-instruct',
      'phi-3-medium-4k-instruct',
      'phi-4-mini-instruct',
      'phi-4-mini-reasoning',
      'phi-4',
      'phi-2',
      'tiny-phi',
    ]) {
      expect(names).toContain(n);
    }
    for (const n of names) {
      const { recipe } = await loadRecipe(n);
      expect(recipe.name).toBe(n);
      expect(recipe.targets.length).toBeGreaterThan(0);
    }
  });

  it('fills defaults', async () => {
    const r = parseRecipe(minimal, 'x.json', 'x');
    expect(r.name).toBe('x');
    expect(r.builder).toBe('native');
    expect(r.source).toEqual({ hub: 'microsoft/Phi-4-mini-instruct', revision: 'main' });
    const q = parseRecipe({ ...minimal, targets: [{ target: 'cpu', quant: { scheme: 'int4' } }] }, 'x.json', 'x');
    expect(q.targets[0].quant).toMatchObject({ scheme: 'int4', algo: 'rtn', block_size: 32, asym: false, exclude: [] });
  });
});

describe('recipe errors name the file and the field path', () => {
  it('bad block size', async () => {
    const f = join(dir, 'phi-4-mini.json');
    await writeFile(
      f,
      JSON.stringify({ ...minimal, targets: [{ target: 'cpu' }, { target: 'mobile', quant: { scheme: 'int4', block_size: 48 } }] }),
    );
    const err = await loadRecipeFile(f).catch((e) => e);
    expect(err).toBeInstanceOf(RecipeError);
    expect(err.exitCode).toBe(2);
    expect(err.message).toContain('phi-4-mini.json: targets[1].quant.block_size: expected a power of two ≥ 16 and ≤ 256, got 48');
  });

  it('unknown field, unknown target, wrong type, bad YAML, bad source', async () => {
    const cases: [unknown, RegExp][] = [
      [{ ...minimal, targetz: [] }, /x\.json: \(root\): unknown field "targetz"/],
      [{ ...minimal, targets: [{ target: 'tpu' }] }, /targets\[0\]\.target: Invalid option: expected one of "cpu"\|"cuda"\|"dml"\|"mobile"/],
      [{ ...minimal, targets: [{ target: 'cpu', quant: { scheme: 'int4', asym: 'yes' } }] }, /targets\[0\]\.quant\.asym: .*expected boolean/],
      [{ ...minimal, targets: [] }, /targets: .*>=1/],
      [{ ...minimal, source: { hub: 'not a hub id' } }, /x\.json: source\.hub: expected a hub id like microsoft\/Phi-4-mini-instruct/],
    ];
    for (const [value, re] of cases) {
      expect(() => parseRecipe(value, 'x.json', 'x')).toThrow(re);
    }
    const y = join(dir, 'bad.yaml');
    await writeFile(y, 'source: {hub: [\n');
    await expect(loadRecipeFile(y)).rejects.toThrow(/bad\.yaml: not valid YAML/);
  });

  it('YAML recipes load like JSON ones', async () => {
    const y = join(dir, 'ok.yaml');
    await writeFile(y, 'source:\n  path: ./ckpt\ntargets:\n  - target: cuda\n    quant: {scheme: int8}\n');
    const { recipe } = await loadRecipeFile(y);
    expect(recipe.name).toBe('ok');
    expect(recipe.targets[0].quant?.scheme).toBe('int8');
  });

  it('an unknown recipe name lists the known ones', async () => {
    const err = await loadRecipe('phi-5').catch((e) => e);
    expect(err).toBeInstanceOf(RecipeError);
    expect(err.message).toMatch(/unknown recipe "phi-5"/);
    expect(err.message).toMatch(/tiny-phi/);
    expect(err.message).toMatch(/phi-4-mini-instruct/);
  });
});

describe('a source matching no form', () => {
  it('says which forms exist', () => {
    expect(() => parseRecipe({ ...minimal, source: { git: 'x' } }, 'x.json', 'x')).toThrow(/x\.json: source: does not match any accepted form/);
  });
});
