// Which MatMul and Gather nodes read a constant weight, and how: the weight is an initializer (or a Constant node's
// tensor), reached directly or through Identity / 2-D Transpose nodes. Everything else is reported with a reason.
import { DataType, dataTypeName } from '../../onnx/dtype.js';
import type { Graph, Model, Node } from '../../onnx/ir.js';
import type { Tensor } from '../../onnx/tensor.js';
import type { WeightLayout } from '../formats/block.js';

/** A constant reached from a node input. */
export interface ConstantRef {
  tensor: Tensor;
  /** The Constant node holding the tensor, when it is not an initializer. */
  constantNode?: Node;
  /** Identity / Transpose nodes between the constant and the consumer, nearest the consumer first. */
  via: Node[];
  /** An odd number of 2-D transposes on the way. */
  transposed: boolean;
  /** The float type a Cast on the way turns the weight into (what the consumer sees), if any. */
  castTo?: number;
}

export type Resolved = { ok: true; ref: ConstantRef } | { ok: false; reason: string };

/** A weight seen as N rows of K values: what a MatMul's B or an embedding table is to the quantizer. */
export interface WeightRef extends ConstantRef {
  graph: Graph;
  K: number;
  N: number;
  layout: WeightLayout;
  /** The float type the consumer sees (FLOAT or FLOAT16): the type of scales and float zero points. */
  floatType: number;
}

export interface Candidate {
  node: Node;
  graph: Graph;
  weight: WeightRef;
  /**
   * Gather on axis 1 only: the Transpose right after it that moves the gathered-from axis last, which a
   * row-gathering replacement makes unnecessary (its output becomes the replacement's output).
   */
  fusedTranspose?: Node;
}

export interface Skipped {
  node: string;
  reason: string;
}

export interface Found {
  candidates: Candidate[];
  skipped: Skipped[];
}

/** Float types MatMulNBits and GatherBlockQuantized take as activations (and so as scales) on every provider. */
const QUANTIZABLE = new Set<number>([DataType.FLOAT, DataType.FLOAT16]);
/** Stored types we can read as float32; BFLOAT16 and DOUBLE only when a Cast makes them FLOAT or FLOAT16. */
const READABLE = new Set<number>([DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16, DataType.DOUBLE]);

function isDefaultDomain(n: Node): boolean {
  return n.domain === '' || n.domain === 'ai.onnx';
}

/** Graph lookups built once per scan (graph.producer is a linear search). */
class GraphIndex {
  readonly producers = new Map<string, Node>();
  readonly inputs: Set<string>;
  constructor(
    readonly graph: Graph,
    readonly irVersion: number,
  ) {
    for (const n of graph.nodes) for (const o of n.outputs) if (o) this.producers.set(o, n);
    this.inputs = new Set(graph.inputs.map((v) => v.name));
  }

  resolve(value: string): Resolved {
    const via: Node[] = [];
    let transposed = false;
    let castTo: number | undefined;
    let v = value;
    for (;;) {
      const init = this.graph.initializer(v);
      if (init) {
        // From IR 4 on, an initializer that is also a graph input is only a default: callers may feed another value.
        if (this.irVersion >= 4 && this.inputs.has(v)) {
          return { ok: false, reason: `weight ${v} is also a graph input, so it can be overridden at run time` };
        }
        return { ok: true, ref: { tensor: init, via, transposed, castTo } };
      }
      const p = this.producers.get(v);
      if (!p) {
        if (this.inputs.has(v)) return { ok: false, reason: `weight ${v} is a graph input, not a constant` };
        return { ok: false, reason: `weight ${v} comes from an enclosing graph` };
      }
      if (isDefaultDomain(p) && p.opType === 'Constant') {
        const a = p.attribute('value');
        if (a?.type !== 'tensor') return { ok: false, reason: `weight ${v} is a Constant without a tensor value` };
        return { ok: true, ref: { tensor: a.value, constantNode: p, via, transposed, castTo } };
      }
      if (isDefaultDomain(p) && p.opType === 'Identity') {
        via.push(p);
        v = p.inputs[0];
        continue;
      }
      if (isDefaultDomain(p) && p.opType === 'Cast') {
        // A weight stored in one float type and cast to the activation type (mixed-precision exports).
        const to = p.intAttr('to', 0);
        if (!QUANTIZABLE.has(to)) return { ok: false, reason: `weight ${v} is cast to ${dataTypeName(to)}` };
        via.push(p);
        castTo ??= to;
        v = p.inputs[0];
        continue;
      }
      if (isDefaultDomain(p) && p.opType === 'Transpose') {
        const perm = p.attribute('perm');
        const permOk = !perm || (perm.type === 'ints' && perm.value.length === 2 && Number(perm.value[0]) === 1 && Number(perm.value[1]) === 0);
        if (!permOk) return { ok: false, reason: `weight ${v} is a Transpose that is not a 2-D swap` };
        via.push(p);
        transposed = !transposed;
        v = p.inputs[0];
        continue;
      }
      return { ok: false, reason: `weight ${v} is computed at run time (by ${p.describe()})` };
    }
  }
}

/** Checks dtype and rank and turns a constant into a rows-of-K weight; `kn` when the constant is [K, N]. */
function asWeight(ref: ConstantRef, graph: Graph, layout: WeightLayout): WeightRef | string {
  const t = ref.tensor;
  const floatType = ref.castTo ?? t.dataType;
  if (!READABLE.has(t.dataType) || !QUANTIZABLE.has(floatType)) {
    return `weight ${t.name} is ${dataTypeName(t.dataType)}; only FLOAT and FLOAT16 are quantized`;
  }
  if (t.dims.length !== 2) return `weight ${t.name} has rank ${t.dims.length}, not 2`;
  if (t.source.kind === 'strings') return `weight ${t.name} holds strings`;
  const [d0, d1] = t.dims;
  if (d0 === 0 || d1 === 0) return `weight ${t.name} is empty`;
  const [K, N] = layout === 'kn' ? [d0, d1] : [d1, d0];
  return { ...ref, graph, K, N, layout, floatType };
}

function nodeLabel(n: Node): string {
  return n.name || `(unnamed ${n.opType} → ${n.outputs[0] ?? '?'})`;
}

/** Visits a graph and, depth first, the subgraphs of its nodes. */
function* graphsOf(g: Graph): Iterable<Graph> {
  yield g;
  for (const n of g.nodes) for (const s of n.subgraphs()) yield* graphsOf(s);
}

/** MatMul nodes (default domain) whose B input is a constant 2-D float weight. */
export function findMatMulWeights(model: Model): Found {
  const found: Found = { candidates: [], skipped: [] };
  for (const graph of graphsOf(model.graph)) {
    const idx = new GraphIndex(graph, model.irVersion);
    for (const node of graph.nodes) {
      if (node.opType !== 'MatMul' || !isDefaultDomain(node)) continue;
      const r = idx.resolve(node.inputs[1] ?? '');
      if (!r.ok) {
        found.skipped.push({ node: nodeLabel(node), reason: r.reason });
        continue;
      }
      // B = initializer → [K, N]; B = Transpose(initializer) → the initializer is [N, K].
      const w = asWeight(r.ref, graph, r.ref.transposed ? 'nk' : 'kn');
      if (typeof w === 'string') found.skipped.push({ node: nodeLabel(node), reason: w });
      else found.candidates.push({ node, graph, weight: w });
    }
  }
  return found;
}

/** The Transpose moving axis 0 last ([1, 2, ..., r−1, 0]) that alone reads `value`, if that is how it is used. */
function soleMoveFirstAxisLast(graph: Graph, value: string): Node | undefined {
  if (graph.outputs.some((o) => o.name === value)) return undefined;
  const readers = graph.nodes.filter((n) => n.inputs.includes(value) || [...n.subgraphs()].some((s) => s.outerScopeValues().has(value)));
  const t = readers.length === 1 ? readers[0] : undefined;
  if (!t || t.opType !== 'Transpose' || !isDefaultDomain(t)) return undefined;
  const perm = t.attribute('perm');
  if (perm?.type !== 'ints' || perm.value.length < 2) return undefined;
  const p = perm.value.map(Number);
  return p[p.length - 1] === 0 && p.slice(0, -1).every((v, i) => v === i + 1) ? t : undefined;
}

/**
 * Gathers of rows of a constant 2-D float table (embeddings), K being the row length:
 *   Gather(E, ids)                       rows of E [N, K]
 *   Gather(Transpose(W), ids)            columns of W [K, N] (onnxruntime-genai's float tie)
 *   Gather(W, ids, axis 1) ─ Transpose(1, .., 0)   columns of W, moved back to the last axis (phi-forge's tie)
 */
export function findEmbeddingGathers(model: Model): Found {
  const found: Found = { candidates: [], skipped: [] };
  for (const graph of graphsOf(model.graph)) {
    const idx = new GraphIndex(graph, model.irVersion);
    for (const node of graph.nodes) {
      if (node.opType !== 'Gather' || !isDefaultDomain(node)) continue;
      const axis = node.intAttr('axis', 0);
      const r = idx.resolve(node.inputs[0] ?? '');
      if (!r.ok) {
        found.skipped.push({ node: nodeLabel(node), reason: r.reason });
        continue;
      }
      let fusedTranspose: Node | undefined;
      let columns = r.ref.transposed;
      if (axis === 1 || axis === -1) {
        fusedTranspose = soleMoveFirstAxisLast(graph, node.outputs[0]);
        if (!fusedTranspose) {
          found.skipped.push({ node: nodeLabel(node), reason: 'Gather on axis 1 whose result is not only moved back by a Transpose' });
          continue;
        }
        columns = !columns;
      } else if (axis !== 0 && axis !== -2) {
        found.skipped.push({ node: nodeLabel(node), reason: `Gather on axis ${axis}` });
        continue;
      }
      // Gathering rows of the stored [N, K] table: `nk`; gathering its columns: the table is [K, N], `kn`.
      const w = asWeight(r.ref, graph, columns ? 'kn' : 'nk');
      if (typeof w === 'string') found.skipped.push({ node: nodeLabel(node), reason: w });
      else found.candidates.push({ node, graph, weight: w, fusedTranspose });
    }
  }
  return found;
}

export { nodeLabel };

/**
 * Keys that identify one weight among the candidates of a scan — its graph, constant name and layout, plus whatever
 * else the caller groups by (a method) — so nodes reading the same weight the same way share one quantized copy.
 */
export class WeightKeys {
  private readonly graphIds = new Map<Graph, number>();

  of(c: Candidate, ...extra: string[]): string {
    let id = this.graphIds.get(c.graph);
    if (id === undefined) this.graphIds.set(c.graph, (id = this.graphIds.size));
    return [id, constantName(c.weight), c.weight.layout, ...extra].join('\u0000');
  }
}

/** The name a constant goes by in the graph: its initializer name, or the output of the Constant node holding it. */
export function constantName(ref: ConstantRef): string {
  return ref.constantNode ? ref.constantNode.outputs[0] : ref.tensor.name;
}

/** True when a value is still read in the graph: by a node, by a subgraph capturing it, or as a graph output. */
export function isValueUsed(graph: Graph, value: string): boolean {
  for (const n of graph.nodes) {
    if (n.inputs.includes(value)) return true;
    for (const s of n.subgraphs()) if (s.outerScopeValues().has(value)) return true;
  }
  return graph.outputs.some((o) => o.name === value);
}

/**
 * After a consumer stopped reading a constant: removes the Identity/Transpose chain and the constant itself
 * (initializer or Constant node) wherever nothing else reads them. Returns the float bytes freed.
 */
export function dropUnusedConstant(graph: Graph, ref: ConstantRef): number {
  for (const n of ref.via) {
    if (graph.nodes.includes(n) && !n.outputs.some((o) => o && isValueUsed(graph, o))) graph.removeNode(n);
  }
  if (ref.constantNode) {
    const n = ref.constantNode;
    if (graph.nodes.includes(n) && !isValueUsed(graph, n.outputs[0])) {
      graph.removeNode(n);
      return ref.tensor.byteLength;
    }
    return 0;
  }
  const name = ref.tensor.name;
  if (graph.initializer(name) === ref.tensor && !isValueUsed(graph, name)) {
    graph.removeInitializer(name);
    // Old exporters also list initializers in value_info; a stale entry would describe a value that is gone.
    graph.valueInfo = graph.valueInfo.filter((v) => v.name !== name);
    return ref.tensor.byteLength;
  }
  return 0;
}
