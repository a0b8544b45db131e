// ONNX tensor element types (TensorProto.DataType, ONNX 1.20 numbering) with their names and bit widths.

export const DataType = {
  UNDEFINED: 0,
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  COMPLEX64: 14,
  COMPLEX128: 15,
  BFLOAT16: 16,
  FLOAT8E4M3FN: 17,
  FLOAT8E4M3FNUZ: 18,
  FLOAT8E5M2: 19,
  FLOAT8E5M2FNUZ: 20,
  UINT4: 21,
  INT4: 22,
  FLOAT4E2M1: 23,
  FLOAT8E8M0: 24,
  UINT2: 25,
  INT2: 26,
} as const;

export type DataType = (typeof DataType)[keyof typeof DataType];

const NAMES = new Map<number, string>(Object.entries(DataType).map(([k, v]) => [v, k]));

/** Bits per element; 0 for STRING and UNDEFINED (no fixed width). */
const BITS: Record<number, number> = {
  [DataType.FLOAT]: 32,
  [DataType.UINT8]: 8,
  [DataType.INT8]: 8,
  [DataType.UINT16]: 16,
  [DataType.INT16]: 16,
  [DataType.INT32]: 32,
  [DataType.INT64]: 64,
  [DataType.BOOL]: 8,
  [DataType.FLOAT16]: 16,
  [DataType.DOUBLE]: 64,
  [DataType.UINT32]: 32,
  [DataType.UINT64]: 64,
  [DataType.COMPLEX64]: 64,
  [DataType.COMPLEX128]: 128,
  [DataType.BFLOAT16]: 16,
  [DataType.FLOAT8E4M3FN]: 8,
  [DataType.FLOAT8E4M3FNUZ]: 8,
  [DataType.FLOAT8E5M2]: 8,
  [DataType.FLOAT8E5M2FNUZ]: 8,
  [DataType.UINT4]: 4,
  [DataType.INT4]: 4,
  [DataType.FLOAT4E2M1]: 4,
  [DataType.FLOAT8E8M0]: 8,
  [DataType.UINT2]: 2,
  [DataType.INT2]: 2,
};

export function dataTypeName(t: number): string {
  return NAMES.get(t) ?? `UNKNOWN(${t})`;
}

export function isKnownDataType(t: number): t is DataType {
  return NAMES.has(t);
}

/** Bits per element, 0 when the type has no fixed width (STRING, UNDEFINED). */
export function bitsOf(t: number): number {
  return BITS[t] ?? 0;
}

/** Bytes needed to hold `count` elements of type `t` packed (sub-byte types round up to whole bytes). */
export function byteLengthOf(t: number, count: number): number {
  const bits = bitsOf(t);
  return Math.ceil((bits * count) / 8);
}

/** Number of elements of a shape (1 for a scalar). */
export function numel(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}
