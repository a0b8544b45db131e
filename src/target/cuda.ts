// The CUDA target: fp16 activations, packed-QKV GroupQueryAttention, CUDA provider options as genai writes them.
import { DataType } from '../onnx/dtype.js';
import { supportsOpOn } from './ops.js';
import type { Target } from './types.js';

export const cudaTarget: Target = Object.freeze({
  id: 'cuda',
  describe: 'NVIDIA GPUs through the CUDA execution provider, fp16 activations',
  activationDtype: DataType.FLOAT16,
  graph: 'gqa-packed',
  genaiProviderOptions: [{ cuda: { enable_cuda_graph: '0', enable_skip_layer_norm_strict_mode: '1' } }],
  quant: { accuracyLevel: 0 },
  supportsOp: (domain: string, op: string) => supportsOpOn('cuda', domain, op),
} as const);
