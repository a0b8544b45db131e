// The DirectML target: fp16, separate q/k/v MatMuls + RotaryEmbedding with position_ids, no `If` in the graph.
import { DataType } from '../onnx/dtype.js';
import { defineTarget } from './define.js';

export const dmlTarget = defineTarget({
  id: 'dml',
  describe: 'Windows GPUs through DirectML, fp16 activations',
  activationDtype: DataType.FLOAT16,
  graph: 'dml',
  executionProvider: 'DmlExecutionProvider',
  device: 'gpu',
  genaiPackage: 'onnxruntime-genai-directml',
  genaiBuilderEp: 'dml',
  genaiProviderOptions: [{ dml: {} }],
  preOptimized: false,
  quant: { accuracyLevel: 0 },
});
