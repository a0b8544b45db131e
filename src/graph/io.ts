// Decoder graph inputs and outputs in the names, types and symbolic shapes onnxruntime-genai binds by.
import { DataType } from '../onnx/dtype.js';
import type { FloatDtype, GraphBuilder } from './builder.js';

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

export const pastKeyName = (i: number) => `past_key_values.${i}.key`;
export const pastValueName = (i: number) => `past_key_values.${i}.value`;
export const presentKeyName = (i: number) => `present.${i}.key`;
export const presentValueName = (i: number) => `present.${i}.value`;

/** Declares graph inputs (ids, mask, [position ids], past keys, past values) and outputs (logits, presents). */
export function declareDecoderIo(b: GraphBuilder, s: DecoderIoSpec): DecoderIo {
  b.input('input_ids', DataType.INT64, ['batch_size', 'sequence_length']);
  b.input('attention_mask', DataType.INT64, ['batch_size', 'total_sequence_length']);
  if (s.positionIds) b.input('position_ids', DataType.INT64, ['batch_size', 'sequence_length']);
  const past = ['batch_size', s.kvHeads, 'past_sequence_length', s.headSize];
  for (let i = 0; i < s.layers; i++) b.input(pastKeyName(i), s.dtype, past);
  for (let i = 0; i < s.layers; i++) b.input(pastValueName(i), s.dtype, past);
  b.output('logits', s.logitsDtype, ['batch_size', 'sequence_length', s.vocabSize]);
  const present = ['batch_size', s.kvHeads, 'total_sequence_length', s.headSize];
  for (let i = 0; i < s.layers; i++) b.output(presentKeyName(i), s.dtype, present);
  for (let i = 0; i < s.layers; i++) b.output(presentValueName(i), s.dtype, present);
  return {
    inputIds: 'input_ids',
    attentionMask: 'attention_mask',
    positionIds: s.positionIds ? 'position_ids' : undefined,
    pastKey: pastKeyName,
    pastValue: pastValueName,
    presentKey: presentKeyName,
    presentValue: presentValueName,
    logits: 'logits',
  };
}
