// Safetensors reader: validates the header the way the reference Rust implementation does, then reads tensors by
// file offset (never the whole file), through one file handle opened on first read and closed by close().
import { open, type FileHandle } from 'node:fs/promises';
import { DataType } from '../onnx/dtype.js';
import { toFloat32 } from '../onnx/tensor.js';
import { CheckpointError } from '../util/errors.js';

export type SafetensorsDtype =
  | 'F64'
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'I64'
  | 'I32'
  | 'I16'
  | 'I8'
  | 'U8'
  | 'BOOL'
  | 'U16'
  | 'U32'
  | 'U64'
  | 'F8_E4M3'
  | 'F8_E5M2';

/** Bytes per element of each dtype (the reference implementation's `Dtype::size`). */
export const SAFETENSORS_DTYPE_SIZE: Readonly<Record<SafetensorsDtype, number>> = Object.freeze({
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
  U16: 2,
  U32: 4,
  U64: 8,
  F8_E4M3: 1,
  F8_E5M2: 1,
});

/** The ONNX element type holding the same bytes (safetensors F8_E4M3 is the "fn" variant: finite, NaN only). */
export const SAFETENSORS_TO_ONNX: Readonly<Record<SafetensorsDtype, number>> = Object.freeze({
  F64: DataType.DOUBLE,
  F32: DataType.FLOAT,
  F16: DataType.FLOAT16,
  BF16: DataType.BFLOAT16,
  I64: DataType.INT64,
  I32: DataType.INT32,
  I16: DataType.INT16,
  I8: DataType.INT8,
  U8: DataType.UINT8,
  BOOL: DataType.BOOL,
  U16: DataType.UINT16,
  U32: DataType.UINT32,
  U64: DataType.UINT64,
  F8_E4M3: DataType.FLOAT8E4M3FN,
  F8_E5M2: DataType.FLOAT8E5M2,
});

export function isSafetensorsDtype(s: unknown): s is SafetensorsDtype {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(SAFETENSORS_DTYPE_SIZE, s);
}

export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Absolute file offsets: the tensor's bytes are [begin, end) of the file. */
  begin: number;
  end: number;
}

/** Same limit as the reference implementation: a larger header is refused before it is read. */
export const MAX_HEADER_BYTES = 100_000_000;

/** fs reads are capped below 2 GiB per call; big tensors are read in pieces of this size. */
const READ_CHUNK = 1 << 30;

export interface ParsedHeader {
  entries: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
}

/**
 * Reads the 8-byte little-endian header length and checks it against the limit and the file size.
 * Returns the header length n; the header is bytes [8, 8 + n).
 */
export function checkHeaderLength(prefix: Uint8Array, fileSize: number, file: string): number {
  if (fileSize < 8 || prefix.byteLength < 8) {
    throw new CheckpointError('SAFETENSORS_TRUNCATED', `file is ${fileSize} bytes, too short for the 8-byte header length`, {
      file,
      fix: 'the file is truncated or not a safetensors file: download or write it again',
    });
  }
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new CheckpointError('SAFETENSORS_HEADER_TOO_LARGE', `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`, {
      file,
      fix: 'this is not a valid safetensors file (or its first 8 bytes are corrupt): download or write it again',
    });
  }
  const len = Number(n);
  if (8 + len > fileSize) {
    throw new CheckpointError(
      'SAFETENSORS_HEADER_LENGTH',
      `header length ${len} runs past the end of the ${fileSize}-byte file`,
      { file, fix: 'the file is truncated: download or write it again' },
    );
  }
  return len;
}

/**
 * Parses and validates a header (the n bytes after the length) of a file of `fileSize` bytes. Checks, like the
 * reference implementation: UTF-8 JSON object, `__metadata__` string→string, known dtypes, non-negative integer
 * shapes, byte sizes that match shape × dtype, and offsets that tile the data region exactly (sorted by offset, each
 * tensor starts where the previous ended, the last ends at the end of the file).
 */
export function parseSafetensorsHeader(header: Uint8Array, fileSize: number, file: string): ParsedHeader {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(header);
  } catch {
    throw new CheckpointError('SAFETENSORS_HEADER_UTF8', 'header is not valid UTF-8', {
      file,
      fix: 'the file is corrupt: download or write it again',
    });
  }
  if (!text.startsWith('{')) {
    throw new CheckpointError('SAFETENSORS_HEADER_JSON', 'header does not start with "{"', {
      file,
      fix: 'the file is corrupt or not a safetensors file: download or write it again',
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError('SAFETENSORS_HEADER_JSON', `header is not valid JSON (${(e as Error).message})`, {
      file,
      fix: 'the file is corrupt: download or write it again',
    });
  }
  if (!isPlainObject(json)) {
    throw new CheckpointError('SAFETENSORS_HEADER_JSON', 'header is not a JSON object', {
      file,
      fix: 'the file is corrupt or not a safetensors file: download or write it again',
    });
  }
  const dataStart = 8 + header.byteLength;
  const metadata: Record<string, string> = {};
  const list: SafetensorsEntry[] = [];
  for (const [name, value] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isPlainObject(value) || Object.values(value).some((v) => typeof v !== 'string')) {
        throw new CheckpointError('SAFETENSORS_METADATA', '__metadata__ must be an object of string values', {
          file,
          fix: 'the file was written by a non-conforming tool: re-save it with the safetensors library',
        });
      }
      Object.assign(metadata, value);
      continue;
    }
    list.push(parseEntry(name, value, dataStart, file));
  }
  // Order by position like the reference implementation, then require an exact tiling of the data region.
  list.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = dataStart;
  for (const e of list) {
    if (e.begin !== at) {
      const what = e.begin < at ? 'overlaps the previous tensor' : `leaves a gap of ${e.begin - at} bytes before it`;
      throw new CheckpointError(
        'SAFETENSORS_OFFSETS',
        `data_offsets [${e.begin - dataStart}, ${e.end - dataStart}] ${what} (expected it to start at ${at - dataStart})`,
        { file, where: `tensor ${e.name}`, fix: 'the file is corrupt: download or write it again' },
      );
    }
    at = e.end;
  }
  if (at !== fileSize) {
    const fix =
      at > fileSize ? 'the file is truncated: download or write it again' : 'the file has trailing bytes: download or write it again';
    throw new CheckpointError(
      'SAFETENSORS_INCOMPLETE',
      `tensors cover ${at - dataStart} data bytes but the file holds ${fileSize - dataStart}`,
      { file, fix },
    );
  }
  return { entries: new Map(list.map((e) => [e.name, e])), metadata };
}

function parseEntry(name: string, value: unknown, dataStart: number, file: string): SafetensorsEntry {
  const where = `tensor ${name}`;
  const bad = (code: string, message: string): CheckpointError =>
    new CheckpointError(code, message, { file, where, fix: 'the file is corrupt: download or write it again' });
  if (!isPlainObject(value)) throw bad('SAFETENSORS_ENTRY', 'header entry is not an object with dtype, shape and data_offsets');
  const { dtype, shape, data_offsets: offsets } = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (!isSafetensorsDtype(dtype)) {
    throw new CheckpointError('SAFETENSORS_DTYPE', `unknown dtype ${JSON.stringify(dtype)}`, {
      file,
      where,
      fix: `supported dtypes: ${Object.keys(SAFETENSORS_DTYPE_SIZE).join(', ')}`,
    });
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw bad('SAFETENSORS_SHAPE', `shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offsets[1] < offsets[0]
  ) {
    throw bad('SAFETENSORS_OFFSETS', `data_offsets ${JSON.stringify(offsets)} is not a pair [begin, end] with begin ≤ end`);
  }
  let bytes = SAFETENSORS_DTYPE_SIZE[dtype];
  for (const d of shape as number[]) bytes *= d;
  if (!Number.isSafeInteger(bytes)) throw bad('SAFETENSORS_SHAPE', `shape ${JSON.stringify(shape)} is too large`);
  const [b, e] = offsets as [number, number];
  if (e - b !== bytes) {
    throw bad(
      'SAFETENSORS_SIZE_MISMATCH',
      `data_offsets [${b}, ${e}] span ${e - b} bytes but ${dtype} ${JSON.stringify(shape)} needs ${bytes}`,
    );
  }
  return { name, dtype, shape: [...(shape as number[])], begin: dataStart + b, end: dataStart + e };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** An opened safetensors file: header validated, tensors read on demand by offset. */
export class SafetensorsFile {
  readonly path: string;
  readonly entries: Map<string, SafetensorsEntry>;
  readonly metadata: Record<string, string>;
  /** File size when the header was validated; a later read fails clearly if the file changed size meanwhile. */
  readonly size: number;
  private handle?: Promise<FileHandle>;

  private constructor(path: string, size: number, parsed: ParsedHeader) {
    this.path = path;
    this.size = size;
    this.entries = parsed.entries;
    this.metadata = parsed.metadata;
  }

  /** Reads and validates the header; tensor data is not touched and no handle stays open. */
  static async open(path: string): Promise<SafetensorsFile> {
    const fh = await openFile(path);
    try {
      const { size } = await fh.stat();
      const prefix = new Uint8Array(Math.min(8, size));
      await readFully(fh, prefix, 0, path);
      const n = checkHeaderLength(prefix, size, path);
      const header = new Uint8Array(n);
      await readFully(fh, header, 8, path);
      return new SafetensorsFile(path, size, parseSafetensorsHeader(header, size, path));
    } finally {
      await fh.close();
    }
  }

  /** The entry of `name`, or a CheckpointError naming the file. */
  entry(name: string): SafetensorsEntry {
    const e = this.entries.get(name);
    if (!e) {
      throw new CheckpointError('SAFETENSORS_NOT_FOUND', `no tensor ${name} in this file`, {
        file: this.path,
        where: `tensor ${name}`,
        fix: 'check the tensor name (and, for a sharded checkpoint, model.safetensors.index.json)',
      });
    }
    return e;
  }

  /** Exactly the tensor's bytes (little-endian, row-major), read by offset. */
  async readRaw(name: string): Promise<Uint8Array> {
    const e = this.entry(name);
    return this.readAt(e.begin, e.end - e.begin, name);
  }

  /** `length` bytes of the tensor starting `start` bytes into it (for streaming row chunks of big tensors). */
  async readRange(name: string, start: number, length: number): Promise<Uint8Array> {
    const at = this.rangeStart(name, start, length); // checked before allocating
    return this.readAt(at, length, name);
  }

  /** Fills `into` with the tensor's bytes from `start` on (a caller reusing its buffers spares fresh pages). */
  async readRangeInto(name: string, start: number, into: Uint8Array): Promise<void> {
    const at = this.rangeStart(name, start, into.byteLength);
    await readFully(await this.handleFor(), into, at, this.path, name);
  }

  /** File offset of byte `start` of the tensor, once [start, start + length) is known to lie inside it. */
  private rangeStart(name: string, start: number, length: number): number {
    const e = this.entry(name);
    const size = e.end - e.begin;
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(length) || start < 0 || length < 0 || start + length > size) {
      throw new CheckpointError('SAFETENSORS_RANGE', `byte range [${start}, ${start + length}) is outside the ${size}-byte tensor`, {
        file: this.path,
        where: `tensor ${name}`,
        fix: 'this is a bug in the caller: ask for a range inside the tensor',
      });
    }
    return e.begin + start;
  }

  /** The tensor as float32 (F32, F16, BF16 and F64 convert; other dtypes are an error). */
  async readFloat32(name: string): Promise<Float32Array> {
    const e = this.entry(name);
    if (e.dtype !== 'F32' && e.dtype !== 'F16' && e.dtype !== 'BF16' && e.dtype !== 'F64') {
      throw new CheckpointError('SAFETENSORS_NOT_FLOAT', `tensor is ${e.dtype}, not a float type that converts to float32`, {
        file: this.path,
        where: `tensor ${name}`,
        fix: 'read it with readRaw() and interpret the bytes as its dtype',
      });
    }
    return toFloat32(await this.readRaw(name), SAFETENSORS_TO_ONNX[e.dtype], name);
  }

  /** Closes the file handle if a read opened one. Reads after close() reopen it. */
  async close(): Promise<void> {
    const h = this.handle;
    this.handle = undefined;
    if (h) await (await h.catch(() => undefined))?.close().catch(() => undefined);
  }

  private handleFor(): Promise<FileHandle> {
    if (!this.handle) {
      const p = (async () => {
        const fh = await openFile(this.path);
        const { size } = await fh.stat().catch(async (e: unknown) => {
          await fh.close();
          throw e;
        });
        if (size !== this.size) {
          await fh.close();
          throw new CheckpointError('SAFETENSORS_CHANGED', `file is now ${size} bytes, it was ${this.size} when its header was read`, {
            file: this.path,
            fix: 'the file changed while in use: do not modify checkpoints during a build, then run again',
          });
        }
        return fh;
      })();
      // A failed open is not cached, so a later read can retry.
      p.catch(() => {
        if (this.handle === p) this.handle = undefined;
      });
      this.handle = p;
    }
    return this.handle;
  }

  private async readAt(position: number, length: number, name: string): Promise<Uint8Array> {
    const fh = await this.handleFor();
    const out = new Uint8Array(length);
    await readFully(fh, out, position, this.path, name);
    return out;
  }
}

async function openFile(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CheckpointError('SAFETENSORS_OPEN', `cannot open safetensors file (${code ?? (e as Error).message})`, {
      file: path,
      fix: code === 'ENOENT' ? 'the file is missing: download the checkpoint again' : 'check the file permissions',
      cause: e,
    });
  }
}

/** Fills `out` from `position`, in chunks below the 2 GiB per-call limit; a short file is a CheckpointError. */
async function readFully(fh: FileHandle, out: Uint8Array, position: number, file: string, tensor?: string): Promise<void> {
  let done = 0;
  while (done < out.byteLength) {
    let bytesRead: number;
    try {
      ({ bytesRead } = await fh.read(out, done, Math.min(out.byteLength - done, READ_CHUNK), position + done));
    } catch (e) {
      throw new CheckpointError('SAFETENSORS_READ', `read failed at byte ${position + done} (${(e as Error).message})`, {
        file,
        where: tensor === undefined ? undefined : `tensor ${tensor}`,
        fix: 'check the disk and the file (an I/O error, or the file was removed while in use)',
        cause: e,
      });
    }
    if (bytesRead === 0) {
      throw new CheckpointError('SAFETENSORS_TRUNCATED', `file ends at byte ${position + done}, needed ${position + out.byteLength}`, {
        file,
        where: tensor === undefined ? undefined : `tensor ${tensor}`,
        fix: 'the file is truncated: download or write it again',
      });
    }
    done += bytesRead;
  }
}
