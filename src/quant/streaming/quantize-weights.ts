// The one loop that turns float weights into quantized tensors, shared by the MatMulNBits and GatherBlockQuantized
// passes: each weight is cut into row bands (weight-rows.ts), the bands of all weights run on the kernel pool a few
// at a time, and their outputs are written, strictly in order, to the run's tensor sink (memory or a spill file).
// Peak memory is the bands in flight (and the pool's reused band buffers) plus one weight's scales, however big the
// model.
import { DataType } from '../../onnx/dtype.js';
import type { Tensor } from '../../onnx/tensor.js';
import type { QuantReport } from '../formats/block.js';
import { constantName, type WeightRef } from '../passes/find-weights.js';
import type { KernelResult, QuantMethod } from '../workers/kernel.js';
import type { PassContext } from '../passes/pass.js';
import { quantizedNames, type QuantizedTensors } from '../passes/quantized-weights.js';
import { runInOrder } from './run-in-order.js';
import type { TensorWriter } from './tensor-sink.js';
import { readWeightRows, rowBands, type RowBand } from './weight-rows.js';

export interface WeightJob {
  weight: WeightRef;
  method: QuantMethod;
  /** GPTQ: the K×K float64 input Hessian (the weight is then quantized in one piece). Given up to the kernel. */
  hessian?: Uint8Array;
}

/** A weight's quantized tensors (already in the sink, not yet in the graph) and their geometry. */
export interface QuantizedWeight {
  tensors: QuantizedTensors;
  bits: number;
  kBlocks: number;
  rowBytes: number;
  zeroPointKind?: 'packed' | 'float';
  report?: QuantReport;
}

export interface QuantizeWeightsOptions {
  /** B as [N, k_blocks, blob] (MatMulNBits) or [N, row bytes] (GatherBlockQuantized). */
  bDims: 'blocks' | 'rows';
  /** Float bytes per band (default weight-rows' PIECE_BYTES); tests make it small to force many bands. */
  pieceBytes?: number;
}

interface Piece<J> {
  job: J;
  band: RowBand;
  first: boolean;
  last: boolean;
}

/** Weight outputs being collected: B streams to the sink band by band, scales and zero points wait for the last band. */
interface Pending {
  b: TensorWriter;
  scales: Uint8Array[];
  zeroPoints: Uint8Array[];
  first: KernelResult;
  report?: QuantReport;
}

/**
 * Quantizes the jobs' weights and calls `commit` for each, in job order, once its tensors are complete. Commit adds
 * them to the graph (tensor names are taken then, so a later job sees the earlier ones' names as taken).
 */
export async function quantizeWeights<J extends WeightJob>(
  jobs: readonly J[],
  ctx: PassContext,
  o: QuantizeWeightsOptions,
  commit: (job: J, q: QuantizedWeight) => void,
): Promise<void> {
  const pieces: Piece<J>[] = [];
  for (const job of jobs) {
    const bands = job.hessian ? [{ n0: 0, n1: job.weight.N }] : rowBands(job.weight, o.pieceBytes);
    bands.forEach((band, i) => pieces.push({ job, band, first: i === 0, last: i === bands.length - 1 }));
  }
  let pending: Pending | undefined;
  await runInOrder(
    pieces,
    ctx.kernels.concurrency,
    (p) => runPiece(p, ctx),
    async (p, r) => {
      if (p.first) pending = { b: ctx.sink.begin(), scales: [], zeroPoints: [], first: r };
      const s = pending!;
      await s.b.append(r.b);
      s.scales.push(r.scales);
      if (r.zeroPoints) s.zeroPoints.push(r.zeroPoints.bytes);
      if (r.report) s.report = addReports(s.report, r.report);
      if (!p.last) return;
      pending = undefined;
      commit(p.job, await finishWeight(p.job, s, o.bDims, ctx));
    },
  );
}

async function runPiece<J extends WeightJob>(p: Piece<J>, ctx: PassContext): Promise<KernelResult> {
  ctx.signal?.throwIfAborted();
  const w = p.job.weight;
  const whole = p.band.n0 === 0 && p.band.n1 === w.N;
  // Read into a buffer from the pool: a worker sent it back already paged in, where fresh memory would fault per page.
  const bytes = await readWeightRows(w, p.band, (n) => ctx.kernels.buffer(n));
  const hessian = p.job.hessian;
  p.job.hessian = undefined;
  return ctx.kernels.run(
    {
      tensor: constantName(w),
      bytes,
      dataType: w.tensor.dataType,
      floatType: w.floatType,
      K: w.K,
      N: p.band.n1 - p.band.n0,
      firstRow: p.band.n0,
      layout: w.layout,
      method: p.job.method,
      hessian,
    },
    // A band or external data is read into a pool buffer we own: move it to the worker rather than copy it.
    { transfer: !whole || w.tensor.source.kind === 'external' },
  );
}

async function finishWeight(job: WeightJob, s: Pending, bDims: 'blocks' | 'rows', ctx: PassContext): Promise<QuantizedWeight> {
  const w = job.weight;
  const r = s.first;
  const names = quantizedNames(w.graph, constantName(w));
  const blob = (job.method.blockSize * r.bits) / 8;
  const b = await s.b.finish(names.b, DataType.UINT8, bDims === 'rows' ? [w.N, r.rowBytes] : [w.N, r.kBlocks, blob]);
  const scales = await writeWhole(ctx, s.scales, names.scales, w.floatType, [w.N, r.kBlocks]);
  let zeroPoints: Tensor | undefined;
  const zk = r.zeroPoints?.kind;
  if (zk === 'packed') zeroPoints = await writeWhole(ctx, s.zeroPoints, names.zeroPoints, DataType.UINT8, [w.N, Math.ceil((r.kBlocks * r.bits) / 8)]);
  else if (zk === 'float') zeroPoints = await writeWhole(ctx, s.zeroPoints, names.zeroPoints, w.floatType, [w.N, r.kBlocks]);
  return {
    tensors: { b, scales, zeroPoints },
    bits: r.bits,
    kBlocks: r.kBlocks,
    rowBytes: r.rowBytes,
    zeroPointKind: zk,
    report: s.report,
  };
}

async function writeWhole(ctx: PassContext, pieces: Uint8Array[], name: string, dataType: number, dims: number[]): Promise<Tensor> {
  const w = ctx.sink.begin();
  for (const p of pieces) await w.append(p);
  return w.finish(name, dataType, dims);
}

/** Ternary's exact-block counts, summed over a weight's bands. */
function addReports(a: QuantReport | undefined, b: QuantReport): QuantReport {
  if (!a) return { ...b };
  return { exactBlocks: (a.exactBlocks ?? 0) + (b.exactBlocks ?? 0), totalBlocks: (a.totalBlocks ?? 0) + (b.totalBlocks ?? 0) };
}
