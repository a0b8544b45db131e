// Finding Python (--python, PHI_FORGE_PYTHON, python3 then python on PATH) and detecting the builders' packages:
// each failure is one clear error with the install command. Fake interpreters answer the probe; one test runs the
// probe in the machine's real Python when there is one.
import { chmod, copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectExternalBuilder } from '../../src/external/detect.js';
import { findOnPath, locatePython, probePython, PROBE_MARKER } from '../../src/external/python.js';
import { compareVersions, MIN_GENAI_VERSION } from '../../src/external/requirements.js';
import { ExternalToolError } from '../../src/util/errors.js';
import { emptyBinDir, installFakeTools, type FakeTools } from '../helpers/fake-python.js';

let tools: FakeTools;
beforeAll(async () => {
  tools = await installFakeTools();
});
afterAll(async () => {
  await tools.cleanup();
});

async function failure(p: Promise<unknown>): Promise<ExternalToolError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ExternalToolError);
  return e as ExternalToolError;
}

/** A second bin folder holding only the named fakes. */
async function binWith(name: string, ...fakes: ('python3' | 'python' | 'olive')[]): Promise<string> {
  const d = join(tools.root, name);
  await mkdir(d, { recursive: true });
  for (const f of fakes) {
    await copyFile(tools.path(f), join(d, f));
    await chmod(join(d, f), 0o755);
  }
  return d;
}

describe('locatePython', () => {
  it('takes --python over PHI_FORGE_PYTHON over PATH, and python3 before python on PATH', async () => {
    const env = tools.env({ PHI_FORGE_PYTHON: tools.path('python') });
    expect(await locatePython(tools.path('python3'), env)).toEqual({ path: tools.path('python3'), source: '--python' });
    expect(await locatePython(undefined, env)).toEqual({ path: tools.path('python'), source: 'PHI_FORGE_PYTHON' });
    expect(await locatePython(undefined, tools.env())).toEqual({ path: tools.path('python3'), source: 'PATH' });
    const onlyPython = await binWith('only-python', 'python');
    expect(await locatePython(undefined, { PATH: onlyPython })).toEqual({ path: join(onlyPython, 'python'), source: 'PATH' });
    // python3 anywhere on PATH beats python in an earlier folder.
    expect((await locatePython(undefined, { PATH: `${onlyPython}:${tools.binDir}` })).path).toBe(tools.path('python3'));
  });

  it('looks a bare --python name up on PATH', async () => {
    expect(await locatePython('python', tools.env())).toEqual({ path: tools.path('python'), source: '--python' });
  });

  it('names the missing or unusable interpreter', async () => {
    const none = await failure(locatePython(undefined, { PATH: await emptyBinDir(tools) }));
    expect(none.code).toBe('EXTERNAL_PYTHON_MISSING');
    expect(none.message).toContain('neither python3 nor python on PATH');
    expect(none.fix).toContain('--python');

    const gone = await failure(locatePython('/nowhere/bin/python3', tools.env()));
    expect(gone.code).toBe('EXTERNAL_PYTHON_NOT_EXECUTABLE');
    expect(gone.message).toContain('/nowhere/bin/python3');

    const plain = join(tools.root, 'not-executable');
    await writeFile(plain, '#!/bin/sh\n');
    const env = await failure(locatePython(undefined, { PATH: tools.binDir, PHI_FORGE_PYTHON: plain }));
    expect(env.code).toBe('EXTERNAL_PYTHON_NOT_EXECUTABLE');
    expect(env.message).toContain('PHI_FORGE_PYTHON');
  });
});

describe('detectExternalBuilder', () => {
  it('probes once and reports the interpreter and versions', async () => {
    const before = (await tools.records()).length;
    const info = await detectExternalBuilder('genai', undefined, { env: tools.env() });
    expect(info.python).toEqual({ path: tools.path('python3'), source: 'PATH' });
    expect(info.pythonVersion).toBe('3.11.7');
    expect(info.versions).toEqual({ onnxruntime_genai: '0.10.1', transformers: '4.51.3', torch: '2.6.0+cpu', onnx: '1.17.0' });
    const calls = (await tools.records()).slice(before);
    expect(calls).toHaveLength(1);
    expect(calls[0].argv[0]).toBe('-c');
    expect(calls[0].argv[1]).toContain(PROBE_MARKER);
    expect(JSON.parse(calls[0].argv[2])).toEqual([
      ['onnxruntime_genai', ['onnxruntime-genai', 'onnxruntime-genai-cuda', 'onnxruntime-genai-directml'], 'import'],
      ['transformers', ['transformers'], 'find'],
      ['torch', ['torch'], 'find'],
      ['onnx', ['onnx'], 'find'],
    ]);
  });

  it('missing onnxruntime-genai: one message with the pip command for that interpreter (CUDA wheel for cuda)', async () => {
    const e = await failure(detectExternalBuilder('genai', undefined, { env: tools.env({ FAKE_PYTHON_MISSING: 'onnxruntime_genai' }), target: 'cuda' }));
    expect(e.code).toBe('EXTERNAL_PACKAGE_MISSING');
    expect(e.message).toContain(`onnxruntime-genai-cuda is not installed (ModuleNotFoundError: No module named 'onnxruntime_genai')`);
    expect(e.message).toContain(tools.path('python3'));
    expect(e.fix).toBe(`run: ${tools.path('python3')} -m pip install "onnxruntime-genai-cuda>=${MIN_GENAI_VERSION}"`);
  });

  it('too old: names found and needed versions and upgrades', async () => {
    const e = await failure(detectExternalBuilder('genai', tools.path('python'), { env: tools.env({ FAKE_PYTHON_VERSIONS: 'onnxruntime_genai=0.8.3,transformers=4.46.1' }) }));
    expect(e.code).toBe('EXTERNAL_PACKAGE_OUTDATED');
    expect(e.message).toContain('onnxruntime-genai 0.8.3 is older than 0.9.0');
    expect(e.message).toContain('transformers 4.46.1 is older than 4.49.0');
    expect(e.message).toContain('from --python');
    expect(e.fix).toBe(`run: ${tools.path('python')} -m pip install --upgrade "onnxruntime-genai>=0.9.0" "transformers>=4.49.0"`);
  });

  it('a release candidate of the minimum version is still too old; a later one passes', async () => {
    await expect(detectExternalBuilder('genai', undefined, { env: tools.env({ FAKE_PYTHON_VERSIONS: 'onnxruntime_genai=0.9.0rc1' }) })).rejects.toThrow(/0\.9\.0rc1 is older/);
    await expect(detectExternalBuilder('genai', undefined, { env: tools.env({ FAKE_PYTHON_VERSIONS: 'onnxruntime_genai=0.9.0' }) })).resolves.toMatchObject({ kind: 'genai' });
  });

  it('an import that fails for another reason (broken native library) is reported with its error', async () => {
    const e = await failure(detectExternalBuilder('genai', undefined, { env: tools.env({ FAKE_PYTHON_BROKEN: 'onnxruntime_genai' }) }));
    expect(e.code).toBe('EXTERNAL_PACKAGE_MISSING');
    expect(e.message).toContain('ImportError: libonnxruntime.so.1');
  });

  it('an interpreter that crashes or does not answer the probe', async () => {
    const crash = await failure(detectExternalBuilder('genai', undefined, { env: tools.env({ FAKE_PYTHON_PROBE: 'crash' }) }));
    expect(crash.code).toBe('EXTERNAL_PROBE_FAILED');
    expect(crash.message).toContain('exited with code 1');
    expect(crash.message).toContain('SystemError: fake interpreter is broken');
    const garbage = await failure(detectExternalBuilder('genai', undefined, { env: tools.env({ FAKE_PYTHON_PROBE: 'garbage' }) }));
    expect(garbage.code).toBe('EXTERNAL_PROBE_FAILED');
    expect(garbage.message).toContain('printed no answer');
  });

  it('no Python at all', async () => {
    const e = await failure(detectExternalBuilder('olive', undefined, { env: { PATH: await emptyBinDir(tools) } }));
    expect(e.code).toBe('EXTERNAL_PYTHON_MISSING');
  });

  it('olive: needs olive-ai and the genai builder, and the `olive` command', async () => {
    const info = await detectExternalBuilder('olive', undefined, { env: tools.env() });
    expect(info.olive).toBe(tools.path('olive'));
    expect(info.versions.olive).toBe('0.9.2');

    const missing = await failure(detectExternalBuilder('olive', undefined, { env: tools.env({ FAKE_PYTHON_MISSING: 'olive,onnxruntime_genai' }) }));
    expect(missing.message).toContain('olive-ai is not installed');
    expect(missing.message).toContain('onnxruntime-genai is not installed');
    expect(missing.fix).toBe(`run: ${tools.path('python3')} -m pip install "olive-ai>=0.9.0" "onnxruntime-genai>=0.9.0"`);

    const old = await failure(detectExternalBuilder('olive', undefined, { env: tools.env({ FAKE_PYTHON_VERSIONS: 'olive=0.7.12' }) }));
    expect(old.code).toBe('EXTERNAL_PACKAGE_OUTDATED');
    expect(old.message).toContain('olive-ai 0.7.12 is older than 0.9.0');

    const noCommand = await binWith('python-no-olive', 'python3');
    const e = await failure(detectExternalBuilder('olive', undefined, { env: tools.env({ PATH: noCommand }) }));
    expect(e.code).toBe('EXTERNAL_OLIVE_MISSING');
    expect(e.message).toContain('no `olive` command');
  });

  it('olive: the command next to the chosen interpreter wins over one on PATH', async () => {
    const venv = await binWith('venv-bin', 'python3', 'olive');
    const info = await detectExternalBuilder('olive', join(venv, 'python3'), { env: tools.env() });
    expect(info.olive).toBe(join(venv, 'olive'));
    const bare = await binWith('bare-python', 'python3');
    const viaPath = await detectExternalBuilder('olive', join(bare, 'python3'), { env: tools.env() });
    expect(viaPath.olive).toBe(tools.path('olive'));
  });
});

describe('the probe in a real interpreter', async () => {
  const real = await findOnPath('python3', process.env);
  it.skipIf(!real)('reports versions, missing modules and import errors from the machine\'s Python', async () => {
    const probe = await probePython({ path: real!, source: 'PATH' }, [
      { module: 'json', distributions: [], how: 'import' },
      { module: 'phi_forge_no_such_module', distributions: ['phi-forge-no-such-dist'], how: 'find' },
      { module: 'phi_forge_no_such_module2', distributions: [], how: 'import' },
    ]);
    expect(probe.pythonVersion).toMatch(/^3\.\d+\.\d+$/);
    expect(probe.packages.json.version).toMatch(/^\d+\.\d+/); // the json module's own __version__
    expect(probe.packages.phi_forge_no_such_module.error).toBe("ModuleNotFoundError: No module named 'phi_forge_no_such_module'");
    expect(probe.packages.phi_forge_no_such_module2.error).toMatch(/^ModuleNotFoundError: No module named 'phi_forge_no_such_module2'/);
  });
});

describe('compareVersions', () => {
  it('orders release numbers, pre-releases before releases, ignores local labels', () => {
    expect(compareVersions('0.10.0', '0.9.2')).toBe(1);
    expect(compareVersions('0.9', '0.9.0')).toBe(0);
    expect(compareVersions('0.9.0rc2', '0.9.0')).toBe(-1);
    expect(compareVersions('0.9.0.dev20250101', '0.9.0')).toBe(-1);
    expect(compareVersions('2.6.0+cu124', '2.6.0')).toBe(0);
    expect(compareVersions('4.49.0', '4.49.0')).toBe(0);
    expect(compareVersions('4.48.3', '4.49.0')).toBe(-1);
  });
});
