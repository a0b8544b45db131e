// The source stage's recipe tokenizer: a tokenizer.path that holds no tokenizer is an error before any work, and the
// tokenizer files' content is part of the stage key.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sourceStage } from '../../src/stages/source.js';
import { stageKey } from '../../src/stages/runner.js';
import { parseRecipe } from '../../src/recipes/load.js';
import { FileHashMemo } from '../../src/util/hash.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'phi-forge-source-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

async function stageFor(tokenizerPath: string) {
  const recipe = parseRecipe({ source: { synth: { preset: 'phi-4-mini' } }, tokenizer: { path: tokenizerPath }, targets: [{ target: 'cpu' }] }, 'r.json', 'r');
  const memo = await FileHashMemo.open(join(dir, 'memo.json'));
  return sourceStage({ model: 'r', recipe, resolvePath: (p) => join(dir, p), memo });
}

describe('source stage: recipe tokenizer.path', () => {
  it('a folder that does not exist, or holds no tokenizer.json/tokenizer.model, is refused naming it', async () => {
    const missing = await stageFor('no-such-folder').catch((e) => e);
    expect(missing.code).toBe('TOKENIZER_MISSING');
    expect(missing.message).toContain(join(dir, 'no-such-folder'));
    await mkdir(join(dir, 'only-config'));
    await writeFile(join(dir, 'only-config', 'tokenizer_config.json'), '{}');
    const partial = await stageFor('only-config').catch((e) => e);
    expect(partial.code).toBe('TOKENIZER_MISSING');
    expect(partial.message).toMatch(/no tokenizer\.json or tokenizer\.model/);
  });

  it('an edit to a tokenizer file changes the stage key', async () => {
    await mkdir(join(dir, 'tok'));
    await writeFile(join(dir, 'tok', 'tokenizer.json'), '{"a":1}');
    const a = await stageFor('tok');
    expect(Object.keys(a.inputs)).toEqual(['tokenizer/tokenizer.json']);
    await writeFile(join(dir, 'tok', 'tokenizer.json'), '{"a":2}');
    const b = await stageFor('tok');
    expect(stageKey(b)).not.toBe(stageKey(a));
  });
});
