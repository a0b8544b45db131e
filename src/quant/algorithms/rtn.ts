// Round-to-nearest: each format's own quantizer (onnxruntime's rounding for int4/int8, absmean for ternary).
import type { PackedWeight, WeightMatrix } from '../formats/block.js';
import type { QuantScheme } from '../../vocabulary.js';
import type { CodecOptions } from '../formats/codec.js';
import { codecFor } from '../formats/index.js';
import type { TernaryOptions } from '../formats/ternary.js';

export function rtnQuantize(w: WeightMatrix, scheme: QuantScheme, o: CodecOptions & Pick<TernaryOptions, 'scope'>): PackedWeight {
  return codecFor(scheme).quantize(w, o);
}
