// Lazy weight tensors made from checkpoint tensors: row slices concatenated, transposed to MatMul's [in, out], cast to
// the activation dtype. Nothing is read until the writer asks for the bytes, and then only in row chunks.
import { DataType, dataTypeName } from '../onnx/dtype.js';
import { Tensor, float32ToFloat16Bits, toFloat32, viewBytes } from '../onnx/tensor.js';
import { CheckpointError } from '../util/errors.js';
import type { FloatDtype } from './builder.js';

export interface SourceTensorInfo {
  /** ONNX element type of the stored data (FLOAT, FLOAT16 or BFLOAT16 for weights). */
  dataType: number;
  dims: readonly number[];
}

/** Where weights come from: a checkpoint, or an in-memory table in tests. */
export interface WeightSource {
  /** dtype and shape of a tensor, or undefined when there is no such tensor. */
  info(name: string): SourceTensorInfo | undefined;
  /** Raw little-endian bytes of rows [start, end) of the tensor seen as [dims[0], product of the rest]. */
  readRows(name: string, start: number, end: number): Promise<Uint8Array>;
}

/** Rows [start, end) of a source tensor (all rows when `rows` is absent). */
export interface RowSlice {
  tensor: string;
  rows?: readonly [number, number];
}

/** Bytes read per chunk: large enough to stream fast, small enough not to matter next to the output buffer. */
const CHUNK_BYTES = 32 << 20;

function info(src: WeightSource, name: string): SourceTensorInfo {
  const i = src.info(name);
  if (!i) {
    throw new CheckpointError('CHECKPOINT_TENSOR_MISSING', `tensor ${name} is not in the checkpoint`, {
      where: `tensor ${name}`,
      fix: 'check that every safetensors shard listed in the index is present',
    });
  }
  if (i.dataType !== DataType.FLOAT && i.dataType !== DataType.FLOAT16 && i.dataType !== DataType.BFLOAT16) {
    throw new CheckpointError('CHECKPOINT_DTYPE', `tensor ${name} is ${dataTypeName(i.dataType)}, expected a float type`, {
      where: `tensor ${name}`,
      fix: 'quantized checkpoints are not supported by the native builder: convert from an fp32/fp16/bf16 checkpoint',
    });
  }
  return i;
}

/** Throws a CheckpointError unless the tensor has exactly these dims. */
export function expectShape(src: WeightSource, name: string, dims: readonly number[]): void {
  const got = info(src, name).dims;
  if (got.length !== dims.length || got.some((d, i) => d !== dims[i])) {
    throw new CheckpointError('CHECKPOINT_SHAPE', `tensor ${name} has shape [${got.join(', ')}], config implies [${dims.join(', ')}]`, {
      where: `tensor ${name}`,
      fix: 'the checkpoint does not match its config.json (wrong hidden_size, heads or layer count?)',
    });
  }
}

function rowsOf(dims: readonly number[]): number {
  return dims.length === 0 ? 1 : dims[0];
}
function colsOf(dims: readonly number[]): number {
  let n = 1;
  for (let i = 1; i < dims.length; i++) n *= dims[i];
  return n;
}

function sliceRange(src: WeightSource, s: RowSlice): [number, number] {
  const rows = rowsOf(info(src, s.tensor).dims);
  const [a, b] = s.rows ?? [0, rows];
  if (a < 0 || b > rows || a >= b) {
    throw new CheckpointError('CHECKPOINT_SHAPE', `tensor ${s.tensor} has ${rows} rows, rows ${a}..${b} were asked for`, {
      where: `tensor ${s.tensor}`,
      fix: 'the checkpoint does not match its config.json',
    });
  }
  return [a, b];
}

/** Calls `each(firstRow, rowsAsFloat32)` over the rows of a slice, a chunk at a time. */
async function forEachChunk(
  src: WeightSource,
  s: RowSlice,
  each: (row: number, data: Float32Array) => void,
): Promise<void> {
  const i = info(src, s.tensor);
  const cols = colsOf(i.dims);
  const [a, b] = sliceRange(src, s);
  const bytesPerRow = Math.max(1, cols * (i.dataType === DataType.FLOAT ? 4 : 2));
  const step = Math.max(1, Math.floor(CHUNK_BYTES / bytesPerRow));
  for (let r = a; r < b; r += step) {
    const end = Math.min(b, r + step);
    const raw = await src.readRows(s.tensor, r, end);
    if (raw.byteLength !== (end - r) * bytesPerRow) {
      throw new CheckpointError('CHECKPOINT_SHORT_READ', `read ${raw.byteLength} bytes for rows ${r}..${end} of ${s.tensor}`, {
        where: `tensor ${s.tensor}`,
        fix: 'the safetensors file is truncated: download it again',
      });
    }
    each(r, toFloat32(raw, i.dataType, s.tensor));
  }
}

/** Encodes float32 values in the activation dtype. */
export function encodeFloats(values: Float32Array, dtype: FloatDtype): Uint8Array {
  return dtype === DataType.FLOAT ? viewBytes(values) : viewBytes(float32ToFloat16Bits(values));
}

function allocOut(dtype: FloatDtype, n: number): Float32Array | Uint16Array {
  return dtype === DataType.FLOAT ? new Float32Array(n) : new Uint16Array(n);
}

function chunkIn(dtype: FloatDtype, f: Float32Array): Float32Array | Uint16Array {
  return dtype === DataType.FLOAT ? f : float32ToFloat16Bits(f);
}

/**
 * A MatMul weight [in, out]: the row slices of [out_i, in] checkpoint tensors stacked (packed QKV, split gate/up) and
 * transposed, as ONNX MatMul wants. Shapes are checked now; bytes are made when written.
 */
export function linearWeight(src: WeightSource, name: string, parts: readonly RowSlice[], dtype: FloatDtype): Tensor {
  const inDim = colsOf(info(src, parts[0].tensor).dims);
  let outDim = 0;
  const offsets: number[] = [];
  for (const p of parts) {
    const d = info(src, p.tensor).dims;
    if (d.length !== 2 || d[1] !== inDim) {
      throw new CheckpointError('CHECKPOINT_SHAPE', `tensor ${p.tensor} has shape [${d.join(', ')}], expected [*, ${inDim}]`, {
        where: `tensor ${p.tensor}`,
        fix: 'the checkpoint does not match its config.json',
      });
    }
    const [a, b] = sliceRange(src, p);
    offsets.push(outDim);
    outDim += b - a;
  }
  return Tensor.lazy(name, dtype, [inDim, outDim], async () => {
    const out = allocOut(dtype, inDim * outDim);
    for (let k = 0; k < parts.length; k++) {
      const col0 = offsets[k] - (parts[k].rows?.[0] ?? 0);
      await forEachChunk(src, parts[k], (row, f) => {
        const data = chunkIn(dtype, f);
        const nr = data.length / inDim;
        const base0 = col0 + row;
        // Tiled transpose: 64 source rows at a time, so the cache lines read for feature i serve features i+1.. too;
        // for each feature the tile's rows land contiguously in the output row.
        for (let r0 = 0; r0 < nr; r0 += 64) {
          const r1 = Math.min(nr, r0 + 64);
          for (let i = 0; i < inDim; i++) {
            const base = i * outDim + base0;
            for (let r = r0; r < r1; r++) out[base + r] = data[r * inDim + i];
          }
        }
      });
    }
    return viewBytes(out);
  });
}

/**
 * A tensor copied as stored (embeddings [vocab, hidden], norm weights, biases), or several 1-D slices concatenated
 * (a packed QKV bias), cast to the activation dtype.
 */
export function plainWeight(src: WeightSource, name: string, parts: readonly RowSlice[], dtype: FloatDtype): Tensor {
  const first = info(src, parts[0].tensor).dims;
  let rows = 0;
  const cols = colsOf(first);
  for (const p of parts) {
    const d = info(src, p.tensor).dims;
    if (d.length !== first.length || colsOf(d) !== cols) {
      throw new CheckpointError('CHECKPOINT_SHAPE', `tensor ${p.tensor} has shape [${d.join(', ')}], cannot stack it with ${parts[0].tensor}`, {
        where: `tensor ${p.tensor}`,
        fix: 'the checkpoint does not match its config.json',
      });
    }
    const [a, b] = sliceRange(src, p);
    rows += b - a;
  }
  const dims = first.length <= 1 ? [rows] : [rows, ...first.slice(1)];
  return Tensor.lazy(name, dtype, dims, async () => {
    const out = allocOut(dtype, rows * cols);
    let at = 0;
    for (const p of parts) {
      await forEachChunk(src, p, (_row, f) => {
        out.set(chunkIn(dtype, f), at);
        at += f.length;
      });
    }
    return viewBytes(out);
  });
}

/** A tensor computed at build time (rotary caches), held as float32 and cast on write. */
export function computedWeight(name: string, dims: readonly number[], values: Float32Array, dtype: FloatDtype): Tensor {
  return Tensor.lazy(name, dtype, dims, () => encodeFloats(values, dtype));
}
