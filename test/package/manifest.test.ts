import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildManifest, checkFiles, packageFilesToCopy, readManifest, MANIFEST_FILE, type PackageManifest } from '../../src/package/manifest.js';
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

  /** Writes a manifest built from the folder, edited by `edit`, and returns readManifest's error (or undefined). */
  async function readEdited(edit: (m: PackageManifest) => void): Promise<unknown> {
    const m = await buildManifest(dir, info);
    edit(m);
    await writeFile(join(dir, MANIFEST_FILE), JSON.stringify(m));
    return readManifest(dir).then(
      () => undefined,
      (e: unknown) => e,
    );
  }
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');

  it('refuses a files[].path that leaves the package, naming manifest.json, the entry and the value', async () => {
    for (const bad of ['../payload.sh', '/etc/passwd', 'sub/../../x', 'sub\\model.onnx.data', 'C:/x', 'a//b', './model.onnx', 'x\u0000y', '']) {
      const err = await readEdited((m) => m.files.push({ path: bad, size: 1, sha256: sha('x') }));
      expect([bad, err]).toEqual([bad, expect.any(PackageError)]);
      expect(err).toMatchObject({ code: 'UNSAFE_PATH', file: join(dir, MANIFEST_FILE) });
      expect((err as Error).message).toContain(`files[2].path ${JSON.stringify(bad)} must be a relative path inside the folder`);
    }
  });

  it('refuses a model or target name that is not a plain name (release names archives after them)', async () => {
    const err = await readEdited((m) => (m.model = '../../evil'));
    expect(err).toMatchObject({ code: 'UNSAFE_NAME', message: expect.stringMatching(/model "\.\.\/\.\.\/evil" must be a plain file name/) });
    expect(await readEdited((m) => (m.target = 'cpu/x'))).toMatchObject({ code: 'UNSAFE_NAME' });
  });

  it('refuses a file listed twice (also by case or Unicode form), naming the path', async () => {
    const twice = await readEdited((m) => m.files.push({ ...m.files[0] }));
    expect(twice).toMatchObject({ code: 'PACKAGE_MANIFEST_DUPLICATE', message: expect.stringMatching(/files\[2\]: "model\.onnx" is listed twice/) });
    // A second entry with other bytes for the same file: which one would verify trust?
    const other = await readEdited((m) => m.files.push({ path: 'model.onnx', size: 3, sha256: sha('abc') }));
    expect(other).toMatchObject({ code: 'PACKAGE_MANIFEST_DUPLICATE' });
    const cased = await readEdited((m) => m.files.push({ path: 'Model.ONNX', size: 10, sha256: sha('onnx-bytes') }));
    expect(cased).toMatchObject({ code: 'PACKAGE_MANIFEST_DUPLICATE', message: expect.stringMatching(/"Model\.ONNX" and "model\.onnx" name the same file/) });
    const nfd = await readEdited((m) => m.files.push({ path: 'e\u0301.txt', size: 1, sha256: sha('x') }, { path: '\u00e9.txt', size: 1, sha256: sha('x') }));
    expect(nfd).toMatchObject({ code: 'PACKAGE_MANIFEST_DUPLICATE' });
  });

  it('refuses a formatVersion it does not read, naming it and the versions it reads', async () => {
    for (const v of [2, 0, '1', undefined]) {
      const err = await readEdited((m) => ((m as { formatVersion: unknown }).formatVersion = v));
      expect(err).toMatchObject({ code: 'PACKAGE_MANIFEST_VERSION', message: expect.stringContaining(`formatVersion ${JSON.stringify(v)} is not one this tool reads (1)`) });
    }
  });

  it('refuses malformed sizes and hashes', async () => {
    expect(await readEdited((m) => (m.files[0].size = -1))).toMatchObject({ code: 'PACKAGE_BAD_MANIFEST', message: expect.stringMatching(/files\[0\]: size -1/) });
    expect(await readEdited((m) => (m.files[0].sha256 = 'ABC'))).toMatchObject({ code: 'PACKAGE_BAD_MANIFEST', message: expect.stringMatching(/files\[0\]: sha256 "ABC"/) });
  });

  describe('symbolic links', () => {
    let outside: string;
    beforeEach(async () => {
      outside = await mkdtemp(join(tmpdir(), 'phi-forge-outside-'));
      await writeFile(join(outside, 'secret'), 'secret bytes');
    });
    afterEach(async () => rm(outside, { recursive: true, force: true }));

    it('a listed file that is a link (to a file or through a folder) leaving the package is not a file of it', async () => {
      const m = await buildManifest(dir, info);
      // The manifest lists the outside file's true size and hash: without the link check it would pass.
      await symlink(join(outside, 'secret'), join(dir, 'link.bin'));
      await symlink(outside, join(dir, 'linked'));
      m.files.push({ path: 'link.bin', size: 12, sha256: sha('secret bytes') }, { path: 'linked/secret', size: 12, sha256: sha('secret bytes') });
      m.files.sort((a, b) => a.path.localeCompare(b.path));
      await writeFile(join(dir, MANIFEST_FILE), JSON.stringify(m));
      const problems = await checkFiles(dir, await readManifest(dir));
      expect(problems.map((p) => [p.path, p.problem, p.detail])).toEqual([
        ['link.bin', 'not-a-file', 'link.bin is a symbolic link'],
        ['linked/secret', 'not-a-file', 'linked is a symbolic link'],
        ['linked', 'unlisted', 'file is not in the manifest'],
      ]);
      await expect(packageFilesToCopy(dir, m)).rejects.toMatchObject({ code: 'PACKAGE_UNSAFE_FILE', message: expect.stringMatching(/"link\.bin".*symbolic link/) });
      // Nor does a manifest built from such a folder vouch for the link's target.
      await expect(buildManifest(dir, info)).rejects.toMatchObject({ code: 'PACKAGE_UNSAFE_FILE' });
    });

    it('packageFilesToCopy lists exactly the manifest files and manifest.json of an intact package', async () => {
      const m = await buildManifest(dir, info);
      await writeFile(join(dir, 'stray.txt'), 'x');
      expect(await packageFilesToCopy(dir, m)).toEqual(['model.onnx', 'sub/model.onnx.data', MANIFEST_FILE]);
    });
  });
});
