// The initializers of a quantized weight: their names, adding them to a graph, and remembering which float weight
// became which quantized tensors (so a later pass of the same run, e.g. tied embeddings, can read them instead of
// quantizing again). quantize-weights.ts makes them.
import type { Graph } from '../../onnx/ir.js';
import type { Tensor } from '../../onnx/tensor.js';
import type { WeightLayout } from '../formats/block.js';
import type { QuantMethod } from '../workers/kernel.js';
import type { PassContext } from './pass.js';

/** The initializers of one quantized weight. */
export interface QuantizedTensors {
  b: Tensor;
  scales: Tensor;
  zeroPoints?: Tensor;
}

/** What a later pass needs to reuse a quantized weight. */
export interface QuantizedRecord {
  tensors: QuantizedTensors;
  method: QuantMethod;
  bits: number;
  K: number;
  N: number;
  kBlocks: number;
  rowBytes: number;
  zeroPointKind?: 'packed' | 'float';
}

/**
 * New tensor names derive from the float weight's name with fixed, documented suffixes (the names Hugging Face's
 * GPTQ checkpoints use): `<weight>.qweight`, `<weight>.scales`, `<weight>.qzeros`. A clash (the same weight quantized
 * two ways) gets `.2`, `.3`, ... appended.
 */
export function quantizedNames(graph: Graph, base: string): { b: string; scales: string; zeroPoints: string } {
  const taken = (n: string) => graph.initializer(n) !== undefined || graph.nodes.some((x) => x.outputs.includes(n));
  for (let i = 1; ; i++) {
    const sfx = i === 1 ? '' : `.${i}`;
    const names = { b: `${base}.qweight${sfx}`, scales: `${base}.scales${sfx}`, zeroPoints: `${base}.qzeros${sfx}` };
    if (!taken(names.b) && !taken(names.scales) && !taken(names.zeroPoints)) return names;
  }
}

export function addTensors(graph: Graph, t: QuantizedTensors): void {
  graph.addInitializer(t.b);
  graph.addInitializer(t.scales);
  if (t.zeroPoints) graph.addInitializer(t.zeroPoints);
}

export function tensorsBytes(t: QuantizedTensors): number {
  return t.b.byteLength + t.scales.byteLength + (t.zeroPoints?.byteLength ?? 0);
}

/** Float weights quantized so far in this run, by graph and (weight name, layout). */
export class QuantizedWeightIndex {
  private readonly byGraph = new Map<Graph, Map<string, QuantizedRecord>>();

  static of(ctx: PassContext): QuantizedWeightIndex {
    let idx = ctx.shared.get('quantizedWeights') as QuantizedWeightIndex | undefined;
    if (!idx) ctx.shared.set('quantizedWeights', (idx = new QuantizedWeightIndex()));
    return idx;
  }

  set(graph: Graph, weight: string, layout: WeightLayout, r: QuantizedRecord): void {
    let m = this.byGraph.get(graph);
    if (!m) this.byGraph.set(graph, (m = new Map()));
    m.set(`${weight}\u0000${layout}`, r);
  }

  get(graph: Graph, weight: string, layout: WeightLayout): QuantizedRecord | undefined {
    return this.byGraph.get(graph)?.get(`${weight}\u0000${layout}`);
  }
}
