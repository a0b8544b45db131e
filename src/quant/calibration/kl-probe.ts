// Model-level sensitivity of single weights: the KL divergence of the model's next-token distribution from the float
// model's when only that weight is replaced by its quantized version, for many weights with one onnxruntime session
// per chunk. Each probed MatMul reads B + m·Δ, with Δ = Q(B) − B a constant and m a scalar graph input:
//
//   B ───────────────────── Add ─▶ MatMul
//   Δ ─ Mul(m) ─────────────┘
//
// Per calibration feed: one run with every m = 0 (the float model, the reference), then one run per weight with only
// its m = 1. The model is restored as it was before this returns.
import type * as OrtTypes from 'onnxruntime-node';
import { DataType } from '../../onnx/dtype.js';
import { Node, tensorType, type Model, type ValueInfo } from '../../onnx/ir.js';
import { Tensor, float16BitsToFloat32, float32ToFloat16Bits, viewBytes } from '../../onnx/tensor.js';
import { QuantizationError } from '../../util/errors.js';
import { loadOrt } from '../../ort/session.js';
import { probeSession, type CalibrationSource, type Feeds, type OrtTensor } from './calibration.js';

export interface KlProbeUnit {
  /** Key of the result. */
  id: string;
  /** MatMul nodes (of the main graph) reading the weight: their B input gets Δ added. */
  nodes: Node[];
  /** Q(B) − B as [K, N]. */
  delta: Float32Array;
  K: number;
  N: number;
  /** The activation type (FLOAT or FLOAT16): Δ and m are stored in it. */
  floatType: number;
}

export interface KlProbeOptions {
  /** The output holding next-token logits (last axis: vocabulary). Default `logits`. */
  logits?: string;
  /** Bytes of Δ tensors per session (they are inline in the probe model's protobuf). Default 256 MiB. */
  chunkBytes?: number;
  /**
   * Calibration feeds used (the first ones). Default 8: ranking weights whose KL differs by orders of magnitude needs
   * far fewer tokens than calibrating GPTQ, and every feed costs one run per weight.
   */
  maxFeeds?: number;
  onProgress?: (done: number, total: number) => void;
}

function logitsOf(t: OrtTensor): Float32Array {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type === 'float16') return float16BitsToFloat32(t.data as Uint16Array);
  throw new QuantizationError('QUANT_KL_LOGITS', `logits are ${t.type}, expected float32 or float16`);
}

/** Per row of V logits: p = softmax (float64) and Σ p·log p, the parts of KL(p ‖ q) that depend on p alone. */
function reference(x: Float32Array, V: number): { p: Float64Array; negEntropy: Float64Array } {
  const rows = x.length / V;
  const p = new Float64Array(x.length);
  const negEntropy = new Float64Array(rows);
  for (let r = 0, o = 0; r < rows; r++, o += V) {
    const lse = logSumExp(x, o, V);
    let h = 0;
    for (let v = 0; v < V; v++) {
      const lp = x[o + v] - lse;
      const pv = Math.exp(lp);
      p[o + v] = pv;
      h += pv * lp;
    }
    negEntropy[r] = h;
  }
  return { p, negEntropy };
}

function logSumExp(x: Float32Array, o: number, V: number): number {
  let mx = -Infinity;
  for (let v = 0; v < V; v++) if (x[o + v] > mx) mx = x[o + v];
  let s = 0;
  for (let v = 0; v < V; v++) s += Math.exp(x[o + v] - mx);
  return mx + Math.log(s);
}

/** Σ over rows of KL(p ‖ softmax(q)) = Σ p·log p − Σ p·q + logsumexp(q) (Σ p = 1). */
function klSum(ref: { p: Float64Array; negEntropy: Float64Array }, q: Float32Array, V: number): number {
  let kl = 0;
  for (let r = 0, o = 0; o < q.length; r++, o += V) {
    let pq = 0;
    for (let v = 0; v < V; v++) pq += ref.p[o + v] * q[o + v];
    kl += ref.negEntropy[r] - pq + logSumExp(q, o, V);
  }
  return kl;
}

function chunks(units: readonly KlProbeUnit[], budget: number): KlProbeUnit[][] {
  const out: KlProbeUnit[][] = [];
  let cur: KlProbeUnit[] = [];
  let bytes = 0;
  for (const u of units) {
    const b = u.K * u.N * (u.floatType === DataType.FLOAT16 ? 2 : 4);
    if (cur.length && bytes + b > budget) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(u);
    bytes += b;
  }
  if (cur.length) out.push(cur);
  return out;
}

/** Adds the probe nodes for `units` to the main graph; returns the mask input names and an undo function. */
function instrument(model: Model, units: readonly KlProbeUnit[]): { masks: string[]; undo: () => void } {
  const g = model.graph;
  const saved = { nodes: [...g.nodes], inputs: [...g.inputs], initializers: [...g.initializers] };
  const rewired: [Node, string][] = [];
  const masks: string[] = [];
  units.forEach((u, i) => {
    const delta = `/kl_probe/${i}/delta`;
    const mask = `/kl_probe/${i}/mask`;
    const scaled = `/kl_probe/${i}/Mul/output_0`;
    const bytes = u.floatType === DataType.FLOAT16 ? viewBytes(float32ToFloat16Bits(u.delta)) : viewBytes(u.delta);
    g.initializers.push(Tensor.fromBytes(delta, u.floatType, [u.K, u.N], bytes));
    g.inputs.push({ name: mask, type: tensorType(u.floatType, []) } satisfies ValueInfo);
    masks.push(mask);
    const first = Math.min(...u.nodes.map((n) => g.nodes.indexOf(n)));
    const added = [new Node({ opType: 'Mul', name: `/kl_probe/${i}/Mul`, inputs: [delta, mask], outputs: [scaled] })];
    u.nodes.forEach((n, j) => {
      const b = `/kl_probe/${i}/Add_${j}/output_0`;
      added.push(new Node({ opType: 'Add', name: `/kl_probe/${i}/Add_${j}`, inputs: [n.inputs[1], scaled], outputs: [b] }));
      rewired.push([n, n.inputs[1]]);
      n.inputs[1] = b;
    });
    g.nodes.splice(first, 0, ...added);
  });
  return {
    masks,
    undo: () => {
      for (const [n, b] of rewired) n.inputs[1] = b;
      g.nodes = saved.nodes;
      g.inputs = saved.inputs;
      g.initializers = saved.initializers;
    },
  };
}

function maskTensor(ort: typeof OrtTypes, floatType: number, on: boolean): OrtTensor {
  return floatType === DataType.FLOAT16
    ? new ort.Tensor('float16', Uint16Array.of(on ? 0x3c00 : 0), [])
    : new ort.Tensor('float32', Float32Array.of(on ? 1 : 0), []);
}

/** Mean KL per next-token position (over every calibration position) for each unit alone. */
export async function probeKl(model: Model, units: readonly KlProbeUnit[], source: CalibrationSource, o: KlProbeOptions = {}): Promise<Map<string, number>> {
  const logits = o.logits ?? 'logits';
  if (!model.graph.outputs.some((v) => v.name === logits)) {
    throw new QuantizationError('QUANT_KL_LOGITS', `the model has no output ${logits} to measure KL on`, { fix: 'use the output-error sensitivity for this model' });
  }
  const ort = await loadOrt();
  const maxFeeds = o.maxFeeds ?? 8;
  const result = new Map<string, number>();
  let done = 0;
  for (const chunk of chunks(units, o.chunkBytes ?? 256 * 2 ** 20)) {
    const { masks, undo } = instrument(model, chunk);
    let session: OrtTypes.InferenceSession;
    let cleanup: () => Promise<void>;
    try {
      ({ session, cleanup } = await probeSession(model, []));
    } finally {
      undo();
    }
    const sums = new Float64Array(chunk.length);
    let positions = 0;
    let fed = 0;
    try {
      const off = Object.fromEntries(chunk.map((u, i) => [masks[i], maskTensor(ort, u.floatType, false)]));
      for await (const feeds of source.feeds(model, ort)) {
        const run = async (extra: Feeds) => {
          const out = await session.run({ ...feeds, ...off, ...extra }, [logits]);
          return out[logits];
        };
        if (fed++ >= maxFeeds) break;
        const out = await run({});
        const V = out.dims[out.dims.length - 1];
        const logitsRef = logitsOf(out);
        const ref = reference(logitsRef, V);
        positions += logitsRef.length / V;
        for (let i = 0; i < chunk.length; i++) {
          const q = await run({ [masks[i]]: maskTensor(ort, chunk[i].floatType, true) });
          sums[i] += klSum(ref, logitsOf(q), V);
        }
      }
    } finally {
      await session.release();
      await cleanup();
    }
    chunk.forEach((u, i) => result.set(u.id, positions > 0 ? sums[i] / positions : 0));
    done += chunk.length;
    o.onProgress?.(done, units.length);
  }
  return result;
}
