import { mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Checkpoint, parseSafetensorsIndex } from '../../src/checkpoint/checkpoint.js';
import { copyTokenizerFiles, findTokenizerFiles, hasUsableTokenizer } from '../../src/checkpoint/tokenizer-files.js';
import { CheckpointError } from '../../src/util/errors.js';
import {
  f32,
  layoutSafetensors,
  makeTempDir,
  rampTensors,
  removeTempDir,
  sharedFixturePath,
  tinyPhi3Config,
  writeTinyCheckpoint,
} from '../helpers/checkpoint.js';

let dir: string;
beforeEach(async () => {
  dir = await makeTempDir('phi-forge-ckpt-');
});
afterEach(async () => {
  await removeTempDir(dir);
});

const SPECS = [
  { name: 'model.embed_tokens.weight', shape: [32, 32] },
  { name: 'model.norm.weight', shape: [32] },
  { name: 'lm_head.weight', shape: [32, 32] },
];

async function openError(d = dir): Promise<CheckpointError> {
  const e = await Checkpoint.open(d).then(
    (c) => c.close().then(() => undefined),
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(CheckpointError);
  expect((e as CheckpointError).file).toBeTruthy();
  return e as CheckpointError;
}

/** A sharded checkpoint (3 shards of one tensor each) and its parsed index, for index tests to tamper with. */
async function sharded(): Promise<Record<string, unknown>> {
  await writeTinyCheckpoint(dir, { tensors: rampTensors(SPECS), maxShardBytes: 4096 });
  return JSON.parse(await readFile(join(dir, 'model.safetensors.index.json'), 'utf8'));
}
const writeIndex = (index: unknown): Promise<void> => writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify(index));

describe('opening', () => {
  it('a single-file checkpoint: config, generation config, names, entries, reads', async () => {
    await writeTinyCheckpoint(dir, { tensors: rampTensors(SPECS), generationConfig: { eos_token_id: [2, 3] } });
    const c = await Checkpoint.open(dir);
    try {
      expect(c.config.architecture).toBe('Phi3ForCausalLM');
      expect(c.generationConfig?.eos_token_id).toEqual([2, 3]);
      expect(c.tensorNames().sort()).toEqual(SPECS.map((s) => s.name).sort());
      expect(c.has('model.norm.weight')).toBe(true);
      expect(c.has('nope')).toBe(false);
      const e = c.entry('model.norm.weight');
      expect(e).toMatchObject({ dtype: 'F32', shape: [32], file: join(dir, 'model.safetensors') });
      expect(e.end - e.begin).toBe(128);
      const norm = await c.readFloat32('model.norm.weight');
      expect(norm[0]).toBe(1);
      expect(norm[31]).toBeCloseTo(1.031, 6);
      expect(await c.readRange('model.norm.weight', 4, 4)).toEqual(f32([1.001]));
      await expect(c.readRaw('nope')).rejects.toMatchObject({ code: 'CHECKPOINT_TENSOR_MISSING', where: 'tensor nope' });
    } finally {
      await c.close();
    }
  });

  it('a sharded checkpoint: tensors in the index order, each from its shard', async () => {
    const index = await sharded();
    expect(new Set(Object.values(index.weight_map as object)).size).toBe(3);
    const c = await Checkpoint.open(dir);
    try {
      expect(c.files.length).toBe(3);
      expect(c.tensorNames()).toEqual(Object.keys(index.weight_map as object));
      for (const t of rampTensors(SPECS)) {
        expect(c.entry(t.name).file).toBe(join(dir, (index.weight_map as Record<string, string>)[t.name]));
        expect(await c.readRaw(t.name)).toEqual(await t.data());
      }
    } finally {
      await c.close();
    }
  });

  it('follows symlinked files as in the Hugging Face cache (snapshots/<rev>/x -> ../../blobs/<sha>)', async () => {
    const blobs = join(dir, 'blobs');
    const snap = join(dir, 'snapshots', 'abc');
    await mkdir(blobs);
    await mkdir(snap, { recursive: true });
    await writeTinyCheckpoint(blobs, { tensors: rampTensors(SPECS) });
    for (const name of ['config.json', 'model.safetensors']) await symlink(join('..', '..', 'blobs', name), join(snap, name));
    const c = await Checkpoint.open(snap);
    expect(Array.from(await c.readFloat32('model.norm.weight')).slice(0, 2)).toEqual([1, Math.fround(1.001)]);
    await c.close();
  });

  it('a missing folder, a missing config.json, no weights (with a hint for .bin checkpoints)', async () => {
    expect((await openError(join(dir, 'nope'))).code).toBe('CHECKPOINT_NOT_DIR');
    expect((await openError()).code).toBe('CONFIG_MISSING');
    await writeFile(join(dir, 'config.json'), JSON.stringify(tinyPhi3Config()));
    expect((await openError()).code).toBe('CHECKPOINT_NO_WEIGHTS');
    await writeFile(join(dir, 'pytorch_model.bin'), 'x');
    const e = await openError();
    expect(e.code).toBe('CHECKPOINT_NO_WEIGHTS');
    expect(e.fix).toMatch(/convert them to safetensors/);
  });

  it('a corrupt shard fails while opening, naming the shard', async () => {
    await sharded();
    const shard = join(dir, 'model-00002-of-00003.safetensors');
    const bytes = await readFile(shard);
    await writeFile(shard, bytes.subarray(0, bytes.byteLength - 1));
    const e = await openError();
    expect(e.code).toBe('SAFETENSORS_INCOMPLETE');
    expect(e.file).toBe(shard);
  });
});

describe('index validation', () => {
  it('rejects shard names that escape the folder (path traversal)', async () => {
    const index = await sharded();
    // a real safetensors file outside the folder that a traversal would reach
    const outside = join(dir, '..', `outside-${Date.now()}.safetensors`);
    await writeFile(outside, layoutSafetensors([{ name: 'model.norm.weight', dtype: 'F32', shape: [1], bytes: f32([9]) }]));
    try {
      for (const bad of [
        `../${outside.split('/').pop()}`,
        outside,
        'sub/../../x.safetensors',
        'a\\..\\b.safetensors',
        './model-00001-of-00003.safetensors',
        'C:/x.safetensors',
        'model.safetensors\0.txt',
      ]) {
        await writeIndex({ ...index, weight_map: { ...(index.weight_map as object), 'model.norm.weight': bad } });
        const e = await openError();
        expect(e.code, bad).toBe('INDEX_PATH_TRAVERSAL');
        expect(e.where).toBe('tensor model.norm.weight');
        expect(e.file).toBe(join(dir, 'model.safetensors.index.json'));
      }
    } finally {
      await rm(outside, { force: true });
    }
  });

  it('accepts shard files in a subfolder of the checkpoint', async () => {
    const index = await sharded();
    await mkdir(join(dir, 'shards'));
    const name = 'model-00003-of-00003.safetensors';
    await writeFile(join(dir, 'shards', name), await readFile(join(dir, name)));
    const wm = index.weight_map as Record<string, string>;
    const moved = Object.fromEntries(Object.entries(wm).map(([k, v]) => [k, v === name ? `shards/${name}` : v]));
    await writeIndex({ ...index, weight_map: moved });
    const c = await Checkpoint.open(dir);
    const t = Object.keys(moved).find((k) => moved[k] === `shards/${name}`)!;
    expect(c.entry(t).file).toBe(join(dir, 'shards', name));
    await c.close();
  });

  it('a missing shard', async () => {
    await sharded();
    await rm(join(dir, 'model-00003-of-00003.safetensors'));
    const e = await openError();
    expect(e.code).toBe('CHECKPOINT_SHARD_MISSING');
    expect(e.file).toBe(join(dir, 'model-00003-of-00003.safetensors'));
  });

  it('a tensor the index puts in a shard that does not hold it', async () => {
    const index = await sharded();
    const wm = { ...(index.weight_map as Record<string, string>) };
    const [a, b] = Object.keys(wm);
    [wm[a], wm[b]] = [wm[b], wm[a]];
    await writeIndex({ ...index, weight_map: wm });
    const e = await openError();
    expect(e.code).toBe('INDEX_TENSOR_MISSING');
    expect(e.where).toBe(`tensor ${a}`);
  });

  it('bad JSON, no weight_map, non-string values, empty map', async () => {
    const index = await sharded();
    await writeFile(join(dir, 'model.safetensors.index.json'), '{"weight_map": ');
    expect((await openError()).code).toBe('INDEX_JSON');
    for (const bad of [
      {},
      { weight_map: [] },
      { weight_map: { a: 3 } },
      { weight_map: {} },
      { weight_map: { 'model.norm.weight': 'config.json' } },
      { ...index, metadata: { total_size: -1 } },
    ]) {
      await writeIndex(bad);
      expect((await openError()).code).toBe('INDEX_INVALID');
    }
  });

  it('parseSafetensorsIndex keeps order and total_size', () => {
    const p = parseSafetensorsIndex({ metadata: { total_size: 12 }, weight_map: { b: 'x.safetensors', a: 'y.safetensors' } }, 'i.json');
    expect([...p.weightMap]).toEqual([
      ['b', 'x.safetensors'],
      ['a', 'y.safetensors'],
    ]);
    expect(p.totalSize).toBe(12);
  });
});

describe('tokenizer files', () => {
  it('lists the tokenizer files present and copies them byte for byte (real Phi-3 tokenizer)', async () => {
    const fixture = sharedFixturePath('phi3-tokenizer');
    if (!fixture) return; // developer machine without ../shared/fixtures (CI=true fails above instead)
    await writeTinyCheckpoint(dir, { tensors: rampTensors(SPECS) });
    for (const name of await readdir(fixture)) await writeFile(join(dir, name), await readFile(join(fixture, name)));
    await writeFile(join(dir, 'chat_template.jinja'), '{{ messages }}');
    await mkdir(join(dir, 'vocab.json')); // a folder with a tokenizer file's name is not a file
    const c = await Checkpoint.open(dir);
    const files = await c.tokenizerFiles();
    await c.close();
    expect(files).toEqual(
      ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja'].map((n) => join(dir, n)),
    );
    expect(hasUsableTokenizer(files)).toBe(true);
    const dest = join(dir, 'out', 'pkg');
    const copied = await copyTokenizerFiles(files, dest);
    expect(copied).toEqual(files.map((f) => join(dest, f.split('/').pop()!)));
    for (let i = 0; i < files.length; i++) expect((await readFile(copied[i])).equals(await readFile(files[i]))).toBe(true);
    expect((await readdir(dest)).sort()).toEqual(['chat_template.jinja', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']);
  });

  it('finds none in an empty folder; a missing source is a CheckpointError', async () => {
    expect(await findTokenizerFiles(dir)).toEqual([]);
    expect(hasUsableTokenizer([])).toBe(false);
    await expect(copyTokenizerFiles([join(dir, 'tokenizer.json')], join(dir, 'out'))).rejects.toMatchObject({
      code: 'TOKENIZER_COPY',
      file: join(dir, 'tokenizer.json'),
    });
    expect(await readdir(join(dir, 'out'))).toEqual([]); // no temporary file left behind
  });
});
