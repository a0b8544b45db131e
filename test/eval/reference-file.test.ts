import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { klFromLogits, rowStats } from '../../src/eval/metrics.js';
import {
  chooseEncoding,
  FULL_RANGE_NATS,
  hashTokenSequences,
  recordBytes,
  ReferenceReader,
  ReferenceWriter,
  type ReferenceEncoding,
} from '../../src/eval/reference-file.js';
import { Rng } from '../../src/util/random.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'phi-forge-reffile-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const V = 301; // odd, to exercise the record padding
const ROWS = 12;
const sequences = [Int32Array.from([1, 5, 7, 9, 2, 8, 8]), Int32Array.from([1, 3, 4, 6, 200, 300, 0])];

/** Logits rows with a realistic spread (a few likely tokens, a long tail) from a seeded generator. */
function makeLogits(seed: number, spread = 4): Float32Array {
  const rng = new Rng(seed);
  const m = new Float32Array(ROWS * V);
  for (let i = 0; i < m.length; i++) m[i] = spread * rng.normal();
  // One row with a huge range (tail far below the 24-nat floor) and one flat row.
  for (let i = 0; i < V; i++) m[3 * V + i] = i === 5 ? 40 : -40 + (i % 7);
  m.fill(0.25, 7 * V, 8 * V);
  return m;
}

function statsOf(m: Float32Array) {
  const lse = new Float64Array(ROWS);
  const top1 = new Int32Array(ROWS);
  const nll = new Float64Array(ROWS);
  for (let r = 0; r < ROWS; r++) {
    const s = rowStats(m, V, r);
    lse[r] = s.lse;
    top1[r] = s.argmax;
    nll[r] = s.lse - m[r * V + ((r * 37) % V)];
  }
  return { lse, top1, nll };
}

async function writeRef(file: string, encoding: ReferenceEncoding, logits: Float32Array, topK = 8): Promise<void> {
  const st = statsOf(logits);
  const w = await ReferenceWriter.create(file, { model: 'test-model', sequences, positions: ROWS, nVocab: V, encoding, topK, maxLength: 8, stride: 4 });
  // Two appends, the second from a row offset, as the scorer does.
  await w.append(logits, 0, 5, st.lse, st.top1, st.nll);
  await w.append(logits, 5, ROWS - 5, st.lse.subarray(5), st.top1.subarray(5), st.nll.subarray(5));
  await w.close();
}

const ref = makeLogits(1);
// The "quantized" model: the reference plus small noise.
const q = (() => {
  const rng = new Rng(2);
  return ref.map((x) => x + 0.3 * rng.normal());
})();
const refStats = statsOf(ref);

describe('full-u16 reference records', () => {
  it('round-trip lse, nll and top-1, and log-probs within 1.9e-4 above the floor', async () => {
    const file = join(dir, 'full.ref');
    await writeRef(file, 'full-u16', ref);
    const r = await ReferenceReader.open(file);
    try {
      expect(r.header.encoding).toBe('full-u16');
      expect(r.header.positions).toBe(ROWS);
      expect(r.header.record_bytes).toBe(recordBytes('full-u16', V, 0));
      const block = await r.read(ROWS);
      for (let row = 0; row < ROWS; row++) {
        expect(block.lse(row)).toBe(Math.fround(refStats.lse[row]));
        expect(block.nll(row)).toBe(Math.fround(refStats.nll[row]));
        expect(block.top1(row)).toBe(refStats.top1[row]);
        const { logProbs, ids } = block.logProbs(row);
        expect(ids).toBeUndefined();
        const maxLp = Math.max(...Array.from(ref.subarray(row * V, row * V + V))) - refStats.lse[row];
        for (let i = 0; i < V; i++) {
          const exact = ref[row * V + i] - refStats.lse[row];
          if (exact >= maxLp - FULL_RANGE_NATS + 1e-6) expect(Math.abs(logProbs[i] - exact)).toBeLessThan(1.9e-4);
          else if (exact < maxLp - FULL_RANGE_NATS - 1e-6) expect(logProbs[i]).toBe(-Infinity);
        }
      }
    } finally {
      await r.close();
    }
  });

  it('give KL within 2e-4 of the exact KL from both full logits, and ~0 against itself', async () => {
    const file = join(dir, 'full2.ref');
    await writeRef(file, 'full-u16', ref);
    const r = await ReferenceReader.open(file);
    try {
      const block = await r.read(ROWS);
      for (let row = 0; row < ROWS; row++) {
        const exact = klFromLogits(ref, row, q, row, V);
        expect(Math.abs(block.kl(row, q, row, V) - exact)).toBeLessThan(2e-4);
        expect(block.kl(row, ref, row, V)).toBeLessThan(1e-7);
      }
    } finally {
      await r.close();
    }
  });
});

describe('top-k reference records', () => {
  it('keep the k most likely ids, their log-probs and the rest mass', async () => {
    const file = join(dir, 'topk.ref');
    await writeRef(file, 'top-k', ref, 8);
    const r = await ReferenceReader.open(file);
    try {
      expect(r.header.top_k).toBe(8);
      const block = await r.read(ROWS);
      for (const row of [0, 4, 9]) {
        const rowLogits = Array.from(ref.subarray(row * V, row * V + V));
        const order = rowLogits.map((v, i) => [v, i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
        const { ids, logProbs, logRest } = block.logProbs(row);
        expect(Array.from(ids!)).toEqual(order.slice(0, 8).map((x) => x[1]));
        for (let j = 0; j < 8; j++) expect(logProbs[j]).toBeCloseTo(order[j][0] - refStats.lse[row], 5);
        const rest = order.slice(8).reduce((a, [v]) => a + Math.exp(v - refStats.lse[row]), 0);
        expect(logRest).toBeCloseTo(Math.log(rest), 5);
      }
    } finally {
      await r.close();
    }
  });

  it('give a KL that never exceeds the exact one and equals it when k covers the vocabulary', async () => {
    const small = join(dir, 'topk-small.ref');
    const all = join(dir, 'topk-all.ref');
    await writeRef(small, 'top-k', ref, 16);
    await writeRef(all, 'top-k', ref, V);
    const rs = await ReferenceReader.open(small);
    const ra = await ReferenceReader.open(all);
    try {
      const bs = await rs.read(ROWS);
      const ba = await ra.read(ROWS);
      for (let row = 0; row < ROWS; row++) {
        const exact = klFromLogits(ref, row, q, row, V);
        expect(bs.kl(row, q, row, V)).toBeLessThanOrEqual(exact + 1e-6);
        expect(ba.kl(row, q, row, V)).toBeCloseTo(exact, 5);
      }
    } finally {
      await rs.close();
      await ra.close();
    }
  });
});

describe('reading validates the file and what is evaluated', () => {
  let file: string;
  beforeAll(async () => {
    file = join(dir, 'valid.ref');
    await writeRef(file, 'full-u16', ref);
  });

  it('accepts the same tokens, vocabulary and windows (or windows that cut the sequences the same way)', async () => {
    const r = await ReferenceReader.open(file);
    r.check({ sequences, nVocab: V, maxLength: 8, stride: 4 });
    // Every sequence is 7 tokens: any window of ≥ 7 tokens is one window.
    r.check({ sequences, nVocab: V, maxLength: 16, stride: 2 });
    await r.close();
  });

  it('rejects other tokens, another vocabulary, other windows', async () => {
    const r = await ReferenceReader.open(file);
    try {
      const other = [sequences[0], Int32Array.from([1, 3, 4, 6, 200, 300, 1])];
      expect(() => r.check({ sequences: other, nVocab: V, maxLength: 8, stride: 4 })).toThrow(
        expect.objectContaining({ code: 'REFERENCE_TOKENS_MISMATCH', message: expect.stringMatching(/other tokens/) }),
      );
      expect(() => r.check({ sequences, nVocab: V + 1, maxLength: 8, stride: 4 })).toThrow(expect.objectContaining({ code: 'REFERENCE_VOCAB_MISMATCH' }));
      expect(() => r.check({ sequences, nVocab: V, maxLength: 4, stride: 2 })).toThrow(expect.objectContaining({ code: 'REFERENCE_WINDOWS_MISMATCH' }));
      await expect(r.read(ROWS + 1)).rejects.toMatchObject({ code: 'REFERENCE_EXHAUSTED' });
    } finally {
      await r.close();
    }
  });

  it('rejects wrong magic, a newer version and a truncated file', async () => {
    const bytes = await readFile(file);
    const badMagic = join(dir, 'bad-magic.ref');
    await writeFile(badMagic, Buffer.concat([Buffer.from('GGUFxxxx'), bytes.subarray(8)]));
    await expect(ReferenceReader.open(badMagic)).rejects.toMatchObject({ code: 'REFERENCE_INVALID' });
    const v2 = Buffer.from(bytes);
    v2.writeUInt32LE(2, 8);
    const badVersion = join(dir, 'v2.ref');
    await writeFile(badVersion, v2);
    await expect(ReferenceReader.open(badVersion)).rejects.toMatchObject({ code: 'REFERENCE_VERSION' });
    const cut = join(dir, 'cut.ref');
    await writeFile(cut, bytes);
    await truncate(cut, bytes.length - 10);
    await expect(ReferenceReader.open(cut)).rejects.toMatchObject({ code: 'REFERENCE_TRUNCATED' });
    await expect(ReferenceReader.open(join(dir, 'missing.ref'))).rejects.toMatchObject({ code: 'REFERENCE_NOT_FOUND' });
  });

  it('starts the records 8-byte aligned after a JSON header', async () => {
    const bytes = await readFile(file);
    expect(bytes.subarray(0, 8).toString('latin1')).toBe('PHIFLOGP');
    expect(bytes.readUInt32LE(8)).toBe(1);
    const h = bytes.readUInt32LE(12);
    expect((16 + h) % 8).toBe(0);
    const header = JSON.parse(bytes.subarray(16, 16 + h).toString('utf8'));
    expect(header).toMatchObject({ model: 'test-model', tokens_sha256: hashTokenSequences(sequences), n_vocab: V, positions: ROWS });
    expect(bytes.length).toBe(16 + h + ROWS * header.record_bytes);
  });
});

describe('writer', () => {
  it('leaves no file when fewer positions than planned were written', async () => {
    const sub = await mkdtemp(join(dir, 'w-'));
    const file = join(sub, 'short.ref');
    const w = await ReferenceWriter.create(file, { model: 'm', sequences, positions: ROWS, nVocab: V, encoding: 'full-u16', topK: 0, maxLength: 8, stride: 4 });
    await w.append(ref, 0, 3, refStats.lse, refStats.top1, refStats.nll);
    await expect(w.close()).rejects.toMatchObject({ code: 'REFERENCE_INCOMPLETE' });
    expect(await readdir(sub)).toEqual([]);
  });

  it('hashes token lists so that splitting a sequence differently changes the hash', () => {
    expect(hashTokenSequences([[1, 2], [3]])).not.toBe(hashTokenSequences([[1], [2, 3]]));
    expect(hashTokenSequences([Int32Array.from([1, 2])])).toBe(hashTokenSequences([[1, 2]]));
  });

  it('chooses full-u16 while it stays small, top-k beyond', () => {
    expect(chooseEncoding(512, 1000)).toEqual({ encoding: 'full-u16', topK: 0 });
    expect(chooseEncoding(200064, 100_000)).toEqual({ encoding: 'top-k', topK: 64 });
    expect(chooseEncoding(32064, 10, { encoding: 'top-k', topK: 5 })).toEqual({ encoding: 'top-k', topK: 5 });
    expect(() => chooseEncoding(32064, 10, { encoding: 'top-k', topK: 0 })).toThrow(/top-k/);
  });
});
