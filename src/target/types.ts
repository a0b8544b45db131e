// The shape of a deployment target: what the graph looks like for it, which execution provider and onnxruntime-genai
// build run it, and what its genai_config.json selects. A target is one file holding one of these (defineTarget),
// registered by one line in index.ts, which also derives `Target` and `TargetId` from the registered ones.
import type { DataType } from '../onnx/dtype.js';

export type { Target, TargetId } from './index.js';

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

/**
 * What a graph builder needs to know of where the graph runs: its attention form and activation (and unquantized
 * weight) dtype. Targets whose layouts are equal share one built graph; see layout.ts.
 */
export interface GraphLayout {
  readonly graph: AttentionLayout;
  readonly activationDtype: ActivationDtype;
}

/** One execution provider's options as genai_config.json lists them (values are strings). */
export type ProviderOptions = Record<string, Record<string, string>>;

/** onnxruntime's name of an execution provider, as sessions, model packages and Olive spell it. */
export type ExecutionProvider = 'CPUExecutionProvider' | 'CUDAExecutionProvider' | 'DmlExecutionProvider';

/** Device class of an execution provider, as onnxruntime's model-package variants and Olive's accelerators name it. */
export type ExecutionDevice = 'cpu' | 'gpu' | 'npu';

export interface TargetSpec extends GraphLayout {
  readonly id: string;
  /** What the target is for, for help texts and reports. */
  describe: string;
  /** The layout of this target's packages; `activationDtype` is the default precision (a recipe may ask for fp16 on cpu). */
  readonly graph: AttentionLayout;
  readonly activationDtype: ActivationDtype;
  /** The execution provider the target's packages run on. */
  executionProvider: ExecutionProvider;
  device: ExecutionDevice;
  /** The onnxruntime-genai distribution (pip) built for that execution provider. */
  genaiPackage: 'onnxruntime-genai' | 'onnxruntime-genai-cuda' | 'onnxruntime-genai-directml';
  /** `-e` of onnxruntime-genai's model builder for this target. */
  genaiBuilderEp: 'cpu' | 'cuda' | 'dml';
  /** `model.decoder.session_options.provider_options` of genai_config.json (none: the CPU EP). */
  genaiProviderOptions: readonly ProviderOptions[];
  /** Packages are pre-optimised offline (onnxruntime basic level) so devices load them faster. */
  preOptimized: boolean;
  /** Quantization defaults: MatMulNBits accuracy_level (4 = int8 activations, what CPU kernels need to be fast). */
  quant: { accuracyLevel: 0 | 1 | 2 | 3 | 4 };
  /** Whether the target's execution provider runs this op (domain '' is the ONNX domain). */
  supportsOp(domain: string, opType: string): boolean;
}
