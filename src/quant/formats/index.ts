// Every quantization format, by scheme name: one codec for each of the vocabulary's QUANT_SCHEMES (the Record type
// makes a scheme without a codec a type error).
import type { QuantScheme } from '../../vocabulary.js';
import type { Codec } from './codec.js';
import { int4 } from './int4.js';
import { int8 } from './int8.js';
import { ternary } from './ternary.js';

export const codecs: Readonly<Record<QuantScheme, Codec>> = Object.freeze({ int4, int8, ternary });

export function codecFor(scheme: QuantScheme): Codec {
  return codecs[scheme];
}
