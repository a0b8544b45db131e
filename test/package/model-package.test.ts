import { cp, readdir, readFile, rm, symlink, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isModelPackage, readModelPackage, writeModelPackage } from '../../src/package/model-package.js';
import { verify, type ModelPackageVerification } from '../../src/package/verify.js';
import { TOOL_VERSION } from '../../src/util/version.js';
import { cleanTempDirs, treeDigest, tempDir, writeFakePackage, writeRunnablePackage } from '../helpers/package.js';

let work: string;
const pkgs: Record<string, string> = {};
beforeAll(async () => {
  work = await tempDir('phi-forge-mp-');
  for (const t of ['cpu', 'cuda', 'dml', 'mobile']) pkgs[t] = await writeFakePackage(join(work, `tiny-test-${t}`), { target: t, seed: t.length });
});
afterAll(cleanTempDirs);

const readJson = async (f: string) => JSON.parse(await readFile(f, 'utf8')) as unknown;

describe('writeModelPackage', () => {
  it("writes onnxruntime's layout: manifest.json → decoder/component.json → one complete folder per target", async () => {
    const out = join(work, 'tiny-test.ortpackage');
    // Given out of order: variants are declared in target order (cpu before mobile wins the CPU EP's tie-break).
    const layout = await writeModelPackage(['mobile', 'dml', 'cpu', 'cuda'].map((target) => ({ target, dir: pkgs[target] })), out);

    expect(await readJson(join(out, 'manifest.json'))).toEqual({
      schema_version: '1.0',
      package_name: 'tiny-test',
      description: 'tiny-test for cpu, cuda, dml, mobile (built by phi-forge from synth:phi-4-mini:tiny:0@abc123)',
      components: { decoder: 'decoder' },
      additional_metadata: {
        producer: { name: 'phi-forge', version: TOOL_VERSION },
        recipe: 'tiny-test',
        source: { origin: 'synth:phi-4-mini:tiny:0', revision: 'abc123' },
        architecture: 'Phi3ForCausalLM',
      },
    });
    const variant = (target: string, ep: string, device: string, precision: string) => ({
      variant_directory: target,
      ep,
      device,
      executor_info: { ort: { model_file: 'model.onnx' } },
      additional_metadata: { target, precision, quantization: { scheme: 'int4', algo: 'rtn', block_size: 32 } },
    });
    const component = (await readJson(join(out, 'decoder', 'component.json'))) as { variants: Record<string, unknown> };
    expect(component).toEqual({
      component_name: 'decoder',
      variants: {
        cpu: variant('cpu', 'CPUExecutionProvider', 'cpu', 'fp32'),
        cuda: variant('cuda', 'CUDAExecutionProvider', 'gpu', 'fp16'),
        dml: variant('dml', 'DmlExecutionProvider', 'gpu', 'fp16'),
        mobile: variant('mobile', 'CPUExecutionProvider', 'cpu', 'fp32'),
      },
    });
    expect(Object.keys(component.variants)).toEqual(['cpu', 'cuda', 'dml', 'mobile']);
    for (const t of ['cpu', 'cuda', 'dml', 'mobile']) {
      expect(await treeDigest(join(out, 'decoder', t))).toEqual(await treeDigest(pkgs[t]));
    }
    expect(layout.components.map((c) => [c.name, c.variants.map((v) => [v.name, v.ep, v.device, v.modelFile])])).toEqual([
      [
        'decoder',
        [
          ['cpu', 'CPUExecutionProvider', 'cpu', 'model.onnx'],
          ['cuda', 'CUDAExecutionProvider', 'gpu', 'model.onnx'],
          ['dml', 'DmlExecutionProvider', 'gpu', 'model.onnx'],
          ['mobile', 'CPUExecutionProvider', 'cpu', 'model.onnx'],
        ],
      ],
    ]);
    expect(await isModelPackage(out)).toBe(true);
    expect(await isModelPackage(pkgs.cpu)).toBe(false);
  });

  it('refuses mixed models, duplicate targets and a target that is not the package\'s', async () => {
    const other = await writeFakePackage(join(work, 'other-cpu'), { model: 'other', target: 'cpu' });
    await expect(writeModelPackage([{ target: 'cpu', dir: pkgs.cpu }, { target: 'cpu', dir: other }], join(work, 'x1'))).rejects.toMatchObject({
      code: 'MODEL_PACKAGE_DUPLICATE_TARGET',
    });
    const otherCuda = await writeFakePackage(join(work, 'other-cuda'), { model: 'other', target: 'cuda' });
    await expect(writeModelPackage([{ target: 'cpu', dir: pkgs.cpu }, { target: 'cuda', dir: otherCuda }], join(work, 'x2'))).rejects.toMatchObject({
      code: 'MODEL_PACKAGE_MIXED_MODELS',
    });
    await expect(writeModelPackage([{ target: 'cuda', dir: pkgs.cpu }], join(work, 'x3'))).rejects.toMatchObject({ code: 'MODEL_PACKAGE_TARGET_MISMATCH' });
    await expect(writeModelPackage([], join(work, 'x4'))).rejects.toMatchObject({ code: 'MODEL_PACKAGE_EMPTY' });
  });

  it('copies only the files manifest.json lists (no strays) and refuses a listed file that is a symbolic link', async () => {
    const stray = join(work, 'stray-cpu');
    await cp(pkgs.cpu, stray, { recursive: true });
    await writeFile(join(stray, 'notes.txt'), 'not part of the package');
    const out = join(work, 'stray.ortpackage');
    await writeModelPackage([{ target: 'cpu', dir: stray }], out);
    expect(await readdir(join(out, 'decoder', 'cpu'))).not.toContain('notes.txt');

    // The link's target has the very bytes the manifest records, so only the link check can catch it.
    const linked = join(work, 'linked-cpu');
    await cp(pkgs.cpu, linked, { recursive: true });
    const outside = join(work, 'outside-model.onnx.data');
    await cp(join(linked, 'model.onnx.data'), outside);
    await rm(join(linked, 'model.onnx.data'));
    await symlink(outside, join(linked, 'model.onnx.data'));
    await expect(writeModelPackage([{ target: 'cpu', dir: linked }], join(work, 'linked.ortpackage'))).rejects.toMatchObject({
      code: 'PACKAGE_UNSAFE_FILE',
      message: expect.stringMatching(/"model\.onnx\.data".*is a symbolic link/),
    });
  });
});

describe('readModelPackage (onnxruntime parser rules)', () => {
  /** A minimal package with one inline-declared component folder, edited per case. */
  async function pkgWith(name: string, manifest: unknown, component: unknown = { variants: { cpu: {} } }): Promise<string> {
    const dir = join(work, name);
    await mkdir(join(dir, 'decoder', 'cpu'), { recursive: true });
    await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
    await writeFile(join(dir, 'decoder', 'component.json'), JSON.stringify(component));
    return dir;
  }

  it('accepts the minimal form: integer schema_version, variant folder defaulting to the variant name', async () => {
    const p = await readModelPackage(await pkgWith('min', { schema_version: 1, components: { decoder: 'decoder' } }));
    expect(p.schemaVersion).toBe('1.0');
    expect(p.components[0].variants[0]).toMatchObject({ name: 'cpu', dir: join(work, 'min', 'decoder', 'cpu') });
  });

  it.each([
    ['unknown top-level key', { schema_version: '1.0', components: { decoder: 'decoder' }, configs_dir: 'configs' }, undefined, /unknown field 'configs_dir'/],
    ['components as an array', { schema_version: '1.0', components: ['decoder'] }, undefined, /"components" must be an object/],
    ['an unsupported major', { schema_version: '2.0', components: { decoder: 'decoder' } }, undefined, /schema_version 2\.0 is not supported/],
    ['a path out of the package', { schema_version: '1.0', components: { decoder: '../decoder' } }, undefined, /must be a relative path inside the package/],
    ['a Windows path out of the package', { schema_version: '1.0', components: { decoder: '..\\decoder' } }, undefined, /"\.\.\\\\decoder" must be a relative path inside the package/],
    ['a control character in a path', { schema_version: '1.0', components: { decoder: 'deco\nder' } }, undefined, /control character/],
    ['a variant folder out of the package', { schema_version: '1.0', components: { decoder: 'decoder' } }, { variants: { cpu: { variant_directory: 'cpu/../../..' } } }, /variant_directory: "cpu\/\.\.\/\.\.\/\.\." must be a relative path inside the package/],
    ['an unknown variant key', { schema_version: '1.0', components: { decoder: 'decoder' } }, { variants: { cpu: { ep_compatibility: [] } } }, /unknown field 'ep_compatibility'/],
    ['a missing variant folder', { schema_version: '1.0', components: { decoder: 'decoder' } }, { variants: { gpu: {} } }, /folder gpu does not exist/],
  ])('rejects %s', async (name, manifest, component, message) => {
    const dir = await pkgWith(`bad-${name.replace(/\W+/g, '-')}`, manifest, component);
    // stringMatching: a bare RegExp inside toMatchObject is not matched against a string.
    await expect(readModelPackage(dir)).rejects.toMatchObject({ code: 'MODEL_PACKAGE_INVALID', message: expect.stringMatching(message) });
  });

  it('rejects a variant folder that is a symbolic link (it could lead anywhere)', async () => {
    const dir = await pkgWith('linked-variant', { schema_version: '1.0', components: { decoder: 'decoder' } }, { variants: { gpu: {} } });
    await mkdir(join(work, 'elsewhere-variant'), { recursive: true });
    await symlink(join(work, 'elsewhere-variant'), join(dir, 'decoder', 'gpu'));
    await expect(readModelPackage(dir)).rejects.toMatchObject({ code: 'MODEL_PACKAGE_INVALID', message: expect.stringMatching(/variant_directory: gpu is a symbolic link/) });
  });
});

describe('verify on a model package', () => {
  let mp: string;
  beforeAll(async () => {
    const cpu = await writeRunnablePackage(join(work, 'run-cpu'), { target: 'cpu' });
    const cuda = await writeRunnablePackage(join(work, 'run-cuda'), { target: 'cuda' });
    mp = join(work, 'run.ortpackage');
    await writeModelPackage([{ target: 'cpu', dir: cpu }, { target: 'cuda', dir: cuda }], mp);
  });

  it('verifies every variant as a package', async () => {
    const r = (await verify(mp)) as ModelPackageVerification;
    expect(r.kind).toBe('model-package');
    expect(r.problems).toEqual([]);
    expect(r.variants.map((v) => [v.name, v.ep, v.result.ok, v.result.generation.status])).toEqual([
      ['cpu', 'CPUExecutionProvider', true, 'ok'],
      ['cuda', 'CUDAExecutionProvider', true, 'ok'],
    ]);
    expect(r.ok).toBe(true);
  });

  it("flags a variant whose declared EP is not the one its genai_config.json selects", async () => {
    const file = join(mp, 'decoder', 'component.json');
    const original = await readFile(file, 'utf8');
    const c = JSON.parse(original) as { variants: Record<string, { ep: string }> };
    c.variants.cpu.ep = 'CUDAExecutionProvider';
    await writeFile(file, JSON.stringify(c));
    try {
      const r = (await verify(mp)) as ModelPackageVerification;
      expect(r.ok).toBe(false);
      expect(r.problems).toEqual([
        "variant 'cpu': declares CUDAExecutionProvider: genai_config.json selects providers []; a cuda package selects [cuda] (model.decoder.session_options.provider_options)",
        "variant 'cpu': declares CUDAExecutionProvider but holds a cpu package",
      ]);
    } finally {
      await writeFile(file, original);
    }
  });
});
