// Failure paths of runExternalBuilder through the fake tools: a crashing tool (log tail, kept log), Ctrl-C
// (the whole process tree dies), recipes the tool cannot honour (refused before any process), and every kind of
// broken output folder; plus the output variants ingest repairs (another file name, no tokenizer files).
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertCheckpoint } from '../../src/arch/convert.js';
import { runExternalBuilder, type ExternalBuildRequest } from '../../src/external/index.js';
import { QuantSchema } from '../../src/recipes/schema.js';
import { ExternalToolError, RecipeError } from '../../src/util/errors.js';
import { cleanTempDirs, decoderShape, maxAbsDiff, OrtDecoder, tempDir, tokenSequence } from '../helpers/build.js';
import { installFakeTools, tinyPhi4MiniCheckpoint, waitGone, type FakeTools } from '../helpers/fake-python.js';

let tools: FakeTools;
let ckpt: { dir: string; config: Record<string, unknown> };
/** The native fp32 build: the reference, and the folder the fake copies instead of converting again. */
let reference: string;
beforeAll(async () => {
  tools = await installFakeTools();
  ckpt = await tinyPhi4MiniCheckpoint();
  reference = await tempDir('phi-forge-native-');
  await convertCheckpoint({ checkpointDir: ckpt.dir, outDir: reference, precision: 'fp32', target: 'cpu' });
});
afterAll(async () => {
  await tools.cleanup();
  await cleanTempDirs();
});

async function build(extraEnv: Record<string, string>, req: Partial<ExternalBuildRequest> = {}) {
  const out = await tempDir('phi-forge-stage-');
  const failedLogDir = await tempDir('phi-forge-failed-logs-');
  const env = tools.env({ FAKE_TOOL_TEMPLATE: reference, ...extraEnv });
  const run = runExternalBuilder({ kind: 'genai', checkpointDir: ckpt.dir, outDir: out, precision: 'fp32', target: 'cpu', env, failedLogDir, ...req });
  return { out, failedLogDir, run };
}

async function rejection(p: Promise<unknown>): Promise<ExternalToolError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ExternalToolError);
  return e as ExternalToolError;
}

describe('the tool fails or is interrupted', () => {
  it('non-zero exit: the error carries the log tail and points at the kept log', async () => {
    const { run, failedLogDir } = await build({ FAKE_TOOL_FAIL: '3' });
    const e = await rejection(run);
    expect(e.code).toBe('EXTERNAL_TOOL_FAILED');
    expect(e.message).toContain('the onnxruntime-genai builder exited with code 3');
    expect(e.message).toContain('| RuntimeError: fake failure for the test');
    expect(e.message).toContain('| Loading checkpoint shards: 100%');
    const [kept] = await readdir(failedLogDir);
    expect(kept).toMatch(/^genai-builder\..*\.failed\.log$/);
    expect(e.file).toBe(join(failedLogDir, kept));
    expect(await readFile(e.file!, 'utf8')).toContain('Traceback (most recent call last)');
  });

  it('Ctrl-C: the builder and its worker process are killed, the abort reason comes back', async () => {
    const pidFile = join(tools.root, 'hang.pids');
    const controller = new AbortController();
    const reason = new Error('interrupted by Ctrl-C');
    const { run, failedLogDir } = await build(
      { FAKE_TOOL_HANG: pidFile },
      {
        signal: controller.signal,
        onOutput: (l) => {
          if (l === 'working...') controller.abort(reason);
        },
      },
    );
    await expect(run).rejects.toBe(reason);
    const pids = (await readFile(pidFile, 'utf8')).trim().split(' ').map(Number);
    expect(pids).toHaveLength(2);
    expect(await waitGone(pids)).toEqual([]);
    expect(await readdir(failedLogDir)).toEqual([]); // an interruption is not a failure to report
  });
});

describe('refused before any process runs', () => {
  it('builder_options that do not fit, and quant the tool cannot do', async () => {
    const from = (await tools.records()).length;
    const bad = await build({}, { options: { blocksize: 32 } });
    await expect(bad.run).rejects.toBeInstanceOf(RecipeError);
    const gptq = await build({}, { quant: { ...QuantSchema.parse({ scheme: 'int4', algo: 'gptq' }), accuracy_level: 4 } });
    expect((await rejection(gptq.run)).code).toBe('EXTERNAL_OPTION_UNSUPPORTED');
    expect((await tools.records()).length).toBe(from);
  });
});

describe('broken output', () => {
  const cases: [string, string, RegExp][] = [
    ['none', 'EXTERNAL_OUTPUT_NO_MODEL', /wrote no genai_config\.json .*\(it holds: nothing\)/],
    ['bad-json', 'EXTERNAL_OUTPUT_BAD_CONFIG', /not valid JSON/],
    ['bad-keys', 'EXTERNAL_OUTPUT_CONFIG_KEYS', /model\.rope_magic: unknown key/],
    ['no-data', 'EXTERNAL_OUTPUT_BAD_MODEL', /external data file model\.onnx\.data \(tensor .*\) is missing/],
    ['no-logits', 'EXTERNAL_OUTPUT_BAD_MODEL', /outputs genai_config\.json names are missing from the graph: scores/],
    ['two-models', 'EXTERNAL_OUTPUT_AMBIGUOUS', /found 2 model folders at the same depth: a, b/],
  ];
  it.each(cases)('%s → %s', async (mode, code, message) => {
    const { run, failedLogDir } = await build({ FAKE_TOOL_OUTPUT: mode });
    const e = await rejection(run);
    expect(e.code).toBe(code);
    expect(e.message).toMatch(message);
    expect(e.message).toContain('output of the onnxruntime-genai builder');
    expect(await readdir(failedLogDir)).toHaveLength(1);
  });
});

describe('output ingest repairs', () => {
  it('another decoder file name and data file: re-saved as model.onnx + model.onnx.data, same logits', async () => {
    const { out, run } = await build({ FAKE_TOOL_OUTPUT: 'renamed' });
    const r = await run;
    expect(r.ingest.resaved).toBe(true);
    expect(r.files.slice(0, 3)).toEqual(['model.onnx', 'model.onnx.data', 'genai_config.json']);
    const genai = JSON.parse(await readFile(join(out, 'genai_config.json'), 'utf8')) as { model: { decoder: { filename: string } } };
    expect(genai.model.decoder.filename).toBe('model.onnx');
    const ids = tokenSequence(5, 512, 3);
    const logits = async (m: string) => {
      const d = await OrtDecoder.open(m, decoderShape(ckpt.config));
      try {
        return await d.full(ids);
      } finally {
        await d.close();
      }
    };
    expect(maxAbsDiff(await logits(join(out, 'model.onnx')), await logits(join(reference, 'model.onnx')))).toBe(0);
  });

  it('no tokenizer files in the output: taken from the checkpoint, as the native builder does', async () => {
    const { out, run } = await build({ FAKE_TOOL_OUTPUT: 'no-tokenizer' });
    const r = await run;
    expect(r.ingest.tokenizerFrom).toBe('checkpoint');
    expect(r.files).toEqual(['model.onnx', 'model.onnx.data', 'genai_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']);
    expect((await readFile(join(out, 'tokenizer.json'))).equals(await readFile(join(ckpt.dir, 'tokenizer.json')))).toBe(true);
    expect(await stat(join(out, '.external')).catch(() => undefined)).toBeUndefined();
  });
});
