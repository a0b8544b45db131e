// The lossless ternary path on a whole model: a checkpoint whose linear weights already are ternary (BitNet b1.58
// style, each block in {−a, 0, a}) is packed exactly as 2-bit MatMulNBits, so the quantized model's logits equal the
// unquantized model's to float tolerance (accuracy level 0: float activations, no int8 rounding of A).
import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertCheckpoint } from '../../src/arch/convert.js';
import { synthCheckpoint } from '../../src/arch/synth.js';
import { DataType } from '../../src/onnx/dtype.js';
import { Tensor } from '../../src/onnx/ir.js';
import { loadModel, saveModel } from '../../src/onnx/model-file.js';
import { quantizeModel } from '../../src/quant/quantize-model.js';
import { DecoderSession } from '../../src/runtime/decoder-session.js';
import { Rng } from '../../src/util/random.js';

const BLOCK = 32;
let work: string;
let floatDir: string;
let ternaryDir: string;
let modified = 0;

/** Makes a [K, N] MatMul weight ternary per block of BLOCK along K: values a·{−1, 0, 1}, a per (block, column). */
function ternarize(w: Float32Array, K: number, N: number, rng: Rng): Float32Array {
  const out = new Float32Array(w.length);
  for (let n = 0; n < N; n++) {
    for (let k0 = 0; k0 < K; k0 += BLOCK) {
      const a = 0.01 + 0.05 * rng.uniform();
      for (let k = k0; k < Math.min(K, k0 + BLOCK); k++) {
        const v = w[k * N + n];
        out[k * N + n] = Math.abs(v) < 0.3 * Math.abs(w[k0 * N + n] || 1) ? 0 : Math.sign(v) * a;
      }
    }
  }
  return out;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'phi-forge-ternary-'));
  await synthCheckpoint({ preset: 'phi-3-mini-4k', scale: 'tiny', seed: 5, outDir: join(work, 'ckpt') });
  await convertCheckpoint({ checkpointDir: join(work, 'ckpt'), outDir: join(work, 'fp32'), precision: 'fp32', target: 'cpu' });
  // The "already ternary" float model: every MatMul weight replaced by a ternary one.
  const model = await loadModel(join(work, 'fp32', 'model.onnx'));
  const rng = new Rng(11);
  for (const node of model.graph.nodes.filter((n) => n.opType === 'MatMul')) {
    const w = model.graph.initializer(node.inputs[1]);
    if (!w || w.dims.length !== 2 || w.dataType !== DataType.FLOAT) continue;
    const [K, N] = w.dims;
    model.graph.replaceInitializer(Tensor.fromFloat32(w.name, w.dims, ternarize(await w.float32(), K, N, rng)));
    modified++;
  }
  floatDir = join(work, 'ternary-float');
  await saveModel(model, join(floatDir, 'model.onnx'), { sizeThreshold: 0 });
  for (const f of await readdir(join(work, 'fp32'))) if (!f.startsWith('model.onnx')) await copyFile(join(work, 'fp32', f), join(floatDir, f));
  const q = await quantizeModel(await loadModel(join(floatDir, 'model.onnx')), { scheme: 'ternary', blockSize: BLOCK, accuracyLevel: 0, embeddings: 'none' });
  ternaryDir = join(work, 'ternary-2bit');
  await saveModel(q.model, join(ternaryDir, 'model.onnx'), { sizeThreshold: 0 });
  for (const f of await readdir(join(work, 'fp32'))) if (!f.startsWith('model.onnx')) await copyFile(join(work, 'fp32', f), join(ternaryDir, f));
});
afterAll(async () => rm(work, { recursive: true, force: true }));

describe('lossless ternary', () => {
  it('packs an already-ternary model as 2-bit MatMulNBits whose logits equal the float model', async () => {
    expect(modified).toBeGreaterThan(4);
    const packed = await loadModel(join(ternaryDir, 'model.onnx'));
    const nbits = packed.graph.nodes.filter((n) => n.opType === 'MatMulNBits');
    expect(nbits).toHaveLength(modified);
    expect(nbits.every((n) => n.intAttr('bits') === 2)).toBe(true);
    expect(packed.graph.nodes.filter((n) => n.opType === 'MatMul' && packed.graph.initializer(n.inputs[1]))).toHaveLength(0);

    const ids = [1, 17, 42, 99, 7, 300, 12, 5];
    const a = await DecoderSession.open(floatDir);
    const b = await DecoderSession.open(ternaryDir);
    try {
      const la = (await a.forward(ids)).logits;
      const lb = (await b.forward(ids)).logits;
      let maxDiff = 0;
      let maxAbs = 0;
      for (let i = 0; i < la.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(la[i] - lb[i]));
        maxAbs = Math.max(maxAbs, Math.abs(la[i]));
      }
      expect(maxAbs).toBeGreaterThan(0.1); // non-trivial logits
      expect(maxDiff).toBeLessThan(1e-4);
    } finally {
      await a.release();
      await b.release();
    }
  });
});
