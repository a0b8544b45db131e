import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/checkpoint/checkpoint.js';
import { SafetensorsFile, type SafetensorsDtype } from '../../src/checkpoint/safetensors.js';
import {
  planShards,
  writeSafetensors,
  writeShardedSafetensors,
  type TensorToWrite,
} from '../../src/checkpoint/safetensors-writer.js';
import { CheckpointError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/random.js';
import { f32, makeTempDir, rampTensors, removeTempDir, tinyPhi3Config } from '../helpers/checkpoint.js';

let dir: string;
let n = 0;
beforeAll(async () => {
  dir = await makeTempDir('phi-forge-st-write-');
});
afterAll(async () => {
  await removeTempDir(dir);
});
const fresh = (): string => join(dir, `w${n++}.safetensors`);

describe('writeSafetensors', () => {
  // Expected bytes copied from the reference implementation's own tests (safetensors/src/tensor.rs).
  it('writes the same bytes as the reference implementation (test_serialization)', async () => {
    const p = fresh();
    await writeSafetensors(p, [{ name: 'attn.0', dtype: 'F32', shape: [1, 2, 3], data: () => f32([0, 1, 2, 3, 4, 5]) }]);
    expect(Array.from(await readFile(p))).toEqual([
      64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34, 58, 34, 70, 51,
      50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102,
      115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0,
      128, 64, 0, 0, 160, 64,
    ]);
  });

  it('pads the header with spaces to 8 bytes like the reference (test_serialization_forced_alignement)', async () => {
    const p = fresh();
    await writeSafetensors(p, [{ name: 'attn0', dtype: 'F32', shape: [1, 1, 2, 3], data: () => f32([0, 1, 2, 3, 4, 5]) }]);
    expect(Array.from(await readFile(p))).toEqual([
      72, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34, 58, 34, 70, 51, 50,
      34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102,
      102, 115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 32, 32, 32, 32, 32, 32, 32, 0, 0, 0, 0, 0, 0, 128, 63,
      0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
    ]);
  });

  it('writes empty files with and without metadata like the reference (test_empty)', async () => {
    const a = fresh();
    await writeSafetensors(a, []);
    expect(Array.from(await readFile(a))).toEqual([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
    const b = fresh();
    await writeSafetensors(b, [], { framework: 'pt' });
    expect(Array.from(await readFile(b))).toEqual([
      40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95, 95, 34, 58, 123, 34, 102, 114, 97, 109,
      101, 119, 111, 114, 107, 34, 58, 34, 112, 116, 34, 125, 125, 32, 32, 32, 32, 32,
    ]);
  });

  it('round-trips every dtype through the reader, each tensor aligned to its element size', async () => {
    const rng = new Rng(7);
    const dtypes: [SafetensorsDtype, number][] = [
      ['F64', 8], ['F32', 4], ['F16', 2], ['BF16', 2], ['I64', 8], ['I32', 4], ['I16', 2], ['I8', 1],
      ['U8', 1], ['BOOL', 1], ['U16', 2], ['U32', 4], ['U64', 8], ['F8_E4M3', 1], ['F8_E5M2', 1],
    ];
    const tensors = dtypes.map(([dtype, size], i) => {
      const shape = [1 + (i % 3), 3];
      const bytes = Uint8Array.from({ length: shape[0] * 3 * size }, () => rng.nextU32() & 0xff);
      return { name: `t${String(i).padStart(2, '0')}.${dtype}`, dtype, shape, bytes, size };
    });
    const p = fresh();
    await writeSafetensors(
      p,
      tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, data: () => t.bytes })),
      { format: 'pt' },
    );
    const f = await SafetensorsFile.open(p);
    expect(f.metadata).toEqual({ format: 'pt' });
    expect(f.entries.size).toBe(tensors.length);
    for (const t of tensors) {
      const e = f.entries.get(t.name)!;
      expect(e.dtype).toBe(t.dtype);
      expect(e.shape).toEqual(t.shape);
      expect(e.begin % t.size).toBe(0);
      expect(await f.readRaw(t.name)).toEqual(t.bytes);
    }
    await f.close();
  });

  it('produces tensors one at a time, each only when it is written', async () => {
    let live = 0;
    let maxLive = 0;
    const calls: string[] = [];
    const tensors: TensorToWrite[] = ['b', 'a', 'c'].map((name) => ({
      name,
      dtype: 'F32',
      shape: [2],
      data: async () => {
        live++;
        maxLive = Math.max(maxLive, live);
        calls.push(name);
        await new Promise((r) => setTimeout(r, 1));
        live--;
        return f32([1, 2]);
      },
    }));
    await writeSafetensors(fresh(), tensors);
    expect(maxLive).toBe(1);
    expect(calls).toEqual(['a', 'b', 'c']); // file order: element size, then name
  });

  it('refuses data of the wrong size and leaves no file behind', async () => {
    const p = fresh();
    const err = await writeSafetensors(p, [{ name: 'w', dtype: 'F32', shape: [3], data: () => f32([1, 2]) }]).catch((e) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect(err).toMatchObject({ code: 'SAFETENSORS_WRITE_SIZE', where: 'tensor w' });
    expect((await readdir(dir)).filter((f) => f.includes(p.split('/').pop()!))).toEqual([]);
  });

  it('refuses duplicate names, bad shapes and unknown dtypes before writing', async () => {
    const t = (o: Partial<TensorToWrite>): TensorToWrite => ({ name: 'w', dtype: 'F32', shape: [1], data: () => f32([1]), ...o });
    await expect(writeSafetensors(fresh(), [t({}), t({})])).rejects.toMatchObject({ code: 'SAFETENSORS_WRITE_NAME' });
    await expect(writeSafetensors(fresh(), [t({ shape: [-1] })])).rejects.toMatchObject({ code: 'SAFETENSORS_WRITE_SHAPE' });
    await expect(writeSafetensors(fresh(), [t({ dtype: 'F128' as SafetensorsDtype })])).rejects.toMatchObject({
      code: 'SAFETENSORS_WRITE_DTYPE',
    });
    await expect(writeSafetensors(fresh(), [t({ name: '__metadata__' })])).rejects.toMatchObject({ code: 'SAFETENSORS_WRITE_NAME' });
  });
});

describe('sharding', () => {
  const sized = (name: string, bytes: number): TensorToWrite => ({
    name,
    dtype: 'U8',
    shape: [bytes],
    data: () => new Uint8Array(bytes).fill(name.charCodeAt(0)),
  });

  it('splits like huggingface_hub: in order, new shard when the next tensor does not fit, oversized tensors alone', () => {
    const plan = planShards([sized('a', 40), sized('b', 50), sized('c', 20), sized('d', 150), sized('e', 10)], 100);
    // the oversized tensor is emitted on its own while the open shard stays open for the next ones
    expect(plan.map((s) => s.map((t) => t.name))).toEqual([['a', 'b'], ['d'], ['c', 'e']]);
    expect(planShards([sized('a', 60), sized('big', 500), sized('b', 30)], 100).map((s) => s.map((t) => t.name))).toEqual([
      ['big'],
      ['a', 'b'],
    ]);
    expect(planShards([], 100)).toEqual([[]]);
  });

  it('writes shards and an index like save_pretrained; Checkpoint.open reads every tensor back equal', async () => {
    const out = await makeTempDir('phi-forge-shards-');
    try {
      await writeFile(join(out, 'config.json'), JSON.stringify(tinyPhi3Config()));
      const specs = [
        { name: 'model.embed_tokens.weight', shape: [32, 32] },
        { name: 'model.layers.0.self_attn.qkv_proj.weight', shape: [64, 32] },
        { name: 'model.layers.0.mlp.down_proj.weight', shape: [32, 64] },
        { name: 'model.norm.weight', shape: [32] },
        { name: 'lm_head.weight', shape: [32, 32] },
      ];
      const tensors = rampTensors(specs);
      // 4096, 8192, 8192, 128, 4096 bytes with a 9000-byte limit: [embed] [qkv] [down, norm] [lm_head]
      const { files } = await writeShardedSafetensors(out, tensors, { maxShardBytes: 9000 });
      const names = (await readdir(out)).sort();
      expect(names).toEqual([
        'config.json',
        'model-00001-of-00004.safetensors',
        'model-00002-of-00004.safetensors',
        'model-00003-of-00004.safetensors',
        'model-00004-of-00004.safetensors',
        'model.safetensors.index.json',
      ]);
      expect(files.map((f) => f.split('/').pop())).toEqual(names.filter((x) => x.startsWith('model')));
      const indexText = await readFile(join(out, 'model.safetensors.index.json'), 'utf8');
      const index = JSON.parse(indexText);
      expect(Object.keys(index.weight_map)).toEqual(specs.map((s) => s.name).sort());
      expect(index.metadata.total_size).toBe(specs.reduce((a, s) => a + 4 * s.shape.reduce((x, y) => x * y, 1), 0));
      expect(index.weight_map['model.embed_tokens.weight']).toBe('model-00001-of-00004.safetensors');
      expect(index.weight_map['model.norm.weight']).toBe('model-00003-of-00004.safetensors');
      expect(index.weight_map['lm_head.weight']).toBe('model-00004-of-00004.safetensors');
      expect(indexText).toBe(JSON.stringify(index, null, 2) + '\n');

      const ckpt = await Checkpoint.open(out);
      try {
        expect(ckpt.tensorNames().sort()).toEqual(specs.map((s) => s.name).sort());
        for (const t of tensors) {
          expect(ckpt.entry(t.name).shape).toEqual(t.shape);
          expect(await ckpt.readRaw(t.name)).toEqual(await t.data());
        }
        const shard = await SafetensorsFile.open(ckpt.entry('model.norm.weight').file);
        expect(shard.metadata).toEqual({ format: 'pt' });
      } finally {
        await ckpt.close();
      }

      // Saving again into one file removes the old shards and index, so the folder holds one checkpoint.
      const again = await writeShardedSafetensors(out, tensors, { maxShardBytes: 1 << 20 });
      expect(again.files.map((f) => f.split('/').pop())).toEqual(['model.safetensors']);
      expect((await readdir(out)).sort()).toEqual(['config.json', 'model.safetensors']);
      const single = await Checkpoint.open(out);
      for (const t of tensors) expect(await single.readRaw(t.name)).toEqual(await t.data());
      await single.close();
    } finally {
      await removeTempDir(out);
    }
  });
});
