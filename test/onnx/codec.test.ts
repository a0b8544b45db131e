// The protobuf codec: every dtype path, every attribute type, subgraphs, functions, sparse tensors, metadata,
// unknown fields and external data references — checked against onnx-proto (an independent ONNX 1.10 schema),
// hand-computed bytes, and onnxruntime-node running what we encode.
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { decodeModel, decodeTensor, encodeModel, encodeTensor } from '../../src/onnx/codec.js';
import { DataType } from '../../src/onnx/dtype.js';
import { Graph, Model, Node, Tensor, attr, tensorType, type Attribute } from '../../src/onnx/ir.js';
import { toFloat32 } from '../../src/onnx/tensor.js';
import { OnnxError } from '../../src/util/errors.js';
import { expectSameIr, runOrt } from '../helpers/onnx.js';

const { onnx } = onnxProto;
type TensorFields = Parameters<typeof onnx.TensorProto.create>[0];

const INT64_MAX = 9223372036854775807n;
const utf8 = new TextEncoder();

/** An int64 for onnx-proto's writer, which takes {low, high} halves for values a double cannot hold. */
function long(v: bigint): number {
  return { low: Number(BigInt.asIntN(32, v)), high: Number(BigInt.asIntN(32, v >> 32n)), unsigned: false } as unknown as number;
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function protoTensor(fields: TensorFields): Uint8Array {
  return onnx.TensorProto.encode(onnx.TensorProto.create(fields)).finish();
}

function roundTrip(m: Model): Model {
  const again = decodeModel(encodeModel(m));
  expectSameIr(m, again, 'model after encode → decode');
  return again;
}

function expectOnnxError(fn: () => unknown, code: string): OnnxError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(OnnxError);
    expect((e as OnnxError).code).toBe(code);
    return e as OnnxError;
  }
  throw new Error(`expected an OnnxError ${code}`);
}

// ---------------------------------------------------------------------------------------------------------------

describe('tensor data types', () => {
  // [name, data type, dims, typed fields as another writer (onnx-proto) stores them, the raw bytes they mean]
  const cases: [string, number, number[], TensorFields, Uint8Array][] = [
    ['FLOAT', DataType.FLOAT, [2], { floatData: [1.5, -2] }, bytesOf(new Float32Array([1.5, -2]))],
    ['DOUBLE', DataType.DOUBLE, [2], { doubleData: [0.1, -3] }, bytesOf(new Float64Array([0.1, -3]))],
    ['COMPLEX64', DataType.COMPLEX64, [2], { floatData: [1, 2, 3, 4] }, bytesOf(new Float32Array([1, 2, 3, 4]))],
    ['COMPLEX128', DataType.COMPLEX128, [1], { doubleData: [1, -2] }, bytesOf(new Float64Array([1, -2]))],
    ['INT64', DataType.INT64, [3], { int64Data: [long(INT64_MAX), -1, 5] }, bytesOf(BigInt64Array.from([INT64_MAX, -1n, 5n]))],
    ['UINT64', DataType.UINT64, [2], { uint64Data: [long(2n ** 64n - 1n), 3] }, bytesOf(BigUint64Array.from([2n ** 64n - 1n, 3n]))],
    ['UINT32 (in uint64_data)', DataType.UINT32, [2], { uint64Data: [4294967295, 7] }, bytesOf(new Uint32Array([4294967295, 7]))],
    ['INT32', DataType.INT32, [2], { int32Data: [-1, 2147483647] }, bytesOf(new Int32Array([-1, 2147483647]))],
    ['INT16 (in int32_data)', DataType.INT16, [2], { int32Data: [-2, 300] }, bytesOf(new Int16Array([-2, 300]))],
    ['UINT16 (in int32_data)', DataType.UINT16, [2], { int32Data: [65535, 1] }, bytesOf(new Uint16Array([65535, 1]))],
    ['FLOAT16 bits (in int32_data)', DataType.FLOAT16, [2], { int32Data: [0x3c00, 0xc000] }, bytesOf(new Uint16Array([0x3c00, 0xc000]))],
    ['BFLOAT16 bits (in int32_data)', DataType.BFLOAT16, [2], { int32Data: [0x3f80, 0xc000] }, bytesOf(new Uint16Array([0x3f80, 0xc000]))],
    ['INT8 (in int32_data)', DataType.INT8, [3], { int32Data: [-1, 127, -128] }, new Uint8Array([0xff, 0x7f, 0x80])],
    ['UINT8 (in int32_data)', DataType.UINT8, [2], { int32Data: [0, 255] }, new Uint8Array([0, 255])],
    ['BOOL (in int32_data)', DataType.BOOL, [3], { int32Data: [1, 0, 1] }, new Uint8Array([1, 0, 1])],
    ['FLOAT8E4M3FN', DataType.FLOAT8E4M3FN, [2], { int32Data: [0x38, 0x7e] }, new Uint8Array([0x38, 0x7e])],
    ['FLOAT8E4M3FNUZ', DataType.FLOAT8E4M3FNUZ, [1], { int32Data: [0x40] }, new Uint8Array([0x40])],
    ['FLOAT8E5M2', DataType.FLOAT8E5M2, [1], { int32Data: [0x3c] }, new Uint8Array([0x3c])],
    ['FLOAT8E5M2FNUZ', DataType.FLOAT8E5M2FNUZ, [1], { int32Data: [0x40] }, new Uint8Array([0x40])],
    ['FLOAT8E8M0', DataType.FLOAT8E8M0, [2], { int32Data: [0x7f, 0x80] }, new Uint8Array([0x7f, 0x80])],
    // 4-bit: two elements per int32 item, first in the low nibble: [1, 2, -1] → 0x21, 0x0f.
    ['INT4 (two per item)', DataType.INT4, [3], { int32Data: [0x21, 0x0f] }, new Uint8Array([0x21, 0x0f])],
    ['UINT4 (two per item)', DataType.UINT4, [4], { int32Data: [0xba, 0xdc] }, new Uint8Array([0xba, 0xdc])],
    ['FLOAT4E2M1 (two per item)', DataType.FLOAT4E2M1, [2], { int32Data: [0x72] }, new Uint8Array([0x72])],
    // 2-bit: four per item, bits 0-1 first: [0, 1, 2, 3, 1] → 0b11100100, 0b01.
    ['INT2 (four per item)', DataType.INT2, [5], { int32Data: [0xe4, 0x01] }, new Uint8Array([0xe4, 0x01])],
    ['UINT2 (four per item)', DataType.UINT2, [4], { int32Data: [0x1b] }, new Uint8Array([0x1b])],
  ];

  it.each(cases)('%s: typed field → raw little-endian bytes, and back through raw_data', (_, dataType, dims, fields, raw) => {
    const t = decodeTensor(protoTensor({ name: 't', dataType, dims, ...fields }));
    expect(t.dataType).toBe(dataType);
    expect(t.dims).toEqual(dims);
    expect(t.source.kind).toBe('inline');
    expect(Buffer.from(t.source.kind === 'inline' ? t.source.bytes : [])).toEqual(Buffer.from(raw));
    expect(t.byteLength).toBe(t.expectedByteLength);

    // What we write is raw_data, which an independent decoder reads back as the same bytes.
    const ours = encodeTensor(t);
    const other = onnx.TensorProto.decode(ours);
    expect(other.dataType).toBe(dataType);
    expect(other.dims.map(Number)).toEqual(dims);
    expect(Buffer.from(other.rawData)).toEqual(Buffer.from(raw));
    expectSameIr(decodeTensor(ours), t);
  });

  it('keeps raw_data as given (a zero-copy view of the input)', () => {
    const raw = bytesOf(new Float32Array([3, 4, 5]));
    const bytes = protoTensor({ name: 'r', dataType: DataType.FLOAT, dims: [3], rawData: raw });
    const t = decodeTensor(bytes);
    expect(t.source.kind).toBe('inline');
    const view = t.source.kind === 'inline' ? t.source.bytes : new Uint8Array();
    expect(view.buffer).toBe(bytes.buffer);
    expect(Object.getPrototypeOf(view)).toBe(Uint8Array.prototype); // not a Buffer: .slice() must copy
    expect([...toFloat32(view, DataType.FLOAT)]).toEqual([3, 4, 5]);
  });

  it('reads fp16/bf16 values stored as int32 bit patterns', async () => {
    const h = decodeTensor(protoTensor({ dataType: DataType.FLOAT16, dims: [3], int32Data: [0x3c00, 0xc000, 0x3555] }));
    expect([...(await h.float32())]).toEqual([1, -2, 0.333251953125]);
    const b = decodeTensor(protoTensor({ dataType: DataType.BFLOAT16, dims: [2], int32Data: [0x3f80, 0x4049] }));
    expect([...(await b.float32())]).toEqual([1, 3.140625]);
  });

  it('keeps STRING tensors as byte strings', () => {
    const t = decodeTensor(protoTensor({ dataType: DataType.STRING, dims: [2], stringData: [utf8.encode('héllo'), new Uint8Array()] }));
    expect(t.source.kind).toBe('strings');
    const values = t.source.kind === 'strings' ? t.source.values : [];
    expect(values.map((v) => new TextDecoder().decode(v))).toEqual(['héllo', '']);
    const other = onnx.TensorProto.decode(encodeTensor(t));
    expect(other.stringData.map((v) => new TextDecoder().decode(v))).toEqual(['héllo', '']);
  });

  it('refuses values in the wrong typed field instead of guessing', () => {
    expectOnnxError(() => decodeTensor(protoTensor({ dataType: DataType.FLOAT, dims: [1], int32Data: [1] })), 'ONNX_TENSOR_DATA');
    expectOnnxError(
      () => decodeTensor(protoTensor({ dataType: DataType.FLOAT, dims: [1], floatData: [1], rawData: new Uint8Array(4) })),
      'ONNX_TENSOR_DATA',
    );
  });

  it('reports TensorProto.segment (which the IR cannot hold) as an unknown field', () => {
    const bytes = protoTensor({ dataType: DataType.FLOAT, dims: [1], floatData: [1], segment: { begin: 0, end: 1 } });
    expectOnnxError(() => decodeTensor(bytes), 'ONNX_UNKNOWN_FIELDS');
    expect(decodeTensor(bytes, { dropUnknownFields: true }).byteLength).toBe(4);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('external data references', () => {
  const ext = (entries: [string, string][], dims = [2, 3]) =>
    protoTensor({
      name: 'w',
      dataType: DataType.FLOAT,
      dims,
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: entries.map(([key, value]) => ({ key, value })),
    });

  it('resolves the location against the base folder without reading anything', () => {
    const t = decodeTensor(ext([['location', 'sub/w.bin'], ['offset', '4096'], ['length', '24'], ['checksum', 'abc']]), {
      baseDir: '/models/m',
    });
    expect(t.source).toEqual({ kind: 'external', path: '/models/m/sub/w.bin', location: 'sub/w.bin', dir: '/models/m', offset: 4096, length: 24, extra: [['checksum', 'abc']] });
    expect(t.isExternal).toBe(true);
    // Written back as external_data entries an independent reader understands.
    const other = onnx.TensorProto.decode(encodeTensor(t));
    expect(other.dataLocation).toBe(onnx.TensorProto.DataLocation.EXTERNAL);
    expect(other.externalData.map((e) => [e.key, e.value])).toEqual([
      ['location', 'sub/w.bin'],
      ['offset', '4096'],
      ['length', '24'],
      ['checksum', 'abc'],
    ]);
  });

  it('defaults offset to 0 and length to what dtype and shape need; the model path sets the base folder', () => {
    const t = decodeTensor(ext([['location', 'w.bin']]), { path: '/a/b/model.onnx' });
    expect(t.source).toMatchObject({ path: '/a/b/w.bin', offset: 0, length: 24 });
  });

  it('refuses locations outside the model folder and malformed numbers', () => {
    expectOnnxError(() => decodeTensor(ext([['location', '../secret']])), 'ONNX_EXTERNAL_INFO');
    expectOnnxError(() => decodeTensor(ext([['location', '/etc/passwd']])), 'ONNX_EXTERNAL_INFO');
    expectOnnxError(() => decodeTensor(ext([['offset', '0']])), 'ONNX_EXTERNAL_INFO');
    expectOnnxError(() => decodeTensor(ext([['location', 'w'], ['offset', '-5']])), 'ONNX_EXTERNAL_INFO');
    expectOnnxError(() => decodeTensor(ext([['location', 'w'], ['length', '1e3']])), 'ONNX_EXTERNAL_INFO');
  });

  it('refuses a length shorter or longer than dtype × shape needs, naming the tensor and both sizes', () => {
    for (const length of ['20', '28', '0']) {
      const e = expectOnnxError(() => decodeTensor(ext([['location', 'w.bin'], ['length', length]])), 'ONNX_TENSOR_SIZE');
      expect(e.message).toContain(`tensor w: external data length is ${length} bytes, but FLOAT[2, 3] needs 24`);
    }
    // Sub-byte types round up to whole bytes: 5 INT4 values are 3 bytes.
    const int4 = protoTensor({ name: 'q', dataType: DataType.INT4, dims: [5], dataLocation: onnx.TensorProto.DataLocation.EXTERNAL, externalData: [{ key: 'location', value: 'q.bin' }, { key: 'length', value: '3' }] });
    expect(decodeTensor(int4).byteLength).toBe(3);
    // Inline data is held to the same rule (raw_data or typed values).
    const raw = expectOnnxError(() => decodeTensor(protoTensor({ name: 'r', dataType: DataType.FLOAT, dims: [4], rawData: new Uint8Array(12) })), 'ONNX_TENSOR_SIZE');
    expect(raw.message).toContain('tensor r: holds 12 bytes of data, but FLOAT[4] needs 16');
    expectOnnxError(() => decodeTensor(protoTensor({ name: 'f', dataType: DataType.FLOAT, dims: [2, 2], floatData: [1, 2, 3] })), 'ONNX_TENSOR_SIZE');
  });
});

// ---------------------------------------------------------------------------------------------------------------

function smallGraph(name: string, out: string, input: string): Graph {
  const g = new Graph(name);
  g.outputs.push({ name: out, type: tensorType(DataType.FLOAT, [1]) });
  g.addNode({ opType: 'Identity', inputs: [input], outputs: [out] });
  return g;
}

function everyAttribute(): Attribute[] {
  const t1 = Tensor.fromFloat32('t1', [2], new Float32Array([1, 2]));
  const t2 = Tensor.fromInt64('t2', [1], [INT64_MAX]);
  const sparse = { values: Tensor.fromFloat32('sv', [1], new Float32Array([9])), indices: Tensor.fromInt64('si', [1], [2]), dims: [4] };
  return [
    attr.float('f', Math.fround(0.1)), // attributes are float32
    attr.float('f_neg_zero', -0),
    attr.int('i', -1),
    attr.int('i_max', INT64_MAX),
    attr.int('i_min', -(2n ** 63n)),
    attr.int('i_big', 2n ** 53n + 1n),
    attr.string('s', 'héllo'),
    { name: 's_bytes', type: 'string', value: new Uint8Array([0, 255, 128]) },
    attr.tensor('t', t1),
    attr.graph('g', smallGraph('g_body', 'g_out', 'outer')),
    { name: 'sp', type: 'sparse_tensor', value: sparse },
    { name: 'tp', type: 'type_proto', value: { kind: 'sequence', elem: tensorType(DataType.INT64, ['n', 3]) } },
    attr.floats('fs', [1.5, -0.25]),
    attr.ints('is', [0, -1, INT64_MAX, 42]),
    attr.strings('ss', ['a', '', 'ç']),
    { name: 'ts', type: 'tensors', value: [t1.withName('t1b'), t2] },
    { name: 'gs', type: 'graphs', value: [smallGraph('a', 'ao', 'x'), smallGraph('b', 'bo', 'x')] },
    { name: 'sps', type: 'sparse_tensors', value: [sparse] },
    {
      name: 'tps',
      type: 'type_protos',
      value: [
        { kind: 'map', keyType: DataType.STRING, value: tensorType(DataType.FLOAT, []) },
        { kind: 'optional', elem: { kind: 'sparse_tensor', elemType: DataType.FLOAT, shape: [{ param: 'k', denotation: 'FEATURE' }] } },
        { kind: 'opaque', domain: 'd', name: 'n', denotation: 'IMAGE' },
        { kind: 'none' },
        { kind: 'tensor', elemType: DataType.FLOAT },
      ],
    },
    { name: 'empty_ints', type: 'ints', value: [] },
    { name: 'u', type: 'undefined' },
    { name: 'doc', type: 'int', value: 3, docString: 'documented' },
  ];
}

describe('attributes', () => {
  it('every attribute type survives encode → decode', () => {
    const g = new Graph('main');
    g.addNode({ opType: 'Custom', domain: 'test.domain', name: 'n0', inputs: ['x'], outputs: ['y'], attributes: everyAttribute() });
    const m = new Model(g, [{ domain: '', version: 21 }, { domain: 'test.domain', version: 1 }]);
    const back = roundTrip(m);
    const a = (name: string) => back.graph.nodes[0].attribute(name)!;
    expect(a('i_max')).toMatchObject({ type: 'int', value: INT64_MAX });
    expect(a('i_min')).toMatchObject({ type: 'int', value: -(2n ** 63n) });
    expect(a('i_big')).toMatchObject({ type: 'int', value: 2n ** 53n + 1n });
    expect(a('i')).toMatchObject({ type: 'int', value: -1 });
    expect(typeof (a('i') as { value: unknown }).value).toBe('number');
    expect(a('f')).toMatchObject({ type: 'float', value: Math.fround(0.1) });
    expect(Object.is((a('f_neg_zero') as { value: number }).value, -0)).toBe(true);
  });

  it('an independent decoder reads the same attribute values', () => {
    const g = new Graph('main');
    g.addNode({ opType: 'Custom', domain: 'test.domain', inputs: ['x'], outputs: ['y'], attributes: everyAttribute() });
    const other = onnx.ModelProto.decode(encodeModel(new Model(g)));
    const byName = new Map(other.graph!.node![0].attribute!.map((x) => [x.name, x]));
    const T = onnx.AttributeProto.AttributeType;
    expect(byName.get('i_max')!.type).toBe(T.INT);
    expect(String(byName.get('i_max')!.i)).toBe(INT64_MAX.toString());
    expect(byName.get('is')!.ints!.map(String)).toEqual(['0', '-1', INT64_MAX.toString(), '42']);
    expect(new TextDecoder().decode(byName.get('s')!.s)).toBe('héllo');
    expect(byName.get('ss')!.strings!.map((s) => new TextDecoder().decode(s))).toEqual(['a', '', 'ç']);
    expect(byName.get('fs')!.floats).toEqual([1.5, -0.25]);
    expect(byName.get('g')!.g!.node![0].opType).toBe('Identity');
    expect(byName.get('gs')!.graphs!.map((x) => x.name)).toEqual(['a', 'b']);
    expect(byName.get('t')!.t!.name).toBe('t1');
    expect(byName.get('sp')!.sparseTensor!.dims!.map(Number)).toEqual([4]);
    expect(byName.get('tp')!.tp!.sequenceType!.elemType!.tensorType!.elemType).toBe(DataType.INT64);
    expect(byName.get('tps')!.typeProtos).toHaveLength(5);
  });

  it('INT64_MAX in a Slice ends attribute reaches onnxruntime exactly (x[:, 1:])', async () => {
    const g = new Graph('slice');
    g.inputs.push({ name: 'x', type: tensorType(DataType.FLOAT, [2, 5]) });
    g.outputs.push({ name: 'y', type: tensorType(DataType.FLOAT, [2, 4]) });
    g.addNode({
      opType: 'Slice',
      inputs: ['x'],
      outputs: ['y'],
      attributes: [attr.ints('starts', [1]), attr.ints('ends', [INT64_MAX]), attr.ints('axes', [1])],
    });
    const m = new Model(g, [{ domain: '', version: 9 }]);
    m.irVersion = 4;
    const back = roundTrip(m);
    expect(back.graph.nodes[0].attribute('ends')).toMatchObject({ value: [INT64_MAX] });
    const x = Float32Array.from({ length: 10 }, (_, i) => i);
    const { y } = await runOrt(encodeModel(back), { x: new ort.Tensor('float32', x, [2, 5]) });
    expect([...(y.data as Float32Array)]).toEqual([1, 2, 3, 4, 6, 7, 8, 9]);
  });

  it('reads IR-version-1 attributes without a type field from the value field that is set', () => {
    const model = onnx.ModelProto.encode(
      onnx.ModelProto.create({
        irVersion: 1,
        graph: { node: [{ opType: 'X', attribute: [{ name: 'a', i: 7 }, { name: 'b', floats: [1, 2] }, { name: 'c' }] }] },
      }),
    ).finish();
    const n = decodeModel(model).graph.nodes[0];
    expect(n.attributes.map((a) => [a.name, a.type])).toEqual([
      ['a', 'int'],
      ['b', 'floats'],
      ['c', 'undefined'],
    ]);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('subgraphs, functions, sparse initializers', () => {
  it('If: both branches (one capturing an outer value, one with its own initializer) run in onnxruntime', async () => {
    const F = DataType.FLOAT;
    const g = new Graph('if_model');
    g.inputs.push({ name: 'x', type: tensorType(F, [3]) }, { name: 'c', type: tensorType(DataType.BOOL, []) });
    g.outputs.push({ name: 'y', type: tensorType(F, [3]) });
    const thenG = new Graph('then');
    thenG.addInitializer(Tensor.fromFloat32('one', [], new Float32Array([1])));
    thenG.outputs.push({ name: 't', type: tensorType(F, [3]) });
    thenG.addNode({ opType: 'Add', inputs: ['x', 'one'], outputs: ['t'] });
    const elseG = new Graph('else');
    elseG.outputs.push({ name: 'e', type: tensorType(F, [3]) });
    elseG.addNode({ opType: 'Mul', inputs: ['x', 'x'], outputs: ['e'] });
    g.addNode({ opType: 'If', inputs: ['c'], outputs: ['y'], attributes: [attr.graph('then_branch', thenG), attr.graph('else_branch', elseG)] });
    const bytes = encodeModel(roundTrip(new Model(g)));
    const x = new ort.Tensor('float32', new Float32Array([1, 2, 3]), [3]);
    const yes = await runOrt(bytes, { x, c: new ort.Tensor('bool', new Uint8Array([1]), []) });
    const no = await runOrt(bytes, { x, c: new ort.Tensor('bool', new Uint8Array([0]), []) });
    expect([...(yes.y.data as Float32Array)]).toEqual([2, 3, 4]);
    expect([...(no.y.data as Float32Array)]).toEqual([1, 4, 9]);
  });

  it('Loop: three iterations of v += x give 4x', async () => {
    const F = DataType.FLOAT;
    const g = new Graph('loop_model');
    g.inputs.push({ name: 'x', type: tensorType(F, [3]) });
    g.outputs.push({ name: 'y', type: tensorType(F, [3]) });
    g.addInitializer(Tensor.fromInt64('M', [], [3]));
    g.addInitializer(Tensor.fromBytes('cond', DataType.BOOL, [], new Uint8Array([1])));
    const body = new Graph('body');
    body.inputs.push(
      { name: 'iter', type: tensorType(DataType.INT64, []) },
      { name: 'cond_in', type: tensorType(DataType.BOOL, []) },
      { name: 'v_in', type: tensorType(F, [3]) },
    );
    body.outputs.push({ name: 'cond_out', type: tensorType(DataType.BOOL, []) }, { name: 'v_out', type: tensorType(F, [3]) });
    body.addNode({ opType: 'Identity', inputs: ['cond_in'], outputs: ['cond_out'] });
    body.addNode({ opType: 'Add', inputs: ['v_in', 'x'], outputs: ['v_out'] });
    g.addNode({ opType: 'Loop', inputs: ['M', 'cond', 'x'], outputs: ['y'], attributes: [attr.graph('body', body)] });
    const bytes = encodeModel(roundTrip(new Model(g)));
    const { y } = await runOrt(bytes, { x: new ort.Tensor('float32', new Float32Array([1, -2, 0.5]), [3]) });
    expect([...(y.data as Float32Array)]).toEqual([4, -8, 2]);
  });

  it('a model-local function with a default attribute, a ref attribute, overload, value_info and metadata', async () => {
    const F = DataType.FLOAT;
    const g = new Graph('fn_model');
    g.inputs.push({ name: 'x', type: tensorType(F, [2]) });
    g.outputs.push({ name: 'y2', type: tensorType(F, [2]) }, { name: 'y3', type: tensorType(F, [2]) });
    g.addNode({ opType: 'Scale', domain: 'local', inputs: ['x'], outputs: ['y2'] });
    g.addNode({ opType: 'Scale', domain: 'local', inputs: ['x'], outputs: ['y3'], attributes: [attr.float('alpha', 3)] });
    const m = new Model(g, [{ domain: '', version: 21 }, { domain: 'local', version: 1 }]);
    m.functions.push({
      name: 'Scale',
      domain: 'local',
      overload: '',
      inputs: ['X'],
      outputs: ['Y'],
      attributes: [],
      attributeProtos: [attr.float('alpha', 2)],
      nodes: [
        new Node({ opType: 'Constant', inputs: [], outputs: ['a'], attributes: [{ name: 'value_float', type: 'float', value: 0, refAttrName: 'alpha' }] }),
        new Node({ opType: 'Mul', inputs: ['X', 'a'], outputs: ['Y'] }),
      ],
      opsetImports: [{ domain: '', version: 21 }],
      valueInfo: [{ name: 'a', type: tensorType(F, []) }],
      docString: 'Y = alpha * X',
      metadataProps: [['origin', 'test']],
    });
    const back = roundTrip(m);
    const { y2, y3 } = await runOrt(encodeModel(back), { x: new ort.Tensor('float32', new Float32Array([1, -4]), [2]) });
    expect([...(y2.data as Float32Array)]).toEqual([2, -8]);
    expect([...(y3.data as Float32Array)]).toEqual([3, -12]);
    // An overloaded copy keeps its overload name and carries no value on the ref attribute.
    back.functions.push({ ...back.functions[0], overload: 'v2' });
    const again = roundTrip(back);
    expect(again.functions.map((f) => f.overload)).toEqual(['', 'v2']);
    expect(again.functions[0].nodes[0].attributes[0]).toMatchObject({ refAttrName: 'alpha' });
  });

  it('a sparse initializer (linear indices) becomes the dense tensor onnxruntime adds', async () => {
    const F = DataType.FLOAT;
    const g = new Graph('sparse_model');
    g.inputs.push({ name: 'x', type: tensorType(F, [4]) });
    g.outputs.push({ name: 'y', type: tensorType(F, [4]) });
    g.sparseInitializers.push({ values: Tensor.fromFloat32('S', [2], new Float32Array([5, 7])), indices: Tensor.fromInt64('S_idx', [2], [1, 3]), dims: [4] });
    g.addNode({ opType: 'Add', inputs: ['x', 'S'], outputs: ['y'] });
    const back = roundTrip(new Model(g));
    expect(back.graph.sparseInitializers[0].dims).toEqual([4]);
    const { y } = await runOrt(encodeModel(back), { x: new ort.Tensor('float32', new Float32Array([1, 1, 1, 1]), [4]) });
    expect([...(y.data as Float32Array)]).toEqual([1, 6, 1, 8]);
  });

  it('training_info graphs and bindings round-trip', () => {
    const m = new Model(smallGraph('main', 'y', 'x'));
    m.trainingInfo.push({
      initialization: smallGraph('init', 'w0', 'seed'),
      algorithm: smallGraph('step', 'w1', 'w'),
      initializationBinding: [['w', 'w0']],
      updateBinding: [['w', 'w1']],
    });
    m.trainingInfo.push({ initializationBinding: [], updateBinding: [] });
    const back = roundTrip(m);
    const other = onnx.ModelProto.decode(encodeModel(m));
    expect(other.trainingInfo[0].updateBinding![0]).toMatchObject({ key: 'w', value: 'w1' });
    expect(back.trainingInfo[1].initialization).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('metadata, quantization annotations, multi-device configuration', () => {
  it('metadata_props on model, graph, node, value_info and tensor; doc strings; denotations', () => {
    const g = new Graph('main');
    g.docString = 'graph doc';
    g.metadataProps = [['graph_key', 'g']];
    g.inputs.push({ name: 'x', type: { ...tensorType(DataType.FLOAT, ['batch', 3]), denotation: 'TENSOR' }, docString: 'in', metadataProps: [['vi', '1']] });
    g.outputs.push({ name: 'y', type: tensorType(DataType.FLOAT, ['batch', 3]) });
    g.valueInfo.push({ name: 'mid' });
    const w = Tensor.fromFloat32('w', [3], new Float32Array([1, 2, 3]));
    w.docString = 'weights';
    w.metadataProps = [['quant', 'none']];
    g.addInitializer(w);
    g.quantizationAnnotation.push({ tensorName: 'w', quantParameterTensorNames: [['SCALE_TENSOR', 'w_scale']] });
    g.addNode({ opType: 'Add', name: 'add', inputs: ['x', 'w'], outputs: ['y'], docString: 'node doc', metadataProps: [['node_key', 'n']] });
    const m = new Model(g);
    m.producerName = 'phi-forge';
    m.producerVersion = '0.1';
    m.domain = 'ai.test';
    m.modelVersion = 12;
    m.docString = 'model doc';
    m.metadataProps = [['k', 'v'], ['k2', '']];
    const back = roundTrip(m);
    expect(back.graph.nodes[0].metadataProps).toEqual([['node_key', 'n']]);
    expect(back.graph.initializers[0].metadataProps).toEqual([['quant', 'none']]);
    expect(back.graph.inputs[0].metadataProps).toEqual([['vi', '1']]);
    expect(back.graph.metadataProps).toEqual([['graph_key', 'g']]);
    expect(back.graph.quantizationAnnotation[0].quantParameterTensorNames).toEqual([['SCALE_TENSOR', 'w_scale']]);
    const other = onnx.ModelProto.decode(encodeModel(m));
    expect(other.metadataProps.map((p) => [p.key, p.value])).toEqual([['k', 'v'], ['k2', '']]);
    expect(other.graph!.input![0].type!.denotation).toBe('TENSOR');
    expect(other.graph!.input![0].type!.tensorType!.shape!.dim!.map((d) => d.dimParam || Number(d.dimValue))).toEqual(['batch', 3]);
  });

  it('device configurations (ONNX 1.18+) survive as opaque data, identical on the wire', () => {
    const s = protobuf.parse(
      `syntax = "proto2";
       message SimpleShardedDimProto { oneof dim { int64 dim_value = 1; string dim_param = 2; } optional int64 num_shards = 3; }
       message ShardedDimProto { optional int64 axis = 1; repeated SimpleShardedDimProto simple_sharding = 2; }
       message ShardingSpecProto { optional string tensor_name = 1; repeated int64 device = 2; repeated ShardedDimProto sharded_dim = 4; }
       message NodeDeviceConfigurationProto { optional string configuration_id = 1; repeated ShardingSpecProto sharding_spec = 2; optional int32 pipeline_stage = 3; }
       message DeviceConfigurationProto { optional string name = 1; optional int32 num_devices = 2; repeated string device = 3; }
       message NodeProto { repeated string input = 1; repeated string output = 2; optional string op_type = 4; repeated NodeDeviceConfigurationProto device_configurations = 10; }
       message GraphProto { repeated NodeProto node = 1; }
       message ModelProto { optional int64 ir_version = 1; optional GraphProto graph = 7; repeated DeviceConfigurationProto configuration = 26; }`,
      { keepCase: true },
    ).root;
    const M = s.lookupType('ModelProto');
    const bytes = M.encode({
      ir_version: 11,
      graph: {
        node: [
          {
            input: ['x'],
            output: ['y'],
            op_type: 'Relu',
            device_configurations: [
              { configuration_id: 'mesh', sharding_spec: [{ tensor_name: 'x', device: [0, 1], sharded_dim: [{ axis: 0, simple_sharding: [{ dim_param: 'b', num_shards: 2 }] }] }], pipeline_stage: 1 },
            ],
          },
        ],
      },
      configuration: [{ name: 'mesh', num_devices: 2, device: ['gpu0', 'gpu1'] }],
    }).finish();
    const m = decodeModel(bytes);
    expect(m.unknownFields).toEqual([]);
    expect(m.opaque).toEqual({ configuration: [{ name: 'mesh', num_devices: 2, device: ['gpu0', 'gpu1'] }] });
    expect(m.graph.nodes[0].opaque?.device_configurations).toEqual([
      { configuration_id: 'mesh', sharding_spec: [{ tensor_name: 'x', device: ['0', '1'], sharded_dim: [{ axis: '0', simple_sharding: [{ dim_param: 'b', num_shards: '2' }] }] }], pipeline_stage: 1 },
    ]);
    const again = encodeModel(m);
    expect(M.toObject(M.decode(again), { longs: String })).toEqual(M.toObject(M.decode(bytes), { longs: String }));
    roundTrip(m);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('unknown fields and malformed input', () => {
  /** A model whose node carries field 99 (varint) and a group 77, with field 1234 (bytes) at the top level. */
  function modelWithUnknownFields(): Uint8Array {
    const node = protobuf.Writer.create();
    node.uint32((4 << 3) | 2).string('Relu');
    node.uint32((1 << 3) | 2).string('x');
    node.uint32((2 << 3) | 2).string('y');
    node.uint32((99 << 3) | 0).uint64(5);
    node.uint32((77 << 3) | 3).uint32((1 << 3) | 0).uint32(1).uint32((77 << 3) | 4); // group { 1: 1 }
    const graph = protobuf.Writer.create();
    graph.uint32((1 << 3) | 2).bytes(node.finish());
    graph.uint32((2 << 3) | 2).string('g');
    const model = protobuf.Writer.create();
    model.uint32((1 << 3) | 0).int64(10);
    model.uint32((7 << 3) | 2).bytes(graph.finish());
    model.uint32((1234 << 3) | 2).bytes(new Uint8Array([1, 2, 3]));
    return model.finish();
  }

  it('records each unknown field with its path and refuses to encode silently without them', () => {
    const m = decodeModel(modelWithUnknownFields());
    expect(m.graph.nodes[0].opType).toBe('Relu');
    expect(m.unknownFields).toEqual([
      { path: 'model.graph.node[0]', fieldNumber: 99, wireType: 0 },
      { path: 'model.graph.node[0]', fieldNumber: 77, wireType: 3 },
      { path: 'model', fieldNumber: 1234, wireType: 2 },
    ]);
    const e = expectOnnxError(() => encodeModel(m), 'ONNX_UNKNOWN_FIELDS');
    expect(e.message).toContain('model.graph.node[0] field 99');
    expect(e.message).toContain('model field 1234');
    const dropped = decodeModel(encodeModel(m, { dropUnknownFields: true }));
    expect(dropped.unknownFields).toEqual([]);
    expect(dropped.graph.nodes[0].outputs).toEqual(['y']);
  });

  it('reports an attribute type newer than the schema as an unknown field', () => {
    const bytes = onnx.ModelProto.encode(
      onnx.ModelProto.create({ irVersion: 10, graph: { node: [{ opType: 'X', attribute: [{ name: 'a', type: 42 as never }] }] } }),
    ).finish();
    const m = decodeModel(bytes);
    expect(m.unknownFields).toEqual([{ path: 'model.graph.node[0].attribute[0]', fieldNumber: 20, wireType: 0 }]);
    expect(m.graph.nodes[0].attributes[0].type).toBe('undefined');
  });

  it('turns garbage, truncation and wrong wire types into OnnxError', () => {
    const good = encodeModel(new Model(smallGraph('main', 'y', 'x')));
    expectOnnxError(() => decodeModel(good.subarray(0, good.length - 3)), 'ONNX_PROTOBUF_INVALID');
    expectOnnxError(() => decodeModel(new Uint8Array([0xff, 0xff, 0xff])), 'ONNX_PROTOBUF_INVALID');
    // ir_version (field 1) sent as a length-delimited field.
    expectOnnxError(() => decodeModel(new Uint8Array([(1 << 3) | 2, 1, 0])), 'ONNX_PROTOBUF_INVALID');
    expect(() => decodeModel(new TextEncoder().encode('not a model at all'))).toThrow(OnnxError);
  });

  it('decodes an empty buffer as an empty model (protobuf has no magic number)', () => {
    const m = decodeModel(new Uint8Array());
    expect(m.graph.nodes).toEqual([]);
    expect(m.irVersion).toBe(0);
  });
});

describe('encoding', () => {
  it('refuses a lazy tensor (saveModel streams those) and an inline STRING tensor', () => {
    const g = new Graph('main');
    g.addInitializer(Tensor.lazy('w', DataType.FLOAT, [2], () => new Uint8Array(8)));
    expectOnnxError(() => encodeModel(new Model(g)), 'ONNX_LAZY_TENSOR');
    const s = new Graph('main');
    s.addInitializer(Tensor.fromBytes('s', DataType.STRING, [1], new Uint8Array([65])));
    expectOnnxError(() => encodeModel(new Model(s)), 'ONNX_STRING_TENSOR');
  });

  it('is deterministic and stable: encode(decode(encode(m))) is byte-identical', () => {
    const g = new Graph('main');
    g.addNode({ opType: 'Custom', domain: 'test.domain', inputs: ['x'], outputs: ['y'], attributes: everyAttribute() });
    const first = encodeModel(new Model(g));
    expect(Buffer.from(encodeModel(decodeModel(first)))).toEqual(Buffer.from(first));
  });
});
