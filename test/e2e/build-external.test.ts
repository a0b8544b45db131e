// End to end: `build --builder genai` drives the (fake) onnxruntime-genai builder, then validates and packages its
// output like a native build. The fake records the exact command line it receives.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildReport } from '../../src/stages/build-report.js';
import { installFakeTools, type FakeTools } from '../helpers/fake-python.js';

const ROOT = new URL('../..', import.meta.url).pathname;
let work: string;
let fake: FakeTools;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'phi-forge-build-ext-'));
  fake = await installFakeTools();
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
  await fake.cleanup();
});

function cli(args: string[], extraEnv: Record<string, string> = {}) {
  const env = { ...process.env, ...fake.env(extraEnv), PATH: `${fake.binDir}:${process.env.PATH}`, CI: 'true' };
  return execa('pnpm', ['pipeline', ...args], { cwd: ROOT, reject: false, env });
}

describe('build --builder genai', () => {
  it('runs the genai builder once with the recipe mapped to its flags, then validates and packages its int4 output', async () => {
    const r = await cli(['build', 'tiny-phi', '--target', 'cpu', '--builder', 'genai', '--python', fake.path('python3'), '--artifacts', join(work, 'a'), '--out', join(work, 'out'), '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as BuildReport;
    const t = report.targets[0];
    expect(t.ok).toBe(true);
    // the tool quantized (int4): no quantize stage; the reference came from a native float build
    const stages = t.stages.map((s) => s.stage);
    expect(stages).not.toContain('quantize');
    expect(stages.filter((s) => s === 'convert')).toHaveLength(2);
    expect(t.validation?.metrics.kl_mean).toBeGreaterThan(0);

    const builds = (await fake.records()).filter((x) => !x.probe && x.argv.includes('onnxruntime_genai.models.builder'));
    expect(builds).toHaveLength(1);
    const argv = builds[0].argv;
    const flag = (f: string) => argv[argv.indexOf(f) + 1];
    expect(argv.slice(0, 2)).toEqual(['-m', 'onnxruntime_genai.models.builder']);
    expect(flag('-p')).toBe('int4');
    expect(flag('-e')).toBe('cpu');
    expect(argv).toContain('-i');
    expect(argv).toContain('-o');
    const extra = argv.slice(argv.indexOf('--extra_options') + 1);
    expect(extra).toContain('int4_block_size=32');
    expect(extra).toContain('int4_accuracy_level=4');

    // a second build reuses everything, the tool is not run again
    const again = await cli(['build', 'tiny-phi', '--target', 'cpu', '--builder', 'genai', '--python', fake.path('python3'), '--artifacts', join(work, 'a'), '--out', join(work, 'out'), '--json']);
    expect((JSON.parse(again.stdout) as BuildReport).stagesRun).toBe(0);
    expect((await fake.records()).filter((x) => !x.probe && x.argv.includes('onnxruntime_genai.models.builder'))).toHaveLength(1);
  });

  it('a missing onnxruntime-genai package is one message with the install command, before any stage runs', async () => {
    const r = await cli(['build', 'tiny-phi', '--target', 'cpu', '--builder', 'genai', '--python', fake.path('python3'), '--artifacts', join(work, 'b')], {
      FAKE_PYTHON_MISSING: 'onnxruntime_genai',
    });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/onnxruntime-genai/);
    expect(r.stderr).toMatch(/pip install/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
