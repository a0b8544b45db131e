// Where long text is cut before tokenization: line breaks, then spaces, then hard cuts that keep surrogate pairs and
// added tokens whole; pieces always join back to the text and never exceed the bound.
import { describe, expect, it } from 'vitest';
import { MAX_PIECE_CHARS, textPieces } from '../../src/tokenizer/text-pieces.js';

const pieces = (text: string, maxChars: number, keep?: string[]) => [...textPieces(text, { maxChars, keep })];

function expectBounded(text: string, got: string[], maxChars: number): void {
  expect(got.join('')).toBe(text);
  for (const p of got) {
    expect(p.length).toBeGreaterThan(0);
    expect(p.length).toBeLessThanOrEqual(maxChars);
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

describe('textPieces', () => {
  it('leaves text up to the bound whole (the default bound is MAX_PIECE_CHARS)', () => {
    expect(pieces('', 8)).toEqual([]);
    expect(pieces('short', 8)).toEqual(['short']);
    expect([...textPieces('x'.repeat(MAX_PIECE_CHARS))]).toHaveLength(1);
    expect([...textPieces('x'.repeat(MAX_PIECE_CHARS + 1))]).toHaveLength(2);
  });

  it('cuts after a run of line breaks, before the next line\'s first character', () => {
    expect(pieces('aaaa\nbbbb cccc', 10)).toEqual(['aaaa\n', 'bbbb cccc']);
    expect(pieces('aa\n\n\nbbbbbbbbbb', 8)).toEqual(['aa\n\n\n', 'bbbbbbbbbb'.slice(0, 8), 'bb']);
    expect(pieces('a\r\nbbbbbbbbbbb', 6)[0]).toBe('a\r\n');
  });

  it('otherwise cuts before a single space between words, never inside a run of spaces', () => {
    expect(pieces('aaaa bbbb cccc', 10)).toEqual(['aaaa bbbb', ' cccc']);
    expect(pieces('aaaa  bbbb cccc', 12)).toEqual(['aaaa  bbbb', ' cccc']);
    expect(pieces('aaaa  bbbbbbbbbb', 8)).toEqual(['aaaa  bb', 'bbbbbbbb']);
    // An indented line is not a line-break cut (the indentation belongs to the next token), and has no single space.
    expect(pieces('aaaa\n  bbbbbbbbbb', 8)[0]).toBe('aaaa\n  b');
  });

  it('hard-cuts text without whitespace at the bound, never between the halves of a surrogate pair', () => {
    const text = 'x' + '😀'.repeat(50);
    for (const max of [2, 3, 4, 7, 16]) {
      const got = pieces(text, max);
      expectBounded(text, got, max);
      for (const p of got) expect(p).not.toMatch(LONE_SURROGATE);
    }
    expect(pieces('abcdefghij', 4)).toEqual(['abcd', 'efgh', 'ij']);
  });

  it('never cuts inside an added token, nor at a line break touching one', () => {
    const keep = ['<|end|>', '<|user|>'];
    const text = 'xxxxx<|end|>' + 'y'.repeat(20);
    const got = pieces(text, 8, keep);
    expectBounded(text, got, 8);
    expect(got).toContain('xxxxx');
    expect(got.some((p) => p.startsWith('<|end|>'))).toBe(true);
    // The line-break cut before <|user|> touches it (lstrip/rstrip would act across the cut): cut elsewhere.
    const chat = 'aaaa\n<|user|>bbbbbbbbbb';
    expect(pieces(chat, 15, keep)[0]).not.toBe('aaaa\n');
    expect(pieces(chat, 15)[0]).toBe('aaaa\n');
    // Many added tokens in a long text: every piece still holds whole tokens only.
    const many = '<|user|> hi<|end|>\n'.repeat(2000);
    const parts = pieces(many, 100, keep);
    expectBounded(many, parts, 100);
    for (const p of parts) expect(p.replace(/<\|user\|>|<\|end\|>/g, '')).not.toMatch(/[<|>]/);
  });

  it('refuses a bound below 2', () => {
    expect(() => pieces('abc', 1)).toThrow(RangeError);
    expect(() => pieces('abc', 2.5)).toThrow(RangeError);
  });
});
