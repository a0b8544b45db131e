// Calibration for data-aware quantization (GPTQ, AWQ, mixed precision): run the model in onnxruntime-node with chosen
// MatMul inputs added as graph outputs and accumulate, per input, what the algorithms need from its activations (x a
// row of K values): the Hessian H = Σ x xᵀ / n in float64 (GPTQ), the mean |x| per channel (AWQ's activation scale),
// and a seeded uniform sample of rows (AWQ's scale search and the sensitivity measure).
import { GENAI_IO_DEFAULTS, layerNamePattern } from '../../genai/io-names.js';
import { loadOrt, openOrtSession } from '../../ort/session.js';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as OrtTypes from 'onnxruntime-node';
import { encodeModel } from '../../onnx/codec.js';
import { DataType, dataTypeName } from '../../onnx/dtype.js';
import { tensorType, type Model, type ValueInfo } from '../../onnx/ir.js';
import { float16BitsToFloat32 } from '../../onnx/tensor.js';
import { QuantizationError } from '../../util/errors.js';
import { Rng } from '../../util/random.js';

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

/** What to gather from one MatMul input (requests for the same value are merged). */
export interface ActivationRequest extends HessianRequest {
  hessian?: boolean;
  /** Mean |x| per channel over every row. */
  absMean?: boolean;
  /** Keep a uniform random sample of at most this many rows (reservoir sampling, seeded by the value's name). */
  sampleRows?: number;
}

export interface ActivationStats {
  K: number;
  /** Rows seen (tokens). */
  rows: number;
  /** K×K, Σ x xᵀ / rows. */
  hessian?: Float64Array;
  /** [K] mean |x| per channel. */
  absMean?: Float64Array;
  /** [sampleCount, K] rows drawn uniformly from all rows seen, in the order they were kept. */
  sample?: Float32Array;
  sampleCount?: number;
}


/** Adds x·xᵀ for every row of a [rows, K] activation block to h (upper triangle, mirrored at the end). */
function accumulate(h: Float64Array, x: Float32Array, K: number): void {
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
  for (const t of model.allTensors()) if (t.source.kind === 'external') return t.source.dir;
  return undefined;
}

/** One request's running state. */
class Accumulator {
  readonly stats: ActivationStats;
  private readonly cap: number;
  private readonly rng: Rng;
  constructor(readonly r: ActivationRequest) {
    this.cap = Math.max(0, Math.floor(r.sampleRows ?? 0));
    this.stats = {
      K: r.K,
      rows: 0,
      hessian: r.hessian ? new Float64Array(r.K * r.K) : undefined,
      absMean: r.absMean ? new Float64Array(r.K) : undefined,
      sample: this.cap > 0 ? new Float32Array(this.cap * r.K) : undefined,
      sampleCount: this.cap > 0 ? 0 : undefined,
    };
    this.rng = Rng.forName(0x5eed, r.value);
  }

  add(x: Float32Array): void {
    const { K } = this.r;
    const s = this.stats;
    const rows = Math.floor(x.length / K);
    if (s.hessian) accumulate(s.hessian, x, K);
    if (s.absMean) {
      const m = s.absMean;
      for (let r = 0; r < rows; r++) for (let k = 0, o = r * K; k < K; k++) m[k] += Math.abs(x[o + k]);
    }
    if (s.sample) {
      // Algorithm R: row i (counted over the whole run) replaces a random kept row with probability cap / (i + 1).
      for (let r = 0; r < rows; r++) {
        const i = s.rows + r;
        const slot = i < this.cap ? i : Math.floor(this.rng.uniform() * (i + 1));
        if (slot < this.cap) s.sample.set(x.subarray(r * K, (r + 1) * K), slot * K);
      }
      s.sampleCount = Math.min(this.cap, s.rows + rows);
    }
    s.rows += rows;
  }

  done(): ActivationStats {
    const s = this.stats;
    if (s.hessian) finish(s.hessian, s.K, s.rows);
    if (s.absMean && s.rows > 0) for (let k = 0; k < s.K; k++) s.absMean[k] /= s.rows;
    if (s.sample && s.sampleCount! < this.cap) s.sample = s.sample.slice(0, s.sampleCount! * s.K);
    return s;
  }
}

/**
 * A request for the activations a search scores output error on: the exact Gram matrix over every row when K is
 * at most `sampleRows` (it is then no bigger than the sample), else a sample of `sampleRows` rows.
 */
export function scoringRequest(value: string, K: number, floatType: number, sampleRows: number, absMean = false): ActivationRequest {
  return { value, K, floatType, absMean, ...(K <= sampleRows ? { hessian: true } : { sampleRows }) };
}

/** Bytes a request holds while captured (for cutting calibration into groups that fit a budget). */
export function requestBytes(r: ActivationRequest): number {
  return (r.hessian ? r.K * r.K * 8 : 0) + (r.sampleRows ?? 0) * r.K * 4 + (r.absMean ? r.K * 8 : 0);
}

/** The form the output-error searches take: the Gram matrix when captured, else the sampled rows. */
export function scoringActivations(s: ActivationStats): { kind: 'gram'; g: Float64Array } | { kind: 'rows'; x: Float32Array; rows: number } {
  return s.hessian ? { kind: 'gram', g: s.hessian } : { kind: 'rows', x: s.sample!, rows: s.sampleCount! };
}

/** Merges requests for the same value (a value read by several MatMuls is captured once). */
function mergeRequests(requests: readonly ActivationRequest[]): ActivationRequest[] {
  const byValue = new Map<string, ActivationRequest>();
  for (const r of requests) {
    const m = byValue.get(r.value);
    if (!m) byValue.set(r.value, { ...r });
    else {
      m.hessian ||= r.hessian;
      m.absMean ||= r.absMean;
      m.sampleRows = Math.max(m.sampleRows ?? 0, r.sampleRows ?? 0) || undefined;
    }
  }
  return [...byValue.values()];
}

/**
 * An onnxruntime session over the model as it is now, with `extra` values as additional outputs; `cleanup` removes
 * temp files. The model may be changed again once this returns (the session holds its own copy).
 */
export async function probeSession(
  model: Model,
  extra: ValueInfo[],
): Promise<{ session: OrtTypes.InferenceSession; cleanup: () => Promise<void> }> {
  const g = model.graph;
  const saved = g.outputs;
  g.outputs = [...saved, ...extra];
  try {
    if ([...model.allTensors()].some((t) => t.source.kind === 'lazy')) {
      // Tensors computed on demand (e.g. AWQ-scaled weights) have no bytes to encode yet: write the model out.
      const { saveModel } = await import('../../onnx/model-file.js');
      const dir = await mkdtemp(join(tmpdir(), 'phi-forge-calibration-'));
      try {
        const written = await saveModel(model, join(dir, 'probe.onnx'));
        const session = await openOrtSession(written.path);
        return { session, cleanup: () => rm(dir, { recursive: true, force: true }) };
      } catch (e) {
        await rm(dir, { recursive: true, force: true });
        throw e;
      }
    }
    const bytes = encodeModel(model);
    const base = externalBaseDir(model);
    if (!base) return { session: await openOrtSession(bytes), cleanup: async () => {} };
    // External data resolves against the model file's folder: write the probe model next to the data.
    const tmp = join(base, `.phi-forge-calibration-${process.pid}-${randomBytes(4).toString('hex')}.onnx`);
    await writeFile(tmp, bytes);
    try {
      return { session: await openOrtSession(tmp), cleanup: () => rm(tmp, { force: true }) };
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  } finally {
    g.outputs = saved;
  }
}

/**
 * Runs the model on every calibration feed with the requested values as extra outputs and returns what each
 * request asked for. The model is left as it was. Values that are graph inputs are read from the feeds.
 */
export async function captureActivations(
  model: Model,
  requests: readonly ActivationRequest[],
  source: CalibrationSource,
): Promise<Map<string, ActivationStats>> {
  const ort = await loadOrt();
  const g = model.graph;
  const merged = mergeRequests(requests);
  const inputNames = new Set(g.inputs.map((v) => v.name));
  const outputNames = new Set(g.outputs.map((v) => v.name));
  const added: ValueInfo[] = merged
    .filter((r) => !inputNames.has(r.value) && !outputNames.has(r.value))
    .map((r) => ({ name: r.value, type: tensorType(r.floatType) }));
  const acc = merged.map((r) => new Accumulator(r));

  const { session, cleanup } = await probeSession(model, added);
  try {
    let runs = 0;
    for await (const feeds of source.feeds(model, ort)) {
      const fetches = added.map((v) => v.name);
      const out = fetches.length ? await session.run(feeds, fetches) : {};
      for (const a of acc) {
        const r = a.r;
        const t = out[r.value] ?? feeds[r.value];
        if (!t) throw new QuantizationError('QUANT_CALIB_VALUE', `run did not produce ${r.value}`, { where: `value ${r.value}` });
        const dims = t.dims;
        if (dims[dims.length - 1] !== r.K) {
          throw new QuantizationError('QUANT_CALIB_SHAPE', `activation ${r.value} has shape [${dims.join(', ')}], last dimension should be ${r.K}`, {
            where: `value ${r.value}`,
          });
        }
        a.add(asFloat32(t, r.value));
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
    await cleanup();
  }
  return new Map(acc.map((a) => [a.r.value, a.done()]));
}

/** The Hessians of the requested values (see captureActivations). */
export async function captureHessians(model: Model, requests: readonly HessianRequest[], source: CalibrationSource): Promise<Map<string, Hessian>> {
  const stats = await captureActivations(
    model,
    requests.map((r) => ({ ...r, hessian: true })),
    source,
  );
  return new Map(requests.map((r) => {
    const s = stats.get(r.value)!;
    return [r.value, { h: s.hessian!, K: s.K, rows: s.rows }];
  }));
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

// Calibration feeds graphs by onnxruntime-genai's default input names (a tool's own model may name no genai_config).
const IO = GENAI_IO_DEFAULTS.inputs;
const PAST = [layerNamePattern(IO.past_key_names), layerNamePattern(IO.past_value_names)];
const isPast = (name: string) => PAST.some((p) => p.test(name));

function fixedDims(v: ValueInfo, symbolic: (name: string, i: number) => number): number[] {
  const t = v.type;
  if (t?.kind !== 'tensor' || !t.shape) {
    throw new QuantizationError('QUANT_CALIB_INPUTS', `input ${v.name} has no shape`, { fix: 'token calibration needs decoder graphs whose inputs declare their shapes' });
  }
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
      const unknown = inputs.filter((v) => !([IO.input_ids, IO.attention_mask, IO.position_ids] as string[]).includes(v.name) && !isPast(v.name));
      if (unknown.length) {
        throw new QuantizationError('QUANT_CALIB_INPUTS', `token calibration cannot feed input(s) ${unknown.map((v) => v.name).join(', ')}`, {
          fix: 'token calibration drives decoder graphs with input_ids, attention_mask, position_ids and past_key_values.* inputs',
        });
      }
      for (const seq of sequences) {
        const L = seq.length;
        const feeds: Feeds = {};
        for (const v of inputs) {
          if (v.name === IO.input_ids) feeds[v.name] = new ort.Tensor('int64', BigInt64Array.from(seq, (t) => BigInt(t)), [1, L]);
          else if (v.name === IO.attention_mask) feeds[v.name] = new ort.Tensor('int64', new BigInt64Array(L).fill(1n), [1, L]);
          else if (v.name === IO.position_ids) feeds[v.name] = new ort.Tensor('int64', BigInt64Array.from({ length: L }, (_, i) => BigInt(i)), [1, L]);
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
