import { describe, expect, it } from 'vitest';
import { planWindows } from '../../src/eval/windows.js';
import { EvalError } from '../../src/util/errors.js';

/**
 * transformers' "perplexity of fixed-length models" loop, transcribed literally: labels masked to −100 except the
 * last trg_len of each window, then shifted by one inside the model. Returns, per scored global position, the
 * window start it was scored in.
 */
function hfScoredPositions(seqLen: number, maxLength: number, stride: number): Map<number, number> {
  const scored = new Map<number, number>();
  let prevEnd = 0;
  for (let begin = 0; begin < seqLen; begin += stride) {
    const end = Math.min(begin + maxLength, seqLen);
    const trgLen = end - prevEnd;
    const len = end - begin;
    const labels = Array.from({ length: len }, (_, j) => begin + j);
    const masked = labels.map((p, j) => (j < len - trgLen ? -100 : p));
    // Causal LM loss: logits[:-1] predict labels[1:].
    for (const p of masked.slice(1)) {
      if (p === -100) continue;
      expect(scored.has(p)).toBe(false);
      scored.set(p, begin);
    }
    prevEnd = end;
    if (end === seqLen) break;
  }
  return scored;
}

function ourScoredPositions(seqLen: number, maxLength: number, stride: number): Map<number, number> {
  const scored = new Map<number, number>();
  for (const w of planWindows(seqLen, { maxLength, stride })) {
    expect(w.end - w.begin).toBeLessThanOrEqual(maxLength);
    for (let p = w.scoreFrom; p < w.end; p++) {
      expect(scored.has(p)).toBe(false);
      scored.set(p, w.begin);
    }
  }
  return scored;
}

describe('planWindows', () => {
  it('lays out the example by hand', () => {
    expect(planWindows(10, { maxLength: 4, stride: 2 })).toEqual([
      { begin: 0, end: 4, scoreFrom: 1 },
      { begin: 2, end: 6, scoreFrom: 4 },
      { begin: 4, end: 8, scoreFrom: 6 },
      { begin: 6, end: 10, scoreFrom: 8 },
    ]);
    expect(planWindows(5, { maxLength: 8, stride: 4 })).toEqual([{ begin: 0, end: 5, scoreFrom: 1 }]);
    expect(planWindows(9, { maxLength: 4, stride: 3 })).toEqual([
      { begin: 0, end: 4, scoreFrom: 1 },
      { begin: 3, end: 7, scoreFrom: 4 },
      { begin: 6, end: 9, scoreFrom: 7 },
    ]);
  });

  it('scores the same positions with the same context start as the transformers loop', () => {
    for (const [len, max, stride] of [
      [10, 4, 2],
      [37, 8, 3],
      [64, 16, 15],
      [65, 16, 8],
      [100, 32, 1],
      [7, 7, 6],
      [2, 2, 1],
    ]) {
      const ours = ourScoredPositions(len, max, stride);
      const hf = hfScoredPositions(len, max, stride);
      expect([...ours.entries()].sort((a, b) => a[0] - b[0])).toEqual([...hf.entries()].sort((a, b) => a[0] - b[0]));
      // Every position after the first is scored.
      expect(ours.size).toBe(len - 1);
    }
  });

  it('has nothing to score in sequences shorter than two tokens', () => {
    expect(planWindows(0, { maxLength: 4, stride: 2 })).toEqual([]);
    expect(planWindows(1, { maxLength: 4, stride: 2 })).toEqual([]);
  });

  it('rejects disjoint windows: the transformers loop would leave each later window\'s first token unscored', () => {
    const hf = hfScoredPositions(64, 16, 16);
    expect(hf.size).toBe(63 - 3);
    expect([16, 32, 48].some((p) => hf.has(p))).toBe(false);
    expect(() => planWindows(64, { maxLength: 16, stride: 16 })).toThrow(/stride/);
  });

  it('rejects strides that would skip tokens and windows too short to score', () => {
    expect(() => planWindows(10, { maxLength: 4, stride: 5 })).toThrow(EvalError);
    expect(() => planWindows(10, { maxLength: 4, stride: 0 })).toThrow(/stride/);
    expect(() => planWindows(10, { maxLength: 1, stride: 1 })).toThrow(/max-length/);
  });
});
