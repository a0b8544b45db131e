// The archive/index half of `release` (assembleRelease, mergeReleases) on package folders made here; the build half
// runs end to end in test/e2e/release.test.ts.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, open, readdir, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assembleRelease, mergeReleases } from '../../pipelines/release.js';
import { formatSums, type ReleaseIndex } from '../../src/package/release-index.js';
import { GateError } from '../../src/util/errors.js';
import { TOOL_VERSION } from '../../src/util/version.js';
import { cleanTempDirs, tempDir, treeDigest, writeFakePackage } from '../helpers/package.js';

let work: string;
let cpu: string;
let mobile: string;
beforeAll(async () => {
  work = await tempDir('phi-forge-release-');
  cpu = await writeFakePackage(join(work, 'pkgs', 'tiny-test-cpu'), { target: 'cpu', seed: 1 });
  mobile = await writeFakePackage(join(work, 'pkgs', 'tiny-test-mobile'), { target: 'mobile', seed: 2 });
});
afterAll(cleanTempDirs);

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const readIndex = async (dir: string) => JSON.parse(await readFile(join(dir, 'release.json'), 'utf8')) as ReleaseIndex;

describe('assembleRelease', () => {
  let out: string;
  let index: ReleaseIndex;
  beforeAll(async () => {
    out = join(work, 'rel-a');
    index = await assembleRelease(
      [
        { target: 'mobile', dir: mobile },
        { target: 'cpu', dir: cpu },
      ],
      { out, zip: true, modelPackage: true },
    );
  });

  it('writes one archive per package (+ zip, + model package), SHA256SUMS and release.json', async () => {
    expect((await readdir(out)).sort()).toEqual([
      'SHA256SUMS',
      'packages',
      'release.json',
      'tiny-test-cpu.tar.gz',
      'tiny-test-cpu.zip',
      'tiny-test-mobile.tar.gz',
      'tiny-test-mobile.zip',
      'tiny-test.ortpackage.tar.gz',
      'tiny-test.ortpackage.zip',
    ]);
    expect(await readdir(join(out, 'packages'))).toEqual(['tiny-test.ortpackage']);
  });

  it('SHA256SUMS passes `sha256sum -c` and lists every archive and release.json, sorted', async () => {
    const sums = await readFile(join(out, 'SHA256SUMS'), 'utf8');
    const files = sums.trim().split('\n').map((l) => l.split('  ')[1]);
    expect(files).toEqual([
      'release.json',
      'tiny-test-cpu.tar.gz',
      'tiny-test-cpu.zip',
      'tiny-test-mobile.tar.gz',
      'tiny-test-mobile.zip',
      'tiny-test.ortpackage.tar.gz',
      'tiny-test.ortpackage.zip',
    ]);
    for (const line of sums.trim().split('\n')) {
      const [hex, file] = line.split('  ');
      expect(hex).toBe(sha(await readFile(join(out, file))));
    }
    expect(execFileSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: out, encoding: 'utf8' })).toMatch(/tiny-test-cpu\.tar\.gz: OK/);
  });

  it("release.json indexes each archive with the package manifest's facts, sizes and sha256", async () => {
    expect(await readIndex(out)).toEqual(index);
    expect(index).toMatchObject({ format: 'phi-forge-release', formatVersion: 1, tool: { name: 'phi-forge', version: TOOL_VERSION } });
    expect(index.entries.map((e) => [e.kind, e.name, e.targets.map((t) => t.target)])).toEqual([
      ['package', 'tiny-test-cpu', ['cpu']],
      ['package', 'tiny-test-mobile', ['mobile']],
      ['model-package', 'tiny-test.ortpackage', ['cpu', 'mobile']],
    ]);
    const manifest = JSON.parse(await readFile(join(cpu, 'manifest.json'), 'utf8')) as { files: { size: number }[] };
    const e = index.entries[0];
    expect(e).toMatchObject({
      model: 'tiny-test',
      recipe: 'tiny-test',
      source: { origin: 'synth:phi-4-mini:tiny:0', revision: 'abc123' },
      architecture: 'Phi3ForCausalLM',
      targets: [
        {
          target: 'cpu',
          precision: 'fp32',
          quantization: { scheme: 'int4', algo: 'rtn', block_size: 32 },
          validation: { metrics: { ppl: 12.5, ppl_delta_pct: 2.04, kl_mean: 0.011 }, gates: { passed: true } },
        },
      ],
      files: manifest.files.length,
      packageBytes: manifest.files.reduce((n, f) => n + f.size, 0),
    });
    for (const entry of index.entries) {
      for (const a of entry.archives) {
        const bytes = await readFile(join(out, a.file));
        expect([a.bytes, a.sha256]).toEqual([bytes.length, sha(bytes)]);
      }
    }
    // Nothing wall-clock or machine-specific: no timings, no dates, no absolute paths.
    const text = await readFile(join(out, 'release.json'), 'utf8');
    expect(text).not.toMatch(/seconds|"time|\d{4}-\d\d-\d\dT|\/tmp\//);
  });

  it('the tar archive extracts to the package, under a folder named after it', async () => {
    const dest = join(work, 'extract');
    execFileSync('mkdir', ['-p', dest]);
    execFileSync('tar', ['-xzf', join(out, 'tiny-test-cpu.tar.gz'), '-C', dest]);
    expect(await treeDigest(join(dest, 'tiny-test-cpu'))).toEqual(await treeDigest(cpu));
    execFileSync('tar', ['-xzf', join(out, 'tiny-test.ortpackage.tar.gz'), '-C', dest]);
    expect(await treeDigest(join(dest, 'tiny-test.ortpackage', 'decoder', 'mobile'))).toEqual(await treeDigest(mobile));
  });

  it('is byte-identical when run again (other folder, touched inputs)', async () => {
    await utimes(join(cpu, 'model.onnx.data'), new Date('2030-01-01'), new Date('2030-01-01'));
    const again = join(work, 'rel-b');
    await assembleRelease(
      [
        { target: 'cpu', dir: cpu },
        { target: 'mobile', dir: mobile },
      ],
      { out: again, zip: true, modelPackage: true },
    );
    for (const f of await readdir(out)) {
      if (f === 'packages') continue;
      expect([f, sha(await readFile(join(again, f)))]).toEqual([f, sha(await readFile(join(out, f)))]);
    }
  });

  it('formats SHA256SUMS as sha256sum does, sorted by name', () => {
    expect(formatSums([{ file: 'b.zip', sha256: 'bb' }, { file: 'a.tar.gz', sha256: 'aa' }])).toBe('aa  a.tar.gz\nbb  b.zip\n');
  });
});

describe('assembleRelease refuses to ship', () => {
  it('a package that does not match its manifest, naming the file, and writes nothing', async () => {
    const bad = await writeFakePackage(join(work, 'bad', 'tiny-test-cpu'), { target: 'cpu' });
    const fh = await open(join(bad, 'model.onnx.data'), 'r+');
    await fh.write(Buffer.from([1, 2, 3]), 0, 3, 10);
    await fh.close();
    const out = join(work, 'rel-bad');
    await expect(assembleRelease([{ target: 'cpu', dir: bad }], { out })).rejects.toMatchObject({
      code: 'RELEASE_PACKAGE_DAMAGED',
      message: expect.stringMatching(/model\.onnx\.data \(sha256\)/),
    });
    expect(await readdir(out).catch(() => [])).toEqual([]);
  });

  it('a package whose validation failed its gates', async () => {
    const failed = await writeFakePackage(join(work, 'gated', 'tiny-test-cpu'), {
      target: 'cpu',
      validation: { metrics: { ppl_delta_pct: 40 }, gates: { passed: false, rows: [{ metric: 'ppl_delta_pct', measured: 40, allowed: 25, ok: false }] } },
    });
    await expect(assembleRelease([{ target: 'cpu', dir: failed }], { out: join(work, 'rel-gated') })).rejects.toBeInstanceOf(GateError);
  });

  it('two packages released under the same name, or none at all', async () => {
    await expect(assembleRelease([{ target: 'cpu', dir: cpu }, { target: 'cpu', dir: cpu }], { out: join(work, 'rel-dup') })).rejects.toMatchObject({
      code: 'RELEASE_DUPLICATE',
    });
    await expect(assembleRelease([], { out: join(work, 'rel-none') })).rejects.toMatchObject({ code: 'RELEASE_EMPTY' });
  });
});

describe('mergeReleases', () => {
  it('merging per-target releases gives the same archives, index and SHA256SUMS as one release of both', async () => {
    const one = join(work, 'm-cpu');
    const two = join(work, 'm-mobile');
    await assembleRelease([{ target: 'cpu', dir: cpu }], { out: one, zip: true });
    await assembleRelease([{ target: 'mobile', dir: mobile }], { out: two, zip: true });
    const merged = join(work, 'm-merged');
    await mergeReleases([two, one], merged);
    const together = join(work, 'm-together');
    await assembleRelease([{ target: 'cpu', dir: cpu }, { target: 'mobile', dir: mobile }], { out: together, zip: true });
    const files = (await readdir(together)).sort();
    expect((await readdir(merged)).sort()).toEqual(files);
    for (const f of files) expect([f, sha(await readFile(join(merged, f)))]).toEqual([f, sha(await readFile(join(together, f)))]);
  });

  it('refuses an archive that does not match its release.json', async () => {
    const dir = join(work, 'm-damaged');
    await assembleRelease([{ target: 'cpu', dir: cpu }], { out: dir });
    const fh = await open(join(dir, 'tiny-test-cpu.tar.gz'), 'r+');
    await fh.write(Buffer.from([0]), 0, 1, 100);
    await fh.close();
    await expect(mergeReleases([dir], join(work, 'm-out'))).rejects.toMatchObject({ code: 'RELEASE_ARCHIVE_DAMAGED' });
    await rm(join(dir, 'tiny-test-cpu.tar.gz'));
    await expect(mergeReleases([dir], join(work, 'm-out'))).rejects.toMatchObject({ code: 'RELEASE_ARCHIVE_MISSING' });
  });
});

describe('mergeReleases treats release.json as untrusted', () => {
  /** A release folder whose release.json is the real one of a cpu release, edited by `edit`. */
  async function editedRelease(name: string, edit: (index: ReleaseIndex) => void): Promise<string> {
    const dir = join(work, name);
    await assembleRelease([{ target: 'cpu', dir: cpu }], { out: dir });
    const index = await readIndex(dir);
    edit(index);
    await writeFile(join(dir, 'release.json'), JSON.stringify(index, null, 2));
    return dir;
  }

  it('refuses an archive file name that leaves the folder, though its hash matches, and reads and writes nothing', async () => {
    const root = join(work, 'evil');
    await mkdir(root, { recursive: true });
    const payload = Buffer.from('#!/bin/sh\necho owned\n');
    await writeFile(join(root, 'payload.sh'), payload);
    const rel = await editedRelease('evil/rel', (index) => {
      index.entries[0].archives[0] = { file: '../payload.sh', format: 'tar.gz', bytes: payload.length, sha256: sha(payload) };
    });
    const out = join(root, 'out', 'merged');
    const err = await mergeReleases([rel], out).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'UNSAFE_NAME', file: join(rel, 'release.json') });
    expect((err as Error).message).toContain(`${join(rel, 'release.json')}: entries[0].archives[0].file "../payload.sh" must be a plain file name`);
    expect(await readdir(join(root, 'out'))).toEqual(['merged']);
    expect(await readdir(out)).toEqual([]);
  });

  it('refuses every unsafe archive or entry name: absolute, separators, dot names, empty, control characters, drives', async () => {
    const names = ['/tmp/x.tar.gz', 'a/b.tar.gz', 'a\\b.tar.gz', '..', '.', '', 'x\n.tar.gz', 'x\u0000.tar.gz', 'C:x.tar.gz'];
    for (const [i, bad] of names.entries()) {
      const file = await editedRelease(`bad-file-${i}`, (index) => (index.entries[0].archives[0].file = bad));
      await expect(mergeReleases([file], join(work, `bad-out-${i}`))).rejects.toMatchObject({ code: 'UNSAFE_NAME', message: expect.stringContaining(JSON.stringify(bad)) });
      const entry = await editedRelease(`bad-entry-${i}`, (index) => (index.entries[0].name = bad));
      await expect(mergeReleases([entry], join(work, `bad-out-e${i}`))).rejects.toMatchObject({
        code: 'UNSAFE_NAME',
        message: expect.stringContaining(`entries[0].name ${JSON.stringify(bad)}`),
      });
    }
  });

  it('refuses archive names it writes itself (release.json, SHA256SUMS) and malformed archive records', async () => {
    for (const [i, edit] of [
      (a: Record<string, unknown>) => (a.file = 'SHA256SUMS'),
      (a: Record<string, unknown>) => (a.file = 'release.json'),
      (a: Record<string, unknown>) => (a.format = 'sh'),
      (a: Record<string, unknown>) => (a.bytes = '12'),
      (a: Record<string, unknown>) => (a.sha256 = 'not-hex'),
    ].entries()) {
      const dir = await editedRelease(`bad-record-${i}`, (index) => edit(index.entries[0].archives[0] as unknown as Record<string, unknown>));
      await expect(mergeReleases([dir], join(work, `bad-record-out-${i}`))).rejects.toMatchObject({ code: 'RELEASE_BAD_INDEX', message: expect.stringMatching(/entries\[0\]\.archives\[0\]/) });
    }
  });

  it('refuses a formatVersion it does not read', async () => {
    const dir = await editedRelease('bad-version', (index) => ((index as { formatVersion: unknown }).formatVersion = 2));
    await expect(mergeReleases([dir], join(work, 'bad-version-out'))).rejects.toMatchObject({
      code: 'RELEASE_INDEX_VERSION',
      message: expect.stringContaining('formatVersion 2 is not one this tool reads (1)'),
    });
  });

  it('refuses an archive that is a symbolic link, even to a file with the recorded bytes', async () => {
    const dir = await editedRelease('linked', () => undefined);
    const elsewhere = join(work, 'elsewhere.tar.gz');
    await copyFile(join(dir, 'tiny-test-cpu.tar.gz'), elsewhere);
    await rm(join(dir, 'tiny-test-cpu.tar.gz'));
    await symlink(elsewhere, join(dir, 'tiny-test-cpu.tar.gz'));
    await expect(mergeReleases([dir], join(work, 'linked-out'))).rejects.toMatchObject({
      code: 'RELEASE_ARCHIVE_NOT_FILE',
      message: expect.stringMatching(/tiny-test-cpu\.tar\.gz is a symbolic link/),
    });
  });

  it('refuses two releases that claim one archive file with different contents', async () => {
    const one = join(work, 'claim-cpu');
    await assembleRelease([{ target: 'cpu', dir: cpu }], { out: one });
    const two = join(work, 'claim-mobile');
    await assembleRelease([{ target: 'mobile', dir: mobile }], { out: two });
    // The mobile release renamed so that its archive lands on the cpu release's file name.
    const index = await readIndex(two);
    index.entries[0].archives[0].file = 'tiny-test-cpu.tar.gz';
    await writeFile(join(two, 'release.json'), JSON.stringify(index));
    await copyFile(join(two, 'tiny-test-mobile.tar.gz'), join(two, 'tiny-test-cpu.tar.gz'));
    await expect(mergeReleases([one, two], join(work, 'claim-out'))).rejects.toMatchObject({
      code: 'RELEASE_DUPLICATE',
      message: expect.stringMatching(/tiny-test-cpu\.tar\.gz is in two releases with different contents/),
    });
  });
});

describe('assembleRelease names archives only after plain names', () => {
  it('refuses a package whose manifest model name would put the archive outside --out', async () => {
    const pkg = await writeFakePackage(join(work, 'evil-model', 'pkg'), { target: 'cpu', model: '../../escaped' });
    const out = join(work, 'evil-model', 'a', 'b');
    await expect(assembleRelease([{ target: 'cpu', dir: pkg }], { out })).rejects.toMatchObject({
      code: 'UNSAFE_NAME',
      message: expect.stringContaining('model "../../escaped" must be a plain file name'),
    });
    expect((await readdir(join(work, 'evil-model'))).sort()).toEqual(['pkg']);
  });
});
