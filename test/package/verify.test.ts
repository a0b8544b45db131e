import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, open, readFile, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatVerification, missingKernel, verify, verifyPackage, type PackageVerification } from '../../src/package/verify.js';
import { cleanTempDirs, tempDir, writeCpuUnsupportedPackage, writeFakePackage, writeManifest, writeRunnablePackage } from '../helpers/package.js';
import { buildTinyDecoder, referenceLogits } from '../helpers/runtime.js';

const repoRoot = new URL('../../', import.meta.url).pathname;

let work: string;
let intact: string;
beforeAll(async () => {
  work = await tempDir('phi-forge-verify-');
  intact = await writeRunnablePackage(join(work, 'intact'), { target: 'cpu' });
});
afterAll(cleanTempDirs);

/** A fresh copy of the intact package to damage. */
async function copyOfIntact(name: string): Promise<string> {
  const dir = join(work, name);
  await cp(intact, dir, { recursive: true });
  return dir;
}

/** Independent greedy decoding: the whole sequence re-run from scratch each step (no KV cache, no src/runtime). */
async function referenceGreedy(modelFile: string, bos: number, steps: number): Promise<number[]> {
  const m = buildTinyDecoder();
  const ids = [bos];
  for (let s = 0; s < steps; s++) {
    const logits = await referenceLogits(modelFile, m, ids);
    const last = logits.subarray((ids.length - 1) * m.opts.vocab, ids.length * m.opts.vocab);
    ids.push(last.indexOf(Math.max(...last)));
  }
  return ids.slice(1);
}

describe('verifyPackage', () => {
  it('passes an intact package and generates the same tokens as an independent cache-free decode', async () => {
    const r = (await verify(intact)) as PackageVerification;
    expect(r.kind).toBe('package');
    expect(r.ok).toBe(true);
    expect(r.files.problems).toEqual([]);
    expect(r.files.checked).toBe(3);
    expect(r.genaiConfig).toEqual({ ok: true });
    expect(r.generation.status).toBe('ok');
    if (r.generation.status !== 'ok') return;
    expect(r.generation.promptTokens).toEqual([1]); // bos_token_id of the package's genai_config.json
    expect(r.generation.tokens).toEqual(await referenceGreedy(join(intact, 'model.onnx'), 1, r.generation.tokens.length));
    expect(formatVerification(r)).toMatch(/verified: OK\n$/);
  });

  it('names a model.onnx.data with one flipped byte as modified, and does not run it', async () => {
    const dir = await copyOfIntact('flipped');
    const fh = await open(join(dir, 'model.onnx.data'), 'r+');
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, 1000);
    b[0] ^= 0x40;
    await fh.write(b, 0, 1, 1000);
    await fh.close();
    const r = await verifyPackage(dir);
    expect(r.ok).toBe(false);
    expect(r.files.problems.map((p) => [p.path, p.problem])).toEqual([['model.onnx.data', 'sha256']]);
    expect(r.generation).toEqual({ status: 'skipped', reason: 'files do not match manifest.json' });
    expect(formatVerification(r)).toMatch(/model\.onnx\.data: modified/);
  });

  it('names a truncated, a deleted and an unlisted file', async () => {
    const dir = await copyOfIntact('damaged');
    await truncate(join(dir, 'model.onnx.data'), 4096);
    await rm(join(dir, 'genai_config.json'));
    await writeFile(join(dir, 'stray.bin'), 'x');
    const r = await verifyPackage(dir);
    expect(r.ok).toBe(false);
    expect(r.files.problems.map((p) => [p.path, p.problem])).toEqual([
      ['genai_config.json', 'missing'],
      ['model.onnx.data', 'size'],
      ['stray.bin', 'unlisted'],
    ]);
    expect(r.genaiConfig.ok).toBe(false);
    const text = formatVerification(r);
    expect(text).toMatch(/genai_config\.json: missing/);
    expect(text).toMatch(/model\.onnx\.data: truncated or resized \(4096 bytes, manifest says \d+/);
    expect(text).toMatch(/stray\.bin: not in manifest\.json/);
    expect(text).toMatch(/verification FAILED\n$/);
  });

  it('reports a genai_config.json that does not parse, even when the manifest matches it', async () => {
    const dir = await copyOfIntact('bad-config');
    await writeFile(join(dir, 'genai_config.json'), '{"model": {"decoder": ');
    await writeManifest(dir, { target: 'cpu' });
    const r = await verifyPackage(dir);
    expect(r.files.problems).toEqual([]);
    expect(r.genaiConfig.ok).toBe(false);
    expect(r.genaiConfig.error).toMatch(/genai_config\.json.*not valid JSON/s);
    expect(r.ok).toBe(false);
  });

  it('fails a folder without manifest.json', async () => {
    const dir = await copyOfIntact('no-manifest');
    await rm(join(dir, 'manifest.json'));
    const r = await verifyPackage(dir);
    expect(r.ok).toBe(false);
    expect(r.manifestError).toMatch(/no manifest\.json/);
  });

  /** Edits the copy's manifest.json as JSON (what someone editing a package by hand can do). */
  async function editManifest(dir: string, edit: (m: { formatVersion: unknown; files: { path: string; size: number; sha256: string }[] }) => void) {
    const file = join(dir, 'manifest.json');
    const m = JSON.parse(await readFile(file, 'utf8')) as Parameters<typeof edit>[0];
    edit(m);
    await writeFile(file, JSON.stringify(m, null, 2));
  }

  it('fails a manifest that lists a file twice, naming it, even with identical entries', async () => {
    const dir = await copyOfIntact('duplicate');
    await editManifest(dir, (m) => m.files.push({ ...m.files.find((f) => f.path === 'model.onnx.data')! }));
    const r = await verifyPackage(dir);
    expect(r.ok).toBe(false);
    expect(r.manifestError).toMatch(/"model\.onnx\.data" is listed twice/);
    expect(r.generation.status).toBe('skipped');
    expect(formatVerification(r)).toMatch(/✖ manifest\.json: .*model\.onnx\.data" is listed twice[\s\S]*verification FAILED/);
  });

  it('fails a manifest of a formatVersion it does not read, naming it and the versions it reads', async () => {
    const dir = await copyOfIntact('version-2');
    await editManifest(dir, (m) => (m.formatVersion = 2));
    const r = await verifyPackage(dir);
    expect(r.ok).toBe(false);
    expect(r.manifestError).toMatch(/formatVersion 2 is not one this tool reads \(1\)/);
  });

  it('fails a manifest path outside the package and a listed symbolic link, though their hashes match', async () => {
    const outsideName = 'outside.bin';
    await writeFile(join(work, outsideName), 'outside bytes');
    const outsideEntry = { path: `../${outsideName}`, size: 13, sha256: createHash('sha256').update('outside bytes').digest('hex') };
    const escaping = await copyOfIntact('escaping');
    await editManifest(escaping, (m) => m.files.unshift(outsideEntry));
    const r = await verifyPackage(escaping);
    expect(r.ok).toBe(false);
    expect(r.manifestError).toContain(`files[0].path "../${outsideName}" must be a relative path inside the folder`);

    const linked = await copyOfIntact('linked');
    await symlink(join(work, outsideName), join(linked, 'extra.bin'));
    await editManifest(linked, (m) => m.files.unshift({ ...outsideEntry, path: 'extra.bin' }));
    const l = await verifyPackage(linked);
    expect(l.ok).toBe(false);
    expect(l.files.problems).toEqual([{ path: 'extra.bin', problem: 'not-a-file', detail: 'extra.bin is a symbolic link' }]);
    expect(formatVerification(l)).toMatch(/extra\.bin: not a regular file inside the package \(extra\.bin is a symbolic link\)/);
  });

  it('runs fp16 cuda and dml packages on the CPU EP when it can execute them', async () => {
    for (const target of ['cuda', 'dml']) {
      const r = await verifyPackage(await writeRunnablePackage(join(work, `run-${target}`), { target }));
      expect(r.ok).toBe(true);
      expect(r.generation.status).toBe('ok');
    }
  });

  it('an op the CPU EP lacks skips generation for a cuda package but fails a cpu package', async () => {
    const cuda = await verifyPackage(await writeCpuUnsupportedPackage(join(work, 'cuda-only'), { target: 'cuda' }));
    expect(cuda.ok).toBe(true);
    expect(cuda.generation.status).toBe('skipped');
    if (cuda.generation.status === 'skipped') expect(cuda.generation.reason).toMatch(/no kernel for com\.microsoft\.BiasAdd\(1\)/);
    const cpu = await verifyPackage(await writeCpuUnsupportedPackage(join(work, 'cpu-bad'), { target: 'cpu' }));
    expect(cpu.ok).toBe(false);
    expect(cpu.generation.status).toBe('failed');
  });

  it('a package that is not a model fails generation (fake bytes in model.onnx)', async () => {
    const r = await verifyPackage(await writeFakePackage(join(work, 'fake'), { target: 'cpu' }));
    expect(r.files.problems).toEqual([]);
    expect(r.generation.status).toBe('failed');
    expect(r.ok).toBe(false);
  });

  it('reads the op out of onnxruntime kernel errors', () => {
    expect(missingKernel("Failed to find kernel for com.microsoft.BiasAdd(1) (node:'n' ep:'CPUExecutionProvider'). Kernel not found")).toBe('com.microsoft.BiasAdd(1)');
    expect(missingKernel('Could not find an implementation for GroupNorm(1) node with name')).toBe('GroupNorm(1)');
    expect(missingKernel('Fatal error: com.example:Foo(-1) is not a registered function/op')).toBe('com.example:Foo');
    expect(missingKernel('Load model failed: protobuf parsing failed')).toBeUndefined();
  });
});

describe('pnpm pipeline verify', () => {
  const cli = (...args: string[]) => {
    try {
      return { code: 0, stdout: execFileSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'verify', ...args], { cwd: repoRoot, encoding: 'utf8', stdio: 'pipe' }) };
    } catch (e) {
      const err = e as { status: number; stdout: string };
      return { code: err.status, stdout: err.stdout };
    }
  };

  it('exits 0 on an intact package and 1 naming the damaged file (--json)', async () => {
    expect(cli(intact).code).toBe(0);
    const dir = await copyOfIntact('cli-damaged');
    await truncate(join(dir, 'model.onnx'), 10);
    const r = cli(dir, '--json');
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as PackageVerification;
    expect(report.files.problems).toMatchObject([{ path: 'model.onnx', problem: 'size' }]);
  });
});
