// In-memory ONNX IR: Model, Graph (with If/Loop subgraphs in attributes), Node, ValueInfo, Attribute, functions.
// Values are referred to by name, as in ONNX. The codec (codec.ts) maps this to and from protobuf.
import { OnnxError } from '../util/errors.js';
import { Tensor, type StringPair } from './tensor.js';

export { Tensor } from './tensor.js';
export type { StringPair, TensorSource } from './tensor.js';

// ---------------------------------------------------------------------------------------------------------------
// Types (TypeProto)

export interface Dim {
  value?: number;
  param?: string;
  denotation?: string;
}

export type OnnxType = (
  | { kind: 'tensor'; elemType: number; shape?: Dim[] }
  | { kind: 'sparse_tensor'; elemType: number; shape?: Dim[] }
  | { kind: 'sequence'; elem?: OnnxType }
  | { kind: 'map'; keyType: number; value?: OnnxType }
  | { kind: 'optional'; elem?: OnnxType }
  | { kind: 'opaque'; domain: string; name: string }
  | { kind: 'none' }
) & { denotation?: string };

/** A tensor type with a shape given as numbers (fixed) or strings (symbolic), the common case for graph I/O. */
export function tensorType(elemType: number, shape?: readonly (number | string)[]): OnnxType {
  return {
    kind: 'tensor',
    elemType,
    shape: shape?.map((d) => (typeof d === 'number' ? { value: d } : { param: d })),
  };
}

export interface ValueInfo {
  name: string;
  type?: OnnxType;
  docString?: string;
  metadataProps?: StringPair[];
}

// ---------------------------------------------------------------------------------------------------------------
// Attributes

export interface SparseTensor {
  values: Tensor;
  indices: Tensor;
  dims: number[];
}

/** int64 attribute values are numbers when exactly representable, bigint otherwise (e.g. INT64_MAX in Slice ends). */
export type Int64 = number | bigint;

export type AttributeValue =
  | { type: 'float'; value: number }
  | { type: 'int'; value: Int64 }
  | { type: 'string'; value: Uint8Array }
  | { type: 'tensor'; value: Tensor }
  | { type: 'graph'; value: Graph }
  | { type: 'sparse_tensor'; value: SparseTensor }
  | { type: 'type_proto'; value: OnnxType }
  | { type: 'floats'; value: number[] }
  | { type: 'ints'; value: Int64[] }
  | { type: 'strings'; value: Uint8Array[] }
  | { type: 'tensors'; value: Tensor[] }
  | { type: 'graphs'; value: Graph[] }
  | { type: 'sparse_tensors'; value: SparseTensor[] }
  | { type: 'type_protos'; value: OnnxType[] }
  /** A reference to a function attribute (ref_attr_name) or a proto with no type set. */
  | { type: 'undefined'; value?: undefined };

export type Attribute = AttributeValue & {
  name: string;
  refAttrName?: string;
  docString?: string;
};

const utf8 = new TextEncoder();
const utf8d = new TextDecoder();

/** Small constructors so graph builders read well: attr.int('axis', 1). */
export const attr = {
  float: (name: string, value: number): Attribute => ({ name, type: 'float', value }),
  int: (name: string, value: Int64): Attribute => ({ name, type: 'int', value }),
  string: (name: string, value: string): Attribute => ({ name, type: 'string', value: utf8.encode(value) }),
  tensor: (name: string, value: Tensor): Attribute => ({ name, type: 'tensor', value }),
  graph: (name: string, value: Graph): Attribute => ({ name, type: 'graph', value }),
  floats: (name: string, value: number[]): Attribute => ({ name, type: 'floats', value }),
  ints: (name: string, value: Int64[]): Attribute => ({ name, type: 'ints', value }),
  strings: (name: string, value: string[]): Attribute => ({ name, type: 'strings', value: value.map((s) => utf8.encode(s)) }),
};

export function decodeUtf8(b: Uint8Array): string {
  return utf8d.decode(b);
}

// ---------------------------------------------------------------------------------------------------------------
// Nodes

export interface NodeInit {
  opType: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  domain?: string;
  attributes?: Attribute[];
  overload?: string;
  docString?: string;
  metadataProps?: StringPair[];
}

export class Node {
  opType: string;
  domain: string;
  name: string;
  /** Input value names; '' marks an omitted optional input. */
  inputs: string[];
  outputs: string[];
  attributes: Attribute[];
  overload: string;
  docString: string;
  metadataProps: StringPair[];
  /** Fields of newer ONNX versions the IR keeps opaque (e.g. device_configurations), preserved by the codec. */
  opaque?: Record<string, unknown>;

  constructor(init: NodeInit) {
    this.opType = init.opType;
    this.domain = init.domain ?? '';
    this.name = init.name ?? '';
    this.inputs = [...init.inputs];
    this.outputs = [...init.outputs];
    this.attributes = init.attributes ? [...init.attributes] : [];
    this.overload = init.overload ?? '';
    this.docString = init.docString ?? '';
    this.metadataProps = init.metadataProps ? [...init.metadataProps] : [];
  }

  attribute(name: string): Attribute | undefined {
    return this.attributes.find((a) => a.name === name);
  }

  /** An int attribute as a number, or the default when absent. */
  intAttr(name: string, dflt?: number): number {
    const a = this.attribute(name);
    if (!a) {
      if (dflt === undefined) throw new OnnxError('ONNX_ATTR_MISSING', `node has no attribute ${name}`, { where: this.describe() });
      return dflt;
    }
    if (a.type !== 'int') throw new OnnxError('ONNX_ATTR_TYPE', `attribute ${name} is ${a.type}, expected int`, { where: this.describe() });
    return Number(a.value);
  }

  floatAttr(name: string, dflt?: number): number {
    const a = this.attribute(name);
    if (!a) {
      if (dflt === undefined) throw new OnnxError('ONNX_ATTR_MISSING', `node has no attribute ${name}`, { where: this.describe() });
      return dflt;
    }
    if (a.type !== 'float') throw new OnnxError('ONNX_ATTR_TYPE', `attribute ${name} is ${a.type}, expected float`, { where: this.describe() });
    return a.value;
  }

  setAttribute(a: Attribute): void {
    const i = this.attributes.findIndex((x) => x.name === a.name);
    if (i >= 0) this.attributes[i] = a;
    else this.attributes.push(a);
  }

  /** Subgraphs held in this node's attributes (If branches, Loop/Scan bodies). */
  *subgraphs(): Iterable<Graph> {
    for (const a of this.attributes) {
      if (a.type === 'graph') yield a.value;
      else if (a.type === 'graphs') yield* a.value;
    }
  }

  describe(): string {
    const dom = this.domain && this.domain !== 'ai.onnx' ? `${this.domain}.` : '';
    return `node ${this.name || '(unnamed)'} (${dom}${this.opType})`;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Graph

export interface QuantizationAnnotation {
  tensorName: string;
  quantParameterTensorNames: StringPair[];
}

export class Graph {
  name: string;
  nodes: Node[] = [];
  initializers: Tensor[] = [];
  sparseInitializers: SparseTensor[] = [];
  inputs: ValueInfo[] = [];
  outputs: ValueInfo[] = [];
  valueInfo: ValueInfo[] = [];
  quantizationAnnotation: QuantizationAnnotation[] = [];
  docString = '';
  metadataProps: StringPair[] = [];

  constructor(name = '') {
    this.name = name;
  }

  // -- initializers -----------------------------------------------------------------------------------------

  initializer(name: string): Tensor | undefined {
    return this.initializers.find((t) => t.name === name);
  }

  addInitializer(t: Tensor): Tensor {
    if (this.initializer(t.name)) {
      throw new OnnxError('ONNX_DUPLICATE_INITIALIZER', `initializer ${t.name} already exists`, { where: `graph ${this.name}` });
    }
    this.initializers.push(t);
    return t;
  }

  /** Removes an initializer (and a graph input of the same name, as old IR versions list both). */
  removeInitializer(name: string): Tensor | undefined {
    const i = this.initializers.findIndex((t) => t.name === name);
    if (i < 0) return undefined;
    const [t] = this.initializers.splice(i, 1);
    this.inputs = this.inputs.filter((v) => v.name !== name);
    return t;
  }

  replaceInitializer(t: Tensor): void {
    const i = this.initializers.findIndex((x) => x.name === t.name);
    if (i < 0) throw new OnnxError('ONNX_NO_INITIALIZER', `no initializer ${t.name} to replace`, { where: `graph ${this.name}` });
    this.initializers[i] = t;
  }

  // -- nodes ------------------------------------------------------------------------------------------------

  addNode(n: Node | NodeInit): Node {
    const node = n instanceof Node ? n : new Node(n);
    this.nodes.push(node);
    return node;
  }

  removeNode(node: Node): void {
    const i = this.nodes.indexOf(node);
    if (i < 0) throw new OnnxError('ONNX_NO_NODE', `${node.describe()} is not in graph ${this.name}`);
    this.nodes.splice(i, 1);
  }

  /** Replaces one node by zero or more nodes at the same position (order kept for readability). */
  replaceNode(old: Node, replacement: readonly Node[]): void {
    const i = this.nodes.indexOf(old);
    if (i < 0) throw new OnnxError('ONNX_NO_NODE', `${old.describe()} is not in graph ${this.name}`);
    this.nodes.splice(i, 1, ...replacement);
  }

  /** The node producing a value, if any (graph inputs and initializers have none). */
  producer(value: string): Node | undefined {
    return this.nodes.find((n) => n.outputs.includes(value));
  }

  /** Nodes consuming a value in this graph (not counting subgraphs that capture it). */
  consumers(value: string): Node[] {
    return this.nodes.filter((n) => n.inputs.includes(value));
  }

  /** Map of value name → consuming nodes, including nodes whose subgraphs read the value from this scope. */
  consumerMap(): Map<string, Node[]> {
    const m = new Map<string, Node[]>();
    const add = (v: string, n: Node) => {
      const l = m.get(v);
      if (l) {
        if (!l.includes(n)) l.push(n);
      } else m.set(v, [n]);
    };
    for (const n of this.nodes) {
      for (const v of n.inputs) if (v) add(v, n);
      for (const g of n.subgraphs()) for (const v of g.outerScopeValues()) add(v, n);
    }
    return m;
  }

  /** Renames every use of a value (node inputs here and in subgraphs, graph outputs). */
  renameUses(from: string, to: string): void {
    for (const n of this.nodes) {
      n.inputs = n.inputs.map((v) => (v === from ? to : v));
      for (const g of n.subgraphs()) if (g.outerScopeValues().has(from)) g.renameUses(from, to);
    }
    for (const o of this.outputs) if (o.name === from) o.name = to;
  }

  /** Values this graph reads that it does not define (captured from enclosing graphs). */
  outerScopeValues(): Set<string> {
    const defined = new Set<string>();
    for (const v of this.inputs) defined.add(v.name);
    for (const t of this.initializers) defined.add(t.name);
    for (const s of this.sparseInitializers) defined.add(s.values.name);
    for (const n of this.nodes) for (const o of n.outputs) defined.add(o);
    const used = new Set<string>();
    for (const n of this.nodes) {
      for (const v of n.inputs) if (v && !defined.has(v)) used.add(v);
      for (const g of n.subgraphs()) for (const v of g.outerScopeValues()) if (!defined.has(v)) used.add(v);
    }
    for (const o of this.outputs) if (!defined.has(o.name)) used.add(o.name);
    return used;
  }

  /**
   * Sorts nodes so every node comes after the producers of its inputs (including values its subgraphs capture).
   * Stable: nodes already in order keep their order. Throws on a cycle, naming a node on it.
   */
  topologicalSort(): void {
    const producerIndex = new Map<string, number>();
    this.nodes.forEach((n, i) => n.outputs.forEach((o) => o && producerIndex.set(o, i)));
    const deps = this.nodes.map((n) => {
      const s = new Set<number>();
      const inputs = [...n.inputs];
      for (const g of n.subgraphs()) inputs.push(...g.outerScopeValues());
      for (const v of inputs) {
        const p = v ? producerIndex.get(v) : undefined;
        if (p !== undefined) s.add(p);
      }
      return s;
    });
    const users: number[][] = this.nodes.map(() => []);
    const pending = deps.map((s) => s.size);
    deps.forEach((s, i) => s.forEach((p) => users[p].push(i)));
    // Min-heap on original index keeps the order stable.
    const ready: number[] = [];
    const push = (i: number) => {
      ready.push(i);
      let c = ready.length - 1;
      while (c > 0) {
        const p = (c - 1) >> 1;
        if (ready[p] <= ready[c]) break;
        [ready[p], ready[c]] = [ready[c], ready[p]];
        c = p;
      }
    };
    const pop = (): number => {
      const top = ready[0];
      const last = ready.pop()!;
      if (ready.length) {
        ready[0] = last;
        let c = 0;
        for (;;) {
          const l = 2 * c + 1;
          const r = l + 1;
          let m = c;
          if (l < ready.length && ready[l] < ready[m]) m = l;
          if (r < ready.length && ready[r] < ready[m]) m = r;
          if (m === c) break;
          [ready[m], ready[c]] = [ready[c], ready[m]];
          c = m;
        }
      }
      return top;
    };
    pending.forEach((k, i) => k === 0 && push(i));
    const order: number[] = [];
    while (ready.length) {
      const i = pop();
      order.push(i);
      for (const u of users[i]) if (--pending[u] === 0) push(u);
    }
    if (order.length !== this.nodes.length) {
      const stuck = this.nodes.find((_, i) => pending[i] > 0)!;
      throw new OnnxError('ONNX_CYCLE', `graph has a cycle through ${stuck.describe()}`, { where: `graph ${this.name}` });
    }
    this.nodes = order.map((i) => this.nodes[i]);
  }

  /** Every node of this graph and, depth first, of its subgraphs. */
  *allNodes(): Iterable<Node> {
    for (const n of this.nodes) {
      yield n;
      for (const g of n.subgraphs()) yield* g.allNodes();
    }
  }

  /** Every tensor held by this graph and its subgraphs: initializers and tensor attributes. */
  *allTensors(): Iterable<Tensor> {
    yield* this.initializers;
    for (const s of this.sparseInitializers) {
      yield s.values;
      yield s.indices;
    }
    for (const n of this.nodes) {
      for (const a of n.attributes) {
        if (a.type === 'tensor') yield a.value;
        else if (a.type === 'tensors') yield* a.value;
        else if (a.type === 'sparse_tensor') yield* [a.value.values, a.value.indices];
        else if (a.type === 'sparse_tensors') for (const s of a.value) yield* [s.values, s.indices];
      }
      for (const g of n.subgraphs()) yield* g.allTensors();
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Functions and model

export interface OpsetId {
  domain: string;
  version: number;
}

export interface OnnxFunction {
  name: string;
  domain: string;
  overload: string;
  inputs: string[];
  outputs: string[];
  /** Attribute names without defaults. */
  attributes: string[];
  /** Attributes with default values. */
  attributeProtos: Attribute[];
  nodes: Node[];
  opsetImports: OpsetId[];
  valueInfo: ValueInfo[];
  docString: string;
  metadataProps: StringPair[];
}

export interface TrainingInfo {
  initialization?: Graph;
  algorithm?: Graph;
  initializationBinding: StringPair[];
  updateBinding: StringPair[];
}

/** A protobuf field our schema does not know, found while decoding. */
export interface UnknownField {
  /** Where in the message tree, e.g. `model.graph.node[3]`. */
  path: string;
  fieldNumber: number;
  wireType: number;
}

export class Model {
  irVersion = 10;
  opsetImports: OpsetId[] = [];
  producerName = '';
  producerVersion = '';
  domain = '';
  modelVersion = 0;
  docString = '';
  graph: Graph;
  metadataProps: StringPair[] = [];
  trainingInfo: TrainingInfo[] = [];
  functions: OnnxFunction[] = [];
  /** Fields of newer ONNX versions the IR keeps opaque (e.g. configuration), preserved by the codec. */
  opaque?: Record<string, unknown>;
  /** Fields the decoder did not know; encode refuses to drop them silently (see codec.ts). */
  unknownFields: UnknownField[] = [];

  constructor(graph: Graph = new Graph('main'), opsetImports: OpsetId[] = [{ domain: '', version: 21 }]) {
    this.graph = graph;
    this.opsetImports = opsetImports;
  }

  opsetVersion(domain: string): number | undefined {
    const d = domain === 'ai.onnx' ? '' : domain;
    return this.opsetImports.find((o) => (o.domain === 'ai.onnx' ? '' : o.domain) === d)?.version;
  }

  /** Adds an opset import or raises its version to at least `version`. */
  requireOpset(domain: string, version: number): void {
    const o = this.opsetImports.find((x) => x.domain === domain);
    if (!o) this.opsetImports.push({ domain, version });
    else if (o.version < version) o.version = version;
  }

  /** Every tensor held anywhere in the model (main graph, subgraphs, functions, training graphs). */
  *allTensors(): Iterable<Tensor> {
    yield* this.graph.allTensors();
    for (const ti of this.trainingInfo) {
      if (ti.initialization) yield* ti.initialization.allTensors();
      if (ti.algorithm) yield* ti.algorithm.allTensors();
    }
  }
}
