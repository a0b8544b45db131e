// TensorProto <-> Tensor: typed value fields normalized to raw little-endian bytes, external data references parsed.
import { isAbsolute, resolve } from 'node:path';
import { OnnxError } from '../util/errors.js';
import { DataType, bitsOf, byteLengthOf, dataTypeName, isKnownDataType, numel } from './dtype.js';
import { Tensor, type StringPair, type TensorSource } from './tensor.js';

// ---------------------------------------------------------------------------------------------------------------
// Shapes of the protobufjs messages (field names as in onnx.proto, keepCase)

/** An int64 as protobufjs 7 hands it over: a Long (low/high 32-bit halves) when `long` is installed, else a number. */
export interface LongBits {
  low: number;
  high: number;
  unsigned?: boolean;
}
export type PInt64 = number | LongBits;

export interface PEntry {
  key: string;
  value: string;
}

/** A decoded TensorProto. Scalar fields are read through hasOwnProperty when presence matters. */
export interface PTensor {
  dims: PInt64[];
  data_type: number;
  float_data: number[];
  int32_data: number[];
  string_data: Uint8Array[];
  int64_data: PInt64[];
  name: string;
  doc_string: string;
  raw_data: Uint8Array;
  external_data: PEntry[];
  data_location: number;
  double_data: number[];
  uint64_data: PInt64[];
  metadata_props: PEntry[];
}

/** What the encoder hands to protobufjs for a TensorProto (plain object; absent keys are not written). */
export type PTensorOut = Partial<PTensor>;

// ---------------------------------------------------------------------------------------------------------------
// int64

const TWO32 = 4294967296;

/** int64 → number when exactly representable, bigint otherwise (INT64_MAX in Slice ends must survive). */
export function int64FromProto(v: PInt64): number | bigint {
  if (typeof v === 'number') return v;
  const hi = v.unsigned ? v.high >>> 0 : v.high | 0;
  const lo = v.low >>> 0;
  // |value| < 2^53 exactly when the high word is within ±2^21.
  if (hi >= -0x200000 && hi < 0x200000) return hi * TWO32 + lo;
  const big = (BigInt(hi) << 32n) | BigInt(lo);
  return v.unsigned ? BigInt.asUintN(64, big) : BigInt.asIntN(64, big);
}

/** int64 that the IR keeps as a plain number (dims, versions): an OnnxError when it does not fit exactly. */
export function safeNumberFromProto(v: PInt64, where: string): number {
  const x = int64FromProto(v);
  if (typeof x === 'bigint') {
    throw new OnnxError('ONNX_INT64_RANGE', `value ${x} does not fit in a JavaScript number`, { where });
  }
  return x;
}

/** number | bigint → what protobufjs writes as int64 (numbers directly, bigints as 32-bit halves). */
export function int64ToProto(v: number | bigint): PInt64 {
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new OnnxError('ONNX_INT64_VALUE', `int64 value ${v} is not an integer`);
    return v;
  }
  const x = BigInt.asIntN(64, v);
  if (x !== v) throw new OnnxError('ONNX_INT64_VALUE', `value ${v} does not fit in int64`);
  return { low: Number(BigInt.asIntN(32, x)), high: Number(BigInt.asIntN(32, x >> 32n)), unsigned: false };
}

/** Writes one int64/uint64 as two little-endian 32-bit words. */
function putInt64(out: Int32Array, i: number, v: PInt64): void {
  if (typeof v === 'number') {
    const hi = Math.floor(v / TWO32);
    out[2 * i] = v - hi * TWO32;
    out[2 * i + 1] = hi;
  } else {
    out[2 * i] = v.low;
    out[2 * i + 1] = v.high;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Decode

export interface TensorDecodeContext {
  /** Folder external data locations are resolved against. */
  baseDir: string;
  /** Where in the model this tensor sits, for error messages (e.g. `graph main initializer w`). */
  where: string;
  /** The model file, for error messages. */
  file?: string;
}

export const DATA_LOCATION_EXTERNAL = 1;

/** A zero-copy Uint8Array view of a Buffer slice: Buffer.slice() shares memory, which surprises later copies. */
export function plainBytes(b: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(b) === Uint8Array.prototype ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

const has = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

export function tensorFromProto(p: PTensor, ctx: TensorDecodeContext): Tensor {
  const dims = p.dims.map((d) => safeNumberFromProto(d, `${ctx.where}: dims`));
  const dataType = p.data_type;
  const source = p.data_location === DATA_LOCATION_EXTERNAL ? externalSource(p, dims, ctx) : inlineSource(p, ctx);
  const t = new Tensor(p.name, dataType, dims, source);
  checkByteLength(t, ctx);
  t.docString = p.doc_string;
  t.metadataProps = pairsFromProto(p.metadata_props);
  return t;
}

/**
 * Refuses a tensor whose bytes are not what its type and shape need (for types of fixed width): readers would run off
 * its end or misread it, and `quantize` would write it into an invalid model (onnxruntime refuses such tensors too).
 */
function checkByteLength(t: Tensor, ctx: TensorDecodeContext): void {
  const s = t.source;
  if (bitsOf(t.dataType) === 0 || s.kind === 'strings') return;
  const expected = t.expectedByteLength;
  if (t.byteLength === expected) return;
  const what = s.kind === 'external' ? `external data length is ${s.length} bytes` : `holds ${t.byteLength} bytes of data`;
  throw new OnnxError('ONNX_TENSOR_SIZE', `tensor ${t.name || '(unnamed)'}: ${what}, but ${dataTypeName(t.dataType)}[${t.dims.join(', ')}] needs ${expected}`, {
    file: ctx.file,
    where: ctx.where,
    fix: 'the model is malformed; re-export it (with its .data file, if it has one)',
  });
}

export function pairsFromProto(entries: readonly PEntry[]): StringPair[] {
  return entries.map((e) => [e.key, e.value]);
}

export function pairsToProto(pairs: readonly StringPair[]): PEntry[] {
  return pairs.map(([key, value]) => ({ key, value }));
}

/** Names of the typed value fields, to tell the user which one a tensor wrongly uses. */
const TYPED_FIELDS = ['float_data', 'int32_data', 'string_data', 'int64_data', 'double_data', 'uint64_data'] as const;
type TypedField = (typeof TYPED_FIELDS)[number];

/** Which typed field holds values of each type (ONNX TensorProto comments), and how wide each stored item is. */
function typedFieldOf(dataType: number): { field: TypedField; itemBytes: number } | undefined {
  switch (dataType) {
    case DataType.FLOAT:
    case DataType.COMPLEX64:
      return { field: 'float_data', itemBytes: 4 };
    case DataType.DOUBLE:
    case DataType.COMPLEX128:
      return { field: 'double_data', itemBytes: 8 };
    case DataType.INT64:
      return { field: 'int64_data', itemBytes: 8 };
    case DataType.UINT32:
      return { field: 'uint64_data', itemBytes: 4 };
    case DataType.UINT64:
      return { field: 'uint64_data', itemBytes: 8 };
    case DataType.INT32:
      return { field: 'int32_data', itemBytes: 4 };
    // 16-bit types hold one value (fp16/bf16 as their bit pattern) per int32 item.
    case DataType.INT16:
    case DataType.UINT16:
    case DataType.FLOAT16:
    case DataType.BFLOAT16:
      return { field: 'int32_data', itemBytes: 2 };
    // 8-bit types hold one value per item; 4-bit types two packed values (low nibble first) and 2-bit types four
    // (bits 0-1 first) per item, i.e. one byte of the packed raw layout per int32 item.
    case DataType.INT8:
    case DataType.UINT8:
    case DataType.BOOL:
    case DataType.FLOAT8E4M3FN:
    case DataType.FLOAT8E4M3FNUZ:
    case DataType.FLOAT8E5M2:
    case DataType.FLOAT8E5M2FNUZ:
    case DataType.FLOAT8E8M0:
    case DataType.INT4:
    case DataType.UINT4:
    case DataType.FLOAT4E2M1:
    case DataType.INT2:
    case DataType.UINT2:
      return { field: 'int32_data', itemBytes: 1 };
    case DataType.STRING:
      return { field: 'string_data', itemBytes: 0 };
    default:
      return undefined;
  }
}

function inlineSource(p: PTensor, ctx: TensorDecodeContext): TensorSource {
  const dataType = p.data_type;
  const typed = typedFieldOf(dataType);
  const used = TYPED_FIELDS.filter((f) => p[f].length > 0);
  if (p.external_data.length > 0) {
    throw tensorDataError(ctx, 'has external_data entries but data_location is not EXTERNAL');
  }
  if (dataType === DataType.STRING) {
    if (has(p, 'raw_data')) throw tensorDataError(ctx, 'is a STRING tensor with raw_data (strings go in string_data)');
    const stray = used.filter((f) => f !== 'string_data');
    if (stray.length) throw tensorDataError(ctx, `is a STRING tensor with values in ${stray.join(', ')}`);
    return { kind: 'strings', values: p.string_data.map(plainBytes) };
  }
  if (has(p, 'raw_data')) {
    if (used.length) throw tensorDataError(ctx, `has both raw_data and ${used.join(', ')}`);
    return { kind: 'inline', bytes: plainBytes(p.raw_data) };
  }
  if (used.length === 0) return { kind: 'inline', bytes: new Uint8Array(0) };
  if (!typed) {
    throw tensorDataError(ctx, `of type ${dataTypeName(dataType)} stores values in ${used.join(', ')}; this codec cannot convert them`);
  }
  const stray = used.filter((f) => f !== typed.field);
  if (stray.length) {
    throw tensorDataError(ctx, `of type ${dataTypeName(dataType)} stores values in ${stray.join(', ')} (expected ${typed.field})`);
  }
  return { kind: 'inline', bytes: typedToRaw(p, typed.field, typed.itemBytes) };
}

function tensorDataError(ctx: TensorDecodeContext, what: string): OnnxError {
  return new OnnxError('ONNX_TENSOR_DATA', `tensor ${what}`, {
    file: ctx.file,
    where: ctx.where,
    fix: 'the model is malformed; re-export it with a current ONNX exporter',
  });
}

/** Converts a typed value field to the raw little-endian layout (one new buffer; typed fields are never huge). */
function typedToRaw(p: PTensor, field: TypedField, itemBytes: number): Uint8Array {
  switch (field) {
    case 'float_data':
      return bytesOf(Float32Array.from(p.float_data));
    case 'double_data':
      return bytesOf(Float64Array.from(p.double_data));
    case 'int64_data': {
      const out = new Int32Array(p.int64_data.length * 2);
      p.int64_data.forEach((v, i) => putInt64(out, i, v));
      return bytesOf(out);
    }
    case 'uint64_data': {
      if (itemBytes === 4) {
        // UINT32 values: the low word of each uint64 item.
        return bytesOf(Uint32Array.from(p.uint64_data, (v) => (typeof v === 'number' ? v >>> 0 : v.low >>> 0)));
      }
      const out = new Int32Array(p.uint64_data.length * 2);
      p.uint64_data.forEach((v, i) => putInt64(out, i, v));
      return bytesOf(out);
    }
    case 'int32_data': {
      const src = p.int32_data;
      if (itemBytes === 4) return bytesOf(Int32Array.from(src));
      if (itemBytes === 2) return bytesOf(Uint16Array.from(src, (v) => v & 0xffff));
      return Uint8Array.from(src, (v) => v & 0xff);
    }
    case 'string_data':
      throw new Error('unreachable: string tensors are handled by the caller');
  }
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Parses external_data entries; the data itself is not touched (read later by offset). */
function externalSource(p: PTensor, dims: number[], ctx: TensorDecodeContext): TensorSource {
  const fail = (what: string, fix = 'the model is malformed; re-export it with its .data file') =>
    new OnnxError('ONNX_EXTERNAL_INFO', `external data ${what}`, { file: ctx.file, where: ctx.where, fix });
  if (has(p, 'raw_data') || TYPED_FIELDS.some((f) => p[f].length > 0)) {
    throw fail('is declared, but the tensor also holds values inline');
  }
  if (p.data_type === DataType.STRING) throw fail('is not allowed for STRING tensors');
  let location: string | undefined;
  let offset = 0;
  let length: number | undefined;
  const extra: StringPair[] = [];
  const parseCount = (key: string, v: string): number => {
    const n = /^\d{1,16}$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n)) throw fail(`${key} "${v}" is not a byte count`);
    return n;
  };
  for (const { key, value } of p.external_data) {
    if (key === 'location') location = value;
    else if (key === 'offset') offset = parseCount(key, value);
    else if (key === 'length') length = parseCount(key, value);
    else extra.push([key, value]);
  }
  if (!location) throw fail('has no location');
  // Same rule as onnx's checker: the data must sit in the model's folder or below it.
  const parts = location.split(/[\\/]/);
  if (isAbsolute(location) || /^[A-Za-z]:/.test(location) || parts.includes('..')) {
    throw fail(`location "${location}" points outside the model's folder`, 'external data files must sit next to the model (relative paths without "..")');
  }
  if (length === undefined) {
    if (!isKnownDataType(p.data_type)) throw fail(`has no length and type ${dataTypeName(p.data_type)} has no known size`);
    length = byteLengthOf(p.data_type, numel(dims));
  }
  const src: TensorSource = { kind: 'external', path: resolve(ctx.baseDir, location), location, dir: resolve(ctx.baseDir), offset, length };
  if (ctx.file) src.modelFile = resolve(ctx.file);
  if (extra.length) src.extra = extra;
  return src;
}

// ---------------------------------------------------------------------------------------------------------------
// Encode

export function tensorToProto(t: Tensor, source: TensorSource = t.source): PTensorOut {
  const out: PTensorOut = { dims: t.dims.map(int64ToProto), data_type: t.dataType };
  if (t.name) out.name = t.name;
  if (t.docString) out.doc_string = t.docString;
  if (t.metadataProps.length) out.metadata_props = pairsToProto(t.metadataProps);
  switch (source.kind) {
    case 'inline':
      if (t.dataType === DataType.STRING) {
        throw new OnnxError('ONNX_STRING_TENSOR', 'a STRING tensor must hold its values as strings, not raw bytes', {
          where: `tensor ${t.name}`,
        });
      }
      out.raw_data = source.bytes;
      break;
    case 'strings':
      if (t.dataType !== DataType.STRING) {
        throw new OnnxError('ONNX_STRING_TENSOR', `a ${dataTypeName(t.dataType)} tensor cannot hold strings`, {
          where: `tensor ${t.name}`,
        });
      }
      out.string_data = source.values;
      break;
    case 'external':
      out.data_location = DATA_LOCATION_EXTERNAL;
      out.external_data = [
        { key: 'location', value: source.location },
        { key: 'offset', value: String(source.offset) },
        { key: 'length', value: String(source.length) },
        ...pairsToProto(source.extra ?? []),
      ];
      break;
    case 'lazy':
      throw new OnnxError('ONNX_LAZY_TENSOR', 'a lazy tensor has no bytes yet and cannot be encoded synchronously', {
        where: `tensor ${t.name}`,
        fix: 'write the model with saveModel() (it streams lazy tensors), or materialize the tensor first',
      });
  }
  return out;
}
