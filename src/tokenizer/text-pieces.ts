// Cuts long text into pieces of bounded length for the tokenizer, so BPE never sees a multi-megabyte "word" (its
// cost and memory grow with the longest run of text it merges over: 60 MB without a space exhausted the heap).

/** Longest piece handed to the tokenizer at once: far above any ordinary paragraph, small enough for BPE to be quick. */
export const MAX_PIECE_CHARS = 8192;

export interface TextPieceOptions {
  /** Longest piece, in UTF-16 code units (default MAX_PIECE_CHARS; at least 2). */
  maxChars?: number;
  /**
   * Strings no cut may fall inside or right next to: the tokenizer's added tokens (`<|end|>`, ...), which must reach
   * it whole, and whose lstrip/rstrip eat whitespace across the cut.
   */
  keep?: readonly string[];
}

/**
 * Splits `text` into consecutive pieces of at most `maxChars` (joined, they are `text`). Where a cut is needed it
 * goes, in order of preference:
 *
 * 1. after a run of line breaks, before a character that is not whitespace (`"...end.\n|Next"`);
 * 2. before a single space between two non-space characters (`"word| next"`);
 * 3. at `maxChars`, moved back so it splits neither a surrogate pair nor an added token.
 *
 * Cuts 1 and 2 fall where the tokenizers we use always end a token (a line break is its own byte token in
 * SentencePiece-style BPE and its own pre-token in byte-level BPE; a space starts the next word), so tokenizing the
 * pieces gives the ids of the whole text; only a hard cut (3), in text with no whitespace for `maxChars`, may split
 * what one token would have covered.
 */
export function* textPieces(text: string, opts: TextPieceOptions = {}): Generator<string, void, undefined> {
  const max = opts.maxChars ?? MAX_PIECE_CHARS;
  if (!Number.isInteger(max) || max < 2) throw new RangeError(`maxChars must be an integer ≥ 2, got ${max}`);
  const keep = keptTokens(opts.keep ?? []);
  let start = 0;
  while (text.length - start > max) {
    const end = cutPoint(text, start, start + max, keep);
    yield text.slice(start, end);
    start = end;
  }
  if (start < text.length) yield text.slice(start);
}

interface KeptTokens {
  pattern: RegExp;
  longest: number;
}

function keptTokens(tokens: readonly string[]): KeptTokens | undefined {
  const list = [...new Set(tokens.filter((t) => t.length > 0))].sort((a, b) => b.length - a.length);
  if (list.length === 0) return undefined;
  const escaped = list.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return { pattern: new RegExp(escaped.join('|'), 'g'), longest: list[0].length };
}

/** A cut in (start, limit], limit < text.length. */
function cutPoint(text: string, start: number, limit: number, keep: KeptTokens | undefined): number {
  // near[c - start]: 1 when an added token touches cut c (ends at it or starts at it), 2 when it spans it.
  const near = keep ? keptTokenCuts(text, start, limit, keep) : undefined;
  const clean = (c: number) => near === undefined || near[c - start] === 0;
  for (let c = limit; c > start; c--) {
    if (text.charCodeAt(c - 1) === LF && !isSpace(text.charCodeAt(c)) && clean(c)) return c;
  }
  for (let c = limit - 1; c > start; c--) {
    if (text.charCodeAt(c) === SPACE && !isSpace(text.charCodeAt(c - 1)) && !isSpace(text.charCodeAt(c + 1)) && clean(c)) return c;
  }
  let c = limit;
  while (c > start + 1 && (splitsSurrogatePair(text, c) || (near !== undefined && near[c - start] === 2))) c--;
  return c;
}

/** For each cut start..limit, whether an occurrence of a kept token touches (1) or spans (2) it. */
function keptTokenCuts(text: string, start: number, limit: number, keep: KeptTokens): Uint8Array {
  const near = new Uint8Array(limit - start + 1);
  // Search only the stretch an occurrence touching these cuts can lie in, never the rest of a long text.
  const lo = Math.max(0, start - keep.longest);
  const stretch = text.slice(lo, Math.min(text.length, limit + keep.longest));
  const re = keep.pattern;
  re.lastIndex = 0;
  for (let m = re.exec(stretch); m !== null; m = re.exec(stretch)) {
    const from = lo + m.index;
    const to = from + m[0].length;
    for (let c = Math.max(from, start); c <= Math.min(to, limit); c++) {
      const mark = c === from || c === to ? 1 : 2;
      if (mark > near[c - start]) near[c - start] = mark;
    }
    // Overlapping occurrences too: which one the tokenizer matches is its business; no cut may break either.
    re.lastIndex = m.index + 1;
  }
  return near;
}

const LF = 0x0a;
const SPACE = 0x20;

function isSpace(code: number): boolean {
  return (
    code === SPACE ||
    (code >= 0x09 && code <= 0x0d) ||
    code === 0x85 ||
    code === 0xa0 ||
    code === 0x1680 ||
    (code >= 0x2000 && code <= 0x200a) ||
    code === 0x2028 ||
    code === 0x2029 ||
    code === 0x202f ||
    code === 0x205f ||
    code === 0x3000 ||
    code === 0xfeff
  );
}

function splitsSurrogatePair(text: string, c: number): boolean {
  const before = text.charCodeAt(c - 1);
  const after = text.charCodeAt(c);
  return before >= 0xd800 && before <= 0xdbff && after >= 0xdc00 && after <= 0xdfff;
}
