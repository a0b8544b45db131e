// The archive/index half of `release` (assembleRelease, mergeReleases) on package folders made here; the build half
// runs end to end in test/e2e/release.test.ts.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { open, readdir, readFile, rm, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assembleRelease, formatSums, mergeReleases, type ReleaseIndex } from '../../pipelines/release.js';
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
