// PhiForCausalLM's graph: LayerNorm with bias, attention and MLP in parallel off one norm, partial rotary, gelu_new,
// biases everywhere; q/k/v are packed into one MatMul (weights and biases) for GroupQueryAttention.
import { geluMlp } from '../../../graph/mlp.js';
import { layerNorm, skipLayerNorm } from '../../../graph/norms.js';
import { linearWeight, plainWeight } from '../../../graph/weights.js';
import { weightName } from '../../../graph/linear.js';
import { attentionBlock, embedding, lmHead, prologue } from '../../blocks.js';
import type { BuildContext } from '../../types.js';

/** Adds the Phi-1/1.5/2 decoder to ctx.b: attention and MLP in parallel off one LayerNorm, biases everywhere. */
export function buildPhi(ctx: BuildContext): void {
  const { b, config: c, tensors: t, src, dtype } = ctx;
  const pro = prologue(ctx);
  const vec = (name: string, role: string, layer?: number) => b.initializer(plainWeight(src, name, [{ tensor: t.get(role, layer) }], dtype));
  const mat = (path: string, role: string, layer: number) => b.initializer(linearWeight(src, weightName(`${path}/MatMul`, 'weight'), [{ tensor: t.get(role, layer) }], dtype));

  // Layer i normalises root + skip, where skip is the previous layer's attention + MLP sum: the residual stream.
  let root = embedding(ctx, pro.io.inputIds);
  let skip: string | undefined;
  for (let i = 0; i < c.numLayers; i++) {
    const base = `/model/layers.${i}/input_layernorm`;
    const w = vec(`model.layers.${i}.input_layernorm.weight`, 'norm.weight', i);
    const bias = vec(`model.layers.${i}.input_layernorm.bias`, 'norm.bias', i);
    const n = skip === undefined ? layerNorm(b, base, root, w, bias, c.normEps) : skipLayerNorm(b, base, root, skip, w, bias, c.normEps);
    root = n.residual ?? root;

    const s = (role: string) => [{ tensor: t.get(role, i) }];
    const attn = attentionBlock(
      ctx,
      pro,
      i,
      n.output,
      { q: s('attn.q'), k: s('attn.k'), v: s('attn.v'), qBias: s('attn.q.bias'), kBias: s('attn.k.bias'), vBias: s('attn.v.bias') },
      { weight: s('attn.o'), bias: s('attn.o.bias') },
    );
    const mlpBase = `/model/layers.${i}/mlp`;
    const mlp = geluMlp(b, mlpBase, n.output, {
      fc1: mat(`${mlpBase}/fc1`, 'mlp.fc1', i),
      fc1Bias: vec(weightName(`${mlpBase}/fc1/Add`, 'bias'), 'mlp.fc1.bias', i),
      fc2: mat(`${mlpBase}/fc2`, 'mlp.fc2', i),
      fc2Bias: vec(weightName(`${mlpBase}/fc2/Add`, 'bias'), 'mlp.fc2.bias', i),
    });
    skip = b.op1('Add', `/model/layers.${i}/residual_add/Add`, [attn, mlp]);
  }
  const fin = skipLayerNorm(
    b,
    `/model/layers.${c.numLayers}/final_norm_layernorm`,
    root,
    skip!,
    vec(`model.layers.${c.numLayers}.final_norm_layernorm.weight`, 'final_norm.weight'),
    vec(`model.layers.${c.numLayers}.final_norm_layernorm.bias`, 'final_norm.bias'),
    c.normEps,
    true,
  );
  // transformers saves lm_head.bias (an nn.Linear with bias); a checkpoint without it gets a plain MatMul head.
  lmHead(ctx, fin.output, pro.io, t.has('lm_head.bias') ? [{ tensor: t.get('lm_head.bias') }] : undefined);
}
