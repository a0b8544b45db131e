// An onnxruntime-node session over a built decoder (genai graph contract) that runs one sequence with a KV cache.
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-node';
import { ioProblems, type IoValue } from '../genai/io-check.js';
import { decoderNames, GENAI_IO_DEFAULTS, layerNamePattern, layerName, type DecoderNames } from '../genai/io-names.js';
import { genaiConfigPath, readGenaiConfig, type GenaiDecoder } from '../genai/read.js';
import { float16BitsToFloat32 } from '../onnx/tensor.js';
import { EvalError, OnnxError } from '../util/errors.js';
import { KvCache } from './kv-cache.js';
import { openOrtSession } from '../ort/session.js';
import { checkThreads } from '../ort/threads.js';

export interface DecoderSessionOptions {
  /** onnxruntime graph optimization level (default 'all'). */
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Threads inside one operator, 1..maxIntraOpThreads() (default: onnxruntime's choice, the number of cores). */
  intraOpNumThreads?: number;
  /** onnxruntime log severity: 0 verbose … 4 fatal (default 3, errors only). */
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
}

export interface ForwardOptions {
  /** 'all' returns a row per input position, 'last' only the last one (what generation needs). Default 'all'. */
  logits?: 'all' | 'last';
}

export interface ForwardResult {
  /** Row-major [rows, vocabSize] float32 (fp16 logits converted). The caller owns it. */
  logits: Float32Array;
  rows: number;
  vocabSize: number;
  /** The cache passed in (or a new one), now holding the new positions too. */
  cache: KvCache;
}

type FloatType = 'float32' | 'float16';
type IntType = 'int64' | 'int32';

/** What the session knows about its graph, from genai_config.json and the session's own metadata. */
export interface DecoderLayout extends Omit<GenaiDecoder, 'modelFile'> {
  modelPath: string;
  kvType: FloatType;
  logitsType: FloatType;
  inputIdsType: IntType;
  attentionMaskType: IntType;
}

// Batch size is fixed at 1 here: every feed below is built as [1, ...]. Batching would add a leading loop over
// sequences in the id/mask buffers and a [batch] cache; nothing else assumes one sequence.
const BATCH = 1;

export class DecoderSession {
  readonly layout: DecoderLayout;
  private readonly session: InferenceSession;
  private readonly emptyPast: OrtTensor;
  /** 1, 1, 1, ... (attention mask) and 0, 1, 2, ... (position ids), grown on demand, viewed per run. */
  private ones: BigInt64Array | Int32Array = new BigInt64Array(0);
  private positions = new BigInt64Array(0);
  private released = false;

  private constructor(session: InferenceSession, layout: DecoderLayout) {
    this.session = session;
    this.layout = layout;
    const emptyData = layout.kvType === 'float16' ? new Uint16Array(0) : new Float32Array(0);
    this.emptyPast = new OrtTensor(layout.kvType, emptyData, [BATCH, layout.numKvHeads, 0, layout.headSize]);
  }

  /**
   * Opens a built model folder (genai_config.json + the model file it names) or a model .onnx file directly
   * (then genai_config.json next to it is used when present, else the layout is read from the graph's I/O names).
   */
  static async open(modelPath: string, opts: DecoderSessionOptions = {}): Promise<DecoderSession> {
    const path = resolve(modelPath);
    checkThreads(opts.intraOpNumThreads); // before touching the disk
    let isDir: boolean;
    try {
      isDir = (await stat(path)).isDirectory();
    } catch (e) {
      throw new OnnxError('MODEL_NOT_FOUND', 'no such model folder or file', {
        file: path,
        fix: 'pass a folder written by `pnpm pipeline build`/`convert` (holding genai_config.json and model.onnx)',
        cause: e,
      });
    }
    const configDir = isDir ? path : dirname(path);
    const config = isDir || existsSync(genaiConfigPath(configDir)) ? (await readGenaiConfig(configDir)).decoder : undefined;
    const onnxPath = isDir ? join(path, config!.modelFile) : path;
    if (!existsSync(onnxPath)) {
      throw new OnnxError('MODEL_FILE_MISSING', `genai_config.json names ${config?.modelFile}, which is not there`, {
        file: onnxPath,
        fix: 'rebuild the model folder, or fix model.decoder.filename',
      });
    }
    const session = await openOrtSession(onnxPath, {
      intraOpNumThreads: opts.intraOpNumThreads,
      graphOptimizationLevel: opts.graphOptimizationLevel,
      logSeverityLevel: opts.logSeverityLevel,
    });
    try {
      return new DecoderSession(session, resolveLayout(session, onnxPath, config));
    } catch (e) {
      await session.release();
      throw e;
    }
  }

  get numLayers(): number {
    return this.layout.numLayers;
  }

  /** A new, empty cache for this session. */
  newCache(): KvCache {
    return new KvCache(this, this.layout.numLayers);
  }

  /**
   * Runs `ids` (one sequence) after the positions already in `cache`, appends their keys/values to it, and
   * returns their logits. With no cache a new one is started (past length 0).
   */
  async forward(
    ids: readonly number[] | BigInt64Array | Int32Array,
    cache: KvCache = this.newCache(),
    opts: ForwardOptions = {},
  ): Promise<ForwardResult> {
    if (this.released) throw new EvalError('SESSION_RELEASED', 'the decoder session was released');
    if (cache.owner !== this) {
      throw new EvalError('KV_CACHE_FOREIGN', 'this KV cache was made by another decoder session', {
        fix: 'use session.newCache() (or no cache) for each session',
      });
    }
    const L = this.layout;
    const seq = ids.length;
    if (seq === 0) throw new EvalError('FORWARD_EMPTY', 'forward() needs at least one token');
    const past = cache.length;
    const total = past + seq;
    if (L.contextLength !== undefined && total > L.contextLength) {
      throw new EvalError('CONTEXT_OVERFLOW', `${total} positions exceed the model's context length ${L.contextLength}`, {
        where: L.modelPath,
        fix: 'shorten the prompt or --max-new-tokens, or score in windows',
      });
    }

    const feeds: Record<string, OrtTensor> = {};
    feeds[L.names.inputIds] = new OrtTensor(L.inputIdsType, this.idsTensorData(ids), [BATCH, seq]);
    feeds[L.names.attentionMask] = new OrtTensor(L.attentionMaskType, this.onesView(total), [BATCH, total]);
    if (L.names.positionIds) feeds[L.names.positionIds] = new OrtTensor('int64', this.positionsView(past, total), [BATCH, seq]);
    for (let i = 0; i < L.numLayers; i++) {
      feeds[L.names.pastKeys[i]] = cache.keys[i] ?? this.emptyPast;
      feeds[L.names.pastValues[i]] = cache.values[i] ?? this.emptyPast;
    }

    let out: InferenceSession.ReturnType;
    try {
      out = await this.session.run(feeds);
    } catch (e) {
      throw new OnnxError('ORT_RUN_FAILED', `onnxruntime failed at past length ${past}, ${seq} new tokens: ${(e as Error).message}`, {
        file: L.modelPath,
        cause: e,
      });
    }

    const presentK = L.names.presentKeys.map((n) => out[n] as OrtTensor);
    const presentV = L.names.presentValues.map((n) => out[n] as OrtTensor);
    const pDims = presentK[0]?.dims;
    if (pDims && pDims[2] !== total) {
      // A graph sharing past and present buffers (max-length cache) would need a different loop; say so plainly.
      throw new OnnxError('KV_PRESENT_SHAPE', `present length is ${pDims[2]}, expected ${total} (past ${past} + ${seq})`, {
        file: L.modelPath,
        fix: 'build the model without a shared past/present buffer',
      });
    }
    cache.update(presentK, presentV, total);

    const logitsT = out[L.names.logits] as OrtTensor;
    const dims = logitsT.dims;
    const vocab = dims[dims.length - 1];
    const allRows = dims.length === 3 ? dims[1] : 1;
    const lastOnly = opts.logits === 'last';
    const from = lastOnly ? (allRows - 1) * vocab : 0;
    const rows = lastOnly ? 1 : allRows;
    let logits: Float32Array;
    if (logitsT.type === 'float16') {
      logits = float16BitsToFloat32((logitsT.data as Uint16Array).subarray(from, from + rows * vocab));
    } else {
      logits = (logitsT.data as Float32Array).subarray(from, from + rows * vocab);
    }
    return { logits, rows, vocabSize: vocab, cache };
  }

  /** Frees the native session; the object cannot run afterwards. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.session.release();
  }

  private idsTensorData(ids: readonly number[] | BigInt64Array | Int32Array): BigInt64Array | Int32Array {
    const vocab = this.layout.vocabSize;
    const check = (v: number, i: number) => {
      if (!Number.isInteger(v) || v < 0 || (vocab !== undefined && v >= vocab)) {
        throw new EvalError('TOKEN_OUT_OF_RANGE', `token ${i} is ${v}, outside the vocabulary 0..${(vocab ?? Infinity) - 1}`, {
          where: this.layout.modelPath,
          fix: 'use token ids of this model\'s tokenizer',
        });
      }
    };
    if (this.layout.inputIdsType === 'int64') {
      if (ids instanceof BigInt64Array) {
        for (let i = 0; i < ids.length; i++) check(Number(ids[i]), i);
        return ids;
      }
      const out = new BigInt64Array(ids.length);
      for (let i = 0; i < ids.length; i++) {
        const v = Number(ids[i]);
        check(v, i);
        out[i] = BigInt(v);
      }
      return out;
    }
    const out = new Int32Array(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const v = Number(ids[i]);
      check(v, i);
      out[i] = v;
    }
    return out;
  }

  private onesView(n: number): BigInt64Array | Int32Array {
    if (this.ones.length < n) {
      const cap = Math.max(n, this.ones.length * 2, 64);
      this.ones = this.layout.attentionMaskType === 'int64' ? new BigInt64Array(cap).fill(1n) : new Int32Array(cap).fill(1);
    }
    return this.ones.subarray(0, n);
  }

  private positionsView(from: number, to: number): BigInt64Array {
    if (this.positions.length < to) {
      const cap = Math.max(to, this.positions.length * 2, 64);
      this.positions = new BigInt64Array(cap);
      for (let i = 0; i < cap; i++) this.positions[i] = BigInt(i);
    }
    return this.positions.subarray(from, to);
  }
}

/** Checks the graph against the config (or, without one, reads the layout from the graph's I/O names). */
function resolveLayout(session: InferenceSession, modelPath: string, config: GenaiDecoder | undefined): DecoderLayout {
  const meta = new Map<string, InferenceSession.ValueMetadata>();
  for (const m of session.inputMetadata) meta.set(m.name, m);
  const base = config ?? inferFromGraph(session, modelPath);
  const names: DecoderNames = { ...base.names };
  // A DirectML-style graph takes position_ids even when the config forgot to list it.
  if (!names.positionIds && session.inputNames.includes(GENAI_IO_DEFAULTS.inputs.position_ids)) names.positionIds = GENAI_IO_DEFAULTS.inputs.position_ids;

  const value = (m: InferenceSession.ValueMetadata): IoValue => ({ name: m.name, dims: m.isTensor ? m.shape : undefined });
  const problems = ioProblems({ inputs: session.inputMetadata.map(value), outputs: session.outputMetadata.map(value) }, { ...base, names });
  if (problems.length) {
    throw new OnnxError('DECODER_IO_MISMATCH', `the graph does not match its decoder config (${problems.join('; ')})`, {
      file: modelPath,
      fix: `the graph has inputs [${session.inputNames.join(', ')}]: rebuild the package so genai_config.json matches it`,
    });
  }

  const floatType = (name: string): FloatType => {
    const t = tensorType(meta.get(name));
    if (t === 'float32' || t === 'float16') return t;
    throw new OnnxError('DECODER_DTYPE', `input ${name} is ${t ?? 'not a tensor'}; the runtime handles float32 and float16`, {
      file: modelPath,
    });
  };
  const intType = (name: string): IntType => {
    const t = tensorType(meta.get(name));
    if (t === 'int64' || t === 'int32') return t;
    throw new OnnxError('DECODER_DTYPE', `input ${name} is ${t ?? 'not a tensor'}, expected int64 or int32`, { file: modelPath });
  };
  const kvType = base.numLayers > 0 ? floatType(names.pastKeys[0]) : 'float32';
  const outMeta = session.outputMetadata.find((m) => m.name === names.logits);
  const lt = tensorType(outMeta);
  const logitsType: FloatType = lt === 'float16' ? 'float16' : 'float32';
  if (lt !== undefined && lt !== 'float32' && lt !== 'float16') {
    throw new OnnxError('DECODER_DTYPE', `output ${names.logits} is ${lt}; expected float32 or float16`, { file: modelPath });
  }
  if (names.positionIds && tensorType(meta.get(names.positionIds)) !== 'int64') {
    throw new OnnxError('DECODER_DTYPE', `input ${names.positionIds} must be int64`, { file: modelPath });
  }
  return {
    ...base,
    names,
    modelPath,
    kvType,
    logitsType,
    inputIdsType: intType(names.inputIds),
    attentionMaskType: intType(names.attentionMask),
  };
}

function tensorType(m: InferenceSession.ValueMetadata | undefined): string | undefined {
  return m && m.isTensor ? m.type : undefined;
}

/** Without genai_config.json: the genai default names, layers counted from the past keys, sizes from shapes. */
function inferFromGraph(session: InferenceSession, modelPath: string): GenaiDecoder {
  const pastKey = GENAI_IO_DEFAULTS.inputs.past_key_names;
  const layers = session.inputNames.filter((n) => layerNamePattern(pastKey).test(n)).length;
  const first = session.inputMetadata.find((m) => m.name === layerName(pastKey, 0));
  const shape = first && first.isTensor ? first.shape : [];
  const numKvHeads = shape[1];
  const headSize = shape[3];
  if (layers === 0 || typeof numKvHeads !== 'number' || typeof headSize !== 'number') {
    throw new OnnxError('DECODER_LAYOUT_UNKNOWN', `no genai_config.json next to the model, and its inputs are not ${pastKey.replace('%d', 'N')} [b, kv_heads, s, head]`, {
      file: modelPath,
      fix: 'open the model folder holding genai_config.json instead',
    });
  }
  const names = decoderNames({}, layers);
  const logitsMeta = session.outputMetadata.find((m) => m.name === names.logits);
  const vocab = logitsMeta && logitsMeta.isTensor ? logitsMeta.shape[2] : undefined;
  return {
    modelFile: modelPath,
    numLayers: layers,
    numKvHeads,
    headSize,
    vocabSize: typeof vocab === 'number' ? vocab : undefined,
    eosTokenIds: [],
    names,
  };
}
