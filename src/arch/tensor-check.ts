// The checkpoint checked against its typed config before any graph is built: every tensor the config implies is
// there, no layer lies past num_hidden_layers, and every shape and dtype is what the config and the builder need.
// Headers only (no tensor data is read), so it costs nothing at full size; every problem is reported at once.
import { basename } from 'node:path';
import { SAFETENSORS_TO_ONNX } from '../checkpoint/safetensors.js';
import type { WeightSource } from '../graph/weights.js';
import { DataType, dataTypeName } from '../onnx/dtype.js';
import { CheckpointError } from '../util/errors.js';
import { matchTensors, tensorName, type MatchedTensor, type TensorRule } from './tensor-map.js';
import { keyLabels, type KeyLabels } from './tensor-shapes.js';
import type { DecoderConfig } from './types.js';

export interface TensorCheckInput {
  /** The HF architecture name, for messages. */
  arch: string;
  rules: readonly TensorRule[];
  config: DecoderConfig;
  /** Every tensor name in the checkpoint. */
  names: readonly string[];
  /** dtype and shape of each tensor (the safetensors headers). */
  source: WeightSource;
  /** The file holding a tensor, for messages. */
  fileOf?: (name: string) => string | undefined;
  /** config.json as read, so messages can tell a key it sets from a default. */
  raw?: Readonly<Record<string, unknown>>;
}

export type TensorIssueKind = 'layers' | 'missing' | 'shape' | 'dtype';

export interface TensorIssue {
  kind: TensorIssueKind;
  /** The tensor (or the first of a group of tensors) the problem is about. */
  tensor: string;
  /** The file holding it, when the checkpoint has it. */
  file?: string;
  /** One line: the tensor, what the config implies, what the checkpoint has, what to change. */
  text: string;
}

/** Position in the model (embedding, layer 0, layer 1, ..., final norm, head), so problems list in model order. */
function modelOrder(rules: readonly TensorRule[], layers: number): (rule: TensorRule, layer?: number) => number {
  const firstPerLayer = rules.findIndex((r) => r.hf.includes('{layer}'));
  return (rule, layer) => {
    const i = rules.indexOf(rule);
    const block = layer ?? (i < firstPerLayer ? -1 : layers);
    return (block + 1) * rules.length + i;
  };
}

/** Problems listed in one error; more are counted. */
export const MAX_REPORTED_ISSUES = 12;

/** The float dtypes the builder reads (it casts them to the activation dtype). */
const READABLE = new Set<number>([DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16]);

const SAFETENSORS_NAME = new Map<number, string>(Object.entries(SAFETENSORS_TO_ONNX).map(([name, t]) => [t, name]));

function dtypeName(t: number): string {
  return SAFETENSORS_NAME.get(t) ?? dataTypeName(t);
}

const show = (dims: readonly number[]) => `[${dims.join(', ')}]`;

/** `layer 2`, `layers 2..31` (a run), or `layers 1, 4, 7`. */
function layerList(layers: readonly number[]): string {
  if (layers.length === 1) return `layer ${layers[0]}`;
  const run = layers[layers.length - 1] - layers[0] === layers.length - 1;
  return run ? `layers ${layers[0]}..${layers[layers.length - 1]}` : `layers ${layers.join(', ')}`;
}

/** Every problem: the layer count first, then missing, mis-shaped and unreadable tensors in model order. */
export function findTensorIssues(input: TensorCheckInput): TensorIssue[] {
  const { config: c, rules } = input;
  const matched = matchTensors(input.arch, rules, input.names);
  const labels = keyLabels(c, input.raw);
  const issues: TensorIssue[] = [];
  // Issues about single tensors, with their model position, sorted after the layer-count ones.
  const placed: { at: number; issue: TensorIssue }[] = [];
  const file = (name: string) => input.fileOf?.(name);
  const L = c.numLayers;
  const order = modelOrder(rules, L);
  const layersKey = `num_hidden_layers ${L} in config.json implies layers 0..${L - 1}`;

  // Layers the checkpoint holds, to suggest num_hidden_layers when they are 0..K-1.
  const held = new Set(matched.flatMap((m) => (m.layer === undefined ? [] : [m.layer])));
  const heldCount = held.size > 0 && Math.max(...held) + 1 === held.size ? held.size : undefined;
  const layerFix = heldCount !== undefined && heldCount !== L ? `: set num_hidden_layers to ${heldCount} (the checkpoint holds layers 0..${heldCount - 1})` : '';

  const extra = matched.filter((m) => m.layer !== undefined && m.layer >= L);
  if (extra.length > 0) {
    const which = layerList([...new Set(extra.map((m) => m.layer!))].sort((a, b) => a - b));
    issues.push({
      kind: 'layers',
      tensor: extra[0].name,
      file: file(extra[0].name),
      text: `${extra[0].name}${extra.length > 1 ? ` and ${extra.length - 1} more tensors` : ''} of ${which}: ${layersKey}${layerFix}`,
    });
  }

  const present = new Set(matched.map((m) => m.name));
  const required = rules.filter((r) => r.role !== null && (r.required?.(c) ?? true));
  const empty: number[] = [];
  for (let l = 0; l < L; l++) if (!held.has(l)) empty.push(l);
  const perLayerRule = required.find((r) => r.hf.includes('{layer}'));
  if (empty.length > 0 && perLayerRule) {
    const text = `${layerList(empty)}: no tensors in the checkpoint, but ${layersKey}${layerFix}`;
    issues.push({ kind: 'layers', tensor: tensorName(perLayerRule, empty[0]), text });
  }
  for (const r of required) {
    const perLayer = r.hf.includes('{layer}');
    const layers = perLayer ? [...Array(L).keys()].filter((l) => held.has(l)) : [undefined];
    for (const l of layers) {
      const name = tensorName(r, l);
      if (!present.has(name)) {
        placed.push({ at: order(r, l), issue: { kind: 'missing', tensor: name, text: `${name}: not in the checkpoint (${input.arch} role ${r.role})` } });
      }
    }
  }

  for (const m of matched) {
    if (m.layer !== undefined && m.layer >= L) continue;
    const info = input.source.info(m.name);
    if (!info) continue;
    const at = order(m.rule, m.layer);
    if (m.rule.role !== null && !READABLE.has(info.dataType)) {
      const text = `${m.name}: dtype ${dtypeName(info.dataType)}; the builder reads F32, F16 or BF16 weights`;
      placed.push({ at, issue: { kind: 'dtype', tensor: m.name, file: file(m.name), text } });
    }
    const text = checkShape(m, info.dims, c, labels);
    if (text) placed.push({ at, issue: { kind: 'shape', tensor: m.name, file: file(m.name), text } });
  }
  // Stable: a tensor's dtype problem stays before its shape problem.
  placed.sort((a, b) => a.at - b.at);
  return [...issues, ...placed.map((p) => p.issue)];
}

/** The message line for a tensor whose shape is not the one its rule derives from the config, else undefined. */
function checkShape(m: MatchedTensor, got: readonly number[], c: DecoderConfig, labels: KeyLabels): string | undefined {
  const dims = m.rule.shape;
  if (!dims) return undefined;
  const want = dims.map((d) => d.size(c));
  const sameRank = got.length === want.length;
  if (sameRank && got.every((g, i) => g === want[i])) return undefined;
  const bad = sameRank ? dims.filter((_, i) => got[i] !== want[i]) : dims;
  const explained = [...new Set(bad.map((d) => d.explain(c, labels)))];
  const keys = [...new Set(bad.flatMap((d) => d.keys))];
  const head = `${m.name}: ${explained.join(' and ')} in config.json ${explained.length > 1 ? 'imply' : 'implies'} ${show(want)}; the checkpoint has ${show(got)}`;
  const transposed = got.length === 2 && want.length === 2 && got[0] === want[1] && got[1] === want[0];
  if (transposed) return `${head}, its transpose: store the tensor as ${show(want)} ([out, in], as transformers does)`;
  const only = sameRank && bad.length === 1 && bad[0].direct ? ` (the weights say ${got[dims.indexOf(bad[0])]})` : '';
  return `${head}: fix ${keys.join(', ')}${only} or the checkpoint`;
}

const FIXES: Record<TensorIssueKind, string> = {
  layers: 'num_hidden_layers must match the layers in the weights',
  shape: 'config.json must describe these weights: fix the named keys, or use the config.json the checkpoint was saved with',
  missing: 'check that every safetensors shard listed in model.safetensors.index.json is present and belongs to this model',
  dtype: 'quantized or integer weights are not read by the native builder: convert from an F32, F16 or BF16 checkpoint',
};

/**
 * Throws one CheckpointError listing every problem (up to {@link MAX_REPORTED_ISSUES}). Its code says the worst kind:
 * CHECKPOINT_SHAPE_MISMATCH when config.json and the weights disagree on a shape or the layer count, else
 * CHECKPOINT_DTYPE, else CHECKPOINT_TENSOR_MISSING.
 */
export function checkTensors(input: TensorCheckInput): void {
  const issues = findTensorIssues(input);
  if (issues.length === 0) return;
  const kinds = new Set(issues.map((i) => i.kind));
  const code =
    kinds.has('shape') || kinds.has('layers') ? 'CHECKPOINT_SHAPE_MISMATCH' : kinds.has('dtype') ? 'CHECKPOINT_DTYPE' : 'CHECKPOINT_TENSOR_MISSING';
  const files = [...new Set(issues.flatMap((i) => (i.file ? [i.file] : [])))];
  const oneFile = files.length === 1 ? files[0] : undefined;
  const lines = issues.slice(0, MAX_REPORTED_ISSUES).map((i) => (i.file && !oneFile ? `${basename(i.file)}: ${i.text}` : i.text));
  if (issues.length > MAX_REPORTED_ISSUES) lines.push(`… and ${issues.length - MAX_REPORTED_ISSUES} more`);
  const order: TensorIssueKind[] = ['layers', 'shape', 'missing', 'dtype'];
  throw new CheckpointError(
    code,
    `the ${input.arch} checkpoint does not match its config.json (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n    ${lines.join('\n    ')}`,
    { file: oneFile, fix: order.filter((k) => kinds.has(k)).map((k) => FIXES[k]).join('; ') },
  );
}
