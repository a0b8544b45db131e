// Speed measurement on a tiny decoder in onnxruntime-node: the runs asked for happen, tokens/s follow from the
// median run, a short context shrinks both parts, bad options and an aborted signal are refused. No timing bounds.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { measureSpeed, median } from '../../src/compare/speed.js';
import { EvalError } from '../../src/util/errors.js';
import { writeTinyDecoder } from '../helpers/runtime.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'phi-forge-compare-speed-'));
  await writeTinyDecoder(join(dir, 'ctx64'), { contextLength: 64 });
  await writeTinyDecoder(join(dir, 'ctx16'), { contextLength: 16 });
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('median', () => {
  it('odd, even, unsorted, empty', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([5])).toBe(5);
    expect(median([])).toBeNaN();
  });
});

describe('measureSpeed', () => {
  it('times N runs after the warm-up; tokens/s = tokens / median time', async () => {
    const r = await measureSpeed(join(dir, 'ctx64'), { prefillTokens: 12, decodeTokens: 5, runs: 3, warmup: 1 });
    expect(r).toMatchObject({ prefill_tokens: 12, decode_tokens: 5, runs: 3, warmup: 1 });
    expect(r.prefill_ms).toHaveLength(3);
    expect(r.decode_ms).toHaveLength(3);
    for (const ms of [...r.prefill_ms, ...r.decode_ms]) expect(ms).toBeGreaterThan(0);
    // The reported times are rounded to 0.1 µs: agree to within 1%.
    const rel = (a: number, b: number) => Math.abs(a - b) / b;
    expect(rel(r.prefill_tokens_per_s, 12 / (median(r.prefill_ms) / 1000))).toBeLessThan(0.01);
    expect(rel(r.decode_tokens_per_s, 5 / (median(r.decode_ms) / 1000))).toBeLessThan(0.01);
  });

  it('shrinks prefill and decode in proportion to fit a short context', async () => {
    // 64 + 32 tokens into 16 positions: 10 prompt tokens, 6 decode steps (the last step fills position 15).
    const r = await measureSpeed(join(dir, 'ctx16'), { runs: 1, warmup: 0 });
    expect([r.prefill_tokens, r.decode_tokens]).toEqual([10, 6]);
  });

  it('refuses nonsense options and stops on an aborted signal', async () => {
    await expect(measureSpeed(join(dir, 'ctx64'), { runs: 0 })).rejects.toBeInstanceOf(EvalError);
    await expect(measureSpeed(join(dir, 'ctx64'), { decodeTokens: 1.5 })).rejects.toThrow(/decodeTokens must be an integer/);
    const c = new AbortController();
    c.abort(new Error('stop now'));
    await expect(measureSpeed(join(dir, 'ctx64'), { signal: c.signal, runs: 1 })).rejects.toThrow('stop now');
  });
});
