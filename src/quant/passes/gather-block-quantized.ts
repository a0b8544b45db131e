// Pass: Gather on axis 0 of a constant 2-D float table (an embedding) → com.microsoft GatherBlockQuantized
// (uint8 data, codes packed along the row, low bits first; 2-D scales [rows, ceil(cols / block)]; gather_axis 0,
// quantize_axis 1).
//
//   ids ─ Gather(E: float [vocab, hidden]) ─▶ x      becomes      ids ─ GatherBlockQuantized(E.qweight, E.scales) ─▶ x
//
// Tied embeddings (Phi-4-mini): when the lm_head MatMul reads the same float weight with the same rows (Gather(E) and
// MatMul(Transpose(E)); Gather(Transpose(W)) or Gather(W, axis 1) ─ Transpose(1, .., 0), and MatMul(W)) and an earlier
// MatMulNBits pass of this run quantized it, the embedding reads the lm_head's tensors instead of a copy, as
// onnxruntime-genai's builder does:
//
//   lm_head.qweight [vocab, k_blocks, blob] ─ Reshape([vocab, hidden·bits/8]) ─┐
//   ids ───────────────────────────────────────────────────────────────────────┴─ GatherBlockQuantized(scales[, zp]) ─▶ x
//
// Both layouts agree byte for byte when hidden is a multiple of the block size (no padding in the last block), and
// GatherBlockQuantized's uint8 zero points are packed exactly like MatMulNBits' ([rows, ceil(blocks·bits/8)]).
// Float zero points (HQQ) have no GatherBlockQuantized form; such a tie falls back to quantizing the table on its own
// with RTN (even when only tied tables are converted: left in float it would outweigh the whole quantized lm_head).
import { attr, Node, type Graph } from '../../onnx/ir.js';
import { Tensor } from '../../onnx/tensor.js';
import { constantName, dropUnusedConstant, findEmbeddingGathers, nodeLabel, WeightKeys, type Candidate, type Skipped } from './find-weights.js';
import type { QuantMethod } from '../workers/kernel.js';
import { validateMethod } from '../method.js';
import { definePass } from './pass.js';
import { PatternSet } from './patterns.js';
import type { EmbeddingsMode } from '../../vocabulary.js';
import { QuantizedWeightIndex, addTensors, tensorsBytes, type QuantizedRecord } from './quantized-weights.js';
import { quantizeWeights, type QuantizedWeight } from '../streaming/quantize-weights.js';
import { renameOp } from './matmul-nbits.js';

export interface GatherBlockQuantizedOptions {
  /** 4 (default) or 8. */
  bits?: 4 | 8;
  /** Values per block along the row: a power of two, 16..256. Default 32. */
  blockSize?: number;
  /** Store per-block zero points. Default false (zero point 2^(bits−1)). */
  asym?: boolean;
  /** Node-name patterns (glob or /regex/) of Gathers to leave in float. */
  exclude?: readonly string[];
  /** Warn (in stats.warnings) about exclude patterns that matched nothing. Default true. */
  warnUnusedExcludes?: boolean;
  /** Reuse a tied lm_head's quantized weight when there is one. Default true. */
  tie?: boolean;
  /** `tied`: only convert tables that can share a quantized lm_head's tensors; `all` (default): every table. */
  only?: Exclude<EmbeddingsMode, 'none'>;
  /** Float bytes per row band a table is quantized in (default 64 MiB; see weight-rows.ts). */
  pieceBytes?: number;
}

export interface ConvertedGather {
  node: string;
  newNode: string;
  weight: string;
  rows: number;
  cols: number;
  bits: number;
  blockSize: number;
  /** Reads the lm_head's quantized tensors (named here) instead of its own. */
  tiedTo?: string;
  /** The table is a quantized lm_head's weight but could not share its tensors: why, and that it got its own RTN copy. */
  untied?: string;
  bytesBefore: number;
  bytesAfter: number;
}

export interface GatherBlockQuantizedStats {
  converted: ConvertedGather[];
  skipped: Skipped[];
  warnings: string[];
  /** Exclude patterns that matched no node of this pass. */
  unusedExcludes: string[];
  bytesBefore: number;
  bytesAfter: number;
  bytesRemoved: number;
  reason?: string;
}

interface Job {
  c: Candidate;
  tie?: QuantizedRecord;
  method?: QuantMethod & { bits: number };
  /** Another Gather of the same table converted earlier in this pass: read its tensors. */
  sameAs?: Job;
  /** A tied table quantized on its own: why it could not share the lm_head's tensors. */
  untied?: string;
  /** Set when committed: what this job's GatherBlockQuantized reads (for later Gathers of the same table). */
  added?: { data: string; scales: string; zeroPoints?: string; bits: number; blockSize: number };
}

export const gatherBlockQuantizedPass = definePass<GatherBlockQuantizedOptions, GatherBlockQuantizedStats>({
  name: 'quant:gather-block-quantized',
  describe: 'Gather on a constant embedding table → com.microsoft GatherBlockQuantized (reusing a tied lm_head)',
  async run(model, options, ctx) {
    const bits = options.bits ?? 4;
    const blockSize = options.blockSize ?? 32;
    validateMethod({ blockSize }, 'options');
    const exclude = new PatternSet(options.exclude ?? []);
    const found = findEmbeddingGathers(model);
    const index = QuantizedWeightIndex.of(ctx);
    const stats: GatherBlockQuantizedStats = {
      converted: [],
      skipped: [...found.skipped],
      warnings: [],
      unusedExcludes: [],
      bytesBefore: 0,
      bytesAfter: 0,
      bytesRemoved: 0,
    };
    const jobs: Job[] = [];
    const byTable = new Map<string, Job>();
    const keys = new WeightKeys();
    for (const c of found.candidates) {
      const label = nodeLabel(c.node);
      const ex = exclude.match(label);
      if (ex) {
        stats.skipped.push({ node: label, reason: `excluded by pattern ${ex.source}` });
        continue;
      }
      const w = c.weight;
      const key = keys.of(c);
      const first = byTable.get(key);
      if (first) {
        // Another Gather of a table already handled in this pass: read the same tensors.
        jobs.push({ c, sameAs: first });
        continue;
      }
      const rec = options.tie === false ? undefined : index.get(c.graph, constantName(w), w.layout);
      let untied: string | undefined;
      if (rec) {
        const why = tieBlocker(rec);
        if (!why) {
          const job: Job = { c, tie: rec };
          byTable.set(key, job);
          jobs.push(job);
          continue;
        }
        // The table is the lm_head's but cannot share its tensors (e.g. HQQ's float zero points): quantize it on its
        // own with RTN rather than leave a float table bigger than the whole quantized lm_head.
        untied = `the lm_head ${rec.tensors.b.name} cannot be shared (${why}): quantized on its own with RTN`;
        stats.warnings.push(`${label}: not tied to ${rec.tensors.b.name} (${why}); quantizing the table on its own with RTN`);
      }
      if (options.only === 'tied' && !rec) {
        stats.skipped.push({ node: label, reason: 'its table is not shared with a quantized lm_head (only tied tables are converted)' });
        continue;
      }
      // An untied copy of a quantized lm_head keeps its width (4 or 8 bits); other tables take the pass's.
      const b = rec && (rec.bits === 4 || rec.bits === 8) ? rec.bits : bits;
      if ((w.K * b) % 8 !== 0) {
        stats.skipped.push({ node: label, reason: `row length ${w.K} does not fill whole bytes at ${b} bits` });
        continue;
      }
      const job: Job = { c, untied, method: { scheme: b === 8 ? 'int8' : 'int4', algo: 'rtn', blockSize, symmetric: !options.asym, padding: 'none', bits: b } };
      byTable.set(key, job);
      jobs.push(job);
    }
    stats.unusedExcludes = exclude.unused();
    if (options.warnUnusedExcludes !== false) {
      for (const p of stats.unusedExcludes) stats.warnings.push(`exclude pattern ${p} matched no Gather`);
    }
    if (jobs.length === 0) {
      stats.reason =
        found.candidates.length === 0
          ? 'no Gather reads rows of a constant 2-D float table'
          : 'no embedding table could be converted (the skipped list says why for each)';
      return { model, modified: false, stats };
    }

    // Jobs are committed in order (initializer order stays that of the graph); the ones that quantize a table
    // commit as their tensors complete, the ones that read other tensors right before the next quantized one.
    let done = 0;
    const commitUpTo = (end: number, q?: QuantizedWeight) => {
      for (; done < end; done++) {
        const job = jobs[done];
        commit(job, done === end - 1 ? q : undefined, stats);
        ctx.progress({ pass: 'quant:gather-block-quantized', done: done + 1, total: jobs.length, item: nodeLabel(job.c.node) });
      }
    };
    const quantized = jobs.flatMap((job, at) => (job.method ? [{ at, weight: job.c.weight, method: job.method }] : []));
    await quantizeWeights(quantized, ctx, { bDims: 'rows', pieceBytes: options.pieceBytes }, (j, q) => commitUpTo(j.at + 1, q));
    commitUpTo(jobs.length);
    model.requireOpset('com.microsoft', 1);
    return { model, modified: true, stats };
  },
});

/** Why a quantized lm_head cannot be read by GatherBlockQuantized, or undefined when it can. */
function tieBlocker(r: QuantizedRecord): string | undefined {
  if (r.zeroPointKind === 'float') return 'its zero points are floats';
  if (r.K % r.method.blockSize !== 0) return `row length ${r.K} is not a multiple of block size ${r.method.blockSize}`;
  if (r.method.padding !== 'block') return 'unexpected layout';
  return undefined;
}

/** `/model/embed_tokens/Gather` → `/model/embed_tokens`, the path new nodes of this layer are named under. */
function layerPath(node: Node, fallback: string): string {
  if (node.name.endsWith('/Gather')) return node.name.slice(0, -'/Gather'.length);
  return node.name || fallback;
}

function commit(job: Job, quantized: QuantizedWeight | undefined, stats: GatherBlockQuantizedStats): void {
  const { c } = job;
  const w = c.weight;
  const graph = c.graph;
  let data: string;
  let scales: string;
  let zeroPoints: string | undefined;
  let bits: number;
  let blockSize: number;
  let added = 0;
  const nodes: Node[] = [];
  if (job.sameAs) {
    const a = job.sameAs.added!;
    ({ data, scales, zeroPoints, bits, blockSize } = a);
  } else if (job.tie) {
    const t = job.tie;
    const path = layerPath(c.node, constantName(w));
    const shape = Tensor.fromInt64(uniqueInitializerName(graph, `${path}/Reshape/shape`), [2], [t.N, t.rowBytes]);
    graph.addInitializer(shape);
    data = `${path}/Reshape/output_0`;
    nodes.push(new Node({ opType: 'Reshape', name: `${path}/Reshape`, inputs: [t.tensors.b.name, shape.name], outputs: [data] }));
    scales = t.tensors.scales.name;
    zeroPoints = t.tensors.zeroPoints?.name;
    bits = t.bits;
    blockSize = t.method.blockSize;
    added = shape.byteLength;
    job.added = { data, scales, zeroPoints, bits, blockSize };
  } else {
    const m = job.method!;
    const tensors = quantized!.tensors;
    addTensors(graph, tensors);
    data = tensors.b.name;
    scales = tensors.scales.name;
    zeroPoints = tensors.zeroPoints?.name;
    bits = m.bits;
    blockSize = m.blockSize;
    added = tensorsBytes(tensors);
    job.added = { data, scales, zeroPoints, bits, blockSize };
  }
  const q = new Node({
    opType: 'GatherBlockQuantized',
    domain: 'com.microsoft',
    name: renameOp(c.node.name, 'Gather', 'GatherBlockQuantized'),
    inputs: [data, c.node.inputs[1], scales, ...(zeroPoints ? [zeroPoints] : [])],
    // A fused Transpose (Gather on axis 1, then the gathered axis moved last) is what the rows already are.
    outputs: c.fusedTranspose ? [...c.fusedTranspose.outputs] : [...c.node.outputs],
    attributes: [attr.int('bits', bits), attr.int('block_size', blockSize), attr.int('gather_axis', 0), attr.int('quantize_axis', 1)],
    docString: c.node.docString,
    metadataProps: c.node.metadataProps,
  });
  nodes.push(q);
  graph.replaceNode(c.node, nodes);
  if (c.fusedTranspose) graph.removeNode(c.fusedTranspose);
  if (!job.sameAs) stats.bytesBefore += w.tensor.byteLength;
  stats.bytesAfter += added;
  stats.converted.push({
    node: nodeLabel(c.node),
    newNode: q.name,
    weight: constantName(w),
    rows: w.N,
    cols: w.K,
    bits,
    blockSize,
    tiedTo: (job.tie ?? job.sameAs?.tie)?.tensors.b.name,
    untied: job.untied ?? job.sameAs?.untied,
    bytesBefore: job.sameAs ? 0 : w.tensor.byteLength,
    bytesAfter: added,
  });
  stats.bytesRemoved += dropUnusedConstant(graph, w);
}

function uniqueInitializerName(graph: Graph, base: string): string {
  let name = base;
  for (let i = 2; graph.initializer(name) || graph.nodes.some((n) => n.outputs.includes(name)); i++) name = `${base}.${i}`;
  return name;
}

