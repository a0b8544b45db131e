// The CPU target: fp32, packed-QKV GroupQueryAttention with rotary inside, int4 with int8 activations.
import { DataType } from '../onnx/dtype.js';
import { supportsOpOn } from './ops.js';
import type { Target } from './types.js';

export const cpuTarget: Target = Object.freeze({
  id: 'cpu',
  describe: 'CPU (x64/arm64 desktops and servers), fp32 activations',
  activationDtype: DataType.FLOAT,
  graph: 'gqa-packed',
  genaiProviderOptions: [],
  quant: { accuracyLevel: 4 },
  supportsOp: (domain: string, op: string) => supportsOpOn('cpu', domain, op),
} as const);
