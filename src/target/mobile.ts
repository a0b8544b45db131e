// The mobile target: the CPU graph (fp32, packed GQA) for ORT mobile builds; int4 needs int8 activations to be fast.
import { DataType } from '../onnx/dtype.js';
import { supportsOpOn } from './ops.js';
import type { Target } from './types.js';

export const mobileTarget: Target = Object.freeze({
  id: 'mobile',
  describe: 'Android/iOS CPU, fp32 activations',
  activationDtype: DataType.FLOAT,
  graph: 'gqa-packed',
  genaiProviderOptions: [],
  quant: { accuracyLevel: 4 },
  supportsOp: (domain: string, op: string) => supportsOpOn('mobile', domain, op),
} as const);
