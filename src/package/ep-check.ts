// Execution-provider check of a package folder for its target: every op (subgraphs included) has a kernel on the
// target's EP with the package's activation type, graph I/O is what genai_config.json names (genai/io-check) with
// position_ids exactly when the layout needs it, genai_config.json selects the target's provider, activations are
// the target's dtype, and a short forward on onnxruntime-node's CPU EP gives finite logits — skipped, not failed,
// for a cuda/dml package using an op the CPU EP has no kernel for.
import { join } from 'node:path';
import { graphIo, ioProblems, positionIdsInput, type GraphIo } from '../genai/io-check.js';
import { providerProblem } from '../genai/providers.js';
import { readGenaiConfig, type GenaiDecoder } from '../genai/read.js';
import { DataType, dataTypeName } from '../onnx/dtype.js';
import type { Graph, Model, ValueInfo } from '../onnx/ir.js';
import { loadModel } from '../onnx/model-file.js';
import type { Target } from '../target/index.js';
import { activationTypeProblem, unsupportedReason, type FloatTypeName } from '../target/ops.js';
import { isPhiForgeError } from '../util/errors.js';
import { missingKernel } from './verify.js';

export interface EpCheckOptions {
  /** Run the short forward on the CPU EP (default true). */
  forward?: boolean;
  /**
   * Activation dtype the package must use: the target's by default; a recipe may override a target's precision
   * (e.g. fp16 on cpu), and the package stage then passes the plan's.
   */
  activationDtype?: typeof DataType.FLOAT | typeof DataType.FLOAT16;
}

export type EpForwardCheck =
  | { status: 'ok'; tokens: number[]; positions: number; vocabSize: number }
  | { status: 'skipped'; reason: string }
  | { status: 'failed'; error: string };

export interface EpCheckResult {
  ok: boolean;
  target: string;
  /** The onnxruntime execution provider the package is for, e.g. DmlExecutionProvider. */
  executionProvider: string;
  /** One line per problem, naming the op/node/value/file; empty when ok. */
  problems: string[];
  forward: EpForwardCheck;
}

/** Tokens after BOS for the forward: a prefill of four, then one decode step with the cache. */
const PREFILL = 4;

/** Checks a package (or model) folder for `target`. Never throws for a bad package: the problems say what is wrong. */
export async function checkPackageForTarget(modelDir: string, target: Target, opts: EpCheckOptions = {}): Promise<EpCheckResult> {
  const ep = target.executionProvider;
  const result: EpCheckResult = { ok: false, target: target.id, executionProvider: ep, problems: [], forward: { status: 'skipped', reason: 'not reached' } };
  const problems = result.problems;

  let config: GenaiDecoder;
  try {
    const file = await readGenaiConfig(modelDir);
    config = file.decoder;
    const p = providerProblem(file.config, target);
    if (p) problems.push(p);
  } catch (e) {
    problems.push(`genai_config.json: ${messageOf(e)}`);
    result.forward = { status: 'skipped', reason: 'genai_config.json is not usable' };
    return result;
  }

  let model: Model;
  try {
    model = await loadModel(join(modelDir, config.modelFile));
  } catch (e) {
    problems.push(`${config.modelFile}: ${messageOf(e)}`);
    result.forward = { status: 'skipped', reason: `${config.modelFile} cannot be read` };
    return result;
  }

  const want = opts.activationDtype ?? target.activationDtype;
  const activation = graphActivationType(model.graph, config) ?? floatTypeName(want);
  problems.push(...opProblems(model, target, activation));
  const io = graphIo(model.graph);
  const interfaceProblems = [...layoutProblems(io, config, target), ...ioProblems(io, config)];
  problems.push(...interfaceProblems, ...dtypeProblems(model.graph, config, target, want));

  if (opts.forward === false) result.forward = { status: 'skipped', reason: 'forward not requested' };
  else if (interfaceProblems.length) result.forward = { status: 'skipped', reason: 'the graph inputs/outputs do not match genai_config.json and the target layout' };
  else result.forward = await tryForward(modelDir, config, target);
  if (result.forward.status === 'failed') problems.push(`forward on the CPU EP: ${result.forward.error}`);

  result.ok = problems.length === 0;
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// Ops

function opProblems(model: Model, target: Target, activation: FloatTypeName | undefined): string[] {
  const ep = target.executionProvider;
  const groups = new Map<string, { domain: string; op: string; nodes: string[] }>();
  for (const n of model.graph.allNodes()) {
    const domain = n.domain === 'ai.onnx' ? '' : n.domain;
    const key = domain ? `${domain}.${n.opType}` : n.opType;
    const g = groups.get(key) ?? { domain, op: n.opType, nodes: [] };
    g.nodes.push(n.name || '(unnamed)');
    groups.set(key, g);
  }
  const out: string[] = [];
  for (const [key, g] of [...groups].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const where = `${g.nodes.length} node${g.nodes.length === 1 ? '' : 's'}, e.g. ${g.nodes[0]}`;
    // The target object decides support; ops.ts says why when it knows.
    if (!target.supportsOp(g.domain, g.op)) {
      const why = unsupportedReason(ep, g.domain, g.op) ?? 'not supported by the target';
      out.push(`op ${key} (${where}) cannot run on ${ep}: ${why}`);
      continue;
    }
    const typeProblem = activation && activationTypeProblem(ep, g.domain, g.op, activation);
    if (typeProblem) out.push(`op ${key} (${where}) ${typeProblem}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Graph I/O against the target's layout (the rest against genai_config.json is genai/io-check's)

function layoutProblems(io: GraphIo, config: GenaiDecoder, target: Target): string[] {
  const positionInput = positionIdsInput(io, config);
  if (target.graph === 'dml' && !positionInput) return [`the ${target.id} layout feeds RotaryEmbedding from a position_ids input, but the graph has none`];
  if (target.graph !== 'dml' && positionInput) return [`the ${target.id} layout computes positions inside the graph, but it has a ${positionInput} input`];
  return [];
}

function dtypeProblems(g: Graph, config: GenaiDecoder, target: Target, want: number): string[] {
  const out: string[] = [];
  const n = config.names;
  const byName = new Map<string, ValueInfo>([...g.inputs, ...g.outputs].map((v) => [v.name, v]));
  const check = (name: string, allowed: readonly number[], why: string) => {
    const v = byName.get(name);
    if (!v) return; // reported as missing
    const t = v.type?.kind === 'tensor' ? v.type.elemType : undefined;
    if (t === undefined || !allowed.includes(t)) {
      out.push(`${name} is ${t === undefined ? 'not a tensor' : typeName(t)}; ${why}`);
    }
  };
  const ints = [DataType.INT64, DataType.INT32];
  check(n.inputIds, ints, 'onnxruntime-genai feeds int64 or int32 token ids');
  check(n.attentionMask, ints, 'onnxruntime-genai feeds an int64 or int32 attention mask');
  if (n.positionIds) check(n.positionIds, [DataType.INT64], 'RotaryEmbedding takes int64 position ids');
  // Cache and logits carry the activation type: one line per wrong type, not one per layer.
  const wrong = new Map<string, string[]>();
  for (const name of [n.logits, ...n.pastKeys, ...n.pastValues, ...n.presentKeys, ...n.presentValues]) {
    const v = byName.get(name);
    const t = v?.type?.kind === 'tensor' ? v.type.elemType : undefined;
    if (!v || t === want) continue;
    const k = t === undefined ? 'not a tensor' : typeName(t);
    wrong.set(k, [...(wrong.get(k) ?? []), name]);
  }
  for (const [t, names] of wrong) {
    out.push(`${list(names)} ${names.length === 1 ? 'is' : 'are'} ${t}; this ${target.id} package must use ${typeName(want)} activations`);
  }
  return out;
}

function typeName(t: number): string {
  return t === DataType.FLOAT ? 'float32' : dataTypeName(t).toLowerCase();
}

/** The float type the graph computes in, read from its logits (else its KV cache). */
function graphActivationType(g: Graph, config: GenaiDecoder): FloatTypeName | undefined {
  for (const name of [config.names.logits, config.names.pastKeys[0]]) {
    const v = [...g.outputs, ...g.inputs].find((x) => x.name === name);
    if (v?.type?.kind === 'tensor') {
      const t = floatTypeName(v.type.elemType);
      if (t) return t;
    }
  }
  return undefined;
}

function floatTypeName(t: number): FloatTypeName | undefined {
  if (t === DataType.FLOAT) return 'float';
  if (t === DataType.FLOAT16) return 'float16';
  if (t === DataType.BFLOAT16) return 'bfloat16';
  if (t === DataType.DOUBLE) return 'double';
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Forward on the CPU EP

async function tryForward(modelDir: string, config: GenaiDecoder, target: Target): Promise<EpForwardCheck> {
  const { DecoderSession } = await import('../runtime/decoder-session.js');
  const onCpu = target.executionProvider === 'CPUExecutionProvider';
  let session;
  try {
    session = await DecoderSession.open(modelDir);
  } catch (e) {
    const op = missingKernel(messageOf(e));
    if (op && !onCpu) {
      return { status: 'skipped', reason: `onnxruntime's CPU EP has no kernel for ${op}; the ${target.id} package is checked structurally only` };
    }
    return { status: 'failed', error: messageOf(e) };
  }
  try {
    const vocab = session.layout.vocabSize ?? config.vocabSize;
    const bos = config.bosTokenId ?? 0;
    // Fixed, spread-out ids: the check must not depend on a tokenizer.
    const ids = [bos, ...Array.from({ length: PREFILL }, (_, i) => (vocab ? (7 + 31 * i) % vocab : i + 1))];
    const cache = session.newCache();
    const prefill = await session.forward(ids.slice(0, PREFILL), cache);
    const bad = nonFinite(prefill.logits);
    if (bad) return { status: 'failed', error: `${bad} of ${prefill.logits.length} prefill logits are NaN or infinite` };
    const step = await session.forward(ids.slice(PREFILL), cache);
    const badStep = nonFinite(step.logits);
    if (badStep) return { status: 'failed', error: `${badStep} of ${step.logits.length} logits of the cached decode step are NaN or infinite` };
    return { status: 'ok', tokens: ids, positions: ids.length, vocabSize: step.vocabSize };
  } catch (e) {
    return { status: 'failed', error: messageOf(e) };
  } finally {
    await session.release();
  }
}

function nonFinite(a: Float32Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) n++;
  return n;
}

function list(names: readonly string[]): string {
  return names.length > 4 ? `${names.slice(0, 4).join(', ')}, ... (${names.length})` : names.join(', ');
}

function messageOf(e: unknown): string {
  if (isPhiForgeError(e)) return e.message;
  return e instanceof Error ? e.message : String(e);
}
