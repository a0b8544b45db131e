// Issue 4's headline proof: the real stories260K llama2.c model, converted to a Hugging Face Phi-3 checkpoint, built
// to ONNX in fp32 and run through the KV-cache path, reproduces llama2.c's own greedy tokens and logits.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertCheckpoint } from '../../src/arch/convert.js';
import { convertLlama2c } from '../../src/checkpoint/llama2c.js';
import { DecoderSession } from '../../src/runtime/decoder-session.js';
import { argmax, greedyGenerate } from '../../src/runtime/greedy.js';
import { sharedFixture } from '../helpers/runtime.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const BIN = sharedFixture('stories260K/stories260K.bin');
const REFERENCE = sharedFixture('stories260K/reference.json');

interface Reference {
  bos_token_id: number;
  greedy_tokens: number[];
  /** Full logits rows at positions 0..7 of the greedy path. */
  logits: number[][];
}

const LOGITS_TOL = 1e-4;

describe.skipIf(!BIN || !REFERENCE)('stories260K: llama2.c → Phi-3 checkpoint → ONNX fp32 → KV-cache decoding', () => {
  let root: string;
  let modelDir: string;
  let ref: Reference;
  let session: DecoderSession;

  beforeAll(async () => {
    ref = JSON.parse(await readFile(REFERENCE!, 'utf8')) as Reference;
    root = await mkdtemp(join(tmpdir(), 'phi-forge-stories260k-'));
    const hfDir = join(root, 'hf');
    modelDir = join(root, 'onnx-fp32');
    await convertLlama2c({ file: BIN!, outDir: hfDir });
    await convertCheckpoint({ checkpointDir: hfDir, outDir: modelDir, precision: 'fp32' });
    session = await DecoderSession.open(modelDir);
  });
  afterAll(async () => {
    await session?.release();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('has the reference it is checked against', () => {
    expect(ref.bos_token_id).toBe(1);
    expect(ref.greedy_tokens).toHaveLength(64);
    expect(ref.logits).toHaveLength(8);
    expect(ref.logits[0]).toHaveLength(512);
  });

  it('prefills BOS then steps one token at a time: the 64 greedy tokens and logits 0..7 of llama2.c', async () => {
    expect(session.layout.vocabSize).toBe(512);
    expect(session.layout.kvType).toBe('float32');
    const cache = session.newCache();
    const tokens: number[] = [];
    const diffs: number[] = [];
    let input = ref.bos_token_id;
    for (let pos = 0; pos < ref.greedy_tokens.length; pos++) {
      const r = await session.forward([input], cache);
      expect(r.rows).toBe(1);
      expect(cache.length).toBe(pos + 1);
      if (pos < ref.logits.length) {
        let d = 0;
        for (let v = 0; v < r.vocabSize; v++) d = Math.max(d, Math.abs(r.logits[v] - ref.logits[pos][v]));
        diffs.push(d);
      }
      input = argmax(r.logits, r.vocabSize);
      tokens.push(input);
    }
    for (const [pos, d] of diffs.entries()) expect(d, `max |Δlogit| at position ${pos}`).toBeLessThan(LOGITS_TOL);
    expect(tokens).toEqual(ref.greedy_tokens);
  });

  it('greedyGenerate from [BOS] gives the same 64 tokens', async () => {
    const r = await greedyGenerate(session, [ref.bos_token_id], { maxNewTokens: 64 });
    expect(r.tokens).toEqual(ref.greedy_tokens);
  });

  it('`pnpm pipeline generate DIR --tokens 1 --max-new-tokens 64 --json` gives the same tokens', async () => {
    // --silent keeps pnpm's own banner off stdout, so stdout is the one JSON document.
    const r = await execa('pnpm', ['--silent', 'pipeline', 'generate', modelDir, '--tokens', '1', '--max-new-tokens', '64', '--json'], {
      cwd: repoRoot,
      reject: false,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { prompt_tokens: number[]; tokens: number[] };
    expect(doc.prompt_tokens).toEqual([1]);
    expect(doc.tokens).toEqual(ref.greedy_tokens);
  });
});
