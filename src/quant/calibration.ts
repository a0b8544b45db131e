// Calibration for data-aware quantization (GPTQ): run the model in onnxruntime-node with chosen MatMul inputs added
// as graph outputs and accumulate each input's Hessian H = Σ x xᵀ / n (x a row of K activations) in float64.
import { randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type * as OrtTypes from 'onnxruntime-node';
import { encodeModel } from '../onnx/codec.js';
import { DataType, dataTypeName } from '../onnx/dtype.js';
import { tensorType, type Model, type ValueInfo } from '../onnx/ir.js';
import { float16BitsToFloat32 } from '../onnx/tensor.js';
import { QuantizationError } from '../util/errors.js';

export type OrtTensor = OrtTypes.Tensor;
export type Feeds = Record<string, OrtTensor>;

/** Calibration inputs: one feed dictionary per run, built for the model being calibrated. */
export interface CalibrationSource {
  /** For messages, e.g. the file it came from. */
  readonly describe: string;
  /** Called once per capture run; must give the same feeds every time. */
  feeds(model: Model, ort: typeof OrtTypes): Iterable<Feeds> | AsyncIterable<Feeds>;
}

/** A value whose Hessian is wanted: a MatMul input with K features in its last dimension. */
export interface HessianRequest {
  value: string;
  K: number;
  /** Activation type (FLOAT or FLOAT16). */
  floatType: number;
}

export interface Hessian {
  /** K×K, row-major: Σ x xᵀ / rows. */
  h: Float64Array;
  K: number;
  /** Activation rows seen (tokens). */
  rows: number;
}

async function loadOrt(): Promise<typeof OrtTypes> {
  const m = (await import('onnxruntime-node')) as typeof OrtTypes & { default?: typeof OrtTypes };
  return m.InferenceSession ? m : m.default!;
}

/** Adds x·xᵀ for every row of a [rows, K] activation block to h (upper triangle, mirrored at the end). */
function accumulate(h: Float64Array, x: Float32Array, K: number): number {
  const rows = Math.floor(x.length / K);
  for (let r = 0; r < rows; r++) {
    const o = r * K;
    for (let a = 0; a < K; a++) {
      const xa = x[o + a];
      if (xa === 0) continue;
      const ha = a * K;
      for (let b = a; b < K; b++) h[ha + b] += xa * x[o + b];
    }
  }
  return rows;
}

function finish(h: Float64Array, K: number, rows: number): void {
  const s = rows > 0 ? 1 / rows : 0;
  for (let a = 0; a < K; a++) {
    for (let b = a; b < K; b++) {
      const v = h[a * K + b] * s;
      h[a * K + b] = v;
      h[b * K + a] = v;
    }
  }
}

function asFloat32(t: OrtTensor, value: string): Float32Array {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type === 'float16') return float16BitsToFloat32(t.data as Uint16Array);
  throw new QuantizationError('QUANT_CALIB_TYPE', `activation ${value} is ${t.type}, expected float32 or float16`, { where: `value ${value}` });
}

/**
 * Where a model whose weights live in external data can be written so onnxruntime finds them: the folder the data
 * locations are relative to (undefined when every tensor is inline).
 */
function externalBaseDir(model: Model): string | undefined {
  for (const t of model.allTensors()) {
    const s = t.source;
    if (s.kind === 'external') {
      const depth = s.location.split(/[\\/]/).length - 1;
      let d = dirname(s.path);
      for (let i = 0; i < depth; i++) d = dirname(d);
      return d;
    }
  }
  return undefined;
}

/**
 * Runs the model on every calibration feed with the requested values as extra outputs and returns their Hessians.
 * The model is left as it was. Values that are graph inputs are read from the feeds.
 */
export async function captureHessians(model: Model, requests: readonly HessianRequest[], source: CalibrationSource): Promise<Map<string, Hessian>> {
  const ort = await loadOrt();
  const g = model.graph;
  const inputNames = new Set(g.inputs.map((v) => v.name));
  const outputNames = new Set(g.outputs.map((v) => v.name));
  const added: ValueInfo[] = requests
    .filter((r) => !inputNames.has(r.value) && !outputNames.has(r.value))
    .map((r) => ({ name: r.value, type: tensorType(r.floatType) }));
  const result = new Map<string, Hessian>(requests.map((r) => [r.value, { h: new Float64Array(r.K * r.K), K: r.K, rows: 0 }]));

  const saved = g.outputs;
  g.outputs = [...saved, ...added];
  let tmp: string | undefined;
  let session: OrtTypes.InferenceSession;
  try {
    const bytes = encodeModel(model);
    const base = externalBaseDir(model);
    if (base) {
      // External data resolves against the model file's folder: write the probe model next to the data.
      tmp = join(base, `.phi-forge-calibration-${process.pid}-${randomBytes(4).toString('hex')}.onnx`);
      await writeFile(tmp, bytes);
      session = await ort.InferenceSession.create(tmp);
    } else {
      session = await ort.InferenceSession.create(bytes);
    }
  } finally {
    g.outputs = saved;
  }
  try {
    let runs = 0;
    for await (const feeds of source.feeds(model, ort)) {
      const fetches = added.map((v) => v.name);
      const out = fetches.length ? await session.run(feeds, fetches) : {};
      for (const r of requests) {
        const t = out[r.value] ?? feeds[r.value];
        if (!t) throw new QuantizationError('QUANT_CALIB_VALUE', `run did not produce ${r.value}`, { where: `value ${r.value}` });
        const x = asFloat32(t, r.value);
        const dims = t.dims;
        if (dims[dims.length - 1] !== r.K) {
          throw new QuantizationError('QUANT_CALIB_SHAPE', `activation ${r.value} has shape [${dims.join(', ')}], last dimension should be ${r.K}`, {
            where: `value ${r.value}`,
          });
        }
        const hs = result.get(r.value)!;
        hs.rows += accumulate(hs.h, x, r.K);
      }
      runs++;
    }
    if (runs === 0) {
      throw new QuantizationError('QUANT_CALIB_EMPTY', `calibration data ${source.describe} has no samples`, {
        fix: 'give at least one sequence (more is better: GPTQ needs more tokens than the layer has inputs)',
      });
    }
  } finally {
    await session.release();
    if (tmp) await rm(tmp, { force: true });
  }
  for (const hs of result.values()) finish(hs.h, hs.K, hs.rows);
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// Token calibration for decoder models with the onnxruntime-genai inputs

/** Reads a tokens file: `{"tokens": [ids...]}` (one sequence) or `[[ids...], ...]`. */
export async function readTokenFile(path: string): Promise<number[][]> {
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new QuantizationError('QUANT_CALIB_FILE', 'calibration file is not readable JSON', { file: path, cause: e, fix: 'write {"tokens": [ids...]} or [[ids...], ...]' });
  }
  const seqs = Array.isArray(doc) ? doc : (doc as { tokens?: unknown })?.tokens !== undefined ? [(doc as { tokens: unknown }).tokens] : undefined;
  const ok = seqs?.every((s) => Array.isArray(s) && s.length > 0 && s.every((t) => Number.isInteger(t) && t >= 0));
  if (!seqs || !ok) {
    throw new QuantizationError('QUANT_CALIB_FILE', 'calibration file must hold non-empty token id sequences', {
      file: path,
      fix: 'write {"tokens": [ids...]} or [[ids...], ...]',
    });
  }
  return seqs as number[][];
}

const PAST = /^past_key_values\.\d+\.(key|value)$/;

function fixedDims(v: ValueInfo, symbolic: (name: string, i: number) => number): number[] {
  const t = v.type;
  if (t?.kind !== 'tensor' || !t.shape) throw new Error(`input ${v.name} has no shape`);
  return t.shape.map((d, i) => d.value ?? symbolic(d.param ?? '', i));
}

/**
 * Feeds for decoder graphs with the onnxruntime-genai inputs (input_ids, attention_mask, optional position_ids,
 * empty past_key_values.*), one sequence per run, batch 1.
 */
export function tokenCalibration(sequences: readonly number[][], describe: string): CalibrationSource {
  return {
    describe,
    *feeds(model, ort) {
      const inits = new Set(model.graph.initializers.map((t) => t.name));
      const inputs = model.graph.inputs.filter((v) => !inits.has(v.name));
      const unknown = inputs.filter((v) => !['input_ids', 'attention_mask', 'position_ids'].includes(v.name) && !PAST.test(v.name));
      if (unknown.length) {
        throw new QuantizationError('QUANT_CALIB_INPUTS', `token calibration cannot feed input(s) ${unknown.map((v) => v.name).join(', ')}`, {
          fix: 'token calibration drives decoder graphs with input_ids, attention_mask, position_ids and past_key_values.* inputs',
        });
      }
      for (const seq of sequences) {
        const L = seq.length;
        const feeds: Feeds = {};
        for (const v of inputs) {
          if (v.name === 'input_ids') feeds[v.name] = new ort.Tensor('int64', BigInt64Array.from(seq, (t) => BigInt(t)), [1, L]);
          else if (v.name === 'attention_mask') feeds[v.name] = new ort.Tensor('int64', new BigInt64Array(L).fill(1n), [1, L]);
          else if (v.name === 'position_ids') feeds[v.name] = new ort.Tensor('int64', BigInt64Array.from({ length: L }, (_, i) => BigInt(i)), [1, L]);
          else {
            // Empty cache: batch 1, past length 0; other dims fixed in the graph.
            const dims = fixedDims(v, (_, i) => (i === 0 ? 1 : i === 2 ? 0 : Number.NaN));
            const et = v.type?.kind === 'tensor' ? v.type.elemType : DataType.UNDEFINED;
            if (dims.some(Number.isNaN) || (et !== DataType.FLOAT && et !== DataType.FLOAT16)) {
              throw new QuantizationError('QUANT_CALIB_INPUTS', `cannot build an empty ${dataTypeName(et)} cache for input ${v.name}`, {
                fix: 'past_key_values inputs need fixed head counts and sizes: [batch, kv_heads, past, head_size]',
              });
            }
            feeds[v.name] = et === DataType.FLOAT ? new ort.Tensor('float32', new Float32Array(0), dims) : new ort.Tensor('float16', new Uint16Array(0), dims);
          }
        }
        yield feeds;
      }
    },
  };
}
