// The DirectML target: fp16, separate q/k/v MatMuls + RotaryEmbedding with position_ids, no `If` in the graph.
import { DataType } from '../onnx/dtype.js';
import { supportsOpOn } from './ops.js';
import type { Target } from './types.js';

export const dmlTarget: Target = Object.freeze({
  id: 'dml',
  describe: 'Windows GPUs through DirectML, fp16 activations',
  activationDtype: DataType.FLOAT16,
  graph: 'dml',
  genaiProviderOptions: [{ dml: {} }],
  quant: { accuracyLevel: 0 },
  supportsOp: (domain: string, op: string) => supportsOpOn('dml', domain, op),
} as const);
