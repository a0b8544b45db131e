// `pnpm pipeline generate` as a child process: JSON and streamed output, text prompts, chat, and its errors.
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCli } from '../../src/cli/main.js';
import { DecoderSession } from '../../src/runtime/decoder-session.js';
import { greedyGenerate } from '../../src/runtime/greedy.js';
import { maxIntraOpThreads } from '../../src/ort/threads.js';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer/tokenizer.js';
import { UsageError } from '../../src/util/errors.js';
import { sharedFixture, writeTinyDecoder } from '../helpers/runtime.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const PHI3 = sharedFixture('phi3-tokenizer');

/** Runs the CLI the way `pnpm pipeline` does (tsx), without pnpm's banner on stdout. */
function cli(...args: string[]) {
  return execa('node', ['--import', 'tsx', 'src/cli/main.ts', 'generate', ...args], { cwd: repoRoot, reject: false });
}

interface GenerateJson {
  prompt_tokens: number[];
  tokens: number[];
  text?: string;
  stop_reason: string;
  timings: { prefill_ms: number; decode_ms: number; tokens_per_s: number | null };
}

let root: string;
let plain: string;
/** What the in-process API generates for the same prompt. */
let expected: number[];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'phi-forge-gen-cli-'));
  plain = join(root, 'plain');
  await writeTinyDecoder(plain, { seed: 1, contextLength: 32 });
  const s = await DecoderSession.open(plain);
  try {
    // The tiny model's genai_config lists eos [2, 3]; the CLI stops on them too.
    expected = (await greedyGenerate(s, [1, 5, 9], { maxNewTokens: 10, eosTokenIds: [2, 3] })).tokens;
  } finally {
    await s.release();
  }
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('pnpm pipeline generate --tokens', () => {
  it('prints one JSON document with the greedy tokens and timings', async () => {
    const r = await cli(plain, '--tokens', '1,5,9', '--max-new-tokens', '10', '--json');
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as GenerateJson;
    expect(doc.prompt_tokens).toEqual([1, 5, 9]);
    expect(doc.tokens).toEqual(expected);
    expect(doc.text).toBeUndefined(); // no tokenizer in the folder
    expect(doc.stop_reason).toBe(expected.length === 10 ? 'max_new_tokens' : 'eos');
    expect(doc.timings.prefill_ms).toBeGreaterThanOrEqual(0);
    expect(doc.timings.decode_ms).toBeGreaterThanOrEqual(0);
    expect(Object.keys(doc.timings).sort()).toEqual(['decode_ms', 'prefill_ms', 'tokens_per_s']);
  });

  it('streams ids when the folder has no tokenizer, with a summary on stderr', async () => {
    const r = await cli(plain, '--tokens', '1, 5, 9', '--max-new-tokens', '10');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe(expected.join(' '));
    expect(r.stderr).toMatch(new RegExp(`^${expected.length} tokens \\(.+\\), prompt 3 tokens; prefill [\\d.]+ ms`));
  });

  it('refuses bad usage as a UsageError (exit code 2) before loading anything', async () => {
    // In-process: the parser and the command's checks, no child process needed.
    for (const args of [[], ['--tokens', '1', '--prompt', 'x'], ['--tokens', '1,x'], ['--tokens', '1,,2'], ['--tokens', '1', '--chat'], ['--tokens', '1', '--max-new-tokens', '-1']]) {
      const err = await parseCli(['generate', plain, ...args]).parseAsync().catch((e: unknown) => e);
      expect(err, args.join(' ')).toBeInstanceOf(UsageError);
      expect((err as UsageError).exitCode).toBe(2);
    }
  });

  it('bounds --threads and says a non-number --max-new-tokens must be a whole number', async () => {
    const max = maxIntraOpThreads().value;
    const cases: [string[], RegExp][] = [
      [['--threads', '10000'], new RegExp(`^--threads must be at most ${max} \\(4 per core; this machine has \\d+\\), got 10000$`)],
      [['--threads', String(max + 1)], /^--threads must be at most/],
      [['--threads', 'many'], /^--threads must be a whole number ≥ 1 and ≤ \d+; the value given is not a number$/],
      [['--max-new-tokens', 'abc'], /^--max-new-tokens must be a whole number ≥ 0; the value given is not a number$/],
      [['--max-new-tokens', '2.5'], /^--max-new-tokens must be a whole number ≥ 0, got 2\.5$/],
    ];
    for (const [args, message] of cases) {
      const err = await parseCli(['generate', plain, '--tokens', '1', ...args]).parseAsync().catch((e: unknown) => e);
      expect(err, args.join(' ')).toBeInstanceOf(UsageError);
      expect((err as UsageError).exitCode).toBe(2);
      expect((err as UsageError).message, args.join(' ')).toMatch(message);
    }
  });

  it('notes that --max-new-tokens beyond the context is clamped, and refuses a prompt longer than the context', async () => {
    // Context 32, prompt 3: at most 30 new tokens (the last one needs no position).
    const r = await cli(plain, '--tokens', '1,5,9', '--max-new-tokens', '1000000', '--json');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain('note: asked for 1000000 new tokens, but the context leaves room for at most 30 (context length 32, prompt 3 tokens)');
    const doc = JSON.parse(r.stdout) as GenerateJson;
    expect(doc.tokens.length).toBeLessThanOrEqual(30);
    expect(doc.stop_reason).toBe(doc.tokens.length === 30 ? 'context_full' : 'eos');
    const quiet = await cli(plain, '--tokens', '1,5,9', '--max-new-tokens', '30', '--json');
    expect(quiet.stderr).not.toContain('note:');

    const long = await cli(plain, '--tokens', Array.from({ length: 33 }, () => '5').join(','), '--json');
    expect(long.exitCode).toBe(1);
    expect(long.stderr).toContain("the prompt has 33 tokens, more than the model's context length 32");
    expect(long.stderr).toContain('fix: shorten the prompt to 32 tokens or fewer');
  });

  it('fails clearly on a token outside the vocabulary and on a missing folder', async () => {
    const r = await cli(plain, '--tokens', '1,40', '--json');
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('outside the vocabulary 0..39');
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, exitCode: 1 }); // --json: one document on failure too
    const missing = await cli(join(root, 'nope'), '--tokens', '1');
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toContain(join(root, 'nope'));
  });

  it('names the folder and the fix when --prompt has no tokenizer to use', async () => {
    const r = await cli(plain, '--prompt', 'Once upon a time');
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(`${plain} has no tokenizer.json`);
    expect(r.stderr).toMatch(/fix: copy tokenizer\.json .* or pass token ids with --tokens/);
  });
});

describe.skipIf(!PHI3)('pnpm pipeline generate --prompt (Phi-3 tokenizer, shared fixture)', () => {
  let dir: string;
  let tok: Tokenizer;
  beforeAll(async () => {
    dir = join(root, 'with-tokenizer');
    // A tiny random model over Phi-3's 32064-token vocabulary, with the real tokenizer next to it.
    await writeTinyDecoder(dir, { seed: 5, vocab: 32064, contextLength: 64 });
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) {
      await symlink(join(PHI3!, f), join(dir, f));
    }
    tok = await loadTokenizer(dir);
  });

  it('tokenizes the prompt with the folder\'s tokenizer and decodes the answer', async () => {
    const r = await cli(dir, '--prompt', 'Hello world', '--max-new-tokens', '8', '--json');
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as GenerateJson;
    expect(doc.prompt_tokens).toEqual([1, 15043, 3186]);
    expect(doc.tokens.length).toBeGreaterThan(0);
    expect(doc.text).toBe(tok.decode(doc.tokens, { skipSpecialTokens: true }));
  });

  it('--chat wraps the prompt in the chat template with the generation prompt', async () => {
    const r = await cli(dir, '--prompt', 'Hi', '--chat', '--max-new-tokens', '4', '--json');
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as GenerateJson;
    expect(doc.prompt_tokens).toEqual(tok.encodeChat([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true }));
    expect(doc.prompt_tokens[0]).toBe(32010); // <|user|>: the template adds no BOS, nor does the CLI
    expect(doc.prompt_tokens.at(-1)).toBe(32001); // <|assistant|>
  });

  it('streams the same text it reports in JSON', async () => {
    const [streamed, json] = await Promise.all([
      cli(dir, '--prompt', 'Hello world', '--max-new-tokens', '8'),
      cli(dir, '--prompt', 'Hello world', '--max-new-tokens', '8', '--json'),
    ]);
    expect(streamed.exitCode, streamed.stderr).toBe(0);
    expect(streamed.stdout).toBe((JSON.parse(json.stdout) as GenerateJson).text);
  });
});
