// Model files: loadModel (size-checked read + decode) and saveModel (streams large tensors into one aligned .data file).
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, resolve } from 'node:path';
import { AtomicFileWriter, writeFileAtomic } from '../util/atomic-fs.js';
import { OnnxError } from '../util/errors.js';
import { checkUnknownFields, decodeModel, prepareModelEncode } from './codec.js';
import { DataType } from './dtype.js';
import type { Attribute, Graph, Model, Node } from './ir.js';
import { ScratchPool, externalDataRealPath, openExternalRange, type ExternalSource, type Tensor, type TensorSource } from './tensor.js';

/** Protobuf messages (and onnxruntime) stop at 2 GiB − 1 bytes; bigger models need external data. */
export const MAX_PROTOBUF_BYTES = 2 ** 31 - 1;

/**
 * Alignment of tensors in the data file: 64 KiB (Windows' mmap allocation granularity, also a multiple of the 4 KiB
 * page) for tensors of 1 MiB or more, as onnx/ir-py does; 16 bytes for smaller ones so SIMD loads stay aligned
 * without wasting much space on small tensors (ir-py leaves those unaligned).
 */
export const LARGE_TENSOR_BYTES = 1 << 20;
export const LARGE_TENSOR_ALIGNMENT = 1 << 16;
export const SMALL_TENSOR_ALIGNMENT = 16;

/** Reads and decodes a model; external tensors are resolved against the model's folder but not read. */
export async function loadModel(path: string): Promise<Model> {
  const file = resolve(path);
  let size: number;
  try {
    const st = await stat(file);
    if (!st.isFile()) throw new OnnxError('ONNX_NOT_A_FILE', 'model path is not a file', { file });
    size = st.size;
  } catch (e) {
    if (e instanceof OnnxError) throw e;
    throw new OnnxError('ONNX_FILE_MISSING', 'model file cannot be read', { file, cause: e });
  }
  if (size > MAX_PROTOBUF_BYTES) {
    throw new OnnxError('ONNX_PROTOBUF_TOO_LARGE', `model protobuf is ${size} bytes; protobuf cannot hold 2 GiB or more`, {
      file,
      fix: 'store the weights as external data (a .onnx.data file next to the model), as saveModel does by default',
    });
  }
  // A protobuf has no magic number: an empty file decodes as a "model" of nothing, which must not go further.
  if (size === 0) throw notAModel(file, 'is empty (0 bytes)');
  const bytes = await readFile(file);
  const model = decodeModel(bytes, { path: file, baseDir: dirname(file) });
  checkIsModel(model, file);
  await checkExternalFiles(model);
  return model;
}

function notAModel(file: string, what: string): OnnxError {
  return new OnnxError('ONNX_NOT_A_MODEL', what, {
    file,
    fix: 'pass an .onnx model file (re-export or re-download it if it is damaged)',
  });
}

/**
 * Refuses bytes that decoded but cannot be a model: other files can decode as a ModelProto of unknown fields only.
 * Only what ONNX and onnxruntime require is checked (a graph, an IR version, and from IR 3 on the opset imports), so
 * sparse but real models (e.g. the backend-test corpus) still load.
 */
function checkIsModel(model: Model, file: string): void {
  const g = model.graph;
  const missing: string[] = [];
  if (!g.nodes.length && !g.inputs.length && !g.outputs.length && !g.initializers.length && !g.sparseInitializers.length) missing.push('no graph');
  if (model.irVersion < 1) missing.push('no IR version');
  else if (model.irVersion >= 3 && !model.opsetImports.length) missing.push('no opset imports');
  if (missing.length) throw notAModel(file, `is not an ONNX model (${missing.join(', ')})`);
}

/**
 * Refuses, before anything is read or written, external data whose real path leaves the model's folder (every read
 * checks again: files can change after loading). A missing data file is left for the read to report, so a model can
 * be inspected without its data.
 */
async function checkExternalFiles(model: Model): Promise<void> {
  const tensors = [...model.allTensors()];
  for (const f of model.functions) {
    for (const n of f.nodes) {
      for (const a of n.attributes) {
        if (a.type === 'tensor') tensors.push(a.value);
        else if (a.type === 'tensors') tensors.push(...a.value);
      }
    }
  }
  const seen = new Set<string>();
  for (const t of tensors) {
    const s = t.source;
    if (s.kind !== 'external' || seen.has(s.path)) continue;
    seen.add(s.path);
    await externalDataRealPath(s, t.name).catch((e: unknown) => {
      if (!(e instanceof OnnxError && e.code === 'ONNX_EXTERNAL_MISSING')) throw e;
    });
  }
}

export interface SaveProgress {
  /** Name of the tensor just written. */
  tensor: string;
  /** External tensors written so far. */
  tensors: number;
  /** Tensor bytes written so far (padding not counted). */
  bytes: number;
  totalTensors: number;
  totalBytes: number;
}

export interface SaveOptions {
  /** Data file name relative to the model's folder; default `<model file name>.data`; false keeps every tensor inline. */
  externalData?: string | false;
  /** Tensors of at least this many bytes go to the data file (default 1024). */
  sizeThreshold?: number;
  onProgress?: (p: SaveProgress) => void;
  /** Write even if the model holds protobuf fields the codec did not know (they are lost). */
  dropUnknownFields?: boolean;
  /** Checked before each tensor: an abort removes the partial data file and rejects with the signal's reason. */
  signal?: AbortSignal;
}

export interface SaveResult {
  /** Absolute path of the .onnx file written. */
  path: string;
  /** Absolute path of the data file, when at least one tensor went there. */
  dataPath?: string;
  protobufBytes: number;
  /** Size of the data file (tensor bytes plus alignment padding). */
  dataBytes: number;
  externalTensors: number;
  inlineTensors: number;
}

interface PlannedTensor {
  tensor: Tensor;
  offset: number;
  length: number;
}

/**
 * Writes `model` to `path`, streaming every tensor of at least `sizeThreshold` bytes (initializers and tensor
 * attributes other than Constant nodes' values, in the main graph and all subgraphs) one at a time into one data
 * file, smallest first, at aligned offsets. Peak memory is about one tensor (two when whole lazy ones of ≤ 64 MiB overlap), or a chunked lazy tensor's working buffers and two of its pieces. Both files are written under temporary names and renamed into place,
 * the data file first and the .onnx last, so an interrupted save never leaves a complete-looking model.
 * Saving over the model's own files works: tensors are read from the old files before they are replaced. The model
 * passed in is not changed — but after an in-place save its external tensors point at the rewritten data file, so
 * reload it (loadModel) to keep using it. Same model and options → byte-identical files.
 */
export async function saveModel(model: Model, path: string, opts: SaveOptions = {}): Promise<SaveResult> {
  const file = resolve(path);
  const dir = dirname(file);
  const threshold = opts.sizeThreshold ?? 1024;
  const location = opts.externalData === false ? undefined : (opts.externalData ?? `${basename(file)}.data`);
  let dataPath: string | undefined;
  if (location !== undefined) {
    if (!location || isAbsolute(location) || location.split(/[\\/]/).includes('..')) {
      throw new OnnxError('ONNX_EXTERNAL_LOCATION', `external data name "${location}" must be a path inside the model's folder`, {
        file,
        fix: 'pass a relative file name such as "model.onnx.data"',
      });
    }
    dataPath = resolve(dir, location);
    if (dataPath === file) {
      throw new OnnxError('ONNX_EXTERNAL_LOCATION', 'external data file and model file are the same path', { file });
    }
  }

  checkUnknownFields(model, opts); // before writing a byte

  // 1. Plan: which tensors go to the data file, at which offsets.
  const { movable, pinned } = collectTensors(model);
  const external: Tensor[] = [];
  const inline: Tensor[] = [...pinned];
  for (const t of movable) {
    if (location !== undefined && t.dataType !== DataType.STRING && t.source.kind !== 'strings' && t.byteLength >= threshold) {
      external.push(t);
    } else inline.push(t);
  }
  const plan = layout(external);
  const inlineBytes = inline.reduce((n, t) => n + t.byteLength, 0);
  if (inlineBytes > MAX_PROTOBUF_BYTES) {
    throw tooLarge(file, `${inlineBytes} bytes of tensors would stay inline`);
  }

  // 2. Tensors that stay inline but live elsewhere (external, lazy) are read now, before any file is replaced.
  const sources = new Map<Tensor, TensorSource>();
  for (const t of inline) {
    if (t.source.kind === 'external' || t.source.kind === 'lazy') sources.set(t, { kind: 'inline', bytes: await t.bytes() });
  }

  // 3. Stream the large tensors into the data file (not yet visible under its name).
  const totalBytes = plan.reduce((n, p) => n + p.length, 0);
  let writer: AtomicFileWriter | undefined;
  let dataBytes = 0;
  try {
    if (plan.length && dataPath) {
      writer = await AtomicFileWriter.create(dataPath);
      let written = 0;
      let chunk: Uint8Array | undefined;
      let next: { tensor: Tensor; bytes: Promise<Uint8Array> } | undefined;
      // Chunked producers borrow their working buffers here, so a tensor reuses the pages of the one before it.
      const scratch = new ScratchPool();
      for (let i = 0; i < plan.length; i++) {
        opts.signal?.throwIfAborted();
        const p = plan[i];
        if (p.offset > writer.offset) await writer.write(new Uint8Array(p.offset - writer.offset));
        const src = p.tensor.source;
        if (src.kind === 'external') {
          chunk ??= new Uint8Array(COPY_CHUNK_BYTES);
          await copyRange(src, p.tensor.name, writer, chunk);
        } else if (src.kind === 'lazy' && src.chunks) {
          await writeChunks(p, src.chunks(scratch), writer, scratch);
        } else {
          const bytes = await (next?.tensor === p.tensor ? next.bytes : p.tensor.bytes());
          next = undefined;
          if (bytes.byteLength !== p.length) {
            throw new OnnxError('ONNX_TENSOR_SIZE', `tensor produced ${bytes.byteLength} bytes, expected ${p.length}`, {
              where: `tensor ${p.tensor.name}`,
            });
          }
          const write = writer.write(bytes);
          write.catch(() => undefined); // awaited below; this only keeps a failure from being "unhandled" meanwhile
          // The next lazy tensor is made while this one is written (its producer runs now, on this thread).
          const q = plan[i + 1];
          if (q && q.tensor.source.kind === 'lazy' && !q.tensor.source.chunks && q.length <= PREFETCH_BYTES) {
            next = { tensor: q.tensor, bytes: q.tensor.bytes() };
            next.bytes.catch(() => undefined); // awaited in the next round, or dropped with the save's own error
          }
          await write;
        }
        written += p.length;
        opts.onProgress?.({ tensor: p.tensor.name, tensors: i + 1, bytes: written, totalTensors: plan.length, totalBytes });
      }
      dataBytes = writer.offset;
      for (const p of plan) {
        sources.set(p.tensor, { kind: 'external', path: dataPath, location: location!, dir, modelFile: file, offset: p.offset, length: p.length });
      }
    }

    // 4. Encode the protobuf with the new sources, check its size, then make both files visible.
    const pending = prepareModelEncode(model, { dropUnknownFields: opts.dropUnknownFields, sourceOf: (t) => sources.get(t) ?? t.source });
    if (pending.byteLength > MAX_PROTOBUF_BYTES) throw tooLarge(file, `the protobuf would be ${pending.byteLength} bytes`);
    const bytes = pending.finish();
    if (writer) await writer.commit();
    writer = undefined;
    await writeFileAtomic(file, bytes);
    return {
      path: file,
      dataPath: plan.length ? dataPath : undefined,
      protobufBytes: bytes.byteLength,
      dataBytes,
      externalTensors: plan.length,
      inlineTensors: inline.length,
    };
  } catch (e) {
    await writer?.abort();
    throw e;
  }
}

/**
 * Streams a chunked lazy tensor, making the next piece while the last one is written: each piece is copied into a
 * staging buffer from `scratch` (the producer may reuse its own once the next piece is asked for; a copy into reused
 * memory costs ~0.13 s/GB here, far less than the write it lets overlap) and written while the producer goes on.
 * One write is in flight at a time, so the file is still written in order.
 */
async function writeChunks(p: PlannedTensor, chunks: AsyncIterable<Uint8Array>, writer: AtomicFileWriter, scratch: ScratchPool): Promise<void> {
  let n = 0;
  let inFlight: { write: Promise<void>; staged: Uint8Array } | undefined;
  const settle = async (): Promise<void> => {
    if (!inFlight) return;
    const { write, staged } = inFlight;
    inFlight = undefined;
    await write;
    scratch.give(staged);
  };
  try {
    for await (const piece of chunks) {
      n += piece.byteLength;
      if (n > p.length) break;
      const staged = scratch.take(piece.byteLength);
      staged.set(piece);
      await settle();
      const write = writer.write(staged);
      write.catch(() => undefined); // awaited by settle(); this only keeps a failure from being "unhandled" meanwhile
      inFlight = { write, staged };
    }
    await settle();
  } catch (e) {
    // The file handle must not be closed (by abort) under a write still running.
    await inFlight?.write.catch(() => undefined);
    throw e;
  }
  if (n !== p.length) {
    throw new OnnxError('ONNX_TENSOR_SIZE', `tensor produced ${n > p.length ? 'more than ' : ''}${n} bytes, expected ${p.length}`, {
      where: `tensor ${p.tensor.name}`,
    });
  }
}

/**
 * A whole lazy tensor up to this size is made while the one before it is written (so two are held at once): larger
 * ones are made only when their turn comes, keeping peak memory about one tensor.
 */
const PREFETCH_BYTES = 64 << 20;

/** External tensors are copied through one reused 32 MiB buffer (two halves, read overlapping write): no per-tensor allocation. */
const COPY_CHUNK_BYTES = 32 << 20;

async function copyRange(src: ExternalSource, name: string, writer: AtomicFileWriter, chunk: Uint8Array): Promise<void> {
  const { path, offset, length } = src;
  const fh = await openExternalRange(src, name);
  try {
    // Two halves of the buffer: the next read runs while the previous piece is being written.
    const half = chunk.byteLength >> 1;
    const bufs = [chunk.subarray(0, half), chunk.subarray(half)];
    const readAt = async (buf: Uint8Array, pos: number): Promise<Uint8Array> => {
      const want = Math.min(buf.byteLength, length - pos);
      let got = 0;
      while (got < want) {
        const { bytesRead } = await fh!.read(buf, got, want - got, offset + pos + got);
        if (bytesRead === 0) {
          throw new OnnxError('ONNX_EXTERNAL_TRUNCATED', `external data ends at byte ${offset + pos + got} while copying`, { file: path, where: `tensor ${name}` });
        }
        got += bytesRead;
      }
      return buf.subarray(0, want);
    };
    let pos = 0;
    let pending = length > 0 ? readAt(bufs[0], 0) : undefined;
    for (let k = 1; pending; k++) {
      const piece = await pending;
      pos += piece.byteLength;
      pending = pos < length ? readAt(bufs[k % 2], pos) : undefined;
      await writer.write(piece);
    }
  } finally {
    await fh.close();
  }
}

function tooLarge(file: string, what: string): OnnxError {
  return new OnnxError('ONNX_PROTOBUF_TOO_LARGE', `${what}; a protobuf must stay under 2 GiB`, {
    file,
    fix: 'save with external data (the default) or a lower sizeThreshold',
  });
}

/** Offsets in the data file: smallest tensors first (less padding), ties in model order; large ones aligned. */
function layout(tensors: readonly Tensor[]): PlannedTensor[] {
  const order = tensors.map((t, i) => ({ t, i, n: t.byteLength })).sort((a, b) => a.n - b.n || a.i - b.i);
  let cursor = 0;
  return order.map(({ t, n }) => {
    const align = n >= LARGE_TENSOR_BYTES ? LARGE_TENSOR_ALIGNMENT : SMALL_TENSOR_ALIGNMENT;
    const offset = Math.ceil(cursor / align) * align;
    cursor = offset + n;
    return { tensor: t, offset, length: n };
  });
}

function isConstantNode(n: Node): boolean {
  return (n.domain === '' || n.domain === 'ai.onnx') && (n.opType === 'Constant' || n.opType === 'ConstantOfShape');
}

/**
 * Every distinct tensor of the model. `movable` ones may go to external data: initializers and tensor attributes
 * of the main graph, its subgraphs and the training graphs (what onnxruntime loads from external data). `pinned`
 * ones stay inline: sparse tensors and anything inside model-local functions.
 */
function collectTensors(model: Model): { movable: Tensor[]; pinned: Tensor[] } {
  const seen = new Set<Tensor>();
  const movable: Tensor[] = [];
  const pinned: Tensor[] = [];
  const add = (t: Tensor, canMove: boolean) => {
    if (seen.has(t)) return;
    seen.add(t);
    (canMove ? movable : pinned).push(t);
  };
  const visitGraph = (g: Graph, canMove: boolean) => {
    for (const t of g.initializers) add(t, canMove);
    for (const s of g.sparseInitializers) {
      add(s.values, false);
      add(s.indices, false);
    }
    // A Constant node's value stays inline: onnxruntime's shape inference reads it (e.g. as a ReduceSum's axes) before
    // any external data is loaded, and fails on an external one (onnx's own save keeps attributes inline too).
    for (const n of g.nodes) visitAttributes(n.attributes, canMove && !isConstantNode(n));
  };
  const visitAttributes = (attrs: readonly Attribute[], canMove: boolean) => {
    for (const a of attrs) {
      if (a.refAttrName) continue;
      if (a.type === 'tensor') add(a.value, canMove);
      else if (a.type === 'tensors') a.value.forEach((t) => add(t, canMove));
      else if (a.type === 'sparse_tensor') [a.value.values, a.value.indices].forEach((t) => add(t, false));
      else if (a.type === 'sparse_tensors') a.value.forEach((s) => [s.values, s.indices].forEach((t) => add(t, false)));
      else if (a.type === 'graph') visitGraph(a.value, canMove);
      else if (a.type === 'graphs') a.value.forEach((g) => visitGraph(g, canMove));
    }
  };
  visitGraph(model.graph, true);
  for (const ti of model.trainingInfo) {
    if (ti.initialization) visitGraph(ti.initialization, true);
    if (ti.algorithm) visitGraph(ti.algorithm, true);
  }
  for (const f of model.functions) {
    visitAttributes(f.attributeProtos, false);
    for (const n of f.nodes) visitAttributes(n.attributes, false);
  }
  return { movable, pinned };
}
