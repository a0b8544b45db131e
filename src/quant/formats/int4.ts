// int4: 4-bit blockwise codes, symmetric (zero point 8) or asymmetric, bit for bit as onnxruntime's default quantizer.
import { dequantizePacked, packCodes } from './block.js';
import type { Codec } from './codec.js';
import { quantizeUniform } from './uniform.js';

export const int4: Codec = Object.freeze<Codec>({
  name: 'int4',
  bits: 4,
  asymmetric: true,
  quantize: (w, o) => quantizeUniform(w, 4, o),
  pack: (p, o) => packCodes(p.codes, p.scales, p.zeroPoints, { ...o, K: p.K, N: p.N, bits: 4, scaleType: o.scaleType ?? 'float32' }),
  dequantize: dequantizePacked,
});
