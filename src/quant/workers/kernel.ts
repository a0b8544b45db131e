// The unit of work a pass hands to a worker: one weight's raw bytes in, MatMulNBits-ready byte buffers out.
// Pure and synchronous, so it runs the same in a piscina worker (worker.ts) or inline (tests, tiny tensors).
import { DataType, dataTypeName } from '../../onnx/dtype.js';
import { float32ToFloat16Bits, toFloat32, viewBytes } from '../../onnx/tensor.js';
import { QuantizationError, isPhiForgeError } from '../../util/errors.js';
import { gptqQuantize } from '../algorithms/gptq.js';
import { hqqQuantize } from '../algorithms/hqq.js';
import { rtnQuantize } from '../algorithms/rtn.js';
import { findNonFinite, type PackedWeight, type QuantReport, type RowPadding, type WeightLayout, type WeightMatrix } from '../formats/block.js';
import type { QuantAlgo, QuantScheme, TernaryGranularity } from '../../vocabulary.js';

/** How one weight is quantized. */
export interface QuantMethod {
  scheme: QuantScheme;
  /** `awq` weights arrive already scaled by the AWQ pass (quant:awq-scale), so their kernel is RTN. */
  algo: QuantAlgo;
  blockSize: number;
  /** No stored zero points (int4/int8 RTN); HQQ is always asymmetric, ternary always has zero point 2. */
  symmetric: boolean;
  padding: RowPadding;
  /** Ternary only: one scale per block or per row. */
  ternaryScope?: TernaryGranularity;
  /** GPTQ only. */
  gptq?: { damp?: number; actOrder?: boolean };
}

export interface KernelTask {
  /** Tensor name, for error messages. */
  tensor: string;
  /** Raw little-endian bytes of the weight (FLOAT, FLOAT16, BFLOAT16 or DOUBLE). */
  bytes: Uint8Array;
  dataType: number;
  /** Type of the scales and float zero points (FLOAT or FLOAT16): the activation type. Default: dataType. */
  floatType?: number;
  K: number;
  /** Rows in this task: the whole weight's N, or a band of it (see weight-rows.ts). */
  N: number;
  /** Index of this task's first row in the whole weight (for messages); default 0. */
  firstRow?: number;
  layout: WeightLayout;
  method: QuantMethod;
  /** GPTQ: the input Hessian, K×K float64 (raw bytes). */
  hessian?: Uint8Array;
}

export interface KernelResult {
  bits: number;
  kBlocks: number;
  rowBytes: number;
  /** [N, rowBytes] */
  b: Uint8Array;
  /** [N, k_blocks] in the weight's float type (FLOAT or FLOAT16). */
  scales: Uint8Array;
  /** Packed uint8 [N, ceil(k_blocks·bits/8)] or float [N, k_blocks] in the weight's float type. */
  zeroPoints?: { kind: 'packed' | 'float'; bytes: Uint8Array };
  report?: QuantReport;
}

/** A failure carried back from a worker as plain data (errors lose their class across threads). */
export interface KernelFailure {
  error: { code: string; message: string; where?: string; fix?: string };
}

/** The raw bytes of a weight as float32 rows of K, refusing non-finite values (they would poison every scale). */
export function decodeWeight(t: Pick<KernelTask, 'tensor' | 'bytes' | 'dataType' | 'K' | 'N' | 'layout' | 'firstRow'>): WeightMatrix {
  const data = toFloat32(t.bytes, t.dataType, t.tensor);
  const bad = findNonFinite(data);
  if (bad !== undefined) {
    // Index into the stored tensor: a band's rows are columns of a [K, N] tensor.
    const n0 = t.firstRow ?? 0;
    const [r, c] = t.layout === 'kn' ? [Math.floor(bad / t.N), n0 + (bad % t.N)] : [n0 + Math.floor(bad / t.K), bad % t.K];
    throw new QuantizationError('QUANT_NON_FINITE', `weight holds ${data[bad]} at [${r}, ${c}]; quantization needs finite values`, {
      where: `tensor ${t.tensor}`,
      fix: 'the float model is broken (overflow in conversion or a corrupt checkpoint): fix it before quantizing',
    });
  }
  return { data, K: t.K, N: t.N, layout: t.layout };
}

export function runKernel(t: KernelTask): KernelResult {
  const floatType = t.floatType ?? t.dataType;
  if (floatType !== DataType.FLOAT && floatType !== DataType.FLOAT16) {
    throw new QuantizationError('QUANT_WEIGHT_DTYPE', `weight is ${dataTypeName(floatType)}; only FLOAT and FLOAT16 are quantized`, {
      where: `tensor ${t.tensor}`,
    });
  }
  const w = decodeWeight(t);
  const scaleType = floatType === DataType.FLOAT16 ? 'float16' : 'float32';
  const m = t.method;
  let p: PackedWeight;
  if (m.algo !== 'rtn' && m.scheme === 'ternary') {
    throw new QuantizationError('QUANT_ALGO_SCHEME', `${m.algo.toUpperCase()} has no ternary variant`, {
      where: `tensor ${t.tensor}`,
      fix: 'use --algo rtn with --scheme ternary',
    });
  }
  if (m.algo === 'gptq') {
    if (!t.hessian || t.hessian.byteLength !== t.K * t.K * 8) {
      throw new QuantizationError('QUANT_GPTQ_HESSIAN', `GPTQ needs a ${t.K}×${t.K} input Hessian`, { where: `tensor ${t.tensor}` });
    }
    const h = t.hessian.byteOffset % 8 === 0 ? t.hessian : t.hessian.slice();
    p = gptqQuantize(w, new Float64Array(h.buffer, h.byteOffset, t.K * t.K), {
      bits: m.scheme === 'int8' ? 8 : 4,
      blockSize: m.blockSize,
      symmetric: m.symmetric,
      scaleType,
      padding: m.padding,
      damp: m.gptq?.damp,
      actOrder: m.gptq?.actOrder,
      name: t.tensor,
    });
  } else if (m.algo === 'hqq') {
    p = hqqQuantize(w, {
      bits: m.scheme === 'int8' ? 8 : 4,
      blockSize: m.blockSize,
      scaleType,
      padding: m.padding,
    });
  } else {
    // rtn, and awq (whose weights the AWQ pass has already multiplied by the searched input scales).
    p = rtnQuantize(w, m.scheme, {
      blockSize: m.blockSize,
      symmetric: m.symmetric,
      scaleType,
      padding: m.padding,
      scope: m.ternaryScope,
    });
  }
  return toResult(p);
}

/** The kernel, with failures returned as data (what the worker sends back). */
export function runKernelSafe(t: KernelTask): KernelResult | KernelFailure {
  try {
    return runKernel(t);
  } catch (e) {
    return toFailure(e, t.tensor);
  }
}

/** An error as plain data that survives the trip between threads (rebuilt by the pool). */
export function toFailure(e: unknown, tensor: string): KernelFailure {
  if (isPhiForgeError(e)) {
    // The message carries the fix already; strip it so rebuilding the error does not repeat it.
    const tail = e.fix ? `\n  fix: ${e.fix}` : '';
    const message = tail && e.message.endsWith(tail) ? e.message.slice(0, -tail.length) : e.message;
    return { error: { code: e.code, message, where: e.where, fix: e.fix } };
  }
  const err = e instanceof Error ? e : new Error(String(e));
  return { error: { code: 'QUANT_KERNEL_FAILED', message: `${err.message}\n${err.stack ?? ''}`, where: `tensor ${tensor}` } };
}

export function isKernelFailure(r: object): r is KernelFailure {
  return 'error' in r;
}

function floatBytes(a: Float32Array, t: 'float32' | 'float16'): Uint8Array {
  return t === 'float16' ? viewBytes(float32ToFloat16Bits(a)) : viewBytes(a);
}

function toResult(p: PackedWeight): KernelResult {
  const z = p.zeroPoints;
  return {
    bits: p.bits,
    kBlocks: p.kBlocks,
    rowBytes: p.rowBytes,
    b: p.b,
    scales: floatBytes(p.scales, p.scaleType),
    zeroPoints: z && (z.kind === 'packed' ? { kind: 'packed', bytes: z.data } : { kind: 'float', bytes: floatBytes(z.data, p.scaleType) }),
    report: p.report,
  };
}

/** The ArrayBuffers of a result, for transferring it between threads without a copy. */
export function resultBuffers(r: KernelResult): ArrayBuffer[] {
  const bufs = new Set<ArrayBuffer>();
  for (const a of [r.b, r.scales, r.zeroPoints?.bytes]) if (a) bufs.add(a.buffer as ArrayBuffer);
  return [...bufs];
}
