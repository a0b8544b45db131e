import { describe, expect, it } from 'vitest';
import { DataType } from '../../src/onnx/dtype.js';
import { getTarget, TARGET_IDS } from '../../src/target/index.js';
import { UsageError } from '../../src/util/errors.js';

describe('targets', () => {
  it('cpu and mobile are fp32 packed GQA with int8-activation int4; cuda and dml are fp16', () => {
    expect(TARGET_IDS).toEqual(['cpu', 'cuda', 'dml', 'mobile']);
    const t = (id: string) => getTarget(id);
    expect([t('cpu').activationDtype, t('cpu').graph, t('cpu').quant.accuracyLevel]).toEqual([DataType.FLOAT, 'gqa-packed', 4]);
    expect([t('mobile').activationDtype, t('mobile').graph, t('mobile').quant.accuracyLevel]).toEqual([DataType.FLOAT, 'gqa-packed', 4]);
    expect([t('cuda').activationDtype, t('cuda').graph]).toEqual([DataType.FLOAT16, 'gqa-packed']);
    expect([t('dml').activationDtype, t('dml').graph]).toEqual([DataType.FLOAT16, 'dml']);
  });

  it('DirectML runs no If and no quantized gather; the others run every op the builder emits', () => {
    expect(getTarget('dml').supportsOp('', 'If')).toBe(false);
    expect(getTarget('dml').supportsOp('com.microsoft', 'GatherBlockQuantized')).toBe(false);
    expect(getTarget('dml').supportsOp('com.microsoft', 'RotaryEmbedding')).toBe(true);
    for (const id of ['cpu', 'cuda', 'mobile']) {
      expect(getTarget(id).supportsOp('', 'If')).toBe(true);
      expect(getTarget(id).supportsOp('com.microsoft', 'GroupQueryAttention')).toBe(true);
      expect(getTarget(id).supportsOp('com.microsoft', 'MatMulNBits')).toBe(true);
    }
    expect(getTarget('cpu').supportsOp('com.example', 'Custom')).toBe(false);
  });

  it('an unknown target is a usage error listing the known ones', () => {
    expect(() => getTarget('webgpu')).toThrow(UsageError);
    expect(() => getTarget('webgpu')).toThrow(/cpu, cuda, dml, mobile/);
  });
});
