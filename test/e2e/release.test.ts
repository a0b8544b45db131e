// Issue 8 end to end: `release tiny-phi` builds all four targets, gates them, and writes archives that extract,
// verify and run; a rebuild from an empty stage cache gives byte-identical archives, SHA256SUMS and release.json;
// a recipe whose gates cannot pass releases nothing.
import { execFileSync } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { release, type ReleaseReport } from '../../pipelines/release.js';
import { verify, verifyPackage } from '../../src/package/verify.js';
import { cleanTempDirs, tempDir, treeDigest } from '../helpers/package.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const TARGETS = ['cpu', 'cuda', 'dml', 'mobile'];

describe('release tiny-phi (all four targets)', () => {
  let work: string;
  let first: ReleaseReport;
  beforeAll(async () => {
    work = await tempDir('phi-forge-e2e-release-');
    first = await release({ recipes: ['tiny-phi'], out: join(work, 'r1'), artifacts: join(work, 'a1'), zip: true, modelPackage: true, quiet: true });
  }, 600_000);
  afterAll(cleanTempDirs);

  it('builds and archives every target plus the model package', () => {
    expect(first.failures).toEqual([]);
    expect(first.ok).toBe(true);
    expect(first.builds.map((b) => [b.target, b.ok])).toEqual(TARGETS.map((t) => [t, true]));
    expect(first.index!.entries.map((e) => e.name)).toEqual([...TARGETS.map((t) => `tiny-phi-${t}`), 'tiny-phi.ortpackage']);
    for (const e of first.index!.entries) {
      expect(e.model).toBe('tiny-phi');
      expect(e.recipe).toBe('tiny-phi');
      expect(e.source.origin).toMatch(/synth/);
      for (const t of e.targets) {
        expect(t.validation?.metrics).toMatchObject({ ppl: expect.any(Number), kl_mean: expect.any(Number) });
        expect(t.validation?.data).toMatch(/sampled/);
      }
    }
  });

  it('SHA256SUMS checks with sha256sum and the archives extract to the published packages', async () => {
    const out = join(work, 'r1');
    expect(execFileSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: out, encoding: 'utf8' }).trim().split('\n')).toHaveLength(11);
    const dest = join(work, 'x');
    execFileSync('mkdir', ['-p', dest]);
    for (const t of TARGETS) {
      execFileSync('tar', ['-xzf', join(out, `tiny-phi-${t}.tar.gz`), '-C', dest]);
      expect(await treeDigest(join(dest, `tiny-phi-${t}`))).toEqual(await treeDigest(join(out, 'packages', `tiny-phi-${t}`)));
    }
  });

  it('every extracted package verifies and generates on the CPU EP (cpu, mobile)', async () => {
    for (const t of TARGETS) {
      const r = await verifyPackage(join(work, 'x', `tiny-phi-${t}`));
      expect([t, r.ok, r.files.problems]).toEqual([t, true, []]);
      if (t === 'cpu' || t === 'mobile') expect([t, r.generation.status]).toEqual([t, 'ok']);
    }
    const mp = await verify(join(work, 'r1', 'packages', 'tiny-phi.ortpackage'));
    expect(mp.ok).toBe(true);
  });

  it('a rebuild from an empty stage cache writes byte-identical archives, SHA256SUMS and release.json', async () => {
    const again = await release({ recipes: ['tiny-phi'], out: join(work, 'r2'), artifacts: join(work, 'a2'), zip: true, modelPackage: true, quiet: true });
    expect(again.ok).toBe(true);
    const files = (await readdir(join(work, 'r1'))).filter((f) => f !== 'packages').sort();
    for (const f of files) {
      const [a, b] = await Promise.all([readFile(join(work, 'r1', f)), readFile(join(work, 'r2', f))]);
      expect([f, a.equals(b)]).toEqual([f, true]);
    }
  }, 600_000);

  it('a recipe whose gates fail releases nothing and exits 1 naming the gate', async () => {
    const recipe = JSON.parse(await readFile(join(repoRoot, 'recipes', 'tiny-phi.json'), 'utf8')) as Record<string, unknown>;
    recipe.name = 'tiny-phi-strict';
    recipe.gates = { kl_mean: 0 }; // an int4 model never matches its fp32 reference exactly
    recipe.targets = [{ target: 'cpu', quant: { scheme: 'int4', algo: 'rtn', block_size: 32 } }];
    const file = join(work, 'tiny-phi-strict.json');
    await writeFile(file, JSON.stringify(recipe));
    const out = join(work, 'r-strict');
    let code = 0;
    let stdout = '';
    try {
      stdout = execFileSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'release', file, '--out', out, '--artifacts', join(work, 'a1'), '--json'], {
        cwd: repoRoot,
        encoding: 'utf8',
        stdio: 'pipe',
      });
    } catch (e) {
      code = (e as { status: number }).status;
      stdout = (e as { stdout: string }).stdout;
    }
    expect(code).toBe(1);
    const report = JSON.parse(stdout) as ReleaseReport;
    expect(report.ok).toBe(false);
    expect(report.failures).toMatchObject([{ target: 'cpu', code: 'GATE_FAILED', message: expect.stringMatching(/kl_mean/) }]);
    expect((await readdir(out).catch(() => [] as string[])).filter((f) => f !== 'packages')).toEqual([]);
  }, 600_000);
});
