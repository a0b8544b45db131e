// ONNX protobuf codec: ModelProto/TensorProto bytes <-> the IR (ir.ts), on protobufjs 7 with our own onnx.proto.
//
// protobufjs 7 or 8? protobufjs 7 skips fields its schema does not know; 8.8 can keep them per message
// (Reader.discardUnknown = false, raw bytes in `$unknowns`). Measured on this machine (Node 20, our onnx.proto, each
// version in its own process, best of 25 runs on a busy 2-core box; decode / encode):
//   9,000-node graph, 1.9 MB:          pbjs 7: 16 / 53 ms    pbjs 8: 33 / 8 ms     pbjs 8 keeping unknowns: 20 / 8 ms
//   141 MB of inline weights:          pbjs 7: 0.5 / 117 ms  pbjs 8: 0.2 / 549 ms  pbjs 8 keeping unknowns: 0.2 / 507 ms
// 8 writes many small messages faster but large bytes fields 4-5x slower, and keeping unknowns would only pay off if
// every IR object (Graph, Tensor, ValueInfo, Attribute have no slot for it) carried raw bytes back to the encoder.
// So we stay on 7 (no new dependency) and add a cheap wire-format scanner (WireScanner below) that walks the bytes
// against the schema before decoding: it recurses into sub-messages only, skips every other length-delimited field
// without copying, rejects malformed input with an OnnxError, and records each unknown field (with its path) in
// `model.unknownFields`; encodeModel then refuses to drop them silently unless called with dropUnknownFields.
// The scan costs about 2 ms on a 6,000-node graph, under a tenth of the decode (scripts/bench/codec.ts).
//
// Decoding is zero-copy for bytes fields (raw_data, string attributes) when the input is a Buffer or Uint8Array:
// tensors hold views into the input. External tensors are described, never read (tensor.ts reads them by offset).
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import protobuf from 'protobufjs';
import { OnnxError } from '../util/errors.js';
import {
  Graph,
  Model,
  Node,
  type Attribute,
  type AttributeValue,
  type Dim,
  type OnnxFunction,
  type OnnxType,
  type OpsetId,
  type SparseTensor,
  type TrainingInfo,
  type UnknownField,
  type ValueInfo,
} from './ir.js';
import { Tensor, type TensorSource } from './tensor.js';
import {
  int64FromProto,
  int64ToProto,
  pairsFromProto,
  pairsToProto,
  plainBytes,
  safeNumberFromProto,
  tensorFromProto,
  tensorToProto,
  type PEntry,
  type PInt64,
  type PTensor,
} from './tensor-proto.js';

// ---------------------------------------------------------------------------------------------------------------
// Decoded message shapes (protobufjs instances: absent scalars read their default from the prototype)

interface PSparse {
  values: PTensor | null;
  indices: PTensor | null;
  dims: PInt64[];
}
interface PDim {
  dim_value: PInt64;
  dim_param: string;
  denotation: string;
}
interface PTensorType {
  elem_type: number;
  shape: { dim: PDim[] } | null;
}
interface PType {
  tensor_type: PTensorType | null;
  sparse_tensor_type: PTensorType | null;
  sequence_type: { elem_type: PType | null } | null;
  map_type: { key_type: number; value_type: PType | null } | null;
  optional_type: { elem_type: PType | null } | null;
  opaque_type: { domain: string; name: string } | null;
  denotation: string;
}
interface PAttribute {
  name: string;
  ref_attr_name: string;
  doc_string: string;
  type: number;
  f: number;
  i: PInt64;
  s: Uint8Array;
  t: PTensor | null;
  g: PGraph | null;
  sparse_tensor: PSparse | null;
  tp: PType | null;
  floats: number[];
  ints: PInt64[];
  strings: Uint8Array[];
  tensors: PTensor[];
  graphs: PGraph[];
  sparse_tensors: PSparse[];
  type_protos: PType[];
}
interface PValueInfo {
  name: string;
  type: PType | null;
  doc_string: string;
  metadata_props: PEntry[];
}
interface PNode {
  input: string[];
  output: string[];
  name: string;
  op_type: string;
  domain: string;
  overload: string;
  attribute: PAttribute[];
  doc_string: string;
  metadata_props: PEntry[];
  device_configurations: object[];
}
interface PGraph {
  node: PNode[];
  name: string;
  initializer: PTensor[];
  sparse_initializer: PSparse[];
  doc_string: string;
  input: PValueInfo[];
  output: PValueInfo[];
  value_info: PValueInfo[];
  quantization_annotation: { tensor_name: string; quant_parameter_tensor_names: PEntry[] }[];
  metadata_props: PEntry[];
}
interface POpset {
  domain: string;
  version: PInt64;
}
interface PFunction {
  name: string;
  input: string[];
  output: string[];
  attribute: string[];
  attribute_proto: PAttribute[];
  node: PNode[];
  doc_string: string;
  opset_import: POpset[];
  domain: string;
  overload: string;
  value_info: PValueInfo[];
  metadata_props: PEntry[];
}
interface PTrainingInfo {
  initialization: PGraph | null;
  algorithm: PGraph | null;
  initialization_binding: PEntry[];
  update_binding: PEntry[];
}
interface PModel {
  ir_version: PInt64;
  opset_import: POpset[];
  producer_name: string;
  producer_version: string;
  domain: string;
  model_version: PInt64;
  doc_string: string;
  graph: PGraph | null;
  metadata_props: PEntry[];
  training_info: PTrainingInfo[];
  functions: PFunction[];
  configuration: object[];
}

/** The plain object handed to protobufjs for encoding: any subset of a message's fields. */
type Out<T> = { [K in keyof T]?: OutField<T[K]> };
type OutField<V> = V extends Uint8Array ? V : V extends readonly (infer U)[] ? OutField<U>[] : V extends object ? Out<V> : V;

// ---------------------------------------------------------------------------------------------------------------
// Schema (parsed once, on first use)

interface FieldDesc {
  name: string;
  /** Wire type the schema calls for. */
  wire: number;
  /** Repeated scalar numbers may also arrive packed (wire type 2). */
  packable: boolean;
  repeated: boolean;
  msg?: MessageDesc;
}
interface MessageDesc {
  name: string;
  /** Indexed by field number. */
  fields: (FieldDesc | undefined)[];
}

interface Schema {
  Model: protobuf.Type;
  Tensor: protobuf.Type;
  NodeDeviceConfiguration: protobuf.Type;
  DeviceConfiguration: protobuf.Type;
  modelDesc: MessageDesc;
  tensorDesc: MessageDesc;
}

let SCHEMA: Schema | undefined;

function schema(): Schema {
  if (SCHEMA) return SCHEMA;
  if (!protobuf.util.Long) {
    // Without `long`, protobufjs rounds int64 to doubles and INT64_MAX would not survive.
    throw new OnnxError('ONNX_CODEC_SETUP', 'protobufjs found no `long` package; int64 values cannot be decoded exactly');
  }
  const text = readFileSync(new URL('./onnx.proto', import.meta.url), 'utf8');
  const root = protobuf.parse(text, { keepCase: true }).root;
  root.resolveAll();
  const descs = new Map<protobuf.Type, MessageDesc>();
  const describe = (t: protobuf.Type): MessageDesc => {
    let d = descs.get(t);
    if (d) return d;
    d = { name: t.name, fields: [] };
    descs.set(t, d);
    for (const f of t.fieldsArray) {
      const rt = f.resolvedType;
      const fd: FieldDesc = { name: f.name, wire: 2, packable: false, repeated: f.repeated };
      if (rt instanceof protobuf.Type) fd.msg = describe(rt);
      else if (rt instanceof protobuf.Enum) {
        fd.wire = 0;
        fd.packable = f.repeated;
      } else {
        fd.wire = protobuf.types.basic[f.type as keyof typeof protobuf.types.basic];
        fd.packable = f.repeated && f.type in protobuf.types.packed;
      }
      d.fields[f.id] = fd;
    }
    return d;
  };
  const Model = root.lookupType('onnx.ModelProto');
  const Tensor = root.lookupType('onnx.TensorProto');
  SCHEMA = {
    Model,
    Tensor,
    NodeDeviceConfiguration: root.lookupType('onnx.NodeDeviceConfigurationProto'),
    DeviceConfiguration: root.lookupType('onnx.DeviceConfigurationProto'),
    modelDesc: describe(Model),
    tensorDesc: describe(Tensor),
  };
  return SCHEMA;
}

// ---------------------------------------------------------------------------------------------------------------
// Wire scanner: validates framing and finds unknown fields without decoding anything

interface PathLink {
  parent?: PathLink;
  name: string;
  index: number;
}

function pathString(p: PathLink): string {
  const parts: string[] = [];
  for (let l: PathLink | undefined = p; l; l = l.parent) parts.push(l.index >= 0 ? `${l.name}[${l.index}]` : l.name);
  return parts.reverse().join('.');
}

/** Protobuf's own default nesting limit; a deeper model is either hostile or broken. */
const MAX_DEPTH = 100;

class WireScanner {
  private pos = 0;

  constructor(
    private readonly buf: Uint8Array,
    private readonly unknown: UnknownField[],
    private readonly file: string | undefined,
  ) {}

  scan(desc: MessageDesc, root: string): void {
    this.message(0, this.buf.length, desc, { name: root, index: -1 }, 0);
  }

  private fail(what: string, path: PathLink): never {
    throw new OnnxError('ONNX_PROTOBUF_INVALID', `malformed protobuf at byte ${this.pos} in ${pathString(path)}: ${what}`, {
      file: this.file,
      fix: 'the file is truncated or not an ONNX model; re-export or re-download it',
    });
  }

  /** Reads a varint as a number (exact up to 2^53; larger values only matter as "too large"). */
  private varint(end: number, path: PathLink): number {
    const buf = this.buf;
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= end) this.fail('truncated varint', path);
      const b = buf[this.pos++];
      result += (b & 0x7f) * scale;
      if (!(b & 0x80)) return result;
      scale *= 128;
    }
    this.fail('varint longer than 10 bytes', path);
  }

  private skip(n: number, end: number, path: PathLink): void {
    if (n > end - this.pos) this.fail(`field of ${n} bytes runs past the end of its message`, path);
    this.pos += n;
  }

  private message(start: number, end: number, desc: MessageDesc, path: PathLink, depth: number): void {
    if (depth > MAX_DEPTH) this.fail(`messages nested deeper than ${MAX_DEPTH}`, path);
    this.pos = start;
    let counts: number[] | undefined;
    while (this.pos < end) {
      const tag = this.varint(end, path);
      const id = Math.floor(tag / 8);
      const wire = tag % 8;
      if (id === 0 || id > 0x1fffffff) this.fail(`invalid field number ${id}`, path);
      const f = id < desc.fields.length ? desc.fields[id] : undefined;
      if (!f) {
        this.unknown.push({ path: pathString(path), fieldNumber: id, wireType: wire });
        this.skipValue(wire, id, end, path, depth);
        continue;
      }
      if (wire !== f.wire && !(f.packable && wire === 2)) {
        this.fail(`field ${f.name} (${id}) of ${desc.name} has wire type ${wire}, the schema says ${f.wire}`, path);
      }
      if (wire === 2) {
        const len = this.varint(end, path);
        if (len > end - this.pos) this.fail(`field ${f.name} of ${len} bytes runs past the end of its message`, path);
        if (f.msg) {
          let index = -1;
          if (f.repeated) {
            counts ??= [];
            index = counts[id] ?? 0;
            counts[id] = index + 1;
          }
          const sub = this.pos + len;
          this.message(this.pos, sub, f.msg, { parent: path, name: f.name, index }, depth + 1);
          this.pos = sub;
        } else this.pos += len;
      } else this.skipValue(wire, id, end, path, depth);
    }
    if (this.pos !== end) this.fail('last field runs past the end of its message', path);
  }

  private skipValue(wire: number, id: number, end: number, path: PathLink, depth: number): void {
    switch (wire) {
      case 0:
        this.varint(end, path);
        return;
      case 1:
        this.skip(8, end, path);
        return;
      case 5:
        this.skip(4, end, path);
        return;
      case 2:
        this.skip(this.varint(end, path), end, path);
        return;
      case 3: {
        // A group (deprecated proto2 feature), only legal here as an unknown field: skip to its end tag.
        if (depth > MAX_DEPTH) this.fail('groups nested too deeply', path);
        for (;;) {
          const tag = this.varint(end, path);
          const w = tag % 8;
          if (w === 4) {
            if (Math.floor(tag / 8) !== id) this.fail('group ends with the wrong field number', path);
            return;
          }
          this.skipValue(w, Math.floor(tag / 8), end, path, depth + 1);
        }
      }
      default:
        this.fail(`invalid wire type ${wire}`, path);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Decode

export interface DecodeOptions {
  /** Folder that external data locations are relative to (default: the folder of `path`, else the working dir). */
  baseDir?: string;
  /** The file the bytes came from, for error messages and as the default baseDir. */
  path?: string;
}

const has = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

function asBuffer(bytes: Uint8Array): Buffer {
  // BufferReader decodes strings with Node's native UTF-8 and slices bytes without copying.
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function wrapDecodeError(e: unknown, what: string, file: string | undefined): OnnxError {
  if (e instanceof OnnxError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new OnnxError('ONNX_PROTOBUF_INVALID', `cannot decode ${what}: ${msg}`, {
    file,
    fix: 'the file is truncated or not an ONNX model; re-export or re-download it',
    cause: e,
  });
}

/** Decodes a ModelProto. Unknown fields are listed in `model.unknownFields`; malformed bytes throw an OnnxError. */
export function decodeModel(bytes: Uint8Array, opts: DecodeOptions = {}): Model {
  const s = schema();
  const buf = asBuffer(bytes);
  const unknown: UnknownField[] = [];
  try {
    new WireScanner(buf, unknown, opts.path).scan(s.modelDesc, 'model');
    const msg = s.Model.decode(buf) as unknown as PModel;
    const baseDir = opts.baseDir ?? (opts.path ? dirname(resolve(opts.path)) : process.cwd());
    const model = new Decoder(s, baseDir, opts.path, unknown).model(msg);
    model.unknownFields = unknown;
    return model;
  } catch (e) {
    throw wrapDecodeError(e, 'ONNX model', opts.path);
  }
}

/** The fields of a ModelProto this codec does not know, found by the wire scan alone (no decoding). */
export function findUnknownFields(bytes: Uint8Array, opts: { path?: string } = {}): UnknownField[] {
  const unknown: UnknownField[] = [];
  try {
    new WireScanner(bytes, unknown, opts.path).scan(schema().modelDesc, 'model');
  } catch (e) {
    throw wrapDecodeError(e, 'ONNX model', opts.path);
  }
  return unknown;
}

export interface DecodeTensorOptions extends DecodeOptions {
  /** Accept (and drop) fields the schema does not know instead of failing. */
  dropUnknownFields?: boolean;
}

/** Decodes a TensorProto file (e.g. test_data_set_0/input_0.pb). */
export function decodeTensor(bytes: Uint8Array, opts: DecodeTensorOptions = {}): Tensor {
  const s = schema();
  const buf = asBuffer(bytes);
  const unknown: UnknownField[] = [];
  try {
    new WireScanner(buf, unknown, opts.path).scan(s.tensorDesc, 'tensor');
    if (unknown.length && !opts.dropUnknownFields) throw unknownFieldsError(unknown, 'tensor');
    const msg = s.Tensor.decode(buf) as unknown as PTensor;
    const baseDir = opts.baseDir ?? (opts.path ? dirname(resolve(opts.path)) : process.cwd());
    return tensorFromProto(msg, { baseDir, where: `tensor ${msg.name || '(unnamed)'}`, file: opts.path });
  } catch (e) {
    throw wrapDecodeError(e, 'ONNX tensor', opts.path);
  }
}

const ATTR_TYPES: Record<number, AttributeValue['type']> = {
  0: 'undefined',
  1: 'float',
  2: 'int',
  3: 'string',
  4: 'tensor',
  5: 'graph',
  6: 'floats',
  7: 'ints',
  8: 'strings',
  9: 'tensors',
  10: 'graphs',
  11: 'sparse_tensor',
  12: 'sparse_tensors',
  13: 'type_proto',
  14: 'type_protos',
};
const ATTR_TYPE_IDS = Object.fromEntries(Object.entries(ATTR_TYPES).map(([k, v]) => [v, Number(k)])) as Record<
  AttributeValue['type'],
  number
>;

/** The value field each attribute type uses, for IR version 1 models that leave `type` out. */
const ATTR_VALUE_FIELDS: [keyof PAttribute, AttributeValue['type'], boolean][] = [
  ['f', 'float', false],
  ['i', 'int', false],
  ['s', 'string', false],
  ['t', 'tensor', false],
  ['g', 'graph', false],
  ['sparse_tensor', 'sparse_tensor', false],
  ['tp', 'type_proto', false],
  ['floats', 'floats', true],
  ['ints', 'ints', true],
  ['strings', 'strings', true],
  ['tensors', 'tensors', true],
  ['graphs', 'graphs', true],
  ['sparse_tensors', 'sparse_tensors', true],
  ['type_protos', 'type_protos', true],
];

const TO_OBJECT: protobuf.IConversionOptions = { longs: String, enums: Number, defaults: false, arrays: false, oneofs: false };

class Decoder {
  constructor(
    private readonly s: Schema,
    private readonly baseDir: string,
    private readonly file: string | undefined,
    private readonly unknown: UnknownField[],
  ) {}

  model(m: PModel): Model {
    const graph = m.graph ? this.graph(m.graph, 'model.graph') : new Graph('');
    const model = new Model(graph, m.opset_import.map((o) => this.opset(o)));
    model.irVersion = safeNumberFromProto(m.ir_version, 'model.ir_version');
    model.producerName = m.producer_name;
    model.producerVersion = m.producer_version;
    model.domain = m.domain;
    model.modelVersion = safeNumberFromProto(m.model_version, 'model.model_version');
    model.docString = m.doc_string;
    model.metadataProps = pairsFromProto(m.metadata_props);
    model.trainingInfo = m.training_info.map((t, i) => this.trainingInfo(t, `model.training_info[${i}]`));
    model.functions = m.functions.map((f, i) => this.func(f, `model.functions[${i}]`));
    if (m.configuration.length) {
      model.opaque = { configuration: m.configuration.map((c) => this.s.DeviceConfiguration.toObject(c as protobuf.Message, TO_OBJECT)) };
    }
    return model;
  }

  private opset(o: POpset): OpsetId {
    return { domain: o.domain, version: safeNumberFromProto(o.version, 'opset_import.version') };
  }

  private trainingInfo(t: PTrainingInfo, path: string): TrainingInfo {
    const out: TrainingInfo = {
      initializationBinding: pairsFromProto(t.initialization_binding),
      updateBinding: pairsFromProto(t.update_binding),
    };
    if (t.initialization) out.initialization = this.graph(t.initialization, `${path}.initialization`);
    if (t.algorithm) out.algorithm = this.graph(t.algorithm, `${path}.algorithm`);
    return out;
  }

  private func(f: PFunction, path: string): OnnxFunction {
    return {
      name: f.name,
      domain: f.domain,
      overload: f.overload,
      inputs: f.input,
      outputs: f.output,
      attributes: f.attribute,
      attributeProtos: f.attribute_proto.map((a, i) => this.attribute(a, `${path}.attribute_proto[${i}]`)),
      nodes: f.node.map((n, i) => this.node(n, `${path}.node[${i}]`)),
      opsetImports: f.opset_import.map((o) => this.opset(o)),
      valueInfo: f.value_info.map((v) => this.valueInfo(v)),
      docString: f.doc_string,
      metadataProps: pairsFromProto(f.metadata_props),
    };
  }

  graph(g: PGraph, path: string): Graph {
    const graph = new Graph(g.name);
    graph.nodes = g.node.map((n, i) => this.node(n, `${path}.node[${i}]`));
    graph.initializers = g.initializer.map((t) => this.tensor(t, `${path} initializer ${t.name}`));
    graph.sparseInitializers = g.sparse_initializer.map((t, i) => this.sparse(t, `${path}.sparse_initializer[${i}]`));
    graph.inputs = g.input.map((v) => this.valueInfo(v));
    graph.outputs = g.output.map((v) => this.valueInfo(v));
    graph.valueInfo = g.value_info.map((v) => this.valueInfo(v));
    graph.quantizationAnnotation = g.quantization_annotation.map((q) => ({
      tensorName: q.tensor_name,
      quantParameterTensorNames: pairsFromProto(q.quant_parameter_tensor_names),
    }));
    graph.docString = g.doc_string;
    graph.metadataProps = pairsFromProto(g.metadata_props);
    return graph;
  }

  private node(n: PNode, path: string): Node {
    const node = new Node({
      opType: n.op_type,
      domain: n.domain,
      name: n.name,
      inputs: n.input,
      outputs: n.output,
      attributes: n.attribute.map((a, i) => this.attribute(a, `${path}.attribute[${i}]`)),
      overload: n.overload,
      docString: n.doc_string,
      metadataProps: pairsFromProto(n.metadata_props),
    });
    if (n.device_configurations.length) {
      node.opaque = {
        device_configurations: n.device_configurations.map((d) =>
          this.s.NodeDeviceConfiguration.toObject(d as protobuf.Message, TO_OBJECT),
        ),
      };
    }
    return node;
  }

  private attribute(a: PAttribute, path: string): Attribute {
    let type: AttributeValue['type'] | undefined;
    if (has(a, 'type')) {
      type = ATTR_TYPES[a.type];
      if (!type) {
        // An enum value newer than our schema: protobuf treats it as an unknown field, and so do we.
        this.unknown.push({ path, fieldNumber: 20, wireType: 0 });
        type = 'undefined';
      }
    } else {
      type = ATTR_VALUE_FIELDS.find(([f, , list]) => (list ? (a[f] as unknown[]).length > 0 : has(a, f)))?.[1] ?? 'undefined';
    }
    const value = this.attributeValue(a, type, path);
    const out: Attribute = { name: a.name, ...value };
    if (a.ref_attr_name) out.refAttrName = a.ref_attr_name;
    if (a.doc_string) out.docString = a.doc_string;
    return out;
  }

  private attributeValue(a: PAttribute, type: AttributeValue['type'], path: string): AttributeValue {
    const where = `${path} (${a.name})`;
    switch (type) {
      case 'float':
        return { type, value: a.f };
      case 'int':
        return { type, value: int64FromProto(a.i) };
      case 'string':
        return { type, value: plainBytes(a.s) };
      case 'tensor':
        return { type, value: a.t ? this.tensor(a.t, where) : emptyTensor() };
      case 'graph':
        return { type, value: a.g ? this.graph(a.g, `${path}.g`) : new Graph('') };
      case 'sparse_tensor':
        return { type, value: a.sparse_tensor ? this.sparse(a.sparse_tensor, where) : emptySparse() };
      case 'type_proto':
        return { type, value: a.tp ? this.type(a.tp) : { kind: 'none' } };
      case 'floats':
        return { type, value: a.floats };
      case 'ints':
        return { type, value: a.ints.map(int64FromProto) };
      case 'strings':
        return { type, value: a.strings.map(plainBytes) };
      case 'tensors':
        return { type, value: a.tensors.map((t) => this.tensor(t, where)) };
      case 'graphs':
        return { type, value: a.graphs.map((g, i) => this.graph(g, `${path}.graphs[${i}]`)) };
      case 'sparse_tensors':
        return { type, value: a.sparse_tensors.map((t) => this.sparse(t, where)) };
      case 'type_protos':
        return { type, value: a.type_protos.map((t) => this.type(t)) };
      case 'undefined':
        return { type };
    }
  }

  private tensor(t: PTensor, where: string): Tensor {
    return tensorFromProto(t, { baseDir: this.baseDir, where, file: this.file });
  }

  private sparse(s: PSparse, where: string): SparseTensor {
    return {
      values: s.values ? this.tensor(s.values, `${where} values`) : emptyTensor(),
      indices: s.indices ? this.tensor(s.indices, `${where} indices`) : emptyTensor(),
      dims: s.dims.map((d) => safeNumberFromProto(d, `${where} dims`)),
    };
  }

  private valueInfo(v: PValueInfo): ValueInfo {
    const out: ValueInfo = { name: v.name };
    if (v.type) out.type = this.type(v.type);
    if (v.doc_string) out.docString = v.doc_string;
    if (v.metadata_props.length) out.metadataProps = pairsFromProto(v.metadata_props);
    return out;
  }

  private type(t: PType): OnnxType {
    let out: OnnxType;
    const tensorLike = (tt: PTensorType) => {
      const r: { elemType: number; shape?: Dim[] } = { elemType: tt.elem_type };
      if (tt.shape) r.shape = tt.shape.dim.map((d) => this.dim(d));
      return r;
    };
    if (t.tensor_type) out = { kind: 'tensor', ...tensorLike(t.tensor_type) };
    else if (t.sparse_tensor_type) out = { kind: 'sparse_tensor', ...tensorLike(t.sparse_tensor_type) };
    else if (t.sequence_type) {
      out = { kind: 'sequence' };
      if (t.sequence_type.elem_type) out.elem = this.type(t.sequence_type.elem_type);
    } else if (t.map_type) {
      out = { kind: 'map', keyType: t.map_type.key_type };
      if (t.map_type.value_type) out.value = this.type(t.map_type.value_type);
    } else if (t.optional_type) {
      out = { kind: 'optional' };
      if (t.optional_type.elem_type) out.elem = this.type(t.optional_type.elem_type);
    } else if (t.opaque_type) out = { kind: 'opaque', domain: t.opaque_type.domain, name: t.opaque_type.name };
    else out = { kind: 'none' };
    if (t.denotation) out.denotation = t.denotation;
    return out;
  }

  private dim(d: PDim): Dim {
    const out: Dim = {};
    if (has(d, 'dim_value')) out.value = safeNumberFromProto(d.dim_value, 'dim_value');
    else if (has(d, 'dim_param')) out.param = d.dim_param;
    if (d.denotation) out.denotation = d.denotation;
    return out;
  }
}

function emptyTensor(): Tensor {
  return new Tensor('', 0, [], { kind: 'inline', bytes: new Uint8Array(0) });
}

function emptySparse(): SparseTensor {
  return { values: emptyTensor(), indices: emptyTensor(), dims: [] };
}

// ---------------------------------------------------------------------------------------------------------------
// Encode

export interface EncodeOptions {
  /** Write the model even though it holds fields this codec did not know when decoding (they are lost). */
  dropUnknownFields?: boolean;
}

export interface EncodeWithSourcesOptions extends EncodeOptions {
  /** Where each tensor's data goes in the written model (saveModel points large tensors at its data file). */
  sourceOf?: (t: Tensor) => TensorSource;
}

/** A model encoded up to the final copy: the size is known before the bytes are assembled. */
export interface PendingEncode {
  byteLength: number;
  finish(): Uint8Array;
}

function unknownFieldsError(unknown: readonly UnknownField[], what: string): OnnxError {
  const shown = unknown
    .slice(0, 5)
    .map((u) => `${u.path} field ${u.fieldNumber}`)
    .join(', ');
  const more = unknown.length > 5 ? ` and ${unknown.length - 5} more` : '';
  return new OnnxError('ONNX_UNKNOWN_FIELDS', `${what} holds protobuf fields this codec does not know: ${shown}${more}`, {
    fix: 'they would be lost: extend src/onnx/onnx.proto with them, or pass { dropUnknownFields: true } to drop them',
  });
}

/** Encodes the model to ModelProto bytes. Lazy tensors cannot be encoded here (use saveModel). */
export function encodeModel(model: Model, opts: EncodeOptions = {}): Uint8Array {
  return prepareModelEncode(model, opts).finish();
}

/** Throws (naming the paths) when the model holds fields the codec did not know, unless told to drop them. */
export function checkUnknownFields(model: Model, opts: EncodeOptions = {}): void {
  if (model.unknownFields.length && !opts.dropUnknownFields) throw unknownFieldsError(model.unknownFields, 'the model');
}

/** Builds the ModelProto and measures it; the caller decides (e.g. on size) whether to assemble the bytes. */
export function prepareModelEncode(model: Model, opts: EncodeWithSourcesOptions = {}): PendingEncode {
  checkUnknownFields(model, opts);
  const s = schema();
  const obj = new Encoder(s, opts.sourceOf ?? ((t) => t.source)).model(model);
  const writer = s.Model.encode(obj as protobuf.Message);
  return {
    byteLength: writer.len,
    finish: () => plainBytes(writer.finish()),
  };
}

/** Encodes one tensor as a TensorProto (the format of the backend tests' input_N.pb files). */
export function encodeTensor(t: Tensor): Uint8Array {
  const s = schema();
  return plainBytes(s.Tensor.encode(tensorToProto(t) as protobuf.Message).finish());
}

class Encoder {
  constructor(
    private readonly s: Schema,
    private readonly sourceOf: (t: Tensor) => TensorSource,
  ) {}

  model(m: Model): Out<PModel> {
    const out: Out<PModel> = {
      ir_version: int64ToProto(m.irVersion),
      opset_import: m.opsetImports.map((o) => ({ domain: o.domain, version: int64ToProto(o.version) })),
      graph: this.graph(m.graph),
    };
    if (m.producerName) out.producer_name = m.producerName;
    if (m.producerVersion) out.producer_version = m.producerVersion;
    if (m.domain) out.domain = m.domain;
    if (m.modelVersion) out.model_version = int64ToProto(m.modelVersion);
    if (m.docString) out.doc_string = m.docString;
    if (m.metadataProps.length) out.metadata_props = pairsToProto(m.metadataProps);
    if (m.trainingInfo.length) out.training_info = m.trainingInfo.map((t) => this.trainingInfo(t));
    if (m.functions.length) out.functions = m.functions.map((f) => this.func(f));
    const configuration = m.opaque?.configuration;
    if (Array.isArray(configuration)) {
      out.configuration = configuration.map((c) => this.s.DeviceConfiguration.fromObject(c as Record<string, unknown>));
    }
    return out;
  }

  private trainingInfo(t: TrainingInfo): Out<PTrainingInfo> {
    const out: Out<PTrainingInfo> = {
      initialization_binding: pairsToProto(t.initializationBinding),
      update_binding: pairsToProto(t.updateBinding),
    };
    if (t.initialization) out.initialization = this.graph(t.initialization);
    if (t.algorithm) out.algorithm = this.graph(t.algorithm);
    return out;
  }

  private func(f: OnnxFunction): Out<PFunction> {
    const out: Out<PFunction> = {
      name: f.name,
      input: f.inputs,
      output: f.outputs,
      attribute: f.attributes,
      attribute_proto: f.attributeProtos.map((a) => this.attribute(a)),
      node: f.nodes.map((n) => this.node(n)),
      opset_import: f.opsetImports.map((o) => ({ domain: o.domain, version: int64ToProto(o.version) })),
      value_info: f.valueInfo.map((v) => this.valueInfo(v)),
      metadata_props: pairsToProto(f.metadataProps),
    };
    if (f.domain) out.domain = f.domain;
    if (f.overload) out.overload = f.overload;
    if (f.docString) out.doc_string = f.docString;
    return out;
  }

  private graph(g: Graph): Out<PGraph> {
    const out: Out<PGraph> = {
      node: g.nodes.map((n) => this.node(n)),
      initializer: g.initializers.map((t) => this.tensor(t)),
      sparse_initializer: g.sparseInitializers.map((s) => this.sparse(s)),
      input: g.inputs.map((v) => this.valueInfo(v)),
      output: g.outputs.map((v) => this.valueInfo(v)),
      value_info: g.valueInfo.map((v) => this.valueInfo(v)),
      quantization_annotation: g.quantizationAnnotation.map((q) => ({
        tensor_name: q.tensorName,
        quant_parameter_tensor_names: pairsToProto(q.quantParameterTensorNames),
      })),
      metadata_props: pairsToProto(g.metadataProps),
    };
    if (g.name) out.name = g.name;
    if (g.docString) out.doc_string = g.docString;
    return out;
  }

  private node(n: Node): Out<PNode> {
    const out: Out<PNode> = {
      input: n.inputs,
      output: n.outputs,
      op_type: n.opType,
      attribute: n.attributes.map((a) => this.attribute(a)),
      metadata_props: pairsToProto(n.metadataProps),
    };
    if (n.name) out.name = n.name;
    if (n.domain) out.domain = n.domain;
    if (n.overload) out.overload = n.overload;
    if (n.docString) out.doc_string = n.docString;
    const dc = n.opaque?.device_configurations;
    if (Array.isArray(dc)) {
      out.device_configurations = dc.map((d) => this.s.NodeDeviceConfiguration.fromObject(d as Record<string, unknown>));
    }
    return out;
  }

  private attribute(a: Attribute): Out<PAttribute> {
    const out: Out<PAttribute> = { name: a.name, type: ATTR_TYPE_IDS[a.type] };
    if (a.docString) out.doc_string = a.docString;
    if (a.refAttrName) {
      // A reference to the calling node's attribute carries no value of its own.
      out.ref_attr_name = a.refAttrName;
      return out;
    }
    switch (a.type) {
      case 'float':
        out.f = a.value;
        break;
      case 'int':
        out.i = int64ToProto(a.value);
        break;
      case 'string':
        out.s = a.value;
        break;
      case 'tensor':
        out.t = this.tensor(a.value);
        break;
      case 'graph':
        out.g = this.graph(a.value);
        break;
      case 'sparse_tensor':
        out.sparse_tensor = this.sparse(a.value);
        break;
      case 'type_proto':
        out.tp = this.type(a.value);
        break;
      case 'floats':
        out.floats = a.value;
        break;
      case 'ints':
        out.ints = a.value.map(int64ToProto);
        break;
      case 'strings':
        out.strings = a.value;
        break;
      case 'tensors':
        out.tensors = a.value.map((t) => this.tensor(t));
        break;
      case 'graphs':
        out.graphs = a.value.map((g) => this.graph(g));
        break;
      case 'sparse_tensors':
        out.sparse_tensors = a.value.map((s) => this.sparse(s));
        break;
      case 'type_protos':
        out.type_protos = a.value.map((t) => this.type(t));
        break;
      case 'undefined':
        break;
    }
    return out;
  }

  private tensor(t: Tensor): Out<PTensor> {
    return tensorToProto(t, this.sourceOf(t));
  }

  private sparse(s: SparseTensor): Out<PSparse> {
    return { values: this.tensor(s.values), indices: this.tensor(s.indices), dims: s.dims.map(int64ToProto) };
  }

  private valueInfo(v: ValueInfo): Out<PValueInfo> {
    const out: Out<PValueInfo> = { name: v.name };
    if (v.type) out.type = this.type(v.type);
    if (v.docString) out.doc_string = v.docString;
    if (v.metadataProps?.length) out.metadata_props = pairsToProto(v.metadataProps);
    return out;
  }

  private type(t: OnnxType): Out<PType> {
    const out: Out<PType> = {};
    const tensorLike = (elemType: number, shape: Dim[] | undefined): Out<PTensorType> => {
      const r: Out<PTensorType> = { elem_type: elemType };
      if (shape) r.shape = { dim: shape.map((d) => this.dim(d)) };
      return r;
    };
    switch (t.kind) {
      case 'tensor':
        out.tensor_type = tensorLike(t.elemType, t.shape);
        break;
      case 'sparse_tensor':
        out.sparse_tensor_type = tensorLike(t.elemType, t.shape);
        break;
      case 'sequence':
        out.sequence_type = t.elem ? { elem_type: this.type(t.elem) } : {};
        break;
      case 'map':
        out.map_type = { key_type: t.keyType };
        if (t.value) out.map_type.value_type = this.type(t.value);
        break;
      case 'optional':
        out.optional_type = t.elem ? { elem_type: this.type(t.elem) } : {};
        break;
      case 'opaque':
        out.opaque_type = { domain: t.domain, name: t.name };
        break;
      case 'none':
        break;
    }
    if (t.denotation) out.denotation = t.denotation;
    return out;
  }

  private dim(d: Dim): Out<PDim> {
    const out: Out<PDim> = {};
    if (d.value !== undefined) out.dim_value = int64ToProto(d.value);
    else if (d.param !== undefined) out.dim_param = d.param;
    if (d.denotation) out.denotation = d.denotation;
    return out;
  }
}
