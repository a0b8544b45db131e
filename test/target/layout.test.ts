// Targets as values: each carries its execution-provider facts; graph layouts key the stages before packaging; a
// precision the execution provider cannot run is refused by the plan, before any stage.
import { describe, expect, it } from 'vitest';
import { targetPlan } from '../../src/recipes/target-plan.js';
import { parseRecipe } from '../../src/recipes/load.js';
import { getTarget, targetForExecutionProvider, TARGETS } from '../../src/target/index.js';
import { graphLayout, layoutId, layoutProblem } from '../../src/target/layout.js';
import { activationTypeProblem } from '../../src/target/ops.js';
import { UsageError } from '../../src/util/errors.js';

describe('targets carry their execution-provider facts', () => {
  it('provider, device, onnxruntime-genai build, builder -e, pre-optimisation', () => {
    expect(TARGETS.map((t) => [t.id, t.executionProvider, t.device, t.genaiPackage, t.genaiBuilderEp, t.preOptimized])).toEqual([
      ['cpu', 'CPUExecutionProvider', 'cpu', 'onnxruntime-genai', 'cpu', false],
      ['cuda', 'CUDAExecutionProvider', 'gpu', 'onnxruntime-genai-cuda', 'cuda', false],
      ['dml', 'DmlExecutionProvider', 'gpu', 'onnxruntime-genai-directml', 'dml', false],
      ['mobile', 'CPUExecutionProvider', 'cpu', 'onnxruntime-genai', 'cpu', true],
    ]);
    // Where targets share an execution provider, the first registered one stands for it.
    expect(targetForExecutionProvider('CPUExecutionProvider')?.id).toBe('cpu');
    expect(targetForExecutionProvider('OpenVINOExecutionProvider')).toBeUndefined();
  });
});

describe('graph layouts', () => {
  it('a layout is the attention form and activation dtype: cpu-fp16 and cuda share one, cpu and mobile another', () => {
    const id = (t: string, p?: 'fp32' | 'fp16') => layoutId(graphLayout(getTarget(t), p));
    expect(id('cpu', 'fp16')).toBe('gqa-packed-fp16');
    expect(id('cpu', 'fp16')).toBe(id('cuda'));
    expect(id('cpu')).toBe(id('mobile'));
    expect(id('dml')).toBe('dml-fp16');
  });

  it('cpu runs fp16 graphs (float16 kernels, Casts around FastGelu); CUDA has no float32 GroupQueryAttention', () => {
    expect(layoutProblem(getTarget('cpu'), graphLayout(getTarget('cpu'), 'fp16'))).toBeUndefined();
    expect(layoutProblem(getTarget('mobile'), graphLayout(getTarget('mobile'), 'fp16'))).toBeUndefined();
    expect(layoutProblem(getTarget('dml'), graphLayout(getTarget('dml'), 'fp32'))).toBeUndefined();
    expect(activationTypeProblem('CPUExecutionProvider', 'com.microsoft', 'FastGelu', 'float16')).toBeUndefined();
    expect(activationTypeProblem('CUDAExecutionProvider', 'com.microsoft', 'GroupQueryAttention', 'float')).toBe(
      'has no float32 kernel on CUDAExecutionProvider (it takes bfloat16, float16)',
    );
    expect(layoutProblem(getTarget('cuda'), graphLayout(getTarget('cuda'), 'fp32'))).toMatch(/GroupQueryAttention, which every gqa-packed-fp32 graph holds, has no float32 kernel/);
  });

  it('the plan carries the layout and refuses what the execution provider cannot run, naming the precisions it can', () => {
    const recipe = parseRecipe({ source: { synth: { preset: 'phi-4-mini' } }, targets: [{ target: 'cpu', precision: 'fp16' }, { target: 'cuda', precision: 'fp32' }] }, 'r.json', 'r');
    expect(layoutId(targetPlan(recipe.targets[0], recipe).layout)).toBe('gqa-packed-fp16');
    const e = (() => {
      try {
        targetPlan(recipe.targets[1], recipe);
      } catch (x) {
        return x;
      }
    })() as UsageError;
    expect(e).toBeInstanceOf(UsageError);
    expect(e).toMatchObject({ code: 'TARGET_PRECISION_UNSUPPORTED', exitCode: 2, fix: expect.stringMatching(/^build cuda at fp16/) });
  });
});
