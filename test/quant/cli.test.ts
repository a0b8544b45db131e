// `pnpm pipeline quantize` in-process: a saved model with external data in, a MatMulNBits model out that
// onnxruntime runs; --json output; awq with mixed precision (--bits-budget); bad flags are usage errors (exit code 2);
// unsafe or broken inputs (data symlinked out of the model folder, wrong external lengths, empty files) exit 1 and
// write nothing.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { encodeModel } from '../../src/onnx/codec.js';
import { DataType } from '../../src/onnx/dtype.js';
import { loadModel, saveModel } from '../../src/onnx/model-file.js';
import { Tensor } from '../../src/onnx/tensor.js';
import { matmulModel, maxAbs, maxAbsDiff, randomMatrix } from '../helpers/quant.js';
import { buildTinyDecoder } from '../helpers/runtime.js';

type Ort = typeof import('onnxruntime-node');
const ort = createRequire(import.meta.url)('onnxruntime-node') as Ort;

async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((stdout += String(s)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((stderr += String(s)), true));
  const before = process.exitCode;
  try {
    const code = await main(argv);
    return { code, stdout, stderr };
  } finally {
    o.mockRestore();
    e.mockRestore();
    process.exitCode = before;
  }
}

describe('pnpm pipeline quantize', () => {
  let dir: string;
  const K = 256;
  const N = 64;
  const w = randomMatrix(31, K, N);
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'phi-forge-quant-'));
    await saveModel(matmulModel({ K, N, w }), join(dir, 'in.onnx'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes a MatMulNBits model with external data that onnxruntime runs', async () => {
    const out = join(dir, 'q', 'model.onnx');
    const r = await cli(['quantize', join(dir, 'in.onnx'), '--out', out, '--scheme', 'int4', '--block-size', '64', '--threads', '1', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.modified).toBe(true);
    expect(doc.passes[0].pass).toBe('quant:matmul-nbits');
    expect(doc.passes[0].stats.converted[0]).toMatchObject({ node: '/model/layers.0/mlp/down_proj/MatMul', bits: 4, blockSize: 64, accuracyLevel: 4 });
    expect(doc.passes[1]).toMatchObject({ pass: 'quant:gather-block-quantized', modified: false });
    const m = await loadModel(out);
    expect(m.graph.nodes.map((n) => n.opType)).toEqual(['MatMulNBits']);
    expect(m.graph.initializer('W.qweight')!.isExternal).toBe(true);
    const s = await ort.InferenceSession.create(out);
    const a = randomMatrix(32, 2, K, 1);
    const y = (await s.run({ A: new ort.Tensor('float32', a, [2, K]) })).Y.data as Float32Array;
    await s.release();
    const ref = new Float64Array(2 * N);
    for (let i = 0; i < 2; i++) for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) ref[i * N + n] += a[i * K + k] * w[k * N + n];
    expect(maxAbsDiff(y, ref)).toBeLessThan(0.1 * maxAbs(ref));
  });

  it('prints a human summary with warnings', async () => {
    const r = await cli(['quantize', join(dir, 'in.onnx'), '--out', join(dir, 'h.onnx'), '--scheme', 'ternary', '--block-size', '16', '--exclude', 'nomatch', '--threads', '0']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('quant:matmul-nbits: 1 node(s) converted');
    expect(r.stdout).toContain('warning: exclude pattern nomatch matched no node');
    expect(r.stdout).toContain('warning: options: 2-bit blocks of 16 have no int8 kernel on CPU');
  });

  it('gptq or awq without --calib, --calib without a use for it, and a bad budget are usage errors', async () => {
    for (const algo of ['gptq', 'awq']) {
      const g = await cli(['quantize', join(dir, 'in.onnx'), '--out', join(dir, 'x.onnx'), '--scheme', 'int4', '--algo', algo]);
      expect(g.code).toBe(2);
      expect(g.stderr).toContain(`--algo ${algo} needs --calib FILE`);
    }
    const c = await cli(['quantize', join(dir, 'in.onnx'), '--out', join(dir, 'x.onnx'), '--scheme', 'int4', '--calib', 'x.json']);
    expect(c.code).toBe(2);
    expect(c.stderr).toContain('--calib is only used by --algo gptq / awq and --bits-budget');
    const b = await cli(['quantize', join(dir, 'in.onnx'), '--out', join(dir, 'x.onnx'), '--scheme', 'int4', '--bits-budget', '-1']);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('--bits-budget -1 is not a positive number');
    const o = await cli(['quantize', join(dir, 'in.onnx'), '--out', join(dir, 'x.onnx'), '--scheme', 'int4', '--override', 'lm_head']);
    expect(o.code).toBe(2);
    expect(o.stderr).toContain('is not PATTERN=SCHEME');
  });

  it('--algo awq with --calib and --bits-budget: scaled, planned and quantized; onnxruntime runs the result', async () => {
    const d = buildTinyDecoder({ hidden: 32, vocab: 40, layers: 2 });
    await writeFile(join(dir, 'dec2.onnx'), d.onnx);
    await writeFile(join(dir, 'calib2.json'), JSON.stringify([[1, 4, 9, 16, 25, 36, 7, 3], [1, 2, 3, 5, 8, 13, 21, 34]]));
    const out = join(dir, 'dec2-q.onnx');
    const args = ['quantize', join(dir, 'dec2.onnx'), '--out', out, '--scheme', 'int4', '--algo', 'awq', '--calib', join(dir, 'calib2.json')];
    const r = await cli([...args, '--block-size', '16', '--bits-budget', '7', '--threads', '0', '--json']);
    expect(r.stderr).toBe('');
    const doc = JSON.parse(r.stdout);
    expect(doc.passes.map((p: { pass: string }) => p.pass)).toEqual(['quant:mixed-precision', 'quant:awq-scale', 'quant:matmul-nbits', 'quant:gather-block-quantized']);
    const [plan, awq, mm] = doc.passes.map((p: { stats: unknown }) => p.stats);
    expect(plan.measure).toBe('kl');
    expect(plan.highNodes.length).toBeGreaterThan(0);
    expect(plan.achievedBits).toBeLessThanOrEqual(7);
    expect(mm.bitsPerWeight).toBeCloseTo(plan.achievedBits, 10);
    expect(awq.groups.length).toBeGreaterThan(0);
    expect(mm.converted.every((c: { algo: string }) => c.algo === 'awq')).toBe(true);
    expect(mm.converted.filter((c: { scheme: string }) => c.scheme === 'int8').map((c: { node: string }) => c.node).sort()).toEqual([...plan.highNodes].sort());
    const s = await ort.InferenceSession.create(out);
    const L = 5;
    const feeds: Record<string, import('onnxruntime-node').Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from([1n, 5n, 9n, 2n, 7n]), [1, L]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(L).fill(1n), [1, L]),
    };
    for (const name of s.inputNames.filter((n) => n.startsWith('past_key_values'))) feeds[name] = new ort.Tensor('float32', new Float32Array(0), [1, 2, 0, 16]);
    const res = await s.run(feeds);
    expect(res.logits.dims).toEqual([1, L, 40]);
    await s.release();
    // The human summary names each pass.
    const h = await cli([...args, '--block-size', '16', '--bits-budget', '7', '--threads', '0']);
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/quant:mixed-precision: \d+ node\(s\) at int8, [\d.]+ bits\/weight \(budget 7\)/);
    expect(h.stdout).toMatch(/quant:awq-scale: \d+ input\(s\) scaled, \d+ folded into norms, \d+ Mul\(s\) inserted/);
  });

  it('--algo gptq with --calib tokens quantizes a decoder graph from captured activations', async () => {
    const d = buildTinyDecoder({ hidden: 32, vocab: 40, layers: 1 });
    await writeFile(join(dir, 'dec.onnx'), d.onnx);
    await writeFile(join(dir, 'calib.json'), JSON.stringify([[1, 4, 9, 16, 25, 36], [1, 2, 3, 5, 8, 13, 21]]));
    const r = await cli(['quantize', join(dir, 'dec.onnx'), '--out', join(dir, 'dec-q.onnx'), '--scheme', 'int4', '--algo', 'gptq', '--calib', join(dir, 'calib.json'), '--block-size', '16', '--threads', '0', '--json']);
    expect(r.stderr).toBe('');
    const doc = JSON.parse(r.stdout);
    expect(doc.passes[0].stats.converted.length).toBeGreaterThan(2);
    expect(doc.passes[0].stats.converted.every((c: { algo: string }) => c.algo === 'gptq')).toBe(true);
    const s = await ort.InferenceSession.create(join(dir, 'dec-q.onnx'));
    expect(s.inputNames).toContain('input_ids');
    await s.release();
  });

  /** Runs quantize into a fresh folder; expects exit code 1, the message, no stack trace and no output folder at all. */
  async function expectRefused(input: string, ...messages: string[]): Promise<void> {
    const outDir = await mkdtemp(join(dir, 'refused-'));
    await rm(outDir, { recursive: true });
    const r = await cli(['quantize', input, '--out', join(outDir, 'model.onnx'), '--scheme', 'int4', '--threads', '0']);
    expect(r.code).toBe(1);
    for (const m of messages) expect(r.stderr).toContain(m);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    expect(existsSync(outDir)).toBe(false);
  }

  it('external data symlinked out of the model folder (the file, or a folder on its way): refused, nothing written', async () => {
    const outside = await mkdtemp(join(dir, 'outside-'));
    const linkedFile = join(dir, 'linked-file');
    await saveModel(matmulModel({ K, N, w }), join(linkedFile, 'in.onnx'));
    await rename(join(linkedFile, 'in.onnx.data'), join(outside, 'secret.bin'));
    await symlink(join(outside, 'secret.bin'), join(linkedFile, 'in.onnx.data'));
    await expectRefused(join(linkedFile, 'in.onnx'), `${join(linkedFile, 'in.onnx.data')}: tensor W: external data path escapes model directory`);

    const linkedDir = join(dir, 'linked-dir');
    await saveModel(matmulModel({ K, N, w }), join(linkedDir, 'in.onnx'), { externalData: 'weights/in.onnx.data' });
    await rename(join(linkedDir, 'weights'), join(outside, 'weights'));
    await symlink(join(outside, 'weights'), join(linkedDir, 'weights'));
    await expectRefused(join(linkedDir, 'in.onnx'), `${join(linkedDir, 'weights', 'in.onnx.data')}: tensor W: external data path escapes model directory`);
  });

  it('an external length shorter or longer than the weight needs: refused naming the tensor and both sizes, nothing written', async () => {
    const d = join(dir, 'bad-length');
    await mkdir(d);
    const bytes = new Uint8Array(w.buffer, w.byteOffset, w.byteLength);
    await writeFile(join(d, 'in.onnx.data'), Buffer.concat([bytes, new Uint8Array(64)]));
    for (const length of [K * N * 4 - 64, K * N * 4 + 64]) {
      const m = matmulModel({ K, N, w });
      m.graph.replaceInitializer(new Tensor('W', DataType.FLOAT, [K, N], { kind: 'external', path: join(d, 'in.onnx.data'), location: 'in.onnx.data', dir: d, offset: 0, length }));
      await writeFile(join(d, 'in.onnx'), encodeModel(m));
      await expectRefused(join(d, 'in.onnx'), `tensor W: external data length is ${length} bytes, but FLOAT[${K}, ${N}] needs ${K * N * 4}`);
    }
  });

  it('an empty or non-ONNX input file: refused with what it is, nothing written', async () => {
    await writeFile(join(dir, 'empty.onnx'), new Uint8Array());
    await expectRefused(join(dir, 'empty.onnx'), `${join(dir, 'empty.onnx')}: is empty (0 bytes)`);
    await writeFile(join(dir, 'other.onnx'), new Uint8Array([0xa0, 0x06, 0x01]));
    await expectRefused(join(dir, 'other.onnx'), `${join(dir, 'other.onnx')}: is not an ONNX model (no graph, no IR version)`);
  });

  it('a bad block size is a clear error', async () => {
    const r = await cli(['quantize', join(dir, 'in.onnx'), '--out', join(dir, 'x.onnx'), '--scheme', 'int4', '--block-size', '24', '--threads', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('block size 24 is not a power of two in 16..256');
    expect(r.stderr).toContain('fix: MatMulNBits needs 16, 32, 64, 128 or 256');
  });
});
