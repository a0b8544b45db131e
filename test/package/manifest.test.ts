import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildManifest, checkFiles, readManifest, MANIFEST_FILE } from '../../src/package/manifest.js';
import { PackageError } from '../../src/util/errors.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'phi-forge-manifest-'));
  await writeFile(join(dir, 'model.onnx'), 'onnx-bytes');
  await mkdir(join(dir, 'sub'));
  await writeFile(join(dir, 'sub', 'model.onnx.data'), Buffer.alloc(1000, 7));
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

const info = {
  model: 'm',
  recipe: 'r',
  target: 'cpu',
  source: { origin: 'synth:x', revision: 'abc' },
  architecture: 'Phi3ForCausalLM',
  precision: 'fp32',
  quantization: { scheme: 'int4' },
  validation: null,
};

describe('package manifest', () => {
  it('lists every file with its size and sha256 (checked against node:crypto)', async () => {
    const m = await buildManifest(dir, info);
    expect(m.files.map((f) => f.path)).toEqual(['model.onnx', 'sub/model.onnx.data']);
    expect(m.files[0]).toEqual({
      path: 'model.onnx',
      size: 10,
      sha256: createHash('sha256').update('onnx-bytes').digest('hex'),
    });
    expect(m.tool.name).toBe('phi-forge');
    await writeFile(join(dir, MANIFEST_FILE), JSON.stringify(m));
    expect(await checkFiles(dir, await readManifest(dir))).toEqual([]);
  });

  it('names tampered, truncated, missing and unlisted files', async () => {
    const m = await buildManifest(dir, info);
    await writeFile(join(dir, MANIFEST_FILE), JSON.stringify(m));
    await writeFile(join(dir, 'model.onnx'), 'onnx-bytez'); // same size, different content
    await truncate(join(dir, 'sub', 'model.onnx.data'), 999);
    await writeFile(join(dir, 'extra.txt'), 'x');
    const problems = await checkFiles(dir, m);
    expect(problems.map((p) => [p.path, p.problem])).toEqual([
      ['model.onnx', 'sha256'],
      ['sub/model.onnx.data', 'size'],
      ['extra.txt', 'unlisted'],
    ]);
    await rm(join(dir, 'model.onnx'));
    expect((await checkFiles(dir, m))[0]).toMatchObject({ path: 'model.onnx', problem: 'missing' });
  });

  it('a folder without a manifest is a typed error', async () => {
    await expect(readManifest(dir)).rejects.toBeInstanceOf(PackageError);
    await writeFile(join(dir, MANIFEST_FILE), '{"format":"other"}');
    await expect(readManifest(dir)).rejects.toThrow(/manifest.json is not valid/);
  });
});
