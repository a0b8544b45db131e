// MLP builders: the SiLU-gated MLP of Phi-3/Phi-4 and the fc1 → gelu_new → fc2 MLP of Phi-1/1.5/2.
import { MS_DOMAIN, type GraphBuilder } from './builder.js';
import { linear } from './linear.js';

export interface GatedMlpWeights {
  gate: string;
  up: string;
  down: string;
}

/**
 * ```
 *        x
 *      /   \
 *  gate_proj  up_proj
 *     |   \      |
 *  Sigmoid |     |
 *      \  /      |
 *  act_fn/Mul    |
 *        \      /
 *        mlp/Mul
 *           |
 *       down_proj ─▶
 * ```
 * down(silu(gate(x)) · up(x)); `base` is `/model/layers.<i>/mlp`.
 */
export function siluGatedMlp(b: GraphBuilder, base: string, x: string, w: GatedMlpWeights): string {
  const gate = linear(b, `${base}/gate_proj`, x, w.gate);
  const up = linear(b, `${base}/up_proj`, x, w.up);
  const sig = b.op1('Sigmoid', `${base}/act_fn/Sigmoid`, [gate]);
  const act = b.op1('Mul', `${base}/act_fn/Mul`, [gate, sig]);
  const prod = b.op1('Mul', `${base}/Mul`, [act, up]);
  return linear(b, `${base}/down_proj`, prod, w.down);
}

export interface FcMlpWeights {
  fc1: string;
  fc1Bias: string;
  fc2: string;
  fc2Bias: string;
}

/**
 * ```
 * x ─ fc1 (MatMul, Add) ─ FastGelu ─ fc2 (MatMul, Add) ─▶
 * ```
 * gelu_new is exactly the tanh approximation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), which is what
 * com.microsoft FastGelu computes. As in onnxruntime-genai's graphs, FastGelu rather than opset-20 Gelu: every
 * execution provider we target has it (DirectML has no opset-20 Gelu kernel).
 */
export function geluMlp(b: GraphBuilder, base: string, x: string, w: FcMlpWeights): string {
  const h = linear(b, `${base}/fc1`, x, w.fc1, { bias: w.fc1Bias });
  const act = b.op1('FastGelu', `${base}/act_fn/FastGelu`, [h], { domain: MS_DOMAIN });
  return linear(b, `${base}/fc2`, act, w.fc2, { bias: w.fc2Bias });
}
