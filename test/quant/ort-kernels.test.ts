// Our packing against onnxruntime's own kernels: a one-node MatMulNBits model run in onnxruntime-node equals
// A × dequantized(B), where the dequantization is read independently from the packed bytes in the test helper.
// accuracy_level 0 is compared with a float64 product; accuracy_level 4 (int8 activations) with the same product
// after quantizing A the way MLAS does (per block of block_size along K, scale = max|a| / 127, round half to even),
// so both tolerances stay tight enough that a single misplaced code would fail.
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { encodeModel } from '../../src/onnx/codec.js';
import { DataType } from '../../src/onnx/dtype.js';
import { Graph, Model, Node, attr, tensorType } from '../../src/onnx/ir.js';
import { Tensor, float16BitsToFloat32, float32ToFloat16Bits, viewBytes } from '../../src/onnx/tensor.js';
import { hqqQuantize } from '../../src/quant/algorithms/hqq.js';
import type { PackedWeight, QuantBits } from '../../src/quant/formats/block.js';
import { ternary } from '../../src/quant/formats/ternary.js';
import { quantizeUniform } from '../../src/quant/formats/uniform.js';
import { gemm, maxAbs, maxAbsDiff, randomMatrix, refDequantize } from '../helpers/quant.js';

type Ort = typeof import('onnxruntime-node');
const ort = createRequire(import.meta.url)('onnxruntime-node') as Ort;

const M = 3;
const N = 20;

/** bits/block_size where onnxruntime-node 1.30 (x64) has an int8-activation kernel for accuracy_level 4 (measured). */
const INT8_PATH = new Set(['2/32', '2/64', '2/128', ...[16, 32, 64, 128, 256].flatMap((b) => [`4/${b}`, `8/${b}`])]);

/** A quantized the way MLAS does for accuracy_level 4, back to float64. */
function int8Activations(a: Float32Array, K: number, bs: number): Float64Array {
  const out = new Float64Array(a.length);
  for (let m = 0; m < M; m++) {
    for (let k0 = 0; k0 < K; k0 += bs) {
      const k1 = Math.min(K, k0 + bs);
      let amax = 0;
      for (let k = k0; k < k1; k++) amax = Math.max(amax, Math.abs(a[m * K + k]));
      const scale = Math.fround(amax / 127);
      const recip = scale ? Math.fround(1 / scale) : 0;
      for (let k = k0; k < k1; k++) {
        const x = Math.fround(a[m * K + k] * recip);
        const r = Math.round(x);
        out[m * K + k] = (r - x === 0.5 && r % 2 !== 0 ? r - 1 : r) * scale;
      }
    }
  }
  return out;
}

interface RunOpts {
  accuracyLevel: number;
  fp16?: boolean;
}

interface Check {
  /** Max |ORT − reference| for the path that matched, and max |reference|. */
  diff: number;
  max: number;
  /** Which reference matched: float activations, or int8 activations (accuracy_level 4's int8 kernel). */
  path: 'float' | 'int8';
}

/**
 * Builds A ─ MatMulNBits(B, scales[, zp]) ─ Y from a PackedWeight, runs it, and compares it with the references.
 * At accuracy_level 4, MLAS uses its int8 kernel only where it has one (per bits and block size, packed zero
 * points) and otherwise computes in fp32, so the closer of the two references is reported with its path.
 */
async function checkAgainstOrt(p: PackedWeight, o: RunOpts): Promise<Check> {
  const { K, bits, blockSize } = p;
  const et = o.fp16 ? DataType.FLOAT16 : DataType.FLOAT;
  const floats = (name: string, dims: number[], v: Float32Array) =>
    o.fp16 ? Tensor.fromBytes(name, DataType.FLOAT16, dims, viewBytes(float32ToFloat16Bits(v))) : Tensor.fromFloat32(name, dims, v);
  const g = new Graph('g');
  g.inputs.push({ name: 'A', type: tensorType(et, [M, K]) });
  g.outputs.push({ name: 'Y', type: tensorType(et, [M, N]) });
  g.addInitializer(Tensor.fromBytes('B', DataType.UINT8, [N, p.kBlocks, (blockSize * bits) / 8], p.b));
  g.addInitializer(floats('S', [N, p.kBlocks], p.scales));
  const inputs = ['A', 'B', 'S'];
  const z = p.zeroPoints;
  if (z) {
    g.addInitializer(
      z.kind === 'packed'
        ? Tensor.fromBytes('Z', DataType.UINT8, [N, Math.ceil((p.kBlocks * bits) / 8)], z.data)
        : floats('Z', [N, p.kBlocks], z.data),
    );
    inputs.push('Z');
  }
  g.addNode(
    new Node({
      opType: 'MatMulNBits',
      domain: 'com.microsoft',
      inputs,
      outputs: ['Y'],
      attributes: [attr.int('K', K), attr.int('N', N), attr.int('bits', bits), attr.int('block_size', blockSize), attr.int('accuracy_level', o.accuracyLevel)],
    }),
  );
  const session = await ort.InferenceSession.create(encodeModel(new Model(g, [{ domain: '', version: 21 }, { domain: 'com.microsoft', version: 1 }])));
  try {
    let a = randomMatrix(K + bits, M, K, 1);
    let y: Float32Array;
    if (o.fp16) {
      const a16 = float32ToFloat16Bits(a);
      a = float16BitsToFloat32(a16);
      const r = await session.run({ A: new ort.Tensor('float16', a16, [M, K]) });
      y = float16BitsToFloat32(r.Y.data as Uint16Array);
    } else {
      const r = await session.run({ A: new ort.Tensor('float32', a, [M, K]) });
      y = r.Y.data as Float32Array;
    }
    const w = refDequantize({ b: p.b, scales: p.scales, zp: z?.data, K, N, bits, blockSize, rowBytes: p.rowBytes });
    const ref = gemm(a, w, M, K, N);
    const float = { diff: maxAbsDiff(y, ref), max: maxAbs(ref), path: 'float' as const };
    if (o.accuracyLevel !== 4) return float;
    const int8 = { diff: maxAbsDiff(y, gemm(int8Activations(a, K, blockSize), w, M, K, N)), max: float.max, path: 'int8' as const };
    return int8.diff <= float.diff ? int8 : float;
  } finally {
    await session.release();
  }
}

describe('MatMulNBits packing vs onnxruntime kernels', () => {
  const bitsList: QuantBits[] = [2, 4, 8];
  for (const bits of bitsList) {
    for (const bs of [16, 32, 64, 128, 256]) {
      for (const symmetric of [true, false]) {
        it(`${bits}-bit block ${bs} ${symmetric ? 'sym' : 'asym'}, accuracy_level 0 and 4`, async () => {
          // Two and a half blocks: the last block is padded.
          const K = 2 * bs + bs / 2;
          const w = randomMatrix(bits * 1000 + bs, K, N);
          const p = quantizeUniform({ data: w, K, N, layout: 'kn' }, bits, { blockSize: bs, symmetric });
          for (const accuracyLevel of [0, 4]) {
            const { diff, max, path } = await checkAgainstOrt(p, { accuracyLevel });
            expect(diff, `accuracy_level ${accuracyLevel} (${path} path)`).toBeLessThan(2e-5 * (1 + max));
            if (accuracyLevel === 4) expect(path).toBe(INT8_PATH.has(`${bits}/${bs}`) ? 'int8' : 'float');
          }
        });
      }
    }
  }

  it('ternary (2-bit, zero point 2) runs directly, and already-ternary weights reproduce the float product', async () => {
    const K = 96;
    const w = randomMatrix(5, K, N);
    // Make it ternary: {−0.02, 0, 0.02} per block.
    for (let i = 0; i < w.length; i++) w[i] = w[i] > 0.03 ? 0.02 : w[i] < -0.03 ? -0.02 : 0;
    const p = ternary.quantize({ data: w, K, N, layout: 'kn' }, { blockSize: 32, symmetric: true });
    expect(p.report?.exactBlocks).toBe(p.report?.totalBlocks);
    for (const accuracyLevel of [0, 4]) {
      const { diff, max } = await checkAgainstOrt(p, { accuracyLevel });
      expect(diff).toBeLessThan(2e-5 * (1 + max));
    }
    // The dequantized weights are the float weights exactly.
    const deq = refDequantize({ b: p.b, scales: p.scales, K, N, bits: 2, blockSize: 32, rowBytes: p.rowBytes });
    expect(maxAbsDiff(deq, w)).toBe(0);
  });

  it('HQQ float zero points ([N, k_blocks], the activation type) run, but accuracy_level 4 computes in fp32', async () => {
    const K = 160;
    const p = hqqQuantize({ data: randomMatrix(8, K, N), K, N, layout: 'kn' }, { blockSize: 32 });
    for (const accuracyLevel of [0, 4]) {
      const { diff, max, path } = await checkAgainstOrt(p, { accuracyLevel });
      expect(diff, `accuracy_level ${accuracyLevel}`).toBeLessThan(2e-5 * (1 + max));
      expect(path).toBe('float');
    }
  });

  it('fp16 activations with fp16 scales', async () => {
    const K = 128;
    const p = quantizeUniform({ data: randomMatrix(9, K, N), K, N, layout: 'kn' }, 4, { blockSize: 32, symmetric: false, scaleType: 'float16' });
    const { diff, max } = await checkAgainstOrt(p, { accuracyLevel: 0, fp16: true });
    // fp16 output: a few units in the last place of fp16.
    expect(diff).toBeLessThan(4e-3 * (1 + max));
  });
});
