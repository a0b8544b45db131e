// The shape every quantization format shares: quantize a float weight to MatMulNBits blocks, pack codes that an
// algorithm chose, dequantize back. One codec per file (int4.ts, int8.ts, ternary.ts), listed in index.ts.
import type { QuantScheme } from '../../vocabulary.js';
import type { PackedWeight, QuantBits, RowPadding, ScaleType, WeightMatrix } from './block.js';

export interface CodecOptions {
  /** Values per block along K: a power of two, 16..256. */
  blockSize: number;
  /** Store zero points (ignored by formats that have a fixed one, like ternary). */
  symmetric: boolean;
  scaleType?: ScaleType;
  padding?: RowPadding;
}

export interface PackInput {
  /** Codes [N, K], one per byte, already in [0, 2^bits). */
  codes: Uint8Array;
  /** [N, k_blocks] */
  scales: Float32Array;
  /** [N, k_blocks] codes, or floats; undefined = the default 2^(bits−1). */
  zeroPoints?: Uint8Array | Float32Array;
  K: number;
  N: number;
}

export interface Codec {
  readonly name: QuantScheme;
  readonly bits: QuantBits;
  /** Whether stored zero points are meaningful (false: the zero point is fixed by the format). */
  readonly asymmetric: boolean;
  /** Round-to-nearest quantization of a whole weight. */
  quantize(w: WeightMatrix, o: CodecOptions): PackedWeight;
  /** Packs codes an algorithm chose (HQQ, GPTQ) into the MatMulNBits layout. */
  pack(p: PackInput, o: Omit<CodecOptions, 'symmetric'>): PackedWeight;
  /** Back to float32 [N, K] (K contiguous). */
  dequantize(p: PackedWeight): Float32Array;
}
