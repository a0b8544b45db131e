// Scheme names → recipe quantization: every documented name, suffixes, canonical duplicates, and refused names.
import { describe, expect, it } from 'vitest';
import { parseScheme, parseSchemeList, variantTarget } from '../../src/compare/schemes.js';
import { QuantSchema, TargetSchema } from '../../src/recipes/schema.js';
import { UsageError } from '../../src/util/errors.js';

describe('parseScheme', () => {
  it.each([
    ['int4-rtn', { scheme: 'int4', algo: 'rtn', block_size: 32, asym: false }],
    ['int4-hqq', { scheme: 'int4', algo: 'hqq', block_size: 32, asym: false }],
    ['int4-gptq', { scheme: 'int4', algo: 'gptq', block_size: 32, asym: false }],
    ['int4-awq', { scheme: 'int4', algo: 'awq', block_size: 32, asym: false }],
    ['int8', { scheme: 'int8', algo: 'rtn', block_size: 32, asym: false }],
    ['int8-gptq', { scheme: 'int8', algo: 'gptq', block_size: 32, asym: false }],
    ['ternary', { scheme: 'ternary', algo: 'rtn', block_size: 32, asym: false }],
    ['int4-rtn-b64', { scheme: 'int4', algo: 'rtn', block_size: 64, asym: false }],
    ['int4-asym', { scheme: 'int4', algo: 'rtn', block_size: 32, asym: true }],
    ['int4-gptq-b128-asym', { scheme: 'int4', algo: 'gptq', block_size: 128, asym: true }],
    ['int4-asym-b16', { scheme: 'int4', algo: 'rtn', block_size: 16, asym: true }],
    [' INT8-B256 ', { scheme: 'int8', algo: 'rtn', block_size: 256, asym: false }],
  ])('%s', (name, quant) => {
    const s = parseScheme(name);
    expect(s.quant).toEqual(quant);
    expect(s.name).toBe(name.trim().toLowerCase());
    // What it produces is a valid recipe quantization.
    expect(() => QuantSchema.parse(s.quant)).not.toThrow();
  });

  it('baselines: none keeps the target precision, fp32/fp16 set it', () => {
    expect(parseScheme('none')).toEqual({ name: 'none', canonical: 'none', quant: null, precision: undefined });
    expect(parseScheme('fp32')).toMatchObject({ quant: null, precision: 'fp32' });
    expect(parseScheme('fp16')).toMatchObject({ quant: null, precision: 'fp16' });
  });

  it.each([
    ['int3', /unknown scheme int3/],
    ['int4-foo', /unknown part "foo"/],
    ['int4-b48', /block size 48 is not a power of two/],
    ['int4-b512', /block size 512/],
    ['int4-b8', /block size 8/],
    ['int4-b64-b32', /block size is given twice/],
    ['int4-asym-asym', /-asym is given twice/],
    ['int4-b64-gptq', /must follow the scheme directly/],
    ['ternary-asym', /fixed zero point/],
    ['fp32-b64', /takes no suffixes/],
    ['int4_rtn', /only letters, digits/],
    ['', /only letters, digits/],
  ])('refuses %j', (name, why) => {
    let err: unknown;
    try {
      parseScheme(name);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).code).toBe('COMPARE_SCHEME');
    expect((err as UsageError).message).toMatch(why);
    expect((err as UsageError).exitCode).toBe(2);
  });
});

describe('parseSchemeList', () => {
  it('splits commas across several flags, in order', () => {
    expect(parseSchemeList(['int4-rtn,int8', ' ternary ,fp32']).map((s) => s.name)).toEqual(['int4-rtn', 'int8', 'ternary', 'fp32']);
    expect(parseSchemeList('int4-hqq').map((s) => s.name)).toEqual(['int4-hqq']);
  });

  it('refuses two spellings of one build and an empty list', () => {
    expect(() => parseSchemeList('int8,int8-rtn-b32')).toThrow(/"int8" and "int8-rtn-b32" are the same build/);
    expect(() => parseSchemeList('int4-rtn,int4')).toThrow(/same build/);
    expect(() => parseSchemeList(' , ')).toThrow(/no schemes/);
  });
});

describe('variantTarget', () => {
  const base = TargetSchema.parse({
    target: 'mobile',
    quant: { scheme: 'int4', algo: 'rtn', block_size: 64, accuracy_level: 4, embeddings: 'all', exclude: ['/lm_head/*'] },
    gates: { ppl_delta_pct: 5 },
    size_budget_mb: 4,
  });

  it("puts the scheme over the recipe's quantization and drops gates and the size budget", () => {
    const t = variantTarget(base, parseScheme('int8-gptq'));
    expect(t).toEqual({
      target: 'mobile',
      quant: { ...base.quant, scheme: 'int8', algo: 'gptq', block_size: 32, asym: false },
    });
    expect(() => TargetSchema.parse(t)).not.toThrow();
  });

  it('the baseline is scheme none; fp16 sets the precision', () => {
    expect(variantTarget(base, parseScheme('none')).quant?.scheme).toBe('none');
    expect(variantTarget(base, parseScheme('fp16'))).toMatchObject({ precision: 'fp16', quant: { scheme: 'none' } });
    // A target without quant options gets the defaults under the scheme.
    expect(variantTarget({ target: 'cpu' }, parseScheme('ternary')).quant).toMatchObject({ scheme: 'ternary', embeddings: 'tied', exclude: [] });
  });
});
