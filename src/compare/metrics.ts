// Bits per weight of a built model, read from its ONNX graph: the bytes of every MatMul / Gather weight (float, or
// MatMulNBits / GatherBlockQuantized codes with their scales and zero points) divided by how many weights they hold.
import { join } from 'node:path';
import { DataType, numel } from '../onnx/dtype.js';
import type { Graph, Model, Node } from '../onnx/ir.js';
import { loadModel } from '../onnx/model-file.js';
import type { Tensor } from '../onnx/tensor.js';

export interface WeightStats {
  /** Weights of the MatMul and Gather weight matrices (a matrix read by several nodes counts once). */
  weights: number;
  /** Bytes those matrices take: float data, or packed codes + scales + zero points (+ g_idx). */
  bytes: number;
  /** bytes · 8 / weights; NaN when the model has no such weights. */
  bitsPerWeight: number;
  matrices: number;
  /** Matrices stored as MatMulNBits / GatherBlockQuantized codes. */
  quantizedMatrices: number;
}

const FLOATS = new Set<number>([DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16, DataType.DOUBLE]);
/** Nodes between a stored constant and its reader that do not change the bytes stored. */
const PASS_THROUGH = new Set(['Identity', 'Transpose', 'Cast', 'Reshape']);

/** Reads `<dir>/model.onnx` (or a .onnx path) and measures its weights; external data is not read. */
export async function modelWeightStats(modelPath: string): Promise<WeightStats> {
  const file = modelPath.endsWith('.onnx') ? modelPath : join(modelPath, 'model.onnx');
  return weightStats(await loadModel(file));
}

/**
 * Counts each weight matrix once, keyed by the tensor holding its data: a tied embedding that reads the lm_head's
 * (float or quantized) weight adds nothing, while a tie the quantizer had to break (two stored copies) counts twice,
 * as it costs twice. Norm weights, rotary caches and biases are not weights here.
 */
export function weightStats(model: Model): WeightStats {
  const constants = new Map<string, Tensor>();
  const producers = new Map<string, Node>();
  const nodes: Node[] = [];
  const visit = (g: Graph) => {
    for (const t of g.initializers) constants.set(t.name, t);
    for (const n of g.nodes) {
      nodes.push(n);
      for (const o of n.outputs) if (o) producers.set(o, n);
      for (const s of n.subgraphs()) visit(s);
    }
  };
  visit(model.graph);

  /** The stored constant a value is (through Identity/Transpose/Cast/Reshape), or undefined when it is computed. */
  const resolve = (value: string | undefined): Tensor | undefined => {
    for (let v = value, hops = 0; v && hops < 16; hops++) {
      const t = constants.get(v);
      if (t) return t;
      const p = producers.get(v);
      if (!p || !isDefault(p)) return undefined;
      if (p.opType === 'Constant') {
        const a = p.attribute('value');
        return a?.type === 'tensor' ? a.value : undefined;
      }
      if (!PASS_THROUGH.has(p.opType)) return undefined;
      v = p.inputs[0];
    }
    return undefined;
  };

  const matrices = new Map<Tensor, { weights: number; quantized: boolean }>();
  const storage = new Set<Tensor>();
  const add = (data: Tensor, weights: number, quantized: boolean, extra: (Tensor | undefined)[]) => {
    if (!matrices.has(data)) matrices.set(data, { weights, quantized });
    storage.add(data);
    for (const t of extra) if (t) storage.add(t);
  };
  const isFloatMatrix = (t: Tensor | undefined): t is Tensor => !!t && FLOATS.has(t.dataType) && t.dims.length === 2;

  for (const n of nodes) {
    if (isDefault(n) && n.opType === 'MatMul') {
      const w = resolve(n.inputs[1]);
      if (isFloatMatrix(w)) add(w, numel(w.dims), false, []);
    } else if (isDefault(n) && n.opType === 'Gather') {
      const w = resolve(n.inputs[0]);
      if (isFloatMatrix(w)) add(w, numel(w.dims), false, []);
    } else if (n.domain === 'com.microsoft' && n.opType === 'MatMulNBits') {
      // Inputs: A, B, scales, zero_points, g_idx, bias — the bias is not part of the weight's storage.
      const b = resolve(n.inputs[1]);
      if (b) add(b, n.intAttr('K') * n.intAttr('N'), true, [2, 3, 4].map((i) => resolve(n.inputs[i])));
    } else if (n.domain === 'com.microsoft' && n.opType === 'GatherBlockQuantized') {
      // Inputs: data, indices, scales, zero_points. uint8 data packs 8/bits codes per byte; (u)int4 data one per element.
      const d = resolve(n.inputs[0]);
      if (d) {
        const perElement = d.dataType === DataType.UINT8 ? 8 / n.intAttr('bits', 4) : 1;
        add(d, numel(d.dims) * perElement, true, [2, 3].map((i) => resolve(n.inputs[i])));
      }
    }
  }

  let weights = 0;
  let quantizedMatrices = 0;
  for (const m of matrices.values()) {
    weights += m.weights;
    if (m.quantized) quantizedMatrices++;
  }
  let bytes = 0;
  for (const t of storage) bytes += t.byteLength;
  return { weights, bytes, bitsPerWeight: weights > 0 ? (bytes * 8) / weights : NaN, matrices: matrices.size, quantizedMatrices };
}

function isDefault(n: Node): boolean {
  return n.domain === '' || n.domain === 'ai.onnx';
}
