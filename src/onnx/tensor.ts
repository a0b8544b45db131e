// Tensor of the IR: dtype and shape known up front; data inline, in an external file (read by offset), or lazily produced.
import { open, realpath, stat, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { OnnxError } from '../util/errors.js';
import { isWithin } from '../util/safe-name.js';
import { DataType, byteLengthOf, dataTypeName, numel } from './dtype.js';

export type StringPair = [key: string, value: string];

/**
 * Where a tensor's bytes live. Bytes are always the raw little-endian layout ONNX uses in `raw_data`
 * (sub-byte types packed low bits first), except STRING tensors which hold one byte string per element.
 */
export type TensorSource =
  | { kind: 'inline'; bytes: Uint8Array }
  | {
      kind: 'external';
      /** Absolute path of the data file, resolved against `dir` when decoded. */
      path: string;
      /** The `location` string as written in the model (relative to the model's folder). */
      location: string;
      /**
       * The model's folder. Every read refuses a data file whose real path (symlinks resolved) is not inside the real
       * path of this folder or of the folder the model file really lives in (see externalDataRealPath).
       */
      dir: string;
      /** The model file the reference was read from, when known. */
      modelFile?: string;
      offset: number;
      length: number;
      /** Other external_data entries (e.g. checksum), kept so they round-trip. */
      extra?: StringPair[];
    }
  | {
      kind: 'lazy';
      byteLength: number;
      /**
       * All the bytes at once, in memory of their own: a writer may ask for the next tensor's bytes while these are
       * still being written.
       */
      produce: () => Uint8Array | Promise<Uint8Array>;
      /**
       * The same bytes in consecutive pieces, for writers that stream (a tensor larger than memory allows at once).
       * A piece may be a view of a buffer the producer reuses once the next piece is asked for. A writer may lend
       * `scratch` for the producer's working buffers (see ScratchPool).
       */
      chunks?: (scratch?: ScratchPool) => AsyncIterable<Uint8Array>;
    }
  | { kind: 'strings'; values: Uint8Array[] };

/** A tensor source whose bytes live in an external data file. */
export type ExternalSource = Extract<TensorSource, { kind: 'external' }>;

export class Tensor {
  name: string;
  dataType: number;
  dims: number[];
  source: TensorSource;
  docString = '';
  metadataProps: StringPair[] = [];

  constructor(name: string, dataType: number, dims: readonly number[], source: TensorSource) {
    this.name = name;
    this.dataType = dataType;
    this.dims = [...dims];
    this.source = source;
  }

  /** Elements in the tensor. */
  get size(): number {
    return numel(this.dims);
  }

  /** Bytes of the data (packed for sub-byte types); for STRING tensors the sum of string lengths. */
  get byteLength(): number {
    const s = this.source;
    switch (s.kind) {
      case 'inline':
        return s.bytes.byteLength;
      case 'external':
        return s.length;
      case 'lazy':
        return s.byteLength;
      case 'strings':
        return s.values.reduce((n, v) => n + v.byteLength, 0);
    }
  }

  /** Bytes the shape and dtype call for; differs from byteLength only in a malformed tensor. */
  get expectedByteLength(): number {
    return byteLengthOf(this.dataType, this.size);
  }

  get isExternal(): boolean {
    return this.source.kind === 'external';
  }

  /** Reads the whole tensor's raw bytes (external data read by offset, never the whole file). */
  async bytes(): Promise<Uint8Array> {
    const s = this.source;
    switch (s.kind) {
      case 'inline':
        return s.bytes;
      case 'external':
        return readExternalRange(s, this.name);
      case 'lazy': {
        const b = await s.produce();
        if (b.byteLength !== s.byteLength) {
          throw new OnnxError(
            'ONNX_LAZY_SIZE',
            `lazy tensor produced ${b.byteLength} bytes, declared ${s.byteLength}`,
            { where: `tensor ${this.name}` },
          );
        }
        return b;
      }
      case 'strings':
        throw new OnnxError('ONNX_STRING_TENSOR', 'STRING tensor has no raw bytes', { where: `tensor ${this.name}` });
    }
  }

  /** Reads the tensor as float32 values (FLOAT, FLOAT16, BFLOAT16 and DOUBLE convert; others are an error). */
  async float32(): Promise<Float32Array> {
    return toFloat32(await this.bytes(), this.dataType, this.name);
  }

  /** Copy with a new name and the same (shared, not copied) data source. */
  withName(name: string): Tensor {
    const t = new Tensor(name, this.dataType, this.dims, this.source);
    t.docString = this.docString;
    t.metadataProps = [...this.metadataProps];
    return t;
  }

  static fromBytes(name: string, dataType: number, dims: readonly number[], bytes: Uint8Array): Tensor {
    return new Tensor(name, dataType, dims, { kind: 'inline', bytes });
  }

  static fromFloat32(name: string, dims: readonly number[], data: Float32Array): Tensor {
    return Tensor.fromBytes(name, DataType.FLOAT, dims, viewBytes(data));
  }

  static fromInt64(name: string, dims: readonly number[], data: readonly (number | bigint)[] | BigInt64Array): Tensor {
    const arr = data instanceof BigInt64Array ? data : BigInt64Array.from(data, (v) => BigInt(v));
    return Tensor.fromBytes(name, DataType.INT64, dims, viewBytes(arr));
  }

  static fromInt32(name: string, dims: readonly number[], data: Int32Array): Tensor {
    return Tensor.fromBytes(name, DataType.INT32, dims, viewBytes(data));
  }

  static lazy(
    name: string,
    dataType: number,
    dims: readonly number[],
    produce: () => Uint8Array | Promise<Uint8Array>,
  ): Tensor {
    return new Tensor(name, dataType, dims, { kind: 'lazy', byteLength: byteLengthOf(dataType, numel(dims)), produce });
  }

  /**
   * A lazy tensor made in pieces: writers stream the pieces (peak memory one piece, not the tensor); `bytes()` still
   * works and joins them.
   */
  static lazyChunks(
    name: string,
    dataType: number,
    dims: readonly number[],
    chunks: (scratch?: ScratchPool) => AsyncIterable<Uint8Array>,
  ): Tensor {
    const byteLength = byteLengthOf(dataType, numel(dims));
    const produce = async (): Promise<Uint8Array> => {
      const out = new Uint8Array(byteLength);
      let at = 0;
      for await (const c of chunks()) {
        if (at + c.byteLength > byteLength) {
          throw new OnnxError('ONNX_LAZY_SIZE', `lazy tensor produced more than the ${byteLength} bytes declared`, { where: `tensor ${name}` });
        }
        out.set(c, at);
        at += c.byteLength;
      }
      return at === byteLength ? out : out.subarray(0, at); // a short result is reported by bytes()
    };
    return new Tensor(name, dataType, dims, { kind: 'lazy', byteLength, produce, chunks });
  }
}

/**
 * Working memory lent to lazy-tensor producers for the length of one save and reused from tensor to tensor. Fresh
 * memory is what made saving slow: each new page costs a page fault (measured on the 2-core CI VM: ~3.3 s to allocate
 * and fill 1 GB in new 32 MiB buffers, 0.13 s to refill one reused buffer), and a save of converted weights otherwise
 * allocates its input, transpose band and cast buffers anew for every tensor. Lent bytes are not zeroed: the borrower
 * overwrites what it reads. Not for buffers that outlive the borrower (give them back in a `finally`).
 */
export class ScratchPool {
  private readonly free: ArrayBuffer[] = [];

  /** `bytes` bytes at offset 0 of a reused buffer when one is large enough, else of a new one. */
  take(bytes: number): Uint8Array {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const n = this.free[i].byteLength;
      if (n >= bytes && (best < 0 || n < this.free[best].byteLength)) best = i;
    }
    if (best >= 0) return new Uint8Array(this.free.splice(best, 1)[0], 0, bytes);
    // Nothing fits: let the free buffers go (a save goes smallest tensor first, so they would rarely fit again), so the
    // pool holds little more than its borrowers use at once.
    this.free.length = 0;
    return new Uint8Array(bytes);
  }

  /** Hands a buffer from take() back for the next borrower. */
  give(b: ArrayBufferView): void {
    this.free.push(b.buffer as ArrayBuffer);
  }
}

/** A byte view over a typed array's memory (no copy). */
export function viewBytes(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/**
 * The real path (symlinks resolved) of the data file of external tensor `what`, refused unless it is a regular file
 * inside the model's folder. A location with ".." or an absolute path is refused at decode; this catches what a string
 * cannot show: a data file, or a folder on its way, that is a symlink to elsewhere (a model folder from an untrusted
 * archive could otherwise make `quantize` copy any file the user can read into its output). Same rule as onnxruntime
 * 1.30: inside the model folder's real path, or inside the folder of the model file's real path — a Hugging Face cache
 * snapshot links both the .onnx and its data into blobs/.
 */
export async function externalDataRealPath(src: ExternalSource, what: string): Promise<string> {
  let real: string;
  try {
    real = await realpath(src.path);
  } catch (e) {
    throw missingError(src, what, e);
  }
  const roots = [await realpath(src.dir).catch(() => undefined)];
  if (src.modelFile) roots.push(await realpath(src.modelFile).then(dirname, () => undefined));
  if (!roots.some((r) => r !== undefined && r !== real && isWithin(real, r))) {
    throw new OnnxError(
      'ONNX_EXTERNAL_ESCAPE',
      `external data path escapes model directory: location "${src.location}" resolves to ${real}, outside ${roots[0] ?? src.dir}`,
      {
        file: src.path,
        where: `tensor ${what}`,
        fix: "a symlink leads out of the model's folder: put the data file itself in the model's folder (copy it rather than link it)",
      },
    );
  }
  // A FIFO or device would hang or never end; a folder cannot be read.
  const st = await stat(real).catch((e: unknown) => {
    throw missingError(src, what, e);
  });
  if (!st.isFile()) {
    throw new OnnxError('ONNX_EXTERNAL_NOT_A_FILE', `external data location "${src.location}" is not a regular file`, {
      file: src.path,
      where: `tensor ${what}`,
      fix: 'the model is malformed; re-export it with its .data file',
    });
  }
  return real;
}

function missingError(src: ExternalSource, what: string, cause: unknown): OnnxError {
  return new OnnxError('ONNX_EXTERNAL_MISSING', `external data file cannot be opened`, {
    file: src.path,
    where: `tensor ${what}`,
    fix: 'keep the .data file next to the .onnx file it belongs to',
    cause,
  });
}

/**
 * Opens the data file of external tensor `what` to read bytes offset..offset+length (default: the whole tensor). Every
 * read of external bytes goes through here: the file must stay inside the model's folder (externalDataRealPath) and
 * be long enough (checked before reading: a truncated file or a corrupt length must not cost a huge allocation). The
 * real path is what gets opened, so the checked file is the one read. The caller closes the handle.
 */
export async function openExternalRange(src: ExternalSource, what: string, offset = src.offset, length = src.length): Promise<FileHandle> {
  const real = await externalDataRealPath(src, what);
  let fh: FileHandle;
  try {
    fh = await open(real, 'r');
  } catch (e) {
    throw missingError(src, what, e);
  }
  const { size } = await fh.stat().catch(async (e: unknown) => {
    await fh.close();
    throw e;
  });
  if (offset + length > size) {
    await fh.close();
    throw new OnnxError('ONNX_EXTERNAL_TRUNCATED', `external data ends at byte ${size}, tensor needs bytes ${offset}..${offset + length}`, {
      file: src.path,
      where: `tensor ${what}`,
      fix: 'the .data file is truncated: rebuild or re-download it',
    });
  }
  return fh;
}

/** Reads bytes offset..offset+length (default: the whole tensor) of external tensor `what`, through openExternalRange. */
export async function readExternalRange(src: ExternalSource, what: string, offset = src.offset, length = src.length): Promise<Uint8Array> {
  const fh = await openExternalRange(src, what, offset, length);
  try {
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await fh.read(out, done, Math.min(length - done, 1 << 30), offset + done);
      if (bytesRead === 0) {
        throw new OnnxError(
          'ONNX_EXTERNAL_TRUNCATED',
          `external data ends at byte ${offset + done}, tensor needs bytes ${offset}..${offset + length}`,
          { file: src.path, where: `tensor ${what}`, fix: 'the .data file is truncated: rebuild or re-download it' },
        );
      }
      done += bytesRead;
    }
    return out;
  } finally {
    await fh.close();
  }
}

/** Converts raw tensor bytes of a floating type to float32. */
export function toFloat32(bytes: Uint8Array, dataType: number, name = '?'): Float32Array {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  switch (dataType) {
    case DataType.FLOAT:
      return new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
    case DataType.DOUBLE: {
      const src = bytes.byteOffset % 8 === 0 ? bytes : bytes.slice();
      return Float32Array.from(new Float64Array(src.buffer, src.byteOffset, src.byteLength / 8));
    }
    case DataType.FLOAT16:
      return float16BitsToFloat32(new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2));
    case DataType.BFLOAT16:
      return bfloat16BitsToFloat32(new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2));
    default:
      throw new OnnxError('ONNX_NOT_FLOAT', `tensor of type ${dataTypeName(dataType)} cannot be read as float32`, {
        where: `tensor ${name}`,
      });
  }
}

// fp16 → fp32 through a 65536-entry lookup table (Node 20 has no Float16Array).
let F16_TABLE: Float32Array | undefined;
/** The fp32 value of every fp16 bit pattern (index = bits), for converting loops that index elements themselves. */
export function float16Table(): Float32Array {
  return f16Table();
}
function f16Table(): Float32Array {
  if (F16_TABLE) return F16_TABLE;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0) t[h] = s * m * 2 ** -24;
    else if (e === 31) t[h] = m ? NaN : s * Infinity;
    else t[h] = s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return (F16_TABLE = t);
}

export function float16BitsToFloat32(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  const t = f16Table();
  for (let i = 0; i < src.length; i++) out[i] = t[src[i]];
  return out;
}

export function bfloat16BitsToFloat32(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  const u = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) u[i] = src[i] << 16;
  return out;
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);
/** 2^-1 × 2^-13 as float bits: adding it to a tiny float leaves the rounded fp16 subnormal in its low mantissa bits. */
const DENORM_MAGIC = (127 - 15 + (23 - 10) + 1) << 23;

/**
 * fp32 → fp16 bits, round to nearest even (as numpy / onnx do); NaN stays a quiet NaN. Branch-light (F. Giesen's
 * float_to_half_fast3_rtne): a weight conversion runs it billions of times. Checked bit for bit over all 2^32 inputs
 * against a plain field-by-field rounding.
 */
export function float32ToFloat16Bits(src: Float32Array, out = new Uint16Array(src.length)): Uint16Array {
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
  U32[0] = DENORM_MAGIC;
  const magic = F32[0];
  for (let i = 0; i < u.length; i++) {
    const x = u[i] & 0x7fffffff;
    const sign = (u[i] >>> 16) & 0x8000;
    let h: number;
    if (x >= 0x47800000) {
      // ≥ 65536 (or Inf/NaN): Inf, or a quiet NaN.
      h = x > 0x7f800000 ? 0x7e00 : 0x7c00;
    } else if (x < 0x38800000) {
      // Below fp16's smallest normal: the float adder does the subnormal rounding.
      U32[0] = x;
      F32[0] += magic;
      h = U32[0] - DENORM_MAGIC;
    } else {
      // Normal: rebias the exponent, round the 13 dropped bits half to even (a carry may overflow to Inf, as it should).
      h = (x - 0x38000000 + 0xfff + ((x >>> 13) & 1)) >>> 13;
    }
    out[i] = sign | h;
  }
  return out;
}

/** fp32 → bf16 bits, round to nearest even (NaN kept quiet). */
export function float32ToBfloat16Bits(src: Float32Array, out = new Uint16Array(src.length)): Uint16Array {
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) {
    const x = u[i];
    if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) {
      out[i] = (x >>> 16) | 0x40;
      continue;
    }
    out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return out;
}
