// Decoder graph inputs and outputs in the names (genai/io-names), types and symbolic shapes onnxruntime-genai binds by.
import { GENAI_IO_DEFAULTS, layerName } from '../genai/io-names.js';
import { DataType } from '../onnx/dtype.js';
import type { FloatDtype, GraphBuilder } from './builder.js';

const { inputs: IN, outputs: OUT } = GENAI_IO_DEFAULTS;

export interface DecoderIoSpec {
  layers: number;
  kvHeads: number;
  headSize: number;
  vocabSize: number;
  /** dtype of the KV cache (the activation dtype). */
  dtype: FloatDtype;
  logitsDtype: FloatDtype;
  /** Targets that rotate outside attention (DirectML) take explicit position ids. */
  positionIds: boolean;
}

export interface DecoderIo {
  inputIds: string;
  attentionMask: string;
  positionIds?: string;
  pastKey: (layer: number) => string;
  pastValue: (layer: number) => string;
  presentKey: (layer: number) => string;
  presentValue: (layer: number) => string;
  logits: string;
}

export const pastKeyName = (i: number) => layerName(IN.past_key_names, i);
export const pastValueName = (i: number) => layerName(IN.past_value_names, i);
export const presentKeyName = (i: number) => layerName(OUT.present_key_names, i);
export const presentValueName = (i: number) => layerName(OUT.present_value_names, i);

/** Declares graph inputs (ids, mask, [position ids], past keys, past values) and outputs (logits, presents). */
export function declareDecoderIo(b: GraphBuilder, s: DecoderIoSpec): DecoderIo {
  b.input(IN.input_ids, DataType.INT64, ['batch_size', 'sequence_length']);
  b.input(IN.attention_mask, DataType.INT64, ['batch_size', 'total_sequence_length']);
  if (s.positionIds) b.input(IN.position_ids, DataType.INT64, ['batch_size', 'sequence_length']);
  const past = ['batch_size', s.kvHeads, 'past_sequence_length', s.headSize];
  for (let i = 0; i < s.layers; i++) b.input(pastKeyName(i), s.dtype, past);
  for (let i = 0; i < s.layers; i++) b.input(pastValueName(i), s.dtype, past);
  b.output(OUT.logits, s.logitsDtype, ['batch_size', 'sequence_length', s.vocabSize]);
  const present = ['batch_size', s.kvHeads, 'total_sequence_length', s.headSize];
  for (let i = 0; i < s.layers; i++) b.output(presentKeyName(i), s.dtype, present);
  for (let i = 0; i < s.layers; i++) b.output(presentValueName(i), s.dtype, present);
  return {
    inputIds: IN.input_ids,
    attentionMask: IN.attention_mask,
    positionIds: s.positionIds ? IN.position_ids : undefined,
    pastKey: pastKeyName,
    pastValue: pastValueName,
    presentKey: presentKeyName,
    presentValue: presentValueName,
    logits: OUT.logits,
  };
}
