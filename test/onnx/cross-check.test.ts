// Independent decoder cross-check: every model we write decodes with onnx-proto (generated from the ONNX 1.10
// schema, on its own protobufjs copy) and every field that schema knows equals what our codec decoded.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeModel, encodeModel } from '../../src/onnx/codec.js';
import { buildDemoModel } from '../../src/onnx/inspect.js';
import type { Attribute, Graph, Model, Node, OnnxType, SparseTensor, ValueInfo } from '../../src/onnx/ir.js';
import { saveModel } from '../../src/onnx/model-file.js';
import type { StringPair, Tensor } from '../../src/onnx/tensor.js';
import { CORPUS_DIR, corpusCases, requireInCi, sampleModels } from '../helpers/onnx.js';

const { onnx } = onnxProto;
type PModel = InstanceType<typeof onnx.ModelProto>;
type PGraph = InstanceType<typeof onnx.GraphProto>;
type PNode = InstanceType<typeof onnx.NodeProto>;
type PTensor = InstanceType<typeof onnx.TensorProto>;
type PType = InstanceType<typeof onnx.TypeProto>;
type PAttr = InstanceType<typeof onnx.AttributeProto>;
type PValueInfo = InstanceType<typeof onnx.ValueInfoProto>;
type PInt = number | { toString(): string } | null | undefined;

/** Compares our IR with onnx-proto's decoding of the same bytes, field by field; returns the differences. */
class CrossCheck {
  readonly diffs: string[] = [];

  private eq(path: string, ours: unknown, theirs: unknown): void {
    if (this.diffs.length < 20 && !Object.is(ours, theirs)) this.diffs.push(`${path}: ours ${String(ours)} vs onnx-proto ${String(theirs)}`);
  }
  private int(path: string, ours: number | bigint, theirs: PInt): void {
    this.eq(path, BigInt(ours), BigInt(String(theirs ?? 0)));
  }
  private bytes(path: string, ours: Uint8Array, theirs: Uint8Array | null | undefined): void {
    if (Buffer.compare(Buffer.from(ours), Buffer.from(theirs ?? [])) !== 0) this.eq(path, `bytes(${ours.length})`, `bytes(${theirs?.length})`);
  }
  private list<A, B>(path: string, ours: readonly A[], theirs: readonly B[] | null | undefined, f: (p: string, a: A, b: B) => void): void {
    const t = theirs ?? [];
    this.eq(`${path}.length`, ours.length, t.length);
    ours.forEach((a, i) => i < t.length && f(`${path}[${i}]`, a, t[i]));
  }
  private pairs(path: string, ours: readonly StringPair[], theirs: readonly { key?: string | null; value?: string | null }[] | null | undefined): void {
    this.list(path, ours, theirs, (p, [k, v], e) => {
      this.eq(`${p}.key`, k, e.key ?? '');
      this.eq(`${p}.value`, v, e.value ?? '');
    });
  }

  model(m: Model, o: PModel): void {
    this.int('ir_version', m.irVersion, o.irVersion);
    this.list('opset_import', m.opsetImports, o.opsetImport, (p, a, b) => {
      this.eq(`${p}.domain`, a.domain, b.domain ?? '');
      this.int(`${p}.version`, a.version, b.version);
    });
    this.eq('producer_name', m.producerName, o.producerName);
    this.eq('producer_version', m.producerVersion, o.producerVersion);
    this.eq('domain', m.domain, o.domain);
    this.int('model_version', m.modelVersion, o.modelVersion);
    this.eq('doc_string', m.docString, o.docString);
    this.pairs('metadata_props', m.metadataProps, o.metadataProps);
    this.graph('graph', m.graph, o.graph as PGraph);
    this.list('training_info', m.trainingInfo, o.trainingInfo, (p, a, b) => {
      this.eq(`${p}.initialization?`, !!a.initialization, !!b.initialization);
      if (a.initialization) this.graph(`${p}.initialization`, a.initialization, b.initialization as PGraph);
      if (a.algorithm) this.graph(`${p}.algorithm`, a.algorithm, b.algorithm as PGraph);
      this.pairs(`${p}.initialization_binding`, a.initializationBinding, b.initializationBinding);
      this.pairs(`${p}.update_binding`, a.updateBinding, b.updateBinding);
    });
    this.list('functions', m.functions, o.functions, (p, a, b) => {
      this.eq(`${p}.name`, a.name, b.name);
      this.eq(`${p}.domain`, a.domain, b.domain ?? '');
      this.eq(`${p}.input`, a.inputs.join(), (b.input ?? []).join());
      this.eq(`${p}.output`, a.outputs.join(), (b.output ?? []).join());
      this.eq(`${p}.attribute`, a.attributes.join(), (b.attribute ?? []).join());
      this.eq(`${p}.doc_string`, a.docString, b.docString ?? '');
      this.list(`${p}.node`, a.nodes, b.node, (q, x, y) => this.node(q, x, y as PNode));
    });
  }

  graph(path: string, g: Graph, o: PGraph | null | undefined): void {
    if (!o) return this.eq(path, 'graph', 'absent');
    this.eq(`${path}.name`, g.name, o.name);
    this.eq(`${path}.doc_string`, g.docString, o.docString);
    this.list(`${path}.node`, g.nodes, o.node, (p, a, b) => this.node(p, a, b as PNode));
    this.list(`${path}.initializer`, g.initializers, o.initializer, (p, a, b) => this.tensor(p, a, b as PTensor));
    this.list(`${path}.sparse_initializer`, g.sparseInitializers, o.sparseInitializer, (p, a, b) => this.sparse(p, a, b));
    for (const k of ['input', 'output', 'value_info'] as const) {
      const ours = k === 'input' ? g.inputs : k === 'output' ? g.outputs : g.valueInfo;
      const theirs = k === 'input' ? o.input : k === 'output' ? o.output : o.valueInfo;
      this.list(`${path}.${k}`, ours, theirs, (p, a, b) => this.valueInfo(p, a, b as PValueInfo));
    }
    this.list(`${path}.quantization_annotation`, g.quantizationAnnotation, o.quantizationAnnotation, (p, a, b) => {
      this.eq(`${p}.tensor_name`, a.tensorName, b.tensorName);
      this.pairs(`${p}.quant_parameter_tensor_names`, a.quantParameterTensorNames, b.quantParameterTensorNames);
    });
  }

  private node(path: string, n: Node, o: PNode): void {
    this.eq(`${path}.op_type`, n.opType, o.opType);
    this.eq(`${path}.domain`, n.domain, o.domain ?? '');
    this.eq(`${path}.name`, n.name, o.name ?? '');
    this.eq(`${path}.doc_string`, n.docString, o.docString ?? '');
    this.eq(`${path}.input`, JSON.stringify(n.inputs), JSON.stringify(o.input ?? []));
    this.eq(`${path}.output`, JSON.stringify(n.outputs), JSON.stringify(o.output ?? []));
    this.list(`${path}.attribute`, n.attributes, o.attribute, (p, a, b) => this.attribute(p, a, b as PAttr));
  }

  private attribute(path: string, a: Attribute, o: PAttr): void {
    const T = onnx.AttributeProto.AttributeType;
    const types: Record<Attribute['type'], number> = {
      undefined: T.UNDEFINED, float: T.FLOAT, int: T.INT, string: T.STRING, tensor: T.TENSOR, graph: T.GRAPH,
      sparse_tensor: T.SPARSE_TENSOR, type_proto: T.TYPE_PROTO, floats: T.FLOATS, ints: T.INTS, strings: T.STRINGS,
      tensors: T.TENSORS, graphs: T.GRAPHS, sparse_tensors: T.SPARSE_TENSORS, type_protos: T.TYPE_PROTOS,
    };
    this.eq(`${path}.name`, a.name, o.name);
    this.eq(`${path}.type`, types[a.type], o.type);
    this.eq(`${path}.ref_attr_name`, a.refAttrName ?? '', o.refAttrName ?? '');
    this.eq(`${path}.doc_string`, a.docString ?? '', o.docString ?? '');
    if (a.refAttrName) return;
    switch (a.type) {
      case 'float':
        return this.eq(`${path}.f`, a.value, o.f);
      case 'int':
        return this.int(`${path}.i`, a.value, o.i);
      case 'string':
        return this.bytes(`${path}.s`, a.value, o.s);
      case 'tensor':
        return this.tensor(`${path}.t`, a.value, o.t as PTensor);
      case 'graph':
        return this.graph(`${path}.g`, a.value, o.g as PGraph);
      case 'sparse_tensor':
        return this.sparse(`${path}.sparse_tensor`, a.value, o.sparseTensor!);
      case 'type_proto':
        return this.type(`${path}.tp`, a.value, o.tp as PType);
      case 'floats':
        return this.list(`${path}.floats`, a.value, o.floats, (p, x, y) => this.eq(p, x, y));
      case 'ints':
        return this.list(`${path}.ints`, a.value, o.ints, (p, x, y) => this.int(p, x, y));
      case 'strings':
        return this.list(`${path}.strings`, a.value, o.strings, (p, x, y) => this.bytes(p, x, y));
      case 'tensors':
        return this.list(`${path}.tensors`, a.value, o.tensors, (p, x, y) => this.tensor(p, x, y as PTensor));
      case 'graphs':
        return this.list(`${path}.graphs`, a.value, o.graphs, (p, x, y) => this.graph(p, x, y as PGraph));
      case 'sparse_tensors':
        return this.list(`${path}.sparse_tensors`, a.value, o.sparseTensors, (p, x, y) => this.sparse(p, x, y));
      case 'type_protos':
        return this.list(`${path}.type_protos`, a.value, o.typeProtos, (p, x, y) => this.type(p, x, y as PType));
      case 'undefined':
        return;
    }
  }

  private sparse(path: string, s: SparseTensor, o: { values?: unknown; indices?: unknown; dims?: PInt[] | null }): void {
    this.tensor(`${path}.values`, s.values, o.values as PTensor);
    this.tensor(`${path}.indices`, s.indices, o.indices as PTensor);
    this.list(`${path}.dims`, s.dims, o.dims, (p, a, b) => this.int(p, a, b));
  }

  private tensor(path: string, t: Tensor, o: PTensor | null | undefined): void {
    if (!o) return this.eq(path, 'tensor', 'absent');
    this.eq(`${path}.name`, t.name, o.name ?? '');
    this.eq(`${path}.data_type`, t.dataType, o.dataType);
    this.eq(`${path}.doc_string`, t.docString, o.docString ?? '');
    this.list(`${path}.dims`, t.dims, o.dims, (p, a, b) => this.int(p, a, b));
    const s = t.source;
    if (s.kind === 'inline') this.bytes(`${path}.raw_data`, s.bytes, o.rawData);
    else if (s.kind === 'strings') this.list(`${path}.string_data`, s.values, o.stringData, (p, a, b) => this.bytes(p, a, b));
    else if (s.kind === 'external') {
      this.eq(`${path}.data_location`, onnx.TensorProto.DataLocation.EXTERNAL, o.dataLocation);
      const want: StringPair[] = [['location', s.location], ['offset', String(s.offset)], ['length', String(s.length)], ...(s.extra ?? [])];
      this.pairs(`${path}.external_data`, want, o.externalData);
    }
  }

  private valueInfo(path: string, v: ValueInfo, o: PValueInfo): void {
    this.eq(`${path}.name`, v.name, o.name);
    this.eq(`${path}.doc_string`, v.docString ?? '', o.docString ?? '');
    this.eq(`${path}.type?`, !!v.type, !!o.type);
    if (v.type) this.type(`${path}.type`, v.type, o.type as PType);
  }

  private type(path: string, t: OnnxType, o: PType | null | undefined): void {
    if (!o) return this.eq(path, t.kind, 'absent');
    this.eq(`${path}.denotation`, t.denotation ?? '', o.denotation ?? '');
    switch (t.kind) {
      case 'tensor':
      case 'sparse_tensor': {
        const tt = t.kind === 'tensor' ? o.tensorType : o.sparseTensorType;
        if (!tt) return this.eq(`${path}.kind`, t.kind, o.value);
        this.eq(`${path}.elem_type`, t.elemType, tt.elemType);
        this.eq(`${path}.shape?`, !!t.shape, !!tt.shape);
        if (t.shape && tt.shape) {
          this.list(`${path}.shape`, t.shape, tt.shape.dim, (p, d, od) => {
            if (d.value !== undefined) this.int(`${p}.dim_value`, d.value, od.dimValue);
            this.eq(`${p}.dim_param`, d.param ?? '', od.dimParam ?? '');
            this.eq(`${p}.denotation`, d.denotation ?? '', od.denotation ?? '');
          });
        }
        return;
      }
      case 'sequence':
        this.eq(`${path}.kind`, 'sequenceType', o.value);
        if (t.elem) this.type(`${path}.elem`, t.elem, o.sequenceType?.elemType as PType);
        return;
      case 'optional':
        this.eq(`${path}.kind`, 'optionalType', o.value);
        if (t.elem) this.type(`${path}.elem`, t.elem, o.optionalType?.elemType as PType);
        return;
      case 'map':
        this.eq(`${path}.kind`, 'mapType', o.value);
        this.eq(`${path}.key_type`, t.keyType, o.mapType?.keyType);
        if (t.value) this.type(`${path}.value`, t.value, o.mapType?.valueType as PType);
        return;
      case 'opaque': // not in the ONNX 1.10 (non-ML) schema: onnx-proto sees no type at all
      case 'none':
        return this.eq(`${path}.kind`, undefined, o.value);
    }
  }
}

/** Differences between our decoding of `bytes` and onnx-proto's decoding of `theirBytes` (the same bytes by default). */
function crossCheck(bytes: Uint8Array, theirBytes = bytes): string[] {
  const ours = decodeModel(bytes);
  const theirs = onnx.ModelProto.decode(theirBytes);
  const c = new CrossCheck();
  c.model(ours, theirs);
  return c.diffs;
}

const tmpRoots: string[] = [];
afterAll(async () => {
  for (const d of tmpRoots) await rm(d, { recursive: true, force: true });
});

describe('onnx-proto (ONNX 1.10 schema) reads what we write', () => {
  it('the comparison itself sees differences (a model against a slightly different one)', () => {
    const [, a] = sampleModels()[0];
    const bytes = encodeModel(a);
    a.graph.nodes[0].setAttribute({ name: 'i_max', type: 'int', value: 9223372036854775806n });
    a.producerVersion = '2';
    const diffs = crossCheck(bytes, encodeModel(a));
    expect(diffs).toContain('producer_version: ours 1 vs onnx-proto 2');
    expect(diffs).toContain('graph.node[0].attribute[2].i: ours 9223372036854775807 vs onnx-proto 9223372036854775806');
  });

  it.each(sampleModels())('%s', (_, model) => {
    expect(crossCheck(encodeModel(model))).toEqual([]);
  });

  it('the demo model saved with external data', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'phi-forge-xcheck-'));
    tmpRoots.push(dir);
    await saveModel(buildDemoModel(), join(dir, 'demo.onnx'));
    const bytes = await readFile(join(dir, 'demo.onnx'));
    expect(crossCheck(bytes)).toEqual([]);
    const other = onnx.ModelProto.decode(bytes);
    expect(other.graph!.initializer!.find((t) => t.name === 'W')!.externalData!.map((e) => e.key)).toEqual(['location', 'offset', 'length']);
  });

  it('every re-encoded model of the backend-test corpus', async () => {
    requireInCi(existsSync(CORPUS_DIR), CORPUS_DIR);
    const cases = corpusCases();
    if (!cases.length) return;
    const failures: string[] = [];
    for (const c of cases) {
      const diffs = crossCheck(encodeModel(decodeModel(await readFile(c.model))));
      if (diffs.length) failures.push(`${c.kind}/${c.name}: ${diffs.slice(0, 3).join('; ')}`);
    }
    console.log(`cross-check: ${cases.length - failures.length} of ${cases.length} corpus models agree with onnx-proto`);
    expect(failures).toEqual([]);
    expect(cases.length).toBe(1072);
  });
});
