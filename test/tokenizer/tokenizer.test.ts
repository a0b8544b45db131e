// The tokenizer module on the real Phi-3 tokenizer: ids from Python transformers and from other projects' tests
// (SentencePiece on the same Llama-2 vocabulary), chat-template text, add_bos/add_eos, streaming decode.
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TextStreamer } from '../../src/tokenizer/text-streamer.js';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer/tokenizer.js';
import { CheckpointError } from '../../src/util/errors.js';
import { sharedFixture } from '../helpers/runtime.js';

const PHI3 = sharedFixture('phi3-tokenizer');
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Known ids with BOS. Sources: the project brief (Python transformers); dotnet/machinelearning
 * test/Microsoft.ML.Tokenizers.Tests/LlamaTests.cs (the Llama-2 tokenizer.model, which Phi-3 shares, "tested with
 * both"); microsoft/onnxruntime-extensions test/pp_api_test (Phi3Tokenizer, Phi3VisionChatTemplate).
 */
const KNOWN: [string, number[]][] = [
  ['Hello world, <|user|> hi<|end|>', [1, 15043, 3186, 29892, 29871, 32010, 29871, 7251, 32007]],
  ['Hello, world!', [1, 15043, 29892, 3186, 29991]],
  ['\nHello\n\rWorld!\n', [1, 29871, 13, 10994, 13, 30004, 14058, 29991, 13]],
  ['This is 👍, an emoji.', [1, 910, 338, 29871, 243, 162, 148, 144, 29892, 385, 953, 29877, 2397, 29889]],
  ['the brown fox jumped over the lazy dog!', [1, 278, 17354, 1701, 29916, 12500, 287, 975, 278, 17366, 11203, 29991]],
  [
    'he traveled to Egypt during the summer, the weather was hot and ammunition.',
    [1, 540, 1020, 345, 839, 304, 12892, 2645, 278, 11801, 29892, 278, 14826, 471, 7375, 322, 626, 24579, 654, 29889],
  ],
  ["Hello, y'all! How are you 😁 ?", [1, 15043, 29892, 343, 29915, 497, 29991, 1128, 526, 366, 29871, 243, 162, 155, 132, 1577]],
  ['分析', [1, 29871, 30748, 233, 161, 147]],
  [' こんにちは', [1, 259, 30589, 30389, 30353, 30644, 30449]],
  [
    '<|user|>\nこんにちは。データ分析するにはなにをすればいい？<|end|><|assistant|>',
    [
      1, 32010, 29871, 13, 30589, 30389, 30353, 30644, 30449, 30267, 30597, 30185, 30369, 30748, 233, 161, 147, 30427, 30332,
      30353, 30449, 30371, 30353, 30396, 30427, 30553, 31254, 30298, 30298, 30882, 32007, 32001,
    ],
  ],
];

/** onnxruntime-extensions' Phi3VisionChatTemplate case ("From HuggingFace Python output"). */
const CHAT = {
  messages: [
    { role: 'system', content: 'System message' },
    { role: 'user', content: 'Hello, can you call some tools for me?' },
    { role: 'assistant', content: 'Sure, I can calculate the sum for you!' },
  ],
  text:
    '<|system|>\nSystem message<|end|>\n<|user|>\nHello, can you call some tools for me?<|end|>\n' +
    '<|assistant|>\nSure, I can calculate the sum for you!<|end|>\n',
  idsWithBos: [
    1, 32006, 29871, 13, 3924, 2643, 32007, 29871, 13, 32010, 29871, 13, 10994, 29892, 508, 366, 1246, 777, 8492, 363, 592,
    29973, 32007, 29871, 13, 32001, 18585, 29892, 306, 508, 8147, 278, 2533, 363, 366, 29991, 32007, 29871, 13,
  ],
};

describe.skipIf(!PHI3)('Phi-3 tokenizer (shared fixture)', () => {
  let tok: Tokenizer;
  let tmp: string;
  beforeAll(async () => {
    tok = await loadTokenizer(PHI3!);
    tmp = await mkdtemp(join(tmpdir(), 'phi-forge-tok-'));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  /** A folder with the fixture's tokenizer.json (linked, not copied) and a given tokenizer_config.json. */
  async function variant(name: string, config: Record<string, unknown> | undefined, extra: Record<string, string> = {}) {
    const dir = join(tmp, name);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir);
    await symlink(join(PHI3!, 'tokenizer.json'), join(dir, 'tokenizer.json'));
    if (config) await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
    for (const [f, text] of Object.entries(extra)) await writeFile(join(dir, f), text);
    return dir;
  }
  async function fixtureConfig(): Promise<Record<string, unknown>> {
    return JSON.parse(await readFile(join(PHI3!, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  }

  it.each(KNOWN)('encodes %j with special tokens as transformers does', (text, ids) => {
    expect(tok.encode(text, { addSpecialTokens: true })).toEqual(ids);
    expect(tok.encode(text)).toEqual(ids); // the default adds them, as transformers does
    expect(tok.encode(text, { addSpecialTokens: false })).toEqual(ids.slice(1));
  });

  it.each(KNOWN.slice(1, 7))('decodes the ids of %j back to the text', (text, ids) => {
    expect(tok.decode(ids.slice(1))).toBe(text);
  });

  it('keeps special tokens in decoded text unless asked to skip them', () => {
    // transformers (github.com/OoriData/Toolio/issues/12): encode('Hello<|end|>', add_special_tokens=False)
    expect(tok.encode('Hello<|end|>', { addSpecialTokens: false })).toEqual([15043, 32007]);
    expect(tok.decode([15043, 32007])).toBe('Hello<|end|>');
    expect(tok.decode([15043, 32007], { skipSpecialTokens: true })).toBe('Hello');
    expect(tok.decode([])).toBe('');
  });

  it('adds only BOS to an empty text', () => {
    expect(tok.encode('')).toEqual([1]);
    expect(tok.encode('', { addSpecialTokens: false })).toEqual([]);
  });

  it('knows the special tokens and their ids', () => {
    expect([tok.bosToken, tok.bosTokenId]).toEqual(['<s>', 1]);
    expect([tok.eosToken, tok.eosTokenId]).toEqual(['<|endoftext|>', 32000]);
    expect(tok.padTokenId).toBe(32000);
    expect(tok.tokenToId('<|assistant|>')).toBe(32001);
    expect(tok.idToToken(32010)).toBe('<|user|>');
  });

  it('renders the chat template as transformers does (Phi-3-vision reference)', () => {
    expect(tok.hasChatTemplate).toBe(true);
    const text = tok.applyChatTemplate(CHAT.messages, { addGenerationPrompt: true });
    expect(text).toBe(CHAT.text);
    expect(tok.encode(text)).toEqual(CHAT.idsWithBos);
    // apply_chat_template(tokenize=True) adds no special tokens: the template writes its own.
    expect(tok.encodeChat(CHAT.messages, { addGenerationPrompt: true })).toEqual(CHAT.idsWithBos.slice(1));
  });

  it('renders a user turn with and without the generation prompt', async () => {
    const template = String((await fixtureConfig()).chat_template);
    // The fixture's template spells the turn as '<|' + role + '|>' + newline + content + '<|end|>' + newline and
    // the prompt as '<|assistant|>' + newline (the newlines are literal characters inside the Jinja strings).
    expect(template).toContain("'<|' + message['role'] + '|>' + '\n' + message['content'] + '<|end|>\n'");
    expect(template).toContain("'<|assistant|>\n'");
    const user = [{ role: 'user', content: 'What is 2+2?' }];
    expect(tok.applyChatTemplate(user, { addGenerationPrompt: true })).toBe('<|user|>\nWhat is 2+2?<|end|>\n<|assistant|>\n');
    expect(tok.applyChatTemplate(user)).toBe('<|user|>\nWhat is 2+2?<|end|>\n');
    // <|assistant|> strips whitespace on its right (rstrip), so the prompt ends on its id.
    expect(tok.encodeChat(user, { addGenerationPrompt: true }).slice(-4)).toEqual([32007, 29871, 13, 32001]);
  });

  it('follows add_bos_token / add_eos_token from tokenizer_config.json (Llama-family rule)', async () => {
    const cfg = await fixtureConfig();
    const noBos = await loadTokenizer(await variant('no-bos', { ...cfg, add_bos_token: false }));
    expect(noBos.encode('Hello, world!')).toEqual([15043, 29892, 3186, 29991]);
    const withEos = await loadTokenizer(await variant('with-eos', { ...cfg, add_eos_token: true }));
    expect(withEos.encode('Hello, world!')).toEqual([1, 15043, 29892, 3186, 29991, 32000]);
    expect(withEos.encode('Hello, world!', { addSpecialTokens: false })).toEqual([15043, 29892, 3186, 29991]);
    // LlamaTokenizer's default is add_bos_token=true even when the config does not say so.
    const { add_bos_token: _, ...silent } = cfg;
    expect((await loadTokenizer(await variant('silent', silent))).encode('Hi')[0]).toBe(1);
  });

  it('reads special tokens given as AddedToken objects and falls back to special_tokens_map.json', async () => {
    const cfg = await fixtureConfig();
    const objectTokens = await loadTokenizer(
      await variant('objects', { ...cfg, eos_token: { content: '<|end|>', lstrip: false, __type: 'AddedToken' } }),
    );
    expect(objectTokens.eosTokenId).toBe(32007);
    const { bos_token: _b, eos_token: _e, ...rest } = cfg;
    const fromMap = await loadTokenizer(
      await variant('map', rest, { 'special_tokens_map.json': await readFile(join(PHI3!, 'special_tokens_map.json'), 'utf8') }),
    );
    expect([fromMap.bosTokenId, fromMap.eosTokenId]).toEqual([1, 32000]);
    expect(fromMap.encode('Hi')[0]).toBe(1);
  });

  it('prefers chat_template.jinja and passes bos_token/eos_token to the template', async () => {
    const dir = await variant('jinja', await fixtureConfig(), {
      'chat_template.jinja': "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{{ eos_token }}{% endfor %}",
    });
    const t = await loadTokenizer(dir);
    expect(t.applyChatTemplate([{ role: 'user', content: 'x' }])).toBe('<s>[user]x<|endoftext|>');
  });

  it('explains a missing template and a failing template', async () => {
    const { chat_template: _, ...cfg } = await fixtureConfig();
    const none = await loadTokenizer(await variant('no-template', cfg));
    expect(none.hasChatTemplate).toBe(false);
    expect(() => none.applyChatTemplate([{ role: 'user', content: 'x' }])).toThrow(/no chat template[\s\S]*fix:/);
    const raising = await loadTokenizer(
      await variant('raising', { ...cfg, chat_template: "{{ raise_exception('roles must alternate') }}" }),
    );
    const err = (() => {
      try {
        raising.applyChatTemplate([{ role: 'user', content: 'x' }]);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(CheckpointError);
    expect(err).toMatchObject({ code: 'CHAT_TEMPLATE_FAILED' });
    expect(String(err)).toContain('roles must alternate');
  });

  it('streams decoded text without splitting characters', () => {
    const text = 'naïve café 日本語 🤗 emoji, then\nnew line';
    const ids = tok.encode(text, { addSpecialTokens: false });
    expect(ids.some((i) => i >= 3 && i < 259)).toBe(true); // the text does use byte-fallback tokens
    const streamer = new TextStreamer(tok);
    const pieces = ids.map((id) => streamer.push(id));
    pieces.push(streamer.flush());
    for (const p of pieces) expect(p).not.toContain('\uFFFD');
    expect(pieces.join('')).toBe(text);
    expect(pieces.filter((p) => p.length > 0).length).toBeGreaterThan(5);
  });

  it('streams with special tokens skipped by default', () => {
    const streamer = new TextStreamer(tok);
    const out = [15043, 29892, 3186, 32007].map((id) => streamer.push(id)).join('') + streamer.flush();
    expect(out).toBe('Hello, world');
  });

  describe('long text, tokenized in bounded pieces', () => {
    /** Ordinary text of every kind the cuts meet: paragraphs, indentation, CRLF, chat turns, emoji, CJK. */
    const PARAGRAPHS = [
      'The quick brown fox jumps over the lazy dog. Meanwhile, in 1987, researchers at the lab measured 3.14159 twice.',
      '  Indented line with    multiple   spaces,\ttabs\tand trailing spaces   ',
      'Unicode: naïve café, 日本語のテキスト, emoji 🤗👍🏽 and Ελληνικά; "quotes" — dashes – and …',
      '<|user|>\nWhat is 2+2?<|end|>\n<|assistant|>\nIt is 4.<|end|>',
      'code:\n    def f(x):\n        return x ** 2  # square\n\n\n',
      ' = = Heading = = \r\nWindows line ending\r\nand more text here.',
    ];
    let text = '';
    for (let i = 0; text.length < 40_000; i++) text += PARAGRAPHS[i % PARAGRAPHS.length] + ['\n\n', '\n', ' '][i % 3];

    it('gives ordinary text the ids of tokenizing it whole', async () => {
      const whole = tok.encode(text, { maxPieceChars: Infinity }); // one call of the library, as before pieces
      expect(whole.length).toBeGreaterThan(10_000);
      for (const maxPieceChars of [undefined, 1000, 257, 64]) {
        expect(tok.encode(text, { maxPieceChars }), String(maxPieceChars)).toEqual(whole);
      }
      expect(tok.encode(text, { addSpecialTokens: false })).toEqual(whole.slice(1));
      // Special tokens the post-processor adds go around the whole text, once.
      const withEos = await loadTokenizer(await variant('with-eos-long', { ...(await fixtureConfig()), add_eos_token: true }));
      const ids = withEos.encode(text, { maxPieceChars: 1000 });
      expect(ids).toEqual(withEos.encode(text, { maxPieceChars: Infinity }));
      expect([ids[0], ids.at(-1), ids.filter((id) => id === 1).length]).toEqual([1, 32000, 1]);
    });

    it('adds no space token where a cut falls inside a word', () => {
      // No whitespace at all: every cut is a hard cut, in the middle of a word. Tokenized alone, each piece would
      // start with the ▁ of the Prepend normalizer (29871 or a ▁-word), which would decode as a space.
      const word = 'Theinternationalizationofeverythingisinevitable'.repeat(20);
      const ids = tok.encode(word, { maxPieceChars: 16, addSpecialTokens: false });
      expect(ids).not.toContain(29871);
      expect(tok.decode(ids)).toBe(word);
      // Where the text repeats with the cut period, the ids are those of the whole text exactly.
      const ab = 'ab'.repeat(5000);
      expect(tok.encode(ab, { maxPieceChars: 64 })).toEqual(tok.encode(ab, { maxPieceChars: Infinity }));
    });

    it('tokenizes a few MB without whitespace in bounded memory', async () => {
      // Run with a 256 MB heap: in one piece the library's BPE needs a node per character (4 MB took ~700 MB, and a
      // 60 MB line ran out of memory after 94 s); in pieces it needs a few MB.
      const script = join(tmp, 'long-word.mts');
      const tokenizerModule = pathToFileURL(fileURLToPath(new URL('../../src/tokenizer/tokenizer.ts', import.meta.url))).href;
      await writeFile(
        script,
        `import { loadTokenizer } from ${JSON.stringify(tokenizerModule)};\n` +
          `const tok = await loadTokenizer(${JSON.stringify(PHI3)});\n` +
          `const ids = tok.encode('ab'.repeat(2_000_000));\n` +
          `const rest = ids.slice(2).every((id) => id === 370);\n` +
          `process.stdout.write(JSON.stringify({ length: ids.length, head: ids.slice(0, 2), rest }));\n`,
      );
      const r = await execa('node', ['--max-old-space-size=256', '--import', 'tsx', script], { cwd: repoRoot, reject: false });
      expect(r.exitCode, r.stderr.slice(-2000)).toBe(0);
      // BOS, '▁ab', then 'ab' for each of the other 1,999,999 pairs: the ids of the whole text.
      expect(JSON.parse(r.stdout)).toEqual({ length: 2_000_001, head: [1, 633], rest: true });
    }, 300_000);
  });
});

describe('tokenizer folder errors', () => {
  it('names the folder and the fix when tokenizer.json is missing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'phi-forge-notok-'));
    try {
      const err = await loadTokenizer(dir).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CheckpointError);
      expect(err).toMatchObject({ code: 'TOKENIZER_MISSING' });
      expect(String((err as Error).message)).toContain(join(dir, 'tokenizer.json'));
      expect(String((err as Error).message)).toContain('fix:');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('rejects a tokenizer.json that is not JSON or not a tokenizer', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'phi-forge-badtok-'));
    try {
      await writeFile(join(dir, 'tokenizer.json'), 'version https://git-lfs.github.com/spec/v1\n');
      await expect(loadTokenizer(dir)).rejects.toMatchObject({ code: 'TOKENIZER_JSON' });
      await writeFile(join(dir, 'tokenizer.json'), JSON.stringify({ version: '1.0' }));
      await expect(loadTokenizer(dir)).rejects.toMatchObject({ code: 'TOKENIZER_INVALID' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
