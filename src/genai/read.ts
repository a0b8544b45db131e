// The decoder fields of a package's genai_config.json the runtime needs (names and sizes of the graph's I/O).
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { OnnxError } from '../util/errors.js';

const tokenIds = z.union([z.number().int(), z.array(z.number().int())]);

const schema = z.object({
  model: z
    .object({
      type: z.string().optional(),
      bos_token_id: z.number().int().optional(),
      eos_token_id: tokenIds.optional(),
      pad_token_id: tokenIds.optional(),
      vocab_size: z.number().int().positive().optional(),
      context_length: z.number().int().positive().optional(),
      decoder: z
        .object({
          filename: z.string().default('model.onnx'),
          head_size: z.number().int().positive(),
          num_hidden_layers: z.number().int().nonnegative(),
          num_key_value_heads: z.number().int().positive(),
          inputs: z
            .object({
              input_ids: z.string().default('input_ids'),
              attention_mask: z.string().default('attention_mask'),
              position_ids: z.string().optional(),
              past_key_names: z.string().default('past_key_values.%d.key'),
              past_value_names: z.string().default('past_key_values.%d.value'),
            })
            .loose()
            .prefault({}),
          outputs: z
            .object({
              logits: z.string().default('logits'),
              present_key_names: z.string().default('present.%d.key'),
              present_value_names: z.string().default('present.%d.value'),
            })
            .loose()
            .prefault({}),
        })
        .loose(),
    })
    .loose(),
});

export interface GenaiDecoderConfig {
  modelFile: string;
  numLayers: number;
  numKvHeads: number;
  headSize: number;
  vocabSize?: number;
  contextLength?: number;
  bosTokenId?: number;
  eosTokenIds: number[];
  names: DecoderNames;
}

/** Graph I/O names, one entry per layer for the cache. */
export interface DecoderNames {
  inputIds: string;
  attentionMask: string;
  positionIds?: string;
  pastKeys: string[];
  pastValues: string[];
  logits: string;
  presentKeys: string[];
  presentValues: string[];
}

/** Reads and validates genai_config.json (only the fields the runtime uses; the rest is left to its writer). */
export async function readGenaiDecoderConfig(path: string): Promise<GenaiDecoderConfig> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    throw new OnnxError(missing ? 'GENAI_CONFIG_MISSING' : 'GENAI_CONFIG_JSON', missing ? 'no genai_config.json' : `not valid JSON: ${(e as Error).message}`, {
      file: path,
      fix: missing
        ? 'point at a model folder built by `pnpm pipeline build`/`convert` (or at its model.onnx file directly)'
        : 'rebuild the package (the file is damaged)',
      cause: e,
    });
  }
  const r = schema.safeParse(raw);
  if (!r.success) {
    throw new OnnxError('GENAI_CONFIG_INVALID', `genai_config.json lacks decoder fields: ${z.prettifyError(r.error)}`, {
      file: path,
      fix: 'rebuild the package, or add model.decoder.{head_size, num_hidden_layers, num_key_value_heads}',
    });
  }
  const m = r.data.model;
  const d = m.decoder;
  const perLayer = (template: string) => Array.from({ length: d.num_hidden_layers }, (_, i) => template.replace('%d', String(i)));
  const eos = m.eos_token_id === undefined ? [] : Array.isArray(m.eos_token_id) ? m.eos_token_id : [m.eos_token_id];
  return {
    modelFile: d.filename,
    numLayers: d.num_hidden_layers,
    numKvHeads: d.num_key_value_heads,
    headSize: d.head_size,
    vocabSize: m.vocab_size,
    contextLength: m.context_length,
    bosTokenId: m.bos_token_id,
    eosTokenIds: eos,
    names: {
      inputIds: d.inputs.input_ids,
      attentionMask: d.inputs.attention_mask,
      positionIds: d.inputs.position_ids,
      pastKeys: perLayer(d.inputs.past_key_names),
      pastValues: perLayer(d.inputs.past_value_names),
      logits: d.outputs.logits,
      presentKeys: perLayer(d.outputs.present_key_names),
      presentValues: perLayer(d.outputs.present_value_names),
    },
  };
}
