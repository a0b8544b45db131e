// inspectModel and `pnpm pipeline inspect`: the report on the demo model (checked against what the model holds
// and what onnxruntime computes with it) and on a quantized graph; the CLI's table, --json and usage errors.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataType } from '../../src/onnx/dtype.js';
import { buildDemoModel, formatInspectReport, inspectModel } from '../../src/onnx/inspect.js';
import { Graph, Model, Tensor, attr, tensorType } from '../../src/onnx/ir.js';
import { loadModel, saveModel } from '../../src/onnx/model-file.js';
import { OnnxError, UsageError } from '../../src/util/errors.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'phi-forge-inspect-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function cli(...args: string[]) {
  return execa('node', ['--import', 'tsx', 'src/cli/main.ts', 'inspect', ...args], { cwd: repoRoot, reject: false });
}

describe('inspectModel', () => {
  it('describes the demo model', () => {
    const r = inspectModel(buildDemoModel());
    expect(r.irVersion).toBe(10);
    expect(r.opsets).toEqual([{ domain: 'ai.onnx', version: 21 }]);
    expect(r.producer).toEqual({ name: 'phi-forge', version: 'demo' });
    expect(r.inputs).toEqual([{ name: 'x', type: 'float32[1, 64]', elemType: 'FLOAT', shape: [1, 64] }]);
    expect(r.outputs.map((o) => o.type)).toEqual(['float32[1, 64]']);
    expect(r.nodes).toEqual({ total: 7, inSubgraphs: 2 });
    expect(r.ops.find((o) => o.op === 'If')).toEqual({ op: 'If', count: 1 });
    // W 64x64, b 64, zero, and the else branch's `half`.
    expect(r.parameters).toMatchObject({ tensors: 4, elements: 4096 + 64 + 1 + 1, bytes: (4096 + 64 + 2) * 4 });
    expect(r.externalData).toEqual({ files: [], tensors: 0, bytes: 0 });
  });

  it('counts external data of a saved model, and the saved demo model computes what its sketch says', async () => {
    const file = join(dir, 'demo.onnx');
    await saveModel(buildDemoModel(), file);
    const r = inspectModel(await loadModel(file));
    expect(r.externalData).toEqual({ files: [{ location: 'demo.onnx.data', tensors: 1, bytes: 16384 }], tensors: 1, bytes: 16384 });

    const x = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i) / 4);
    const session = await ort.InferenceSession.create(file);
    const { y } = await session.run({ x: new ort.Tensor('float32', x, [1, 64]) });
    await session.release();
    const h = Array.from({ length: 64 }, (_, j) => {
      let s = (j % 5) / 10 - 0.2;
      for (let i = 0; i < 64; i++) s += x[i] * ((((i * 7 + j * 3) % 17) - 8) / 64);
      return s;
    });
    const positive = h.reduce((a, b) => a + b, 0) > 0;
    const want = h.map((v) => (positive ? Math.max(v, 0) : 0.5 * v));
    [...(y.data as Float32Array)].forEach((v, i) => expect(v).toBeCloseTo(want[i], 5));
  });

  it('reports MatMulNBits and GatherBlockQuantized weights with their attributes, ops domain-qualified', () => {
    const g = new Graph('q');
    g.inputs.push({ name: 'ids', type: tensorType(DataType.INT64, ['batch', 'seq']) }, { name: 'a', type: tensorType(DataType.FLOAT, [1, 3072]) });
    g.outputs.push({ name: 'o', type: tensorType(DataType.FLOAT, [1, 8192]) });
    g.addInitializer(Tensor.fromBytes('B', DataType.UINT8, [8192, 96, 16], new Uint8Array(8192 * 96 * 16)));
    const mnb = (name: string, N: number, acc: number) =>
      g.addNode({
        opType: 'MatMulNBits',
        domain: 'com.microsoft',
        name,
        inputs: ['a', 'B', 'S'],
        outputs: [`${name}_out`],
        attributes: [attr.int('K', 3072), attr.int('N', N), attr.int('bits', 4), attr.int('block_size', 32), attr.int('accuracy_level', acc)],
      });
    mnb('/model/layers.0/attn/qkv_proj/MatMul', 9216, 4);
    mnb('/model/layers.0/mlp/down_proj/MatMul', 3072, 4);
    mnb('/model/lm_head/MatMul', 8192, 0);
    g.addNode({
      opType: 'GatherBlockQuantized',
      domain: 'com.microsoft',
      name: '/model/embed_tokens/Gather',
      inputs: ['E', 'ids', 'ES'],
      outputs: ['emb'],
      attributes: [attr.int('bits', 4), attr.int('block_size', 32)],
    });
    const m = new Model(g, [{ domain: '', version: 21 }, { domain: 'com.microsoft', version: 1 }]);
    const r = inspectModel(m);
    expect(r.ops).toEqual([
      { op: 'com.microsoft.MatMulNBits', count: 3 },
      { op: 'com.microsoft.GatherBlockQuantized', count: 1 },
    ]);
    expect(r.quantized.matMulNBits.count).toBe(3);
    expect(r.quantized.matMulNBits.groups).toEqual([
      { bits: 4, blockSize: 32, accuracyLevel: 4, count: 2 },
      { bits: 4, blockSize: 32, accuracyLevel: 0, count: 1 },
    ]);
    expect(r.quantized.matMulNBits.nodes[0]).toEqual({ node: '/model/layers.0/attn/qkv_proj/MatMul', K: 3072, N: 9216, bits: 4, blockSize: 32, accuracyLevel: 4 });
    // gather_axis / quantize_axis fall back to onnxruntime's defaults (0 and 1).
    expect(r.quantized.gatherBlockQuantized.nodes).toEqual([{ node: '/model/embed_tokens/Gather', bits: 4, blockSize: 32, gatherAxis: 0, quantizeAxis: 1 }]);
    expect(r.inputs[0].type).toBe('int64[batch, seq]');
    expect(r.parameters.byDtype).toEqual([{ dtype: 'UINT8', tensors: 1, elements: 8192 * 96 * 16, bytes: 8192 * 96 * 16 }]);

    const text = formatInspectReport(r, 'q.onnx');
    expect(text).toContain('MatMulNBits: 3');
    expect(text).toMatch(/4 +32 +4 +2 +3072x9216, 3072x3072/);
    expect(text).toContain('GatherBlockQuantized: 1');
    expect(text).toContain('(none: every tensor is inline)');
  });
});

describe('pnpm pipeline inspect', () => {
  it('--demo --json prints one JSON document describing the saved demo model', async () => {
    const r = await cli('--demo', '--json');
    expect(r.exitCode).toBe(0);
    const doc = JSON.parse(r.stdout) as { file: string; externalData: { files: { location: string }[] }; nodes: { total: number } };
    expect(doc.file).toBe(join(tmpdir(), 'phi-forge-demo', 'demo.onnx'));
    expect(doc.externalData.files.map((f) => f.location)).toEqual(['demo.onnx.data']);
    expect(doc.nodes.total).toBe(7);
  });

  it('prints tables for a model file', async () => {
    const file = join(dir, 'table.onnx');
    await saveModel(buildDemoModel(), file);
    const r = await cli(file);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('IR version 10; opsets ai.onnx 21');
    expect(r.stdout).toMatch(/x +float32\[1, 64\]/);
    expect(r.stdout).toMatch(/table\.onnx\.data +1 +16\.4 KB/);
  });

  it('an empty or non-ONNX file: exit code 1 and the message, no stack trace', async () => {
    const empty = join(dir, 'empty.onnx');
    await writeFile(empty, new Uint8Array());
    const e = await cli(empty);
    expect(e.exitCode).toBe(1);
    expect(e.stderr).toContain(`error: ${empty}: is empty (0 bytes)`);
    expect(e.stderr).not.toMatch(/^\s+at /m);
    expect(e.stdout).toBe('');
    const other = join(dir, 'other.onnx');
    await writeFile(other, new Uint8Array([0xa0, 0x06, 0x01]));
    const o = await cli(other, '--json');
    expect(o.exitCode).toBe(1);
    expect(o.stderr).toContain(`error: ${other}: is not an ONNX model (no graph, no IR version)`);
    expect(o.stderr).not.toMatch(/^\s+at /m);
    // --json: one JSON document on failure too
    expect(JSON.parse(o.stdout)).toMatchObject({ ok: false, exitCode: 1, error: { code: 'ONNX_NOT_A_MODEL', file: other } });
  });

  it('a usage error without a model, an OnnxError for a missing file (in-process)', async () => {
    const { parseCli } = await import('../../src/cli/main.js');
    const run = (...args: string[]) => parseCli(['inspect', ...args]).parseAsync().then(() => undefined, (e: unknown) => e);
    const usage = await run();
    expect(usage).toBeInstanceOf(UsageError);
    expect((usage as UsageError).exitCode).toBe(2);
    expect((usage as Error).message).toContain('name a model file (or pass --demo)');
    const missing = await run(join(dir, 'nope.onnx'));
    expect(missing).toBeInstanceOf(OnnxError);
    expect((missing as OnnxError).code).toBe('ONNX_FILE_MISSING');
  });
});
