// Pass: MatMul with a constant 2-D float B → com.microsoft MatMulNBits (weight-only blockwise quantization; RTN and
// HQQ are data-free, GPTQ calibrates on activations captured with onnxruntime, AWQ weights arrive already rescaled by
// quant:awq-scale and are rounded with RTN). Schemes per node may come from a mixed-precision plan made earlier.
//
//   A ─ MatMul(B: float [K, N]) ─▶ y        becomes        A ─ MatMulNBits(B.qweight, B.scales[, B.qzeros]) ─▶ y
//
// The node keeps its output, so consumers are untouched; `/x/MatMul` is renamed `/x/MatMulNBits`. B may be an
// initializer, a Constant, or reached through Identity / Cast / 2-D Transpose nodes (B = Transpose(W[N, K]) is quantized
// straight from W's rows). The float weight and the nodes leading to it are removed once nothing else reads them.
// Weights are read a band of rows at a time (external data by offset) and quantized in worker threads; results go to
// the run's tensor sink in graph order (quantize-weights.ts), so the output does not depend on which worker finished
// first, and a spill file keeps the quantized model out of memory.
import { attr, Node, type Model } from '../../onnx/ir.js';
import { QuantizationError } from '../../util/errors.js';
import { captureHessians, type CalibrationSource, type HessianRequest } from '../calibration/calibration.js';
import { constantName, dropUnusedConstant, findMatMulWeights, nodeLabel, WeightKeys, type Candidate, type Skipped } from './find-weights.js';
import { MethodResolver, methodKey, plannedSchemes, type MethodOptions, type NodeMethod, type Override } from '../method.js';
import { definePass } from './pass.js';
import { PatternSet } from './patterns.js';
import { QuantizedWeightIndex, addTensors, tensorsBytes } from './quantized-weights.js';
import { quantizeWeights, type QuantizedWeight, type WeightJob } from '../streaming/quantize-weights.js';

/** Set in the pass context by quant:awq-scale once AWQ weights are scaled (their kernel is then RTN). */
export const AWQ_SCALED = 'awqScaled';

export interface MatMulNBitsOptions extends MethodOptions {
  /** Node-name patterns (glob or /regex/) of MatMuls to leave in float. */
  exclude?: readonly string[];
  /** Warn (in stats.warnings) about exclude patterns that matched nothing. Default true. */
  warnUnusedExcludes?: boolean;
  /** Per-node methods, e.g. `{ pattern: '*lm_head*', scheme: 'int8' }`; the first match wins. */
  overrides?: readonly Override[];
  /** Calibration inputs for GPTQ (required when any node uses it). */
  calibration?: CalibrationSource;
  /** GPTQ: Hessian bytes held at once; weights are calibrated in groups that fit. Default 1 GiB. */
  hessianBudgetBytes?: number;
  /** Float bytes per row band a weight is quantized in (default 64 MiB; see weight-rows.ts). */
  pieceBytes?: number;
}

export interface ConvertedMatMul {
  node: string;
  newNode: string;
  weight: string;
  K: number;
  N: number;
  scheme: string;
  algo: string;
  bits: number;
  blockSize: number;
  symmetric: boolean;
  accuracyLevel: number;
  /** Float bytes this node stopped reading (counted once per weight). */
  bytesBefore: number;
  /** Quantized bytes added for it (0 when it shares another node's tensors). */
  bytesAfter: number;
  /** Ternary: blocks reproduced exactly (already-ternary weights), of all blocks. */
  exactBlocks?: number;
  totalBlocks?: number;
}

export interface MatMulNBitsStats {
  converted: ConvertedMatMul[];
  skipped: Skipped[];
  warnings: string[];
  /** Exclude patterns that matched no node of this pass. */
  unusedExcludes: string[];
  /** Distinct float weights quantized. */
  weightsQuantized: number;
  bytesBefore: number;
  bytesAfter: number;
  /** Float weights removed from the model (no other reader left). */
  bytesRemoved: number;
  /** Average bits per quantized weight: 8 · (codes + scales + zero points) / Σ K·N over distinct weights. */
  bitsPerWeight: number;
  /** Why nothing changed, when nothing did. */
  reason?: string;
}

/** One quantization job: a weight and method, and the nodes that will read the result. */
interface Job extends WeightJob {
  first: Candidate;
  nodes: { c: Candidate; method: NodeMethod }[];
  method: NodeMethod;
}

export const matmulNBitsPass = definePass<MatMulNBitsOptions, MatMulNBitsStats>({
  name: 'quant:matmul-nbits',
  describe: 'MatMul with a constant weight → com.microsoft MatMulNBits (int4, int8 or ternary blocks)',
  async run(model, options, ctx) {
    // A mixed-precision pass earlier in the run may have planned a scheme per node.
    const resolver = new MethodResolver(options, options.overrides, plannedSchemes(ctx));
    const exclude = new PatternSet(options.exclude ?? []);
    const found = findMatMulWeights(model);
    const stats: MatMulNBitsStats = {
      converted: [],
      skipped: [...found.skipped],
      warnings: [...resolver.warnings],
      unusedExcludes: [],
      weightsQuantized: 0,
      bytesBefore: 0,
      bytesAfter: 0,
      bytesRemoved: 0,
      bitsPerWeight: 0,
    };

    // Group nodes by (graph, weight, layout, method): one kernel run per distinct weight and method.
    const jobs = new Map<string, Job>();
    const keys = new WeightKeys();
    for (const c of found.candidates) {
      const label = nodeLabel(c.node);
      const ex = exclude.match(label);
      if (ex) {
        stats.skipped.push({ node: label, reason: `excluded by pattern ${ex.source}` });
        continue;
      }
      const method = resolver.forNode(label, 'block');
      const key = keys.of(c, methodKey(method));
      const j = jobs.get(key);
      if (j) j.nodes.push({ c, method });
      else jobs.set(key, { first: c, weight: c.weight, nodes: [{ c, method }], method });
    }
    stats.unusedExcludes = exclude.unused();
    if (options.warnUnusedExcludes !== false) {
      for (const p of stats.unusedExcludes) stats.warnings.push(`exclude pattern ${p} matched no MatMul`);
    }
    for (const p of resolver.unusedOverrides()) stats.warnings.push(`override pattern ${p} matched no MatMul`);

    if (jobs.size === 0) {
      stats.reason =
        found.candidates.length === 0
          ? found.skipped.length === 0
            ? 'the model has no MatMul nodes'
            : 'no MatMul has a constant 2-D float weight'
          : 'every MatMul with a constant weight was excluded';
      return { model, modified: false, stats };
    }

    const list = [...jobs.values()];
    const index = QuantizedWeightIndex.of(ctx);
    if (list.some((j) => j.method.algo === 'awq') && !ctx.shared.has(AWQ_SCALED)) {
      stats.warnings.push('AWQ nodes were not scaled by the quant:awq-scale pass (run it first): they are plain RTN');
    }
    const gptq = list.some((j) => j.method.algo === 'gptq');
    if (gptq && !options.calibration) {
      throw new QuantizationError('QUANT_NEEDS_CALIBRATION', 'GPTQ needs calibration data', {
        fix: 'pass calibration inputs (--calib FILE with token sequences), or use --algo rtn / hqq',
      });
    }
    let done = 0;
    // GPTQ weights are calibrated a group at a time (Hessians are K×K float64, so groups are cut to a memory budget),
    // later groups on the model with the earlier ones already quantized, as sequential GPTQ does. Data-free weights
    // never open a group of their own: without GPTQ the whole list is one group.
    for (const chunk of chunkByHessianBudget(list, options.hessianBudgetBytes ?? 2 ** 30)) {
      if (chunk.some((j) => j.method.algo === 'gptq')) await attachHessians(model, chunk, options.calibration!);
      await quantizeWeights(chunk, ctx, { bDims: 'blocks', pieceBytes: options.pieceBytes }, (job, q) => {
        commitJob(job, q, stats, index);
        ctx.progress({ pass: 'quant:matmul-nbits', done: ++done, total: list.length, item: job.first.weight.tensor.name });
      });
    }
    stats.weightsQuantized = list.length;
    const params = list.reduce((n, j) => n + j.first.weight.K * j.first.weight.N, 0);
    stats.bitsPerWeight = params > 0 ? (8 * stats.bytesAfter) / params : 0;
    model.requireOpset('com.microsoft', 1);
    return { model, modified: true, stats };
  },
});

/** The MatMul inputs (A) whose activations a GPTQ job needs. */
function activationsOf(job: Job): string[] {
  return [...new Set(job.nodes.map(({ c }) => c.node.inputs[0]))];
}

/** Consecutive jobs whose distinct Hessians fit the budget (at least one job per group). */
function* chunkByHessianBudget(jobs: Job[], budget: number): Iterable<Job[]> {
  let chunk: Job[] = [];
  let values = new Set<string>();
  let bytes = 0;
  for (const j of jobs) {
    const need = j.method.algo === 'gptq' ? activationsOf(j).filter((v) => !values.has(v)) : [];
    const add = need.length * j.first.weight.K * j.first.weight.K * 8;
    if (chunk.length && add > 0 && bytes + add > budget) {
      yield chunk;
      chunk = [];
      values = new Set();
      bytes = 0;
    }
    chunk.push(j);
    need.forEach((v) => values.add(v));
    bytes += add;
  }
  if (chunk.length) yield chunk;
}

/** Runs calibration once for the chunk and gives every GPTQ job the Hessian of its inputs (row-weighted mean). */
async function attachHessians(model: Model, chunk: Job[], calibration: CalibrationSource): Promise<void> {
  const requests = new Map<string, HessianRequest>();
  for (const j of chunk) {
    if (j.method.algo !== 'gptq') continue;
    for (const v of activationsOf(j)) requests.set(v, { value: v, K: j.first.weight.K, floatType: j.first.weight.floatType });
  }
  const hs = await captureHessians(model, [...requests.values()], calibration);
  for (const j of chunk) {
    if (j.method.algo !== 'gptq') continue;
    const parts = activationsOf(j).map((v) => hs.get(v)!);
    const rows = parts.reduce((n, p) => n + p.rows, 0);
    const h = new Float64Array(j.first.weight.K ** 2);
    for (const p of parts) for (let i = 0; i < h.length; i++) h[i] += (p.h[i] * p.rows) / rows;
    j.hessian = new Uint8Array(h.buffer);
  }
}

/** Adds the quantized initializers and swaps every node of the job for a MatMulNBits node. */
function commitJob(job: Job, r: QuantizedWeight, stats: MatMulNBitsStats, index: QuantizedWeightIndex): void {
  const w = job.first.weight;
  const graph = job.first.graph;
  const base = constantName(w);
  const m = job.method;
  const tensors = r.tensors;
  addTensors(graph, tensors);
  index.set(graph, base, w.layout, {
    tensors,
    method: m,
    bits: r.bits,
    K: w.K,
    N: w.N,
    kBlocks: r.kBlocks,
    rowBytes: r.rowBytes,
    zeroPointKind: r.zeroPointKind,
  });
  const after = tensorsBytes(tensors);
  stats.bytesBefore += w.tensor.byteLength;
  stats.bytesAfter += after;

  job.nodes.forEach(({ c, method }, i) => {
    const q = new Node({
      opType: 'MatMulNBits',
      domain: 'com.microsoft',
      name: renameOp(c.node.name, 'MatMul', 'MatMulNBits'),
      inputs: [c.node.inputs[0], tensors.b.name, tensors.scales.name, ...(tensors.zeroPoints ? [tensors.zeroPoints.name] : [])],
      outputs: [...c.node.outputs],
      attributes: [
        attr.int('K', w.K),
        attr.int('N', w.N),
        attr.int('bits', r.bits),
        attr.int('block_size', m.blockSize),
        attr.int('accuracy_level', method.accuracyLevel),
      ],
      docString: c.node.docString,
      metadataProps: c.node.metadataProps,
    });
    c.graph.replaceNode(c.node, [q]);
    stats.converted.push({
      node: nodeLabel(c.node),
      newNode: q.name,
      weight: base,
      K: w.K,
      N: w.N,
      scheme: m.scheme,
      algo: m.algo,
      bits: r.bits,
      blockSize: m.blockSize,
      symmetric: r.zeroPointKind === undefined,
      accuracyLevel: method.accuracyLevel,
      bytesBefore: i === 0 ? w.tensor.byteLength : 0,
      bytesAfter: i === 0 ? after : 0,
      exactBlocks: r.report?.exactBlocks,
      totalBlocks: r.report?.totalBlocks,
    });
  });
  stats.bytesRemoved += dropUnusedConstant(graph, w);
}

/** `/x/MatMul` → `/x/MatMulNBits`; other names get `/MatMulNBits` appended; unnamed nodes stay unnamed. */
export function renameOp(name: string, from: string, to: string): string {
  if (!name) return '';
  if (name === from || name.endsWith(`/${from}`)) return name.slice(0, name.length - from.length) + to;
  return `${name}/${to}`;
}
