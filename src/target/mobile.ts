// The mobile target: the CPU graph (fp32, packed GQA) for ORT mobile builds; int4 needs int8 activations to be fast.
import { DataType } from '../onnx/dtype.js';
import { defineTarget } from './define.js';

export const mobileTarget = defineTarget({
  id: 'mobile',
  describe: 'Android/iOS CPU, fp32 activations',
  activationDtype: DataType.FLOAT,
  graph: 'gqa-packed',
  executionProvider: 'CPUExecutionProvider',
  device: 'cpu',
  genaiPackage: 'onnxruntime-genai',
  genaiBuilderEp: 'cpu',
  genaiProviderOptions: [],
  preOptimized: true,
  quant: { accuracyLevel: 4 },
});
