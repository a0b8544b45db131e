import { Tokenizer } from '@huggingface/tokenizers';
import { describe, expect, it } from 'vitest';
import {
  TINY_TOKENIZER_VOCAB_SIZE,
  tinyTokenizerFiles,
  tinyTokenizerSpecialIds,
} from '../../src/checkpoint/tiny-tokenizer.js';

function load() {
  const files = tinyTokenizerFiles();
  return { files, tok: new Tokenizer(JSON.parse(files['tokenizer.json']), JSON.parse(files['tokenizer_config.json'])) };
}

describe('tiny tokenizer (embedded default)', () => {
  it('is deterministic and fills exactly the model vocabulary', () => {
    expect(tinyTokenizerFiles()).toEqual(tinyTokenizerFiles());
    const { files } = load();
    const json = JSON.parse(files['tokenizer.json']);
    const ids = [...Object.values(json.model.vocab as Record<string, number>), ...json.added_tokens.map((t: { id: number }) => t.id)];
    expect(new Set(ids).size).toBe(TINY_TOKENIZER_VOCAB_SIZE);
    expect(Math.max(...ids)).toBe(TINY_TOKENIZER_VOCAB_SIZE - 1);
    expect(json.model.merges.length).toBeGreaterThan(100);
  });

  it('round-trips text through the real tokenizers library, with BOS and byte fallback', () => {
    const { tok } = load();
    for (const text of ['Once upon a time the robot said hello.', 'Zebras quizzed 99 jumping fjords — déjà vu! 🤖']) {
      const { ids } = tok.encode(text);
      expect(ids[0]).toBe(1);
      expect(ids.every((i: number) => i >= 0 && i < TINY_TOKENIZER_VOCAB_SIZE)).toBe(true);
      expect(tok.decode(ids, { skip_special_tokens: true })).toBe(text);
    }
    // learned merges make common words short: far fewer tokens than characters
    expect(tok.encode('the robot and the cat').ids.length).toBeLessThan(12);
    // unseen characters fall back to bytes (<0xF0> is id 3 + 0xF0), not <unk>
    const emoji = tok.encode('🤖', { add_special_tokens: false }).ids;
    expect(emoji).not.toContain(0);
    expect(emoji).toContain(3 + 0xf0);
  });

  it('keeps chat special tokens whole', () => {
    const { tok } = load();
    const special = tinyTokenizerSpecialIds();
    const ids = tok.encode('<|user|>\nhi<|end|>', { add_special_tokens: false }).ids;
    expect(ids[0]).toBe(special.end + 1);
    expect(ids).toContain(special.end);
    expect(tok.decode([special.eos])).toBe('<|endoftext|>');
  });
});
