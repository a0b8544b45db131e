// End to end: `pnpm pipeline build` on the embedded default, through the real CLI in a child process.
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildReport } from '../../src/stages/build-report.js';
import { sharedFixture } from '../helpers/fixtures.js';
import { loadModel } from '../../src/onnx/model-file.js';
import { DecoderSession } from '../../src/runtime/decoder-session.js';

const ROOT = new URL('../..', import.meta.url).pathname;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'phi-forge-build-e2e-'));
});
afterAll(async () => rm(work, { recursive: true, force: true }));

/** Runs the CLI the way the README does (pnpm pipeline ...), without a TTY. */
async function cli(args: string[]) {
  return execa('pnpm', ['pipeline', ...args], { cwd: ROOT, reject: false, env: { CI: 'true' } });
}

async function buildJson(args: string[]): Promise<BuildReport> {
  const r = await cli(['build', ...args, '--json']);
  expect(r.exitCode, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as BuildReport;
}

async function packageFiles(dir: string): Promise<Record<string, string>> {
  const m = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as { files: { path: string; sha256: string }[] };
  return Object.fromEntries(m.files.map((f) => [f.path, f.sha256]));
}

describe('build tiny-phi (embedded default)', () => {
  it('produces a package that generate runs; a second build does no work', async () => {
    const art = join(work, 'a1');
    const out = join(work, 'out1');
    const r = await buildJson(['tiny-phi', '--target', 'cpu', '--artifacts', art, '--out', out]);
    expect(r.model).toBe('tiny-phi');
    expect(r.targets).toHaveLength(1);
    const t = r.targets[0];
    expect(t.ok).toBe(true);
    expect(t.package).toBe(join(out, 'tiny-phi-cpu'));
    const names = (t.files ?? []).map((f) => f.path);
    for (const f of ['model.onnx', 'model.onnx.data', 'genai_config.json', 'tokenizer.json', 'tokenizer_config.json']) expect(names).toContain(f);
    expect(t.quantization).toMatchObject({ scheme: 'int4', block_size: 32, accuracy_level: 4 });
    // validation ran against the unquantized model and the numbers are sane
    expect(t.validation?.metrics.tokens_scored).toBeGreaterThan(0);
    expect(t.validation?.metrics.kl_mean).toBeGreaterThan(0);
    expect(t.validation?.metrics.top1_agreement).toBeGreaterThan(0.2);
    expect(r.stagesRun).toBeGreaterThanOrEqual(6);

    const gen = await cli(['generate', t.package!, '--prompt', 'Once upon a time', '--max-new-tokens', '8', '--json']);
    expect(gen.exitCode, gen.stderr).toBe(0);
    const g = JSON.parse(gen.stdout) as { tokens: number[]; text: string };
    expect(g.tokens).toHaveLength(8);

    const again = await buildJson(['tiny-phi', '--target', 'cpu', '--artifacts', art, '--out', out]);
    expect(again.stagesRun).toBe(0);
    expect(again.targets[0].stages.every((s) => s.cached)).toBe(true);
    const human = await cli(['build', 'tiny-phi', '--target', 'cpu', '--artifacts', art, '--out', out]);
    expect(human.stdout).toMatch(/nothing to do: every stage was cached/);

    // changing the quantization redoes only quantize and what follows it
    const int8 = await buildJson(['tiny-phi', '--target', 'cpu', '--precision', 'int8', '--artifacts', art, '--out', out]);
    const cached = Object.fromEntries(int8.targets[0].stages.map((s) => [s.stage, s.cached]));
    expect(cached).toEqual({ source: true, convert: true, quantize: false, reference: true, validate: false, package: false });
  });

  it('a build killed (SIGKILL) while the convert stage writes resumes to byte-identical output', async () => {
    const clean = await buildJson(['tiny-phi', '--target', 'cpu', '--artifacts', join(work, 'clean'), '--out', join(work, 'clean-out')]);

    const art = join(work, 'killed');
    const convertDir = join(art, 'tiny-phi', 'convert');
    const child = spawn('pnpm', ['pipeline', 'build', 'tiny-phi', '--target', 'cpu', '--artifacts', art, '--out', join(work, 'killed-out')], {
      cwd: ROOT,
      env: { ...process.env, CI: 'true' },
      stdio: 'ignore',
      detached: true,
    });
    const exited = new Promise((res) => child.on('exit', res));
    // Wait until the convert stage is writing its temporary folder, then kill the whole process group.
    let sawTemp = false;
    for (let i = 0; i < 4000 && !sawTemp; i++) {
      const names = await readdir(convertDir).catch(() => [] as string[]);
      sawTemp = names.some((n) => n.includes('.tmp-'));
      if (!sawTemp) await new Promise((r) => setTimeout(r, 5));
    }
    expect(sawTemp).toBe(true);
    process.kill(-child.pid!, 'SIGKILL');
    await exited;
    // Nothing that looks complete: no convert folder with a stage.json, no published package.
    const left = await readdir(convertDir);
    for (const n of left.filter((x) => !x.startsWith('.'))) {
      await expect(readFile(join(convertDir, n, 'stage.json'))).rejects.toThrow();
    }
    await expect(readdir(join(work, 'killed-out'))).rejects.toThrow();

    const resumed = await buildJson(['tiny-phi', '--target', 'cpu', '--artifacts', art, '--out', join(work, 'killed-out')]);
    expect(resumed.targets[0].ok).toBe(true);
    // the debris of the killed run is gone
    expect((await readdir(convertDir)).filter((n) => n.includes('.tmp-'))).toEqual([]);
    // byte-identical to the uninterrupted build (and so: builds are deterministic across artifact folders)
    expect(await packageFiles(resumed.targets[0].package!)).toEqual(await packageFiles(clean.targets[0].package!));
  });
});

describe('the target is a value from the recipe to the package', () => {
  it('cpu at fp16 builds and verifies; it shares its convert stage with cuda (the same fp16 graph), each package selects its own provider', async () => {
    const r = await buildJson(['tiny-phi', '--target', 'cpu', '--target', 'cuda', '--precision', 'fp16', '--artifacts', join(work, 'fp16'), '--out', join(work, 'fp16-out')]);
    expect(r.targets.map((t) => [t.target, t.ok, t.precision])).toEqual([['cpu', true, 'fp16'], ['cuda', true, 'fp16']]);
    const convert = r.targets.map((t) => t.stages.find((s) => s.stage === 'convert')!.dir);
    expect(convert[0]).toBe(convert[1]);
    const providers = await Promise.all(
      r.targets.map(async (t) => JSON.parse(await readFile(join(t.package!, 'genai_config.json'), 'utf8')).model.decoder.session_options.provider_options),
    );
    expect(providers).toEqual([[], [{ cuda: expect.any(Object) }]]);
    const v = await cli(['verify', r.targets[0].package!, '--json']);
    expect(v.exitCode, v.stdout + v.stderr).toBe(0);
  });

  it('a precision the execution provider cannot run is refused before any stage, with the reason (exit 2)', async () => {
    const art = join(work, 'cuda-fp32');
    const r = await cli(['build', 'tiny-phi', '--target', 'cuda', '--precision', 'fp32', '--artifacts', art, '--out', join(work, 'cuda-fp32-out')]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/target cuda cannot be built at fp32: com\.microsoft\.GroupQueryAttention.* has no float32 kernel on CUDAExecutionProvider/);
    expect(r.stderr).toMatch(/fix: build cuda at fp16/);
    expect(await readdir(art).catch(() => [])).not.toContain('tiny-phi');
  });
});

describe('build stories260K (real trained weights, llama2.c source) for every target', () => {
  it('builds cpu, cuda, dml and mobile packages that verify and generate', async () => {
    expect(sharedFixture('stories260K/stories260K.bin')).toBeDefined();
    const out = join(work, 'stories-out');
    const r = await buildJson(['test/recipes/stories260k.json', '--target', 'cpu', '--target', 'cuda', '--target', 'dml', '--target', 'mobile', '--artifacts', join(work, 'stories'), '--out', out]);
    expect(r.targets.map((t) => [t.target, t.ok])).toEqual([
      ['cpu', true],
      ['cuda', true],
      ['dml', true],
      ['mobile', true],
    ]);
    // cpu and mobile share one fp32 graph; cuda and dml are fp16 graphs of their own layouts
    const convertDirs = r.targets.map((t) => t.stages.find((s) => s.stage === 'convert')!.dir);
    expect(convertDirs[0]).toBe(convertDirs[3]);
    expect(new Set(convertDirs).size).toBe(3);
    // the mobile package is the cpu graph pre-optimised offline (onnxruntime basic level): fewer nodes, same logits
    const [cpuModel, mobileModel] = await Promise.all([0, 3].map((i) => loadModel(join(r.targets[i].package!, 'model.onnx'))));
    expect(mobileModel.graph.nodes.length).toBeLessThan(cpuModel.graph.nodes.length);
    const sessions = await Promise.all([0, 3].map((i) => DecoderSession.open(r.targets[i].package!)));
    try {
      const [a, b] = await Promise.all(sessions.map((s) => s.forward([1, 200, 33, 7, 400])));
      let maxDiff = 0;
      for (let i = 0; i < a.logits.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a.logits[i] - b.logits[i]));
      expect(maxDiff).toBeLessThan(1e-4);
    } finally {
      await Promise.all(sessions.map((s) => s.release()));
    }
    for (const t of r.targets) {
      const v = await cli(['verify', t.package!, '--json']);
      expect(v.exitCode, `${t.target}: ${v.stdout}${v.stderr}`).toBe(0);
    }
  });
});

describe('Ctrl-C', () => {
  it('SIGINT to the process group (as a terminal sends it) stops the build at once: exit 130, no temp folders', async () => {
    const art = join(work, 'sigint');
    const convertDir = join(art, 'tiny-phi', 'convert');
    // Through tsx directly: pnpm, when it gets the SIGINT itself, exits by the signal rather than with our code.
    const tsx = join(ROOT, 'node_modules', '.bin', 'tsx');
    const child = spawn(tsx, ['src/cli/main.ts', 'build', 'tiny-phi', '--target', 'cpu', '--artifacts', art, '--out', join(work, 'sigint-out')], {
      cwd: ROOT,
      env: { ...process.env, CI: 'true' },
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: true,
    });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    let sawTemp = false;
    for (let i = 0; i < 4000 && !sawTemp; i++) {
      sawTemp = (await readdir(convertDir).catch(() => [] as string[])).some((n) => n.includes('.tmp-'));
      if (!sawTemp) await new Promise((r) => setTimeout(r, 5));
    }
    expect(sawTemp).toBe(true);
    process.kill(-child.pid!, 'SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toMatch(/interrupted by Ctrl-C/);
    expect(stderr).not.toMatch(/\n\s+at /);
    expect((await readdir(convertDir)).filter((n) => n.includes('.tmp-'))).toEqual([]);
    await expect(readdir(join(work, 'sigint-out'))).rejects.toThrow();
  });
});

describe('build errors a user can cause', () => {
  it('a bad recipe exits 2 naming the file and the field', async () => {
    const f = join(work, 'bad-recipe.json');
    await writeFile(f, JSON.stringify({ source: { synth: { preset: 'phi-4-mini' } }, targets: [{ target: 'cpu', quant: { scheme: 'int4', block_size: 48 } }] }));
    const r = await cli(['build', f]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/bad-recipe\.json: targets\[0\]\.quant\.block_size: expected a power of two ≥ 16/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it('an unknown recipe exits 2 listing the shipped ones', async () => {
    const r = await cli(['build', 'phi-9000']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/tiny-phi/);
    expect(r.stderr).toMatch(/phi-4-mini-instruct/);
  });

  it('a checkpoint folder without config.json fails with one clear message', async () => {
    const d = join(work, 'empty-ckpt');
    await mkdir(d, { recursive: true });
    await writeFile(join(d, 'model.safetensors'), 'x');
    const r = await cli(['build', d, '--artifacts', join(work, 'a-err')]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/no config\.json in the checkpoint folder/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('an unsupported architecture names the supported ones', async () => {
    const d = join(work, 'llama-ckpt');
    await mkdir(d, { recursive: true });
    await writeFile(join(d, 'config.json'), JSON.stringify({ architectures: ['LlamaForCausalLM'], model_type: 'llama' }));
    const r = await cli(['build', d, '--artifacts', join(work, 'a-arch'), '--json']);
    // the source stage reads config.json first: the build stops before any weights are looked for
    expect(r.exitCode).toBe(1);
    // --json: one JSON document on failure too
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, exitCode: 1, error: { code: 'ARCH_UNSUPPORTED' } });
    expect(r.stderr).toMatch(/architecture LlamaForCausalLM is not supported/);
    expect(r.stderr).toMatch(/Phi3ForCausalLM/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('an unwritable --out fails with one clear message', async () => {
    const file = join(work, 'a-file');
    await writeFile(file, 'x');
    const r = await cli(['build', 'tiny-phi', '--target', 'cpu', '--artifacts', join(work, 'a-unwritable'), '--out', join(file, 'sub')]);
    // refused before any work, as a usage error
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/^error: --out .*a-file\/sub: .*a-file is a file, so nothing can be created under it/);
    expect(await readdir(work)).not.toContain('a-unwritable');
  });
});
