// Per-row statistics of a logits matrix computed by onnxruntime itself (a tiny graph in its own session): the
// log-sum-exp, the argmax and the NLL of each row's target. onnxruntime's vectorized exp makes this several times
// cheaper than a JavaScript loop, which on small models would otherwise rival the model's own forward time.
import { Tensor as OrtTensor, type InferenceSession } from 'onnxruntime-node';
import { openOrtSession } from '../ort/session.js';
import { encodeModel } from '../onnx/codec.js';
import { DataType } from '../onnx/dtype.js';
import { attr, Graph, Model, Tensor, tensorType } from '../onnx/ir.js';
import { EvalError } from '../util/errors.js';

export interface RowKernelResult {
  /** log Σ exp(logits) per row (computed in float32: within ~1e-6 of the float64 value). */
  lse: Float64Array;
  /** Index of the largest logit (the first on ties). */
  argmax: Int32Array;
  /** lse − logits[target] per row. */
  nll: Float64Array;
}

/**
 * The graph (LogSoftmax is the vectorized path in onnxruntime's CPU kernels, about 3× faster than ReduceLogSumExp):
 *
 *   logits [n, V] ─┬─ LogSoftmax(axis 1) ─ lsm ─┬─ GatherElements ◀─ Unsqueeze ◀─ targets [n] ─ Neg ─ nll [n]
 *                  │                             └─ GatherElements ◀─┐
 *                  ├─ ArgMax(axis 1) ─ argmax [n, 1] ────────────────┤   (lse read at the argmax, where log-prob
 *                  └─ GatherElements ◀───────────────────────────────┘    ≈ 0 keeps float32 precision)
 *                         logits[argmax] − lsm[argmax] = lse [n]
 */
export function rowKernelModel(): Uint8Array {
  const g = new Graph('row_stats');
  g.inputs.push({ name: 'logits', type: tensorType(DataType.FLOAT, ['rows', 'vocab']) });
  g.inputs.push({ name: 'targets', type: tensorType(DataType.INT32, ['rows']) });
  g.addInitializer(Tensor.fromInt64('axis1', [1], [1]));
  const node = (opType: string, inputs: string[], output: string, attributes = [attr.int('axis', 1)]) =>
    g.addNode({ opType, inputs, outputs: [output], attributes, name: `/${output}` });
  node('LogSoftmax', ['logits'], 'lsm');
  node('ArgMax', ['logits'], 'argmax_2d', [attr.int('axis', 1), attr.int('keepdims', 1)]);
  node('Squeeze', ['argmax_2d', 'axis1'], 'argmax', []);
  node('Unsqueeze', ['targets', 'axis1'], 'targets_2d', []);
  node('GatherElements', ['lsm', 'targets_2d'], 'target_logp_2d');
  node('Neg', ['target_logp_2d'], 'nll_2d', []);
  node('Squeeze', ['nll_2d', 'axis1'], 'nll', []);
  node('GatherElements', ['logits', 'argmax_2d'], 'max_logit_2d');
  node('GatherElements', ['lsm', 'argmax_2d'], 'max_logp_2d');
  node('Sub', ['max_logit_2d', 'max_logp_2d'], 'lse_2d', []);
  node('Squeeze', ['lse_2d', 'axis1'], 'lse', []);
  g.outputs.push({ name: 'lse', type: tensorType(DataType.FLOAT, ['rows']) });
  g.outputs.push({ name: 'argmax', type: tensorType(DataType.INT64, ['rows']) });
  g.outputs.push({ name: 'nll', type: tensorType(DataType.FLOAT, ['rows']) });
  const m = new Model(g, [{ domain: '', version: 21 }]);
  m.producerName = 'phi-forge-eval';
  return encodeModel(m);
}

export class RowKernel {
  private readonly session: InferenceSession;

  private constructor(session: InferenceSession) {
    this.session = session;
  }

  /**
   * One intra-op thread by default: the work per call is small, and a second thread pool spinning next to the
   * model session's own costs the model more than it saves here.
   */
  static async create(opts: { intraOpNumThreads?: number } = {}): Promise<RowKernel> {
    const session = await openOrtSession(rowKernelModel(), { intraOpNumThreads: opts.intraOpNumThreads ?? 1 });
    return new RowKernel(session);
  }

  /** Statistics of rows [rowOffset, rowOffset + rows) of a row-major [*, vocab] matrix; targets[r] for row r. */
  async run(logits: Float32Array, vocab: number, rowOffset: number, rows: number, targets: Int32Array): Promise<RowKernelResult> {
    if (targets.length < rows) throw new EvalError('ROW_KERNEL_TARGETS', `${rows} rows but ${targets.length} targets`);
    const view = logits.subarray(rowOffset * vocab, (rowOffset + rows) * vocab);
    const out = await this.session.run({
      logits: new OrtTensor('float32', view, [rows, vocab]),
      targets: new OrtTensor('int32', targets.length === rows ? targets : targets.subarray(0, rows), [rows]),
    });
    const lse32 = out.lse.data as Float32Array;
    const nll32 = out.nll.data as Float32Array;
    const am = out.argmax.data as BigInt64Array;
    const lse = new Float64Array(rows);
    const nll = new Float64Array(rows);
    const argmax = new Int32Array(rows);
    for (let r = 0; r < rows; r++) {
      lse[r] = lse32[r];
      nll[r] = nll32[r];
      argmax[r] = Number(am[r]);
      // onnxruntime does not fail on NaN logits; the JavaScript path did. Keep that check (a NaN lse means one).
      if (lse32[r] !== lse32[r]) {
        throw new EvalError('LOGITS_NAN', `row ${rowOffset + r} of the logits holds NaN`, {
          fix: 'the model produced NaN: check its weights (fp16 overflow? a broken quantization?)',
        });
      }
      if (!Number.isFinite(lse32[r])) {
        throw new EvalError('LOGITS_INFINITE', `row ${rowOffset + r} of the logits has no finite log-sum-exp (${lse32[r]})`, {
          fix: 'the model produced infinities: check its weights and activation precision',
        });
      }
    }
    return { lse, argmax, nll };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
