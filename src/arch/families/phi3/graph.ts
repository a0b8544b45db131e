// Phi3ForCausalLM's graph: RMSNorm, packed qkv_proj and gate_up_proj, SiLU-gated MLP, no biases; layer norms fused
// with the residual adds (SkipSimplifiedLayerNormalization) as onnxruntime-genai lays them out.
import { rmsNorm, skipRmsNorm } from '../../../graph/norms.js';
import { siluGatedMlp } from '../../../graph/mlp.js';
import { linearWeight, plainWeight } from '../../../graph/weights.js';
import { weightName } from '../../../graph/linear.js';
import { attentionBlock, embedding, lmHead, prologue } from '../../blocks.js';
import type { BuildContext } from '../../types.js';

/** Adds the Phi-3 decoder to ctx.b: RMSNorm, packed qkv_proj, SiLU-gated MLP from packed gate_up_proj, no biases. */
export function buildPhi3(ctx: BuildContext): void {
  const { b, config: c, tensors: t, src, dtype } = ctx;
  const pro = prologue(ctx);
  const q = c.numHeads * c.headSize;
  const kv = c.kvHeads * c.headSize;
  const I = c.intermediateSize;
  const norm = (i: number, role: string, location: string) =>
    b.initializer(plainWeight(src, `model.layers.${i}.${location}.weight`, [{ tensor: t.get(role, i) }], dtype));

  const x0 = embedding(ctx, pro.io.inputIds);
  let residual = x0;
  let skip: string | undefined;
  for (let i = 0; i < c.numLayers; i++) {
    const inW = norm(i, 'input_norm', 'input_layernorm');
    const inBase = `/model/layers.${i}/input_layernorm`;
    const n1 = skip === undefined ? rmsNorm(b, inBase, residual, inW, c.normEps) : skipRmsNorm(b, inBase, residual, skip, inW, c.normEps);
    residual = n1.residual ?? residual;

    const qkv = t.get('attn.qkv', i);
    const attn = attentionBlock(
      ctx,
      pro,
      i,
      n1.output,
      { q: [{ tensor: qkv, rows: [0, q] }], k: [{ tensor: qkv, rows: [q, q + kv] }], v: [{ tensor: qkv, rows: [q + kv, q + 2 * kv] }] },
      { weight: [{ tensor: t.get('attn.o', i) }] },
    );

    const postW = norm(i, 'post_attn_norm', 'post_attention_layernorm');
    const n2 = skipRmsNorm(b, `/model/layers.${i}/post_attention_layernorm`, residual, attn, postW, c.normEps);
    residual = n2.residual!;

    const base = `/model/layers.${i}/mlp`;
    const gu = t.get('mlp.gate_up', i);
    const w = (name: string, rows?: [number, number]) =>
      b.initializer(linearWeight(src, weightName(`${base}/${name}/MatMul`, 'weight'), [{ tensor: name === 'down_proj' ? t.get('mlp.down', i) : gu, rows }], dtype));
    skip = siluGatedMlp(b, base, n2.output, { gate: w('gate_proj', [0, I]), up: w('up_proj', [I, 2 * I]), down: w('down_proj') });
  }
  const last = `/model/layers.${c.numLayers}/final_norm_layernorm`;
  const fW = b.initializer(plainWeight(src, `model.layers.${c.numLayers}.final_norm_layernorm.weight`, [{ tensor: t.get('final_norm') }], dtype));
  const fin = skipRmsNorm(b, last, residual, skip!, fW, c.normEps, true);
  lmHead(ctx, fin.output, pro.io);
}
