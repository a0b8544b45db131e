// Which ops each target's execution provider runs, and with which float types, for the com.microsoft contrib ops
// our builders, passes and onnxruntime's basic optimizer emit (and those external builders commonly emit).
//
// Source: onnxruntime docs/OperatorKernels.md (kernels registered per EP, generated from the registrations):
// - CPU:  GroupQueryAttention T ∈ {float, float16}; MatMulNBits T1 ∈ {float, float16}; GatherBlockQuantized T2 ∈ {float,
//         float16}; RotaryEmbedding T ∈ {float, float16}; FastGelu, Gelu, QuickGelu, BiasGelu, MultiHeadAttention,
//         FusedMatMul float only; no BiasAdd kernel.
// - CUDA: GroupQueryAttention T ∈ {bfloat16, float16} — no float32 kernel, so a CUDA package needs fp16/bf16 activations.
// - DML:  no GatherBlockQuantized kernel; GroupQueryAttention, MatMulNBits, RotaryEmbedding, Skip(Simplified)LayerNorm,
//         FastGelu, Gelu (com.microsoft) in float and float16. Of the ai.onnx ops our graphs use, DML has kernels for
//         all but Gelu (opset 20; the com.microsoft Gelu/FastGelu have one). DML registers an If kernel, but
//         onnxruntime-genai runs DML decoders with `ep.dml.enable_graph_capture=1` and graph capture cannot replay
//         control flow, so If/Loop/Scan are refused for dml (the builder concatenates LongRoPE caches instead).
// - mobile targets: the CPU EP of onnxruntime's Android/iOS packages, which are full builds (every CPU kernel, contrib ops
//         included); a custom reduced-op build would need these ops in its config.
// Standard (ai.onnx) ops: the CPU EP has kernels for the whole default opset, and CUDA for every op our graphs use;
// only the refusals listed per execution provider below apply. Other domains are refused.
import type { ExecutionProvider } from './types.js';

const MS = 'com.microsoft';

export type FloatTypeName = 'float' | 'float16' | 'bfloat16' | 'double';

const F = ['float'] as const;
const F_H = ['float', 'float16'] as const;
const D_F_H = ['double', 'float', 'float16'] as const;
const H_BF = ['bfloat16', 'float16'] as const;
const F_H_BF = ['bfloat16', 'float', 'float16'] as const;
const D_F_H_BF = ['bfloat16', 'double', 'float', 'float16'] as const;

/** com.microsoft op → float types of its activation type parameter (T; T1 for MatMulNBits, T2 for GatherBlockQuantized). */
type ContribTable = Readonly<Record<string, readonly FloatTypeName[]>>;

const CPU_CONTRIB: ContribTable = {
  GroupQueryAttention: F_H,
  RotaryEmbedding: F_H,
  SkipSimplifiedLayerNormalization: D_F_H,
  SkipLayerNormalization: D_F_H,
  MatMulNBits: F_H,
  GatherBlockQuantized: F_H,
  SparseAttention: F_H,
  MultiHeadAttention: F,
  FastGelu: F,
  Gelu: F,
  QuickGelu: F,
  BiasGelu: F,
  FusedMatMul: F,
};

const CUDA_CONTRIB: ContribTable = {
  GroupQueryAttention: H_BF,
  RotaryEmbedding: F_H_BF,
  SkipSimplifiedLayerNormalization: F_H_BF,
  SkipLayerNormalization: F_H_BF,
  MatMulNBits: F_H_BF,
  GatherBlockQuantized: F_H_BF,
  SparseAttention: H_BF,
  MultiHeadAttention: F_H_BF,
  FastGelu: D_F_H_BF,
  Gelu: D_F_H_BF,
  QuickGelu: D_F_H_BF,
  BiasGelu: D_F_H_BF,
  BiasAdd: F_H,
  FusedMatMul: D_F_H_BF,
};

const DML_CONTRIB: ContribTable = {
  GroupQueryAttention: F_H,
  RotaryEmbedding: F_H,
  SkipSimplifiedLayerNormalization: F_H,
  SkipLayerNormalization: F_H,
  MatMulNBits: F_H,
  MultiHeadAttention: F_H,
  FastGelu: F_H,
  Gelu: F_H,
  QuickGelu: F_H,
  BiasGelu: F_H,
  BiasAdd: F_H,
  FusedMatMul: F_H,
};

export interface OpSupport {
  /** com.microsoft ops with a kernel on this EP, with their activation float types. */
  contrib: ContribTable;
  /** Standard ops this EP refuses, with why. */
  refusedOnnx: Readonly<Record<string, string>>;
  /**
   * The EP runs a float16 node it has only a float kernel for in float, between Casts it inserts itself
   * (onnxruntime's InsertCastTransformer, which runs at every optimization level). True of the CPU EP: measured here
   * with onnxruntime-node 1.30, fp16 graphs of every preset (FastGelu included) load and run on it.
   */
  castsFloat16ToFloat: boolean;
}

export const OP_SUPPORT: Readonly<Record<ExecutionProvider, OpSupport>> = {
  CPUExecutionProvider: { contrib: CPU_CONTRIB, refusedOnnx: {}, castsFloat16ToFloat: true },
  CUDAExecutionProvider: { contrib: CUDA_CONTRIB, refusedOnnx: {}, castsFloat16ToFloat: false },
  DmlExecutionProvider: {
    contrib: DML_CONTRIB,
    castsFloat16ToFloat: false,
    refusedOnnx: {
      If: 'onnxruntime-genai captures the DML graph, and graph capture cannot replay control flow',
      Loop: 'onnxruntime-genai captures the DML graph, and graph capture cannot replay control flow',
      Scan: 'onnxruntime-genai captures the DML graph, and graph capture cannot replay control flow',
      Gelu: 'DirectML has no kernel for the opset-20 Gelu (use com.microsoft Gelu or FastGelu)',
    },
  },
};

/** The contrib ops our own builders and passes emit (every target but dml runs all of them). */
export const CONTRIB_OPS = [
  'GroupQueryAttention',
  'RotaryEmbedding',
  'SkipSimplifiedLayerNormalization',
  'SkipLayerNormalization',
  'MatMulNBits',
  'GatherBlockQuantized',
  'FastGelu',
] as const;

function isOnnxDomain(domain: string): boolean {
  return domain === '' || domain === 'ai.onnx';
}

export function supportsOpOn(ep: ExecutionProvider, domain: string, opType: string): boolean {
  return unsupportedReason(ep, domain, opType) === undefined;
}

/** Why the execution provider cannot run the op, or undefined when it can. */
export function unsupportedReason(ep: ExecutionProvider, domain: string, opType: string): string | undefined {
  const s = OP_SUPPORT[ep];
  if (isOnnxDomain(domain)) return s.refusedOnnx[opType];
  if (domain === MS) return Object.hasOwn(s.contrib, opType) ? undefined : `no ${MS}.${opType} kernel on this execution provider`;
  return `ops of domain '${domain}' are not known to run on this execution provider`;
}

/**
 * Float types the op's activation type parameter takes on the target's EP, for the contrib ops listed above;
 * undefined when the op is standard or unknown (standard ops have fp32 and fp16 kernels on every GPU EP, and the CPU
 * EP inserts casts around fp16 nodes it only has fp32 kernels for).
 */
export function activationTypesOn(ep: ExecutionProvider, domain: string, opType: string): readonly FloatTypeName[] | undefined {
  if (domain !== MS) return undefined;
  const c = OP_SUPPORT[ep].contrib;
  return Object.hasOwn(c, opType) ? c[opType] : undefined;
}

/**
 * Why the execution provider cannot run the op with `activation` tensors (a kernel of another float type only, and
 * no casts inserted for it), or undefined when it can or the op's types are not listed here.
 */
export function activationTypeProblem(ep: ExecutionProvider, domain: string, opType: string, activation: FloatTypeName): string | undefined {
  const types = activationTypesOn(ep, domain, opType);
  if (!types || types.includes(activation)) return undefined;
  if (activation === 'float16' && types.includes('float') && OP_SUPPORT[ep].castsFloat16ToFloat) return undefined;
  const shown = (t: FloatTypeName) => (t === 'float' ? 'float32' : t);
  return `has no ${shown(activation)} kernel on ${ep} (it takes ${types.map(shown).join(', ')})`;
}
