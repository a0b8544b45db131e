// Test helpers for the ONNX codec: IR equality (with paths of the differences), the backend-test corpus, seeded RNG.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { DataType } from '../../src/onnx/dtype.js';
import { Graph, Model, Node, attr, tensorType } from '../../src/onnx/ir.js';
import { Tensor, float16BitsToFloat32 } from '../../src/onnx/tensor.js';

/**
 * Differences between two IR values (models, graphs, tensors...), as `path: a vs b` lines; empty when equal.
 * Own enumerable properties are compared (absent and `undefined` count as the same), bytes by content, numbers with
 * Object.is (NaN equals NaN, -0 differs from 0), number and bigint never equal. Lazy tensor sources compare by their
 * producer function.
 */
export function irDiff(a: unknown, b: unknown, limit = 20): string[] {
  const out: string[] = [];
  walk(a, b, '', out, limit);
  return out;
}

function show(v: unknown): string {
  if (typeof v === 'bigint') return `${v}n`;
  if (v instanceof Uint8Array) return `bytes(${v.byteLength})`;
  if (Array.isArray(v)) return `array(${v.length})`;
  if (v && typeof v === 'object') return v.constructor?.name ?? 'object';
  return JSON.stringify(v) ?? String(v);
}

function walk(a: unknown, b: unknown, path: string, out: string[], limit: number): void {
  if (out.length >= limit) return;
  const at = path || '(root)';
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array && b instanceof Uint8Array) || Buffer.compare(a, b) !== 0) {
      out.push(`${at}: ${show(a)} vs ${show(b)}${a instanceof Uint8Array && b instanceof Uint8Array ? ' (content differs)' : ''}`);
    }
    return;
  }
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) {
    if (typeof a === 'function' || typeof b === 'function') {
      if (a !== b) out.push(`${at}: different functions`);
      return;
    }
    if (!Object.is(a, b)) out.push(`${at}: ${show(a)} vs ${show(b)}`);
    return;
  }
  if (Array.isArray(a) !== Array.isArray(b) || Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) {
    if (!(a instanceof Tensor && b instanceof Tensor)) {
      out.push(`${at}: ${show(a)} vs ${show(b)}`);
      return;
    }
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) out.push(`${at}: length ${a.length} vs ${b.length}`);
    for (let i = 0; i < Math.min(a.length, b.length); i++) walk(a[i], b[i], `${path}[${i}]`, out, limit);
    return;
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const keys = new Set([...Object.keys(ao), ...Object.keys(bo)]);
  for (const k of keys) {
    if (ao[k] === undefined && bo[k] === undefined) continue;
    walk(ao[k], bo[k], path ? `${path}.${k}` : k, out, limit);
  }
}

/** Throws with the differences when two IR values differ (vitest shows the message). */
export function expectSameIr(a: unknown, b: unknown, what = 'IR'): void {
  const d = irDiff(a, b);
  if (d.length) throw new Error(`${what} differs:\n  ${d.join('\n  ')}`);
}

// ---------------------------------------------------------------------------------------------------------------
// The ONNX backend-test corpus (Debian's libonnx-testdata)

export const CORPUS_DIR = '/usr/share/libonnx-testdata/data';
export const CORPUS_KINDS = ['node', 'pytorch-converted', 'pytorch-operator', 'simple'] as const;

export interface CorpusCase {
  kind: string;
  name: string;
  dir: string;
  model: string;
  /** test_data_set_* folders, sorted. */
  dataSets: string[];
}

/** Every model of the corpus (empty when it is not installed), sorted by kind then name. */
export function corpusCases(): CorpusCase[] {
  if (!existsSync(CORPUS_DIR)) return [];
  const cases: CorpusCase[] = [];
  for (const kind of CORPUS_KINDS) {
    const kindDir = join(CORPUS_DIR, kind);
    if (!existsSync(kindDir)) continue;
    for (const name of readdirSync(kindDir).sort()) {
      const dir = join(kindDir, name);
      const model = join(dir, 'model.onnx');
      if (!existsSync(model)) continue;
      const dataSets = readdirSync(dir)
        .filter((d) => d.startsWith('test_data_set_'))
        .sort()
        .map((d) => join(dir, d));
      cases.push({ kind, name, dir, model, dataSets });
    }
  }
  return cases;
}

/** Files of one data set in index order (input_0.pb, input_1.pb, ... — numeric order, not lexical). */
export function dataSetFiles(dataSet: string, prefix: 'input' | 'output'): string[] {
  return readdirSync(dataSet)
    .map((f) => /^(input|output)_(\d+)\.pb$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null && m[1] === prefix)
    .sort((x, y) => Number(x[2]) - Number(y[2]))
    .map((m) => join(dataSet, m[0]));
}

/** Fails (instead of skipping) when CI=true and a needed data folder is missing. */
export function requireInCi(present: boolean, what: string): void {
  if (!present && process.env.CI === 'true') throw new Error(`${what} is missing on CI (installed by .ci/run)`);
}

/** Deterministic uniform numbers in [0, 1) (mulberry32). */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------------------------
// onnxruntime-node glue

/** Runs a model (bytes, or a path when it has external data) once and releases the session. */
export async function runOrt(model: Uint8Array | string, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const session = typeof model === 'string' ? await ort.InferenceSession.create(model) : await ort.InferenceSession.create(model);
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

const ORT_TYPES: Partial<Record<number, ort.Tensor.Type>> = {
  [DataType.FLOAT]: 'float32',
  [DataType.UINT8]: 'uint8',
  [DataType.INT8]: 'int8',
  [DataType.UINT16]: 'uint16',
  [DataType.INT16]: 'int16',
  [DataType.INT32]: 'int32',
  [DataType.INT64]: 'int64',
  [DataType.STRING]: 'string',
  [DataType.BOOL]: 'bool',
  [DataType.FLOAT16]: 'float16',
  [DataType.DOUBLE]: 'float64',
  [DataType.UINT32]: 'uint32',
  [DataType.UINT64]: 'uint64',
};

/** The onnxruntime tensor type for an ONNX element type, if onnxruntime-node can feed it. */
export function ortTypeOf(dataType: number): ort.Tensor.Type | undefined {
  return ORT_TYPES[dataType];
}

/** An IR tensor as an onnxruntime tensor (copied into an aligned typed array). */
export async function toOrtTensor(t: Tensor): Promise<ort.Tensor> {
  const type = ortTypeOf(t.dataType);
  if (!type) throw new Error(`onnxruntime-node cannot take ${t.dataType}`);
  if (t.source.kind === 'strings') {
    const dec = new TextDecoder();
    return new ort.Tensor('string', t.source.values.map((v) => dec.decode(v)), t.dims);
  }
  const buf = (await t.bytes()).slice().buffer;
  const views: Record<string, (b: ArrayBuffer) => ort.Tensor.DataType> = {
    float32: (b) => new Float32Array(b),
    uint8: (b) => new Uint8Array(b),
    int8: (b) => new Int8Array(b),
    uint16: (b) => new Uint16Array(b),
    int16: (b) => new Int16Array(b),
    int32: (b) => new Int32Array(b),
    int64: (b) => new BigInt64Array(b),
    bool: (b) => new Uint8Array(b),
    float16: (b) => new Uint16Array(b),
    float64: (b) => new Float64Array(b),
    uint32: (b) => new Uint32Array(b),
    uint64: (b) => new BigUint64Array(b),
  };
  return new ort.Tensor(type, views[type](buf) as never, t.dims);
}

/**
 * Compares an onnxruntime output with an expected IR tensor as onnx's backend tests do (numpy assert_allclose:
 * |actual − expected| ≤ atol + rtol·|expected|, NaN equal to NaN); integers, bools and strings exactly.
 * Returns a reason when they differ.
 */
export async function compareOutput(actual: ort.Tensor, expected: Tensor, rtol = 1e-3, atol = 1e-7): Promise<string | undefined> {
  const dims = [...actual.dims];
  if (dims.length !== expected.dims.length || dims.some((d, i) => d !== expected.dims[i])) {
    return `shape [${dims}] vs expected [${expected.dims}]`;
  }
  const want = await toOrtTensor(expected);
  if (actual.type !== want.type) return `type ${actual.type} vs expected ${want.type}`;
  const a = actual.data as ArrayLike<number | bigint | string>;
  const b = want.data as ArrayLike<number | bigint | string>;
  if (a.length !== b.length) return `${a.length} values vs ${b.length}`;
  const float = actual.type === 'float32' || actual.type === 'float64' || actual.type === 'float16';
  const half = actual.type === 'float16' ? float16BitsToFloat32(a as Uint16Array) : undefined;
  const halfWant = actual.type === 'float16' ? float16BitsToFloat32(b as Uint16Array) : undefined;
  for (let i = 0; i < a.length; i++) {
    if (float) {
      const x = half ? half[i] : (a[i] as number);
      const y = halfWant ? halfWant[i] : (b[i] as number);
      if (Number.isNaN(x) && Number.isNaN(y)) continue;
      if (x === y) continue;
      if (!(Math.abs(x - y) <= atol + rtol * Math.abs(y))) return `value ${i}: ${x} vs expected ${y}`;
    } else if (a[i] !== b[i]) return `value ${i}: ${String(a[i])} vs expected ${String(b[i])}`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Sample models written by our own code (for the cross-check and fuzz tests)

function identityGraph(name: string, out: string, input: string): Graph {
  const g = new Graph(name);
  g.outputs.push({ name: out, type: tensorType(DataType.FLOAT, [1]) });
  g.addNode({ opType: 'Identity', inputs: [input], outputs: [out] });
  return g;
}

/** Models covering every part of the format: attributes of all types, subgraphs, functions, sparse, metadata, external refs. */
export function sampleModels(): [string, Model][] {
  const F = DataType.FLOAT;
  const sparse = { values: Tensor.fromFloat32('sv', [2], new Float32Array([5, 7])), indices: Tensor.fromInt64('si', [2], [1, 3]), dims: [4] };

  const attrs = new Graph('attributes');
  attrs.inputs.push({ name: 'x', type: tensorType(F, ['batch', 3]), docString: 'input', metadataProps: [['k', 'v']] });
  attrs.outputs.push({ name: 'y', type: { kind: 'sequence', elem: tensorType(DataType.INT64, ['n']) } });
  attrs.valueInfo.push({ name: 'm', type: { kind: 'map', keyType: DataType.STRING, value: tensorType(F, []) } });
  attrs.valueInfo.push({ name: 'o', type: { kind: 'optional', elem: { kind: 'sparse_tensor', elemType: F, shape: [{ value: 4, denotation: 'FEATURE' }] } } });
  attrs.valueInfo.push({ name: 'q', type: { kind: 'opaque', domain: 'd', name: 'n' } });
  attrs.addNode({
    opType: 'Custom',
    domain: 'test.domain',
    name: 'n0',
    inputs: ['x', ''],
    outputs: ['y'],
    docString: 'node doc',
    metadataProps: [['node', 'meta']],
    attributes: [
      attr.float('f', 0.25),
      attr.int('i', -1),
      attr.int('i_max', 9223372036854775807n),
      attr.string('s', 'héllo'),
      attr.tensor('t', Tensor.fromFloat32('t1', [2], new Float32Array([1, 2]))),
      attr.graph('g', identityGraph('g_body', 'g_out', 'x')),
      { name: 'sp', type: 'sparse_tensor', value: sparse },
      { name: 'tp', type: 'type_proto', value: tensorType(F, [2]) },
      attr.floats('fs', [1.5, -0.25]),
      attr.ints('is', [0, -1, -(2n ** 63n)]),
      attr.strings('ss', ['a', '']),
      { name: 'ts', type: 'tensors', value: [Tensor.fromInt64('t2', [1], [7])] },
      { name: 'gs', type: 'graphs', value: [identityGraph('a', 'ao', 'x'), identityGraph('b', 'bo', 'x')] },
      { name: 'sps', type: 'sparse_tensors', value: [sparse] },
      { name: 'tps', type: 'type_protos', value: [{ kind: 'none' }, tensorType(F)] },
      { name: 'u', type: 'undefined' },
    ],
  });
  attrs.sparseInitializers.push(sparse);
  attrs.quantizationAnnotation.push({ tensorName: 'x', quantParameterTensorNames: [['SCALE_TENSOR', 's']] });
  attrs.metadataProps = [['graph', 'meta']];
  const m1 = new Model(attrs, [{ domain: '', version: 21 }, { domain: 'test.domain', version: 1 }]);
  m1.producerName = 'phi-forge-test';
  m1.producerVersion = '1';
  m1.domain = 'ai.test';
  m1.modelVersion = 3;
  m1.docString = 'sample';
  m1.metadataProps = [['model', 'meta']];
  m1.trainingInfo.push({ algorithm: identityGraph('step', 'w1', 'w'), initializationBinding: [], updateBinding: [['w', 'w1']] });

  const tensors = new Graph('tensors');
  const ext = new Tensor('ext', F, [2, 2], { kind: 'external', path: '/m/w.bin', location: 'w.bin', dir: '/m', offset: 64, length: 16, extra: [['checksum', '00']] });
  tensors.initializers.push(
    Tensor.fromFloat32('f32', [2], new Float32Array([1, -1])),
    Tensor.fromBytes('f16', DataType.FLOAT16, [2], new Uint8Array([0, 0x3c, 0, 0xc0])),
    Tensor.fromBytes('i4', DataType.INT4, [3], new Uint8Array([0x21, 0x0f])),
    Tensor.fromBytes('u2', DataType.UINT2, [5], new Uint8Array([0xe4, 0x01])),
    Tensor.fromBytes('f8', DataType.FLOAT8E4M3FN, [1], new Uint8Array([0x38])),
    Tensor.fromBytes('f4', DataType.FLOAT4E2M1, [2], new Uint8Array([0x72])),
    Tensor.fromBytes('e8m0', DataType.FLOAT8E8M0, [1], new Uint8Array([0x7f])),
    Tensor.fromInt64('i64', [2], [9223372036854775807n, -5]),
    new Tensor('str', DataType.STRING, [2], { kind: 'strings', values: [new Uint8Array([104, 105]), new Uint8Array()] }),
    Tensor.fromBytes('empty', F, [0, 3], new Uint8Array()),
    ext,
  );
  tensors.initializers[0].metadataProps = [['tensor', 'meta']];
  tensors.initializers[0].docString = 'doc';
  tensors.outputs.push({ name: 'f32', type: tensorType(F, [2]) });
  const m2 = new Model(tensors);
  m2.functions.push({
    name: 'Scale',
    domain: 'local',
    overload: 'v2',
    inputs: ['X'],
    outputs: ['Y'],
    attributes: ['beta'],
    attributeProtos: [attr.float('alpha', 2)],
    nodes: [
      new Node({ opType: 'Constant', inputs: [], outputs: ['a'], attributes: [{ name: 'value_float', type: 'float', value: 0, refAttrName: 'alpha' }] }),
      new Node({ opType: 'Mul', inputs: ['X', 'a'], outputs: ['Y'] }),
    ],
    opsetImports: [{ domain: '', version: 21 }],
    valueInfo: [{ name: 'a', type: tensorType(F, []) }],
    docString: 'Y = alpha * X',
    metadataProps: [['fn', 'meta']],
  });
  return [
    ['every attribute and type', m1],
    ['every tensor kind and a function', m2],
  ];
}
