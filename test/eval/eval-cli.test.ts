// `pnpm pipeline eval` as a child process: token and text inputs (plain, JSONL, parquet), --save-reference and
// --reference, the --json contract of DESIGN.md §4, and its errors.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { writeTinyTokenizer } from '../../src/checkpoint/tiny-tokenizer.js';
import { evaluateModel } from '../../src/eval/evaluate.js';
import { loadTokenizer } from '../../src/tokenizer/tokenizer.js';
import { writeTinyDecoder } from '../helpers/runtime.js';
import { writeParquet } from '../helpers/parquet-writer.js';
import { randomTokens } from '../helpers/eval-reference.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** The CLI as a child process, the way `pnpm pipeline` runs it (used where exit codes and streams matter). */
function spawnCli(...args: string[]) {
  return execa('node', ['--import', 'tsx', 'src/cli/main.ts', 'eval', ...args], { cwd: repoRoot, reject: false });
}

/** The same entry point in-process (no tsx start-up per call), capturing stdout/stderr. */
async function cli(...args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const w1 = process.stdout.write.bind(process.stdout);
  const w2 = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((c: string | Uint8Array) => (out.push(String(c)), true)) as typeof process.stdout.write;
  process.stderr.write = ((c: string | Uint8Array) => (err.push(String(c)), true)) as typeof process.stderr.write;
  process.exitCode = undefined;
  try {
    const exitCode = await main(['eval', ...args]);
    return { exitCode, stdout: out.join(''), stderr: err.join('') };
  } finally {
    process.stdout.write = w1;
    process.stderr.write = w2;
    process.exitCode = undefined;
  }
}

const VOCAB = 512;
const TEXT = 'Once upon a time there was a little girl. She liked to play in the park with her dog.\n';
let root: string;
let model: string;
let other: string;
let tokensFile: string;
const seqs = [randomTokens(40, VOCAB, 1), randomTokens(25, VOCAB, 2)];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'phi-forge-eval-cli-'));
  model = join(root, 'model');
  other = join(root, 'other');
  await writeTinyDecoder(model, { vocab: VOCAB, contextLength: 64, seed: 8 });
  await writeTinyTokenizer(model, VOCAB);
  await writeTinyDecoder(other, { vocab: VOCAB, contextLength: 64, seed: 9 });
  tokensFile = join(root, 'tokens.json');
  await writeFile(tokensFile, JSON.stringify(seqs));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('pnpm pipeline eval --tokens', () => {
  it('prints tokens_scored, mean_nll and ppl as the library computes them', async () => {
    const r = await spawnCli(model, '--tokens', tokensFile, '--json');
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    const lib = await evaluateModel(model, seqs);
    expect(doc.tokens_scored).toBe(39 + 24);
    expect(doc.mean_nll).toBeCloseTo(lib.mean_nll, 10);
    expect(doc.ppl).toBeCloseTo(Math.exp(lib.mean_nll), 8);
    expect(doc).toMatchObject({ max_length: 64, stride: 32, sequences: 2 });
    expect(doc.kl_mean).toBeUndefined();
  });

  it('saves a reference and compares another model with it (ppl_ref, ppl_delta_pct, kl_mean, kl_p99, top1_agreement)', async () => {
    const refFile = join(root, 'model.ref');
    const save = await cli(model, '--tokens', tokensFile, '--save-reference', refFile, '--max-length', '32', '--stride', '16', '--json');
    expect(save.exitCode, save.stderr).toBe(0);
    expect(JSON.parse(save.stdout).saved_reference).toMatchObject({ file: refFile, encoding: 'full-u16', positions: 63 });

    const cmp = await cli(other, '--tokens', tokensFile, '--reference', refFile, '--json');
    expect(cmp.exitCode, cmp.stderr).toBe(0);
    const doc = JSON.parse(cmp.stdout);
    for (const k of ['tokens_scored', 'mean_nll', 'ppl', 'ppl_ref', 'ppl_delta_pct', 'kl_mean', 'kl_p99', 'top1_agreement']) {
      expect(typeof doc[k], k).toBe('number');
    }
    expect(doc).toMatchObject({ max_length: 32, stride: 16 });
    const live = await evaluateModel(other, seqs, { reference: { modelDir: model }, maxLength: 32, stride: 16 });
    expect(doc.top1_agreement).toBe(live.top1_agreement);
    expect(Math.abs(doc.kl_mean - live.kl_mean!)).toBeLessThan(2e-4);
    expect(doc.ppl_delta_pct).toBeCloseTo(live.ppl_delta_pct!, 2);

    const human = await cli(other, '--tokens', tokensFile, '--reference', refFile);
    expect(human.exitCode, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/perplexity\s+\d/);
    expect(human.stdout).toMatch(/KL\s+mean \d\.\d+/);
    expect(human.stdout).toMatch(/same top\s+\d+\.\d\d%/);
  });

  it('fails clearly when the reference was saved for other tokens', async () => {
    const refFile = join(root, 'short.ref');
    const shortTokens = join(root, 'short.json');
    await writeFile(shortTokens, JSON.stringify({ tokens: seqs[0] }));
    expect((await cli(model, '--tokens', shortTokens, '--save-reference', refFile, '--json')).exitCode).toBe(0);
    const r = await spawnCli(other, '--tokens', tokensFile, '--reference', refFile, '--json');
    expect(r.exitCode).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, exitCode: 1 }); // --json: one document on failure too
    expect(r.stderr).toMatch(/error: .*reference was saved for other tokens/);
    expect(r.stderr).toMatch(/fix:/);
  });
});

describe('pnpm pipeline eval --text', () => {
  it('tokenizes a text file with the folder\'s tokenizer.json (BOS first) and scores it in windows', async () => {
    const file = join(root, 'story.txt');
    await writeFile(file, TEXT.repeat(4));
    const tok = await loadTokenizer(model);
    const ids = tok.encode(TEXT.repeat(4));
    expect(ids[0]).toBe(1);
    expect(ids.length).toBeGreaterThan(64); // longer than one window
    const r = await cli(model, '--text', file, '--json');
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.tokens_scored).toBe(ids.length - 1);
    const lib = await evaluateModel(model, [ids]);
    expect(doc.mean_nll).toBeCloseTo(lib.mean_nll, 10);
  });

  it('reads a parquet column and joins rows with blank lines; --split-rows scores rows separately', async () => {
    const rows = ['', ' = Heading = ', '', TEXT, 'The end.'];
    const file = join(root, 'wiki.parquet');
    await writeFile(file, writeParquet({ name: 'content', values: rows, codec: 'GZIP' }));
    const tok = await loadTokenizer(model);
    const joined = tok.encode(rows.join('\n\n'));
    const r = await cli(model, '--text', file, '--column', 'content', '--json');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ tokens_scored: joined.length - 1, sequences: 1 });

    const split = await cli(model, '--text', file, '--column', 'content', '--split-rows', '--json');
    expect(split.exitCode, split.stderr).toBe(0);
    const perRow = rows.filter((x) => x.trim()).map((x) => tok.encode(x).length - 1);
    expect(JSON.parse(split.stdout)).toMatchObject({ tokens_scored: perRow.reduce((a, b) => a + b, 0), sequences: 3 });

    const missing = await cli(model, '--text', file, '--json');
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toMatch(/no column "text".*\n.*--column with one of: content/);
  });

  it('reads a JSONL text field and honours --max-tokens', async () => {
    const file = join(root, 'docs.jsonl');
    await writeFile(file, [TEXT, 'Another day.'].map((t) => JSON.stringify({ text: t })).join('\n'));
    const r = await cli(model, '--text', file, '--max-tokens', '10', '--json');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).tokens_scored).toBe(9);
  });

  it('scores a 4 MB line without whitespace in bounded memory (the text is tokenized in pieces)', async () => {
    const file = join(root, 'one-long-line.txt');
    await writeFile(file, 'ab'.repeat(2_000_000));
    // A 256 MB heap: tokenized whole, this line needs ~700 MB (a 60 MB line ran out of memory after 94 s).
    const r = await execa('node', ['--max-old-space-size=256', '--import', 'tsx', 'src/cli/main.ts', 'eval', model, '--text', file, '--max-tokens', '64', '--json'], {
      cwd: repoRoot,
      reject: false,
    });
    expect(r.exitCode, r.stderr.slice(-2000)).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ tokens_scored: 63, sequences: 1 });
  }, 300_000);
});

describe('usage errors', () => {
  it('wants exactly one input and a stride below the window', async () => {
    const both = await spawnCli(model, '--tokens', tokensFile, '--text', tokensFile);
    expect(both.exitCode).toBe(2);
    expect(both.stderr).toMatch(/exactly one of --tokens/);
    const stride = await cli(model, '--tokens', tokensFile, '--max-length', '16', '--stride', '16');
    expect(stride.exitCode).toBe(1);
    expect(stride.stderr).toMatch(/--stride must be/);
    // Numeric flags: bounded threads, and text that is not a number said as such (yargs makes it NaN).
    const threads = await cli(model, '--tokens', tokensFile, '--threads', '10000');
    expect(threads.exitCode).toBe(2);
    expect(threads.stderr).toMatch(/--threads must be at most \d+ \(4 per core; this machine has \d+\), got 10000/);
    const notNumber = await cli(model, '--tokens', tokensFile, '--max-tokens', 'abc');
    expect(notNumber.exitCode).toBe(2);
    expect(notNumber.stderr).toContain('--max-tokens must be a whole number ≥ 2; the value given is not a number');
    expect(notNumber.stderr).not.toContain('NaN');
    const noTokenizer = await cli(other, '--text', tokensFile);
    expect(noTokenizer.exitCode).toBe(1);
    expect(noTokenizer.stderr).toMatch(/tokenizer\.json/);
  });
});
