// The graph's inputs and outputs against its genai_config.json: every name the config gives is in the graph, no input
// is left that onnxruntime-genai would not feed, and the cache and logits shapes have the sizes the config states.
import type { Graph, ValueInfo } from '../onnx/ir.js';
import { GENAI_IO_DEFAULTS } from './io-names.js';
import type { GenaiDecoder } from './read.js';

/** A graph input or output: its name and, where the graph fixes them, its dimensions. */
export interface IoValue {
  name: string;
  dims?: readonly (number | string | undefined)[];
}

export interface GraphIo {
  inputs: readonly IoValue[];
  outputs: readonly IoValue[];
}

/** The I/O of an IR graph; initializers old IR versions list among the inputs are not fed, so not inputs here. */
export function graphIo(g: Graph): GraphIo {
  const initializers = new Set(g.initializers.map((t) => t.name));
  const value = (v: ValueInfo): IoValue => ({
    name: v.name,
    dims: v.type?.kind === 'tensor' && v.type.shape ? v.type.shape.map((d) => d.value ?? d.param) : undefined,
  });
  return { inputs: g.inputs.filter((i) => !initializers.has(i.name)).map(value), outputs: g.outputs.map(value) };
}

/** The graph input carrying position ids (named by the config, else the default name), if the graph has one. */
export function positionIdsInput(io: GraphIo, decoder: Pick<GenaiDecoder, 'names'>): string | undefined {
  const name = decoder.names.positionIds ?? GENAI_IO_DEFAULTS.inputs.position_ids;
  return io.inputs.some((i) => i.name === name) ? name : undefined;
}

/** Every mismatch between the graph's I/O and genai_config.json, one line each (empty when they agree). */
export function ioProblems(io: GraphIo, decoder: Pick<GenaiDecoder, 'names' | 'numKvHeads' | 'headSize' | 'vocabSize'>): string[] {
  const out: string[] = [];
  const n = decoder.names;
  const inputs = io.inputs.map((i) => i.name);
  const outputs = io.outputs.map((o) => o.name);
  const positionInput = positionIdsInput(io, decoder);
  if (positionInput && !n.positionIds) out.push(`the graph has a ${positionInput} input that genai_config.json does not name (model.decoder.inputs.position_ids)`);

  const wantIn = [n.inputIds, n.attentionMask, ...(n.positionIds ? [n.positionIds] : []), ...n.pastKeys, ...n.pastValues];
  const wantOut = [n.logits, ...n.presentKeys, ...n.presentValues];
  const missingIn = wantIn.filter((x) => !inputs.includes(x));
  const missingOut = wantOut.filter((x) => !outputs.includes(x));
  const extraIn = inputs.filter((x) => !wantIn.includes(x) && x !== positionInput);
  if (missingIn.length) out.push(`inputs genai_config.json names are missing from the graph: ${list(missingIn)}`);
  if (missingOut.length) out.push(`outputs genai_config.json names are missing from the graph: ${list(missingOut)}`);
  if (extraIn.length) out.push(`graph inputs onnxruntime-genai does not feed: ${list(extraIn)}`);

  // Cache [batch, kv_heads, sequence, head_size] and logits [batch, sequence, vocab], where the graph fixes them.
  const byName = new Map([...io.inputs, ...io.outputs].map((v) => [v.name, v]));
  for (const name of [...n.pastKeys, ...n.pastValues, ...n.presentKeys, ...n.presentValues]) {
    const dims = byName.get(name)?.dims;
    if (!dims) continue;
    if (dims.length !== 4) {
      out.push(`${name} has rank ${dims.length}; the cache is [batch, kv_heads, sequence, head_size]`);
      continue;
    }
    if (typeof dims[1] === 'number' && dims[1] !== decoder.numKvHeads) {
      out.push(`${name} has ${dims[1]} kv heads; genai_config.json says num_key_value_heads ${decoder.numKvHeads}`);
    }
    if (typeof dims[3] === 'number' && dims[3] !== decoder.headSize) {
      out.push(`${name} has head size ${dims[3]}; genai_config.json says head_size ${decoder.headSize}`);
    }
  }
  const logits = byName.get(n.logits)?.dims;
  const vocab = logits?.[logits.length - 1];
  if (decoder.vocabSize !== undefined && typeof vocab === 'number' && vocab !== decoder.vocabSize) {
    out.push(`${n.logits} has ${vocab} columns; genai_config.json says vocab_size ${decoder.vocabSize}`);
  }
  return out;
}

function list(names: readonly string[]): string {
  return names.length > 4 ? `${names.slice(0, 4).join(', ')}, ... (${names.length})` : names.join(', ');
}
