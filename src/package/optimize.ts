// Offline graph pre-optimisation: onnxruntime's own basic-level optimizer run once at package time (so devices do
// less work when they load the model), its output re-saved through our codec in our layout (one aligned .data file,
// deterministic bytes).
//
//   model.onnx(.data) ─ pin shared weights ─▶ work/in ─ ORT session (basic, optimizedModelFilePath) ─▶ work/ort
//                                                                                                        │
//   out/model.onnx + model.onnx.data ◀─ saveModel ◀─ unpin, dedupe, prune opsets, sort ◀─ loadModel ◀────┘
//
// Facts this relies on (onnxruntime 1.30):
// - Basic (Level1) = rewrite rules (Identity/Slice/Unsqueeze/Dropout/Expand/Cast elimination, no-op elimination,
//   Div-Mul, Relu-Clip, Gemm, Conv and Pad fusions), ConstantSharing, common-subexpression elimination, constant
//   folding, MatMul+Add→Gemm, Reshape fusion, Gelu and LayerNorm fusion, QDQ clean-ups and the transpose optimizer
//   (onnxruntime/core/optimizer/graph_transformer_utils.cc). They run on every EP's graph, so the result is not tied
//   to the CPU EP — but Gelu/LayerNorm fusion can emit ops the input did not have, so the result's ops are checked
//   against the target when one is given.
// - The optimized model is written with `optimizedModelFilePath`; its initializers go to an external file through
//   the session config entries `session.optimized_model_external_initializers_file_name` and
//   `session.optimized_model_external_initializers_min_size_in_bytes` (onnxruntime_session_options_config_keys.h),
//   which onnxruntime-node passes through from `extra.session` (flattened as `session.<key>`).
// - Constant folding copies an initializer when only some of its consumers fold: a tied lm_head weight read by
//   MatMulNBits and by the embedding's Reshape → GatherBlockQuantized would be stored twice (the Reshape folds into a
//   second copy). onnxruntime never folds an initializer that is also a graph input (it may be overridden at run
//   time), so every initializer with more than one consumer is declared an input for the optimizer run and
//   undeclared afterwards.
// - When it externalizes initializers, onnxruntime writes those of subgraphs (If branches) twice, inline and
//   external under the same name; the copies are checked equal and one is kept.
// - It adds opset imports for every domain it knows (ai.onnx.ml, training, ...); imports no node uses are dropped.
// - It rejects external data outside the model's folder (also through symlinks) and external data files with more
//   than one hard link ("potential hardlink attack"), so the input is staged as a copy (a reflink where the file
//   system has them).
import { openOrtSession } from '../ort/session.js';
import { constants } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { DEFAULT_DECODER_FILE, readGenaiConfig } from '../genai/read.js';
import { prepareModelEncode } from '../onnx/codec.js';
import type { Graph, Model, ValueInfo } from '../onnx/ir.js';
import { loadModel, saveModel } from '../onnx/model-file.js';
import { externalDataRealPath, type ExternalSource, type Tensor } from '../onnx/tensor.js';
import type { Target } from '../target/index.js';
import { writeFileAtomic } from '../util/atomic-fs.js';
import { OnnxError, PackageError, isPhiForgeError } from '../util/errors.js';

export interface OptimizeOptions {
  /** onnxruntime graph optimization level; only `basic` is EP-independent, so only it is offered. */
  level: 'basic';
  /** When given, every op of the optimized graph must be one this target's EP runs. */
  target?: Target;
}

export interface OptimizeResult {
  /** Model file written, relative to the output folder (the name genai_config.json gives). */
  modelFile: string;
  nodesBefore: number;
  nodesAfter: number;
  /** `domain.op` types present after optimization that the input did not have. */
  introducedOps: string[];
  /** Bytes of all tensors before and after (after includes folded constants). */
  tensorBytesBefore: number;
  tensorBytesAfter: number;
  /** Initializers declared as graph inputs during the optimizer run so they were not folded into copies. */
  pinned: string[];
}

/** Weights may grow by folded constants (shape tensors, rotary tables moved into If branches), not by copies. */
const GROWTH_SLACK_BYTES = 64 * 1024;
const GROWTH_SLACK_RATIO = 0.01;

/**
 * Pre-optimizes the decoder of `modelDir` with onnxruntime's basic level and writes `<model file>` and
 * `<model file>.data` into `outDir` (which may be `modelDir`: the files are replaced atomically). Other files of the
 * folder are not touched or copied. Same input → byte-identical output.
 */
export async function optimizeOffline(modelDir: string, outDir: string, opts: OptimizeOptions = { level: 'basic' }): Promise<OptimizeResult> {
  if (opts.level !== 'basic') {
    throw new PackageError('OPTIMIZE_LEVEL', `optimization level '${String(opts.level)}' is not supported offline`, {
      fix: "use 'basic': higher levels insert EP-specific fused ops that other devices cannot run",
    });
  }
  const modelFile = await decoderFileName(modelDir);
  const source = await loadModel(join(modelDir, modelFile));
  const before = summarize(source);
  const pinned = pinSharedInitializers(source);

  const work = await mkdtemp(join(tmpdir(), 'phi-forge-optimize-'));
  try {
    const stagedPath = await stage(source, join(work, 'in'), modelFile);
    const ortPath = join(work, 'ort', 'model.onnx');
    await mkdir(dirname(ortPath), { recursive: true });
    await runOrtOptimizer(stagedPath, ortPath);

    const optimized = await loadModel(ortPath);
    unpin(optimized, pinned);
    await dedupeInitializers(optimized);
    pruneOpsetImports(optimized);
    canonicalize(optimized);
    const after = summarize(optimized);

    const introducedOps = [...after.ops].filter((o) => !before.ops.has(o)).sort();
    if (opts.target) {
      const unsupported = [...after.ops].filter((o) => !opts.target!.supportsOp(...splitOp(o))).sort();
      if (unsupported.length) {
        throw new PackageError('OPTIMIZE_UNSUPPORTED_OP', `the optimized graph uses ${unsupported.join(', ')}, which the ${opts.target.id} target does not run`, {
          file: join(modelDir, modelFile),
          fix: 'package this target without offline optimization, or add the op to src/target/ops.ts once its EP kernel is confirmed',
        });
      }
    }
    if (after.tensorBytes > before.tensorBytes * (1 + GROWTH_SLACK_RATIO) + GROWTH_SLACK_BYTES) {
      const known = new Set([...source.graph.allTensors()].map((t) => t.name));
      const grown = [...optimized.graph.allTensors()].filter((t) => !known.has(t.name)).sort((a, b) => b.byteLength - a.byteLength);
      throw new PackageError(
        'OPTIMIZE_WEIGHTS_GREW',
        `offline optimization grew the weights from ${before.tensorBytes} to ${after.tensorBytes} bytes (new tensors: ${grown
          .slice(0, 4)
          .map((t) => `${t.name} ${t.byteLength} B`)
          .join(', ')})`,
        { file: join(modelDir, modelFile), fix: 'a folded constant copies a shared weight: report it, and package without offline optimization meanwhile' },
      );
    }

    await mkdir(outDir, { recursive: true });
    await saveModel(optimized, join(outDir, modelFile), { externalData: `${baseName(modelFile)}.data` });
    return {
      modelFile,
      nodesBefore: before.nodes,
      nodesAfter: after.nodes,
      introducedOps,
      tensorBytesBefore: before.tensorBytes,
      tensorBytesAfter: after.tensorBytes,
      pinned: pinned.map((p) => p.name),
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The decoder file genai_config.json names (model.onnx without a config). */
async function decoderFileName(modelDir: string): Promise<string> {
  try {
    return (await readGenaiConfig(modelDir)).decoder.modelFile;
  } catch (e) {
    if (isPhiForgeError(e) && e.code === 'GENAI_CONFIG_MISSING') return DEFAULT_DECODER_FILE;
    throw e;
  }
}

function baseName(p: string): string {
  return p.split(/[\\/]/).pop()!;
}

interface Summary {
  nodes: number;
  ops: Set<string>;
  tensorBytes: number;
}

function summarize(model: Model): Summary {
  const ops = new Set<string>();
  let nodes = 0;
  for (const n of model.graph.allNodes()) {
    nodes++;
    ops.add(opKey(n.domain, n.opType));
  }
  let tensorBytes = 0;
  const seen = new Set<Tensor>();
  for (const t of model.graph.allTensors()) {
    if (seen.has(t)) continue;
    seen.add(t);
    tensorBytes += t.byteLength;
  }
  return { nodes, ops, tensorBytes };
}

function opKey(domain: string, op: string): string {
  return domain && domain !== 'ai.onnx' ? `${domain}.${op}` : op;
}

function splitOp(key: string): [string, string] {
  const i = key.lastIndexOf('.');
  return i < 0 ? ['', key] : [key.slice(0, i), key.slice(i + 1)];
}

/** Declares every main-graph initializer with two or more consumers a graph input (see the header for why). */
function pinSharedInitializers(model: Model): ValueInfo[] {
  const g = model.graph;
  const consumers = g.consumerMap();
  const outputs = new Set(g.outputs.map((o) => o.name));
  const inputs = new Set(g.inputs.map((i) => i.name));
  const pinned: ValueInfo[] = [];
  for (const t of g.initializers) {
    const uses = (consumers.get(t.name)?.length ?? 0) + (outputs.has(t.name) ? 1 : 0);
    if (uses < 2 || inputs.has(t.name)) continue;
    pinned.push({ name: t.name, type: { kind: 'tensor', elemType: t.dataType, shape: t.dims.map((value) => ({ value })) } });
  }
  g.inputs.push(...pinned);
  return pinned;
}

function unpin(model: Model, pinned: readonly ValueInfo[]): void {
  const names = new Set(pinned.map((p) => p.name));
  model.graph.inputs = model.graph.inputs.filter((i) => !names.has(i.name));
}

/**
 * Writes the model's protobuf into `dir` with its external data files copied next to it under the names the model
 * gives them, so onnxruntime finds them inside the model's folder.
 */
async function stage(model: Model, dir: string, modelFile: string): Promise<string> {
  const path = join(dir, modelFile);
  await mkdir(dirname(path), { recursive: true });
  const files = new Map<string, { src: ExternalSource; tensor: string }>();
  for (const t of model.allTensors()) {
    if (t.source.kind === 'external') files.set(t.source.location, { src: t.source, tensor: t.name });
  }
  for (const [location, { src, tensor }] of files) {
    const to = resolve(dirname(path), location);
    await mkdir(dirname(to), { recursive: true });
    // Whole files are copied, not read through openExternalRange: the same check that they stay in the model's folder.
    await copyFile(await externalDataRealPath(src, tensor), to, constants.COPYFILE_FICLONE);
  }
  await writeFileAtomic(path, prepareModelEncode(model).finish());
  return path;
}

async function runOrtOptimizer(input: string, output: string): Promise<void> {
  const session = await openOrtSession(input, {
    graphOptimizationLevel: 'basic',
    optimizedModelFilePath: output,
    sessionConfig: {
      optimized_model_external_initializers_file_name: 'model.onnx.data',
      optimized_model_external_initializers_min_size_in_bytes: '1024',
      // The session only exists to write the file: skip packing weights for kernels that will never run.
      disable_prepacking: '1',
    },
    fix: 'check the model loads with `pnpm pipeline verify`; package without offline optimization meanwhile',
  });
  await session.release();
}

/** Keeps one of same-named initializers in each graph (onnxruntime writes subgraph ones twice); they must agree. */
async function dedupeInitializers(model: Model): Promise<void> {
  const visit = async (g: Graph) => {
    const byName = new Map<string, number>();
    const keep: Tensor[] = [];
    for (const t of g.initializers) {
      const i = byName.get(t.name);
      if (i === undefined) {
        byName.set(t.name, keep.push(t) - 1);
        continue;
      }
      const first = keep[i];
      if (first.dataType !== t.dataType || first.dims.join() !== t.dims.join() || !bytesEqual(await first.bytes(), await t.bytes())) {
        throw new OnnxError('OPTIMIZE_DUPLICATE_INITIALIZER', `onnxruntime wrote two different initializers named ${t.name}`, {
          where: `graph ${g.name || '(subgraph)'}`,
          fix: 'package without offline optimization',
        });
      }
    }
    g.initializers = keep;
    for (const n of g.nodes) for (const s of n.subgraphs()) await visit(s);
  };
  await visit(model.graph);
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** Drops opset imports no node uses (the default domain always stays). */
function pruneOpsetImports(model: Model): void {
  const used = new Set<string>(['']);
  for (const n of model.graph.allNodes()) used.add(n.domain === 'ai.onnx' ? '' : n.domain);
  for (const f of model.functions) {
    used.add(f.domain);
    for (const n of f.nodes) used.add(n.domain === 'ai.onnx' ? '' : n.domain);
  }
  model.opsetImports = model.opsetImports.filter((o) => used.has(o.domain === 'ai.onnx' ? '' : o.domain));
}

/** Initializers and value_info sorted by name in every graph: onnxruntime writes them in hash-map order. */
function canonicalize(model: Model): void {
  const byName = <T extends { name: string }>(a: T, b: T) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  const visit = (g: Graph) => {
    g.initializers.sort(byName);
    g.valueInfo.sort(byName);
    for (const n of g.nodes) for (const s of n.subgraphs()) visit(s);
  };
  visit(model.graph);
  model.opsetImports.sort((a, b) => (a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : 0));
}
