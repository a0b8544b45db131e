// int8: 8-bit blockwise codes, symmetric (zero point 128) or asymmetric, bit for bit as onnxruntime's
// quantize_matmul_8bits (the same MLAS BlockwiseQuantizer as int4, one code per byte).
import { dequantizePacked, packCodes } from './block.js';
import type { Codec } from './codec.js';
import { quantizeUniform } from './uniform.js';

export const int8: Codec = Object.freeze<Codec>({
  name: 'int8',
  bits: 8,
  asymmetric: true,
  quantize: (w, o) => quantizeUniform(w, 8, o),
  pack: (p, o) => packCodes(p.codes, p.scales, p.zeroPoints, { ...o, K: p.K, N: p.N, bits: 8, scaleType: o.scaleType ?? 'float32' }),
  dequantize: dequantizePacked,
});
