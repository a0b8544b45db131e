// Turns generated token ids into text pieces as they arrive, without splitting a multi-byte character.
import type { DecodeOptions, Tokenizer } from './tokenizer.js';

/**
 * Decoding one token at a time is wrong for SentencePiece (a lone '▁Hello' decodes without its space) and for
 * byte-fallback tokens (one byte of a UTF-8 sequence decodes to U+FFFD). So the whole sequence is decoded each
 * time and only the new suffix is emitted; text ending in U+FFFD is held back until the character completes.
 */
export class TextStreamer {
  private readonly ids: number[] = [];
  private emitted = 0;

  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly opts: DecodeOptions = { skipSpecialTokens: true },
  ) {}

  /** Adds one token; returns the text that became final (possibly ''). */
  push(id: number): string {
    this.ids.push(id);
    const text = this.tokenizer.decode(this.ids, this.opts);
    if (text.endsWith('\uFFFD')) return '';
    return this.take(text);
  }

  /** Everything not emitted yet, incomplete characters included (call once at the end). */
  flush(): string {
    return this.take(this.tokenizer.decode(this.ids, this.opts));
  }

  /** The full decoded text so far. */
  get text(): string {
    return this.tokenizer.decode(this.ids, this.opts);
  }

  private take(text: string): string {
    const piece = text.length > this.emitted ? text.slice(this.emitted) : '';
    this.emitted = Math.max(this.emitted, text.length);
    return piece;
  }
}
