// Reading genai_config.json (src/genai/read.ts): typed values with defaults, errors naming the file and field, and the
// decoder file name as untrusted input — `../x.onnx` is refused by the reader and so by generate, eval and verify.
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENAI_IO_DEFAULTS } from '../../src/genai/io-names.js';
import { readGenaiConfig } from '../../src/genai/read.js';
import { GenaiConfigError } from '../../src/util/errors.js';
import { cleanTempDirs, tempDir, writeManifest, writeRunnablePackage } from '../helpers/package.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

let work: string;
beforeAll(async () => {
  work = await tempDir('phi-forge-genai-read-');
});
afterAll(cleanTempDirs);

async function folderWith(name: string, json: unknown): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'genai_config.json'), typeof json === 'string' ? json : JSON.stringify(json));
  return dir;
}

const sizes = { head_size: 16, num_hidden_layers: 2, num_key_value_heads: 2 };

async function readError(dir: string): Promise<GenaiConfigError> {
  const e = await readGenaiConfig(dir).catch((x: unknown) => x);
  expect(e).toBeInstanceOf(GenaiConfigError);
  return e as GenaiConfigError;
}

describe('readGenaiConfig', () => {
  it('applies the defaults: decoder file model.onnx, the genai I/O names per layer; keeps keys it does not know', async () => {
    const dir = await folderWith('defaults', { model: { eos_token_id: 7, decoder: sizes, rope_magic: 1 } });
    const { config, decoder } = await readGenaiConfig(dir);
    expect(decoder).toMatchObject({ modelFile: 'model.onnx', numLayers: 2, numKvHeads: 2, headSize: 16, eosTokenIds: [7] });
    expect(decoder.names.pastKeys).toEqual(['past_key_values.0.key', 'past_key_values.1.key']);
    expect(decoder.names.presentValues).toEqual(['present.0.value', 'present.1.value']);
    expect(decoder.names.positionIds).toBeUndefined();
    expect(GENAI_IO_DEFAULTS.inputs.past_key_names).toBe('past_key_values.%d.key');
    expect((config.model as Record<string, unknown>).rope_magic).toBe(1);
  });

  it('names the file and the field: missing, not JSON, a key of the wrong type, missing decoder sizes', async () => {
    const missing = await readError(join(work, 'nothing-here'));
    expect(missing.code).toBe('GENAI_CONFIG_MISSING');
    expect(missing.message).toContain(join(work, 'nothing-here', 'genai_config.json'));
    expect((await readError(await folderWith('json', '{"model": '))).code).toBe('GENAI_CONFIG_JSON');
    const typed = await readError(await folderWith('typed', { model: { pad_token_id: [0], decoder: { ...sizes, head_size: '16' } } }));
    expect(typed.code).toBe('GENAI_CONFIG_INVALID');
    expect(typed.message).toContain('model.pad_token_id: expected a number');
    expect(typed.message).toContain('model.decoder.head_size: expected a number');
    const sizeless = await readError(await folderWith('sizeless', { model: { decoder: { filename: 'model.onnx', head_size: 16 } } }));
    expect(sizeless.message).toMatch(/lacks decoder sizes: model\.decoder\.num_hidden_layers, model\.decoder\.num_key_value_heads/);
  });

  it.each(['../x.onnx', '/etc/x.onnx', 'sub/../../x.onnx', 'C:\\x.onnx'])('refuses decoder file %j: it must stay inside the folder', async (filename) => {
    const e = await readError(await folderWith(`unsafe-${filename.replace(/\W/g, '_')}`, { model: { decoder: { ...sizes, filename } } }));
    expect(e.code).toBe('UNSAFE_PATH');
    expect(e.message).toContain(`model.decoder.filename ${JSON.stringify(filename)} must be a relative path inside the folder`);
    expect(e.file).toMatch(/genai_config\.json$/);
  });
});

describe('a genai_config.json naming "../x.onnx" is refused by generate, eval and verify', () => {
  let pkg: string;
  beforeAll(async () => {
    // A runnable package whose config points one folder up, where a real model waits: it must never be opened.
    pkg = await writeRunnablePackage(join(work, 'escape', 'pkg'), { target: 'cpu' });
    await copyFile(join(pkg, 'model.onnx'), join(work, 'escape', 'x.onnx'));
    const file = join(pkg, 'genai_config.json');
    const g = JSON.parse(await readFile(file, 'utf8')) as { model: { decoder: { filename: string } } };
    g.model.decoder.filename = '../x.onnx';
    await writeFile(file, JSON.stringify(g));
    await writeManifest(pkg, { target: 'cpu' });
    await writeFile(join(work, 'tokens.json'), JSON.stringify({ tokens: [1, 5, 9, 3] }));
  });

  const cli = (...args: string[]) => execa('node', ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, reject: false });
  const refusal = /model\.decoder\.filename "\.\.\/x\.onnx" must be a relative path inside the folder/;

  it.each([
    ['generate', ['--tokens', '1,5,9']],
    ['eval', ['--tokens', 'TOKENS']],
  ])('%s: exit 1 with the reason', async (command, extra) => {
    const r = await cli(command, pkg, ...extra.map((a) => (a === 'TOKENS' ? join(work, 'tokens.json') : a)), '--json');
    expect(r.exitCode).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, error: { code: 'UNSAFE_PATH' } });
    expect(r.stderr).toMatch(refusal);
  });

  it('verify: genai_config.json reported unusable, no generation, exit 1', async () => {
    const r = await cli('verify', pkg, '--json');
    expect(r.exitCode).toBe(1);
    const v = JSON.parse(r.stdout) as { genaiConfig: { ok: boolean; error: string }; generation: { status: string } };
    expect(v.genaiConfig.ok).toBe(false);
    expect(v.genaiConfig.error).toMatch(refusal);
    expect(v.generation.status).toBe('skipped');
  });
});
