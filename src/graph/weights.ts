// Lazy weight tensors made from checkpoint tensors: row slices concatenated, transposed to MatMul's [in, out], cast to
// the activation dtype. Nothing is read until the writer asks for the bytes, which come in chunks of output rows.
import { DataType, dataTypeName } from '../onnx/dtype.js';
import {
  Tensor,
  bfloat16BitsToFloat32,
  float16BitsToFloat32,
  float16Table,
  float32ToFloat16Bits,
  toFloat32,
  viewBytes,
  type ScratchPool,
} from '../onnx/tensor.js';
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
  /** The same rows read into `into` (exactly their bytes long): lets a weight read into reused buffers. */
  readRowsInto?(name: string, start: number, into: Uint8Array): Promise<void>;
}

/** Rows [start, end) of a source tensor (all rows when `rows` is absent). */
export interface RowSlice {
  tensor: string;
  rows?: readonly [number, number];
}

/** Bytes read from the checkpoint per call: large enough to stream fast, small next to the tensors. */
const READ_BYTES = 32 << 20;

/**
 * Bytes of output per chunk a weight yields: the writer holds one chunk at a time (plus its staged copy being
 * written), so a 2.5 GB fp32 LM head costs its (bf16) input plus ~24 MiB, not its whole output. Small, because every
 * byte of band and staging a save needs first is a fresh page (see ScratchPool): 64 MiB chunks made the convert-like
 * bench 2.8 s, 8 MiB 1.5 s; the transpose is tiled by source rows, so narrower bands cost it nothing.
 */
export const OUTPUT_CHUNK_BYTES = 8 << 20;

export interface WeightOptions {
  /** Output bytes per chunk (default {@link OUTPUT_CHUNK_BYTES}); at least one output row. */
  chunkBytes?: number;
}

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

function bytesPerElement(dataType: number): number {
  return dataType === DataType.FLOAT ? 4 : 2;
}

/**
 * Raw rows of a slice, READ_BYTES at a time: `{ row, raw }` with `row` the slice-relative first row. With `into`
 * (bytes for the whole slice) and a source that reads into buffers, each read lands in place there and `raw` is a
 * view of it; with `buffers` alone, every read reuses one buffer (so `raw` is valid until the next one is asked for).
 */
async function* readChunks(src: WeightSource, s: RowSlice, buffers?: Buffers, into?: Uint8Array): AsyncGenerator<{ row: number; raw: Uint8Array }> {
  const i = info(src, s.tensor);
  const [a, b] = sliceRange(src, s);
  const bytesPerRow = Math.max(1, colsOf(i.dims) * bytesPerElement(i.dataType));
  const step = Math.max(1, Math.floor(READ_BYTES / bytesPerRow));
  const readInto = src.readRowsInto?.bind(src);
  const reused = readInto && !into && buffers ? buffers.bytes(Math.min(step, b - a) * bytesPerRow) : undefined;
  for (let r = a; r < b; r += step) {
    const end = Math.min(b, r + step);
    const length = (end - r) * bytesPerRow;
    let raw: Uint8Array;
    if (readInto && (into || reused)) {
      raw = into ? into.subarray((r - a) * bytesPerRow, (r - a) * bytesPerRow + length) : reused!.subarray(0, length);
      await readInto(s.tensor, r, raw);
    } else raw = await src.readRows(s.tensor, r, end);
    if (raw.byteLength !== length) {
      throw new CheckpointError('CHECKPOINT_SHORT_READ', `read ${raw.byteLength} bytes for rows ${r}..${end} of ${s.tensor}`, {
        where: `tensor ${s.tensor}`,
        fix: 'the safetensors file is truncated: download it again',
      });
    }
    yield { row: r - a, raw };
  }
}

/** A slice held in memory in its stored dtype (bf16 stays 2 bytes per value: half of float32). */
interface HeldSlice {
  dataType: number;
  rows: number;
  values: Float32Array | Uint16Array;
}

/**
 * Working buffers of one producer: borrowed from the writer's scratch pool when it lends one (reused pages, see
 * ScratchPool), else new; all given back by release() when the producer ends.
 */
class Buffers {
  private readonly lent: Uint8Array[] = [];
  constructor(private readonly scratch: ScratchPool | undefined) {}
  bytes(n: number): Uint8Array {
    const b = this.scratch ? this.scratch.take(n) : new Uint8Array(n);
    this.lent.push(b);
    return b;
  }
  float32(n: number): Float32Array<ArrayBuffer> {
    return new Float32Array(this.bytes(n * 4).buffer as ArrayBuffer, 0, n);
  }
  uint16(n: number): Uint16Array<ArrayBuffer> {
    return new Uint16Array(this.bytes(n * 2).buffer as ArrayBuffer, 0, n);
  }
  release(): void {
    if (this.scratch) for (const b of this.lent.splice(0)) this.scratch.give(b);
  }
}

async function hold(src: WeightSource, s: RowSlice, buffers: Buffers): Promise<HeldSlice> {
  const i = info(src, s.tensor);
  const [a, b] = sliceRange(src, s);
  const cols = colsOf(i.dims);
  const values = i.dataType === DataType.FLOAT ? buffers.float32((b - a) * cols) : buffers.uint16((b - a) * cols);
  const bytes = viewBytes(values);
  for await (const { row, raw } of readChunks(src, s, buffers, bytes)) {
    if (!src.readRowsInto) bytes.set(raw, row * cols * values.BYTES_PER_ELEMENT); // else it was read in place
  }
  return { dataType: i.dataType, rows: b - a, values };
}

/** Encodes float32 values in the activation dtype. */
export function encodeFloats(values: Float32Array, dtype: FloatDtype): Uint8Array {
  return dtype === DataType.FLOAT ? viewBytes(values) : viewBytes(float32ToFloat16Bits(values));
}

/** Rows of `width` values per output chunk. */
function rowsPerChunk(width: number, opts: WeightOptions): number {
  return Math.max(1, Math.floor((opts.chunkBytes ?? OUTPUT_CHUNK_BYTES) / (Math.max(1, width) * 4)));
}

/**
 * Writes rows [i0, i1) of the transpose of `p` ([rows, inDim] → [inDim, rows]) into `band` ([i1 − i0, outDim]) at
 * column `col0`, decoding the stored dtype. Tiled by 64 source rows, so the cache lines read for feature i serve
 * features i+1.. too and for each feature the tile lands contiguously in its output row.
 */
function transposeInto(band: Float32Array, p: HeldSlice, inDim: number, outDim: number, col0: number, i0: number, i1: number): void {
  const v = p.values;
  const bits = new Uint32Array(band.buffer, band.byteOffset, band.length);
  const f16 = p.dataType === DataType.FLOAT16 ? float16Table() : undefined;
  for (let r0 = 0; r0 < p.rows; r0 += 64) {
    const r1 = Math.min(p.rows, r0 + 64);
    for (let i = i0; i < i1; i++) {
      const at = (i - i0) * outDim + col0;
      // One loop per stored dtype keeps the inner loop free of calls and branches.
      if (p.dataType === DataType.FLOAT) for (let r = r0; r < r1; r++) band[at + r] = v[r * inDim + i];
      else if (f16) for (let r = r0; r < r1; r++) band[at + r] = f16[v[r * inDim + i]];
      else for (let r = r0; r < r1; r++) bits[at + r] = v[r * inDim + i] << 16; // bf16: the high half of float32
    }
  }
}

/**
 * A MatMul weight [in, out]: the row slices of [out_i, in] checkpoint tensors stacked (packed QKV, split gate/up) and
 * transposed, as ONNX MatMul wants, cast to the activation dtype. Shapes are checked now; bytes are made when written,
 * in chunks of output rows: the input is held in its stored dtype, plus one output chunk.
 */
export function linearWeight(src: WeightSource, name: string, parts: readonly RowSlice[], dtype: FloatDtype, opts: WeightOptions = {}): Tensor {
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
  const step = rowsPerChunk(outDim, opts);
  return Tensor.lazyChunks(name, dtype, [inDim, outDim], async function* (scratch) {
    const buffers = new Buffers(scratch);
    try {
      const held: HeldSlice[] = [];
      for (const p of parts) held.push(await hold(src, p, buffers));
      const band = buffers.float32(Math.min(step, inDim) * outDim);
      const half = dtype === DataType.FLOAT16 ? buffers.uint16(band.length) : undefined;
      for (let i0 = 0; i0 < inDim; i0 += step) {
        const i1 = Math.min(inDim, i0 + step);
        held.forEach((p, k) => transposeInto(band, p, inDim, outDim, offsets[k], i0, i1));
        const n = (i1 - i0) * outDim;
        yield half ? viewBytes(float32ToFloat16Bits(band.subarray(0, n), half.subarray(0, n))) : viewBytes(band.subarray(0, n));
      }
    } finally {
      buffers.release();
    }
  });
}

/**
 * A tensor copied as stored (embeddings [vocab, hidden], norm weights, biases), or several 1-D slices concatenated
 * (a packed QKV bias), cast to the activation dtype; streamed in chunks of rows as read.
 */
export function plainWeight(src: WeightSource, name: string, parts: readonly RowSlice[], dtype: FloatDtype, opts: WeightOptions = {}): Tensor {
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
  const step = rowsPerChunk(cols, opts);
  return Tensor.lazyChunks(name, dtype, dims, async function* (scratch) {
    const buffers = new Buffers(scratch);
    // Cast buffers sized for the largest read, made once and reused for every piece.
    let wide: Float32Array<ArrayBuffer> | undefined;
    let half: Uint16Array<ArrayBuffer> | undefined;
    try {
      for (const p of parts) {
        const dataType = info(src, p.tensor).dataType;
        for await (const { raw } of readChunks(src, p, buffers)) {
          let f: Float32Array;
          if (dataType === DataType.FLOAT) f = toFloat32(raw, dataType, p.tensor);
          else {
            const n = raw.byteLength / 2;
            const bits = raw.byteOffset % 2 === 0 ? new Uint16Array(raw.buffer, raw.byteOffset, n) : new Uint16Array(raw.slice().buffer, 0, n);
            if (!wide || wide.length < n) wide = buffers.float32(Math.max(n, Math.floor(READ_BYTES / 2)));
            const into = wide.subarray(0, n);
            f = dataType === DataType.FLOAT16 ? float16BitsToFloat32(bits, into) : bfloat16BitsToFloat32(bits, into);
          }
          for (let at = 0; at < f.length; at += step * cols) {
            const piece = f.subarray(at, Math.min(f.length, at + step * cols));
            if (dtype === DataType.FLOAT) yield viewBytes(piece);
            else {
              if (!half || half.length < piece.length) half = buffers.uint16(Math.max(piece.length, step * cols));
              yield viewBytes(float32ToFloat16Bits(piece, half.subarray(0, piece.length)));
            }
          }
        }
      }
    } finally {
      buffers.release();
    }
  });
}

/** A tensor computed at build time (rotary caches), held as float32 and cast on write. */
export function computedWeight(name: string, dims: readonly number[], values: Float32Array, dtype: FloatDtype): Tensor {
  return Tensor.lazy(name, dtype, dims, () => encodeFloats(values, dtype));
}
