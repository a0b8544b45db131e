// The CUDA target: fp16 activations, packed-QKV GroupQueryAttention, CUDA provider options as genai writes them.
import { DataType } from '../onnx/dtype.js';
import { defineTarget } from './define.js';

export const cudaTarget = defineTarget({
  id: 'cuda',
  describe: 'NVIDIA GPUs through the CUDA execution provider, fp16 activations',
  activationDtype: DataType.FLOAT16,
  graph: 'gqa-packed',
  executionProvider: 'CUDAExecutionProvider',
  device: 'gpu',
  genaiPackage: 'onnxruntime-genai-cuda',
  genaiBuilderEp: 'cuda',
  genaiProviderOptions: [{ cuda: { enable_cuda_graph: '0', enable_skip_layer_norm_strict_mode: '1' } }],
  preOptimized: false,
  quant: { accuracyLevel: 0 },
});
