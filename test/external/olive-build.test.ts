// runExternalBuilder with Olive, through a fake `olive` that records its argv and the generated config and writes
// Olive's nested output (output/model/...): each mode's commands, the config's ModelBuilder pass, and ingest of the
// nested folder; a result that does not match the recipe is refused.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runExternalBuilder } from '../../src/external/index.js';
import { QuantSchema } from '../../src/recipes/schema.js';
import { ExternalToolError } from '../../src/util/errors.js';
import { cleanTempDirs, tempDir } from '../helpers/build.js';
import { installFakeTools, tinyPhi4MiniCheckpoint, type FakeRecord, type FakeTools } from '../helpers/fake-python.js';

let tools: FakeTools;
let ckpt: { dir: string };
beforeAll(async () => {
  tools = await installFakeTools();
  ckpt = await tinyPhi4MiniCheckpoint();
});
afterAll(async () => {
  await tools.cleanup();
  await cleanTempDirs();
});

async function oliveCalls(from: number): Promise<FakeRecord[]> {
  return (await tools.records()).slice(from).filter((r) => r.name === 'olive');
}

const int4 = (q: Record<string, unknown> = {}, accuracy = 4) => ({ ...QuantSchema.parse({ scheme: 'int4', ...q }), accuracy_level: accuracy });

describe('olive, end to end through a fake olive', () => {
  it('run (default mode): generated ModelBuilder config with the recipe quant, nested output ingested', async () => {
    const out = await tempDir('phi-forge-stage-');
    const from = (await tools.records()).length;
    const pcts: number[] = [];
    const r = await runExternalBuilder({ kind: 'olive', checkpointDir: ckpt.dir, outDir: out, precision: 'fp32', target: 'cpu', quant: int4({ block_size: 64 }), env: tools.env(), onProgress: (p) => pcts.push(p) });
    const work = join(out, '.external');
    expect(r.command).toEqual([tools.path('olive'), 'run', '--config', join(work, 'olive-config.json')]);
    const [call] = await oliveCalls(from);
    expect(call.argv).toEqual(['run', '--config', join(work, 'olive-config.json')]);
    expect(call.env).toMatchObject({ PYTHONUNBUFFERED: '1' });
    expect(call.config).toEqual({
      input_model: { type: 'HfModel', model_path: ckpt.dir },
      systems: { local_system: { type: 'LocalSystem', accelerators: [{ device: 'cpu', execution_providers: ['CPUExecutionProvider'] }] } },
      passes: {
        builder: {
          type: 'ModelBuilder',
          precision: 'int4',
          int4_block_size: 64,
          int4_accuracy_level: 4,
          int4_is_symmetric: true,
          int4_op_types_to_quantize: ['MatMul'],
          int4_algo_config: 'rtn',
          extra_options: { shared_embeddings: true },
        },
      },
      host: 'local_system',
      target: 'local_system',
      output_dir: join(work, 'output'),
      log_severity_level: 1,
    });
    expect(pcts).toEqual([0, 50, 100]);
    expect(r.ingest.foundIn).toBe(join(work, 'output', 'model'));
    expect(r.ingest.quantization).toMatchObject({ blockSizes: [64], accuracyLevels: [4], gatherBlockQuantized: 1 });
    expect(r.quantized).toBe(true);
    expect((await readdir(out)).sort()).toEqual(['genai_config.json', 'model.onnx', 'model.onnx.data', 'olive.log', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']);
    expect(await readFile(r.logFile, 'utf8')).toContain('Running pass builder:ModelBuilder');
  });

  it('auto-opt: CUDA fp16 unquantized, provider and precision on the command line', async () => {
    const out = await tempDir('phi-forge-stage-');
    const from = (await tools.records()).length;
    const r = await runExternalBuilder({ kind: 'olive', checkpointDir: ckpt.dir, outDir: out, precision: 'fp16', target: 'cuda', options: { mode: 'auto-opt', log_level: 2 }, env: tools.env() });
    const calls = await oliveCalls(from);
    expect(calls.map((c) => c.argv)).toEqual([
      ['auto-opt', '-m', ckpt.dir, '-o', join(out, '.external', 'output'), '--device', 'gpu', '--provider', 'CUDAExecutionProvider', '--precision', 'fp16', '--use_model_builder', '--log_level', '2'],
    ]);
    expect(r.ingest).toMatchObject({ logitsDtype: 'FLOAT16', foundIn: join(out, '.external', 'output', 'model') });
    expect(r.quantized).toBe(false);
  });

  it('quantize: olive quantize (awq) then auto-opt on its output, both logged', async () => {
    const out = await tempDir('phi-forge-stage-');
    const from = (await tools.records()).length;
    const quant = int4({ algo: 'awq', block_size: 128, embeddings: 'none' });
    const r = await runExternalBuilder({ kind: 'olive', checkpointDir: ckpt.dir, outDir: out, precision: 'fp32', target: 'cpu', quant, options: { mode: 'quantize', data_name: 'wikitext' }, env: tools.env() });
    const quantized = join(out, '.external', 'quantized');
    expect((await oliveCalls(from)).map((c) => c.argv)).toEqual([
      ['quantize', '-m', ckpt.dir, '-o', quantized, '--algorithm', 'awq', '--precision', 'int4', '-d', 'wikitext', '--log_level', '1'],
      ['auto-opt', '-m', quantized, '-o', join(out, '.external', 'output'), '--device', 'cpu', '--provider', 'CPUExecutionProvider', '--precision', 'int4', '--use_model_builder', '--log_level', '1'],
    ]);
    expect(r.commands.map((c) => c[1])).toEqual(['quantize', 'auto-opt']);
    expect(r.quantized).toBe(true);
    // The block size is the quantizer's choice in this mode (here the builder's 32), not refused.
    expect(r.ingest.quantization?.blockSizes).toEqual([32]);
    const log = await readFile(r.logFile, 'utf8');
    expect(log.indexOf('$ ' + tools.path('olive') + ' quantize')).toBeLessThan(log.indexOf('$ ' + tools.path('olive') + ' auto-opt'));
  });

  it('refuses output that does not match the recipe (auto-opt did not share the tied embedding) and keeps the log', async () => {
    const out = await tempDir('phi-forge-stage-');
    const failedLogDir = await tempDir('phi-forge-failed-logs-');
    const err = await runExternalBuilder({ kind: 'olive', checkpointDir: ckpt.dir, outDir: out, precision: 'fp32', target: 'cpu', quant: int4(), options: { mode: 'auto-opt' }, env: tools.env(), failedLogDir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExternalToolError);
    const e = err as ExternalToolError;
    expect(e.code).toBe('EXTERNAL_OUTPUT_QUANT_MISMATCH');
    expect(e.message).toContain('a quantized embedding was asked for');
    const kept = await readdir(failedLogDir);
    expect(kept).toHaveLength(1);
    expect(kept[0]).toMatch(/^olive\..*\.failed\.log$/);
    expect(e.file).toBe(join(failedLogDir, kept[0]));
    expect(await readFile(join(failedLogDir, kept[0]), 'utf8')).toContain('auto-opt');
  });

  it('olive missing from the environment: refused before anything runs', async () => {
    const out = await tempDir('phi-forge-stage-');
    const from = (await tools.records()).length;
    const err = await runExternalBuilder({ kind: 'olive', checkpointDir: ckpt.dir, outDir: out, precision: 'fp32', target: 'cpu', env: tools.env({ FAKE_PYTHON_MISSING: 'olive' }) }).catch((e: unknown) => e);
    expect((err as ExternalToolError).code).toBe('EXTERNAL_PACKAGE_MISSING');
    expect((err as ExternalToolError).fix).toContain('"olive-ai>=0.9.0"');
    expect(await oliveCalls(from)).toEqual([]);
    expect(await stat(join(out, '.external')).catch(() => undefined)).toBeUndefined();
  });
});
