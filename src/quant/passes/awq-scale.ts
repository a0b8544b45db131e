// Pass: AWQ's activation-aware scaling, done in float before the MatMulNBits pass rounds the weights. For every
// input x read by MatMuls whose method is `awq`, one per-channel scale s is searched on calibration activations
// (algorithms/awq.ts) and shared by all of them (packed QKV, gate and up); the weights' input rows are multiplied by s
// and 1/s goes into whatever produces x, so the float graph computes the same function:
//
//   norm(γ) ─ x ─┬─ MatMul(W_gate)        becomes     norm(γ/s) ─ x/s ─┬─ MatMul(diag(s)·W_gate)
//                └─ MatMul(W_up)                                        └─ MatMul(diag(s)·W_up)
//
//   y ─ MatMul(W)   (y from any other op)   becomes     y ─ Mul(1/s) ─ MatMul(diag(s)·W)
//
// Norms (SimplifiedLayerNormalization, SkipSimplifiedLayerNormalization, LayerNormalization, SkipLayerNormalization,
// RMSNormalization) absorb 1/s in their weight (and bias) when their output feeds only these MatMuls; anything else
// gets the Mul (correct, one elementwise op per token; the stats list them). A scaled weight that is also an
// embedding table read along K (a tied lm_head) keeps its tie: the embedding's output gets a Mul(1/s). A weight read
// by anything else is scaled into a copy. The MatMulNBits pass then rounds diag(s)·W with RTN (algo `awq`).
// Scaled weights are lazy tensors: computed when quantized or written, never all held at once.
import { DataType } from '../../onnx/dtype.js';
import { Node, type Graph, type Model } from '../../onnx/ir.js';
import { Tensor, float32ToBfloat16Bits, float32ToFloat16Bits, toFloat32, viewBytes } from '../../onnx/tensor.js';
import { QuantizationError } from '../../util/errors.js';
import type { AwqFamily } from '../algorithms/awq.js';
import { applyClip } from '../algorithms/awq-clip.js';
import type { RowQuantizer } from '../algorithms/output-error.js';
import type { AwqSearchJob, AwqSearchOutcome } from '../workers/analysis-kernel.js';
import { captureActivations, requestBytes, scoringActivations, scoringRequest, type CalibrationSource } from '../calibration/calibration.js';
import type { WeightLayout } from '../formats/block.js';
import { constantName, findEmbeddingGathers, findMatMulWeights, isValueUsed, nodeLabel, type Candidate, type Skipped } from './find-weights.js';
import { MethodResolver, plannedSchemes, type MethodOptions, type NodeMethod, type Override } from '../method.js';
import { definePass } from './pass.js';
import { PatternSet } from './patterns.js';
import { chunkByBytes, runInOrder } from '../streaming/run-in-order.js';
import { AWQ_SCALED } from './matmul-nbits.js';

export interface AwqScaleOptions extends MethodOptions {
  /** Node-name patterns left in float (never scaled). */
  exclude?: readonly string[];
  overrides?: readonly Override[];
  /** Calibration inputs (required when any node uses AWQ). */
  calibration?: CalibrationSource;
  /** Activation rows sampled per input for the search (inputs with K ≤ this use all rows exactly). Default 512. */
  sampleRows?: number;
  /** Grid points for α in [0, 1) in each scale family. Default 20. */
  grid?: number;
  /** Output rows of each weight scored per grid point. Default: 64..256, by cost. */
  maxRows?: number;
  /** Captured activations held at once; inputs are calibrated in groups that fit. Default 1 GiB. */
  activationBudgetBytes?: number;
  /**
   * Also search AWQ's per-block clip ratios (llm-awq auto_clip). Default true. Weights whose output goes straight
   * into attention (q/k through a softmax, where a block's own output error says little) and tied embedding tables
   * are never clipped.
   */
  clip?: boolean;
}

export type AwqFold =
  | { kind: 'norm'; node: string; weight: string }
  | { kind: 'mul'; node: string; why: string };

export interface AwqGroupStats {
  /** The shared MatMul input. */
  input: string;
  nodes: string[];
  weights: string[];
  alpha: number;
  /** Which scale family won: `x` (a^α) or `x/w` (a^α / w^(1−α)). */
  family: AwqFamily;
  /** Output error on the calibration activations with plain RTN (α = 0) and with the chosen scales. */
  lossRtn: number;
  loss: number;
  /** Where 1/s went. */
  fold: AwqFold;
  /** Embedding lookups of a scaled (tied) weight that got a Mul(1/s) on their output. */
  compensated?: string[];
  /** Scaled weights written as a copy because something else reads the original. */
  copies?: string[];
  /** Weights whose blocks were clipped: how many blocks of how many, and the mean ratio over clipped blocks. */
  clipped?: { weight: string; blocks: number; of: number; meanRatio: number }[];
}

export interface AwqScaleStats {
  groups: AwqGroupStats[];
  /** AWQ nodes left unscaled (the MatMulNBits pass rounds them with plain RTN) and why. */
  skipped: Skipped[];
  warnings: string[];
  normsFolded: number;
  mulsInserted: number;
  /** Activation rows (tokens) seen per input. */
  calibrationRows: number;
  reason?: string;
}

/** Norm ops that can absorb a per-channel factor in their weight: index of the weight and of the bias (if any). */
const NORMS: Readonly<Record<string, { domain: string; weight: number; bias?: number }>> = {
  SimplifiedLayerNormalization: { domain: '', weight: 1 },
  RMSNormalization: { domain: '', weight: 1 },
  LayerNormalization: { domain: '', weight: 1, bias: 2 },
  SkipSimplifiedLayerNormalization: { domain: 'com.microsoft', weight: 2 },
  SkipLayerNormalization: { domain: 'com.microsoft', weight: 2, bias: 3 },
};

/** How a scaled weight is written. */
type WeightPlan =
  | { kind: 'own' }
  | { kind: 'compensate'; gathers: Candidate[] }
  | { kind: 'copy' };

interface GroupWeight {
  /** A candidate reading it (its WeightRef describes the stored tensor). */
  c: Candidate;
  method: NodeMethod;
  plan: WeightPlan;
  clip: boolean;
}

/** Ops whose inputs go through q·kᵀ and a softmax: llm-awq does not clip the projections feeding them. */
const ATTENTION_OPS = new Set(['GroupQueryAttention', 'MultiHeadAttention', 'Attention', 'PackedAttention', 'PackedMultiHeadAttention', 'RotaryEmbedding', 'SparseAttention']);

interface Group {
  input: string;
  K: number;
  floatType: number;
  nodes: Candidate[];
  weights: Map<string, GroupWeight>;
  fold: { kind: 'norm'; norm: Node } | { kind: 'mul'; why: string };
  outcome?: AwqSearchOutcome;
  rows?: number;
}

export const awqScalePass = definePass<AwqScaleOptions, AwqScaleStats>({
  name: 'quant:awq-scale',
  describe: "AWQ: search per-channel input scales on calibration activations, fold 1/s into the producing norm (or a Mul)",
  async run(model, options, ctx) {
    const resolver = new MethodResolver(options, options.overrides, plannedSchemes(ctx));
    const exclude = new PatternSet(options.exclude ?? []);
    const stats: AwqScaleStats = { groups: [], skipped: [], warnings: [], normsFolded: 0, mulsInserted: 0, calibrationRows: 0 };
    const g = model.graph;

    ctx.shared.set(AWQ_SCALED, true);
    const byInput = new Map<string, { c: Candidate; method: NodeMethod }[]>();
    for (const c of findMatMulWeights(model).candidates) {
      const label = nodeLabel(c.node);
      if (exclude.match(label)) continue;
      const method = resolver.forNode(label, 'block');
      if (method.algo !== 'awq') continue;
      if (c.graph !== g) {
        stats.skipped.push({ node: label, reason: 'inside a subgraph, where calibration cannot see its input: plain RTN' });
        continue;
      }
      const x = c.node.inputs[0];
      const list = byInput.get(x) ?? [];
      list.push({ c, method });
      byInput.set(x, list);
    }
    if (byInput.size === 0) {
      stats.reason = 'no MatMul of the main graph is quantized with AWQ';
      return { model, modified: false, stats };
    }
    if (!options.calibration) {
      throw new QuantizationError('QUANT_NEEDS_CALIBRATION', 'AWQ needs calibration data', {
        fix: 'pass calibration inputs (--calib FILE with token sequences), or use --algo rtn / hqq',
      });
    }

    const consumers = g.consumerMap();
    const gathers = findEmbeddingGathers(model).candidates.filter((c) => c.graph === g);
    const graphOutputs = new Set(g.outputs.map((o) => o.name));
    const groups: Group[] = [];
    for (const [input, members] of byInput) {
      const plan = planGroup(g, input, members, consumers, gathers, graphOutputs, options.clip ?? true);
      if (typeof plan === 'string') {
        for (const m of members) stats.skipped.push({ node: nodeLabel(m.c.node), reason: `${plan}: plain RTN` });
        continue;
      }
      groups.push(plan);
    }
    if (groups.length === 0) {
      stats.reason = 'no AWQ group could be scaled (the skipped list says why for each)';
      return { model, modified: false, stats };
    }

    // Calibrate and search everything first, then rewrite: every capture runs on the unchanged float model.
    const sampleRows = options.sampleRows ?? 512;
    let done = 0;
    const request = (gr: Group) => scoringRequest(gr.input, gr.K, gr.floatType, sampleRows, true);
    for (const chunk of chunkByBytes(groups, (gr) => requestBytes(request(gr)), options.activationBudgetBytes ?? 2 ** 30)) {
      const acts = await captureActivations(model, chunk.map(request), options.calibration);
      await runInOrder(
        chunk,
        ctx.kernels.concurrency,
        async (gr) => {
          const a = acts.get(gr.input)!;
          gr.rows = a.rows;
          const job: AwqSearchJob = {
            kind: 'awq-search',
            input: gr.input,
            weights: await Promise.all(
              [...gr.weights.values()].map(async (w) => ({
                ...weightInput(w.c),
                bytes: await w.c.weight.tensor.bytes(),
                quant: rowQuantizer(w.method, w.c.weight.floatType),
                clip: w.clip,
              })),
            ),
            activations: scoringActivations(a),
            absMean: a.absMean!,
            grid: options.grid,
            maxRows: options.maxRows,
          };
          return ctx.kernels.analyze(job);
        },
        (gr, outcome) => {
          gr.outcome = outcome;
          ctx.progress({ pass: 'quant:awq-scale', done: ++done, total: groups.length, item: gr.input });
        },
      );
    }

    for (const gr of groups) {
      const st = await applyGroup(model, gr);
      stats.groups.push(st);
      if (st.fold.kind === 'norm') stats.normsFolded++;
      else stats.mulsInserted++;
      stats.calibrationRows = Math.max(stats.calibrationRows, gr.rows ?? 0);
    }
    return { model, modified: true, stats };
  },
});

function weightInput(c: Candidate) {
  const w = c.weight;
  return { tensor: constantName(w), dataType: w.tensor.dataType, K: w.K, N: w.N, layout: w.layout };
}

function rowQuantizer(m: NodeMethod, floatType: number): RowQuantizer {
  return { scheme: m.scheme, blockSize: m.blockSize, symmetric: m.symmetric, scaleType: floatType === DataType.FLOAT16 ? 'float16' : 'float32' };
}

const SCALABLE_TYPES = new Set<number>([DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16, DataType.DOUBLE]);

/** Decides how a group's weights and its 1/s are written, or says why the group cannot be scaled. */
function planGroup(
  g: Graph,
  input: string,
  members: { c: Candidate; method: NodeMethod }[],
  consumers: Map<string, Node[]>,
  gathers: Candidate[],
  graphOutputs: Set<string>,
  clip: boolean,
): Group | string {
  const first = members[0].c.weight;
  const weights = new Map<string, GroupWeight>();
  const groupNodes = new Set(members.map((m) => m.c.node));
  for (const { c, method } of members) {
    const name = constantName(c.weight);
    if (weights.has(name)) continue;
    if (c.weight.constantNode) return `weight ${name} is a Constant node`;
    if (!SCALABLE_TYPES.has(c.weight.tensor.dataType)) return `weight ${name} is not a float tensor`;
    const plan = planWeight(name, c, members.map((m) => m.c), consumers, gathers, graphOutputs);
    if (typeof plan === 'string') return plan;
    const readers = members.filter((m) => constantName(m.c.weight) === name);
    const intoAttention = readers.some((m) => (consumers.get(m.c.node.outputs[0]) ?? []).some((n) => ATTENTION_OPS.has(n.opType)));
    // A tied table is also the embedding: clamping its outliers would change the token vectors, not just the rounding.
    weights.set(name, { c, method, plan, clip: clip && !intoAttention && plan.kind !== 'compensate' });
  }
  return { input, K: first.K, floatType: first.floatType, nodes: members.map((m) => m.c), weights, fold: planFold(g, input, first.K, groupNodes, consumers, graphOutputs) };
}

function planWeight(
  name: string,
  c: Candidate,
  group: Candidate[],
  consumers: Map<string, Node[]>,
  gathers: Candidate[],
  graphOutputs: Set<string>,
): WeightPlan | string {
  const readers = group.filter((m) => constantName(m.weight) === name);
  const allowed = new Set<Node>([...readers.map((m) => m.node), ...readers.flatMap((m) => m.weight.via)]);
  const values = [name, ...readers.flatMap((m) => m.weight.via.flatMap((v) => v.outputs))];
  const foreign = new Set<Node>();
  for (const v of values) {
    if (graphOutputs.has(v)) return `weight ${name} is also a graph output`;
    for (const n of consumers.get(v) ?? []) if (!allowed.has(n)) foreign.add(n);
  }
  if (foreign.size === 0) return { kind: 'own' };
  // A tied embedding whose lookups return vectors along K: scale the table too, undo it on the lookup's output.
  const tied = gathers.filter((e) => constantName(e.weight) === name && e.weight.layout === c.weight.layout);
  const tiedNodes = new Set<Node>(tied.flatMap((e) => [e.node, ...e.weight.via, ...(e.fusedTranspose ? [e.fusedTranspose] : [])]));
  const lookupOut = (e: Candidate) => (e.fusedTranspose ?? e.node).outputs[0];
  if ([...foreign].every((n) => tiedNodes.has(n)) && tied.every((e) => !graphOutputs.has(lookupOut(e)))) {
    return { kind: 'compensate', gathers: tied };
  }
  if (readers.every((m) => m.weight.via.length === 0)) return { kind: 'copy' };
  const who = [...foreign].map((n) => n.name || n.opType).join(', ');
  return `weight ${name} is also read by ${who} through a Transpose/Cast chain`;
}

/** The norm that can absorb 1/s, or why a Mul is needed. */
function planFold(g: Graph, input: string, K: number, groupNodes: Set<Node>, consumers: Map<string, Node[]>, graphOutputs: Set<string>): Group['fold'] {
  const p = g.nodes.find((n) => n.outputs.includes(input));
  if (!p) return { kind: 'mul', why: `${input} is a graph input` };
  const spec = NORMS[p.opType];
  const domain = p.domain === 'ai.onnx' ? '' : p.domain;
  if (!spec || spec.domain !== domain) return { kind: 'mul', why: `${input} comes from ${p.opType}, not a norm` };
  if (p.outputs[0] !== input) return { kind: 'mul', why: `${input} is not the normalised output of ${p.name}` };
  if (graphOutputs.has(input)) return { kind: 'mul', why: `${input} is also a graph output` };
  const others = (consumers.get(input) ?? []).filter((n) => !groupNodes.has(n));
  if (others.length) return { kind: 'mul', why: `${input} is also read by ${others.map((n) => n.name || n.opType).join(', ')}` };
  for (const i of [spec.weight, spec.bias]) {
    if (i === undefined) continue;
    const v = p.inputs[i];
    if (!v) continue;
    const t = g.initializer(v);
    if (!t || g.inputs.some((x) => x.name === v)) return { kind: 'mul', why: `the ${p.opType} weight ${v} is not a constant initializer` };
    if (!SCALABLE_TYPES.has(t.dataType)) return { kind: 'mul', why: `the ${p.opType} weight ${v} is not a float tensor` };
    if (t.dims.length !== 1 || t.dims[0] !== K) return { kind: 'mul', why: `the ${p.opType} weight ${v} is not one value per channel` };
  }
  return { kind: 'norm', norm: p };
}

// ---------------------------------------------------------------------------------------------------------------
// Rewriting

function encodeFloats(f: Float32Array, dataType: number): Uint8Array {
  switch (dataType) {
    case DataType.FLOAT:
      return viewBytes(f);
    case DataType.FLOAT16:
      return viewBytes(float32ToFloat16Bits(f));
    case DataType.BFLOAT16:
      return viewBytes(float32ToBfloat16Bits(f));
    default:
      return viewBytes(Float64Array.from(f));
  }
}

/**
 * diag(s)·W as a lazy tensor: the stored weight with its K axis (rows for `kn`, columns for `nk`) multiplied by s,
 * then each block clamped by its clip ratio when there are any.
 */
function scaledWeight(t: Tensor, name: string, s: Float32Array, layout: WeightLayout, clip?: { ratios: Float32Array; blockSize: number }): Tensor {
  const [d0, d1] = t.dims;
  return Tensor.lazy(name, t.dataType, t.dims, async () => {
    // A copy: the source may be the model's own inline bytes.
    const f = Float32Array.from(toFloat32(await t.bytes(), t.dataType, t.name));
    if (layout === 'kn') {
      for (let k = 0; k < d0; k++) {
        const sk = s[k];
        for (let n = 0, o = k * d1; n < d1; n++) f[o + n] *= sk;
      }
    } else {
      for (let n = 0; n < d0; n++) for (let k = 0, o = n * d1; k < d1; k++) f[o + k] *= s[k];
    }
    if (clip) {
      const [K, N] = layout === 'kn' ? [d0, d1] : [d1, d0];
      applyClip(f, { K, N, layout }, clip.blockSize, clip.ratios);
    }
    return encodeFloats(f, t.dataType);
  });
}

function uniqueName(g: Graph, base: string): string {
  const taken = (n: string) => g.initializer(n) !== undefined || g.nodes.some((x) => x.outputs.includes(n)) || g.inputs.some((x) => x.name === n);
  let name = base;
  for (let i = 2; taken(name); i++) name = `${base}.${i}`;
  return name;
}

/** `/model/layers.0/attn/o_proj/MatMul` → `/model/layers.0/attn/o_proj` (the path new nodes go under). */
function layerPath(n: Node, fallback: string): string {
  const name = n.name || fallback;
  const i = name.lastIndexOf('/');
  return i > 0 ? name.slice(0, i) : name;
}

function dotted(path: string): string {
  return path.replace(/^\/+/, '').replace(/\//g, '.');
}

/** Inserts `y = Mul(x, 1/s)` right before `before` (or after `after`) and returns y. */
function insertMul(g: Graph, x: string, invS: Float32Array, floatType: number, path: string, at: { before?: Node; after?: Node }): { node: Node; out: string } {
  const constName = uniqueName(g, `${dotted(path)}.awq_inv_scale`);
  g.addInitializer(Tensor.fromBytes(constName, floatType, [invS.length], encodeFloats(invS, floatType)));
  const name = uniqueName(g, `${path}/awq_scale/Mul`);
  const out = uniqueName(g, `${name}/output_0`);
  const node = new Node({ opType: 'Mul', name, inputs: [x, constName], outputs: [out] });
  const i = at.before ? g.nodes.indexOf(at.before) : g.nodes.indexOf(at.after!) + 1;
  g.nodes.splice(i, 0, node);
  return { node, out };
}

async function divideNormWeight(g: Graph, norm: Node, index: number, s: Float32Array): Promise<string> {
  const v = norm.inputs[index];
  const t = g.initializer(v)!;
  const f = Float32Array.from(await t.float32());
  for (let k = 0; k < f.length; k++) f[k] /= s[k % s.length];
  const readers = g.consumerMap().get(v) ?? [];
  if (readers.every((n) => n === norm)) {
    g.replaceInitializer(Tensor.fromBytes(v, t.dataType, t.dims, encodeFloats(f, t.dataType)));
    return v;
  }
  // Shared with another node: this norm gets its own copy.
  const name = uniqueName(g, `${v}.awq`);
  g.addInitializer(Tensor.fromBytes(name, t.dataType, t.dims, encodeFloats(f, t.dataType)));
  norm.inputs[index] = name;
  return name;
}

async function applyGroup(model: Model, gr: Group): Promise<AwqGroupStats> {
  const g = model.graph;
  const o = gr.outcome!;
  const s = o.scales;
  const invS = Float32Array.from(s, (v) => 1 / v);
  const st: AwqGroupStats = {
    input: gr.input,
    nodes: gr.nodes.map((c) => nodeLabel(c.node)),
    weights: [...gr.weights.keys()],
    alpha: o.alpha,
    family: o.family,
    lossRtn: o.losses[0],
    loss: Math.min(...o.losses),
    fold: { kind: 'mul', node: '', why: '' },
  };

  const weights = [...gr.weights];
  for (const [i, [name, w]] of weights.entries()) {
    const t = w.c.weight.tensor;
    const ratios = o.clips[i];
    const clip = ratios && { ratios, blockSize: w.method.blockSize };
    if (ratios) {
      const cut = ratios.filter((r) => r < 1);
      if (cut.length) (st.clipped ??= []).push({ weight: name, blocks: cut.length, of: ratios.length, meanRatio: cut.reduce((a, b) => a + b, 0) / cut.length });
    }
    if (w.plan.kind === 'copy') {
      const copy = uniqueName(g, `${name}.awq`);
      g.addInitializer(scaledWeight(t, copy, s, w.c.weight.layout, clip));
      for (const c of gr.nodes) if (c.node.inputs[1] === name) c.node.inputs[1] = copy;
      (st.copies ??= []).push(copy);
      // Every reader may have moved to its own copy (one weight, two AWQ inputs): then the original goes.
      if (!isValueUsed(g, name)) g.removeInitializer(name);
      continue;
    }
    g.replaceInitializer(scaledWeight(t, name, s, w.c.weight.layout, clip));
    if (w.plan.kind === 'compensate') {
      for (const e of w.plan.gathers) {
        const producer = e.fusedTranspose ?? e.node;
        const out = producer.outputs[0];
        const { node, out: y } = insertMul(g, out, invS, e.weight.floatType, layerPath(e.node, out), { after: producer });
        g.renameUses(out, y);
        node.inputs[0] = out;
        (st.compensated ??= []).push(nodeLabel(e.node));
      }
    }
  }

  if (gr.fold.kind === 'norm') {
    const norm = gr.fold.norm;
    const spec = NORMS[norm.opType];
    const weight = await divideNormWeight(g, norm, spec.weight, s);
    if (spec.bias !== undefined && norm.inputs[spec.bias]) await divideNormWeight(g, norm, spec.bias, s);
    st.fold = { kind: 'norm', node: norm.name, weight };
  } else {
    const firstIdx = Math.min(...gr.nodes.map((c) => g.nodes.indexOf(c.node)));
    const first = g.nodes[firstIdx];
    const { node, out } = insertMul(g, gr.input, invS, gr.floatType, layerPath(first, gr.input), { before: first });
    for (const c of gr.nodes) c.node.inputs[0] = out;
    st.fold = { kind: 'mul', node: node.name, why: gr.fold.why };
  }
  return st;
}

