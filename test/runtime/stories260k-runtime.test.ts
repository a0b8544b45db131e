// The runtime alone on real weights: stories260K written to ONNX by a test helper (not by src/arch), decoded through
// the KV cache with position_ids, against the llama2.c reference. The e2e test does the same through our builder.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DecoderSession } from '../../src/runtime/decoder-session.js';
import { argmax, greedyGenerate } from '../../src/runtime/greedy.js';
import { sharedFixture, writeStories260kOnnx } from '../helpers/runtime.js';

const BIN = sharedFixture('stories260K/stories260K.bin');
const REFERENCE = sharedFixture('stories260K/reference.json');

describe.skipIf(!BIN || !REFERENCE)('DecoderSession on stories260K (hand-written graph) vs llama2.c', () => {
  let root: string;
  let session: DecoderSession;
  let ref: { greedy_tokens: number[]; logits: number[][] };
  beforeAll(async () => {
    ref = JSON.parse(await readFile(REFERENCE!, 'utf8')) as typeof ref;
    root = await mkdtemp(join(tmpdir(), 'phi-forge-stories-rt-'));
    await writeStories260kOnnx(BIN!, root);
    session = await DecoderSession.open(root);
  });
  afterAll(async () => {
    await session?.release();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('one token per step reproduces the greedy tokens and logits 0..7 within 1e-4', async () => {
    expect(session.layout.names.positionIds).toBe('position_ids');
    const cache = session.newCache();
    let input = 1;
    const tokens: number[] = [];
    for (let pos = 0; pos < 64; pos++) {
      const r = await session.forward([input], cache);
      if (pos < 8) {
        let d = 0;
        for (let v = 0; v < 512; v++) d = Math.max(d, Math.abs(r.logits[v] - ref.logits[pos][v]));
        expect(d, `position ${pos}`).toBeLessThan(1e-4);
      }
      input = argmax(r.logits, r.vocabSize);
      tokens.push(input);
    }
    expect(tokens).toEqual(ref.greedy_tokens);
  });

  it('a prefill of several tokens gives the same logits as stepping', async () => {
    const prompt = [1, ...ref.greedy_tokens.slice(0, 7)];
    const r = await session.forward(prompt);
    for (let pos = 0; pos < 8; pos++) {
      let d = 0;
      for (let v = 0; v < 512; v++) d = Math.max(d, Math.abs(r.logits[pos * 512 + v] - ref.logits[pos][v]));
      expect(d, `position ${pos}`).toBeLessThan(1e-4);
    }
    const g = await greedyGenerate(session, prompt, { maxNewTokens: 20 });
    expect(g.tokens).toEqual(ref.greedy_tokens.slice(7, 27));
  });
});
