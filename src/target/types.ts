// The shape of a deployment target: what the graph looks like for it and what its genai_config says.
import type { DataType } from '../onnx/dtype.js';

export type TargetId = 'cpu' | 'cuda' | 'dml' | 'mobile';

/**
 * How attention is laid out in the graph.
 * - `gqa-packed`: one packed QKV MatMul, rotary inside GroupQueryAttention, LongRoPE caches picked by `If`. Heads or
 *   rotary dims GroupQueryAttention cannot rotate (not multiples of 16) fall back to the `dml` attention block with
 *   position ids computed from the attention mask (no `position_ids` input): see src/arch/blocks.ts rotaryPlacement.
 * - `dml`: separate q/k/v MatMuls, com.microsoft RotaryEmbedding nodes fed by a `position_ids` input, LongRoPE
 *   caches concatenated and addressed by offset position ids (DirectML runs no `If`).
 */
export type AttentionLayout = 'gqa-packed' | 'dml';

export type ActivationDtype = typeof DataType.FLOAT | typeof DataType.FLOAT16;

/** One execution provider's options as genai_config.json lists them (values are strings). */
export type ProviderOptions = Record<string, Record<string, string>>;

export interface Target {
  id: TargetId;
  /** What the target is for, for help texts and reports. */
  describe: string;
  /** Activation (and unquantized weight) dtype of this target's packages. */
  activationDtype: ActivationDtype;
  graph: AttentionLayout;
  /** `model.decoder.session_options.provider_options` of genai_config.json. */
  genaiProviderOptions: readonly ProviderOptions[];
  /** Quantization defaults: MatMulNBits accuracy_level (4 = int8 activations, what CPU kernels need to be fast). */
  quant: { accuracyLevel: 0 | 1 | 2 | 3 | 4 };
  /** Whether the target's execution provider runs this op (domain '' is the ONNX domain). */
  supportsOp(domain: string, opType: string): boolean;
}
