// Test helpers for quantization: an independent dequantizer over raw MatMulNBits bytes, a float64 reference GEMM,
// real weights from the stories260K fixture, and tiny MatMul / Gather graphs in our IR.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DataType } from '../../src/onnx/dtype.js';
import { Graph, Model, Node, attr, tensorType } from '../../src/onnx/ir.js';
import { Tensor, float32ToFloat16Bits, viewBytes } from '../../src/onnx/tensor.js';
import { Rng } from '../../src/util/random.js';
export { sharedFixture as fixture } from './fixtures.js';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));


export function randomMatrix(seed: number, rows: number, cols: number, std = 0.05): Float32Array {
  return new Rng(seed).fillNormal(new Float32Array(rows * cols), std);
}

// -----------------------------------------------------------------------------------------------------------------
// Independent reference: plain loops over the packed bytes, nothing shared with src/quant.

export interface RawQuantized {
  b: Uint8Array;
  scales: Float32Array;
  /** Packed uint8 [N, ceil(kBlocks·bits/8)] or float [N, kBlocks]; undefined = 2^(bits−1). */
  zp?: Uint8Array | Float32Array;
  K: number;
  N: number;
  bits: number;
  blockSize: number;
  /** Bytes per row of b (k_blocks · block_size · bits / 8 for MatMulNBits). */
  rowBytes: number;
}

/** Dequantizes to float64 [K, N] (MatMul's B layout). */
export function refDequantize(q: RawQuantized): Float64Array {
  const { K, N, bits, blockSize } = q;
  const kBlocks = Math.ceil(K / blockSize);
  const perByte = 8 / bits;
  const mask = (1 << bits) - 1;
  const zpRow = Math.ceil((kBlocks * bits) / 8);
  const out = new Float64Array(K * N);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const byte = q.b[n * q.rowBytes + Math.floor(k / perByte)];
      const code = (byte >> ((k % perByte) * bits)) & mask;
      const blk = Math.floor(k / blockSize);
      let zp: number;
      if (q.zp instanceof Float32Array) zp = q.zp[n * kBlocks + blk];
      else if (q.zp) zp = (q.zp[n * zpRow + Math.floor(blk / perByte)] >> ((blk % perByte) * bits)) & mask;
      else zp = 1 << (bits - 1);
      out[k * N + n] = (code - zp) * q.scales[n * kBlocks + blk];
    }
  }
  return out;
}

/** float64 A[M, K] × B[K, N]. */
export function gemm(a: ArrayLike<number>, b: ArrayLike<number>, M: number, K: number, N: number): Float64Array {
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let k = 0; k < K; k++) {
      const av = a[m * K + k];
      if (av === 0) continue;
      for (let n = 0; n < N; n++) out[m * N + n] += av * b[k * N + n];
    }
  }
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

export function maxAbs(a: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]));
  return d;
}

// -----------------------------------------------------------------------------------------------------------------
// Real weights: the stories260K llama2.c checkpoint (linear weights are [out, in], i.e. rows of K = in).

export interface RealWeight {
  name: string;
  /** [rows, cols] row-major. */
  data: Float32Array;
  rows: number;
  cols: number;
}

export function loadStories260K(path: string): RealWeight[] {
  const buf = readFileSync(path);
  const h = new Int32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + 28));
  const [dim, hidden, layers, , nKv, vocabSigned] = h;
  const heads = h[3];
  const vocab = Math.abs(vocabSigned);
  const kvDim = (dim * nKv) / heads;
  const floats = new Float32Array(buf.buffer.slice(buf.byteOffset + 28));
  let off = 0;
  const out: RealWeight[] = [];
  const take = (name: string, count: number, rows: number, cols: number) => {
    for (let l = 0; l < count; l++) {
      out.push({ name: count > 1 ? `${name}.${l}` : name, data: floats.slice(off, off + rows * cols), rows, cols });
      off += rows * cols;
    }
  };
  take('token_embedding', 1, vocab, dim);
  off += layers * dim; // rms_att
  take('wq', layers, dim, dim);
  take('wk', layers, kvDim, dim);
  take('wv', layers, kvDim, dim);
  take('wo', layers, dim, dim);
  off += layers * dim; // rms_ffn
  take('w1', layers, hidden, dim);
  take('w2', layers, dim, hidden);
  take('w3', layers, hidden, dim);
  return out;
}

// -----------------------------------------------------------------------------------------------------------------
// Tiny graphs in our IR

export type FloatKind = 'float32' | 'float16';

export function floatTensor(name: string, dims: number[], data: Float32Array, kind: FloatKind = 'float32'): Tensor {
  return kind === 'float16'
    ? Tensor.fromBytes(name, DataType.FLOAT16, dims, viewBytes(float32ToFloat16Bits(data)))
    : Tensor.fromFloat32(name, dims, data);
}

/** `A[M, K] ─ MatMul(W[K, N]) ─▶ Y` with W an initializer, node named `/model/layers.0/mlp/down_proj/MatMul`. */
export function matmulModel(o: { K: number; N: number; w: Float32Array; kind?: FloatKind; opset?: number; name?: string }): Model {
  const kind = o.kind ?? 'float32';
  const et = kind === 'float16' ? DataType.FLOAT16 : DataType.FLOAT;
  const g = new Graph('main');
  g.inputs.push({ name: 'A', type: tensorType(et, ['M', o.K]) });
  g.outputs.push({ name: 'Y', type: tensorType(et, ['M', o.N]) });
  g.addInitializer(floatTensor('W', [o.K, o.N], o.w, kind));
  g.addNode(new Node({ opType: 'MatMul', name: o.name ?? '/model/layers.0/mlp/down_proj/MatMul', inputs: ['A', 'W'], outputs: ['Y'] }));
  return new Model(g, [{ domain: '', version: o.opset ?? 21 }]);
}

export { attr };
