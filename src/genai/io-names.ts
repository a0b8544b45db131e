// The decoder graph's I/O names as onnxruntime-genai binds them: its defaults (spelled here and nowhere else) and the
// per-layer expansion of the `%d` templates genai_config.json's inputs/outputs may override them with.

/** onnxruntime-genai's default names (its config.h), used where genai_config.json names none. */
export const GENAI_IO_DEFAULTS = Object.freeze({
  inputs: Object.freeze({
    input_ids: 'input_ids',
    attention_mask: 'attention_mask',
    position_ids: 'position_ids',
    past_key_names: 'past_key_values.%d.key',
    past_value_names: 'past_key_values.%d.value',
  }),
  outputs: Object.freeze({
    logits: 'logits',
    present_key_names: 'present.%d.key',
    present_value_names: 'present.%d.value',
  }),
});

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

/** The name a `%d` template gives layer `layer`. */
export function layerName(template: string, layer: number): string {
  return template.replace('%d', String(layer));
}

/** A RegExp matching every name a `%d` template gives (the layer number in group 1). */
export function layerNamePattern(template: string): RegExp {
  const [before, after = ''] = template.split('%d');
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${esc(before)}(\\d+)${esc(after)}$`);
}

/** genai_config.json's `model.decoder.inputs`/`outputs` as far as a decoder LLM uses them (absent keys: the defaults). */
export interface DecoderIoConfig {
  inputs?: { input_ids?: string; attention_mask?: string; position_ids?: string; past_key_names?: string; past_value_names?: string };
  outputs?: { logits?: string; present_key_names?: string; present_value_names?: string };
}

/** The names of a `layers`-layer decoder: genai_config.json's where it gives them, else the defaults. */
export function decoderNames(io: DecoderIoConfig, layers: number): DecoderNames {
  const d = GENAI_IO_DEFAULTS;
  const i = io.inputs ?? {};
  const o = io.outputs ?? {};
  const perLayer = (template: string) => Array.from({ length: layers }, (_, l) => layerName(template, l));
  return {
    inputIds: i.input_ids ?? d.inputs.input_ids,
    attentionMask: i.attention_mask ?? d.inputs.attention_mask,
    // position_ids is fed only when the config names it (DirectML-style graphs).
    positionIds: i.position_ids,
    pastKeys: perLayer(i.past_key_names ?? d.inputs.past_key_names),
    pastValues: perLayer(i.past_value_names ?? d.inputs.past_value_names),
    logits: o.logits ?? d.outputs.logits,
    presentKeys: perLayer(o.present_key_names ?? d.outputs.present_key_names),
    presentValues: perLayer(o.present_value_names ?? d.outputs.present_value_names),
  };
}
