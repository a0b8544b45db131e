// Every quantization format, by scheme name: the one place that lists them.
import type { Codec, SchemeName } from './codec.js';
import { int4 } from './int4.js';
import { int8 } from './int8.js';
import { ternary } from './ternary.js';

export const codecs: Readonly<Record<SchemeName, Codec>> = Object.freeze({ int4, int8, ternary });

export const schemeNames = Object.keys(codecs) as SchemeName[];

export function codecFor(scheme: SchemeName): Codec {
  return codecs[scheme];
}
