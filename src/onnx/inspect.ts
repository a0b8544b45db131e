// What is in a model (pure, no I/O): IR version, opsets, I/O types, op histogram, parameters, quantized weights,
// external data; a text rendering for the CLI; and the small demo model behind `pnpm pipeline inspect --demo`.
import { formatBytes } from '../util/format.js';
import { DataType, dataTypeName, numel } from './dtype.js';
import { Graph, Model, Tensor, attr, tensorType, type Node, type OnnxType, type StringPair } from './ir.js';

export interface ValueSummary {
  name: string;
  /** Readable type, e.g. `float32[batch_size, 3072]`, `seq(int64[?])`. */
  type: string;
  /** Element type name for tensors (e.g. FLOAT), else undefined. */
  elemType?: string;
  /** Dimensions for tensors with a known rank: numbers, symbolic names, or null when unknown. */
  shape?: (number | string | null)[];
}

export interface DtypeStats {
  dtype: string;
  tensors: number;
  elements: number;
  bytes: number;
}

export interface MatMulNBitsInfo {
  node: string;
  K: number;
  N: number;
  bits: number;
  blockSize: number;
  accuracyLevel: number;
}

export interface GatherBlockQuantizedInfo {
  node: string;
  bits: number;
  blockSize: number;
  gatherAxis: number;
  quantizeAxis: number;
}

export interface InspectReport {
  irVersion: number;
  opsets: { domain: string; version: number }[];
  producer: { name: string; version: string };
  graphName: string;
  inputs: ValueSummary[];
  outputs: ValueSummary[];
  nodes: { total: number; inSubgraphs: number };
  /** Op histogram over the main graph and its subgraphs, domain-qualified (`com.microsoft.MatMulNBits`), most used first. */
  ops: { op: string; count: number }[];
  parameters: { tensors: number; elements: number; bytes: number; byDtype: DtypeStats[] };
  quantized: {
    matMulNBits: { count: number; groups: { bits: number; blockSize: number; accuracyLevel: number; count: number }[]; nodes: MatMulNBitsInfo[] };
    gatherBlockQuantized: { count: number; nodes: GatherBlockQuantizedInfo[] };
  };
  externalData: { files: { location: string; tensors: number; bytes: number }[]; tensors: number; bytes: number };
  functions: string[];
  metadata: StringPair[];
  unknownFields: number;
}

const MS = 'com.microsoft';

function qualifiedOp(n: Node): string {
  return n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType;
}

function dtypeLabel(t: number): string {
  const names: Record<number, string> = {
    [DataType.FLOAT]: 'float32',
    [DataType.FLOAT16]: 'float16',
    [DataType.DOUBLE]: 'float64',
    [DataType.BFLOAT16]: 'bfloat16',
  };
  return names[t] ?? dataTypeName(t).toLowerCase();
}

export function formatType(t: OnnxType | undefined): string {
  if (!t) return '?';
  switch (t.kind) {
    case 'tensor':
    case 'sparse_tensor': {
      const dims = t.shape ? `[${t.shape.map((d) => d.value ?? d.param ?? '?').join(', ')}]` : '[...]';
      return `${t.kind === 'sparse_tensor' ? 'sparse ' : ''}${dtypeLabel(t.elemType)}${dims}`;
    }
    case 'sequence':
      return `seq(${formatType(t.elem)})`;
    case 'optional':
      return `optional(${formatType(t.elem)})`;
    case 'map':
      return `map(${dtypeLabel(t.keyType)}, ${formatType(t.value)})`;
    case 'opaque':
      return `opaque(${t.domain}.${t.name})`;
    case 'none':
      return '?';
  }
}

function summarizeValue(v: { name: string; type?: OnnxType }): ValueSummary {
  const s: ValueSummary = { name: v.name, type: formatType(v.type) };
  if (v.type?.kind === 'tensor') {
    s.elemType = dataTypeName(v.type.elemType);
    if (v.type.shape) s.shape = v.type.shape.map((d) => d.value ?? d.param ?? null);
  }
  return s;
}

function intAttr(n: Node, name: string, dflt: number): number {
  const a = n.attribute(name);
  return a?.type === 'int' ? Number(a.value) : dflt;
}

/** Every graph of the model: main, its subgraphs (depth first), training graphs. */
function* graphs(model: Model): Iterable<Graph> {
  function* walk(g: Graph): Iterable<Graph> {
    yield g;
    for (const n of g.nodes) for (const sg of n.subgraphs()) yield* walk(sg);
  }
  yield* walk(model.graph);
  for (const ti of model.trainingInfo) {
    if (ti.initialization) yield* walk(ti.initialization);
    if (ti.algorithm) yield* walk(ti.algorithm);
  }
}

export function inspectModel(model: Model): InspectReport {
  const ops = new Map<string, number>();
  let total = 0;
  const mainNodes = model.graph.nodes.length;
  const byDtype = new Map<number, DtypeStats>();
  const mnb: MatMulNBitsInfo[] = [];
  const gbq: GatherBlockQuantizedInfo[] = [];
  for (const g of graphs(model)) {
    for (const n of g.nodes) {
      total++;
      const op = qualifiedOp(n);
      ops.set(op, (ops.get(op) ?? 0) + 1);
      if (n.domain === MS && n.opType === 'MatMulNBits') {
        mnb.push({
          node: n.name,
          K: intAttr(n, 'K', 0),
          N: intAttr(n, 'N', 0),
          bits: intAttr(n, 'bits', 4),
          blockSize: intAttr(n, 'block_size', 0),
          accuracyLevel: intAttr(n, 'accuracy_level', 0),
        });
      } else if (n.domain === MS && n.opType === 'GatherBlockQuantized') {
        gbq.push({
          node: n.name,
          bits: intAttr(n, 'bits', 4),
          blockSize: intAttr(n, 'block_size', 128),
          gatherAxis: intAttr(n, 'gather_axis', 0),
          quantizeAxis: intAttr(n, 'quantize_axis', 1),
        });
      }
    }
    for (const t of g.initializers) {
      const s = byDtype.get(t.dataType) ?? { dtype: dataTypeName(t.dataType), tensors: 0, elements: 0, bytes: 0 };
      s.tensors++;
      s.elements += numel(t.dims);
      s.bytes += t.byteLength;
      byDtype.set(t.dataType, s);
    }
  }

  const files = new Map<string, { location: string; tensors: number; bytes: number }>();
  const seen = new Set<Tensor>();
  const allTensors: Tensor[] = [...model.allTensors()];
  for (const f of model.functions) for (const n of f.nodes) for (const a of n.attributes) if (a.type === 'tensor') allTensors.push(a.value);
  for (const t of allTensors) {
    if (seen.has(t) || t.source.kind !== 'external') continue;
    seen.add(t);
    const loc = t.source.location;
    const e = files.get(loc) ?? { location: loc, tensors: 0, bytes: 0 };
    e.tensors++;
    e.bytes += t.source.length;
    files.set(loc, e);
  }

  const groups = new Map<string, { bits: number; blockSize: number; accuracyLevel: number; count: number }>();
  for (const m of mnb) {
    const k = `${m.bits}/${m.blockSize}/${m.accuracyLevel}`;
    const gr = groups.get(k) ?? { bits: m.bits, blockSize: m.blockSize, accuracyLevel: m.accuracyLevel, count: 0 };
    gr.count++;
    groups.set(k, gr);
  }
  const dtypes = [...byDtype.values()].sort((a, b) => b.bytes - a.bytes || a.dtype.localeCompare(b.dtype));
  const fileList = [...files.values()].sort((a, b) => a.location.localeCompare(b.location));
  return {
    irVersion: model.irVersion,
    opsets: model.opsetImports.map((o) => ({ domain: o.domain || 'ai.onnx', version: o.version })),
    producer: { name: model.producerName, version: model.producerVersion },
    graphName: model.graph.name,
    inputs: model.graph.inputs.filter((v) => !model.graph.initializer(v.name)).map(summarizeValue),
    outputs: model.graph.outputs.map(summarizeValue),
    nodes: { total, inSubgraphs: total - mainNodes },
    ops: [...ops].map(([op, count]) => ({ op, count })).sort((a, b) => b.count - a.count || a.op.localeCompare(b.op)),
    parameters: {
      tensors: dtypes.reduce((n, d) => n + d.tensors, 0),
      elements: dtypes.reduce((n, d) => n + d.elements, 0),
      bytes: dtypes.reduce((n, d) => n + d.bytes, 0),
      byDtype: dtypes,
    },
    quantized: {
      matMulNBits: { count: mnb.length, groups: [...groups.values()], nodes: mnb },
      gatherBlockQuantized: { count: gbq.length, nodes: gbq },
    },
    externalData: {
      files: fileList,
      tensors: fileList.reduce((n, f) => n + f.tensors, 0),
      bytes: fileList.reduce((n, f) => n + f.bytes, 0),
    },
    functions: model.functions.map((f) => `${f.domain ? `${f.domain}.` : ''}${f.name}${f.overload ? `:${f.overload}` : ''}`),
    metadata: model.metadataProps,
    unknownFields: model.unknownFields.length,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Text rendering

export function formatCount(n: number): string {
  if (n < 1e3) return String(n);
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} K`;
  if (n < 1e9) return `${(n / 1e6).toFixed(2)} M`;
  return `${(n / 1e9).toFixed(2)} B`;
}

/** Aligned columns; the first row is the header. */
function table(rows: string[][], indent = '  '): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => indent + r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('  ').trimEnd());
}

export function formatInspectReport(r: InspectReport, title = 'model'): string {
  const out: string[] = [];
  out.push(`${title}`);
  out.push(`  IR version ${r.irVersion}; opsets ${r.opsets.map((o) => `${o.domain} ${o.version}`).join(', ')}`);
  if (r.producer.name || r.producer.version) out.push(`  producer ${[r.producer.name, r.producer.version].filter(Boolean).join(' ')}`);
  out.push('', 'inputs');
  out.push(...(r.inputs.length ? table([['name', 'type'], ...r.inputs.map((v) => [v.name, v.type])]) : ['  (none)']));
  out.push('', 'outputs');
  out.push(...(r.outputs.length ? table([['name', 'type'], ...r.outputs.map((v) => [v.name, v.type])]) : ['  (none)']));
  out.push('', `ops (${r.nodes.total} nodes${r.nodes.inSubgraphs ? `, ${r.nodes.inSubgraphs} in subgraphs` : ''})`);
  out.push(...(r.ops.length ? table([['op', 'count'], ...r.ops.map((o) => [o.op, String(o.count)])]) : ['  (none)']));
  out.push('', `parameters: ${formatCount(r.parameters.elements)} in ${r.parameters.tensors} tensors, ${formatBytes(r.parameters.bytes)}`);
  if (r.parameters.byDtype.length) {
    out.push(
      ...table([
        ['dtype', 'tensors', 'elements', 'bytes'],
        ...r.parameters.byDtype.map((d) => [d.dtype, String(d.tensors), formatCount(d.elements), formatBytes(d.bytes)]),
      ]),
    );
  }
  const q = r.quantized;
  if (q.matMulNBits.count || q.gatherBlockQuantized.count) {
    out.push('', 'quantized weights');
    if (q.matMulNBits.count) {
      out.push(`  MatMulNBits: ${q.matMulNBits.count}`);
      out.push(
        ...table(
          [
            ['bits', 'block_size', 'accuracy_level', 'count', 'K x N'],
            ...q.matMulNBits.groups.map((g) => {
              const shapes = new Map<string, number>();
              for (const n of q.matMulNBits.nodes) {
                if (n.bits === g.bits && n.blockSize === g.blockSize && n.accuracyLevel === g.accuracyLevel) {
                  const k = `${n.K}x${n.N}`;
                  shapes.set(k, (shapes.get(k) ?? 0) + 1);
                }
              }
              const s = [...shapes].map(([k, c]) => (c > 1 ? `${k} (${c})` : k)).join(', ');
              return [String(g.bits), String(g.blockSize), String(g.accuracyLevel), String(g.count), s];
            }),
          ],
          '    ',
        ),
      );
    }
    if (q.gatherBlockQuantized.count) {
      out.push(`  GatherBlockQuantized: ${q.gatherBlockQuantized.count}`);
      out.push(
        ...table(
          [
            ['node', 'bits', 'block_size', 'gather_axis', 'quantize_axis'],
            ...q.gatherBlockQuantized.nodes.map((n) => [n.node || '(unnamed)', String(n.bits), String(n.blockSize), String(n.gatherAxis), String(n.quantizeAxis)]),
          ],
          '    ',
        ),
      );
    }
  }
  out.push('', 'external data');
  if (r.externalData.files.length) {
    out.push(...table([['file', 'tensors', 'bytes'], ...r.externalData.files.map((f) => [f.location, String(f.tensors), formatBytes(f.bytes)])]));
  } else out.push('  (none: every tensor is inline)');
  if (r.functions.length) out.push('', `functions: ${r.functions.join(', ')}`);
  if (r.metadata.length) {
    out.push('', 'metadata');
    out.push(...table([['key', 'value'], ...r.metadata.map(([k, v]) => [k, v.length > 60 ? `${v.slice(0, 57)}...` : v])]));
  }
  if (r.unknownFields) out.push('', `warning: ${r.unknownFields} protobuf fields unknown to this codec (re-saving would drop them)`);
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------------------------
// Demo model

/**
 * A small model that exercises the codec: a MatMul with a 64x64 weight (large enough to go to external data),
 * an Add with an inline bias, and an If whose branches are subgraphs (one with its own initializer).
 *
 *   x[1,64] ─MatMul(W)─ Add(b) ─ h ─┬─ ReduceSum ─ Greater(0) ─ cond
 *                                   └─ If(cond) ─ then: Relu(h)  else: Mul(h, half) ─ y[1,64]
 */
export function buildDemoModel(): Model {
  const F = DataType.FLOAT;
  const g = new Graph('phi_forge_demo');
  g.inputs.push({ name: 'x', type: tensorType(F, [1, 64]) });
  g.outputs.push({ name: 'y', type: tensorType(F, [1, 64]) });
  const w = new Float32Array(64 * 64);
  // Deterministic, small values: W[i][j] = ((i * 7 + j * 3) % 17 - 8) / 64.
  for (let i = 0; i < 64; i++) for (let j = 0; j < 64; j++) w[i * 64 + j] = (((i * 7 + j * 3) % 17) - 8) / 64;
  const b = Float32Array.from({ length: 64 }, (_, j) => (j % 5) / 10 - 0.2);
  g.addInitializer(Tensor.fromFloat32('W', [64, 64], w));
  g.addInitializer(Tensor.fromFloat32('b', [64], b));
  g.addInitializer(Tensor.fromFloat32('zero', [], new Float32Array([0])));
  g.addNode({ opType: 'MatMul', name: '/demo/MatMul', inputs: ['x', 'W'], outputs: ['xw'] });
  g.addNode({ opType: 'Add', name: '/demo/Add', inputs: ['xw', 'b'], outputs: ['h'] });
  g.addNode({ opType: 'ReduceSum', name: '/demo/ReduceSum', inputs: ['h'], outputs: ['sum'], attributes: [attr.int('keepdims', 0)] });
  g.addNode({ opType: 'Greater', name: '/demo/Greater', inputs: ['sum', 'zero'], outputs: ['cond'] });

  const thenG = new Graph('then_branch');
  thenG.outputs.push({ name: 'then_out', type: tensorType(F, [1, 64]) });
  thenG.addNode({ opType: 'Relu', name: '/demo/then/Relu', inputs: ['h'], outputs: ['then_out'] });
  const elseG = new Graph('else_branch');
  elseG.outputs.push({ name: 'else_out', type: tensorType(F, [1, 64]) });
  elseG.addInitializer(Tensor.fromFloat32('half', [], new Float32Array([0.5])));
  elseG.addNode({ opType: 'Mul', name: '/demo/else/Mul', inputs: ['h', 'half'], outputs: ['else_out'] });
  g.addNode({
    opType: 'If',
    name: '/demo/If',
    inputs: ['cond'],
    outputs: ['y'],
    attributes: [attr.graph('then_branch', thenG), attr.graph('else_branch', elseG)],
  });

  const model = new Model(g, [{ domain: '', version: 21 }]);
  model.producerName = 'phi-forge';
  model.producerVersion = 'demo';
  model.metadataProps = [['purpose', 'codec demo: MatMul with an external weight, If with subgraphs']];
  return model;
}
