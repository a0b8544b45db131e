// The embedded default's tokenizer: a small SentencePiece-style byte-fallback BPE (the same tokenizer.json shape as
// Phi-3's) trained deterministically on text carried in this module, plus a Phi-3 chat template. It lets the
// `tiny-phi` recipe build a complete package with a real tokenizer on a machine with no network and no fixtures.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-fs.js';

/** Training text: plain sentences of our own, enough to learn a few hundred merges of common English pieces. */
const CORPUS = `
Once upon a time there was a little robot named Phi. Phi lived in a small house by the sea with a cat and a dog.
Every morning the robot walked to the garden and looked at the flowers. The flowers were red, blue and yellow.
One day the cat said hello to the dog, and the dog said hello back. They played in the sun until the evening.
The sky was big and the water was bright. Phi liked to count the waves and the birds that flew over the house.
When it was time to sleep, the robot told a story about the moon and the stars, and everyone was happy.
The model turns text into numbers and numbers into text. It reads a word, thinks about the next word, and writes it.
A good tool is fast, small and honest about what it can do. We build it, we test it, and we measure it again.
She asked him what he wanted to eat, and he said he would like some bread with butter and a cup of warm milk.
They went to the park to play with a ball. The ball rolled under a tree and the children laughed and ran after it.
In the morning the town was quiet. The baker opened his shop and the smell of fresh bread filled the street.
Hello world, this is a test of the tokenizer. Numbers like 1, 2, 3, 10, 42 and 2026 are written with digits.
`;

const SPECIALS = ['<unk>', '<s>', '</s>'] as const;
/** Added tokens after the learned vocabulary, as in Phi-3 (ids follow the base vocabulary). */
const ADDED = ['<|endoftext|>', '<|assistant|>', '<|system|>', '<|end|>', '<|user|>'] as const;

export const TINY_TOKENIZER_VOCAB_SIZE = 512;

const PHI3_CHAT_TEMPLATE =
  "{% for message in messages %}{{'<|' + message['role'] + '|>' + '\\n' + message['content'] + '<|end|>\\n' }}" +
  "{% endfor %}{% if add_generation_prompt and messages[-1]['role'] != 'assistant' %}{{- '<|assistant|>\\n' -}}{% endif %}";

interface TrainedBpe {
  vocab: Map<string, number>;
  merges: [string, string][];
}

/** Byte-pair encoding training: repeatedly merge the most frequent adjacent pair (ties: lexicographic order). */
function trainBpe(corpus: string, baseVocab: number): TrainedBpe {
  const vocab = new Map<string, number>();
  for (const s of SPECIALS) vocab.set(s, vocab.size);
  for (let b = 0; b < 256; b++) vocab.set(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, vocab.size);
  // Words as SentencePiece sees them: '▁' marks a preceding space.
  const text = corpus.replace(/\s+/g, ' ').trim();
  const wordCounts = new Map<string, number>();
  for (const w of text.split(' ')) wordCounts.set('▁' + w, (wordCounts.get('▁' + w) ?? 0) + 1);
  const chars = [...new Set([...text.replace(/ /g, '')].concat('▁'))].sort();
  for (const c of chars) vocab.set(c, vocab.size);
  const words = [...wordCounts.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([w, n]) => ({ syms: [...w], n }));
  const merges: [string, string][] = [];
  while (vocab.size < baseVocab) {
    const pairs = new Map<string, number>();
    for (const { syms, n } of words) {
      for (let i = 0; i + 1 < syms.length; i++) {
        const k = syms[i] + '\u0000' + syms[i + 1];
        pairs.set(k, (pairs.get(k) ?? 0) + n);
      }
    }
    let best: string | undefined;
    let bestN = 0;
    for (const [k, n] of pairs) {
      if (n > bestN || (n === bestN && best !== undefined && k < best)) {
        best = k;
        bestN = n;
      }
    }
    if (!best) break; // every word is one token: nothing left to merge
    const [a, b] = best.split('\u0000');
    const merged = a + b;
    merges.push([a, b]);
    if (!vocab.has(merged)) vocab.set(merged, vocab.size);
    for (const w of words) {
      const out: string[] = [];
      for (let i = 0; i < w.syms.length; i++) {
        if (i + 1 < w.syms.length && w.syms[i] === a && w.syms[i + 1] === b) {
          out.push(merged);
          i++;
        } else out.push(w.syms[i]);
      }
      w.syms = out;
    }
  }
  return { vocab, merges };
}

function addedToken(id: number, content: string, special: boolean, rstrip = false) {
  return { id, content, single_word: false, lstrip: false, rstrip, normalized: false, special };
}

export interface TinyTokenizerFiles {
  'tokenizer.json': string;
  'tokenizer_config.json': string;
  'special_tokens_map.json': string;
}

/** The tokenizer files' contents (deterministic: the same bytes on every call and machine). */
export function tinyTokenizerFiles(vocabSize = TINY_TOKENIZER_VOCAB_SIZE): TinyTokenizerFiles {
  const { vocab, merges } = trainBpe(CORPUS, vocabSize - ADDED.length);
  const baseSize = vocab.size;
  const added = [
    addedToken(0, '<unk>', true),
    addedToken(1, '<s>', true),
    addedToken(2, '</s>', false, true),
    ...ADDED.map((t, i) => addedToken(baseSize + i, t, true, t !== '<|endoftext|>')),
  ];
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: '▁' },
        { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };
  const tokenizerConfig = {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: '<s>',
    eos_token: '<|endoftext|>',
    pad_token: '<|endoftext|>',
    unk_token: '<unk>',
    chat_template: PHI3_CHAT_TEMPLATE,
    clean_up_tokenization_spaces: false,
    legacy: false,
    model_max_length: 4096,
    tokenizer_class: 'LlamaTokenizer',
    added_tokens_decoder: Object.fromEntries(added.map(({ id, ...rest }) => [String(id), rest])),
    additional_special_tokens: ['<|system|>', '<|end|>', '<|user|>', '<|assistant|>'],
  };
  const tok = (content: string) => ({ content, lstrip: false, normalized: false, rstrip: false, single_word: false });
  const specialMap = {
    additional_special_tokens: ['<|system|>', '<|end|>', '<|user|>', '<|assistant|>'],
    bos_token: tok('<s>'),
    eos_token: tok('<|endoftext|>'),
    pad_token: tok('<|endoftext|>'),
    unk_token: tok('<unk>'),
  };
  return {
    'tokenizer.json': JSON.stringify(tokenizer, null, 2) + '\n',
    'tokenizer_config.json': JSON.stringify(tokenizerConfig, null, 2) + '\n',
    'special_tokens_map.json': JSON.stringify(specialMap, null, 2) + '\n',
  };
}

/** Special token ids of the tiny tokenizer (for config.json / generation_config.json of the tiny checkpoint). */
export function tinyTokenizerSpecialIds(vocabSize = TINY_TOKENIZER_VOCAB_SIZE): { bos: number; eos: number; end: number; pad: number } {
  const base = trainBpe(CORPUS, vocabSize - ADDED.length).vocab.size;
  return { bos: 1, eos: base, end: base + ADDED.indexOf('<|end|>'), pad: base };
}

/** Writes the tokenizer files into `dir`. */
export async function writeTinyTokenizer(dir: string, vocabSize = TINY_TOKENIZER_VOCAB_SIZE): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const files = tinyTokenizerFiles(vocabSize);
  const written: string[] = [];
  for (const [name, content] of Object.entries(files)) {
    await writeFileAtomic(join(dir, name), content);
    written.push(join(dir, name));
  }
  return written;
}
