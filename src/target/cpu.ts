// The CPU target: fp32, packed-QKV GroupQueryAttention with rotary inside, int4 with int8 activations.
import { DataType } from '../onnx/dtype.js';
import { defineTarget } from './define.js';

export const cpuTarget = defineTarget({
  id: 'cpu',
  describe: 'CPU (x64/arm64 desktops and servers), fp32 activations',
  activationDtype: DataType.FLOAT,
  graph: 'gqa-packed',
  executionProvider: 'CPUExecutionProvider',
  device: 'cpu',
  genaiPackage: 'onnxruntime-genai',
  genaiBuilderEp: 'cpu',
  genaiProviderOptions: [],
  preOptimized: false,
  quant: { accuracyLevel: 4 },
});
